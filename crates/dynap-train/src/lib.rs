//! # dynap-train: orchestration and the `dynap` program
//!
//! Run the paper's frozen-noise experiment (shortened) and write its output folder:
//!
//! ```no_run
//! use dynap_train::{config::Config, progress::Progress, runs};
//!
//! // The paper's experiment, shortened: 200 iterations, one seed, 10 chips per mismatch level.
//! let mut config = Config::default();
//! config.training.iterations = 200;
//! config.training.seeds = vec![0];
//! config.evaluation.chips = 10;
//! let out = std::path::Path::new("runs/example");
//! let results = runs::train(&config, out, false, &Progress::hidden())?;
//! results.write(&config, out)?;
//! println!("{}", results.table(&config));
//! # Ok::<(), dynap_train::Error>(())
//! ```
//!
//! The flows a user runs, between the layers below: the paper's frozen-noise experiment trained,
//! evaluated and quantized ([`runs`], one training in [`experiment`], its configuration in [`config`],
//! checkpoints in [`checkpoint`]; networks of populations in [`architecture`]); a trained network deployed stage by stage ([`deployment`]); float
//! networks quantized into the file formats of `dynap-config` ([`quantization`]); the golden harness
//! against Rockpool's reference cases ([`golden`]); the benchmark's workloads ([`bench`](mod@bench)) and Rockpool's
//! baseline ([`rockpool`]); plots ([`plot`]); progress bars and logs of long stages ([`progress`]). The
//! `dynap` program (`src/bin/dynap/`, one module per subcommand) is a thin layer over these.
//!
//! Invariants of this crate:
//! * it is the only crate that reads or writes files on the user's behalf, and every write is atomic
//!   (a temporary file, then a rename: [`files`]), so a crash never leaves half a file (`run.log`, a
//!   log appended line by line, is the one exception);
//! * bad input (a file, an argument, a configuration key) is an [`Error`] that names the problem and
//!   where it is, never a panic;
//! * a training depends only on its configuration, seed and iteration: mismatch redraws and
//!   minibatches are drawn from (seed, iteration), so a checkpoint resumes bit for bit;
//! * the built-in fixtures (the paper's frozen-noise raster and shipped weights) live in `data/` and are
//!   compiled in, so the program needs nothing outside its crate.

pub mod architecture;
pub mod bench;
pub mod calibration;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod deployment;
mod error;
pub mod eval;
pub mod evaluation;
pub mod experiment;
pub mod files;
pub mod fit;
pub mod golden;
mod json;
pub mod nir;
pub mod plot;
pub mod progress;
pub mod quantization;
pub mod rockpool;
pub mod runs;
pub mod task;

pub use error::Error;
