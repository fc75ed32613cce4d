//! The crate's error: what failed, with the file or the key it is about. The `dynap` program prints it
//! and exits 1.

use std::fmt;
use std::path::PathBuf;

/// What can go wrong in an orchestrated flow.
#[derive(Debug)]
pub enum Error {
    /// A file or folder could not be read, written or created.
    Io {
        /// The file.
        path: PathBuf,
        /// `read`, `write` or `create`.
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A network, quantize, mapping or tag file's content (the JSON path is in the error).
    Format {
        /// The file.
        path: PathBuf,
        /// What and where.
        error: dynap_config::format::FormatError,
    },
    /// A chip configuration file (samna JSON or binary) that does not read: every problem.
    Configuration {
        /// The file.
        path: PathBuf,
        /// Each problem with its place.
        problems: Vec<String>,
    },
    /// The experiment configuration (a key of the TOML file).
    Config {
        /// The file, if the configuration came from one.
        path: Option<PathBuf>,
        /// The key and the problem.
        error: crate::config::ConfigError,
    },
    /// A training checkpoint that cannot be resumed from.
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        error: crate::checkpoint::CheckpointError,
    },
    /// A network or input the model refuses.
    Model(dynap_model::Error),
    /// The training layer refused its set-up.
    Training(dynap_autodiff::Error),
    /// Quantization failed.
    Quantization(dynap_quant::Error),
    /// The network does not map onto the chip (every problem).
    Map(dynap_config::MapError),
    /// The device failed.
    Device {
        /// The device's description.
        device: String,
        /// What happened.
        error: dynap_hw::HwError,
    },
    /// A dataset that does not load (the file, the array and the problem).
    Data(crate::data::DataError),
    /// A network that cannot be mapped onto the chip, found before training: every problem, with its
    /// population.
    Unmappable(dynap_config::UnmappableArchitecture),
    /// The parts of a flow do not fit each other (a network and its task's stimuli, a run folder
    /// without what a command needs): what and how to fix it.
    Mismatch(String),
    /// A NIR file that cannot be read, written or translated (the file, the node and the problem).
    Nir {
        /// The file.
        path: PathBuf,
        /// The problem.
        error: dynap_config::nir::NirError,
    },
    /// A bias-generator table (CSV) that does not read: the file, the line and the problem.
    BiasTable {
        /// The file.
        path: PathBuf,
        /// The problem.
        error: dynap_model::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Format { path, error } => write!(f, "{}: {error}", path.display()),
            Error::Configuration { path, problems } => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{}: {p}", path.display())?;
                }
                Ok(())
            }
            Error::Config { path, error } => match path {
                Some(p) => write!(f, "{}: {error}", p.display()),
                None => write!(f, "{error}"),
            },
            Error::Checkpoint { path, error } => write!(
                f,
                "checkpoint {}: {error} (remove it, or train without --resume)",
                path.display()
            ),
            Error::Model(e) => write!(f, "{e}"),
            Error::Training(e) => write!(f, "{e}"),
            Error::Quantization(e) => write!(f, "quantization: {e}"),
            Error::Map(e) => write!(f, "mapping: {e}"),
            Error::Device { device, error } => write!(f, "{device}: {error}"),
            Error::Data(e) => write!(f, "{e}"),
            Error::Unmappable(e) => write!(f, "{e}"),
            Error::Mismatch(what) => write!(f, "{what}"),
            Error::Nir { path, error } => write!(f, "{}: {error}", path.display()),
            Error::BiasTable { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

impl From<dynap_model::Error> for Error {
    fn from(e: dynap_model::Error) -> Error {
        Error::Model(e)
    }
}

impl From<dynap_autodiff::Error> for Error {
    fn from(e: dynap_autodiff::Error) -> Error {
        Error::Training(e)
    }
}

impl From<dynap_quant::Error> for Error {
    fn from(e: dynap_quant::Error) -> Error {
        Error::Quantization(e)
    }
}

impl From<dynap_config::MapError> for Error {
    fn from(e: dynap_config::MapError) -> Error {
        Error::Map(e)
    }
}
