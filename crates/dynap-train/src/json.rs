//! Reading numbers and arrays out of `serde_json` values with errors that give the path of what is
//! missing or malformed (`params.Itau_mem[3]: expected a number`).

use serde_json::Value;

/// A path-carrying JSON cursor.
#[derive(Clone)]
pub(crate) struct J<'a> {
    pub(crate) v: &'a Value,
    path: String,
}

/// A problem in a JSON document, with its path.
pub(crate) type JResult<T> = Result<T, String>;

impl<'a> J<'a> {
    pub(crate) fn root(v: &'a Value) -> J<'a> {
        J {
            v,
            path: String::new(),
        }
    }

    fn sub(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Field `key`, which must exist.
    pub(crate) fn get(&self, key: &str) -> JResult<J<'a>> {
        let path = self.sub(key);
        let v = self
            .v
            .get(key)
            .ok_or_else(|| format!("missing field `{path}`"))?;
        Ok(J { v, path })
    }

    /// Field `key`, if present and not null.
    pub(crate) fn opt(&self, key: &str) -> Option<J<'a>> {
        self.v.get(key).filter(|v| !v.is_null()).map(|v| J {
            v,
            path: self.sub(key),
        })
    }

    /// Element `i` of an array.
    pub(crate) fn at(&self, i: usize) -> JResult<J<'a>> {
        let path = format!("{}[{i}]", self.path);
        let v = self
            .v
            .get(i)
            .ok_or_else(|| format!("missing element `{path}`"))?;
        Ok(J { v, path })
    }

    /// The entries of an object, as cursors.
    pub(crate) fn entries(&self) -> JResult<Vec<(&'a str, J<'a>)>> {
        Ok(self
            .object()?
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    J {
                        v,
                        path: self.sub(k),
                    },
                )
            })
            .collect())
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn f64(&self) -> JResult<f64> {
        self.v.as_f64().ok_or_else(|| {
            format!(
                "`{}`: expected a number, found {}",
                self.path,
                brief(self.v)
            )
        })
    }

    pub(crate) fn bool(&self) -> JResult<bool> {
        self.v.as_bool().ok_or_else(|| {
            format!(
                "`{}`: expected true or false, found {}",
                self.path,
                brief(self.v)
            )
        })
    }

    pub(crate) fn str(&self) -> JResult<&'a str> {
        self.v.as_str().ok_or_else(|| {
            format!(
                "`{}`: expected a string, found {}",
                self.path,
                brief(self.v)
            )
        })
    }

    pub(crate) fn array(&self) -> JResult<&'a Vec<Value>> {
        self.v.as_array().ok_or_else(|| {
            format!(
                "`{}`: expected an array, found {}",
                self.path,
                brief(self.v)
            )
        })
    }

    pub(crate) fn object(&self) -> JResult<&'a serde_json::Map<String, Value>> {
        self.v.as_object().ok_or_else(|| {
            format!(
                "`{}`: expected an object, found {}",
                self.path,
                brief(self.v)
            )
        })
    }

    /// A nested array of numbers, flattened row-major, with its shape. Ragged arrays are errors.
    pub(crate) fn tensor(&self) -> JResult<(Vec<usize>, Vec<f64>)> {
        let mut shape = Vec::new();
        let mut probe = self.v;
        while let Some(a) = probe.as_array() {
            shape.push(a.len());
            match a.first() {
                Some(first) => probe = first,
                None => break,
            }
        }
        let mut out = Vec::with_capacity(shape.iter().product());
        flatten(self.v, &shape, 0, &mut out, &self.path)?;
        Ok((shape, out))
    }

    /// A flat list of integers in `0..limit` (indices: core ids, masks); the error names the entry.
    pub(crate) fn indices(&self, limit: usize) -> JResult<Vec<usize>> {
        let (_, values) = self.tensor()?;
        values
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if x >= 0.0 && x.fract() == 0.0 && x < limit as f64 {
                    Ok(x as usize)
                } else {
                    Err(format!(
                        "`{}[{i}]` is {x}; expected an integer in 0..{limit}",
                        self.path
                    ))
                }
            })
            .collect()
    }

    /// A tensor of exactly `rank` dimensions.
    pub(crate) fn tensor_rank(&self, rank: usize) -> JResult<(Vec<usize>, Vec<f64>)> {
        let (shape, data) = self.tensor()?;
        if shape.len() != rank && !(data.is_empty() && shape.len() < rank) {
            return Err(format!(
                "`{}`: expected {rank} dimensions, found shape {shape:?}",
                self.path
            ));
        }
        Ok((shape, data))
    }
}

fn flatten(
    v: &Value,
    shape: &[usize],
    depth: usize,
    out: &mut Vec<f64>,
    path: &str,
) -> JResult<()> {
    let mut index = Vec::with_capacity(shape.len());
    flatten_at(v, shape, depth, out, path, &mut index)
}

/// The path of an element, built only when there is an error to report (a large tensor has millions
/// of elements).
fn element_path(path: &str, index: &[usize]) -> String {
    let mut p = path.to_owned();
    for i in index {
        p.push_str(&format!("[{i}]"));
    }
    p
}

fn flatten_at(
    v: &Value,
    shape: &[usize],
    depth: usize,
    out: &mut Vec<f64>,
    path: &str,
    index: &mut Vec<usize>,
) -> JResult<()> {
    if depth == shape.len() {
        return match v.as_f64() {
            Some(x) => {
                out.push(x);
                Ok(())
            }
            None => Err(format!(
                "`{}`: expected a number, found {}",
                element_path(path, index),
                brief(v)
            )),
        };
    }
    let a = v.as_array().ok_or_else(|| {
        format!(
            "`{}`: expected an array of {} entries, found {}",
            element_path(path, index),
            shape[depth],
            brief(v)
        )
    })?;
    if a.len() != shape[depth] {
        return Err(format!(
            "`{}`: ragged array: {} entries where the first {} has {}",
            element_path(path, index),
            a.len(),
            if depth == 0 { "level" } else { "row" },
            shape[depth]
        ));
    }
    for (i, x) in a.iter().enumerate() {
        index.push(i);
        flatten_at(x, shape, depth + 1, out, path, index)?;
        index.pop();
    }
    Ok(())
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..40])
    } else {
        s
    }
}
