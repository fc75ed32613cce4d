//! # dynap-model: the circuit equations of DYNAP-SE2
//!
//! Simulate one DC-driven neuron for half a second, with its membrane current recorded:
//!
//! ```
//! use dynap_model::{Input, Network, Recording, RunOptions, Simulator};
//!
//! let mut net = Network::with_defaults(1); // Rockpool's default currents, Iscale 1e-8 A, dt 1 ms
//! net.params.i_dc = vec![2e-10]; // 0.2 nA into the membrane
//! let sim = Simulator::<f32>::new(&net)?;
//! let no_input = vec![0.0f32; 500];
//! let options = RunOptions { recording: Recording::Full, ..RunOptions::default() };
//! let trace = sim.run(Input::Weighted { data: &no_input, batch: 1, steps: 500 }, None, &options)?;
//! assert_eq!(trace.spike_counts(), vec![9.0]); // as Rockpool: an inter-spike interval of ~53 ms
//! let imem = &trace.records.as_ref().expect("recorded").imem; // [batch, steps, N], in A
//! assert!(imem.iter().all(|&i| i >= 5e-13));
//! # Ok::<(), dynap_model::Error>(())
//! ```
//!
//! Units, parameters and defaults, high-level <-> current translation, the bias generator (measured
//! table and its inverse), network descriptions, and the simulators of the two model variants
//! (`rockpool`: Rockpool's DynapSim; `chip`: the chip's circuits), each with its reverse pass.
//!
//! Invariants of this crate:
//! * every stored value is in SI base units (A, F, V, s); weights are dimensionless multiples of `Iscale`;
//! * no I/O: parsers take bytes or text, the caller reads files;
//! * no randomness and no global state: the same inputs give the same bits, whatever the thread count
//!   (threads take batch elements, or consecutive parts of one, and each element is computed in a
//!   fixed order; see `threads.rs`);
//! * the per-time-step loop does not allocate;
//! * bad input is an [`Error`] naming the parameter and the neuron, never a panic.
//!
//! ## Parameters
//!
//! | symbol | field | Rockpool name | unit | meaning | default |
//! |---|---|---|---|---|---|
//! | I_dc | `i_dc` | `Idc` | A | DC current into the membrane | 5e-13 |
//! | I_f,nmda | `i_f_nmda` | `If_nmda` | A | NMDA gate cut-off (unused by `rockpool`) | 5e-13 |
//! | I_gain,ahp | `i_gain_ahp` | `Igain_ahp` | A | AHP DPI gain | 2.8369e-11 |
//! | I_gain,mem | `i_gain_mem` | `Igain_mem` | A | membrane DPI gain | 2.1277e-11 |
//! | I_gain,syn | `i_gain_syn` | `Igain_syn` | A | synapse DPI gain | 8.6879e-9 |
//! | I_pulse,ahp | `i_pulse_ahp` | `Ipulse_ahp` | A | AHP pulse width current | 3.5e-7 |
//! | I_pulse | `i_pulse` | `Ipulse` | A | synaptic pulse width current | 3.5e-8 |
//! | I_ref | `i_ref` | `Iref` | A | refractory period current | 1.05e-9 |
//! | I_spkthr | `i_spkthr` | `Ispkthr` | A | spike threshold on I_mem | 1e-7 |
//! | I_tau,ahp | `i_tau_ahp` | `Itau_ahp` | A | AHP leak | 2.8369e-11 |
//! | I_tau,mem | `i_tau_mem` | `Itau_mem` | A | membrane leak | 5.3191e-12 |
//! | I_tau,syn | `i_tau_syn` | `Itau_syn` | A | synapse leak | 8.6879e-11 |
//! | I_w,ahp | `i_w_ahp` | `Iw_ahp` | A | AHP jump per own spike | 5e-13 |
//! | C_ahp | `c_ahp` | `C_ahp` | F | AHP capacitance | 40e-12 |
//! | C_syn | `c_syn` | `C_syn` | F | synapse capacitance (Rockpool uses C_ampa) | 24.5e-12 |
//! | C_pulse,ahp | `c_pulse_ahp` | `C_pulse_ahp` | F | AHP pulse capacitance | 0.5e-12 |
//! | C_pulse | `c_pulse` | `C_pulse` | F | synaptic pulse capacitance | 0.5e-12 |
//! | C_ref | `c_ref` | `C_ref` | F | refractory capacitance | 1.5e-12 |
//! | C_mem | `c_mem` | `C_mem` | F | membrane capacitance | 3e-12 |
//! | I_0 | `i_o` | `Io` | A | dark current, floor and reset value | 5e-13 |
//! | kappa_n | `kappa_n` | `kappa_n` | - | n-type slope factor | 0.75 |
//! | kappa_p | `kappa_p` | `kappa_p` | - | p-type slope factor | 0.66 |
//! | U_T | `u_t` | `Ut` | V | thermal voltage | 0.025 |
//! | V_th | `v_th` | `Vth` | V | pulse-width cut-off voltage | 0.7 |
//! | I_scale | [`Network::i_scale`] | `Iscale` | A | current of a unit weight | 1e-8 |
//! | dt | [`Network::dt`] | `dt` | s | time step | 1e-3 |
//!
//! ## Key types
//! * [`Network`], [`NeuronParams`], [`Param`], [`Matrix`]: what is simulated;
//! * [`Architecture`] ([`Population`]s, [`Connection`]s, a readout): a layered or recurrent network
//!   of populations, flattened into one [`Network`] whose weights are masked to the declared
//!   [`Block`]s ([`Masks`]), with its core map;
//! * [`QuantizedWeights`], [`QuantMatrix`], [`mask_levels`]: the chip's 4-bit weight format (per-core
//!   base currents, masks, signs), decoded to the float weights the simulator runs;
//! * [`Simulator`] (the `rockpool` variant, `rockpool/`): a network converted to `f32` or `f64`, run
//!   on an [`Input`] with [`RunOptions`], returning a [`Trace`] (spikes, and [`Records`] with
//!   [`Recording::Full`]) whose final [`State`] continues the next run; a taped run records a [`Tape`]
//!   for the gradient ([`OutputGradients`] in, [`Gradients`] out, with [`GradientOptions`]);
//! * [`ChipSimulator`] (the `chip` variant, `chip/`): the same shape, name for name ([`ChipState`],
//!   [`ChipRecords`], [`ChipTrace`], [`ChipTape`], [`ChipOutputGradients`], [`ChipGradients`]), for
//!   four dendrites per neuron and inhibition that inhibits (its equations and every difference from
//!   Rockpool are in its module documentation), with [`ChipSynapses`] for its dendrites' parameters
//!   and each connection's synapse type;
//! * [`AnySimulator`]: the simulator of a network of either variant, chosen by its [`Variant`], whose
//!   run returns an [`AnyTrace`] with what both traces have; [`simulate_spikes`] for a single run;
//! * [`BiasGenerator`], [`BiasTable`], [`BiasCode`]: bias currents <-> (coarse, fine) codes;
//! * [`CoreParams`] and the converters of [`translation`]: high-level values <-> currents;
//! * [`read_npy`]: NumPy arrays, for weights saved by Python tools;
//! * [`Tolerance`]: relative + absolute comparison of numbers.

#[macro_use]
mod isa;
mod aligned;
mod architecture;
mod biasgen;
mod chip;
mod error;
mod events;
mod hwweights;
mod network;
mod npy;
mod param;
mod real;
mod rockpool;
mod run;
mod simulate;
mod threads;
mod tolerance;
mod transcendental;
pub mod translation;

pub use architecture::{
    Architecture, ArchitectureError, Block, CORE_NEURONS, Connection, End, INPUT_NAME, Masks,
    Population, Source,
};
pub use biasgen::{
    BIAS_NAMES, BiasCode, BiasGenerator, BiasName, BiasTable, COARSE_LEVELS, FINE_LEVELS,
    TransistorType, chip_bias_from_sim, sim_from_chip_bias,
};
pub use chip::{
    ChipGradients, ChipOutputGradients, ChipRecords, ChipSimulator, ChipState, ChipSynapses,
    ChipTape, ChipTrace, DENDRITES, DendriteParams, SynapseChoice, dendrite_index,
};
pub use error::{Error, WeightMatrix};
pub use events::SpikeEvents;
pub use hwweights::{
    BASE_WEIGHTS, Dendrite, MASK_LEVELS, QuantMatrix, QuantizedWeights, mask_levels,
};
pub use network::{Matrix, Network, Variant};
pub use npy::{NpyArray, read_npy};
pub use param::{DEFAULT_DT, DEFAULT_ISCALE, NeuronParams, Param, Quantity};
pub use real::Real;
pub use rockpool::{
    Gradients, OutputGradients, Records, Simulator, SpikeFunction, State, Tape, Trace,
};
pub use run::{GradientMask, GradientOptions, Input, Recording, RunOptions};
pub use simulate::{AnySimulator, AnyState, AnyTrace, simulate_spikes};
pub use threads::cores;
pub use tolerance::Tolerance;
pub use translation::CoreParams;
