//! `cargo xtask`: thin wrappers that build the `dynap` program in release mode and run it.
//!
//! * `cargo xtask train [ARGS]`: the main flow (`dynap train`)
//! * `cargo xtask golden <DIR>`: check Rockpool's golden cases in DIR (`dynap golden`)
//! * `cargo xtask bench [--json FILE] [--rockpool-python PATH] [--reps N] [--rounds R] [--only SECTIONS]`: timings (`dynap bench`)
//! * `cargo xtask deploy [ARGS]`: deployment to a device (`dynap deploy`)
//! * `cargo xtask ci`: what CI runs (`.ci/run`): format check, clippy, the tests, the examples, the golden
//!   harness, the Python package and its tests

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <train|deploy|golden|bench|ci> [ARGS]
  train [ARGS]     the main flow on the built-in default task
  deploy [ARGS]    deploy a trained network to a device
  golden <DIR>     check every golden case in DIR against Rockpool's numbers
  bench [ARGS]     forward-pass timings, optionally against Rockpool in the same run
  ci               what CI runs (.ci/run): checks, tests, examples, golden harness, the Python package";

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo run` of the `dynap` program in release mode, before its arguments.
const RUN_DYNAP: [&str; 8] = [
    "run",
    "--quiet",
    "--release",
    "--package",
    "dynap-train",
    "--bin",
    "dynap",
    "--",
];

/// Builds `dynap` in release mode and runs it with `args`; returns its exit code.
fn dynap(args: &[String]) -> ExitCode {
    exit_of(cargo().args(RUN_DYNAP).args(args).status())
}

fn exit_of(status: std::io::Result<std::process::ExitStatus>) -> ExitCode {
    match status {
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("xtask: cannot run it: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask ci`.
fn ci() -> ExitCode {
    // `.ci/run` is the one list of CI's steps; this runs it from the workspace root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    exit_of(Command::new("bash").arg(root.join(".ci/run")).status())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match command.as_str() {
        "train" | "deploy" | "golden" | "bench" => dynap(&args),
        "ci" if args.len() == 1 => ci(),
        _ => {
            eprintln!("xtask: unknown command {command:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
