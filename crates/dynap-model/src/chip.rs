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

use crate::dynapsim::{Input, Recording, RunOptions};
use crate::error::{Error, WeightMatrix};
use crate::hwweights::Dendrite;
use crate::network::{Matrix, Network, Variant};
use crate::real::Real;

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

    pub(crate) fn validate(&self, n: usize, n_in: Option<usize>) -> Result<(), Error> {
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
    io: Vec<T>,
    idc: Vec<T>,
    ispkthr: Vec<T>,
    t_ref: Vec<T>,
    if_nmda: Vec<T>,
    itau_mem: Vec<T>,
    igain_mem: Vec<T>,
    /// `(UT / kappa) C_mem`.
    utk_cmem: Vec<T>,
    /// `UT / kappa`.
    ut_over_kappa: Vec<T>,
    /// `kappa / (kappa + 1)`: the exponent of the feedback current.
    fb_exp: Vec<T>,
    /// Per dendrite: `exp(-dt/tau)`.
    decay: [Vec<T>; DENDRITES],
    /// Per dendrite: `g (1 - exp(-t_pulse/tau)) exp(-max(dt - t_pulse, 0)/tau) Iscale`: the jump per
    /// unit of weight.
    jump: [Vec<T>; DENDRITES],
    ahp_decay: Vec<T>,
    /// The AHP jump per own spike (A).
    ahp_jump: Vec<T>,
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
    w_in: Option<[Vec<T>; DENDRITES]>,
    w_in_used: [bool; DENDRITES],
    /// Per dendrite, `[N][N]` non-negative weights (`[pre][post]`).
    w_rec: [Vec<T>; DENDRITES],
    w_rec_used: [bool; DENDRITES],
    dt: T,
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

/// One batch element's outputs: spikes `[steps][N]` and the records.
struct Outputs<'a, T> {
    spikes: &'a mut [T],
    /// imem, vmem, iahp, then the four dendrites.
    records: Option<[&'a mut [T]; 3 + DENDRITES]>,
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
        let c = ChipConsts {
            io: cv(&p.i_o),
            idc: cv(&p.i_dc),
            ispkthr: cv(&p.i_spkthr),
            t_ref,
            if_nmda: cv(&p.i_f_nmda),
            itau_mem: (0..n)
                .map(|j| T::from_f64(p.i_tau_mem[j].max(p.i_o[j])))
                .collect(),
            igain_mem: (0..n)
                .map(|j| T::from_f64(p.i_gain_mem[j].max(p.i_o[j])))
                .collect(),
            utk_cmem: (0..n).map(|j| T::from_f64(utk[j] * p.c_mem[j])).collect(),
            ut_over_kappa: cv(&utk),
            fb_exp: kappa.iter().map(|&k| T::from_f64(k / (k + 1.0))).collect(),
            decay,
            jump,
            ahp_decay,
            ahp_jump,
        };
        let (w_in, w_in_used) = match &net.w_in {
            Some(w) => {
                let (m, used) = split(w, chip.w_in_types.as_deref());
                (Some(m), used)
            }
            None => (None, [false; DENDRITES]),
        };
        let (w_rec, w_rec_used) = split(&net.w_rec, chip.w_rec_types.as_deref());
        Ok(ChipSimulator {
            n,
            n_in: net.w_in.as_ref().map(Matrix::rows),
            c,
            w_in,
            w_in_used,
            w_rec,
            w_rec_used,
            dt: T::from_f64(dt),
        })
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
        let (batch, steps) = input.dims();
        let n = self.n;
        let (data, channels, spikes_in) = match input {
            Input::Weighted { data, .. } => (data, n, false),
            Input::Spikes { data, .. } => (data, self.n_in.ok_or(Error::NoInputWeights)?, true),
        };
        if data.len() != batch * steps * channels {
            return Err(Error::InputShape {
                batch,
                steps,
                channels,
                found_len: data.len(),
            });
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteInput {
                batch: i / (steps * channels).max(1),
                step: (i / channels.max(1)) % steps.max(1),
                channel: i % channels.max(1),
            });
        }
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
                        })
                        .collect()
                }
                None => spikes
                    .chunks_mut(per)
                    .map(|sp| Outputs {
                        spikes: sp,
                        records: None,
                    })
                    .collect(),
            };
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
                0 => std::thread::available_parallelism().map_or(1, |x| x.get()),
                t => t,
            }
            .clamp(1, batch);
            let work = |chunk: &mut [(usize, Element<'_, T>, Outputs<'_, T>)]| {
                let mut scratch = Scratch::new(n);
                for (b, el, out) in chunk {
                    let xs = &data[*b * steps * channels..(*b + 1) * steps * channels];
                    self.run_element(xs, channels, spikes_in, steps, el, out, &mut scratch);
                }
            };
            if threads == 1 {
                work(&mut jobs);
            } else {
                let per_thread = batch.div_ceil(threads);
                std::thread::scope(|scope| {
                    for chunk in jobs.chunks_mut(per_thread) {
                        let work = &work;
                        scope.spawn(move || work(chunk));
                    }
                });
            }
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
    fn run_element(
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
        let c = &self.c;
        let dt = self.dt;
        let Scratch { drive, active } = scratch;
        active.clear();
        active.extend((0..n).filter(|&i| el.s[i] != T::ZERO));
        for t in 0..steps {
            // 1. The drive of each dendrite, in weight units (Iscale is in `jump`).
            for d in drive.iter_mut() {
                d.fill(T::ZERO);
            }
            for k in 0..DENDRITES {
                if self.w_rec_used[k] {
                    let w = &self.w_rec[k];
                    for &i in active.iter() {
                        let si = el.s[i];
                        for (dj, &wij) in drive[k].iter_mut().zip(&w[i * n..(i + 1) * n]) {
                            *dj = *dj + si * wij;
                        }
                    }
                }
            }
            let xt = &xs[t * channels..(t + 1) * channels];
            if spikes_in {
                let w_in = self.w_in.as_ref().expect("checked: input spikes need w_in");
                for (ch, &x) in xt.iter().enumerate() {
                    if x == T::ZERO {
                        continue;
                    }
                    for k in 0..DENDRITES {
                        if self.w_in_used[k] {
                            let row = &w_in[k][ch * n..(ch + 1) * n];
                            for (dj, &w) in drive[k].iter_mut().zip(row) {
                                *dj = *dj + x * w;
                            }
                        }
                    }
                }
            } else {
                // Weighted input per neuron: positive to AMPA, negative to GABA.
                let [ampa, _, gaba, _] = drive;
                for j in 0..n {
                    let x = xt[j];
                    if x > T::ZERO {
                        ampa[j] = ampa[j] + x;
                    } else {
                        gaba[j] = gaba[j] - x;
                    }
                }
            }
            // 2.-7. Every neuron.
            active.clear();
            for j in 0..n {
                let io = c.io[j];
                let mut cur = [T::ZERO; DENDRITES];
                for k in 0..DENDRITES {
                    let i = el.dendrites[k][j];
                    let v = io + (i - io) * c.decay[k][j] + c.jump[k][j] * drive[k][j];
                    el.dendrites[k][j] = v;
                    cur[k] = v;
                }
                let [i_ampa, i_nmda, i_gaba, i_shunt] = cur;
                let iahp = io + (el.iahp[j] - io) * c.ahp_decay[j] + c.ahp_jump[j] * el.s[j];
                el.iahp[j] = iahp;
                let imem = el.imem[j];
                let nmda = i_nmda / (T::ONE + c.if_nmda[j] / imem);
                let ileak = c.itau_mem[j] + i_shunt;
                let open = el.timer[j] == T::ZERO;
                let iin = if open {
                    (i_ampa + nmda + c.idc[j] - i_gaba).max_with(T::ZERO)
                } else {
                    T::ZERO
                };
                let igain = c.igain_mem[j];
                let tau = c.utk_cmem[j] / ileak;
                let imem_inf = (igain / ileak) * (iin - iahp - ileak);
                let ia = io * (c.fb_exp[j] * (imem / io).ln()).exp();
                let f = (ia / ileak) * (imem + igain);
                let dimem =
                    imem / (tau * (imem + igain)) * (imem_inf + f - imem * (T::ONE + iahp / ileak));
                let mut next = (imem + dimem * dt).max_with(io);
                let spike = next > c.ispkthr[j];
                if spike {
                    next = io;
                    el.timer[j] = c.t_ref[j];
                    active.push(j);
                } else {
                    el.timer[j] = (el.timer[j] - dt).max_with(T::ZERO);
                }
                el.imem[j] = next;
                el.vmem[j] = c.ut_over_kappa[j] * (next / io).ln();
                el.s[j] = if spike { T::ONE } else { T::ZERO };
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

/// Per-thread buffers of a `chip` run, allocated once.
struct Scratch<T> {
    drive: [Vec<T>; DENDRITES],
    active: Vec<usize>,
}

impl<T: Real> Scratch<T> {
    fn new(n: usize) -> Scratch<T> {
        Scratch {
            drive: std::array::from_fn(|_| vec![T::ZERO; n]),
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
}
