//! What can be wrong in a file: the JSON path of the value at fault and the problem, as data.

use std::fmt;

/// A problem in a file, at a JSON path.
#[derive(Clone, Debug, PartialEq)]
pub struct FormatError {
    /// Where: `w_in[2][5]`, `neurons[3].core`, `Itau_mem`; empty for the document as a whole.
    pub path: String,
    /// What.
    pub problem: Problem,
}

/// What is wrong with a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// Not JSON, or a value of the wrong type (the JSON parser's own words).
    Parse {
        /// The parser's message.
        message: String,
        /// Line in the text (1-based), 0 when the value's path is known instead.
        line: usize,
        /// Column in the line (1-based).
        column: usize,
    },
    /// A required key is absent.
    Missing,
    /// A row of a dense matrix is not as long as the first.
    Ragged {
        /// The row.
        row: usize,
        /// Its entries.
        found: usize,
        /// Entries of the first row.
        expected: usize,
    },
    /// A matrix of another shape than the rest of the file implies.
    Shape {
        /// Its shape.
        found: (usize, usize),
        /// The shape it must have.
        expected: (usize, usize),
    },
    /// A list of another length than the network's (per-neuron values, the core map, a sparse
    /// matrix's `row`/`col`/`val` lists).
    Length {
        /// Its length.
        found: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A matrix larger than [`crate::format::MAX_MATRIX_ENTRIES`] entries (refused before allocating).
    TooLarge {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// A sparse entry outside the matrix's shape.
    Index {
        /// Which list: `row` or `col`.
        list: &'static str,
        /// The index.
        found: usize,
        /// The matrix's size along it.
        limit: usize,
    },
    /// A value out of its allowed set or range (`3.5` where a 4-bit mask is expected).
    Value {
        /// The value, as written.
        found: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// A name outside a closed set.
    UnknownName {
        /// The name.
        found: String,
        /// The allowed names.
        expected: &'static [&'static str],
    },
    /// Two entries for one place (a sparse matrix entry given twice, one chip place for two neurons).
    Duplicate {
        /// The index of the entry given first.
        first: usize,
    },
    /// The file gives no matrix and no core map, so the network's size is unknown.
    NoNeurons,
    /// The values are well-formed but the network they describe is not valid (the model's check).
    Network(dynap_model::Error),
    /// A count that disagrees with the rest of the file (an architecture's `inputs` and `w_in`'s rows).
    Count {
        /// The count given.
        found: usize,
        /// What the rest of the file implies.
        expected: usize,
        /// What it must equal (`the rows of `w_in``).
        of: &'static str,
    },
    /// A name that is not one of the architecture's populations.
    NoSuchPopulation {
        /// The name.
        name: String,
    },
    /// A non-zero weight where the architecture allows no connection.
    OutsideArchitecture {
        /// The weight.
        value: f64,
    },
}

impl FormatError {
    pub(crate) fn at(path: impl Into<String>, problem: Problem) -> FormatError {
        FormatError {
            path: path.into(),
            problem,
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "`{}`: {}", self.path, self.problem)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Parse {
                message,
                line,
                column,
            } => {
                if *line > 0 {
                    write!(f, "{message} (line {line}, column {column})")
                } else {
                    write!(f, "{message}")
                }
            }
            Problem::Missing => write!(f, "missing"),
            Problem::Ragged {
                row,
                found,
                expected,
            } => write!(
                f,
                "ragged matrix: row {row} has {found} entries where the first row has {expected}"
            ),
            Problem::Shape { found, expected } => write!(
                f,
                "a {}x{} matrix where the network needs {}x{}",
                found.0, found.1, expected.0, expected.1
            ),
            Problem::Length { found, expected } => {
                write!(f, "{found} entries where {expected} are needed")
            }
            Problem::TooLarge { rows, cols } => write!(
                f,
                "a {rows}x{cols} matrix is larger than {} entries",
                crate::format::MAX_MATRIX_ENTRIES
            ),
            Problem::Index { list, found, limit } => {
                write!(f, "`{list}` index {found} is outside 0..{limit}")
            }
            Problem::Value { found, expected } => write!(f, "{found} is not {expected}"),
            Problem::UnknownName { found, expected } => {
                let names: Vec<String> = expected.iter().map(|n| format!("\"{n}\"")).collect();
                write!(f, "{found:?} is not one of {}", names.join(", "))
            }
            Problem::Duplicate { first } => {
                write!(f, "the same place as entry {first}")
            }
            Problem::NoNeurons => write!(
                f,
                "neither `w_in`, `w_rec` nor `core_map`: the network's size is unknown"
            ),
            Problem::Network(e) => write!(f, "{e}"),
            Problem::Count {
                found,
                expected,
                of,
            } => write!(f, "{found}, but {of} is {expected}"),
            Problem::NoSuchPopulation { name } => write!(f, "no population named {name:?}"),
            Problem::OutsideArchitecture { value } => write!(
                f,
                "{value}, but the architecture allows no connection here (it must be 0)"
            ),
        }
    }
}

impl std::error::Error for FormatError {}
