//! The `chip` model variant: the DYNAP-SE2 neuron as its circuits compute, with four dendrites.
//!
//! Rockpool's DynapSim (the `rockpool` variant) merges every synapse of a neuron into one DPI and
//! floors its target at `Io` after the drive's sign is formed, so a negative weight does nothing in
//! simulation, while the deployment writes it to the chip's inhibitory synapse. This variant simulates
//! what the chip runs: each neuron has four dendritic DPI synapses, each connection drives the one its
//! type names, and inhibition inhibits.
//!
//! # Equations
//!
//! Per neuron, with `Io` the dark current, `kappa = (kappa_n + kappa_p) / 2` and `UT` the thermal
//! voltage. Every DPI (Bartolozzi and Indiveri 2007) has a leak current `Itau`, a gain current `Igain`
//! (both floored at `Io`, as the transistors cannot carry less), a capacitance `C`, the time constant
//! `tau = (UT / kappa) C / Itau` and the gain ratio `g = Igain / Itau`.
//!
//! 1. **Drive.** A connection of weight `w` (a multiple of `Iscale`, as in the `rockpool` variant)
//!    carries the weight current `|w| Iscale` to one dendrite: an excitatory one (AMPA, or NMDA when the
//!    connection says so) for `w > 0`, an inhibitory one (GABA, or SHUNT) for `w < 0`. The chip has no
//!    negative currents; the sign only selects the synapse, as the deployment does. The drive of
//!    dendrite `k` is `Iw_k = sum_i s_i(t-1) |w_ik| Iscale` over the connections of type `k`, plus
//!    the input spikes through `w_in` alike (weighted input per neuron: positive to AMPA, negative to
//!    GABA).
//! 2. **Dendrites** (AMPA, NMDA, GABA, SHUNT, each with its own `Itau`, `Igain`, `C`: the chip's DEAM,
//!    DENM, DEGA and DESC biases). A pre-synaptic spike opens the DPI for a pulse of width
//!    `t_pulse = Vth C_pulse / Ipulse`, during which the current relaxes towards `g Iw`; otherwise it
//!    relaxes towards `Io` (Bartolozzi and Indiveri 2007, eq. 8, with the dark current as its floor).
//!    The pulse sits at the start of the step and is integrated exactly:
//!    `I <- Io + (I - Io) exp(-dt/tau) + g Iw (1 - exp(-t_pulse/tau)) exp(-(dt - t_pulse)/tau)`.
//!    (A pulse longer than `dt` delivers its whole charge in the step: the last factor is then 1.)
//!    Events of one step superpose linearly, as they do in the DPI's linear regime.
//! 3. **Adaptation** (AHP): the same DPI driven by the neuron's own spike of the previous step with
//!    the weight current `Iw_ahp` and the AHP pulse width; it enters the membrane equation (5) where
//!    Chicca et al. 2014 put it.
//! 4. **NMDA gate** (Livi and Indiveri 2009; Chicca et al. 2014): the NMDA current reaches the membrane
//!    through a differential pair that opens with the membrane voltage,
//!    `I_nmda,eff = I_NMDA / (1 + If_nmda / Imem)`, which is `I_NMDA / (1 + exp(-kappa (Vmem -
//!    V_nmda) / UT))` with `If_nmda = Io exp(kappa V_nmda / UT)`: a soft threshold at `V_nmda`.
//!    `Imem` is the previous step's (after its reset).
//! 5. **Membrane** (the adaptive exponential DPI neuron of Chicca et al. 2014, eqs. 9-10, the leak
//!    counted once):
//!    `tau (1 + Igain_mem / Imem) dImem/dt + Imem (1 + I_ahp / I_leak) = Imem_inf + f(Imem)`, with
//!    `I_leak = Itau_mem + I_SHUNT` (shunting inhibition adds a conductance to the membrane leak),
//!    `tau = (UT / kappa) C_mem / I_leak`, `Imem_inf = (Igain_mem / I_leak) (I_in - I_ahp - I_leak)`,
//!    `I_in = max(I_AMPA + I_nmda,eff + Idc - I_GABA, 0)` while not refractory and 0 while refractory
//!    (GABA subtracts from the input current; the physical input current is floored, not the
//!    difference), and the positive feedback `f = (Ia / I_leak)(Imem + Igain_mem)` with
//!    `Ia = Io (Imem / Io)^(kappa / (kappa + 1))` (Rockpool's `Io exp(kappa' Vmem / UT)`, with the
//!    current voltage). One explicit Euler step of `dt`, floored at `Io`.
//! 6. **Spike and reset.** When `Imem > Ispkthr` the neuron emits one spike (0 or 1 per step: the chip
//!    emits events, not counts), `Imem` is reset to `Io` and the refractory period
//!    `t_ref = Vth C_ref / Iref` starts; the timer counts down by `dt` and gates the input while it is
//!    above 0.
//! 7. **Voltage.** `Vmem = (UT / kappa) ln(Imem / Io)`, after the reset.
//!
//! # Differences from the `rockpool` variant
//!
//! | | `rockpool` (Rockpool 3.1.0) | `chip` |
//! |---|---|---|
//! | synapses | one DPI per neuron | four: AMPA, NMDA, GABA, SHUNT, each with its own time constant and gain |
//! | negative weights | floored away: no effect | drive GABA (subtractive) or SHUNT (shunting) |
//! | synapse target | `max(g Iw, Io)`, state may decay below `Io` | relaxes to `Io` at rest, `g Iw` during a pulse |
//! | pulse | charge `1 - exp(-t_pulse/tau)`, no decay in the rest of the step | integrated exactly over the step |
//! | NMDA | absent (`If_nmda` unused) | voltage-gated by `If_nmda` |
//! | leak | subtracted twice (in `I_in` and in `Imem_inf`) | once |
//! | floor of `I_in` | after the leak is subtracted | on the physical input current |
//! | AHP | in the leak, hence in `tau`, in the feedback and in `(1 + Iahp/Itau)` | in `(1 + Iahp/I_leak)` and `Imem_inf` |
//! | `tau_mem`, feedback divisor | `Itau_mem + Iahp` | `Itau_mem + I_SHUNT` |
//! | spikes | counts `ceil(ln(Imem/Ispkthr))`, may exceed 1 | 0 or 1 |
//! | `Vmem` | read before the reset | after the reset |
//!
//! The NMDA, GABA and SHUNT dendrites' parameters are in [`ChipSynapses`]; AMPA's are the network's
//! `Itau_syn`, `Igain_syn` and `C_syn`, so a network moves between the variants unchanged. A dendrite
//! bias name (`Itau_nmda`, ...) resolves through [`ChipSynapses::current`] and
//! [`ChipSynapses::current_mut`] alone, for the mapper, the reverse mapping, the bias decoder and the
//! emulator.
//!
//! # Implementation
//!
//! The files: `params.rs` (the dendrites' parameters, [`SynapseChoice`], and the per-neuron constants
//! `ChipConsts` derived once per simulator), `forward.rs` (construction, runs, the dendrites' drive
//! and the neuron step), `reverse.rs` (taped runs and the reverse pass), `tests/`.
//!
//! One step function (`neuron_step`) serves the forward pass and the reverse pass's recomputation, so
//! both compute the same values; both neuron loops vectorise (free functions over separate slices,
//! selects instead of branches, the kernels' `ln`/`exp`, per-instruction-set dispatch). The tape holds
//! the state before and after every step (`FIELDS` = 8 values per neuron). The reverse pass walks the
//! steps backwards, recomputes each from the recorded state, and carries the adjoints through the
//! equations above with JAX's rules (floors pass 1 above, 0.5 at a tie, 0 below), Rockpool's
//! `step_pwl` surrogate at the threshold and nothing through the refractory gate; the per-neuron
//! constants' adjoints are accumulated and carried to the 13 currents and the dendrites' currents in
//! `f64`. It is checked against a dfdx composition (`dynap-autodiff/src/chip_reference.rs`, 1e-10:
//! weights and `Idc`) and against Richardson-extrapolated central differences with smooth spikes
//! (weights, input, and every current's gradient).

mod forward;
mod params;
mod reverse;
#[cfg(test)]
mod tests;

use crate::aligned::Aligned;
use crate::isa::Isa;
use crate::network::Matrix;
use crate::real::Real;
use crate::run::spike_totals;
use params::ChipConsts;

pub use params::{ChipSynapses, DENDRITES, DendriteParams, SynapseChoice, dendrite_index};

/// The simulator of the `chip` variant: a network converted once to precision `T`.
#[derive(Clone, Debug)]
pub struct ChipSimulator<T: Real> {
    n: usize,
    n_in: Option<usize>,
    c: ChipConsts<T>,
    /// Per dendrite, `[Nin][N]` non-negative weights.
    w_in: Option<[Aligned<T>; DENDRITES]>,
    w_in_used: [bool; DENDRITES],
    /// Per dendrite, `[N][N]` non-negative weights (`[pre][post]`).
    w_rec: [Aligned<T>; DENDRITES],
    /// Their transposes (`[post][pre]`), for the reverse pass.
    w_rec_t: [Aligned<T>; DENDRITES],
    /// The signed recurrent weights transposed, for the reverse pass of AMPA/GABA-only networks.
    w_rec_signed_t: Aligned<T>,
    /// Whether any recurrent weight reaches neuron `j` (`[N]`): the reverse pass's sums over the
    /// transposes skip the others' all-zero rows (a layered network's first layer, every input-only
    /// population).
    w_rec_live: Vec<bool>,
    w_rec_used: [bool; DENDRITES],
    /// The dendrites a connection of each matrix can drive (its type's excitatory and inhibitory
    /// one, whatever its sign): the reverse pass keeps weight gradients for these only.
    w_in_candidates: [bool; DENDRITES],
    w_rec_candidates: [bool; DENDRITES],
    /// The signed weights and synapse types as given, for the weight gradients.
    signed_in: Option<Matrix>,
    signed_rec: Matrix,
    types_in: Option<Vec<SynapseChoice>>,
    types_rec: Option<Vec<SynapseChoice>>,
    dt: T,
    isa: Isa,
    /// The network's parameters, its dendrites' and `Iscale`, in `f64`, for the chain rule to the
    /// bias currents.
    params: crate::NeuronParams,
    chip_params: Option<ChipSynapses>,
    i_scale: f64,
    /// The smooth spike's steepness `beta` (tests of the gradient only), or `None` for the chip's
    /// threshold.
    smooth: Option<T>,
    /// The fast-sigmoid surrogate's steepness in the reverse pass (training), or `None` for
    /// Rockpool's `step_pwl` (see `SpikeFunction::FastSigmoid`).
    fast: Option<T>,
}

/// The state of a `chip` run, `[batch, N]` per variable.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipState<T> {
    /// Batch size.
    pub batch: usize,
    /// Number of neurons.
    pub neurons: usize,
    /// The four dendrite currents (A), [`Dendrite::ALL`](crate::Dendrite::ALL) order.
    pub dendrites: [Vec<T>; DENDRITES],
    /// Adaptation current (A).
    pub iahp: Vec<T>,
    /// Membrane current (A).
    pub imem: Vec<T>,
    /// Membrane voltage (V).
    pub vmem: Vec<T>,
    /// Remaining refractory time (s).
    pub timer_ref: Vec<T>,
    /// The last step's spikes (0 or 1).
    pub spikes: Vec<T>,
}

/// The state records of a `chip` run, each `[batch, steps, N]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipRecords<T> {
    /// Membrane current (A).
    pub imem: Vec<T>,
    /// Membrane voltage (V).
    pub vmem: Vec<T>,
    /// Adaptation current (A).
    pub iahp: Vec<T>,
    /// The four dendrite currents (A), [`Dendrite::ALL`](crate::Dendrite::ALL) order.
    pub dendrites: [Vec<T>; DENDRITES],
}

/// The result of a `chip` run.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipTrace<T> {
    /// Batch size.
    pub batch: usize,
    /// Time steps.
    pub steps: usize,
    /// Number of neurons.
    pub neurons: usize,
    /// Output spikes `[batch, steps, N]`, 0 or 1.
    pub spikes: Vec<T>,
    /// The state records, with [`Recording::Full`](crate::Recording::Full).
    pub records: Option<ChipRecords<T>>,
    /// The state after the last step, to continue from.
    pub final_state: ChipState<T>,
}

impl<T: Real> ChipTrace<T> {
    /// Total spikes per batch element and neuron, `[batch, N]`: `0.0 + s_0 + s_1 + ...` in `f64`, in
    /// step order (as [`crate::Trace::spike_counts`]).
    pub fn spike_counts(&self) -> Vec<f64> {
        spike_totals(&self.spikes, self.batch, self.steps, self.neurons)
    }
}

/// The states recorded by [`ChipSimulator::run_taped`] for the reverse pass.
#[derive(Clone, Debug)]
pub struct ChipTape<T> {
    batch: usize,
    steps: usize,
    /// `[batch][steps + 1][FIELDS][N]`.
    states: Aligned<T>,
}

/// The gradient of a loss with respect to the recorded outputs of a `chip` run, each `[batch, steps,
/// N]` (`None`: the loss does not depend on it).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChipOutputGradients<'a, T> {
    /// d loss / d spike.
    pub spikes: Option<&'a [T]>,
    /// d loss / d Imem (A^-1).
    pub imem: Option<&'a [T]>,
    /// d loss / d Vmem (V^-1).
    pub vmem: Option<&'a [T]>,
    /// d loss / d Iahp (A^-1).
    pub iahp: Option<&'a [T]>,
    /// d loss / d each dendrite current (A^-1), [`Dendrite::ALL`](crate::Dendrite::ALL) order.
    pub dendrites: [Option<&'a [T]>; DENDRITES],
    /// d loss / d spike, the same at every step, `[batch, N]` (a loss on spike counts): what `spikes`
    /// would hold repeated over the steps, without a `[batch, steps, N]` buffer. Added after
    /// `spikes` when both are given.
    pub spikes_every_step: Option<&'a [T]>,
}

/// Gradients of a loss through a `chip` run, summed over the batch, in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipGradients {
    /// d loss / d w_in `[Nin, N]`, when the input was spikes through `w_in`.
    pub w_in: Option<Matrix>,
    /// d loss / d w_rec `[N, N]`.
    pub w_rec: Matrix,
    /// d loss / d input `[batch, steps, channels]`, when asked for.
    pub input: Option<Vec<f64>>,
    /// d loss / d Idc per neuron (A^-1).
    pub i_dc: Vec<f64>,
    /// d loss / d each of the 13 bias currents (A^-1), per neuron, in [`crate::Param::CURRENTS`]
    /// order (the synapse's `Itau_syn`, `Igain_syn`, `Ipulse` are AMPA's; `Ipulse` also sets the
    /// other dendrites' pulse). `Iref` and `Ispkthr` get 0: the refractory gate and the surrogate
    /// pass nothing.
    pub currents: Vec<Vec<f64>>,
    /// d loss / d (`Itau`, `Igain`) of the NMDA, GABA and SHUNT dendrites, per neuron (A^-1).
    pub dendrites: [(Vec<f64>, Vec<f64>); 3],
}

impl ChipGradients {
    /// The gradient with respect to one of the 13 bias currents, per neuron.
    pub fn current(&self, p: crate::Param) -> Option<&[f64]> {
        crate::Param::CURRENTS
            .iter()
            .position(|&q| q == p)
            .map(|i| self.currents[i].as_slice())
    }
}
