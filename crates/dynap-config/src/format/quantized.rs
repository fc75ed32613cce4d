//! The quantize output (`dynap quantize`, and `dynap unmap`, which adds `places`): a network in the
//! chip's 4-bit weight format (`core_map`, per-core base currents `cores[k].iw`, masks and signs per
//! connection, each connection's dendrite), the weights it decodes to, the per-neuron values, and the
//! quantizer's report.

use super::error::{FormatError, Problem};
use super::matrix::{self, MatrixJson};
use super::network::{
    Common, DendriteName, Fields, QuantMethod, core_map, integers, is_known_key, shaped,
};
use super::text::{self, Object};
use crate::map::NeuronPlace;
use crate::model::{CORES, MAX_CHIPS, NEURONS};
use dynap_model::{
    BASE_WEIGHTS, ChipSynapses, Dendrite, Network, NeuronParams, QuantMatrix, QuantizedWeights,
    SynapseChoice, Variant, WeightMatrix,
};
use serde_json::{Map, Value, json};

/// One core's quantization, as the quantize output reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreEntry {
    /// The core (an index of the core map).
    pub core: usize,
    /// Non-zero weights quantized on it.
    pub weights: usize,
    /// The base weight currents `Iw_0..Iw_3` the chip uses (A).
    pub iw: [f64; BASE_WEIGHTS],
    /// The currents as fitted, before snapping to the bias generator (A).
    pub iw_fitted: Option<[f64; BASE_WEIGHTS]>,
    /// Relative RMS weight error of the core before snapping.
    pub error_before_snap: Option<f64>,
    /// The same after snapping.
    pub error_after_snap: Option<f64>,
}

impl CoreEntry {
    /// A core with its currents and nothing else reported.
    pub fn new(core: usize, iw: [f64; BASE_WEIGHTS]) -> CoreEntry {
        CoreEntry {
            core,
            weights: 0,
            iw,
            iw_fitted: None,
            error_before_snap: None,
            error_after_snap: None,
        }
    }
}

/// A quantize output read, or to write.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedFile {
    /// The weights in the chip's format (the base currents come from `cores`).
    pub weights: QuantizedWeights,
    /// The quantizer's report per core, in the file's order.
    pub cores: Vec<CoreEntry>,
    /// The quantizer that made it.
    pub method: Option<QuantMethod>,
    /// `||W_hat - W||_F / ||W||_F` over both matrices.
    pub relative_rms_error: Option<f64>,
    /// Per-neuron values (defaults where the file has none).
    pub params: NeuronParams,
    /// Time step (s).
    pub dt: f64,
    /// Model variant.
    pub variant: Variant,
    /// A `chip` network's dendrites and synapse types.
    pub chip: Option<ChipSynapses>,
    /// Where each neuron is on the board (what `dynap unmap` found).
    pub places: Option<Vec<NeuronPlace>>,
    /// Keys no format defines, kept as they are and written back.
    pub extra: Map<String, Value>,
}

/// One entry per core the core map uses, in core order, with the weights' base currents: the report's
/// entry where it has one (its other fields kept), a bare one otherwise.
fn core_entries(weights: &QuantizedWeights, report: &[CoreEntry]) -> Vec<CoreEntry> {
    let mut used: Vec<usize> = weights.core_map().to_vec();
    used.sort_unstable();
    used.dedup();
    used.into_iter()
        .map(|core| {
            let iw = weights.base_currents()[core];
            match report.iter().find(|c| c.core == core) {
                Some(c) => CoreEntry { iw, ..c.clone() },
                None => CoreEntry::new(core, iw),
            }
        })
        .collect()
}

impl QuantizedFile {
    /// A file of quantized weights with the given per-neuron values and per-core report (`cores`
    /// gets one entry per core the core map uses, in core order, its `iw` the weights' base currents;
    /// report entries of other cores are dropped).
    pub fn new(
        weights: QuantizedWeights,
        cores: Vec<CoreEntry>,
        network: &Network,
    ) -> QuantizedFile {
        let cores = core_entries(&weights, &cores);
        QuantizedFile {
            weights,
            cores,
            method: None,
            relative_rms_error: None,
            params: network.params.clone(),
            dt: network.dt,
            variant: network.variant,
            chip: network
                .chip
                .clone()
                .filter(|_| network.variant == Variant::Chip),
            places: None,
            extra: Map::new(),
        }
    }

    /// The network the chip runs: the decoded weights with the file's values.
    pub fn network(&self) -> Network {
        let (w_in, w_rec) = self.weights.decode();
        Network {
            params: self.params.clone(),
            w_in,
            w_rec,
            i_scale: self.weights.i_scale(),
            dt: self.dt,
            variant: self.variant,
            chip: self.chip.clone(),
        }
    }

    /// Keys of the file no format defines (see [`super::NetworkFile::unknown_keys`]).
    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.extra.keys().map(String::as_str)
    }
}

/// The dendrite each connection drives (`None`: no connection), by its sign, or for a `chip` network
/// by its synapse type too.
fn dendrites(m: &QuantMatrix, types: Option<&[SynapseChoice]>) -> Vec<Option<Dendrite>> {
    m.masks()
        .iter()
        .zip(m.signs())
        .enumerate()
        .map(|(k, (&q, &s))| {
            if q == 0 {
                return None;
            }
            match types {
                Some(t) => t[k].dendrite(f64::from(s)),
                None => Dendrite::for_sign(s),
            }
        })
        .collect()
}

fn dendrite_name(d: &Option<Dendrite>) -> &'static str {
    d.map_or("none", Dendrite::name)
}

/// Reads one quantized matrix (`{which}_mask`, `{which}_sign`), `rows` `None`: any number of rows.
fn quant_matrix(
    fields: &mut Fields,
    which: WeightMatrix,
    rows: Option<usize>,
    n: usize,
) -> Result<Option<QuantMatrix>, FormatError> {
    let prefix = match which {
        WeightMatrix::Input => "w_in",
        WeightMatrix::Recurrent => "w_rec",
    };
    let (mask_key, sign_key) = (format!("{prefix}_mask"), format!("{prefix}_sign"));
    let mask = fields.take_numbers(&mask_key).flatten();
    let sign = fields.take_numbers(&sign_key).flatten();
    let (mask, sign) = match (mask, sign) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(FormatError::at(sign_key, Problem::Missing)),
        (None, Some(_)) => return Err(FormatError::at(mask_key, Problem::Missing)),
        (Some(m), Some(s)) => (m, s),
    };
    let mask = shaped(mask, &mask_key, rows, n)?;
    let sign = shaped(sign, &sign_key, Some(mask.rows), n)?;
    let masks: Vec<u8> = integers(
        &mask,
        &mask_key,
        0,
        15,
        "a 4-bit mask (a whole number in 0..=15)",
    )?;
    let signs: Vec<i8> = integers(&sign, &sign_key, -1, 1, "a sign (-1, 0 or 1)")?;
    QuantMatrix::new(which, mask.rows, n, masks, signs)
        .map(Some)
        .map_err(|e| FormatError::at(mask_key, Problem::Network(e)))
}

/// Checks a dendrite matrix the file gives against the dendrites its signs and types imply.
fn check_dendrites(
    given: Option<MatrixJson<DendriteName>>,
    key: &str,
    implied: &[Option<Dendrite>],
    rows: usize,
    n: usize,
) -> Result<(), FormatError> {
    let Some(given) = given else { return Ok(()) };
    let d = given.into_dense(key, DendriteName(None))?;
    if d.rows == 0 && d.data.is_empty() && implied.is_empty() {
        return Ok(());
    }
    if (d.rows, d.cols) != (rows, n) {
        return Err(FormatError::at(
            key,
            Problem::Shape {
                found: (d.rows, d.cols),
                expected: (rows, n),
            },
        ));
    }
    for (i, (g, want)) in d.data.iter().zip(implied).enumerate() {
        if g.0 != *want {
            return Err(FormatError::at(
                format!("{key}[{}][{}]", i / n.max(1), i % n.max(1)),
                Problem::Value {
                    found: format!("{:?}", dendrite_name(&g.0)),
                    expected: "the dendrite the connection's mask, sign and synapse type give",
                },
            ));
        }
    }
    Ok(())
}

/// Reads a quantize output (or what `dynap unmap` writes); every problem names its JSON path.
pub fn read_quantized(text: &str) -> Result<QuantizedFile, FormatError> {
    let mut fields = Fields::parse(text)?;
    let core_map = core_map(&fields.values, None)?
        .ok_or_else(|| FormatError::at("core_map", Problem::Missing))?;
    let n = core_map.len();
    let w_rec = quant_matrix(&mut fields, WeightMatrix::Recurrent, Some(n), n)?
        .unwrap_or_else(|| QuantMatrix::zeros(n, n));
    let w_in = quant_matrix(&mut fields, WeightMatrix::Input, None, n)?;
    let n_in = w_in.as_ref().map_or(0, QuantMatrix::rows);
    let cores_used = core_map.iter().max().map_or(1, |m| m + 1);
    let mut base = vec![[0.0; BASE_WEIGHTS]; cores_used];
    let mut cores = Vec::new();
    let list = text::list(text::field(&fields.values, "", "cores")?, "cores")?;
    for (k, entry) in list.iter().enumerate() {
        let path = format!("cores[{k}]");
        let obj = text::object(entry, &path)?;
        let at = |key: &str| text::join(&path, key);
        let core = text::index(
            text::field(obj, &path, "core")?,
            &at("core"),
            cores_used,
            "a core of the core map",
        )?;
        if let Some(first) = cores.iter().position(|c: &CoreEntry| c.core == core) {
            return Err(FormatError::at(at("core"), Problem::Duplicate { first }));
        }
        let currents = |key: &str| -> Result<Option<[f64; BASE_WEIGHTS]>, FormatError> {
            let Some(v) = obj.get(key).filter(|v| !v.is_null()) else {
                return Ok(None);
            };
            let l = text::list(v, &at(key))?;
            if l.len() != BASE_WEIGHTS {
                return Err(FormatError::at(
                    at(key),
                    Problem::Length {
                        found: l.len(),
                        expected: BASE_WEIGHTS,
                    },
                ));
            }
            let mut out = [0.0; BASE_WEIGHTS];
            for (i, x) in l.iter().enumerate() {
                out[i] = text::number(x, &format!("{}[{i}]", at(key)))?;
                if !(out[i].is_finite() && out[i] >= 0.0) {
                    return Err(FormatError::at(
                        format!("{}[{i}]", at(key)),
                        text::value_problem(x, "a current >= 0 (A)"),
                    ));
                }
            }
            Ok(Some(out))
        };
        let iw = currents("iw")?.ok_or_else(|| FormatError::at(at("iw"), Problem::Missing))?;
        let optional = |key: &str| -> Result<Option<f64>, FormatError> {
            obj.get(key)
                .filter(|v| !v.is_null())
                .map(|v| text::number(v, &at(key)))
                .transpose()
        };
        base[core] = iw;
        cores.push(CoreEntry {
            core,
            weights: match obj.get("weights") {
                None | Some(Value::Null) => 0,
                Some(v) => text::index(v, &at("weights"), usize::MAX, "a count")?,
            },
            iw,
            iw_fitted: currents("iw_fitted")?,
            error_before_snap: optional("error_before_snap")?,
            error_after_snap: optional("error_after_snap")?,
        });
    }
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
    let relative_rms_error = match fields.values.get("relative_rms_error") {
        None | Some(Value::Null) => None,
        Some(v) => Some(text::number(v, "relative_rms_error")?),
    };
    let places = match fields.values.get("places") {
        None | Some(Value::Null) => None,
        Some(v) => Some(read_places(v, n)?),
    };
    // The decoded weights (`w_in`, `w_rec`) are derived: not read back.
    fields.take_numbers("w_in");
    fields.take_numbers("w_rec");
    let common = Common::read(&mut fields, n, n_in)?;
    let weights = QuantizedWeights::new(core_map, base, w_in, w_rec, common.iscale)
        .map_err(|e| FormatError::at("", Problem::Network(e)))?;
    // The dendrite matrices are derived too, but an edit must not pass unnoticed.
    let types = |t: fn(&ChipSynapses) -> &Option<Vec<SynapseChoice>>| {
        common.chip.as_ref().and_then(|c| t(c).as_deref())
    };
    let implied_in = weights
        .w_in()
        .map(|m| dendrites(m, types(|c| &c.w_in_types)))
        .unwrap_or_default();
    let implied_rec = dendrites(weights.w_rec(), types(|c| &c.w_rec_types));
    let (din, drec) = (
        fields.take_names("w_in_dendrite").flatten(),
        fields.take_names("w_rec_dendrite").flatten(),
    );
    check_dendrites(din, "w_in_dendrite", &implied_in, n_in, n)?;
    check_dendrites(drec, "w_rec_dendrite", &implied_rec, n, n)?;
    Ok(QuantizedFile {
        // One entry per core the core map uses, whatever the file listed (as the writer writes).
        cores: core_entries(&weights, &cores),
        weights,
        method,
        relative_rms_error,
        params: common.params,
        dt: common.dt,
        variant: common.variant,
        chip: common.chip,
        places,
        extra: fields.extra(),
    })
}

fn read_places(v: &Value, n: usize) -> Result<Vec<NeuronPlace>, FormatError> {
    let list = text::list(v, "places")?;
    if list.len() != n {
        return Err(FormatError::at(
            "places",
            Problem::Length {
                found: list.len(),
                expected: n,
            },
        ));
    }
    let mut out = Vec::with_capacity(n);
    for (j, e) in list.iter().enumerate() {
        let path = format!("places[{j}]");
        let obj = text::object(e, &path)?;
        let get = |key: &str, limit: usize, what: &'static str| {
            text::index(
                text::field(obj, &path, key)?,
                &text::join(&path, key),
                limit,
                what,
            )
        };
        let place = NeuronPlace {
            chip: get("chip", MAX_CHIPS, "a chip in 0..4")?,
            core: get("core", CORES, "a core in 0..4")?,
            neuron: get("neuron", NEURONS, "a neuron in 0..256")?,
        };
        if let Some(first) = out.iter().position(|p| *p == place) {
            return Err(FormatError::at(path, Problem::Duplicate { first }));
        }
        out.push(place);
    }
    Ok(out)
}

/// Writes a quantize output (see the module documentation); [`read_quantized`] reads it back equal.
pub fn write_quantized(file: &QuantizedFile) -> String {
    let w = &file.weights;
    let n = w.neurons();
    let common = Common {
        iscale: w.i_scale(),
        dt: file.dt,
        variant: file.variant,
        params: file.params.clone(),
        chip: file.chip.clone().filter(|_| file.variant == Variant::Chip),
    };
    let mut out = Object::new();
    common.write_head(&mut out);
    if let Some(m) = file.method {
        out.put("method", m.name());
    }
    if let Some(e) = file.relative_rms_error {
        out.put("relative_rms_error", &e);
    }
    out.put("core_map", w.core_map());
    // The base currents are the weights' (the report may be stale or incomplete).
    let cores: Vec<Value> = core_entries(w, &file.cores)
        .iter()
        .map(|c| {
            let mut o = json!({"core": c.core, "weights": c.weights, "iw": c.iw});
            let obj = o.as_object_mut().expect("an object");
            if let Some(f) = c.iw_fitted {
                obj.insert("iw_fitted".into(), json!(f));
            }
            for (k, v) in [
                ("error_before_snap", c.error_before_snap),
                ("error_after_snap", c.error_after_snap),
            ] {
                if let Some(v) = v {
                    obj.insert(k.into(), json!(v));
                }
            }
            o
        })
        .collect();
    out.put("cores", &cores);
    let types = |t: fn(&ChipSynapses) -> &Option<Vec<SynapseChoice>>| {
        common.chip.as_ref().and_then(|c| t(c).as_deref())
    };
    let n_in = w.w_in().map_or(0, QuantMatrix::rows);
    for (prefix, m, t, rows) in [
        ("w_in", w.w_in(), types(|c| &c.w_in_types), n_in),
        ("w_rec", Some(w.w_rec()), types(|c| &c.w_rec_types), n),
    ] {
        match m {
            Some(m) => {
                out.raw(
                    &format!("{prefix}_mask"),
                    &matrix::to_json(rows, n, m.masks(), &0),
                );
                out.raw(
                    &format!("{prefix}_sign"),
                    &matrix::to_json(rows, n, m.signs(), &0),
                );
                let names: Vec<DendriteName> =
                    dendrites(m, t).into_iter().map(DendriteName).collect();
                out.raw(
                    &format!("{prefix}_dendrite"),
                    &matrix::to_json(rows, n, &names, &DendriteName(None)),
                );
            }
            None => {
                for suffix in ["mask", "sign", "dendrite"] {
                    out.raw(&format!("{prefix}_{suffix}"), "null");
                }
            }
        }
    }
    let (d_in, d_rec) = w.decode();
    match &d_in {
        Some(m) => out.raw("w_in", &matrix::to_json(m.rows(), n, m.as_slice(), &0.0)),
        None => out.raw("w_in", "null"),
    }
    out.raw("w_rec", &matrix::to_json(n, n, d_rec.as_slice(), &0.0));
    if let Some(places) = &file.places {
        let list: Vec<Value> = places
            .iter()
            .map(|p| json!({"chip": p.chip, "core": p.core, "neuron": p.neuron}))
            .collect();
        out.put("places", &list);
    }
    common.write_tail(&mut out, n_in);
    for (k, v) in file.extra.iter().filter(|(k, _)| !is_known_key(k)) {
        out.put(k, v);
    }
    out.finish()
}
