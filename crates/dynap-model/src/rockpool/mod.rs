//! The `rockpool` model variant: Rockpool 3.1.0's DynapSim, its per-step update fused per neuron,
//! batched over threads, in `f32` (Rockpool's precision and operation order) or `f64`, and its
//! hand-derived reverse pass. The `chip` variant (`crate::chip`) is the physically faithful model;
//! its documentation lists every difference.
//!
//! The files: `params.rs` (the per-neuron constants [`Consts`] derived once per
//! simulator, and the vector width [`LANES`](params::LANES)), `forward.rs` (construction, runs, the
//! forward kernels), `reverse.rs` (taped runs and the reverse pass), `tests/`.
//!
//! # Forward pass
//!
//! The update of one neuron at step `t` (model.md section 1.5; `max(x, lo)` is `jnp.clip(x, lo)`),
//! in this order:
//!
//! ```text
//! Iws      = (sum_i s_i w_rec[i][j] + x_t[j]) * Iscale
//! isyn_inf = max((Igain_syn'/Itau_syn') * Iws, Io)
//! isyn     = exp(-dt/tau_syn) * isyn + (1 - exp(-t_pulse/tau_syn)) * isyn_inf
//! iahp_inf = (Igain_ahp'/Itau_ahp') * (Iw_ahp * s)
//! iahp     = max(exp(-dt/tau_ahp) * iahp + (1 - exp(-t_pulse_ahp/tau_ahp)) * iahp_inf, Io)
//! f_fb     = exp(kappa' * (vmem / Ut))
//! Ileak    = Itau_mem' + iahp
//! Iin      = max((isyn - Ileak + Idc) * [timer_ref == 0], Io)
//! imem_inf = (Igain_mem'/Itau_mem') * (Iin - Ileak)
//! f_imem   = (Io * f_fb / Ileak) * (imem + Igain_mem')
//! dimem    = imem / (tau(Ileak, C_mem) * (imem + Igain_mem')) * (imem_inf + f_imem - imem * (1 + iahp/Itau_mem'))
//! imem     = max(imem + dimem * dt, Io)
//! vmem     = (Ut/kappa) * ln(imem/Io)
//! s        = max(ceil(ln(imem/Ispkthr)), 0)
//! b        = min(s, 1);  imem = (1-b) imem + b Io;  timer_ref = (1-b) max(timer_ref - dt, 0) + b t_ref
//! ```
//!
//! with `kappa = (kappa_n + kappa_p)/2`, `kappa' = kappa^2/(kappa + 1)`, `tau(I, C) = (Ut/kappa) C / I`,
//! pulse widths `t(I, C) = Vth C / I`, and primes marking the floor at `Io`.
//!
//! The Rockpool behaviours this reproduces on purpose, each marked `Quirk` where it happens (the
//! forward kernel `step_body`):
//! * the synapse's target is floored at `Io` after the drive's sign is formed, so a net negative drive
//!   acts like none: inhibition has no effect;
//! * `isyn` itself has no floor: without input it decays below `Io`;
//! * the AHP's target uses the previous step's spike count, not a bit;
//! * the refractory gate is the float test `timer_ref == 0`, and the input's floor at `Io` comes
//!   after the leak is subtracted (a refractory neuron gets `Io`, not 0);
//! * the leak is subtracted a second time in `imem_inf`, and `tau_mem` and the feedback divide by
//!   `Ileak`, which includes the AHP;
//! * `vmem` is read before the reset, and the next step's feedback uses that pre-reset voltage;
//! * a step's spike count `ceil(ln(imem/Ispkthr))` can exceed 1.
//!
//! Two deliberate implementation choices:
//! * the kernel's `ln`/`exp` are branch-free Cephes polynomials (within 2 ulp) so the neuron loop
//!   vectorises; Rockpool's own values come from XLA's approximations, so neither reproduces its
//!   bits, and the golden tolerances (spikes exact, currents 2e-3 relative) are met with a wide margin;
//! * constants computed once per run use correctly rounded `exp`/`ln` (via `f64`): `1 - exp(-t_pulse/tau)`
//!   magnifies an `exp` error by `tau/t_pulse` (500 for the AHP), enough to move a spike.
//!
//! The kernels run whole vectors of [`LANES`](params::LANES) = 16 neurons: every per-neuron array,
//! weight matrix, tape and scratch buffer they touch is padded to a multiple of it and is an
//! `Aligned` vector (64-byte boundary; see `aligned.rs`). An `Aligned` dereference is a
//! bounds-checked slice, so the kernels take each buffer's slice once before their time loop, never
//! per step (per step it cost a quarter of the forward kernel's instructions). Input spikes reach the
//! kernels as events (`SpikeEvents`: per element and step, the non-zero channels and counts): a dense
//! raster is scanned once per call by `for_each_nonzero` (a bit mask per 16 values), a held input
//! (`Input::Events`) never; a run checks a dense raster's values in that scan, each element on its
//! thread (`Source::element_checked`: a value that is not finite is not zero, so the scan visits it;
//! the error names the raster's first, as a check before the run would); each event adds one row of
//! `w_in` kept with padded rows (`w_in_pad`), in channel order, so the sums are the dense scan's bit
//! for bit. Spike counts of 1 (ratio imem/Ispkthr up to 2.5, where `ceil(ln(ratio))` cannot be 2)
//! skip the logarithm. In the drive, a row whose count is 1 is added without the product
//! (`add_rows_unit`: `1 * w` is exact, so the same bits), and row sums accumulate column blocks in
//! registers (`add_rows`, `run.rs`).
//!
//! # Reverse pass
//!
//! The reverse pass (adjoint, backpropagation through time) is fused per time step like the forward
//! pass.
//!
//! The forward pass records a compact tape: the padded state `(isyn, iahp, imem, vmem, timer_ref, s)`
//! and the step's drive `(rec + x) Iscale` after every step (`TAPE_FIELDS` = 7 values per neuron), or
//! only every K-th step (checkpoints; the steps in between are recomputed segment by segment during
//! the reverse pass). The reverse pass walks the steps backwards in chunks (about 512 neuron-steps
//! each, so the chunk stays in L1). Pass 1 (`reverse_coefficients`, any order) recomputes each step's
//! intermediate values from the recorded states (the same operations as the forward kernel, so the
//! same values) and reduces the step's reverse, which is linear in the adjoints, to 16 coefficients
//! per neuron; these do not depend on the adjoints, so the steps of a chunk overlap in the processor.
//! Pass 2 (`reverse_chain`, backwards) carries the adjoints of the state, of the drive and of the
//! per-neuron constants through them, a short chain of multiply-adds per step, then the recurrent
//! rows (`add_rows` over `w_rec` transposed) and the weight gradients. Padding lanes' adjoints start
//! at 0 and stay 0 (nothing real flows into them). Derivatives follow JAX's rules, so that gradients
//! match Rockpool's:
//! * `max(x, lo)` (`jnp.clip(x, lo)`) passes 1 above `lo`, 0.5 at a tie, 0 below;
//! * the reset bit `b = clip(s, 0, 1)` passes 0.5 when `s` is 0 or 1 and 0 when `s >= 2`;
//! * the spike count uses Rockpool's `step_pwl` surrogate: `d s / d imem = 1` wherever `imem > Io`,
//!   and nothing flows to `Ispkthr`; `ceil` and the refractory gate `timer_ref == 0` pass nothing.
//!
//! The adjoint of the per-neuron constants (decay and charge factors, gain ratios, ...) is accumulated
//! over steps and batch, then carried to the 13 bias currents in `f64` through the once-per-run
//! expressions (`tau = (Ut/kappa) C / I`, `exp(-dt/tau)`, ...), unless
//! [`GradientOptions::currents`](crate::GradientOptions::currents) is off (a network that trains only
//! weights): then the coefficients and accumulators that serve only the currents are skipped, the
//! kernel being compiled both ways by a const parameter. `SpikeFunction::Smooth` exists for
//! finite-difference checks only.
//!
//! With checkpoints, `forward_coefficients` recomputes a segment's steps and forms their coefficients
//! from the same intermediates in one pass, the reset's derivative for counts of 2 or more
//! substituted once the counts are known; it repeats `reverse_coefficients`' expressions, which the
//! full-tape path and the smooth spike still use, and tests hold the two to the same bits. The tape
//! then also holds every step's positive-feedback factor `exp(kappa' vmem / Ut)` (one value per neuron
//! and step, at most `FFB_TAPE_BYTES` = 64 MiB, `records_feedback`; the forward kernel writes it
//! instead of a scratch vector): the segment recomputation reads it and skips that exponential and
//! the next vmem's logarithm, which nothing else there reads (a seventh of the reverse pass at
//! N = 256; tested bit-identical to a tape without the factors). For a network of one vector of
//! neurons (N <= 16, the paper's network packed), with a full tape and coefficients of at most 1 MiB
//! (`records_coefficients`), the forward pass itself runs the fused recomputation (`fused_forward`)
//! and stores every step's coefficients in the tape, and the reverse skips pass 1: such a step is a
//! latency-bound chain, so the coefficients' operations are nearly free there (tested bit-identical
//! to the plain forward kernel and reverse).
//!
//! A tape keeps the reverse pass's per-thread buffers in a pool keyed by (neurons, checkpoint
//! interval), for the next gradient through it (the layer reuses its tapes); everything the pass
//! reads from them it writes first, so reused buffers give fresh ones' bits (tested). With several
//! threads, each element's reverse pass runs in up to `REVERSE_PARTS` = 4 consecutive ranges of
//! segments (latest first; a dense input is converted to events once per element beforehand), its
//! adjoints and gradients carried from part to part (`ElementGradients`) and its parts handed out by
//! `for_each_part` (`threads.rs`). Per-batch-element gradients are made (allocated, zeroed) by the
//! thread that runs the element's first part and reduced in batch order, the threads summing disjoint
//! ranges of the result, so threads never change a bit. (The forward run in parts was slower: its
//! elements are short, and parts moved each element's state and output between the cores' caches.)

mod forward;
mod params;
mod reverse;
#[cfg(test)]
mod tests;

use crate::aligned::Aligned;
use crate::isa::Isa;
use crate::network::Matrix;
use crate::param::{NeuronParams, Param};
use crate::real::Real;
use crate::run::spike_totals;
use forward::TAPE_FIELDS;
use params::Consts;
use reverse::ScratchPool;

/// The simulator of one network in precision `T`: the network's parameters and weights converted once,
/// ready to run any number of inputs.
#[derive(Clone, Debug)]
pub struct Simulator<T: Real> {
    n: usize,
    n_in: Option<usize>,
    c: Consts<T>,
    /// `w_in` (`[Nin][N]`) with each row padded to a multiple of [`LANES`](params::LANES) with zeros: one whole-vector update per
    /// input event.
    w_in_pad: Option<Aligned<T>>,
    w_rec: Aligned<T>,
    /// `w_rec` transposed (`[post][pre]`), for the reverse pass.
    w_rec_t: Aligned<T>,
    /// The transpose's non-zero entries, for the reverse pass of a large sparse network (`None`:
    /// the dense transpose is read).
    w_rec_sparse: Option<crate::run::SparseRows<T>>,
    /// `w_rec`'s own non-zero entries, for the forward drive of a large sparse network.
    w_rec_rows_sparse: Option<crate::run::SparseRows<T>>,
    rec_nonzero: bool,
    /// The recurrent weights whose gradient is computed ([`Simulator::with_gradient_mask`]).
    grad_mask: Option<std::sync::Arc<crate::run::GradientMask>>,
    i_scale: T,
    dt: T,
    isa: Isa,
    spike: SpikeFunction,
    /// The network's parameters in `f64`, for the reverse pass's chain rule to the bias currents.
    params: NeuronParams,
}

/// How a neuron turns its membrane current into spikes.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum SpikeFunction {
    /// Rockpool's: the count `max(ceil(ln(imem / Ispkthr)), 0)`, reset bit `min(count, 1)`, and in the
    /// reverse pass Rockpool's `step_pwl` surrogate (d count / d imem = 1 wherever imem > Io, nothing to
    /// Ispkthr) with JAX's tie rules.
    #[default]
    Rockpool,
    /// A smooth spike for checking gradients by finite differences (tests and diagnostics only): the
    /// "count" `s = 1 / (1 + (Ispkthr / imem)^beta)` in (0, 1), used as the reset fraction too, with its
    /// exact derivative in the reverse pass. The refractory gate still tests `timer_ref == 0`, so
    /// finite-difference checks set `C_ref = 0` (no refractory period) to keep the model smooth.
    Smooth {
        /// Sharpness (dimensionless); larger is closer to a step at `imem = Ispkthr`.
        beta: f64,
    },
    /// Rockpool's spikes (the same forward pass, the same bits), with a surrogate derivative for
    /// training that, unlike `step_pwl`, says how close the membrane is to the threshold: the fast
    /// sigmoid (SuperSpike, Zenke and Ganguli 2018) in the normalised current `r = imem / Ispkthr`,
    /// `d count / d imem = (1 / Ispkthr) / (1 + k |r - 1|)^2`. It peaks at the threshold with the value a
    /// unit of the normalised current gives, so a spike-count loss trains (Rockpool's surrogate passes
    /// 1 per ampere, about 1e-7 of it, and as much far below the threshold as at it). Nothing reaches
    /// `Ispkthr`, as with Rockpool's surrogate, and the reset is not differentiated (its derivative is
    /// detached, as surrogate-gradient training does: through it the adjoint grows without bound).
    FastSigmoid {
        /// Steepness (dimensionless): the derivative halves at `|r - 1| = (sqrt(2) - 1) / k`.
        k: f64,
    },
}

/// How the reverse pass differentiates the spike (the per-run switch of its kernels).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Surrogate<T> {
    /// Rockpool's `step_pwl`.
    Rockpool,
    /// The smooth spike's exact derivative, with its sharpness.
    Smooth(T),
    /// The fast sigmoid, with its steepness.
    FastSigmoid(T),
}

/// The state of every neuron of every batch element, `[batch, N]` row-major per variable.
///
/// The final state of a run can be passed as the initial state of the next run. Unlike Rockpool, whose
/// returned `isyn` is not read back, the synaptic current is carried too.
#[derive(Clone, Debug, PartialEq)]
pub struct State<T> {
    /// Batch size.
    pub batch: usize,
    /// Neurons.
    pub neurons: usize,
    /// Membrane current (A).
    pub imem: Vec<T>,
    /// Synaptic current (A).
    pub isyn: Vec<T>,
    /// Adaptation current (A).
    pub iahp: Vec<T>,
    /// Spike counts of the last step.
    pub spikes: Vec<T>,
    /// Remaining refractory time (s).
    pub timer_ref: Vec<T>,
    /// Membrane voltage of the last step, before reset (V).
    pub vmem: Vec<T>,
}

/// The state records of a run, each `[batch, steps, N]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Records<T> {
    /// Membrane current after the step (after reset) (A).
    pub imem: Vec<T>,
    /// Synaptic current (A).
    pub isyn: Vec<T>,
    /// Adaptation current (A).
    pub iahp: Vec<T>,
    /// Membrane voltage, before reset (V).
    pub vmem: Vec<T>,
}

/// What a run returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace<T> {
    /// Batch size.
    pub batch: usize,
    /// Time steps.
    pub steps: usize,
    /// Neurons.
    pub neurons: usize,
    /// Spike counts `[batch, steps, N]` (a count can exceed 1).
    pub spikes: Vec<T>,
    /// The state records, with [`Recording::Full`](crate::Recording::Full).
    pub records: Option<Records<T>>,
    /// The state after the last step.
    pub final_state: State<T>,
    /// Total spikes per batch element and neuron, `[batch, N]`, when the run summed them (a taped
    /// run, whose loss usually needs them: the forward kernel adds each step's count to the neurons it
    /// lists as spiking); empty otherwise. See [`Trace::spike_counts`].
    counts: Vec<f64>,
}

impl<T: Real> Trace<T> {
    /// Total spikes per batch element and neuron, `[batch, N]`: `0.0 + s_0 + s_1 + ...` in `f64`, in
    /// step order. Kept from the run when it summed them, otherwise summed from the raster now.
    pub fn spike_counts(&self) -> Vec<f64> {
        if !self.counts.is_empty() {
            return self.counts.clone();
        }
        spike_totals(&self.spikes, self.batch, self.steps, self.neurons)
    }
}

/// The forward states recorded for the reverse pass (see the module documentation).
#[derive(Clone, Debug)]
pub struct Tape<T> {
    batch: usize,
    steps: usize,
    n_pad: usize,
    every: usize,
    /// `[batch][entry][7][n_pad]`; entry `k` is the state after step `k * every` and the drive of that
    /// step (entry 0: the state before the first step).
    states: Aligned<T>,
    /// `[batch][step][COEF][n_pad]`: every step's reverse coefficients, made by the forward pass
    /// (see [`Simulator::records_coefficients`]); empty otherwise.
    coef: Aligned<T>,
    /// `[batch][step][n_pad]`: every step's positive-feedback factor `exp(kappa' vmem / Ut)`, with
    /// checkpoints (see [`Simulator::records_feedback`]); empty otherwise.
    ffb: Aligned<T>,
    /// The reverse pass's per-thread buffers, kept for the next gradient through this tape (a training
    /// loop reuses its tapes): allocating and zeroing them was a few per cent of a small network's
    /// training step.
    scratch: ScratchPool<T>,
}

impl<T> Tape<T> {
    /// Batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Time steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        (self.states.len() + self.coef.len()) * std::mem::size_of::<T>()
    }

    fn entries(&self) -> usize {
        self.steps / self.every + 1
    }

    fn entry_len(&self) -> usize {
        TAPE_FIELDS * self.n_pad
    }
}

/// The gradient of a loss with respect to the recorded outputs of a run, each `[batch, steps, N]`
/// (`None`: the loss does not depend on it).
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputGradients<'a, T> {
    /// d loss / d spike count.
    pub spikes: Option<&'a [T]>,
    /// d loss / d imem (A^-1).
    pub imem: Option<&'a [T]>,
    /// d loss / d isyn (A^-1).
    pub isyn: Option<&'a [T]>,
    /// d loss / d iahp (A^-1).
    pub iahp: Option<&'a [T]>,
    /// d loss / d vmem (V^-1).
    pub vmem: Option<&'a [T]>,
    /// d loss / d spike count, the same at every step, `[batch, N]` (a loss on total counts, such as
    /// the count MSE): what `spikes` would hold repeated over the steps, without a `[batch, steps, N]`
    /// buffer to write and stream through. Added after `spikes` when both are given.
    pub spikes_every_step: Option<&'a [T]>,
}

/// Gradients of a loss, summed over the batch, in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// d loss / d w_in `[Nin, N]`, when the input was spikes through `w_in`.
    pub w_in: Option<Matrix>,
    /// d loss / d w_rec `[N, N]`.
    pub w_rec: Matrix,
    /// d loss / d input `[batch, steps, channels]`, when asked for.
    pub input: Option<Vec<f64>>,
    /// d loss / d each of the 13 bias currents (A^-1), per neuron, in [`Param::CURRENTS`] order; empty
    /// when [`GradientOptions::currents`](crate::GradientOptions::currents) was off.
    pub currents: Vec<Vec<f64>>,
}

impl Gradients {
    /// The gradient with respect to one bias current, per neuron; `None` for a parameter that is not
    /// one of the 13 currents, or when the current gradients were not asked for.
    pub fn current(&self, p: Param) -> Option<&[f64]> {
        Param::CURRENTS
            .iter()
            .position(|&q| q == p)
            .and_then(|i| self.currents.get(i))
            .map(Vec::as_slice)
    }
}
