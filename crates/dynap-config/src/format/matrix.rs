//! Matrices in files: dense nested lists `[[...], ...]` or the sparse (COO) object `{"shape": [rows,
//! cols], "row": [...], "col": [...], "val": [...]}`, read straight into flat vectors (a dense 4096-neuron
//! matrix is 16 M numbers: no JSON value tree for them) and written compact.

use super::error::{FormatError, Problem};
use super::text::join;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::marker::PhantomData;

/// Writers use the sparse form for a matrix of more entries than this (64 x 64) of which at most a
/// quarter are non-zero.
pub const SPARSE_ABOVE: usize = 4096;

/// The largest matrix a reader accepts, in entries (rows x columns): larger shapes are refused before
/// anything is allocated. A full board of 4 chips is 4096 x 4096 = 16.8 M.
pub const MAX_MATRIX_ENTRIES: usize = 1 << 26;

/// A matrix as the file holds it.
#[derive(Debug)]
pub(crate) enum MatrixJson<T> {
    /// Rows of values.
    Dense {
        rows: usize,
        cols: usize,
        data: Vec<T>,
    },
    /// Dense rows of unequal length (reported with the path once parsing is done).
    Ragged {
        row: usize,
        found: usize,
        expected: usize,
    },
    /// A dense matrix over [`MAX_MATRIX_ENTRIES`] (reading stopped there).
    TooLarge { rows: usize, cols: usize },
    /// Coordinates and values; the lists are checked after parsing.
    Sparse {
        shape: Option<Vec<usize>>,
        row: Option<Vec<usize>>,
        col: Option<Vec<usize>>,
        val: Option<Vec<T>>,
    },
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for MatrixJson<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MatrixJson<T>, D::Error> {
        d.deserialize_any(MatrixVisitor(PhantomData))
    }
}

struct MatrixVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for MatrixVisitor<T> {
    type Value = MatrixJson<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a matrix: a list of rows, or {\"shape\": [rows, cols], \"row\": [...], \"col\": [...], \"val\": [...]}",
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MatrixJson<T>, A::Error> {
        let (mut data, mut rows, mut cols) = (Vec::new(), 0usize, None);
        while let Some(row) = seq.next_element::<Vec<T>>()? {
            let expected = *cols.get_or_insert(row.len());
            if row.len() != expected {
                // Drain the rest so the parser stays in step; report after parsing.
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                return Ok(MatrixJson::Ragged {
                    row: rows,
                    found: row.len(),
                    expected,
                });
            }
            rows += 1;
            if data.len() + row.len() > MAX_MATRIX_ENTRIES {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    rows += 1;
                }
                return Ok(MatrixJson::TooLarge {
                    rows,
                    cols: expected,
                });
            }
            data.extend(row);
        }
        Ok(MatrixJson::Dense {
            rows,
            cols: cols.unwrap_or(0),
            data,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatrixJson<T>, A::Error> {
        let (mut shape, mut row, mut col, mut val) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "shape" => shape = Some(map.next_value()?),
                "row" => row = Some(map.next_value()?),
                "col" => col = Some(map.next_value()?),
                "val" => val = Some(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unknown key `{other}` in a sparse matrix (its keys are shape, row, col, val)"
                    )));
                }
            }
        }
        Ok(MatrixJson::Sparse {
            shape,
            row,
            col,
            val,
        })
    }
}

/// A matrix read and checked: its shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dense<T> {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<T>,
}

impl<T: Copy> MatrixJson<T> {
    /// The matrix with `zero` where a sparse file has no entry; errors at `path` (the matrix's key).
    pub(crate) fn into_dense(self, path: &str, zero: T) -> Result<Dense<T>, FormatError> {
        match self {
            MatrixJson::Dense { rows, cols, data } => Ok(Dense { rows, cols, data }),
            MatrixJson::Ragged {
                row,
                found,
                expected,
            } => Err(FormatError::at(
                format!("{path}[{row}]"),
                Problem::Ragged {
                    row,
                    found,
                    expected,
                },
            )),
            MatrixJson::TooLarge { rows, cols } => {
                Err(FormatError::at(path, Problem::TooLarge { rows, cols }))
            }
            MatrixJson::Sparse {
                shape,
                row,
                col,
                val,
            } => {
                let missing = |key| FormatError::at(join(path, key), Problem::Missing);
                let shape = shape.ok_or_else(|| missing("shape"))?;
                let (row, col, val) = (
                    row.ok_or_else(|| missing("row"))?,
                    col.ok_or_else(|| missing("col"))?,
                    val.ok_or_else(|| missing("val"))?,
                );
                let [rows, cols] = shape[..] else {
                    return Err(FormatError::at(
                        join(path, "shape"),
                        Problem::Length {
                            found: shape.len(),
                            expected: 2,
                        },
                    ));
                };
                if rows
                    .checked_mul(cols)
                    .is_none_or(|e| e > MAX_MATRIX_ENTRIES)
                {
                    return Err(FormatError::at(path, Problem::TooLarge { rows, cols }));
                }
                for (key, len) in [("col", col.len()), ("val", val.len())] {
                    if len != row.len() {
                        return Err(FormatError::at(
                            join(path, key),
                            Problem::Length {
                                found: len,
                                expected: row.len(),
                            },
                        ));
                    }
                }
                let mut data = vec![zero; rows * cols];
                let mut places = Vec::with_capacity(row.len());
                for (k, ((&r, &c), v)) in row.iter().zip(&col).zip(val).enumerate() {
                    for (list, i, limit) in [("row", r, rows), ("col", c, cols)] {
                        if i >= limit {
                            return Err(FormatError::at(
                                format!("{path}.{list}[{k}]"),
                                Problem::Index {
                                    list,
                                    found: i,
                                    limit,
                                },
                            ));
                        }
                    }
                    data[r * cols + c] = v;
                    places.push((r * cols + c, k));
                }
                // A place given twice is refused (sorting the places costs nnz log nnz, not a flag per
                // entry of the matrix).
                places.sort_unstable();
                if let Some(w) = places.windows(2).find(|w| w[0].0 == w[1].0) {
                    let (first, second) = (w[0].1.min(w[1].1), w[0].1.max(w[1].1));
                    return Err(FormatError::at(
                        format!("{path}.row[{second}]"),
                        Problem::Duplicate { first },
                    ));
                }
                Ok(Dense { rows, cols, data })
            }
        }
    }
}

/// Row-major values as dense rows, for the writer.
struct Rows<'a, T> {
    cols: usize,
    data: &'a [T],
}

impl<T: Serialize> Serialize for Rows<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.data.chunks(self.cols.max(1)))
    }
}

/// `rows` empty rows (a matrix of no columns), for the writer.
struct EmptyRows(usize);

impl Serialize for EmptyRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((0..self.0).map(|_| [(); 0]))
    }
}

/// The sparse form, for the writer.
#[derive(Serialize)]
struct Sparse<'a, T> {
    shape: [usize; 2],
    row: Vec<usize>,
    col: Vec<usize>,
    val: Vec<&'a T>,
}

/// A matrix as JSON text: dense rows, or the sparse form when it has more than [`SPARSE_ABOVE`]
/// entries and at most a quarter of them differ from `zero`.
pub(crate) fn to_json<T: Serialize + PartialEq>(
    rows: usize,
    cols: usize,
    data: &[T],
    zero: &T,
) -> String {
    debug_assert_eq!(data.len(), rows * cols);
    let nonzero = data.iter().filter(|v| *v != zero).count();
    let text = if data.len() > SPARSE_ABOVE && nonzero * 4 <= data.len() {
        let mut s = Sparse {
            shape: [rows, cols],
            row: Vec::with_capacity(nonzero),
            col: Vec::with_capacity(nonzero),
            val: Vec::with_capacity(nonzero),
        };
        for (i, v) in data.iter().enumerate().filter(|(_, v)| *v != zero) {
            s.row.push(i / cols);
            s.col.push(i % cols);
            s.val.push(v);
        }
        serde_json::to_string(&s)
    } else if rows == 0 {
        Ok("[]".to_owned())
    } else if cols == 0 {
        // No columns: the rows must still be written, or the matrix reads back with none.
        serde_json::to_string(&EmptyRows(rows))
    } else {
        serde_json::to_string(&Rows { cols, data })
    };
    // Numbers, strings and lists of them: serialising cannot fail.
    text.expect("plain data serialises")
}
