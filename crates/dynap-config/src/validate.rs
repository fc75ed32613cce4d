//! Validation: every hardware limit of a configuration, all violations, each with where it failed and
//! what the limit is.

use crate::map::NeuronPlace;
use crate::model::*;
use std::collections::BTreeMap;
use std::fmt;

/// Where in a configuration something is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Chip (0 for what concerns the whole board: its chip count, the host's input channels).
    pub chip: usize,
    /// Core on the chip, if the problem is in a core.
    pub core: Option<usize>,
    /// Neuron in the core, if the problem is in a neuron.
    pub neuron: Option<usize>,
    /// The neuron's CAM or SRAM entry, if the problem is in one entry.
    pub slot: Option<Slot>,
}

/// One entry of a neuron: a CAM synapse or an SRAM destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// CAM entry `0..64`.
    Synapse(usize),
    /// SRAM entry `0..4`.
    Destination(usize),
}

impl Location {
    /// A chip's location.
    pub fn chip(chip: usize) -> Location {
        Location {
            chip,
            core: None,
            neuron: None,
            slot: None,
        }
    }

    /// A core's location.
    pub fn core(chip: usize, core: usize) -> Location {
        Location {
            core: Some(core),
            ..Location::chip(chip)
        }
    }

    /// A neuron's location.
    pub fn neuron(chip: usize, core: usize, neuron: usize) -> Location {
        Location {
            neuron: Some(neuron),
            ..Location::core(chip, core)
        }
    }

    /// The same place, in one of its neuron's entries.
    fn at(self, slot: Slot) -> Location {
        Location {
            slot: Some(slot),
            ..self
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chip {}", self.chip)?;
        if let Some(c) = self.core {
            write!(f, ", core {c}")?;
        }
        if let Some(n) = self.neuron {
            write!(f, ", neuron {n}")?;
        }
        match self.slot {
            Some(Slot::Synapse(s)) => write!(f, ", synapse {s}"),
            Some(Slot::Destination(s)) => write!(f, ", destination {s}"),
            None => Ok(()),
        }
    }
}

/// A source of events: the host's input channel or a neuron of the board (what a tag must tell
/// apart at a core).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Input channel `i` of the mapping.
    Input(usize),
    /// A neuron of the configuration.
    Neuron(NeuronPlace),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Input(i) => write!(f, "input channel {i}"),
            Source::Neuron(p) => write!(f, "chip {} core {} neuron {}", p.chip, p.core, p.neuron),
        }
    }
}

/// A hardware rule a configuration breaks, with the data of the broken limit. The first group is
/// what [`validate()`] checks; the second what the binary decoder checks again after decoding
/// (values a [`Configuration`] built through its constructors cannot hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A board has 1 to `max` chips.
    ChipCount {
        /// Chips in the configuration.
        chips: usize,
        /// Chips a board can have ([`MAX_CHIPS`]).
        max: usize,
    },
    /// A bias name the chip does not have.
    UnknownBias {
        /// The name.
        name: String,
    },
    /// A bias whose transistor type is not the one its name ends with (`_N`, `_P`).
    BiasType {
        /// The bias.
        name: String,
        /// Its transistor type.
        kind: char,
        /// The type its name says, `'N'` or `'P'`.
        expected: char,
    },
    /// An SRAM entry that leads neither to a chip of the board nor, west of chip 0, to the host.
    RouteOffBoard {
        /// The entry's hops.
        x_hop: i8,
        /// The entry's hops.
        y_hop: i8,
        /// Chips on the board.
        chips: usize,
    },
    /// An input channel's destination that is not a chip of the board (input events enter at
    /// chip 0).
    InputOffBoard {
        /// The channel.
        channel: usize,
        /// The destination's hops.
        x_hop: i8,
        /// The destination's hops.
        y_hop: i8,
        /// Chips on the board.
        chips: usize,
    },
    /// An SRAM entry sends the control tag [`CONTROL_TAG`] to a core (one violation per core).
    ControlTag {
        /// The chip it reaches.
        chip: usize,
        /// The core it reaches.
        core: usize,
    },
    /// An input channel uses the control tag [`CONTROL_TAG`].
    InputControlTag {
        /// The channel.
        channel: usize,
    },
    /// Two sources reach one core with one tag: the core cannot tell them apart.
    TagConflict {
        /// The tag.
        tag: u16,
        /// The chip of the core reached.
        chip: usize,
        /// The core reached.
        core: usize,
        /// The source seen first (in the order the rule is checked: input channels, then neurons).
        first: Source,
        /// The other source.
        second: Source,
    },
    /// A chip without its [`CORES`] cores (binary decoding).
    CoreCount {
        /// Cores found.
        cores: usize,
    },
    /// A core without its [`NEURONS`] neurons (binary decoding).
    NeuronCount {
        /// Neurons found.
        neurons: usize,
    },
    /// A bias parameter outside its ranges: coarse above 5, a type other than `N`/`P`, an
    /// initial type other than 0/1 (binary decoding).
    ParameterRange {
        /// The bias.
        name: String,
        /// Its values.
        parameter: Parameter,
    },
    /// A tag, hop, core mask or weight mask out of its range (binary decoding).
    Range(RangeError),
    /// A sub-tree this crate keeps as JSON text without modelling it is not valid JSON (binary
    /// decoding).
    UnmodelledJson {
        /// Its key (`dvsIf`, `bioamps`, or an unknown key).
        key: String,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::ChipCount { chips, max } => write!(f, "{chips} chips; a board has 1 to {max}"),
            Rule::UnknownBias { name } => write!(f, "unknown bias name {name:?}"),
            Rule::BiasType {
                name,
                kind,
                expected,
            } => write!(
                f,
                "bias {name} has transistor type {kind}, but its name says {expected}"
            ),
            Rule::RouteOffBoard {
                x_hop,
                y_hop,
                chips,
            } => write!(
                f,
                "destination (x_hop {x_hop}, y_hop {y_hop}) is not a chip of this board ({chips} chips at x = 1..{chips}, y = 0) nor the host"
            ),
            Rule::InputOffBoard {
                channel,
                x_hop,
                y_hop,
                chips,
            } => write!(
                f,
                "input channel {channel}: destination (x_hop {x_hop}, y_hop {y_hop}) is not a chip of this board ({chips} chips)"
            ),
            Rule::ControlTag { chip, core } => write!(
                f,
                "tag {CONTROL_TAG} is reserved for control events, but this entry sends it to chip {chip} core {core}"
            ),
            Rule::InputControlTag { channel } => write!(
                f,
                "input channel {channel}: tag {CONTROL_TAG} is reserved for control events"
            ),
            Rule::TagConflict {
                tag,
                chip,
                core,
                first,
                second,
            } => write!(
                f,
                "tag {tag} reaches chip {chip} core {core} from {first} and from {second}: a core cannot tell them apart"
            ),
            Rule::CoreCount { cores } => write!(f, "{cores} cores, not {CORES}"),
            Rule::NeuronCount { neurons } => write!(f, "{neurons} neurons, not {NEURONS}"),
            Rule::ParameterRange { name, parameter } => write!(
                f,
                "parameter {name} is out of range (type {:?}, coarse {}, initial type {})",
                parameter.kind, parameter.coarse, parameter.initial_type
            ),
            Rule::Range(e) => write!(f, "{e}"),
            Rule::UnmodelledJson { key } => {
                write!(f, "the unmodelled key {key:?} is not valid JSON")
            }
        }
    }
}

/// One broken rule, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Where.
    pub at: Location,
    /// What, with the limit.
    pub rule: Rule,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.rule)
    }
}

/// Bias names this crate knows besides the scale-factor table (hardware.md sections 1.6, 1.7, 2.2).
const OTHER_KNOWN_BIASES: [&str; 36] = [
    "SYPD_DLY0_P",
    "SYPD_DLY1_P",
    "SYPD_DLY2_P",
    "R2R_BUFFER_AMPB",
    "PG_BUF_N",
    "NCCF_REF_L_V",
    "NCCF_REF_H_V",
    "SYAM_STDWAMPB",
    "BAVBSS",
    "BAVBIAS",
    "BAVCAS",
    "BAVCASC",
    "BCCB",
    "BAMPB",
    "BFVBIAS",
    "BF1VG",
    "BF1VF",
    "BF1VQ",
    "BADCVBIAS",
    "BBVBIAS",
    "BADCREFRACTORY",
    "BADCTHU",
    "BADCTHUC",
    "BADCTHD",
    "BADCTHDC",
    "BF2VG",
    "BF2VF",
    "BF2VQ",
    "BF3VG",
    "BF3VF",
    "BF3VQ",
    "NCCF_EXTIN_VI",
    "SOIF_CC_N",
    "SOAD_CASC_P",
    "LBWR_VB_P",
    "SYAM_STDWCCB",
];

/// Whether `name` is a DYNAP-SE2 bias this crate knows.
pub fn is_known_bias(name: &str) -> bool {
    static SCALED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let scaled = SCALED.get_or_init(|| {
        dynap_model::BiasGenerator::dynapse2()
            .scale_factors()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    });
    OTHER_KNOWN_BIASES.contains(&name) || scaled.iter().any(|n| n == name)
}

/// The structural and range checks the types cannot express alone (used after binary decoding, whose
/// decoder builds values without their constructors): counts of chips, cores, neurons; tags, hops,
/// masks and codes in range; embedded JSON well formed. The first problem found.
pub(crate) fn check_ranges(config: &Configuration) -> Result<(), Box<Violation>> {
    let chips = config.chips.len();
    if chips == 0 || chips > MAX_CHIPS {
        return Err(Box::new(Violation {
            at: Location::chip(0),
            rule: Rule::ChipCount {
                chips,
                max: MAX_CHIPS,
            },
        }));
    }
    let json_ok = |s: &str| serde_json::from_str::<serde_json::Value>(s).is_ok();
    let extra_ok = |extra: &Extra, at: Location| match extra.iter().find(|(_, v)| !json_ok(v)) {
        Some((k, _)) => Err(Box::new(Violation {
            at,
            rule: Rule::UnmodelledJson { key: k.clone() },
        })),
        None => Ok(()),
    };
    extra_ok(&config.extra, Location::chip(0))?;
    for (h, chip) in config.chips.iter().enumerate() {
        let chip_at = Location::chip(h);
        if chip.cores.len() != CORES {
            return Err(Box::new(Violation {
                at: chip_at,
                rule: Rule::CoreCount {
                    cores: chip.cores.len(),
                },
            }));
        }
        for (key, text) in [("dvsIf", &chip.dvs_if), ("bioamps", &chip.bioamps)] {
            if !json_ok(text) {
                return Err(Box::new(Violation {
                    at: chip_at,
                    rule: Rule::UnmodelledJson { key: key.into() },
                }));
            }
        }
        let maps = [
            &chip.global_parameters,
            &chip.shared_parameters01,
            &chip.shared_parameters23,
        ];
        let groups = chip
            .sadc_group_parameters01
            .iter()
            .chain(&chip.sadc_group_parameters23);
        for map in maps.into_iter().chain(groups) {
            check_params(map, chip_at)?;
        }
        for (c, core) in chip.cores.iter().enumerate() {
            let at = Location::core(h, c);
            if core.neurons.len() != NEURONS {
                return Err(Box::new(Violation {
                    at,
                    rule: Rule::NeuronCount {
                        neurons: core.neurons.len(),
                    },
                }));
            }
            check_params(&core.parameters, at)?;
            for (n, neuron) in core.neurons.iter().enumerate() {
                let at = Location::neuron(h, c, n);
                let range = |slot: Slot| {
                    move |e: RangeError| {
                        Box::new(Violation {
                            at: at.at(slot),
                            rule: Rule::Range(e),
                        })
                    }
                };
                for (s, syn) in neuron.synapses.iter().enumerate() {
                    Tag::new(i64::from(syn.tag.get()))
                        .and(WeightMask::new(i64::from(syn.weight.bits())))
                        .map_err(range(Slot::Synapse(s)))?;
                }
                for (s, d) in neuron.destinations.iter().enumerate() {
                    Tag::new(i64::from(d.tag.get()))
                        .and(Hop::new(i64::from(d.x_hop.get())))
                        .and(Hop::new(i64::from(d.y_hop.get())))
                        .and(CoreMask::new(i64::from(d.core.bits())))
                        .map_err(range(Slot::Destination(s)))?;
                }
            }
            extra_ok(&core.extra, at)?;
        }
        extra_ok(&chip.extra, chip_at)?;
    }
    Ok(())
}

fn check_params(map: &ParamMap, at: Location) -> Result<(), Box<Violation>> {
    for (name, p) in map {
        if p.coarse > 5 || !matches!(p.kind, 'N' | 'P') || p.initial_type > 1 {
            return Err(Box::new(Violation {
                at,
                rule: Rule::ParameterRange {
                    name: name.clone(),
                    parameter: p.clone(),
                },
            }));
        }
    }
    Ok(())
}

/// Every violation of the hardware's rules in `config`, in a fixed order (empty when valid).
/// `inputs` are the destinations of the host's input channels (from the mapping), if known; they
/// enter the grid at chip 0.
///
/// Rules: bias names the chip has; bias types matching the name's `_N`/`_P`; SRAM entries that lead to
/// a chip of the board or off the grid to the host; no two sources reaching one core with one tag; no
/// source other than the host's control events using the control tag 2047 towards a core.
pub fn validate(config: &Configuration, inputs: Option<&[Vec<Destination>]>) -> Vec<Violation> {
    let mut out = Vec::new();
    let chips = config.chips.len();
    if chips == 0 || chips > MAX_CHIPS {
        out.push(Violation {
            at: Location::chip(0),
            rule: Rule::ChipCount {
                chips,
                max: MAX_CHIPS,
            },
        });
    }
    let param_rules = |map: &ParamMap, at: Location, out: &mut Vec<Violation>| {
        for (name, p) in map {
            let expected = ['N', 'P']
                .into_iter()
                .find(|&t| name.strip_suffix(t).is_some_and(|s| s.ends_with('_')));
            if !is_known_bias(name) {
                out.push(Violation {
                    at,
                    rule: Rule::UnknownBias { name: name.clone() },
                });
            } else if let Some(expected) = expected.filter(|&t| t != p.kind) {
                out.push(Violation {
                    at,
                    rule: Rule::BiasType {
                        name: name.clone(),
                        kind: p.kind,
                        expected,
                    },
                });
            }
        }
    };
    // (target chip, target core, tag) -> first source seen.
    let mut reach: BTreeMap<(usize, usize, u16), Source> = BTreeMap::new();
    let mut claim = |(chip, core, tag): (usize, usize, u16),
                     src: Source,
                     at: Location,
                     out: &mut Vec<Violation>| {
        match reach.get(&(chip, core, tag)) {
            Some(&first) if first != src => out.push(Violation {
                at,
                rule: Rule::TagConflict {
                    tag,
                    chip,
                    core,
                    first,
                    second: src,
                },
            }),
            Some(_) => {}
            None => {
                reach.insert((chip, core, tag), src);
            }
        }
    };
    if let Some(inputs) = inputs {
        for (i, dests) in inputs.iter().enumerate() {
            for d in dests.iter().filter(|d| d.is_used()) {
                let at = Location::chip(0);
                match target_chip(0, d, chips) {
                    Some(t) => {
                        if d.tag.get() == CONTROL_TAG {
                            out.push(Violation {
                                at,
                                rule: Rule::InputControlTag { channel: i },
                            });
                        }
                        for k in (0..CORES).filter(|&k| d.core.contains(k)) {
                            claim((t, k, d.tag.get()), Source::Input(i), at, &mut out);
                        }
                    }
                    None => out.push(Violation {
                        at,
                        rule: Rule::InputOffBoard {
                            channel: i,
                            x_hop: d.x_hop.get(),
                            y_hop: d.y_hop.get(),
                            chips,
                        },
                    }),
                }
            }
        }
    }
    for (h, chip) in config.chips.iter().enumerate() {
        let chip_at = Location::chip(h);
        param_rules(&chip.global_parameters, chip_at, &mut out);
        param_rules(&chip.shared_parameters01, chip_at, &mut out);
        param_rules(&chip.shared_parameters23, chip_at, &mut out);
        for g in chip
            .sadc_group_parameters01
            .iter()
            .chain(&chip.sadc_group_parameters23)
        {
            param_rules(g, chip_at, &mut out);
        }
        for (c, core) in chip.cores.iter().enumerate() {
            param_rules(&core.parameters, Location::core(h, c), &mut out);
            for (n, neuron) in core.neurons.iter().enumerate() {
                let source = Source::Neuron(NeuronPlace {
                    chip: h,
                    core: c,
                    neuron: n,
                });
                for (s, d) in neuron.destinations.iter().enumerate() {
                    if !d.is_used() {
                        continue;
                    }
                    let at = Location::neuron(h, c, n).at(Slot::Destination(s));
                    let (x, _) = chip_position(h);
                    let tx = x + i64::from(d.x_hop.get());
                    match target_chip(h, d, chips) {
                        Some(t) => {
                            for k in (0..CORES).filter(|&k| d.core.contains(k)) {
                                if d.tag.get() == CONTROL_TAG {
                                    out.push(Violation {
                                        at,
                                        rule: Rule::ControlTag { chip: t, core: k },
                                    });
                                }
                                claim((t, k, d.tag.get()), source, at, &mut out);
                            }
                        }
                        // West of chip 0: the FPGA, i.e. the host (monitor routes).
                        None if tx <= 0 => {}
                        None => out.push(Violation {
                            at,
                            rule: Rule::RouteOffBoard {
                                x_hop: d.x_hop.get(),
                                y_hop: d.y_hop.get(),
                                chips,
                            },
                        }),
                    }
                }
            }
        }
    }
    // Chip-wide problems first, then by core, neuron and slot; the order of discovery within one place.
    out.sort_by_key(|v| v.at);
    out
}
