//! Chip profiles (`dynap calibrate --out CHIP.json`) and the twin's truth (`dynap emulator describe
//! --json`), which list neurons the same way: `{"neurons": [{"chip", "core", "neuron", "factors":
//! {NAME: factor}}]}`, each factor relative to the nominal value (1 is nominal), keyed by Rockpool's
//! parameter names (`Itau_mem`) or by the names of the quantities spikes reveal (`t_ref`, `dc_gain`,
//! `syn_gain`: `dynap_mismatch::derived`). A profile adds `version`, `identifiable` (the names it
//! claims to have measured), `chip_time_s` (the chip time its probes took), and optionally
//! `uncertainty` per neuron (the relative standard error of each factor), `residual` (the relative
//! spread the fit could not explain, for noise injection) and `device` (what was calibrated).

use super::error::{FormatError, Problem};
use super::text;
use crate::model::{CORES, MAX_CHIPS, NEURONS};
use serde_json::{Map, Value, json};

/// The profile format's version this library writes and reads.
pub const PROFILE_VERSION: u64 = 1;

/// More neurons than a board has are refused.
const MAX_NEURONS: usize = MAX_CHIPS * CORES * NEURONS;

/// One neuron's factors.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronFactors {
    /// Chip.
    pub chip: usize,
    /// Core on the chip.
    pub core: usize,
    /// Neuron in the core.
    pub neuron: usize,
    /// `(name, factor)`, in the file's order.
    pub factors: Vec<(String, f64)>,
    /// `(name, relative standard error)` of the factors a fit estimated (empty for the truth).
    pub uncertainty: Vec<(String, f64)>,
}

impl NeuronFactors {
    /// The factor `name`, if listed.
    pub fn factor(&self, name: &str) -> Option<f64> {
        self.factors.iter().find(|(k, _)| k == name).map(|x| x.1)
    }

    /// The global slot `(chip * 4 + core) * 256 + neuron`.
    pub fn slot(&self) -> usize {
        (self.chip * CORES + self.core) * NEURONS + self.neuron
    }
}

/// A measured chip.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipProfile {
    /// What was calibrated (`emulator (mismatch 30 %, seed 4)`, a board's description).
    pub device: String,
    /// The names the calibration claims to have measured.
    pub identifiable: Vec<String>,
    /// Chip time the probes took (s).
    pub chip_time_s: f64,
    /// The relative spread of behaviour the fit leaves unexplained (a fraction, for noise injection).
    pub residual: f64,
    /// Every calibrated neuron.
    pub neurons: Vec<NeuronFactors>,
}

impl ChipProfile {
    /// The neuron at (chip, core, neuron), if calibrated.
    pub fn at(&self, chip: usize, core: usize, neuron: usize) -> Option<&NeuronFactors> {
        self.neurons
            .iter()
            .find(|n| (n.chip, n.core, n.neuron) == (chip, core, neuron))
    }
}

fn factor_map(list: &[(String, f64)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<Map<String, Value>>(),
    )
}

fn neurons_json(neurons: &[NeuronFactors]) -> Value {
    Value::Array(
        neurons
            .iter()
            .map(|n| {
                let mut o = json!({
                    "chip": n.chip, "core": n.core, "neuron": n.neuron,
                    "factors": factor_map(&n.factors),
                });
                if !n.uncertainty.is_empty() {
                    o["uncertainty"] = factor_map(&n.uncertainty);
                }
                o
            })
            .collect(),
    )
}

/// `{"neurons": [...]}`: the twin's truth, as `describe` prints it.
pub fn write_neurons(neurons: &[NeuronFactors]) -> String {
    let mut s = serde_json::to_string_pretty(&json!({ "neurons": neurons_json(neurons) }))
        .expect("plain data serialises");
    s.push('\n');
    s
}

/// A profile's JSON.
pub fn write_profile(p: &ChipProfile) -> String {
    let mut s = serde_json::to_string_pretty(&json!({
        "version": PROFILE_VERSION,
        "device": p.device,
        "identifiable": p.identifiable,
        "chip_time_s": p.chip_time_s,
        "residual": p.residual,
        "neurons": neurons_json(&p.neurons),
    }))
    .expect("plain data serialises");
    s.push('\n');
    s
}

/// A map of names to numbers: factors (above 0) or standard errors (`zero_ok`: at least 0).
fn factors(v: &Value, path: &str, zero_ok: bool) -> Result<Vec<(String, f64)>, FormatError> {
    let obj = text::object(v, path)?;
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let at = text::join(path, k);
        let x = if zero_ok {
            match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => x,
                _ => {
                    return Err(FormatError::at(
                        at,
                        text::value_problem(v, "a finite number of at least 0"),
                    ));
                }
            }
        } else {
            text::positive(v, &at)?
        };
        out.push((k.clone(), x));
    }
    Ok(out)
}

/// Reads the `neurons` list of a profile or of `describe`'s output; every problem names its JSON path.
pub fn read_neurons(text: &str) -> Result<Vec<NeuronFactors>, FormatError> {
    let v: Value = text::parse(text, |d| serde::Deserialize::deserialize(d))?;
    neurons(text::object(&v, "")?)
}

fn neurons(root: &Map<String, Value>) -> Result<Vec<NeuronFactors>, FormatError> {
    let list = text::list(text::field(root, "", "neurons")?, "neurons")?;
    if list.len() > MAX_NEURONS {
        return Err(FormatError::at(
            "neurons",
            Problem::Length {
                found: list.len(),
                expected: MAX_NEURONS,
            },
        ));
    }
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let path = format!("neurons[{i}]");
        let obj = text::object(e, &path)?;
        let place = text::place(obj, &path)?;
        let n = NeuronFactors {
            chip: place.chip,
            core: place.core,
            neuron: place.neuron,
            factors: factors(
                text::field(obj, &path, "factors")?,
                &text::join(&path, "factors"),
                false,
            )?,
            uncertainty: match obj.get("uncertainty") {
                Some(u) => factors(u, &text::join(&path, "uncertainty"), true)?,
                None => Vec::new(),
            },
        };
        if let Some(&first) = seen.get(&n.slot()) {
            return Err(FormatError::at(path, Problem::Duplicate { first }));
        }
        seen.insert(n.slot(), i);
        out.push(n);
    }
    Ok(out)
}

/// Reads a chip profile; every problem names its JSON path (a version other than
/// [`PROFILE_VERSION`] is refused at `version`; every `identifiable` name must be a factor of every
/// neuron).
pub fn read_profile(text: &str) -> Result<ChipProfile, FormatError> {
    let v: Value = text::parse(text, |d| serde::Deserialize::deserialize(d))?;
    let root = text::object(&v, "")?;
    let version = text::field(root, "", "version")?;
    if version.as_u64() != Some(PROFILE_VERSION) {
        return Err(FormatError::at(
            "version",
            text::value_problem(version, "1 (the profile version this program reads)"),
        ));
    }
    let mut identifiable = Vec::new();
    for (i, x) in text::list(text::field(root, "", "identifiable")?, "identifiable")?
        .iter()
        .enumerate()
    {
        let name = x.as_str().ok_or_else(|| {
            FormatError::at(
                format!("identifiable[{i}]"),
                text::value_problem(x, "a name"),
            )
        })?;
        identifiable.push(name.to_owned());
    }
    let chip_time_s = match text::field(root, "", "chip_time_s")? {
        v if v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0) => v.as_f64().unwrap_or(0.0),
        v => {
            return Err(FormatError::at(
                "chip_time_s",
                text::value_problem(v, "seconds, a finite number of at least 0"),
            ));
        }
    };
    let residual = match root.get("residual") {
        None => 0.0,
        Some(v) if v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0) => {
            v.as_f64().unwrap_or(0.0)
        }
        Some(v) => {
            return Err(FormatError::at(
                "residual",
                text::value_problem(v, "a fraction of at least 0"),
            ));
        }
    };
    let device = match root.get("device") {
        None => String::new(),
        Some(v) => v
            .as_str()
            .ok_or_else(|| FormatError::at("device", text::value_problem(v, "a string")))?
            .to_owned(),
    };
    let neurons = neurons(root)?;
    for (i, n) in neurons.iter().enumerate() {
        for name in &identifiable {
            if n.factor(name).is_none() {
                return Err(FormatError::at(
                    format!("neurons[{i}].factors.{name}"),
                    Problem::Missing,
                ));
            }
        }
    }
    Ok(ChipProfile {
        device,
        identifiable,
        chip_time_s,
        residual,
        neurons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn neuron() -> impl Strategy<Value = NeuronFactors> {
        (
            0..MAX_CHIPS,
            0..CORES,
            0..NEURONS,
            proptest::collection::vec(0.01f64..10.0, 3),
        )
            .prop_map(|(chip, core, neuron, f)| NeuronFactors {
                chip,
                core,
                neuron,
                factors: vec![
                    ("t_ref".into(), f[0]),
                    ("dc_gain".into(), f[1]),
                    ("Itau_mem".into(), f[2]),
                ],
                uncertainty: vec![("t_ref".into(), f[0] / 100.0), ("Io".into(), 0.0)],
            })
    }

    proptest! {
        #[test]
        fn profiles_read_back_what_they_write(
            list in proptest::collection::vec(neuron(), 0..20),
            time in 0.0f64..1000.0,
            residual in 0.0f64..1.0,
        ) {
            let mut neurons = list;
            neurons.sort_by_key(NeuronFactors::slot);
            neurons.dedup_by_key(|n| n.slot());
            let p = ChipProfile {
                device: "twin".into(),
                identifiable: vec!["t_ref".into(), "dc_gain".into()],
                chip_time_s: time,
                residual,
                neurons,
            };
            prop_assert_eq!(read_profile(&write_profile(&p)).unwrap(), p.clone());
            prop_assert_eq!(read_neurons(&write_neurons(&p.neurons)).unwrap(), p.neurons);
        }
    }

    #[test]
    fn bad_profiles_name_the_place() {
        let good = r#"{"version": 1, "identifiable": ["t_ref"], "chip_time_s": 3.5,
            "neurons": [{"chip": 0, "core": 1, "neuron": 2, "factors": {"t_ref": 1.02}}]}"#;
        assert!(read_profile(good).is_ok());
        let cases = [
            (good.replace("\"version\": 1", "\"version\": 2"), "version"),
            (good.replace("1.02", "-1"), "neurons[0].factors.t_ref"),
            (
                good.replace("\"core\": 1", "\"core\": 4"),
                "neurons[0].core",
            ),
            (
                good.replace("[\"t_ref\"]", "[\"syn_gain\"]"),
                "neurons[0].factors.syn_gain",
            ),
            (good.replace("\"chip_time_s\": 3.5,", ""), "chip_time_s"),
            (
                good.replace("\"factors\"", "\"factor\""),
                "neurons[0].factors",
            ),
        ];
        for (text, path) in cases {
            assert_eq!(read_profile(&text).unwrap_err().path, path, "{text}");
        }
        let twice = good.replace(
            "}}]}",
            "}}, {\"chip\": 0, \"core\": 1, \"neuron\": 2, \"factors\": {\"t_ref\": 1}}]}",
        );
        assert_eq!(
            read_profile(&twice).unwrap_err(),
            FormatError::at("neurons[1]", Problem::Duplicate { first: 0 })
        );
    }
}
