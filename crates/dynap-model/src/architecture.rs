//! Networks described as populations and connections, flattened into one DynapSim [`Network`] whose
//! weight matrices are masked to the declared blocks.
//!
//! An [`Architecture`] has `inputs` input channels, populations (a name, a size, whether it is
//! recurrent, parameter overrides) and connections (from the input or a population, to a population);
//! one population is the readout. It flattens as follows, and every function here follows the same
//! layout:
//!
//! * **neurons**: population `k` is neurons `offset_k .. offset_k + size_k`, in declaration order
//!   ([`Architecture::ranges`]);
//! * **blocks** ([`Architecture::blocks`]): a connection from the input to `B` allows the columns of
//!   `B` in `w_in` (every row); a connection from population `A` to `B` allows rows `A`, columns `B`
//!   of `w_rec`; a recurrent population `A` allows its own block, rows `A`, columns `A`, of `w_rec`.
//!   Every other weight is zero and stays zero through training ([`Masks`]);
//! * **parameters**: Rockpool's defaults, each population's overrides on its own neurons (one value
//!   for the whole population, as a core of the chip has one bias set);
//! * **cores** ([`Architecture::core_map`]): each population starts on a new core and spans
//!   `ceil(size / 256)` consecutive cores, filled in order (neurons `0..256` of the population on its
//!   first core, `256..512` on the next, ...); global core `g` is core `g % 4` of chip `g / 4`. So a
//!   population larger than a core spans consecutive cores with the same parameters, and no core holds
//!   neurons of two populations.
//!
//! An [`Architecture`] is checked when it is made ([`Architecture::new`]): every problem is an
//! [`Error::Architecture`] naming the population or the connection. Whether it fits the chip (synapses
//! per neuron, tags, routes, chips) is `dynap-config`'s question.

use crate::chip::ChipSynapses;
use crate::error::{Error, WeightMatrix};
use crate::network::{Matrix, Network, Variant};
use crate::param::Param;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

/// Neurons of one core of the chip: a population spans `ceil(size / CORE_NEURONS)` cores.
pub const CORE_NEURONS: usize = 256;

/// The name of the network's input as a connection's source in files (`from = "input"`); no population
/// may take it.
pub const INPUT_NAME: &str = "input";

/// A population of neurons sharing their parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    /// Its name, unique, not empty, not [`INPUT_NAME`].
    pub name: String,
    /// Neurons (at least 1).
    pub size: usize,
    /// Whether its neurons connect to each other (its own block of `w_rec`).
    pub recurrent: bool,
    /// Parameters that differ from Rockpool's defaults, in SI units, one value for the whole
    /// population.
    pub params: BTreeMap<Param, f64>,
}

impl Population {
    /// A feed-forward population of `size` neurons at Rockpool's defaults.
    pub fn new(name: impl Into<String>, size: usize) -> Population {
        Population {
            name: name.into(),
            size,
            recurrent: false,
            params: BTreeMap::new(),
        }
    }
}

/// Where a connection comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The network's input channels (all of them).
    Input,
    /// Population `k` (its index in [`Architecture::populations`]).
    Population(usize),
}

/// All-to-all connections from a source to a population (which of them are used is training's
/// business: the block is allowed, its weights start from the initialisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The source.
    pub from: Source,
    /// The target population's index.
    pub to: usize,
}

/// One allowed block of a weight matrix: rows `rows`, columns `cols` of `matrix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// `w_in` or `w_rec`.
    pub matrix: WeightMatrix,
    /// The source: the input (`w_in`), or a population (`w_rec`; the target itself for a recurrent
    /// population's own block).
    pub from: Source,
    /// The target population.
    pub to: usize,
    /// Rows of the matrix (input channels or presynaptic neurons).
    pub rows: Range<usize>,
    /// Columns of the matrix (postsynaptic neurons).
    pub cols: Range<usize>,
}

/// Which weights may be non-zero: one flag per entry of `w_in` `[Nin, N]` and of `w_rec` `[N, N]`,
/// row-major (`[pre * N + post]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masks {
    /// `w_in`'s flags, `Nin * N`.
    pub w_in: Vec<bool>,
    /// `w_rec`'s flags, `N * N`.
    pub w_rec: Vec<bool>,
}

impl Masks {
    /// Every weight allowed: `inputs` channels, `neurons` neurons.
    pub fn all(inputs: usize, neurons: usize) -> Masks {
        Masks {
            w_in: vec![true; inputs * neurons],
            w_rec: vec![true; neurons * neurons],
        }
    }

    /// The flags of one matrix.
    pub fn of(&self, matrix: WeightMatrix) -> &[bool] {
        match matrix {
            WeightMatrix::Input => &self.w_in,
            WeightMatrix::Recurrent => &self.w_rec,
        }
    }
}

/// Which end of a connection an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `from`.
    From,
    /// `to`.
    To,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::From => "from",
            End::To => "to",
        })
    }
}

/// What is wrong with a network description, naming the population (its index and name) or the
/// connection (its index).
#[derive(Clone, Debug, PartialEq)]
pub enum ArchitectureError {
    /// No input channels.
    NoInputs,
    /// No populations.
    NoPopulations,
    /// A population's name is empty.
    EmptyName {
        /// The population's index.
        population: usize,
    },
    /// A population is named [`INPUT_NAME`], the input's name in files.
    ReservedName {
        /// The population's index.
        population: usize,
    },
    /// Two populations have one name.
    DuplicateName {
        /// The second population's index.
        population: usize,
        /// The first one's.
        first: usize,
        /// The name.
        name: String,
    },
    /// A population of no neurons.
    EmptyPopulation {
        /// The population's index.
        population: usize,
        /// Its name.
        name: String,
    },
    /// A parameter override is not finite or outside the parameter's range.
    PopulationParam {
        /// The population's index.
        population: usize,
        /// Its name.
        name: String,
        /// The parameter.
        param: Param,
        /// The value (SI).
        value: f64,
        /// What it must be.
        must_be: &'static str,
    },
    /// The sizes add up to more neurons than a weight matrix can index.
    TooLarge,
    /// A connection names a population that does not exist.
    UnknownPopulation {
        /// The connection's index.
        connection: usize,
        /// Which end.
        end: End,
        /// The population index it names.
        index: usize,
        /// Populations there are.
        populations: usize,
    },
    /// A connection from a population to itself (a recurrent population has its own block).
    SelfConnection {
        /// The connection's index.
        connection: usize,
        /// The population's name.
        name: String,
    },
    /// Two connections between the same source and target.
    DuplicateConnection {
        /// The second connection's index.
        connection: usize,
        /// The first one's.
        first: usize,
        /// The source's name ([`INPUT_NAME`] for the input).
        from: String,
        /// The target's name.
        to: String,
    },
    /// The readout names a population that does not exist.
    Readout {
        /// The index given.
        index: usize,
        /// Populations there are.
        populations: usize,
    },
    /// No connection comes from the input.
    NoInputConnection,
    /// A population no path of connections from the input reaches.
    Unreached {
        /// The population's index.
        population: usize,
        /// Its name.
        name: String,
    },
    /// A placement gives a population cores another population has, or none.
    Placement {
        /// The population's index.
        population: usize,
        /// Its name.
        name: String,
        /// The first core it was given.
        first_core: usize,
    },
}

impl fmt::Display for ArchitectureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchitectureError::NoInputs => write!(f, "the network has no input channels"),
            ArchitectureError::NoPopulations => write!(f, "the network has no populations"),
            ArchitectureError::EmptyName { population } => {
                write!(f, "population {population} has an empty name")
            }
            ArchitectureError::ReservedName { population } => write!(
                f,
                "population {population} is named {INPUT_NAME:?}, the name of the network's input"
            ),
            ArchitectureError::DuplicateName {
                population,
                first,
                name,
            } => write!(
                f,
                "populations {first} and {population} are both named {name:?}"
            ),
            ArchitectureError::EmptyPopulation { name, .. } => write!(
                f,
                "population {name:?} has no neurons; a population has at least one"
            ),
            ArchitectureError::PopulationParam {
                name,
                param,
                value,
                must_be,
                ..
            } => write!(
                f,
                "population {name:?}: {} = {value:e} {}; it must be {must_be}",
                param.rockpool_name(),
                param.quantity().unit()
            ),
            ArchitectureError::TooLarge => write!(
                f,
                "the populations add up to more neurons than a weight matrix can index"
            ),
            ArchitectureError::UnknownPopulation {
                connection,
                end,
                index,
                populations,
            } => write!(
                f,
                "connection {connection}: `{end}` is population {index}, but there are {populations} populations"
            ),
            ArchitectureError::SelfConnection { connection, name } => write!(
                f,
                "connection {connection} connects population {name:?} to itself; make the population recurrent instead"
            ),
            ArchitectureError::DuplicateConnection {
                connection,
                first,
                from,
                to,
            } => write!(
                f,
                "connection {connection} ({from} -> {to}) repeats connection {first}"
            ),
            ArchitectureError::Readout { index, populations } => write!(
                f,
                "the readout is population {index}, but there are {populations} populations"
            ),
            ArchitectureError::NoInputConnection => {
                write!(f, "no connection comes from the input")
            }
            ArchitectureError::Unreached { name, .. } => write!(
                f,
                "population {name:?} is not reached from the input by any path of connections"
            ),
            ArchitectureError::Placement {
                name, first_core, ..
            } => write!(
                f,
                "population {name:?} placed from core {first_core} shares a core with another population (or the placement does not give every population a core)"
            ),
        }
    }
}

/// A checked network description: populations, connections, the readout, and the layout they flatten
/// to (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    inputs: usize,
    populations: Vec<Population>,
    connections: Vec<Connection>,
    readout: usize,
    /// `offsets[k]` is population `k`'s first neuron; `offsets[populations]` is `N`.
    offsets: Vec<usize>,
    /// `first_cores[k]` is population `k`'s first core; `first_cores[populations]` the cores used.
    first_cores: Vec<usize>,
}

fn fail<T>(e: ArchitectureError) -> Result<T, Error> {
    Err(Error::Architecture(e))
}

/// Cores per chip (DYNAP-SE2), for placing populations on chips.
const CORES_PER_CHIP: usize = 4;

/// The next order of `v` in lexicographic order; `false` (and `v` unchanged) after the last.
fn next_permutation(v: &mut [usize]) -> bool {
    let Some(i) = (1..v.len()).rev().find(|&i| v[i - 1] < v[i]) else {
        return false;
    };
    let j = (i..v.len())
        .rev()
        .find(|&j| v[j] > v[i - 1])
        .expect("v[i] is larger");
    v.swap(i - 1, j);
    v[i..].reverse();
    true
}

impl Architecture {
    /// A description of `inputs` channels, `populations`, `connections` and the readout population
    /// `readout` (an index into `populations`), checked: at least one channel and one population;
    /// names unique, not empty and not [`INPUT_NAME`]; sizes at least 1; overrides finite and in
    /// range; connections between existing populations, none to itself, none twice; the readout
    /// exists; at least one connection from the input, and every population reached from it. The
    /// first problem found is the error.
    pub fn new(
        inputs: usize,
        populations: Vec<Population>,
        connections: Vec<Connection>,
        readout: usize,
    ) -> Result<Architecture, Error> {
        if inputs == 0 {
            return fail(ArchitectureError::NoInputs);
        }
        if populations.is_empty() {
            return fail(ArchitectureError::NoPopulations);
        }
        Architecture::check_populations(&populations)?;
        let mut offsets = Vec::with_capacity(populations.len() + 1);
        let mut first_cores = Vec::with_capacity(populations.len() + 1);
        let (mut n, mut cores) = (0usize, 0usize);
        for p in &populations {
            offsets.push(n);
            first_cores.push(cores);
            n = n
                .checked_add(p.size)
                .ok_or(Error::Architecture(ArchitectureError::TooLarge))?;
            cores += p.size.div_ceil(CORE_NEURONS);
        }
        offsets.push(n);
        first_cores.push(cores);
        if n.checked_mul(n).is_none() || inputs.checked_mul(n).is_none() {
            return fail(ArchitectureError::TooLarge);
        }
        let count = populations.len();
        let name_of = |s: Source| match s {
            Source::Input => INPUT_NAME.to_owned(),
            Source::Population(k) => populations[k].name.clone(),
        };
        let mut seen: BTreeMap<(Source, usize), usize> = BTreeMap::new();
        for (c, conn) in connections.iter().enumerate() {
            for (end, index) in [
                (
                    End::From,
                    match conn.from {
                        Source::Input => None,
                        Source::Population(k) => Some(k),
                    },
                ),
                (End::To, Some(conn.to)),
            ] {
                if let Some(index) = index.filter(|&k| k >= count) {
                    return fail(ArchitectureError::UnknownPopulation {
                        connection: c,
                        end,
                        index,
                        populations: count,
                    });
                }
            }
            if conn.from == Source::Population(conn.to) {
                return fail(ArchitectureError::SelfConnection {
                    connection: c,
                    name: populations[conn.to].name.clone(),
                });
            }
            if let Some(&first) = seen.get(&(conn.from, conn.to)) {
                return fail(ArchitectureError::DuplicateConnection {
                    connection: c,
                    first,
                    from: name_of(conn.from),
                    to: populations[conn.to].name.clone(),
                });
            }
            seen.insert((conn.from, conn.to), c);
        }
        if readout >= count {
            return fail(ArchitectureError::Readout {
                index: readout,
                populations: count,
            });
        }
        if !connections.iter().any(|c| c.from == Source::Input) {
            return fail(ArchitectureError::NoInputConnection);
        }
        // Reached from the input: a fixed point over the connections (at most one pass per
        // population).
        let mut reached = vec![false; count];
        let mut changed = true;
        while changed {
            changed = false;
            for c in &connections {
                let from_reached = match c.from {
                    Source::Input => true,
                    Source::Population(k) => reached[k],
                };
                if from_reached && !reached[c.to] {
                    reached[c.to] = true;
                    changed = true;
                }
            }
        }
        if let Some(k) = reached.iter().position(|&r| !r) {
            return fail(ArchitectureError::Unreached {
                population: k,
                name: populations[k].name.clone(),
            });
        }
        Ok(Architecture {
            inputs,
            populations,
            connections,
            readout,
            offsets,
            first_cores,
        })
    }

    /// Checks the populations alone, as [`Architecture::new`] does first: names unique, not empty
    /// and not [`INPUT_NAME`], sizes at least 1, overrides finite and in range. A reader that names
    /// connections by population names checks this before resolving them, so that a repeated name
    /// is reported as such.
    pub fn check_populations(populations: &[Population]) -> Result<(), Error> {
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, p) in populations.iter().enumerate() {
            if p.name.is_empty() {
                return fail(ArchitectureError::EmptyName { population: k });
            }
            if p.name == INPUT_NAME {
                return fail(ArchitectureError::ReservedName { population: k });
            }
            if let Some(&first) = by_name.get(p.name.as_str()) {
                return fail(ArchitectureError::DuplicateName {
                    population: k,
                    first,
                    name: p.name.clone(),
                });
            }
            by_name.insert(&p.name, k);
            if p.size == 0 {
                return fail(ArchitectureError::EmptyPopulation {
                    population: k,
                    name: p.name.clone(),
                });
            }
            for (&param, &value) in &p.params {
                if let Some(must_be) = param.must_be(value) {
                    return fail(ArchitectureError::PopulationParam {
                        population: k,
                        name: p.name.clone(),
                        param,
                        value,
                        must_be,
                    });
                }
            }
        }
        Ok(())
    }

    /// Input channels (`Nin`).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The populations, in declaration (and layout) order.
    pub fn populations(&self) -> &[Population] {
        &self.populations
    }

    /// The connections, in declaration order.
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The readout population's index.
    pub fn readout(&self) -> usize {
        self.readout
    }

    /// Neurons of the flattened network (`N`, the sum of the sizes).
    pub fn neurons(&self) -> usize {
        self.offsets[self.populations.len()]
    }

    /// The index of the population named `name`.
    pub fn population_index(&self, name: &str) -> Option<usize> {
        self.populations.iter().position(|p| p.name == name)
    }

    /// Each population's neurons, in declaration order: `offset_k .. offset_k + size_k`.
    pub fn ranges(&self) -> Vec<Range<usize>> {
        self.offsets.windows(2).map(|w| w[0]..w[1]).collect()
    }

    /// The readout population's neurons (the network's outputs).
    pub fn readout_range(&self) -> Range<usize> {
        self.offsets[self.readout]..self.offsets[self.readout + 1]
    }

    /// The population neuron `j` belongs to (`None` past the last neuron).
    pub fn population_of(&self, neuron: usize) -> Option<usize> {
        (neuron < self.neurons()).then(|| self.offsets.partition_point(|&o| o <= neuron) - 1)
    }

    /// The population of every neuron, `[N]` (a grouping for per-population sharing of trained
    /// currents).
    pub fn population_map(&self) -> Vec<usize> {
        self.ranges()
            .into_iter()
            .enumerate()
            .flat_map(|(k, r)| std::iter::repeat_n(k, r.len()))
            .collect()
    }

    /// The allowed blocks: the connections in declaration order, then the recurrent populations'
    /// own blocks in population order. No two blocks overlap.
    pub fn blocks(&self) -> impl Iterator<Item = Block> + '_ {
        let ranges = self.ranges();
        let conns = self.connections.iter().map({
            let ranges = ranges.clone();
            move |c| match c.from {
                Source::Input => Block {
                    matrix: WeightMatrix::Input,
                    from: Source::Input,
                    to: c.to,
                    rows: 0..self.inputs,
                    cols: ranges[c.to].clone(),
                },
                Source::Population(a) => Block {
                    matrix: WeightMatrix::Recurrent,
                    from: c.from,
                    to: c.to,
                    rows: ranges[a].clone(),
                    cols: ranges[c.to].clone(),
                },
            }
        });
        let recurrent = self
            .populations
            .iter()
            .enumerate()
            .filter(|(_, p)| p.recurrent)
            .map(move |(k, _)| Block {
                matrix: WeightMatrix::Recurrent,
                from: Source::Population(k),
                to: k,
                rows: ranges[k].clone(),
                cols: ranges[k].clone(),
            });
        conns.chain(recurrent)
    }

    /// The flags of the allowed weights (the union of [`Architecture::blocks`]).
    pub fn masks(&self) -> Masks {
        let n = self.neurons();
        let mut masks = Masks {
            w_in: vec![false; self.inputs * n],
            w_rec: vec![false; n * n],
        };
        for b in self.blocks() {
            let flags = match b.matrix {
                WeightMatrix::Input => &mut masks.w_in,
                WeightMatrix::Recurrent => &mut masks.w_rec,
            };
            for r in b.rows {
                flags[r * n + b.cols.start..r * n + b.cols.end].fill(true);
            }
        }
        masks
    }

    /// Cores the network uses (the sum of `ceil(size / 256)`).
    pub fn cores(&self) -> usize {
        self.first_cores[self.populations.len()]
    }

    /// Each population's cores, in declaration order (consecutive global cores).
    pub fn core_ranges(&self) -> Vec<Range<usize>> {
        self.populations
            .iter()
            .zip(&self.first_cores)
            .map(|(p, &c)| c..c + p.size.div_ceil(CORE_NEURONS))
            .collect()
    }

    /// Each population's first global core (`chip * 4 + core`).
    pub fn first_cores(&self) -> &[usize] {
        &self.first_cores[..self.populations.len()]
    }

    /// The description placed with population `k` from core `first_cores[k]` (each on
    /// `ceil(size / 256)` consecutive cores); refused when two populations would share a core or a
    /// count differs. The neurons keep their order (the placement is the core map's).
    pub fn with_first_cores(&self, first_cores: &[usize]) -> Result<Architecture, Error> {
        let count = self.populations.len();
        let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
        for k in 0..count {
            let Some(&c) = first_cores.get(k) else {
                return fail(ArchitectureError::Placement {
                    population: k,
                    name: self.populations[k].name.clone(),
                    first_core: usize::MAX,
                });
            };
            let span = self.populations[k].size.div_ceil(CORE_NEURONS);
            for g in c..c.saturating_add(span) {
                if owner.insert(g, k).is_some() || c.checked_add(span).is_none() {
                    return fail(ArchitectureError::Placement {
                        population: k,
                        name: self.populations[k].name.clone(),
                        first_core: c,
                    });
                }
            }
        }
        if first_cores.len() != count {
            return fail(ArchitectureError::Placement {
                population: count.min(first_cores.len()),
                name: String::new(),
                first_core: first_cores.get(count).copied().unwrap_or(usize::MAX),
            });
        }
        let used = owner.keys().next_back().map_or(0, |g| g + 1);
        let mut placed = self.clone();
        placed.first_cores = first_cores.to_vec();
        placed.first_cores.push(used);
        Ok(placed)
    }

    /// The description placed for its connectivity, when it needs more than one chip: the
    /// populations laid out on consecutive cores (each from a new core) in the order that uses the
    /// fewest SRAM routes (for every source population, its size times the chips its targets live
    /// on), then the fewest neurons whose connections cross chips; a tie goes to the order closest to
    /// the declared one. Every order is tried up to 8 populations, else pairs of populations are
    /// swapped while that helps. Deterministic; a network on one chip keeps its declared layout.
    pub fn placed_for_connectivity(&self) -> Architecture {
        let count = self.populations.len();
        let spans: Vec<usize> = self
            .populations
            .iter()
            .map(|p| p.size.div_ceil(CORE_NEURONS))
            .collect();
        if spans.iter().sum::<usize>() <= CORES_PER_CHIP {
            return self.clone();
        }
        let layout = |order: &[usize]| -> Vec<usize> {
            let mut first = vec![0; count];
            let mut next = 0;
            for &k in order {
                first[k] = next;
                next += spans[k];
            }
            first
        };
        let cost = |first: &[usize]| -> (usize, usize) {
            let chips = |k: usize| -> BTreeSet<usize> {
                (first[k]..first[k] + spans[k])
                    .map(|g| g / CORES_PER_CHIP)
                    .collect()
            };
            let mut routes = 0;
            let mut crossing = 0;
            for (k, p) in self.populations.iter().enumerate() {
                let targets: BTreeSet<usize> = self
                    .connections
                    .iter()
                    .filter(|c| c.from == Source::Population(k))
                    .map(|c| c.to)
                    .chain(p.recurrent.then_some(k))
                    .collect();
                let reached: BTreeSet<usize> = targets.iter().flat_map(|&t| chips(t)).collect();
                routes += p.size * reached.len();
                let own = chips(k);
                crossing += p.size * reached.difference(&own).count();
            }
            (routes, crossing)
        };
        let declared: Vec<usize> = (0..count).collect();
        let mut best = (cost(&layout(&declared)), declared.clone());
        if count <= 8 {
            // Heap's algorithm would visit the orders out of lexicographic order; the tie rule wants
            // the first in it, so the orders are visited in lexicographic order.
            let mut order = declared.clone();
            while next_permutation(&mut order) {
                let c = cost(&layout(&order));
                if c < best.0 {
                    best = (c, order.clone());
                }
            }
        } else {
            let mut improved = true;
            while improved {
                improved = false;
                for a in 0..count {
                    for b in a + 1..count {
                        let mut order = best.1.clone();
                        order.swap(a, b);
                        let c = cost(&layout(&order));
                        if c < best.0 {
                            best = (c, order);
                            improved = true;
                        }
                    }
                }
            }
        }
        self.with_first_cores(&layout(&best.1))
            .expect("a consecutive layout gives every population its own cores")
    }

    /// The global core (`chip * 4 + core`) of every neuron, `[N]`: each population from a new core,
    /// 256 neurons per core in order.
    pub fn core_map(&self) -> Vec<usize> {
        self.populations
            .iter()
            .enumerate()
            .flat_map(|(k, p)| (0..p.size).map(move |l| self.first_cores[k] + l / CORE_NEURONS))
            .collect()
    }

    /// The flattened network of the `variant`: zero weights (`w_in` `[Nin, N]`, `w_rec` `[N, N]`),
    /// Rockpool's default parameters with each population's overrides on its neurons, the default
    /// `Iscale` and `dt`, and for the `chip` variant its dendrites at their defaults.
    pub fn network(&self, variant: Variant) -> Network {
        let n = self.neurons();
        let mut net = Network::with_defaults(n);
        for (p, r) in self.populations.iter().zip(self.ranges()) {
            for (&param, &value) in &p.params {
                net.params.get_mut(param)[r.clone()].fill(value);
            }
        }
        net.w_in = Some(Matrix::zeros(self.inputs, n));
        net.variant = variant;
        if variant == Variant::Chip {
            net.chip = Some(ChipSynapses::defaults(n));
        }
        net
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// input -> hidden (recurrent) -> out, input -> out.
    fn three_layers() -> Architecture {
        let mut hidden = Population::new("hidden", 3);
        hidden.recurrent = true;
        hidden.params.insert(Param::ItauMem, 4e-12);
        Architecture::new(
            2,
            vec![hidden, Population::new("out", 2)],
            vec![
                Connection {
                    from: Source::Input,
                    to: 0,
                },
                Connection {
                    from: Source::Population(0),
                    to: 1,
                },
                Connection {
                    from: Source::Input,
                    to: 1,
                },
            ],
            1,
        )
        .unwrap()
    }

    fn err(
        inputs: usize,
        pops: Vec<Population>,
        conns: &[(Option<usize>, usize)],
        readout: usize,
    ) -> ArchitectureError {
        let conns = conns
            .iter()
            .map(|&(from, to)| Connection {
                from: from.map_or(Source::Input, Source::Population),
                to,
            })
            .collect();
        match Architecture::new(inputs, pops, conns, readout) {
            Err(Error::Architecture(e)) => e,
            other => panic!("expected an architecture error, got {other:?}"),
        }
    }

    /// Four populations of two cores, two pairs that talk: declared in an order that splits each
    /// pair over the two chips, placed so that each pair shares a chip (no neuron's targets on
    /// another chip), the declared layout when everything fits one chip, overlaps refused.
    #[test]
    fn placement_keeps_connected_populations_on_one_chip() {
        let conn = |from: Option<usize>, to: usize| Connection {
            from: from.map_or(Source::Input, Source::Population),
            to,
        };
        let pops = ["a", "b", "c", "d"]
            .map(|n| Population::new(n, 512))
            .to_vec();
        let a = Architecture::new(
            4,
            pops,
            vec![
                conn(None, 0),
                conn(None, 1),
                conn(Some(0), 2),
                conn(Some(1), 3),
            ],
            3,
        )
        .unwrap();
        assert_eq!(a.first_cores(), &[0, 2, 4, 6]);
        let placed = a.placed_for_connectivity();
        // a with c on chip 0, b with d on chip 1: the first such order.
        assert_eq!(placed.first_cores(), &[0, 4, 2, 6]);
        assert_eq!(placed.core_ranges(), vec![0..2, 4..6, 2..4, 6..8]);
        assert_eq!(placed.cores(), 8);
        assert_eq!(placed.core_map()[512], 4);
        // The neurons keep their order, and the blocks theirs.
        assert_eq!(placed.ranges(), a.ranges());
        assert_eq!(placed.masks(), a.masks());
        assert_eq!(placed.placed_for_connectivity(), placed);
        // One chip: as declared.
        let small = three_layers();
        assert_eq!(small.placed_for_connectivity(), small);
        // Two populations on one core, or a count that differs: refused.
        assert!(matches!(
            a.with_first_cores(&[0, 1, 4, 6]),
            Err(Error::Architecture(ArchitectureError::Placement {
                population: 1,
                ..
            }))
        ));
        assert!(a.with_first_cores(&[0, 2]).is_err());
    }

    #[test]
    fn layout_blocks_and_masks() {
        let a = three_layers();
        assert_eq!(a.neurons(), 5);
        assert_eq!(a.ranges(), vec![0..3, 3..5]);
        assert_eq!(a.readout_range(), 3..5);
        assert_eq!(a.population_map(), vec![0, 0, 0, 1, 1]);
        assert_eq!(
            (0..6).map(|j| a.population_of(j)).collect::<Vec<_>>(),
            vec![Some(0), Some(0), Some(0), Some(1), Some(1), None]
        );
        assert_eq!(a.population_index("out"), Some(1));
        let blocks: Vec<Block> = a.blocks().collect();
        assert_eq!(blocks.len(), 4);
        assert_eq!(
            blocks[1],
            Block {
                matrix: WeightMatrix::Recurrent,
                from: Source::Population(0),
                to: 1,
                rows: 0..3,
                cols: 3..5
            }
        );
        assert_eq!(
            (blocks[3].rows.clone(), blocks[3].cols.clone()),
            (0..3, 0..3)
        );
        let m = a.masks();
        // w_in: every channel reaches every neuron (input -> hidden, input -> out).
        assert!(m.w_in.iter().all(|&f| f));
        let rec: Vec<&[bool]> = m.w_rec.chunks(5).collect();
        let t = true;
        let f = false;
        assert_eq!(rec[0], &[t, t, t, t, t]);
        assert_eq!(rec[2], &[t, t, t, t, t]);
        assert_eq!(rec[3], &[f, f, f, f, f], "out is not recurrent");
        assert_eq!(rec[4], &[f, f, f, f, f]);
    }

    #[test]
    fn the_flattened_network_has_zero_weights_and_the_overrides() {
        let a = three_layers();
        for variant in [Variant::Rockpool, Variant::Chip] {
            let net = a.network(variant);
            net.validate().unwrap();
            assert_eq!(net.variant, variant);
            assert_eq!(net.chip.is_some(), variant == Variant::Chip);
            assert_eq!(net.input_channels(), 2);
            assert!(
                net.w_in
                    .as_ref()
                    .unwrap()
                    .as_slice()
                    .iter()
                    .all(|&w| w == 0.0)
            );
            assert!(net.w_rec.as_slice().iter().all(|&w| w == 0.0));
            assert_eq!(net.params.i_tau_mem[..3], [4e-12; 3]);
            assert_eq!(
                net.params.i_tau_mem[3..],
                [Param::ItauMem.default_value(); 2]
            );
            assert_eq!(
                net.params.i_gain_mem,
                vec![Param::IgainMem.default_value(); 5]
            );
        }
    }

    #[test]
    fn populations_span_consecutive_cores_and_start_on_new_ones() {
        let a = Architecture::new(
            4,
            vec![
                Population::new("a", 300),
                Population::new("b", 256),
                Population::new("c", 1),
            ],
            vec![
                Connection {
                    from: Source::Input,
                    to: 0,
                },
                Connection {
                    from: Source::Population(0),
                    to: 1,
                },
                Connection {
                    from: Source::Population(1),
                    to: 2,
                },
            ],
            2,
        )
        .unwrap();
        assert_eq!(a.cores(), 4);
        assert_eq!(a.core_ranges(), vec![0..2, 2..3, 3..4]);
        let map = a.core_map();
        assert_eq!(map.len(), 557);
        assert_eq!((map[0], map[255], map[256], map[299]), (0, 0, 1, 1));
        assert_eq!((map[300], map[555], map[556]), (2, 2, 3));
    }

    #[test]
    fn bad_descriptions_name_the_population_or_connection() {
        let p = |n: &str, s: usize| Population::new(n, s);
        let ok = [(None, 0), (Some(0), 1)];
        assert_eq!(
            err(0, vec![p("a", 1), p("b", 1)], &ok, 1),
            ArchitectureError::NoInputs
        );
        assert_eq!(err(1, vec![], &[], 0), ArchitectureError::NoPopulations);
        assert_eq!(
            err(1, vec![p("a", 1), p("", 1)], &ok, 1),
            ArchitectureError::EmptyName { population: 1 }
        );
        assert_eq!(
            err(1, vec![p("a", 1), p("input", 1)], &ok, 1),
            ArchitectureError::ReservedName { population: 1 }
        );
        let e = err(1, vec![p("a", 1), p("a", 1)], &ok, 1);
        assert_eq!(
            e,
            ArchitectureError::DuplicateName {
                population: 1,
                first: 0,
                name: "a".into()
            }
        );
        assert_eq!(e.to_string(), "populations 0 and 1 are both named \"a\"");
        assert_eq!(
            err(1, vec![p("a", 1), p("b", 0)], &ok, 1),
            ArchitectureError::EmptyPopulation {
                population: 1,
                name: "b".into()
            }
        );
        let mut bad = p("b", 2);
        bad.params.insert(Param::Ispkthr, 0.0);
        let e = err(1, vec![p("a", 1), bad], &ok, 1);
        assert!(
            matches!(
                e,
                ArchitectureError::PopulationParam {
                    population: 1,
                    param: Param::Ispkthr,
                    must_be: "strictly positive",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("\"b\": Ispkthr"), "{e}");
        let mut nan = p("b", 2);
        nan.params.insert(Param::CMem, f64::NAN);
        assert!(matches!(
            err(1, vec![p("a", 1), nan], &ok, 1),
            ArchitectureError::PopulationParam {
                must_be: "finite",
                ..
            }
        ));
        assert_eq!(
            err(1, vec![p("a", 1), p("b", 1)], &[(None, 0), (Some(0), 2)], 1),
            ArchitectureError::UnknownPopulation {
                connection: 1,
                end: End::To,
                index: 2,
                populations: 2
            }
        );
        assert_eq!(
            err(1, vec![p("a", 1), p("b", 1)], &[(None, 0), (Some(5), 1)], 1),
            ArchitectureError::UnknownPopulation {
                connection: 1,
                end: End::From,
                index: 5,
                populations: 2
            }
        );
        assert_eq!(
            err(
                1,
                vec![p("a", 1), p("b", 1)],
                &[(None, 0), (Some(0), 0), (Some(0), 1)],
                1
            ),
            ArchitectureError::SelfConnection {
                connection: 1,
                name: "a".into()
            }
        );
        let e = err(
            1,
            vec![p("a", 1), p("b", 1)],
            &[(None, 0), (Some(0), 1), (Some(0), 1)],
            1,
        );
        assert_eq!(
            e,
            ArchitectureError::DuplicateConnection {
                connection: 2,
                first: 1,
                from: "a".into(),
                to: "b".into()
            }
        );
        assert_eq!(e.to_string(), "connection 2 (a -> b) repeats connection 1");
        assert_eq!(
            err(1, vec![p("a", 1), p("b", 1)], &ok, 2),
            ArchitectureError::Readout {
                index: 2,
                populations: 2
            }
        );
        assert_eq!(
            err(1, vec![p("a", 1), p("b", 1)], &[(Some(0), 1)], 1),
            ArchitectureError::NoInputConnection
        );
        // b -> c -> b is a loop the input never enters.
        let e = err(
            1,
            vec![p("a", 1), p("b", 1), p("c", 1)],
            &[(None, 0), (Some(1), 2), (Some(2), 1)],
            0,
        );
        assert_eq!(
            e,
            ArchitectureError::Unreached {
                population: 1,
                name: "b".into()
            }
        );
        // A population reached only through one declared after it is reached.
        Architecture::new(
            1,
            vec![p("late", 1), p("early", 1)],
            vec![
                Connection {
                    from: Source::Population(1),
                    to: 0,
                },
                Connection {
                    from: Source::Input,
                    to: 1,
                },
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            err(1, vec![p("a", usize::MAX), p("b", 1)], &ok, 1),
            ArchitectureError::TooLarge
        );
        assert_eq!(
            err(1, vec![p("a", 1 << 33), p("b", 1)], &ok, 1),
            ArchitectureError::TooLarge
        );
        // Through the crate's error.
        let e = Architecture::new(1, vec![], vec![], 0).unwrap_err();
        assert_eq!(e.to_string(), "the network has no populations");
    }
}
