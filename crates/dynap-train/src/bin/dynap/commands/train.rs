//! `dynap train`: the experiment of a configuration (default: the paper's frozen-noise experiment),
//! trained, evaluated and written to an output folder.

use super::VariantArg;
use crate::Context;
use dynap_train::config::Config;
use dynap_train::{Error, files, runs};
use std::path::PathBuf;

/// Train, evaluate and quantize the networks of an experiment.
///
/// Without --config: the paper's frozen-noise experiment. Two frozen Poisson patterns (60 channels,
/// 500 steps) into LinearJax(60 -> 2) + recurrent DynapSim(2), trained with Adam for 20 000
/// iterations on 3 seeds, twice: `plain`, and `noise` (a 30 % frozen mismatch redrawn every 100
/// iterations). Every network is evaluated on 100 simulated chips per mismatch level (5, 10, 20,
/// 30 %), quantized to the chip's 4-bit weights and evaluated again.
///
/// Writes --out: metrics.json, config.toml (the configuration used), <run>/network.json,
/// <run>/seed<k>/{network,quantized}.json, loss.png and <run>/raster.png (each with a .csv of its
/// data), checkpoints (<run>/seed<k>.checkpoint) and run.log.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The experiment configuration (TOML; every key has a default).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// The output folder.
    #[arg(long, value_name = "DIR", default_value = "runs/train")]
    out: PathBuf,
    /// Continue from the checkpoints in --out (bit-identical to an uninterrupted run); a damaged
    /// checkpoint, or one of another configuration, is refused.
    #[arg(long)]
    resume: bool,
    /// The model variant (overrides the configuration's network.variant).
    #[arg(long, value_enum)]
    variant: Option<VariantArg>,
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let mut config = match &a.config {
        Some(path) => {
            Config::from_toml(&files::read_text(path)?).map_err(|error| Error::Config {
                path: Some(path.clone()),
                error,
            })?
        }
        None => Config::default(),
    };
    if let Some(v) = a.variant {
        config.network.variant = v.into();
    }
    config
        .validate()
        .map_err(|error| Error::Config { path: None, error })?;
    files::create_dir(&a.out)?;
    cx.log.open(&a.out.join("run.log"))?;
    let runs = runs::train(&config, &a.out, a.resume, &cx.progress)?;
    runs.write(&config, &a.out)?;
    cx.say(runs.table(&config));
    cx.say(format_args!("wrote {}", a.out.display()));
    Ok(())
}
