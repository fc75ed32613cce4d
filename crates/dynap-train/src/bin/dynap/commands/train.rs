//! `dynap train`: the experiment of a configuration (default: the paper's frozen-noise experiment),
//! trained, evaluated and written to an output folder.

use super::VariantArg;
use crate::Context;
use dynap_train::config::Config;
use dynap_train::{Error, evaluation, files, fit, runs};
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
///
/// With a [data] table, a dataset experiment: the network of [[network.population]] and
/// [[network.connection]] trained on the data for every seed (epochs, early stopping on validation,
/// the best epoch kept), then judged at every stage (float, quantized, reverse_mapped, device) on the
/// validation and test splits. Writes --out: metrics.json, history.csv, encoding.json,
/// seed<k>/network.json and seed<k>/checkpoint, network.json (the best seed's), loss.png,
/// accuracy.png, confusion.png, raster.png, run.log. `dynap eval --help` judges a run again.
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
        Some(path) => files::read_experiment(path)?,
        None => Config::default(),
    };
    if let Some(v) = a.variant {
        config.network.variant = v.into();
    }
    config
        .validate()
        .map_err(|error| Error::Config { path: None, error })?;
    if config.data.is_some() {
        // A dataset experiment. The run folder's configuration names its data by absolute paths, so
        // that the folder is self-contained for `dynap eval`.
        let dir = fit::config_dir(a.config.as_deref());
        fit::resolve_data_paths(&mut config, &dir);
        files::create_dir(&a.out)?;
        cx.log.open(&a.out.join("run.log"))?;
        // The device stage on the twin the configuration names; a chip-trained run also predicts it
        // from its profile (the `predicted` stage).
        let judge = evaluation::JudgeOptions {
            device: dynap_train::deployment::Device::Emulator {
                mismatch: config.evaluation.device_mismatch,
                seed: config.evaluation.device_seed,
            },
            profile: match &config.training.chip_profile {
                Some(path) => Some(dynap_train::calibration::read_profile(path)?),
                None => None,
            },
            ..evaluation::JudgeOptions::default()
        };
        let run = fit::train(&config, &dir, &a.out, a.resume, &judge, &cx.progress)?;
        run.write(&a.out)?;
        cx.say(run.table().trim_end());
        cx.say(format_args!("wrote {}", a.out.display()));
        return Ok(());
    }
    files::create_dir(&a.out)?;
    cx.log.open(&a.out.join("run.log"))?;
    let runs = runs::train(&config, &a.out, a.resume, &cx.progress)?;
    runs.write(&config, &a.out)?;
    cx.say(runs.table(&config));
    cx.say(format_args!("wrote {}", a.out.display()));
    Ok(())
}
