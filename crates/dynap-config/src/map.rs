//! Mapping a quantized network onto cores and chips, and back (hardware.md section 4.10, the corrected
//! semantics; Rockpool's allocator is only right for one cluster on chip 0 core 0, section 4.9).
//!
//! * Neurons: neuron `j` goes to global core `g = core_map[j]` (chip `g / 4`, core `g % 4`), local ids
//!   0..255 in ascending `j` within each core.
//! * Biases: one set per core, the mean of its neurons' 13 currents (Rockpool's cluster means), the
//!   four base weights from the quantization; each current to its bias generator code.
//! * Tags: one per source (input channel `i`, neuron `j`) that reaches some core, unique among the sources
//!   reaching any one core, within every reached core's allow-list, never the control tag 2047. A source
//!   gets its Rockpool tag (`i`, `Nin + j`, or `N + j` without input weights) when that is free, so one
//!   core maps exactly as Rockpool does.
//! * CAM (per post neuron, in its own core): inputs, then recurrent sources, in ascending order.
//! * SRAM (per pre neuron, in its own core): slot 0 is the monitor route to the host (tag
//!   `core * 256 + neuron`, all cores, hops -7/-7), then one entry per destination chip with the cores it
//!   reaches there. Every neuron of a used core gets its monitor route.
//! * Inputs: per channel, one destination per chip it reaches, hops counted from chip 0 (where the host's
//!   events enter).
//! * The DC latch is set on a core's neurons when the core's `Idc` is above 0.

use crate::model::*;
use crate::validate::{Rule, Violation, validate};
use dynap_model::{
    BASE_WEIGHTS, BIAS_NAMES, BiasGenerator, ChipSynapses, Dendrite as ModelDendrite, Network,
    NeuronParams, Param, QuantMatrix, QuantizedWeights, SynapseChoice, Variant, WeightMatrix,
};
use std::collections::BTreeMap;
use std::fmt;

/// Where a network's neuron lives on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NeuronPlace {
    /// Chip.
    pub chip: usize,
    /// Core on the chip.
    pub core: usize,
    /// Neuron in the core.
    pub neuron: usize,
}

/// What the configuration does not hold and the way back needs: the network's neuron order, the input
/// channels' destinations, `Iscale`, `dt` and the model variant (the `mapping.json` of `dynap map`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    /// Weight scale (A).
    pub iscale: f64,
    /// Time step (s).
    pub dt: f64,
    /// Model variant.
    pub variant: Variant,
    /// Neuron `j` of the network lives at `neurons[j]`.
    pub neurons: Vec<NeuronPlace>,
    /// Destinations of every input channel (empty for a channel without connections).
    pub inputs: Vec<Vec<Destination>>,
}

/// Options of [`map`].
#[derive(Clone, Debug)]
pub struct MapOptions {
    /// Allowed tags per global core (`chip * 4 + core`); cores not listed allow every tag but 2047.
    pub tag_allow: BTreeMap<usize, Vec<u16>>,
    /// The bias generator the currents are coded with.
    pub generator: BiasGenerator,
    /// A `chip` network's dendrites: their currents become each core's DENM, DEGA and DESC biases
    /// (per-core means), and each connection goes to the dendrite its synapse type names. `None`:
    /// Rockpool's mapping (the synapse's currents on all four dendrites, AMPA or GABA by sign).
    pub chip: Option<ChipSynapses>,
}

impl Default for MapOptions {
    fn default() -> MapOptions {
        MapOptions {
            tag_allow: BTreeMap::new(),
            generator: BiasGenerator::dynapse2(),
            chip: None,
        }
    }
}

/// A mapped network.
#[derive(Clone, Debug)]
pub struct Mapped {
    /// The configuration.
    pub config: Configuration,
    /// The mapping (neuron order, input destinations, Iscale, dt, variant).
    pub mapping: Mapping,
    /// Per used global core, the mean currents written (A), in [`Param::CURRENTS`] order.
    pub core_currents: BTreeMap<usize, [f64; 13]>,
}

/// Why a network does not fit the board, or a configuration does not give one back: every problem
/// found.
#[derive(Clone, Debug, PartialEq)]
pub struct MapError {
    /// The problems.
    pub problems: Vec<MapProblem>,
}

impl From<MapProblem> for MapError {
    fn from(p: MapProblem) -> MapError {
        MapError { problems: vec![p] }
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the network does not fit the board:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MapError {}

/// A source of events in the network's numbering: an input channel or a neuron `j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetworkSource {
    /// Input channel `i` (row `i` of `w_in`).
    Input(usize),
    /// Neuron `j` of the network (row `j` of `w_rec`).
    Neuron(usize),
}

impl fmt::Display for NetworkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkSource::Input(i) => write!(f, "input channel {i}"),
            NetworkSource::Neuron(j) => write!(f, "neuron {j}"),
        }
    }
}

/// One reason a network does not map ([`map`]) or a configuration does not unmap ([`unmap`]), with
/// the neuron, core or channel and the limit.
#[derive(Clone, Debug, PartialEq)]
pub enum MapProblem {
    /// The parameters and the weights are for different numbers of neurons.
    ParamCount {
        /// Neurons of the parameters.
        params: usize,
        /// Neurons of the weights.
        weights: usize,
    },
    /// The core map uses a core the board does not have.
    TooManyCores {
        /// The highest global core used (`chip * 4 + core`).
        core: usize,
        /// Cores a board has.
        limit: usize,
    },
    /// More neurons on a core than it has.
    CoreFull {
        /// Chip.
        chip: usize,
        /// Core on the chip.
        core: usize,
        /// Neurons the core map gives it.
        neurons: usize,
        /// Neurons a core has ([`NEURONS`]).
        limit: usize,
    },
    /// No tag is free on every core a source reaches (within the allow-lists, never the control
    /// tag).
    NoTagLeft {
        /// The source.
        source: NetworkSource,
        /// The global cores (`chip * 4 + core`) it reaches.
        cores: Vec<usize>,
    },
    /// More sources may reach the cores of a population's targets than there are tags to tell them
    /// apart (decided before training, when training chooses which of the allowed connections stay).
    TagBudget {
        /// The source population's first neuron.
        neuron: usize,
        /// The sources that may reach the cores its neurons reach.
        sources: usize,
        /// The tags a source can take.
        limit: usize,
    },
    /// A neuron with more incoming connections than CAM entries.
    FanIn {
        /// The network's neuron.
        neuron: usize,
        /// Where it lives.
        place: NeuronPlace,
        /// Its incoming connections.
        found: usize,
        /// CAM entries per neuron ([`SYNAPSES`]).
        limit: usize,
    },
    /// A neuron reaching more chips than it has SRAM entries besides the monitor route.
    FanOut {
        /// The network's neuron.
        neuron: usize,
        /// Where it lives.
        place: NeuronPlace,
        /// Chips it reaches.
        chips: usize,
        /// SRAM entries per neuron ([`DESTINATIONS`]), one of them the monitor route.
        limit: usize,
    },
    /// The configuration breaks a hardware rule (the produced one, for [`map`]; two sources with one
    /// tag into one core, for [`unmap`]).
    Violation(Violation),
    /// What the model refuses: the `chip` network's dendrites for [`map`], the restored weights for
    /// [`unmap`].
    Model(dynap_model::Error),
    /// The mapping places a neuron where the configuration has none.
    MissingNeuron {
        /// The place.
        place: NeuronPlace,
    },
    /// A neuron's second CAM entry for one source: the chip adds both, one connection per source and
    /// target can be restored.
    SecondCamEntry {
        /// The neuron.
        place: NeuronPlace,
        /// The CAM entry.
        synapse: usize,
        /// Its tag.
        tag: u16,
    },
    /// A CAM entry listening to a tag no source sends to its core.
    UnsentTag {
        /// The neuron.
        place: NeuronPlace,
        /// The CAM entry.
        synapse: usize,
        /// Its tag.
        tag: u16,
    },
}

impl fmt::Display for MapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place =
            |p: &NeuronPlace| format!("chip {} core {} neuron {}", p.chip, p.core, p.neuron);
        match self {
            MapProblem::ParamCount { params, weights } => write!(
                f,
                "the parameters are for {params} neurons, the weights for {weights}"
            ),
            MapProblem::TooManyCores { core, limit } => write!(
                f,
                "the core map uses core {core}; a board has at most {limit} cores ({MAX_CHIPS} chips of {CORES})"
            ),
            MapProblem::CoreFull {
                chip,
                core,
                neurons,
                limit,
            } => write!(
                f,
                "chip {chip} core {core} is given {neurons} neurons; a core has {limit}"
            ),
            MapProblem::NoTagLeft { source, cores } => write!(
                f,
                "no tag left for {source}: every tag allowed on the cores it reaches ({}) is taken by another source reaching them",
                cores
                    .iter()
                    .map(|g| format!("chip {} core {}", g / CORES, g % CORES))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            MapProblem::FanIn {
                neuron,
                place: p,
                found,
                limit,
            } => write!(
                f,
                "neuron {neuron} ({}) has {found} incoming connections; a neuron has {limit} CAM entries",
                place(p)
            ),
            MapProblem::TagBudget {
                neuron,
                sources,
                limit,
            } => write!(
                f,
                "neuron {neuron}: up to {sources} sources may reach the cores it reaches, and each needs a tag of its own on them; there are {limit} (fewer connections between the populations, or smaller populations)"
            ),
            MapProblem::FanOut {
                neuron,
                place: p,
                chips,
                limit,
            } => write!(
                f,
                "neuron {neuron} ({}) reaches {chips} chips; a neuron has {limit} SRAM entries, one of them the monitor route",
                place(p)
            ),
            MapProblem::Violation(v) => write!(f, "{v}"),
            MapProblem::Model(e) => write!(f, "{e}"),
            MapProblem::MissingNeuron { place: p } => write!(
                f,
                "the mapping places a neuron at {}, which this configuration does not have",
                place(p)
            ),
            MapProblem::SecondCamEntry {
                place: p,
                synapse,
                tag,
            } => write!(
                f,
                "{} synapse {synapse}: a second CAM entry for tag {tag} (the chip adds both; one connection per source and target can be restored)",
                place(p)
            ),
            MapProblem::UnsentTag {
                place: p,
                synapse,
                tag,
            } => write!(
                f,
                "{} synapse {synapse} listens to tag {tag}, which no source sends to this core",
                place(p)
            ),
        }
    }
}

/// The chip bias of each of the 23 exported simulator names: which network current feeds it.
fn source_current(sim: &str) -> Option<Param> {
    Some(match sim {
        "Igain_ampa" | "Igain_gaba" | "Igain_nmda" | "Igain_shunt" => Param::IgainSyn,
        "Itau_ampa" | "Itau_gaba" | "Itau_nmda" | "Itau_shunt" => Param::ItauSyn,
        other => return Param::from_name(other),
    })
}

/// The chip bias a neuron current is deployed to by [`map()`] (for the synapse's currents, the AMPA
/// dendrite's), when it is one.
pub fn deployed_bias(p: Param) -> Option<&'static str> {
    let sim = match p {
        Param::IgainSyn => "Igain_ampa",
        Param::ItauSyn => "Itau_ampa",
        other => other.rockpool_name(),
    };
    BIAS_NAMES.iter().find(|b| b.sim == sim).map(|b| b.chip)
}

/// The current `generator` makes for the current `p` nearest to `current` (what [`map()`] configures
/// for a core of that value, and [`crate::unmap`] reads back), when `p` is deployed to a bias.
pub fn snap_current(generator: &BiasGenerator, p: Param, current: f64) -> Option<f64> {
    let chip = deployed_bias(p)?;
    let code = generator.code_from_current(chip, current).ok()?;
    generator.current_from_code(chip, code).ok()
}

/// The smallest positive and the largest current `generator` makes for `p`, when `p` is deployed
/// to a bias.
pub fn current_range(generator: &BiasGenerator, p: Param) -> Option<(f64, f64)> {
    let chip = deployed_bias(p)?;
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for code in dynap_model::BiasCode::all() {
        let c = generator.current_from_code(chip, code).ok()?;
        if c > 0.0 {
            lo = lo.min(c);
            hi = hi.max(c);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

fn base_index(sim: &str) -> Option<usize> {
    sim.strip_prefix("Iw_")
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|&k| k < BASE_WEIGHTS)
}

/// A connection's dendrite, from its sign and its synapse type (AMPA or GABA without one).
fn dendrite_of(mask: u8, sign: i8, choice: Option<SynapseChoice>) -> Option<Dendrite> {
    if mask == 0 {
        return None;
    }
    match choice {
        Some(c) => c.dendrite(f64::from(sign)).map(Dendrite::from_model),
        None => ModelDendrite::for_sign(sign).map(Dendrite::from_model),
    }
}

/// Maps a quantized network with per-neuron parameters `params` onto a board.
pub fn map(
    weights: &QuantizedWeights,
    params: &NeuronParams,
    dt: f64,
    variant: Variant,
    options: &MapOptions,
) -> Result<Mapped, MapError> {
    let mut problems = Vec::new();
    let n = weights.neurons();
    if params.len() != n {
        return Err(MapProblem::ParamCount {
            params: params.len(),
            weights: n,
        }
        .into());
    }
    let core_map = weights.core_map();
    let cores_used = core_map.iter().max().map_or(0, |&g| g + 1);
    if cores_used > MAX_CHIPS * CORES {
        return Err(MapProblem::TooManyCores {
            core: cores_used - 1,
            limit: MAX_CHIPS * CORES,
        }
        .into());
    }
    let chips = cores_used.div_ceil(CORES).max(1);
    // Places.
    let mut count = vec![0usize; cores_used];
    let mut places = Vec::with_capacity(n);
    for &g in core_map {
        places.push(NeuronPlace {
            chip: g / CORES,
            core: g % CORES,
            neuron: count[g],
        });
        count[g] += 1;
    }
    for (g, &c) in count.iter().enumerate() {
        if c > NEURONS {
            problems.push(MapProblem::CoreFull {
                chip: g / CORES,
                core: g % CORES,
                neurons: c,
                limit: NEURONS,
            });
        }
    }
    if !problems.is_empty() {
        return Err(MapError { problems });
    }
    let empty_in = QuantMatrix::zeros(0, n);
    let w_in = weights.w_in().unwrap_or(&empty_in);
    let w_rec = weights.w_rec();
    let n_in = w_in.rows();

    // Which cores each source reaches.
    // One pass over each matrix, row by row: the connections of every post neuron in source order
    // (inputs, then neurons, ascending) and the cores every source reaches.
    let mut incoming: Vec<Vec<(usize, u8, Dendrite)>> = vec![Vec::new(); n];
    let mut sources: Vec<(Vec<usize>, u16)> = Vec::with_capacity(n_in + n);
    // Rockpool's tag numbering: input channel i has tag i, neuron j tag Nin + j; without an input
    // matrix it reserves N virtual tags all the same, so neuron j has tag N + j.
    let rec_tag_base = if weights.w_in().is_some() { n_in } else { n };
    let chip = options.chip.as_ref();
    if let Some(c) = chip
        && let Err(e) = c.validate(n, weights.w_in().map(|_| n_in))
    {
        return Err(MapProblem::Model(e).into());
    }
    let types_in = chip.and_then(|c| c.w_in_types.as_deref());
    let types_rec = chip.and_then(|c| c.w_rec_types.as_deref());
    for (m, offset, rows, tag_base, types) in [
        (w_in, 0, n_in, 0, types_in),
        (w_rec, n_in, n, rec_tag_base, types_rec),
    ] {
        for pre in 0..rows {
            let row = pre * n..(pre + 1) * n;
            let mut cores: Vec<usize> = Vec::new();
            for (post, (&mask, &sign)) in m.masks()[row.clone()]
                .iter()
                .zip(&m.signs()[row])
                .enumerate()
            {
                let choice =
                    chip.map(|_| types.map_or(SynapseChoice::default(), |t| t[pre * n + post]));
                if let Some(d) = dendrite_of(mask, sign, choice) {
                    incoming[post].push((offset + pre, mask, d));
                    cores.push(core_map[post]);
                }
            }
            cores.sort_unstable();
            cores.dedup();
            sources.push((cores, (tag_base + pre).min(u16::MAX as usize) as u16));
        }
    }

    // Tags.
    let mut used = vec![vec![false; TAGS as usize]; cores_used];
    let allowed = |g: usize, t: u16| -> bool {
        t != CONTROL_TAG && options.tag_allow.get(&g).is_none_or(|l| l.contains(&t))
    };
    let mut tags = vec![None; sources.len()];
    for (s, (cores, preferred)) in sources.iter().enumerate() {
        if cores.is_empty() {
            continue;
        }
        let free = |t: u16| cores.iter().all(|&g| allowed(g, t) && !used[g][t as usize]);
        let tag = if *preferred < TAGS && free(*preferred) {
            Some(*preferred)
        } else {
            (0..TAGS).find(|&t| free(t))
        };
        match tag {
            Some(t) => {
                for &g in cores {
                    used[g][t as usize] = true;
                }
                tags[s] = Some(t);
            }
            None => problems.push(MapProblem::NoTagLeft {
                source: if s < n_in {
                    NetworkSource::Input(s)
                } else {
                    NetworkSource::Neuron(s - n_in)
                },
                cores: cores.clone(),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(MapError { problems });
    }

    let mut config = Configuration::new(chips);
    let mut core_currents = BTreeMap::new();
    // Biases, monitor routes, DC latches.
    for g in (0..cores_used).filter(|&g| count[g] > 0) {
        let members: Vec<usize> = (0..n).filter(|&j| core_map[j] == g).collect();
        let mut mean = [0.0; 13];
        for (k, &p) in Param::CURRENTS.iter().enumerate() {
            let v = params.get(p);
            mean[k] = members.iter().map(|&j| v[j]).sum::<f64>() / members.len() as f64;
        }
        core_currents.insert(g, mean);
        let core = &mut config.chips[g / CORES].cores[g % CORES];
        for b in &BIAS_NAMES {
            let dendrite = chip.and_then(|c| c.current(b.sim));
            let current = match (base_index(b.sim), source_current(b.sim)) {
                (Some(k), _) => weights.base_currents()[g][k],
                _ if dendrite.is_some() => {
                    let v = dendrite.expect("checked");
                    members.iter().map(|&j| v[j]).sum::<f64>() / members.len() as f64
                }
                (None, Some(p)) => {
                    let k = Param::CURRENTS
                        .iter()
                        .position(|&q| q == p)
                        .expect("a current");
                    mean[k]
                }
                (None, None) => continue,
            };
            let code = options
                .generator
                .code_from_current(b.chip, current)
                .expect("the exported biases have scale factors");
            let p = Parameter::for_name(b.chip, code.coarse(), code.fine())
                .expect("codes are in range");
            set_param(&mut core.parameters, b.chip, p);
        }
        let dc = mean[0] > 0.0;
        for (local, neuron) in core.neurons.iter_mut().enumerate() {
            neuron.destinations[0] = Destination {
                core: CoreMask::ALL,
                x_hop: Hop::new(-7).expect("in range"),
                y_hop: Hop::new(-7).expect("in range"),
                tag: Tag::new(((g % CORES) * NEURONS + local) as i64).expect("below 1024"),
            };
            if dc && local < count[g] {
                neuron.latches[0] = true;
            }
        }
    }

    // CAM.
    for (post, &at) in places.iter().enumerate() {
        let entries: Vec<Synapse> = incoming[post]
            .iter()
            .map(|&(src, mask, d)| Synapse {
                dendrite: d,
                weight: WeightMask::new(i64::from(mask)).expect("4 bits"),
                tag: Tag::new(i64::from(tags[src].expect("a reaching source has a tag")))
                    .expect("allocated below 2048"),
                ..Synapse::default()
            })
            .collect();
        if entries.len() > SYNAPSES {
            problems.push(MapProblem::FanIn {
                neuron: post,
                place: at,
                found: entries.len(),
                limit: SYNAPSES,
            });
            continue;
        }
        let neuron = &mut config.chips[at.chip].cores[at.core].neurons[at.neuron];
        neuron.synapses[..entries.len()].copy_from_slice(&entries);
    }

    // Per chip of a source's reached cores: one destination with the OR of the core masks.
    let routes = |cores: &[usize], from_chip: usize, tag: u16| -> Vec<Destination> {
        let mut by_chip: BTreeMap<usize, CoreMask> = BTreeMap::new();
        for &g in cores {
            let m = by_chip.entry(g / CORES).or_default();
            *m = m.union(CoreMask::single(g % CORES));
        }
        by_chip
            .into_iter()
            .map(|(chip, mask)| {
                let (x0, y0) = chip_position(from_chip);
                let (x1, y1) = chip_position(chip);
                Destination {
                    core: mask,
                    x_hop: Hop::new(x1 - x0).expect("at most 3 hops"),
                    y_hop: Hop::new(y1 - y0).expect("one row"),
                    tag: Tag::new(i64::from(tag)).expect("below 2048"),
                }
            })
            .collect()
    };
    // SRAM.
    for pre in 0..n {
        let (cores, _) = &sources[n_in + pre];
        let Some(tag) = tags[n_in + pre] else {
            continue;
        };
        let at = places[pre];
        let dests = routes(cores, at.chip, tag);
        if dests.len() + 1 > DESTINATIONS {
            problems.push(MapProblem::FanOut {
                neuron: pre,
                place: at,
                chips: dests.len(),
                limit: DESTINATIONS,
            });
            continue;
        }
        let neuron = &mut config.chips[at.chip].cores[at.core].neurons[at.neuron];
        neuron.destinations[1..=dests.len()].copy_from_slice(&dests);
    }
    // Inputs.
    let inputs: Vec<Vec<Destination>> = (0..n_in)
        .map(|i| match tags[i] {
            Some(tag) => routes(&sources[i].0, 0, tag),
            None => Vec::new(),
        })
        .collect();
    if !problems.is_empty() {
        return Err(MapError { problems });
    }
    let violations = validate(&config, Some(&inputs));
    if !violations.is_empty() {
        return Err(MapError {
            problems: violations.into_iter().map(MapProblem::Violation).collect(),
        });
    }
    Ok(Mapped {
        config,
        mapping: Mapping {
            iscale: weights.i_scale(),
            dt,
            variant,
            neurons: places,
            inputs,
        },
        core_currents,
    })
}

/// A core's biases as currents: what its (coarse, fine) codes make through the bias generator (each
/// decoded with the transistor type the parameter records).
#[derive(Clone, Debug, PartialEq)]
pub struct CoreBiases {
    /// The neuron currents, by parameter (the synapse's gain and time constant read from the AMPA
    /// biases: the mapper writes the same code to all four dendrites).
    pub currents: Vec<(Param, f64)>,
    /// The base weights `Iw_0..Iw_3` (A); 0 where absent.
    pub base: [f64; BASE_WEIGHTS],
    /// The NMDA, GABA and SHUNT dendrites' currents by simulator name (`Itau_nmda`, `Igain_gaba`,
    /// ...), which the `chip` variant reads.
    pub dendrites: Vec<(&'static str, f64)>,
    /// Simulator names of the exported biases the core does not set.
    pub missing: Vec<&'static str>,
}

/// Decodes a core's biases (see [`CoreBiases`]).
pub fn core_biases(core: &Core, generator: &BiasGenerator) -> CoreBiases {
    let mut out = CoreBiases {
        currents: Vec::new(),
        base: [0.0; BASE_WEIGHTS],
        dendrites: Vec::new(),
        missing: Vec::new(),
    };
    for b in &BIAS_NAMES {
        let Some(p) = get_param(&core.parameters, b.chip) else {
            out.missing.push(b.sim);
            continue;
        };
        let ttype = if p.kind == 'P' {
            dynap_model::TransistorType::P
        } else {
            dynap_model::TransistorType::N
        };
        let scale = generator
            .scale(b.chip)
            .expect("exported biases have scale factors");
        let current = generator.table().current_from_code(ttype, scale, p.code());
        match (base_index(b.sim), b.sim) {
            (Some(k), _) => out.base[k] = current,
            (None, "Igain_ampa") => out.currents.push((Param::IgainSyn, current)),
            (None, "Itau_ampa") => out.currents.push((Param::ItauSyn, current)),
            (None, sim)
                if sim.ends_with("_nmda") || sim.ends_with("_gaba") || sim.ends_with("_shunt") =>
            {
                if sim != "If_nmda" {
                    out.dendrites.push((b.sim, current));
                } else if let Some(q) = Param::from_name(sim) {
                    out.currents.push((q, current));
                }
            }
            (None, sim) => {
                if let Some(q) = Param::from_name(sim) {
                    out.currents.push((q, current));
                }
            }
        }
    }
    out
}

/// A network restored from a configuration.
#[derive(Clone, Debug)]
pub struct Unmapped {
    /// The weights in the chip's format (base currents as the bias generator makes them).
    pub weights: QuantizedWeights,
    /// The network the simulator runs: decoded weights, every neuron with its core's currents.
    pub network: Network,
    /// Where every neuron of `network` lives.
    pub neurons: Vec<NeuronPlace>,
    /// Things the reader had to assume (a core without some bias, ...).
    pub notes: Vec<String>,
}

/// Restores a network from a configuration. With the `mapping` written by [`map`], the neuron and
/// channel order, `Iscale`, `dt` and variant are those of the original; without it, neurons are the
/// ones with a connection or a route, in (chip, core, neuron) order, input channels are the tags no
/// neuron sends, in ascending order, and `iscale`/`dt` are the given defaults.
pub fn unmap(
    config: &Configuration,
    mapping: Option<&Mapping>,
    iscale: f64,
    dt: f64,
    generator: &BiasGenerator,
) -> Result<Unmapped, MapError> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let chips = config.chips.len();
    let neuron_at = |p: &NeuronPlace| config.neuron(p.chip, p.core, p.neuron);
    // Neurons.
    let places: Vec<NeuronPlace> = match mapping {
        Some(m) => m.neurons.clone(),
        None => {
            let mut v = Vec::new();
            for (h, chip) in config.chips.iter().enumerate() {
                for (c, core) in chip.cores.iter().enumerate() {
                    for (k, neuron) in core.neurons.iter().enumerate() {
                        // Any route that stays on the board (whatever its slot).
                        let routes = neuron
                            .destinations
                            .iter()
                            .any(|d| d.is_used() && target_chip(h, d, chips).is_some());
                        if routes || neuron.synapses.iter().any(Synapse::is_active) {
                            v.push(NeuronPlace {
                                chip: h,
                                core: c,
                                neuron: k,
                            });
                        }
                    }
                }
            }
            v
        }
    };
    for p in &places {
        if neuron_at(p).is_none() {
            problems.push(MapProblem::MissingNeuron { place: *p });
        }
    }
    if !problems.is_empty() {
        return Err(MapError { problems });
    }
    let n = places.len();
    // Two sources with one tag into one core cannot be told apart: refuse, as the hardware would mix
    // them.
    let inputs = mapping.map(|m| m.inputs.as_slice());
    let conflicts: Vec<MapProblem> = validate(config, inputs)
        .into_iter()
        .filter(|v| matches!(v.rule, Rule::TagConflict { .. }))
        .map(MapProblem::Violation)
        .collect();
    if !conflicts.is_empty() {
        return Err(MapError {
            problems: conflicts,
        });
    }
    // (chip, core, tag) -> source: input channel (Err) or neuron (Ok).
    let mut by_tag: BTreeMap<(usize, usize, u16), Result<usize, usize>> = BTreeMap::new();
    for (j, p) in places.iter().enumerate() {
        let neuron = neuron_at(p).expect("checked");
        for d in neuron.destinations.iter().filter(|d| d.is_used()) {
            if let Some(t) = target_chip(p.chip, d, chips) {
                for k in (0..CORES).filter(|&k| d.core.contains(k)) {
                    by_tag.entry((t, k, d.tag.get())).or_insert(Ok(j));
                }
            }
        }
    }
    let n_in = match mapping {
        Some(m) => {
            for (i, dests) in m.inputs.iter().enumerate() {
                for d in dests {
                    if let Some(t) = target_chip(0, d, chips) {
                        for k in (0..CORES).filter(|&k| d.core.contains(k)) {
                            by_tag.entry((t, k, d.tag.get())).or_insert(Err(i));
                        }
                    }
                }
            }
            m.inputs.len()
        }
        None => {
            // Tags no neuron sends to a core are input channels, numbered by ascending tag.
            let mut input_tags: Vec<u16> = Vec::new();
            for p in &places {
                for s in neuron_at(p)
                    .expect("checked")
                    .synapses
                    .iter()
                    .filter(|s| s.is_active())
                {
                    if !by_tag.contains_key(&(p.chip, p.core, s.tag.get())) {
                        input_tags.push(s.tag.get());
                    }
                }
            }
            input_tags.sort_unstable();
            input_tags.dedup();
            for p in &places {
                for s in neuron_at(p)
                    .expect("checked")
                    .synapses
                    .iter()
                    .filter(|s| s.is_active())
                {
                    if let Ok(i) = input_tags.binary_search(&s.tag.get()) {
                        by_tag
                            .entry((p.chip, p.core, s.tag.get()))
                            .or_insert(Err(i));
                    }
                }
            }
            input_tags.len()
        }
    };
    // Weights.
    let mut in_mask = vec![0u8; n_in * n];
    let mut in_sign = vec![0i8; n_in * n];
    let mut rec_mask = vec![0u8; n * n];
    let mut rec_sign = vec![0i8; n * n];
    // The synapse type of every connection (the `chip` variant reads it).
    let mut in_types = vec![SynapseChoice::default(); n_in * n];
    let mut rec_types = vec![SynapseChoice::default(); n * n];
    for (post, p) in places.iter().enumerate() {
        let neuron = neuron_at(p).expect("checked");
        for (slot, s) in neuron
            .synapses
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_active())
        {
            let (mask, sign) = (s.weight.bits(), s.dendrite.sign());
            match by_tag.get(&(p.chip, p.core, s.tag.get())) {
                Some(&src) => {
                    let (masks, signs, types, pre) = match src {
                        Err(i) => (&mut in_mask, &mut in_sign, &mut in_types, i),
                        Ok(j) => (&mut rec_mask, &mut rec_sign, &mut rec_types, j),
                    };
                    types[pre * n + post] = SynapseChoice {
                        nmda: s.dendrite == Dendrite::Nmda,
                        shunt: s.dendrite == Dendrite::Shunt,
                    };
                    if masks[pre * n + post] != 0 {
                        problems.push(MapProblem::SecondCamEntry {
                            place: *p,
                            synapse: slot,
                            tag: s.tag.get(),
                        });
                    }
                    masks[pre * n + post] = mask;
                    signs[pre * n + post] = sign;
                }
                None => problems.push(MapProblem::UnsentTag {
                    place: *p,
                    synapse: slot,
                    tag: s.tag.get(),
                }),
            }
        }
    }
    if !problems.is_empty() {
        return Err(MapError { problems });
    }
    // Per-core currents and base weights.
    let core_map: Vec<usize> = places.iter().map(|p| p.chip * CORES + p.core).collect();
    let cores = core_map.iter().max().map_or(1, |&g| g + 1);
    let mut base = vec![[0.0; BASE_WEIGHTS]; cores];
    let mut params = NeuronParams::defaults(n);
    let mut core_params: BTreeMap<usize, Vec<(Param, f64)>> = BTreeMap::new();
    let mut core_dendrites: BTreeMap<usize, Vec<(&'static str, f64)>> = BTreeMap::new();
    for &g in &core_map {
        if core_params.contains_key(&g) {
            continue;
        }
        let decoded = core_biases(&config.chips[g / CORES].cores[g % CORES], generator);
        for sim in decoded.missing {
            notes.push(format!(
                "chip {} core {} has no {} ({sim}); the default is used",
                g / CORES,
                g % CORES,
                dynap_model::chip_bias_from_sim(sim).unwrap_or("?"),
            ));
        }
        base[g] = decoded.base;
        core_dendrites.insert(g, decoded.dendrites);
        let values = decoded.currents;
        core_params.insert(g, values);
    }
    for (j, &g) in core_map.iter().enumerate() {
        for &(p, v) in &core_params[&g] {
            params.get_mut(p)[j] = v;
        }
        // The chip injects the DC current only into neurons with the DC latch (Rockpool's reverse
        // mapping ignores the latch and gives every neuron its core's Idc).
        if !neuron_at(&places[j]).expect("checked").latches[0] {
            params.i_dc[j] = 0.0;
        }
    }
    let (iscale, dt, variant) = match mapping {
        Some(m) => (m.iscale, m.dt, m.variant),
        None => (iscale, dt, Variant::Rockpool),
    };
    let to_err = |e: dynap_model::Error| MapError::from(MapProblem::Model(e));
    let q_in = (n_in > 0)
        .then(|| QuantMatrix::new(WeightMatrix::Input, n_in, n, in_mask, in_sign))
        .transpose()
        .map_err(to_err)?;
    let q_rec =
        QuantMatrix::new(WeightMatrix::Recurrent, n, n, rec_mask, rec_sign).map_err(to_err)?;
    let weights = QuantizedWeights::new(core_map, base, q_in, q_rec, iscale).map_err(to_err)?;
    let (w_in, w_rec) = weights.decode();
    // A `chip` network gets its dendrites back: each neuron its core's DENM, DEGA and DESC currents
    // (capacitances are the layout's, the defaults), each connection the type of its CAM entry.
    let chip = (variant == Variant::Chip).then(|| {
        let mut c = ChipSynapses::defaults(n);
        for (j, &g) in weights.core_map().iter().enumerate() {
            for &(sim, v) in &core_dendrites[&g] {
                c.current_mut(sim).expect("a dendrite current")[j] = v;
            }
        }
        c.w_in_types = (n_in > 0).then_some(in_types);
        c.w_rec_types = Some(rec_types);
        c
    });
    let network = Network {
        params,
        w_in,
        w_rec,
        i_scale: iscale,
        dt,
        variant,
        chip,
    };
    Ok(Unmapped {
        weights,
        network,
        neurons: places,
        notes,
    })
}

/// Groups neurons with similar parameters into cores of at most 256 (a better split than Rockpool's
/// greedy one, which ignores the parameters): the neurons are ordered along the direction in which
/// their log-currents vary most and cut into `cores` consecutive groups of nearly equal size
/// (`cores` = 0 chooses the fewest that fit). Deterministic.
pub fn cluster_by_parameters(params: &NeuronParams, cores: usize) -> Vec<usize> {
    let n = params.len();
    let k = if cores == 0 {
        n.div_ceil(NEURONS).max(1)
    } else {
        cores
    };
    if k <= 1 || n == 0 {
        return vec![0; n];
    }
    // Features: log of each current, centred.
    let feats: Vec<Vec<f64>> = Param::CURRENTS
        .iter()
        .map(|&p| {
            let v: Vec<f64> = params.get(p).iter().map(|&x| x.max(1e-30).ln()).collect();
            let mean = v.iter().sum::<f64>() / n as f64;
            v.into_iter().map(|x| x - mean).collect()
        })
        .collect();
    // First principal direction by power iteration from a fixed start.
    let d = feats.len();
    let mut dir = vec![1.0; d];
    for _ in 0..50 {
        let proj: Vec<f64> = (0..n)
            .map(|j| (0..d).map(|f| feats[f][j] * dir[f]).sum())
            .collect();
        let mut next: Vec<f64> = (0..d)
            .map(|f| (0..n).map(|j| feats[f][j] * proj[j]).sum())
            .collect();
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        next.iter_mut().for_each(|x| *x /= norm);
        dir = next;
    }
    let score: Vec<f64> = (0..n)
        .map(|j| (0..d).map(|f| feats[f][j] * dir[f]).sum())
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]).then(a.cmp(&b)));
    let mut map = vec![0; n];
    for (rank, &j) in order.iter().enumerate() {
        map[j] = rank * k / n;
    }
    map
}
