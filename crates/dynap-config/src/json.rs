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
//!
//! Two readers share that contract. The streaming reader deserializes the text straight into the
//! model with serde visitors (no `serde_json::Value` tree, no path strings: a 3-chip file reads in a
//! tenth of the time and memory of the tree); where it meets anything it cannot place for certain (a
//! problem, a key given twice, the rarer tolerated shapes) it gives up, and the path-aware tree reader
//! reads the text again and reports. So problems come from the tree reader alone, and a text the
//! streaming reader accepts reads as the tree reader would read it (tested on written configurations
//! and on thousands of corrupted texts). Unmodelled sub-trees are parsed as `serde_json` values in
//! place by both, so their compact text is the same.

use crate::model::*;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;

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

/// A non-negative integer in decimal, as `Display` writes it (the writer's hot path: `write!` costs a
/// formatter per number, a third of writing a full-size chip).
fn w_uint(out: &mut String, v: impl Into<u64>) {
    let mut n: u64 = v.into();
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// An integer in decimal, as `Display` writes it.
fn w_int(out: &mut String, v: impl Into<i64>) {
    let v: i64 = v.into();
    if v < 0 {
        out.push('-');
    }
    w_uint(out, v.unsigned_abs());
}

/// `,"key":` (the first key of an object has its `{` before it instead).
fn w_next_key(out: &mut String, key: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
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
        out.push_str("\"value");
        w_uint(out, i as u64);
        out.push_str("\":");
        f(out, item);
    }
    out.push('}');
}

fn w_bits(out: &mut String, bits: u8) {
    const VALUES: [[&str; 2]; 4] = [
        ["{\"value0\":false", "{\"value0\":true"],
        [",\"value1\":false", ",\"value1\":true"],
        [",\"value2\":false", ",\"value2\":true"],
        [",\"value3\":false", ",\"value3\":true"],
    ];
    for (k, value) in VALUES.iter().enumerate() {
        out.push_str(value[usize::from(bits >> k & 1)]);
    }
    out.push('}');
}

fn w_parameter(out: &mut String, p: &Parameter) {
    out.push_str("{\"type\":");
    w_uint(out, p.kind as u32);
    out.push_str(",\"coarseValue\":");
    w_uint(out, p.coarse);
    out.push_str(",\"fineValue\":");
    w_uint(out, p.fine);
    out.push_str(",\"_address\":");
    w_uint(out, p.address);
    out.push_str(",\"_cookie\":");
    w_uint(out, p.cookie);
    out.push_str(",\"_initialType\":");
    w_uint(out, p.initial_type);
    out.push_str(",\"_switchableType\":");
    w_bool(out, p.switchable_type);
    out.push('}');
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
    out.push_str(",\"xHop\":");
    w_int(out, d.x_hop.get());
    out.push_str(",\"yHop\":");
    w_int(out, d.y_hop.get());
    out.push_str(",\"tag\":");
    w_uint(out, d.tag.get());
    out.push('}');
}

fn w_synapse(out: &mut String, s: &Synapse) {
    out.push_str("{\"dendrite\":");
    w_int(out, s.dendrite.value());
    out.push_str(",\"stp\":");
    w_bool(out, s.stp);
    out.push_str(",\"weight\":");
    w_bits(out, s.weight.bits());
    out.push_str(",\"preciseDelay\":");
    w_bool(out, s.precise_delay);
    out.push_str(",\"mismatchedDelay\":");
    w_bool(out, s.mismatched_delay);
    out.push_str(",\"tag\":");
    w_uint(out, s.tag.get());
    out.push('}');
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
        w_next_key(out, k);
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
        out.push('"');
        out.push_str(k);
        out.push_str("\":");
        w_bool(out, v);
    }
    out.push('}');
}

fn w_core(out: &mut String, c: &Core) {
    out.push_str("{\"neurons\":");
    w_fixed(out, &c.neurons, w_neuron);
    out.push_str(",\"neuronMonitoringOn\":");
    w_bool(out, c.neuron_monitoring_on);
    out.push_str(",\"monitoredNeuron\":");
    w_uint(out, c.monitored_neuron);
    out.push_str(",\"parameters\":");
    w_params(out, &c.parameters);
    out.push_str(",\"sadcEnables\":");
    w_enables(out, &CORE_SADC_NAMES, &c.sadc_enables);
    out.push_str(",\"enableSyawStdbufAn\":");
    w_bool(out, c.enable_syaw_stdbuf_an);
    out.push_str(",\"enablePulseExtenderMonitor1\":");
    w_bool(out, c.enable_pulse_extender_monitor1);
    out.push_str(",\"enablePulseExtenderMonitor2\":");
    w_bool(out, c.enable_pulse_extender_monitor2);
    out.push_str(",\"_id\":");
    w_int(out, c.id);
    out.push_str(",\"_cookie\":");
    w_int(out, c.cookie);
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
        w_next_key(out, k);
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
//
// Two readers. The streaming reader deserializes the text straight into the object model, one serde
// visitor per level of samna's objects, with no tree and no paths; it accepts a text only where it is
// sure the tree reader would give the same configuration without a problem, and otherwise stops at
// the first thing it cannot place (a type it does not expect, a value out of range, a key given twice,
// a shape it leaves to the tree reader). The tree reader then reads the text again and reports what
// it finds, so problems and their paths come from one place only.

/// Reads samna JSON. On failure, every problem found (each with its path), not only the first; a
/// syntax error comes with its line and column.
pub fn from_json(text: &str) -> Result<Configuration, Vec<JsonProblem>> {
    match read_streaming(text) {
        Some(config) => Ok(config),
        None => read_tree(text),
    }
}

/// The streaming reader: the configuration if the text is one the tree reader accepts as it stands
/// (the configuration is then the tree reader's), `None` where the tree reader must look.
pub(crate) fn read_streaming(text: &str) -> Option<Configuration> {
    let mut de = serde_json::Deserializer::from_str(text);
    let config = Root.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(config)
}

/// The streaming reader's only error: the text is the tree reader's to read. `serde_json` adds the
/// place; nobody reads either.
fn leave<E: de::Error>() -> E {
    E::custom("left to the tree reader")
}

/// The keys of one object already read, one bit each, so a key given twice is left to the tree reader
/// (there the last value wins, at the first one's place).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first<E: de::Error>(&mut self, bit: usize) -> Result<(), E> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return Err(leave());
        }
        self.0 |= mask;
        Ok(())
    }
}

/// An object key, borrowed from the text unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(s.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads a value the model does not keep (an unknown key of a neuron, a synapse, a parameter, the root
/// wrapper) as the tree reader does, so a text it refuses (a number out of range, too deep) is refused
/// here too.
fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<Value>().map(drop)
}

/// An unmodelled value kept as compact JSON text, made exactly as the tree reader makes it.
fn kept<'de, A: MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
    Ok(map.next_value::<Value>()?.to_string())
}

/// Appends an unmodelled key and its text, unless the object already had it.
fn keep<'de, A: MapAccess<'de>>(
    map: &mut A,
    extra: &mut Extra,
    key: Cow<'de, str>,
) -> Result<(), A::Error> {
    if extra.iter().any(|(k, _)| *k == *key) {
        return Err(leave());
    }
    let text = kept(map)?;
    extra.push((key.into_owned(), text));
    Ok(())
}

/// Defines a scalar read as the tree reader's helper of the same name reads it; anything else is left
/// to the tree reader (which reports it).
macro_rules! scalar {
    ($(#[$doc:meta])* $name:ident($t:ty) { $($body:tt)* }) => {
        $(#[$doc])*
        struct $name($t);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(stringify!($name))
                    }
                    $($body)*
                }
                d.deserialize_any(V)
            }
        }
    };
}

scalar! {
    /// `Reader::int`: an integer that fits `i64`, or a boolean as 0 or 1.
    Int(i64) {
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Int, E> {
            Ok(Int(i64::from(b)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
            i64::try_from(v).map(Int).map_err(|_| leave())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
            Ok(Int(v))
        }
    }
}

scalar! {
    /// `Reader::unsigned`: a non-negative integer.
    Unsigned(u64) {
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Unsigned, E> {
            Ok(Unsigned(v))
        }
    }
}

scalar! {
    /// `Reader::boolean`: a boolean, or the integer 0 or 1.
    Bool(bool) {
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Bool, E> {
            Ok(Bool(b))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bool, E> {
            match v {
                0 | 1 => Ok(Bool(v == 1)),
                _ => Err(leave()),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bool, E> {
            match v {
                0 | 1 => Ok(Bool(v == 1)),
                _ => Err(leave()),
            }
        }
    }
}

scalar! {
    /// `Reader::bits`: four booleans as a `valueN` object or an array, or an integer mask below 16.
    Bits(u8) {
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bits, E> {
            match u8::try_from(v) {
                Ok(b) if b < 16 => Ok(Bits(b)),
                _ => Err(leave()),
            }
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bits, A::Error> {
            let mut bits = 0;
            for k in 0..4 {
                match seq.next_element::<Bool>()? {
                    Some(Bool(b)) => bits |= u8::from(b) << k,
                    None => return Ok(Bits(bits)),
                }
            }
            match seq.next_element::<de::IgnoredAny>()? {
                Some(_) => Err(leave()),
                None => Ok(Bits(bits)),
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bits, A::Error> {
            let mut bits = 0;
            let mut seen = Seen::default();
            while let Some(key) = map.next_key_seed(Key)? {
                let k = slot(&key, 4)?;
                seen.first(k)?;
                bits |= u8::from(map.next_value::<Bool>()?.0) << k;
            }
            Ok(Bits(bits))
        }
    }
}

scalar! {
    /// A parameter's `type`: 78 ('N') or 80 ('P'), or the letter.
    Kind(char) {
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
            match v {
                78 => Ok(Kind('N')),
                80 => Ok(Kind('P')),
                _ => Err(leave()),
            }
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Kind, E> {
            match s {
                "N" => Ok(Kind('N')),
                "P" => Ok(Kind('P')),
                _ => Err(leave()),
            }
        }
    }
}

scalar! {
    /// A parameter's `_initialType`: 0 or 1 (a boolean too), or any string (1 if it is "N").
    InitialType(u8) {
        fn visit_str<E: de::Error>(self, s: &str) -> Result<InitialType, E> {
            Ok(InitialType(u8::from(s == "N")))
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<InitialType, E> {
            Ok(InitialType(u8::from(b)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<InitialType, E> {
            match v {
                0 | 1 => Ok(InitialType(v as u8)),
                _ => Err(leave()),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<InitialType, E> {
            match v {
                0 | 1 => Ok(InitialType(v as u8)),
                _ => Err(leave()),
            }
        }
    }
}

/// An integer through a checked constructor (the tree reader's `checked`).
fn checked<'de, A: MapAccess<'de>, T>(
    map: &mut A,
    make: impl Fn(i64) -> Result<T, RangeError>,
) -> Result<T, A::Error> {
    make(map.next_value::<Int>()?.0).map_err(|_| leave())
}

/// The index of a `valueN` key of a fixed array of `max` entries (parsed as the tree reader parses it).
fn slot<E: de::Error>(key: &str, max: usize) -> Result<usize, E> {
    match key
        .strip_prefix("value")
        .and_then(|i| i.parse::<usize>().ok())
    {
        Some(i) if i < max => Ok(i),
        _ => Err(leave()),
    }
}

/// A part of the model read in place from the text. The slot holds its default when reading starts.
trait Place {
    fn place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error>;
}

/// Reads a [`Place`] into its slot.
struct InPlace<'a, T>(&'a mut T);

impl<'de, T: Place> DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.place(d)
    }
}

/// A fixed array read into its slots (`Reader::fixed`): a `valueN` object or an array of at most as
/// many entries as slots. Its value is one past the last entry given.
struct Fixed<'a, T>(&'a mut [T]);

impl<'de, T: Place> DeserializeSeed<'de> for Fixed<'_, T> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Place> Visitor<'de> for Fixed<'_, T> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a fixed-size array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        for (i, item) in self.0.iter_mut().enumerate() {
            if seq.next_element_seed(InPlace(item))?.is_none() {
                return Ok(i);
            }
        }
        match seq.next_element::<de::IgnoredAny>()? {
            Some(_) => Err(leave()),
            None => Ok(self.0.len()),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        // The largest fixed array is a core's 256 neurons.
        debug_assert!(self.0.len() <= 256);
        let mut seen = [0u64; 4];
        let mut end = 0;
        while let Some(key) = map.next_key_seed(Key)? {
            let i = slot(&key, self.0.len())?;
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            if seen[word] & bit != 0 {
                return Err(leave());
            }
            seen[word] |= bit;
            map.next_value_seed(InPlace(&mut self.0[i]))?;
            end = end.max(i + 1);
        }
        Ok(end)
    }
}

/// Implements [`Place`] for a model type whose JSON is an object: `$visit` reads its entries.
macro_rules! object {
    ($t:ty, |$this:ident, $map:ident| $visit:block) => {
        impl Place for $t {
            fn place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
                struct V<'a>(&'a mut $t);
                impl<'de> Visitor<'de> for V<'_> {
                    type Value = ();
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut $map: A) -> Result<(), A::Error> {
                        let $this = self.0;
                        $visit
                        Ok(())
                    }
                }
                d.deserialize_any(V(self))
            }
        }
    };
}

object!(Synapse, |s, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        match &*key {
            "dendrite" => {
                seen.first(0)?;
                s.dendrite = checked(&mut map, Dendrite::from_value)?;
            }
            "stp" => {
                seen.first(1)?;
                s.stp = map.next_value::<Bool>()?.0;
            }
            "weight" => {
                seen.first(2)?;
                let bits = map.next_value::<Bits>()?.0;
                s.weight = WeightMask::new(i64::from(bits)).map_err(|_| leave())?;
            }
            "preciseDelay" => {
                seen.first(3)?;
                s.precise_delay = map.next_value::<Bool>()?.0;
            }
            "mismatchedDelay" => {
                seen.first(4)?;
                s.mismatched_delay = map.next_value::<Bool>()?.0;
            }
            "tag" => {
                seen.first(5)?;
                s.tag = checked(&mut map, Tag::new)?;
            }
            _ => skip(&mut map)?,
        }
    }
});

object!(Destination, |d, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        match &*key {
            "core" => {
                seen.first(0)?;
                let bits = map.next_value::<Bits>()?.0;
                d.core = CoreMask::new(i64::from(bits)).map_err(|_| leave())?;
            }
            "xHop" => {
                seen.first(1)?;
                d.x_hop = checked(&mut map, Hop::new)?;
            }
            "yHop" => {
                seen.first(2)?;
                d.y_hop = checked(&mut map, Hop::new)?;
            }
            "tag" => {
                seen.first(3)?;
                d.tag = checked(&mut map, Tag::new)?;
            }
            _ => skip(&mut map)?,
        }
    }
});

object!(Neuron, |n, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        match &*key {
            "synapses" => {
                seen.first(0)?;
                map.next_value_seed(Fixed(&mut n.synapses[..]))?;
            }
            "destinations" => {
                seen.first(1)?;
                map.next_value_seed(Fixed(&mut n.destinations[..]))?;
            }
            other => match LATCH_KEYS.iter().position(|k| *k == other) {
                Some(k) => {
                    seen.first(2 + k)?;
                    n.latches[k] = map.next_value::<Bool>()?.0;
                }
                None => skip(&mut map)?,
            },
        }
    }
});

/// A parameter's object as given, before its name supplies the defaults (`Reader::parameter`).
#[derive(Default)]
struct GivenParameter {
    kind: Option<char>,
    coarse: u8,
    fine: u8,
    address: u64,
    cookie: u64,
    initial_type: u8,
    switchable_type: bool,
}

impl GivenParameter {
    /// The parameter `name` gets from its object (`None`: an entry without a value).
    fn parameter(given: Option<GivenParameter>, name: &str) -> Parameter {
        let mut p = Parameter::for_name(name, 0, 0).expect("coarse 0 is valid");
        if let Some(g) = given {
            // A value object replaces every field but the type, which defaults to the name's.
            p.kind = g.kind.unwrap_or(p.kind);
            p.coarse = g.coarse;
            p.fine = g.fine;
            p.address = g.address;
            p.cookie = g.cookie;
            p.initial_type = g.initial_type;
            p.switchable_type = g.switchable_type;
        }
        p
    }
}

object!(GivenParameter, |p, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        match &*key {
            "type" => {
                seen.first(0)?;
                p.kind = Some(map.next_value::<Kind>()?.0);
            }
            "coarseValue" => {
                seen.first(1)?;
                p.coarse = checked(&mut map, |i| u8::try_from(i).map_err(|_| out_of_range(i)))?;
                if p.coarse > 5 {
                    return Err(leave());
                }
            }
            "fineValue" => {
                seen.first(2)?;
                p.fine = checked(&mut map, |i| u8::try_from(i).map_err(|_| out_of_range(i)))?;
            }
            "_address" => {
                seen.first(3)?;
                p.address = map.next_value::<Unsigned>()?.0;
            }
            "_cookie" => {
                seen.first(4)?;
                p.cookie = map.next_value::<Unsigned>()?.0;
            }
            "_initialType" => {
                seen.first(5)?;
                p.initial_type = map.next_value::<InitialType>()?.0;
            }
            "_switchableType" => {
                seen.first(6)?;
                p.switchable_type = map.next_value::<Bool>()?.0;
            }
            _ => skip(&mut map)?,
        }
    }
});

/// The streaming reader's range error; only its being an error matters.
fn out_of_range(value: i64) -> RangeError {
    RangeError {
        what: "value",
        value,
        range: "its range",
    }
}

/// One entry of a parameter list, `{"key": name, "value": {...}}`, in any key order.
struct Entry {
    name: String,
    given: Option<GivenParameter>,
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a parameter entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut seen = Seen::default();
                let mut name = None;
                let mut given = None;
                while let Some(key) = map.next_key_seed(Key)? {
                    match &*key {
                        "key" => {
                            seen.first(0)?;
                            name = Some(map.next_value::<String>()?);
                        }
                        "value" => {
                            seen.first(1)?;
                            let mut g = GivenParameter::default();
                            map.next_value_seed(InPlace(&mut g))?;
                            given = Some(g);
                        }
                        _ => skip(&mut map)?,
                    }
                }
                let name = name.ok_or_else(leave)?;
                Ok(Entry { name, given })
            }
        }
        d.deserialize_any(V)
    }
}

/// A parameter map (`Reader::params`): samna's list of entries, or a plain `{name: parameter}` object.
impl Place for ParamMap {
    fn place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        struct V<'a>(&'a mut ParamMap);

        impl V<'_> {
            fn push<E: de::Error>(&mut self, name: String, p: Parameter) -> Result<(), E> {
                if self.0.iter().any(|(n, _)| *n == name) {
                    return Err(leave());
                }
                self.0.push((name, p));
                Ok(())
            }
        }

        impl<'de> Visitor<'de> for V<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a parameter list")
            }
            fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
                while let Some(e) = seq.next_element::<Entry>()? {
                    let p = GivenParameter::parameter(e.given, &e.name);
                    self.push(e.name, p)?;
                }
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key_seed(Key)? {
                    let mut g = GivenParameter::default();
                    map.next_value_seed(InPlace(&mut g))?;
                    let p = GivenParameter::parameter(Some(g), &key);
                    self.push(key.into_owned(), p)?;
                }
                Ok(())
            }
        }
        d.deserialize_any(V(self))
    }
}

/// The sADC groups' parameter maps (`Reader::param_groups`): up to 64, as many as the last one given.
struct Groups<'a>(&'a mut Vec<ParamMap>);

impl<'de> DeserializeSeed<'de> for Groups<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let mut groups = vec![ParamMap::new(); 64];
        let end = Fixed(&mut groups[..]).deserialize(d)?;
        groups.truncate(end);
        *self.0 = groups;
        Ok(())
    }
}

/// sADC enables (`Reader::enables`): an object of booleans named in `names`; samna's other spelling
/// of `SoifRefectory` is read where the first is missing.
struct Enables<'a>(&'a mut [bool], &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Enables<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Enables<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sADC enables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Enables(out, names) = self;
        let mut seen = Seen::default();
        let mut other_spelling = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if let Some(k) = names.iter().position(|n| **n == *key) {
                seen.first(k)?;
                out[k] = map.next_value::<Bool>()?.0;
            } else if key == "SoifRefractory" {
                seen.first(names.len())?;
                other_spelling = Some(map.next_value::<Bool>()?.0);
            } else {
                return Err(leave());
            }
        }
        if let (Some(k), Some(v)) = (
            names.iter().position(|n| *n == "SoifRefectory"),
            other_spelling,
        ) && seen.0 & 1 << k == 0
        {
            out[k] = v;
        }
        Ok(())
    }
}

object!(Core, |c, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        match &*key {
            "neurons" => {
                seen.first(0)?;
                map.next_value_seed(Fixed(&mut c.neurons[..]))?;
            }
            "neuronMonitoringOn" => {
                seen.first(1)?;
                c.neuron_monitoring_on = map.next_value::<Bool>()?.0;
            }
            "monitoredNeuron" => {
                seen.first(2)?;
                c.monitored_neuron =
                    checked(&mut map, |i| u8::try_from(i).map_err(|_| out_of_range(i)))?;
            }
            "parameters" => {
                seen.first(3)?;
                map.next_value_seed(InPlace(&mut c.parameters))?;
            }
            "sadcEnables" => {
                seen.first(4)?;
                map.next_value_seed(Enables(&mut c.sadc_enables, &CORE_SADC_NAMES))?;
            }
            "enableSyawStdbufAn" => {
                seen.first(5)?;
                c.enable_syaw_stdbuf_an = map.next_value::<Bool>()?.0;
            }
            "enablePulseExtenderMonitor1" => {
                seen.first(6)?;
                c.enable_pulse_extender_monitor1 = map.next_value::<Bool>()?.0;
            }
            "enablePulseExtenderMonitor2" => {
                seen.first(7)?;
                c.enable_pulse_extender_monitor2 = map.next_value::<Bool>()?.0;
            }
            "_id" => {
                seen.first(8)?;
                c.id = map.next_value::<Int>()?.0;
            }
            "_cookie" => {
                seen.first(9)?;
                c.cookie = map.next_value::<Int>()?.0;
            }
            _ => keep(&mut map, &mut c.extra, key)?,
        }
    }
});

object!(Chip, |c, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        match &*key {
            "cores" => {
                seen.first(0)?;
                map.next_value_seed(Fixed(&mut c.cores[..]))?;
            }
            "globalParameters" => {
                seen.first(1)?;
                map.next_value_seed(InPlace(&mut c.global_parameters))?;
            }
            "sharedParameters01" => {
                seen.first(2)?;
                map.next_value_seed(InPlace(&mut c.shared_parameters01))?;
            }
            "sharedParameters23" => {
                seen.first(3)?;
                map.next_value_seed(InPlace(&mut c.shared_parameters23))?;
            }
            "sadcGroupParameters01" => {
                seen.first(4)?;
                map.next_value_seed(Groups(&mut c.sadc_group_parameters01))?;
            }
            "sadcGroupParameters23" => {
                seen.first(5)?;
                map.next_value_seed(Groups(&mut c.sadc_group_parameters23))?;
            }
            "sadcEnables" => {
                seen.first(6)?;
                map.next_value_seed(Enables(&mut c.sadc_enables, &CHIP_SADC_NAMES))?;
            }
            "dvsIf" => {
                seen.first(7)?;
                c.dvs_if = kept(&mut map)?;
            }
            "bioamps" => {
                seen.first(8)?;
                c.bioamps = kept(&mut map)?;
            }
            "enablePg0ReferenceMonitor" => {
                seen.first(9)?;
                c.enable_pg0_reference_monitor = map.next_value::<Bool>()?.0;
            }
            "enablePg1ReferenceMonitor" => {
                seen.first(10)?;
                c.enable_pg1_reference_monitor = map.next_value::<Bool>()?.0;
            }
            "paramGen0Powerdown" => {
                seen.first(11)?;
                c.param_gen0_powerdown = map.next_value::<Bool>()?.0;
            }
            "paramGen1Powerdown" => {
                seen.first(12)?;
                c.param_gen1_powerdown = map.next_value::<Bool>()?.0;
            }
            _ => keep(&mut map, &mut c.extra, key)?,
        }
    }
});

/// The chips: an array of one to [`MAX_CHIPS`] chip objects. (The tolerated `valueN` object is left
/// to the tree reader.)
struct Chips<'a>(&'a mut Vec<Chip>);

impl<'de> DeserializeSeed<'de> for Chips<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Chips<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of chips")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let mut chip = Chip::default();
            if seq.next_element_seed(InPlace(&mut chip))?.is_none() {
                break;
            }
            if self.0.len() == MAX_CHIPS {
                return Err(leave());
            }
            self.0.push(chip);
        }
        if self.0.is_empty() {
            return Err(leave());
        }
        Ok(())
    }
}

object!(Configuration, |c, map| {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Key)? {
        if key == "chips" {
            seen.first(0)?;
            map.next_value_seed(Chips(&mut c.chips))?;
        } else {
            keep(&mut map, &mut c.extra, key)?;
        }
    }
    if seen.0 == 0 {
        return Err(leave());
    }
});

/// The root wrapper `{"value0": configuration}`; other keys beside it are read and ignored, as the
/// tree reader does. (A configuration without the wrapper is left to the tree reader.)
struct Root;

impl<'de> DeserializeSeed<'de> for Root {
    type Value = Configuration;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Configuration, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Root {
    type Value = Configuration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("samna's root object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Configuration, A::Error> {
        let mut config = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == "value0" {
                if config.is_some() {
                    return Err(leave());
                }
                let mut c = Configuration {
                    chips: Vec::new(),
                    extra: Vec::new(),
                };
                map.next_value_seed(InPlace(&mut c))?;
                config = Some(c);
            } else {
                skip(&mut map)?;
            }
        }
        config.ok_or_else(leave)
    }
}

// ---------------------------------------------------------------------------------------------------
// Reading, the path-aware tree reader

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

/// The path-aware reader: the whole text as a `serde_json` value, then a walk of the tree that reports
/// every problem with its path. [`from_json`]'s reference, and its reader of every text the streaming
/// reader leaves to it.
pub(crate) fn read_tree(text: &str) -> Result<Configuration, Vec<JsonProblem>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_display_writes_them() {
        let signed = [
            i64::MIN,
            i64::MIN + 1,
            -1024,
            -10,
            -9,
            -7,
            -1,
            0,
            1,
            9,
            10,
            99,
            100,
            2047,
            i64::MAX,
        ];
        for v in signed {
            let mut out = String::new();
            w_int(&mut out, v);
            assert_eq!(out, v.to_string());
        }
        let unsigned = [
            0,
            1,
            9,
            10,
            255,
            256,
            65_535,
            10_u64.pow(19) - 1,
            10_u64.pow(19),
            u64::MAX,
        ];
        for v in unsigned {
            let mut out = String::new();
            w_uint(&mut out, v);
            assert_eq!(out, v.to_string());
        }
        for bits in 0..16 {
            let mut ours = String::new();
            w_bits(&mut ours, bits);
            let k: Vec<String> = (0..4)
                .map(|k| format!("\"value{k}\":{}", bits >> k & 1 == 1))
                .collect();
            assert_eq!(ours, format!("{{{}}}", k.join(",")));
        }
    }
}
