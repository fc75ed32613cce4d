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
//!
//! `kappa` is the simulator's `(kappa_n + kappa_p) / 2`, so its factor is the nominal-weighted mean of
//! the two. What stays hidden: every one of the 24 parameters alone; the threshold `Ispkthr` (the
//! membrane's exponential positive feedback makes the spike before the threshold matters: a 5 %
//! change moves the spike time by less than 0.5 %); the time constants `tau_mem` and `tau_syn` (at
//! the probes' drive they shape the spike times by less than the time step resolves).
//!
//! [`embed`] turns measured factors back into parameter factors for simulation: each product's
//! factor on one representative parameter (`Iref`, `Idc`, `Igain_syn`), the others nominal, which
//! reproduces the measured behaviour exactly where the product is all that matters.

use dynap_model::{NeuronParams, Param};

/// A product of parameter factors: `(parameter, power)`; `Kappa` stands for `(kappa_n + kappa_p) / 2`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Term {
    P(Param, i32),
    Kappa(i32),
}

/// A quantity spikes reveal (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Derived {
    /// Its name in profiles and `describe` (`t_ref`).
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// The parameter that carries its factor in simulation ([`embed`]).
    pub carrier: Param,
    terms: &'static [Term],
}

/// The quantities a calibration measures, in profile order.
pub const DERIVED: [Derived; 3] = [
    Derived {
        name: "t_ref",
        meaning: "refractory time, Vth C_ref / Iref",
        carrier: Param::Iref,
        terms: &[
            Term::P(Param::Vth, 1),
            Term::P(Param::CRef, 1),
            Term::P(Param::Iref, -1),
        ],
    },
    Derived {
        name: "dc_gain",
        meaning: "membrane charging by the DC current, kappa Idc / (Ut C_mem)",
        carrier: Param::Idc,
        terms: &[
            Term::Kappa(1),
            Term::P(Param::Idc, 1),
            Term::P(Param::Ut, -1),
            Term::P(Param::CMem, -1),
        ],
    },
    Derived {
        name: "syn_gain",
        meaning: "membrane charging per input spike, kappa Vth C_pulse Igain_syn / (Ut C_mem Ipulse Itau_syn)",
        carrier: Param::IgainSyn,
        terms: &[
            Term::Kappa(1),
            Term::P(Param::Vth, 1),
            Term::P(Param::CPulse, 1),
            Term::P(Param::IgainSyn, 1),
            Term::P(Param::Ut, -1),
            Term::P(Param::CMem, -1),
            Term::P(Param::Ipulse, -1),
            Term::P(Param::ItauSyn, -1),
        ],
    },
];

impl Derived {
    /// Looks a quantity up by name.
    pub fn by_name(name: &str) -> Option<&'static Derived> {
        DERIVED.iter().find(|d| d.name == name)
    }

    /// Its factor given each parameter's factor (`raw(p)`, 1 for nominal).
    pub fn factor(&self, raw: impl Fn(Param) -> f64) -> f64 {
        let (kn, kp) = (Param::KappaN.default_value(), Param::KappaP.default_value());
        self.terms
            .iter()
            .map(|t| match *t {
                Term::P(p, e) => raw(p).powi(e),
                Term::Kappa(e) => {
                    ((kn * raw(Param::KappaN) + kp * raw(Param::KappaP)) / (kn + kp)).powi(e)
                }
            })
            .product()
    }

    /// Its factor for neuron `i` of `params` against `nominal` (same length).
    pub fn factor_of(&self, params: &NeuronParams, nominal: &NeuronParams, i: usize) -> f64 {
        self.factor(|p| params.get(p)[i] / nominal.get(p)[i])
    }
}

impl Derived {
    /// The power of its carrier in the product (`t_ref` has `Iref` to the power -1).
    fn carrier_power(&self) -> i32 {
        self.terms
            .iter()
            .find_map(|t| match *t {
                Term::P(p, e) if p == self.carrier => Some(e),
                _ => None,
            })
            .unwrap_or(1)
    }
}

/// Adjusts the parameter factors `raw` (one per parameter, in [`crate::FROZEN`] order) to `factors`
/// (`(name, factor)`): a Rockpool parameter name sets that parameter's factor; a derived quantity's
/// name then moves its [`Derived::carrier`] so that the product takes that factor, whatever the
/// others are (the carriers appear in no other product). With `raw` all 1 this is [`embed`]; with
/// `raw` a random draw, it is a chip with those products held and everything else drawn.
pub fn hold<'a>(raw: &mut [f64; 24], factors: impl IntoIterator<Item = (&'a str, f64)>) {
    let index = |p: Param| {
        crate::FROZEN
            .iter()
            .position(|&q| q == p)
            .expect("one of the 24")
    };
    let factors: Vec<(&str, f64)> = factors.into_iter().collect();
    for &(name, f) in &factors {
        if Derived::by_name(name).is_none()
            && let Some(p) = Param::from_name(name)
        {
            raw[index(p)] = f;
        }
    }
    for &(name, f) in &factors {
        if let Some(d) = Derived::by_name(name) {
            let now = d.factor(|p| raw[index(p)]);
            raw[index(d.carrier)] *= (f / now).powf(1.0 / f64::from(d.carrier_power()));
        }
    }
}

/// Parameter factors that give a nominal neuron the factors `factors` ([`hold`] from all 1): each
/// derived factor on its [`Derived::carrier`] (for `t_ref`, whose carrier divides, the inverse), a
/// Rockpool parameter name on that parameter. Only factors other than 1 are listed.
pub fn embed<'a>(factors: impl IntoIterator<Item = (&'a str, f64)>) -> Vec<(Param, f64)> {
    let mut raw = [1.0; 24];
    hold(&mut raw, factors);
    crate::FROZEN
        .iter()
        .zip(raw)
        .filter(|&(_, f)| f != 1.0)
        .map(|(&p, f)| (p, f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_reproduces_the_derived_factors() {
        let measured = [("t_ref", 1.07), ("dc_gain", 0.91), ("syn_gain", 1.2)];
        let raw = embed(measured);
        let of = |p: Param| raw.iter().find(|(q, _)| *q == p).map_or(1.0, |(_, f)| *f);
        for (name, f) in measured {
            let d = Derived::by_name(name).unwrap();
            assert!((d.factor(of) - f).abs() < 1e-12, "{name}");
        }
    }

    #[test]
    fn holding_keeps_the_products_whatever_the_draw() {
        let mut raw = [1.0; 24];
        for (k, f) in raw.iter_mut().enumerate() {
            *f = 1.0 + 0.01 * (k as f64 - 12.0);
        }
        let measured = [
            ("t_ref", 0.93),
            ("dc_gain", 1.1),
            ("syn_gain", 0.8),
            ("Io", 1.3),
        ];
        hold(&mut raw, measured);
        let of = |p: Param| raw[crate::FROZEN.iter().position(|&q| q == p).unwrap()];
        for (name, f) in &measured[..3] {
            let d = Derived::by_name(name).unwrap();
            assert!((d.factor(of) - f).abs() < 1e-12, "{name}");
        }
        assert_eq!(of(Param::Io), 1.3);
    }

    #[test]
    fn kappa_is_the_mean_of_the_two() {
        let d = Derived::by_name("dc_gain").unwrap();
        let f = d.factor(|p| if p == Param::KappaN { 1.1 } else { 1.0 });
        let (kn, kp) = (0.75, 0.66);
        assert!((f - (kn * 1.1 + kp) / (kn + kp)).abs() < 1e-12);
        // Only ratios count: a neuron with every parameter nominal has factor 1.
        for d in DERIVED {
            assert_eq!(d.factor(|_| 1.0), 1.0);
        }
    }
}
