//! The crate's error type.

use dynap_model::Param;
use std::fmt;

/// What can be wrong with a layer's set-up or input.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The network, its input or its parameters (see `dynap_model::Error`).
    Model(dynap_model::Error),
    /// A trained parameter is not one of the 13 bias currents.
    NotACurrent {
        /// The parameter.
        param: Param,
    },
    /// A per-core sharing map does not give every neuron a core.
    CoreMap {
        /// Neurons in the network.
        neurons: usize,
        /// Entries in the map.
        found: usize,
    },
    /// A chip instance to simulate on (`Trainer::simulate_on`) of another size than the network.
    ChipSize {
        /// Neurons in the network.
        neurons: usize,
        /// Neurons in the chip instance.
        found: usize,
    },
    /// A loss's target does not fit the layer's output.
    Target(crate::loss::TargetShape),
    /// Weight noise factors of another size than their matrix.
    Factors {
        /// `w_in` or `w_rec`.
        matrix: &'static str,
        /// Entries of the matrix.
        expected: usize,
        /// Factors given.
        found: usize,
    },
    /// Weight masks of another size than their matrix.
    Masks {
        /// `w_in`, `w_rec` or `log_currents`.
        matrix: &'static str,
        /// Entries of the matrix.
        expected: usize,
        /// Flags given.
        found: usize,
    },
    /// A value the masks hold at zero is not zero: a weight outside the allowed blocks, or Adam's
    /// moment of one (in the network given, or in a state restored).
    Masked {
        /// The matrix, or the moment and its matrix (`w_rec`, `Adam's first moment of w_in`).
        what: &'static str,
        /// Row (input channel or presynaptic neuron).
        pre: usize,
        /// Column (postsynaptic neuron).
        post: usize,
        /// The value found.
        value: f64,
    },
    /// A saved training state of another network (sizes differ).
    State {
        /// What differs (`w_in`, `w_rec`, `log_currents`, Adam's moments).
        what: &'static str,
        /// Values this network has.
        expected: usize,
        /// Values in the state.
        found: usize,
    },
}

impl From<crate::loss::TargetShape> for Error {
    fn from(e: crate::loss::TargetShape) -> Self {
        Error::Target(e)
    }
}

impl From<dynap_model::Error> for Error {
    fn from(e: dynap_model::Error) -> Self {
        Error::Model(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Model(e) => e.fmt(f),
            Error::NotACurrent { param } => {
                write!(
                    f,
                    "{} is not one of the 13 bias currents, so it cannot be trained",
                    param.rockpool_name()
                )
            }
            Error::CoreMap { neurons, found } => {
                write!(
                    f,
                    "the core map has {found} entries, the network has {neurons} neurons"
                )
            }
            Error::Target(e) => e.fmt(f),
            Error::Factors {
                matrix,
                expected,
                found,
            } => write!(
                f,
                "{found} noise factors for `{matrix}`, which has {expected} entries"
            ),
            Error::Masks {
                matrix,
                expected,
                found,
            } => write!(
                f,
                "{found} mask flags for `{matrix}`, which has {expected} entries"
            ),
            Error::Masked {
                what,
                pre,
                post,
                value,
            } => write!(
                f,
                "{what}[{pre}][{post}] is {value}, but the network's architecture allows no connection there (it must be 0)"
            ),
            Error::ChipSize { neurons, found } => write!(
                f,
                "a chip instance of {found} neurons for a network of {neurons}: an instance is the network with other parameters"
            ),
            Error::State {
                what,
                expected,
                found,
            } => write!(
                f,
                "the saved state has {found} values of {what}, this network {expected}: it belongs to another network"
            ),
        }
    }
}

impl std::error::Error for Error {}
