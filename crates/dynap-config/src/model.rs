//! The configuration object model of DYNAP-SE2 (hardware.md section 2.2), mirroring samna's
//! `Dynapse2Configuration`: chips of 4 cores, 256 neurons per core, 64 CAM synapses and 4 SRAM
//! destinations per neuron, bias parameters per core and per chip, latches and the remaining settings.
//!
//! Every field with a hardware range has a checked type ([`Tag`], [`Hop`], [`CoreMask`],
//! [`WeightMask`], [`Parameter`]), so a [`Configuration`] always holds values the chip can take.
//! Sub-trees this crate does not model (the DVS interface, the bio-amplifiers, unknown keys) are kept
//! as JSON and written back unchanged.

use bincode::{Decode, Encode};
use std::fmt;

/// Cores per chip.
pub const CORES: usize = 4;
/// Neurons per core.
pub const NEURONS: usize = 256;
/// CAM entries (synapses, fan-in) per neuron.
pub const SYNAPSES: usize = 64;
/// SRAM entries (destinations, fan-out) per neuron.
pub const DESTINATIONS: usize = 4;
/// Number of tags (11 bits).
pub const TAGS: u16 = 2048;
/// Most chips on a Stack board.
pub const MAX_CHIPS: usize = 4;
/// The tag reserved for control events (the FPGA clock probe, end-of-stimulus markers).
pub const CONTROL_TAG: u16 = 2047;
/// Number of latches per neuron.
pub const LATCHES: usize = 14;

/// A value outside its hardware range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeError {
    /// What the value is (`tag`, `x_hop`, ...).
    pub what: &'static str,
    /// The value found.
    pub value: i64,
    /// The allowed range, in words.
    pub range: &'static str,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} is outside {}",
            self.what, self.value, self.range
        )
    }
}

impl std::error::Error for RangeError {}

/// An event tag, `0..=2047`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Tag(u16);

impl Tag {
    /// A tag; an error above 2047.
    pub fn new(v: i64) -> Result<Tag, RangeError> {
        if (0..i64::from(TAGS)).contains(&v) {
            Ok(Tag(v as u16))
        } else {
            Err(RangeError {
                what: "tag",
                value: v,
                range: "0..=2047",
            })
        }
    }

    /// The value.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// A hop count between chips, `-7..=7`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Hop(i8);

impl Hop {
    /// A hop count; an error outside -7..=7.
    pub fn new(v: i64) -> Result<Hop, RangeError> {
        if (-7..=7).contains(&v) {
            Ok(Hop(v as i8))
        } else {
            Err(RangeError {
                what: "hop",
                value: v,
                range: "-7..=7",
            })
        }
    }

    /// The value.
    pub fn get(self) -> i8 {
        self.0
    }
}

/// Four bits, one per core of the destination chip (bit i = core i).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct CoreMask(u8);

impl CoreMask {
    /// All four cores.
    pub const ALL: CoreMask = CoreMask(0xF);

    /// A mask; an error above 15.
    pub fn new(v: i64) -> Result<CoreMask, RangeError> {
        if (0..16).contains(&v) {
            Ok(CoreMask(v as u8))
        } else {
            Err(RangeError {
                what: "core mask",
                value: v,
                range: "0..=15",
            })
        }
    }

    /// The mask with only `core` set (`core < 4`).
    pub fn single(core: usize) -> CoreMask {
        CoreMask(1 << (core % CORES))
    }

    /// The bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether core `core` is set.
    pub fn contains(self, core: usize) -> bool {
        core < CORES && self.0 >> core & 1 == 1
    }

    /// Both masks' cores.
    pub fn union(self, other: CoreMask) -> CoreMask {
        CoreMask(self.0 | other.0)
    }
}

/// A synapse's 4-bit weight mask (bit i selects base weight `Iw_i`, `SYAM_Wi_P`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct WeightMask(u8);

impl WeightMask {
    /// A mask; an error above 15.
    pub fn new(v: i64) -> Result<WeightMask, RangeError> {
        if (0..16).contains(&v) {
            Ok(WeightMask(v as u8))
        } else {
            Err(RangeError {
                what: "weight mask",
                value: v,
                range: "0..=15",
            })
        }
    }

    /// The bits.
    pub fn bits(self) -> u8 {
        self.0
    }
}

/// A CAM entry's dendrite, with samna's integer values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Dendrite {
    /// No dendrite: the entry is unused.
    #[default]
    None,
    /// Fast excitatory (1024).
    Ampa,
    /// Subtractive inhibitory (512).
    Gaba,
    /// Voltage-gated excitatory (256).
    Nmda,
    /// Shunting inhibitory (128).
    Shunt,
}

impl Dendrite {
    /// samna's value.
    pub fn value(self) -> i64 {
        match self {
            Dendrite::None => 0,
            Dendrite::Ampa => 1024,
            Dendrite::Gaba => 512,
            Dendrite::Nmda => 256,
            Dendrite::Shunt => 128,
        }
    }

    /// From samna's value.
    pub fn from_value(v: i64) -> Result<Dendrite, RangeError> {
        Ok(match v {
            0 => Dendrite::None,
            1024 => Dendrite::Ampa,
            512 => Dendrite::Gaba,
            256 => Dendrite::Nmda,
            128 => Dendrite::Shunt,
            _ => {
                return Err(RangeError {
                    what: "dendrite",
                    value: v,
                    range: "{0, 128, 256, 512, 1024}",
                });
            }
        })
    }

    /// The weight sign this dendrite gives: +1 excitatory, -1 inhibitory, 0 none.
    pub fn sign(self) -> i8 {
        match self {
            Dendrite::Ampa | Dendrite::Nmda => 1,
            Dendrite::Gaba | Dendrite::Shunt => -1,
            Dendrite::None => 0,
        }
    }

    /// The model's dendrite, if any.
    pub fn to_model(self) -> Option<dynap_model::Dendrite> {
        Some(match self {
            Dendrite::None => return None,
            Dendrite::Ampa => dynap_model::Dendrite::Ampa,
            Dendrite::Gaba => dynap_model::Dendrite::Gaba,
            Dendrite::Nmda => dynap_model::Dendrite::Nmda,
            Dendrite::Shunt => dynap_model::Dendrite::Shunt,
        })
    }

    /// From the model's dendrite.
    pub fn from_model(d: dynap_model::Dendrite) -> Dendrite {
        match d {
            dynap_model::Dendrite::Ampa => Dendrite::Ampa,
            dynap_model::Dendrite::Gaba => Dendrite::Gaba,
            dynap_model::Dendrite::Nmda => Dendrite::Nmda,
            dynap_model::Dendrite::Shunt => Dendrite::Shunt,
        }
    }
}

/// A CAM entry (`Dynapse2Synapse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Synapse {
    /// The dendrite the entry drives.
    pub dendrite: Dendrite,
    /// Short-term depression enabled.
    pub stp: bool,
    /// Which base weights add up.
    pub weight: WeightMask,
    /// Precise delay enabled.
    pub precise_delay: bool,
    /// Mismatched delay enabled.
    pub mismatched_delay: bool,
    /// The tag it listens to.
    pub tag: Tag,
}

impl Synapse {
    /// Whether the entry does anything (a dendrite and a non-zero weight).
    pub fn is_active(&self) -> bool {
        self.dendrite != Dendrite::None && self.weight.bits() != 0
    }
}

/// An SRAM entry (`Dynapse2Destination`), also the address part of an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Destination {
    /// Target cores on the destination chip.
    pub core: CoreMask,
    /// Chip-grid hops along x.
    pub x_hop: Hop,
    /// Chip-grid hops along y.
    pub y_hop: Hop,
    /// The tag.
    pub tag: Tag,
}

impl Destination {
    /// Whether the entry is used (a non-empty core mask).
    pub fn is_used(&self) -> bool {
        self.core.bits() != 0
    }
}

/// The 14 latches of a neuron, in samna's order.
pub const LATCH_NAMES: [&str; LATCHES] = [
    "latch_so_dc",
    "latch_so_adaptation",
    "latch_soif_kill",
    "latch_coho_ca_mem",
    "latch_ho_enable",
    "latch_ho_so_de",
    "latch_deam_ampa",
    "latch_denm_nmda",
    "latch_de_conductance",
    "latch_deam_alpha",
    "latch_denm_alpha",
    "latch_de_mux",
    "latch_soif_type",
    "latch_ho_active",
];

/// A neuron (`Dynapse2Neuron`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Neuron {
    /// CAM.
    pub synapses: [Synapse; SYNAPSES],
    /// SRAM.
    pub destinations: [Destination; DESTINATIONS],
    /// The latches, in the order of [`LATCH_NAMES`] (index 0 is `latch_so_dc`).
    pub latches: [bool; LATCHES],
}

impl Default for Neuron {
    fn default() -> Neuron {
        Neuron {
            synapses: [Synapse::default(); SYNAPSES],
            destinations: [Destination::default(); DESTINATIONS],
            latches: [false; LATCHES],
        }
    }
}

/// A bias parameter (`Dynapse2Parameter`): the DAC code and samna's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Parameter {
    /// Transistor type, `'N'` or `'P'`.
    pub kind: char,
    /// Coarse code `0..=5`.
    pub coarse: u8,
    /// Fine code `0..=255`.
    pub fine: u8,
    /// samna's `_address` (kept verbatim).
    pub address: u64,
    /// samna's `_cookie` (kept verbatim).
    pub cookie: u64,
    /// samna's `_initialType` (0 = P, 1 = N).
    pub initial_type: u8,
    /// samna's `_switchableType`.
    pub switchable_type: bool,
}

impl Parameter {
    /// A parameter of the type its name ends with (`_N` or `_P`; `'N'` otherwise).
    pub fn for_name(name: &str, coarse: u8, fine: u8) -> Result<Parameter, RangeError> {
        if coarse > 5 {
            return Err(RangeError {
                what: "coarse",
                value: i64::from(coarse),
                range: "0..=5",
            });
        }
        let kind = if name.ends_with('P') { 'P' } else { 'N' };
        Ok(Parameter {
            kind,
            coarse,
            fine,
            address: 0,
            cookie: 0,
            initial_type: u8::from(kind == 'N'),
            switchable_type: name.ends_with("_V"),
        })
    }

    /// The DAC code.
    pub fn code(&self) -> dynap_model::BiasCode {
        dynap_model::BiasCode::new(self.coarse, self.fine).expect("coarse checked at construction")
    }
}

/// A map from parameter name to parameter, in file order.
pub type ParamMap = Vec<(String, Parameter)>;

/// Sets `name` in `map` (replacing an existing entry in place, appending otherwise).
pub fn set_param(map: &mut ParamMap, name: &str, p: Parameter) {
    match map.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = p,
        None => map.push((name.to_owned(), p)),
    }
}

/// Looks `name` up in `map`.
pub fn get_param<'a>(map: &'a ParamMap, name: &str) -> Option<&'a Parameter> {
    map.iter().find(|(n, _)| n == name).map(|(_, p)| p)
}

/// The 14 sADC enables of a core, in samna's order (JSON: PascalCase).
pub const CORE_SADC_NAMES: [&str; 14] = [
    "SoifMem",
    "SoifRefectory",
    "SoadDpi",
    "SocaDpi",
    "DeamEdpi",
    "DeamIdpi",
    "DenmEdpi",
    "DenmIdpi",
    "DegaIdpi",
    "DescIdpi",
    "SyW42",
    "SyW21",
    "SohoSogain",
    "SohoDegain",
];

/// The 8 sADC enables of a chip, in samna's order (JSON: PascalCase).
pub const CHIP_SADC_NAMES: [&str; 8] = [
    "NccfExtinViGroup0Pg1",
    "NccfCalRefbiasVGroup1Pg1",
    "NccfCalRefbiasVGroup2Pg1",
    "NccfExtinViGroup2Pg1",
    "NccfExtinViGroup0Pg0",
    "NccfCalRefbiasVGroup1Pg0",
    "NccfCalRefbiasVGroup2Pg0",
    "NccfExtinViGroup2Pg0",
];

/// Unmodelled JSON kept verbatim: `(key, compact JSON text)` in file order.
pub type Extra = Vec<(String, String)>;

/// A core (`Dynapse2Core`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Core {
    /// The 256 neurons.
    pub neurons: Vec<Neuron>,
    /// Analog monitoring enabled.
    pub neuron_monitoring_on: bool,
    /// The monitored neuron (`0..=255`).
    pub monitored_neuron: u8,
    /// Per-core biases.
    pub parameters: ParamMap,
    /// sADC enables ([`CORE_SADC_NAMES`]).
    pub sadc_enables: [bool; 14],
    /// `enable_syaw_stdbuf_an`.
    pub enable_syaw_stdbuf_an: bool,
    /// `enable_pulse_extender_monitor1`.
    pub enable_pulse_extender_monitor1: bool,
    /// `enable_pulse_extender_monitor2`.
    pub enable_pulse_extender_monitor2: bool,
    /// samna's `_id` (kept verbatim).
    pub id: i64,
    /// samna's `_cookie` (kept verbatim).
    pub cookie: i64,
    /// Keys this crate does not model.
    pub extra: Extra,
}

impl Default for Core {
    fn default() -> Core {
        Core {
            neurons: vec![Neuron::default(); NEURONS],
            neuron_monitoring_on: false,
            monitored_neuron: 0,
            parameters: Vec::new(),
            sadc_enables: [false; 14],
            enable_syaw_stdbuf_an: false,
            enable_pulse_extender_monitor1: false,
            enable_pulse_extender_monitor2: false,
            id: 0,
            cookie: 0,
            extra: Vec::new(),
        }
    }
}

/// A chip (`Dynapse2Chip`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Chip {
    /// The 4 cores.
    pub cores: Vec<Core>,
    /// Chip-wide biases.
    pub global_parameters: ParamMap,
    /// Biases shared by cores 0 and 1.
    pub shared_parameters01: ParamMap,
    /// Biases shared by cores 2 and 3.
    pub shared_parameters23: ParamMap,
    /// sADC group biases of cores 0 and 1.
    pub sadc_group_parameters01: Vec<ParamMap>,
    /// sADC group biases of cores 2 and 3.
    pub sadc_group_parameters23: Vec<ParamMap>,
    /// sADC enables ([`CHIP_SADC_NAMES`]).
    pub sadc_enables: [bool; 8],
    /// The DVS interface, unmodelled (compact JSON).
    pub dvs_if: String,
    /// The bio-amplifiers, unmodelled (compact JSON).
    pub bioamps: String,
    /// `enable_pg0_reference_monitor`.
    pub enable_pg0_reference_monitor: bool,
    /// `enable_pg1_reference_monitor`.
    pub enable_pg1_reference_monitor: bool,
    /// `param_gen0_powerdown`.
    pub param_gen0_powerdown: bool,
    /// `param_gen1_powerdown`.
    pub param_gen1_powerdown: bool,
    /// Keys this crate does not model.
    pub extra: Extra,
}

/// The DVS interface samna's alias writes by default (hardware.md section 2.4).
pub const DEFAULT_DVS_IF: &str = r#"{"dropEvents":false,"dvsMode":0,"offEvents":false,"onEvents":false,"poolingShift":{"x":0,"y":0},"copyEvents":false,"copyHop":{"x":0,"y":0},"davisReqAckBugfixDelay_ns":0,"origin":{"x":0,"y":0},"max":{"x":0,"y":0},"pixelDestinations":{},"filter":[]}"#;

/// The bio-amplifiers samna's alias writes by default (hardware.md section 2.4).
pub const DEFAULT_BIOAMPS: &str = r#"{"commonParameters":[],"channelParameters":{},"paramGen2Powerdown":true,"gain":0,"separateParameters":false,"monitorChannelThuc":false,"monitorChannelThdc":false,"monitorChannelQfruc":false,"monitorChannelOruc":false,"monitorChannelOsuc":false,"monitorChannelOauc":false,"route":{}}"#;

impl Default for Chip {
    fn default() -> Chip {
        Chip {
            cores: vec![Core::default(); CORES],
            global_parameters: Vec::new(),
            shared_parameters01: Vec::new(),
            shared_parameters23: Vec::new(),
            sadc_group_parameters01: Vec::new(),
            sadc_group_parameters23: Vec::new(),
            sadc_enables: [false; 8],
            dvs_if: DEFAULT_DVS_IF.to_owned(),
            bioamps: DEFAULT_BIOAMPS.to_owned(),
            enable_pg0_reference_monitor: false,
            enable_pg1_reference_monitor: false,
            param_gen0_powerdown: false,
            param_gen1_powerdown: false,
            extra: Vec::new(),
        }
    }
}

/// A whole board's configuration (`Dynapse2Configuration`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Configuration {
    /// The chips (1 to 4).
    pub chips: Vec<Chip>,
    /// Keys of the root object this crate does not model.
    pub extra: Extra,
}

impl Configuration {
    /// `chips` empty chips (every CAM and SRAM entry unused, no parameter set).
    pub fn new(chips: usize) -> Configuration {
        Configuration {
            chips: vec![Chip::default(); chips],
            extra: Vec::new(),
        }
    }

    /// The neuron at (chip, core, neuron), if it exists.
    pub fn neuron(&self, chip: usize, core: usize, neuron: usize) -> Option<&Neuron> {
        self.chips.get(chip)?.cores.get(core)?.neurons.get(neuron)
    }
}

/// Where a chip sits on the board's grid: the FPGA at x = 0, chips in one row at x = 1..4, y = 0
/// (Rockpool's intended `CHIP_POS`, with the missing chip 2 restored).
pub fn chip_position(chip: usize) -> (i64, i64) {
    (chip as i64 + 1, 0)
}

/// The chip an SRAM entry of a neuron on `source_chip` reaches, if it is a chip of a board with
/// `chips` chips.
pub fn target_chip(source_chip: usize, d: &Destination, chips: usize) -> Option<usize> {
    let (x, y) = chip_position(source_chip);
    let (tx, ty) = (x + i64::from(d.x_hop.get()), y + i64::from(d.y_hop.get()));
    (0..chips).find(|&c| chip_position(c) == (tx, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert_eq!(Tag::new(2047).unwrap().get(), 2047);
        assert_eq!(
            Tag::new(2048).unwrap_err().to_string(),
            "tag = 2048 is outside 0..=2047"
        );
        assert!(Hop::new(-7).is_ok() && Hop::new(8).is_err() && Hop::new(-8).is_err());
        assert!(CoreMask::new(15).is_ok() && CoreMask::new(16).is_err());
        assert!(WeightMask::new(16).is_err());
        assert!(Dendrite::from_value(7).is_err());
        for d in [
            Dendrite::None,
            Dendrite::Ampa,
            Dendrite::Gaba,
            Dendrite::Nmda,
            Dendrite::Shunt,
        ] {
            assert_eq!(Dendrite::from_value(d.value()), Ok(d));
        }
        assert!(Parameter::for_name("SOIF_LEAK_N", 6, 0).is_err());
        let p = Parameter::for_name("SOIF_DC_P", 1, 2).unwrap();
        assert_eq!((p.kind, p.initial_type), ('P', 0));
    }

    #[test]
    fn hops_lead_to_chips() {
        let d = |x: i64| Destination {
            core: CoreMask::ALL,
            x_hop: Hop::new(x).unwrap(),
            y_hop: Hop::new(0).unwrap(),
            tag: Tag::default(),
        };
        assert_eq!(target_chip(0, &d(0), 4), Some(0));
        assert_eq!(target_chip(0, &d(3), 4), Some(3));
        assert_eq!(target_chip(3, &d(-2), 4), Some(1));
        assert_eq!(target_chip(0, &d(-1), 4), None); // the FPGA
        assert_eq!(target_chip(0, &d(2), 2), None);
    }
}
