//! Classifying with a trained network, stage by stage: the one decision rule every stage uses (the
//! readout neuron with the most spikes, a tie broken by the earliest first spike), accuracy and
//! confusion matrices, and the stages themselves: the network simulated as trained (`float`),
//! quantized (`quantized`), restored from its chip configuration (`reverse_mapped`), and run on a
//! device (`device`, the digital twin by default).
//!
//! A board reports spikes, not membrane currents, so whatever loss trained the network, every stage
//! classifies by this rule on the output population's spikes.

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

/// The class the output spikes `[steps, n]` of one sample give: the readout neuron (`readout`, class
/// `c` is neuron `readout.start + c`) with the most spikes, a tie broken by the earliest first spike,
/// then by the lower class; `None` when no readout neuron spiked.
pub fn classify<T: Copy + Into<f64>>(spikes: &[T], n: usize, readout: &Range<usize>) -> Option<usize> {
    let steps = spikes.len() / n.max(1);
    let mut best: Option<(usize, f64, usize)> = None; // (class, count, first spike step)
    for (c, j) in readout.clone().enumerate() {
        let mut count = 0.0;
        let mut first = usize::MAX;
        for t in 0..steps {
            let s: f64 = spikes[t * n + j].into();
            if s > 0.0 {
                count += s;
                first = first.min(t);
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
    readout: &Range<usize>,
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
    readout: &Range<usize>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_the_most_spikes_then_the_first() {
        // 4 steps, 3 neurons, readout 1..3 (classes 0 and 1).
        let s = |rows: [[f64; 3]; 4]| rows.concat();
        assert_eq!(
            classify(&s([[0., 0., 0.], [1., 1., 0.], [0., 0., 1.], [0., 1., 0.]]), 3, &(1..3)),
            Some(0)
        );
        // A tie in counts: the earlier first spike wins.
        assert_eq!(
            classify(&s([[0., 0., 0.], [0., 0., 1.], [0., 1., 0.], [0., 0., 0.]]), 3, &(1..3)),
            Some(1)
        );
        // A tie in both: the lower class.
        assert_eq!(
            classify(&s([[0., 1., 1.], [0., 0., 0.], [0., 0., 0.], [0., 0., 0.]]), 3, &(1..3)),
            Some(0)
        );
        // Neuron 0 is not a readout neuron; no readout spike: no class.
        assert_eq!(
            classify(&s([[5., 0., 0.], [0., 0., 0.], [0., 0., 0.], [0., 0., 0.]]), 3, &(1..3)),
            None
        );
        // Counts above 1 (Rockpool's spikes) count as such.
        assert_eq!(
            classify(&s([[0., 2., 0.], [0., 0., 1.], [0., 0., 0.], [0., 0., 1.]]), 3, &(1..3)),
            Some(0)
        );
    }

    #[test]
    fn outcomes_count_every_sample() {
        let o = Outcome::of(&[Some(0), Some(1), None, Some(1)], &[0, 0, 1, 1], 2);
        assert_eq!(o.accuracy, 0.5);
        assert_eq!(o.confusion, vec![vec![1, 1, 0], vec![0, 1, 1]]);
    }
}
