//! The network JSON: a DynapSim network (weights, `iscale`, `dt`, `variant`, per-neuron currents and
//! layout values by Rockpool's names, a `chip` network's dendrites and synapse types) and the optional
//! settings of `dynap quantize` and `dynap map` (`core_map`, `method`, `seed`).

use super::architecture;
use super::error::{FormatError, Problem};
use super::matrix::{self, Dense, MatrixJson};
use super::text::{self, Object, Tracked};
use dynap_model::{
    Architecture, ChipSynapses, DEFAULT_DT, DEFAULT_ISCALE, Matrix, Network, NeuronParams, Param,
    SynapseChoice, Variant,
};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The largest core index a core map may hold (4 cores per chip, 1024 chips).
pub(crate) const MAX_CORES: usize = 4096;

/// The quantizer a network file asks `dynap quantize` for (`method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum QuantMethod {
    /// Alternating nearest-sum masks and a least-squares fit of the base currents (the default).
    #[default]
    Alternating,
    /// Rockpool's autoencoder.
    Autoencoder,
}

impl QuantMethod {
    /// The names in files and on the command line.
    pub const NAMES: &'static [&'static str] = &["alternating", "autoencoder"];

    /// The name in files.
    pub fn name(self) -> &'static str {
        match self {
            QuantMethod::Alternating => "alternating",
            QuantMethod::Autoencoder => "autoencoder",
        }
    }

    /// The method of a name in files.
    pub fn from_name(name: &str) -> Option<QuantMethod> {
        match name {
            "alternating" => Some(QuantMethod::Alternating),
            "autoencoder" => Some(QuantMethod::Autoencoder),
            _ => None,
        }
    }
}

/// A network JSON read, or to write.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkFile {
    /// The network (`w_in` absent or `null`: no input weights; `w_rec` absent: zeros).
    pub network: Network,
    /// The core of every neuron, when the file gives it (`core_map` `[N]`).
    pub core_map: Option<Vec<usize>>,
    /// The quantizer asked for (`method`).
    pub method: Option<QuantMethod>,
    /// The autoencoder's seed (`seed`).
    pub seed: Option<u64>,
    /// The populations and connections the network was described with (`architecture`); its blocks
    /// hold every non-zero weight, its inputs and sizes are the matrices' ([`read_network`] checks
    /// both; [`write_network`] writes it as it is).
    pub architecture: Option<Architecture>,
    /// Keys no format defines, kept as they are and written back.
    pub extra: Map<String, Value>,
}

impl NetworkFile {
    /// A file of `network` alone.
    pub fn new(network: Network) -> NetworkFile {
        NetworkFile {
            network,
            core_map: None,
            method: None,
            seed: None,
            architecture: None,
            extra: Map::new(),
        }
    }

    /// The keys of the file that no format defines (kept in [`NetworkFile::extra`]): worth a warning,
    /// as a misspelled key is one of them.
    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.extra.keys().map(String::as_str)
    }
}

/// The synapse-type matrices of a `chip` network: for each weight matrix, which connections drive NMDA
/// (else AMPA) and SHUNT (else GABA), as 0/1.
pub(crate) const TYPE_KEYS: [(&str, &str, &str); 2] = [
    ("w_in", "w_in_nmda", "w_in_shunt"),
    ("w_rec", "w_rec_nmda", "w_rec_shunt"),
];

/// The NMDA, GABA and SHUNT dendrites' per-neuron keys (`Itau_nmda`, `Igain_nmda`, `C_nmda`, ...).
pub(crate) const DENDRITE_NAMES: [&str; 3] = ["nmda", "gaba", "shunt"];

/// Keys that hold matrices of numbers, in any file.
const NUMBER_MATRICES: [&str; 10] = [
    "w_in",
    "w_rec",
    "w_in_mask",
    "w_in_sign",
    "w_rec_mask",
    "w_rec_sign",
    "w_in_nmda",
    "w_in_shunt",
    "w_rec_nmda",
    "w_rec_shunt",
];

/// Keys that hold matrices of dendrite names.
pub(crate) const NAME_MATRICES: [&str; 2] = ["w_in_dendrite", "w_rec_dendrite"];

/// Every other key some format defines (so it is not kept as unknown).
const OTHER_KEYS: [&str; 11] = [
    "iscale",
    "Iscale",
    "dt",
    "variant",
    "core_map",
    "method",
    "seed",
    "cores",
    "relative_rms_error",
    "places",
    "format",
];

/// Whether a key is defined by one of the network formats.
pub(crate) fn is_known_key(key: &str) -> bool {
    NUMBER_MATRICES.contains(&key)
        || NAME_MATRICES.contains(&key)
        || OTHER_KEYS.contains(&key)
        || Param::ALL.iter().any(|p| p.rockpool_name() == key)
        || dendrite_key(key)
}

fn dendrite_key(key: &str) -> bool {
    key.split_once('_').is_some_and(|(kind, d)| {
        matches!(kind, "Itau" | "Igain" | "C") && DENDRITE_NAMES.contains(&d)
    })
}

/// A file's top level, parsed: its matrices straight into vectors, everything else as JSON values.
pub(crate) struct Fields {
    /// Number matrices by key (`None`: given as `null`).
    pub(crate) numbers: Vec<(&'static str, Option<MatrixJson<f64>>)>,
    /// Dendrite-name matrices by key.
    pub(crate) names: Vec<(&'static str, Option<MatrixJson<DendriteName>>)>,
    /// Every other key.
    pub(crate) values: Map<String, Value>,
}

/// A dendrite's name in a matrix (`ampa`, `nmda`, `gaba`, `shunt`, or `none` for no connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DendriteName(pub(crate) Option<dynap_model::Dendrite>);

impl serde::Serialize for DendriteName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.map_or("none", dynap_model::Dendrite::name))
    }
}

impl<'de> serde::Deserialize<'de> for DendriteName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DendriteName, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match &*name {
            "none" => Ok(DendriteName(None)),
            other => dynap_model::Dendrite::from_name(other)
                .map(|d| DendriteName(Some(d)))
                .ok_or_else(|| {
                    serde::de::Error::custom(format_args!(
                        "{other:?} is not one of \"ampa\", \"nmda\", \"gaba\", \"shunt\", \"none\""
                    ))
                }),
        }
    }
}

impl Fields {
    pub(crate) fn parse(text: &str) -> Result<Fields, FormatError> {
        text::parse(text, |d: Tracked<'_, '_>| FieldsSeed.deserialize(d))
    }

    /// The number matrix `key` (`Some(None)` when given as `null`).
    pub(crate) fn take_numbers(&mut self, key: &str) -> Option<Option<MatrixJson<f64>>> {
        let i = self.numbers.iter().position(|(k, _)| *k == key)?;
        Some(self.numbers.swap_remove(i).1)
    }

    pub(crate) fn take_names(&mut self, key: &str) -> Option<Option<MatrixJson<DendriteName>>> {
        let i = self.names.iter().position(|(k, _)| *k == key)?;
        Some(self.names.swap_remove(i).1)
    }

    /// The keys no format defines.
    pub(crate) fn extra(&self) -> Map<String, Value> {
        self.values
            .iter()
            .filter(|(k, _)| !is_known_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

struct FieldsSeed;

impl<'de> DeserializeSeed<'de> for FieldsSeed {
    type Value = Fields;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(FieldsSeed)
    }
}

impl<'de> Visitor<'de> for FieldsSeed {
    type Value = Fields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut out = Fields {
            numbers: Vec::new(),
            names: Vec::new(),
            values: Map::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            if let Some(&k) = NUMBER_MATRICES.iter().find(|k| **k == key) {
                out.numbers.retain(|(o, _)| *o != k);
                out.numbers.push((k, map.next_value()?));
            } else if let Some(&k) = NAME_MATRICES.iter().find(|k| **k == key) {
                out.names.retain(|(o, _)| *o != k);
                out.names.push((k, map.next_value()?));
            } else {
                out.values.insert(key, map.next_value()?);
            }
        }
        Ok(out)
    }
}

/// A number matrix checked against a shape (`rows` `None`: any number of rows); a dense `[]` is a
/// matrix of no rows.
pub(crate) fn shaped(
    m: MatrixJson<f64>,
    key: &str,
    rows: Option<usize>,
    cols: usize,
) -> Result<Dense<f64>, FormatError> {
    let mut d = m.into_dense(key, 0.0)?;
    if d.rows == 0 && d.data.is_empty() {
        d.cols = cols;
    }
    if d.cols != cols || rows.is_some_and(|r| r != d.rows) {
        return Err(FormatError::at(
            key,
            Problem::Shape {
                found: (d.rows, d.cols),
                expected: (rows.unwrap_or(d.rows), cols),
            },
        ));
    }
    Ok(d)
}

/// The whole numbers of a matrix, each in `lo..=hi`; the error names the entry.
pub(crate) fn integers<T: TryFrom<i64>>(
    d: &Dense<f64>,
    key: &str,
    lo: i64,
    hi: i64,
    expected: &'static str,
) -> Result<Vec<T>, FormatError> {
    let (lo_f, hi_f) = (lo as f64, hi as f64);
    d.data
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            // In range and whole: the conversion to i64 and back is exact (NaN fails the range).
            let ok = x >= lo_f && x <= hi_f && (x as i64) as f64 == x;
            ok.then(|| T::try_from(x as i64).ok())
                .flatten()
                .ok_or_else(|| {
                    FormatError::at(
                        format!("{key}[{}][{}]", i / d.cols.max(1), i % d.cols.max(1)),
                        text::value_problem(&Value::from(x), expected),
                    )
                })
        })
        .collect()
}

/// What every network format shares besides the weights: `iscale`, `dt`, `variant`, the per-neuron
/// values and a `chip` network's dendrites and synapse types.
pub(crate) struct Common {
    pub(crate) iscale: f64,
    pub(crate) dt: f64,
    pub(crate) variant: Variant,
    pub(crate) params: NeuronParams,
    pub(crate) chip: Option<ChipSynapses>,
}

/// `iscale` (or Rockpool's `Iscale`), default 1e-8 A.
pub(crate) fn iscale(values: &Map<String, Value>) -> Result<f64, FormatError> {
    match (values.get("iscale"), values.get("Iscale")) {
        (Some(v), _) => text::positive(v, "iscale"),
        (None, Some(v)) => text::positive(v, "Iscale"),
        (None, None) => Ok(DEFAULT_ISCALE),
    }
}

/// The core map, if given: `n` core indices.
pub(crate) fn core_map(
    values: &Map<String, Value>,
    n: Option<usize>,
) -> Result<Option<Vec<usize>>, FormatError> {
    let Some(v) = values.get("core_map").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list = text::list(v, "core_map")?;
    if let Some(n) = n
        && list.len() != n
    {
        return Err(FormatError::at(
            "core_map",
            Problem::Length {
                found: list.len(),
                expected: n,
            },
        ));
    }
    list.iter()
        .enumerate()
        .map(|(j, c)| {
            text::index(
                c,
                &format!("core_map[{j}]"),
                MAX_CORES,
                "a core index in 0..4096",
            )
        })
        .collect::<Result<Vec<usize>, _>>()
        .map(Some)
}

impl Common {
    /// Reads the shared keys for `n` neurons and `n_in` input channels, taking the synapse-type
    /// matrices out of `fields`.
    pub(crate) fn read(fields: &mut Fields, n: usize, n_in: usize) -> Result<Common, FormatError> {
        let values = &fields.values;
        let iscale = iscale(values)?;
        let dt = match values.get("dt") {
            Some(v) => text::positive(v, "dt")?,
            None => DEFAULT_DT,
        };
        let variant = match values.get("variant") {
            None => Variant::default(),
            Some(v) => {
                let name = v.as_str().ok_or_else(|| {
                    FormatError::at("variant", text::value_problem(v, "a string"))
                })?;
                Variant::from_name(name).ok_or_else(|| {
                    FormatError::at(
                        "variant",
                        Problem::UnknownName {
                            found: name.to_owned(),
                            expected: &["rockpool", "chip"],
                        },
                    )
                })?
            }
        };
        let mut params = NeuronParams::defaults(n);
        for p in Param::ALL {
            let key = p.rockpool_name();
            if let Some(v) = values.get(key) {
                *params.get_mut(p) = per_neuron(v, key, n)?;
            }
        }
        params
            .validate(n)
            .map_err(|e| FormatError::at("", Problem::Network(e)))?;
        // A `chip` network's dendrites; ignored (not kept) for a `rockpool` one, which has none.
        let mut chip = ChipSynapses::defaults(n);
        for (name, params) in
            DENDRITE_NAMES
                .iter()
                .zip([&mut chip.nmda, &mut chip.gaba, &mut chip.shunt])
        {
            for (prefix, slot) in [
                ("Itau", &mut params.i_tau),
                ("Igain", &mut params.i_gain),
                ("C", &mut params.c),
            ] {
                let key = format!("{prefix}_{name}");
                if let Some(v) = values.get(&key) {
                    *slot = per_neuron(v, &key, n)?;
                }
            }
        }
        for (i, (of, nmda_key, shunt_key)) in TYPE_KEYS.into_iter().enumerate() {
            let rows = if i == 0 { n_in } else { n };
            let mut flags = |key: &str| -> Result<Option<Vec<bool>>, FormatError> {
                match fields.take_numbers(key).flatten() {
                    None => Ok(None),
                    Some(m) => {
                        let d = shaped(m, key, Some(rows), n)?;
                        let bits: Vec<u8> = integers(&d, key, 0, 1, "0 or 1")?;
                        Ok(Some(bits.into_iter().map(|b| b == 1).collect()))
                    }
                }
            };
            let (nmda, shunt) = (flags(nmda_key)?, flags(shunt_key)?);
            if nmda.is_some() || shunt.is_some() {
                let types = (0..rows * n)
                    .map(|k| SynapseChoice {
                        nmda: nmda.as_ref().is_some_and(|f| f[k]),
                        shunt: shunt.as_ref().is_some_and(|f| f[k]),
                    })
                    .collect();
                if of == "w_in" {
                    chip.w_in_types = Some(types);
                } else {
                    chip.w_rec_types = Some(types);
                }
            }
        }
        let chip = (variant == Variant::Chip).then_some(chip);
        if let Some(c) = &chip {
            c.validate(n, Some(n_in))
                .map_err(|e| FormatError::at("", Problem::Network(e)))?;
        }
        Ok(Common {
            iscale,
            dt,
            variant,
            params,
            chip,
        })
    }

    /// Writes `variant`, `iscale` and `dt`.
    pub(crate) fn write_head(&self, out: &mut Object) {
        out.put("variant", self.variant.name());
        out.put("iscale", &self.iscale);
        out.put("dt", &self.dt);
    }

    /// Writes the per-neuron values and a `chip` network's dendrites and synapse types (`n_in` input
    /// channels).
    pub(crate) fn write_tail(&self, out: &mut Object, n_in: usize) {
        for p in Param::ALL {
            out.put(p.rockpool_name(), self.params.get(p));
        }
        let Some(chip) = &self.chip else {
            return;
        };
        for (name, d) in DENDRITE_NAMES
            .iter()
            .zip([&chip.nmda, &chip.gaba, &chip.shunt])
        {
            out.put(&format!("Itau_{name}"), &d.i_tau);
            out.put(&format!("Igain_{name}"), &d.i_gain);
            out.put(&format!("C_{name}"), &d.c);
        }
        let n = self.params.i_dc.len();
        for ((_, nmda_key, shunt_key), (types, rows)) in TYPE_KEYS
            .into_iter()
            .zip([(&chip.w_in_types, n_in), (&chip.w_rec_types, n)])
        {
            if let Some(t) = types {
                let nmda: Vec<u8> = t.iter().map(|c| u8::from(c.nmda)).collect();
                let shunt: Vec<u8> = t.iter().map(|c| u8::from(c.shunt)).collect();
                out.raw(nmda_key, &matrix::to_json(rows, n, &nmda, &0));
                out.raw(shunt_key, &matrix::to_json(rows, n, &shunt, &0));
            }
        }
    }
}

/// One number for every neuron, or a list of `n`.
fn per_neuron(v: &Value, key: &str, n: usize) -> Result<Vec<f64>, FormatError> {
    if let Some(x) = v.as_f64() {
        return Ok(vec![x; n]);
    }
    let list = v.as_array().ok_or_else(|| {
        FormatError::at(
            key,
            text::value_problem(v, "a number or a list of one per neuron"),
        )
    })?;
    if list.len() != n {
        return Err(FormatError::at(
            key,
            Problem::Length {
                found: list.len(),
                expected: n,
            },
        ));
    }
    list.iter()
        .enumerate()
        .map(|(j, x)| text::number(x, &format!("{key}[{j}]")))
        .collect()
}

/// Reads a network JSON; every problem is an error naming its JSON path.
pub fn read_network(text: &str) -> Result<NetworkFile, FormatError> {
    let mut fields = Fields::parse(text)?;
    let w_rec = fields.take_numbers("w_rec").flatten();
    let w_in = fields.take_numbers("w_in").flatten();
    let core_map_len = fields
        .values
        .get("core_map")
        .and_then(Value::as_array)
        .map(Vec::len);
    // The size: from `w_rec` (square), else `w_in`'s columns, else the core map.
    let w_rec = match w_rec {
        Some(m) => {
            let d = m.into_dense("w_rec", 0.0)?;
            if d.rows != d.cols {
                return Err(FormatError::at(
                    "w_rec",
                    Problem::Shape {
                        found: (d.rows, d.cols),
                        expected: (d.cols, d.cols),
                    },
                ));
            }
            Some(d)
        }
        None => None,
    };
    let w_in = match w_in {
        Some(m) => {
            let d = m.into_dense("w_in", 0.0)?;
            Some(d)
        }
        None => None,
    };
    let n = match (&w_rec, &w_in) {
        (Some(r), _) => r.cols,
        (None, Some(i)) if !(i.rows == 0 && i.data.is_empty()) => i.cols,
        _ => core_map_len.ok_or(FormatError::at("", Problem::NoNeurons))?,
    };
    let w_in = match w_in {
        Some(d) => Some(shaped(
            MatrixJson::Dense {
                rows: d.rows,
                cols: d.cols,
                data: d.data,
            },
            "w_in",
            None,
            n,
        )?),
        None => None,
    };
    let n_in = w_in.as_ref().map_or(0, |d| d.rows);
    let core_map = core_map(&fields.values, Some(n))?;
    let method = match fields.values.get("method") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let name = v
                .as_str()
                .ok_or_else(|| FormatError::at("method", text::value_problem(v, "a string")))?;
            Some(QuantMethod::from_name(name).ok_or_else(|| {
                FormatError::at(
                    "method",
                    Problem::UnknownName {
                        found: name.to_owned(),
                        expected: QuantMethod::NAMES,
                    },
                )
            })?)
        }
    };
    let seed = match fields.values.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            FormatError::at("seed", text::value_problem(v, "a whole number >= 0"))
        })?),
    };
    let common = Common::read(&mut fields, n, n_in)?;
    let to_matrix =
        |d: Dense<f64>| Matrix::from_vec(d.rows, d.cols, d.data).expect("checked shape");
    let network = Network {
        params: common.params,
        w_in: w_in.map(to_matrix),
        w_rec: w_rec.map_or_else(|| Matrix::zeros(n, n), to_matrix),
        i_scale: common.iscale,
        dt: common.dt,
        variant: common.variant,
        chip: common.chip,
    };
    network
        .validate()
        .map_err(|e| FormatError::at("", Problem::Network(e)))?;
    let architecture = match fields.values.get(architecture::KEY) {
        None | Some(Value::Null) => None,
        Some(v) => Some(architecture::read(v, &network)?),
    };
    let mut extra = fields.extra();
    extra.retain(|k, _| k != architecture::KEY);
    Ok(NetworkFile {
        network,
        core_map,
        method,
        seed,
        architecture,
        extra,
    })
}

/// Writes a network JSON (see the module documentation); [`read_network`] reads it back equal.
pub fn write_network(file: &NetworkFile) -> String {
    let net = &file.network;
    let n = net.neurons();
    let common = Common {
        iscale: net.i_scale,
        dt: net.dt,
        variant: net.variant,
        params: net.params.clone(),
        chip: net.chip.clone().filter(|_| net.variant == Variant::Chip),
    };
    let mut out = Object::new();
    common.write_head(&mut out);
    if let Some(c) = &file.core_map {
        out.put("core_map", c);
    }
    if let Some(m) = file.method {
        out.put("method", m.name());
    }
    if let Some(s) = file.seed {
        out.put("seed", &s);
    }
    match &net.w_in {
        Some(m) => out.raw("w_in", &matrix::to_json(m.rows(), n, m.as_slice(), &0.0)),
        None => out.raw("w_in", "null"),
    }
    out.raw("w_rec", &matrix::to_json(n, n, net.w_rec.as_slice(), &0.0));
    common.write_tail(&mut out, net.input_channels());
    if let Some(a) = &file.architecture {
        out.raw(architecture::KEY, &architecture::to_json(a));
    }
    for (k, v) in file
        .extra
        .iter()
        .filter(|(k, _)| !is_known_key(k) && *k != architecture::KEY)
    {
        out.put(k, v);
    }
    out.finish()
}
