//! What can be wrong with a dataset: [`DataError`] names the file, the array (`x` or `y`) and the
//! [`Problem`], with the index of the first bad value. Callers match the problem's variant, never its
//! text.

use std::fmt;
use std::path::PathBuf;

/// The two arrays of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Array {
    /// The samples: spike counts `[samples, steps, channels]` or features `[samples, features]`.
    X,
    /// The targets: class labels `[samples]`, or regression values `[samples]` or `[samples, dims]`.
    Y,
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Array::X => "x",
            Array::Y => "y",
        })
    }
}

/// A dataset that cannot be used: where (the file and the array, when there is one) and what.
#[derive(Debug)]
pub struct DataError {
    /// The file (an `.npz` archive, or the `x.npy`/`y.npy` of a folder); `None` for data that came
    /// from no file (a generator, a split, an encoder's parameters).
    pub file: Option<PathBuf>,
    /// The array concerned, when the problem is in one.
    pub array: Option<Array>,
    /// What is wrong.
    pub problem: Problem,
}

impl DataError {
    /// A problem in no file (parameters, splits).
    pub(crate) fn new(problem: Problem) -> DataError {
        DataError {
            file: None,
            array: None,
            problem,
        }
    }

    /// A parameter that cannot work: its configuration key and why.
    pub(crate) fn parameter(key: &'static str, reason: String) -> DataError {
        DataError::new(Problem::Parameter { key, reason })
    }
}

/// What is wrong with a dataset, a file or a parameter.
#[derive(Debug)]
pub enum Problem {
    /// The file or folder could not be read.
    Io(std::io::Error),
    /// The file is not a ZIP archive (NPZ files are ZIP archives of `.npy` members).
    NotZip,
    /// A ZIP structure runs past the end of the file or has a wrong signature: the archive is cut
    /// short or corrupt.
    ZipStructure {
        /// Which structure (`"central directory entry"`, `"local file header"`...).
        what: &'static str,
        /// Its byte offset in the file.
        offset: u64,
    },
    /// The archive spans several disks (split archives are not read).
    MultiDisk,
    /// The member is encrypted.
    Encrypted,
    /// The member is compressed with a method other than stored (0) or deflate (8).
    Compression {
        /// The ZIP method number.
        method: u16,
    },
    /// Two members have the same name.
    DuplicateMember {
        /// The name.
        name: String,
    },
    /// The member's size in the central directory cannot come from its compressed bytes (deflate
    /// expands at most 1032 times; a stored member's sizes are equal).
    ImplausibleSize {
        /// Uncompressed size it declares.
        declared: u64,
        /// Compressed size.
        compressed: u64,
    },
    /// The member's deflate stream is corrupt, or inflates to more than its declared size.
    Inflate,
    /// The member inflates to fewer bytes than declared.
    SizeMismatch {
        /// Declared uncompressed size.
        declared: u64,
        /// Bytes it inflated to.
        actual: u64,
    },
    /// The member's CRC-32 does not match its bytes.
    Crc {
        /// CRC-32 in the central directory.
        expected: u32,
        /// CRC-32 of the bytes read.
        actual: u32,
    },
    /// The array is not in the archive or folder.
    MissingArray {
        /// The arrays that are there.
        present: Vec<String>,
    },
    /// The array's NPY bytes do not read (the reason comes from the NPY reader: dtype, order, size).
    Npy {
        /// Why.
        reason: String,
    },
    /// The array has the wrong number of dimensions.
    WrongRank {
        /// Its shape.
        shape: Vec<usize>,
        /// The shapes accepted.
        expected: &'static str,
    },
    /// `x` and `y` hold different numbers of samples.
    SampleCount {
        /// Samples in `x`.
        x: usize,
        /// Samples in `y`.
        y: usize,
    },
    /// An axis of the array has length zero (no samples, no features...).
    Empty {
        /// The axis: `"samples"`, `"steps"`, `"channels"`, `"features"` or `"dims"`.
        axis: &'static str,
    },
    /// A value is NaN or infinite (or a spike count too large for `f32`).
    NonFinite {
        /// Its index in the array.
        index: Vec<usize>,
        /// The value.
        value: f64,
    },
    /// A spike count is negative.
    NegativeCount {
        /// Its index in `x`.
        index: Vec<usize>,
        /// The value.
        value: f64,
    },
    /// A class label is not a whole number.
    LabelNotInteger {
        /// The sample.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A class label is negative, beyond [`MAX_CLASSES`](super::MAX_CLASSES), or not a class of the
    /// train split.
    LabelOutOfRange {
        /// The sample.
        index: usize,
        /// The value.
        value: f64,
        /// The train split's number of classes, when checked against it.
        classes: Option<usize>,
    },
    /// A validation or test split's samples or targets are not shaped like the train split's.
    Shape {
        /// The shape of one sample (or target) in the train split (`[features]`, `[steps,
        /// channels]`, `[dims]`).
        train: Vec<usize>,
        /// Here.
        here: Vec<usize>,
    },
    /// A split of a dataset would be empty.
    EmptySplit {
        /// `"train"` or `"validation"`.
        split: &'static str,
        /// Samples of the dataset split.
        samples: usize,
        /// The validation fraction asked for.
        fraction: f64,
    },
    /// A parameter cannot work.
    Parameter {
        /// Its configuration key (`data.encoder.t_max_step`).
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io(e) => write!(f, "cannot read: {e}"),
            Problem::NotZip => f.write_str(
                "not an NPZ file: no ZIP end-of-central-directory record (an NPZ is the ZIP archive np.savez writes)",
            ),
            Problem::ZipStructure { what, offset } => write!(
                f,
                "the ZIP {what} at byte {offset} is cut short or corrupt"
            ),
            Problem::MultiDisk => f.write_str("the ZIP archive spans several disks"),
            Problem::Encrypted => f.write_str("the member is encrypted"),
            Problem::Compression { method } => write!(
                f,
                "the member is compressed with ZIP method {method}; NPZ files are stored (0) or deflated (8)"
            ),
            Problem::DuplicateMember { name } => {
                write!(f, "the archive holds two members named {name:?}")
            }
            Problem::ImplausibleSize {
                declared,
                compressed,
            } => write!(
                f,
                "the member declares {declared} bytes from {compressed} compressed bytes, which no ZIP writer makes"
            ),
            Problem::Inflate => f.write_str(
                "the member's deflate stream is corrupt or longer than its declared size",
            ),
            Problem::SizeMismatch { declared, actual } => write!(
                f,
                "the member inflates to {actual} bytes, not the {declared} it declares"
            ),
            Problem::Crc { expected, actual } => write!(
                f,
                "CRC-32 {actual:08x} of the member's bytes differs from the archive's {expected:08x}: the file is corrupt"
            ),
            Problem::MissingArray { present } => {
                if present.is_empty() {
                    f.write_str("missing (the file holds no array)")
                } else {
                    write!(f, "missing (the file holds {})", present.join(", "))
                }
            }
            Problem::Npy { reason } => write!(f, "{reason}"),
            Problem::WrongRank { shape, expected } => {
                write!(f, "shape {shape:?}; expected {expected}")
            }
            Problem::SampleCount { x, y } => write!(
                f,
                "{y} targets for {x} samples in x: the first dimensions of x and y must agree"
            ),
            Problem::Empty { axis } => write!(f, "no {axis} (an axis of length 0)"),
            Problem::NonFinite { index, value } if value.is_finite() => write!(
                f,
                "spike count {value} at index {index:?} is beyond the range of a 32-bit float"
            ),
            Problem::NonFinite { index, value } => {
                write!(f, "value {value} at index {index:?} is not a finite number")
            }
            Problem::NegativeCount { index, value } => {
                write!(f, "spike count {value} at index {index:?} is negative")
            }
            Problem::LabelNotInteger { index, value } => write!(
                f,
                "label {value} of sample {index} is not a whole number (for real-valued targets, use a regression task)"
            ),
            Problem::LabelOutOfRange {
                index,
                value,
                classes: Some(n),
            } => write!(
                f,
                "label {value} of sample {index} is not one of the train split's {n} classes (0 to {})",
                n.saturating_sub(1)
            ),
            Problem::LabelOutOfRange {
                index,
                value,
                classes: None,
            } => write!(
                f,
                "label {value} of sample {index} is not a class: labels are 0, 1, 2... (at most {} classes)",
                super::MAX_CLASSES
            ),
            Problem::Shape { train, here } => write!(
                f,
                "each sample is {here:?} here but {train:?} in the train split"
            ),
            Problem::EmptySplit {
                split,
                samples,
                fraction,
            } => write!(
                f,
                "a validation fraction of {fraction} leaves the {split} split of {samples} samples empty"
            ),
            Problem::Parameter { key, reason } => {
                write!(f, "configuration key `{key}`: {reason}")
            }
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(array) = self.array {
            write!(f, "array `{array}`: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            Problem::Io(e) => Some(e),
            _ => None,
        }
    }
}
