//! Quantizing float networks to the chip's 4-bit weights, between `dynap-quant`'s quantizers and
//! `dynap-config`'s file formats: the options a network file or the command line asks for, the
//! quantize output of a quantization, and its table for people.

use crate::error::Error;
use dynap_config::format::{CoreEntry, NetworkFile, QuantMethod, QuantizedFile};
use dynap_model::{BiasGenerator, Network};
use dynap_quant::{AutoencoderOptions, Method, Options, Quantized};

/// Neurons per core of DYNAP-SE2, for the default core map.
pub const NEURONS_PER_CORE: usize = 256;

/// The default core map: neurons fill cores of 256 in order.
pub fn default_core_map(n: usize) -> Vec<usize> {
    (0..n).map(|j| j / NEURONS_PER_CORE).collect()
}

/// The quantizer's options: `method` (autoencoder seeded with `seed`, default 0), base currents snapped
/// to the built-in bias generator when `snap`.
pub fn options(method: QuantMethod, seed: Option<u64>, snap: bool) -> Options {
    Options {
        method: match method {
            QuantMethod::Alternating => Method::Alternating,
            QuantMethod::Autoencoder => Method::Autoencoder {
                options: AutoencoderOptions {
                    seed: seed.unwrap_or(0),
                    ..AutoencoderOptions::default()
                },
                init: Default::default(),
            },
        },
        snap: snap.then(BiasGenerator::dynapse2),
    }
}

/// The file-format name of a quantizer.
pub fn method_of(options: &Options) -> QuantMethod {
    match options.method {
        Method::Alternating => QuantMethod::Alternating,
        Method::Autoencoder { .. } => QuantMethod::Autoencoder,
    }
}

/// Quantizes the network of a network file on its core map (the default one when it has none).
pub fn quantize_file(file: &NetworkFile, options: &Options) -> Result<Quantized, Error> {
    let net = &file.network;
    let core_map = file
        .core_map
        .clone()
        .unwrap_or_else(|| default_core_map(net.neurons()));
    Ok(dynap_quant::quantize(
        net.w_in.as_ref(),
        Some(&net.w_rec),
        &core_map,
        net.i_scale,
        options,
    )?)
}

/// Quantizes a network's weights on its default core map and returns the result and the network with
/// the decoded (chip) weights.
pub fn quantize_network(net: &Network, options: &Options) -> Result<(Quantized, Network), Error> {
    let q = quantize_file(&NetworkFile::new(net.clone()), options)?;
    let mut quantized = net.clone();
    q.weights.apply_to(&mut quantized)?;
    Ok((q, quantized))
}

/// The quantize output of a quantization of `net` (its per-neuron values, `dt`, variant).
pub fn quantized_file(q: &Quantized, method: QuantMethod, net: &Network) -> QuantizedFile {
    let cores = q
        .cores
        .iter()
        .map(|c| CoreEntry {
            core: c.core,
            weights: c.weights,
            iw: c.iw,
            iw_fitted: Some(c.iw_fitted),
            error_before_snap: Some(c.error_before_snap),
            error_after_snap: Some(c.error_after_snap),
        })
        .collect();
    let mut f = QuantizedFile::new(q.weights.clone(), cores, net);
    f.method = Some(method);
    f.relative_rms_error = Some(q.relative_rms_error);
    f
}

/// A per-core table of a quantization, for people.
pub fn table(q: &Quantized) -> String {
    let mut s = format!(
        "{:>4} {:>7} {:>44} {:>12} {:>12}\n",
        "core", "weights", "Iw_0..Iw_3 (nA)", "err fitted", "err snapped"
    );
    for c in &q.cores {
        let iw: Vec<String> = c.iw.iter().map(|i| format!("{:>10.4}", i * 1e9)).collect();
        s.push_str(&format!(
            "{:>4} {:>7} {:>44} {:>11.2}% {:>11.2}%\n",
            c.core,
            c.weights,
            iw.join(" "),
            c.error_before_snap * 100.0,
            c.error_after_snap * 100.0
        ));
    }
    s.push_str(&format!(
        "relative RMS weight error over the network: {:.2}%",
        q.relative_rms_error * 100.0
    ));
    s
}
