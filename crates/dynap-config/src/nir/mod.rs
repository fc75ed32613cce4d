//! NIR, the Neuromorphic Intermediate Representation (Pedersen et al. 2024): read and write `.nir`
//! files (HDF5, as the official `nir` package 1.0.x writes them), bring a LIF network trained in
//! any NIR-exporting tool to DynapSim, and send a DynapSim network out as NIR.
//!
//! ```
//! use dynap_config::format::{NetworkFile, write_network};
//! use dynap_config::nir::{ImportOptions, export, import, read_nir, write_nir};
//! use dynap_model::{Matrix, Network, Variant};
//!
//! // A DynapSim network out to NIR bytes and back: exact, through the nodes' metadata.
//! let mut net = Network::with_defaults(3);
//! net.variant = Variant::Chip;
//! net.w_in = Matrix::from_vec(2, 3, vec![0.5, -1.0, 0.0, 2.0, 0.25, 1.5]);
//! let file = NetworkFile::new(net);
//! let bytes = write_nir(&export(&file)?)?;
//! let back = import(&read_nir(&bytes)?, &ImportOptions::default())?;
//! assert_eq!(write_network(&back.file), write_network(&file));
//! # Ok::<(), dynap_config::nir::NirError>(())
//! ```
//!
//! # The model
//!
//! A NIR graph is nodes and edges. Import understands `Input`, `Output`, `Linear`, `Affine` (with a
//! zero bias), `Scale`, `Flatten`, and the neuron nodes `LIF`, `CubaLIF`, `IF`, `LI` and `Threshold`, in layers
//! and with recurrent edges (cycles), nested graphs included ([`NirGraph::flattened`]). Every neuron node becomes one population of DynapSim neurons;
//! every path from the input or a neuron node through `Linear`, `Affine`, `Scale` and `Flatten` nodes to a
//! neuron node becomes one block of weights (the product of the matrices on the path); the neuron node
//! before `Output` is the readout. [`LifNetwork`] is that reading of the graph, and
//! [`LifNetwork::simulate`] runs it with NIR's equations (the reference the imported network is
//! measured against).
//!
//! # Reference semantics (discretised with the step `dt`)
//!
//! At step `t`, a population's weighted input is `x_t = sum over blocks of W^T s`, with `s` the input
//! raster's step `t` for a block from the input and the source population's spikes of step `t - 1` for
//! a block from a population: every edge that leaves a neuron node takes one step, as on the chip and in
//! DynapSim. Spikes are impulses of area 1. Then, per neuron:
//!
//! * `CubaLIF`: `I <- I - (dt / tau_syn) I + (w_in / tau_syn) x_t`, then
//!   `v <- v + (dt / tau_mem) (v_leak - v + r I)`;
//! * `LIF`: `v <- v + (dt / tau) (v_leak - v) + (r / tau) x_t`;
//! * `IF`: `v <- v + r x_t`;
//! * `LI`: as `LIF`, without spikes (its output is `v`; only a readout);
//! * then, but for `LI`: a spike when `v > v_threshold`, and `v <- v_reset` where it spiked;
//! * `Threshold`: a spike when `x_t > threshold` (no state).
//!
//! `I` starts at 0 and `v` at `v_leak`.
//!
//! # Translation to DynapSim (import)
//!
//! Time constants are shared per population, as the chip shares its biases per core: a node whose
//! neurons differ in one is an error naming the node and the parameter (or, with
//! [`ImportOptions::average`], takes their mean). `r`, `w_in` and the threshold may differ: each
//! neuron's gain is carried by the weights into it. Per population:
//!
//! * **Time constants, exactly.** `Itau_mem = (U_T / kappa) C_mem / tau_mem` (the DPI's time
//!   constant, Rockpool's translation) and `Itau_syn` alike from `tau_syn` on `C_syn`; a node without a
//!   synapse (`LIF`, `IF`, `LI`, `Threshold`) gets the shortest synapse the step resolves,
//!   `tau_syn = dt`; `IF` (no leak) gets `tau_mem = 0.1 s`, and `Threshold` (no memory)
//!   `tau_mem = dt`. Gains as Rockpool's LIF conversion has them: `Igain_mem = 4 Itau_mem`,
//!   `Igain_syn = 100 Itau_syn`.
//! * **Inhibition** (the `chip` variant; `rockpool` floors negative drive away): a negative weight
//!   drives the GABA dendrite, which subtracts from the input current. A LIF membrane pushed below rest
//!   comes back with `tau_mem`, so the GABA dendrite takes the membrane's time constant (`Itau_gaba`
//!   from `tau_mem` on `C_syn`) and the synapse's gain ratio times a fitted factor (below).
//! * **The leak counted once.** The DPI subtracts its leak from the input (twice in the `rockpool`
//!   variant); `Idc = Itau_mem` (`2 Itau_mem` for `rockpool`) gives it back, so that the membrane's
//!   target is proportional to the synaptic current as the LIF's is to `r I`.
//! * **Threshold** `Ispkthr = 1 nA`. The DPI's spike comes from its positive feedback, which takes over
//!   far below `Ispkthr`; what sets the LIF's threshold in DPI terms is the weight scale below.
//! * **Weights and thresholds: one scale per population, fitted.** The LIF's response depends on its
//!   weights only through `g w` with `g = r w_in / (v_threshold - v_reset)` (`r / (v_threshold -
//!   v_reset)` for `LIF` and `IF`, `1 / threshold` for `Threshold`), per neuron. The DynapSim weight
//!   into neuron `j` is `w_dpi = s g_j w` (in `Iscale`). The scale `s` is chosen so that the DPI neuron's spike counts match the LIF
//!   neuron's over the input range: both are driven by regular trains of period 1, 2, 4 and 8 steps and
//!   by bursts of 1 to 4 consecutive input spikes, at weights from half to eight times what the LIF needs
//!   to fire, and `s` minimises the sum of squared count differences (a search over `log s`). Then the
//!   GABA gain factor is chosen alike on stimuli that mix excitation with inhibition (inhibitory trains
//!   of a quarter to all of the excitatory drive; an inhibitory burst 0 to 20 steps before an excitatory
//!   one). See [`fit_scale`]; [`ImportReport`] gives each population's `s`, inhibition factor and
//!   residual.
//!
//! What the chip cannot express is an error that names the node, never dropped: a non-zero bias, a leak
//! toward a level other than the reset (`v_leak != v_reset`: a negative leak, or a constant drive), more
//! than [`MAX_FAN_IN`] synapses into a neuron, an `LI` that feeds another node, and any other node
//! type. Inhibition is subtractive and floored at zero input current (the DPI cannot go
//! below rest), and the `rockpool` variant floors negative drive away altogether ([`ImportReport`] warns).
//!
//! # Export
//!
//! A DynapSim network becomes `Input`, one `Linear` per block of weights (the recurrent block of a
//! population as a cycle), one `CubaLIF` per population and `Output` after the readout. The `CubaLIF`
//! parameters approximate the DPI neuron (its time constants exactly, `r = w_in = 1`,
//! `v_threshold = 1`, `v_leak = v_reset = 0`) and the `Linear` weights are `w_dpi / s`, with the scale
//! the import would fit. The exact DynapSim values travel in the metadata: every current and layout
//! value per neuron, the variant, `Iscale` and `dt` on each population's node, the exact weights and
//! synapse types on each `Linear`. Import reads them back when every node has them, so export then
//! import gives the network back bit for bit (the synapse types of connections outside every block,
//! whose weights are zero and mean nothing, are not kept). Without the metadata, other tools see
//! the closest LIF network and import translates it back as any LIF graph.

mod graph;
mod hdf5;
mod import;
mod lif;

pub use graph::{NirGraph, NirNode, Numbers};
pub use import::{
    Fit, ImportOptions, ImportReport, Imported, PopulationReport, export, fit_scale, import,
};
pub use lif::{LifBlock, LifKind, LifNetwork, LifPopulation, LifSource};

use std::collections::BTreeMap;
use std::fmt;

/// The most synapses a DYNAP-SE2 neuron has (its CAM entries).
pub const MAX_FAN_IN: usize = 64;

/// The version of the `nir` package whose layout files are written in.
pub const NIR_VERSION: &str = "1.0.8";

/// A group of an HDF5 file: its members by name.
pub type Tree = BTreeMap<String, Value>;

/// A dataset or a group of a NIR file.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A group.
    Group(Tree),
    /// A scalar string.
    Text(String),
    /// An array of strings, row-major.
    Texts {
        /// Its shape.
        shape: Vec<usize>,
        /// Its strings.
        texts: Vec<String>,
    },
    /// Floating-point numbers, row-major (`single`: stored as 32-bit).
    Floats {
        /// Its shape (`[]` for a scalar).
        shape: Vec<usize>,
        /// Its values.
        data: Vec<f64>,
        /// Whether the file holds them as `float32`.
        single: bool,
    },
    /// Integers, row-major.
    Ints {
        /// Its shape (`[]` for a scalar).
        shape: Vec<usize>,
        /// Its values.
        data: Vec<i64>,
    },
    /// A dataset of a type NIR does not use (its type's name); not written back.
    Unsupported(String),
}

impl Value {
    /// A `float64` array.
    pub fn floats(shape: Vec<usize>, data: Vec<f64>) -> Value {
        Value::Floats {
            shape,
            data,
            single: false,
        }
    }

    /// A `float64` scalar.
    pub fn scalar(x: f64) -> Value {
        Value::floats(Vec::new(), vec![x])
    }

    /// The shape and the values as `f64`, of a number array or scalar.
    pub fn numbers(&self) -> Option<(Vec<usize>, Vec<f64>)> {
        match self {
            Value::Floats { shape, data, .. } => Some((shape.clone(), data.clone())),
            Value::Ints { shape, data } => {
                Some((shape.clone(), data.iter().map(|&x| x as f64).collect()))
            }
            _ => None,
        }
    }
}

/// What went wrong with a NIR file or graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NirErrorKind {
    /// The bytes are not an HDF5 file in NIR's layout.
    File,
    /// The graph is malformed (a missing key, shapes that disagree, a dangling edge).
    Graph,
    /// The graph is well formed but holds what DYNAP-SE2 cannot run.
    Unsupported,
}

/// An error of NIR reading, writing or translation: what, and where (the node when there is one).
#[derive(Clone, Debug, PartialEq)]
pub struct NirError {
    /// Its kind.
    pub kind: NirErrorKind,
    /// The node it is about.
    pub node: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl NirError {
    pub(crate) fn file(message: impl Into<String>) -> NirError {
        NirError {
            kind: NirErrorKind::File,
            node: None,
            message: message.into(),
        }
    }

    pub(crate) fn graph(node: Option<&str>, message: impl Into<String>) -> NirError {
        NirError {
            kind: NirErrorKind::Graph,
            node: node.map(str::to_string),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(node: &str, message: impl Into<String>) -> NirError {
        NirError {
            kind: NirErrorKind::Unsupported,
            node: Some(node.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for NirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node '{node}': {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for NirError {}

/// Reads a `.nir` file's bytes (HDF5) into a graph.
pub fn read_nir(bytes: &[u8]) -> Result<NirGraph, NirError> {
    let tree = hdf5::read_tree(bytes)?;
    NirGraph::from_file_tree(&tree)
}

/// Writes a graph as a `.nir` file's bytes, in the layout the `nir` package writes and reads.
pub fn write_nir(graph: &NirGraph) -> Result<Vec<u8>, NirError> {
    hdf5::write_tree(&graph.to_file_tree())
}

#[cfg(test)]
mod tests;
