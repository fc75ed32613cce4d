//! The `chip` variant's parameters and per-run constants: the NMDA, GABA and SHUNT dendrites
//! ([`ChipSynapses`], [`DendriteParams`]), which dendrite a connection drives ([`SynapseChoice`]), and
//! the per-neuron values its kernels read, derived once from the parameters ([`ChipConsts`]).

use crate::aligned::Aligned;
use crate::error::{Error, WeightMatrix};
use crate::hwweights::Dendrite;
use crate::param::NeuronParams;
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

/// What the `chip` variant adds to a [`Network`](crate::Network): the NMDA, GABA and SHUNT dendrites' parameters and
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

/// Per-neuron constants of the `chip` variant, computed once.
#[derive(Clone, Debug)]
pub(super) struct ChipConsts<T> {
    pub(super) io: Aligned<T>,
    pub(super) idc: Aligned<T>,
    pub(super) ispkthr: Aligned<T>,
    pub(super) t_ref: Aligned<T>,
    pub(super) if_nmda: Aligned<T>,
    pub(super) itau_mem: Aligned<T>,
    pub(super) igain_mem: Aligned<T>,
    /// `(UT / kappa) C_mem`.
    pub(super) utk_cmem: Aligned<T>,
    /// `UT / kappa`.
    pub(super) ut_over_kappa: Aligned<T>,
    /// `kappa / (kappa + 1)`: the exponent of the feedback current.
    pub(super) fb_exp: Aligned<T>,
    /// Per dendrite: `exp(-dt/tau)`.
    pub(super) decay: [Aligned<T>; DENDRITES],
    /// Per dendrite: `g (1 - exp(-t_pulse/tau)) exp(-max(dt - t_pulse, 0)/tau) Iscale`: the jump per
    /// unit of weight.
    pub(super) jump: [Aligned<T>; DENDRITES],
    pub(super) ahp_decay: Aligned<T>,
    /// The AHP jump per own spike (A).
    pub(super) ahp_jump: Aligned<T>,
}

impl<T: Real> ChipConsts<T> {
    /// The constants of neurons with parameters `p` and dendrites `chip`, at time step `dt` (s) and
    /// weight current `i_scale` (A), computed in `f64` and rounded once.
    pub(super) fn new(
        p: &NeuronParams,
        chip: &ChipSynapses,
        dt: f64,
        i_scale: f64,
    ) -> ChipConsts<T> {
        let n = p.len();
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
                jump[dendrite_index(d)].push(T::from_f64(jp * i_scale));
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
        ChipConsts {
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
        }
    }
}

impl<T> ChipConsts<T> {
    /// The per-neuron constants as slices; loops re-cut them with [`ChipView::cut`].
    #[inline(always)]
    pub(super) fn view(&self) -> ChipView<'_, T> {
        let c = self;
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
}

/// [`ChipConsts`] as slices (of `N` values; see [`ChipView::cut`]).
pub(super) struct ChipView<'a, T> {
    pub(super) io: &'a [T],
    pub(super) idc: &'a [T],
    pub(super) ispkthr: &'a [T],
    pub(super) t_ref: &'a [T],
    pub(super) if_nmda: &'a [T],
    pub(super) itau_mem: &'a [T],
    pub(super) igain_mem: &'a [T],
    pub(super) utk_cmem: &'a [T],
    pub(super) ut_over_kappa: &'a [T],
    pub(super) fb_exp: &'a [T],
    pub(super) decay: [&'a [T]; DENDRITES],
    pub(super) jump: [&'a [T]; DENDRITES],
    pub(super) ahp_decay: &'a [T],
    pub(super) ahp_jump: &'a [T],
}

impl<'a, T> ChipView<'a, T> {
    /// The same view with every slice re-cut to `n` values where it is used, so that the compiler
    /// sees every length (a bounds check left in the neuron loop stops it vectorising).
    #[inline(always)]
    pub(super) fn cut(&self, n: usize) -> ChipView<'a, T> {
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
