//! samna-compatible JSON (hardware.md section 2.3), both directions.
//!
//! Writing follows samna's rules exactly: one root `{"value0": ...}`; camelCase fields
//! (`davisReqAckBugfixDelay_ns`, PascalCase sADC enables); fixed-size arrays as `{"value0": ...,
//! "value1": ...}` objects at full size (4 cores, 256 neurons, 64 synapses, 4 destinations, 4 bits);
//! `chips` as an array; parameter maps as `[{"key": name, "value": {...}}]`; the parameter type as its
//! code point (78 'N', 80 'P') and `_initialType` as 0/1. The output is compact (no whitespace) and
//! deterministic, so JSON -> configuration -> JSON gives the same bytes for files this crate wrote.
//!
//! Reading is tolerant: keys in any order, fixed arrays as `valueN` objects or as JSON arrays (shorter
//! ones are padded with unused entries), both spellings of `SoifRefectory`/`SoifRefractory`, unknown keys
//! kept and written back. Every value out of its hardware range is reported with its path
//! (`chips[0].cores[2].neurons[17].synapses[3].tag`), all of them, not only the first.

use crate::model::*;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// A problem in a configuration file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonProblem {
    /// Path of the value (`chips[0].cores[1].neurons[5].synapses[63].tag`).
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

// ---------------------------------------------------------------------------------------------------
// Writing

fn w_bool(out: &mut String, b: bool) {
    out.push_str(if b { "true" } else { "false" });
}

fn w_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serialises"));
}

fn w_key(out: &mut String, first: &mut bool, key: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    w_str(out, key);
    out.push(':');
}

/// `{"value0": f(0), ...}` for `n` items.
fn w_fixed<T>(out: &mut String, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"value{i}\":");
        f(out, item);
    }
    out.push('}');
}

fn w_bits(out: &mut String, bits: u8) {
    w_fixed(out, &[0, 1, 2, 3], |o, &k| w_bool(o, bits >> k & 1 == 1));
}

fn w_parameter(out: &mut String, p: &Parameter) {
    let _ = write!(
        out,
        "{{\"type\":{},\"coarseValue\":{},\"fineValue\":{},\"_address\":{},\"_cookie\":{},\"_initialType\":{},\"_switchableType\":{}}}",
        p.kind as u32, p.coarse, p.fine, p.address, p.cookie, p.initial_type, p.switchable_type
    );
}

fn w_params(out: &mut String, map: &ParamMap) {
    out.push('[');
    for (i, (name, p)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        w_str(out, name);
        out.push_str(",\"value\":");
        w_parameter(out, p);
        out.push('}');
    }
    out.push(']');
}

fn w_extra(out: &mut String, first: &mut bool, extra: &Extra) {
    for (k, v) in extra {
        w_key(out, first, k);
        out.push_str(v);
    }
}

fn w_destination(out: &mut String, d: &Destination) {
    out.push_str("{\"core\":");
    w_bits(out, d.core.bits());
    let _ = write!(
        out,
        ",\"xHop\":{},\"yHop\":{},\"tag\":{}}}",
        d.x_hop.get(),
        d.y_hop.get(),
        d.tag.get()
    );
}

fn w_synapse(out: &mut String, s: &Synapse) {
    let _ = write!(
        out,
        "{{\"dendrite\":{},\"stp\":{},\"weight\":",
        s.dendrite.value(),
        s.stp
    );
    w_bits(out, s.weight.bits());
    let _ = write!(
        out,
        ",\"preciseDelay\":{},\"mismatchedDelay\":{},\"tag\":{}}}",
        s.precise_delay,
        s.mismatched_delay,
        s.tag.get()
    );
}

const LATCH_KEYS: [&str; LATCHES] = [
    "latchSoDc",
    "latchSoAdaptation",
    "latchSoifKill",
    "latchCohoCaMem",
    "latchHoEnable",
    "latchHoSoDe",
    "latchDeamAmpa",
    "latchDenmNmda",
    "latchDeConductance",
    "latchDeamAlpha",
    "latchDenmAlpha",
    "latchDeMux",
    "latchSoifType",
    "latchHoActive",
];

fn w_neuron(out: &mut String, n: &Neuron) {
    out.push_str("{\"synapses\":");
    w_fixed(out, &n.synapses, w_synapse);
    out.push_str(",\"destinations\":");
    w_fixed(out, &n.destinations, w_destination);
    for (k, &v) in LATCH_KEYS.iter().zip(&n.latches) {
        let _ = write!(out, ",\"{k}\":");
        w_bool(out, v);
    }
    out.push('}');
}

fn w_enables(out: &mut String, names: &[&str], values: &[bool]) {
    out.push('{');
    for (i, (k, &v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{k}\":");
        w_bool(out, v);
    }
    out.push('}');
}

fn w_core(out: &mut String, c: &Core) {
    out.push_str("{\"neurons\":");
    w_fixed(out, &c.neurons, w_neuron);
    out.push_str(",\"neuronMonitoringOn\":");
    w_bool(out, c.neuron_monitoring_on);
    let _ = write!(
        out,
        ",\"monitoredNeuron\":{},\"parameters\":",
        c.monitored_neuron
    );
    w_params(out, &c.parameters);
    out.push_str(",\"sadcEnables\":");
    w_enables(out, &CORE_SADC_NAMES, &c.sadc_enables);
    out.push_str(",\"enableSyawStdbufAn\":");
    w_bool(out, c.enable_syaw_stdbuf_an);
    out.push_str(",\"enablePulseExtenderMonitor1\":");
    w_bool(out, c.enable_pulse_extender_monitor1);
    out.push_str(",\"enablePulseExtenderMonitor2\":");
    w_bool(out, c.enable_pulse_extender_monitor2);
    let _ = write!(out, ",\"_id\":{},\"_cookie\":{}", c.id, c.cookie);
    let mut first = false;
    w_extra(out, &mut first, &c.extra);
    out.push('}');
}

fn w_chip(out: &mut String, c: &Chip) {
    out.push_str("{\"cores\":");
    w_fixed(out, &c.cores, w_core);
    out.push_str(",\"globalParameters\":");
    w_params(out, &c.global_parameters);
    out.push_str(",\"sharedParameters01\":");
    w_params(out, &c.shared_parameters01);
    out.push_str(",\"sharedParameters23\":");
    w_params(out, &c.shared_parameters23);
    out.push_str(",\"sadcGroupParameters01\":");
    w_fixed(out, &c.sadc_group_parameters01, w_params);
    out.push_str(",\"sadcGroupParameters23\":");
    w_fixed(out, &c.sadc_group_parameters23, w_params);
    out.push_str(",\"sadcEnables\":");
    w_enables(out, &CHIP_SADC_NAMES, &c.sadc_enables);
    out.push_str(",\"dvsIf\":");
    out.push_str(&c.dvs_if);
    out.push_str(",\"bioamps\":");
    out.push_str(&c.bioamps);
    for (k, v) in [
        ("enablePg0ReferenceMonitor", c.enable_pg0_reference_monitor),
        ("enablePg1ReferenceMonitor", c.enable_pg1_reference_monitor),
        ("paramGen0Powerdown", c.param_gen0_powerdown),
        ("paramGen1Powerdown", c.param_gen1_powerdown),
    ] {
        let _ = write!(out, ",\"{k}\":");
        w_bool(out, v);
    }
    let mut first = false;
    w_extra(out, &mut first, &c.extra);
    out.push('}');
}

/// The configuration as samna JSON (compact, deterministic, full-size arrays).
pub fn to_json(config: &Configuration) -> String {
    let mut out = String::with_capacity(config.chips.len() * 12_000_000);
    out.push_str("{\"value0\":{\"chips\":[");
    for (i, c) in config.chips.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        w_chip(&mut out, c);
    }
    out.push(']');
    let mut first = false;
    w_extra(&mut out, &mut first, &config.extra);
    out.push_str("}}\n");
    out
}

// ---------------------------------------------------------------------------------------------------
// Reading

struct Reader {
    problems: Vec<JsonProblem>,
}

impl Reader {
    fn problem(&mut self, path: &str, problem: impl Into<String>) {
        if self.problems.len() < 10_000 {
            self.problems.push(JsonProblem {
                path: path.to_owned(),
                problem: problem.into(),
            });
        }
    }

    fn int(&mut self, v: Option<&Value>, path: &str) -> Option<i64> {
        match v {
            None => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(i),
                None => {
                    self.problem(path, format!("expected an integer, found {n}"));
                    None
                }
            },
            Some(Value::Bool(b)) => Some(i64::from(*b)),
            Some(other) => {
                self.problem(path, format!("expected an integer, found {}", brief(other)));
                None
            }
        }
    }

    fn unsigned(&mut self, v: Option<&Value>, path: &str) -> u64 {
        match v {
            None => 0,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
            Some(other) => {
                self.problem(
                    path,
                    format!("expected an unsigned integer, found {}", brief(other)),
                );
                0
            }
        }
    }

    fn boolean(&mut self, v: Option<&Value>, path: &str) -> bool {
        match v {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i == 0 || i == 1) => {
                n.as_i64() == Some(1)
            }
            Some(other) => {
                self.problem(
                    path,
                    format!("expected true or false, found {}", brief(other)),
                );
                false
            }
        }
    }

    fn checked<T: Default>(
        &mut self,
        v: Option<&Value>,
        path: &str,
        make: impl Fn(i64) -> Result<T, RangeError>,
    ) -> T {
        match self.int(v, path) {
            None => T::default(),
            Some(i) => match make(i) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(path, e.to_string());
                    T::default()
                }
            },
        }
    }

    /// The items of a fixed array: a `valueN` object or a JSON array, at most `max` items.
    fn fixed<'v>(
        &mut self,
        v: Option<&'v Value>,
        path: &str,
        max: usize,
    ) -> Vec<Option<&'v Value>> {
        let mut items = vec![None; max];
        match v {
            None => {}
            Some(Value::Array(a)) => {
                if a.len() > max {
                    self.problem(path, format!("{} entries, at most {max}", a.len()));
                }
                for (slot, item) in items.iter_mut().zip(a) {
                    *slot = Some(item);
                }
            }
            Some(Value::Object(o)) => {
                for (k, item) in o {
                    match k
                        .strip_prefix("value")
                        .and_then(|i| i.parse::<usize>().ok())
                    {
                        Some(i) if i < max => items[i] = Some(item),
                        Some(i) => {
                            self.problem(path, format!("entry value{i}, at most {max} entries"))
                        }
                        None => self.problem(
                            &format!("{path}.{k}"),
                            "unexpected key in a fixed-size array",
                        ),
                    }
                }
            }
            Some(other) => self.problem(path, format!("expected an array, found {}", brief(other))),
        }
        items
    }

    fn bits(&mut self, v: Option<&Value>, path: &str) -> u8 {
        if let Some(Value::Number(_)) = v {
            // Tolerate an integer mask.
            return self.checked(v, path, |i| WeightMask::new(i).map(|m| m.bits()));
        }
        let items = self.fixed(v, path, 4);
        let mut bits = 0;
        for (k, item) in items.iter().enumerate() {
            if self.boolean(*item, &format!("{path}[{k}]")) {
                bits |= 1 << k;
            }
        }
        bits
    }

    fn object<'v>(&mut self, v: Option<&'v Value>, path: &str) -> Option<&'v Map<String, Value>> {
        match v {
            None => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.problem(path, format!("expected an object, found {}", brief(other)));
                None
            }
        }
    }

    fn parameter(&mut self, v: Option<&Value>, path: &str, name: &str) -> Parameter {
        let mut p = Parameter::for_name(name, 0, 0).expect("coarse 0 is valid");
        let Some(o) = self.object(v, path) else {
            return p;
        };
        if let Some(t) = o.get("type") {
            p.kind = match t {
                Value::Number(n) if n.as_u64() == Some(78) => 'N',
                Value::Number(n) if n.as_u64() == Some(80) => 'P',
                Value::String(s) if s == "N" || s == "P" => s.chars().next().unwrap_or('N'),
                other => {
                    self.problem(
                        &format!("{path}.type"),
                        format!("expected 78 ('N') or 80 ('P'), found {}", brief(other)),
                    );
                    p.kind
                }
            };
        }
        p.coarse = self.checked(o.get("coarseValue"), &format!("{path}.coarseValue"), |i| {
            if (0..=5).contains(&i) {
                Ok(i as u8)
            } else {
                Err(RangeError {
                    what: "coarse",
                    value: i,
                    range: "0..=5",
                })
            }
        });
        p.fine = self.checked(o.get("fineValue"), &format!("{path}.fineValue"), |i| {
            u8::try_from(i).map_err(|_| RangeError {
                what: "fine",
                value: i,
                range: "0..=255",
            })
        });
        p.address = self.unsigned(o.get("_address"), &format!("{path}._address"));
        p.cookie = self.unsigned(o.get("_cookie"), &format!("{path}._cookie"));
        p.initial_type = match o.get("_initialType") {
            // The alias writes the type letter when it is not given; read it as samna means it.
            Some(Value::String(s)) => u8::from(s == "N"),
            v => self.checked(v, &format!("{path}._initialType"), |i| {
                if i == 0 || i == 1 {
                    Ok(i as u8)
                } else {
                    Err(RangeError {
                        what: "_initialType",
                        value: i,
                        range: "0 (P) or 1 (N)",
                    })
                }
            }),
        };
        p.switchable_type =
            self.boolean(o.get("_switchableType"), &format!("{path}._switchableType"));
        p
    }

    fn params(&mut self, v: Option<&Value>, path: &str) -> ParamMap {
        let mut map = ParamMap::new();
        match v {
            None => {}
            Some(Value::Array(entries)) => {
                for (i, e) in entries.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    let Some(name) = e.get("key").and_then(Value::as_str) else {
                        self.problem(&p, "expected {\"key\": name, \"value\": {...}}");
                        continue;
                    };
                    let param = self.parameter(e.get("value"), &format!("{path}.{name}"), name);
                    if map.iter().any(|(n, _)| n == name) {
                        self.problem(&format!("{path}.{name}"), "the parameter appears twice");
                    }
                    map.push((name.to_owned(), param));
                }
            }
            Some(Value::Object(o)) => {
                // Tolerated: a plain {name: parameter} object.
                for (name, v) in o {
                    let param = self.parameter(Some(v), &format!("{path}.{name}"), name);
                    map.push((name.to_owned(), param));
                }
            }
            Some(other) => self.problem(
                path,
                format!("expected a parameter list, found {}", brief(other)),
            ),
        }
        map
    }

    fn extra(o: &Map<String, Value>, known: &[&str]) -> Extra {
        o.iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    fn destination(&mut self, v: Option<&Value>, path: &str) -> Destination {
        let Some(o) = self.object(v, path) else {
            return Destination::default();
        };
        Destination {
            core: CoreMask::new(i64::from(self.bits(o.get("core"), &format!("{path}.core"))))
                .expect("4 bits"),
            x_hop: self.checked(o.get("xHop"), &format!("{path}.xHop"), Hop::new),
            y_hop: self.checked(o.get("yHop"), &format!("{path}.yHop"), Hop::new),
            tag: self.checked(o.get("tag"), &format!("{path}.tag"), Tag::new),
        }
    }

    fn synapse(&mut self, v: Option<&Value>, path: &str) -> Synapse {
        let Some(o) = self.object(v, path) else {
            return Synapse::default();
        };
        Synapse {
            dendrite: self.checked(
                o.get("dendrite"),
                &format!("{path}.dendrite"),
                Dendrite::from_value,
            ),
            stp: self.boolean(o.get("stp"), &format!("{path}.stp")),
            weight: WeightMask::new(i64::from(
                self.bits(o.get("weight"), &format!("{path}.weight")),
            ))
            .expect("4 bits"),
            precise_delay: self.boolean(o.get("preciseDelay"), &format!("{path}.preciseDelay")),
            mismatched_delay: self
                .boolean(o.get("mismatchedDelay"), &format!("{path}.mismatchedDelay")),
            tag: self.checked(o.get("tag"), &format!("{path}.tag"), Tag::new),
        }
    }

    fn neuron(&mut self, v: Option<&Value>, path: &str) -> Neuron {
        let mut n = Neuron::default();
        let Some(o) = self.object(v, path) else {
            return n;
        };
        let syn = self.fixed(o.get("synapses"), &format!("{path}.synapses"), SYNAPSES);
        for (i, s) in syn.into_iter().enumerate() {
            if s.is_some() {
                n.synapses[i] = self.synapse(s, &format!("{path}.synapses[{i}]"));
            }
        }
        let dst = self.fixed(
            o.get("destinations"),
            &format!("{path}.destinations"),
            DESTINATIONS,
        );
        for (i, d) in dst.into_iter().enumerate() {
            if d.is_some() {
                n.destinations[i] = self.destination(d, &format!("{path}.destinations[{i}]"));
            }
        }
        for (k, key) in LATCH_KEYS.iter().enumerate() {
            n.latches[k] = self.boolean(o.get(*key), &format!("{path}.{key}"));
        }
        n
    }

    fn enables(&mut self, v: Option<&Value>, path: &str, names: &[&str], out: &mut [bool]) {
        let Some(o) = self.object(v, path) else {
            return;
        };
        for (k, name) in names.iter().enumerate() {
            let value = o.get(*name).or_else(|| {
                // samna versions differ on this spelling.
                (*name == "SoifRefectory")
                    .then(|| o.get("SoifRefractory"))
                    .flatten()
            });
            out[k] = self.boolean(value, &format!("{path}.{name}"));
        }
        for key in o.keys() {
            if !names.contains(&key.as_str()) && key != "SoifRefractory" {
                self.problem(&format!("{path}.{key}"), "unknown sADC enable");
            }
        }
    }

    fn core(&mut self, v: Option<&Value>, path: &str) -> Core {
        let mut c = Core::default();
        let Some(o) = self.object(v, path) else {
            return c;
        };
        let neurons = self.fixed(o.get("neurons"), &format!("{path}.neurons"), NEURONS);
        for (i, n) in neurons.into_iter().enumerate() {
            if n.is_some() {
                c.neurons[i] = self.neuron(n, &format!("{path}.neurons[{i}]"));
            }
        }
        c.neuron_monitoring_on = self.boolean(
            o.get("neuronMonitoringOn"),
            &format!("{path}.neuronMonitoringOn"),
        );
        c.monitored_neuron = self.checked(
            o.get("monitoredNeuron"),
            &format!("{path}.monitoredNeuron"),
            |i| {
                u8::try_from(i).map_err(|_| RangeError {
                    what: "monitored neuron",
                    value: i,
                    range: "0..=255",
                })
            },
        );
        c.parameters = self.params(o.get("parameters"), &format!("{path}.parameters"));
        let mut enables = [false; 14];
        self.enables(
            o.get("sadcEnables"),
            &format!("{path}.sadcEnables"),
            &CORE_SADC_NAMES,
            &mut enables,
        );
        c.sadc_enables = enables;
        c.enable_syaw_stdbuf_an = self.boolean(
            o.get("enableSyawStdbufAn"),
            &format!("{path}.enableSyawStdbufAn"),
        );
        c.enable_pulse_extender_monitor1 = self.boolean(
            o.get("enablePulseExtenderMonitor1"),
            &format!("{path}.enablePulseExtenderMonitor1"),
        );
        c.enable_pulse_extender_monitor2 = self.boolean(
            o.get("enablePulseExtenderMonitor2"),
            &format!("{path}.enablePulseExtenderMonitor2"),
        );
        c.id = self.int(o.get("_id"), &format!("{path}._id")).unwrap_or(0);
        c.cookie = self
            .int(o.get("_cookie"), &format!("{path}._cookie"))
            .unwrap_or(0);
        c.extra = Reader::extra(
            o,
            &[
                "neurons",
                "neuronMonitoringOn",
                "monitoredNeuron",
                "parameters",
                "sadcEnables",
                "enableSyawStdbufAn",
                "enablePulseExtenderMonitor1",
                "enablePulseExtenderMonitor2",
                "_id",
                "_cookie",
            ],
        );
        c
    }

    fn param_groups(&mut self, v: Option<&Value>, path: &str) -> Vec<ParamMap> {
        let items = self.fixed(v, path, 64);
        let last = items.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        (0..last)
            .map(|i| self.params(items[i], &format!("{path}[{i}]")))
            .collect()
    }

    fn chip(&mut self, v: &Value, path: &str) -> Chip {
        let mut c = Chip::default();
        let Some(o) = self.object(Some(v), path) else {
            return c;
        };
        let cores = self.fixed(o.get("cores"), &format!("{path}.cores"), CORES);
        for (i, core) in cores.into_iter().enumerate() {
            if core.is_some() {
                c.cores[i] = self.core(core, &format!("{path}.cores[{i}]"));
            }
        }
        c.global_parameters = self.params(
            o.get("globalParameters"),
            &format!("{path}.globalParameters"),
        );
        c.shared_parameters01 = self.params(
            o.get("sharedParameters01"),
            &format!("{path}.sharedParameters01"),
        );
        c.shared_parameters23 = self.params(
            o.get("sharedParameters23"),
            &format!("{path}.sharedParameters23"),
        );
        c.sadc_group_parameters01 = self.param_groups(
            o.get("sadcGroupParameters01"),
            &format!("{path}.sadcGroupParameters01"),
        );
        c.sadc_group_parameters23 = self.param_groups(
            o.get("sadcGroupParameters23"),
            &format!("{path}.sadcGroupParameters23"),
        );
        let mut enables = [false; 8];
        self.enables(
            o.get("sadcEnables"),
            &format!("{path}.sadcEnables"),
            &CHIP_SADC_NAMES,
            &mut enables,
        );
        c.sadc_enables = enables;
        if let Some(d) = o.get("dvsIf") {
            c.dvs_if = d.to_string();
        }
        if let Some(b) = o.get("bioamps") {
            c.bioamps = b.to_string();
        }
        c.enable_pg0_reference_monitor = self.boolean(
            o.get("enablePg0ReferenceMonitor"),
            &format!("{path}.enablePg0ReferenceMonitor"),
        );
        c.enable_pg1_reference_monitor = self.boolean(
            o.get("enablePg1ReferenceMonitor"),
            &format!("{path}.enablePg1ReferenceMonitor"),
        );
        c.param_gen0_powerdown = self.boolean(
            o.get("paramGen0Powerdown"),
            &format!("{path}.paramGen0Powerdown"),
        );
        c.param_gen1_powerdown = self.boolean(
            o.get("paramGen1Powerdown"),
            &format!("{path}.paramGen1Powerdown"),
        );
        c.extra = Reader::extra(
            o,
            &[
                "cores",
                "globalParameters",
                "sharedParameters01",
                "sharedParameters23",
                "sadcGroupParameters01",
                "sadcGroupParameters23",
                "sadcEnables",
                "dvsIf",
                "bioamps",
                "enablePg0ReferenceMonitor",
                "enablePg1ReferenceMonitor",
                "paramGen0Powerdown",
                "paramGen1Powerdown",
            ],
        );
        c
    }
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Reads samna JSON. On failure, every problem found (each with its path), not only the first; a
/// syntax error comes with its line and column.
pub fn from_json(text: &str) -> Result<Configuration, Vec<JsonProblem>> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        vec![JsonProblem {
            path: format!("line {}, column {}", e.line(), e.column()),
            problem: format!("not valid JSON: {e}"),
        }]
    })?;
    let mut r = Reader {
        problems: Vec::new(),
    };
    let root = match v.get("value0") {
        Some(root) => root,
        None => &v, // tolerated: the configuration object without samna's root wrapper
    };
    let Some(o) = r.object(Some(root), "value0") else {
        return Err(r.problems);
    };
    let chips = match o.get("chips") {
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(other @ Value::Object(_)) => r
            .fixed(Some(other), "chips", MAX_CHIPS)
            .into_iter()
            .flatten()
            .collect(),
        Some(other) => {
            r.problem(
                "chips",
                format!("expected an array of chips, found {}", brief(other)),
            );
            Vec::new()
        }
        None => {
            r.problem("chips", "missing: a configuration needs at least one chip");
            Vec::new()
        }
    };
    if chips.is_empty() && o.get("chips").is_some() {
        r.problem("chips", "no chip: a configuration needs at least one");
    }
    if chips.len() > MAX_CHIPS {
        r.problem(
            "chips",
            format!("{} chips; a board has at most {MAX_CHIPS}", chips.len()),
        );
    }
    let config = Configuration {
        chips: chips
            .iter()
            .take(MAX_CHIPS)
            .enumerate()
            .map(|(i, c)| r.chip(c, &format!("chips[{i}]")))
            .collect(),
        extra: Reader::extra(o, &["chips"]),
    };
    if r.problems.is_empty() {
        Ok(config)
    } else {
        Err(r.problems)
    }
}
