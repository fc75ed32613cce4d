//! The 24 per-neuron DynapSim parameters: names, units, Rockpool's defaults and their valid ranges.

use crate::error::Error as ModelError;

/// What kind of physical quantity a parameter is, which fixes its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A current, in amperes.
    Current,
    /// A capacitance, in farads.
    Capacitance,
    /// A voltage, in volts.
    Voltage,
    /// A pure number.
    Dimensionless,
}

impl Quantity {
    /// The SI unit symbol ("A", "F", "V", or "" for a pure number).
    pub fn unit(self) -> &'static str {
        match self {
            Quantity::Current => "A",
            Quantity::Capacitance => "F",
            Quantity::Voltage => "V",
            Quantity::Dimensionless => "",
        }
    }
}

/// The range a parameter must lie in for the equations to be defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// `x >= 0`.
    NonNegative,
    /// `x > 0`.
    Positive,
}

macro_rules! define_params {
    ($( $variant:ident, $field:ident, $rp:literal, $q:ident, $range:ident, $default:expr, $doc:literal; )*) => {
        /// One of the 24 per-neuron DynapSim parameters (model.md section 1.2).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Param {
            $( #[doc = $doc] $variant, )*
        }

        impl Param {
            /// Every parameter, in Rockpool's order.
            pub const ALL: [Param; 24] = [ $( Param::$variant, )* ];

            /// Rockpool's name (`"Itau_mem"`), used in every file format.
            pub fn rockpool_name(self) -> &'static str {
                match self { $( Param::$variant => $rp, )* }
            }

            /// This crate's field name (`"i_tau_mem"`).
            pub fn field_name(self) -> &'static str {
                match self { $( Param::$variant => stringify!($field), )* }
            }

            /// The physical quantity (and so the unit).
            pub fn quantity(self) -> Quantity {
                match self { $( Param::$variant => Quantity::$q, )* }
            }

            /// Rockpool 3.1.0's `DynapSim` constructor default, in SI units.
            pub fn default_value(self) -> f64 {
                match self { $( Param::$variant => $default, )* }
            }

            /// One-line meaning.
            pub fn doc(self) -> &'static str {
                match self { $( Param::$variant => $doc, )* }
            }

            pub(crate) fn range(self) -> Range {
                match self { $( Param::$variant => Range::$range, )* }
            }

            /// Looks a parameter up by its Rockpool name or its field name.
            pub fn from_name(name: &str) -> Option<Param> {
                match name {
                    $( $rp | stringify!($field) => Some(Param::$variant), )*
                    _ => None,
                }
            }
        }

        /// The per-neuron parameters of a DynapSim population, in SI units: one `Vec` of length `N`
        /// per parameter.
        #[derive(Clone, Debug, PartialEq)]
        pub struct NeuronParams {
            $( #[doc = $doc] pub $field: Vec<f64>, )*
        }

        impl NeuronParams {
            /// `n` neurons, every parameter at Rockpool's default.
            pub fn defaults(n: usize) -> NeuronParams {
                NeuronParams { $( $field: vec![$default; n], )* }
            }

            /// The values of one parameter, one per neuron.
            pub fn get(&self, p: Param) -> &[f64] {
                match p { $( Param::$variant => &self.$field, )* }
            }

            /// The values of one parameter, mutable.
            pub fn get_mut(&mut self, p: Param) -> &mut Vec<f64> {
                match p { $( Param::$variant => &mut self.$field, )* }
            }
        }
    };
}

// Defaults: Rockpool 3.1.0 `DynapSim.__init__`, which takes them from `lookup/defaults.py` (model.md
// section 3). The derived currents are the float64 values Python computes, e.g.
// Itau_mem = (Ut / kappa) * C_mem / tau_mem. Note C_syn defaults to C_ampa (24.5 pF), not to the 25 pF
// `C_syn` layout entry: Rockpool does this and we reproduce it.
define_params! {
    Idc, i_dc, "Idc", Current, NonNegative, 5e-13, "DC current injected into the membrane";
    IfNmda, i_f_nmda, "If_nmda", Current, NonNegative, 5e-13, "NMDA gate soft cut-off (unused by the `rockpool` variant)";
    IgainAhp, i_gain_ahp, "Igain_ahp", Current, NonNegative, 2.8368794326241126e-11, "AHP DPI gain current";
    IgainMem, i_gain_mem, "Igain_mem", Current, NonNegative, 2.1276595744680848e-11, "membrane DPI gain current";
    IgainSyn, i_gain_syn, "Igain_syn", Current, NonNegative, 8.687943262411346e-09, "synapse DPI gain current";
    IpulseAhp, i_pulse_ahp, "Ipulse_ahp", Current, NonNegative, 3.5e-07, "sets the AHP pulse width";
    Ipulse, i_pulse, "Ipulse", Current, NonNegative, 3.4999999999999996e-08, "sets the synaptic pulse width";
    Iref, i_ref, "Iref", Current, NonNegative, 1.0499999999999999e-09, "sets the refractory period";
    Ispkthr, i_spkthr, "Ispkthr", Current, Positive, 1e-07, "spike threshold on the membrane current";
    ItauAhp, i_tau_ahp, "Itau_ahp", Current, NonNegative, 2.8368794326241126e-11, "AHP leak current";
    ItauMem, i_tau_mem, "Itau_mem", Current, NonNegative, 5.319148936170212e-12, "membrane leak current";
    ItauSyn, i_tau_syn, "Itau_syn", Current, NonNegative, 8.687943262411346e-11, "synapse leak current";
    IwAhp, i_w_ahp, "Iw_ahp", Current, NonNegative, 5e-13, "AHP weight current per own spike";
    CAhp, c_ahp, "C_ahp", Capacitance, Positive, 40e-12, "AHP capacitance";
    CSyn, c_syn, "C_syn", Capacitance, Positive, 24.5e-12, "synapse capacitance";
    CPulseAhp, c_pulse_ahp, "C_pulse_ahp", Capacitance, NonNegative, 0.5e-12, "AHP pulse-width capacitance";
    CPulse, c_pulse, "C_pulse", Capacitance, NonNegative, 0.5e-12, "synaptic pulse-width capacitance";
    CRef, c_ref, "C_ref", Capacitance, NonNegative, 1.5e-12, "refractory capacitance";
    CMem, c_mem, "C_mem", Capacitance, Positive, 3e-12, "membrane capacitance";
    Io, i_o, "Io", Current, Positive, 5e-13, "dark current: floor of the state currents and reset value";
    KappaN, kappa_n, "kappa_n", Dimensionless, Positive, 0.75, "n-type subthreshold slope factor";
    KappaP, kappa_p, "kappa_p", Dimensionless, Positive, 0.66, "p-type subthreshold slope factor";
    Ut, u_t, "Ut", Voltage, Positive, 0.025, "thermal voltage";
    Vth, v_th, "Vth", Voltage, NonNegative, 0.7, "cut-off gate voltage of the pulse-width circuits";
}

impl Param {
    /// The 13 bias currents of the neuron circuit, in Rockpool's order (the parameters a user can
    /// train and the ones with chip biases).
    pub const CURRENTS: [Param; 13] = [
        Param::Idc,
        Param::IfNmda,
        Param::IgainAhp,
        Param::IgainMem,
        Param::IgainSyn,
        Param::IpulseAhp,
        Param::Ipulse,
        Param::Iref,
        Param::Ispkthr,
        Param::ItauAhp,
        Param::ItauMem,
        Param::ItauSyn,
        Param::IwAhp,
    ];
}

impl Param {
    /// What the parameter must be when `value` is not in its range (`"finite"`, `"non-negative"`,
    /// `"strictly positive"`); `None` when it is.
    pub(crate) fn must_be(self, value: f64) -> Option<&'static str> {
        if !value.is_finite() {
            return Some("finite");
        }
        match self.range() {
            Range::NonNegative if value < 0.0 => Some("non-negative"),
            Range::Positive if value <= 0.0 => Some("strictly positive"),
            _ => None,
        }
    }
}

/// Rockpool's default weight scale `Iscale` (A): a weight of 1 injects this current.
pub const DEFAULT_ISCALE: f64 = 1e-8;
/// Rockpool's default time step (s).
pub const DEFAULT_DT: f64 = 1e-3;

impl NeuronParams {
    /// Number of neurons (the length of `Idc`; [`NeuronParams::validate`] checks that the others agree).
    pub fn len(&self) -> usize {
        self.i_dc.len()
    }

    /// Whether there are no neurons.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks every value: all parameters have `n` entries, are finite, and lie in their range
    /// (currents and capacitances non-negative; `Ispkthr`, `Io`, `kappa_*`, `Ut` and the time-constant
    /// capacitances strictly positive). The first problem found is reported with the parameter and
    /// the neuron.
    pub fn validate(&self, n: usize) -> Result<(), ModelError> {
        for p in Param::ALL {
            let v = self.get(p);
            if v.len() != n {
                return Err(ModelError::ParamLength {
                    param: p,
                    expected: n,
                    found: v.len(),
                });
            }
            for (neuron, &value) in v.iter().enumerate() {
                if !value.is_finite() {
                    return Err(ModelError::NonFinite {
                        param: p,
                        neuron,
                        value,
                    });
                }
                let ok = match p.range() {
                    Range::NonNegative => value >= 0.0,
                    Range::Positive => value > 0.0,
                };
                if !ok {
                    return Err(ModelError::OutOfRange {
                        param: p,
                        neuron,
                        value,
                        must_be: match p.range() {
                            Range::NonNegative => "non-negative",
                            Range::Positive => "strictly positive",
                        },
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Param::ALL {
            assert_eq!(Param::from_name(p.rockpool_name()), Some(p));
            assert_eq!(Param::from_name(p.field_name()), Some(p));
        }
        assert_eq!(Param::from_name("Itau_nope"), None);
    }

    #[test]
    fn defaults_are_valid_and_derived_as_rockpool() {
        NeuronParams::defaults(3).validate(3).unwrap();
        let ut_over_kappa = 0.025 / ((0.75 + 0.66) / 2.0);
        assert_eq!(
            ut_over_kappa * 3e-12 / 20e-3,
            Param::ItauMem.default_value()
        );
        assert_eq!(0.7 * 1.5e-12 / 1e-3, Param::Iref.default_value());
    }

    #[test]
    fn validation_names_parameter_and_neuron() {
        let mut p = NeuronParams::defaults(4);
        p.i_spkthr[2] = 0.0;
        let e = p.validate(4).unwrap_err();
        assert_eq!(
            e,
            ModelError::OutOfRange {
                param: Param::Ispkthr,
                neuron: 2,
                value: 0.0,
                must_be: "strictly positive"
            }
        );
        assert!(e.to_string().contains("Ispkthr"), "{e}");
        assert!(e.to_string().contains("neuron 2"), "{e}");

        let mut p = NeuronParams::defaults(4);
        p.c_mem[1] = f64::NAN;
        assert!(matches!(
            p.validate(4),
            Err(ModelError::NonFinite {
                param: Param::CMem,
                neuron: 1,
                ..
            })
        ));

        let mut p = NeuronParams::defaults(4);
        p.i_tau_syn[3] = -1e-12;
        assert!(matches!(
            p.validate(4),
            Err(ModelError::OutOfRange {
                param: Param::ItauSyn,
                neuron: 3,
                ..
            })
        ));

        let mut p = NeuronParams::defaults(4);
        p.i_gain_mem.pop();
        assert_eq!(
            p.validate(4),
            Err(ModelError::ParamLength {
                param: Param::IgainMem,
                expected: 4,
                found: 3
            })
        );
    }
}
