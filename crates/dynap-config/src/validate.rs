//! Validation: every hardware limit of a configuration, all violations, each with where it failed and
//! what the limit is.

use crate::model::*;
use std::collections::BTreeMap;
use std::fmt;

/// Where in a configuration something is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Chip.
    pub chip: usize,
    /// Core on the chip, if the problem is in a core.
    pub core: Option<usize>,
    /// Neuron in the core, if the problem is in a neuron.
    pub neuron: Option<usize>,
    /// `("synapse" | "destination", slot)`, if the problem is in one entry.
    pub slot: Option<(&'static str, usize)>,
}

impl Location {
    /// A neuron's location.
    pub fn neuron(chip: usize, core: usize, neuron: usize) -> Location {
        Location {
            chip,
            core: Some(core),
            neuron: Some(neuron),
            slot: None,
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
        if let Some((kind, s)) = self.slot {
            write!(f, ", {kind} {s}")?;
        }
        Ok(())
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Where.
    pub at: Location,
    /// What, including the limit.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
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
/// masks and codes in range; embedded JSON well formed.
pub(crate) fn check_ranges(config: &Configuration) -> Result<(), String> {
    if config.chips.is_empty() || config.chips.len() > MAX_CHIPS {
        return Err(format!(
            "{} chips; a board has 1 to {MAX_CHIPS}",
            config.chips.len()
        ));
    }
    let json_ok = |s: &str| serde_json::from_str::<serde_json::Value>(s).is_ok();
    if let Some((k, _)) = config.extra.iter().find(|(_, v)| !json_ok(v)) {
        return Err(format!("the unmodelled key {k:?} is not valid JSON"));
    }
    for (h, chip) in config.chips.iter().enumerate() {
        if chip.cores.len() != CORES {
            return Err(format!(
                "chip {h} has {} cores, not {CORES}",
                chip.cores.len()
            ));
        }
        if !json_ok(&chip.dvs_if) || !json_ok(&chip.bioamps) {
            return Err(format!("chip {h}: unmodelled settings are not valid JSON"));
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
            check_params(map).map_err(|e| format!("chip {h}: {e}"))?;
        }
        for (c, core) in chip.cores.iter().enumerate() {
            let at = format!("chip {h}, core {c}");
            if core.neurons.len() != NEURONS {
                return Err(format!(
                    "{at} has {} neurons, not {NEURONS}",
                    core.neurons.len()
                ));
            }
            check_params(&core.parameters).map_err(|e| format!("{at}: {e}"))?;
            for (n, neuron) in core.neurons.iter().enumerate() {
                for (s, syn) in neuron.synapses.iter().enumerate() {
                    Tag::new(i64::from(syn.tag.get()))
                        .and(WeightMask::new(i64::from(syn.weight.bits())))
                        .map_err(|e| format!("{at}, neuron {n}, synapse {s}: {e}"))?;
                }
                for (s, d) in neuron.destinations.iter().enumerate() {
                    Tag::new(i64::from(d.tag.get()))
                        .and(Hop::new(i64::from(d.x_hop.get())))
                        .and(Hop::new(i64::from(d.y_hop.get())))
                        .and(CoreMask::new(i64::from(d.core.bits())))
                        .map_err(|e| format!("{at}, neuron {n}, destination {s}: {e}"))?;
                }
            }
            for (_, v) in &core.extra {
                if !json_ok(v) {
                    return Err(format!("{at}: an unmodelled key is not valid JSON"));
                }
            }
        }
        for (_, v) in &chip.extra {
            if !json_ok(v) {
                return Err(format!("chip {h}: an unmodelled key is not valid JSON"));
            }
        }
    }
    Ok(())
}

fn check_params(map: &ParamMap) -> Result<(), String> {
    for (name, p) in map {
        if p.coarse > 5 || !matches!(p.kind, 'N' | 'P') || p.initial_type > 1 {
            return Err(format!("parameter {name} is out of range"));
        }
    }
    Ok(())
}

/// A source of events, for the duplicate-tag rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Input(usize),
    Neuron(usize, usize, usize),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Input(i) => write!(f, "input channel {i}"),
            Source::Neuron(h, c, n) => write!(f, "chip {h} core {c} neuron {n}"),
        }
    }
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
            at: Location {
                chip: 0,
                core: None,
                neuron: None,
                slot: None,
            },
            problem: format!("{chips} chips; a board has 1 to {MAX_CHIPS}"),
        });
    }
    let param_rules = |map: &ParamMap, at: Location, out: &mut Vec<Violation>| {
        for (name, p) in map {
            if !is_known_bias(name) {
                out.push(Violation {
                    at,
                    problem: format!("unknown bias name {name:?}"),
                });
            } else if (name.ends_with("_N") && p.kind != 'N')
                || (name.ends_with("_P") && p.kind != 'P')
            {
                out.push(Violation {
                    at,
                    problem: format!(
                        "bias {name} has transistor type {}, but its name says {}",
                        p.kind,
                        &name[name.len() - 1..]
                    ),
                });
            }
        }
    };
    // (target chip, target core, tag) -> first source seen.
    let mut reach: BTreeMap<(usize, usize, u16), Source> = BTreeMap::new();
    let mut claim = |target: (usize, usize, u16),
                     src: Source,
                     at: Location,
                     out: &mut Vec<Violation>| {
        match reach.get(&target) {
            Some(&first) if first != src => out.push(Violation {
                at,
                problem: format!(
                    "tag {} reaches chip {} core {} from {first} and from {src}: a core cannot tell them apart",
                    target.2, target.0, target.1
                ),
            }),
            Some(_) => {}
            None => {
                reach.insert(target, src);
            }
        }
    };
    if let Some(inputs) = inputs {
        for (i, dests) in inputs.iter().enumerate() {
            for d in dests.iter().filter(|d| d.is_used()) {
                let at = Location {
                    chip: 0,
                    core: None,
                    neuron: None,
                    slot: None,
                };
                match target_chip(0, d, chips) {
                    Some(t) => {
                        if d.tag.get() == CONTROL_TAG {
                            out.push(Violation {
                                at,
                                problem: format!(
                                    "input channel {i}: tag {CONTROL_TAG} is reserved for control events"
                                ),
                            });
                        }
                        for k in (0..CORES).filter(|&k| d.core.contains(k)) {
                            claim((t, k, d.tag.get()), Source::Input(i), at, &mut out);
                        }
                    }
                    None => out.push(Violation {
                        at,
                        problem: format!(
                            "input channel {i}: destination (x_hop {}, y_hop {}) is not a chip of this board ({chips} chips)",
                            d.x_hop.get(),
                            d.y_hop.get()
                        ),
                    }),
                }
            }
        }
    }
    for (h, chip) in config.chips.iter().enumerate() {
        let chip_at = Location {
            chip: h,
            core: None,
            neuron: None,
            slot: None,
        };
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
            param_rules(
                &core.parameters,
                Location {
                    chip: h,
                    core: Some(c),
                    neuron: None,
                    slot: None,
                },
                &mut out,
            );
            for (n, neuron) in core.neurons.iter().enumerate() {
                for (s, d) in neuron.destinations.iter().enumerate() {
                    if !d.is_used() {
                        continue;
                    }
                    let at = Location {
                        slot: Some(("destination", s)),
                        ..Location::neuron(h, c, n)
                    };
                    let (x, _) = chip_position(h);
                    let tx = x + i64::from(d.x_hop.get());
                    match target_chip(h, d, chips) {
                        Some(t) => {
                            for k in (0..CORES).filter(|&k| d.core.contains(k)) {
                                if d.tag.get() == CONTROL_TAG {
                                    out.push(Violation {
                                        at,
                                        problem: format!(
                                            "tag {CONTROL_TAG} is reserved for control events, but this entry sends it to chip {t} core {k}"
                                        ),
                                    });
                                }
                                claim((t, k, d.tag.get()), Source::Neuron(h, c, n), at, &mut out);
                            }
                        }
                        // West of chip 0: the FPGA, i.e. the host (monitor routes).
                        None if tx <= 0 => {}
                        None => out.push(Violation {
                            at,
                            problem: format!(
                                "destination (x_hop {}, y_hop {}) is not a chip of this board ({chips} chips at x = 1..{chips}, y = 0) nor the host",
                                d.x_hop.get(),
                                d.y_hop.get()
                            ),
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
