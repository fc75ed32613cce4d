//! `mapping.json`, what a configuration does not hold and the way back needs: `{iscale, dt, variant,
//! neurons: [{index, chip, core, neuron}], inputs: [{channel, destinations: [{core: [4 bools], x_hop,
//! y_hop, tag}]}]}`; and the tag allow-lists of `dynap map --tags`: `{"<chip>:<core>": [tags]}`.

use super::error::{FormatError, Problem};
use super::text::{self, Object};
use crate::map::{Mapping, NeuronPlace};
use crate::model::{CONTROL_TAG, CORES, CoreMask, Destination, Hop, MAX_CHIPS, Tag};
use dynap_model::{DEFAULT_DT, DEFAULT_ISCALE, Variant};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// More input channels than this in a `mapping.json` are refused (a board has 4 x 2048 tags).
const MAX_INPUTS: usize = 1 << 16;

/// Reads `mapping.json`; every problem names its JSON path.
pub fn read_mapping(text: &str) -> Result<Mapping, FormatError> {
    let v: Value = text::parse(text, |d| serde::Deserialize::deserialize(d))?;
    let root = text::object(&v, "")?;
    let variant = match root.get("variant") {
        None => Variant::default(),
        Some(v) => {
            let name = v
                .as_str()
                .ok_or_else(|| FormatError::at("variant", text::value_problem(v, "a string")))?;
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
    let mut neurons: Vec<NeuronPlace> = Vec::new();
    let list = text::list(text::field(root, "", "neurons")?, "neurons")?;
    for (i, e) in list.iter().enumerate() {
        let path = format!("neurons[{i}]");
        let obj = text::object(e, &path)?;
        if let Some(index) = obj.get("index") {
            text::index(
                index,
                &text::join(&path, "index"),
                i + 1,
                "its position in the list",
            )
            .and_then(|k| {
                (k == i).then_some(k).ok_or_else(|| {
                    FormatError::at(
                        text::join(&path, "index"),
                        text::value_problem(index, "its position in the list"),
                    )
                })
            })?;
        }
        let place = text::place(obj, &path)?;
        if let Some(first) = neurons.iter().position(|q| *q == place) {
            return Err(FormatError::at(path, Problem::Duplicate { first }));
        }
        neurons.push(place);
    }
    let mut inputs = Vec::new();
    if let Some(list) = root.get("inputs") {
        let list = text::list(list, "inputs")?;
        if list.len() > MAX_INPUTS {
            return Err(FormatError::at(
                "inputs",
                Problem::Length {
                    found: list.len(),
                    expected: MAX_INPUTS,
                },
            ));
        }
        for (i, e) in list.iter().enumerate() {
            let path = format!("inputs[{i}]");
            let obj = text::object(e, &path)?;
            let dpath = text::join(&path, "destinations");
            let ds = text::list(text::field(obj, &path, "destinations")?, &dpath)?;
            let mut dests = Vec::with_capacity(ds.len());
            for (k, d) in ds.iter().enumerate() {
                dests.push(destination(d, &format!("{dpath}[{k}]"))?);
            }
            inputs.push(dests);
        }
    }
    let positive = |key: &str, default: f64| match root.get(key) {
        Some(v) => text::positive(v, key),
        None => Ok(default),
    };
    Ok(Mapping {
        iscale: positive("iscale", DEFAULT_ISCALE)?,
        dt: positive("dt", DEFAULT_DT)?,
        variant,
        neurons,
        inputs,
    })
}

fn destination(d: &Value, path: &str) -> Result<Destination, FormatError> {
    let obj = text::object(d, path)?;
    let core_path = text::join(path, "core");
    let bits = text::list(text::field(obj, path, "core")?, &core_path)?;
    if bits.len() != CORES || bits.iter().any(|b| !b.is_boolean()) {
        return Err(FormatError::at(
            core_path,
            text::value_problem(&Value::Array(bits.to_vec()), "a list of 4 booleans"),
        ));
    }
    let mask = bits
        .iter()
        .enumerate()
        .map(|(k, b)| u8::from(b.as_bool() == Some(true)) << k)
        .sum::<u8>();
    let int = |key: &str, expected: &'static str, ok: &dyn Fn(i64) -> bool| {
        let v = text::field(obj, path, key)?;
        match v.as_i64() {
            Some(x) if ok(x) => Ok(x),
            _ => Err(FormatError::at(
                text::join(path, key),
                text::value_problem(v, expected),
            )),
        }
    };
    let hop = |key: &str| {
        int(key, "a hop count in -7..=7", &|x| Hop::new(x).is_ok())
            .map(|x| Hop::new(x).expect("checked"))
    };
    let tag = int("tag", "a tag in 0..2048", &|x| Tag::new(x).is_ok())?;
    Ok(Destination {
        core: CoreMask::new(i64::from(mask)).expect("4 bits"),
        x_hop: hop("x_hop")?,
        y_hop: hop("y_hop")?,
        tag: Tag::new(tag).expect("checked"),
    })
}

/// Writes `mapping.json`; [`read_mapping`] reads it back equal.
pub fn write_mapping(m: &Mapping) -> String {
    let mut out = Object::new();
    out.put("iscale", &m.iscale);
    out.put("dt", &m.dt);
    out.put("variant", m.variant.name());
    let neurons: Vec<Value> = m
        .neurons
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"index": i, "chip": p.chip, "core": p.core, "neuron": p.neuron}))
        .collect();
    let inputs: Vec<Value> = m
        .inputs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "channel": i,
                "destinations": d.iter().map(|d| json!({
                    "core": (0..CORES).map(|k| d.core.contains(k)).collect::<Vec<_>>(),
                    "x_hop": d.x_hop.get(),
                    "y_hop": d.y_hop.get(),
                    "tag": d.tag.get(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    // One neuron or input channel per line: readable, and diffs show what moved.
    let lines = |items: &[Value]| -> String {
        if items.is_empty() {
            return "[]".into();
        }
        let rows: Vec<String> = items.iter().map(|v| format!("    {v}")).collect();
        format!("[\n{}\n  ]", rows.join(",\n"))
    };
    out.raw("neurons", &lines(&neurons));
    out.raw("inputs", &lines(&inputs));
    out.finish()
}

/// Reads tag allow-lists, `{"<chip>:<core>": [tag, ...]}`, into global core (`chip * 4 + core`) ->
/// allowed tags (each in `0..=2046`: 2047 is the control tag).
pub fn read_tag_allow(text: &str) -> Result<BTreeMap<usize, Vec<u16>>, FormatError> {
    let v: Value = text::parse(text, |d| serde::Deserialize::deserialize(d))?;
    let root = text::object(&v, "")?;
    let mut out = BTreeMap::new();
    for (key, list) in root {
        let (chip, core) = key
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .filter(|&(a, b)| a < MAX_CHIPS && b < CORES)
            .ok_or_else(|| {
                FormatError::at(
                    key.clone(),
                    Problem::Value {
                        found: format!("{key:?}"),
                        expected: "a key \"<chip>:<core>\" with chip and core in 0..4",
                    },
                )
            })?;
        let tags = text::list(list, key)?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                text::index(
                    t,
                    &format!("{key}[{i}]"),
                    usize::from(CONTROL_TAG),
                    "a tag in 0..=2046",
                )
                .map(|t| t as u16)
            })
            .collect::<Result<Vec<u16>, _>>()?;
        out.insert(chip * CORES + core, tags);
    }
    Ok(out)
}

/// Writes tag allow-lists (see [`read_tag_allow`]).
pub fn write_tag_allow(allow: &BTreeMap<usize, Vec<u16>>) -> String {
    let obj: Map<String, Value> = allow
        .iter()
        .map(|(g, tags)| (format!("{}:{}", g / CORES, g % CORES), json!(tags)))
        .collect();
    let mut out = Object::new();
    for (k, v) in &obj {
        out.put(k, v);
    }
    out.finish()
}
