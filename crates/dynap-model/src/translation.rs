//! Parameter translation (model.md section 4.1): high-level values (time constants, pulse widths, gain
//! ratios) <-> bias currents, and a chip core's full parameter set (Rockpool's `DynapSimCore`) with
//! Rockpool's construction and update semantics, and its export to bias codes.
//!
//! * time constant: `I_tau = (Ut/kappa) C / tau` and `tau = (Ut/kappa) C / I_tau`, `kappa = (kappa_n + kappa_p)/2`;
//! * pulse width: `I_pw = Vth C / t` and `t = Vth C / I_pw` (no kappa, whatever Rockpool's docstring says);
//! * gain ratio: `r = I_gain / I_tau` and `I_gain = r I_tau`.

use crate::biasgen::{BIAS_NAMES, BiasCode, BiasGenerator};
use crate::error::Error;

/// `(Ut/kappa) * C / x`: the time constant of a DPI with leak current `x`, or the leak current of a
/// time constant `x` (the same expression both ways). `None` when `x <= 0` (Rockpool's rule).
pub fn tau_converter(x: f64, u_t: f64, kappa: f64, c: f64) -> Option<f64> {
    (x > 0.0).then(|| ((u_t / kappa) * c) / x)
}

/// `Vth * C / x`: the pulse width made by a current `x`, or the current of a pulse width `x`.
/// `None` when `x <= 0`.
pub fn pulse_converter(x: f64, v_th: f64, c: f64) -> Option<f64> {
    (x > 0.0).then(|| (v_th * c) / x)
}

/// `I_gain / I_tau`, or `None` unless both are strictly positive.
pub fn gain_ratio(i_gain: f64, i_tau: f64) -> Option<f64> {
    (i_gain > 0.0 && i_tau > 0.0).then(|| i_gain / i_tau)
}

/// `r * I_tau`; with no ratio, the given gain current is kept (Rockpool's `gain_current`).
pub fn gain_current(r: Option<f64>, i_tau: f64, i_gain: Option<f64>) -> Option<f64> {
    match r {
        Some(r) => Some(i_tau * r),
        None => i_gain,
    }
}

macro_rules! core_fields {
    ($( $field:ident, $name:literal, $default:expr; )*) => {
        /// The parameters of one chip core (Rockpool's `DynapSimCore`): the four weight base currents,
        /// the layout constants, and the 19 bias currents with their per-dendrite variants. SI units.
        #[derive(Clone, Debug, PartialEq)]
        pub struct CoreParams {
            $( #[doc = concat!("`", $name, "`")] pub $field: f64, )*
        }

        impl CoreParams {
            /// Every field's Rockpool name, in Rockpool's order.
            pub const NAMES: [&'static str; 37] = [ $( $name, )* ];

            /// Rockpool's defaults (`lookup/defaults.py`).
            pub fn defaults() -> CoreParams {
                CoreParams { $( $field: $default, )* }
            }

            /// A field by its Rockpool name.
            pub fn get(&self, name: &str) -> Option<f64> {
                match name { $( $name => Some(self.$field), )* _ => None }
            }

            fn slot(&mut self, name: &str) -> Option<&mut f64> {
                match name { $( $name => Some(&mut self.$field), )* _ => None }
            }
        }
    };
}

core_fields! {
    iw_0, "Iw_0", 1e-9;
    iw_1, "Iw_1", 2e-9;
    iw_2, "Iw_2", 4e-9;
    iw_3, "Iw_3", 8e-9;
    c_ahp, "C_ahp", 40e-12;
    c_ampa, "C_ampa", 24.5e-12;
    c_gaba, "C_gaba", 25e-12;
    c_nmda, "C_nmda", 25e-12;
    c_pulse_ahp, "C_pulse_ahp", 0.5e-12;
    c_pulse, "C_pulse", 0.5e-12;
    c_ref, "C_ref", 1.5e-12;
    c_shunt, "C_shunt", 24.5e-12;
    c_mem, "C_mem", 3e-12;
    i_o, "Io", 5e-13;
    kappa_n, "kappa_n", 0.75;
    kappa_p, "kappa_p", 0.66;
    u_t, "Ut", 0.025;
    v_th, "Vth", 0.7;
    i_dc, "Idc", 5e-13;
    i_f_nmda, "If_nmda", 5e-13;
    i_gain_ahp, "Igain_ahp", 2.8368794326241126e-11;
    i_gain_ampa, "Igain_ampa", 8.687943262411346e-09;
    i_gain_gaba, "Igain_gaba", 8.865248226950353e-09;
    i_gain_nmda, "Igain_nmda", 8.865248226950353e-09;
    i_gain_shunt, "Igain_shunt", 8.687943262411346e-09;
    i_gain_mem, "Igain_mem", 2.1276595744680848e-11;
    i_pulse_ahp, "Ipulse_ahp", 3.5e-07;
    i_pulse, "Ipulse", 3.4999999999999996e-08;
    i_ref, "Iref", 1.0499999999999999e-09;
    i_spkthr, "Ispkthr", 1e-07;
    i_tau_ahp, "Itau_ahp", 2.8368794326241126e-11;
    i_tau_ampa, "Itau_ampa", 8.687943262411346e-11;
    i_tau_gaba, "Itau_gaba", 8.865248226950353e-11;
    i_tau_nmda, "Itau_nmda", 8.865248226950353e-11;
    i_tau_shunt, "Itau_shunt", 8.687943262411346e-11;
    i_tau_mem, "Itau_mem", 5.319148936170212e-12;
    i_w_ahp, "Iw_ahp", 5e-13;
}

/// The layout constants (capacitances, `Io`, slope factors, voltages): a core takes them from its
/// specification, they are not stored on the chip.
pub const LAYOUT_NAMES: [&str; 14] = [
    "C_ahp",
    "C_ampa",
    "C_gaba",
    "C_nmda",
    "C_pulse_ahp",
    "C_pulse",
    "C_ref",
    "C_shunt",
    "C_mem",
    "Io",
    "kappa_n",
    "kappa_p",
    "Ut",
    "Vth",
];

/// How a high-level time quantity maps to its current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeKind {
    /// A DPI time constant: `(Ut/kappa) C / I`.
    Tau,
    /// A pulse width: `Vth C / I`.
    Pulse,
}

/// The 9 time quantities: `(name, current, capacitance, kind, default in s)`.
const TIMES: [(&str, &str, &str, TimeKind, f64); 9] = [
    (
        "t_pulse_ahp",
        "Ipulse_ahp",
        "C_pulse_ahp",
        TimeKind::Pulse,
        1e-6,
    ),
    ("t_pulse", "Ipulse", "C_pulse", TimeKind::Pulse, 10e-6),
    ("t_ref", "Iref", "C_ref", TimeKind::Pulse, 1e-3),
    ("tau_ahp", "Itau_ahp", "C_ahp", TimeKind::Tau, 50e-3),
    ("tau_ampa", "Itau_ampa", "C_ampa", TimeKind::Tau, 10e-3),
    ("tau_gaba", "Itau_gaba", "C_gaba", TimeKind::Tau, 10e-3),
    ("tau_nmda", "Itau_nmda", "C_nmda", TimeKind::Tau, 10e-3),
    ("tau_shunt", "Itau_shunt", "C_shunt", TimeKind::Tau, 10e-3),
    ("tau_mem", "Itau_mem", "C_mem", TimeKind::Tau, 20e-3),
];

/// The 6 gain ratios: `(name, gain current, leak current, default)`.
const GAINS: [(&str, &str, &str, f64); 6] = [
    ("r_gain_ahp", "Igain_ahp", "Itau_ahp", 1.0),
    ("r_gain_ampa", "Igain_ampa", "Itau_ampa", 100.0),
    ("r_gain_gaba", "Igain_gaba", "Itau_gaba", 100.0),
    ("r_gain_nmda", "Igain_nmda", "Itau_nmda", 100.0),
    ("r_gain_shunt", "Igain_shunt", "Itau_shunt", 100.0),
    ("r_gain_mem", "Igain_mem", "Itau_mem", 4.0),
];

/// The names of the 9 time quantities (`t_pulse_ahp`, ..., `tau_mem`), in Rockpool's order.
pub fn time_constant_names() -> impl Iterator<Item = &'static str> {
    TIMES.iter().map(|t| t.0)
}

/// The names of the 6 gain ratios (`r_gain_ahp`, ..., `r_gain_mem`), in Rockpool's order.
pub fn gain_ratio_names() -> impl Iterator<Item = &'static str> {
    GAINS.iter().map(|g| g.0)
}

/// The names `from_specification` accepts besides the time constants and gain ratios: the layout
/// constants and the currents that have no high-level form.
const LOW_LEVEL_INPUTS: [&str; 8] = [
    "Idc", "If_nmda", "Ispkthr", "Iw_0", "Iw_1", "Iw_2", "Iw_3", "Iw_ahp",
];

impl CoreParams {
    fn kappa(&self) -> f64 {
        (self.kappa_n + self.kappa_p) / 2.0
    }

    fn must(&self, name: &str) -> f64 {
        self.get(name).unwrap_or(f64::NAN)
    }

    fn set_time(&mut self, name: &str, value: Option<f64>) {
        let Some(&(_, current, cap, kind, _)) = TIMES.iter().find(|t| t.0 == name) else {
            return;
        };
        // A missing value keeps the current. A non-positive one makes Rockpool's converter return
        // None, which we record as NaN (not a current).
        let Some(value) = value else { return };
        let c = self.must(cap);
        let i = match kind {
            TimeKind::Tau => tau_converter(value, self.u_t, self.kappa(), c),
            TimeKind::Pulse => pulse_converter(value, self.v_th, c),
        };
        if let Some(slot) = self.slot(current) {
            *slot = i.unwrap_or(f64::NAN);
        }
    }

    fn set_gain(&mut self, name: &str, value: Option<f64>) {
        let Some(&(_, gain, tau, _)) = GAINS.iter().find(|g| g.0 == name) else {
            return;
        };
        let i_tau = self.must(tau);
        let old = self.get(gain);
        if let (Some(v), Some(slot)) = (gain_current(value, i_tau, old), self.slot(gain)) {
            *slot = v;
        }
    }

    /// Rockpool's `DynapSimCore.from_specification`: a core from high-level values.
    ///
    /// `inputs` may name layout constants (`C_*`, `Io`, `kappa_*`, `Ut`, `Vth`), the currents `Idc`,
    /// `If_nmda`, `Ispkthr`, `Iw_0..3`, `Iw_ahp`, the 9 time quantities and the 6 gain ratios; anything
    /// not given takes Rockpool's default. The steps are Rockpool's: the core is built from the low-level
    /// values, then every pulse and leak current is set from its time quantity with the core's layout,
    /// then every gain current from its ratio and the new leak current. As in Rockpool, `Idc` and
    /// `If_nmda` default to the *default* `Io`, not to an `Io` given in `inputs`.
    pub fn from_specification(inputs: &[(&str, f64)]) -> Result<CoreParams, Error> {
        for &(name, _) in inputs {
            let known = LAYOUT_NAMES.contains(&name)
                || LOW_LEVEL_INPUTS.contains(&name)
                || TIMES.iter().any(|t| t.0 == name)
                || GAINS.iter().any(|g| g.0 == name);
            if !known {
                return Err(Error::UnknownName {
                    name: name.to_owned(),
                    context: "a core specification",
                });
            }
        }
        let given = |name: &str| {
            inputs
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|&(_, v)| v)
        };
        let mut core = CoreParams::defaults();
        for name in LAYOUT_NAMES.iter().chain(&LOW_LEVEL_INPUTS) {
            if let (Some(v), Some(slot)) = (given(name), core.slot(name)) {
                *slot = v;
            }
        }
        for &(name, .., default) in &TIMES {
            core.set_time(name, Some(given(name).unwrap_or(default)));
        }
        for &(name, .., default) in &GAINS {
            core.set_gain(name, Some(given(name).unwrap_or(default)));
        }
        Ok(core)
    }

    /// The 9 time quantities this core's currents make (`core.time` in Rockpool), in Rockpool's
    /// order; `None` where the current is not strictly positive.
    pub fn time_constants(&self) -> Vec<(&'static str, Option<f64>)> {
        TIMES
            .iter()
            .map(|&(name, current, cap, kind, _)| {
                let (i, c) = (self.must(current), self.must(cap));
                let v = match kind {
                    TimeKind::Tau => tau_converter(i, self.u_t, self.kappa(), c),
                    TimeKind::Pulse => pulse_converter(i, self.v_th, c),
                };
                (name, v)
            })
            .collect()
    }

    /// The 6 gain ratios (`core.gain` in Rockpool); `None` where a current is not strictly positive.
    pub fn gain_ratios(&self) -> Vec<(&'static str, Option<f64>)> {
        GAINS
            .iter()
            .map(|&(name, g, t, _)| (name, gain_ratio(self.must(g), self.must(t))))
            .collect()
    }

    /// Rockpool's `update_time_constant(name, value)`: a copy in which `name` is set to `value`.
    ///
    /// Rockpool quirk, reproduced: the update starts from a *default* set of time quantities, so every
    /// other pulse and leak current is reset to its default time quantity (with this core's layout).
    pub fn with_time_constant(&self, name: &str, value: f64) -> Result<CoreParams, Error> {
        if !TIMES.iter().any(|t| t.0 == name) {
            return Err(Error::UnknownName {
                name: name.to_owned(),
                context: "the time constants",
            });
        }
        let mut core = self.clone();
        for &(n, .., default) in &TIMES {
            core.set_time(n, Some(if n == name { value } else { default }));
        }
        Ok(core)
    }

    /// Rockpool's `update_gain_ratio(name, value)`: a copy in which `name` is set to `value`.
    ///
    /// Rockpool quirk, reproduced: every other gain current is reset to its default ratio times this
    /// core's leak current.
    pub fn with_gain_ratio(&self, name: &str, value: f64) -> Result<CoreParams, Error> {
        if !GAINS.iter().any(|g| g.0 == name) {
            return Err(Error::UnknownName {
                name: name.to_owned(),
                context: "the gain ratios",
            });
        }
        let mut core = self.clone();
        for &(n, .., default) in &GAINS {
            core.set_gain(n, Some(if n == name { value } else { default }));
        }
        Ok(core)
    }

    /// Rockpool's `update(name, value)`: a copy with one field set.
    pub fn with_value(&self, name: &str, value: f64) -> Result<CoreParams, Error> {
        let mut core = self.clone();
        *core.slot(name).ok_or_else(|| Error::UnknownName {
            name: name.to_owned(),
            context: "the core parameters",
        })? = value;
        Ok(core)
    }

    /// The (coarse, fine) code of each of the 23 chip biases, nearest to this core's currents
    /// (Rockpool's `export_Dynapse2Parameters`), in [`BIAS_NAMES`] order.
    pub fn bias_codes(
        &self,
        generator: &BiasGenerator,
    ) -> Result<Vec<(&'static str, BiasCode)>, Error> {
        BIAS_NAMES
            .iter()
            .map(|b| {
                Ok((
                    b.chip,
                    generator.code_from_current(b.chip, self.must(b.sim))?,
                ))
            })
            .collect()
    }

    /// A core from chip bias codes (Rockpool's `from_Dynapse2Core`): each of the 23 currents from its
    /// code; the layout constants are Rockpool's defaults, since a chip does not store them. A bias
    /// missing from `codes` is an error.
    pub fn from_bias_codes(
        generator: &BiasGenerator,
        codes: &[(&str, BiasCode)],
    ) -> Result<CoreParams, Error> {
        let mut core = CoreParams::defaults();
        for b in &BIAS_NAMES {
            let &(_, code) =
                codes
                    .iter()
                    .find(|(n, _)| *n == b.chip)
                    .ok_or_else(|| Error::UnknownBias {
                        name: format!("{} (missing from the codes)", b.chip),
                    })?;
            let i = generator.current_from_code(b.chip, code)?;
            if let Some(slot) = core.slot(b.sim) {
                *slot = i;
            }
        }
        Ok(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specification_gives_default_currents() {
        let core = CoreParams::from_specification(&[]).unwrap();
        let d = CoreParams::defaults();
        for name in CoreParams::NAMES {
            let (a, b) = (core.get(name).unwrap(), d.get(name).unwrap());
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{name}: {a} vs {b}");
        }
    }

    #[test]
    fn time_constants_invert() {
        let core = CoreParams::from_specification(&[
            ("tau_mem", 33e-3),
            ("C_mem", 5e-12),
            ("t_ref", 2e-3),
        ])
        .unwrap();
        let t = core.time_constants();
        let get = |n: &str| t.iter().find(|x| x.0 == n).unwrap().1.unwrap();
        assert!((get("tau_mem") / 33e-3 - 1.0).abs() < 1e-12);
        assert!((get("t_ref") / 2e-3 - 1.0).abs() < 1e-12);
        // The membrane gain follows the new leak current.
        assert!((core.i_gain_mem / core.i_tau_mem - 4.0).abs() < 1e-12);
    }

    #[test]
    fn updates_reset_the_others_like_rockpool() {
        let fast =
            CoreParams::from_specification(&[("tau_ampa", 2e-3), ("tau_mem", 5e-3)]).unwrap();
        let upd = fast.with_time_constant("tau_mem", 33e-3).unwrap();
        // tau_ampa is back to its 10 ms default.
        assert!((upd.i_tau_ampa - CoreParams::defaults().i_tau_ampa).abs() < 1e-24);
        assert!(fast.with_time_constant("tau_nope", 1.0).is_err());
        assert!(fast.with_value("Inope", 1.0).is_err());
        assert!(CoreParams::from_specification(&[("tau_nope", 1.0)]).is_err());
    }
}
