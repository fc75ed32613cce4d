//! The crate's error type: what is wrong with the weights or options handed to the quantizer.

use std::fmt;

/// Everything that can be wrong with a quantization request.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// A weight matrix, `Iscale` or the quantized result is invalid (shape, NaN, ...).
    Model(dynap_model::Error),
    /// There are no neurons (no `core_map` entry).
    NoNeurons,
    /// `core_map` does not have one entry per neuron.
    CoreMapLength {
        /// Number of neurons (columns of the weight matrices).
        neurons: usize,
        /// Entries in `core_map`.
        found: usize,
    },
    /// A given autoencoder initialisation does not fit its core.
    AutoencoderInit {
        /// The core.
        core: usize,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Model(e) => e.fmt(f),
            Error::NoNeurons => {
                write!(f, "there is nothing to quantize: the network has no neuron")
            }
            Error::CoreMapLength { neurons, found } => write!(
                f,
                "core_map has {found} entries, but the weights have {neurons} neurons (columns)"
            ),
            Error::AutoencoderInit { core, problem } => {
                write!(f, "autoencoder initialisation of core {core}: {problem}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<dynap_model::Error> for Error {
    fn from(e: dynap_model::Error) -> Error {
        Error::Model(e)
    }
}
