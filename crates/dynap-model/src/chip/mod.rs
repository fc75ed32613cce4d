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
//! `Itau_syn`, `Igain_syn` and `C_syn`, so a network moves between the variants unchanged.

use crate::aligned::Aligned;
use crate::error::{Error, WeightMatrix};
use crate::events::SpikeEvents;
use crate::hwweights::Dendrite;
use crate::isa::Isa;
use crate::network::{Matrix, Network, Variant};
use crate::real::Real;
use crate::run::{Input, Recording, RunOptions, add_rows, d_clip, for_each_nonzero};
use std::borrow::Cow;

/// Number of dendrites per neuron.
pub const DENDRITES: usize = 4;

/// Which dendrites a connection drives: the sign of its weight picks one of the two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SynapseChoice {
    /// A positive weight drives NMDA (else AMPA).
    pub nmda: bool,
    /// A negative weight drives SHUNT (else GABA).
    pub shunt: bool,
}

impl SynapseChoice {
    /// The dendrite a weight of this value drives; `None` for zero.
    pub fn dendrite(self, w: f64) -> Option<Dendrite> {
        if w > 0.0 {
            Some(if self.nmda {
                Dendrite::Nmda
            } else {
                Dendrite::Ampa
            })
        } else if w < 0.0 {
            Some(if self.shunt {
                Dendrite::Shunt
            } else {
                Dendrite::Gaba
            })
        } else {
            None
        }
    }
}

/// `(0 NMDA | 1 GABA | 2 SHUNT, whether Itau (else Igain))` for a dendrite current's simulator name.
fn dendrite_current_name(sim: &str) -> Option<(usize, bool)> {
    let (kind, d) = sim.split_once('_')?;
    let d = ["nmda", "gaba", "shunt"].iter().position(|&x| x == d)?;
    match kind {
        "Itau" => Some((d, true)),
        "Igain" => Some((d, false)),
        _ => None,
    }
}

/// The index of a dendrite in per-dendrite arrays ([`Dendrite::ALL`] order).
pub fn dendrite_index(d: Dendrite) -> usize {
    match d {
        Dendrite::Ampa => 0,
        Dendrite::Nmda => 1,
        Dendrite::Gaba => 2,
        Dendrite::Shunt => 3,
    }
}

/// One dendrite's DPI parameters, per neuron (SI units).
#[derive(Clone, Debug, PartialEq)]
pub struct DendriteParams {
    /// Leak current `Itau` (A).
    pub i_tau: Vec<f64>,
    /// Gain current `Igain` (A).
    pub i_gain: Vec<f64>,
    /// Capacitance `C` (F).
    pub c: Vec<f64>,
}

impl DendriteParams {
    /// `n` neurons with time constant `tau` (s) and gain ratio `gain` at the default `UT` and `kappa`,
    /// on the capacitance `c` (F).
    pub fn with_time_constant(n: usize, tau: f64, gain: f64, c: f64) -> DendriteParams {
        let kappa =
            (crate::Param::KappaN.default_value() + crate::Param::KappaP.default_value()) / 2.0;
        let i_tau = crate::Param::Ut.default_value() / kappa * c / tau;
        DendriteParams {
            i_tau: vec![i_tau; n],
            i_gain: vec![gain * i_tau; n],
            c: vec![c; n],
        }
    }

    fn validate(&self, name: &'static str, n: usize) -> Result<(), Error> {
        for (param, v, positive) in [
            ("Itau", &self.i_tau, false),
            ("Igain", &self.i_gain, false),
            ("C", &self.c, true),
        ] {
            if v.len() != n {
                return Err(Error::DendriteParam {
                    dendrite: name,
                    param,
                    neuron: v.len().min(n),
                    value: f64::NAN,
                });
            }
            for (j, &x) in v.iter().enumerate() {
                let ok = x.is_finite() && if positive { x > 0.0 } else { x >= 0.0 };
                if !ok {
                    return Err(Error::DendriteParam {
                        dendrite: name,
                        param,
                        neuron: j,
                        value: x,
                    });
                }
            }
        }
        Ok(())
    }
}

/// What the `chip` variant adds to a [`Network`]: the NMDA, GABA and SHUNT dendrites' parameters and
/// the synapse type of every connection.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipSynapses {
    /// NMDA dendrite (the chip's DENM biases).
    pub nmda: DendriteParams,
    /// GABA dendrite, subtractive inhibition (DEGA).
    pub gaba: DendriteParams,
    /// SHUNT dendrite, shunting inhibition (DESC).
    pub shunt: DendriteParams,
    /// Per connection of `w_in` (`[Nin * N]`, row-major); `None`: AMPA and GABA everywhere.
    pub w_in_types: Option<Vec<SynapseChoice>>,
    /// Per connection of `w_rec` (`[N * N]`); `None`: AMPA and GABA everywhere.
    pub w_rec_types: Option<Vec<SynapseChoice>>,
}

impl ChipSynapses {
    /// Defaults for `n` neurons: every dendrite with a 10 ms time constant and a gain ratio of 100 like
    /// Rockpool's synapse; capacitances of the dev-era four-synapse model (NMDA and GABA 25 pF,
    /// SHUNT 24.5 pF); every connection on AMPA or GABA.
    pub fn defaults(n: usize) -> ChipSynapses {
        ChipSynapses {
            nmda: DendriteParams::with_time_constant(n, 10e-3, 100.0, 25e-12),
            gaba: DendriteParams::with_time_constant(n, 10e-3, 100.0, 25e-12),
            shunt: DendriteParams::with_time_constant(n, 10e-3, 100.0, 24.5e-12),
            w_in_types: None,
            w_rec_types: None,
        }
    }

    /// The parameters of a non-AMPA dendrite (AMPA's are the network's synapse parameters).
    pub fn params(&self, d: Dendrite) -> Option<&DendriteParams> {
        match d {
            Dendrite::Ampa => None,
            Dendrite::Nmda => Some(&self.nmda),
            Dendrite::Gaba => Some(&self.gaba),
            Dendrite::Shunt => Some(&self.shunt),
        }
    }

    /// The per-neuron values of the NMDA, GABA or SHUNT current that a simulator bias name names
    /// (`Itau_nmda`, `Igain_gaba`, ..., as in [`crate::BIAS_NAMES`]); `None` for any other name
    /// (AMPA's are the network's synapse currents).
    pub fn current(&self, sim: &str) -> Option<&[f64]> {
        let (d, tau) = dendrite_current_name(sim)?;
        let p = [&self.nmda, &self.gaba, &self.shunt][d];
        Some(if tau { &p.i_tau } else { &p.i_gain })
    }

    /// Whether a simulator bias name names one of these currents.
    pub fn names_current(sim: &str) -> bool {
        dendrite_current_name(sim).is_some()
    }

    /// [`ChipSynapses::current`], to change.
    pub fn current_mut(&mut self, sim: &str) -> Option<&mut [f64]> {
        let (d, tau) = dendrite_current_name(sim)?;
        let p = match d {
            0 => &mut self.nmda,
            1 => &mut self.gaba,
            _ => &mut self.shunt,
        };
        Some(if tau { &mut p.i_tau } else { &mut p.i_gain })
    }

    /// Checks the parameters (finite, currents >= 0, capacitances > 0, one per neuron of `n`) and the
    /// synapse-type tables (one per weight, `n_in` input channels).
    pub fn validate(&self, n: usize, n_in: Option<usize>) -> Result<(), Error> {
        self.nmda.validate("nmda", n)?;
        self.gaba.validate("gaba", n)?;
        self.shunt.validate("shunt", n)?;
        if let Some(t) = &self.w_rec_types
            && t.len() != n * n
        {
            return Err(Error::SynapseTypes {
                matrix: WeightMatrix::Recurrent,
                expected: n * n,
                found: t.len(),
            });
        }
        if let Some(t) = &self.w_in_types {
            let expected = n_in.unwrap_or(0) * n;
            if t.len() != expected {
                return Err(Error::SynapseTypes {
                    matrix: WeightMatrix::Input,
                    expected,
                    found: t.len(),
                });
            }
        }
        Ok(())
    }
}

/// The dendrites `len` connections with synapse types `types` (default: AMPA and GABA) can drive.
fn candidates(len: usize, types: Option<&[SynapseChoice]>) -> [bool; DENDRITES] {
    let mut out = [false; DENDRITES];
    for k in 0..len {
        let c = types.map_or(SynapseChoice::default(), |t| t[k]);
        for w in [1.0, -1.0] {
            if let Some(d) = c.dendrite(w) {
                out[dendrite_index(d)] = true;
            }
        }
    }
    out
}

/// Splits a signed weight matrix into one non-negative matrix per dendrite (`|w|` where the connection
/// drives that dendrite, 0 elsewhere); also says which dendrites receive anything.
fn split<T: Real>(
    m: &Matrix,
    types: Option<&[SynapseChoice]>,
) -> ([Vec<T>; DENDRITES], [bool; DENDRITES]) {
    let mut out: [Vec<T>; DENDRITES] = std::array::from_fn(|_| vec![T::ZERO; m.as_slice().len()]);
    let mut used = [false; DENDRITES];
    for (k, &w) in m.as_slice().iter().enumerate() {
        let choice = types.map_or(SynapseChoice::default(), |t| t[k]);
        if let Some(d) = choice.dendrite(w) {
            let i = dendrite_index(d);
            out[i][k] = T::from_f64(w.abs());
            used[i] = true;
        }
    }
    (out, used)
}

/// Per-neuron constants of the `chip` variant, computed once.
#[derive(Clone, Debug)]
struct ChipConsts<T> {
    io: Aligned<T>,
    idc: Aligned<T>,
    ispkthr: Aligned<T>,
    t_ref: Aligned<T>,
    if_nmda: Aligned<T>,
    itau_mem: Aligned<T>,
    igain_mem: Aligned<T>,
    /// `(UT / kappa) C_mem`.
    utk_cmem: Aligned<T>,
    /// `UT / kappa`.
    ut_over_kappa: Aligned<T>,
    /// `kappa / (kappa + 1)`: the exponent of the feedback current.
    fb_exp: Aligned<T>,
    /// Per dendrite: `exp(-dt/tau)`.
    decay: [Aligned<T>; DENDRITES],
    /// Per dendrite: `g (1 - exp(-t_pulse/tau)) exp(-max(dt - t_pulse, 0)/tau) Iscale`: the jump per
    /// unit of weight.
    jump: [Aligned<T>; DENDRITES],
    ahp_decay: Aligned<T>,
    /// The AHP jump per own spike (A).
    ahp_jump: Aligned<T>,
}

/// [`ChipConsts`] as slices (of `N` values; see [`ChipView::cut`]).
struct ChipView<'a, T> {
    io: &'a [T],
    idc: &'a [T],
    ispkthr: &'a [T],
    t_ref: &'a [T],
    if_nmda: &'a [T],
    itau_mem: &'a [T],
    igain_mem: &'a [T],
    utk_cmem: &'a [T],
    ut_over_kappa: &'a [T],
    fb_exp: &'a [T],
    decay: [&'a [T]; DENDRITES],
    jump: [&'a [T]; DENDRITES],
    ahp_decay: &'a [T],
    ahp_jump: &'a [T],
}

impl<'a, T> ChipView<'a, T> {
    /// The same view with every slice re-cut to `n` values where it is used, so that the compiler
    /// sees every length (a bounds check left in the neuron loop stops it vectorising).
    #[inline(always)]
    fn cut(&self, n: usize) -> ChipView<'a, T> {
        ChipView {
            io: &self.io[..n],
            idc: &self.idc[..n],
            ispkthr: &self.ispkthr[..n],
            t_ref: &self.t_ref[..n],
            if_nmda: &self.if_nmda[..n],
            itau_mem: &self.itau_mem[..n],
            igain_mem: &self.igain_mem[..n],
            utk_cmem: &self.utk_cmem[..n],
            ut_over_kappa: &self.ut_over_kappa[..n],
            fb_exp: &self.fb_exp[..n],
            decay: self.decay.map(|d| &d[..n]),
            jump: self.jump.map(|d| &d[..n]),
            ahp_decay: &self.ahp_decay[..n],
            ahp_jump: &self.ahp_jump[..n],
        }
    }
}

/// The state of a `chip` run, `[batch, N]` per variable.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipState<T> {
    /// Batch size.
    pub batch: usize,
    /// Number of neurons.
    pub neurons: usize,
    /// The four dendrite currents (A), [`Dendrite::ALL`] order.
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
    /// The four dendrite currents (A), [`Dendrite::ALL`] order.
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
    /// The state records, with [`Recording::Full`].
    pub records: Option<ChipRecords<T>>,
    /// The state after the last step, to continue from.
    pub final_state: ChipState<T>,
}

impl<T: Real> ChipTrace<T> {
    /// Spike counts per batch element and neuron, `[batch][N]`, summed over the steps.
    pub fn spike_counts(&self) -> Vec<Vec<f64>> {
        (0..self.batch)
            .map(|b| {
                (0..self.neurons)
                    .map(|j| {
                        (0..self.steps)
                            .map(|t| self.spikes[(b * self.steps + t) * self.neurons + j].to_f64())
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }
}

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
}

/// The states recorded by [`ChipSimulator::run_taped`] for the reverse pass.
#[derive(Clone, Debug)]
pub struct ChipTape<T> {
    batch: usize,
    steps: usize,
    /// `[batch][steps + 1][FIELDS][N]`.
    states: Aligned<T>,
}

/// One batch element's view of the state.
struct Element<'a, T> {
    dendrites: [&'a mut [T]; DENDRITES],
    iahp: &'a mut [T],
    imem: &'a mut [T],
    vmem: &'a mut [T],
    timer: &'a mut [T],
    s: &'a mut [T],
}

/// One batch element's outputs: spikes `[steps][N]`, the records, and the tape of states.
struct Outputs<'a, T> {
    spikes: &'a mut [T],
    /// imem, vmem, iahp, then the four dendrites.
    records: Option<[&'a mut [T]; 3 + DENDRITES]>,
    /// `[steps + 1][FIELDS][N]`: the state before the first step (written by the caller) and after
    /// every step.
    tape: Option<&'a mut [T]>,
}

/// The values per neuron of one tape entry: the four dendrites, iahp, imem, the refractory timer and
/// the spike.
const FIELDS: usize = DENDRITES + 4;

impl<T: Real> Element<'_, T> {
    /// Writes the state in tape order into `dst` (`FIELDS * n` values).
    fn save(&self, dst: &mut [T], n: usize) {
        for k in 0..DENDRITES {
            dst[k * n..(k + 1) * n].copy_from_slice(self.dendrites[k]);
        }
        dst[4 * n..5 * n].copy_from_slice(self.iahp);
        dst[5 * n..6 * n].copy_from_slice(self.imem);
        dst[6 * n..7 * n].copy_from_slice(self.timer);
        dst[7 * n..8 * n].copy_from_slice(self.s);
    }
}

/// One neuron's step, with the intermediate values the reverse pass needs.
#[derive(Clone, Copy, Debug)]
struct NeuronStep<T> {
    /// The new dendrite currents.
    d: [T; DENDRITES],
    /// The new adaptation current.
    a: T,
    /// `1 + If_nmda / Imem`: the NMDA gate's divisor.
    h: T,
    ileak: T,
    open: bool,
    pre: T,
    iin: T,
    /// `Imem / (tau (Imem + Igain))`.
    p: T,
    /// `Imem_inf + f - Imem (1 + Iahp / I_leak)`.
    q: T,
    ia: T,
    f: T,
    /// Imem after the Euler step, before and after its floor.
    m: T,
    mc: T,
    /// The spike (0 or 1; a fraction with smooth spikes).
    b: T,
    /// Imem after the reset.
    next: T,
    timer: T,
}

impl<T: Real> ChipSimulator<T> {
    /// Converts and checks a network of the `chip` variant.
    pub fn new(net: &Network) -> Result<ChipSimulator<T>, Error> {
        if net.variant != Variant::Chip {
            return Err(Error::WrongVariant {
                simulator: Variant::Chip.name(),
                network: net.variant.name(),
            });
        }
        net.validate()?;
        let n = net.neurons();
        let defaults;
        let chip = match &net.chip {
            Some(c) => c,
            None => {
                defaults = ChipSynapses::defaults(n);
                &defaults
            }
        };
        let p = &net.params;
        let dt = net.dt;
        let cv = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let kappa: Vec<f64> = (0..n)
            .map(|j| (p.kappa_n[j] + p.kappa_p[j]) / 2.0)
            .collect();
        let utk: Vec<f64> = (0..n).map(|j| p.u_t[j] / kappa[j]).collect();
        // A DPI's per-step decay and jump per unit drive, with the pulse integrated over the step.
        let dpi = |j: usize, i_tau: f64, i_gain: f64, c: f64, i_pulse: f64, c_pulse: f64| {
            let io = p.i_o[j];
            let itau = i_tau.max(io);
            let tau = utk[j] * c / itau;
            let gain = i_gain.max(io) / itau;
            let t_pulse = p.v_th[j] * c_pulse / i_pulse;
            let decay = (-dt / tau).exp();
            let charge = if t_pulse.is_nan() {
                0.0
            } else {
                (1.0 - (-t_pulse / tau).exp()) * (-(dt - t_pulse).max(0.0) / tau).exp()
            };
            (decay, gain * charge)
        };
        let mut decay: [Vec<T>; DENDRITES] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut jump: [Vec<T>; DENDRITES] = std::array::from_fn(|_| Vec::with_capacity(n));
        let (mut ahp_decay, mut ahp_jump) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for j in 0..n {
            for d in Dendrite::ALL {
                let (i_tau, i_gain, c) = match chip.params(d) {
                    None => (p.i_tau_syn[j], p.i_gain_syn[j], p.c_syn[j]),
                    Some(q) => (q.i_tau[j], q.i_gain[j], q.c[j]),
                };
                let (dc, jp) = dpi(j, i_tau, i_gain, c, p.i_pulse[j], p.c_pulse[j]);
                decay[dendrite_index(d)].push(T::from_f64(dc));
                jump[dendrite_index(d)].push(T::from_f64(jp * net.i_scale));
            }
            let (dc, jp) = dpi(
                j,
                p.i_tau_ahp[j],
                p.i_gain_ahp[j],
                p.c_ahp[j],
                p.i_pulse_ahp[j],
                p.c_pulse_ahp[j],
            );
            ahp_decay.push(T::from_f64(dc));
            ahp_jump.push(T::from_f64(jp * p.i_w_ahp[j]));
        }
        let t_ref: Vec<T> = (0..n)
            .map(|j| {
                let t = p.v_th[j] * p.c_ref[j] / p.i_ref[j];
                T::from_f64(if t.is_nan() { 0.0 } else { t })
            })
            .collect();
        let al = |v: Vec<T>| Aligned::from_slice(&v);
        let c = ChipConsts {
            io: al(cv(&p.i_o)),
            idc: al(cv(&p.i_dc)),
            ispkthr: al(cv(&p.i_spkthr)),
            t_ref: al(t_ref),
            if_nmda: al(cv(&p.i_f_nmda)),
            itau_mem: al((0..n)
                .map(|j| T::from_f64(p.i_tau_mem[j].max(p.i_o[j])))
                .collect()),
            igain_mem: al((0..n)
                .map(|j| T::from_f64(p.i_gain_mem[j].max(p.i_o[j])))
                .collect()),
            utk_cmem: al((0..n).map(|j| T::from_f64(utk[j] * p.c_mem[j])).collect()),
            ut_over_kappa: al(cv(&utk)),
            fb_exp: al(kappa.iter().map(|&k| T::from_f64(k / (k + 1.0))).collect()),
            decay: decay.map(al),
            jump: jump.map(al),
            ahp_decay: al(ahp_decay),
            ahp_jump: al(ahp_jump),
        };
        let (w_in, w_in_used) = match &net.w_in {
            Some(w) => {
                let (m, used) = split(w, chip.w_in_types.as_deref());
                (Some(m.map(al)), used)
            }
            None => (None, [false; DENDRITES]),
        };
        let (w_rec, w_rec_used) = split(&net.w_rec, chip.w_rec_types.as_deref());
        let w_rec_t = w_rec
            .each_ref()
            .map(|w| al((0..n * n).map(|k| w[(k % n) * n + k / n]).collect()));
        let w_rec = w_rec.map(al);
        let signed = net.w_rec.as_slice();
        let w_rec_signed_t = al((0..n * n)
            .map(|k| T::from_f64(signed[(k % n) * n + k / n]))
            .collect());
        Ok(ChipSimulator {
            n,
            n_in: net.w_in.as_ref().map(Matrix::rows),
            c,
            w_in,
            w_in_used,
            w_rec,
            w_rec_t,
            w_rec_signed_t,
            w_rec_used,
            w_in_candidates: candidates(
                net.w_in.as_ref().map_or(0, |m| m.as_slice().len()),
                chip.w_in_types.as_deref(),
            ),
            w_rec_candidates: candidates(n * n, chip.w_rec_types.as_deref()),
            signed_in: net.w_in.clone(),
            signed_rec: net.w_rec.clone(),
            types_in: chip.w_in_types.clone(),
            types_rec: chip.w_rec_types.clone(),
            dt: T::from_f64(dt),
            isa: Isa::detect(),
            params: net.params.clone(),
            chip_params: Some(chip.clone()),
            i_scale: net.i_scale,
            smooth: None,
        })
    }

    /// The same simulator with a smooth spike `s = 1 / (1 + (Ispkthr / Imem)^beta)` (also the reset
    /// fraction) instead of the threshold: differentiable everywhere, for checking gradients against
    /// finite differences. Not a model of the chip.
    pub fn with_smooth_spikes(mut self, beta: f64) -> ChipSimulator<T> {
        self.smooth = Some(T::from_f64(beta));
        self
    }

    /// The per-neuron constants as slices; loops re-cut them with [`ChipView::cut`].
    #[inline(always)]
    fn view(&self) -> ChipView<'_, T> {
        let c = &self.c;
        ChipView {
            io: &c.io,
            idc: &c.idc,
            ispkthr: &c.ispkthr,
            t_ref: &c.t_ref,
            if_nmda: &c.if_nmda,
            itau_mem: &c.itau_mem,
            igain_mem: &c.igain_mem,
            utk_cmem: &c.utk_cmem,
            ut_over_kappa: &c.ut_over_kappa,
            fb_exp: &c.fb_exp,
            decay: c.decay.each_ref().map(|v| &v[..]),
            jump: c.jump.each_ref().map(|v| &v[..]),
            ahp_decay: &c.ahp_decay,
            ahp_jump: &c.ahp_jump,
        }
    }

    /// One neuron's step from its previous state (tape order) and the drive of its four dendrites
    /// (weight units): the equations of the module documentation, shared by the forward and the
    /// reverse pass so that both compute the same values. Branch-free (selects), with the kernels'
    /// logarithm and exponential, so that a loop over the neurons vectorises.
    #[inline(always)]
    fn neuron_step(
        &self,
        c: &ChipView<'_, T>,
        j: usize,
        prev: [T; FIELDS],
        u: [T; DENDRITES],
        smooth: Option<T>,
    ) -> NeuronStep<T> {
        let io = c.io[j];
        // Written out (not `array::from_fn`, which the compiler may leave as a call in the loop).
        let dk = |k: usize| io + (prev[k] - io) * c.decay[k][j] + c.jump[k][j] * u[k];
        let d: [T; DENDRITES] = [dk(0), dk(1), dk(2), dk(3)];
        let [i_ampa, i_nmda, i_gaba, i_shunt] = d;
        let a = io + (prev[4] - io) * c.ahp_decay[j] + c.ahp_jump[j] * prev[7];
        let imem = prev[5];
        let h = T::ONE + c.if_nmda[j] / imem;
        let ileak = c.itau_mem[j] + i_shunt;
        let open = prev[6] == T::ZERO;
        let pre = i_ampa + i_nmda / h + c.idc[j] - i_gaba;
        let iin = if open { pre.max_with(T::ZERO) } else { T::ZERO };
        let igain = c.igain_mem[j];
        let tau = c.utk_cmem[j] / ileak;
        let imem_inf = (igain / ileak) * (iin - a - ileak);
        // Imem >= Io, so the logarithm's argument is >= 1 and the exponential's >= 0.
        let ia = io * (c.fb_exp[j] * (imem / io).kernel_ln()).kernel_exp();
        let f = (ia / ileak) * (imem + igain);
        let p = imem / (tau * (imem + igain));
        let q = imem_inf + f - imem * (T::ONE + a / ileak);
        let m = imem + p * q * self.dt;
        let mc = m.max_with(io);
        let b = match smooth {
            None => {
                if mc > c.ispkthr[j] {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Some(beta) => T::ONE / (T::ONE + (beta * (c.ispkthr[j] / mc).ln()).exp()),
        };
        let nb = T::ONE - b;
        NeuronStep {
            d,
            a,
            h,
            ileak,
            open,
            pre,
            iin,
            p,
            q,
            ia,
            f,
            m,
            mc,
            b,
            next: nb * mc + b * io,
            timer: nb * (prev[6] - self.dt).max_with(T::ZERO) + b * c.t_ref[j],
        }
    }

    /// Steps every neuron of one batch element from its state and the drive. Inlined into the
    /// per-instruction-set entry points of [`chip_run_element`].
    #[inline(always)]
    fn step_neurons_body(&self, drive: &[Aligned<T>; DENDRITES], el: &mut Element<'_, T>) {
        let c = self.view();
        let [u0, u1, u2, u3] = drive;
        let [d0, d1, d2, d3] = &mut el.dendrites;
        let (ahp, imem, vmem) = (&mut *el.iahp, &mut *el.imem, &mut *el.vmem);
        let (timer, s) = (&mut *el.timer, &mut *el.s);
        // The slices are cut to N in `neurons_loop`. Two loops, so that the threshold's one (the only one that is not a test) has no call in
        // it and vectorises.
        let smooth = self.smooth;
        match smooth {
            None => neurons_loop(
                self, &c, u0, u1, u2, u3, d0, d1, d2, d3, ahp, imem, vmem, timer, s, None,
            ),
            Some(beta) => neurons_loop(
                self,
                &c,
                u0,
                u1,
                u2,
                u3,
                d0,
                d1,
                d2,
                d3,
                ahp,
                imem,
                vmem,
                timer,
                s,
                Some(beta),
            ),
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.n
    }

    /// The resting state: every current at `Io`, no spike, not refractory.
    pub fn initial_state(&self, batch: usize) -> ChipState<T> {
        let rest: Vec<T> = (0..batch).flat_map(|_| self.c.io.iter().copied()).collect();
        let zero = vec![T::ZERO; batch * self.n];
        ChipState {
            batch,
            neurons: self.n,
            dendrites: std::array::from_fn(|_| rest.clone()),
            iahp: rest.clone(),
            imem: rest,
            vmem: zero.clone(),
            timer_ref: zero.clone(),
            spikes: zero,
        }
    }

    /// Runs `input` from `initial` (default: the resting state). Batch elements run in parallel
    /// threads; the result is bit-identical whatever the thread count.
    pub fn run(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
    ) -> Result<ChipTrace<T>, Error> {
        self.run_impl(input, initial, options, None)
    }

    /// [`ChipSimulator::run`], recording the state before and after every step for
    /// [`ChipSimulator::gradient`] (`8 N` values per step and batch element).
    pub fn run_taped(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
    ) -> Result<(ChipTrace<T>, ChipTape<T>), Error> {
        let (batch, steps) = input.dims();
        let mut states = Aligned::filled(batch * (steps + 1) * FIELDS * self.n, T::ZERO);
        let trace = self.run_impl(input, initial, options, Some(&mut states))?;
        Ok((
            trace,
            ChipTape {
                batch,
                steps,
                states,
            },
        ))
    }

    /// The input as the chip kernels read it, checked (shape against the network, values finite; errors
    /// name the entry): the dense values (events expanded, one allocation per call), the channel count,
    /// and whether they are spikes through `w_in`.
    fn dense_input<'i>(&self, input: &Input<'i, T>) -> Result<(Cow<'i, [T]>, usize, bool), Error> {
        let (batch, steps) = input.dims();
        let (data, channels, spikes_in) = match *input {
            Input::Weighted { data, .. } => (Cow::Borrowed(data), self.n, false),
            Input::Spikes { data, .. } => (
                Cow::Borrowed(data),
                self.n_in.ok_or(Error::NoInputWeights)?,
                true,
            ),
            Input::Events(ev) => (
                Cow::Owned(ev.to_dense()),
                self.n_in.ok_or(Error::NoInputWeights)?,
                true,
            ),
        };
        SpikeEvents::check_dense(&data, batch, steps, channels)?;
        Ok((data, channels, spikes_in))
    }

    fn run_impl(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
        tape: Option<&mut [T]>,
    ) -> Result<ChipTrace<T>, Error> {
        let (batch, steps) = input.dims();
        let n = self.n;
        let (data, channels, spikes_in) = self.dense_input(&input)?;
        let data = &data[..];
        let mut state = match initial {
            Some(s) => {
                let ok = s.batch == batch
                    && s.neurons == n
                    && s.dendrites.iter().all(|v| v.len() == batch * n)
                    && [&s.iahp, &s.imem, &s.vmem, &s.timer_ref, &s.spikes]
                        .iter()
                        .all(|v| v.len() == batch * n);
                if !ok {
                    return Err(Error::StateShape {
                        batch,
                        neurons: n,
                        found_batch: s.batch,
                        found_neurons: s.neurons,
                    });
                }
                s.clone()
            }
            None => self.initial_state(batch),
        };
        let len = batch * steps * n;
        let mut spikes = vec![T::ZERO; len];
        let mut records = (options.recording == Recording::Full).then(|| ChipRecords {
            imem: vec![T::ZERO; len],
            vmem: vec![T::ZERO; len],
            iahp: vec![T::ZERO; len],
            dendrites: std::array::from_fn(|_| vec![T::ZERO; len]),
        });
        if n > 0 && batch > 0 && steps > 0 {
            let per = steps * n;
            let mut outs: Vec<Outputs<'_, T>> = match records.as_mut() {
                Some(r) => {
                    let [d0, d1, d2, d3] = &mut r.dendrites;
                    let mut its = [
                        r.imem.chunks_mut(per),
                        r.vmem.chunks_mut(per),
                        r.iahp.chunks_mut(per),
                        d0.chunks_mut(per),
                        d1.chunks_mut(per),
                        d2.chunks_mut(per),
                        d3.chunks_mut(per),
                    ];
                    spikes
                        .chunks_mut(per)
                        .map(|sp| Outputs {
                            spikes: sp,
                            records: Some(std::array::from_fn(|k| {
                                its[k].next().expect("one chunk per element")
                            })),
                            tape: None,
                        })
                        .collect()
                }
                None => spikes
                    .chunks_mut(per)
                    .map(|sp| Outputs {
                        spikes: sp,
                        records: None,
                        tape: None,
                    })
                    .collect(),
            };
            if let Some(tape) = tape {
                for (out, t) in outs
                    .iter_mut()
                    .zip(tape.chunks_mut((steps + 1) * FIELDS * n))
                {
                    out.tape = Some(t);
                }
            }
            let ChipState {
                dendrites,
                iahp,
                imem,
                vmem,
                timer_ref,
                spikes: s,
                ..
            } = &mut state;
            let [d0, d1, d2, d3] = dendrites;
            let mut its = (
                [
                    d0.chunks_mut(n),
                    d1.chunks_mut(n),
                    d2.chunks_mut(n),
                    d3.chunks_mut(n),
                ],
                iahp.chunks_mut(n),
                imem.chunks_mut(n),
                vmem.chunks_mut(n),
                timer_ref.chunks_mut(n),
                s.chunks_mut(n),
            );
            let mut jobs: Vec<(usize, Element<'_, T>, Outputs<'_, T>)> = Vec::with_capacity(batch);
            for (b, out) in outs.drain(..).enumerate() {
                let el = Element {
                    dendrites: std::array::from_fn(|k| its.0[k].next().expect("one per element")),
                    iahp: its.1.next().expect("one per element"),
                    imem: its.2.next().expect("one per element"),
                    vmem: its.3.next().expect("one per element"),
                    timer: its.4.next().expect("one per element"),
                    s: its.5.next().expect("one per element"),
                };
                jobs.push((b, el, out));
            }
            let threads = match options.threads {
                0 => crate::threads::cores(),
                t => t,
            }
            .clamp(1, batch);
            let work =
                |scratch: &mut Scratch<T>,
                 _: usize,
                 (b, el, out): &mut (usize, Element<'_, T>, Outputs<'_, T>)| {
                    let xs = &data[*b * steps * channels..(*b + 1) * steps * channels];
                    chip_run_element(
                        self, self.isa, xs, channels, spikes_in, steps, el, out, scratch,
                    );
                };
            crate::threads::for_each_item(&mut jobs, threads, || Scratch::new(n), work);
        }
        Ok(ChipTrace {
            batch,
            steps,
            neurons: n,
            spikes,
            records,
            final_state: state,
        })
    }

    /// The time loop of one batch element. No allocation.
    // The neuron loop reads a dozen per-neuron arrays by index; iterators would hide that.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline(always)]
    fn run_element_body(
        &self,
        xs: &[T],
        channels: usize,
        spikes_in: bool,
        steps: usize,
        el: &mut Element<'_, T>,
        out: &mut Outputs<'_, T>,
        scratch: &mut Scratch<T>,
    ) {
        let n = self.n;
        let Scratch { drive, active } = scratch;
        active.clear();
        active.extend((0..n).filter(|&i| el.s[i] != T::ZERO));
        if let Some(tape) = out.tape.as_mut() {
            el.save(&mut tape[..FIELDS * n], n);
        }
        for t in 0..steps {
            // 1. The drive of each dendrite, in weight units (Iscale is in `jump`): the same helper
            // as the reverse pass's recomputation, so both sum in the same order.
            let xt = &xs[t * channels..(t + 1) * channels];
            self.drive(&el.s[..n], xt, spikes_in, drive);
            // 2.-7. Every neuron, then the spiking ones listed for the next step's drive.
            self.step_neurons_body(drive, el);
            active.clear();
            for_each_nonzero(&el.s[..n], |j, _| active.push(j));
            if let Some(tape) = out.tape.as_mut() {
                let e = FIELDS * n;
                let dst = &mut tape[(t + 1) * e..(t + 2) * e];
                el.save(dst, n);
            }
            let row = t * n..(t + 1) * n;
            out.spikes[row.clone()].copy_from_slice(el.s);
            if let Some(r) = out.records.as_mut() {
                r[0][row.clone()].copy_from_slice(el.imem);
                r[1][row.clone()].copy_from_slice(el.vmem);
                r[2][row.clone()].copy_from_slice(el.iahp);
                for k in 0..DENDRITES {
                    r[3 + k][row.clone()].copy_from_slice(el.dendrites[k]);
                }
            }
        }
    }
}

/// The output spikes `[batch, steps, N]` of a network of either variant: [`crate::Simulator`] for
/// `rockpool`, [`ChipSimulator`] for `chip` (a new simulator per call; keep one for repeated runs).
pub fn simulate_spikes<T: Real>(
    net: &Network,
    input: Input<'_, T>,
    options: &RunOptions,
) -> Result<Vec<T>, Error> {
    let options = RunOptions {
        recording: Recording::Spikes,
        ..*options
    };
    match net.variant {
        Variant::Rockpool => Ok(crate::Simulator::<T>::new(net)?
            .run(input, None, &options)?
            .spikes),
        Variant::Chip => Ok(ChipSimulator::<T>::new(net)?
            .run(input, None, &options)?
            .spikes),
    }
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
    /// d loss / d each dendrite current (A^-1), [`Dendrite::ALL`] order.
    pub dendrites: [Option<&'a [T]>; DENDRITES],
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

/// One batch element's share of the gradients.
struct ChipElementGradients<T> {
    /// Per dendrite, `[N][N]`.
    w_rec: [Aligned<T>; DENDRITES],
    /// Per dendrite, `[Nin][N]`.
    w_in: [Aligned<T>; DENDRITES],
    input: Vec<T>,
    i_dc: Aligned<T>,
    /// Adjoints of the per-neuron constants, accumulated over steps (see [`ACC`]).
    acc: [Aligned<T>; ACC],
}

/// Accumulated constant adjoints: `decay` of the four dendrites (0..4), their `jump` (4..8), the AHP's
/// decay (8) and jump (9), `If_nmda` (10), the floored `Itau_mem` (11) and `Igain_mem` (12).
const ACC: usize = 13;

impl<T: Real> ChipSimulator<T> {
    /// The gradients of a loss through the run recorded in `tape`, given the loss's gradient with
    /// respect to the run's outputs. `input` must be the input of that run.
    ///
    /// The reverse pass walks the steps backwards, recomputes each step from the recorded state with
    /// [`ChipSimulator`]'s own step function, and propagates the adjoints (the chain rule of the
    /// equations in the module documentation). The threshold's derivative is Rockpool's `step_pwl`
    /// surrogate (`d spike / d Imem = 1 A^-1` wherever `Imem > Io`); the refractory gate passes
    /// nothing; floors pass 1 above, 0.5 at a tie, 0 below. A weight's gradient is that of the dendrite
    /// its sign selects; at exactly 0, the mean of its excitatory side and its inhibitory side (so a
    /// zero weight can grow either way). The bias currents' gradients come from the per-neuron
    /// constants' adjoints, accumulated over the steps and carried to the currents in `f64`.
    pub fn gradient(
        &self,
        tape: &ChipTape<T>,
        input: Input<'_, T>,
        outputs: &ChipOutputGradients<'_, T>,
        options: &crate::run::GradientOptions,
    ) -> Result<ChipGradients, Error> {
        let want_input = options.input;
        let (batch, steps) = input.dims();
        if (batch, steps) != (tape.batch, tape.steps) {
            return Err(Error::TapeMismatch {
                tape_batch: tape.batch,
                tape_steps: tape.steps,
                batch,
                steps,
            });
        }
        let n = self.n;
        let (data, channels, spikes_in) = self.dense_input(&input)?;
        let data = &data[..];
        let len = batch * steps * n;
        let all = [outputs.spikes, outputs.imem, outputs.vmem, outputs.iahp]
            .into_iter()
            .chain(outputs.dendrites);
        for g in all.flatten() {
            if g.len() != len {
                return Err(Error::InputShape {
                    batch,
                    steps,
                    channels: n,
                    found_len: g.len(),
                });
            }
        }
        let n_in = self.n_in.unwrap_or(0);
        let mut elements: Vec<ChipElementGradients<T>> = (0..batch)
            .map(|_| ChipElementGradients {
                w_rec: std::array::from_fn(|_| Aligned::filled(n * n, T::ZERO)),
                w_in: std::array::from_fn(|_| {
                    Aligned::filled(if spikes_in { n_in * n } else { 0 }, T::ZERO)
                }),
                input: vec![T::ZERO; if want_input { steps * channels } else { 0 }],
                i_dc: Aligned::filled(n, T::ZERO),
                acc: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            })
            .collect();
        let threads = match options.threads {
            0 => crate::threads::cores(),
            t => t,
        }
        .clamp(1, batch.max(1));
        let per_tape = (steps + 1) * FIELDS * n;
        let work = |scratch: &mut ReverseScratch<T>, b: usize, g: &mut ChipElementGradients<T>| {
            let xs = &data[b * steps * channels..(b + 1) * steps * channels];
            let range = b * steps * n..(b + 1) * steps * n;
            fn pick<'a, T>(o: Option<&'a [T]>, r: &std::ops::Range<usize>) -> Option<&'a [T]> {
                o.map(|v| &v[r.clone()])
            }
            let outs = ChipOutputGradients {
                spikes: pick(outputs.spikes, &range),
                imem: pick(outputs.imem, &range),
                vmem: pick(outputs.vmem, &range),
                iahp: pick(outputs.iahp, &range),
                dendrites: outputs.dendrites.map(|o| pick(o, &range)),
            };
            let tape_b = &tape.states[b * per_tape..(b + 1) * per_tape];
            chip_reverse_element(
                self, self.isa, tape_b, xs, channels, spikes_in, want_input, steps, &outs, g,
                scratch,
            );
        };
        crate::threads::for_each_item(&mut elements, threads, || ReverseScratch::new(n), work);
        // Sum over the batch in a fixed order, then carry each dendrite's gradient to the signed
        // weight that drives it.
        let sum_k = |f: &dyn Fn(&ChipElementGradients<T>) -> &[Aligned<T>; DENDRITES],
                     size: usize| {
            let mut out: [Vec<f64>; DENDRITES] = std::array::from_fn(|_| vec![0.0; size]);
            for e in &elements {
                for (o, v) in out.iter_mut().zip(f(e)) {
                    for (a, b) in o.iter_mut().zip(v) {
                        *a += b.to_f64();
                    }
                }
            }
            out
        };
        let signed = |m: &Matrix, g: [Vec<f64>; DENDRITES], types: Option<&[SynapseChoice]>| {
            let v = m
                .as_slice()
                .iter()
                .enumerate()
                .map(|(idx, &w)| {
                    let choice = types.map_or(SynapseChoice::default(), |t| t[idx]);
                    let exc = dendrite_index(if choice.nmda {
                        Dendrite::Nmda
                    } else {
                        Dendrite::Ampa
                    });
                    let inh = dendrite_index(if choice.shunt {
                        Dendrite::Shunt
                    } else {
                        Dendrite::Gaba
                    });
                    if w > 0.0 {
                        g[exc][idx]
                    } else if w < 0.0 {
                        -g[inh][idx]
                    } else {
                        0.5 * (g[exc][idx] - g[inh][idx])
                    }
                })
                .collect();
            Matrix::from_vec(m.rows(), m.cols(), v).expect("same shape")
        };
        let w_rec = signed(
            &self.signed_rec,
            sum_k(&|e| &e.w_rec, n * n),
            self.types_rec.as_deref(),
        );
        let w_in = self
            .signed_in
            .as_ref()
            .filter(|_| spikes_in)
            .map(|m| signed(m, sum_k(&|e| &e.w_in, n_in * n), self.types_in.as_deref()));
        let mut i_dc = vec![0.0; n];
        let mut acc = vec![vec![0.0; n]; ACC];
        for e in &elements {
            for (o, v) in i_dc.iter_mut().zip(&e.i_dc) {
                *o += v.to_f64();
            }
            for (a, v) in acc.iter_mut().zip(&e.acc) {
                for (o, x) in a.iter_mut().zip(v) {
                    *o += x.to_f64();
                }
            }
        }
        let (currents, dendrites) = self.current_gradients(&acc, &i_dc);
        let input = want_input.then(|| {
            elements
                .iter()
                .flat_map(|e| e.input.iter().map(|v| v.to_f64()))
                .collect()
        });
        Ok(ChipGradients {
            w_in,
            w_rec,
            input,
            i_dc,
            currents,
            dendrites,
        })
    }

    /// Carries the accumulated adjoints of the per-neuron constants to the bias currents, in `f64`,
    /// through the once-per-run expressions of [`ChipSimulator::new`] (JAX's tie rule at the `Io`
    /// floors).
    #[allow(clippy::type_complexity)]
    fn current_gradients(
        &self,
        acc: &[Vec<f64>],
        i_dc: &[f64],
    ) -> (Vec<Vec<f64>>, [(Vec<f64>, Vec<f64>); 3]) {
        use crate::Param;
        let p = &self.params;
        let n = self.n;
        let dt = self.dt.to_f64();
        let i_scale = self.i_scale;
        let mut out = vec![vec![0.0; n]; Param::CURRENTS.len()];
        let mut dend: [(Vec<f64>, Vec<f64>); 3] =
            std::array::from_fn(|_| (vec![0.0; n], vec![0.0; n]));
        let idx = |q: Param| {
            Param::CURRENTS
                .iter()
                .position(|&c| c == q)
                .expect("a current")
        };
        for j in 0..n {
            let io = p.i_o[j];
            let utk = p.u_t[j] / ((p.kappa_n[j] + p.kappa_p[j]) / 2.0);
            // One DPI: decay exp(-dt/tau), jump g (1 - e^(-tp/tau)) e^(-max(dt - tp, 0)/tau) scale.
            // Returns d/d (Itau, Igain, Ipulse, scale).
            let dpi = |i_tau: f64,
                       i_gain: f64,
                       c: f64,
                       i_pulse: f64,
                       c_pulse: f64,
                       scale: f64,
                       a_dec: f64,
                       a_jmp: f64| {
                let itau = i_tau.max(io);
                let igain = i_gain.max(io);
                let tau = utk * c / itau;
                let g = igain / itau;
                let tp = p.v_th[j] * c_pulse / i_pulse;
                let dec = (-dt / tau).exp();
                let (charge, dch_dtau, dch_dtp) = if tp.is_nan() {
                    (0.0, 0.0, 0.0)
                } else {
                    let e1 = (-tp / tau).exp();
                    let r = (dt - tp).max(0.0);
                    let e2 = (-r / tau).exp();
                    let dtau = -e1 * tp / (tau * tau) * e2 + (1.0 - e1) * e2 * r / (tau * tau);
                    let dtp = if tp.is_finite() {
                        e1 * e2 / tau + if dt > tp { (1.0 - e1) * e2 / tau } else { 0.0 }
                    } else {
                        0.0
                    };
                    ((1.0 - e1) * e2, dtau, dtp)
                };
                let g_tau = a_dec * dec * dt / (tau * tau) + a_jmp * g * scale * dch_dtau;
                let g_itau = g_tau * (-tau / itau) + a_jmp * charge * scale * (-g / itau);
                let g_igain = a_jmp * charge * scale / itau;
                let g_tp = a_jmp * g * scale * dch_dtp;
                let g_ipulse = if tp.is_finite() && i_pulse > 0.0 {
                    g_tp * (-tp / i_pulse)
                } else {
                    0.0
                };
                let g_scale = a_jmp * g * charge;
                (
                    g_itau * d_clip(i_tau, io),
                    g_igain * d_clip(i_gain, io),
                    g_ipulse,
                    g_scale,
                )
            };
            let chip = self.chip_params.as_ref();
            let mut g_ipulse = 0.0;
            for k in 0..DENDRITES {
                let (i_tau, i_gain, c) = match (k, chip) {
                    (0, _) => (p.i_tau_syn[j], p.i_gain_syn[j], p.c_syn[j]),
                    (_, Some(ch)) => {
                        let d = [&ch.nmda, &ch.gaba, &ch.shunt][k - 1];
                        (d.i_tau[j], d.i_gain[j], d.c[j])
                    }
                    (_, None) => unreachable!("chip_params is always set"),
                };
                let (gt, gg, gp, _) = dpi(
                    i_tau,
                    i_gain,
                    c,
                    p.i_pulse[j],
                    p.c_pulse[j],
                    i_scale,
                    acc[k][j],
                    acc[4 + k][j],
                );
                g_ipulse += gp;
                if k == 0 {
                    out[idx(Param::ItauSyn)][j] = gt;
                    out[idx(Param::IgainSyn)][j] = gg;
                } else {
                    dend[k - 1].0[j] = gt;
                    dend[k - 1].1[j] = gg;
                }
            }
            out[idx(Param::Ipulse)][j] = g_ipulse;
            let (gt, gg, gp, gw) = dpi(
                p.i_tau_ahp[j],
                p.i_gain_ahp[j],
                p.c_ahp[j],
                p.i_pulse_ahp[j],
                p.c_pulse_ahp[j],
                p.i_w_ahp[j],
                acc[8][j],
                acc[9][j],
            );
            out[idx(Param::ItauAhp)][j] = gt;
            out[idx(Param::IgainAhp)][j] = gg;
            out[idx(Param::IpulseAhp)][j] = gp;
            out[idx(Param::IwAhp)][j] = gw;
            out[idx(Param::IfNmda)][j] = acc[10][j];
            out[idx(Param::ItauMem)][j] = acc[11][j] * d_clip(p.i_tau_mem[j], io);
            out[idx(Param::IgainMem)][j] = acc[12][j] * d_clip(p.i_gain_mem[j], io);
            out[idx(Param::Idc)][j] = i_dc[j];
        }
        (out, dend)
    }

    /// The reverse pass of one batch element.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline(always)]
    fn reverse_element_body(
        &self,
        tape: &[T],
        xs: &[T],
        channels: usize,
        spikes_in: bool,
        want_input: bool,
        steps: usize,
        outs: &ChipOutputGradients<'_, T>,
        g: &mut ChipElementGradients<T>,
        sc: &mut ReverseScratch<T>,
    ) {
        let n = self.n;
        let e = FIELDS * n;
        for v in [&mut sc.a_a, &mut sc.a_m, &mut sc.a_s]
            .into_iter()
            .chain(sc.a_d.iter_mut())
        {
            v.fill(T::ZERO);
        }
        for t in (0..steps).rev() {
            let prev = &tape[t * e..(t + 1) * e];
            let row = t * n..(t + 1) * n;
            let add = |a: &mut [T], o: Option<&[T]>| {
                if let Some(o) = o {
                    for (x, &v) in a.iter_mut().zip(&o[row.clone()]) {
                        *x = *x + v;
                    }
                }
            };
            add(&mut sc.a_s, outs.spikes);
            add(&mut sc.a_m, outs.imem);
            add(&mut sc.a_a, outs.iahp);
            for k in 0..DENDRITES {
                add(&mut sc.a_d[k], outs.dendrites[k]);
            }
            // The drive of step t, recomputed.
            let s_prev = &prev[7 * n..8 * n];
            let xt = &xs[t * channels..(t + 1) * channels];
            self.drive(s_prev, xt, spikes_in, &mut sc.u);
            let zeros = &sc.zeros;
            let a_v = outs.vmem.map_or(&zeros[..], |v| &v[row.clone()]);
            let [u0, u1, u2, u3] = &sc.u;
            let [ad0, ad1, ad2, ad3] = &mut sc.a_d;
            let [gu0, gu1, gu2, gu3] = &mut sc.gu;
            self.reverse_neurons_body(
                prev,
                [u0, u1, u2, u3],
                a_v,
                [ad0, ad1, ad2, ad3],
                [gu0, gu1, gu2, gu3],
                &mut sc.a_a,
                &mut sc.a_m,
                &mut sc.a_s,
                &mut g.i_dc,
                &mut g.acc,
            );
            // Through the weights: the previous spikes drive every dendrite of every neuron. The
            // weight gradients are kept for every dendrite (a zero weight needs both of its sides).
            // Recurrent weights on AMPA and GABA only (the deployment's default): one pass over the
            // signed transpose, each weight taking its sign's dendrite gradient (half the memory
            // traffic of one pass per dendrite).
            let signed_pass = !self.w_rec_used[1] && !self.w_rec_used[3];
            if signed_pass && (self.w_rec_used[0] || self.w_rec_used[2]) {
                let rows = &mut sc.rows;
                rows.clear();
                let (ga, gg) = (&sc.gu[0], &sc.gu[2]);
                for j in 0..n {
                    if ga[j] != T::ZERO || gg[j] != T::ZERO {
                        rows.push(j);
                    }
                }
                add_rows(
                    &mut sc.a_s,
                    &sc.rows,
                    |j| (ga[j], -gg[j]),
                    &self.w_rec_signed_t,
                    |a, w, (pos, neg)| w.mul_add(if w > T::ZERO { pos } else { neg }, a),
                );
            }
            for k in 0..DENDRITES {
                let gu = &sc.gu[k];
                if self.w_rec_used[k] && !signed_pass {
                    // a_s_i += sum_j W_ij gu_j, as a sum of rows of the transpose over the neurons
                    // whose drive matters (vectorised, and sparse where the gradient is).
                    let rows = &mut sc.rows;
                    rows.clear();
                    for_each_nonzero(gu, |j, _| rows.push(j));
                    add_rows(
                        &mut sc.a_s,
                        &sc.rows,
                        |j| gu[j],
                        &self.w_rec_t[k],
                        |a, w, d| w.mul_add(d, a),
                    );
                }
                // Only the dendrites some connection can take (by its sign or, at zero, either side).
                if !self.w_rec_candidates[k] {
                    continue;
                }
                for i in 0..n {
                    let si = s_prev[i];
                    if si != T::ZERO {
                        for (gw, gj) in g.w_rec[k][i * n..(i + 1) * n].iter_mut().zip(gu) {
                            *gw = *gw + si * *gj;
                        }
                    }
                }
            }
            if spikes_in && !want_input {
                // Only the weight gradients: the channels that spiked, the candidate dendrites.
                let g_w_in = &mut g.w_in;
                let gu = &sc.gu;
                let candidates = self.w_in_candidates;
                for_each_nonzero(
                    xt,
                    #[inline(always)]
                    |ch, x| {
                        for k in 0..DENDRITES {
                            if candidates[k] {
                                let row = &mut g_w_in[k][ch * n..(ch + 1) * n];
                                for (gw, gj) in row.iter_mut().zip(&gu[k]) {
                                    *gw = *gw + x * *gj;
                                }
                            }
                        }
                    },
                );
            } else if spikes_in {
                let w_in = self.w_in.as_ref().expect("input spikes need w_in");
                for (ch, &x) in xt.iter().enumerate() {
                    let mut gx = T::ZERO;
                    for k in 0..DENDRITES {
                        let gu = &sc.gu[k];
                        if want_input && self.w_in_used[k] {
                            for (wj, gj) in w_in[k][ch * n..(ch + 1) * n].iter().zip(gu) {
                                gx = gx + *wj * *gj;
                            }
                        }
                        if x != T::ZERO && self.w_in_candidates[k] {
                            for (gw, gj) in g.w_in[k][ch * n..(ch + 1) * n].iter_mut().zip(gu) {
                                *gw = *gw + x * *gj;
                            }
                        }
                    }
                    if want_input {
                        g.input[t * channels + ch] = gx;
                    }
                }
            } else if want_input {
                let half = T::ONE / (T::ONE + T::ONE);
                for j in 0..n {
                    let x = xt[j];
                    g.input[t * n + j] = if x > T::ZERO {
                        sc.gu[0][j]
                    } else if x < T::ZERO {
                        -sc.gu[2][j]
                    } else {
                        half * (sc.gu[0][j] - sc.gu[2][j])
                    };
                }
            }
        }
    }

    /// The drive of each dendrite (weight units) from the previous spikes and one step's input.
    #[inline(always)]
    fn drive(&self, s_prev: &[T], xt: &[T], spikes_in: bool, drive: &mut [Aligned<T>; DENDRITES]) {
        let n = self.n;
        for d in drive.iter_mut() {
            d.fill(T::ZERO);
        }
        for (k, dk) in drive.iter_mut().enumerate() {
            if self.w_rec_used[k] {
                let w = &self.w_rec[k];
                for_each_nonzero(
                    s_prev,
                    #[inline(always)]
                    |i, si| {
                        for (dj, &wij) in dk.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                            *dj = *dj + si * wij;
                        }
                    },
                );
            }
        }
        if spikes_in {
            let w_in = self.w_in.as_ref().expect("input spikes need w_in");
            for_each_nonzero(
                xt,
                #[inline(always)]
                |ch, x| {
                    for (k, dk) in drive.iter_mut().enumerate() {
                        if self.w_in_used[k] {
                            for (dj, &w) in dk.iter_mut().zip(&w_in[k][ch * n..(ch + 1) * n]) {
                                *dj = *dj + x * w;
                            }
                        }
                    }
                },
            );
        } else {
            let [ampa, _, gaba, _] = drive;
            for (j, &x) in xt.iter().enumerate() {
                if x > T::ZERO {
                    ampa[j] = ampa[j] + x;
                } else {
                    gaba[j] = gaba[j] - x;
                }
            }
        }
    }
}

/// Per-thread buffers of a `chip` reverse pass, allocated once.
struct ReverseScratch<T> {
    /// `N` zeros (the vmem gradient when the loss has none).
    zeros: Aligned<T>,
    /// The neurons whose drive gradient is not zero, in order.
    rows: Vec<usize>,
    a_d: [Aligned<T>; DENDRITES],
    a_a: Aligned<T>,
    a_m: Aligned<T>,
    a_s: Aligned<T>,
    u: [Aligned<T>; DENDRITES],
    gu: [Aligned<T>; DENDRITES],
}

impl<T: Real> ReverseScratch<T> {
    fn new(n: usize) -> ReverseScratch<T> {
        ReverseScratch {
            zeros: Aligned::filled(n, T::ZERO),
            rows: Vec::with_capacity(n),
            a_d: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            a_a: Aligned::filled(n, T::ZERO),
            a_m: Aligned::filled(n, T::ZERO),
            a_s: Aligned::filled(n, T::ZERO),
            u: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            gu: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
        }
    }
}

impl<T: Real> ChipSimulator<T> {
    /// The reverse of one step for every neuron of one batch element (see `reverse_element`).
    /// Inlined into the per-instruction-set entry points of [`chip_reverse_element`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn reverse_neurons_body(
        &self,
        prev: &[T],
        u: [&Aligned<T>; DENDRITES],
        a_v: &[T],
        a_d: [&mut Aligned<T>; DENDRITES],
        gu: [&mut Aligned<T>; DENDRITES],
        a_a: &mut [T],
        a_m: &mut [T],
        a_s: &mut [T],
        g_idc: &mut [T],
        acc: &mut [Aligned<T>; ACC],
    ) {
        let c = self.view();
        let [u0, u1, u2, u3] = u;
        let [ad0, ad1, ad2, ad3] = a_d;
        let [gu0, gu1, gu2, gu3] = gu;
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12] = acc;
        match self.smooth {
            None => reverse_loop(
                self, &c, prev, u0, u1, u2, u3, a_v, ad0, ad1, ad2, ad3, gu0, gu1, gu2, gu3, a_a,
                a_m, a_s, g_idc, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, None,
            ),
            Some(beta) => reverse_loop(
                self,
                &c,
                prev,
                u0,
                u1,
                u2,
                u3,
                a_v,
                ad0,
                ad1,
                ad2,
                ad3,
                gu0,
                gu1,
                gu2,
                gu3,
                a_a,
                a_m,
                a_s,
                g_idc,
                c0,
                c1,
                c2,
                c3,
                c4,
                c5,
                c6,
                c7,
                c8,
                c9,
                c10,
                c11,
                c12,
                Some(beta),
            ),
        }
    }
}

/// The reverse of one step, neuron by neuron: the chain rule of [`ChipSimulator::neuron_step`]
/// (recomputed from the previous state `prev`, tape order). On entry `a_*` hold the adjoints of this
/// step's state; on return those of the previous state (for the spike, its adaptation path only);
/// `gu` receives the adjoint of each dendrite's drive and `g_idc` accumulates that of `Idc`. A free
/// function over separate slices so that it vectorises (see [`neurons_loop`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn reverse_loop<T: Real>(
    sim: &ChipSimulator<T>,
    c: &ChipView<'_, T>,
    prev: &[T],
    u0: &[T],
    u1: &[T],
    u2: &[T],
    u3: &[T],
    a_v: &[T],
    ad0: &mut [T],
    ad1: &mut [T],
    ad2: &mut [T],
    ad3: &mut [T],
    gu0: &mut [T],
    gu1: &mut [T],
    gu2: &mut [T],
    gu3: &mut [T],
    a_a: &mut [T],
    a_m: &mut [T],
    a_s: &mut [T],
    g_idc: &mut [T],
    c0: &mut [T],
    c1: &mut [T],
    c2: &mut [T],
    c3: &mut [T],
    c4: &mut [T],
    c5: &mut [T],
    c6: &mut [T],
    c7: &mut [T],
    c8: &mut [T],
    c9: &mut [T],
    c10: &mut [T],
    c11: &mut [T],
    c12: &mut [T],
    smooth: Option<T>,
) {
    let n = sim.n;
    let dt = sim.dt;
    let (c0, c1, c2, c3) = (&mut c0[..n], &mut c1[..n], &mut c2[..n], &mut c3[..n]);
    let (c4, c5, c6, c7) = (&mut c4[..n], &mut c5[..n], &mut c6[..n], &mut c7[..n]);
    let (c8, c9, c10) = (&mut c8[..n], &mut c9[..n], &mut c10[..n]);
    let (c11, c12) = (&mut c11[..n], &mut c12[..n]);
    let c = &c.cut(n);
    let prev = &prev[..FIELDS * n];
    let (p0, p1, p2, p3) = (
        &prev[..n],
        &prev[n..2 * n],
        &prev[2 * n..3 * n],
        &prev[3 * n..4 * n],
    );
    let (p4, p5, p6, p7) = (
        &prev[4 * n..5 * n],
        &prev[5 * n..6 * n],
        &prev[6 * n..7 * n],
        &prev[7 * n..8 * n],
    );
    let (u0, u1, u2, u3, a_v) = (&u0[..n], &u1[..n], &u2[..n], &u3[..n], &a_v[..n]);
    let (ad0, ad1, ad2, ad3) = (&mut ad0[..n], &mut ad1[..n], &mut ad2[..n], &mut ad3[..n]);
    let (gu0, gu1, gu2, gu3) = (&mut gu0[..n], &mut gu1[..n], &mut gu2[..n], &mut gu3[..n]);
    let (a_a, a_m, a_s, g_idc) = (&mut a_a[..n], &mut a_m[..n], &mut a_s[..n], &mut g_idc[..n]);
    for j in 0..n {
        let pj: [T; FIELDS] = [p0[j], p1[j], p2[j], p3[j], p4[j], p5[j], p6[j], p7[j]];
        let st = sim.neuron_step(c, j, pj, [u0[j], u1[j], u2[j], u3[j]], smooth);
        let io = c.io[j];
        let (m_prev, a_new) = (pj[5], st.a);
        let (l, igm, ucm) = (st.ileak, c.igain_mem[j], c.utk_cmem[j]);
        // Vmem = (UT/kappa) ln(Imem'/Io) and the reset Imem' = (1 - b) mc + b Io.
        let g_next = a_m[j] + a_v[j] * c.ut_over_kappa[j] / st.next;
        let g_b = g_next * (io - st.mc) + a_s[j];
        let sigma = match smooth {
            None => {
                if st.mc > io {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Some(beta) => beta * st.b * (T::ONE - st.b) / st.mc,
        };
        let g_mc = g_next * (T::ONE - st.b) + g_b * sigma;
        let g_m = g_mc * d_clip(st.m, io);
        // m = Imem + p q dt.
        let mut g_mprev = g_m;
        let g_p = g_m * dt * st.q;
        let g_q = g_m * dt * st.p;
        let mpg = m_prev + igm;
        let dp_dm = l * igm / (ucm * mpg * mpg);
        let dp_dl = st.p / l;
        let dq_diin = igm / l;
        let dq_da = -(igm / l) - m_prev / l;
        let dq_dl = -(igm * (st.iin - a_new) / (l * l)) - st.f / l + m_prev * a_new / (l * l);
        let df_dm = (st.ia / l) * (c.fb_exp[j] * mpg / m_prev + T::ONE);
        let dq_dm = df_dm - (T::ONE + a_new / l);
        g_mprev = g_mprev + g_p * dp_dm + g_q * dq_dm;
        let g_l = g_p * dp_dl + g_q * dq_dl;
        let g_iin = g_q * dq_diin;
        let g_a = a_a[j] + g_q * dq_da;
        let g_pre = if st.open {
            g_iin * d_clip(st.pre, T::ZERO)
        } else {
            T::ZERO
        };
        g_idc[j] = g_idc[j] + g_pre;
        // The NMDA gate nmda = D_nmda / (1 + If_nmda / Imem).
        let g_nmda = g_pre;
        g_mprev = g_mprev + g_nmda * st.d[1] * c.if_nmda[j] / (st.h * st.h * m_prev * m_prev);
        let g_d = [
            ad0[j] + g_pre,
            ad1[j] + g_nmda / st.h,
            ad2[j] - g_pre,
            ad3[j] + g_l,
        ];
        // The constants' adjoints: decay and jump of each dendrite and of the AHP, If_nmda, the
        // membrane's floored leak and gain.
        c0[j] = c0[j] + g_d[0] * (pj[0] - io);
        c1[j] = c1[j] + g_d[1] * (pj[1] - io);
        c2[j] = c2[j] + g_d[2] * (pj[2] - io);
        c3[j] = c3[j] + g_d[3] * (pj[3] - io);
        c4[j] = c4[j] + g_d[0] * u0[j];
        c5[j] = c5[j] + g_d[1] * u1[j];
        c6[j] = c6[j] + g_d[2] * u2[j];
        c7[j] = c7[j] + g_d[3] * u3[j];
        c8[j] = c8[j] + g_a * (pj[4] - io);
        c9[j] = c9[j] + g_a * pj[7];
        c10[j] = c10[j] - g_nmda * st.d[1] / (st.h * st.h * m_prev);
        c11[j] = c11[j] + g_l;
        let dp_digm = -(m_prev * l / (ucm * mpg * mpg));
        let dq_digm = (st.iin - a_new) / l - T::ONE + st.ia / l;
        c12[j] = c12[j] + g_p * dp_digm + g_q * dq_digm;
        ad0[j] = g_d[0] * c.decay[0][j];
        ad1[j] = g_d[1] * c.decay[1][j];
        ad2[j] = g_d[2] * c.decay[2][j];
        ad3[j] = g_d[3] * c.decay[3][j];
        gu0[j] = g_d[0] * c.jump[0][j];
        gu1[j] = g_d[1] * c.jump[1][j];
        gu2[j] = g_d[2] * c.jump[2][j];
        gu3[j] = g_d[3] * c.jump[3][j];
        a_a[j] = g_a * c.ahp_decay[j];
        a_m[j] = g_mprev;
        // The previous spike's own path (adaptation); the recurrent one is added by the caller.
        a_s[j] = g_a * c.ahp_jump[j];
    }
}

isa_kernel!(ChipSimulator: chip_reverse_element => reverse_element_body(
    tape: &[T],
    xs: &[T],
    channels: usize,
    spikes_in: bool,
    want_input: bool,
    steps: usize,
    outs: &ChipOutputGradients<'_, T>,
    g: &mut ChipElementGradients<T>,
    sc: &mut ReverseScratch<T>,
));

/// The neuron loop of [`ChipSimulator::step_neurons_body`]. A free function whose written slices are
/// separate parameters on purpose: the compiler then knows they do not alias each other or the
/// constants, and vectorises the loop (see the `rockpool` variant's `step_body`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn neurons_loop<T: Real>(
    sim: &ChipSimulator<T>,
    c: &ChipView<'_, T>,
    u0: &[T],
    u1: &[T],
    u2: &[T],
    u3: &[T],
    d0: &mut [T],
    d1: &mut [T],
    d2: &mut [T],
    d3: &mut [T],
    ahp: &mut [T],
    imem: &mut [T],
    vmem: &mut [T],
    timer: &mut [T],
    s: &mut [T],
    smooth: Option<T>,
) {
    let n = sim.n;
    let (u0, u1, u2, u3) = (&u0[..n], &u1[..n], &u2[..n], &u3[..n]);
    let (d0, d1, d2, d3) = (&mut d0[..n], &mut d1[..n], &mut d2[..n], &mut d3[..n]);
    let (ahp, imem, vmem) = (&mut ahp[..n], &mut imem[..n], &mut vmem[..n]);
    let (timer, s) = (&mut timer[..n], &mut s[..n]);
    let c = &c.cut(n);
    for j in 0..n {
        let prev = [d0[j], d1[j], d2[j], d3[j], ahp[j], imem[j], timer[j], s[j]];
        let st = sim.neuron_step(c, j, prev, [u0[j], u1[j], u2[j], u3[j]], smooth);
        d0[j] = st.d[0];
        d1[j] = st.d[1];
        d2[j] = st.d[2];
        d3[j] = st.d[3];
        ahp[j] = st.a;
        imem[j] = st.next;
        timer[j] = st.timer;
        vmem[j] = c.ut_over_kappa[j] * (st.next / c.io[j]).kernel_ln();
        s[j] = st.b;
    }
}

isa_kernel!(ChipSimulator: chip_run_element => run_element_body(
    xs: &[T],
    channels: usize,
    spikes_in: bool,
    steps: usize,
    el: &mut Element<'_, T>,
    out: &mut Outputs<'_, T>,
    scratch: &mut Scratch<T>,
));

/// Per-thread buffers of a `chip` run, allocated once.
struct Scratch<T> {
    drive: [Aligned<T>; DENDRITES],
    active: Vec<usize>,
}

impl<T: Real> Scratch<T> {
    fn new(n: usize) -> Scratch<T> {
        Scratch {
            drive: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            active: Vec::with_capacity(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Simulator;

    fn chip_net(n: usize) -> Network {
        let mut net = Network::with_defaults(n);
        net.variant = Variant::Chip;
        net
    }

    fn run(
        net: &Network,
        data: &[f64],
        batch: usize,
        steps: usize,
        spikes: bool,
    ) -> ChipTrace<f64> {
        let sim = ChipSimulator::<f64>::new(net).unwrap();
        let input = if spikes {
            Input::Spikes { data, batch, steps }
        } else {
            Input::Weighted { data, batch, steps }
        };
        let opts = RunOptions {
            recording: Recording::Full,
            threads: 1,
        };
        sim.run(input, None, &opts).unwrap()
    }

    /// Firing rates (Hz) of neurons driven by the DC currents `idc`, over `seconds`, at time step `dt`.
    fn rates(idc: &[f64], dt: f64, seconds: f64) -> Vec<f64> {
        let mut net = chip_net(idc.len());
        net.dt = dt;
        net.params.i_dc = idc.to_vec();
        let steps = (seconds / dt).round() as usize;
        let x = vec![0.0; steps * idc.len()];
        let sim = ChipSimulator::<f64>::new(&net).unwrap();
        let tr = sim
            .run(
                Input::Weighted {
                    data: &x,
                    batch: 1,
                    steps,
                },
                None,
                &RunOptions {
                    recording: Recording::Spikes,
                    threads: 1,
                },
            )
            .unwrap();
        tr.spike_counts()[0].iter().map(|c| c / seconds).collect()
    }

    #[test]
    fn the_rate_under_dc_input_follows_the_f_i_curve_of_a_much_finer_step() {
        // Rates from 4 to 55 Hz. The reference step is 100x finer than the checked one; halving the
        // step further moves no rate by more than one spike in the window.
        let idc = [2e-11, 5e-11, 1e-10, 2e-10, 5e-10, 1e-9, 2e-9];
        let seconds = 2.0;
        let reference = rates(&idc, 1e-6 * 10.0, seconds);
        assert!(reference.windows(2).all(|w| w[0] < w[1]), "{reference:?}");
        assert!(reference[0] > 1.0 && reference[6] > 40.0, "{reference:?}");
        let error = |dt: f64| -> Vec<f64> {
            rates(&idc, dt, seconds)
                .iter()
                .zip(&reference)
                .map(|(r, f)| (r - f).abs())
                .collect()
        };
        // At 0.1 ms every rate is within 5 % of the reference (plus one spike of counting).
        let fine = error(1e-4);
        for (k, e) in fine.iter().enumerate() {
            assert!(
                *e <= 0.05 * reference[k] + 1.0 / seconds,
                "Idc {}: {fine:?}",
                idc[k]
            );
        }
        // Explicit Euler converges: the error shrinks with the step, at every current.
        let coarse = error(1e-3);
        let middle = error(3e-4);
        for k in 0..idc.len() {
            assert!(
                fine[k] <= middle[k] && middle[k] <= coarse[k],
                "{coarse:?} {middle:?} {fine:?}"
            );
        }
    }

    /// One neuron, four input channels, one per dendrite (AMPA, NMDA, GABA, SHUNT), each dendrite with
    /// its own time constant.
    fn four_dendrite_net(taus: [f64; 4], w: f64) -> Network {
        let mut net = chip_net(1);
        let kappa = (net.params.kappa_n[0] + net.params.kappa_p[0]) / 2.0;
        net.params.i_tau_syn[0] = net.params.u_t[0] / kappa * net.params.c_syn[0] / taus[0];
        net.params.i_gain_syn[0] = 100.0 * net.params.i_tau_syn[0];
        let mut chip = ChipSynapses::defaults(1);
        chip.nmda = DendriteParams::with_time_constant(1, taus[1], 100.0, 25e-12);
        chip.gaba = DendriteParams::with_time_constant(1, taus[2], 100.0, 25e-12);
        chip.shunt = DendriteParams::with_time_constant(1, taus[3], 100.0, 24.5e-12);
        chip.w_in_types = Some(vec![
            SynapseChoice::default(),
            SynapseChoice {
                nmda: true,
                shunt: false,
            },
            SynapseChoice::default(),
            SynapseChoice {
                nmda: false,
                shunt: true,
            },
        ]);
        net.w_in = Matrix::from_vec(4, 1, vec![w, w, -w, -w]);
        net.chip = Some(chip);
        net
    }

    #[test]
    fn an_isolated_dendrite_jumps_by_its_pulse_and_decays_with_its_time_constant() {
        let taus = [10e-3, 50e-3, 5e-3, 20e-3];
        let net = four_dendrite_net(taus, 2.0);
        let steps = 40;
        let mut x = vec![0.0; steps * 4];
        x[..4].fill(1.0);
        let tr = run(&net, &x, 1, steps, true);
        let rec = tr.records.unwrap();
        let p = &net.params;
        let io = p.i_o[0];
        let dt = net.dt;
        let t_pulse = p.v_th[0] * p.c_pulse[0] / p.i_pulse[0];
        for (k, &tau) in taus.iter().enumerate() {
            let i = &rec.dendrites[k];
            // The pulse, integrated exactly: charge towards g Iw for t_pulse, then decay for the rest.
            let target = 100.0 * 2.0 * net.i_scale;
            let jump = target * (1.0 - (-t_pulse / tau).exp()) * (-(dt - t_pulse) / tau).exp();
            let rel = ((i[0] - io) - jump).abs() / jump;
            assert!(rel < 1e-9, "dendrite {k}: jump {} vs {jump}", i[0] - io);
            // Then a pure exponential towards Io with the dendrite's own time constant.
            for t in 1..steps {
                let ratio = (i[t] - io) / (i[t - 1] - io);
                let expected = (-dt / tau).exp();
                assert!(
                    (ratio - expected).abs() < 1e-9,
                    "dendrite {k}, step {t}: {ratio} vs {expected}"
                );
            }
            let fitted = -dt * 30.0 / ((i[31] - io) / (i[1] - io)).ln();
            assert!(
                (fitted - tau).abs() < 1e-9 * tau,
                "dendrite {k}: tau {fitted} vs {tau}"
            );
        }
        // Every other dendrite stays at rest when only one is driven.
        let mut only_gaba = vec![0.0; steps * 4];
        only_gaba[2] = 1.0;
        let rec = run(&net, &only_gaba, 1, steps, true).records.unwrap();
        for k in [0, 1, 3] {
            assert!(
                rec.dendrites[k].iter().all(|&v| v == io),
                "dendrite {k} moved"
            );
        }
        assert!(rec.dendrites[2][0] > 10.0 * io);
    }

    /// A neuron driven by `idc` with a regular 100 Hz input through weight `w` of synapse `choice`;
    /// its spike count over 2 s.
    fn count_with_input(idc: f64, w: f64, choice: SynapseChoice) -> f64 {
        let mut net = chip_net(1);
        net.params.i_dc[0] = idc;
        net.w_in = Matrix::from_vec(1, 1, vec![w]);
        let mut chip = ChipSynapses::defaults(1);
        chip.w_in_types = Some(vec![choice]);
        net.chip = Some(chip);
        let steps = 2000;
        let x: Vec<f64> = (0..steps)
            .map(|t| f64::from(u8::from(t % 10 == 0)))
            .collect();
        run(&net, &x, 1, steps, true).spike_counts()[0][0]
    }

    #[test]
    fn inhibitory_input_lowers_the_rate_and_excitatory_input_raises_it() {
        let idc = 5e-10;
        let plain = count_with_input(idc, 0.0, SynapseChoice::default());
        assert!(plain > 40.0, "{plain}");
        let gaba = count_with_input(idc, -0.5, SynapseChoice::default());
        let shunt = count_with_input(
            idc,
            -0.5,
            SynapseChoice {
                nmda: false,
                shunt: true,
            },
        );
        let ampa = count_with_input(idc, 0.5, SynapseChoice::default());
        assert!(gaba < 0.8 * plain, "GABA: {gaba} vs {plain}");
        assert!(shunt < 0.8 * plain, "SHUNT: {shunt} vs {plain}");
        assert!(ampa > 1.2 * plain, "AMPA: {ampa} vs {plain}");
        // Stronger inhibition silences the neuron.
        assert_eq!(count_with_input(idc, -5.0, SynapseChoice::default()), 0.0);
        // The `rockpool` variant, same network and input: the negative weight changes nothing.
        let mut net = Network::with_defaults(1);
        net.params.i_dc[0] = idc;
        let mut sim_counts = |w: f64| {
            net.w_in = Matrix::from_vec(1, 1, vec![w]);
            let sim = Simulator::<f64>::new(&net).unwrap();
            let x: Vec<f64> = (0..2000)
                .map(|t| f64::from(u8::from(t % 10 == 0)))
                .collect();
            let tr = sim
                .run(
                    Input::Spikes {
                        data: &x,
                        batch: 1,
                        steps: 2000,
                    },
                    None,
                    &RunOptions::default(),
                )
                .unwrap();
            tr.spikes.iter().sum::<f64>()
        };
        assert_eq!(sim_counts(-0.5), sim_counts(0.0));
    }

    #[test]
    fn nmda_input_is_gated_by_the_membrane_voltage() {
        // The same input on AMPA or on NMDA, from rest and from a depolarised membrane (a DC current
        // below the rheobase): the peak rise of Imem it causes, NMDA over AMPA.
        let peak_rise = |idc: f64, nmda: bool| -> f64 {
            let mut net = chip_net(1);
            net.params.i_dc[0] = idc;
            net.params.i_f_nmda[0] = 5e-11;
            net.w_in = Matrix::from_vec(1, 1, vec![0.02]);
            let mut chip = ChipSynapses::defaults(1);
            chip.w_in_types = Some(vec![SynapseChoice { nmda, shunt: false }]);
            net.chip = Some(chip);
            let (settle, steps) = (300, 400);
            let mut x = vec![0.0; steps];
            x[settle] = 1.0;
            let tr = run(&net, &x, 1, steps, true);
            assert_eq!(tr.spike_counts()[0][0], 0.0, "the test wants no spike");
            let imem = tr.records.unwrap().imem;
            let before = imem[settle - 1];
            imem[settle..].iter().fold(0.0f64, |m, &v| m.max(v)) - before
        };
        // At rest (Imem = Io, a hundredth of If_nmda) the gate is closed; with the membrane held at
        // about If_nmda it lets about half through.
        let at_rest = peak_rise(0.0, true) / peak_rise(0.0, false);
        let depolarised = peak_rise(1e-11, true) / peak_rise(1e-11, false);
        assert!(at_rest < 0.05, "NMDA/AMPA at rest: {at_rest}");
        assert!(depolarised > 0.3, "NMDA/AMPA depolarised: {depolarised}");
    }

    #[test]
    fn bad_networks_and_inputs_are_named_errors() {
        let net = Network::with_defaults(2);
        assert_eq!(
            ChipSimulator::<f64>::new(&net).unwrap_err().to_string(),
            "this network is of the `rockpool` model variant; the `chip` simulator cannot run it"
        );
        let mut net = chip_net(2);
        assert!(Simulator::<f64>::new(&net).is_err());
        let mut chip = ChipSynapses::defaults(2);
        chip.gaba.c[1] = 0.0;
        net.chip = Some(chip.clone());
        assert_eq!(
            ChipSimulator::<f64>::new(&net).unwrap_err().to_string(),
            "C_gaba of neuron 1 is 0e0; it must be finite and > 0"
        );
        chip.gaba.c[1] = 25e-12;
        chip.w_rec_types = Some(vec![SynapseChoice::default(); 3]);
        net.chip = Some(chip);
        assert_eq!(
            ChipSimulator::<f64>::new(&net).unwrap_err().to_string(),
            "the synapse types of w_rec have 3 entries, expected one per weight (4)"
        );
        let net = chip_net(2);
        let sim = ChipSimulator::<f64>::new(&net).unwrap();
        let opts = RunOptions::default();
        let bad = [0.0, f64::NAN, 0.0, 0.0];
        assert!(matches!(
            sim.run(
                Input::Weighted {
                    data: &bad,
                    batch: 1,
                    steps: 2
                },
                None,
                &opts
            ),
            Err(Error::NonFiniteInput {
                batch: 0,
                step: 0,
                channel: 1
            })
        ));
        assert!(matches!(
            sim.run(
                Input::Spikes {
                    data: &bad,
                    batch: 1,
                    steps: 2
                },
                None,
                &opts
            ),
            Err(Error::NoInputWeights)
        ));
    }

    #[test]
    fn threads_and_split_runs_do_not_change_a_bit() {
        let mut net = chip_net(5);
        let w: Vec<f64> = (0..15)
            .map(|k| ((k * 7) % 11) as f64 / 11.0 - 0.4)
            .collect();
        net.w_in = Matrix::from_vec(3, 5, w);
        net.w_rec = Matrix::from_vec(
            5,
            5,
            (0..25)
                .map(|k| ((k * 5) % 7) as f64 * 0.05 - 0.12)
                .collect(),
        )
        .unwrap();
        let mut chip = ChipSynapses::defaults(5);
        chip.w_rec_types = Some(
            (0..25)
                .map(|k| SynapseChoice {
                    nmda: k % 3 == 0,
                    shunt: k % 2 == 0,
                })
                .collect(),
        );
        net.chip = Some(chip);
        for j in 0..5 {
            net.params.i_dc[j] = 2e-10 * (j + 1) as f64;
        }
        let (batch, steps) = (3, 300);
        let x: Vec<f32> = (0..batch * steps * 3)
            .map(|k| f32::from(u8::from((k * 2654435761) % 13 == 0)))
            .collect();
        let sim = ChipSimulator::<f32>::new(&net).unwrap();
        let full = |threads: usize| {
            sim.run(
                Input::Spikes {
                    data: &x,
                    batch,
                    steps,
                },
                None,
                &RunOptions {
                    recording: Recording::Full,
                    threads,
                },
            )
            .unwrap()
        };
        let one = full(1);
        assert_eq!(full(2), one);
        assert!(one.spikes.iter().sum::<f32>() > 20.0);
        // The same spikes held as events give the same run; events of another width are refused.
        let events = crate::SpikeEvents::from_dense(&x, batch, steps, 3).unwrap();
        let opts_full = RunOptions {
            recording: Recording::Full,
            threads: 1,
        };
        assert_eq!(
            sim.run(Input::Events(&events), None, &opts_full).unwrap(),
            one
        );
        let wide =
            crate::SpikeEvents::from_dense(&vec![0.0f32; batch * steps * 4], batch, steps, 4)
                .unwrap();
        assert!(matches!(
            sim.run(Input::Events(&wide), None, &opts_full),
            Err(Error::InputShape { channels: 3, .. })
        ));
        // Two halves, the second from the first's final state, equal the whole (spikes of batch 0).
        let half = steps / 2;
        let first: Vec<f32> = x[..half * 3].to_vec();
        let second: Vec<f32> = x[half * 3..steps * 3].to_vec();
        let opts = RunOptions::default();
        let a = sim
            .run(
                Input::Spikes {
                    data: &first,
                    batch: 1,
                    steps: half,
                },
                None,
                &opts,
            )
            .unwrap();
        let b = sim
            .run(
                Input::Spikes {
                    data: &second,
                    batch: 1,
                    steps: steps - half,
                },
                Some(&a.final_state),
                &opts,
            )
            .unwrap();
        let joined: Vec<f32> = a.spikes.iter().chain(&b.spikes).copied().collect();
        assert_eq!(joined, one.spikes[..steps * 5]);
    }

    /// A small network in which every path of the gradient is active: input and recurrent weights
    /// of both signs on all four dendrites, NMDA gating, adaptation, no refractory period (its gate is
    /// not differentiable).
    fn gradient_net() -> Network {
        let (n, n_in) = (3, 2);
        let mut net = chip_net(n);
        net.w_in = Matrix::from_vec(n_in, n, vec![3.0, -2.0, 4.0, 2.5, 3.5, -1.5]);
        net.w_rec =
            Matrix::from_vec(n, n, vec![0.0, 1.5, -2.0, -1.0, 0.0, 2.0, 1.2, -0.8, 0.0]).unwrap();
        let mut chip = ChipSynapses::defaults(n);
        chip.w_in_types = Some(
            (0..n_in * n)
                .map(|k| SynapseChoice {
                    nmda: k % 2 == 1,
                    shunt: k % 3 == 0,
                })
                .collect(),
        );
        chip.w_rec_types = Some(
            (0..n * n)
                .map(|k| SynapseChoice {
                    nmda: k % 3 == 1,
                    shunt: k % 2 == 1,
                })
                .collect(),
        );
        chip.nmda = DendriteParams::with_time_constant(n, 30e-3, 100.0, 25e-12);
        chip.gaba = DendriteParams::with_time_constant(n, 6e-3, 80.0, 25e-12);
        net.chip = Some(chip);
        for j in 0..n {
            net.params.c_ref[j] = 0.0;
            net.params.i_dc[j] = 8e-12 + 2e-12 * j as f64;
            net.params.i_f_nmda[j] = 2e-11;
            net.params.i_w_ahp[j] = 1e-10;
            net.params.i_gain_ahp[j] *= 4.0;
        }
        net
    }

    fn coefficients(len: usize, seed: usize) -> Vec<f64> {
        (0..len)
            .map(|k| (((k + 1) * (seed * 2 + 7919)) % 101) as f64 / 101.0 - 0.4)
            .collect()
    }

    /// Scales that bring every output to order 1 in the loss.
    const SCALES: [f64; 8] = [1.0, 1e10, 1.0, 1e10, 1e9, 1e9, 1e9, 1e9];

    /// `L = sum of c_k * output_k * scale_k` over spikes, imem, vmem, iahp and the four dendrites.
    fn loss_of(trace: &ChipTrace<f64>) -> f64 {
        let r = trace.records.as_ref().unwrap();
        let outs: [&Vec<f64>; 8] = [
            &trace.spikes,
            &r.imem,
            &r.vmem,
            &r.iahp,
            &r.dendrites[0],
            &r.dendrites[1],
            &r.dendrites[2],
            &r.dendrites[3],
        ];
        outs.iter()
            .enumerate()
            .map(|(k, v)| {
                v.iter()
                    .zip(coefficients(v.len(), k))
                    .map(|(a, c)| a * c * SCALES[k])
                    .sum::<f64>()
            })
            .sum()
    }

    fn smooth_run(net: &Network, x: &[f64], batch: usize, steps: usize, spikes: bool) -> f64 {
        let sim = ChipSimulator::<f64>::new(net)
            .unwrap()
            .with_smooth_spikes(5.0);
        let input = if spikes {
            Input::Spikes {
                data: x,
                batch,
                steps,
            }
        } else {
            Input::Weighted {
                data: x,
                batch,
                steps,
            }
        };
        let opts = RunOptions {
            recording: Recording::Full,
            threads: 1,
        };
        loss_of(&sim.run(input, None, &opts).unwrap())
    }

    fn adjoint(
        net: &Network,
        x: &[f64],
        batch: usize,
        steps: usize,
        spikes: bool,
    ) -> ChipGradients {
        let sim = ChipSimulator::<f64>::new(net)
            .unwrap()
            .with_smooth_spikes(5.0);
        let input = || {
            if spikes {
                Input::Spikes {
                    data: x,
                    batch,
                    steps,
                }
            } else {
                Input::Weighted {
                    data: x,
                    batch,
                    steps,
                }
            }
        };
        let opts = RunOptions {
            recording: Recording::Full,
            threads: 2,
        };
        let (_, tape) = sim.run_taped(input(), None, &opts).unwrap();
        let len = batch * steps * net.neurons();
        let c: Vec<Vec<f64>> = (0..8)
            .map(|k| coefficients(len, k).iter().map(|c| c * SCALES[k]).collect())
            .collect();
        let outs = ChipOutputGradients {
            spikes: Some(&c[0]),
            imem: Some(&c[1]),
            vmem: Some(&c[2]),
            iahp: Some(&c[3]),
            dendrites: [Some(&c[4]), Some(&c[5]), Some(&c[6]), Some(&c[7])],
        };
        let options = crate::run::GradientOptions {
            threads: 2,
            input: true,
            currents: true,
        };
        sim.gradient(&tape, input(), &outs, &options).unwrap()
    }

    fn assert_close(what: &str, adjoint: f64, fd: f64) {
        let scale = adjoint.abs().max(fd.abs()).max(1e-6);
        assert!(
            (adjoint - fd).abs() <= 1e-5 * scale,
            "{what}: adjoint {adjoint:e}, finite difference {fd:e}"
        );
    }

    #[test]
    fn the_adjoint_equals_central_finite_differences() {
        let net = gradient_net();
        let (batch, steps) = (2, 80);
        let x: Vec<f64> = (0..batch * steps * 2)
            .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)) * (1.0 + (k % 3) as f64 * 0.5))
            .collect();
        // The run is active: some smooth spikes are nearly whole.
        let sim = ChipSimulator::<f64>::new(&net).unwrap();
        let hard = sim
            .run(
                Input::Spikes {
                    data: &x,
                    batch,
                    steps,
                },
                None,
                &RunOptions::default(),
            )
            .unwrap();
        assert!(
            hard.spikes.iter().sum::<f64>() >= 4.0,
            "{}",
            hard.spikes.iter().sum::<f64>()
        );
        let g = adjoint(&net, &x, batch, steps, true);
        // Steps of 1e-4 on values of order 1: the truncation error (h^2) is far below the tolerance,
        // and so is the rounding (smaller steps are dominated by it: 1e-6 is off by 0.4 %).
        let fd = |f: &dyn Fn(&mut Network, f64)| {
            let h = 1e-4;
            let (mut up, mut down) = (net.clone(), net.clone());
            f(&mut up, h);
            f(&mut down, -h);
            (smooth_run(&up, &x, batch, steps, true) - smooth_run(&down, &x, batch, steps, true))
                / (2.0 * h)
        };
        for k in 0..net.w_rec.as_slice().len() {
            if net.w_rec.as_slice()[k] != 0.0 {
                let d = fd(&|m: &mut Network, h| m.w_rec.as_mut_slice()[k] += h);
                assert_close(&format!("w_rec[{k}]"), g.w_rec.as_slice()[k], d);
            }
        }
        let w_in = g.w_in.as_ref().unwrap();
        for k in 0..w_in.as_slice().len() {
            let d = fd(&|m: &mut Network, h| m.w_in.as_mut().unwrap().as_mut_slice()[k] += h);
            assert_close(&format!("w_in[{k}]"), w_in.as_slice()[k], d);
        }
        for j in 0..net.neurons() {
            let d = fd(&|m: &mut Network, h| m.params.i_dc[j] += h * 1e-11) / 1e-11;
            assert_close(&format!("Idc[{j}]"), g.i_dc[j], d);
        }
        // The input, given as input spikes through w_in (a few entries).
        for k in [0, 5, 37, 160, 301] {
            let h = 1e-4;
            let mut up = x.clone();
            up[k] += h;
            let mut down = x.clone();
            down[k] -= h;
            let d = (smooth_run(&net, &up, batch, steps, true)
                - smooth_run(&net, &down, batch, steps, true))
                / (2.0 * h);
            assert_close(&format!("input[{k}]"), g.input.as_ref().unwrap()[k], d);
        }
    }

    #[test]
    fn the_adjoint_of_weighted_input_equals_finite_differences() {
        let mut net = gradient_net();
        net.w_in = None;
        net.chip.as_mut().unwrap().w_in_types = None;
        let (batch, steps) = (1, 60);
        let x: Vec<f64> = (0..batch * steps * 3)
            .map(|k| ((k * 37) % 11) as f64 / 11.0 * 4.0 - 1.5)
            .collect();
        let g = adjoint(&net, &x, batch, steps, false);
        // Richardson's extrapolation of central differences at h and h/2 (error O(h^4)): these
        // gradients span six orders of magnitude, and no single plain step is both above the rounding
        // of the small ones and below the truncation of the large ones.
        let richardson = |at: &dyn Fn(f64) -> f64, h: f64| {
            let d = |h: f64| (at(h) - at(-h)) / (2.0 * h);
            (4.0 * d(h / 2.0) - d(h)) / 3.0
        };
        for k in [0, 4, 11, 50, 99, 170] {
            let at = |h: f64| {
                let mut v = x.clone();
                v[k] += h;
                smooth_run(&net, &v, batch, steps, false)
            };
            assert_close(
                &format!("input[{k}]"),
                g.input.as_ref().unwrap()[k],
                richardson(&at, 2e-3),
            );
        }
        for k in 0..9 {
            if net.w_rec.as_slice()[k] != 0.0 {
                let at = |h: f64| {
                    let mut m = net.clone();
                    m.w_rec.as_mut_slice()[k] += h;
                    smooth_run(&m, &x, batch, steps, false)
                };
                assert_close(
                    &format!("w_rec[{k}]"),
                    g.w_rec.as_slice()[k],
                    richardson(&at, 2e-3),
                );
            }
        }
    }

    #[test]
    fn hard_spike_gradients_are_finite_and_independent_of_threads() {
        let net = gradient_net();
        let (batch, steps) = (3, 120);
        let x: Vec<f32> = (0..batch * steps * 2)
            .map(|k| f32::from(u8::from((k * 2654435761) % 5 < 2)) * 1.5)
            .collect();
        let sim = ChipSimulator::<f32>::new(&net).unwrap();
        let input = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let (trace, tape) = sim.run_taped(input, None, &RunOptions::default()).unwrap();
        assert!(trace.spikes.iter().sum::<f32>() > 5.0);
        // The count MSE's gradient: 2 (count - 3) on every step.
        let counts = trace.spike_counts();
        let g: Vec<f32> = (0..batch * steps * 3)
            .map(|k| {
                let (b, j) = (k / (steps * 3), k % 3);
                2.0 * (counts[b][j] as f32 - 3.0)
            })
            .collect();
        let outs = ChipOutputGradients {
            spikes: Some(&g),
            ..Default::default()
        };
        let opts = |threads: usize| crate::run::GradientOptions {
            threads,
            input: true,
            currents: true,
        };
        let one = sim.gradient(&tape, input, &outs, &opts(1)).unwrap();
        assert_eq!(sim.gradient(&tape, input, &outs, &opts(3)).unwrap(), one);
        assert!(one.w_rec.as_slice().iter().all(|v| v.is_finite()));
        assert!(
            one.w_in
                .as_ref()
                .unwrap()
                .as_slice()
                .iter()
                .any(|&v| v != 0.0)
        );
        assert!(one.i_dc.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn current_gradients_equal_finite_differences() {
        use crate::Param;
        // Strong DC input keeps the input current and Imem above their floors, whose kinks would
        // otherwise put the finite differences' noise at 1e-4 (the adjoint sat within it).
        let mut net = gradient_net();
        for j in 0..net.neurons() {
            net.params.i_dc[j] = 6e-11 * (1.0 + 0.3 * j as f64);
        }
        let (batch, steps) = (2, 40);
        let x: Vec<f64> = (0..batch * steps * 2)
            .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)) * (1.0 + (k % 3) as f64 * 0.5))
            .collect();
        let g = adjoint(&net, &x, batch, steps, true);
        // d L / d I by Richardson's extrapolation of central differences in relative steps, at the
        // step (from 2e-2 down to 2.4e-6) where halving it changes the estimate least: the currents'
        // sensitivities span seven orders of magnitude and some responses are sharply nonlinear, so
        // no single step suits them all. Returns (estimate, its estimated error).
        let fd = |at: &dyn Fn(f64) -> f64, v: f64| -> (f64, f64) {
            let r = |h: f64| {
                let d = |h: f64| (at(h) - at(-h)) / (2.0 * h);
                (4.0 * d(h / 2.0) - d(h)) / 3.0 / v
            };
            let hs: Vec<f64> = (0..14).map(|k| 2e-2 / f64::from(1u32 << k)).collect();
            let est: Vec<f64> = hs.iter().map(|&h| r(h)).collect();
            est.windows(2)
                .map(|w| (w[1], (w[1] - w[0]).abs()))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("steps")
        };
        // As the dfdx comparisons do, relative to the largest gradient of the parameter over the
        // neurons (the differences' rounding noise is about absolute).
        let check = |what: &str, ours: &[f64], fds: &[(f64, f64)]| {
            let max = ours.iter().fold(0f64, |m, v| m.max(v.abs()));
            for (j, (o, (f, err))) in ours.iter().zip(fds).enumerate() {
                assert!(
                    (o - f).abs() <= 1e-5 * max + err,
                    "{what}[{j}]: adjoint {o:e}, finite difference {f:e} (+- {err:e}, max {max:e})"
                );
            }
        };
        for p in Param::CURRENTS.iter().filter(|&&p| p != Param::Ispkthr) {
            let mut fds = Vec::new();
            for j in 0..net.neurons() {
                let v = net.params.get(*p)[j];
                let at = |h: f64| {
                    let mut m = net.clone();
                    m.params.get_mut(*p)[j] = v * (1.0 + h);
                    smooth_run(&m, &x, batch, steps, true)
                };
                fds.push(if v == 0.0 { (0.0, 0.0) } else { fd(&at, v) });
            }
            check(p.rockpool_name(), g.current(*p).unwrap(), &fds);
        }
        fn get(m: &mut Network, d: usize, q: usize, j: usize) -> &mut f64 {
            let c = m.chip.as_mut().unwrap();
            let dp = match d {
                0 => &mut c.nmda,
                1 => &mut c.gaba,
                _ => &mut c.shunt,
            };
            if q == 0 {
                &mut dp.i_tau[j]
            } else {
                &mut dp.i_gain[j]
            }
        }
        for (d, name) in ["nmda", "gaba", "shunt"].iter().enumerate() {
            for (q, which) in ["Itau", "Igain"].iter().enumerate() {
                let mut fds = Vec::new();
                for j in 0..net.neurons() {
                    let v = *get(&mut net.clone(), d, q, j);
                    let at = |h: f64| {
                        let mut m = net.clone();
                        *get(&mut m, d, q, j) = v * (1.0 + h);
                        smooth_run(&m, &x, batch, steps, true)
                    };
                    fds.push(fd(&at, v));
                }
                let ours = if q == 0 {
                    &g.dendrites[d].0
                } else {
                    &g.dendrites[d].1
                };
                check(&format!("{which}_{name}"), ours, &fds);
            }
        }
    }
}
