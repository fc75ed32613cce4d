//! Whether a network described as populations ([`Architecture`]) fits the board, decided before it is
//! trained: every network its blocks allow must map, whatever weights training leaves at zero.
//!
//! The network is mapped with the architecture's core map (each population from a new core,
//! `ceil(size / 256)` consecutive cores). Its limits, checked per population so that each problem
//! names one:
//!
//! * **chips**: the cores used fit a board of [`MAX_CHIPS`] chips of [`CORES`] cores;
//! * **neurons per core**: at most [`NEURONS`], by the core map's construction;
//! * **fan-in**: every neuron of a population `B` has a CAM entry per allowed connection into it:
//!   `Nin` if the input connects to `B`, plus the size of every population connected to `B`, plus
//!   `B`'s own size if it is recurrent; at most [`SYNAPSES`];
//! * **routes**: a neuron of `A` needs an SRAM entry per chip its targets (the populations `A`
//!   connects to, and `A` itself if recurrent) live on, besides the monitor route: at most
//!   [`DESTINATIONS`] - 1 chips;
//! * **tags**: never short. A source reaching a core is an input of every neuron on it (blocks are
//!   all-to-all and a core holds one population), so once the fan-in holds at most 64 sources reach
//!   a core, and a source reaches at most 16 cores: at most 1024 sources share a core with any
//!   source, fewer than the 2047 usable tags, so the mapper's allocation (its preferred tag, else
//!   the first free on all the cores a source reaches) always finds one.
//!
//! With a fan-in limit that training keeps ([`check_mappable_with`]: at most `k <= 64` of the allowed
//! connections into each neuron stay non-zero, chosen by training), the fan-in holds by construction
//! and the tag argument above no longer does (different neurons of a core may keep different
//! sources): instead every source population is checked to have, on all the cores its neurons
//! reach, at most as many possible sources (those its target populations allow) as usable tags
//! ([`TAGS`] - 1), so that the mapper's allocation finds a tag whatever training keeps.
//!
//! Each limit is monotone: a sparser network (some allowed weights zero, so no CAM entry and maybe
//! fewer routes) needs no more of anything. When the checks pass, the densest network (a mask of 1
//! on every allowed weight) is also mapped by [`map()`] itself, which would report anything the
//! checks above missed.

use crate::map::{MapError, MapOptions, MapProblem, NetworkSource, NeuronPlace, map};
use crate::model::{CORES, DESTINATIONS, MAX_CHIPS, NEURONS, SYNAPSES, TAGS};
use dynap_model::{
    Architecture, BASE_WEIGHTS, CORE_NEURONS, DEFAULT_DT, NeuronParams, QuantMatrix,
    QuantizedWeights, Source, Variant, WeightMatrix,
};
use std::collections::BTreeSet;
use std::fmt;

// The model lays populations out on cores of its own size constant: it must be the chip's.
const _: () = assert!(CORE_NEURONS == NEURONS);

/// One reason an architecture does not map, with the population it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct PopulationProblem {
    /// The population's name (the neuron's, the core's, the source's), `None` for the input or the
    /// board as a whole.
    pub population: Option<String>,
    /// What does not fit, as the mapper reports it (for a per-population limit, about the
    /// population's first neuron: all its neurons are alike).
    pub problem: MapProblem,
}

impl fmt::Display for PopulationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.population {
            Some(name) => write!(f, "population {name:?}: {}", self.problem),
            None => write!(f, "{}", self.problem),
        }
    }
}

/// Why an architecture does not map onto the board: every problem found.
#[derive(Clone, Debug, PartialEq)]
pub struct UnmappableArchitecture {
    /// The problems.
    pub problems: Vec<PopulationProblem>,
}

impl fmt::Display for UnmappableArchitecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the network cannot be mapped onto the board:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnmappableArchitecture {}

/// Checks that every network `architecture` allows, with the per-neuron parameters `params` (its
/// flattened network's), maps onto a board (see the module documentation for the limits and why
/// they suffice); every problem names its population.
pub fn check_mappable(
    architecture: &Architecture,
    params: &NeuronParams,
) -> Result<(), UnmappableArchitecture> {
    check_mappable_with(architecture, params, None)
}

/// [`check_mappable`] for a training that keeps at most `fan_in` (at most [`SYNAPSES`]) non-zero
/// connections into each neuron, when given: the fan-in holds by construction, and the tag budget is
/// checked instead (see the module documentation).
pub fn check_mappable_with(
    architecture: &Architecture,
    params: &NeuronParams,
    fan_in: Option<usize>,
) -> Result<(), UnmappableArchitecture> {
    let n = architecture.neurons();
    let refuse = |problems: Vec<PopulationProblem>| Err(UnmappableArchitecture { problems });
    if params.len() != n {
        return refuse(vec![PopulationProblem {
            population: None,
            problem: MapProblem::ParamCount {
                params: params.len(),
                weights: n,
            },
        }]);
    }
    let pops = architecture.populations();
    let ranges = architecture.ranges();
    let core_ranges = architecture.core_ranges();
    let named = |k: usize, problem: MapProblem| PopulationProblem {
        population: Some(pops[k].name.clone()),
        problem,
    };
    // Chips: refused before anything the size of the network is built.
    let limit = MAX_CHIPS * CORES;
    let beyond: Vec<PopulationProblem> = core_ranges
        .iter()
        .enumerate()
        .filter(|(_, r)| r.end > limit)
        .map(|(k, r)| {
            named(
                k,
                MapProblem::TooManyCores {
                    core: r.end - 1,
                    limit,
                },
            )
        })
        .collect();
    if !beyond.is_empty() {
        return refuse(beyond);
    }
    let first_place = |k: usize| {
        let g = core_ranges[k].start;
        NeuronPlace {
            chip: g / CORES,
            core: g % CORES,
            neuron: 0,
        }
    };
    let mut problems = Vec::new();
    // The sources each population's neurons may have.
    let allowed: Vec<usize> = pops
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let from_connections: usize = architecture
                .connections()
                .iter()
                .filter(|c| c.to == k)
                .map(|c| match c.from {
                    Source::Input => architecture.inputs(),
                    Source::Population(a) => pops[a].size,
                })
                .sum();
            from_connections + if p.recurrent { p.size } else { 0 }
        })
        .collect();
    // Fan-in, per target population.
    for (k, &found) in allowed.iter().enumerate() {
        if fan_in.is_some_and(|limit| limit <= SYNAPSES) {
            break;
        }
        if found > SYNAPSES {
            problems.push(named(
                k,
                MapProblem::FanIn {
                    neuron: ranges[k].start,
                    place: first_place(k),
                    found,
                    limit: SYNAPSES,
                },
            ));
        }
    }
    // Routes, per source population: the chips its targets live on.
    for (k, p) in pops.iter().enumerate() {
        let targets = architecture
            .connections()
            .iter()
            .filter(|c| c.from == Source::Population(k))
            .map(|c| c.to)
            .chain(p.recurrent.then_some(k));
        let chips: BTreeSet<usize> = targets
            .flat_map(|t| core_ranges[t].clone().map(|g| g / CORES))
            .collect();
        if chips.len() + 1 > DESTINATIONS {
            problems.push(named(
                k,
                MapProblem::FanOut {
                    neuron: ranges[k].start,
                    place: first_place(k),
                    chips: chips.len(),
                    limit: DESTINATIONS,
                },
            ));
        }
    }
    // Tags, when training chooses the connections: per source population, the sources that may
    // reach the cores its neurons reach (the input's channels count as one population).
    if fan_in.is_some() {
        let sources = |targets: &mut dyn Iterator<Item = usize>| -> usize {
            let cores: BTreeSet<usize> = targets.flat_map(|t| core_ranges[t].clone()).collect();
            let targets_on = |t: usize| core_ranges[t].clone().any(|g| cores.contains(&g));
            (0..pops.len())
                .filter(|&t| targets_on(t))
                .map(|t| allowed[t])
                .sum()
        };
        let limit = usize::from(TAGS) - 1;
        for (k, p) in pops.iter().enumerate() {
            let found = sources(
                &mut architecture
                    .connections()
                    .iter()
                    .filter(|c| c.from == Source::Population(k))
                    .map(|c| c.to)
                    .chain(p.recurrent.then_some(k)),
            );
            if found > limit {
                problems.push(named(
                    k,
                    MapProblem::TagBudget {
                        neuron: ranges[k].start,
                        sources: found,
                        limit,
                    },
                ));
            }
        }
        let found = sources(
            &mut architecture
                .connections()
                .iter()
                .filter(|c| c.from == Source::Input)
                .map(|c| c.to),
        );
        if found > limit {
            problems.push(PopulationProblem {
                population: None,
                problem: MapProblem::TagBudget {
                    neuron: 0,
                    sources: found,
                    limit,
                },
            });
        }
    }
    if !problems.is_empty() {
        return refuse(problems);
    }
    // The densest network, through the mapper itself (with a fan-in limit, each neuron's first
    // allowed connections up to it: one of the networks training may leave).
    let densest = match fan_in {
        None => densest(architecture),
        Some(k) => densest_limited(architecture, k.min(SYNAPSES)),
    };
    match map(
        &densest,
        params,
        DEFAULT_DT,
        Variant::Rockpool,
        &MapOptions::default(),
    ) {
        Ok(_) => Ok(()),
        Err(e) => refuse(placed(architecture, e)),
    }
}

/// The densest network `architecture` allows, quantized: mask 1 and sign +1 on every allowed
/// weight, the architecture's core map, unit base currents.
pub(crate) fn densest(architecture: &Architecture) -> QuantizedWeights {
    densest_limited(architecture, usize::MAX)
}

/// [`densest`] with at most `k` connections into each neuron: its first allowed ones, inputs first.
pub(crate) fn densest_limited(architecture: &Architecture, k: usize) -> QuantizedWeights {
    let (n_in, n) = (architecture.inputs(), architecture.neurons());
    let masks = architecture.masks();
    let mut w_in = masks.w_in.clone();
    let mut w_rec = masks.w_rec.clone();
    for j in 0..n {
        let mut kept = 0;
        for i in 0..n_in {
            if w_in[i * n + j] {
                kept += 1;
                w_in[i * n + j] = kept <= k;
            }
        }
        for i in 0..n {
            if w_rec[i * n + j] {
                kept += 1;
                w_rec[i * n + j] = kept <= k;
            }
        }
    }
    let quant = |which, rows, flags: &[bool]| {
        let mask: Vec<u8> = flags.iter().map(|&f| u8::from(f)).collect();
        let sign: Vec<i8> = flags.iter().map(|&f| i8::from(f)).collect();
        QuantMatrix::new(which, rows, n, mask, sign).expect("masks 0..=1, signs 0..=1")
    };
    QuantizedWeights::new(
        architecture.core_map(),
        vec![[1e-9; BASE_WEIGHTS]; architecture.cores()],
        Some(quant(WeightMatrix::Input, n_in, &w_in)),
        quant(WeightMatrix::Recurrent, n, &w_rec),
        1e-8,
    )
    .expect("the architecture's shapes and core map")
}

/// The mapper's problems, each with the population of the neuron, source or core it names.
fn placed(architecture: &Architecture, e: MapError) -> Vec<PopulationProblem> {
    let pops = architecture.populations();
    let of_neuron = |j: usize| architecture.population_of(j);
    let of_core = |g: usize| {
        architecture
            .core_ranges()
            .iter()
            .position(|r| r.contains(&g))
    };
    e.problems
        .into_iter()
        .map(|problem| {
            let k = match &problem {
                MapProblem::FanIn { neuron, .. }
                | MapProblem::FanOut { neuron, .. }
                | MapProblem::TagBudget { neuron, .. } => of_neuron(*neuron),
                MapProblem::NoTagLeft {
                    source: NetworkSource::Neuron(j),
                    ..
                } => of_neuron(*j),
                MapProblem::CoreFull { chip, core, .. } => of_core(chip * CORES + core),
                MapProblem::Violation(v) => v.at.core.and_then(|c| of_core(v.at.chip * CORES + c)),
                _ => None,
            };
            PopulationProblem {
                population: k.map(|k| pops[k].name.clone()),
                problem,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynap_model::{Connection, Population};

    fn conn(from: Option<usize>, to: usize) -> Connection {
        Connection {
            from: from.map_or(Source::Input, Source::Population),
            to,
        }
    }

    fn arch(
        inputs: usize,
        pops: &[(&str, usize, bool)],
        conns: &[(Option<usize>, usize)],
        readout: usize,
    ) -> Architecture {
        let pops = pops
            .iter()
            .map(|&(name, size, recurrent)| {
                let mut p = Population::new(name, size);
                p.recurrent = recurrent;
                p
            })
            .collect();
        let conns = conns.iter().map(|&(f, t)| conn(f, t)).collect();
        Architecture::new(inputs, pops, conns, readout).unwrap()
    }

    fn check(a: &Architecture) -> Result<(), UnmappableArchitecture> {
        check_mappable(a, &NeuronParams::defaults(a.neurons()))
    }

    /// The densest network maps exactly when the per-population checks pass (they are the mapper's
    /// limits, not a guess at them), and the mapper puts every neuron on its population's cores.
    fn densest_maps(a: &Architecture) -> bool {
        let q = densest(a);
        match map(
            &q,
            &NeuronParams::defaults(a.neurons()),
            1e-3,
            Variant::Rockpool,
            &MapOptions::default(),
        ) {
            Ok(m) => {
                let core_map = a.core_map();
                for (j, p) in m.mapping.neurons.iter().enumerate() {
                    assert_eq!(p.chip * CORES + p.core, core_map[j]);
                }
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn a_fan_in_limit_kept_by_training_lifts_the_fan_in_check_and_checks_tags() {
        // 60 inputs into a recurrent population of 300: 360 connections per neuron.
        let a = arch(60, &[("wide", 300, true)], &[(None, 0)], 0);
        let e = check(&a).unwrap_err();
        assert!(
            matches!(e.problems[0].problem, MapProblem::FanIn { found: 360, .. }),
            "{e}"
        );
        let params = NeuronParams::defaults(a.neurons());
        check_mappable_with(&a, &params, Some(64)).unwrap();
        // Each neuron keeps at most 64 of its connections in the network that is mapped.
        let q = densest_limited(&a, 64);
        let (w_in, w_rec) = (q.w_in().unwrap(), q.w_rec());
        for j in 0..a.neurons() {
            let kept = (0..60).filter(|&i| w_in.is_connection(i, j)).count()
                + (0..300).filter(|&i| w_rec.is_connection(i, j)).count();
            assert_eq!(kept, 64, "neuron {j}");
        }
        // Two populations of 1024 that reach each other, one recurrent: 2048 sources may reach the
        // cores of the second, one more than the tags. Named, before training.
        let a = arch(
            4,
            &[("a", 1024, false), ("b", 1024, true)],
            &[(None, 0), (Some(0), 1), (Some(1), 0)],
            1,
        );
        let e =
            check_mappable_with(&a, &NeuronParams::defaults(a.neurons()), Some(64)).unwrap_err();
        // a reaches b's cores (2048 possible sources); b reaches its own and a's (2048 + 4 + 1024).
        let budget: Vec<_> = e
            .problems
            .iter()
            .filter_map(|p| match p.problem {
                MapProblem::TagBudget {
                    sources,
                    limit: 2047,
                    ..
                } => Some((p.population.clone(), sources)),
                _ => None,
            })
            .collect();
        assert_eq!(
            budget,
            vec![(Some("a".into()), 2048), (Some("b".into()), 3076)],
            "{e}"
        );
        assert!(e.to_string().contains("2048 sources"), "{e}");
    }

    #[test]
    fn a_4_30_3_network_maps() {
        let a = arch(
            4,
            &[("hidden", 30, true), ("out", 3, false)],
            &[(None, 0), (Some(0), 1)],
            1,
        );
        check(&a).unwrap();
        assert!(densest_maps(&a));
    }

    #[test]
    fn a_population_of_300_spans_two_cores_and_maps() {
        let a = arch(
            10,
            &[("wide", 300, false), ("out", 2, true)],
            &[(None, 0), (None, 1)],
            0,
        );
        assert_eq!(a.core_ranges(), vec![0..2, 2..3]);
        check(&a).unwrap();
        let m = map(
            &densest(&a),
            &NeuronParams::defaults(a.neurons()),
            1e-3,
            Variant::Rockpool,
            &MapOptions::default(),
        )
        .unwrap();
        let places = &m.mapping.neurons;
        assert_eq!((places[255].core, places[255].neuron), (0, 255));
        assert_eq!((places[256].core, places[256].neuron), (1, 0));
        assert_eq!((places[299].core, places[299].neuron), (1, 43));
        assert_eq!((places[300].core, places[300].neuron), (2, 0));
    }

    #[test]
    fn sixty_five_inputs_into_a_neuron_are_refused_naming_it() {
        let a = arch(
            2,
            &[("hidden", 63, false), ("out", 1, false)],
            &[(None, 0), (None, 1), (Some(0), 1)],
            1,
        );
        let e = check(&a).unwrap_err();
        assert_eq!(
            e.problems,
            vec![PopulationProblem {
                population: Some("out".into()),
                problem: MapProblem::FanIn {
                    neuron: 63,
                    place: NeuronPlace {
                        chip: 0,
                        core: 1,
                        neuron: 0
                    },
                    found: 65,
                    limit: 64
                }
            }]
        );
        assert_eq!(
            e.to_string(),
            "the network cannot be mapped onto the board:\n  population \"out\": neuron 63 (chip 0 core 1 neuron 0) has 65 incoming connections; a neuron has 64 CAM entries"
        );
        assert!(!densest_maps(&a), "the mapper agrees");
        // 64 is fine; so is a recurrent population of 64.
        let a = arch(
            1,
            &[("h", 63, false), ("o", 1, false)],
            &[(None, 0), (None, 1), (Some(0), 1)],
            1,
        );
        check(&a).unwrap();
        let a = arch(1, &[("r", 63, true)], &[(None, 0)], 0);
        check(&a).unwrap();
        let a = arch(2, &[("r", 63, true)], &[(None, 0)], 0);
        assert!(matches!(
            check(&a).unwrap_err().problems[0].problem,
            MapProblem::FanIn { found: 65, .. }
        ));
    }

    #[test]
    fn five_chips_worth_are_refused_naming_the_populations_beyond() {
        // 5 x 4 cores of 256: the fifth population would be chip 4.
        let names = ["a", "b", "c", "d", "e"];
        let pops: Vec<(&str, usize, bool)> = names.iter().map(|&n| (n, 1024, false)).collect();
        let a = arch(
            8,
            &pops,
            &[(None, 0), (None, 1), (None, 2), (None, 3), (None, 4)],
            4,
        );
        let e = check(&a).unwrap_err();
        assert_eq!(
            e.problems,
            vec![PopulationProblem {
                population: Some("e".into()),
                problem: MapProblem::TooManyCores {
                    core: 19,
                    limit: 16
                }
            }]
        );
        // Four chips' worth maps (the input reaches 16 cores, 8 channels each).
        let a = arch(
            8,
            &pops[..4],
            &[(None, 0), (None, 1), (None, 2), (None, 3)],
            3,
        );
        check(&a).unwrap();
        assert!(densest_maps(&a));
        // One neuron past the board.
        let a = arch(
            8,
            &[("big", 4096, false), ("one", 1, false)],
            &[(None, 0), (None, 1)],
            1,
        );
        assert!(matches!(
            &check(&a).unwrap_err().problems[..],
            [PopulationProblem { population: Some(p), problem: MapProblem::TooManyCores { core: 16, .. } }] if p == "one"
        ));
    }

    #[test]
    fn a_population_reaching_four_chips_is_refused() {
        // "src" on chip 0 (recurrent) feeds populations on chips 1, 2 and 3: four chips, three SRAM
        // entries.
        let a = arch(
            1,
            &[
                ("src", 8, true),
                ("pad", 768, false),
                ("c1", 1024, false),
                ("c2", 1024, false),
                ("c3", 8, false),
            ],
            &[
                (None, 0),
                (None, 1),
                (Some(0), 2),
                (Some(0), 3),
                (Some(0), 4),
            ],
            4,
        );
        assert_eq!(a.core_ranges(), vec![0..1, 1..4, 4..8, 8..12, 12..13]);
        let e = check(&a).unwrap_err();
        assert!(
            matches!(
                &e.problems[..],
                [PopulationProblem { population: Some(p), problem: MapProblem::FanOut { neuron: 0, chips: 4, limit: 4, .. } }] if p == "src"
            ),
            "{e}"
        );
        assert!(!densest_maps(&a), "the mapper agrees");
        // Without its recurrence it reaches three chips, and fits.
        let a = arch(
            1,
            &[
                ("src", 8, false),
                ("pad", 768, false),
                ("c1", 1024, false),
                ("c2", 1024, false),
                ("c3", 8, false),
            ],
            &[
                (None, 0),
                (None, 1),
                (Some(0), 2),
                (Some(0), 3),
                (Some(0), 4),
            ],
            4,
        );
        check(&a).unwrap();
        assert!(densest_maps(&a));
    }

    /// A random valid architecture: every population fed by the input or an earlier population, then
    /// extra connections (skipping self-connections and repeats); sizes mostly small, some over a core.
    fn random_architecture(seed: u64) -> Architecture {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let count = rng.gen_range(1..=6);
        let inputs = rng.gen_range(1..=40);
        let pops: Vec<Population> = (0..count)
            .map(|k| {
                let mut p = Population::new(
                    format!("p{k}"),
                    match rng.gen_range(0..4) {
                        0 => rng.gen_range(257..=1800),
                        _ => rng.gen_range(1..=30),
                    },
                );
                p.recurrent = rng.gen_bool(0.3);
                p
            })
            .collect();
        let mut conns: Vec<Connection> = Vec::new();
        for k in 0..count {
            let from = if k == 0 || rng.gen_bool(0.4) {
                None
            } else {
                Some(rng.gen_range(0..k))
            };
            conns.push(conn(from, k));
        }
        for _ in 0..rng.gen_range(0..4) {
            let (a, b) = (rng.gen_range(0..count), rng.gen_range(0..count));
            let c = conn(Some(a), b);
            if a != b && !conns.contains(&c) {
                conns.push(c);
            }
        }
        let readout = rng.gen_range(0..count);
        Architecture::new(inputs, pops, conns, readout).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]

        /// The checks are the mapper's own limits: they pass exactly when the densest network maps;
        /// and when they pass, sparser networks of the same blocks (random 4-bit masks and signs on
        /// some allowed weights) map too.
        #[test]
        fn the_checks_agree_with_the_mapper(seed: u64) {
            use rand::{Rng, SeedableRng};
            let a = random_architecture(seed);
            let ok = check(&a).is_ok();
            let too_big = a.cores() > MAX_CHIPS * CORES;
            proptest::prop_assert_eq!(ok, !too_big && densest_maps(&a), "{:?}", a);
            if ok {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 1);
                let masks = a.masks();
                let n = a.neurons();
                let mut sparse = |which, rows, flags: &[bool]| {
                    let mut mask = vec![0u8; flags.len()];
                    let mut sign = vec![0i8; flags.len()];
                    for (k, &f) in flags.iter().enumerate() {
                        if f && rng.gen_bool(0.3) {
                            mask[k] = rng.gen_range(1..16);
                            sign[k] = if rng.gen_bool(0.5) { 1 } else { -1 };
                        }
                    }
                    QuantMatrix::new(which, rows, n, mask, sign).unwrap()
                };
                let q = QuantizedWeights::new(
                    a.core_map(),
                    vec![[1e-9, 2e-9, 4e-9, 8e-9]; a.cores()],
                    Some(sparse(WeightMatrix::Input, a.inputs(), &masks.w_in)),
                    sparse(WeightMatrix::Recurrent, n, &masks.w_rec),
                    1e-8,
                )
                .unwrap();
                let mapped = map(&q, &NeuronParams::defaults(n), 1e-3, Variant::Rockpool, &MapOptions::default());
                proptest::prop_assert!(mapped.is_ok(), "{:?}", mapped.err());
            }
        }
    }

    #[test]
    fn parameters_for_another_network_are_refused() {
        let a = arch(1, &[("p", 3, false)], &[(None, 0)], 0);
        let e = check_mappable(&a, &NeuronParams::defaults(2)).unwrap_err();
        assert_eq!(
            e.problems[0].problem,
            MapProblem::ParamCount {
                params: 2,
                weights: 3
            }
        );
    }
}
