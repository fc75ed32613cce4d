//! # dynap-train: orchestration and the `dynap` program
//!
//! Tasks and datasets, evaluation, the golden harness, and the `dynap` command-line program that
//! `cargo xtask` drives. It is the only crate that reads or writes files on the user's behalf.
//!
//! Invariants of this crate:
//! * files are written atomically (a temporary file, then a rename), so a crash never leaves half a file;
//! * bad input (a file, an argument) is an error that names the problem and where it is, never a panic;
//! * the built-in fixtures (the paper's frozen-noise raster and shipped weights) live in `data/` and are
//!   compiled in, so the program needs nothing outside the repository.
//!
//! Status: simulation, training, quantization, the chip configuration and mapping, and the golden harness
//! are built; devices come with a later issue.
//!
//! Key items: [`golden::check_dir`] (the golden harness), [`task`] (the frozen-noise task and its
//! metrics), [`quantize`] (`dynap quantize` and its file formats).

pub mod bench;
pub mod cli;
pub mod config;
pub mod configcmd;
pub mod deploy;
pub mod experiment;
pub mod golden;
mod json;
pub mod plot;
pub mod quantize;
pub mod report;
pub mod task;
