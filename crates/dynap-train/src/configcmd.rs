//! The configuration commands of the `dynap` program: `config validate|convert|inspect`, `map` and
//! `unmap`, with the file contracts of DESIGN.md.
//!
//! * `mapping.json` = `{iscale, dt, variant, neurons: [{index, chip, core, neuron}], inputs: [{channel,
//!   destinations: [{core: [4 bools], x_hop, y_hop, tag}]}]}`.
//! * `dynap map IN --out DIR [--tags FILE]`: IN is a quantize output (it has `w_in_mask` or
//!   `w_rec_mask`) or a network JSON (then clustered by parameters when it has no `core_map`, and
//!   quantized with the default quantizer). `--tags FILE`: `{"<chip>:<core>": [tags...]}` allow-lists.
//!   Writes `config.json`, `config.bin`, `mapping.json`.
//! * `dynap unmap DIR --out NET.json [--iscale A]`: the quantize output format plus the decoded weights
//!   (`w_in`, `w_rec`), the per-neuron currents, `dt` and `variant`.

use crate::cli::write_atomic;
use crate::json::{J, JResult};
use crate::quantize::{output_json, read_input};
use dynap_config::{
    Configuration, CoreMask, Destination, Hop, MapOptions, Mapping, NeuronPlace, Tag, from_binary,
    from_json, to_binary, to_json, validate,
};
use dynap_model::{
    BiasGenerator, NeuronParams, Param, QuantMatrix, QuantizedWeights, Variant, WeightMatrix,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reads a configuration by extension (`.bin` binary, anything else JSON); every problem on failure.
pub fn read_config(path: &Path) -> Result<Configuration, Vec<String>> {
    let bytes =
        std::fs::read(path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    if path.extension().is_some_and(|e| e == "bin") {
        from_binary(&bytes).map_err(|e| vec![format!("{}: {e}", path.display())])
    } else {
        let text = String::from_utf8(bytes)
            .map_err(|e| vec![format!("{}: not UTF-8 text ({e})", path.display())])?;
        from_json(&text).map_err(|ps| {
            ps.iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }
}

fn write_config(path: &Path, config: &Configuration) -> Result<usize, String> {
    let bytes = if path.extension().is_some_and(|e| e == "bin") {
        to_binary(config)
    } else {
        to_json(config).into_bytes()
    };
    write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(bytes.len())
}

fn dest_json(d: &Destination) -> Value {
    json!({
        "core": (0..4).map(|k| d.core.contains(k)).collect::<Vec<_>>(),
        "x_hop": d.x_hop.get(),
        "y_hop": d.y_hop.get(),
        "tag": d.tag.get(),
    })
}

/// `mapping.json` of a mapping.
pub fn mapping_json(m: &Mapping) -> Value {
    json!({
        "iscale": m.iscale,
        "dt": m.dt,
        "variant": m.variant.name(),
        "neurons": m.neurons.iter().enumerate().map(|(i, p)| json!({
            "index": i, "chip": p.chip, "core": p.core, "neuron": p.neuron,
        })).collect::<Vec<_>>(),
        "inputs": m.inputs.iter().enumerate().map(|(i, d)| json!({
            "channel": i,
            "destinations": d.iter().map(dest_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Reads `mapping.json`.
pub fn read_mapping(text: &str) -> JResult<Mapping> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let r = J::root(&v);
    let int = |j: &J| -> JResult<i64> {
        let x = j.f64()?;
        if x.fract() == 0.0 && x.abs() < 1e9 {
            Ok(x as i64)
        } else {
            Err(format!("`{}`: {x} is not an integer", j.path()))
        }
    };
    let variant = match r.opt("variant") {
        Some(v) => {
            let name = v.str()?;
            Variant::from_name(name)
                .ok_or_else(|| format!("`variant`: unknown variant {name:?}"))?
        }
        None => Variant::Rockpool,
    };
    let mut neurons = Vec::new();
    let list = r.get("neurons")?;
    for i in 0..list.array()?.len() {
        let e = list.at(i)?;
        let place = |key: &str, limit: i64| -> JResult<usize> {
            let x = int(&e.get(key)?)?;
            if (0..limit).contains(&x) {
                Ok(x as usize)
            } else {
                Err(format!("`{}.{key}`: {x} is outside 0..{limit}", e.path()))
            }
        };
        let p = NeuronPlace {
            chip: place("chip", dynap_config::MAX_CHIPS as i64)?,
            core: place("core", dynap_config::CORES as i64)?,
            neuron: place("neuron", dynap_config::NEURONS as i64)?,
        };
        if let Some(first) = neurons.iter().position(|q| *q == p) {
            return Err(format!(
                "`{}`: chip {} core {} neuron {} is already network neuron {first}; a place holds one neuron",
                e.path(),
                p.chip,
                p.core,
                p.neuron
            ));
        }
        neurons.push(p);
    }
    let mut inputs = Vec::new();
    if let Some(list) = r.opt("inputs") {
        const MAX_INPUTS: usize = 1 << 16;
        if list.array()?.len() > MAX_INPUTS {
            return Err(format!(
                "`inputs`: {} channels; at most {MAX_INPUTS}",
                list.array()?.len()
            ));
        }
        for i in 0..list.array()?.len() {
            let e = list.at(i)?;
            let ds = e.get("destinations")?;
            let mut dests = Vec::new();
            for k in 0..ds.array()?.len() {
                let d = ds.at(k)?;
                let core = d.get("core")?;
                let bits = core.array()?;
                if bits.len() != 4 || bits.iter().any(|b| !b.is_boolean()) {
                    return Err(format!("`{}`: expected 4 booleans", core.path()));
                }
                let mask = bits
                    .iter()
                    .enumerate()
                    .map(|(k, b)| u8::from(b.as_bool() == Some(true)) << k)
                    .sum::<u8>();
                let path = d.path().to_owned();
                let at = |key: &'static str| {
                    let path = path.clone();
                    move |e: dynap_config::RangeError| format!("`{path}.{key}`: {e}")
                };
                dests.push(Destination {
                    core: CoreMask::new(i64::from(mask)).expect("4 bits"),
                    x_hop: Hop::new(int(&d.get("x_hop")?)?).map_err(at("x_hop"))?,
                    y_hop: Hop::new(int(&d.get("y_hop")?)?).map_err(at("y_hop"))?,
                    tag: Tag::new(int(&d.get("tag")?)?).map_err(at("tag"))?,
                });
            }
            inputs.push(dests);
        }
    }
    let positive = |key: &str, default: f64| -> JResult<f64> {
        match r.opt(key) {
            Some(j) => {
                let x = j.f64()?;
                if x.is_finite() && x > 0.0 {
                    Ok(x)
                } else {
                    Err(format!("`{key}` is {x}; it must be > 0"))
                }
            }
            None => Ok(default),
        }
    };
    Ok(Mapping {
        iscale: positive("iscale", dynap_model::DEFAULT_ISCALE)?,
        dt: positive("dt", dynap_model::DEFAULT_DT)?,
        variant,
        neurons,
        inputs,
    })
}

/// Per-neuron parameters from a network or quantize file (Rockpool's names), defaults otherwise.
pub(crate) fn params_from(v: &Value, n: usize) -> JResult<NeuronParams> {
    let r = J::root(v);
    let mut p = NeuronParams::defaults(n);
    for param in Param::ALL {
        if let Some(j) = r.opt(param.rockpool_name()) {
            let (shape, data) = j.tensor()?;
            *p.get_mut(param) = match (shape.len(), data.len()) {
                (0, 1) => vec![data[0]; n],
                (1, len) if len == n => data,
                _ => {
                    return Err(format!(
                        "`{}`: expected {n} values (one per neuron) or one, found shape {shape:?}",
                        j.path()
                    ));
                }
            };
        }
    }
    p.validate(n).map_err(|e| e.to_string())?;
    Ok(p)
}

/// A quantize output read back into the hardware format.
fn quantized_from(v: &Value) -> JResult<QuantizedWeights> {
    let r = J::root(v);
    let cm = r.get("core_map")?;
    cm.tensor_rank(1)?;
    // A board has 4 chips of 4 cores.
    let core_map = cm.indices(dynap_config::MAX_CHIPS * dynap_config::CORES)?;
    let n = core_map.len();
    let cores = core_map.iter().max().map_or(1, |m| m + 1);
    let mut base = vec![[0.0; 4]; cores];
    let list = r.get("cores")?;
    for i in 0..list.array()?.len() {
        let c = list.at(i)?;
        let core = c.get("core")?.f64()?;
        let iw = c.get("iw")?.tensor_rank(1)?.1;
        if !(core >= 0.0 && core.fract() == 0.0 && core < cores as f64) || iw.len() != 4 {
            return Err(format!(
                "`{}`: core {core} with {} currents",
                c.path(),
                iw.len()
            ));
        }
        base[core as usize] = std::array::from_fn(|k| iw[k]);
    }
    let matrix = |mkey: &str, skey: &str, which: WeightMatrix| -> JResult<Option<QuantMatrix>> {
        let (Some(m), Some(s)) = (r.opt(mkey), r.opt(skey)) else {
            return Ok(None);
        };
        let (shape, masks) = m.tensor_rank(2)?;
        let (sshape, signs) = s.tensor_rank(2)?;
        if shape != sshape || shape.get(1) != Some(&n) {
            return Err(format!(
                "`{mkey}` is {shape:?} and `{skey}` {sshape:?}; both must have {n} columns"
            ));
        }
        let to_u8 = |x: f64| {
            if (0.0..16.0).contains(&x) && x.fract() == 0.0 {
                x as u8
            } else {
                99
            }
        };
        let to_i8 = |x: f64| {
            if (-1.0..=1.0).contains(&x) && x.fract() == 0.0 {
                x as i8
            } else {
                9
            }
        };
        QuantMatrix::new(
            which,
            shape[0],
            n,
            masks.into_iter().map(to_u8).collect(),
            signs.into_iter().map(to_i8).collect(),
        )
        .map(Some)
        .map_err(|e| e.to_string())
    };
    let w_in = matrix("w_in_mask", "w_in_sign", WeightMatrix::Input)?;
    let w_rec = matrix("w_rec_mask", "w_rec_sign", WeightMatrix::Recurrent)?
        .unwrap_or_else(|| QuantMatrix::zeros(n, n));
    let iscale = match r.opt("iscale").or_else(|| r.opt("Iscale")) {
        Some(j) => j.f64()?,
        None => dynap_model::DEFAULT_ISCALE,
    };
    QuantizedWeights::new(core_map, base, w_in, w_rec, iscale).map_err(|e| e.to_string())
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn parse_tags(text: &str) -> JResult<std::collections::BTreeMap<usize, Vec<u16>>> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut out = std::collections::BTreeMap::new();
    for (key, list) in J::root(&v).entries()? {
        let (chip, core) = key
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .filter(|&(a, b)| a < dynap_config::MAX_CHIPS && b < dynap_config::CORES)
            .ok_or_else(|| {
                format!("key {key:?}: expected \"<chip>:<core>\" with chip < 4, core < 4")
            })?;
        let tags = list
            .tensor_rank(1)?
            .1
            .into_iter()
            .map(|t| {
                if (0.0..2047.0).contains(&t) && t.fract() == 0.0 {
                    Ok(t as u16)
                } else {
                    Err(format!("`{}`: tag {t} is not in 0..=2046", list.path()))
                }
            })
            .collect::<JResult<Vec<u16>>>()?;
        out.insert(chip * dynap_config::CORES + core, tags);
    }
    Ok(out)
}

fn map_command(input: &Path, out: &Path, tags: Option<&Path>) -> Result<String, String> {
    let text = read_text(input)?;
    let here = |e: String| format!("{}: {e}", input.display());
    // Which kind of file, without building a value tree of its matrices.
    #[derive(serde::Deserialize)]
    struct Probe {
        w_in_mask: Option<serde::de::IgnoredAny>,
        w_rec_mask: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", input.display()))?;
    let is_quantized = probe.w_in_mask.is_some() || probe.w_rec_mask.is_some();
    let (weights, note, v) = if is_quantized {
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not valid JSON: {e}", input.display()))?;
        (quantized_from(&v).map_err(here)?, "quantized input", v)
    } else {
        let mut q_in = read_input(&text).map_err(here)?;
        let v = Value::Object(q_in.passthrough.clone());
        if !q_in.core_map_given {
            let n = q_in.core_map.len();
            q_in.core_map =
                dynap_config::cluster_by_parameters(&params_from(&v, n).map_err(here)?, 0);
        }
        let q = dynap_quant::quantize(
            q_in.w_in.as_ref(),
            q_in.w_rec.as_ref(),
            &q_in.core_map,
            q_in.iscale,
            &q_in.options,
        )
        .map_err(|e| here(e.to_string()))?;
        (q.weights, "quantized with the default quantizer", v)
    };
    let params = params_from(&v, weights.neurons()).map_err(here)?;
    let dt = v
        .get("dt")
        .and_then(Value::as_f64)
        .unwrap_or(dynap_model::DEFAULT_DT);
    let variant = v
        .get("variant")
        .and_then(Value::as_str)
        .and_then(Variant::from_name)
        .unwrap_or_default();
    let mut options = MapOptions::default();
    if variant == Variant::Chip
        && let Value::Object(obj) = &v
    {
        let n = weights.neurons();
        let n_in = weights.w_in().map_or(0, |m| m.rows());
        options.chip = Some(crate::report::chip_synapses_from(obj, n, n_in).map_err(here)?);
    }
    if let Some(t) = tags {
        options.tag_allow =
            parse_tags(&read_text(t)?).map_err(|e| format!("{}: {e}", t.display()))?;
    }
    let mapped =
        dynap_config::map(&weights, &params, dt, variant, &options).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json_len = write_config(&out.join("config.json"), &mapped.config)?;
    let bin_len = write_config(&out.join("config.bin"), &mapped.config)?;
    write_atomic(
        &out.join("mapping.json"),
        serde_json::to_string_pretty(&mapping_json(&mapped.mapping))
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| format!("cannot write {}: {e}", out.join("mapping.json").display()))?;
    let synapses: usize = mapped
        .config
        .chips
        .iter()
        .flat_map(|c| &c.cores)
        .flat_map(|c| &c.neurons)
        .map(|n| n.synapses.iter().filter(|s| s.is_active()).count())
        .sum();
    Ok(format!(
        "mapped {} neurons ({note}) onto {} core(s) of {} chip(s): {synapses} CAM entries, {} input channels\nwrote {} ({:.1} MB), {} ({:.1} MB), {}",
        weights.neurons(),
        mapped.core_currents.len(),
        mapped.config.chips.len(),
        mapped.mapping.inputs.len(),
        out.join("config.json").display(),
        json_len as f64 / 1e6,
        out.join("config.bin").display(),
        bin_len as f64 / 1e6,
        out.join("mapping.json").display(),
    ))
}

fn unmap_command(dir: &Path, out: &Path, iscale: f64) -> Result<String, String> {
    let json_path = dir.join("config.json");
    let path = if json_path.exists() {
        json_path
    } else {
        dir.join("config.bin")
    };
    let config = read_config(&path).map_err(|ps| ps.join("\n"))?;
    let mapping_path = dir.join("mapping.json");
    let mapping = if mapping_path.exists() {
        Some(
            read_mapping(&read_text(&mapping_path)?)
                .map_err(|e| format!("{}: {e}", mapping_path.display()))?,
        )
    } else {
        None
    };
    let u = dynap_config::unmap(
        &config,
        mapping.as_ref(),
        iscale,
        dynap_model::DEFAULT_DT,
        &BiasGenerator::dynapse2(),
    )
    .map_err(|e| e.to_string())?;
    let q = dynap_quant::Quantized {
        cores: u
            .weights
            .base_currents()
            .iter()
            .enumerate()
            .filter(|(g, _)| u.weights.core_map().contains(g))
            .map(|(core, &iw)| dynap_quant::CoreReport {
                core,
                weights: 0,
                iw_fitted: iw,
                iw,
                error_before_snap: 0.0,
                error_after_snap: 0.0,
                autoencoder: None,
            })
            .collect(),
        weights: u.weights.clone(),
        relative_rms_error: 0.0,
    };
    let mut passthrough = crate::report::network_json(&u.network)
        .as_object()
        .cloned()
        .unwrap_or_default();
    passthrough.remove("iscale");
    let mut v = output_json(&q, &dynap_quant::Method::Alternating, &passthrough);
    if let Some(o) = v.as_object_mut() {
        o.remove("method");
        o.remove("relative_rms_error");
        o.insert(
            "places".into(),
            Value::Array(
                u.neurons
                    .iter()
                    .map(|p| json!({"chip": p.chip, "core": p.core, "neuron": p.neuron}))
                    .collect(),
            ),
        );
    }
    write_atomic(
        out,
        serde_json::to_string_pretty(&v)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let mut msg = format!(
        "restored {} neurons and {} input channels from {}{}\nwrote {}",
        u.network.neurons(),
        u.network.input_channels(),
        path.display(),
        if mapping.is_some() {
            " with mapping.json"
        } else {
            " (no mapping.json: neuron order by place, channels by tag)"
        },
        out.display()
    );
    for n in &u.notes {
        msg.push_str(&format!("\nnote: {n}"));
    }
    Ok(msg)
}

/// A summary of a configuration for people (or as JSON).
fn inspect(config: &Configuration, as_json: bool) -> String {
    let generator = BiasGenerator::dynapse2();
    let mut cores = Vec::new();
    for (h, chip) in config.chips.iter().enumerate() {
        for (c, core) in chip.cores.iter().enumerate() {
            let active: Vec<_> = core
                .neurons
                .iter()
                .filter(|n| {
                    n.synapses.iter().any(|s| s.is_active())
                        || n.destinations[1..].iter().any(|d| d.is_used())
                })
                .collect();
            if active.is_empty() && core.parameters.is_empty() {
                continue;
            }
            let mut per_dendrite = std::collections::BTreeMap::new();
            for n in &core.neurons {
                for s in n.synapses.iter().filter(|s| s.is_active()) {
                    let name = s.dendrite.to_model().map_or("none", |d| d.name());
                    *per_dendrite.entry(name).or_insert(0usize) += 1;
                }
            }
            let biases: Vec<Value> = core
                .parameters
                .iter()
                .map(|(name, p)| {
                    let current = generator.current_from_code(name, p.code()).ok();
                    json!({"name": name, "coarse": p.coarse, "fine": p.fine, "type": p.kind.to_string(), "current": current})
                })
                .collect();
            cores.push(json!({
                "chip": h, "core": c, "neurons_used": active.len(),
                "dc_latched": core.neurons.iter().filter(|n| n.latches[0]).count(),
                "synapses": per_dendrite, "biases": biases,
            }));
        }
    }
    let summary = json!({"chips": config.chips.len(), "cores": cores});
    if as_json {
        return serde_json::to_string_pretty(&summary).unwrap_or_default();
    }
    let mut s = format!("{} chip(s)\n", config.chips.len());
    for c in summary["cores"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "chip {} core {}: {} neurons used, {} with the DC latch, synapses {}\n",
            c["chip"], c["core"], c["neurons_used"], c["dc_latched"], c["synapses"]
        ));
        for b in c["biases"].as_array().into_iter().flatten() {
            let current = b["current"]
                .as_f64()
                .map_or("unknown scale".into(), |i| format!("{i:.4e} A"));
            s.push_str(&format!(
                "    {:<16} ({}, {:>3}) {}  {}\n",
                b["name"].as_str().unwrap_or(""),
                b["coarse"],
                b["fine"],
                b["type"].as_str().unwrap_or(""),
                current
            ));
        }
    }
    s
}

/// `dynap config ...`, `dynap map ...`, `dynap unmap ...`; `Err` is a usage problem (exit 2).
pub fn run(args: &[&str]) -> Result<ExitCode, String> {
    let fail = |msg: String| {
        eprintln!("{msg}");
        ExitCode::FAILURE
    };
    Ok(match args {
        ["config", "validate", file] => {
            let path = Path::new(file);
            match read_config(path) {
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    eprintln!("{file}: invalid ({} problem(s))", problems.len());
                    ExitCode::FAILURE
                }
                Ok(config) => {
                    let inputs = path
                        .parent()
                        .map(|d| d.join("mapping.json"))
                        .filter(|m| m.exists())
                        .and_then(|m| read_text(&m).ok())
                        .and_then(|t| read_mapping(&t).ok())
                        .map(|m| m.inputs);
                    let v = validate(&config, inputs.as_deref());
                    if v.is_empty() {
                        println!("{file}: valid ({} chip(s))", config.chips.len());
                        ExitCode::SUCCESS
                    } else {
                        for p in &v {
                            eprintln!("{file}: {p}");
                        }
                        eprintln!("{file}: invalid ({} violation(s))", v.len());
                        ExitCode::FAILURE
                    }
                }
            }
        }
        ["config", "convert", input, output] => match read_config(Path::new(input)) {
            Err(problems) => fail(problems.join("\n")),
            Ok(config) => match write_config(Path::new(output), &config) {
                Ok(len) => {
                    println!("wrote {output} ({len} bytes)");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
        },
        ["config", "inspect", file, rest @ ..] => {
            let as_json = match rest {
                [] => false,
                ["--json"] => true,
                _ => return Err(format!("config inspect: unexpected {}", rest.join(" "))),
            };
            match read_config(Path::new(file)) {
                Err(problems) => fail(problems.join("\n")),
                Ok(config) => {
                    println!("{}", inspect(&config, as_json));
                    ExitCode::SUCCESS
                }
            }
        }
        ["map", rest @ ..] => {
            let (mut input, mut out, mut tags) = (None, None, None);
            let mut it = rest.iter();
            while let Some(&a) = it.next() {
                match a {
                    "--out" => out = Some(PathBuf::from(*it.next().ok_or("--out needs a folder")?)),
                    "--tags" => {
                        tags = Some(PathBuf::from(*it.next().ok_or("--tags needs a file")?))
                    }
                    f if !f.starts_with("--") && input.is_none() => input = Some(PathBuf::from(f)),
                    other => return Err(format!("map: unexpected {other}")),
                }
            }
            let (Some(input), Some(out)) = (input, out) else {
                return Err("map needs IN and --out DIR".into());
            };
            match map_command(&input, &out, tags.as_deref()) {
                Ok(msg) => {
                    println!("{msg}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("dynap map: {e}")),
            }
        }
        ["unmap", rest @ ..] => {
            let (mut dir, mut out, mut iscale) = (None, None, dynap_model::DEFAULT_ISCALE);
            let mut it = rest.iter();
            while let Some(&a) = it.next() {
                match a {
                    "--out" => out = Some(PathBuf::from(*it.next().ok_or("--out needs a file")?)),
                    "--iscale" => {
                        let v = it.next().ok_or("--iscale needs a current")?;
                        iscale = v
                            .parse()
                            .ok()
                            .filter(|x: &f64| x.is_finite() && *x > 0.0)
                            .ok_or(format!("--iscale {v}: expected a current > 0 (A)"))?;
                    }
                    f if !f.starts_with("--") && dir.is_none() => dir = Some(PathBuf::from(f)),
                    other => return Err(format!("unmap: unexpected {other}")),
                }
            }
            let (Some(dir), Some(out)) = (dir, out) else {
                return Err("unmap needs DIR and --out NET.json".into());
            };
            match unmap_command(&dir, &out, iscale) {
                Ok(msg) => {
                    println!("{msg}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("dynap unmap: {e}")),
            }
        }
        _ => return Err(format!("bad arguments: {}", args.join(" "))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_files_are_refused_before_allocating() {
        let dup = r#"{"neurons": [{"chip": 0, "core": 0, "neuron": 1}, {"chip": 0, "core": 0, "neuron": 1}]}"#;
        assert!(
            read_mapping(dup)
                .unwrap_err()
                .contains("is already network neuron 0")
        );
        let v: Value = serde_json::from_str(
            r#"{"w_rec_mask": [[1]], "w_rec_sign": [[1]], "core_map": [1e15], "cores": []}"#,
        )
        .unwrap();
        assert!(quantized_from(&v).unwrap_err().contains("core_map[0]"));
        let v: Value = serde_json::from_str(
            r#"{"w_rec_mask": [[1]], "w_rec_sign": [[1]], "core_map": [0], "cores": [{"core": -1, "iw": [0, 0, 0, 0]}]}"#,
        )
        .unwrap();
        assert!(quantized_from(&v).unwrap_err().contains("core -1"));
    }
}
