//! Encoders from real features to spike rasters `[samples, steps, channels]` of `f32` counts: latency
//! coding (one spike per feature, earlier for larger values, and an optional bias spike) and Poisson
//! rate coding, with the per-feature scaling taken from the train split so that every split is
//! encoded alike.
//!
//! Latency coding of feature `j` with value `x`: `v = clamp((x - min_j) / (max_j - min_j), 0, 1)` with
//! `min_j`, `max_j` the train split's ([`Scaling`]), then one spike in step
//! `round(t_min_step + (1 - v) (t_max_step - t_min_step))` of channel `j` (rounding half away from
//! zero); with `bias`, one more channel (the last) spikes once in `bias_step`. This is the
//! time-to-first-spike coding of Göltz et al. (2021), who feed Yin-Yang's four features and a bias
//! spike to their network.
//!
//! Poisson rate coding: channel `j` spikes in each step with probability `v max_rate_hz dt`
//! (Bernoulli steps: at most one spike per step, a Poisson process in the limit of small `dt`). Each
//! sample draws from its own ChaCha8 stream (the seed, stream = the sample's index), so a sample's
//! raster depends only on the seed and its index, not on a batch or the thread count.

use super::dataset::{Dataset, Features, Inputs};
use super::error::{DataError, Problem};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Spike rasters `[samples, steps, channels]`, row-major, as `f32` counts.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeData {
    /// Samples.
    pub samples: usize,
    /// Time steps per sample.
    pub steps: usize,
    /// Input channels.
    pub channels: usize,
    /// Counts, `samples * steps * channels`, finite and non-negative.
    pub data: Vec<f32>,
}

impl SpikeData {
    /// The raster `[steps, channels]` of sample `i` (`i < samples`).
    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.steps * self.channels;
        &self.data[i * n..(i + 1) * n]
    }
}

/// Latency (time-to-first-spike) coding parameters; times are step indices of the raster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    /// Time steps of the raster.
    pub steps: usize,
    /// The step of the largest value (`v = 1`).
    pub t_min_step: usize,
    /// The step of the smallest value (`v = 0`); `t_min_step <= t_max_step < steps`.
    pub t_max_step: usize,
    /// An extra channel (the last) that spikes once at `bias_step` in every sample.
    pub bias: bool,
    /// The bias spike's step (`< steps`).
    pub bias_step: usize,
}

impl Default for Latency {
    /// For Yin-Yang at `dt` = 1 ms: 100 steps, spikes in steps 5 to 55, a bias spike at step 25 (as
    /// Göltz et al.'s bias at 0.9 of their 0.15 to 2 synaptic time constants window), leaving 45 ms
    /// after the last input for the network to answer.
    fn default() -> Latency {
        Latency {
            steps: 100,
            t_min_step: 5,
            t_max_step: 55,
            bias: true,
            bias_step: 25,
        }
    }
}

/// Poisson rate coding parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Poisson {
    /// Time steps of the raster.
    pub steps: usize,
    /// The rate of the largest value (`v = 1`), in Hz; `max_rate_hz * dt <= 1`.
    pub max_rate_hz: f64,
}

impl Default for Poisson {
    /// 100 steps, 100 Hz at most (a spike every 10 steps of 1 ms on average).
    fn default() -> Poisson {
        Poisson {
            steps: 100,
            max_rate_hz: 100.0,
        }
    }
}

/// How features become spikes (`[data.encoder]`, chosen by `kind`). Spike-count datasets do not use
/// it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoder {
    /// One spike per feature, earlier for larger values (`kind = "latency"`).
    Latency(Latency),
    /// Spikes at a rate proportional to the value (`kind = "poisson"`).
    Poisson(Poisson),
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::Latency(Latency::default())
    }
}

/// Each feature's range in the train split, which maps values onto [0, 1] for every split.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// Each feature's smallest value.
    pub min: Vec<f64>,
    /// Each feature's largest value.
    pub max: Vec<f64>,
}

impl Scaling {
    /// The per-feature minimum and maximum of a (train) dataset's features; empty for spike counts.
    pub fn of(dataset: &Dataset) -> Scaling {
        match &dataset.inputs {
            Inputs::Spikes(_) => Scaling {
                min: Vec::new(),
                max: Vec::new(),
            },
            Inputs::Features(f) => {
                let mut min = vec![f64::INFINITY; f.features];
                let mut max = vec![f64::NEG_INFINITY; f.features];
                for row in f.data.chunks_exact(f.features.max(1)) {
                    for (j, &x) in row.iter().enumerate() {
                        min[j] = min[j].min(x);
                        max[j] = max[j].max(x);
                    }
                }
                Scaling { min, max }
            }
        }
    }

    /// Feature `j`'s value `x` on [0, 1]: `(x - min) / (max - min)`, clipped. A feature constant in
    /// the train split maps to 0.5 at that constant (0 below it, 1 above); a NaN maps to 0.
    pub fn unit(&self, j: usize, x: f64) -> f64 {
        let (lo, hi) = (self.min[j], self.max[j]);
        let v = if hi > lo {
            (x - lo) / (hi - lo)
        } else if x > lo {
            1.0
        } else if x < lo {
            0.0
        } else {
            0.5
        };
        if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) }
    }
}

/// A zeroed `f32` buffer of `n` values, or an error naming the raster's size if it cannot be had.
fn zeroed(n: Option<usize>, what: &str) -> Result<Vec<f32>, DataError> {
    let too_big = || {
        DataError::parameter(
            "data.encoder.steps",
            format!("a raster of {what} values does not fit in memory"),
        )
    };
    let n = n.ok_or_else(too_big)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_big())?;
    v.resize(n, 0.0);
    Ok(v)
}

impl Encoder {
    /// Time steps of the rasters it makes.
    pub fn steps(&self) -> usize {
        match self {
            Encoder::Latency(l) => l.steps,
            Encoder::Poisson(p) => p.steps,
        }
    }

    /// Channels of the rasters it makes from `features` features (one more with a bias spike).
    pub fn channels(&self, features: usize) -> usize {
        match self {
            Encoder::Latency(l) => features + usize::from(l.bias),
            Encoder::Poisson(_) => features,
        }
    }

    /// Checks the parameters, for a simulation step `dt` (s).
    pub fn validate(&self, dt: f64) -> Result<(), DataError> {
        if self.steps() == 0 {
            return Err(DataError::parameter(
                "data.encoder.steps",
                "a raster needs at least 1 step".into(),
            ));
        }
        match self {
            Encoder::Latency(l) => {
                if l.t_min_step > l.t_max_step || l.t_max_step >= l.steps {
                    return Err(DataError::parameter(
                        "data.encoder.t_max_step",
                        format!(
                            "the window of steps {} to {} must satisfy t_min_step <= t_max_step < steps ({})",
                            l.t_min_step, l.t_max_step, l.steps
                        ),
                    ));
                }
                if l.bias && l.bias_step >= l.steps {
                    return Err(DataError::parameter(
                        "data.encoder.bias_step",
                        format!("step {} is not one of the {} steps", l.bias_step, l.steps),
                    ));
                }
            }
            Encoder::Poisson(p) => {
                if !(dt.is_finite() && dt > 0.0) {
                    return Err(DataError::parameter(
                        "network.dt",
                        format!("{dt} s is not a positive time step"),
                    ));
                }
                if !(p.max_rate_hz.is_finite() && p.max_rate_hz >= 0.0 && p.max_rate_hz * dt <= 1.0)
                {
                    return Err(DataError::parameter(
                        "data.encoder.max_rate_hz",
                        format!(
                            "{} Hz is not a rate in [0, 1/dt] = [0, {}] Hz (at most one spike per step)",
                            p.max_rate_hz,
                            1.0 / dt
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Encodes every sample of `features` (sample `i` draws from stream `i` of `seed`).
    pub fn encode(
        &self,
        features: &Features,
        scaling: &Scaling,
        dt: f64,
        seed: u64,
    ) -> Result<SpikeData, DataError> {
        self.validate(dt)?;
        check_scaling(features.features, scaling)?;
        let (steps, channels) = (self.steps(), self.channels(features.features));
        let per_sample = steps.checked_mul(channels);
        let total = per_sample.and_then(|n| n.checked_mul(features.samples));
        let mut data = zeroed(
            total,
            &format!("{} x {steps} x {channels}", features.samples),
        )?;
        let per_sample = per_sample.unwrap_or(0);
        if per_sample > 0 {
            for (i, out) in data.chunks_exact_mut(per_sample).enumerate() {
                self.fill(features.sample(i), scaling, dt, seed, i as u64, out);
            }
        }
        Ok(SpikeData {
            samples: features.samples,
            steps,
            channels,
            data,
        })
    }

    /// Encodes one sample `x` (its features) into `out` (`[steps, channels]`, overwritten), drawing
    /// from stream `sample` of `seed`: the raster [`Encoder::encode`] makes for the sample of that
    /// index.
    pub fn encode_sample(
        &self,
        x: &[f64],
        scaling: &Scaling,
        dt: f64,
        seed: u64,
        sample: u64,
        out: &mut [f32],
    ) -> Result<(), DataError> {
        self.validate(dt)?;
        check_scaling(x.len(), scaling)?;
        let want = self.steps().checked_mul(self.channels(x.len()));
        if want != Some(out.len()) {
            return Err(DataError::new(Problem::Shape {
                train: vec![self.steps(), self.channels(x.len())],
                here: vec![out.len()],
            }));
        }
        out.fill(0.0);
        self.fill(x, scaling, dt, seed, sample, out);
        Ok(())
    }

    /// Writes the spikes of one sample into a zeroed `out` (parameters and sizes checked).
    fn fill(&self, x: &[f64], scaling: &Scaling, dt: f64, seed: u64, sample: u64, out: &mut [f32]) {
        let channels = self.channels(x.len());
        match self {
            Encoder::Latency(l) => {
                let span = (l.t_max_step - l.t_min_step) as f64;
                for (j, &xj) in x.iter().enumerate() {
                    let v = scaling.unit(j, xj);
                    // t in [t_min_step, t_max_step]: the rounded step stays inside the raster.
                    let t = (l.t_min_step as f64 + (1.0 - v) * span).round() as usize;
                    out[t * channels + j] += 1.0;
                }
                if l.bias {
                    out[l.bias_step * channels + x.len()] += 1.0;
                }
            }
            Encoder::Poisson(p) => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(sample);
                let probability = |j: usize| scaling.unit(j, x[j]) * p.max_rate_hz * dt;
                for row in out.chunks_exact_mut(channels) {
                    for (j, o) in row.iter_mut().enumerate() {
                        // One draw per step and channel whatever the value: a sample's draws do not
                        // shift with its values.
                        let u: f64 = rng.r#gen();
                        if u < probability(j) {
                            *o = 1.0;
                        }
                    }
                }
            }
        }
    }
}

/// The scaling must cover every feature.
fn check_scaling(features: usize, scaling: &Scaling) -> Result<(), DataError> {
    if scaling.min.len() != features || scaling.max.len() != features {
        return Err(DataError::new(Problem::Shape {
            train: vec![scaling.min.len()],
            here: vec![features],
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::Targets;
    use proptest::prelude::*;

    fn features(rows: &[&[f64]]) -> Features {
        Features {
            samples: rows.len(),
            features: rows[0].len(),
            data: rows.iter().flat_map(|r| r.iter().copied()).collect(),
        }
    }

    fn dataset(f: Features) -> Dataset {
        let n = f.samples;
        Dataset {
            inputs: Inputs::Features(f),
            targets: Targets::Classes {
                labels: vec![0; n],
                classes: 1,
            },
        }
    }

    #[test]
    fn latency_times_follow_the_formula_and_the_train_scaling() {
        let train = features(&[&[0.0, 10.0], &[1.0, 20.0], &[0.5, 15.0]]);
        let scaling = Scaling::of(&dataset(train.clone()));
        assert_eq!(
            (scaling.min.clone(), scaling.max.clone()),
            (vec![0.0, 10.0], vec![1.0, 20.0])
        );
        let l = Latency {
            steps: 30,
            t_min_step: 4,
            t_max_step: 24,
            bias: true,
            bias_step: 10,
        };
        let e = Encoder::Latency(l);
        let s = e.encode(&train, &scaling, 1e-3, 0).unwrap();
        assert_eq!((s.samples, s.steps, s.channels), (3, 30, 3));
        let step_of = |i: usize, c: usize| (0..30).find(|&t| s.sample(i)[t * 3 + c] > 0.0);
        // v = 0 -> t_max, v = 1 -> t_min, v = 0.5 -> the middle; the bias channel at step 10.
        assert_eq!(
            [step_of(0, 0), step_of(1, 0), step_of(2, 0)],
            [Some(24), Some(4), Some(14)]
        );
        assert_eq!(
            [step_of(0, 1), step_of(1, 1), step_of(2, 1)],
            [Some(24), Some(4), Some(14)]
        );
        assert!((0..3).all(|i| step_of(i, 2) == Some(10)));
        // A validation sample beyond the train range is clipped to the window.
        let validation = features(&[&[2.0, 5.0]]);
        let v = e.encode(&validation, &scaling, 1e-3, 0).unwrap();
        assert_eq!(v.sample(0)[4 * 3], 1.0);
        assert_eq!(v.sample(0)[24 * 3 + 1], 1.0);
        // A constant feature maps to the middle of the window at its value.
        let constant = features(&[&[3.0], &[3.0]]);
        let sc = Scaling::of(&dataset(constant.clone()));
        assert_eq!(sc.unit(0, 3.0), 0.5);
        assert_eq!((sc.unit(0, 2.0), sc.unit(0, 4.0)), (0.0, 1.0));
    }

    #[test]
    fn poisson_rates_are_as_asked() {
        // 3 channels at v = 0, 0.5 and 1 of 200 Hz with dt = 1 ms: p = 0, 0.1 and 0.2 per step.
        let n = 400;
        let f = Features {
            samples: n,
            features: 3,
            data: [0.0, 0.5, 1.0].repeat(n),
        };
        let scaling = Scaling {
            min: vec![0.0; 3],
            max: vec![1.0; 3],
        };
        let e = Encoder::Poisson(Poisson {
            steps: 250,
            max_rate_hz: 200.0,
        });
        let s = e.encode(&f, &scaling, 1e-3, 42).unwrap();
        assert!(s.data.iter().all(|&v| v == 0.0 || v == 1.0));
        let draws = (n * 250) as f64;
        for (c, p) in [(0, 0.0), (1, 0.1), (2, 0.2)] {
            let count: f64 = s
                .data
                .iter()
                .skip(c)
                .step_by(3)
                .map(|&v| f64::from(v))
                .sum();
            let rate = count / draws;
            // 5 standard errors of a mean of 100 000 Bernoulli draws.
            let tolerance = 5.0 * (p * (1.0 - p) / draws).sqrt();
            assert!((rate - p).abs() <= tolerance, "channel {c}: {rate} vs {p}");
        }
        // Same seed, same bits; another seed, other spikes.
        assert_eq!(e.encode(&f, &scaling, 1e-3, 42).unwrap(), s);
        assert_ne!(e.encode(&f, &scaling, 1e-3, 43).unwrap(), s);
    }

    /// A sample's raster depends on the seed and its index only: encoding it alone (as a batch or a
    /// thread would) gives the bits of the whole split's encoding.
    #[test]
    fn a_sample_is_encoded_alike_alone_and_in_its_split() {
        let f = features(&[&[0.1, 0.9], &[0.7, 0.3], &[0.4, 0.4]]);
        let scaling = Scaling::of(&dataset(f.clone()));
        for e in [Encoder::default(), Encoder::Poisson(Poisson::default())] {
            let all = e.encode(&f, &scaling, 1e-3, 9).unwrap();
            for i in [2usize, 0, 1] {
                let mut out = vec![7.0; all.steps * all.channels];
                e.encode_sample(f.sample(i), &scaling, 1e-3, 9, i as u64, &mut out)
                    .unwrap();
                assert_eq!(out.as_slice(), all.sample(i));
            }
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_their_key() {
        let f = features(&[&[0.0]]);
        let scaling = Scaling::of(&dataset(f.clone()));
        let key = |e: Encoder, dt: f64| match e.encode(&f, &scaling, dt, 0).unwrap_err().problem {
            Problem::Parameter { key, .. } => key,
            p => panic!("{p}"),
        };
        let l = Latency::default();
        let window = Latency {
            t_max_step: 100,
            ..l.clone()
        };
        assert_eq!(
            key(Encoder::Latency(window), 1e-3),
            "data.encoder.t_max_step"
        );
        let reversed = Latency {
            t_min_step: 60,
            ..l.clone()
        };
        assert_eq!(
            key(Encoder::Latency(reversed), 1e-3),
            "data.encoder.t_max_step"
        );
        let bias = Latency {
            bias_step: 100,
            ..l.clone()
        };
        assert_eq!(key(Encoder::Latency(bias), 1e-3), "data.encoder.bias_step");
        let empty = Latency { steps: 0, ..l };
        assert_eq!(key(Encoder::Latency(empty), 1e-3), "data.encoder.steps");
        let fast = Poisson {
            steps: 10,
            max_rate_hz: 2000.0,
        };
        assert_eq!(
            key(Encoder::Poisson(fast), 1e-3),
            "data.encoder.max_rate_hz"
        );
        assert_eq!(key(Encoder::Poisson(Poisson::default()), 0.0), "network.dt");
        // A scaling of other features, and an output of the wrong size.
        let other = Scaling {
            min: vec![0.0; 2],
            max: vec![1.0; 2],
        };
        let e = Encoder::default().encode(&f, &other, 1e-3, 0).unwrap_err();
        assert!(matches!(e.problem, Problem::Shape { .. }));
        let mut out = vec![0.0; 3];
        let e = Encoder::default()
            .encode_sample(&[0.0], &scaling, 1e-3, 0, 0, &mut out)
            .unwrap_err();
        assert!(matches!(e.problem, Problem::Shape { .. }));
    }

    proptest! {
        /// Latency coding: exactly one spike per feature, inside the window, earlier (or as early)
        /// for a larger value; the bias channel spikes once at its step; nothing else.
        #[test]
        fn latency_gives_one_spike_per_feature_inside_the_window(
            values in proptest::collection::vec(-3.0f64..3.0, 1..6),
            t_min in 0usize..20,
            span in 0usize..30,
            extra in 1usize..10,
            bias in proptest::bool::ANY,
        ) {
            let l = Latency { steps: t_min + span + extra, t_min_step: t_min, t_max_step: t_min + span, bias, bias_step: t_min };
            let e = Encoder::Latency(l.clone());
            let k = values.len();
            let f = Features { samples: 1, features: k, data: values.clone() };
            let scaling = Scaling { min: vec![-1.0; k], max: vec![1.0; k] };
            let s = e.encode(&f, &scaling, 1e-3, 0).unwrap();
            let channels = k + usize::from(bias);
            prop_assert_eq!(s.channels, channels);
            let mut steps = Vec::new();
            for c in 0..k {
                let spikes: Vec<usize> = (0..l.steps).filter(|&t| s.data[t * channels + c] > 0.0).collect();
                prop_assert_eq!(spikes.len(), 1);
                prop_assert_eq!(s.data[spikes[0] * channels + c], 1.0);
                prop_assert!((t_min..=t_min + span).contains(&spikes[0]));
                steps.push(spikes[0]);
            }
            for a in 0..k {
                for b in 0..k {
                    if values[a] > values[b] {
                        prop_assert!(steps[a] <= steps[b]);
                    }
                }
            }
            let total: f32 = s.data.iter().sum();
            prop_assert_eq!(total, (k + usize::from(bias)) as f32);
            if bias {
                prop_assert_eq!(s.data[t_min * channels + k], 1.0);
            }
        }

        /// Poisson coding: the same seed gives the same bits, whatever the values.
        #[test]
        fn poisson_is_reproducible(values in proptest::collection::vec(0.0f64..1.0, 1..4), seed in 0u64..1000) {
            let k = values.len();
            let f = Features { samples: 1, features: k, data: values };
            let scaling = Scaling { min: vec![0.0; k], max: vec![1.0; k] };
            let e = Encoder::Poisson(Poisson { steps: 20, max_rate_hz: 500.0 });
            let a = e.encode(&f, &scaling, 1e-3, seed).unwrap();
            let b = e.encode(&f, &scaling, 1e-3, seed).unwrap();
            prop_assert_eq!(a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }
}
