//! Networks of populations in the experiment TOML (`[[network.population]]`, `[[network.connection]]`,
//! `network.readout`), their conversion to a checked [`Architecture`] with errors that name the key,
//! and their initial weights.
//!
//! ```toml
//! [network]
//! readout = "out"
//!
//! [[network.population]]
//! name = "hidden"
//! size = 30
//! recurrent = true            # optional, default false
//! train = ["Itau_mem"]        # optional: its currents that train, one value per core
//! [network.population.params] # optional: this population's parameters
//! Itau_mem = 5e-12            # Rockpool's names, SI units
//! tau_syn = 5e-3              # or high-level values (s), translated to currents
//!
//! [[network.population]]
//! name = "out"
//! size = 2
//!
//! [[network.connection]]
//! from = "input"              # "input" or a population
//! to = "hidden"
//!
//! [[network.connection]]
//! from = "hidden"
//! to = "out"
//! ```
//!
//! A population's parameters are one value for all its neurons (as a core of the chip has one bias
//! set); what is not given is Rockpool's default. Besides the 24 parameters by Rockpool's names, the
//! high-level values of Rockpool's `DynapSimCore.from_specification` (model.md section 4.1), computed
//! with the population's own layout values (`C_*`, `Ut`, `kappa_*`, `Vth`, given or default):
//!
//! * time constants `tau_mem`, `tau_syn`, `tau_ahp` (s): `I_tau = (Ut / kappa) C / tau`, with
//!   `kappa = (kappa_n + kappa_p) / 2` and `C` = `C_mem`, `C_syn`, `C_ahp`;
//! * pulse widths `t_ref`, `t_pulse`, `t_pulse_ahp` (s): `I = Vth C / t`, with `C` = `C_ref`,
//!   `C_pulse`, `C_pulse_ahp`;
//! * gain ratios `r_gain_mem`, `r_gain_syn`, `r_gain_ahp`: `I_gain = r I_tau`. As in Rockpool, a DPI
//!   whose time constant is given keeps its gain ratio: its gain current follows its new leak current
//!   at Rockpool's default ratio (4, 100, 1) unless its ratio or its gain current is given.
//!
//! A current and the high-level value that sets it cannot both be given.
//!
//! Initial weights ([`initial_weights`]): Kaiming uniform per block, `U(-sqrt(6 / fan_in), +sqrt(6 /
//! fan_in))` with `fan_in` the block's rows (Rockpool's initialisation, as the paper's network has it
//! in [`crate::experiment::initial_network`]), rounded to `f32`. Each block draws from its own
//! ChaCha8 stream of the seed, numbered from its source's and target's names, so adding, removing or
//! reordering other populations does not change a block's weights.

use crate::config::ConfigError;
use dynap_model::translation::{pulse_converter, tau_converter};
use dynap_model::{
    Architecture, ArchitectureError, Connection, End, INPUT_NAME, Matrix, Network, Param,
    Population, Source, Variant, WeightMatrix,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The populations, connections and readout of the `[network]` table (`population`, `connection`,
/// `readout`). Empty (no populations) means the network is not described by populations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchitectureConfig {
    /// `[[network.population]]`, in order: population `k` is the `k`-th block of neurons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub population: Vec<PopulationConfig>,
    /// `[[network.connection]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection: Vec<ConnectionConfig>,
    /// `network.readout`: the output population's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout: Option<String>,
}

impl ArchitectureConfig {
    /// Each connection's initial-weight factor, in order (see [`initial_weights_scaled`]).
    pub fn init_gains(&self) -> Vec<f64> {
        self.connection
            .iter()
            .map(|c| c.init_gain.unwrap_or(1.0))
            .collect()
    }
}

/// One `[[network.population]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationConfig {
    /// Its name (unique; not `"input"`).
    pub name: String,
    /// Neurons.
    pub size: usize,
    /// Whether its neurons connect to each other.
    #[serde(default)]
    pub recurrent: bool,
    /// Its parameters by Rockpool's names (SI) or high-level names (see the module documentation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, f64>,
    /// Its bias currents that train (Rockpool's names), beside `training.currents` (which train in
    /// every population): one value per core of the population, as on the chip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train: Vec<String>,
}

impl PopulationConfig {
    /// The currents of `train`, checked; an error is the name and the reason.
    pub fn trained_currents(&self) -> Result<Vec<Param>, (String, String)> {
        let mut out: Vec<Param> = Vec::new();
        for name in &self.train {
            let p = Param::from_name(name)
                .filter(|p| Param::CURRENTS.contains(p))
                .ok_or_else(|| {
                    (
                        name.clone(),
                        format!(
                            "{name:?} is not a bias current; the currents that train are {}",
                            Param::CURRENTS
                                .iter()
                                .map(|p| p.rockpool_name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            if out.contains(&p) {
                return Err((name.clone(), format!("{name:?} is given twice")));
            }
            out.push(p);
        }
        Ok(out)
    }
}

/// One `[[network.connection]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `"input"` or a population's name.
    pub from: String,
    /// A population's name.
    pub to: String,
    /// A factor on the block's Kaiming-uniform initial weights (default 1): a block from a few sparse
    /// inputs (latency-coded features) needs larger weights to make its neurons spike at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_gain: Option<f64>,
}

/// How a high-level value sets a current.
#[derive(Clone, Copy)]
enum Kind {
    /// A DPI time constant: `(Ut / kappa) C / tau`.
    Tau,
    /// A pulse width: `Vth C / t`.
    Pulse,
}

/// The high-level time values: `(name, current, capacitance, kind)`.
const TIMES: [(&str, Param, Param, Kind); 6] = [
    ("tau_mem", Param::ItauMem, Param::CMem, Kind::Tau),
    ("tau_syn", Param::ItauSyn, Param::CSyn, Kind::Tau),
    ("tau_ahp", Param::ItauAhp, Param::CAhp, Kind::Tau),
    ("t_ref", Param::Iref, Param::CRef, Kind::Pulse),
    ("t_pulse", Param::Ipulse, Param::CPulse, Kind::Pulse),
    (
        "t_pulse_ahp",
        Param::IpulseAhp,
        Param::CPulseAhp,
        Kind::Pulse,
    ),
];

/// The gain ratios: `(name, gain current, leak current)`; the default ratio is the defaults' ratio.
const GAINS: [(&str, Param, Param); 3] = [
    ("r_gain_mem", Param::IgainMem, Param::ItauMem),
    ("r_gain_syn", Param::IgainSyn, Param::ItauSyn),
    ("r_gain_ahp", Param::IgainAhp, Param::ItauAhp),
];

const HIGH_LEVEL: &str =
    "tau_mem, tau_syn, tau_ahp, t_ref, t_pulse, t_pulse_ahp, r_gain_mem, r_gain_syn, r_gain_ahp";

impl ArchitectureConfig {
    /// Whether no population is described (the network is then the single-population one of the
    /// other `network` keys).
    pub fn is_empty(&self) -> bool {
        self.population.is_empty() && self.connection.is_empty() && self.readout.is_none()
    }

    /// The checked [`Architecture`] for `inputs` input channels (the task's); every problem names its
    /// key (`network.connection[2].to`, `network.population[0].params.tau_mem`), indices counted from
    /// 0 in the order of the file.
    pub fn to_architecture(&self, inputs: usize) -> Result<Architecture, ConfigError> {
        let bad = |key: String, reason: String| ConfigError { key, reason };
        let mut populations = Vec::with_capacity(self.population.len());
        for (k, p) in self.population.iter().enumerate() {
            let mut pop = Population::new(p.name.clone(), p.size);
            pop.recurrent = p.recurrent;
            p.trained_currents()
                .map_err(|(_, reason)| bad(format!("network.population[{k}].train"), reason))?;
            pop.params = overrides(&p.params)
                .map_err(|(name, reason)| {
                    bad(format!("network.population[{k}].params.{name}"), reason)
                })?
                .into_iter()
                .map(|(param, (value, _))| (param, value))
                .collect();
            populations.push(pop);
        }
        let model_error = |e: dynap_model::Error| bad(self.key_of(&e), e.to_string());
        Architecture::check_populations(&populations).map_err(model_error)?;
        let find = |name: &str, key: String| {
            populations
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| bad(key, format!("no population named {name:?}")))
        };
        let mut connections = Vec::with_capacity(self.connection.len());
        for (c, conn) in self.connection.iter().enumerate() {
            let from = if conn.from == INPUT_NAME {
                Source::Input
            } else {
                Source::Population(find(&conn.from, format!("network.connection[{c}].from"))?)
            };
            let to = find(&conn.to, format!("network.connection[{c}].to"))?;
            connections.push(Connection { from, to });
        }
        let readout = match &self.readout {
            Some(name) => find(name, "network.readout".into())?,
            None => {
                return Err(bad(
                    "network.readout".into(),
                    "missing: name the output population".into(),
                ));
            }
        };
        Architecture::new(inputs, populations, connections, readout).map_err(model_error)
    }

    /// The key an architecture error is about.
    fn key_of(&self, e: &dynap_model::Error) -> String {
        let dynap_model::Error::Architecture(e) = e else {
            return "network".into();
        };
        let population = |k: usize, field: &str| format!("network.population[{k}]{field}");
        let connection = |c: usize, field: &str| format!("network.connection[{c}]{field}");
        match e {
            ArchitectureError::NoInputs => "task.channels".into(),
            ArchitectureError::NoPopulations | ArchitectureError::TooLarge => {
                "network.population".into()
            }
            ArchitectureError::EmptyName { population: k }
            | ArchitectureError::ReservedName { population: k }
            | ArchitectureError::DuplicateName { population: k, .. } => population(*k, ".name"),
            ArchitectureError::EmptyPopulation { population: k, .. } => population(*k, ".size"),
            ArchitectureError::PopulationParam {
                population: k,
                param,
                ..
            } => {
                // The key that set it: its own name, or the high-level value it came from.
                let key = overrides(&self.population[*k].params)
                    .ok()
                    .and_then(|o| o.get(param).map(|(_, key)| key.clone()))
                    .unwrap_or_else(|| param.rockpool_name().to_owned());
                population(*k, &format!(".params.{key}"))
            }
            ArchitectureError::Unreached { population: k, .. } => population(*k, ""),
            ArchitectureError::Placement { .. } => "network.placement".into(),
            ArchitectureError::UnknownPopulation {
                connection: c, end, ..
            } => connection(
                *c,
                match end {
                    End::From => ".from",
                    End::To => ".to",
                },
            ),
            ArchitectureError::SelfConnection { connection: c, .. }
            | ArchitectureError::DuplicateConnection { connection: c, .. } => connection(*c, ""),
            ArchitectureError::Readout { .. } => "network.readout".into(),
            ArchitectureError::NoInputConnection => "network.connection".into(),
        }
    }
}

/// SI values by parameter, each with the key of the table that set it.
type Overrides = BTreeMap<Param, (f64, String)>;

/// Sets `param` from `key`, refused if another key has set it.
fn set(out: &mut Overrides, param: Param, value: f64, key: &str) -> Result<(), (String, String)> {
    if let Some((_, first)) = out.get(&param) {
        return Err((
            key.to_owned(),
            format!(
                "sets {}, which `{first}` also sets: give one of them",
                param.rockpool_name()
            ),
        ));
    }
    out.insert(param, (value, key.to_owned()));
    Ok(())
}

/// A population's parameter table as SI values, each with the key that set it; an error is the key
/// and the reason.
fn overrides(table: &BTreeMap<String, f64>) -> Result<Overrides, (String, String)> {
    let mut out = Overrides::new();
    // The parameters by name first: the high-level values are computed with them.
    for (key, &value) in table {
        let high_level = TIMES.iter().any(|t| t.0 == key) || GAINS.iter().any(|g| g.0 == key);
        match Param::from_name(key) {
            Some(param) => set(&mut out, param, value, key)?,
            None if high_level => {}
            None => {
                return Err((
                    key.clone(),
                    format!(
                        "not a parameter: Rockpool's names (Itau_mem, C_mem, ...) in SI units, or {HIGH_LEVEL}"
                    ),
                ));
            }
        }
    }
    let value_of =
        |p: Param, out: &Overrides| out.get(&p).map_or_else(|| p.default_value(), |v| v.0);
    let must_be_positive = |key: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err((
                key.to_owned(),
                format!("{value} is not a finite value above 0"),
            ))
        }
    };
    for &(key, current, cap, kind) in &TIMES {
        let Some(&value) = table.get(key) else {
            continue;
        };
        must_be_positive(key, value)?;
        let c = value_of(cap, &out);
        let i = match kind {
            Kind::Tau => {
                let kappa = (value_of(Param::KappaN, &out) + value_of(Param::KappaP, &out)) / 2.0;
                tau_converter(value, value_of(Param::Ut, &out), kappa, c)
            }
            Kind::Pulse => pulse_converter(value, value_of(Param::Vth, &out), c),
        }
        .expect("a positive value converts");
        set(&mut out, current, i, key)?;
    }
    for &(key, gain, leak) in &GAINS {
        let ratio = match table.get(key) {
            Some(&r) => {
                must_be_positive(key, r)?;
                r
            }
            // A time constant given alone: the gain current keeps Rockpool's default ratio.
            None => {
                let tau_given = out
                    .get(&leak)
                    .is_some_and(|(_, k)| TIMES.iter().any(|t| t.0 == k));
                if !tau_given || out.contains_key(&gain) {
                    continue;
                }
                gain.default_value() / leak.default_value()
            }
        };
        let k = table
            .get(key)
            .map_or_else(|| out[&leak].1.clone(), |_| key.to_owned());
        let i_gain = ratio * value_of(leak, &out);
        set(&mut out, gain, i_gain, &k)?;
    }
    Ok(out)
}

/// The ChaCha8 stream of the block from `from` to `to` (names; [`INPUT_NAME`] for the input): FNV-1a
/// of the two names joined by the byte 0xff, which no UTF-8 text holds, so distinct pairs give
/// distinct inputs.
fn block_stream(from: &str, to: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in from.bytes().chain([0xff]).chain(to.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Kaiming-uniform initial weights of `architecture` (see the module documentation): `w_in`
/// `[Nin, N]` and `w_rec` `[N, N]`, zero outside the blocks.
pub fn initial_weights(architecture: &Architecture, seed: u64) -> (Matrix, Matrix) {
    initial_weights_scaled(architecture, seed, &[])
}

/// [`initial_weights`] with block `k`'s bound multiplied by `gains[k]` (blocks in
/// [`Architecture::blocks`] order: the connections as declared, then the recurrent blocks; 1 where
/// `gains` ends). The draws are the same; only their scale changes.
pub fn initial_weights_scaled(
    architecture: &Architecture,
    seed: u64,
    gains: &[f64],
) -> (Matrix, Matrix) {
    let (n_in, n) = (architecture.inputs(), architecture.neurons());
    let mut w_in = Matrix::zeros(n_in, n);
    let mut w_rec = Matrix::zeros(n, n);
    let pops = architecture.populations();
    for (k, block) in architecture.blocks().enumerate() {
        let gain = gains.get(k).copied().unwrap_or(1.0);
        let from = match block.from {
            Source::Input => INPUT_NAME,
            Source::Population(k) => &pops[k].name,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(block_stream(from, &pops[block.to].name));
        let bound = (6.0 / block.rows.len() as f64).sqrt() * gain;
        let m = match block.matrix {
            WeightMatrix::Input => &mut w_in,
            WeightMatrix::Recurrent => &mut w_rec,
        };
        let data = m.as_mut_slice();
        for r in block.rows {
            for c in block.cols.clone() {
                data[r * n + c] = f64::from(((rng.r#gen::<f64>() * 2.0 - 1.0) * bound) as f32);
            }
        }
    }
    (w_in, w_rec)
}

/// The untrained network of `architecture` for a seed: its flattened network of the `variant`
/// ([`Architecture::network`]: the populations' parameters, default `Iscale` and `dt`, to be set by
/// the caller) with [`initial_weights`].
pub fn initial_network(architecture: &Architecture, variant: Variant, seed: u64) -> Network {
    initial_network_scaled(architecture, variant, seed, &[])
}

/// [`initial_network`] with [`initial_weights_scaled`].
pub fn initial_network_scaled(
    architecture: &Architecture,
    variant: Variant,
    seed: u64,
    gains: &[f64],
) -> Network {
    let mut net = architecture.network(variant);
    let (w_in, w_rec) = initial_weights_scaled(architecture, seed, gains);
    net.w_in = Some(w_in);
    net.w_rec = w_rec;
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[network]` tables parse as the main configuration would hold them.
    fn parse(text: &str) -> ArchitectureConfig {
        #[derive(Deserialize)]
        struct File {
            network: ArchitectureConfig,
        }
        toml::from_str::<File>(text).unwrap().network
    }

    const LAYERS: &str = r#"
[network]
readout = "out"

[[network.population]]
name = "hidden"
size = 30
recurrent = true
[network.population.params]
Itau_mem = 5e-12
tau_syn = 5e-3

[[network.population]]
name = "out"
size = 3

[[network.connection]]
from = "input"
to = "hidden"

[[network.connection]]
from = "hidden"
to = "out"
"#;

    fn err(config: &ArchitectureConfig) -> ConfigError {
        config.to_architecture(4).unwrap_err()
    }

    #[test]
    fn a_layered_network_converts_and_round_trips() {
        let c = parse(LAYERS);
        assert_eq!(c.population.len(), 2);
        assert!(!c.population[1].recurrent, "recurrent defaults to false");
        let a = c.to_architecture(4).unwrap();
        assert_eq!(
            (a.inputs(), a.neurons(), a.readout_range()),
            (4, 33, 30..33)
        );
        let hidden = &a.populations()[0];
        assert!(hidden.recurrent);
        assert_eq!(hidden.params[&Param::ItauMem], 5e-12);
        // tau_syn = 5 ms with the default C_syn and slope factors, and the gain follows at ratio 100.
        let kappa = (0.75 + 0.66) / 2.0;
        let i_tau_syn = (0.025 / kappa) * 24.5e-12 / 5e-3;
        assert_eq!(hidden.params[&Param::ItauSyn], i_tau_syn);
        let ratio = Param::IgainSyn.default_value() / Param::ItauSyn.default_value();
        assert_eq!(hidden.params[&Param::IgainSyn], ratio * i_tau_syn);
        assert!((ratio - 100.0).abs() < 1e-9);
        // Itau_mem was given as a current: Igain_mem keeps its default.
        assert!(!hidden.params.contains_key(&Param::IgainMem));
        assert_eq!(hidden.params.len(), 3);
        assert!(a.populations()[1].params.is_empty());
        // Serialised and parsed again, the same.
        #[derive(Serialize)]
        struct File<'a> {
            network: &'a ArchitectureConfig,
        }
        let text = toml::to_string_pretty(&File { network: &c }).unwrap();
        assert_eq!(parse(&text), c, "{text}");
        // Whole numbers are numbers too.
        let c2 = parse(&LAYERS.replace("tau_syn = 5e-3", "kappa_n = 1"));
        assert_eq!(c2.population[0].params["kappa_n"], 1.0);
        assert!(ArchitectureConfig::default().is_empty());
        assert!(!c.is_empty());
    }

    #[test]
    fn high_level_values_use_the_populations_layout() {
        let mut c = parse(LAYERS);
        let p = &mut c.population[1].params;
        p.insert("C_mem".into(), 6e-12);
        p.insert("tau_mem".into(), 40e-3);
        p.insert("r_gain_mem".into(), 2.0);
        p.insert("t_ref".into(), 2e-3);
        p.insert("Vth".into(), 0.5);
        let a = c.to_architecture(4).unwrap();
        let out = &a.populations()[1].params;
        let i_tau = (0.025 / ((0.75 + 0.66) / 2.0)) * 6e-12 / 40e-3;
        assert_eq!(out[&Param::ItauMem], i_tau);
        assert_eq!(out[&Param::IgainMem], 2.0 * i_tau);
        assert_eq!(out[&Param::Iref], 0.5 * 1.5e-12 / 2e-3);
        // A ratio alone applies to the default leak.
        let mut c = parse(LAYERS);
        c.population[1].params.insert("r_gain_ahp".into(), 3.0);
        let a = c.to_architecture(4).unwrap();
        assert_eq!(
            a.populations()[1].params[&Param::IgainAhp],
            3.0 * Param::ItauAhp.default_value()
        );
        // The flattened network carries them.
        let net = a.network(Variant::Chip);
        assert_eq!(
            net.params.i_gain_ahp[30],
            3.0 * Param::ItauAhp.default_value()
        );
        assert_eq!(net.params.i_gain_ahp[29], Param::IgainAhp.default_value());
        net.validate().unwrap();
    }

    #[test]
    fn bad_descriptions_name_the_key() {
        let check = |edit: &dyn Fn(&mut ArchitectureConfig), key: &str, reason: &str| {
            let mut c = parse(LAYERS);
            edit(&mut c);
            let e = err(&c);
            assert_eq!(e.key, key, "{e}");
            assert!(e.reason.contains(reason), "{e}");
        };
        check(
            &|c| c.connection[1].to = "hiden".into(),
            "network.connection[1].to",
            "no population named \"hiden\"",
        );
        check(
            &|c| c.connection[0].from = "inputs".into(),
            "network.connection[0].from",
            "no population named \"inputs\"",
        );
        check(
            &|c| c.readout = Some("output".into()),
            "network.readout",
            "no population named \"output\"",
        );
        check(&|c| c.readout = None, "network.readout", "missing");
        check(
            &|c| c.population[1].name = "hidden".into(),
            "network.population[1].name",
            "both named \"hidden\"",
        );
        check(
            &|c| c.population[1].name = "input".into(),
            "network.population[1].name",
            "the name of the network's input",
        );
        check(
            &|c| c.population[0].size = 0,
            "network.population[0].size",
            "no neurons",
        );
        check(
            &|c| {
                c.connection.push(ConnectionConfig {
                    from: "hidden".into(),
                    to: "out".into(),
                    init_gain: None,
                })
            },
            "network.connection[2]",
            "repeats connection 1",
        );
        check(
            &|c| {
                c.connection.push(ConnectionConfig {
                    from: "out".into(),
                    to: "out".into(),
                    init_gain: None,
                })
            },
            "network.connection[2]",
            "make the population recurrent",
        );
        check(
            &|c| {
                c.connection.remove(1);
            },
            "network.population[1]",
            "not reached",
        );
        check(
            &|c| c.connection[0].from = "out".into(),
            "network.connection",
            "no connection comes from the input",
        );
        check(
            &|c| {
                c.population[0].params.insert("Itau_syn".into(), 1e-11);
            },
            "network.population[0].params.tau_syn",
            "sets Itau_syn, which `Itau_syn` also sets",
        );
        check(
            &|c| {
                c.population[0].params.insert("tau_nope".into(), 1.0);
            },
            "network.population[0].params.tau_nope",
            "not a parameter",
        );
        check(
            &|c| {
                c.population[0].params.insert("tau_mem".into(), -1.0);
            },
            "network.population[0].params.tau_mem",
            "not a finite value above 0",
        );
        check(
            &|c| {
                c.population[1].params.insert("Ispkthr".into(), 0.0);
            },
            "network.population[1].params.Ispkthr",
            "Ispkthr = 0e0 A; it must be strictly positive",
        );
        check(
            &|c| {
                c.population[1].params.insert("t_pulse".into(), 1e-6);
                c.population[1]
                    .params
                    .insert("C_pulse".into(), f64::INFINITY);
            },
            "network.population[1].params.t_pulse",
            "Ipulse = inf A; it must be finite",
        );
        let c = parse(LAYERS);
        let e = c.to_architecture(0).unwrap_err();
        assert_eq!(e.key, "task.channels");
        // Unknown keys are refused by the TOML reader.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            network: ArchitectureConfig,
        }
        let e = toml::from_str::<File>(
            "[[network.population]]\nname = \"a\"\nsize = 1\nrecurent = true\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("recurent"), "{e}");
    }

    #[test]
    fn initial_weights_are_kaiming_per_block_and_independent_of_other_blocks() {
        let a = parse(LAYERS).to_architecture(4).unwrap();
        let (w_in, w_rec) = initial_weights(&a, 7);
        let masks = a.masks();
        // Bounds and zeros, per block: input -> hidden (fan-in 4), hidden -> out and hidden's own
        // block (fan-in 30); f32 values.
        for (m, flags) in [(&w_in, &masks.w_in), (&w_rec, &masks.w_rec)] {
            for (k, (&w, &allowed)) in m.as_slice().iter().zip(flags).enumerate() {
                if !allowed {
                    assert_eq!(w, 0.0);
                    continue;
                }
                let fan_in = if std::ptr::eq(m, &w_in) { 4.0 } else { 30.0 };
                assert!(w.abs() <= (6.0f64 / fan_in).sqrt(), "{k}: {w}");
                assert_ne!(w, 0.0);
                assert_eq!(f64::from(w as f32), w);
            }
        }
        // The same seed, the same bits; another seed, other weights.
        assert_eq!(initial_weights(&a, 7), (w_in.clone(), w_rec.clone()));
        assert_ne!(initial_weights(&a, 8).0, w_in);
        // Blocks draw from different streams: hidden's own block is not hidden -> out's.
        assert_ne!(w_rec.get(0, 0), w_rec.get(0, 30));
        // A population declared first (shifting every offset), with connections of its own, leaves
        // the other blocks' weights as they were.
        let mut more = parse(LAYERS);
        more.population.insert(
            0,
            PopulationConfig {
                name: "side".into(),
                size: 5,
                recurrent: true,
                params: BTreeMap::new(),
                train: Vec::new(),
            },
        );
        more.connection.push(ConnectionConfig {
            from: "input".into(),
            to: "side".into(),
            init_gain: None,
        });
        more.connection.push(ConnectionConfig {
            from: "side".into(),
            to: "out".into(),
            init_gain: None,
        });
        let b = more.to_architecture(4).unwrap();
        let (b_in, b_rec) = initial_weights(&b, 7);
        let (h, o) = (b.ranges()[1].clone(), b.ranges()[2].clone());
        assert_eq!((h.start, o.start), (5, 35));
        for i in 0..4 {
            for j in 0..30 {
                assert_eq!(b_in.get(i, h.start + j).to_bits(), w_in.get(i, j).to_bits());
            }
        }
        for i in 0..30 {
            for j in 0..30 {
                assert_eq!(b_rec.get(h.start + i, h.start + j), w_rec.get(i, j));
            }
            for j in 0..3 {
                assert_eq!(b_rec.get(h.start + i, o.start + j), w_rec.get(i, 30 + j));
            }
        }
        // The initial network: the flattened one with these weights, for either variant.
        let net = initial_network(&a, Variant::Chip, 7);
        assert_eq!(net.w_in.as_ref(), Some(&w_in));
        assert_eq!(net.w_rec, w_rec);
        assert!(net.chip.is_some());
        net.validate().unwrap();
    }

    #[test]
    fn block_streams_differ() {
        let streams = [
            block_stream("input", "a"),
            block_stream("a", "b"),
            block_stream("b", "a"),
            block_stream("a", "a"),
            block_stream("ab", ""),
            block_stream("a", "b\u{0}"),
        ];
        for i in 0..streams.len() {
            for j in 0..i {
                assert_ne!(streams[i], streams[j], "{i} {j}");
            }
        }
    }
}
