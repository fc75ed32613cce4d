//! NIR files on disk (read, written atomically), and how closely a DynapSim network behaves like the
//! NIR graph it came from: per-neuron spike-count correlation and classification agreement on a
//! task's samples, the graph run by [`dynap_config::nir::LifNetwork::simulate`].

use crate::error::Error;
use crate::evaluation::{Decision, Outcome, Readout, Samples, output_spikes};
use crate::files;
use dynap_config::nir::{LifNetwork, NirGraph, read_nir, write_nir};
use dynap_model::Network;
use serde_json::json;
use std::path::Path;

/// Reads a `.nir` file.
pub fn read_graph(path: &Path) -> Result<NirGraph, Error> {
    let bytes = files::read_bytes(path)?;
    read_nir(&bytes).map_err(|error| Error::Nir {
        path: path.to_path_buf(),
        error,
    })
}

/// Writes a `.nir` file (write, then rename).
pub fn write_graph(path: &Path, graph: &NirGraph) -> Result<(), Error> {
    let bytes = write_nir(graph).map_err(|error| Error::Nir {
        path: path.to_path_buf(),
        error,
    })?;
    files::write_atomic(path, &bytes)
}

/// How closely a network follows its NIR reference on a set of samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Samples compared.
    pub samples: usize,
    /// Per population (name, mean over its neurons of the correlation across samples of the
    /// neuron's spike count, reference against network; neurons whose count does not vary in either
    /// are left out), and the neurons that entered the mean.
    pub populations: Vec<(String, f64, usize)>,
    /// The same mean over every neuron of the network.
    pub correlation: f64,
    /// The fraction of samples on which both give the same class.
    pub agreement: f64,
    /// The reference's accuracy.
    pub reference_accuracy: f64,
    /// The network's accuracy.
    pub network_accuracy: f64,
    /// Mean spikes per sample of the reference and of the network (readout `LI`: no spikes).
    pub spikes_per_sample: (f64, f64),
}

impl Agreement {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "samples": self.samples,
            "correlation": self.correlation,
            "populations": self.populations.iter().map(|(name, r, n)| json!({
                "name": name, "correlation": r, "neurons": n,
            })).collect::<Vec<_>>(),
            "agreement": self.agreement,
            "reference_accuracy": self.reference_accuracy,
            "network_accuracy": self.network_accuracy,
            "reference_spikes_per_sample": self.spikes_per_sample.0,
            "network_spikes_per_sample": self.spikes_per_sample.1,
        })
    }

    /// For people: one line per population, then the classification.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} samples; spike-count correlation per neuron (reference vs network), mean:\n",
            self.samples
        );
        for (name, r, n) in &self.populations {
            s.push_str(&format!("  {name:<16} {r:>6.3}  ({n} neurons)\n"));
        }
        s.push_str(&format!("  {:<16} {:>6.3}\n", "all", self.correlation));
        s.push_str(&format!(
            "classification: reference {:.2} %, network {:.2} %, same class on {:.2} % of samples\n",
            100.0 * self.reference_accuracy,
            100.0 * self.network_accuracy,
            100.0 * self.agreement
        ));
        s.push_str(&format!(
            "spikes per sample: reference {:.1}, network {:.1}\n",
            self.spikes_per_sample.0, self.spikes_per_sample.1
        ));
        s
    }
}

/// Pearson correlation; `None` when either side does not vary.
fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// Runs the reference and the network on `data` and compares them (the readout's classes; the
/// network's neurons in the reference's order, as [`dynap_config::nir::import`] makes them).
pub fn compare(
    lif: &LifNetwork,
    net: &Network,
    data: &Samples,
    readout: &Readout,
    threads: usize,
) -> Result<Agreement, Error> {
    let n = net.neurons();
    if lif.neurons() != n || lif.inputs != data.channels {
        return Err(Error::Mismatch(format!(
            "the NIR graph has {} neurons and {} inputs, the network {n} neurons, the data {} \
             channels: compare a network with the graph it was imported from",
            lif.neurons(),
            lif.inputs,
            data.channels
        )));
    }
    if data.steps == 0 || data.samples == 0 {
        return Err(Error::Mismatch(
            "the split has no samples or no steps to compare on".into(),
        ));
    }
    let reference = lif
        .simulate(&data.spikes, data.samples, data.steps, net.dt)
        .map_err(|e| Error::Mismatch(format!("the NIR reference: {e}")))?;
    let network = output_spikes(net, data, threads)?;
    let per = data.steps * n;
    let counts = |s: &[f32]| -> Vec<f64> {
        let mut c = vec![0.0; data.samples * n];
        for (b, sample) in s.chunks(per).enumerate() {
            for row in sample.chunks(n) {
                for (j, &v) in row.iter().enumerate() {
                    c[b * n + j] += f64::from(v);
                }
            }
        }
        c
    };
    let (ca, cb) = (counts(&reference), counts(&network));
    let mut populations = Vec::new();
    let (mut total, mut used) = (0.0, 0usize);
    for (p, o) in lif.populations.iter().zip(lif.offsets()) {
        let (mut sum, mut k) = (0.0, 0usize);
        for j in o..o + p.size {
            let a: Vec<f64> = (0..data.samples).map(|b| ca[b * n + j]).collect();
            let b: Vec<f64> = (0..data.samples).map(|b| cb[b * n + j]).collect();
            if let Some(r) = correlation(&a, &b) {
                sum += r;
                k += 1;
            }
        }
        total += sum;
        used += k;
        populations.push((
            p.name.clone(),
            if k > 0 { sum / k as f64 } else { f64::NAN },
            k,
        ));
    }
    let decide = |s: &[f32]| -> Vec<Decision> {
        s.chunks(per)
            .map(|sample| readout.decide(sample, n))
            .collect()
    };
    let (da, db) = (decide(&reference), decide(&network));
    let same = da.iter().zip(&db).filter(|(a, b)| a == b).count();
    let classes = readout.classes;
    let samples = data.samples.max(1) as f64;
    let spikes_of = |c: &[f64]| -> f64 {
        let mut t = 0.0;
        for (p, o) in lif.populations.iter().zip(lif.offsets()) {
            if p.kind == dynap_config::nir::LifKind::Li {
                continue;
            }
            for b in 0..data.samples {
                t += c[b * n + o..b * n + o + p.size].iter().sum::<f64>();
            }
        }
        t / samples
    };
    Ok(Agreement {
        samples: data.samples,
        populations,
        correlation: if used > 0 {
            total / used as f64
        } else {
            f64::NAN
        },
        agreement: same as f64 / samples,
        reference_accuracy: Outcome::of(&da, &data.truth, classes).metric(),
        network_accuracy: Outcome::of(&db, &data.truth, classes).metric(),
        spikes_per_sample: (spikes_of(&ca), spikes_of(&cb)),
    })
}
