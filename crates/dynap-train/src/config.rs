//! The experiment configuration (a TOML file), with the training defaults of the paper's frozen-noise
//! experiment. Unknown keys, wrong types, names outside a closed set and impossible values are errors
//! that name the key (and the line); closed sets (`task.raster`, `network.variant`, `training.loss`) are
//! enums parsed here, never strings inside the program.

use serde::{Deserialize, Serialize};

/// Where the task's input rasters come from (`task.raster`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RasterSource {
    /// The paper's raster (NumPy seed 2022, built in; 2 classes, 500 steps, 60 channels).
    Seed2022,
    /// Poisson rasters drawn from `task.seed` with the sizes given.
    Generated,
}

/// The model variant (`network.variant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelVariant {
    /// Rockpool's DynapSim, the paper's.
    Rockpool,
    /// The chip's own model: four dendrites, inhibition that inhibits.
    Chip,
}

impl From<dynap_model::Variant> for ModelVariant {
    fn from(v: dynap_model::Variant) -> ModelVariant {
        match v {
            dynap_model::Variant::Rockpool => ModelVariant::Rockpool,
            dynap_model::Variant::Chip => ModelVariant::Chip,
        }
    }
}

impl From<ModelVariant> for dynap_model::Variant {
    fn from(v: ModelVariant) -> dynap_model::Variant {
        match v {
            ModelVariant::Rockpool => dynap_model::Variant::Rockpool,
            ModelVariant::Chip => dynap_model::Variant::Chip,
        }
    }
}

/// The training loss (`training.loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// The paper's: MSE against the one-hot target held at every step.
    RasterMse,
    /// Target counts: `target_rate_hz` for the target neuron, 0 for the others.
    CountMse,
    /// Cross-entropy of the output rates.
    RateCrossEntropy,
    /// Cross-entropy of the readout neurons' spike counts (with `training.temperature`): the
    /// classification loss of a dataset experiment, and its default.
    CountCrossEntropy,
    /// The squared error of the readout groups' mean spike counts against regression targets
    /// scaled to their train range (`training.target_count` spikes per neuron at its top): the
    /// regression loss of a dataset experiment, and its default there.
    CountRegression,
}

impl LossKind {
    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::RasterMse => "raster_mse",
            LossKind::CountMse => "count_mse",
            LossKind::RateCrossEntropy => "rate_cross_entropy",
            LossKind::CountCrossEntropy => "count_cross_entropy",
            LossKind::CountRegression => "count_regression",
        }
    }
}

/// How a dataset experiment's populations are placed on cores and chips (`network.placement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Each population from a new core, in declaration order.
    Declared,
    /// In the order that needs the fewest SRAM routes and inter-chip connections, when the network
    /// needs several chips ([`dynap_model::Architecture::placed_for_connectivity`]); the declared
    /// layout on one chip.
    Connectivity,
}

/// How training differentiates a spike (`training.surrogate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surrogate {
    /// Rockpool's `step_pwl` (the paper's; the frozen-noise experiment's default).
    Rockpool,
    /// The fast sigmoid in `imem / Ispkthr`, steepness `training.surrogate_steepness`, the reset not
    /// differentiated (a dataset experiment's default: hidden layers train with it).
    FastSigmoid,
}

/// How the learning rate changes over the epochs of a dataset experiment (`training.lr_schedule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout.
    Constant,
    /// From `learning_rate` down to a hundredth of it along a half cosine over `epochs`.
    Cosine,
}

/// Bounds on every neuron's spike count per sample (`[training.activity]`), so that trained rates stay
/// inside what the chip carries: a penalty `weight * (relu(count - max)^2 + relu(min - count)^2)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityConfig {
    /// The lowest count without penalty.
    pub min: f64,
    /// The highest count without penalty.
    pub max: f64,
    /// The penalty's weight.
    pub weight: f64,
}

/// A whole experiment: the task, the network, training, the `noise` run's noise injection, evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The frozen-noise task.
    pub task: TaskConfig,
    /// The network.
    pub network: NetworkConfig,
    /// Training.
    pub training: TrainingConfig,
    /// Noise injection of the `noise` run (the `plain` run trains without).
    pub noise: NoiseConfig,
    /// Evaluation after training.
    pub evaluation: EvaluationConfig,
    /// 4-bit quantization of every trained network, evaluated like the float one.
    pub quantization: QuantizationConfig,
    /// A dataset experiment's data (`[data]`); without it, the frozen-noise experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::data::DataConfig>,
}

/// Quantization after training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantizationConfig {
    /// Snap the base weight currents to what the bias generator makes (what the chip will use).
    pub snap: bool,
    /// Also quantize with Rockpool's autoencoder (its defaults) and report its weight error and
    /// whether the network still classifies.
    pub compare_autoencoder: bool,
}

impl Default for QuantizationConfig {
    fn default() -> Self {
        QuantizationConfig {
            snap: true,
            compare_autoencoder: true,
        }
    }
}

/// Which input rasters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// `"seed2022"`: the paper's raster (NumPy seed 2022, built in; 2 classes, 500 steps, 60 channels);
    /// `"generated"`: Poisson rasters drawn from `seed` with the sizes below.
    pub raster: RasterSource,
    /// Seed of a generated raster.
    pub seed: u64,
    /// Classes (one frozen pattern, one target neuron each).
    pub classes: usize,
    /// Time steps per pattern.
    pub steps: usize,
    /// Input channels.
    pub channels: usize,
    /// Poisson rate of every channel (Hz).
    pub rate_hz: f64,
}

/// The network: LinearJax(channels -> neurons) + DynapSim(neurons), Rockpool's defaults otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Neurons; 0 means one per class (the paper's network).
    pub neurons: usize,
    /// Weight scale current (A).
    pub iscale: f64,
    /// Time step (s).
    pub dt: f64,
    /// Recurrent weights trained (the paper's network is recurrent).
    pub recurrent: bool,
    /// Model variant: `"rockpool"` (Rockpool's DynapSim, the paper's) or `"chip"` (four dendrites,
    /// inhibition that inhibits).
    pub variant: ModelVariant,
    /// `[[network.population]]`: a dataset experiment's populations, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub population: Vec<crate::architecture::PopulationConfig>,
    /// `[[network.connection]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connection: Vec<crate::architecture::ConnectionConfig>,
    /// `network.readout`: the output population's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readout: Option<String>,
    /// How a dataset experiment's populations are placed on cores and chips.
    pub placement: Placement,
    /// `network.init`: a network file to start from instead of random weights (its populations,
    /// connections, readout, weights and currents; `dynap nir import` writes one): fine-tuning. Its
    /// variant, `dt` and `iscale` must be the configuration's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
}

impl NetworkConfig {
    /// The populations, connections and readout as one description.
    pub fn architecture(&self) -> crate::architecture::ArchitectureConfig {
        crate::architecture::ArchitectureConfig {
            population: self.population.clone(),
            connection: self.connection.clone(),
            readout: self.readout.clone(),
        }
    }
}

/// Training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Adam steps.
    pub iterations: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// One training per seed (the seed draws the initial weights).
    pub seeds: Vec<u64>,
    /// Patterns per step; 0 means the full batch.
    pub batch_size: usize,
    /// `"raster_mse"` (the paper's: MSE against the one-hot target held at every step), `"count_mse"`
    /// (target counts: `target_rate_hz` for the target neuron, 0 for the others) or
    /// `"rate_cross_entropy"`.
    pub loss: LossKind,
    /// Target rate of the target neuron for `count_mse` (Hz).
    pub target_rate_hz: f64,
    /// Write a checkpoint every this many iterations (0: never); a dataset experiment also writes
    /// one at the end of every epoch.
    pub checkpoint_every: usize,
    /// A dataset experiment's passes over the training split.
    pub epochs: usize,
    /// How the learning rate changes over the epochs.
    pub lr_schedule: LrSchedule,
    /// Stop after this many epochs without a better validation accuracy (0: never); the network of
    /// the best epoch is kept either way.
    pub patience: usize,
    /// How the spike is differentiated.
    pub surrogate: Surrogate,
    /// The fast sigmoid's steepness.
    pub surrogate_steepness: f64,
    /// `count_cross_entropy`'s spikes per unit of logit.
    pub temperature: f64,
    /// `count_regression`'s mean spike count per readout neuron that predicts the top of a target's
    /// train range (0 spikes predict its bottom).
    pub target_count: f64,
    /// Bounds on every neuron's spike count, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityConfig>,
    /// A dataset experiment's last epochs that train the quantized network (0: none): each step's
    /// forward pass and gradient at the chip's 4-bit weights, its change added to the float weights
    /// (a straight-through estimate); their validation accuracy is the quantized network's, and the
    /// best of them is kept. Early stopping before them goes on to them.
    pub quantized_epochs: usize,
    /// The frozen-noise experiment's last iterations that train through the chip's 4-bit weights (0:
    /// none; straight-through, as `quantized_epochs` in a dataset experiment).
    pub quantized_iterations: usize,
    /// A dataset experiment's fan-in limit kept by training (at most 64, the chip's CAM entries per
    /// neuron): after every step only the `fan_in` largest weights (by magnitude) into each neuron stay
    /// non-zero, so the trained network maps by construction; a network whose populations allow more
    /// connections into a neuron is then accepted before training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_in: Option<usize>,
    /// Bias currents in the chip's bias generator (either experiment): every current of the network
    /// starts at the current the generator makes nearest to it (a coarse and fine code), a trained one
    /// moves only within the generator's range, and every network judged or kept has each trained
    /// current at the generator's nearest value: the network deployed has the trained currents.
    pub bias_codes: bool,
    /// The epochs over which the fan-in limit tightens, from every allowed connection down to
    /// `fan_in` (a cubic schedule per step, Zhu and Gupta 2017); 0: the limit from the first step.
    pub prune_epochs: usize,
    /// A dataset experiment's bias currents that train beside the weights (Rockpool's names, e.g.
    /// `"Itau_mem"`): one value per core, as the chip has one bias set per core, trained in log space
    /// (so it stays positive) by the same Adam.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub currents: Vec<String>,
    /// A chip profile (`dynap calibrate --out`, relative to the configuration file): a dataset
    /// experiment trains for that chip. Each neuron's simulation carries the factors measured at the
    /// place the mapping gives it, and `noise.frozen_percent` becomes the mismatch of what the profile
    /// does not measure (drawn afresh every `noise.redraw_every` steps, the measured products held
    /// at their values); validation judges the network on the profiled chip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_profile: Option<std::path::PathBuf>,
}

impl TrainingConfig {
    /// The trained currents of `training.currents`, checked (each a bias current, none twice).
    pub fn trained_currents(&self) -> Result<Vec<dynap_model::Param>, ConfigError> {
        let mut out: Vec<dynap_model::Param> = Vec::new();
        for name in &self.currents {
            let p = dynap_model::Param::from_name(name)
                .filter(|p| dynap_model::Param::CURRENTS.contains(p))
                .ok_or_else(|| ConfigError {
                    key: "training.currents".into(),
                    reason: format!(
                        "{name:?} is not a bias current; the currents that train are {}",
                        dynap_model::Param::CURRENTS
                            .iter()
                            .map(|p| p.rockpool_name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            if out.contains(&p) {
                return Err(ConfigError {
                    key: "training.currents".into(),
                    reason: format!("{name:?} is given twice"),
                });
            }
            out.push(p);
        }
        Ok(out)
    }
}

/// Noise injection of the `noise` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseConfig {
    /// Frozen mismatch of the 24 simulation parameters, as a fraction (0.3 is 30 %, sigma 10 %).
    pub frozen_percent: f64,
    /// Redraw the frozen mismatch every this many iterations.
    pub redraw_every: usize,
    /// Dynamic mismatch of the weights, redrawn every iteration (a fraction; 0 for none).
    pub dynamic_percent: f64,
}

/// Evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Simulated chips per mismatch level.
    pub chips: usize,
    /// Mismatch levels, in percent.
    pub percents: Vec<u32>,
    /// Seed of the first chip (chip `k` of every level is seed `seed + k`).
    pub seed: u64,
    /// The twin's mismatch (a fraction) in the `device` stage that ends a dataset training.
    pub device_mismatch: f64,
    /// The twin's seed (its chip) in that stage.
    pub device_seed: u64,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            raster: RasterSource::Seed2022,
            seed: 2022,
            classes: 2,
            steps: 500,
            channels: 60,
            rate_hz: 50.0,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            neurons: 0,
            iscale: 1e-8,
            dt: 1e-3,
            recurrent: true,
            variant: ModelVariant::Rockpool,
            population: Vec::new(),
            connection: Vec::new(),
            readout: None,
            placement: Placement::Connectivity,
            init: None,
        }
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            iterations: 20_000,
            learning_rate: 1e-2,
            seeds: vec![0, 1, 2],
            batch_size: 0,
            loss: LossKind::RasterMse,
            target_rate_hz: 100.0,
            checkpoint_every: 1000,
            epochs: 30,
            lr_schedule: LrSchedule::Cosine,
            patience: 10,
            surrogate: Surrogate::Rockpool,
            surrogate_steepness: 2.0,
            temperature: 2.0,
            target_count: 2.0,
            activity: None,
            quantized_epochs: 0,
            quantized_iterations: 0,
            fan_in: None,
            prune_epochs: 5,
            bias_codes: false,
            currents: Vec::new(),
            chip_profile: None,
        }
    }
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            frozen_percent: 0.3,
            redraw_every: 100,
            dynamic_percent: 0.0,
        }
    }
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            chips: 100,
            percents: vec![5, 10, 20, 30],
            seed: 1_000_000,
            device_mismatch: 0.1,
            device_seed: 0,
        }
    }
}

/// A configuration problem: the key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The key (`training.iterations`), or the place in the file.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration key `{}`: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses a TOML configuration; missing keys take the defaults. Then [`Config::validate`].
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            // toml names unknown keys, wrong types and unknown names with their place; keep its words
            // and name the key written on that line.
            let message = e.message().to_owned();
            let key = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    match key_at_line(text, line) {
                        Some(k) => format!("{k} (line {line})"),
                        None => format!("line {line}"),
                    }
                })
                .unwrap_or_else(|| "(file)".into());
            ConfigError {
                key,
                reason: message,
            }
        })?;
        let mut config = config;
        if config.data.is_some() {
            // A dataset experiment's defaults for the keys the file leaves out (the struct's own
            // defaults are the frozen-noise experiment's).
            let given: toml::Table = toml::from_str(text).unwrap_or_default();
            let has = |table: &str, key: &str| {
                given
                    .get(table)
                    .and_then(toml::Value::as_table)
                    .is_some_and(|t| t.contains_key(key))
            };
            let t = &mut config.training;
            if !has("training", "loss") {
                t.loss = match config.data.as_ref().map(|d| d.targets) {
                    Some(crate::data::TargetKind::Regression) => LossKind::CountRegression,
                    _ => LossKind::CountCrossEntropy,
                };
            }
            if !has("training", "batch_size") {
                t.batch_size = 50;
            }
            if !has("training", "learning_rate") {
                t.learning_rate = 5e-3;
            }
            if !has("training", "surrogate") {
                t.surrogate = Surrogate::FastSigmoid;
            }
            if !has("training", "seeds") {
                t.seeds = vec![0];
            }
            if !has("noise", "frozen_percent") {
                config.noise.frozen_percent = 0.0;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Neurons of the network (one per class unless given).
    pub fn neurons(&self) -> usize {
        if self.network.neurons == 0 {
            self.task.classes
        } else {
            self.network.neurons
        }
    }

    /// Checks every value that TOML's types cannot: ranges and choices.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| {
            Err(ConfigError {
                key: key.into(),
                reason,
            })
        };
        let t = &self.task;
        if t.raster == RasterSource::Seed2022 && (t.classes, t.steps, t.channels) != (2, 500, 60) {
            return bad(
                "task.raster",
                "the built-in seed2022 raster has 2 classes, 500 steps and 60 channels; use raster = \"generated\" for other sizes".into(),
            );
        }
        if t.classes < 2 {
            return bad(
                "task.classes",
                format!("{} classes; a classification needs at least 2", t.classes),
            );
        }
        if t.steps == 0 || t.channels == 0 {
            return bad("task.steps", "steps and channels must be at least 1".into());
        }
        if !(t.rate_hz.is_finite() && t.rate_hz >= 0.0 && t.rate_hz * self.network.dt < 1.0) {
            return bad(
                "task.rate_hz",
                format!("{} Hz is not a rate in [0, 1/dt)", t.rate_hz),
            );
        }
        let n = &self.network;
        if n.neurons != 0 && n.neurons < t.classes {
            return bad(
                "network.neurons",
                format!(
                    "{} neurons for {} classes: each class needs its neuron",
                    n.neurons, t.classes
                ),
            );
        }
        if !(n.iscale.is_finite() && n.iscale > 0.0) {
            return bad(
                "network.iscale",
                format!("{} A is not a positive current", n.iscale),
            );
        }
        if !(n.dt.is_finite() && n.dt > 0.0) {
            return bad(
                "network.dt",
                format!("{} s is not a positive time step", n.dt),
            );
        }
        let tr = &self.training;
        if tr.seeds.is_empty() {
            return bad("training.seeds", "at least one seed".into());
        }
        if !(tr.learning_rate.is_finite() && tr.learning_rate > 0.0) {
            return bad(
                "training.learning_rate",
                format!("{} is not a positive rate", tr.learning_rate),
            );
        }
        let z = &self.noise;
        if !(0.0..3.0).contains(&z.frozen_percent) || !(0.0..3.0).contains(&z.dynamic_percent) {
            return bad(
                "noise.frozen_percent",
                "mismatch levels are fractions in [0, 3) (0.3 is 30 %)".into(),
            );
        }
        if z.redraw_every == 0 {
            return bad("noise.redraw_every", "must be at least 1".into());
        }
        if !(tr.temperature.is_finite() && tr.temperature > 0.0) {
            return bad(
                "training.temperature",
                format!("{} is not a positive number of spikes", tr.temperature),
            );
        }
        if !(tr.target_count.is_finite() && tr.target_count > 0.0) {
            return bad(
                "training.target_count",
                format!("{} is not a positive number of spikes", tr.target_count),
            );
        }
        let regression = self
            .data
            .as_ref()
            .is_some_and(|d| d.targets == crate::data::TargetKind::Regression);
        match (self.data.is_some(), regression, tr.loss) {
            (true, false, LossKind::CountCrossEntropy)
            | (true, true, LossKind::CountRegression) => {}
            (true, false, other) | (true, true, other) => {
                return bad(
                    "training.loss",
                    format!(
                        "{} does not train a dataset experiment on {}: count_cross_entropy trains on classes, count_regression on regression targets (data.targets)",
                        other.name(),
                        if regression {
                            "regression targets"
                        } else {
                            "classes"
                        }
                    ),
                );
            }
            (false, _, LossKind::CountRegression) => {
                return bad(
                    "training.loss",
                    "count_regression trains on regression targets: a dataset experiment with data.targets = \"regression\"".into(),
                );
            }
            (false, _, _) => {}
        }
        if !(tr.surrogate_steepness.is_finite() && tr.surrogate_steepness >= 0.0) {
            return bad(
                "training.surrogate_steepness",
                format!("{} is not a steepness >= 0", tr.surrogate_steepness),
            );
        }
        if let Some(a) = &tr.activity
            && !(a.min.is_finite() && a.max.is_finite() && a.min <= a.max && a.weight >= 0.0)
        {
            return bad(
                "training.activity",
                "min <= max, both finite, and weight >= 0".into(),
            );
        }
        tr.trained_currents()?;
        if self.data.is_none() && tr.chip_profile.is_some() {
            return bad(
                "training.chip_profile",
                "a dataset experiment's option (add a [data] table)".into(),
            );
        }
        if !(0.0..3.0).contains(&self.evaluation.device_mismatch) {
            return bad(
                "evaluation.device_mismatch",
                format!(
                    "{} is not a mismatch fraction in [0, 3) (0.1 is 10 %)",
                    self.evaluation.device_mismatch
                ),
            );
        }
        if self.data.is_some() && tr.quantized_iterations > 0 {
            return bad(
                "training.quantized_iterations",
                "the frozen-noise experiment's option; a dataset experiment has training.quantized_epochs".into(),
            );
        }
        if let Some(k) = tr.fan_in {
            if !(1..=dynap_config::SYNAPSES).contains(&k) {
                return bad(
                    "training.fan_in",
                    format!(
                        "{k} connections per neuron: from 1 to {} (the chip's CAM entries)",
                        dynap_config::SYNAPSES
                    ),
                );
            }
            if tr.prune_epochs >= tr.epochs.max(1) {
                return bad(
                    "training.prune_epochs",
                    format!(
                        "{} epochs of pruning leave none of the {} epochs within the fan-in limit",
                        tr.prune_epochs, tr.epochs
                    ),
                );
            }
            if self.data.is_none() {
                return bad(
                    "training.fan_in",
                    "a dataset experiment's option (a configuration with [data])".into(),
                );
            }
        }
        match &self.data {
            Some(d) => {
                if tr.epochs == 0 {
                    return bad("training.epochs", "at least 1".into());
                }
                if n.init.is_some()
                    && (!n.population.is_empty() || !n.connection.is_empty() || n.readout.is_some())
                {
                    return bad(
                        "network.init",
                        "the network file describes the populations, connections and readout: \
                         remove network.population, network.connection and network.readout"
                            .into(),
                    );
                }
                d.validate(n.dt).map_err(|e| match &e.problem {
                    crate::data::Problem::Parameter { key, reason } => ConfigError {
                        key: (*key).to_owned(),
                        reason: reason.clone(),
                    },
                    _ => ConfigError {
                        key: "data".into(),
                        reason: e.to_string(),
                    },
                })?;
            }
            None => {
                if tr.batch_size > t.classes {
                    return bad(
                        "training.batch_size",
                        format!(
                            "{} patterns per step, but there are {} patterns",
                            tr.batch_size, t.classes
                        ),
                    );
                }
                if !tr.currents.is_empty() {
                    return bad(
                        "training.currents",
                        "trained currents are a dataset experiment's option (the frozen-noise experiment trains Rockpool's weights only): add a [data] table".into(),
                    );
                }
                if !n.population.is_empty() || !n.connection.is_empty() || n.readout.is_some() {
                    return bad(
                        "network.population",
                        "populations and connections describe a dataset experiment's network: add a [data] table"
                            .into(),
                    );
                }
                if n.init.is_some() {
                    return bad(
                        "network.init",
                        "a network to start from is a dataset experiment's option: add a [data] table"
                            .into(),
                    );
                }
            }
        }
        let e = &self.evaluation;
        if e.percents.iter().any(|&p| p > 300) {
            return bad(
                "evaluation.percents",
                "levels are percents up to 300".into(),
            );
        }
        Ok(())
    }
}

/// The dotted key written on `line` (1-based) of a TOML text: the last `[table]` header above it and the
/// key before its `=`.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(h) = l.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            table = h.trim_matches(['[', ']']).trim().to_owned();
        }
        if i + 1 == line {
            let key = l.split_once('=')?.0.trim().trim_matches('"');
            return Some(if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_round_trip() {
        let c = Config::default();
        assert_eq!(
            (
                c.network.iscale,
                c.training.learning_rate,
                c.training.iterations
            ),
            (1e-8, 1e-2, 20_000)
        );
        assert_eq!(
            (
                c.training.seeds.len(),
                c.noise.frozen_percent,
                c.noise.redraw_every
            ),
            (3, 0.3, 100)
        );
        assert_eq!(c.evaluation.chips, 100);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert_eq!(Config::from_toml("").unwrap(), c);
    }

    #[test]
    fn bad_configurations_name_the_key() {
        let e = Config::from_toml("[training]\niterationz = 5\n").unwrap_err();
        assert!(e.reason.contains("iterationz"), "{e}");
        assert_eq!(e.key, "training.iterationz (line 2)");
        let e = Config::from_toml("[training]\niterations = \"many\"\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Config::from_toml("[network]\niscale = -1.0\n").unwrap_err();
        assert_eq!(e.key, "network.iscale");
        let e = Config::from_toml("[training]\nloss = \"hinge\"\n").unwrap_err();
        assert_eq!(e.key, "training.loss (line 2)");
        assert!(
            e.reason.contains("raster_mse"),
            "the allowed names are listed: {e}"
        );
        let e = Config::from_toml("[network]\nvariant = \"chp\"\n").unwrap_err();
        assert_eq!(e.key, "network.variant (line 2)");
        let e = Config::from_toml("[task]\nraster = \"seed2023\"\n").unwrap_err();
        assert_eq!(e.key, "task.raster (line 2)");
        let e = Config::from_toml("[task]\nclasses = 3\n").unwrap_err();
        assert_eq!(e.key, "task.raster");
        assert!(Config::from_toml("[task]\nraster = \"generated\"\nclasses = 3\n").is_ok());
    }
}
