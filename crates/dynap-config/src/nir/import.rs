//! NIR graph -> DynapSim network (import) and back (export); the rules are in [`super`]'s
//! documentation.

use super::lif::{LifBlock, LifKind, LifNetwork, LifPopulation, LifSource};
use super::{MAX_FAN_IN, NirError, NirGraph, NirNode, Tree, Value};
use crate::format::{DENDRITE_NAMES, NetworkFile};
use dynap_model::translation::tau_converter;
use dynap_model::{
    Architecture, ChipSynapses, Connection, DEFAULT_ISCALE, Input, Matrix, Network, Param,
    Population, RunOptions, Source, SynapseChoice, Variant, simulate_spikes,
};
use std::collections::BTreeMap;

/// How to import.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImportOptions {
    /// The time step (s): NIR graphs carry none.
    pub dt: f64,
    /// The model variant of the network made.
    pub variant: Variant,
    /// `Iscale` of the network made (A).
    pub iscale: f64,
    /// A time constant that differs between a node's neurons takes their mean (with a warning) instead of
    /// being an error.
    pub average: bool,
}

impl Default for ImportOptions {
    /// 1 ms, the `chip` variant (inhibition inhibits), Rockpool's `Iscale`, no averaging.
    fn default() -> ImportOptions {
        ImportOptions {
            dt: 1e-3,
            variant: Variant::Chip,
            iscale: DEFAULT_ISCALE,
            average: false,
        }
    }
}

/// What the import did with one population.
#[derive(Clone, Debug, PartialEq)]
pub struct PopulationReport {
    /// The node's name (the population's).
    pub name: String,
    /// Its NIR model.
    pub kind: LifKind,
    /// Neurons.
    pub size: usize,
    /// The weight scale `s` (see [`super`]): `w_dpi = s g w`.
    pub scale: f64,
    /// The GABA dendrite's gain relative to the synapse's gain ratio (fitted; 1 for `rockpool`).
    pub inhibition: f64,
    /// The root-mean-square difference of the fitted spike counts, DPI against LIF, over the fit's
    /// stimuli (spikes per stimulus of 200 steps).
    pub residual: f64,
    /// The most synapses into one of its neurons.
    pub max_fan_in: usize,
}

/// What the import did.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    /// Whether the network came from the exact values of an export's metadata.
    pub exact: bool,
    /// Per population (empty for an exact import).
    pub populations: Vec<PopulationReport>,
    /// What the translation changes that a user should know.
    pub warnings: Vec<String>,
}

/// An imported network.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The DynapSim network with its populations and blocks.
    pub file: NetworkFile,
    /// The graph as NIR describes it (for the reference simulation).
    pub lif: LifNetwork,
    /// What the translation did.
    pub report: ImportReport,
}

fn kappa() -> f64 {
    (Param::KappaN.default_value() + Param::KappaP.default_value()) / 2.0
}

/// The leak current of time constant `tau` on capacitance `c` at the default `U_T` and `kappa`.
fn leak_current(tau: f64, c: f64) -> f64 {
    tau_converter(tau, Param::Ut.default_value(), kappa(), c).unwrap_or(f64::INFINITY)
}

/// The membrane and synaptic time constants a population of `kind` gets on DynapSim.
fn time_constants(kind: LifKind, tau_mem: f64, tau_syn: f64, dt: f64) -> (f64, f64) {
    match kind {
        LifKind::CubaLif => (tau_mem, tau_syn),
        LifKind::Lif | LifKind::Li => (tau_mem, dt),
        LifKind::If => (0.1, dt),
        LifKind::Threshold => (dt, dt),
    }
}

/// The spike threshold of imported populations (A).
const IMPORT_ISPKTHR: f64 = 1e-9;

/// The DynapSim parameters of a population with these time constants (see [`super`]).
fn dpi_params(tau_mem: f64, tau_syn: f64, variant: Variant) -> BTreeMap<Param, f64> {
    let itau_mem = leak_current(tau_mem, Param::CMem.default_value());
    let itau_syn = leak_current(tau_syn, Param::CSyn.default_value());
    let mut p = BTreeMap::new();
    p.insert(Param::ItauMem, itau_mem);
    p.insert(Param::IgainMem, 4.0 * itau_mem);
    p.insert(Param::ItauSyn, itau_syn);
    p.insert(Param::IgainSyn, 100.0 * itau_syn);
    p.insert(
        Param::Idc,
        match variant {
            Variant::Rockpool => 2.0 * itau_mem,
            Variant::Chip => itau_mem,
        },
    );
    p.insert(Param::Ispkthr, IMPORT_ISPKTHR);
    p
}

/// The steps of one fit stimulus.
const FIT_STEPS: usize = 200;

/// One stimulus of the fit: an excitatory and an inhibitory input train (spikes per step) and their
/// weights in the LIF's normalised units (`g = 1`; the inhibitory one is subtracted).
struct Stimulus {
    excite: Vec<f32>,
    w_excite: f64,
    inhibit: Vec<f32>,
    w_inhibit: f64,
}

fn train(period: usize, start: usize) -> Vec<f32> {
    (0..FIT_STEPS)
        .map(|t| f32::from(u8::from(t >= start && (t - start).is_multiple_of(period))))
        .collect()
}

fn burst(start: usize, len: usize) -> Vec<f32> {
    (0..FIT_STEPS)
        .map(|t| f32::from(u8::from((start..start + len).contains(&t))))
        .collect()
}

/// The fit's stimuli: excitation alone (regular trains of period 1, 2, 4 and 8 steps and bursts of 1
/// to 4 spikes, at weights from half to eight times what the LIF needs to fire), and excitation with
/// inhibition (a train with an inhibitory train of a quarter to the whole of its drive; an inhibitory
/// burst 0 to 20 steps before an excitatory one).
fn stimuli(kind: LifKind, tau_mem: f64, tau_syn: f64, dt: f64) -> (Vec<Stimulus>, usize) {
    // The normalised weight at which a stimulus brings the LIF to threshold, roughly: a regular train
    // of period p steps holds `v` near `w / (p dt)`, and a burst of b spikes lifts it by about
    // `b w / tau_mem` (the synapse's filtering aside).
    let rate_base = |period: usize| match kind {
        LifKind::Threshold => 1.0,
        LifKind::If => period as f64 / FIT_STEPS as f64,
        _ => period as f64 * dt,
    };
    let burst_base = |len: usize| match kind {
        LifKind::Threshold => 1.0,
        LifKind::If => 1.0 / len as f64,
        LifKind::CubaLif => tau_mem.max(tau_syn) / len as f64,
        _ => tau_mem / len as f64,
    };
    let none = vec![0f32; FIT_STEPS];
    let multiples = [0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0];
    let mut out = Vec::new();
    for period in [1usize, 2, 4, 8] {
        for m in multiples {
            out.push(Stimulus {
                excite: train(period, 0),
                w_excite: rate_base(period) * m,
                inhibit: none.clone(),
                w_inhibit: 0.0,
            });
        }
    }
    for len in 1usize..=4 {
        for m in multiples {
            out.push(Stimulus {
                excite: burst(10, len),
                w_excite: burst_base(len) * m,
                inhibit: none.clone(),
                w_inhibit: 0.0,
            });
        }
    }
    let excitatory = out.len();
    if kind == LifKind::Threshold {
        return (out, excitatory);
    }
    for (period, m) in [(2usize, 2.0), (2, 4.0), (1, 3.0)] {
        for (i_period, share) in [(1usize, 0.25), (2, 0.5), (4, 0.75), (2, 1.0)] {
            out.push(Stimulus {
                excite: train(period, 0),
                w_excite: rate_base(period) * m,
                inhibit: train(i_period, 1),
                w_inhibit: rate_base(i_period) * m * share,
            });
        }
    }
    for gap in [0usize, 3, 6, 10, 20] {
        for (m, share) in [(2.0, 0.5), (2.8, 1.0), (4.0, 1.0)] {
            out.push(Stimulus {
                excite: burst(30, 2),
                w_excite: burst_base(2) * m,
                inhibit: burst(30 - gap, 2),
                w_inhibit: burst_base(2) * m * share,
            });
        }
    }
    (out, excitatory)
}

/// What the fit of a population found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// The weight scale `s`: `w_dpi = s g w`.
    pub scale: f64,
    /// The GABA dendrite's gain, relative to the AMPA gain ratio (the `chip` variant; 1 for
    /// `rockpool`, which has no inhibition).
    pub inhibition: f64,
    /// The root-mean-square spike-count difference, DPI against LIF, over every stimulus.
    pub residual: f64,
}

/// The DPI network of the fit: one neuron per stimulus, `w_in` `[2 K, K]` (channel `2 j` excites and
/// `2 j + 1` inhibits neuron `j`).
fn fit_network(
    stim: &[Stimulus],
    tau_mem: f64,
    tau_syn: f64,
    dt: f64,
    variant: Variant,
) -> Network {
    let k = stim.len();
    let mut net = Network::with_defaults(k);
    net.variant = variant;
    net.dt = dt;
    for (&p, &v) in &dpi_params(tau_mem, tau_syn, variant) {
        net.params.get_mut(p).fill(v);
    }
    net.w_in = Some(Matrix::zeros(2 * k, k));
    if variant == Variant::Chip {
        let mut chip = ChipSynapses::defaults(k);
        set_gaba(&mut chip, &net.params, 0..k, 1.0);
        net.chip = Some(chip);
    }
    net
}

/// The GABA dendrite of imported populations: the membrane's time constant (a LIF membrane pushed
/// below rest by inhibition comes back with `tau_mem`; on the DPI, inhibition lasts as long as the
/// GABA current) on the synapse's capacitance, and the synapse's gain ratio times `inhibition`, for
/// the neurons `range`.
fn set_gaba(
    chip: &mut ChipSynapses,
    params: &dynap_model::NeuronParams,
    range: std::ops::Range<usize>,
    inhibition: f64,
) {
    for j in range {
        let tau_mem = tau_converter(
            params.i_tau_mem[j],
            params.u_t[j],
            (params.kappa_n[j] + params.kappa_p[j]) / 2.0,
            params.c_mem[j],
        )
        .unwrap_or(1.0);
        let c = params.c_syn[j];
        let i_tau = tau_converter(
            tau_mem,
            params.u_t[j],
            (params.kappa_n[j] + params.kappa_p[j]) / 2.0,
            c,
        )
        .unwrap_or(params.i_tau_syn[j]);
        let ratio = params.i_gain_syn[j] / params.i_tau_syn[j];
        chip.gaba.i_tau[j] = i_tau;
        chip.gaba.i_gain[j] = ratio * inhibition * i_tau;
        chip.gaba.c[j] = c;
    }
}

/// The weight scale and inhibition that make a DynapSim neuron with the import's currents fire like a NIR
/// neuron of `kind` with `r = w_in = 1`, a threshold of 1 and `v_leak = v_reset = 0` (see [`super`]):
/// `s` minimises the squared spike-count differences over the excitatory stimuli (a search over
/// `log10 s` from -3 to 6, by 0.05 then 0.005 around the best), then the inhibition over the stimuli
/// with inhibition (`log10` from -1 to 1.5, by 0.05).
pub fn fit_scale(kind: LifKind, tau_mem: f64, tau_syn: f64, dt: f64, variant: Variant) -> Fit {
    let (stim, excitatory) = stimuli(kind, tau_mem, tau_syn, dt);
    let k = stim.len();
    // The LIF's counts.
    let unit = |x: f64| vec![x; k];
    let mut weight = vec![0.0; 2 * k * k];
    for (j, s) in stim.iter().enumerate() {
        weight[(2 * j) * k + j] = s.w_excite;
        weight[(2 * j + 1) * k + j] = -s.w_inhibit;
    }
    let lif = LifNetwork {
        inputs: 2 * k,
        input_name: String::new(),
        output_name: String::new(),
        populations: vec![LifPopulation {
            name: String::new(),
            kind,
            size: k,
            tau_mem: unit(if kind == LifKind::Threshold {
                1.0
            } else {
                tau_mem
            }),
            tau_syn: unit(tau_syn.max(f64::MIN_POSITIVE)),
            r: unit(1.0),
            v_leak: unit(0.0),
            v_reset: unit(0.0),
            v_threshold: unit(1.0),
            w_in: unit(1.0),
            metadata: Tree::new(),
        }],
        blocks: vec![LifBlock {
            from: LifSource::Input,
            to: 0,
            weight: weight.clone(),
            nodes: Vec::new(),
            metadata: Tree::new(),
        }],
        readout: 0,
    };
    let mut raster = vec![0f32; FIT_STEPS * 2 * k];
    for (j, s) in stim.iter().enumerate() {
        for t in 0..FIT_STEPS {
            raster[t * 2 * k + 2 * j] = s.excite[t];
            raster[t * 2 * k + 2 * j + 1] = s.inhibit[t];
        }
    }
    let counts = |spikes: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0; k];
        for row in spikes.chunks(k) {
            for (cj, &x) in c.iter_mut().zip(row) {
                *cj += x.min(1.0);
            }
        }
        c
    };
    let reference: Vec<f64> = lif
        .simulate(&raster, 1, FIT_STEPS, dt)
        .unwrap_or_default()
        .iter()
        .map(|&x| f64::from(x))
        .collect();
    let target = counts(&reference);
    let (tm, ts) = time_constants(kind, tau_mem, tau_syn, dt);
    let mut net = fit_network(&stim, tm, ts, dt, variant);
    let raster64: Vec<f64> = raster.iter().map(|&x| f64::from(x)).collect();
    let options = RunOptions {
        threads: 1,
        ..RunOptions::default()
    };
    // Squared count differences over stimuli `range`, at `log10 s` and `log10 inhibition`.
    let mut cost = |log_s: f64, log_inh: f64, range: std::ops::Range<usize>| -> f64 {
        let s = 10f64.powf(log_s);
        if let Some(w_in) = net.w_in.as_mut() {
            for (a, &w) in w_in.as_mut_slice().iter_mut().zip(&weight) {
                *a = w * s;
            }
        }
        if let Some(chip) = net.chip.as_mut() {
            set_gaba(chip, &net.params, 0..k, 10f64.powf(log_inh));
        }
        let input = Input::Spikes {
            data: &raster64,
            batch: 1,
            steps: FIT_STEPS,
        };
        match simulate_spikes::<f64>(&net, input, &options) {
            Ok(spikes) => {
                let c = counts(&spikes);
                range.map(|j| (c[j] - target[j]).powi(2)).sum::<f64>()
            }
            Err(_) => f64::INFINITY,
        }
    };
    let search = |cost: &mut dyn FnMut(f64) -> f64, from: f64, step: f64, n: usize| {
        let mut best = (f64::INFINITY, from);
        for i in 0..=n {
            let x = from + step * i as f64;
            let c = cost(x);
            if c < best.0 {
                best = (c, x);
            }
        }
        best.1
    };
    let coarse = search(&mut |x| cost(x, 0.0, 0..excitatory), -3.0, 0.05, 180);
    let log_s = search(
        &mut |x| cost(x, 0.0, 0..excitatory),
        coarse - 0.05,
        0.005,
        20,
    );
    let log_inh = if variant == Variant::Chip && excitatory < k {
        search(&mut |x| cost(log_s, x, excitatory..k), -1.0, 0.05, 50)
    } else {
        0.0
    };
    let total = cost(log_s, log_inh, 0..k);
    Fit {
        scale: 10f64.powf(log_s),
        inhibition: 10f64.powf(log_inh),
        residual: (total / k as f64).sqrt(),
    }
}

/// One value for the whole population, or an error naming the node and parameter.
/// One value for the whole population: the neurons' common value; or, with `average`, their mean
/// (noted in `notes`); else an error naming the node and parameter.
fn uniform(
    pop: &LifPopulation,
    key: &str,
    values: &[f64],
    average: bool,
    notes: &mut Vec<String>,
) -> Result<f64, NirError> {
    let first = values[0];
    let Some((j, v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| (**v - first).abs() > 1e-9 * first.abs().max(1e-30))
    else {
        return Ok(first);
    };
    if !average {
        return Err(NirError::unsupported(
            &pop.name,
            format!(
                "'{key}' differs between its neurons ({first} for neuron 0, {v} for neuron {j}); \
                 DYNAP-SE2 shares its parameters per core: split the node into populations of equal \
                 parameters, or import with their mean (--average-parameters)"
            ),
        ));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    notes.push(format!(
        "'{}': '{key}' varies between its neurons ({lo} to {hi}); the population takes their mean, {mean}",
        pop.name
    ));
    Ok(mean)
}

fn numbers_of(tree: &Tree, key: &str) -> Option<Vec<f64>> {
    tree.get(key).and_then(Value::numbers).map(|(_, d)| d)
}

fn text_of(tree: &Tree, key: &str) -> Option<String> {
    super::graph::text_of(tree.get(key))
}

/// Whether the graph came from [`export`] with its exact values.
fn is_exact(graph: &NirGraph, lif: &LifNetwork) -> bool {
    let weighted_input = numbers_of(&graph.metadata, "dynap_weighted_input")
        .is_some_and(|v| v.first() == Some(&1.0));
    lif.populations
        .iter()
        .all(|p| text_of(&p.metadata, "dynap_variant").is_some())
        && lif.blocks.iter().all(|b| {
            b.metadata.contains_key("dynap_weight")
                || (weighted_input && b.from == LifSource::Input && b.nodes.is_empty())
        })
}

/// The architecture of the populations and blocks (names, sizes, recurrence; connections in block
/// order).
fn architecture(
    lif: &LifNetwork,
    params: Vec<BTreeMap<Param, f64>>,
) -> Result<Architecture, NirError> {
    let populations: Vec<Population> = lif
        .populations
        .iter()
        .zip(params)
        .enumerate()
        .map(|(k, (p, params))| Population {
            name: p.name.clone(),
            size: p.size,
            recurrent: lif
                .blocks
                .iter()
                .any(|b| b.from == LifSource::Population(k) && b.to == k),
            params,
        })
        .collect();
    let connections: Vec<Connection> = lif
        .blocks
        .iter()
        .filter(|b| b.from != LifSource::Population(b.to))
        .map(|b| Connection {
            from: match b.from {
                LifSource::Input => Source::Input,
                LifSource::Population(k) => Source::Population(k),
            },
            to: b.to,
        })
        .collect();
    Architecture::new(lif.inputs, populations, connections, lif.readout)
        .map_err(|e| NirError::graph(None, format!("the graph's populations: {e}")))
}

/// Writes block `b`'s weights (`[rows][cols]`, multiplied by `factor`) into the network's matrices.
fn place(net: &mut Network, offsets: &[usize], b: &LifBlock, sizes: &[usize], weights: &[f64]) {
    let to = offsets[b.to];
    let cols = sizes[b.to];
    match b.from {
        LifSource::Input => {
            if let Some(w_in) = net.w_in.as_mut() {
                let n = w_in.cols();
                let data = w_in.as_mut_slice();
                for (i, row) in weights.chunks(cols).enumerate() {
                    data[i * n + to..i * n + to + cols].copy_from_slice(row);
                }
            }
        }
        LifSource::Population(a) => {
            let from = offsets[a];
            let n = net.w_rec.cols();
            let data = net.w_rec.as_mut_slice();
            for (i, row) in weights.chunks(cols).enumerate() {
                data[(from + i) * n + to..(from + i) * n + to + cols].copy_from_slice(row);
            }
        }
    }
}

/// Imports a NIR graph as a DynapSim network (see [`super`] for the rules): exactly, when the graph
/// carries an export's metadata, else by translation.
pub fn import(graph: &NirGraph, options: &ImportOptions) -> Result<Imported, NirError> {
    if !(options.dt.is_finite() && options.dt > 0.0) {
        return Err(NirError::graph(
            None,
            format!("dt = {} s; the time step must be above 0", options.dt),
        ));
    }
    let lif = LifNetwork::from_graph(graph)?;
    if is_exact(graph, &lif) {
        return import_exact(graph, lif);
    }
    let variant = options.variant;
    let mut notes = Vec::new();
    let mut reports = Vec::new();
    let mut params = Vec::new();
    let mut gains = Vec::new();
    // The fits made, by (kind, tau_mem bits, tau_syn bits).
    let mut fits: BTreeMap<(&str, u64, u64), Fit> = BTreeMap::new();
    for p in &lif.populations {
        // Per neuron: the leak must rest at the reset, and the gain (which the weights into the neuron
        // carry, so it may differ between neurons) must be positive.
        let mut gain = Vec::with_capacity(p.size);
        for j in 0..p.size {
            let (v_leak, v_reset) = (p.v_leak[j], p.v_reset[j]);
            if p.kind != LifKind::Threshold && p.kind != LifKind::Li && v_leak != v_reset {
                return Err(NirError::unsupported(
                    &p.name,
                    format!(
                        "neuron {j}: v_leak = {v_leak} differs from v_reset = {v_reset}: {}; a DPI \
                         neuron rests where it resets",
                        if v_leak < v_reset {
                            "a negative leak (the membrane decays below its reset)"
                        } else {
                            "a constant drive toward the threshold"
                        }
                    ),
                ));
            }
            if p.kind == LifKind::Li && v_leak != 0.0 {
                return Err(NirError::unsupported(
                    &p.name,
                    format!("neuron {j}: v_leak = {v_leak}; a DPI neuron rests at 0"),
                ));
            }
            let (r, w_in, threshold) = (p.r[j], p.w_in[j], p.v_threshold[j]);
            let g = match p.kind {
                LifKind::CubaLif => r * w_in / (threshold - v_reset),
                LifKind::Lif | LifKind::If => r / (threshold - v_reset),
                LifKind::Threshold => 1.0 / threshold,
                LifKind::Li => r,
            };
            if !(g.is_finite() && g > 0.0) {
                return Err(NirError::unsupported(
                    &p.name,
                    format!(
                        "neuron {j}: its gain r w_in / (v_threshold - v_reset) is {g}; DYNAP-SE2 \
                         needs a threshold above the reset and positive r and w_in"
                    ),
                ));
            }
            gain.push(g);
        }
        // The time constants are the population's (the chip's biases are per core).
        let tau_mem = uniform(p, "tau_mem", &p.tau_mem, options.average, &mut notes)?;
        let tau_syn = uniform(p, "tau_syn", &p.tau_syn, options.average, &mut notes)?;
        let (tm, ts) = time_constants(p.kind, tau_mem, tau_syn, options.dt);
        let fit = *fits
            .entry((p.kind.name(), tm.to_bits(), ts.to_bits()))
            .or_insert_with(|| fit_scale(p.kind, tau_mem, tau_syn, options.dt, variant));
        params.push(dpi_params(tm, ts, variant));
        gains.push(gain.iter().map(|g| fit.scale * g).collect::<Vec<f64>>());
        reports.push(PopulationReport {
            name: p.name.clone(),
            kind: p.kind,
            size: p.size,
            scale: fit.scale,
            inhibition: fit.inhibition,
            residual: fit.residual,
            max_fan_in: 0,
        });
    }
    let arch = architecture(&lif, params)?;
    let mut net = arch.network(variant);
    net.i_scale = options.iscale;
    net.dt = options.dt;
    let offsets = lif.offsets();
    let sizes: Vec<usize> = lif.populations.iter().map(|p| p.size).collect();
    for b in &lif.blocks {
        // Row-major [rows][cols]: column j is the target's neuron j, whose gain it carries.
        let g = &gains[b.to];
        let w: Vec<f64> = b
            .weight
            .iter()
            .enumerate()
            .map(|(k, &w)| w * g[k % g.len()])
            .collect();
        place(&mut net, &offsets, b, &sizes, &w);
    }
    if let Some(chip) = net.chip.as_mut() {
        // The GABA dendrite: the membrane's time constant, the fitted gain (per population).
        for (&o, report) in offsets.iter().zip(&reports) {
            set_gaba(chip, &net.params, o..o + report.size, report.inhibition);
        }
    }
    // Fan-in: what a neuron's CAM must hold.
    let n = net.neurons();
    let mut fan_in = vec![0usize; n];
    if let Some(w_in) = &net.w_in {
        for (i, &w) in w_in.as_slice().iter().enumerate() {
            fan_in[i % n] += usize::from(w != 0.0);
        }
    }
    for (i, &w) in net.w_rec.as_slice().iter().enumerate() {
        fan_in[i % n] += usize::from(w != 0.0);
    }
    for (k, (p, &o)) in lif.populations.iter().zip(&offsets).enumerate() {
        let most = (0..p.size).map(|j| fan_in[o + j]).max().unwrap_or(0);
        reports[k].max_fan_in = most;
        if let Some(j) = (0..p.size).find(|&j| fan_in[o + j] > MAX_FAN_IN) {
            return Err(NirError::unsupported(
                &p.name,
                format!(
                    "neuron {j} has {} synapses; a DYNAP-SE2 neuron has {MAX_FAN_IN} (prune its \
                     weights, or split the layer)",
                    fan_in[o + j]
                ),
            ));
        }
    }
    let mut warnings = notes;
    let negative = net
        .w_in
        .iter()
        .flat_map(|m| m.as_slice().iter())
        .chain(net.w_rec.as_slice())
        .any(|&w| w < 0.0);
    if negative && variant == Variant::Rockpool {
        warnings.push(
            "the network has negative weights, which the rockpool variant floors away (no \
             inhibition): import with the chip variant to keep them"
                .to_string(),
        );
    }
    if negative {
        warnings.push(
            "inhibition on DYNAP-SE2 subtracts from the synaptic input current and stops at zero \
             input: a LIF membrane driven below its rest has no counterpart"
                .to_string(),
        );
    }
    for p in &lif.populations {
        match p.kind {
            LifKind::Li => warnings.push(format!(
                "'{}' is an LI readout: on DYNAP-SE2 it spikes, and its spike counts stand for \
                 the LIF's voltage",
                p.name
            )),
            LifKind::If => warnings.push(format!(
                "'{}' is IF (no leak): it gets the slowest membrane the translation uses, 0.1 s",
                p.name
            )),
            LifKind::Threshold => warnings.push(format!(
                "'{}' is a Threshold: it becomes a neuron with a membrane of one step",
                p.name
            )),
            _ => {}
        }
    }
    net.validate()
        .map_err(|e| NirError::graph(None, format!("the translated network: {e}")))?;
    let mut file = NetworkFile::new(net);
    file.architecture = Some(arch);
    Ok(Imported {
        file,
        lif,
        report: ImportReport {
            exact: false,
            populations: reports,
            warnings,
        },
    })
}

fn missing(node: &str, key: &str) -> NirError {
    NirError::graph(
        Some(node),
        format!("the exact values of an export lack '{key}'"),
    )
}

fn import_exact(graph: &NirGraph, lif: LifNetwork) -> Result<Imported, NirError> {
    let first = &lif.populations[0];
    let variant_name = text_of(&first.metadata, "dynap_variant").unwrap_or_default();
    let variant = Variant::from_name(&variant_name).ok_or_else(|| {
        NirError::graph(
            Some(&first.name),
            format!("dynap_variant '{variant_name}' is no model variant"),
        )
    })?;
    let scalar = |p: &LifPopulation, key: &str| -> Result<f64, NirError> {
        numbers_of(&p.metadata, key)
            .and_then(|v| v.first().copied())
            .ok_or_else(|| missing(&p.name, key))
    };
    let iscale = scalar(first, "dynap_Iscale")?;
    let dt = scalar(first, "dynap_dt")?;
    let arch = architecture(&lif, vec![BTreeMap::new(); lif.populations.len()])?;
    let arch = if lif
        .populations
        .iter()
        .all(|p| p.metadata.contains_key("dynap_first_core"))
    {
        let cores: Result<Vec<usize>, NirError> = lif
            .populations
            .iter()
            .map(|p| {
                let c = scalar(p, "dynap_first_core")?;
                if c.fract() == 0.0 && (0.0..4096.0).contains(&c) {
                    Ok(c as usize)
                } else {
                    Err(NirError::graph(
                        Some(&p.name),
                        format!("dynap_first_core = {c}; a core is a whole number from 0 to 4095"),
                    ))
                }
            })
            .collect();
        arch.with_first_cores(&cores?)
            .map_err(|e| NirError::graph(None, format!("dynap_first_core: {e}")))?
    } else {
        arch
    };
    let weighted_input = numbers_of(&graph.metadata, "dynap_weighted_input")
        .is_some_and(|v| v.first() == Some(&1.0));
    let declared =
        numbers_of(&graph.metadata, "dynap_architecture").is_none_or(|v| v.first() != Some(&0.0));
    let n = lif.neurons();
    let mut net = Network::with_defaults(n);
    net.variant = variant;
    net.i_scale = iscale;
    net.dt = dt;
    net.w_in = (!weighted_input).then(|| Matrix::zeros(lif.inputs, n));
    let offsets = lif.offsets();
    let sizes: Vec<usize> = lif.populations.iter().map(|p| p.size).collect();
    let with_chip = lif
        .populations
        .iter()
        .filter(|p| p.metadata.contains_key("dynap_Itau_nmda"))
        .count();
    if with_chip != 0 && with_chip != lif.populations.len() {
        return Err(NirError::graph(
            None,
            "the chip variant's dendrite values are on some populations only",
        ));
    }
    let has_chip = with_chip != 0;
    let mut chip = has_chip.then(|| ChipSynapses::defaults(n));
    for (p, &o) in lif.populations.iter().zip(&offsets) {
        for param in Param::ALL {
            let key = format!("dynap_{}", param.rockpool_name());
            let values = numbers_of(&p.metadata, &key).ok_or_else(|| missing(&p.name, &key))?;
            if values.len() != p.size {
                return Err(NirError::graph(
                    Some(&p.name),
                    format!("'{key}' has {} values for {} neurons", values.len(), p.size),
                ));
            }
            net.params.get_mut(param)[o..o + p.size].copy_from_slice(&values);
        }
        if let Some(chip) = chip.as_mut() {
            for (name, d) in
                DENDRITE_NAMES
                    .iter()
                    .zip([&mut chip.nmda, &mut chip.gaba, &mut chip.shunt])
            {
                for (q, v) in [
                    ("Itau", &mut d.i_tau),
                    ("Igain", &mut d.i_gain),
                    ("C", &mut d.c),
                ] {
                    let meta = format!("dynap_{q}_{name}");
                    let values =
                        numbers_of(&p.metadata, &meta).ok_or_else(|| missing(&p.name, &meta))?;
                    if values.len() != p.size {
                        return Err(NirError::graph(
                            Some(&p.name),
                            format!("'{meta}' has {} values", values.len()),
                        ));
                    }
                    v[o..o + p.size].copy_from_slice(&values);
                }
            }
        }
    }
    let mut in_types: Option<Vec<SynapseChoice>> = None;
    let mut rec_types: Option<Vec<SynapseChoice>> = None;
    for b in &lif.blocks {
        let name = b.nodes.first().map_or("", String::as_str);
        let Some((shape, data)) = b.metadata.get("dynap_weight").and_then(Value::numbers) else {
            continue; // the weighted input
        };
        if b.from == LifSource::Input && net.w_in.is_none() {
            return Err(NirError::graph(
                Some(name),
                "'dynap_weight' of an input block, but the graph says the input is weighted already",
            ));
        }
        let cols = sizes[b.to];
        let rows = match b.from {
            LifSource::Input => lif.inputs,
            LifSource::Population(a) => sizes[a],
        };
        if shape.as_slice() != [cols, rows] {
            return Err(NirError::graph(
                Some(name),
                format!("'dynap_weight' has shape {shape:?}, not [{cols}, {rows}]"),
            ));
        }
        let mut w = vec![0.0; rows * cols];
        for i in 0..cols {
            for j in 0..rows {
                w[j * cols + i] = data[i * rows + j];
            }
        }
        place(&mut net, &offsets, b, &sizes, &w);
        let nmda = numbers_of(&b.metadata, "dynap_nmda");
        let shunt = numbers_of(&b.metadata, "dynap_shunt");
        if let (Some(nmda), Some(shunt)) = (nmda, shunt) {
            if nmda.len() != rows * cols || shunt.len() != rows * cols {
                return Err(NirError::graph(
                    Some(name),
                    format!(
                        "'dynap_nmda' and 'dynap_shunt' have {} and {} values, not [{cols}, {rows}]",
                        nmda.len(),
                        shunt.len()
                    ),
                ));
            }
            let (types, total_rows, row0) = match b.from {
                LifSource::Input => (&mut in_types, lif.inputs, 0),
                LifSource::Population(a) => (&mut rec_types, n, offsets[a]),
            };
            let t = types.get_or_insert_with(|| vec![SynapseChoice::default(); total_rows * n]);
            for i in 0..cols {
                for j in 0..rows {
                    t[(row0 + j) * n + offsets[b.to] + i] = SynapseChoice {
                        nmda: nmda[i * rows + j] != 0.0,
                        shunt: shunt[i * rows + j] != 0.0,
                    };
                }
            }
        }
    }
    if let Some(chip) = chip.as_mut() {
        chip.w_in_types = in_types;
        chip.w_rec_types = rec_types;
    }
    net.chip = chip;
    net.validate()
        .map_err(|e| NirError::graph(None, format!("the exported network: {e}")))?;
    let mut file = NetworkFile::new(net);
    file.architecture = declared.then_some(arch);
    Ok(Imported {
        file,
        lif,
        report: ImportReport {
            exact: true,
            populations: Vec::new(),
            warnings: Vec::new(),
        },
    })
}

fn floats(shape: Vec<usize>, data: Vec<f64>) -> Value {
    Value::floats(shape, data)
}

/// Exports a DynapSim network as a NIR graph (see [`super`]): `Linear` + `CubaLIF` nodes that
/// approximate it for other tools, with its exact values in the nodes' metadata.
pub fn export(file: &NetworkFile) -> Result<NirGraph, NirError> {
    let net = &file.network;
    net.validate()
        .map_err(|e| NirError::graph(None, format!("the network: {e}")))?;
    let n = net.neurons();
    let declared = file.architecture.is_some();
    let arch = match &file.architecture {
        Some(a) => a.clone(),
        None => {
            let mut p = Population::new("neurons", n);
            p.recurrent = net.w_rec.as_slice().iter().any(|&w| w != 0.0);
            Architecture::new(
                net.input_channels(),
                vec![p],
                vec![Connection {
                    from: Source::Input,
                    to: 0,
                }],
                0,
            )
            .map_err(|e| NirError::graph(None, format!("the network: {e}")))?
        }
    };
    let pops = arch.populations();
    let ranges = arch.ranges();
    let taken = |name: &str| pops.iter().any(|p| p.name == name);
    let fresh = |base: &str| {
        let mut name = base.to_string();
        while taken(&name) {
            name.push('_');
        }
        name
    };
    let input_name = "input".to_string();
    let output_name = fresh("output");
    let mut graph = NirGraph {
        version: super::NIR_VERSION.to_string(),
        ..NirGraph::default()
    };
    let mut input = Tree::new();
    input.insert(
        "shape".into(),
        Value::Ints {
            shape: vec![1],
            data: vec![net.input_channels() as i64],
        },
    );
    graph
        .nodes
        .insert(input_name.clone(), NirNode::new("Input", input));
    let k_mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut scales = Vec::new();
    for (k, (p, r)) in pops.iter().zip(&ranges).enumerate() {
        let ut = &net.params.u_t[r.clone()];
        let kap: Vec<f64> = r
            .clone()
            .map(|j| (net.params.kappa_n[j] + net.params.kappa_p[j]) / 2.0)
            .collect();
        let tau = |i_tau: &[f64], c: &[f64]| -> Vec<f64> {
            (0..p.size)
                .map(|j| {
                    let i = i_tau[r.start + j].max(net.params.i_o[r.start + j]);
                    tau_converter(i, ut[j], kap[j], c[r.start + j]).unwrap_or(f64::NAN)
                })
                .collect()
        };
        if p.name.contains('/') {
            return Err(NirError::graph(
                Some(&p.name),
                "a population name with '/' cannot be a NIR node name (an HDF5 group)",
            ));
        }
        let tau_mem = tau(&net.params.i_tau_mem, &net.params.c_mem);
        let tau_syn = tau(&net.params.i_tau_syn, &net.params.c_syn);
        if let Some(bad) = tau_mem
            .iter()
            .chain(&tau_syn)
            .find(|t| !(t.is_finite() && **t > 0.0))
        {
            return Err(NirError::graph(
                Some(&p.name),
                format!("a time constant of {bad} s: NIR needs them above 0"),
            ));
        }
        let scale = fit_scale(
            LifKind::CubaLif,
            k_mean(&tau_mem),
            k_mean(&tau_syn),
            net.dt,
            net.variant,
        )
        .scale;
        scales.push(scale);
        let size = p.size;
        let mut fields = Tree::new();
        fields.insert("tau_mem".into(), floats(vec![size], tau_mem));
        fields.insert("tau_syn".into(), floats(vec![size], tau_syn));
        fields.insert("r".into(), floats(vec![size], vec![1.0; size]));
        fields.insert("v_leak".into(), floats(vec![size], vec![0.0; size]));
        fields.insert("v_reset".into(), floats(vec![size], vec![0.0; size]));
        fields.insert("v_threshold".into(), floats(vec![size], vec![1.0; size]));
        fields.insert("w_in".into(), floats(vec![size], vec![1.0; size]));
        let mut node = NirNode::new("CubaLIF", fields);
        let m = &mut node.metadata;
        m.insert("dynap_population".into(), Value::scalar(k as f64));
        m.insert(
            "dynap_variant".into(),
            Value::Text(net.variant.name().into()),
        );
        m.insert("dynap_Iscale".into(), Value::scalar(net.i_scale));
        m.insert("dynap_dt".into(), Value::scalar(net.dt));
        m.insert("dynap_lif_scale".into(), Value::scalar(scale));
        if declared {
            m.insert(
                "dynap_first_core".into(),
                Value::scalar(arch.first_cores()[k] as f64),
            );
        }
        for param in Param::ALL {
            m.insert(
                format!("dynap_{}", param.rockpool_name()),
                floats(vec![size], net.params.get(param)[r.clone()].to_vec()),
            );
        }
        if let Some(chip) = &net.chip {
            for (name, d) in DENDRITE_NAMES
                .iter()
                .zip([&chip.nmda, &chip.gaba, &chip.shunt])
            {
                for (q, v) in [("Itau", &d.i_tau), ("Igain", &d.i_gain), ("C", &d.c)] {
                    m.insert(
                        format!("dynap_{q}_{name}"),
                        floats(vec![size], v[r.clone()].to_vec()),
                    );
                }
            }
        }
        graph.nodes.insert(p.name.clone(), node);
    }
    for (index, block) in arch.blocks().enumerate() {
        let from_name = match block.from {
            Source::Input => input_name.clone(),
            Source::Population(a) => pops[a].name.clone(),
        };
        let to_name = pops[block.to].name.clone();
        let (rows, cols) = (block.rows.len(), block.cols.len());
        let (matrix, n_cols, types) = match block.matrix {
            dynap_model::WeightMatrix::Input => match &net.w_in {
                Some(w) => (w, n, net.chip.as_ref().and_then(|c| c.w_in_types.as_ref())),
                None => {
                    graph.edges.push((from_name, to_name));
                    continue;
                }
            },
            dynap_model::WeightMatrix::Recurrent => (
                &net.w_rec,
                n,
                net.chip.as_ref().and_then(|c| c.w_rec_types.as_ref()),
            ),
        };
        // [out][in]: NIR's order.
        let mut exact = vec![0.0; cols * rows];
        let mut nmda = vec![0i64; cols * rows];
        let mut shunt = vec![0i64; cols * rows];
        for (i, post) in block.cols.clone().enumerate() {
            for (j, pre) in block.rows.clone().enumerate() {
                exact[i * rows + j] = matrix.as_slice()[pre * n_cols + post];
                if let Some(t) = types {
                    nmda[i * rows + j] = i64::from(t[pre * n_cols + post].nmda);
                    shunt[i * rows + j] = i64::from(t[pre * n_cols + post].shunt);
                }
            }
        }
        let scale = scales[block.to];
        let approx: Vec<f64> = exact.iter().map(|w| w / scale).collect();
        let mut linear = NirNode::new("Linear", {
            let mut f = Tree::new();
            f.insert("weight".into(), floats(vec![cols, rows], approx));
            f
        });
        let m = &mut linear.metadata;
        m.insert("dynap_connection".into(), Value::scalar(index as f64));
        m.insert("dynap_weight".into(), floats(vec![cols, rows], exact));
        if types.is_some() {
            m.insert(
                "dynap_nmda".into(),
                Value::Ints {
                    shape: vec![cols, rows],
                    data: nmda,
                },
            );
            m.insert(
                "dynap_shunt".into(),
                Value::Ints {
                    shape: vec![cols, rows],
                    data: shunt,
                },
            );
        }
        let mut name = format!("w_{from_name}_{to_name}");
        while taken(&name) || graph.nodes.contains_key(&name) {
            name.push('_');
        }
        graph.nodes.insert(name.clone(), linear);
        graph.edges.push((from_name, name.clone()));
        graph.edges.push((name, to_name));
    }
    let readout = &pops[arch.readout()];
    let mut out = Tree::new();
    out.insert(
        "shape".into(),
        Value::Ints {
            shape: vec![1],
            data: vec![readout.size as i64],
        },
    );
    graph
        .nodes
        .insert(output_name.clone(), NirNode::new("Output", out));
    graph.edges.push((readout.name.clone(), output_name));
    graph.metadata.insert(
        "dynap_architecture".into(),
        Value::scalar(f64::from(u8::from(declared))),
    );
    graph.metadata.insert(
        "dynap_weighted_input".into(),
        Value::scalar(f64::from(u8::from(net.w_in.is_none()))),
    );
    Ok(graph)
}
