//! Classifying with a trained network, stage by stage: the one decision rule every stage uses (the
//! readout neuron with the most spikes, a tie broken by the earliest first spike), accuracy and
//! confusion matrices, and the stages themselves: the network simulated as trained (`float`),
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

/// Input spikes of a split: `[samples, steps, channels]` counts, and each sample's class.
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
    /// The class of each sample.
    pub labels: Vec<usize>,
}

impl Samples {
    /// Sample `i`'s raster `[steps, channels]`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let per = self.steps * self.channels;
        &self.spikes[i * per..(i + 1) * per]
    }
}

/// The output neurons of a classifier: `neurons`, split into `classes` equal consecutive groups, class
/// `c` the `c`-th group (one neuron per class when they are as many).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readout {
    /// The output neurons.
    pub neurons: Range<usize>,
    /// The classes; `neurons.len()` is a multiple of them.
    pub classes: usize,
}

impl Readout {
    /// One neuron per class.
    pub fn one_per_class(neurons: Range<usize>) -> Readout {
        let classes = neurons.len();
        Readout { neurons, classes }
    }
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

/// A stage's classification of a split.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Correct samples over all samples (a sample with no readout spike is wrong).
    pub accuracy: f64,
    /// `confusion[true][predicted]`; the last column counts samples with no readout spike.
    pub confusion: Vec<Vec<u64>>,
}

impl Outcome {
    /// The outcome of predictions against labels over `classes` classes.
    pub fn of(predictions: &[Option<usize>], labels: &[usize], classes: usize) -> Outcome {
        let mut confusion = vec![vec![0u64; classes + 1]; classes];
        let mut correct = 0usize;
        for (p, &y) in predictions.iter().zip(labels) {
            let col = p.unwrap_or(classes).min(classes);
            if let Some(row) = confusion.get_mut(y) {
                row[col] += 1;
            }
            correct += usize::from(*p == Some(y));
        }
        Outcome {
            accuracy: correct as f64 / labels.len().max(1) as f64,
            confusion,
        }
    }
}

/// Samples simulated per call (bounds the output raster's memory).
const CHUNK: usize = 256;

/// The predictions of a network (either variant, simulated in `f32` as trained) on every sample.
pub fn predict(
    net: &Network,
    data: &Samples,
    readout: &Readout,
    threads: usize,
    stage: Option<&Stage>,
) -> Result<Vec<Option<usize>>, Error> {
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
            out.push(classify(
                &spikes[b * data.steps * n..(b + 1) * data.steps * n],
                n,
                readout,
            ));
        }
        if let Some(s) = stage {
            s.inc(len as u64);
        }
    }
    Ok(out)
}

/// The predictions of a configuration on a device: each sample played as timed events through the
/// mapping's input routes (the device reset before each), its output events read back.
pub fn predict_on_device(
    device: &mut dyn Transport,
    mapped: &dynap_config::Mapped,
    dt: f64,
    data: &Samples,
    readout: &Readout,
    stage: Option<&Stage>,
) -> Result<Vec<Option<usize>>, Error> {
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
        out.push(classify(&played.raster, n, readout));
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
        }
    }
}

/// A robustness level: the mismatch in percent, and each seed's mean accuracy over the simulated
/// chips.
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
    /// "confusion": the first seed's, "robustness": {"5": accuracy, ...} when judged}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        for (stage, outcomes) in &self.stages {
            let mut entry = serde_json::json!({
                "accuracy": mean(outcomes.iter().map(|x| x.accuracy)),
                "per_seed": self.seeds.iter().zip(outcomes).map(|(s, x)| serde_json::json!({
                    "seed": s, "accuracy": x.accuracy, "confusion": x.confusion,
                })).collect::<Vec<_>>(),
                "confusion": outcomes.first().map(|x| x.confusion.clone()),
            });
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
    pub fn best_confusion(&self, k: usize) -> Option<(&'static str, &Outcome)> {
        self.stages
            .last()
            .and_then(|(stage, o)| o.get(k).map(|x| (*stage, x)))
    }

    /// A line per stage: the mean accuracy and each seed's; then the robustness, if judged.
    pub fn table(&self, split: &str) -> String {
        let mut s = format!("{split} ({} samples):\n", self.samples);
        for (stage, outcomes) in &self.stages {
            let per: Vec<String> = outcomes
                .iter()
                .map(|x| format!("{:.2}", x.accuracy * 100.0))
                .collect();
            s.push_str(&format!(
                "  {stage:<15} {:>6.2} %   (per seed: {})\n",
                mean(outcomes.iter().map(|x| x.accuracy)) * 100.0,
                per.join(", ")
            ));
        }
        for (stage, levels) in &self.robustness {
            let cells: Vec<String> = levels
                .iter()
                .map(|(p, acc)| format!("{p} %: {:.2} %", mean(acc.iter().copied()) * 100.0))
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
        Device::Samna { python } => Box::new(
            dynap_hw::SamnaBridge::start(&dynap_hw::BridgeOptions {
                python: python.clone(),
                ..dynap_hw::BridgeOptions::default()
            })
            .map_err(|error| Error::Device {
                device: "--device samna".into(),
                error,
            })?,
        ),
    })
}

/// The mean accuracy of `net` over `chips` simulated chips of `percent` % mismatch (chip `k` drawn
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
        sum += Outcome::of(&p, &data.labels, classes).accuracy;
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
        * (options.stages.len() + robust_stages.len() * options.robustness.len() * options.chips);
    let stage = progress.stage(format!("judging on {split}"), work as u64, "samples");
    let mut stages: Vec<(&'static str, Vec<Outcome>)> =
        options.stages.iter().map(|s| (*s, Vec::new())).collect();
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
        let need_quantized = options.stages.iter().any(|s| *s != "float");
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
                if options
                    .stages
                    .iter()
                    .any(|s| matches!(*s, "reverse_mapped" | "device")) =>
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
                _ => {
                    let m = mapped.as_ref().expect("made above");
                    let mut device =
                        open_device(&options.device, net.dt, net.i_scale, net.variant)?;
                    predict_on_device(device.as_mut(), m, net.dt, data, readout, Some(&stage))?
                }
            };
            outcomes.push(Outcome::of(&predictions, &data.labels, classes));
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
        let o = Outcome::of(&[Some(0), Some(1), None, Some(1)], &[0, 0, 1, 1], 2);
        assert_eq!(o.accuracy, 0.5);
        assert_eq!(o.confusion, vec![vec![1, 1, 0], vec![0, 1, 1]]);
    }

    #[test]
    fn a_group_votes_with_its_total() {
        // 2 steps, 4 neurons, readout 0..4 in 2 classes of 2 neurons.
        let r = Readout {
            neurons: 0..4,
            classes: 2,
        };
        // Class 0: 1 + 1 spikes; class 1: 0 + 3.
        assert_eq!(classify(&[1., 0., 0., 2., 0., 1., 0., 1.], 4, &r), Some(1));
        // Class 0: 2, class 1: 2; class 1's first spike is earlier.
        assert_eq!(classify(&[0., 0., 1., 0., 1., 1., 0., 1.], 4, &r), Some(1));
    }
}
