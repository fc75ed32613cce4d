//! `dynap quantize IN OUT`: the network JSON of DESIGN.md in, the quantize output out; and the
//! quantization of trained networks for `dynap train`.
//!
//! Input: `w_in` `[Nin][N]` and `w_rec` `[N][N]` (each optional, `pre` rows, `post` columns), `core_map`
//! `[N]` (optional: neurons fill cores of 256 in order), `iscale` (or Rockpool's `Iscale`; default
//! 1e-8 A), optional `method` (`alternating`, the default, or `autoencoder`) and `seed` (autoencoder
//! initialisation). Other fields (`dt`, `variant`, per-neuron currents) are passed through unchanged.
//!
//! Output: `core_map`, `iscale`, `method`, `cores` (`{core, weights, iw, iw_fitted,
//! error_before_snap, error_after_snap}`, currents in A), `w_in_mask`, `w_rec_mask` (0..15),
//! `w_in_sign`, `w_rec_sign` (-1, 0, 1), `w_in_dendrite`, `w_rec_dendrite` (`ampa`, `gaba`, `none`),
//! `relative_rms_error` = ||W^ - W||_F / ||W||_F over both matrices.

use crate::json::{J, JResult};
use dynap_model::{Dendrite, Matrix, Network, QuantMatrix};
use dynap_quant::{Method, Options, Quantized};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;

/// Neurons per core of DYNAP-SE2, for the default core map.
pub const NEURONS_PER_CORE: usize = 256;

/// Largest number of cores a core map may address (4 cores per chip, 1024 chips).
pub const MAX_CORES: usize = 4096;

/// The default core map: neurons fill cores of 256 in order.
pub fn default_core_map(n: usize) -> Vec<usize> {
    (0..n).map(|j| j / NEURONS_PER_CORE).collect()
}

/// What a network JSON holds for quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeInput {
    /// Input weights `[Nin, N]`.
    pub w_in: Option<Matrix>,
    /// Recurrent weights `[N, N]`.
    pub w_rec: Option<Matrix>,
    /// Core of every neuron.
    pub core_map: Vec<usize>,
    /// Whether the file gave the core map (otherwise it is the default one).
    pub core_map_given: bool,
    /// Weight scale (A).
    pub iscale: f64,
    /// Quantization options.
    pub options: Options,
    /// The other fields of the file, passed through.
    pub passthrough: serde_json::Map<String, Value>,
}

fn matrix_of(j: &J) -> JResult<Matrix> {
    let (shape, data) = j.tensor_rank(2)?;
    let (r, c) = (shape[0], shape.get(1).copied().unwrap_or(0));
    Matrix::from_vec(r, c, data).ok_or_else(|| format!("`{}`: malformed matrix", j.path()))
}

/// A network file split while parsing: the weight matrices straight into flat vectors (a dense
/// 4096-neuron network is 16 M numbers: no JSON value tree for them), every other field as JSON.
struct Split {
    w_in: Option<(usize, usize, Vec<f64>)>,
    w_rec: Option<(usize, usize, Vec<f64>)>,
    rest: serde_json::Map<String, Value>,
}

/// Rows of numbers into one flat vector; `None` inside if the rows are ragged (the slow reader then
/// says where).
struct Rows(Option<(usize, usize, Vec<f64>)>);

impl<'de> serde::Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rows, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Rows;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a matrix (an array of rows of numbers)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
                let (mut data, mut rows, mut cols, mut ragged) = (Vec::new(), 0usize, None, false);
                while let Some(row) = seq.next_element::<Vec<f64>>()? {
                    match cols {
                        None => cols = Some(row.len()),
                        Some(c) if c != row.len() => ragged = true,
                        _ => {}
                    }
                    data.extend_from_slice(&row);
                    rows += 1;
                }
                Ok(Rows((!ragged).then(|| (rows, cols.unwrap_or(0), data))))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> serde::Deserialize<'de> for Split {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Split, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Split;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with `w_in` and/or `w_rec`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Split, A::Error> {
                let mut out = Split {
                    w_in: None,
                    w_rec: None,
                    rest: serde_json::Map::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "w_in" | "w_rec" => {
                            let rows: Option<Rows> = map.next_value()?;
                            let Some(Rows(m)) = rows else { continue };
                            let Some(m) = m else {
                                return Err(serde::de::Error::custom("ragged"));
                            };
                            if key == "w_in" {
                                out.w_in = Some(m);
                            } else {
                                out.w_rec = Some(m);
                            }
                        }
                        _ => {
                            out.rest.insert(key, map.next_value()?);
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a network JSON for quantization; errors name the field (and row) at fault.
pub fn read_input(text: &str) -> JResult<QuantizeInput> {
    // The fast reader; on any problem, the path-aware one finds and names it.
    if let Ok(split) = serde_json::from_str::<Split>(text) {
        let to_matrix = |m: Option<(usize, usize, Vec<f64>)>| {
            m.and_then(|(r, c, data)| Matrix::from_vec(r, c, data))
        };
        let (w_in, w_rec) = (to_matrix(split.w_in), to_matrix(split.w_rec));
        return read_parts(w_in, w_rec, Value::Object(split.rest));
    }
    read_slow(text)
}

/// The path-aware reader (a JSON value tree; used when the fast one meets a problem).
fn read_slow(text: &str) -> JResult<QuantizeInput> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("expected a JSON object with `w_in` and/or `w_rec`".into());
    }
    let root = J::root(&v);
    let w_in = root.opt("w_in").map(|j| matrix_of(&j)).transpose()?;
    let w_rec = root.opt("w_rec").map(|j| matrix_of(&j)).transpose()?;
    if let Some(o) = v.as_object_mut() {
        o.remove("w_in");
        o.remove("w_rec");
    }
    read_parts(w_in, w_rec, v)
}

/// The rest of a network file, once its matrices are read.
fn read_parts(w_in: Option<Matrix>, w_rec: Option<Matrix>, v: Value) -> JResult<QuantizeInput> {
    let root = J::root(&v);
    let n = match (&w_in, &w_rec) {
        (Some(a), Some(b)) => {
            if a.cols() != b.cols() || b.rows() != b.cols() {
                return Err(format!(
                    "`w_in` is {}x{} and `w_rec` is {}x{}: w_rec must be N x N and w_in Nin x N with the same N",
                    a.rows(),
                    a.cols(),
                    b.rows(),
                    b.cols()
                ));
            }
            b.cols()
        }
        (Some(a), None) => a.cols(),
        (None, Some(b)) => {
            if b.rows() != b.cols() {
                return Err(format!(
                    "`w_rec` is {}x{}; it must be square (N x N)",
                    b.rows(),
                    b.cols()
                ));
            }
            b.cols()
        }
        (None, None) => match root.opt("core_map") {
            Some(c) => c.array()?.len(),
            None => return Err("the network has neither `w_in` nor `w_rec`".into()),
        },
    };
    let core_map = match root.opt("core_map") {
        Some(c) => {
            c.tensor_rank(1)?;
            let cores = c.indices(MAX_CORES)?;
            if cores.len() != n {
                return Err(format!(
                    "`core_map` has {} entries; the network has {n} neurons",
                    cores.len()
                ));
            }
            cores
        }
        None => default_core_map(n),
    };
    let iscale = match root.opt("iscale").or_else(|| root.opt("Iscale")) {
        Some(j) => {
            let x = j.f64()?;
            if !(x.is_finite() && x > 0.0) {
                return Err(format!(
                    "`{}` is {x}; it must be a current > 0 (A)",
                    j.path()
                ));
            }
            x
        }
        None => dynap_model::DEFAULT_ISCALE,
    };
    let mut method = match root.opt("method") {
        Some(m) => {
            let name = m.str()?;
            Method::from_name(name).ok_or_else(|| {
                format!("`method` is {name:?}; it must be \"alternating\" or \"autoencoder\"")
            })?
        }
        None => Method::Alternating,
    };
    if let (Some(s), Method::Autoencoder { options, .. }) = (root.opt("seed"), &mut method) {
        options.seed = s.f64()? as u64;
    }
    let mut passthrough = v.as_object().cloned().unwrap_or_default();
    for key in [
        "w_in", "w_rec", "core_map", "iscale", "Iscale", "method", "seed",
    ] {
        passthrough.remove(key);
    }
    Ok(QuantizeInput {
        core_map_given: root.opt("core_map").is_some(),
        w_in,
        w_rec,
        core_map,
        iscale,
        options: Options {
            method,
            ..Options::default()
        },
        passthrough,
    })
}

fn rows<T: Copy + Into<Value>>(data: &[T], cols: usize) -> Value {
    Value::Array(
        data.chunks(cols.max(1))
            .map(|r| Value::Array(r.iter().map(|&x| x.into()).collect()))
            .collect(),
    )
}

/// Each connection's dendrite: by its sign (AMPA or GABA), or for a `chip` network by its synapse
/// type too (NMDA, SHUNT).
fn dendrites(m: &QuantMatrix, types: Option<&[dynap_model::SynapseChoice]>) -> Value {
    let names: Vec<&str> = m
        .masks()
        .iter()
        .zip(m.signs())
        .enumerate()
        .map(|(k, (&q, &s))| {
            let d = match types {
                Some(t) => t[k].dendrite(f64::from(s)),
                None => Dendrite::for_sign(s),
            };
            match d {
                Some(d) if q > 0 => d.name(),
                _ => "none",
            }
        })
        .collect();
    rows(&names, m.cols())
}

/// The quantize output (see the module documentation) of `q`, with `passthrough` fields added.
pub fn output_json(
    q: &Quantized,
    method: &Method,
    passthrough: &serde_json::Map<String, Value>,
) -> Value {
    let w = &q.weights;
    let cores: Vec<Value> = q
        .cores
        .iter()
        .map(|c| {
            json!({
                "core": c.core,
                "weights": c.weights,
                "iw": c.iw,
                "iw_fitted": c.iw_fitted,
                "error_before_snap": c.error_before_snap,
                "error_after_snap": c.error_after_snap,
            })
        })
        .collect();
    // A `chip` network's synapse types (its file's `w_in_nmda`, `w_rec_shunt`, ...), if valid.
    let chip = (passthrough.get("variant").and_then(Value::as_str) == Some("chip"))
        .then(|| {
            let n_in = w.w_in().map_or(0, |m| m.rows());
            crate::report::chip_synapses_from(passthrough, w.neurons(), n_in).ok()
        })
        .flatten();
    let mut out = passthrough.clone();
    let mut put = |k: &str, v: Value| {
        out.insert(k.into(), v);
    };
    put("core_map", json!(w.core_map()));
    put("iscale", json!(w.i_scale()));
    put("method", json!(method.name()));
    put("cores", Value::Array(cores));
    let n = w.neurons();
    match w.w_in() {
        Some(m) => {
            put("w_in_mask", rows(m.masks(), n));
            put("w_in_sign", rows(m.signs(), n));
            put(
                "w_in_dendrite",
                dendrites(m, chip.as_ref().and_then(|c| c.w_in_types.as_deref())),
            );
        }
        None => {
            for k in ["w_in_mask", "w_in_sign", "w_in_dendrite"] {
                put(k, Value::Null);
            }
        }
    }
    put("w_rec_mask", rows(w.w_rec().masks(), n));
    put("w_rec_sign", rows(w.w_rec().signs(), n));
    put(
        "w_rec_dendrite",
        dendrites(
            w.w_rec(),
            chip.as_ref().and_then(|c| c.w_rec_types.as_deref()),
        ),
    );
    put("relative_rms_error", json!(q.relative_rms_error));
    Value::Object(out)
}

/// Quantizes a network's weights with `options` on its default core map and returns the result and
/// the network with the decoded (chip) weights.
pub fn quantize_network(net: &Network, options: &Options) -> Result<(Quantized, Network), String> {
    let core_map = default_core_map(net.neurons());
    let q = dynap_quant::quantize(
        net.w_in.as_ref(),
        Some(&net.w_rec),
        &core_map,
        net.i_scale,
        options,
    )
    .map_err(|e| e.to_string())?;
    let mut quantized = net.clone();
    q.weights
        .apply_to(&mut quantized)
        .map_err(|e| e.to_string())?;
    Ok((q, quantized))
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

/// `dynap quantize IN OUT [--method alternating|autoencoder] [--no-snap] [--seed N]`.
pub fn run(args: &[&str]) -> Result<ExitCode, String> {
    let mut files = Vec::new();
    let (mut method, mut no_snap, mut seed) = (None, false, None);
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--method" => {
                let m = *it.next().ok_or("--method needs a value")?;
                if Method::from_name(m).is_none() {
                    return Err(format!(
                        "--method {m}: expected `alternating` or `autoencoder`"
                    ));
                }
                method = Some(m);
            }
            "--no-snap" => no_snap = true,
            "--seed" => {
                let v = it.next().ok_or("--seed needs a value")?;
                seed = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("--seed {v}: expected a non-negative integer"))?,
                );
            }
            f if !f.starts_with("--") => files.push(f),
            other => return Err(format!("quantize: unknown option {other}")),
        }
    }
    let [input, output] = files.as_slice() else {
        return Err("quantize needs IN and OUT".into());
    };
    Ok(
        match quantize_file(Path::new(input), Path::new(output), method, no_snap, seed) {
            Ok(text) => {
                println!("{text}");
                println!("wrote {output}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dynap quantize: {e}");
                ExitCode::FAILURE
            }
        },
    )
}

fn quantize_file(
    input: &Path,
    output: &Path,
    method: Option<&str>,
    no_snap: bool,
    seed: Option<u64>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let mut q_in = read_input(&text).map_err(|e| format!("{}: {e}", input.display()))?;
    if let Some(m) = method {
        q_in.options.method = Method::from_name(m)
            .ok_or_else(|| format!("--method {m}: expected `alternating` or `autoencoder`"))?;
    }
    if let (Some(s), Method::Autoencoder { options, .. }) = (seed, &mut q_in.options.method) {
        options.seed = s;
    }
    if no_snap {
        q_in.options.snap = None;
    }
    let q = dynap_quant::quantize(
        q_in.w_in.as_ref(),
        q_in.w_rec.as_ref(),
        &q_in.core_map,
        q_in.iscale,
        &q_in.options,
    )
    .map_err(|e| format!("{}: {e}", input.display()))?;
    let out = output_json(&q, &q_in.options.method, &q_in.passthrough);
    crate::cli::write_atomic(
        output,
        serde_json::to_string_pretty(&out)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    Ok(table(&q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_get_clear_errors() {
        let e = read_input(r#"{"w_in": [[1, 2], [3]]}"#).unwrap_err();
        assert_eq!(
            e,
            "`w_in[1]`: ragged array: 1 entries where the first row has 2"
        );
        let e = read_input(r#"{"w_in": [[1, 2]], "w_rec": [[1, 2, 3]]}"#).unwrap_err();
        assert!(e.contains("w_rec must be N x N"), "{e}");
        let e = read_input(r#"{"w_in": [[1, "x"]]}"#).unwrap_err();
        assert_eq!(e, "`w_in[0][1]`: expected a number, found \"x\"");
        let e = read_input(r#"{"w_rec": [[1]], "core_map": [0, 1]}"#).unwrap_err();
        assert_eq!(e, "`core_map` has 2 entries; the network has 1 neurons");
        let e = read_input(r#"{"w_rec": [[1]], "core_map": [-1]}"#).unwrap_err();
        assert!(e.contains("core_map[0]"), "{e}");
        let e = read_input(r#"{"w_rec": [[1]], "method": "kmeans"}"#).unwrap_err();
        assert!(e.contains("\"kmeans\""), "{e}");
        let e = read_input(r#"{"w_rec": [[1]], "iscale": -1}"#).unwrap_err();
        assert!(e.contains("`iscale` is -1"), "{e}");
        assert!(read_input("[1]").is_err());
        assert!(read_input("{").unwrap_err().starts_with("not valid JSON"));
        assert!(read_input("{}").unwrap_err().contains("neither"));
    }

    #[test]
    fn the_fast_reader_reads_what_the_path_aware_one_reads() {
        for text in [
            r#"{"w_in": [[0.5, -1.0], [0.0, 2.0]], "w_rec": [[0, 0.3], [-0.2, 0]], "Iscale": 1e-8, "dt": 0.001, "Itau_mem": [1e-12, 2e-12]}"#,
            r#"{"w_rec": [[1.5]], "core_map": [0], "method": "autoencoder", "seed": 3, "w_in": null}"#,
            r#"{"w_in": [[1, 2, 3]], "extra": {"nested": [1, "a"]}, "iscale": 2e-8}"#,
        ] {
            assert_eq!(
                read_input(text).unwrap(),
                read_slow(text).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn output_has_the_contract_fields_and_passes_other_fields_through() {
        let text = r#"{"w_in": [[0.5, -1.0], [0.0, 2.0]], "w_rec": [[0, 0.3], [-0.2, 0]],
                       "Iscale": 1e-8, "dt": 0.001, "Itau_mem": [1e-12, 2e-12]}"#;
        let q_in = read_input(text).unwrap();
        assert_eq!(q_in.core_map, vec![0, 0]);
        let q = dynap_quant::quantize(
            q_in.w_in.as_ref(),
            q_in.w_rec.as_ref(),
            &q_in.core_map,
            q_in.iscale,
            &q_in.options,
        )
        .unwrap();
        let out = output_json(&q, &q_in.options.method, &q_in.passthrough);
        for key in [
            "core_map",
            "iscale",
            "cores",
            "w_in_mask",
            "w_rec_mask",
            "w_in_sign",
            "w_rec_sign",
            "w_in_dendrite",
            "w_rec_dendrite",
            "relative_rms_error",
            "dt",
            "Itau_mem",
        ] {
            assert!(out.get(key).is_some(), "{key} missing");
        }
        assert_eq!(out["w_in_sign"], json!([[1, -1], [0, 1]]));
        assert_eq!(out["w_rec_dendrite"][1][0], json!("gaba"));
        assert_eq!(out["w_in_dendrite"][1][0], json!("none"));
        assert_eq!(out["method"], json!("alternating"));
        // The reconstruction the contract defines reproduces the reported error.
        let iw = out["cores"][0]["iw"].as_array().unwrap();
        let iw: Vec<f64> = iw.iter().map(|v| v.as_f64().unwrap()).collect();
        let (mut diff, mut norm) = (0.0, 0.0);
        for (w, m, s) in [
            (&q_in.w_in, "w_in_mask", "w_in_sign"),
            (&q_in.w_rec, "w_rec_mask", "w_rec_sign"),
        ] {
            let w = w.as_ref().unwrap();
            for r in 0..2 {
                for c in 0..2 {
                    let mask = out[m][r][c].as_u64().unwrap();
                    let sign = out[s][r][c].as_f64().unwrap();
                    let sum: f64 = (0..4).filter(|k| mask >> k & 1 == 1).map(|k| iw[k]).sum();
                    let hat = sign * sum / 1e-8;
                    diff += (hat - w.get(r, c)).powi(2);
                    norm += w.get(r, c).powi(2);
                }
            }
        }
        let reported = out["relative_rms_error"].as_f64().unwrap();
        assert!(((diff / norm).sqrt() - reported).abs() < 1e-12);
    }

    proptest::proptest! {
        /// Fuzzing: arbitrary text, and a valid file with characters replaced, is read into a request or
        /// refused with a message; whatever is read quantizes or is refused; nothing panics.
        #[test]
        fn arbitrary_and_corrupted_files_never_panic(
            text in "\\PC{0,200}",
            edits in proptest::collection::vec((0usize..400, proptest::char::any()), 0..4),
        ) {
            let _ = read_input(&text);
            let valid = r#"{"w_in": [[0.5, -1.0], [0.0, 2.0]], "w_rec": [[0, 0.3], [-0.2, 0]], "core_map": [0, 1], "iscale": 1e-8, "method": "alternating"}"#;
            let mut t: Vec<char> = valid.chars().collect();
            for (i, c) in edits {
                let n = t.len();
                t[i % n] = c;
            }
            let corrupted: String = t.into_iter().collect();
            if let Ok(q) = read_input(&corrupted) {
                let _ = dynap_quant::quantize(q.w_in.as_ref(), q.w_rec.as_ref(), &q.core_map, q.iscale, &q.options);
            }
        }
    }
}
