//! What spikes reveal of a neuron's mismatch: combinations of the 24 simulation parameters.
//!
//! A neuron seen only through its spikes (bias codes in, spike times out, no analog readout) cannot
//! show a current apart from the capacitance, `U_T` and `kappa` it is divided by: the DynapSim
//! equations (model.md section 1) depend on them through products such as `U_T C / (kappa I)`. These
//! are the products a calibration measures, defined here once, as factors relative to the nominal
//! neuron (1 is nominal), so that the chip's twin reports them from its true parameters the same way
//! a calibration estimates them from spikes:
//!
//! | name | product | what it is |
//! |---|---|---|
//! | `t_ref` | `Vth C_ref / Iref` | the refractory time |
//! | `dc_gain` | `kappa Idc / (U_T C_mem)` | how fast the DC current charges the membrane |
//! | `syn_gain` | `kappa Vth C_pulse Igain_syn / (U_T C_mem Ipulse Itau_syn)` | how fast input spikes charge it: the synapse's mean current per input spike (`t_pulse Igain_syn / Itau_syn`) over the membrane's capacitance |
//! | `gaba_gain` | `kappa Vth C_pulse Igain_gaba / (U_T C_mem Ipulse Itau_gaba)` | the same for inhibitory spikes on the GABA dendrite (the `chip` model only) |
//! | `tau_mem` | `U_T C_mem / (kappa Itau_mem)` | the membrane's time constant at rest |
//!
//! `kappa` is the simulator's `(kappa_n + kappa_p) / 2`, so its factor is the nominal-weighted mean of
//! the two. What stays hidden: every one of the 24 parameters alone; the threshold `Ispkthr` (the
//! membrane's exponential positive feedback makes the spike before the threshold matters: a 5 %
//! change moves the spike time by less than 0.5 %); the synapses' time constants `tau_syn` and
//! `tau_gaba` (an integrating membrane responds to the charge an input spike delivers, not to when;
//! a leaky one did not pin them either in our trials).
//!
//! A neuron's factors are a [`Factors`]: one per simulation parameter and, for the `chip` model, one
//! per dendrite current and capacitance ([`Knob`]). [`hold`] sets measured values into them: each
//! product's factor on one representative parameter, its carrier (`Iref`, `Idc`, `Igain_syn`,
//! `Igain_gaba`), which reproduces the measured behaviour exactly where the product is all that
//! matters; [`Factors::apply`] multiplies a network's neuron by them.

use dynap_model::{ChipSynapses, Network, Param, Variant};

/// The `chip` model's dendrite values mismatch draws, in the order of their random streams (32 to
/// 40): NMDA, GABA and SHUNT, each `Itau`, `Igain`, `C`.
pub const DENDRITE_NAMES: [&str; 9] = [
    "Itau_nmda",
    "Igain_nmda",
    "C_nmda",
    "Itau_gaba",
    "Igain_gaba",
    "C_gaba",
    "Itau_shunt",
    "Igain_shunt",
    "C_shunt",
];

/// One value a neuron's mismatch multiplies: a simulation parameter, or a dendrite value of the
/// `chip` model ([`DENDRITE_NAMES`] index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// One of the 24 parameters.
    Param(Param),
    /// A dendrite value.
    Dendrite(usize),
}

impl Knob {
    /// By name: Rockpool's parameter names and [`DENDRITE_NAMES`].
    pub fn from_name(name: &str) -> Option<Knob> {
        Param::from_name(name).map(Knob::Param).or_else(|| {
            DENDRITE_NAMES
                .iter()
                .position(|&d| d == name)
                .map(Knob::Dendrite)
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Knob::Param(p) => p.rockpool_name(),
            Knob::Dendrite(k) => DENDRITE_NAMES[k],
        }
    }
}

/// A neuron's factors (1 is nominal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Factors {
    /// Per parameter, in [`crate::FROZEN`] order.
    pub params: [f64; 24],
    /// Per dendrite value, in [`DENDRITE_NAMES`] order.
    pub dendrites: [f64; 9],
}

impl Default for Factors {
    fn default() -> Factors {
        Factors::ONE
    }
}

impl Factors {
    /// The nominal neuron.
    pub const ONE: Factors = Factors {
        params: [1.0; 24],
        dendrites: [1.0; 9],
    };

    /// The factor of `k`.
    pub fn get(&self, k: Knob) -> f64 {
        match k {
            Knob::Param(p) => self.params[param_index(p)],
            Knob::Dendrite(d) => self.dendrites[d],
        }
    }

    /// The factor of `k`, mutably.
    pub fn get_mut(&mut self, k: Knob) -> &mut f64 {
        match k {
            Knob::Param(p) => &mut self.params[param_index(p)],
            Knob::Dendrite(d) => &mut self.dendrites[d],
        }
    }

    /// Multiplies neuron `j` of `net` by these factors (a `chip` network's dendrites too; a
    /// `rockpool` network has none, and its dendrite factors are ignored).
    pub fn apply(&self, net: &mut Network, j: usize) {
        for (k, &p) in crate::FROZEN.iter().enumerate() {
            net.params.get_mut(p)[j] *= self.params[k];
        }
        if net.variant == Variant::Chip {
            let n = net.neurons();
            let chip = net.chip.get_or_insert_with(|| ChipSynapses::defaults(n));
            for (d, dendrite) in [&mut chip.nmda, &mut chip.gaba, &mut chip.shunt]
                .into_iter()
                .enumerate()
            {
                dendrite.i_tau[j] *= self.dendrites[3 * d];
                dendrite.i_gain[j] *= self.dendrites[3 * d + 1];
                dendrite.c[j] *= self.dendrites[3 * d + 2];
            }
        }
    }
}

fn param_index(p: Param) -> usize {
    crate::FROZEN
        .iter()
        .position(|&q| q == p)
        .expect("one of the 24")
}

/// A product of factors: `(knob, power)`; `Kappa` stands for `(kappa_n + kappa_p) / 2`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Term {
    K(Knob, i32),
    Kappa(i32),
}

use Knob::{Dendrite as D, Param as P};

/// A quantity spikes reveal (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Derived {
    /// Its name in profiles and `describe` (`t_ref`).
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// The value that carries its factor in simulation ([`hold`]).
    pub carrier: Knob,
    /// Only the `chip` model has it.
    pub chip_only: bool,
    terms: &'static [Term],
}

/// The GABA dendrite's `Itau` and `Igain` in [`DENDRITE_NAMES`].
const ITAU_GABA: usize = 3;
const IGAIN_GABA: usize = 4;

/// The quantities a calibration measures, in profile order.
pub const DERIVED: [Derived; 5] = [
    Derived {
        name: "t_ref",
        meaning: "refractory time, Vth C_ref / Iref",
        carrier: P(Param::Iref),
        chip_only: false,
        terms: &[
            Term::K(P(Param::Vth), 1),
            Term::K(P(Param::CRef), 1),
            Term::K(P(Param::Iref), -1),
        ],
    },
    Derived {
        name: "dc_gain",
        meaning: "membrane charging by the DC current, kappa Idc / (Ut C_mem)",
        carrier: P(Param::Idc),
        chip_only: false,
        terms: &[
            Term::Kappa(1),
            Term::K(P(Param::Idc), 1),
            Term::K(P(Param::Ut), -1),
            Term::K(P(Param::CMem), -1),
        ],
    },
    Derived {
        name: "syn_gain",
        meaning: "membrane charging per input spike, kappa Vth C_pulse Igain_syn / (Ut C_mem Ipulse Itau_syn)",
        carrier: P(Param::IgainSyn),
        chip_only: false,
        terms: &[
            Term::Kappa(1),
            Term::K(P(Param::Vth), 1),
            Term::K(P(Param::CPulse), 1),
            Term::K(P(Param::IgainSyn), 1),
            Term::K(P(Param::Ut), -1),
            Term::K(P(Param::CMem), -1),
            Term::K(P(Param::Ipulse), -1),
            Term::K(P(Param::ItauSyn), -1),
        ],
    },
    Derived {
        name: "gaba_gain",
        meaning: "membrane discharging per inhibitory spike, kappa Vth C_pulse Igain_gaba / (Ut C_mem Ipulse Itau_gaba)",
        carrier: D(IGAIN_GABA),
        chip_only: true,
        terms: &[
            Term::Kappa(1),
            Term::K(P(Param::Vth), 1),
            Term::K(P(Param::CPulse), 1),
            Term::K(D(IGAIN_GABA), 1),
            Term::K(P(Param::Ut), -1),
            Term::K(P(Param::CMem), -1),
            Term::K(P(Param::Ipulse), -1),
            Term::K(D(ITAU_GABA), -1),
        ],
    },
    Derived {
        name: "tau_mem",
        meaning: "membrane time constant at rest, Ut C_mem / (kappa Itau_mem)",
        carrier: P(Param::ItauMem),
        chip_only: false,
        terms: &[
            Term::K(P(Param::Ut), 1),
            Term::K(P(Param::CMem), 1),
            Term::Kappa(-1),
            Term::K(P(Param::ItauMem), -1),
        ],
    },
];

impl Derived {
    /// Looks a quantity up by name.
    pub fn by_name(name: &str) -> Option<&'static Derived> {
        DERIVED.iter().find(|d| d.name == name)
    }

    /// The quantities a model has (`gaba_gain` only in the `chip` model).
    pub fn of(variant: Variant) -> impl Iterator<Item = &'static Derived> {
        DERIVED
            .iter()
            .filter(move |d| !d.chip_only || variant == Variant::Chip)
    }

    /// Its factor for a neuron of factors `f`.
    pub fn factor(&self, f: &Factors) -> f64 {
        let (kn, kp) = (Param::KappaN.default_value(), Param::KappaP.default_value());
        self.terms
            .iter()
            .map(|t| match *t {
                Term::K(k, e) => f.get(k).powi(e),
                Term::Kappa(e) => ((kn * f.get(P(Param::KappaN)) + kp * f.get(P(Param::KappaP)))
                    / (kn + kp))
                    .powi(e),
            })
            .product()
    }

    /// The power of its carrier in the product (`t_ref` has `Iref` to the power -1).
    fn carrier_power(&self) -> i32 {
        self.terms
            .iter()
            .find_map(|t| match *t {
                Term::K(k, e) if k == self.carrier => Some(e),
                _ => None,
            })
            .unwrap_or(1)
    }
}

/// Sets `factors` (`(name, factor)`) into a neuron's factors `f`: a parameter or dendrite name
/// ([`Knob::from_name`]) sets that value; a derived quantity's name then moves its
/// [`Derived::carrier`] so that the product takes that factor, whatever the others are (no carrier
/// appears in another product). From [`Factors::ONE`] this is the nominal neuron with the measured
/// products; from a random draw, a chip with those products held and everything else drawn. Names
/// it does not know are ignored.
pub fn hold<'a>(f: &mut Factors, factors: impl IntoIterator<Item = (&'a str, f64)>) {
    let factors: Vec<(&str, f64)> = factors.into_iter().collect();
    for &(name, x) in &factors {
        if Derived::by_name(name).is_none()
            && let Some(k) = Knob::from_name(name)
        {
            *f.get_mut(k) = x;
        }
    }
    for &(name, x) in &factors {
        if let Some(d) = Derived::by_name(name) {
            let now = d.factor(f);
            *f.get_mut(d.carrier) *= (x / now).powf(1.0 / f64::from(d.carrier_power()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_keeps_the_products_whatever_the_draw() {
        let mut f = Factors::ONE;
        for (k, x) in f.params.iter_mut().enumerate() {
            *x = 1.0 + 0.01 * (k as f64 - 12.0);
        }
        for (k, x) in f.dendrites.iter_mut().enumerate() {
            *x = 1.0 - 0.02 * k as f64;
        }
        let measured = [
            ("t_ref", 0.93),
            ("dc_gain", 1.1),
            ("syn_gain", 0.8),
            ("gaba_gain", 1.2),
            ("tau_mem", 1.05),
            ("Io", 1.3),
            ("Itau_nmda", 0.7),
        ];
        hold(&mut f, measured);
        for (name, x) in &measured[..5] {
            let d = Derived::by_name(name).unwrap();
            assert!((d.factor(&f) - x).abs() < 1e-12, "{name}");
        }
        assert_eq!(f.get(P(Param::Io)), 1.3);
        assert_eq!(f.get(Knob::from_name("Itau_nmda").unwrap()), 0.7);
    }

    #[test]
    fn kappa_is_the_mean_of_the_two() {
        let d = Derived::by_name("dc_gain").unwrap();
        let mut f = Factors::ONE;
        *f.get_mut(P(Param::KappaN)) = 1.1;
        let (kn, kp) = (0.75, 0.66);
        assert!((d.factor(&f) - (kn * 1.1 + kp) / (kn + kp)).abs() < 1e-12);
        // Only ratios count: a neuron with every value nominal has factor 1.
        for d in DERIVED {
            assert_eq!(d.factor(&Factors::ONE), 1.0);
        }
        assert_eq!(Derived::of(Variant::Rockpool).count(), 4);
        assert_eq!(Derived::of(Variant::Chip).count(), 5);
    }

    #[test]
    fn applying_multiplies_the_neuron() {
        let mut net = Network::with_defaults(2);
        net.variant = Variant::Chip;
        let nominal = net.clone();
        let mut f = Factors::ONE;
        hold(&mut f, [("Iref", 2.0), ("Igain_gaba", 3.0)]);
        f.apply(&mut net, 1);
        assert_eq!(net.params.i_ref[1], 2.0 * nominal.params.i_ref[1]);
        assert_eq!(net.params.i_ref[0], nominal.params.i_ref[0]);
        let gaba = &net.chip.as_ref().unwrap().gaba;
        assert_eq!(
            gaba.i_gain[1],
            3.0 * ChipSynapses::defaults(2).gaba.i_gain[1]
        );
    }
}
