//! `dynap golden`: the golden harness on a folder of Rockpool's reference cases.

use crate::Context;
use dynap_train::{Error, golden};
use std::path::PathBuf;

/// Check every *.json golden case in a folder against Rockpool 3.1.0's numbers.
///
/// Prints one line per case (PASS name, or FAIL name: the first difference with its indices and
/// values), then "N passed, M failed"; exits 1 if a case failed, a file could not be read, or the
/// folder holds no case. Kinds: sim, grad, quant, mapping, mismatch, biasgen_forward,
/// biasgen_reverse, translation, translation_updates.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The folder of cases.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let files = match golden::case_files(&a.dir) {
        Ok(f) => f,
        Err(e) => {
            // The contract's last line, even when nothing could be checked.
            println!("0 passed, 1 failed");
            return Err(Error::Mismatch(e.to_string()));
        }
    };
    let stage = cx
        .progress
        .stage("golden cases", files.len() as u64, "cases");
    let mut failed = 0;
    for path in &files {
        let o = golden::check_file(path);
        // The harness's lines are its output: printed even with --quiet.
        cx.progress.suspend(|| match &o.result {
            Ok(()) => println!("PASS {}", o.name),
            Err(e) => println!("FAIL {}: {e}", o.name),
        });
        failed += usize::from(o.result.is_err());
        stage.inc(1);
    }
    stage.finish();
    println!("{} passed, {failed} failed", files.len() - failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::Mismatch(format!(
            "{failed} of {} cases failed",
            files.len()
        )))
    }
}
