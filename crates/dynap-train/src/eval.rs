//! A training output folder judged again (`dynap eval RUN_DIR`): its networks at every stage on data
//! they never saw.
//!
//! A run folder is self-contained. A dataset run keeps `config.toml`, `encoding.json` (how features
//! became spikes, with the train split's ranges) and `seed<k>/network.json` (each with its
//! architecture); the data comes from `--data` (an NPZ or a folder of `x.npy` and `y.npy`, encoded as
//! training encoded) or, by default, the run's test split. A frozen-noise run is judged on its own
//! task (its patterns, pattern `c` of class `c`), the networks of one of its two runs.

use crate::config::Config;
use crate::data::{Dataset, Inputs, TargetKind};
use crate::deployment::RunName;
use crate::error::Error;
use crate::evaluation::{self, JudgeOptions, Judged, Samples, Truth};
use crate::files;
use crate::fit::Encoding;
use crate::progress::Progress;
use dynap_model::Network;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What to judge and how.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// The data (default: a dataset run's test split; a frozen-noise run's task).
    pub data: Option<PathBuf>,
    /// Which run of a frozen-noise folder.
    pub run: RunName,
    /// Stages, device, robustness.
    pub judge: JudgeOptions,
}

/// A run folder judged.
#[derive(Clone, Debug)]
pub struct Evaluated {
    /// What was judged on, for people (a file, `test split`, `task`).
    pub data: String,
    /// The judgement.
    pub judged: Judged,
}

impl Evaluated {
    /// `eval.json`: `{"samples": n, "data": what, "seeds": [...], "stages": {stage: {"accuracy",
    /// "confusion", "per_seed", "robustness"?}}}` (a regression: `rmse` and `r2` for `accuracy` and
    /// `confusion`).
    pub fn to_json(&self) -> Value {
        json!({
            "samples": self.judged.samples,
            "data": self.data,
            "seeds": self.judged.seeds,
            "stages": self.judged.to_json(),
        })
    }
}

/// The networks of a run folder, with their layout.
struct RunNetworks {
    networks: Vec<(u64, Network)>,
    readout: evaluation::Readout,
    core_map: Option<Vec<usize>>,
    classes: usize,
}

fn read_config(dir: &Path) -> Result<Config, Error> {
    let path = dir.join("config.toml");
    if !path.exists() {
        return Err(Error::Mismatch(format!(
            "{} does not exist: RUN_DIR must be the output folder of `dynap train`",
            path.display()
        )));
    }
    files::read_experiment(&path)
}

/// Reads `seed<k>/network.json` under `dir` for every seed of the configuration that has one.
fn read_seeds(
    dir: &Path,
    seeds: &[u64],
) -> Result<Vec<(u64, dynap_config::format::NetworkFile)>, Error> {
    let mut out = Vec::new();
    for &seed in seeds {
        let path = dir.join(format!("seed{seed}")).join("network.json");
        if !path.exists() {
            continue;
        }
        let file =
            dynap_config::format::read_network(&files::read_text(&path)?).map_err(|error| {
                Error::Format {
                    path: path.clone(),
                    error,
                }
            })?;
        out.push((seed, file));
    }
    if out.is_empty() {
        return Err(Error::Mismatch(format!(
            "no trained network in {}: none of seed<k>/network.json exists for the seeds {seeds:?} of its config.toml",
            dir.display()
        )));
    }
    Ok(out)
}

/// Judges the run folder `dir` (see the module documentation).
pub fn eval(dir: &Path, o: &EvalOptions, progress: &Progress) -> Result<Evaluated, Error> {
    let config = read_config(dir)?;
    let (nets, samples, what) = if config.data.is_some() {
        dataset_run(dir, &config, o)?
    } else {
        frozen_noise_run(dir, &config, o)?
    };
    let judged = evaluation::judge(
        &nets.networks,
        &nets.readout,
        nets.core_map.as_deref(),
        &samples,
        nets.classes,
        &o.judge,
        progress,
        &what,
    )?;
    Ok(Evaluated { data: what, judged })
}

fn dataset_run(
    dir: &Path,
    config: &Config,
    o: &EvalOptions,
) -> Result<(RunNetworks, Samples, String), Error> {
    let files = read_seeds(dir, &config.training.seeds)?;
    let first = &files[0].1;
    let architecture = first.architecture.clone().ok_or_else(|| {
        Error::Mismatch(format!(
            "{}: the network has no `architecture`; a dataset run's networks keep theirs",
            dir.join(format!("seed{}", files[0].0))
                .join("network.json")
                .display()
        ))
    })?;
    let encoding = read_encoding(dir, first.network.dt)?;
    let (samples, what) = dataset_samples(
        dir,
        config,
        &encoding,
        first.network.dt,
        o.data.as_deref(),
        false,
    )?;
    let nets = RunNetworks {
        readout: encoding.readout(&architecture)?,
        core_map: first
            .core_map
            .clone()
            .or_else(|| Some(architecture.core_map())),
        classes: encoding.classes,
        networks: files.into_iter().map(|(s, f)| (s, f.network)).collect(),
    };
    Ok((nets, samples, what))
}

fn frozen_noise_run(
    dir: &Path,
    config: &Config,
    o: &EvalOptions,
) -> Result<(RunNetworks, Samples, String), Error> {
    let run_dir = dir.join(o.run.name());
    let files = read_seeds(&run_dir, &config.training.seeds)?;
    let classes = config.task.classes;
    let network = &files[0].1.network;
    let (samples, what) = match &o.data {
        None => {
            let r = crate::experiment::rasters(config);
            (
                Samples {
                    spikes: r.data.iter().map(|&v| v as f32).collect(),
                    samples: r.samples,
                    steps: r.steps,
                    channels: r.channels,
                    truth: Truth::Classes((0..r.samples).map(|c| c % classes).collect()),
                },
                "task".to_owned(),
            )
        }
        Some(path) => {
            let d = Dataset::load(path, TargetKind::Classes).map_err(Error::Data)?;
            let Inputs::Spikes(s) = &d.inputs else {
                return Err(Error::Mismatch(format!(
                    "{}: a frozen-noise network takes spike counts `x` [samples, steps, channels], not features",
                    path.display()
                )));
            };
            if s.channels != network.input_channels() {
                return Err(Error::Mismatch(format!(
                    "{}: `x` has {} channels, the network takes {}",
                    path.display(),
                    s.channels,
                    network.input_channels()
                )));
            }
            let labels = match &d.targets {
                crate::data::Targets::Classes { labels, .. } => labels.clone(),
                crate::data::Targets::Regression { .. } => {
                    return Err(Error::Mismatch(format!(
                        "{}: `y` holds real values; a classification needs integer labels",
                        path.display()
                    )));
                }
            };
            if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y >= classes) {
                return Err(Error::Mismatch(format!(
                    "{}: `y`[{i}] = {y}, but the network has {classes} classes",
                    path.display()
                )));
            }
            (
                Samples {
                    spikes: s.data.clone(),
                    samples: s.samples,
                    steps: s.steps,
                    channels: s.channels,
                    truth: Truth::Classes(labels),
                },
                path.display().to_string(),
            )
        }
    };
    let nets = RunNetworks {
        readout: evaluation::Readout::one_per_class(0..classes),
        core_map: files[0].1.core_map.clone(),
        classes,
        networks: files.into_iter().map(|(s, f)| (s, f.network)).collect(),
    };
    Ok((nets, samples, what))
}

/// A dataset run's `encoding.json`.
pub(crate) fn read_encoding(dir: &Path, dt: f64) -> Result<Encoding, Error> {
    let path = dir.join("encoding.json");
    let bad = |e: String| {
        Error::Mismatch(format!(
            "{}: not a dataset run's encoding: {e}",
            path.display()
        ))
    };
    let encoding: Encoding =
        serde_json::from_str(&files::read_text(&path)?).map_err(|e| bad(e.to_string()))?;
    encoding.validate(dt).map_err(bad)?;
    Ok(encoding)
}

/// The samples a dataset run (folder `dir`) is judged on, encoded as training encoded, with a name
/// for people: `data` if given, else the run's test split, else (when `or_validation`) its
/// validation split.
pub(crate) fn dataset_samples(
    dir: &Path,
    config: &Config,
    encoding: &Encoding,
    dt: f64,
    data: Option<&Path>,
    or_validation: bool,
) -> Result<(Samples, String), Error> {
    let seed = config.data.as_ref().map_or(0, |d| d.seed) ^ 0x6576_616C;
    let (dataset, what) = match data {
        Some(path) => (
            Dataset::load(
                path,
                if encoding.regression.is_some() {
                    TargetKind::Regression
                } else {
                    TargetKind::Classes
                },
            )
            .map_err(Error::Data)?,
            path.display().to_string(),
        ),
        None => {
            let d = config.data.as_ref().ok_or_else(|| {
                Error::Mismatch("not a dataset run: its config.toml has no [data]".into())
            })?;
            let splits = d.load(dir).map_err(Error::Data)?;
            match (splits.test, or_validation) {
                (Some(test), _) => (test, "test split".to_owned()),
                (None, true) => (splits.validation, "validation split".to_owned()),
                (None, false) => {
                    return Err(Error::Mismatch(
                        "this run has no test split (its [data] gives no `test` file and generates no test samples): give the data with --data FILE.npz".into(),
                    ));
                }
            }
        }
    };
    let samples = encoding
        .samples(&dataset, dt, seed)
        .map_err(|e| match (data, e) {
            (Some(path), Error::Mismatch(m)) => Error::Mismatch(format!("{}: {m}", path.display())),
            (_, e) => e,
        })?;
    Ok((samples, what))
}
