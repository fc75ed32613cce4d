//! A NIR graph read as populations of LIF-family neurons and blocks of weights, and the reference
//! simulation of NIR's equations (the module documentation of [`super`] gives them).

use super::{NirError, NirGraph, NirNode, Tree};
use std::collections::BTreeMap;

/// The neuron model of a population, as NIR names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifKind {
    /// `LIF`: leaky integrate-and-fire, input straight to the membrane.
    Lif,
    /// `CubaLIF`: current-based LIF, input through a first-order synapse.
    CubaLif,
    /// `IF`: integrate-and-fire without leak.
    If,
    /// `LI`: leaky integrator without spikes (a readout).
    Li,
    /// `Threshold`: a spike when the input exceeds the threshold, no state.
    Threshold,
}

impl LifKind {
    /// The NIR type name.
    pub fn name(self) -> &'static str {
        match self {
            LifKind::Lif => "LIF",
            LifKind::CubaLif => "CubaLIF",
            LifKind::If => "IF",
            LifKind::Li => "LI",
            LifKind::Threshold => "Threshold",
        }
    }

    /// The kind of a NIR type name, when it is a neuron.
    pub fn from_name(name: &str) -> Option<LifKind> {
        Some(match name {
            "LIF" => LifKind::Lif,
            "CubaLIF" => LifKind::CubaLif,
            "IF" => LifKind::If,
            "LI" => LifKind::Li,
            "Threshold" => LifKind::Threshold,
            _ => return None,
        })
    }
}

/// One neuron node: its parameters per neuron (those its kind lacks hold their neutral values:
/// `tau_syn` 0 for no synapse, `w_in` 1, `tau_mem` 0 for no leak).
#[derive(Clone, Debug, PartialEq)]
pub struct LifPopulation {
    /// The node's name.
    pub name: String,
    /// The model.
    pub kind: LifKind,
    /// Neurons.
    pub size: usize,
    /// Membrane time constant (s; `tau` of `LIF` and `LI`).
    pub tau_mem: Vec<f64>,
    /// Synaptic time constant (s; `CubaLIF` only).
    pub tau_syn: Vec<f64>,
    /// Resistance.
    pub r: Vec<f64>,
    /// Resting potential.
    pub v_leak: Vec<f64>,
    /// Reset potential.
    pub v_reset: Vec<f64>,
    /// Threshold (`threshold` of `Threshold`).
    pub v_threshold: Vec<f64>,
    /// Synaptic input gain (`CubaLIF` only).
    pub w_in: Vec<f64>,
    /// The node's metadata.
    pub metadata: Tree,
}

/// Where a block's spikes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LifSource {
    /// The graph's input.
    Input,
    /// Population `k`.
    Population(usize),
}

/// The weights from a source to a population: the product of the weight nodes on the paths between
/// them, `weight[pre * size + post]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LifBlock {
    /// The source.
    pub from: LifSource,
    /// The target population.
    pub to: usize,
    /// `[rows][cols]` row-major: rows the source's channels or neurons, columns the target's neurons.
    pub weight: Vec<f64>,
    /// The weight nodes on its paths, in order.
    pub nodes: Vec<String>,
    /// The metadata of its weight node when it has exactly one.
    pub metadata: Tree,
}

/// A NIR graph as populations and blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct LifNetwork {
    /// Input channels.
    pub inputs: usize,
    /// The `Input` node's name.
    pub input_name: String,
    /// The `Output` node's name.
    pub output_name: String,
    /// The neuron nodes, in the order of the import (from the input along the edges).
    pub populations: Vec<LifPopulation>,
    /// The blocks.
    pub blocks: Vec<LifBlock>,
    /// The population before `Output`.
    pub readout: usize,
}

/// A dense matrix `[out][in]` (NIR's order), or the identity.
#[derive(Clone, Debug)]
enum Path {
    Identity(usize),
    Dense {
        rows: usize,
        cols: usize,
        data: Vec<f64>,
    },
}

impl Path {
    fn out(&self) -> usize {
        match self {
            Path::Identity(n) => *n,
            Path::Dense { rows, .. } => *rows,
        }
    }

    /// `w · self` with `w` `[rows][cols]`; `None` when the product would hold more than
    /// [`MAX_MATRIX`] values.
    fn then(&self, rows: usize, cols: usize, w: &[f64]) -> Option<Path> {
        let c0 = match self {
            Path::Identity(_) => cols,
            Path::Dense { cols: c0, .. } => *c0,
        };
        if rows.checked_mul(c0)? > MAX_MATRIX {
            return None;
        }
        Some(match self {
            Path::Identity(_) => Path::Dense {
                rows,
                cols,
                data: w.to_vec(),
            },
            Path::Dense {
                rows: r0,
                cols: c0,
                data,
            } => {
                let mut out = vec![0.0; rows * c0];
                for i in 0..rows {
                    for k in 0..cols.min(*r0) {
                        let a = w[i * cols + k];
                        if a != 0.0 {
                            for j in 0..*c0 {
                                out[i * c0 + j] += a * data[k * c0 + j];
                            }
                        }
                    }
                }
                Path::Dense {
                    rows,
                    cols: *c0,
                    data: out,
                }
            }
        })
    }

    /// `diag(s) · self`.
    fn scaled(&self, s: &[f64]) -> Path {
        match self {
            Path::Identity(n) => {
                let mut data = vec![0.0; n * n];
                for i in 0..*n {
                    data[i * n + i] = s[i];
                }
                Path::Dense {
                    rows: *n,
                    cols: *n,
                    data,
                }
            }
            Path::Dense { rows, cols, data } => {
                let mut data = data.clone();
                for i in 0..*rows {
                    for v in &mut data[i * cols..(i + 1) * cols] {
                        *v *= s[i];
                    }
                }
                Path::Dense {
                    rows: *rows,
                    cols: *cols,
                    data,
                }
            }
        }
    }

    /// `[in][out]` (the block's order) of an `n_in`-input path.
    fn transposed(&self) -> Vec<f64> {
        match self {
            Path::Identity(n) => {
                let mut w = vec![0.0; n * n];
                for i in 0..*n {
                    w[i * n + i] = 1.0;
                }
                w
            }
            Path::Dense { rows, cols, data } => {
                let mut w = vec![0.0; rows * cols];
                for i in 0..*rows {
                    for j in 0..*cols {
                        w[j * rows + i] = data[i * cols + j];
                    }
                }
                w
            }
        }
    }
}

/// The nodes a path of weights may pass through (`Flatten` only reshapes: the values go on in order).
/// The most neurons an import makes: a DYNAP-SE2 board's (4 chips of 4 cores of 256).
pub(crate) const MAX_NEURONS: usize = 4096;

/// The most input channels.
const MAX_INPUTS: usize = 1 << 16;

/// The most values of a matrix built along a path of weights.
const MAX_MATRIX: usize = 1 << 24;

/// The most steps of the walk along the paths of weights (a graph of many parallel paths could
/// otherwise take for ever).
const MAX_WALK: usize = 1_000_000;

const WEIGHT_KINDS: [&str; 4] = ["Linear", "Affine", "Scale", "Flatten"];

/// The number of neurons of a shape.
fn size_of(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// One per-neuron parameter of a node: its values, broadcast from a scalar to `n` (when known).
fn per_neuron(
    node: &NirNode,
    name: &str,
    key: &str,
    default: Option<f64>,
    n: &mut Option<usize>,
) -> Result<Vec<f64>, NirError> {
    let Some((shape, data)) = (match default {
        Some(_) => node.optional_numbers(name, key)?,
        None => Some(node.numbers(name, key)?),
    }) else {
        return Ok(Vec::new());
    };
    if shape.is_empty() {
        return Ok(data);
    }
    let len = size_of(&shape);
    match n {
        Some(m) if *m != len => Err(NirError::graph(
            Some(name),
            format!("'{key}' has {len} values, but the node's other parameters have {m}"),
        )),
        _ => {
            *n = Some(len);
            Ok(data)
        }
    }
}

fn population(name: &str, node: &NirNode, kind: LifKind) -> Result<LifPopulation, NirError> {
    let mut n = None;
    let mut p = |key: &str, default: Option<f64>| per_neuron(node, name, key, default, &mut n);
    let (tau_mem, tau_syn, r, v_leak, v_reset, v_threshold, w_in) = match kind {
        LifKind::CubaLif => (
            p("tau_mem", None)?,
            p("tau_syn", None)?,
            p("r", None)?,
            p("v_leak", None)?,
            p("v_reset", Some(0.0))?,
            p("v_threshold", None)?,
            p("w_in", Some(1.0))?,
        ),
        LifKind::Lif => (
            p("tau", None)?,
            Vec::new(),
            p("r", None)?,
            p("v_leak", None)?,
            p("v_reset", Some(0.0))?,
            p("v_threshold", None)?,
            Vec::new(),
        ),
        LifKind::If => (
            Vec::new(),
            Vec::new(),
            p("r", None)?,
            Vec::new(),
            p("v_reset", Some(0.0))?,
            p("v_threshold", None)?,
            Vec::new(),
        ),
        LifKind::Li => (
            p("tau", None)?,
            Vec::new(),
            p("r", None)?,
            p("v_leak", None)?,
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ),
        LifKind::Threshold => (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            p("threshold", None)?,
            Vec::new(),
        ),
    };
    let Some(size) = n.filter(|&s| s > 0) else {
        return Err(NirError::graph(
            Some(name),
            "no parameter gives the number of neurons (every one is a scalar or empty)",
        ));
    };
    let fill = |v: Vec<f64>, neutral: f64| match v.len() {
        0 => vec![neutral; size],
        1 => vec![v[0]; size],
        _ => v,
    };
    let pop = LifPopulation {
        name: name.to_string(),
        kind,
        size,
        tau_mem: fill(tau_mem, 0.0),
        tau_syn: fill(tau_syn, 0.0),
        r: fill(r, 1.0),
        v_leak: fill(v_leak, 0.0),
        v_reset: fill(v_reset, 0.0),
        v_threshold: fill(v_threshold, 0.0),
        w_in: fill(w_in, 1.0),
        metadata: node.metadata.clone(),
    };
    for (key, values) in [("tau_mem", &pop.tau_mem), ("tau_syn", &pop.tau_syn)] {
        let needed = match kind {
            LifKind::CubaLif => true,
            LifKind::Lif | LifKind::Li => key == "tau_mem",
            _ => false,
        };
        if needed && let Some(bad) = values.iter().find(|&&t| t <= 0.0) {
            let key = if kind == LifKind::CubaLif { key } else { "tau" };
            return Err(NirError::graph(
                Some(name),
                format!("'{key}' holds {bad}; a time constant must be above 0"),
            ));
        }
    }
    Ok(pop)
}

impl LifNetwork {
    /// Reads a graph as populations and blocks; an error names the node that cannot be read.
    pub fn from_graph(graph: &NirGraph) -> Result<LifNetwork, NirError> {
        let flat = graph.flattened()?;
        let graph = &flat;
        // Every node's type is one we know.
        for (name, node) in &graph.nodes {
            let k = node.kind.as_str();
            if !(k == "Input"
                || k == "Output"
                || WEIGHT_KINDS.contains(&k)
                || LifKind::from_name(k).is_some())
            {
                return Err(NirError::unsupported(
                    name,
                    format!(
                        "a {k} node has no DYNAP-SE2 counterpart (supported: Input, Output, Linear, \
                         Affine, Scale, Flatten, LIF, CubaLIF, IF, LI, Threshold)"
                    ),
                ));
            }
        }
        let of_kind = |k: &str| -> Vec<&String> {
            graph
                .nodes
                .iter()
                .filter(|(_, n)| n.kind == k)
                .map(|(name, _)| name)
                .collect()
        };
        let (inputs, outputs) = (of_kind("Input"), of_kind("Output"));
        if inputs.len() != 1 {
            return Err(NirError::graph(
                None,
                format!("the graph has {} Input nodes; it needs one", inputs.len()),
            ));
        }
        if outputs.len() != 1 {
            return Err(NirError::graph(
                None,
                format!("the graph has {} Output nodes; it needs one", outputs.len()),
            ));
        }
        let input_name = inputs[0].clone();
        let output_name = outputs[0].clone();
        let (_, dims) = graph.nodes[&input_name].numbers(&input_name, "shape")?;
        let n_inputs = dims
            .iter()
            .try_fold(1usize, |a, &d| {
                (d >= 1.0 && d.fract() == 0.0 && d <= MAX_INPUTS as f64)
                    .then_some(d as usize)
                    .and_then(|d| a.checked_mul(d))
            })
            .filter(|&n| n <= MAX_INPUTS)
            .ok_or_else(|| {
                NirError::graph(
                    Some(&input_name),
                    format!(
                        "the input's shape {dims:?} must be whole numbers of at least 1, at most \
                         {MAX_INPUTS} channels in all"
                    ),
                )
            })?;
        // Populations in the order a walk from the input along the edges meets them (or by the
        // `dynap_population` index of an export).
        let mut order: Vec<String> = Vec::new();
        let mut seen = std::collections::BTreeSet::from([input_name.clone()]);
        let mut queue = std::collections::VecDeque::from([input_name.clone()]);
        while let Some(name) = queue.pop_front() {
            for next in graph.successors(&name) {
                if seen.insert(next.to_string()) {
                    if LifKind::from_name(&graph.nodes[next].kind).is_some() {
                        order.push(next.to_string());
                    }
                    queue.push_back(next.to_string());
                }
            }
        }
        for (name, node) in &graph.nodes {
            if !seen.contains(name) {
                return Err(NirError::graph(
                    Some(name),
                    format!("{} is not reached from the input", node.kind),
                ));
            }
        }
        let index_of = |name: &String| {
            graph.nodes[name]
                .metadata
                .get("dynap_population")
                .and_then(super::Value::numbers)
                .map(|(_, d)| d.first().copied().unwrap_or(f64::NAN))
        };
        if order.iter().all(|n| index_of(n).is_some()) {
            order.sort_by(|a, b| {
                let (x, y) = (
                    index_of(a).unwrap_or(f64::NAN),
                    index_of(b).unwrap_or(f64::NAN),
                );
                x.total_cmp(&y)
            });
        }
        let mut populations = Vec::with_capacity(order.len());
        for name in &order {
            let node = &graph.nodes[name];
            let kind = LifKind::from_name(&node.kind).expect("a neuron node");
            populations.push(population(name, node, kind)?);
        }
        if populations.is_empty() {
            return Err(NirError::graph(None, "the graph has no neuron node"));
        }
        let total: usize = populations.iter().map(|p| p.size).sum();
        if total > MAX_NEURONS {
            return Err(NirError::unsupported(
                &populations[0].name,
                format!("the graph has {total} neurons; a DYNAP-SE2 board has {MAX_NEURONS}"),
            ));
        }
        let index: BTreeMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str(), k))
            .collect();
        // Blocks: every path from a source through weight nodes to a neuron node.
        let mut blocks: Vec<LifBlock> = Vec::new();
        let mut readout = None;
        let mut sources = vec![(LifSource::Input, input_name.clone(), n_inputs)];
        for (k, p) in populations.iter().enumerate() {
            sources.push((LifSource::Population(k), p.name.clone(), p.size));
        }
        for (source, source_name, size) in sources {
            let mut stack: Vec<(String, Path, Vec<String>)> = graph
                .successors(&source_name)
                .map(|s| (s.to_string(), Path::Identity(size), Vec::new()))
                .collect();
            stack.reverse();
            let mut walked = 0usize;
            while let Some((name, path, mut via)) = stack.pop() {
                walked += 1;
                if walked > MAX_WALK {
                    return Err(NirError::unsupported(
                        &source_name,
                        format!("more than {MAX_WALK} paths of weights leave this node"),
                    ));
                }
                let node = &graph.nodes[&name];
                if let Some(&target) = index.get(name.as_str()) {
                    add_block(graph, &mut blocks, &populations, source, target, &path, via)?;
                    continue;
                }
                match node.kind.as_str() {
                    "Output" => {
                        match (source, &path) {
                            (LifSource::Population(k), Path::Identity(_)) => {
                                if readout.is_some_and(|r| r != k) {
                                    return Err(NirError::graph(
                                        Some(&name),
                                        "more than one population leads to the output",
                                    ));
                                }
                                readout = Some(k);
                            }
                            _ => {
                                return Err(NirError::unsupported(
                                    &name,
                                    format!(
                                        "the output follows {}; on DYNAP-SE2 the output is a \
                                         population's spikes, so Output must follow a neuron node",
                                        if via.is_empty() {
                                            "the input directly".to_string()
                                        } else {
                                            format!("the weight node '{}'", via[via.len() - 1])
                                        }
                                    ),
                                ));
                            }
                        }
                        continue;
                    }
                    "Input" => {
                        return Err(NirError::graph(Some(&name), "an edge leads into the input"));
                    }
                    _ => {}
                }
                if via.contains(&name) {
                    return Err(NirError::unsupported(
                        &name,
                        "a cycle of weight nodes without a neuron node",
                    ));
                }
                let next = match node.kind.as_str() {
                    "Linear" | "Affine" => {
                        let (shape, w) = node.numbers(&name, "weight")?;
                        if shape.len() != 2 {
                            return Err(NirError::graph(
                                Some(&name),
                                format!("'weight' has shape {shape:?}; it must be [out, in]"),
                            ));
                        }
                        if shape[1] != path.out() {
                            return Err(NirError::graph(
                                Some(&name),
                                format!(
                                    "'weight' takes {} inputs, but what leads to it gives {}",
                                    shape[1],
                                    path.out()
                                ),
                            ));
                        }
                        if node.kind == "Affine" {
                            let (_, b) = node.numbers(&name, "bias")?;
                            if let Some((j, v)) = b.iter().enumerate().find(|(_, v)| **v != 0.0) {
                                return Err(NirError::unsupported(
                                    &name,
                                    format!(
                                        "bias[{j}] = {v}: DYNAP-SE2's synapses add no bias \
                                         (only a zero bias translates; fold a constant drive \
                                         into the network before exporting)"
                                    ),
                                ));
                            }
                        }
                        path.then(shape[0], shape[1], &w).ok_or_else(|| {
                            NirError::unsupported(
                                &name,
                                format!(
                                    "the weights along this path would hold more than {MAX_MATRIX} \
                                     values"
                                ),
                            )
                        })?
                    }
                    "Flatten" => path.clone(),
                    "Scale" => {
                        let (_, s) = node.numbers(&name, "scale")?;
                        if s.len() != path.out() {
                            return Err(NirError::graph(
                                Some(&name),
                                format!(
                                    "'scale' has {} values, but what leads to it gives {}",
                                    s.len(),
                                    path.out()
                                ),
                            ));
                        }
                        path.scaled(&s)
                    }
                    other => {
                        return Err(NirError::unsupported(
                            &name,
                            format!("a {other} node cannot carry weights"),
                        ));
                    }
                };
                via.push(name.clone());
                let mut succ: Vec<(String, Path, Vec<String>)> = graph
                    .successors(&name)
                    .map(|s| (s.to_string(), next.clone(), via.clone()))
                    .collect();
                succ.reverse();
                stack.extend(succ);
            }
        }
        let Some(readout) = readout else {
            return Err(NirError::graph(
                Some(&output_name),
                "no neuron node leads to the output",
            ));
        };
        for b in &blocks {
            if let LifSource::Population(k) = b.from
                && populations[k].kind == LifKind::Li
            {
                return Err(NirError::unsupported(
                    &populations[k].name,
                    "an LI node gives a voltage, not spikes: it can only be the readout",
                ));
            }
        }
        // Blocks in the order of the export's `dynap_connection` indices when every block has one.
        let conn = |b: &LifBlock| {
            b.metadata
                .get("dynap_connection")
                .and_then(super::Value::numbers)
                .and_then(|(_, d)| d.first().copied())
        };
        if blocks.iter().all(|b| conn(b).is_some()) {
            blocks.sort_by(|a, b| {
                let (x, y) = (conn(a).unwrap_or(f64::NAN), conn(b).unwrap_or(f64::NAN));
                x.total_cmp(&y)
            });
        }
        Ok(LifNetwork {
            inputs: n_inputs,
            input_name,
            output_name,
            populations,
            blocks,
            readout,
        })
    }

    /// Neurons in all.
    pub fn neurons(&self) -> usize {
        self.populations.iter().map(|p| p.size).sum()
    }

    /// Each population's first neuron in the flattened order.
    pub fn offsets(&self) -> Vec<usize> {
        let mut o = Vec::with_capacity(self.populations.len());
        let mut n = 0;
        for p in &self.populations {
            o.push(n);
            n += p.size;
        }
        o
    }

    /// That every field fits the others: parameter vectors of the populations' sizes, blocks between
    /// existing populations with weights of their sizes.
    fn check(&self) -> Result<(), NirError> {
        for p in &self.populations {
            for (key, v) in [
                ("tau_mem", &p.tau_mem),
                ("tau_syn", &p.tau_syn),
                ("r", &p.r),
                ("v_leak", &p.v_leak),
                ("v_reset", &p.v_reset),
                ("v_threshold", &p.v_threshold),
                ("w_in", &p.w_in),
            ] {
                if v.len() != p.size {
                    return Err(NirError::graph(
                        Some(&p.name),
                        format!("'{key}' has {} values for {} neurons", v.len(), p.size),
                    ));
                }
            }
        }
        for b in &self.blocks {
            let rows = match b.from {
                LifSource::Input => Some(self.inputs),
                LifSource::Population(k) => self.populations.get(k).map(|p| p.size),
            };
            let cols = self.populations.get(b.to).map(|p| p.size);
            match (rows, cols) {
                (Some(r), Some(c)) if r.checked_mul(c) == Some(b.weight.len()) => {}
                _ => {
                    return Err(NirError::graph(
                        b.nodes.first().map(String::as_str),
                        "a block between populations that do not exist, or of the wrong size",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs the network with NIR's equations (see [`super`]) on `input` `[batch, steps, inputs]`
    /// (spike counts): the output `[batch, steps, N]` of every neuron in population order, spikes
    /// (0 or 1), and for an `LI` population its voltage.
    ///
    /// Errors when `input` is not `batch * steps * inputs` long, or when the network's fields
    /// disagree (a parameter vector or a block of the wrong size).
    pub fn simulate(
        &self,
        input: &[f32],
        batch: usize,
        steps: usize,
        dt: f64,
    ) -> Result<Vec<f32>, NirError> {
        self.check()?;
        if batch
            .checked_mul(steps)
            .and_then(|x| x.checked_mul(self.inputs))
            != Some(input.len())
        {
            return Err(NirError::graph(
                None,
                format!(
                    "the input has {} values, not batch {batch} x steps {steps} x inputs {}",
                    input.len(),
                    self.inputs
                ),
            ));
        }
        let n = self.neurons();
        let offsets = self.offsets();
        let mut out = vec![0f32; batch * steps * n];
        let mut x = vec![0f64; n];
        let mut i_syn = vec![0f64; n];
        let mut v = vec![0f64; n];
        let mut prev = vec![0f64; n];
        for b in 0..batch {
            for (p, &o) in self.populations.iter().zip(&offsets) {
                i_syn[o..o + p.size].fill(0.0);
                v[o..o + p.size].copy_from_slice(&p.v_leak);
            }
            prev.fill(0.0);
            for t in 0..steps {
                x.fill(0.0);
                let inp = &input[(b * steps + t) * self.inputs..(b * steps + t + 1) * self.inputs];
                for block in &self.blocks {
                    let to = offsets[block.to];
                    let cols = self.populations[block.to].size;
                    let mut add = |rows: &mut dyn Iterator<Item = (usize, f64)>| {
                        for (i, s) in rows {
                            if s != 0.0 {
                                let w = &block.weight[i * cols..(i + 1) * cols];
                                for (xj, wj) in x[to..to + cols].iter_mut().zip(w) {
                                    *xj += s * wj;
                                }
                            }
                        }
                    };
                    match block.from {
                        LifSource::Input => {
                            add(&mut inp.iter().map(|&s| s as f64).enumerate());
                        }
                        LifSource::Population(k) => {
                            let o = offsets[k];
                            let size = self.populations[k].size;
                            add(&mut prev[o..o + size].iter().copied().enumerate());
                        }
                    }
                }
                let row = &mut out[(b * steps + t) * n..(b * steps + t + 1) * n];
                for (p, &o) in self.populations.iter().zip(&offsets) {
                    for j in 0..p.size {
                        let g = o + j;
                        let spike = match p.kind {
                            LifKind::CubaLif => {
                                i_syn[g] += -(dt / p.tau_syn[j]) * i_syn[g]
                                    + (p.w_in[j] / p.tau_syn[j]) * x[g];
                                v[g] +=
                                    (dt / p.tau_mem[j]) * (p.v_leak[j] - v[g] + p.r[j] * i_syn[g]);
                                v[g] > p.v_threshold[j]
                            }
                            LifKind::Lif => {
                                v[g] += (dt / p.tau_mem[j]) * (p.v_leak[j] - v[g])
                                    + (p.r[j] / p.tau_mem[j]) * x[g];
                                v[g] > p.v_threshold[j]
                            }
                            LifKind::If => {
                                v[g] += p.r[j] * x[g];
                                v[g] > p.v_threshold[j]
                            }
                            LifKind::Li => {
                                v[g] += (dt / p.tau_mem[j]) * (p.v_leak[j] - v[g])
                                    + (p.r[j] / p.tau_mem[j]) * x[g];
                                false
                            }
                            LifKind::Threshold => x[g] > p.v_threshold[j],
                        };
                        if spike && p.kind != LifKind::Threshold {
                            v[g] = p.v_reset[j];
                        }
                        row[g] = if p.kind == LifKind::Li {
                            v[g] as f32
                        } else {
                            f32::from(u8::from(spike))
                        };
                    }
                }
                for (pv, &r) in prev.iter_mut().zip(row.iter()) {
                    *pv = r as f64;
                }
            }
        }
        Ok(out)
    }
}

fn add_block(
    graph: &NirGraph,
    blocks: &mut Vec<LifBlock>,
    populations: &[LifPopulation],
    from: LifSource,
    to: usize,
    path: &Path,
    via: Vec<String>,
) -> Result<(), NirError> {
    let target = &populations[to];
    let rows = match from {
        LifSource::Input => None,
        LifSource::Population(k) => Some(populations[k].size),
    };
    if path.out() != target.size {
        return Err(NirError::graph(
            Some(&target.name),
            format!(
                "it has {} neurons, but {} gives {} values",
                target.size,
                via.last()
                    .map_or("its input".to_string(), |v| format!("'{v}'")),
                path.out()
            ),
        ));
    }
    let weight = path.transposed();
    let cols = target.size;
    let rows = rows.unwrap_or(weight.len() / cols.max(1));
    let metadata = match via.as_slice() {
        [one] => graph.nodes[one].metadata.clone(),
        _ => Tree::new(),
    };
    if let Some(b) = blocks.iter_mut().find(|b| b.from == from && b.to == to) {
        for (a, w) in b.weight.iter_mut().zip(&weight) {
            *a += w;
        }
        b.nodes.extend(via);
        b.metadata = Tree::new();
    } else {
        debug_assert_eq!(weight.len(), rows * cols);
        blocks.push(LifBlock {
            from,
            to,
            weight,
            nodes: via,
            metadata,
        });
    }
    Ok(())
}
