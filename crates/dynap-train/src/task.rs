//! The paper's frozen-noise task: the seed-2022 raster, the weights the Rockpool authors shipped, and the
//! task metrics (spike counts, classification, firing-rate ratio, MSE against the one-hot target).

use crate::json::J;
use dynap_model::{Matrix, Network, read_npy};
use serde_json::{Value, json};

const SEED2022_JSON: &str = include_str!("../data/frozen_noise/frozen_noise_seed2022.json");
const W_IN_NPY: &[u8] = include_bytes!("../data/frozen_noise/w_in_optimized.npy");
const W_REC_NPY: &[u8] = include_bytes!("../data/frozen_noise/w_rec_optimized.npy");

/// Input rasters `[samples, steps, channels]` of spike counts, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Raster {
    /// Samples (one per class in the frozen-noise task).
    pub samples: usize,
    /// Time steps.
    pub steps: usize,
    /// Input channels.
    pub channels: usize,
    /// Counts, `samples * steps * channels`.
    pub data: Vec<f64>,
}

/// The seed-2022 training raster of the paper (2 x 500 x 60), with Rockpool 3.1.0's output for the
/// shipped weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Seed2022 {
    /// The input raster.
    pub raster: Raster,
    /// Rockpool's output spikes `[sample, step, neuron]`, row-major.
    pub expected_spikes: Vec<f64>,
    /// Rockpool's spike counts `[sample][neuron]` ([[49, 1], [8, 49]]).
    pub expected_counts: Vec<Vec<f64>>,
}

/// The built-in seed-2022 fixture.
pub fn seed2022() -> Seed2022 {
    // Built-in data, checked by this crate's tests: a failure is a build defect, not bad user input.
    let value: Value = serde_json::from_str(SEED2022_JSON).expect("built-in fixture is JSON");
    let c = J::root(&value);
    let train = c.get("train").expect("fixture has `train`");
    let (shape, data) = train
        .get("raster")
        .and_then(|r| r.tensor_rank(3))
        .expect("fixture raster");
    let (_, counts) = train
        .get("expected_counts")
        .and_then(|r| r.tensor_rank(2))
        .expect("fixture counts");
    let (_, expected_spikes) = train
        .get("expected_spikes")
        .and_then(|r| r.tensor_rank(3))
        .expect("fixture spikes");
    let raster = Raster {
        samples: shape[0],
        steps: shape[1],
        channels: shape[2],
        data,
    };
    let n = counts.len() / shape[0];
    Seed2022 {
        raster,
        expected_spikes,
        expected_counts: counts.chunks(n).map(<[f64]>::to_vec).collect(),
    }
}

/// The network the Rockpool authors trained and shipped: LinearJax(60 -> 2) with `w_in_optimized.npy`,
/// recurrent DynapSim(2) with `w_rec_optimized.npy`, Iscale = 1e-8 A, every other parameter at its
/// default, dt = 1 ms.
pub fn shipped_network() -> Network {
    let load = |bytes: &[u8]| {
        let a = read_npy(bytes).expect("built-in NPY fixture");
        Matrix::from_vec(a.shape[0], a.shape[1], a.data).expect("built-in fixture is 2-D")
    };
    let mut net = Network::with_defaults(2);
    net.w_in = Some(load(W_IN_NPY));
    net.w_rec = load(W_REC_NPY);
    net.i_scale = 1e-8;
    net
}

/// Task metrics of output spike counts `[sample][neuron]`, where sample `i` targets neuron `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Spike counts per sample and neuron.
    pub counts: Vec<Vec<f64>>,
    /// Whether, for every sample, its target neuron fired strictly more than every other neuron.
    pub correct: bool,
    /// Firing-rate ratio per sample: target count over the largest other count (infinite if the others
    /// are silent).
    pub frr: Vec<f64>,
    /// MSE between the output raster and the one-hot target held at every step.
    pub mse: f64,
}

/// The metrics as JSON: `counts`, `correct`, `frr` (null where infinite), `mse`.
pub fn metrics_json(m: &Metrics) -> serde_json::Map<String, Value> {
    let v = json!({
        "counts": m.counts,
        "correct": m.correct,
        "frr": m.frr.iter().map(|&f| if f.is_finite() { json!(f) } else { json!(null) }).collect::<Vec<_>>(),
        "mse": m.mse,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// Computes the metrics of output spikes `[samples, steps, neurons]`.
pub fn metrics(spikes: &[f64], samples: usize, steps: usize, neurons: usize) -> Metrics {
    let mut counts = vec![vec![0.0; neurons]; samples];
    let mut se = 0.0;
    for s in 0..samples {
        for t in 0..steps {
            for n in 0..neurons {
                let x = spikes[(s * steps + t) * neurons + n];
                counts[s][n] += x;
                let target = if n == s { 1.0 } else { 0.0 };
                se += (x - target) * (x - target);
            }
        }
    }
    let frr: Vec<f64> = counts
        .iter()
        .enumerate()
        .map(|(s, c)| {
            let other = c
                .iter()
                .enumerate()
                .filter(|&(n, _)| n != s)
                .map(|(_, &x)| x)
                .fold(0.0, f64::max);
            c.get(s).copied().unwrap_or(0.0) / other
        })
        .collect();
    let correct = counts.iter().enumerate().all(|(s, c)| {
        c.iter()
            .enumerate()
            .all(|(n, &x)| n == s || c.get(s).is_some_and(|&t| t > x))
    });
    Metrics {
        counts,
        correct,
        frr,
        mse: se / (samples * steps * neurons).max(1) as f64,
    }
}
