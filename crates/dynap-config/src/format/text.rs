//! JSON text in and out: parsing with the path of every error tracked, small value readers that name
//! the path, and the writer's layout (one top-level key per line, each value compact).

use super::error::{FormatError, Problem};
use serde_json::Value;

/// The deserializer a reader's top level runs on: serde_json's, with the path of the current value
/// tracked for errors.
pub(crate) type Tracked<'a, 'b> = serde_path_to_error::Deserializer<
    'a,
    'a,
    &'a mut serde_json::Deserializer<serde_json::de::StrRead<'b>>,
>;

/// Runs `f` on a path-tracking deserializer of `text` and checks that nothing follows the value; a
/// parse error becomes a [`FormatError`] at the path where it happened.
pub(crate) fn parse<'t, T>(
    text: &'t str,
    f: impl for<'a> FnOnce(Tracked<'a, 't>) -> Result<T, serde_json::Error>,
) -> Result<T, FormatError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let value = f(serde_path_to_error::Deserializer::new(&mut de, &mut track));
    let value = value.map_err(|e| {
        let path = track.path().to_string();
        parse_error(if path == "." { String::new() } else { path }, &e)
    })?;
    de.end().map_err(|e| parse_error(String::new(), &e))?;
    Ok(value)
}

fn parse_error(path: String, e: &serde_json::Error) -> FormatError {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the position is kept as data instead.
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    FormatError::at(
        path,
        Problem::Parse {
            message,
            line: e.line(),
            column: e.column(),
        },
    )
}

/// Joins a path and a key (`neurons[3]` + `core` = `neurons[3].core`).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A number.
pub(crate) fn number(v: &Value, path: &str) -> Result<f64, FormatError> {
    v.as_f64()
        .ok_or_else(|| FormatError::at(path, value_problem(v, "a number")))
}

/// A positive finite number (a current, a time step).
pub(crate) fn positive(v: &Value, path: &str) -> Result<f64, FormatError> {
    let x = number(v, path)?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(FormatError::at(
            path,
            Problem::Value {
                found: format_number(x),
                expected: "a finite number above 0",
            },
        ))
    }
}

/// A whole number in `0..limit`.
pub(crate) fn index(
    v: &Value,
    path: &str,
    limit: usize,
    what: &'static str,
) -> Result<usize, FormatError> {
    match v.as_u64() {
        Some(k) if (k as u128) < limit as u128 => Ok(k as usize),
        _ => Err(FormatError::at(path, value_problem(v, what))),
    }
}

/// A list of values.
pub(crate) fn list<'v>(v: &'v Value, path: &str) -> Result<&'v [Value], FormatError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| FormatError::at(path, value_problem(v, "a list")))
}

/// An object.
pub(crate) fn object<'v>(
    v: &'v Value,
    path: &str,
) -> Result<&'v serde_json::Map<String, Value>, FormatError> {
    v.as_object()
        .ok_or_else(|| FormatError::at(path, value_problem(v, "an object")))
}

/// The field `key` of `obj` at `path`, which must be present.
pub(crate) fn field<'v>(
    obj: &'v serde_json::Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'v Value, FormatError> {
    obj.get(key)
        .ok_or_else(|| FormatError::at(join(path, key), Problem::Missing))
}

/// A value that is not what is expected, described briefly.
pub(crate) fn value_problem(v: &Value, expected: &'static str) -> Problem {
    let mut found = v.to_string();
    if found.len() > 40 {
        // At a character's start (a cut inside a multi-byte character panicked: found by fuzzing).
        let cut = (0..=37)
            .rev()
            .find(|&i| found.is_char_boundary(i))
            .unwrap_or(0);
        found.truncate(cut);
        found.push_str("...");
    }
    Problem::Value { found, expected }
}

fn format_number(x: f64) -> String {
    if x.is_finite() {
        Value::from(x).to_string()
    } else {
        x.to_string()
    }
}

/// A JSON object written one top-level key per line, each value compact, keys in the order given.
pub(crate) struct Object {
    out: String,
}

impl Object {
    pub(crate) fn new() -> Object {
        Object {
            out: String::from("{"),
        }
    }

    /// Adds `key` with a value already written as JSON.
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        self.out.push_str("\n  ");
        self.out
            .push_str(&serde_json::to_string(key).expect("a string serialises"));
        self.out.push_str(": ");
        self.out.push_str(json);
    }

    /// Adds `key` with a serialisable value.
    pub(crate) fn put<T: serde::Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        // Our values are numbers, strings, lists and maps of them: serialising cannot fail (a
        // non-finite number becomes `null`).
        let json = serde_json::to_string(value).expect("plain data serialises");
        self.raw(key, &json);
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("\n}\n");
        self.out
    }
}

/// The `chip`, `core` and `neuron` of the object `obj` at `path`: a place on the board.
pub(crate) fn place(
    obj: &serde_json::Map<String, Value>,
    path: &str,
) -> Result<crate::map::NeuronPlace, FormatError> {
    use crate::model::{CORES, MAX_CHIPS, NEURONS};
    let get = |key: &str, limit: usize, what: &'static str| {
        index(field(obj, path, key)?, &join(path, key), limit, what)
    };
    Ok(crate::map::NeuronPlace {
        chip: get("chip", MAX_CHIPS, "a chip in 0..4")?,
        core: get("core", CORES, "a core in 0..4")?,
        neuron: get("neuron", NEURONS, "a neuron in 0..256")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long value is shortened at a character's start, whatever its characters.
    #[test]
    fn a_long_value_is_cut_between_characters() {
        for text in [
            "a".repeat(60),
            format!("{}{}", "a".repeat(35), "\u{fff}".repeat(10)),
        ] {
            let Problem::Value { found, .. } = value_problem(&Value::String(text), "x") else {
                panic!("a value problem");
            };
            assert!(found.ends_with("...") && found.len() <= 40, "{found}");
        }
    }
}
