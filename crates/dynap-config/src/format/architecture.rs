//! The network JSON's optional `architecture`: the populations and connections a network was
//! described with ([`dynap_model::Architecture`]), read and written beside its matrices.
//!
//! `{"inputs": Nin, "populations": [{"name", "size", "recurrent", "offset", "first_core"}],
//! "connections": [{"from", "to"}], "readout": name}`: `from` is `"input"` or a population's name, `to`
//! and `readout` are population names, `recurrent` defaults to false and `offset` (population `k`'s
//! first neuron, the sum of the sizes before it) is written for people and checked when given.
//! `first_core` (the population's first global core, `chip * 4 + core`) is its placement: without
//! it on every population, each takes the cores after the previous one's. The per-population
//! parameter overrides are not stored, as the per-neuron values of the file hold them: on reading, a
//! parameter that has one value over a population's neurons, other than Rockpool's default, is that
//! population's override (so an override equal to the default reads back as none).
//!
//! The reader checks the description ([`Architecture::new`]'s rules, each error at the path of the
//! population or connection), that it fits the matrices (`inputs` is `w_in`'s rows, the sizes add up
//! to `N`) and that every weight outside its blocks is zero (the error names the entry).

use super::error::{FormatError, Problem};
use super::text;
use dynap_model::{
    Architecture, ArchitectureError, Connection, End, INPUT_NAME, Network, Param, Population,
    Source, WeightMatrix,
};
use serde_json::{Map, Value, json};

/// The key of the architecture in a network JSON.
pub(crate) const KEY: &str = "architecture";

const KEYS: &[&str] = &["inputs", "populations", "connections", "readout"];
const POPULATION_KEYS: &[&str] = &["name", "size", "recurrent", "offset", "first_core"];
const CONNECTION_KEYS: &[&str] = &["from", "to"];

/// The architecture as JSON (compact, keys in the documented order).
pub(crate) fn to_json(a: &Architecture) -> String {
    let pops = a.populations();
    let populations: Vec<Value> = pops
        .iter()
        .zip(a.ranges())
        .zip(a.first_cores())
        .map(|((p, r), c)| json!({"name": p.name, "size": p.size, "recurrent": p.recurrent, "offset": r.start, "first_core": c}))
        .collect();
    let connections: Vec<Value> = a
        .connections()
        .iter()
        .map(|c| {
            let from = match c.from {
                Source::Input => INPUT_NAME,
                Source::Population(k) => &pops[k].name,
            };
            json!({"from": from, "to": pops[c.to].name})
        })
        .collect();
    let value = json!({
        "inputs": a.inputs(),
        "populations": populations,
        "connections": connections,
        "readout": pops[a.readout()].name,
    });
    serde_json::to_string(&value).expect("plain data serialises")
}

/// Refuses keys outside `allowed` in an object at `path`.
fn closed(
    obj: &Map<String, Value>,
    path: &str,
    allowed: &'static [&'static str],
) -> Result<(), FormatError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(FormatError::at(
            text::join(path, k),
            Problem::UnknownName {
                found: k.clone(),
                expected: allowed,
            },
        )),
        None => Ok(()),
    }
}

fn string<'v>(v: &'v Value, path: &str) -> Result<&'v str, FormatError> {
    v.as_str()
        .ok_or_else(|| FormatError::at(path, text::value_problem(v, "a string")))
}

fn count(v: &Value, path: &str) -> Result<usize, FormatError> {
    text::index(v, path, usize::MAX, "a whole number >= 0")
}

/// Reads the `architecture` value of a network JSON and checks it against `net` (see the module
/// documentation).
pub(crate) fn read(v: &Value, net: &Network) -> Result<Architecture, FormatError> {
    let obj = text::object(v, KEY)?;
    closed(obj, KEY, KEYS)?;
    let at = |rest: &str| format!("{KEY}.{rest}");
    let inputs = count(text::field(obj, KEY, "inputs")?, &at("inputs"))?;
    let pops_path = at("populations");
    let list = text::list(text::field(obj, KEY, "populations")?, &pops_path)?;
    let mut populations = Vec::with_capacity(list.len());
    let mut offsets = Vec::with_capacity(list.len());
    let mut first_cores = Vec::with_capacity(list.len());
    for (k, p) in list.iter().enumerate() {
        let path = format!("{pops_path}[{k}]");
        let o = text::object(p, &path)?;
        closed(o, &path, POPULATION_KEYS)?;
        let name = string(text::field(o, &path, "name")?, &text::join(&path, "name"))?;
        let size = count(text::field(o, &path, "size")?, &text::join(&path, "size"))?;
        let mut pop = Population::new(name, size);
        if let Some(r) = o.get("recurrent") {
            pop.recurrent = r.as_bool().ok_or_else(|| {
                FormatError::at(
                    text::join(&path, "recurrent"),
                    text::value_problem(r, "true or false"),
                )
            })?;
        }
        offsets.push(
            o.get("offset")
                .map(|v| count(v, &text::join(&path, "offset")))
                .transpose()?,
        );
        first_cores.push(
            o.get("first_core")
                .map(|v| count(v, &text::join(&path, "first_core")))
                .transpose()?,
        );
        populations.push(pop);
    }
    // A repeated name is reported as such, before connections are resolved by name.
    Architecture::check_populations(&populations)
        .map_err(|e| FormatError::at(error_path(&e), Problem::Network(e)))?;
    let find = |name: &str, path: String| {
        populations
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                FormatError::at(
                    path,
                    Problem::NoSuchPopulation {
                        name: name.to_owned(),
                    },
                )
            })
    };
    let conns_path = at("connections");
    let list = text::list(text::field(obj, KEY, "connections")?, &conns_path)?;
    let mut connections = Vec::with_capacity(list.len());
    for (c, v) in list.iter().enumerate() {
        let path = format!("{conns_path}[{c}]");
        let o = text::object(v, &path)?;
        closed(o, &path, CONNECTION_KEYS)?;
        let from_path = text::join(&path, "from");
        let from = string(text::field(o, &path, "from")?, &from_path)?;
        let from = if from == INPUT_NAME {
            Source::Input
        } else {
            Source::Population(find(from, from_path)?)
        };
        let to_path = text::join(&path, "to");
        let to = find(string(text::field(o, &path, "to")?, &to_path)?, to_path)?;
        connections.push(Connection { from, to });
    }
    let readout_path = at("readout");
    let readout = find(
        string(text::field(obj, KEY, "readout")?, &readout_path)?,
        readout_path,
    )?;
    let a = Architecture::new(inputs, populations.clone(), connections.clone(), readout)
        .map_err(|e| FormatError::at(error_path(&e), Problem::Network(e)))?;
    // The description fits the matrices.
    let n_in = net.w_in.as_ref().map_or(0, dynap_model::Matrix::rows);
    if inputs != n_in {
        return Err(FormatError::at(
            at("inputs"),
            Problem::Count {
                found: inputs,
                expected: n_in,
                of: "the rows of `w_in`",
            },
        ));
    }
    if a.neurons() != net.neurons() {
        return Err(FormatError::at(
            pops_path,
            Problem::Count {
                found: a.neurons(),
                expected: net.neurons(),
                of: "the network's neurons",
            },
        ));
    }
    for (k, (given, r)) in offsets.iter().zip(a.ranges()).enumerate() {
        if let Some(&o) = given.as_ref().filter(|&&o| o != r.start) {
            return Err(FormatError::at(
                format!("{pops_path}[{k}].offset"),
                Problem::Count {
                    found: o,
                    expected: r.start,
                    of: "the sum of the sizes before it",
                },
            ));
        }
    }
    // Every weight outside the blocks is zero.
    let masks = a.masks();
    let n = a.neurons();
    for (matrix, key, weights) in [
        (WeightMatrix::Input, "w_in", net.w_in.as_ref()),
        (WeightMatrix::Recurrent, "w_rec", Some(&net.w_rec)),
    ] {
        let Some(w) = weights else { continue };
        let flags = masks.of(matrix);
        if let Some(i) = w
            .as_slice()
            .iter()
            .zip(flags)
            .position(|(&x, &allowed)| !allowed && x != 0.0)
        {
            return Err(FormatError::at(
                format!("{key}[{}][{}]", i / n, i % n),
                Problem::OutsideArchitecture {
                    value: w.as_slice()[i],
                },
            ));
        }
    }
    // The populations' parameters, from the per-neuron values.
    for (p, r) in populations.iter_mut().zip(a.ranges()) {
        for param in Param::ALL {
            let values = &net.params.get(param)[r.clone()];
            let v = values[0];
            if v != param.default_value() && values.iter().all(|&x| x == v) {
                p.params.insert(param, v);
            }
        }
    }
    let a = Architecture::new(inputs, populations, connections, readout)
        .expect("checked above, with valid network parameters");
    // The placement, when every population has one.
    match first_cores.iter().copied().collect::<Option<Vec<usize>>>() {
        Some(cores) => a
            .with_first_cores(&cores)
            .map_err(|e| FormatError::at(error_path(&e), Problem::Network(e))),
        None => Ok(a),
    }
}

/// The JSON path of what an architecture error is about.
fn error_path(e: &dynap_model::Error) -> String {
    let dynap_model::Error::Architecture(e) = e else {
        return KEY.to_owned();
    };
    let population = |k: usize, field: &str| format!("{KEY}.populations[{k}]{field}");
    let connection = |c: usize, field: &str| format!("{KEY}.connections[{c}]{field}");
    match e {
        ArchitectureError::NoInputs => format!("{KEY}.inputs"),
        ArchitectureError::NoPopulations | ArchitectureError::TooLarge => {
            format!("{KEY}.populations")
        }
        ArchitectureError::EmptyName { population: k }
        | ArchitectureError::ReservedName { population: k }
        | ArchitectureError::DuplicateName { population: k, .. } => population(*k, ".name"),
        ArchitectureError::EmptyPopulation { population: k, .. } => population(*k, ".size"),
        ArchitectureError::PopulationParam { population: k, .. }
        | ArchitectureError::Unreached { population: k, .. } => population(*k, ""),
        ArchitectureError::Placement { population: k, .. } => population(*k, ".first_core"),
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
        ArchitectureError::Readout { .. } => format!("{KEY}.readout"),
        ArchitectureError::NoInputConnection => format!("{KEY}.connections"),
    }
}
