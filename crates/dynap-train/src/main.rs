//! The `dynap` command-line program: the entry point `cargo xtask` drives. See `dynap help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    dynap_train::cli::run(&args)
}
