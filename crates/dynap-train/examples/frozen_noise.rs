//! The paper's frozen-noise experiment, shortened so that it runs in seconds: both runs (plain and
//! with mismatch injected), one seed, 300 iterations, evaluated on 10 simulated chips per mismatch
//! level; the output folder goes to the system's temporary folder. `cargo xtask train` runs the full
//! experiment.
//!
//! Run: `cargo run --release -p dynap-train --example frozen_noise`

use dynap_train::config::Config;
use dynap_train::progress::Progress;
use dynap_train::runs;

fn main() -> Result<(), dynap_train::Error> {
    let mut config = Config::default();
    config.training.iterations = 300;
    config.training.seeds = vec![0];
    config.training.checkpoint_every = 0;
    config.evaluation.chips = 10;
    config.quantization.compare_autoencoder = false;
    let out = std::env::temp_dir().join(format!("dynap-frozen-noise-{}", std::process::id()));
    let results = runs::train(&config, &out, false, &Progress::new(true))?;
    results.write(&config, &out)?;
    println!("{}", results.table(&config));
    println!("wrote {}", out.display());
    Ok(())
}
