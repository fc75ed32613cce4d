//! NIR's HDF5 layout as a tree of groups and datasets, read from bytes and written to bytes with
//! `hdf5-pure` (pure Rust: no libhdf5).
//!
//! The official `nir` package writes a file as: a scalar string dataset `version` and a group `node`
//! holding the graph, where every dict becomes a group and every value a dataset: strings as scalar
//! variable-length UTF-8 strings, arrays gzip-compressed and chunked, scalars uncompressed. This module
//! reads every such dataset (any float or integer type, fixed or variable-length strings, compressed or
//! not) and writes the same layout back.

use super::{NirError, Tree, Value};
use hdf5_pure::{DType, File, FileBuilder};

/// The gzip level of the arrays written (h5py's default for `compression="gzip"`).
const GZIP_LEVEL: u32 = 4;

/// Reads a whole HDF5 file into a tree (the root group).
pub(crate) fn read_tree(bytes: &[u8]) -> Result<Tree, NirError> {
    // hdf5-pure is a large parser of untrusted bytes: a panic inside it is this file's error, not
    // the program's end.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let file = File::from_bytes(bytes.to_vec())
            .map_err(|e| NirError::file(format!("not an HDF5 file this reader can read: {e}")))?;
        let mut budget = Budget {
            objects: MAX_OBJECTS,
            values: MAX_TOTAL_VALUES,
        };
        read_group(&file, "", 0, &mut budget)
    }))
    .unwrap_or_else(|_| {
        Err(NirError::file(
            "not an HDF5 file this reader can read (the HDF5 parser failed on it)",
        ))
    })
}

/// The most groups and datasets a file may hold (a NIR graph of a whole board has a few hundred).
const MAX_OBJECTS: usize = 100_000;

/// The most values all datasets together may hold (four times a board's recurrent weights).
const MAX_TOTAL_VALUES: usize = 1 << 26;

/// What is left to read: objects and values.
struct Budget {
    objects: usize,
    values: usize,
}

/// The deepest group read: a NIR file nests a few levels (`node/nodes/<name>/metadata/...`); a file
/// may link a group into itself, which must not recurse for ever.
const MAX_DEPTH: usize = 32;

/// The most values a dataset may hold: 2^24, the recurrent weights of a whole board (4096 x 4096
/// neurons), so a damaged header cannot make the reader allocate gigabytes.
const MAX_VALUES: usize = 1 << 24;

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

fn read_group(
    file: &File,
    path: &str,
    depth: usize,
    budget: &mut Budget,
) -> Result<Tree, NirError> {
    let at = |e: hdf5_pure::Error| NirError::file(format!("group '/{path}': {e}"));
    if depth > MAX_DEPTH {
        return Err(NirError::file(format!(
            "group '/{path}' is nested more than {MAX_DEPTH} deep (a group linked into itself?)"
        )));
    }
    let group = if path.is_empty() {
        file.root()
    } else {
        file.group(path).map_err(at)?
    };
    let mut tree = Tree::new();
    let datasets = group.datasets().map_err(at)?;
    let groups = group.groups().map_err(at)?;
    budget.objects = budget
        .objects
        .checked_sub(datasets.len() + groups.len())
        .ok_or_else(|| {
            NirError::file(format!(
                "group '/{path}': more than {MAX_OBJECTS} groups and datasets in the file"
            ))
        })?;
    for name in datasets {
        let full = join(path, &name);
        tree.insert(name, read_dataset(file, &full, budget)?);
    }
    for name in groups {
        let full = join(path, &name);
        tree.insert(
            name,
            Value::Group(read_group(file, &full, depth + 1, budget)?),
        );
    }
    Ok(tree)
}

fn read_dataset(file: &File, path: &str, budget: &mut Budget) -> Result<Value, NirError> {
    let at = |e: hdf5_pure::Error| NirError::file(format!("dataset '/{path}': {e}"));
    let ds = file.dataset(path).map_err(at)?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(at)?
        .into_iter()
        .map(|d| d as usize)
        .collect();
    let expected = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| {
            NirError::file(format!(
                "dataset '/{path}' has shape {shape:?}: more than {MAX_VALUES} values"
            ))
        })?;
    let dtype = ds.dtype().map_err(at)?;
    budget.values = budget.values.checked_sub(expected).ok_or_else(|| {
        NirError::file(format!(
            "dataset '/{path}': the file's datasets hold more than {MAX_TOTAL_VALUES} values"
        ))
    })?;
    let shape_text = format!("{shape:?}");
    let count = |n: usize| {
        if n == expected {
            Ok(())
        } else {
            Err(NirError::file(format!(
                "dataset '/{path}': its shape {shape_text} holds {expected} values, but {n} were read"
            )))
        }
    };
    let value = match dtype {
        DType::String | DType::VariableLengthString => {
            let texts = ds.read_string().map_err(at)?;
            if shape.is_empty() && texts.len() == 1 {
                Value::Text(texts.into_iter().next().unwrap_or_default())
            } else {
                Value::Texts { shape, texts }
            }
        }
        DType::F32 | DType::F64 => Value::Floats {
            shape,
            data: ds.read_f64().map_err(at)?,
            single: matches!(dtype, DType::F32),
        },
        DType::I8
        | DType::I16
        | DType::I32
        | DType::I64
        | DType::U8
        | DType::U16
        | DType::U32
        | DType::U64 => Value::Ints {
            shape,
            data: ds.read_i64().map_err(at)?,
        },
        other => Value::Unsupported(other.to_string()),
    };
    match &value {
        Value::Text(_) => {}
        Value::Texts { texts, .. } => count(texts.len())?,
        Value::Floats { data, .. } => count(data.len())?,
        Value::Ints { data, .. } => count(data.len())?,
        Value::Group(_) | Value::Unsupported(_) => {}
    }
    Ok(value)
}

/// What a group of either kind of `hdf5-pure`'s builders can take.
trait Sink {
    fn dataset(&mut self, name: &str) -> &mut hdf5_pure::DatasetBuilder;
    fn group(&mut self, name: &str) -> hdf5_pure::GroupBuilder;
    fn add(&mut self, group: hdf5_pure::FinishedGroup);
}

impl Sink for FileBuilder {
    fn dataset(&mut self, name: &str) -> &mut hdf5_pure::DatasetBuilder {
        self.create_dataset(name)
    }
    fn group(&mut self, name: &str) -> hdf5_pure::GroupBuilder {
        self.create_group(name)
    }
    fn add(&mut self, group: hdf5_pure::FinishedGroup) {
        self.add_group(group);
    }
}

impl Sink for hdf5_pure::GroupBuilder {
    fn dataset(&mut self, name: &str) -> &mut hdf5_pure::DatasetBuilder {
        self.create_dataset(name)
    }
    fn group(&mut self, name: &str) -> hdf5_pure::GroupBuilder {
        self.create_group(name)
    }
    fn add(&mut self, group: hdf5_pure::FinishedGroup) {
        self.add_group(group);
    }
}

/// Writes a tree as an HDF5 file, the way the `nir` package lays it out.
pub(crate) fn write_tree(tree: &Tree) -> Result<Vec<u8>, NirError> {
    let mut builder = FileBuilder::new();
    write_group(&mut builder, tree);
    builder
        .finish()
        .map_err(|e| NirError::file(format!("the HDF5 writer failed: {e}")))
}

fn compress(ds: &mut hdf5_pure::DatasetBuilder, shape: &[usize]) {
    // Like h5py: arrays are chunked (one chunk) and gzip-compressed; scalars and empty arrays are not.
    if !shape.is_empty() && shape.iter().all(|&d| d > 0) {
        let chunks: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        ds.with_chunks(&chunks).with_deflate(GZIP_LEVEL);
    }
}

fn write_group<S: Sink>(sink: &mut S, tree: &Tree) {
    for (name, value) in tree {
        match value {
            Value::Group(sub) => {
                let mut g = sink.group(name);
                write_group(&mut g, sub);
                sink.add(g.finish());
            }
            Value::Text(t) => {
                sink.dataset(name)
                    .with_vlen_strings(&[t.as_str()])
                    .with_shape(&[]);
            }
            Value::Texts { shape, texts } => {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
                sink.dataset(name)
                    .with_vlen_strings(&refs)
                    .with_shape(&dims);
            }
            Value::Floats {
                shape,
                data,
                single,
            } => {
                let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
                let ds = sink.dataset(name);
                if *single {
                    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
                    ds.with_f32_data(&v);
                } else {
                    ds.with_f64_data(data);
                }
                ds.with_shape(&dims);
                compress(ds, shape);
            }
            Value::Ints { shape, data } => {
                let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
                let ds = sink.dataset(name);
                ds.with_i64_data(data).with_shape(&dims);
                compress(ds, shape);
            }
            // What was not understood is not written back (it is reported when read).
            Value::Unsupported(_) => {}
        }
    }
}
