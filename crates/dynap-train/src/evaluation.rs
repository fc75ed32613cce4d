//! Judging a trained network, stage by stage: the one decision rule every stage uses (a
//! classification: the readout group with the most spikes, a tie broken by the earliest first spike;
//! a regression: each group's mean count, scaled to the target's range), accuracy and confusion
//! matrices or RMSE and R², and the stages themselves: the network simulated as trained (`float`),
//! quantized (`quantized`), restored from its chip configuration (`reverse_mapped`), and run on a
//! device (`device`, the digital twin by default).
//!
//! A board reports spikes, not membrane currents, so whatever loss trained the network, every stage
//! classifies by this rule on the output population's spikes.

use crate::deployment::Device;
use crate::error::Error;
use crate::progress::Stage;
use dynap_hw::{PlayOptions, Transport};
use dynap_model::{AnySimulator, Input, Network, RunOptions};
use std::ops::Range;

/// What a split's samples should give.
#[derive(Clone, Debug, PartialEq)]
pub enum Truth {
    /// The class of each sample.
    Classes(Vec<usize>),
    /// Real targets `[samples, dims]`, row-major, in the data's units.
    Values {
        /// Target dimensions.
        dims: usize,
        /// The targets.
        values: Vec<f64>,
    },
}

impl Truth {
    /// The truth of the samples `range`.
    pub fn slice(&self, range: Range<usize>) -> Truth {
        match self {
            Truth::Classes(l) => Truth::Classes(l[range].to_vec()),
            Truth::Values { dims, values } => Truth::Values {
                dims: *dims,
                values: values[range.start * dims..range.end * dims].to_vec(),
            },
        }
    }

    /// Sample `i`'s truth for people: `class 2`, `target 0.31` or `target (0.31, -1.2)`.
    pub fn describe(&self, i: usize) -> String {
        match self {
            Truth::Classes(l) => format!("class {}", l[i]),
            Truth::Values { dims, values } => {
                let v: Vec<String> = values[i * dims..(i + 1) * dims]
                    .iter()
                    .map(|x| format!("{x:.3}"))
                    .collect();
                if *dims == 1 {
                    format!("target {}", v[0])
                } else {
                    format!("target ({})", v.join(", "))
                }
            }
        }
    }
}

/// How a regression readout's spike counts become values: group `d`'s mean count per neuron `c`
/// predicts `min[d] + (max[d] - min[d]) c / count` (so 0 spikes predict the bottom of the train
/// split's range and `count` spikes per neuron its top).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetScale {
    /// Each dimension's smallest target in the train split.
    pub min: Vec<f64>,
    /// And its largest.
    pub max: Vec<f64>,
    /// The mean count per readout neuron that predicts `max`.
    pub count: f64,
}

impl TargetScale {
    /// The range of targets `[samples, dims]`, with `count` spikes per neuron at its top.
    pub fn of(values: &[f64], dims: usize, count: f64) -> TargetScale {
        let mut min = vec![f64::INFINITY; dims];
        let mut max = vec![f64::NEG_INFINITY; dims];
        for row in values.chunks_exact(dims.max(1)) {
            for (d, &v) in row.iter().enumerate() {
                min[d] = min[d].min(v);
                max[d] = max[d].max(v);
            }
        }
        TargetScale { min, max, count }
    }

    /// The range of dimension `d` (1 for a constant target, so that nothing divides by 0).
    fn span(&self, d: usize) -> f64 {
        let s = self.max[d] - self.min[d];
        if s > 0.0 { s } else { 1.0 }
    }

    /// The value a mean count per neuron of group `d` predicts.
    pub fn value(&self, d: usize, mean_count: f64) -> f64 {
        self.min[d] + self.span(d) * mean_count / self.count
    }

    /// A target of dimension `d` as the loss sees it: 0 at the bottom of the range, 1 at its top.
    pub fn fraction(&self, d: usize, value: f64) -> f64 {
        (value - self.min[d]) / self.span(d)
    }

    /// Checks what a reader of `encoding.json` relies on: one finite range per dimension of
    /// `dims`, and a positive count.
    pub fn validate(&self, dims: usize) -> Result<(), String> {
        if self.min.len() != dims || self.max.len() != dims {
            return Err(format!(
                "`regression` has ranges for {} and {} dimensions, the readout {dims}",
                self.min.len(),
                self.max.len()
            ));
        }
        if let Some(d) = (0..dims).find(|&d| {
            !(self.min[d].is_finite() && self.max[d].is_finite() && self.min[d] <= self.max[d])
        }) {
            return Err(format!(
                "`regression`: the range of target dimension {d} is not finite"
            ));
        }
        if !(self.count.is_finite() && self.count > 0.0) {
            return Err(format!(
                "`regression.count` = {} is not a positive spike count",
                self.count
            ));
        }
        Ok(())
    }
}

/// Input spikes of a split: `[samples, steps, channels]` counts, and what each sample should give.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Spike counts, row-major.
    pub spikes: Vec<f32>,
    /// Samples.
    pub samples: usize,
    /// Time steps per sample.
    pub steps: usize,
    /// Input channels.
    pub channels: usize,
    /// The class or the target of each sample.
    pub truth: Truth,
}

impl Samples {
    /// Sample `i`'s raster `[steps, channels]`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let per = self.steps * self.channels;
        &self.spikes[i * per..(i + 1) * per]
    }
}

/// The output neurons: `neurons`, split into `classes` equal consecutive groups, class `c` (or target
/// dimension `c` of a regression) the `c`-th group (one neuron per class when they are as many).
#[derive(Clone, Debug, PartialEq)]
pub struct Readout {
    /// The output neurons.
    pub neurons: Range<usize>,
    /// The classes, or a regression's target dimensions; `neurons.len()` is a multiple of them.
    pub classes: usize,
    /// A regression's scale (`None`: a classification).
    pub scale: Option<TargetScale>,
}

impl Readout {
    /// One neuron per class.
    pub fn one_per_class(neurons: Range<usize>) -> Readout {
        let classes = neurons.len();
        Readout {
            neurons,
            classes,
            scale: None,
        }
    }

    /// What the output spikes `[steps, n]` of one sample give: [`classify`], or each group's value.
    pub fn decide<T: Copy + Into<f64>>(&self, spikes: &[T], n: usize) -> Decision {
        let Some(scale) = &self.scale else {
            return Decision::Class(classify(spikes, n, self));
        };
        let steps = spikes.len() / n.max(1);
        let group = (self.neurons.len() / self.classes.max(1)).max(1);
        Decision::Values(
            (0..self.classes)
                .map(|d| {
                    let mut count = 0.0;
                    for j in self.neurons.start + d * group..self.neurons.start + (d + 1) * group {
                        for t in 0..steps {
                            count += spikes[t * n + j].into();
                        }
                    }
                    scale.value(d, count / group as f64)
                })
                .collect(),
        )
    }
}

/// What a network gives for one sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// A class, or none when no readout neuron spiked.
    Class(Option<usize>),
    /// One value per target dimension.
    Values(Vec<f64>),
}

/// The class the output spikes `[steps, n]` of one sample give: the class whose readout group has
/// the most spikes, a tie broken by the group's earliest first spike, then by the lower class; `None`
/// when no readout neuron spiked.
pub fn classify<T: Copy + Into<f64>>(spikes: &[T], n: usize, readout: &Readout) -> Option<usize> {
    let steps = spikes.len() / n.max(1);
    let group = (readout.neurons.len() / readout.classes.max(1)).max(1);
    let mut best: Option<(usize, f64, usize)> = None; // (class, count, first spike step)
    for c in 0..readout.classes {
        let mut count = 0.0;
        let mut first = usize::MAX;
        for j in readout.neurons.start + c * group..readout.neurons.start + (c + 1) * group {
            for t in 0..steps {
                let s: f64 = spikes[t * n + j].into();
                if s > 0.0 {
                    count += s;
                    first = first.min(t);
                }
            }
        }
        if count == 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, bc, bf)) => count > bc || (count == bc && first < bf),
        };
        if better {
            best = Some((c, count, first));
        }
    }
    best.map(|(c, _, _)| c)
}

/// A stage's judgement of a split.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A classification.
    Classes {
        /// Correct samples over all samples (a sample with no readout spike is wrong).
        accuracy: f64,
        /// `confusion[true][predicted]`; the last column counts samples with no readout spike.
        confusion: Vec<Vec<u64>>,
    },
    /// A regression.
    Values {
        /// The root mean square error of each target dimension, in the data's units.
        rmse: Vec<f64>,
        /// The coefficient of determination of each dimension, `1 - SS_res / SS_tot` (1 is perfect,
        /// 0 as good as the split's mean; not a number for a constant target).
        r2: Vec<f64>,
        /// The predictions `[samples, dims]`.
        predicted: Vec<f64>,
    },
}

fn mean_of(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

impl Outcome {
    /// The outcome of decisions against the truth over `classes` classes (a regression's decisions
    /// that are not values, which no readout makes, predict nothing: not a number).
    pub fn of(decisions: &[Decision], truth: &Truth, classes: usize) -> Outcome {
        match truth {
            Truth::Classes(labels) => {
                let mut confusion = vec![vec![0u64; classes + 1]; classes];
                let mut correct = 0usize;
                for (d, &y) in decisions.iter().zip(labels) {
                    let p = match d {
                        Decision::Class(p) => *p,
                        Decision::Values(_) => None,
                    };
                    let col = p.unwrap_or(classes).min(classes);
                    if let Some(row) = confusion.get_mut(y) {
                        row[col] += 1;
                    }
                    correct += usize::from(p == Some(y));
                }
                Outcome::Classes {
                    accuracy: correct as f64 / labels.len().max(1) as f64,
                    confusion,
                }
            }
            Truth::Values { dims, values } => {
                let dims = (*dims).max(1);
                let samples = values.len() / dims;
                let mut predicted = Vec::with_capacity(values.len());
                for d in decisions.iter().take(samples) {
                    match d {
                        Decision::Values(v) if v.len() == dims => predicted.extend_from_slice(v),
                        _ => predicted.extend(std::iter::repeat_n(f64::NAN, dims)),
                    }
                }
                let (mut rmse, mut r2) = (Vec::new(), Vec::new());
                for d in 0..dims {
                    let y = || values.iter().skip(d).step_by(dims);
                    let mean = y().sum::<f64>() / samples.max(1) as f64;
                    let res: f64 = y()
                        .zip(predicted.iter().skip(d).step_by(dims))
                        .map(|(y, p)| (p - y) * (p - y))
                        .sum();
                    let tot: f64 = y().map(|y| (y - mean) * (y - mean)).sum();
                    rmse.push((res / samples.max(1) as f64).sqrt());
                    r2.push(if tot > 0.0 { 1.0 - res / tot } else { f64::NAN });
                }
                Outcome::Values {
                    rmse,
                    r2,
                    predicted,
                }
            }
        }
    }

    /// The headline figure: the accuracy of a classification, the mean RMSE over the dimensions of
    /// a regression.
    pub fn metric(&self) -> f64 {
        match self {
            Outcome::Classes { accuracy, .. } => *accuracy,
            Outcome::Values { rmse, .. } => mean_of(rmse),
        }
    }

    /// The headline figure's name: `accuracy` or `rmse`.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Outcome::Classes { .. } => "accuracy",
            Outcome::Values { .. } => "rmse",
        }
    }

    /// Larger is better: the accuracy, or minus the RMSE (a non-number is the worst).
    pub fn score(&self) -> f64 {
        match self {
            Outcome::Classes { accuracy, .. } => *accuracy,
            Outcome::Values { rmse, .. } => {
                let r = mean_of(rmse);
                if r.is_nan() { f64::NEG_INFINITY } else { -r }
            }
        }
    }

    /// The headline figure for people: `97.90 %`, or `RMSE 0.1234, R² 0.870`.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Classes { accuracy, .. } => format!("{:.2} %", accuracy * 100.0),
            Outcome::Values { rmse, r2, .. } => {
                format!("RMSE {:.4}, R² {:.3}", mean_of(rmse), mean_of(r2))
            }
        }
    }

    /// `{"accuracy", "confusion"}` or `{"rmse", "r2", "rmse_per_dim", "r2_per_dim"}` (the means
    /// over the dimensions first).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Outcome::Classes {
                accuracy,
                confusion,
            } => serde_json::json!({"accuracy": accuracy, "confusion": confusion}),
            Outcome::Values { rmse, r2, .. } => serde_json::json!({
                "rmse": mean_of(rmse), "r2": mean_of(r2), "rmse_per_dim": rmse, "r2_per_dim": r2,
            }),
        }
    }
}

/// Samples simulated per call (bounds the output raster's memory).
const CHUNK: usize = 256;

/// The decisions of a network (either variant, simulated in `f32` as trained) on every sample.
pub fn predict(
    net: &Network,
    data: &Samples,
    readout: &Readout,
    threads: usize,
    stage: Option<&Stage>,
) -> Result<Vec<Decision>, Error> {
    let sim = AnySimulator::<f32>::new(net)?;
    let n = net.neurons();
    let per = data.steps * data.channels;
    let mut out = Vec::with_capacity(data.samples);
    for start in (0..data.samples).step_by(CHUNK) {
        let len = CHUNK.min(data.samples - start);
        let trace = sim.run(
            Input::Spikes {
                data: &data.spikes[start * per..(start + len) * per],
                batch: len,
                steps: data.steps,
            },
            None,
            &RunOptions {
                threads,
                ..RunOptions::default()
            },
        )?;
        let spikes = trace.spikes();
        for b in 0..len {
            out.push(readout.decide(&spikes[b * data.steps * n..(b + 1) * data.steps * n], n));
        }
        if let Some(s) = stage {
            s.inc(len as u64);
        }
    }
    Ok(out)
}

/// The decisions of a configuration on a device: each sample played as timed events through the
/// mapping's input routes (the device reset before each), its output events read back.
pub fn predict_on_device(
    device: &mut dyn Transport,
    mapped: &dynap_config::Mapped,
    dt: f64,
    data: &Samples,
    readout: &Readout,
    stage: Option<&Stage>,
) -> Result<Vec<Decision>, Error> {
    let fail = |device: &dyn Transport| {
        let name = device.name();
        move |error| Error::Device {
            device: name.clone(),
            error,
        }
    };
    device.apply(&mapped.config).map_err(fail(device))?;
    let step_us = (dt * 1e6).round();
    if !((1.0..1e9).contains(&step_us) && (step_us - dt * 1e6).abs() < 1e-6) {
        return Err(Error::Mismatch(format!(
            "dt = {dt} s: a device plays steps of whole microseconds (the board's clock), at least 1 µs"
        )));
    }
    let n = mapped.mapping.neurons.len();
    let mut out = Vec::with_capacity(data.samples);
    for i in 0..data.samples {
        device.reset().map_err(fail(device))?;
        let raster: Vec<f64> = data.sample(i).iter().map(|&v| f64::from(v)).collect();
        let played = dynap_hw::play(
            device,
            &mapped.mapping,
            &raster,
            data.steps,
            &PlayOptions {
                step_us: step_us as u32,
                ..PlayOptions::default()
            },
        )
        .map_err(fail(device))?;
        out.push(readout.decide(&played.raster, n));
        if let Some(s) = stage {
            s.inc(1);
        }
    }
    Ok(out)
}

/// The output spikes `[samples, steps, N]` of a network on every sample.
pub fn output_spikes(net: &Network, data: &Samples, threads: usize) -> Result<Vec<f32>, Error> {
    let sim = AnySimulator::<f32>::new(net)?;
    let trace = sim.run(
        Input::Spikes {
            data: &data.spikes,
            batch: data.samples,
            steps: data.steps,
        },
        None,
        &RunOptions {
            threads,
            ..RunOptions::default()
        },
    )?;
    Ok(trace.spikes().to_vec())
}

/// The stages a judgement runs, in order.
pub const STAGES: [&str; 4] = ["float", "quantized", "reverse_mapped", "device"];

/// How to judge networks.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeOptions {
    /// The stages to run (a subset of [`STAGES`], in its order).
    pub stages: Vec<&'static str>,
    /// The device of the `device` stage.
    pub device: Device,
    /// Worker threads for simulations (0: one per core).
    pub threads: usize,
    /// Mismatch levels (percent) at which the `float`, `quantized` and `reverse_mapped` stages are
    /// also judged on simulated chips (empty: none).
    pub robustness: Vec<u32>,
    /// Simulated chips per level.
    pub chips: usize,
    /// The seed of the first simulated chip (chip `k` of every level is `chip_seed + k`).
    pub chip_seed: u64,
    /// A chip profile: the stage `predicted` (before `device`) is the reverse-mapped network on the
    /// profiled chip, each neuron with the factors measured where the mapping puts it: the device
    /// stage predicted before running it.
    pub profile: Option<dynap_config::format::ChipProfile>,
}

impl Default for JudgeOptions {
    /// Every stage; the twin with 10 % mismatch, seed 0; no robustness.
    fn default() -> JudgeOptions {
        JudgeOptions {
            stages: STAGES.to_vec(),
            device: Device::Emulator {
                mismatch: 0.1,
                seed: 0,
            },
            threads: 0,
            robustness: Vec::new(),
            chips: 10,
            chip_seed: 1000,
            profile: None,
        }
    }
}

/// A robustness level: the mismatch in percent, and each seed's mean accuracy (a regression: RMSE)
/// over the simulated chips.
pub type Level = (u32, Vec<f64>);

/// Networks judged on one split: per stage, each seed's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// Samples judged.
    pub samples: usize,
    /// `(stage, outcome per seed)`, in [`STAGES`] order.
    pub stages: Vec<(&'static str, Vec<Outcome>)>,
    /// `(stage, [(level in percent, accuracy per seed, the mean over the simulated chips)])`.
    pub robustness: Vec<(&'static str, Vec<Level>)>,
}

fn mean(x: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = x.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    s / n.max(1) as f64
}

impl Judged {
    /// `{stage: {"accuracy": mean over seeds, "per_seed": [{seed, accuracy, confusion}],
    /// "confusion": the first seed's, "robustness": {"5": accuracy, ...} when judged}}`; a
    /// regression's stages have `rmse` and `r2` (means over seeds and dimensions) instead of
    /// `accuracy` and `confusion`, and `per_seed` [`Outcome::to_json`]'s figures.
    pub fn to_json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        for (stage, outcomes) in &self.stages {
            let per_seed: Vec<serde_json::Value> = self
                .seeds
                .iter()
                .zip(outcomes)
                .map(|(s, x)| {
                    let mut v = x.to_json();
                    v["seed"] = serde_json::json!(s);
                    v
                })
                .collect();
            let mut entry = match outcomes.first() {
                Some(Outcome::Values { .. }) => serde_json::json!({
                    "rmse": mean(outcomes.iter().map(Outcome::metric)),
                    "r2": mean(outcomes.iter().map(|x| match x {
                        Outcome::Values { r2, .. } => mean_of(r2),
                        Outcome::Classes { .. } => f64::NAN,
                    })),
                    "per_seed": per_seed,
                }),
                _ => serde_json::json!({
                    "accuracy": mean(outcomes.iter().map(Outcome::metric)),
                    "per_seed": per_seed,
                    "confusion": outcomes.first().map(|x| match x {
                        Outcome::Classes { confusion, .. } => confusion.clone(),
                        Outcome::Values { .. } => Vec::new(),
                    }),
                }),
            };
            if let Some((_, levels)) = self.robustness.iter().find(|(s, _)| s == stage) {
                entry["robustness"] = serde_json::Value::Object(
                    levels
                        .iter()
                        .map(|(p, acc)| {
                            (p.to_string(), serde_json::json!(mean(acc.iter().copied())))
                        })
                        .collect(),
                );
            }
            o.insert((*stage).into(), entry);
        }
        serde_json::Value::Object(o)
    }

    /// The last stage's outcome of seed number `k` (the device's when it ran), with its stage.
    pub fn last_stage(&self, k: usize) -> Option<(&'static str, &Outcome)> {
        self.stages
            .last()
            .and_then(|(stage, o)| o.get(k).map(|x| (*stage, x)))
    }

    /// A line per stage: the mean accuracy (RMSE) and each seed's; then the robustness, if judged.
    pub fn table(&self, split: &str) -> String {
        let mut s = format!("{split} ({} samples):\n", self.samples);
        let regression = self
            .stages
            .iter()
            .any(|(_, o)| matches!(o.first(), Some(Outcome::Values { .. })));
        let figure = |v: f64| {
            if regression {
                format!("RMSE {v:.4}")
            } else {
                format!("{:.2} %", v * 100.0)
            }
        };
        for (stage, outcomes) in &self.stages {
            let per: Vec<String> = outcomes.iter().map(Outcome::summary).collect();
            s.push_str(&format!(
                "  {stage:<15} {:>12}   (per seed: {})\n",
                figure(mean(outcomes.iter().map(Outcome::metric))),
                per.join("; ")
            ));
        }
        for (stage, levels) in &self.robustness {
            let cells: Vec<String> = levels
                .iter()
                .map(|(p, acc)| format!("{p} %: {}", figure(mean(acc.iter().copied()))))
                .collect();
            s.push_str(&format!(
                "  {stage:<15} on simulated chips: {}\n",
                cells.join(", ")
            ));
        }
        s
    }
}

/// Opens the device of a `device` stage for a network of time step `dt`, scale `iscale` and
/// `variant`.
pub fn open_device(
    device: &Device,
    dt: f64,
    iscale: f64,
    variant: dynap_model::Variant,
) -> Result<Box<dyn Transport>, Error> {
    Ok(match device {
        Device::Emulator { mismatch, seed } => {
            Box::new(dynap_hw::Emulator::new(dynap_hw::EmulatorOptions {
                mismatch: *mismatch,
                seed: *seed,
                dt,
                iscale,
                variant,
                ..dynap_hw::EmulatorOptions::default()
            }))
        }
        Device::Usb => match dynap_hw::usb_transport(dynap_hw::OPAL_KELLY_VID, None) {
            Err(error) => {
                return Err(Error::Device {
                    device: "--device usb".into(),
                    error,
                });
            }
            Ok(never) => match never {},
        },
        Device::Samna {
            python,
            bitfile,
            chips,
        } => Box::new(
            dynap_hw::SamnaBridge::start(&dynap_hw::BridgeOptions {
                python: python.clone(),
                bitfile: bitfile.clone(),
                chips: *chips,
                ..dynap_hw::BridgeOptions::default()
            })
            .map_err(|error| Error::Device {
                device: "--device samna".into(),
                error,
            })?,
        ),
    })
}

/// The mean accuracy (a regression: RMSE) of `net` over `chips` simulated chips of `percent` % mismatch (chip `k` drawn
/// from `chip_seed + k`).
fn robustness(
    net: &Network,
    data: &Samples,
    readout: &Readout,
    classes: usize,
    percent: u32,
    options: &JudgeOptions,
    stage: &Stage,
) -> Result<f64, Error> {
    let m = dynap_mismatch::Mismatch::new(f64::from(percent) / 100.0);
    let mut sum = 0.0;
    for k in 0..options.chips {
        let chip = m.frozen(net, options.chip_seed + k as u64);
        let p = predict(&chip, data, readout, options.threads, None)?;
        sum += Outcome::of(&p, &data.truth, classes).metric();
        stage.inc(data.samples as u64);
    }
    Ok(sum / options.chips.max(1) as f64)
}

/// Judges every network (`(seed, network)`, all of one layout: `readout`, the output neurons, class
/// `c` neuron `readout.start + c`; `core_map`, every neuron's core, when not the default) on `data`
/// at the chosen stages: `float` as trained; `quantized` to the chip's 4-bit weights per core (the
/// default quantizer, snapped to the bias generator); `reverse_mapped`, the network the chip
/// configuration implements (mapped, then restored); `device`, the configuration on the device,
/// every sample played as events. With `options.robustness`, `float`, `quantized` and
/// `reverse_mapped` are also judged on simulated chips (the last, the twin's network on many chips).
#[allow(clippy::too_many_arguments)]
pub fn judge(
    networks: &[(u64, Network)],
    readout: &Readout,
    core_map: Option<&[usize]>,
    data: &Samples,
    classes: usize,
    options: &JudgeOptions,
    progress: &crate::progress::Progress,
    split: &str,
) -> Result<Judged, Error> {
    let robust_stages: Vec<&'static str> = options
        .stages
        .iter()
        .copied()
        .filter(|s| {
            matches!(*s, "float" | "quantized" | "reverse_mapped") && !options.robustness.is_empty()
        })
        .collect();
    let work = networks.len()
        * data.samples
        * (options.stages.len()
            + usize::from(options.profile.is_some())
            + robust_stages.len() * options.robustness.len() * options.chips);
    let stage = progress.stage(format!("judging on {split}"), work as u64, "samples");
    let mut names: Vec<&'static str> = options.stages.clone();
    if options.profile.is_some() {
        let at = names
            .iter()
            .position(|s| *s == "device")
            .unwrap_or(names.len());
        names.insert(at, "predicted");
    }
    let mut stages: Vec<(&'static str, Vec<Outcome>)> =
        names.iter().map(|s| (*s, Vec::new())).collect();
    let mut robust: Vec<(&'static str, Vec<Level>)> = robust_stages
        .iter()
        .map(|s| {
            (
                *s,
                options
                    .robustness
                    .iter()
                    .map(|&p| (p, Vec::new()))
                    .collect(),
            )
        })
        .collect();
    for (seed, net) in networks {
        let mut file = dynap_config::format::NetworkFile::new(net.clone());
        file.core_map = core_map.map(<[usize]>::to_vec);
        let need_quantized = names.iter().any(|s| *s != "float");
        let quantized = if need_quantized {
            let q = crate::quantization::quantize_file(&file, &dynap_quant::Options::default())?;
            let mut qnet = net.clone();
            q.weights.apply_to(&mut qnet)?;
            Some((q, qnet))
        } else {
            None
        };
        let mapped = match &quantized {
            Some((q, _))
                if names
                    .iter()
                    .any(|s| matches!(*s, "reverse_mapped" | "predicted" | "device")) =>
            {
                Some(crate::deployment::map_quantized(&q.weights, net)?)
            }
            _ => None,
        };
        // The network the configuration implements (mapped, then restored).
        let back = match &mapped {
            Some(m)
                if options.stages.contains(&"reverse_mapped")
                    || robust.iter().any(|(s, _)| *s == "reverse_mapped") =>
            {
                Some(
                    dynap_config::unmap(
                        &m.config,
                        Some(&m.mapping),
                        net.i_scale,
                        net.dt,
                        &dynap_model::BiasGenerator::dynapse2(),
                    )?
                    .network,
                )
            }
            _ => None,
        };
        for (name, outcomes) in stages.iter_mut() {
            stage.set_message(format!("seed {seed}, {name}"));
            let predictions = match *name {
                "float" => predict(net, data, readout, options.threads, Some(&stage))?,
                "quantized" => {
                    let (_, qnet) = quantized.as_ref().expect("made above");
                    predict(qnet, data, readout, options.threads, Some(&stage))?
                }
                "reverse_mapped" => {
                    let back = back.as_ref().expect("made above");
                    predict(back, data, readout, options.threads, Some(&stage))?
                }
                "predicted" => {
                    let m = mapped.as_ref().expect("made above");
                    let back = back.as_ref().expect("made above");
                    let profile = options.profile.as_ref().expect("a predicted stage has one");
                    let chip = crate::calibration::on_chip(back, &m.mapping.neurons, profile)?;
                    predict(&chip, data, readout, options.threads, Some(&stage))?
                }
                _ => {
                    let m = mapped.as_ref().expect("made above");
                    let mut device =
                        open_device(&options.device, net.dt, net.i_scale, net.variant)?;
                    predict_on_device(device.as_mut(), m, net.dt, data, readout, Some(&stage))?
                }
            };
            outcomes.push(Outcome::of(&predictions, &data.truth, classes));
        }
        for (name, levels) in robust.iter_mut() {
            let n = match *name {
                "float" => net,
                "quantized" => &quantized.as_ref().expect("made above").1,
                _ => back.as_ref().expect("made above"),
            };
            for (percent, per_seed) in levels.iter_mut() {
                stage.set_message(format!("seed {seed}, {name} on {percent} % chips"));
                per_seed.push(robustness(
                    n, data, readout, classes, *percent, options, &stage,
                )?);
            }
        }
    }
    stage.finish();
    Ok(Judged {
        seeds: networks.iter().map(|(s, _)| *s).collect(),
        samples: data.samples,
        stages,
        robustness: robust,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_the_most_spikes_then_the_first() {
        // 4 steps, 3 neurons, readout 1..3 (classes 0 and 1).
        let s = |rows: [[f64; 3]; 4]| rows.concat();
        assert_eq!(
            classify(
                &s([[0., 0., 0.], [1., 1., 0.], [0., 0., 1.], [0., 1., 0.]]),
                3,
                &Readout::one_per_class(1..3)
            ),
            Some(0)
        );
        // A tie in counts: the earlier first spike wins.
        assert_eq!(
            classify(
                &s([[0., 0., 0.], [0., 0., 1.], [0., 1., 0.], [0., 0., 0.]]),
                3,
                &Readout::one_per_class(1..3)
            ),
            Some(1)
        );
        // A tie in both: the lower class.
        assert_eq!(
            classify(
                &s([[0., 1., 1.], [0., 0., 0.], [0., 0., 0.], [0., 0., 0.]]),
                3,
                &Readout::one_per_class(1..3)
            ),
            Some(0)
        );
        // Neuron 0 is not a readout neuron; no readout spike: no class.
        assert_eq!(
            classify(
                &s([[5., 0., 0.], [0., 0., 0.], [0., 0., 0.], [0., 0., 0.]]),
                3,
                &Readout::one_per_class(1..3)
            ),
            None
        );
        // Counts above 1 (Rockpool's spikes) count as such.
        assert_eq!(
            classify(
                &s([[0., 2., 0.], [0., 0., 1.], [0., 0., 0.], [0., 0., 1.]]),
                3,
                &Readout::one_per_class(1..3)
            ),
            Some(0)
        );
    }

    #[test]
    fn outcomes_count_every_sample() {
        let d = [Some(0), Some(1), None, Some(1)].map(Decision::Class);
        let o = Outcome::of(&d, &Truth::Classes(vec![0, 0, 1, 1]), 2);
        assert_eq!(
            o,
            Outcome::Classes {
                accuracy: 0.5,
                confusion: vec![vec![1, 1, 0], vec![0, 1, 1]]
            }
        );
    }

    #[test]
    fn a_regression_readout_scales_mean_counts_and_is_judged_by_rmse_and_r2() {
        // 2 steps, 4 neurons, two dims of two neurons; dim 0 in [1, 3], dim 1 in [-1, -1]
        // (constant: a span of 1), 4 spikes per neuron at the top.
        let r = Readout {
            neurons: 0..4,
            classes: 2,
            scale: Some(TargetScale {
                min: vec![1.0, -1.0],
                max: vec![3.0, -1.0],
                count: 4.0,
            }),
        };
        // Dim 0: 3 spikes over 2 neurons (1.5 each): 1 + 2 * 1.5 / 4 = 1.75; dim 1: 1 spike, 0.5
        // each: -1 + 0.5 / 4.
        let d = r.decide(&[1., 2., 0., 1., 0., 0., 0., 0.], 4);
        assert_eq!(d, Decision::Values(vec![1.75, -0.875]));
        assert_eq!(r.scale.as_ref().unwrap().fraction(0, 1.75), 0.375);
        // Two samples: errors 0.25 and -0.25 in dim 0, 0.125 and 0.125 in dim 1.
        let truth = Truth::Values {
            dims: 2,
            values: vec![1.5, -1.0, 2.0, -1.0],
        };
        let o = Outcome::of(&[d, Decision::Values(vec![1.75, -0.875])], &truth, 2);
        let Outcome::Values { rmse, r2, .. } = &o else {
            panic!("{o:?}")
        };
        assert_eq!(rmse, &vec![0.25, 0.125]);
        // Dim 0: SS_res 0.125, SS_tot 0.125: R² 0; dim 1 constant: no R².
        assert_eq!(r2[0], 0.0);
        assert!(r2[1].is_nan());
        assert_eq!(o.metric(), 0.1875);
        assert_eq!(o.score(), -0.1875);
    }

    #[test]
    fn a_group_votes_with_its_total() {
        // 2 steps, 4 neurons, readout 0..4 in 2 classes of 2 neurons.
        let r = Readout {
            neurons: 0..4,
            classes: 2,
            scale: None,
        };
        // Class 0: 1 + 1 spikes; class 1: 0 + 3.
        assert_eq!(classify(&[1., 0., 0., 2., 0., 1., 0., 1.], 4, &r), Some(1));
        // Class 0: 2, class 1: 2; class 1's first spike is earlier.
        assert_eq!(classify(&[0., 0., 1., 0., 1., 1., 0., 1.], 4, &r), Some(1));
    }
}
