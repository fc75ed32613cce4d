//! A dataset experiment (a configuration with `[data]`): a network of populations trained on the
//! user's data, judged on data it never saw, then quantized, mapped and run on a device.
//!
//! 1. **Prepare** ([`prepare`]): load the splits (`[data]`), turn features into spikes with the
//!    encoder (scaled by the train split's range), describe the network (`[[network.population]]`,
//!    `[[network.connection]]`, `network.readout`; without them, a hidden population of 60 and an output
//!    population of one neuron per class), and refuse a network the chip cannot hold before anything
//!    trains.
//! 2. **Train** one network per seed ([`train_seed`]): epochs of minibatches shuffled from (seed,
//!    epoch), Adam with the learning-rate schedule, the weights outside the architecture's blocks held at
//!    0, the configured noise injection, the loss (the readout's spike-count cross-entropy by default),
//!    validation accuracy after every epoch, the best epoch's network kept, early stopping; checkpoints
//!    at every epoch's end and every `checkpoint_every` iterations, from which `--resume` continues bit
//!    for bit.
//! 3. **Judge** ([`crate::evaluation::judge`]): every seed's best network at every stage (`float`,
//!    `quantized`, `reverse_mapped`, `device`) on the validation split and the test split if there is
//!    one, with the one decision rule of [`crate::evaluation::classify`].
//! 4. **Write** the run folder ([`FitRun::write`]): self-contained, so that `dynap eval` needs nothing
//!    but it and a data file.

use crate::architecture::initial_network_scaled;
use crate::checkpoint::{self, Checkpoint};
use crate::config::{Config, LossKind, LrSchedule};
use crate::data::{DataConfig, Dataset, Encoder, Inputs, Scaling, Targets};
use crate::error::Error;
use crate::evaluation::{self, Judged, Samples, TargetScale, Truth};
use crate::files;
use crate::progress::{Progress, Stage};
use dynap_autodiff::{
    Activity, CurrentTraining, Loss, Sharing, SpikeInput, Trainer, WeightFactors,
};
use dynap_model::{Architecture, Network, Population, Source, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// How a run's features become spikes: what `dynap eval` needs to encode new data as training did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    /// The encoder.
    pub encoder: Encoder,
    /// Each feature's range in the train split (empty for spike-count data).
    pub min: Vec<f64>,
    /// See `min`.
    pub max: Vec<f64>,
    /// Classes (the train split's), or a regression's target dimensions.
    pub classes: usize,
    /// A regression's targets: their range in the train split and the spike count of its top
    /// (absent for a classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<TargetScale>,
    /// Input channels the network takes.
    pub channels: usize,
    /// Time steps per sample.
    pub steps: usize,
}

impl Encoding {
    /// Checks what a reader of `encoding.json` relies on, for a simulation step `dt`: the encoder's
    /// parameters, one finite range per feature, at least one class, channel and step, and rasters of
    /// the encoder's size when it encodes features. An error names the key.
    pub fn validate(&self, dt: f64) -> Result<(), String> {
        if self.classes == 0 || self.channels == 0 || self.steps == 0 {
            return Err("`classes`, `channels` and `steps` must be at least 1".into());
        }
        if self.min.len() != self.max.len() {
            return Err(format!(
                "`min` has {} features and `max` {}",
                self.min.len(),
                self.max.len()
            ));
        }
        if let Some(r) = &self.regression {
            r.validate(self.classes)?;
        }
        if let Some(k) =
            (0..self.min.len()).find(|&k| !(self.min[k].is_finite() && self.max[k].is_finite()))
        {
            return Err(format!("the range of feature {k} is not finite"));
        }
        if !self.min.is_empty() {
            self.encoder
                .validate(dt)
                .map_err(|e| format!("`encoder`: {e}"))?;
            let (steps, channels) = (self.encoder.steps(), self.encoder.channels(self.min.len()));
            if (steps, channels) != (self.steps, self.channels) {
                return Err(format!(
                    "the encoder makes {channels} channels of {steps} steps from {} features, `channels` and `steps` say {} and {}",
                    self.min.len(),
                    self.channels,
                    self.steps
                ));
            }
        }
        Ok(())
    }

    /// The readout of a network with this encoding: the `architecture`'s output population in one
    /// group of neurons per class (target dimension), refused when it does not split into them.
    pub fn readout(&self, architecture: &Architecture) -> Result<evaluation::Readout, Error> {
        let neurons = architecture.readout_range();
        if neurons.is_empty() || !neurons.len().is_multiple_of(self.classes.max(1)) {
            let (what, group) = if self.regression.is_some() {
                ("target dimensions", "dimension d")
            } else {
                ("classes", "class c")
            };
            return Err(Error::Mismatch(format!(
                "the readout population has {} neurons, the data {} {what}: a group of the same number of neurons per {} ({group} the {}-th group)",
                neurons.len(),
                self.classes,
                &what[..what.len() - 1],
                &group[group.len() - 1..]
            )));
        }
        Ok(evaluation::Readout {
            neurons,
            classes: self.classes,
            scale: self.regression.clone(),
        })
    }

    /// The scaling of features.
    pub fn scaling(&self) -> Scaling {
        Scaling {
            min: self.min.clone(),
            max: self.max.clone(),
        }
    }

    /// A dataset as labelled spikes, encoded as training encoded (`seed` draws Poisson spikes).
    pub fn samples(&self, data: &Dataset, dt: f64, seed: u64) -> Result<Samples, Error> {
        let spikes = data
            .spikes(&self.encoder, &self.scaling(), dt, seed)
            .map_err(Error::Data)?;
        let truth = match (&data.targets, &self.regression) {
            (Targets::Classes { labels, classes }, None) => {
                if *classes > self.classes {
                    let (index, label) = labels
                        .iter()
                        .enumerate()
                        .find(|(_, l)| **l >= self.classes)
                        .map_or((0, *classes - 1), |(i, l)| (i, *l));
                    return Err(Error::Mismatch(format!(
                        "array y: label {label} of sample {index} is not one of the {} classes the network was trained on (0 to {})",
                        self.classes,
                        self.classes.saturating_sub(1)
                    )));
                }
                Truth::Classes(labels.clone())
            }
            (Targets::Regression { dims, values }, Some(_)) => {
                if *dims != self.classes {
                    return Err(Error::Mismatch(format!(
                        "array y: {dims} target dimensions, the network was trained on {}",
                        self.classes
                    )));
                }
                Truth::Values {
                    dims: *dims,
                    values: values.clone(),
                }
            }
            (Targets::Regression { .. }, None) => {
                return Err(Error::Mismatch(
                    "array y: regression targets, but the network classifies (data.targets = \"classes\")".into(),
                ));
            }
            (Targets::Classes { .. }, Some(_)) => {
                return Err(Error::Mismatch(
                    "array y: class labels, but the network was trained on regression targets (data.targets = \"regression\")".into(),
                ));
            }
        };
        if spikes.channels != self.channels || spikes.steps != self.steps {
            return Err(Error::Mismatch(format!(
                "the data gives {} channels of {} steps, the network takes {} channels of {} steps",
                spikes.channels, spikes.steps, self.channels, self.steps
            )));
        }
        Ok(Samples {
            spikes: spikes.data,
            samples: spikes.samples,
            steps: spikes.steps,
            channels: spikes.channels,
            truth,
        })
    }
}

/// Everything a dataset experiment trains from.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The network's description.
    pub architecture: Architecture,
    /// The training split as labelled spikes.
    pub train: Samples,
    /// The validation split.
    pub validation: Samples,
    /// The test split, if the data has one.
    pub test: Option<Samples>,
    /// How features became spikes.
    pub encoding: Encoding,
    /// The network to start from (`network.init`), when there is one.
    pub init: Option<Network>,
    /// The chip trained for (`training.chip_profile`), when there is one.
    pub profile: Option<dynap_config::format::ChipProfile>,
}

impl Prepared {
    /// The output neurons and the classes they vote for (the target dimensions they predict).
    pub fn readout(&self) -> evaluation::Readout {
        evaluation::Readout {
            neurons: self.architecture.readout_range(),
            classes: self.encoding.classes,
            scale: self.encoding.regression.clone(),
        }
    }
}

/// Output neurons per target dimension of the default network of a regression.
const DEFAULT_GROUP: usize = 10;

/// The default network of a dataset experiment: a hidden population of 60 from the input, an output
/// population of `outputs` neurons from the hidden one.
fn default_architecture(inputs: usize, outputs: usize) -> Result<Architecture, Error> {
    Architecture::new(
        inputs,
        vec![
            Population::new("hidden", 60),
            Population::new("output", outputs),
        ],
        vec![
            dynap_model::Connection {
                from: Source::Input,
                to: 0,
            },
            dynap_model::Connection {
                from: Source::Population(0),
                to: 1,
            },
        ],
        1,
    )
    .map_err(Error::Model)
}

/// Loads and encodes the data of `config` (paths relative to `base`, the configuration file's folder),
/// describes the network, and checks that every network the description allows maps onto the chip.
pub fn prepare(config: &Config, base: &Path) -> Result<Prepared, Error> {
    let data: &DataConfig = config
        .data
        .as_ref()
        .ok_or_else(|| Error::Mismatch("not a dataset experiment: no [data] table".into()))?;
    let splits = data.load(base).map_err(Error::Data)?;
    let (classes, regression) = match &splits.train.targets {
        Targets::Classes { classes, .. } => (*classes, None),
        Targets::Regression { dims, values } => (
            *dims,
            Some(TargetScale::of(values, *dims, config.training.target_count)),
        ),
    };
    let scaling = Scaling::of(&splits.train);
    let dt = config.network.dt;
    let (steps, channels) = match &splits.train.inputs {
        Inputs::Spikes(s) => (s.steps, s.channels),
        Inputs::Features(f) => (data.encoder.steps(), data.encoder.channels(f.features)),
    };
    let encoding = Encoding {
        encoder: data.encoder.clone(),
        min: scaling.min.clone(),
        max: scaling.max.clone(),
        classes,
        regression,
        channels,
        steps,
    };
    let seed = data.seed;
    let train = encoding.samples(&splits.train, dt, seed ^ 0x7261_696E)?;
    let validation = encoding.samples(&splits.validation, dt, seed ^ 0x7661_6C69)?;
    let test = match &splits.test {
        Some(t) => Some(encoding.samples(t, dt, seed ^ 0x7465_7374)?),
        None => None,
    };
    let description = config.network.architecture();
    let init = match &config.network.init {
        Some(path) => Some(read_init(config, path, channels)?),
        None => None,
    };
    let declared = if let Some((_, arch)) = &init {
        arch.clone()
    } else if description.is_empty() {
        let group = if encoding.regression.is_some() {
            DEFAULT_GROUP
        } else {
            1
        };
        default_architecture(channels, classes * group)?
    } else {
        description
            .to_architecture(channels)
            .map_err(|error| Error::Config { path: None, error })?
    };
    let architecture = match config.network.placement {
        crate::config::Placement::Declared => declared,
        crate::config::Placement::Connectivity => declared.placed_for_connectivity(),
    };
    encoding
        .readout(&architecture)
        .map_err(|e| Error::Mismatch(format!("network.readout: {e}")))?;
    let net = architecture.network(config.network.variant.into());
    dynap_config::check_mappable_with(&architecture, &net.params, config.training.fan_in)
        .map_err(Error::Unmappable)?;
    let profile = match &config.training.chip_profile {
        Some(path) => {
            let path = base.join(path);
            let profile = crate::calibration::read_profile(&path)?;
            // Every neuron must run where the profile measured: refused now, not after training.
            crate::calibration::on_chip(
                &net,
                &crate::calibration::places(&architecture.core_map()),
                &profile,
            )
            .map_err(|e| {
                Error::Mismatch(format!("training.chip_profile = {}: {e}", path.display()))
            })?;
            Some(profile)
        }
        None => None,
    };
    Ok(Prepared {
        architecture,
        train,
        validation,
        test,
        encoding,
        init: init.map(|(net, _)| net),
        profile,
    })
}

/// Makes `config` start from the network file `path` holding `net` (`network.init`): the file's
/// populations replace the configuration's, and its variant, `dt` and `iscale` become the
/// configuration's.
pub fn start_from(config: &mut Config, path: &Path, net: &Network) {
    let n = &mut config.network;
    n.init = Some(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    n.population.clear();
    n.connection.clear();
    n.readout = None;
    n.variant = net.variant.into();
    n.dt = net.dt;
    n.iscale = net.i_scale;
}

/// The network file of `network.init`: its network and architecture, checked against the
/// configuration (variant, `dt`, `iscale`) and the data (input channels).
fn read_init(
    config: &Config,
    path: &Path,
    channels: usize,
) -> Result<(Network, Architecture), Error> {
    let text = crate::files::read_text(path)?;
    let file = dynap_config::format::read_network(&text).map_err(|error| Error::Format {
        path: path.to_path_buf(),
        error,
    })?;
    let bad = |key: &str, reason: String| Error::Config {
        path: None,
        error: crate::config::ConfigError {
            key: key.to_string(),
            reason: format!("{reason} (network.init = {})", path.display()),
        },
    };
    let Some(arch) = file.architecture else {
        return Err(bad(
            "network.init",
            "the network file has no architecture (populations and connections); `dynap nir \
             import` and trained runs write one"
                .into(),
        ));
    };
    let net = file.network;
    let variant: Variant = config.network.variant.into();
    if net.variant != variant {
        return Err(bad(
            "network.variant",
            format!(
                "the network file is of the {} variant; set network.variant = \"{}\"",
                net.variant.name(),
                net.variant.name()
            ),
        ));
    }
    if net.dt != config.network.dt {
        return Err(bad(
            "network.dt",
            format!(
                "the network file's dt is {}; set network.dt = {}",
                net.dt, net.dt
            ),
        ));
    }
    if net.i_scale != config.network.iscale {
        return Err(bad(
            "network.iscale",
            format!(
                "the network file's iscale is {}; set network.iscale = {}",
                net.i_scale, net.i_scale
            ),
        ));
    }
    if arch.inputs() != channels {
        return Err(bad(
            "network.init",
            format!(
                "the network takes {} input channels, the encoded data has {channels}",
                arch.inputs()
            ),
        ));
    }
    Ok((net, arch))
}

/// One epoch of a seed's training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The mean training loss over its minibatches.
    pub loss: f64,
    /// The validation accuracy after it (a classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    /// The validation RMSE after it, the mean over the target dimensions (a regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_rmse: Option<f64>,
    /// The learning rate it trained with.
    pub learning_rate: f64,
    /// Training samples per second of it (training steps only).
    pub samples_per_second: f64,
    /// Whether it trained the quantized network (and its validation accuracy is the quantized
    /// network's).
    pub quantized: bool,
}

/// What a checkpoint of a dataset experiment keeps besides the trainer's state (`Checkpoint::extra`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Progressed {
    history: Vec<EpochRecord>,
    best_epoch: Option<usize>,
    /// The best epoch's [`evaluation::Outcome::score`].
    #[serde(alias = "best_accuracy")]
    best_score: f64,
    best_w_in: Vec<f64>,
    best_w_rec: Vec<f64>,
    /// The best epoch's currents, `Param::CURRENTS` order, one value per neuron (empty: none kept).
    #[serde(default)]
    best_currents: Vec<Vec<f64>>,
    /// The current epoch's loss sum and minibatch count so far.
    epoch_loss: f64,
    epoch_batches: usize,
    /// Training time of the current epoch so far (s).
    epoch_seconds: f64,
}

/// One seed's training.
#[derive(Clone, Debug)]
pub struct SeedFit {
    /// The seed.
    pub seed: u64,
    /// The network of the best epoch (on validation), nominal parameters.
    pub network: Network,
    /// That epoch.
    pub best_epoch: usize,
    /// Its validation [`evaluation::Outcome::score`]: the accuracy, or minus the RMSE.
    pub best_score: f64,
    /// Every epoch.
    pub history: Vec<EpochRecord>,
}

impl SeedFit {
    /// Training samples per second over the epochs.
    pub fn samples_per_second(&self) -> f64 {
        let h = &self.history;
        h.iter().map(|e| e.samples_per_second).sum::<f64>() / h.len().max(1) as f64
    }
}

/// The frozen-mismatch seed of redraw block `block` of a training seed.
fn noise_seed(seed: u64, block: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (block as u64).wrapping_add(0x5851_F42D_4C95_7F2D)
}

/// The learning rate of `epoch` of `epochs`.
fn learning_rate(config: &Config, epoch: usize) -> f64 {
    let lr = config.training.learning_rate;
    match config.training.lr_schedule {
        LrSchedule::Constant => lr,
        LrSchedule::Cosine => {
            let e = config.training.epochs.max(1) as f64;
            let f = 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / e).cos());
            lr * (0.01 + 0.99 * f)
        }
    }
}

/// The order of the training samples in `epoch` (a shuffle drawn from seed and epoch).
fn order(samples: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut order: Vec<usize> = (0..samples).collect();
    for i in (1..samples).rev() {
        order.swap(i, rng.r#gen_range(0..=i));
    }
    order
}

/// The weights `(w_in, w_rec)` of `net` quantized to the chip's 4-bit format per core (the default
/// quantizer, snapped to the bias generator), decoded.
pub(crate) fn quantize_weights(
    net: &Network,
    core_map: &[usize],
) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let q = dynap_quant::quantize(
        net.w_in.as_ref(),
        Some(&net.w_rec),
        core_map,
        net.i_scale,
        &dynap_quant::Options::default(),
    )?;
    let (w_in, w_rec) = q.weights.decode();
    Ok((
        w_in.map(|m| m.as_slice().to_vec()).unwrap_or_default(),
        w_rec.as_slice().to_vec(),
    ))
}

/// Keeps at most `k` non-zero weights into each neuron (column `j` of `w_in` `[n_in, n]` and `w_rec`
/// `[n, n]` together): the largest by magnitude, a tie to the lower row (inputs first); zeroes the
/// rest. Returns whether anything changed.
pub fn limit_fan_in(w_in: &mut [f64], w_rec: &mut [f64], n: usize, k: usize) -> bool {
    let n_in = w_in.len() / n.max(1);
    let mut kept: Vec<(f64, usize)> = Vec::new();
    let mut changed = false;
    for j in 0..n {
        kept.clear();
        kept.extend(
            (0..n_in)
                .map(|i| (w_in[i * n + j].abs(), i))
                .chain((0..n).map(|i| (w_rec[i * n + j].abs(), n_in + i)))
                .filter(|(w, _)| *w != 0.0),
        );
        if kept.len() <= k {
            continue;
        }
        // The k-th largest, then every weight below it (or equal to it with a higher row) goes.
        kept.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, r) in &kept[k..] {
            if r < n_in {
                w_in[r * n + j] = 0.0;
            } else {
                w_rec[(r - n_in) * n + j] = 0.0;
            }
        }
        changed = true;
    }
    changed
}

/// Every current of `net` at the value the chip's bias generator makes nearest to it (what mapping
/// configures and reading the configuration back gives).
pub fn snap_currents(net: &mut Network) {
    let generator = dynap_model::BiasGenerator::dynapse2();
    for &p in dynap_model::Param::CURRENTS.iter() {
        for v in net.params.get_mut(p).iter_mut() {
            if let Some(s) = dynap_config::snap_current(&generator, p, *v) {
                *v = s;
            }
        }
    }
}

/// The fan-in a training keeps after iteration `it` (of `per_epoch` per epoch): from `full` (every
/// allowed connection) down to `k` over `prune_epochs` epochs, cubically (fast at first).
fn fan_in_at(k: usize, full: usize, prune_epochs: usize, it: usize, per_epoch: usize) -> usize {
    let total = prune_epochs * per_epoch;
    if it >= total || full <= k {
        return k;
    }
    let left = 1.0 - it as f64 / total as f64;
    k + ((full - k) as f64 * left * left * left).round() as usize
}

/// A training step through the chip's 4-bit weights (straight through): the forward pass and the
/// gradient at the weights the chip will use (`core_map`'s cores, the default quantizer), the
/// step's change added to the float weights.
pub(crate) fn quantized_step(
    trainer: &mut Trainer<f32>,
    core_map: &[usize],
    input: &SpikeInput<f32>,
    loss: &Loss,
    factors: Option<&WeightFactors>,
) -> Result<f64, Error> {
    let (f_in, f_rec) = trainer.weights();
    let (q_in, q_rec) = quantize_weights(&trainer.network(), core_map)?;
    trainer.set_weights(&q_in, &q_rec)?;
    let value = trainer.step(input, loss, factors)?;
    let (a_in, a_rec) = trainer.weights();
    let moved = |f: &[f64], a: &[f64], q: &[f64]| -> Vec<f64> {
        f.iter()
            .zip(a)
            .zip(q)
            .map(|((f, a), q)| f + (a - q))
            .collect()
    };
    trainer.set_weights(&moved(&f_in, &a_in, &q_in), &moved(&f_rec, &a_rec, &q_rec))?;
    Ok(value)
}

/// The samples `chunk` (indices into `data`) as one minibatch of held input, and its loss.
fn minibatch(
    config: &Config,
    readout: &evaluation::Readout,
    data: &Samples,
    chunk: &[usize],
) -> Result<(SpikeInput<f32>, Loss), Error> {
    let mut x = Vec::with_capacity(chunk.len() * data.steps * data.channels);
    for &i in chunk {
        x.extend_from_slice(data.sample(i));
    }
    let input = SpikeInput::new(x, chunk.len(), data.steps, data.channels)?;
    let activity = config.training.activity.as_ref().map(|a| Activity {
        min: a.min,
        max: a.max,
        weight: a.weight,
    });
    let loss = match (config.training.loss, &data.truth, &readout.scale) {
        (LossKind::CountCrossEntropy, Truth::Classes(labels), None) => Loss::CountCrossEntropy {
            class: chunk.iter().map(|&i| labels[i]).collect(),
            readout: readout.neurons.clone(),
            classes: readout.classes,
            temperature: config.training.temperature,
            activity,
        },
        (LossKind::CountRegression, Truth::Values { dims, values }, Some(scale)) => {
            Loss::CountRegression {
                target: chunk
                    .iter()
                    .flat_map(|&i| (0..*dims).map(move |d| scale.fraction(d, values[i * dims + d])))
                    .collect(),
                readout: readout.neurons.clone(),
                dims: *dims,
                full: scale.count,
                activity,
            }
        }
        (kind, truth, _) => {
            return Err(Error::Config {
                path: None,
                error: crate::config::ConfigError {
                    key: "training.loss".into(),
                    reason: format!(
                        "{} does not train on {}: count_cross_entropy trains on classes, count_regression on regression targets",
                        kind.name(),
                        match truth {
                            Truth::Classes(_) => "class labels",
                            Truth::Values { .. } => "regression targets",
                        }
                    ),
                },
            });
        }
    };
    Ok((input, loss))
}

/// The trainer of a seed: the initial network (returned too) with its masks, surrogate and threads.
fn trainer_for(
    config: &Config,
    prep: &Prepared,
    seed: u64,
    threads: usize,
) -> Result<(Trainer<f32>, Network), Error> {
    let arch = &prep.architecture;
    let variant: Variant = config.network.variant.into();
    let mut base = match &prep.init {
        Some(net) => net.clone(),
        None => {
            let mut base = initial_network_scaled(
                arch,
                variant,
                seed,
                &config.network.architecture().init_gains(),
            );
            base.i_scale = config.network.iscale;
            base.dt = config.network.dt;
            base
        }
    };
    if config.training.bias_codes {
        snap_currents(&mut base);
    }
    // Trained currents: one value per core, as the chip has one bias set per core; those of
    // `training.currents` in every population, those of a population's `train` in its cores only.
    let config_error = |error| Error::Config { path: None, error };
    let everywhere = config.training.trained_currents().map_err(config_error)?;
    let mut own: Vec<Vec<dynap_model::Param>> = Vec::new();
    for (k, p) in config.network.population.iter().enumerate() {
        own.push(p.trained_currents().map_err(|(_, reason)| {
            config_error(crate::config::ConfigError {
                key: format!("network.population[{k}].train"),
                reason,
            })
        })?);
    }
    let mut currents = everywhere.clone();
    for p in own.iter().flatten() {
        if !currents.contains(p) {
            currents.push(*p);
        }
    }
    let core_map = arch.core_map();
    let cores = arch.cores();
    // flags[k * cores + core]: whether the k-th trained current moves on that core (the
    // architecture's populations are the configuration's, in order).
    let mut flags = vec![false; currents.len() * cores];
    // (A network without [[network.population]] tables, the default one, has no `train` lists.)
    for (i, range) in arch.ranges().into_iter().enumerate() {
        let own = own.get(i).map_or(&[][..], Vec::as_slice);
        for (k, p) in currents.iter().enumerate() {
            if everywhere.contains(p) || own.contains(p) {
                for j in range.clone() {
                    flags[k * cores + core_map[j]] = true;
                }
            }
        }
    }
    let trained_list = currents.clone();
    let training = if currents.is_empty() {
        CurrentTraining::none()
    } else {
        CurrentTraining {
            currents,
            sharing: Sharing::PerCore { core_map },
        }
    };
    let mut trainer = Trainer::<f32>::new(base.clone(), training, config.training.learning_rate)?
        .with_threads(threads)
        .with_spike_function(crate::experiment::spike_function(config))
        .with_masks(arch.masks())?;
    if flags.contains(&false) {
        trainer = trainer.with_current_flags(flags)?;
    }
    if config.training.bias_codes {
        let generator = dynap_model::BiasGenerator::dynapse2();
        let bounds: Vec<(f64, f64)> = trained_list
            .iter()
            .map(|&p| dynap_config::current_range(&generator, p).unwrap_or((1e-13, 1e-5)))
            .collect();
        trainer = trainer.with_current_bounds(&bounds)?;
    }
    Ok((trainer, base))
}

/// Training samples per second of a dataset experiment's first seed: the median over `blocks` timed
/// blocks of `steps` minibatch steps each (forward, loss, backward, Adam; no noise, no validation), on
/// `threads` threads (0: one per core). What `dynap bench` compares with Rockpool.
pub fn training_rate(
    config: &Config,
    prep: &Prepared,
    steps: usize,
    blocks: usize,
    threads: usize,
) -> Result<f64, Error> {
    let seed = config.training.seeds.first().copied().unwrap_or(0);
    let (mut trainer, _) = trainer_for(config, prep, seed, threads)?;
    let data = &prep.train;
    let batch = config.training.batch_size.clamp(1, data.samples.max(1));
    let shuffled = order(data.samples, seed, 0);
    let batches = (data.samples / batch).max(1);
    let mut rates = Vec::new();
    let mut k = 0usize;
    for _ in 0..blocks.max(1) {
        let start = Instant::now();
        for _ in 0..steps.max(1) {
            let chunk = &shuffled[(k % batches) * batch..((k % batches) + 1) * batch];
            k += 1;
            let (input, loss) = minibatch(config, &prep.readout(), data, chunk)?;
            trainer.step(&input, &loss, None)?;
        }
        rates.push((steps.max(1) * batch) as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// Trains one seed (see the module documentation). `threads` run each minibatch's elements; `stage`
/// advances by one per training sample.
pub fn train_seed(
    config: &Config,
    prep: &Prepared,
    seed: u64,
    checkpoint: Option<&Path>,
    resume: bool,
    threads: usize,
    stage: &Stage,
) -> Result<SeedFit, Error> {
    train_seed_until(config, prep, seed, checkpoint, resume, threads, stage, None)
}

/// [`train_seed`], interrupted (a checkpoint saved, nothing returned) after iteration `stop_at`.
#[allow(clippy::too_many_arguments)]
fn train_seed_until(
    config: &Config,
    prep: &Prepared,
    seed: u64,
    checkpoint: Option<&Path>,
    resume: bool,
    threads: usize,
    stage: &Stage,
    stop_at: Option<usize>,
) -> Result<SeedFit, Error> {
    let arch = &prep.architecture;
    let (mut trainer, base) = trainer_for(config, prep, seed, threads)?;
    let readout = prep.readout();
    let data = &prep.train;
    let batch = config.training.batch_size.clamp(1, data.samples.max(1));
    let per_epoch = data.samples.div_ceil(batch);
    let epochs = config.training.epochs;
    let mut losses: Vec<f64> = Vec::new();
    let mut p = Progressed::default();
    let mut start = 0usize;
    let run = "dataset";
    if let (Some(path), true) = (checkpoint, resume)
        && path.exists()
    {
        let refuse = |error| Error::Checkpoint {
            path: path.to_owned(),
            error,
        };
        let c = checkpoint::decode(&files::read_bytes(path)?).map_err(refuse)?;
        checkpoint::check_belongs(&c, run, seed, config).map_err(refuse)?;
        trainer.restore(c.state)?;
        losses = c.losses;
        start = c.iteration;
        p = serde_json::from_str(&c.extra).map_err(|e| {
            refuse(checkpoint::CheckpointError::Payload(format!(
                "its dataset progress does not read: {e}"
            )))
        })?;
        stage.inc(
            ((start / per_epoch) * data.samples + (start % per_epoch) * batch)
                .min(per_epoch * epochs * data.samples) as u64,
        );
        tracing::info!(
            "seed {seed}: resumed at iteration {start} from {}",
            path.display()
        );
    }
    let save =
        |trainer: &Trainer<f32>, it: usize, losses: &[f64], p: &Progressed| -> Result<(), Error> {
            let Some(path) = checkpoint else {
                return Ok(());
            };
            let c = Checkpoint {
                run: run.into(),
                seed,
                iteration: it,
                state: trainer.state(),
                losses: losses.to_vec(),
                config: config.to_toml(),
                extra: serde_json::to_string(p).expect("plain data serialises"),
            };
            files::write_atomic(path, &checkpoint::encode(&c))
        };
    let q_start = epochs - config.training.quantized_epochs.min(epochs);
    let core_map = arch.core_map();
    let places = crate::calibration::places(&core_map);
    // The fan-in limit kept by training: the most connections the architecture allows into a neuron,
    // tightened to the limit.
    let masks = arch.masks();
    let n = arch.neurons();
    let full = (0..n)
        .map(|j| {
            (0..arch.inputs())
                .filter(|&i| masks.w_in[i * n + j])
                .count()
                + (0..n).filter(|&i| masks.w_rec[i * n + j]).count()
        })
        .max()
        .unwrap_or(0);
    let limit = |trainer: &mut Trainer<f32>, it: usize| -> Result<(), Error> {
        let Some(k) = config.training.fan_in else {
            return Ok(());
        };
        let k = fan_in_at(k, full, config.training.prune_epochs, it, per_epoch);
        let (mut w_in, mut w_rec) = trainer.weights();
        if limit_fan_in(&mut w_in, &mut w_rec, n, k) {
            trainer.set_weights(&w_in, &w_rec)?;
        }
        Ok(())
    };
    limit(&mut trainer, start)?;
    // The first epoch that ends within the fan-in limit.
    let settled = if config.training.fan_in.is_some() {
        config.training.prune_epochs.saturating_sub(1)
    } else {
        0
    };
    let mut block = usize::MAX;
    let noise = &config.noise;
    let total = per_epoch * epochs;
    let mut it = start;
    while it < total {
        let epoch = it / per_epoch;
        let quantized = epoch >= q_start;
        if config.training.patience > 0
            && p.best_epoch.is_some_and(|b| {
                let since = if quantized { b.max(q_start) } else { b }.max(settled);
                epoch >= since + 1 + config.training.patience
            })
        {
            if !quantized && q_start < epochs {
                tracing::info!(
                    "seed {seed}: no better validation accuracy for {} epochs, on to the quantized training at epoch {}",
                    config.training.patience,
                    q_start + 1
                );
                it = q_start * per_epoch;
                continue;
            }
            tracing::info!(
                "seed {seed}: no better validation accuracy for {} epochs, stopping after epoch {}",
                config.training.patience,
                epoch.saturating_sub(1)
            );
            break;
        }
        let lr = learning_rate(config, epoch);
        trainer.set_learning_rate(lr);
        let shuffled = order(data.samples, seed, epoch);
        let epoch_start = Instant::now();
        for b in (it % per_epoch)..per_epoch {
            if let Some(profile) = &prep.profile {
                // The profiled chip, with what it does not measure drawn afresh every block.
                if it / noise.redraw_every.max(1) != block {
                    block = it / noise.redraw_every.max(1);
                    let chip = crate::calibration::on_chip_with(
                        &base,
                        &places,
                        profile,
                        Some((noise.frozen_percent, noise_seed(seed, block))),
                    )?;
                    trainer.simulate_on(Some(&chip))?;
                }
            } else if noise.frozen_percent > 0.0 && it / noise.redraw_every.max(1) != block {
                block = it / noise.redraw_every.max(1);
                let chip = dynap_mismatch::Mismatch::new(noise.frozen_percent)
                    .frozen(&base, noise_seed(seed, block));
                trainer.simulate_on(Some(&chip))?;
            }
            let chunk = &shuffled[b * batch..((b + 1) * batch).min(data.samples)];
            let (input, loss) = minibatch(config, &readout, data, chunk)?;
            let factors = if noise.dynamic_percent > 0.0 {
                let (_, f_in, f_rec) = dynap_mismatch::Mismatch::new(noise.dynamic_percent)
                    .dynamic(&trainer.simulated_network(), noise_seed(seed, it) ^ 1);
                Some(WeightFactors {
                    w_in: f_in.unwrap_or_default(),
                    w_rec: f_rec,
                })
            } else {
                None
            };
            let value = if quantized {
                quantized_step(&mut trainer, &core_map, &input, &loss, factors.as_ref())?
            } else {
                trainer.step(&input, &loss, factors.as_ref())?
            };
            // The fan-in the schedule allows after this step.
            limit(&mut trainer, it + 1)?;
            losses.push(value);
            p.epoch_loss += value;
            p.epoch_batches += 1;
            stage.inc(chunk.len() as u64);
            // The last epoch's validation figure and the best so far beside the running loss.
            let validation = match (p.history.last(), p.best_epoch) {
                (Some(last), Some(_)) => match last.validation_rmse {
                    Some(rmse) => {
                        format!(", validation RMSE {rmse:.4} (best {:.4})", -p.best_score)
                    }
                    None => format!(
                        ", validation {:.1} % (best {:.1} %)",
                        last.validation_accuracy.unwrap_or(0.0) * 100.0,
                        p.best_score * 100.0
                    ),
                },
                _ => String::new(),
            };
            stage.set_message(format!(
                "epoch {}/{epochs}, loss {value:.3}{validation}",
                epoch + 1
            ));
            it += 1;
            let every = config.training.checkpoint_every;
            if (every > 0 && it.is_multiple_of(every) || stop_at == Some(it)) && b + 1 < per_epoch {
                p.epoch_seconds += epoch_start.elapsed().as_secs_f64();
                save(&trainer, it, &losses, &p)?;
            }
            if stop_at == Some(it) && b + 1 < per_epoch {
                return Err(Error::Mismatch(format!("interrupted after iteration {it}")));
            }
        }
        let seconds = p.epoch_seconds + epoch_start.elapsed().as_secs_f64();
        // The epoch's end: validation on the nominal network (its currents the bias generator's).
        let mut net = trainer.network();
        if config.training.bias_codes {
            snap_currents(&mut net);
        }
        let judged = if quantized {
            let mut q = net.clone();
            let (q_in, q_rec) = quantize_weights(&net, &core_map)?;
            q.w_in = dynap_model::Matrix::from_vec(arch.inputs(), q.neurons(), q_in);
            q.w_rec = dynap_model::Matrix::from_vec(q.neurons(), q.neurons(), q_rec)
                .ok_or_else(|| Error::Mismatch("the quantized weights have another size".into()))?;
            q
        } else {
            net.clone()
        };
        // Trained for a chip: judged on that chip.
        let judged = match &prep.profile {
            Some(profile) => crate::calibration::on_chip(&judged, &places, profile)?,
            None => judged,
        };
        let predictions = evaluation::predict(&judged, &prep.validation, &readout, threads, None)?;
        let outcome =
            evaluation::Outcome::of(&predictions, &prep.validation.truth, prep.encoding.classes);
        let score = outcome.score();
        let (accuracy, rmse) = match &outcome {
            evaluation::Outcome::Classes { accuracy, .. } => (Some(*accuracy), None),
            evaluation::Outcome::Values { .. } => (None, Some(outcome.metric())),
        };
        p.history.push(EpochRecord {
            epoch,
            loss: p.epoch_loss / p.epoch_batches.max(1) as f64,
            validation_accuracy: accuracy,
            validation_rmse: rmse,
            learning_rate: lr,
            samples_per_second: data.samples as f64 / seconds.max(1e-9),
            quantized,
        });
        tracing::debug!(
            "seed {seed}, epoch {}: loss {:.4}, validation {}",
            epoch + 1,
            p.epoch_loss / p.epoch_batches.max(1) as f64,
            outcome.summary()
        );
        // The quantized training's epochs compete among themselves (their accuracy is the quantized
        // network's).
        // Only epochs that end within the fan-in limit compete (the pruning epochs before them end
        // with more connections than the chip has).
        if epoch >= settled
            && (p.best_epoch.is_none_or(|b| b < settled)
                || score > p.best_score
                || (quantized && p.best_epoch.is_some_and(|b| b < q_start)))
        {
            p.best_epoch = Some(epoch);
            p.best_score = score;
            p.best_w_in = net
                .w_in
                .as_ref()
                .map(|m| m.as_slice().to_vec())
                .unwrap_or_default();
            p.best_w_rec = net.w_rec.as_slice().to_vec();
            p.best_currents = dynap_model::Param::CURRENTS
                .iter()
                .map(|&c| net.params.get(c).to_vec())
                .collect();
        }
        p.epoch_loss = 0.0;
        p.epoch_batches = 0;
        p.epoch_seconds = 0.0;
        save(&trainer, it, &losses, &p)?;
        if stop_at == Some(it) {
            return Err(Error::Mismatch(format!("interrupted after iteration {it}")));
        }
    }
    let mut best = trainer.network();
    if config.training.bias_codes {
        snap_currents(&mut best);
    }
    if p.best_epoch.is_some() {
        let n = best.neurons();
        // The best epoch's currents too (a checkpoint of an older build kept none).
        if p.best_currents.len() == dynap_model::Param::CURRENTS.len() {
            for (&c, v) in dynap_model::Param::CURRENTS.iter().zip(&p.best_currents) {
                if v.len() == n {
                    best.params.get_mut(c).copy_from_slice(v);
                }
            }
        }
        best.w_in = dynap_model::Matrix::from_vec(arch.inputs(), n, p.best_w_in.clone());
        best.w_rec =
            dynap_model::Matrix::from_vec(n, n, p.best_w_rec.clone()).ok_or_else(|| {
                Error::Mismatch("the best network's weights have another size".into())
            })?;
    }
    Ok(SeedFit {
        seed,
        network: best,
        best_epoch: p.best_epoch.unwrap_or(0),
        best_score: p.best_score,
        history: p.history,
    })
}

/// A dataset experiment's results.
#[derive(Clone, Debug)]
pub struct FitRun {
    /// What it trained from.
    pub prepared: Prepared,
    /// One training per seed.
    pub seeds: Vec<SeedFit>,
    /// The index in `seeds` of the best on validation.
    pub best: usize,
    /// Every seed's judgement on the validation split.
    pub validation: Judged,
    /// And on the test split, if any.
    pub test: Option<Judged>,
}

/// Runs a dataset experiment: prepares, trains every seed (in parallel, the cores shared among them),
/// judges them. `config_path` is the configuration file (its folder resolves data paths), `out` the
/// run folder, where `config.toml` and checkpoints are written as training goes.
pub fn train(
    config: &Config,
    config_dir: &Path,
    out: &Path,
    resume: bool,
    options: &evaluation::JudgeOptions,
    progress: &Progress,
) -> Result<FitRun, Error> {
    let spinner = progress.spinner("loading and encoding the data");
    let prep = prepare(config, config_dir)?;
    spinner.finish();
    tracing::info!(
        "{} train, {} validation{} samples, {} channels x {} steps, {} {}; {} neurons in {} populations ({} cores)",
        prep.train.samples,
        prep.validation.samples,
        prep.test
            .as_ref()
            .map_or(String::new(), |t| format!(", {} test", t.samples)),
        prep.encoding.channels,
        prep.encoding.steps,
        prep.encoding.classes,
        if prep.encoding.regression.is_some() {
            "target dimensions"
        } else {
            "classes"
        },
        prep.architecture.neurons(),
        prep.architecture.populations().len(),
        prep.architecture.cores()
    );
    files::create_dir(out)?;
    files::write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
    let seeds = &config.training.seeds;
    let stage = progress.stage(
        "training",
        (seeds.len() * config.training.epochs * prep.train.samples) as u64,
        "samples",
    );
    let workers = dynap_model::cores().min(seeds.len().max(1));
    let threads = (dynap_model::cores() / workers).max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SeedFit, Error>>>> =
        Mutex::new((0..seeds.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(k) else { break };
                    let dir = out.join(format!("seed{seed}"));
                    let r = files::create_dir(&dir).and_then(|()| {
                        train_seed(
                            config,
                            &prep,
                            seed,
                            Some(&dir.join("checkpoint")),
                            resume,
                            threads,
                            &stage,
                        )
                    });
                    if let Ok(mut slots) = results.lock() {
                        slots[k] = Some(r);
                    }
                }
            });
        }
    });
    stage.finish();
    let fits: Vec<SeedFit> = results
        .into_inner()
        .map_err(|_| Error::Mismatch("a training thread failed".into()))?
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Mismatch("a training did not run".into()))))
        .collect::<Result<_, _>>()?;
    let best = (0..fits.len())
        .max_by(|&a, &b| {
            fits[a]
                .best_score
                .total_cmp(&fits[b].best_score)
                .then(b.cmp(&a))
        })
        .unwrap_or(0);
    let networks: Vec<(u64, Network)> = fits.iter().map(|f| (f.seed, f.network.clone())).collect();
    let validation = evaluation::judge(
        &networks,
        &prep.readout(),
        Some(&prep.architecture.core_map()),
        &prep.validation,
        prep.encoding.classes,
        options,
        progress,
        "validation",
    )?;
    let test = match &prep.test {
        Some(t) => Some(evaluation::judge(
            &networks,
            &prep.readout(),
            Some(&prep.architecture.core_map()),
            t,
            prep.encoding.classes,
            options,
            progress,
            "test",
        )?),
        None => None,
    };
    Ok(FitRun {
        prepared: prep,
        seeds: fits,
        best,
        validation,
        test,
    })
}

impl FitRun {
    /// `metrics.json` of a dataset run: `{"kind": "dataset", "classes", "samples": {split: n},
    /// "splits": {split: {stage: {"accuracy", "per_seed", "confusion"}}}, "best_seed", "seeds": [{seed,
    /// best_epoch, validation_accuracy, samples_per_second}], "samples_per_second", "history": {seed:
    /// [epochs]}}`; a regression has `"targets": "regression"`, `dims` for `classes`, its stages'
    /// `rmse` and `r2`, and `validation_rmse` for `validation_accuracy`.
    pub fn metrics_json(&self) -> Value {
        let p = &self.prepared;
        let mut splits = serde_json::Map::new();
        splits.insert("validation".into(), self.validation.to_json());
        if let Some(t) = &self.test {
            splits.insert("test".into(), t.to_json());
        }
        let rate = self
            .seeds
            .iter()
            .map(SeedFit::samples_per_second)
            .sum::<f64>()
            / self.seeds.len().max(1) as f64;
        let regression = p.encoding.regression.is_some();
        let (count, figure) = if regression {
            ("dims", "validation_rmse")
        } else {
            ("classes", "validation_accuracy")
        };
        let best = |s: &SeedFit| {
            if regression {
                -s.best_score
            } else {
                s.best_score
            }
        };
        json!({
            "kind": "dataset",
            "targets": if regression { "regression" } else { "classes" },
            count: p.encoding.classes,
            "samples": {
                "train": p.train.samples,
                "validation": p.validation.samples,
                "test": p.test.as_ref().map(|t| t.samples),
            },
            "splits": Value::Object(splits),
            "best_seed": self.seeds.get(self.best).map(|s| s.seed),
            "seeds": self.seeds.iter().map(|s| json!({
                "seed": s.seed,
                "best_epoch": s.best_epoch,
                figure: best(s),
                "samples_per_second": s.samples_per_second(),
            })).collect::<Vec<_>>(),
            "samples_per_second": rate,
            "history": Value::Object(self.seeds.iter().map(|s| (
                s.seed.to_string(),
                serde_json::to_value(&s.history).unwrap_or(Value::Null),
            )).collect()),
        })
    }

    /// Writes the run folder: `encoding.json`, `seed<k>/network.json` (with its architecture),
    /// `network.json` (the best seed's), `metrics.json`, `history.csv`, and the plots with their data:
    /// `loss.png`, `accuracy.png`, `confusion.png` (validation, `device` stage of the best seed when it
    /// ran, else `float`), `raster.png` (the best network's output on the first validation samples).
    pub fn write(&self, out: &Path) -> Result<(), Error> {
        let p = &self.prepared;
        files::write_atomic(
            &out.join("encoding.json"),
            serde_json::to_string_pretty(&p.encoding)
                .expect("plain data serialises")
                .as_bytes(),
        )?;
        for s in &self.seeds {
            let mut file = dynap_config::format::NetworkFile::new(s.network.clone());
            file.core_map = Some(p.architecture.core_map());
            file.architecture = Some(p.architecture.clone());
            let text = dynap_config::format::write_network(&file);
            files::write_atomic(
                &out.join(format!("seed{}", s.seed)).join("network.json"),
                text.as_bytes(),
            )?;
            if Some(s.seed) == self.seeds.get(self.best).map(|b| b.seed) {
                files::write_atomic(&out.join("network.json"), text.as_bytes())?;
            }
        }
        files::write_atomic(
            &out.join("metrics.json"),
            serde_json::to_string_pretty(&self.metrics_json())
                .expect("plain data serialises")
                .as_bytes(),
        )?;
        let regression = p.encoding.regression.is_some();
        let mut csv = format!(
            "seed,epoch,loss,{},learning_rate,samples_per_second,quantized\n",
            if regression {
                "validation_rmse"
            } else {
                "validation_accuracy"
            }
        );
        let validation = |e: &EpochRecord| {
            e.validation_rmse
                .or(e.validation_accuracy)
                .unwrap_or(f64::NAN)
        };
        for s in &self.seeds {
            for e in &s.history {
                csv.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    s.seed,
                    e.epoch,
                    e.loss,
                    validation(e),
                    e.learning_rate,
                    e.samples_per_second,
                    e.quantized
                ));
            }
        }
        files::write_atomic(&out.join("history.csv"), csv.as_bytes())?;
        let series = |f: &dyn Fn(&EpochRecord) -> f64| -> Vec<crate::plot::Series> {
            self.seeds
                .iter()
                .map(|s| crate::plot::Series {
                    name: format!("seed {}", s.seed),
                    points: s
                        .history
                        .iter()
                        .map(|e| ((e.epoch + 1) as f64, f(e)))
                        .collect(),
                })
                .collect()
        };
        let path = out.join("loss.png");
        crate::plot::curves(
            &path,
            &crate::plot::Labels {
                title: "training loss",
                x: "epoch",
                y: "mean loss over the epoch",
            },
            crate::plot::YScale::Auto,
            &series(&|e| e.loss),
        )
        .map_err(files::write_error(&path))?;
        let (name, figure) = if regression {
            ("rmse.png", "validation RMSE")
        } else {
            ("accuracy.png", "validation accuracy")
        };
        let path = out.join(name);
        let quantized = self
            .seeds
            .iter()
            .any(|f| f.history.iter().any(|e| e.quantized));
        crate::plot::curves(
            &path,
            &crate::plot::Labels {
                title: &if quantized {
                    format!("{figure} (the quantized network in quantized epochs)")
                } else {
                    figure.to_string()
                },
                x: "epoch",
                y: if regression {
                    "RMSE (mean over the target dimensions)"
                } else {
                    "accuracy"
                },
            },
            crate::plot::YScale::Linear,
            &series(&validation),
        )
        .map_err(files::write_error(&path))?;
        if let Some((stage, o)) = self.validation.last_stage(self.best) {
            outcome_plot(
                out,
                &format!("validation, {stage} stage"),
                o,
                &p.validation.truth,
            )?;
        }
        if let Some(best) = self.seeds.get(self.best) {
            let shown = p.validation.samples.min(6);
            let per = p.validation.steps * p.validation.channels;
            let sub = Samples {
                spikes: p.validation.spikes[..shown * per].to_vec(),
                samples: shown,
                steps: p.validation.steps,
                channels: p.validation.channels,
                truth: p.validation.truth.slice(0..shown),
            };
            let all = evaluation::output_spikes(&best.network, &sub, 1)?;
            // The readout population only: class c's group from the bottom up.
            let readout = p.readout();
            let n = best.network.neurons();
            let spikes: Vec<f64> = all
                .chunks(n)
                .flat_map(|step| step[readout.neurons.clone()].iter().map(|&c| f64::from(c)))
                .collect();
            let captions: Vec<String> = (0..shown)
                .map(|i| format!("sample {i}, {}", sub.truth.describe(i)))
                .collect();
            let group = readout.neurons.len() / readout.classes.max(1);
            let path = out.join("raster.png");
            crate::plot::raster_captioned(
                &path,
                &format!(
                    "seed {}: readout spikes, validation ({} c: neurons {group}c to {group}c + {})",
                    best.seed,
                    if regression { "dimension" } else { "class" },
                    group.saturating_sub(1)
                ),
                &spikes,
                [shown, p.validation.steps, readout.neurons.len()],
                best.network.dt,
                &captions,
            )
            .map_err(files::write_error(&path))?;
        }
        Ok(())
    }

    /// The results for people: the best epoch of every seed, and the accuracy of every stage per
    /// split.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for f in &self.seeds {
            let best = if self.prepared.encoding.regression.is_some() {
                format!("RMSE {:.4}", -f.best_score)
            } else {
                format!("accuracy {:.2} %", f.best_score * 100.0)
            };
            s.push_str(&format!(
                "seed {}: best validation {best} at epoch {} of {}, {:.0} samples/s\n",
                f.seed,
                f.best_epoch + 1,
                f.history.len(),
                f.samples_per_second()
            ));
        }
        s.push_str(&self.validation.table("validation"));
        if let Some(t) = &self.test {
            s.push_str(&t.table("test"));
        }
        s
    }
}

/// Plots a stage's outcome `o` on samples of `truth` in the folder `out`, titled `what`: a classification's
/// confusion matrix (`confusion.png`, without the last column, the samples without an output spike,
/// which the title counts), a regression's predictions against the targets (`prediction.png`).
pub(crate) fn outcome_plot(
    out: &Path,
    what: &str,
    o: &evaluation::Outcome,
    truth: &Truth,
) -> Result<(), Error> {
    match (o, truth) {
        (evaluation::Outcome::Classes { confusion, .. }, _) => {
            let classes = confusion.len();
            let path = out.join("confusion.png");
            let labels: Vec<String> = (0..classes).map(|c| format!("class {c}")).collect();
            let silent: u64 = confusion.iter().filter_map(|r| r.get(classes)).sum();
            let matrix: Vec<Vec<u64>> = confusion
                .iter()
                .map(|r| r[..classes.min(r.len())].to_vec())
                .collect();
            crate::plot::confusion(
                &path,
                &format!("{what}: true (rows) against predicted; {silent} silent"),
                &matrix,
                &labels,
            )
            .map_err(files::write_error(&path))
        }
        (evaluation::Outcome::Values { predicted, .. }, Truth::Values { dims, values }) => {
            let path = out.join("prediction.png");
            let series: Vec<crate::plot::Series> = (0..*dims)
                .map(|d| crate::plot::Series {
                    name: format!("dimension {d}"),
                    points: values
                        .iter()
                        .skip(d)
                        .step_by(*dims)
                        .zip(predicted.iter().skip(d).step_by(*dims))
                        .map(|(&y, &p)| (y, p))
                        .collect(),
                })
                .collect();
            crate::plot::scatter(
                &path,
                &crate::plot::Labels {
                    title: &format!("{what}: {}", o.summary()),
                    x: "target (true value)",
                    y: "prediction",
                },
                &series,
            )
            .map_err(files::write_error(&path))
        }
        (evaluation::Outcome::Values { .. }, Truth::Classes(_)) => Ok(()),
    }
}

/// Makes a dataset experiment's data paths absolute, relative to `dir` (its configuration's folder,
/// [`config_dir`]): the run folder's configuration then names its data wherever it is read from, so
/// that the folder is self-contained for `dynap eval`.
pub fn resolve_data_paths(config: &mut crate::config::Config, dir: &Path) {
    for p in [
        config.network.init.as_mut(),
        config.training.chip_profile.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        let joined = dir.join(&*p);
        *p = joined.canonicalize().unwrap_or(joined);
    }
    if let Some(d) = config.data.as_mut() {
        for p in [&mut d.train, &mut d.validation, &mut d.test]
            .into_iter()
            .flatten()
        {
            let joined = dir.join(&*p);
            *p = joined.canonicalize().unwrap_or(joined);
        }
    }
}

/// Where a configuration file's relative data paths are resolved: its folder.
pub fn config_dir(config_path: Option<&Path>) -> PathBuf {
    config_path
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynap_model::Param;

    /// A small Yin-Yang experiment: 100 training samples in minibatches of 20 (5 per epoch), three
    /// populations (one recurrent), frozen and dynamic noise, the last epoch quantized.
    fn small() -> Config {
        Config::from_toml(
            r#"
[data]
generator = "yinyang"
train_samples = 100
validation_samples = 30
test_samples = 0
[network]
variant = "chip"
readout = "out"
[[network.population]]
name = "a"
size = 8
recurrent = true
params = { Ispkthr = 1e-9 }
[[network.population]]
name = "b"
size = 6
params = { Ispkthr = 1e-9 }
[[network.population]]
name = "out"
size = 6
params = { Ispkthr = 1e-9 }
[[network.connection]]
from = "input"
to = "a"
init_gain = 3.0
[[network.connection]]
from = "a"
to = "b"
[[network.connection]]
from = "b"
to = "out"
[training]
epochs = 3
batch_size = 20
checkpoint_every = 2
quantized_epochs = 1
patience = 0
seeds = [0]
[noise]
frozen_percent = 0.1
redraw_every = 3
dynamic_percent = 0.05
"#,
        )
        .unwrap()
    }

    #[test]
    fn resuming_mid_epoch_or_at_an_epochs_end_gives_the_same_bits() {
        let config = small();
        config.validate().unwrap();
        let prep = prepare(&config, Path::new(".")).unwrap();
        let stage = crate::progress::Progress::hidden().stage("test", 0, "samples");
        let whole = train_seed(&config, &prep, 0, None, false, 1, &stage).unwrap();
        let dir = std::env::temp_dir().join(format!("dynap-fit-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Iteration 3 is inside epoch 1 (iterations 0..5); 10 ends epoch 2, before the quantized one;
        // 12 is inside the quantized epoch.
        for stop in [3, 10, 12] {
            let path = dir.join(format!("checkpoint-{stop}"));
            let _ = std::fs::remove_file(&path);
            let e = train_seed_until(&config, &prep, 0, Some(&path), false, 1, &stage, Some(stop))
                .unwrap_err();
            assert!(e.to_string().contains("interrupted"), "{e}");
            // Resumed on another thread count: the same bits.
            let resumed = train_seed(&config, &prep, 0, Some(&path), true, 2, &stage).unwrap();
            assert_eq!(resumed.network.w_rec, whole.network.w_rec, "stop at {stop}");
            assert_eq!(resumed.network.w_in, whole.network.w_in, "stop at {stop}");
            assert_eq!(resumed.best_epoch, whole.best_epoch);
            let key = |h: &[EpochRecord]| -> Vec<(u64, Option<u64>, bool)> {
                h.iter()
                    .map(|e| {
                        (
                            e.loss.to_bits(),
                            e.validation_accuracy.map(f64::to_bits),
                            e.quantized,
                        )
                    })
                    .collect()
            };
            assert_eq!(key(&resumed.history), key(&whole.history), "stop at {stop}");
        }
        assert!(whole.history.last().unwrap().quantized);
        assert!(!whole.history[0].quantized);
        // The masks held through training, the quantized epoch included: no weight outside a block.
        let masks = prep.architecture.masks();
        for (w, m) in whole
            .network
            .w_rec
            .as_slice()
            .iter()
            .zip(&masks.w_rec)
            .chain(
                whole
                    .network
                    .w_in
                    .as_ref()
                    .unwrap()
                    .as_slice()
                    .iter()
                    .zip(&masks.w_in),
            )
        {
            assert!(*m || *w == 0.0);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Trained currents: one value per core (each population here is on its own core), moved by
    /// training where they train (everywhere, or in their population) and held exactly elsewhere,
    /// resumed bit for bit; a name that is not a bias current is refused with the key.
    #[test]
    fn the_fan_in_limit_keeps_the_largest_weights_into_each_neuron() {
        // 2 inputs, 3 neurons; column 0: 0.5, -3, | 1, 0, -1 -> the 2 largest are -3 and then 1 or
        // -1 (a tie: the lower row, the input side first, then w_rec row 0).
        let mut w_in = vec![0.5, 0.0, 0.0, -3.0, 0.0, 0.0];
        let mut w_rec = vec![1.0, 2.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0];
        assert!(limit_fan_in(&mut w_in, &mut w_rec, 3, 2));
        assert_eq!(w_in, vec![0.0, 0.0, 0.0, -3.0, 0.0, 0.0]);
        assert_eq!(w_rec, vec![1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // Within the limit: nothing changes.
        assert!(!limit_fan_in(&mut w_in, &mut w_rec, 3, 2));
        // The schedule: every allowed connection at first, the limit after the pruning epochs.
        assert_eq!(fan_in_at(4, 100, 2, 0, 10), 100);
        assert!(fan_in_at(4, 100, 2, 5, 10) < 100);
        assert_eq!(fan_in_at(4, 100, 2, 20, 10), 4);
        assert_eq!(fan_in_at(4, 100, 0, 0, 10), 4);
    }

    /// A fan-in of more than the chip's 64 is refused before training, and accepted with a limit
    /// that training keeps: after training no neuron has more non-zero weights, the network maps
    /// at the first attempt, and a resumed training gives the same bits.
    #[test]
    fn a_fan_in_limit_holds_after_training_and_the_network_maps() {
        let mut config = small();
        // Population a: 5 input channels and 70 of its own, 75 connections per neuron.
        config.network.population[0].size = 70;
        config.training.quantized_epochs = 0;
        config.noise.frozen_percent = 0.0;
        config.validate().unwrap();
        let e = prepare(&config, Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("75 incoming connections"), "{e}");
        config.training.fan_in = Some(12);
        config.training.prune_epochs = 2;
        config.validate().unwrap();
        let prep = prepare(&config, Path::new(".")).unwrap();
        let stage = crate::progress::Progress::hidden().stage("test", 0, "samples");
        let whole = train_seed(&config, &prep, 0, None, false, 1, &stage).unwrap();
        let net = &whole.network;
        let n = net.neurons();
        let w_in = net.w_in.as_ref().unwrap();
        let mut widest = 0;
        for j in 0..n {
            let kept = (0..w_in.rows()).filter(|&i| w_in.row(i)[j] != 0.0).count()
                + (0..n).filter(|&i| net.w_rec.row(i)[j] != 0.0).count();
            assert!(kept <= 12, "neuron {j}: {kept}");
            widest = widest.max(kept);
        }
        assert_eq!(widest, 12);
        let mut file = dynap_config::format::NetworkFile::new(net.clone());
        file.core_map = Some(prep.architecture.core_map());
        let q =
            crate::quantization::quantize_file(&file, &dynap_quant::Options::default()).unwrap();
        crate::deployment::map_quantized(&q.weights, net).unwrap();
        // Resumed mid-training from a checkpoint: the same bits.
        let dir = std::env::temp_dir().join(format!("dynap-fanin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint");
        let _ = train_seed_until(&config, &prep, 0, Some(&path), false, 1, &stage, Some(4));
        let resumed = train_seed(&config, &prep, 0, Some(&path), true, 2, &stage).unwrap();
        assert_eq!(resumed.network.w_rec, whole.network.w_rec);
        assert_eq!(resumed.network.w_in, whole.network.w_in);
        let _ = std::fs::remove_dir_all(&dir);
        // Out of range: named.
        config.training.fan_in = Some(65);
        let e = config.validate().unwrap_err();
        assert_eq!(e.key, "training.fan_in");
    }

    /// With `bias_codes`, every current of the kept network is one the bias generator makes, the
    /// trained ones inside its range and one value per core, and the chip configuration gives them
    /// back exactly: the deployed biases are the trained ones.
    #[test]
    fn bias_codes_keep_trained_currents_the_generator_makes_and_map_them_exactly() {
        let mut config = small();
        config.training.currents = vec!["Itau_mem".into(), "Ispkthr".into(), "Igain_mem".into()];
        config.training.bias_codes = true;
        config.training.learning_rate = 0.05;
        config.training.quantized_epochs = 0;
        config.noise.frozen_percent = 0.0;
        config.validate().unwrap();
        let prep = prepare(&config, Path::new(".")).unwrap();
        let stage = crate::progress::Progress::hidden().stage("test", 0, "samples");
        let fit = train_seed(&config, &prep, 0, None, false, 1, &stage).unwrap();
        let net = &fit.network;
        let generator = dynap_model::BiasGenerator::dynapse2();
        let initial = trainer_for(&config, &prep, 0, 1).unwrap().1;
        let core_map = prep.architecture.core_map();
        for &p in dynap_model::Param::CURRENTS.iter() {
            let (lo, hi) = dynap_config::current_range(&generator, p).unwrap();
            for (j, &v) in net.params.get(p).iter().enumerate() {
                assert_eq!(
                    dynap_config::snap_current(&generator, p, v),
                    Some(v),
                    "{p:?} of neuron {j}: {v} is not a current the generator makes"
                );
                if [Param::ItauMem, Param::Ispkthr, Param::IgainMem].contains(&p) {
                    assert!((lo..=hi).contains(&v), "{p:?} of neuron {j}: {v}");
                    let first = core_map.iter().position(|&c| c == core_map[j]).unwrap();
                    assert_eq!(v, net.params.get(p)[first]);
                }
            }
        }
        assert!(
            [Param::ItauMem, Param::Ispkthr, Param::IgainMem]
                .iter()
                .any(|&p| net.params.get(p) != initial.params.get(p)),
            "no current moved by a code"
        );
        // Mapped, then read back: the same currents, bit for bit.
        let mut file = dynap_config::format::NetworkFile::new(net.clone());
        file.core_map = Some(core_map);
        let q =
            crate::quantization::quantize_file(&file, &dynap_quant::Options::default()).unwrap();
        let m = crate::deployment::map_quantized(&q.weights, net).unwrap();
        let back =
            dynap_config::unmap(&m.config, Some(&m.mapping), net.i_scale, net.dt, &generator)
                .unwrap()
                .network;
        for p in [
            Param::ItauMem,
            Param::Ispkthr,
            Param::IgainMem,
            Param::ItauAhp,
        ] {
            assert_eq!(back.params.get(p), net.params.get(p), "{p:?}");
        }
    }

    /// Quantization-aware training's step: the forward pass and the gradient at the 4-bit weights
    /// (the chip's, per core), and the float weights moved by exactly the step a plain trainer takes
    /// from the 4-bit weights.
    #[test]
    fn a_quantized_step_moves_the_float_weights_by_the_step_at_the_4_bit_weights() {
        let mut config = small();
        config.noise.frozen_percent = 0.0;
        let prep = prepare(&config, Path::new(".")).unwrap();
        let core_map = prep.architecture.core_map();
        let (mut a, _) = trainer_for(&config, &prep, 0, 1).unwrap();
        let (mut b, _) = trainer_for(&config, &prep, 0, 1).unwrap();
        let chunk: Vec<usize> = (0..20).collect();
        let (input, loss) = minibatch(&config, &prep.readout(), &prep.train, &chunk).unwrap();
        // A few plain steps first, so that Adam's moments are not zero.
        for _ in 0..2 {
            a.step(&input, &loss, None).unwrap();
        }
        b.restore(a.state()).unwrap();
        let (f_in, f_rec) = a.weights();
        let (q_in, q_rec) = quantize_weights(&a.network(), &core_map).unwrap();
        assert_ne!(f_rec, q_rec, "quantization changed nothing");
        let value_a = quantized_step(&mut a, &core_map, &input, &loss, None).unwrap();
        b.set_weights(&q_in, &q_rec).unwrap();
        let value_b = b.step(&input, &loss, None).unwrap();
        // The loss of the 4-bit network.
        assert_eq!(value_a.to_bits(), value_b.to_bits());
        let (b_in, b_rec) = b.weights();
        let expected = |f: &[f64], after: &[f64], q: &[f64]| -> Vec<f64> {
            f.iter()
                .zip(after)
                .zip(q)
                .map(|((f, a), q)| f64::from((f + (a - q)) as f32))
                .collect()
        };
        let (a_in, a_rec) = a.weights();
        assert_eq!(a_in, expected(&f_in, &b_in, &q_in));
        assert_eq!(a_rec, expected(&f_rec, &b_rec, &q_rec));
        assert_ne!(a_rec, f_rec, "the step moved nothing");
    }

    #[test]
    fn trained_currents_are_one_value_per_core_and_resume_exactly() {
        let mut config = small();
        // Itau_mem in every population, Ispkthr in population b only.
        config.training.currents = vec!["Itau_mem".into()];
        config.network.population[1].train = vec!["Ispkthr".into()];
        config.training.quantized_epochs = 0;
        config.noise.frozen_percent = 0.0;
        config.validate().unwrap();
        let prep = prepare(&config, Path::new(".")).unwrap();
        let stage = crate::progress::Progress::hidden().stage("test", 0, "samples");
        let whole = train_seed(&config, &prep, 0, None, false, 1, &stage).unwrap();
        let core_map = prep.architecture.core_map();
        let initial = trainer_for(&config, &prep, 0, 1).unwrap().1;
        for p in [Param::ItauMem, Param::Ispkthr] {
            let (trained, before) = (whole.network.params.get(p), initial.params.get(p));
            for j in 0..trained.len() {
                let first = core_map.iter().position(|&c| c == core_map[j]).unwrap();
                assert_eq!(trained[j], trained[first], "{p:?} of neuron {j}");
                assert!(trained[j] > 0.0);
            }
            assert!(
                trained.iter().zip(before).any(|(a, b)| a != b),
                "{p:?} did not train"
            );
        }
        let ranges = prep.architecture.ranges();
        let (trained, before) = (
            whole.network.params.get(Param::Ispkthr),
            initial.params.get(Param::Ispkthr),
        );
        for j in ranges[0].clone().chain(ranges[2].clone()) {
            assert_eq!(trained[j].to_bits(), before[j].to_bits(), "neuron {j}");
        }
        assert!(ranges[1].clone().all(|j| trained[j] != before[j]));
        let itau = whole.network.params.get(Param::ItauMem);
        for r in &ranges {
            assert!(
                r.clone()
                    .all(|j| itau[j] != initial.params.get(Param::ItauMem)[j])
            );
        }
        let dir = std::env::temp_dir().join(format!("dynap-fit-currents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint");
        let _ = std::fs::remove_file(&path);
        train_seed_until(&config, &prep, 0, Some(&path), false, 1, &stage, Some(4)).unwrap_err();
        let resumed = train_seed(&config, &prep, 0, Some(&path), true, 2, &stage).unwrap();
        assert_eq!(resumed.network.params, whole.network.params);
        assert_eq!(resumed.network.w_rec, whole.network.w_rec);
        let _ = std::fs::remove_dir_all(&dir);

        config.training.currents = vec!["Itau_mem".into(), "C_mem".into()];
        let e = config.validate().unwrap_err().to_string();
        assert!(
            e.contains("training.currents") && e.contains("\"C_mem\""),
            "{e}"
        );
        config.training.currents.clear();
        config.network.population[2].train = vec!["tau_mem".into()];
        let e = prepare(&config, Path::new(".")).unwrap_err().to_string();
        assert!(
            e.contains("network.population[2].train") && e.contains("\"tau_mem\""),
            "{e}"
        );
    }

    /// What `encoding.json` must hold: every inconsistency refused with the key, and a readout that
    /// splits into the classes.
    #[test]
    fn encodings_are_checked_before_use() {
        let config = small();
        let prep = prepare(&config, Path::new(".")).unwrap();
        let good = prep.encoding.clone();
        good.validate(1e-3).unwrap();
        let bad = |f: &dyn Fn(&mut Encoding), what: &str| {
            let mut e = good.clone();
            f(&mut e);
            let m = e.validate(1e-3).unwrap_err();
            assert!(m.contains(what), "{what}: {m}");
        };
        bad(&|e| e.classes = 0, "`classes`");
        bad(&|e| e.steps = 0, "`steps`");
        bad(&|e| e.max.pop().map_or((), drop), "and `max` 3");
        bad(&|e| e.min[1] = f64::NAN, "feature 1");
        bad(&|e| e.channels += 1, "channels");
        assert!(good.readout(&prep.architecture).is_ok());
        let mut five = good.clone();
        five.classes = 5;
        let e = five.readout(&prep.architecture).unwrap_err().to_string();
        assert!(e.contains("6 neurons") && e.contains("5 classes"), "{e}");
    }

    /// The default network (no population tables) trains `training.currents` too.
    #[test]
    fn the_default_network_trains_its_currents() {
        let mut config = small();
        config.network.population.clear();
        config.network.connection.clear();
        config.network.readout = None;
        config.training.currents = vec!["Itau_mem".into()];
        config.training.quantized_epochs = 0;
        config.training.epochs = 1;
        config.noise.frozen_percent = 0.0;
        let prep = prepare(&config, Path::new(".")).unwrap();
        let stage = crate::progress::Progress::hidden().stage("test", 0, "samples");
        let fit = train_seed(&config, &prep, 0, None, false, 1, &stage).unwrap();
        let initial = trainer_for(&config, &prep, 0, 1).unwrap().1;
        let (a, b) = (
            fit.network.params.get(Param::ItauMem),
            initial.params.get(Param::ItauMem),
        );
        assert!(a.iter().zip(b).all(|(x, y)| x != y), "{a:?}");
    }

    #[test]
    fn a_readout_that_does_not_split_into_the_classes_is_refused_before_training() {
        let mut config = small();
        config.network.population[2].size = 4;
        let e = prepare(&config, Path::new(".")).unwrap_err().to_string();
        assert!(
            e.contains("network.readout") && e.contains("4 neurons"),
            "{e}"
        );
    }
}
