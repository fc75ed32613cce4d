//! The `rockpool` model variant: Rockpool 3.1.0's DynapSim, its forward pass and its reverse pass.

mod forward;
mod reverse;

pub use forward::{Simulator, SpikeFunction, State, StateTraces, Trace};
pub use reverse::{Gradients, OutputGradients, Tape};
