//! A dataset: samples (spike counts or real features) and targets (class labels or regression
//! values), loaded from an NPZ archive or a folder of `x.npy` and `y.npy` with every check of
//! `docs/formats.md` ("Datasets"), and split into train and validation parts.

use super::MAX_CLASSES;
use super::encode::{Encoder, Scaling, SpikeData};
use super::error::{Array, DataError, Problem};
use super::npz::Npz;
use dynap_model::{NpyArray, read_npy};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Real-valued features `[samples, features]`, row-major, to be turned into spikes by an
/// [`Encoder`].
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Samples.
    pub samples: usize,
    /// Features per sample.
    pub features: usize,
    /// Values, `samples * features`, finite.
    pub data: Vec<f64>,
}

impl Features {
    /// The features of sample `i` (`i < samples`).
    pub fn sample(&self, i: usize) -> &[f64] {
        &self.data[i * self.features..(i + 1) * self.features]
    }
}

/// A dataset's samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs {
    /// Spike counts `[samples, steps, channels]`, used as they are.
    Spikes(SpikeData),
    /// Real features `[samples, features]`, encoded into spikes.
    Features(Features),
}

impl Inputs {
    /// Number of samples.
    pub fn samples(&self) -> usize {
        match self {
            Inputs::Spikes(s) => s.samples,
            Inputs::Features(f) => f.samples,
        }
    }

    /// The shape of one sample: `[steps, channels]` or `[features]`.
    pub fn sample_shape(&self) -> Vec<usize> {
        match self {
            Inputs::Spikes(s) => vec![s.steps, s.channels],
            Inputs::Features(f) => vec![f.features],
        }
    }
}

/// What the `y` array of a dataset holds (`data.targets` in the configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Class labels `[samples]`: whole numbers from 0 (any integer, float or bool dtype).
    #[default]
    Classes,
    /// Real values `[samples]` or `[samples, dims]`.
    Regression,
}

/// A dataset's targets.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One class label per sample.
    Classes {
        /// Labels, each `< classes`.
        labels: Vec<usize>,
        /// Number of classes: the largest label + 1, or the train split's for a split loaded
        /// [`like`](Dataset::load_like) it.
        classes: usize,
    },
    /// Real-valued targets `[samples, dims]`, row-major (`y` of shape `[samples]` has one dim).
    Regression {
        /// Values per sample.
        dims: usize,
        /// Values, `samples * dims`, finite.
        values: Vec<f64>,
    },
}

impl Targets {
    /// The kind of targets.
    pub fn kind(&self) -> TargetKind {
        match self {
            Targets::Classes { .. } => TargetKind::Classes,
            Targets::Regression { .. } => TargetKind::Regression,
        }
    }
}

/// Samples and their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The samples.
    pub inputs: Inputs,
    /// Their targets, one per sample.
    pub targets: Targets,
}

/// What `y` is checked against: a kind alone (a train split), or a train split (validation, test).
#[derive(Clone, Copy)]
enum Expect<'t> {
    Kind(TargetKind),
    Like(&'t Dataset),
}

impl Expect<'_> {
    fn kind(self) -> TargetKind {
        match self {
            Expect::Kind(k) => k,
            Expect::Like(d) => d.targets.kind(),
        }
    }
}

/// An array's index from its flat position.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            index[i] = flat % d;
            flat /= d;
        }
    }
    index
}

const X_SHAPES: &str = "[samples, steps, channels] (spike counts) or [samples, features]";

/// `x` as inputs: rank, empty axes, finite values, non-negative counts.
fn inputs_from(x: NpyArray) -> Result<Inputs, Problem> {
    let axes: &[&'static str] = match x.shape.len() {
        3 => &["samples", "steps", "channels"],
        2 => &["samples", "features"],
        _ => {
            return Err(Problem::WrongRank {
                shape: x.shape,
                expected: X_SHAPES,
            });
        }
    };
    if let Some(i) = x.shape.iter().position(|&d| d == 0) {
        return Err(Problem::Empty { axis: axes[i] });
    }
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        return Err(Problem::NonFinite {
            index: unravel(i, &x.shape),
            value: x.data[i],
        });
    }
    if let [samples, steps, channels] = x.shape[..] {
        if let Some(i) = x.data.iter().position(|&v| v < 0.0) {
            return Err(Problem::NegativeCount {
                index: unravel(i, &x.shape),
                value: x.data[i],
            });
        }
        // Counts beyond f32's range would become infinite.
        if let Some(i) = x.data.iter().position(|&v| !(v as f32).is_finite()) {
            return Err(Problem::NonFinite {
                index: unravel(i, &x.shape),
                value: x.data[i],
            });
        }
        return Ok(Inputs::Spikes(SpikeData {
            samples,
            steps,
            channels,
            data: x.data.iter().map(|&v| v as f32).collect(),
        }));
    }
    Ok(Inputs::Features(Features {
        samples: x.shape[0],
        features: x.shape[1],
        data: x.data,
    }))
}

/// `y` as targets for `samples` samples.
fn targets_from(y: NpyArray, samples: usize, expect: Expect<'_>) -> Result<Targets, Problem> {
    let kind = expect.kind();
    let dims = match (kind, &y.shape[..]) {
        (TargetKind::Classes, [_]) => 1,
        (TargetKind::Classes, _) => {
            return Err(Problem::WrongRank {
                shape: y.shape,
                expected: "[samples] (one class label per sample)",
            });
        }
        (TargetKind::Regression, [_]) => 1,
        (TargetKind::Regression, [_, d]) => *d,
        (TargetKind::Regression, _) => {
            return Err(Problem::WrongRank {
                shape: y.shape,
                expected: "[samples] or [samples, dims] (regression targets)",
            });
        }
    };
    if y.shape[0] != samples {
        return Err(Problem::SampleCount {
            x: samples,
            y: y.shape[0],
        });
    }
    if dims == 0 {
        return Err(Problem::Empty { axis: "dims" });
    }
    if let Some(i) = y.data.iter().position(|v| !v.is_finite()) {
        return Err(Problem::NonFinite {
            index: unravel(i, &y.shape),
            value: y.data[i],
        });
    }
    match kind {
        TargetKind::Regression => {
            if let Expect::Like(Dataset {
                targets: Targets::Regression { dims: train, .. },
                ..
            }) = expect
                && *train != dims
            {
                return Err(Problem::Shape {
                    train: vec![*train],
                    here: vec![dims],
                });
            }
            Ok(Targets::Regression {
                dims,
                values: y.data,
            })
        }
        TargetKind::Classes => {
            let expected = match expect {
                Expect::Like(Dataset {
                    targets: Targets::Classes { classes, .. },
                    ..
                }) => Some(*classes),
                _ => None,
            };
            let limit = expected.unwrap_or(MAX_CLASSES);
            let mut labels = Vec::with_capacity(y.data.len());
            for (index, &value) in y.data.iter().enumerate() {
                if value.fract() != 0.0 {
                    return Err(Problem::LabelNotInteger { index, value });
                }
                if value < 0.0 || value >= limit as f64 {
                    return Err(Problem::LabelOutOfRange {
                        index,
                        value,
                        classes: expected,
                    });
                }
                labels.push(value as usize);
            }
            let classes = expected.unwrap_or_else(|| labels.iter().max().map_or(0, |m| m + 1));
            Ok(Targets::Classes { labels, classes })
        }
    }
}

/// A validation or test split's samples against the train split's.
fn check_like(inputs: &Inputs, expect: Expect<'_>) -> Result<(), Problem> {
    if let Expect::Like(train) = expect {
        let (train, here) = (train.inputs.sample_shape(), inputs.sample_shape());
        if train != here {
            return Err(Problem::Shape { train, here });
        }
    }
    Ok(())
}

/// The arrays of a folder holding `x.npy` and `y.npy`, for a missing-array message.
fn npy_files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".npy"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn at(file: &Path, array: Option<Array>, problem: Problem) -> DataError {
    DataError {
        file: Some(file.to_owned()),
        array,
        problem,
    }
}

/// Reads `NAME.npy` of a folder.
fn read_member(folder: &Path, array: Array) -> Result<NpyArray, DataError> {
    let file = folder.join(format!("{array}.npy"));
    let bytes = std::fs::read(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            at(
                &file,
                Some(array),
                Problem::MissingArray {
                    present: npy_files(folder),
                },
            )
        } else {
            at(&file, Some(array), Problem::Io(e))
        }
    })?;
    read_npy(&bytes).map_err(|e| {
        let reason = match e {
            dynap_model::Error::Npy { problem } => problem,
            other => other.to_string(),
        };
        at(&file, Some(array), Problem::Npy { reason })
    })
}

impl Dataset {
    /// Loads a train split (or any dataset checked on its own): an `.npz` archive with arrays `x` and
    /// `y`, or a folder holding `x.npy` and `y.npy`. With [`TargetKind::Classes`] the number of
    /// classes is the largest label + 1.
    pub fn load(path: &Path, kind: TargetKind) -> Result<Dataset, DataError> {
        load_with(path, Expect::Kind(kind))
    }

    /// Loads a validation or test split and checks it against the train split: the same kind of
    /// samples with the same shape per sample, the same kind of targets (the same dims), and labels
    /// among the train split's classes, whose number it takes.
    pub fn load_like(path: &Path, train: &Dataset) -> Result<Dataset, DataError> {
        load_with(path, Expect::Like(train))
    }

    /// A dataset from the bytes of an NPZ archive; `file` names it in errors.
    pub fn from_npz(bytes: &[u8], file: &Path, kind: TargetKind) -> Result<Dataset, DataError> {
        from_npz_with(bytes, file, Expect::Kind(kind))
    }

    /// [`Dataset::from_npz`] checked against a train split, as [`Dataset::load_like`].
    pub(crate) fn from_npz_like(
        bytes: &[u8],
        file: &Path,
        train: &Dataset,
    ) -> Result<Dataset, DataError> {
        from_npz_with(bytes, file, Expect::Like(train))
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.inputs.samples()
    }

    /// Number of classes of a classification dataset.
    pub fn classes(&self) -> Option<usize> {
        match &self.targets {
            Targets::Classes { classes, .. } => Some(*classes),
            Targets::Regression { .. } => None,
        }
    }

    /// The samples as spike rasters: spike counts as they are (the encoder is not used); features
    /// through `encoder`, scaled by `scaling` (the train split's, [`Scaling::of`]), Poisson draws
    /// seeded by `seed` and each sample's index here. `dt` is the simulation step (s).
    pub fn spikes(
        &self,
        encoder: &Encoder,
        scaling: &Scaling,
        dt: f64,
        seed: u64,
    ) -> Result<SpikeData, DataError> {
        match &self.inputs {
            Inputs::Spikes(s) => Ok(s.clone()),
            Inputs::Features(f) => encoder.encode(f, scaling, dt, seed),
        }
    }

    /// The samples at `indices` (each `< samples`), in that order, with the same number of classes.
    pub(crate) fn subset(&self, indices: &[usize]) -> Dataset {
        let inputs = match &self.inputs {
            Inputs::Spikes(s) => {
                let n = s.steps * s.channels;
                Inputs::Spikes(SpikeData {
                    samples: indices.len(),
                    steps: s.steps,
                    channels: s.channels,
                    data: indices
                        .iter()
                        .flat_map(|&i| &s.data[i * n..(i + 1) * n])
                        .copied()
                        .collect(),
                })
            }
            Inputs::Features(f) => Inputs::Features(Features {
                samples: indices.len(),
                features: f.features,
                data: indices.iter().flat_map(|&i| f.sample(i)).copied().collect(),
            }),
        };
        let targets = match &self.targets {
            Targets::Classes { labels, classes } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                classes: *classes,
            },
            Targets::Regression { dims, values } => Targets::Regression {
                dims: *dims,
                values: indices
                    .iter()
                    .flat_map(|&i| &values[i * dims..(i + 1) * dims])
                    .copied()
                    .collect(),
            },
        };
        Dataset { inputs, targets }
    }
}

fn load_with(path: &Path, expect: Expect<'_>) -> Result<Dataset, DataError> {
    if path.is_dir() {
        let x = read_member(path, Array::X)?;
        let inputs = inputs_from(x)
            .and_then(|i| check_like(&i, expect).map(|()| i))
            .map_err(|p| at(&path.join("x.npy"), Some(Array::X), p))?;
        let y = read_member(path, Array::Y)?;
        let targets = targets_from(y, inputs.samples(), expect)
            .map_err(|p| at(&path.join("y.npy"), Some(Array::Y), p))?;
        Ok(Dataset { inputs, targets })
    } else {
        let bytes = std::fs::read(path).map_err(|e| at(path, None, Problem::Io(e)))?;
        from_npz_with(&bytes, path, expect)
    }
}

fn from_npz_with(bytes: &[u8], file: &Path, expect: Expect<'_>) -> Result<Dataset, DataError> {
    let npz = Npz::parse(bytes).map_err(|p| at(file, None, p))?;
    let inputs = npz
        .array("x")
        .and_then(inputs_from)
        .and_then(|i| check_like(&i, expect).map(|()| i))
        .map_err(|p| at(file, Some(Array::X), p))?;
    let targets = npz
        .array("y")
        .and_then(|y| targets_from(y, inputs.samples(), expect))
        .map_err(|p| at(file, Some(Array::Y), p))?;
    Ok(Dataset { inputs, targets })
}

/// Splits `dataset` into (train, validation): `fraction` of the samples of each class (of all samples
/// for regression), rounded to the nearest count, go to validation, drawn from `seed`; both keep the
/// dataset's order and its number of classes. An empty part is an error.
pub fn split(dataset: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Dataset), DataError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(DataError::parameter(
            "data.validation_fraction",
            format!("{fraction} is not a fraction strictly between 0 and 1"),
        ));
    }
    let n = dataset.samples();
    let groups: Vec<Vec<usize>> = match &dataset.targets {
        Targets::Classes { labels, classes } => {
            // Sized by the labels too, so a dataset built by hand with a label beyond `classes`
            // cannot index out of bounds.
            let size = labels.iter().max().map_or(0, |m| m + 1).max(*classes);
            let mut groups = vec![Vec::new(); size];
            for (i, &l) in labels.iter().enumerate() {
                groups[l].push(i);
            }
            groups
        }
        Targets::Regression { .. } => vec![(0..n).collect()],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for mut group in groups {
        group.shuffle(&mut rng);
        let k = (fraction * group.len() as f64).round() as usize;
        validation.extend_from_slice(&group[..k]);
        train.extend_from_slice(&group[k..]);
    }
    for (part, name) in [(&train, "train"), (&validation, "validation")] {
        if part.is_empty() {
            return Err(DataError::new(Problem::EmptySplit {
                split: name,
                samples: n,
                fraction,
            }));
        }
    }
    train.sort_unstable();
    validation.sort_unstable();
    Ok((dataset.subset(&train), dataset.subset(&validation)))
}

#[cfg(test)]
mod tests {
    use super::super::npz::tests::{npy, npy_f64, write_npz};
    use super::*;
    use std::path::PathBuf;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data");

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES).join(name)
    }

    /// A fresh folder of this test process.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dynap-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn npz(x: Vec<u8>, y: Vec<u8>) -> Vec<u8> {
        write_npz(&[("x", x), ("y", y)], false)
    }

    fn load_bytes(bytes: &[u8], kind: TargetKind) -> Result<Dataset, DataError> {
        Dataset::from_npz(bytes, Path::new("d.npz"), kind)
    }

    /// The problem of a dataset that does not load, with the array it names.
    fn problem(bytes: &[u8], kind: TargetKind) -> (Option<Array>, Problem) {
        let e = load_bytes(bytes, kind).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(Path::new("d.npz")));
        (e.array, e.problem)
    }

    #[test]
    fn loads_numpy_files_of_every_layout() {
        for file in ["savez.npz", "savez_compressed.npz"] {
            let d = Dataset::load(&fixture(file), TargetKind::Classes).unwrap();
            let Inputs::Spikes(s) = &d.inputs else {
                panic!("spike counts expected")
            };
            assert_eq!((s.samples, s.steps, s.channels), (6, 5, 3));
            assert_eq!(s.sample(1)[..3], [1.0, 0.0, 3.0]);
            assert_eq!(d.classes(), Some(3));
        }
        let d = Dataset::load(&fixture("features_be.npz"), TargetKind::Classes).unwrap();
        assert_eq!(d.inputs.sample_shape(), vec![2]);
        assert_eq!(d.classes(), Some(2));
        let d = Dataset::load(&fixture("regression.npz"), TargetKind::Regression).unwrap();
        let Targets::Regression { dims, values } = &d.targets else {
            panic!("regression expected")
        };
        assert_eq!((*dims, &values[..4]), (2, &[0.0, -1.0, 0.5, -0.5][..]));
        // A folder of x.npy and y.npy; bool labels are classes 0 and 1.
        let d = Dataset::load(&fixture("pair"), TargetKind::Classes).unwrap();
        assert_eq!(d.samples(), 5);
        let Targets::Classes { labels, classes } = &d.targets else {
            panic!("classes expected")
        };
        assert_eq!((labels.as_slice(), *classes), (&[0, 1, 0, 1, 0][..], 2));
    }

    #[test]
    fn missing_arrays_name_what_is_there() {
        let x = npy_f64(&[2, 3], &[0.0; 6]);
        let bytes = write_npz(
            &[("x", x.clone()), ("labels", npy_f64(&[2], &[0.0, 1.0]))],
            true,
        );
        let (array, p) = problem(&bytes, TargetKind::Classes);
        assert_eq!(array, Some(Array::Y));
        assert!(matches!(&p, Problem::MissingArray { present } if present == &["x", "labels"]));
        let bytes = write_npz(&[("y", npy_f64(&[2], &[0.0, 1.0]))], true);
        assert_eq!(problem(&bytes, TargetKind::Classes).0, Some(Array::X));
        // A folder without y.npy.
        let dir = scratch("missing");
        std::fs::write(dir.join("x.npy"), &x).unwrap();
        let e = Dataset::load(&dir, TargetKind::Classes).unwrap_err();
        assert_eq!(e.file, Some(dir.join("y.npy")));
        assert!(matches!(&e.problem, Problem::MissingArray { present } if present == &["x"]));
        let text = e.to_string();
        assert!(
            text.contains("y.npy: array `y`: missing (the file holds x)"),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_that_do_not_read_name_the_file() {
        let e = Dataset::load(Path::new("/nonexistent/d.npz"), TargetKind::Classes).unwrap_err();
        assert!(matches!(e.problem, Problem::Io(_)));
        assert_eq!(e.file.as_deref(), Some(Path::new("/nonexistent/d.npz")));
        assert_eq!(e.array, None);
        let e = load_bytes(&npy_f64(&[1], &[0.0]), TargetKind::Classes).unwrap_err();
        assert!(matches!(e.problem, Problem::NotZip));
        // NPY members NumPy can write but we refuse: Fortran order, object arrays.
        let e = Dataset::load(&fixture("fortran.npz"), TargetKind::Classes).unwrap_err();
        assert_eq!(e.array, Some(Array::X));
        assert!(matches!(&e.problem, Problem::Npy { reason } if reason.contains("Fortran")));
        let e = Dataset::load(&fixture("object.npz"), TargetKind::Classes).unwrap_err();
        assert_eq!(e.array, Some(Array::Y));
        assert!(matches!(&e.problem, Problem::Npy { reason } if reason.contains("pickled")));
    }

    #[test]
    fn shapes_are_checked() {
        let y = npy_f64(&[2], &[0.0, 1.0]);
        for shape in [&[2][..], &[2, 1, 1, 1]] {
            let n = shape.iter().product::<usize>();
            let (a, p) = problem(
                &npz(npy_f64(shape, &vec![0.0; n]), y.clone()),
                TargetKind::Classes,
            );
            assert_eq!(a, Some(Array::X));
            assert!(matches!(p, Problem::WrongRank { .. }), "{p}");
        }
        let x = npy_f64(&[2, 3], &[0.0; 6]);
        let (a, p) = problem(
            &npz(x.clone(), npy_f64(&[2, 1], &[0.0, 1.0])),
            TargetKind::Classes,
        );
        assert_eq!(a, Some(Array::Y));
        assert!(matches!(p, Problem::WrongRank { .. }));
        let (_, p) = problem(
            &npz(x.clone(), npy_f64(&[2, 1, 1], &[0.0, 1.0])),
            TargetKind::Regression,
        );
        assert!(matches!(p, Problem::WrongRank { .. }));
        let (a, p) = problem(
            &npz(x.clone(), npy_f64(&[3], &[0.0; 3])),
            TargetKind::Classes,
        );
        assert_eq!(a, Some(Array::Y));
        assert!(matches!(p, Problem::SampleCount { x: 2, y: 3 }));
        // Empty axes: no samples, no features, no steps, no dims.
        let (_, p) = problem(
            &npz(npy_f64(&[0, 3], &[]), npy_f64(&[0], &[])),
            TargetKind::Classes,
        );
        assert!(matches!(p, Problem::Empty { axis: "samples" }));
        let (_, p) = problem(&npz(npy_f64(&[2, 0], &[]), y.clone()), TargetKind::Classes);
        assert!(matches!(p, Problem::Empty { axis: "features" }));
        let (_, p) = problem(
            &npz(npy_f64(&[2, 0, 4], &[]), y.clone()),
            TargetKind::Classes,
        );
        assert!(matches!(p, Problem::Empty { axis: "steps" }));
        let (_, p) = problem(&npz(x, npy_f64(&[2, 0], &[])), TargetKind::Regression);
        assert!(matches!(p, Problem::Empty { axis: "dims" }));
    }

    #[test]
    fn values_are_checked_with_the_index_of_the_first_bad_one() {
        let y = npy_f64(&[2], &[0.0, 1.0]);
        let mut v = vec![0.0; 6];
        v[4] = f64::NAN;
        v[5] = f64::INFINITY;
        let (a, p) = problem(&npz(npy_f64(&[2, 3], &v), y.clone()), TargetKind::Classes);
        assert_eq!(a, Some(Array::X));
        assert!(
            matches!(&p, Problem::NonFinite { index, .. } if index == &[1, 1]),
            "{p}"
        );
        let mut v = vec![0.0; 8];
        v[6] = -1.0;
        let (_, p) = problem(
            &npz(npy_f64(&[2, 2, 2], &v), y.clone()),
            TargetKind::Classes,
        );
        assert!(
            matches!(&p, Problem::NegativeCount { index, value } if index == &[1, 1, 0] && *value == -1.0)
        );
        // A float64 count beyond f32's range.
        let mut v = vec![0.0; 8];
        v[3] = 1e300;
        let (_, p) = problem(
            &npz(npy_f64(&[2, 2, 2], &v), y.clone()),
            TargetKind::Classes,
        );
        assert!(matches!(&p, Problem::NonFinite { index, .. } if index == &[0, 1, 1]));
        let x = npy_f64(&[3, 1], &[0.0; 3]);
        let labels = |l: &[f64]| npz(x.clone(), npy_f64(&[3], l));
        let (a, p) = problem(&labels(&[0.0, 1.5, 2.0]), TargetKind::Classes);
        assert_eq!(a, Some(Array::Y));
        assert!(matches!(p, Problem::LabelNotInteger { index: 1, value } if value == 1.5));
        let (_, p) = problem(&labels(&[0.0, 1.0, -1.0]), TargetKind::Classes);
        assert!(matches!(
            p,
            Problem::LabelOutOfRange {
                index: 2,
                classes: None,
                ..
            }
        ));
        let (_, p) = problem(&labels(&[0.0, 65536.0, 1.0]), TargetKind::Classes);
        assert!(matches!(
            p,
            Problem::LabelOutOfRange {
                index: 1,
                classes: None,
                ..
            }
        ));
        let (_, p) = problem(&labels(&[0.0, f64::NAN, 1.0]), TargetKind::Regression);
        assert!(matches!(&p, Problem::NonFinite { index, .. } if index == &[1]));
        // Integer labels in any integer dtype; the number of classes is the largest label + 1.
        let bytes = npz(x.clone(), npy("<u2", &[3], &[4, 0, 0, 0, 1, 0]));
        assert_eq!(
            load_bytes(&bytes, TargetKind::Classes).unwrap().classes(),
            Some(5)
        );
        // The message names the file, the array, the value and the sample.
        let text = load_bytes(&labels(&[0.0, 0.5, 1.0]), TargetKind::Classes)
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("d.npz: array `y`: label 0.5 of sample 1"),
            "{text}"
        );
    }

    #[test]
    fn validation_and_test_splits_are_checked_against_train() {
        let dir = scratch("like");
        let write = |name: &str, x: Vec<u8>, y: Vec<u8>| {
            let p = dir.join(name);
            std::fs::write(&p, npz(x, y)).unwrap();
            p
        };
        let train = write(
            "train.npz",
            npy_f64(&[3, 2], &[0.0; 6]),
            npy_f64(&[3], &[0.0, 3.0, 1.0]),
        );
        let train = Dataset::load(&train, TargetKind::Classes).unwrap();
        assert_eq!(train.classes(), Some(4));
        // Fewer classes present: the train split's number holds.
        let ok = write("ok.npz", npy_f64(&[1, 2], &[0.0; 2]), npy_f64(&[1], &[1.0]));
        assert_eq!(Dataset::load_like(&ok, &train).unwrap().classes(), Some(4));
        let bad = write("c.npz", npy_f64(&[1, 2], &[0.0; 2]), npy_f64(&[1], &[4.0]));
        let e = Dataset::load_like(&bad, &train).unwrap_err();
        assert!(matches!(
            e.problem,
            Problem::LabelOutOfRange {
                classes: Some(4),
                ..
            }
        ));
        assert!(
            e.to_string().contains("train split's 4 classes (0 to 3)"),
            "{e}"
        );
        let bad = write("f.npz", npy_f64(&[1, 3], &[0.0; 3]), npy_f64(&[1], &[1.0]));
        let e = Dataset::load_like(&bad, &train).unwrap_err();
        assert_eq!(e.array, Some(Array::X));
        assert!(
            matches!(&e.problem, Problem::Shape { train, here } if train == &[2] && here == &[3])
        );
        let bad = write(
            "s.npz",
            npy_f64(&[1, 1, 2], &[0.0; 2]),
            npy_f64(&[1], &[1.0]),
        );
        assert!(matches!(
            Dataset::load_like(&bad, &train).unwrap_err().problem,
            Problem::Shape { .. }
        ));
        let reg = write(
            "r.npz",
            npy_f64(&[2, 2], &[0.0; 4]),
            npy_f64(&[2, 3], &[0.0; 6]),
        );
        let reg = Dataset::load(&reg, TargetKind::Regression).unwrap();
        let bad = write(
            "rd.npz",
            npy_f64(&[1, 2], &[0.0; 2]),
            npy_f64(&[1, 2], &[0.0; 2]),
        );
        let e = Dataset::load_like(&bad, &reg).unwrap_err();
        assert_eq!(e.array, Some(Array::Y));
        assert!(
            matches!(&e.problem, Problem::Shape { train, here } if train == &[3] && here == &[2])
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn labelled(labels: Vec<usize>, classes: usize) -> Dataset {
        let n = labels.len();
        Dataset {
            inputs: Inputs::Features(Features {
                samples: n,
                features: 1,
                data: (0..n).map(|i| i as f64).collect(),
            }),
            targets: Targets::Classes { labels, classes },
        }
    }

    #[test]
    fn split_is_stratified_seeded_and_ordered() {
        let labels: Vec<usize> = (0..100).map(|i| usize::from(i % 10 == 0)).collect();
        let d = labelled(labels, 2);
        let (train, validation) = split(&d, 0.2, 3).unwrap();
        assert_eq!((train.samples(), validation.samples()), (80, 20));
        let count = |d: &Dataset, class| match &d.targets {
            Targets::Classes { labels, .. } => labels.iter().filter(|&&l| l == class).count(),
            Targets::Regression { .. } => 0,
        };
        // 20 % of each class: 18 of 90 and 2 of 10.
        assert_eq!((count(&validation, 0), count(&validation, 1)), (18, 2));
        assert_eq!(validation.classes(), Some(2));
        let Inputs::Features(f) = &train.inputs else {
            panic!()
        };
        assert!(
            f.data.windows(2).all(|w| w[0] < w[1]),
            "original order kept"
        );
        assert_eq!(
            split(&d, 0.2, 3).unwrap(),
            (train.clone(), validation.clone())
        );
        assert_ne!(split(&d, 0.2, 4).unwrap().1, validation);
        // Regression: a fraction of all samples.
        let r = Dataset {
            inputs: d.inputs.clone(),
            targets: Targets::Regression {
                dims: 1,
                values: vec![0.5; 100],
            },
        };
        assert_eq!(split(&r, 0.25, 0).unwrap().1.samples(), 25);
        // An empty part or a fraction outside (0, 1) is an error.
        let e = split(&labelled(vec![0, 1, 2], 3), 0.1, 0).unwrap_err();
        assert!(matches!(
            e.problem,
            Problem::EmptySplit {
                split: "validation",
                samples: 3,
                ..
            }
        ));
        for f in [0.0, 1.0, f64::NAN, -0.5] {
            let e = split(&d, f, 0).unwrap_err();
            assert!(matches!(
                e.problem,
                Problem::Parameter {
                    key: "data.validation_fraction",
                    ..
                }
            ));
        }
    }

    proptest::proptest! {
        /// Corrupted dataset archives give a dataset or an error, never a panic.
        #[test]
        fn corrupted_datasets_never_panic(
            edits in proptest::collection::vec((0usize..600, proptest::num::u8::ANY), 0..6),
            deflate in proptest::bool::ANY,
        ) {
            let x = npy("|u1", &[2, 2, 3], &[0, 1, 2, 0, 1, 2, 3, 0, 0, 1, 1, 1]);
            let mut f = write_npz(&[("x", x), ("y", npy("<i8", &[2], &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))], deflate);
            for (i, b) in edits {
                let n = f.len();
                f[i % n] = b;
            }
            let _ = load_bytes(&f, TargetKind::Classes);
            let _ = load_bytes(&f, TargetKind::Regression);
        }
    }
}
