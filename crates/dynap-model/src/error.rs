//! The crate's one error type: every way a network, an input, a bias table or an NPY file can be wrong,
//! each naming what and where.

use crate::architecture::ArchitectureError;
use crate::param::Param;
use std::fmt;

/// Which weight matrix a weight error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightMatrix {
    /// The input weights `w_in` `[Nin, N]`.
    Input,
    /// The recurrent weights `w_rec` `[N, N]`.
    Recurrent,
}

impl fmt::Display for WeightMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightMatrix::Input => "w_in",
            WeightMatrix::Recurrent => "w_rec",
        })
    }
}

/// Everything that can be wrong with what a user hands to this crate.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// A parameter vector does not have one entry per neuron.
    ParamLength {
        /// The parameter.
        param: Param,
        /// Number of neurons.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// An entry of a quantized weight matrix is out of range.
    QuantEntry {
        /// The matrix.
        matrix: WeightMatrix,
        /// Row (pre-synaptic index).
        pre: usize,
        /// Column (post-synaptic neuron).
        post: usize,
        /// What is wrong.
        problem: String,
    },
    /// A neuron is assigned to a core that has no base weight currents.
    CoreMap {
        /// The neuron.
        neuron: usize,
        /// Its core.
        core: usize,
        /// Number of cores with base currents.
        cores: usize,
    },
    /// A base weight current is negative or not finite.
    BaseCurrent {
        /// The core.
        core: usize,
        /// Which of `Iw_0..Iw_3`.
        index: usize,
        /// The value (A).
        value: f64,
    },
    /// Quantized weights and a network disagree on whether there are input weights.
    QuantInputPresence {
        /// Whether the network has `w_in`.
        network_has_w_in: bool,
    },
    /// A parameter is NaN or infinite.
    NonFinite {
        /// The parameter.
        param: Param,
        /// The neuron index.
        neuron: usize,
        /// The value found.
        value: f64,
    },
    /// A parameter is outside the range where the equations are defined.
    OutOfRange {
        /// The parameter.
        param: Param,
        /// The neuron index.
        neuron: usize,
        /// The value found.
        value: f64,
        /// What it must be ("non-negative", "strictly positive").
        must_be: &'static str,
    },
    /// A derived quantity is undefined (for example a pulse width 0/0 from a zero current and a zero
    /// capacitance).
    Degenerate {
        /// The neuron index.
        neuron: usize,
        /// The derived quantity and the parameters it comes from.
        quantity: &'static str,
    },
    /// A per-dendrite parameter of the `chip` variant is not finite or out of its range.
    DendriteParam {
        /// The dendrite (`nmda`, `gaba`, `shunt`).
        dendrite: &'static str,
        /// The parameter (`Itau`, `Igain`, `C`).
        param: &'static str,
        /// The neuron index.
        neuron: usize,
        /// The value found.
        value: f64,
    },
    /// A per-connection synapse-type table does not have one entry per weight.
    SynapseTypes {
        /// The matrix it belongs to.
        matrix: WeightMatrix,
        /// Entries expected (the matrix's size).
        expected: usize,
        /// Entries found.
        found: usize,
    },
    /// A network of one model variant was given to the simulator of another.
    WrongVariant {
        /// The variant the simulator runs.
        simulator: &'static str,
        /// The network's variant.
        network: &'static str,
    },
    /// The time step is not finite and strictly positive.
    TimeStep {
        /// The value found (s).
        value: f64,
    },
    /// The weight scale `Iscale` is not finite and strictly positive.
    Iscale {
        /// The value found (A).
        value: f64,
    },
    /// A weight matrix has the wrong shape.
    WeightShape {
        /// Which matrix.
        matrix: WeightMatrix,
        /// Expected `(rows, cols)`.
        expected: (usize, usize),
        /// Found `(rows, cols)`.
        found: (usize, usize),
    },
    /// A gradient mask does not have one flag per recurrent weight.
    GradientMask {
        /// Number of neurons (the mask needs `neurons * neurons` flags).
        neurons: usize,
        /// Number of flags found.
        found: usize,
    },
    /// A weight matrix's data length does not match its declared shape.
    WeightData {
        /// Which matrix.
        matrix: WeightMatrix,
        /// `rows * cols`.
        expected: usize,
        /// Length of the data.
        found: usize,
    },
    /// A weight is NaN or infinite.
    NonFiniteWeight {
        /// Which matrix.
        matrix: WeightMatrix,
        /// Row (presynaptic index or input channel).
        pre: usize,
        /// Column (postsynaptic neuron).
        post: usize,
        /// The value found.
        value: f64,
    },
    /// The input array does not hold `batch * steps * channels` values, where `channels` is what the
    /// network takes per step (N for weighted input, Nin for input spikes).
    InputShape {
        /// Declared batch size.
        batch: usize,
        /// Declared time steps.
        steps: usize,
        /// Channels the network takes per step.
        channels: usize,
        /// Length of the data.
        found_len: usize,
    },
    /// A reverse pass was asked for an input whose batch or length differs from the recorded run's.
    TapeMismatch {
        /// The recorded run's batch size.
        tape_batch: usize,
        /// The recorded run's steps.
        tape_steps: usize,
        /// The given input's batch size.
        batch: usize,
        /// The given input's steps.
        steps: usize,
    },
    /// Input spikes were given but the network has no input weight matrix.
    NoInputWeights,
    /// An input value is NaN or infinite.
    NonFiniteInput {
        /// Batch index.
        batch: usize,
        /// Time step.
        step: usize,
        /// Channel.
        channel: usize,
    },
    /// An initial state of one model variant was given to the simulator of another.
    StateVariant {
        /// The variant the simulator runs.
        simulator: &'static str,
        /// The state's variant.
        state: &'static str,
    },
    /// An initial state does not have `[batch, neurons]` entries.
    StateShape {
        /// Expected batch size.
        batch: usize,
        /// Expected neurons.
        neurons: usize,
        /// The state's batch size.
        found_batch: usize,
        /// The state's neuron count.
        found_neurons: usize,
    },
    /// A line of a bias-generator table (CSV) is malformed.
    BiasTable {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A bias name is not in the table of known biases.
    UnknownBias {
        /// The name.
        name: String,
    },
    /// A name is not one of those a context accepts.
    UnknownName {
        /// The name.
        name: String,
        /// Where it was looked up ("a core specification", "the gain ratios").
        context: &'static str,
    },
    /// An NPY file is malformed or holds something other than a float array of the expected shape.
    Npy {
        /// What is wrong with it.
        problem: String,
    },
    /// A network description (populations and connections) is inconsistent.
    Architecture(ArchitectureError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ParamLength {
                param,
                expected,
                found,
            } => write!(
                f,
                "parameter {} has {found} values, expected one per neuron ({expected})",
                param.rockpool_name()
            ),
            Error::QuantEntry {
                matrix,
                pre,
                post,
                problem,
            } => write!(f, "{matrix}[{pre}][{post}]: {problem}"),
            Error::CoreMap {
                neuron,
                core,
                cores,
            } => write!(
                f,
                "neuron {neuron} is on core {core}, but base weight currents are given for {cores} cores only"
            ),
            Error::BaseCurrent { core, index, value } => write!(
                f,
                "base weight current Iw_{index} of core {core} is {value:e} A; it must be finite and >= 0"
            ),
            Error::QuantInputPresence { network_has_w_in } => write!(
                f,
                "{}",
                if *network_has_w_in {
                    "the network has input weights but the quantized weights have none"
                } else {
                    "the quantized weights have input weights but the network has none"
                }
            ),
            Error::NonFinite {
                param,
                neuron,
                value,
            } => write!(
                f,
                "parameter {} of neuron {neuron} is {value}; it must be finite",
                param.rockpool_name()
            ),
            Error::OutOfRange {
                param,
                neuron,
                value,
                must_be,
            } => write!(
                f,
                "parameter {} of neuron {neuron} is {value:e} {}; it must be {must_be}",
                param.rockpool_name(),
                param.quantity().unit()
            ),
            Error::Degenerate { neuron, quantity } => {
                write!(f, "neuron {neuron}: {quantity} is undefined")
            }
            Error::DendriteParam {
                dendrite,
                param,
                neuron,
                value,
            } => write!(
                f,
                "{param}_{dendrite} of neuron {neuron} is {value:e}; it must be finite and {}",
                if *param == "C" { "> 0" } else { ">= 0" }
            ),
            Error::SynapseTypes {
                matrix,
                expected,
                found,
            } => write!(
                f,
                "the synapse types of {matrix} have {found} entries, expected one per weight ({expected})"
            ),
            Error::WrongVariant { simulator, network } => write!(
                f,
                "this network is of the `{network}` model variant; the `{simulator}` simulator cannot run it"
            ),
            Error::TimeStep { value } => {
                write!(f, "time step dt = {value} s; it must be finite and > 0")
            }
            Error::Iscale { value } => {
                write!(
                    f,
                    "weight scale Iscale = {value} A; it must be finite and > 0"
                )
            }
            Error::GradientMask { neurons, found } => write!(
                f,
                "the gradient mask has {found} flags; w_rec of {neurons} neurons needs {} (one per weight, row-major)",
                neurons * neurons
            ),
            Error::WeightShape {
                matrix,
                expected,
                found,
            } => write!(
                f,
                "{matrix} is {}x{}, expected {}x{}",
                found.0, found.1, expected.0, expected.1
            ),
            Error::WeightData {
                matrix,
                expected,
                found,
            } => write!(
                f,
                "{matrix} holds {found} values but its shape says {expected}"
            ),
            Error::NonFiniteWeight {
                matrix,
                pre,
                post,
                value,
            } => {
                write!(
                    f,
                    "{matrix}[{pre}][{post}] is {value}; weights must be finite"
                )
            }
            Error::InputShape {
                batch,
                steps,
                channels,
                found_len,
            } => write!(
                f,
                "input holds {found_len} values, but [batch {batch}, steps {steps}, channels {channels}] needs {}",
                batch * steps * channels
            ),
            Error::TapeMismatch {
                tape_batch,
                tape_steps,
                batch,
                steps,
            } => write!(
                f,
                "the tape records batch {tape_batch} x {tape_steps} steps, the input is batch {batch} x {steps} steps"
            ),
            Error::NoInputWeights => write!(
                f,
                "input spikes were given but the network has no input weights (w_in); give weighted input [B, T, N] instead"
            ),
            Error::NonFiniteInput {
                batch,
                step,
                channel,
            } => write!(
                f,
                "input at batch {batch}, step {step}, channel {channel} is not finite"
            ),
            Error::StateVariant { simulator, state } => write!(
                f,
                "initial state is of the `{state}` model variant; the `{simulator}` simulator cannot continue from it"
            ),
            Error::StateShape {
                batch,
                neurons,
                found_batch,
                found_neurons,
            } => write!(
                f,
                "initial state is for batch {found_batch} x {found_neurons} neurons, the run needs batch {batch} x {neurons} neurons"
            ),
            Error::BiasTable { line, problem } => write!(f, "bias table, line {line}: {problem}"),
            Error::UnknownBias { name } => write!(f, "unknown bias name {name:?}"),
            Error::UnknownName { name, context } => write!(f, "{name:?} is not one of {context}"),
            Error::Npy { problem } => write!(f, "NPY file: {problem}"),
            Error::Architecture(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}
