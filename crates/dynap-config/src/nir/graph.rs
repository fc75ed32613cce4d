//! A NIR graph as the file holds it: nodes with their type, fields and metadata, and edges.

use super::{NIR_VERSION, NirError, Tree, Value};
use std::collections::BTreeMap;

/// A field of numbers: its shape and values.
pub type Numbers = (Vec<usize>, Vec<f64>);

/// A NIR node: its type (`"CubaLIF"`, `"Linear"`, ...), its fields as the file holds them (`weight`,
/// `tau_mem`, ...; for a nested graph, its `nodes` and `edges`) and its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct NirNode {
    /// The NIR type name.
    pub kind: String,
    /// Every field but `type` and `metadata`.
    pub fields: Tree,
    /// The node's metadata (empty when the file has none).
    pub metadata: Tree,
}

/// A NIR graph: nodes by name and edges `(from, to)` between their names.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NirGraph {
    /// The file's `version` (the `nir` package's that wrote it).
    pub version: String,
    /// The nodes.
    pub nodes: BTreeMap<String, NirNode>,
    /// The edges, in the file's order.
    pub edges: Vec<(String, String)>,
    /// The graph's metadata.
    pub metadata: Tree,
}

impl NirNode {
    /// A node of `kind` with `fields` and no metadata.
    pub fn new(kind: &str, fields: Tree) -> NirNode {
        NirNode {
            kind: kind.to_string(),
            fields,
            metadata: Tree::new(),
        }
    }

    /// A field's shape and values as numbers; an error naming the node and key when it is missing or
    /// not numbers.
    pub fn numbers(&self, name: &str, key: &str) -> Result<Numbers, NirError> {
        match self.fields.get(key) {
            None => Err(NirError::graph(
                Some(name),
                format!("{} has no '{key}'", self.kind),
            )),
            Some(v) => match v.numbers() {
                Some((shape, data)) => {
                    let expected = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                    if expected != Some(data.len()) {
                        return Err(NirError::graph(
                            Some(name),
                            format!("'{key}' has shape {shape:?} but {} values", data.len()),
                        ));
                    }
                    if let Some(bad) = data.iter().find(|x| !x.is_finite()) {
                        return Err(NirError::graph(
                            Some(name),
                            format!("'{key}' holds {bad}; values must be finite"),
                        ));
                    }
                    Ok((shape, data))
                }
                None => Err(NirError::graph(
                    Some(name),
                    format!("'{key}' is not an array of numbers"),
                )),
            },
        }
    }

    /// A field of numbers, when present.
    pub fn optional_numbers(&self, name: &str, key: &str) -> Result<Option<Numbers>, NirError> {
        if self.fields.contains_key(key) {
            self.numbers(name, key).map(Some)
        } else {
            Ok(None)
        }
    }
}

fn tree_of(value: Option<&Value>) -> Tree {
    match value {
        Some(Value::Group(t)) => t.clone(),
        _ => Tree::new(),
    }
}

/// A scalar string, or a one-element array of strings.
pub(crate) fn text_of(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::Text(t)) => Some(t.clone()),
        Some(Value::Texts { texts, .. }) if texts.len() == 1 => Some(texts[0].clone()),
        _ => None,
    }
}

impl NirGraph {
    /// The graph of a whole file's tree (`version` and the `node` group).
    pub(crate) fn from_file_tree(tree: &Tree) -> Result<NirGraph, NirError> {
        let version = text_of(tree.get("version")).unwrap_or_default();
        let Some(Value::Group(root)) = tree.get("node") else {
            return Err(NirError::file(
                "no group 'node': not a NIR file (the nir package writes the graph there)",
            ));
        };
        let mut graph = NirGraph::from_node_tree(root, None)?;
        graph.version = version;
        Ok(graph)
    }

    /// A graph from the group of a `NIRGraph` node (`name`: the node's, for a nested one).
    fn from_node_tree(root: &Tree, name: Option<&str>) -> Result<NirGraph, NirError> {
        let kind = text_of(root.get("type"));
        if kind.as_deref() != Some("NIRGraph") {
            return Err(NirError::graph(
                name,
                format!(
                    "the graph's type is {}, not NIRGraph",
                    kind.map_or("missing".to_string(), |k| format!("'{k}'"))
                ),
            ));
        }
        let Some(Value::Group(nodes_tree)) = root.get("nodes") else {
            return Err(NirError::graph(name, "the graph has no group 'nodes'"));
        };
        let mut nodes = BTreeMap::new();
        for (node_name, value) in nodes_tree {
            let Value::Group(group) = value else {
                return Err(NirError::graph(
                    Some(node_name),
                    "is a dataset, not a group of a node",
                ));
            };
            let Some(kind) = text_of(group.get("type")) else {
                return Err(NirError::graph(Some(node_name), "has no string 'type'"));
            };
            let mut fields = group.clone();
            fields.remove("type");
            let metadata = tree_of(fields.remove("metadata").as_ref());
            nodes.insert(
                node_name.clone(),
                NirNode {
                    kind,
                    fields,
                    metadata,
                },
            );
        }
        let edges = match root.get("edges") {
            None => Vec::new(),
            Some(Value::Texts { shape, texts }) => {
                if texts.is_empty() {
                    Vec::new()
                } else if shape.len() != 2 || shape[1] != 2 {
                    return Err(NirError::graph(
                        name,
                        format!("'edges' has shape {shape:?}; it must be [edges, 2]"),
                    ));
                } else {
                    texts
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect()
                }
            }
            // An empty edge list is written as an empty number array.
            Some(v) if v.numbers().is_some_and(|(_, d)| d.is_empty()) => Vec::new(),
            Some(_) => {
                return Err(NirError::graph(
                    name,
                    "'edges' is not an array of node names",
                ));
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for (from, to) in &edges {
            if !seen.insert((from, to)) {
                return Err(NirError::graph(
                    name,
                    format!("the edge {from} -> {to} is listed twice"),
                ));
            }
            for end in [from, to] {
                if !nodes.contains_key(end) {
                    return Err(NirError::graph(
                        name,
                        format!("the edge {from} -> {to} names '{end}', which is no node"),
                    ));
                }
            }
        }
        Ok(NirGraph {
            version: String::new(),
            nodes,
            edges,
            metadata: tree_of(root.get("metadata")),
        })
    }

    /// The whole file's tree: `version` and the graph under `node`.
    pub(crate) fn to_file_tree(&self) -> Tree {
        let mut root = Tree::new();
        root.insert("type".into(), Value::Text("NIRGraph".into()));
        let mut nodes = Tree::new();
        for (name, node) in &self.nodes {
            let mut group = node.fields.clone();
            group.insert("type".into(), Value::Text(node.kind.clone()));
            if !node.metadata.is_empty() {
                group.insert("metadata".into(), Value::Group(node.metadata.clone()));
            }
            nodes.insert(name.clone(), Value::Group(group));
        }
        root.insert("nodes".into(), Value::Group(nodes));
        root.insert(
            "edges".into(),
            Value::Texts {
                shape: vec![self.edges.len(), 2],
                texts: self
                    .edges
                    .iter()
                    .flat_map(|(a, b)| [a.clone(), b.clone()])
                    .collect(),
            },
        );
        if !self.metadata.is_empty() {
            root.insert("metadata".into(), Value::Group(self.metadata.clone()));
        }
        let mut file = Tree::new();
        file.insert("version".into(), Value::Text(NIR_VERSION.into()));
        file.insert("node".into(), Value::Group(root));
        file
    }

    /// The graph with every nested graph (a `NIRGraph` node, as some tools export a recurrent layer)
    /// replaced by its nodes, named `outer.inner`; its `Input` and `Output` nodes become pass-through
    /// (`Flatten`) nodes that the outer edges lead into and out of.
    pub fn flattened(&self) -> Result<NirGraph, NirError> {
        self.flattened_at(0)
    }

    fn flattened_at(&self, depth: usize) -> Result<NirGraph, NirError> {
        let mut seen = std::collections::BTreeSet::new();
        for (from, to) in &self.edges {
            if !seen.insert((from, to)) {
                return Err(NirError::graph(
                    None,
                    format!("the edge {from} -> {to} is listed twice"),
                ));
            }
            for end in [from, to] {
                if !self.nodes.contains_key(end) {
                    return Err(NirError::graph(
                        None,
                        format!("the edge {from} -> {to} names '{end}', which is no node"),
                    ));
                }
            }
        }
        if !self.nodes.values().any(|n| n.kind == "NIRGraph") {
            return Ok(self.clone());
        }
        if depth > 16 {
            return Err(NirError::graph(None, "graphs nested more than 16 deep"));
        }
        let mut out = NirGraph {
            version: self.version.clone(),
            nodes: BTreeMap::new(),
            edges: Vec::new(),
            metadata: self.metadata.clone(),
        };
        // For a nested graph: the names its outer edges lead into and come out of.
        let mut entry: BTreeMap<&str, String> = BTreeMap::new();
        let mut exit: BTreeMap<&str, String> = BTreeMap::new();
        for (name, node) in &self.nodes {
            if node.kind != "NIRGraph" {
                out.nodes.insert(name.clone(), node.clone());
                continue;
            }
            let mut tree = node.fields.clone();
            tree.insert("type".into(), Value::Text("NIRGraph".into()));
            let inner = NirGraph::from_node_tree(&tree, Some(name))?.flattened_at(depth + 1)?;
            let ends = |kind: &str| -> Result<String, NirError> {
                let found: Vec<&String> = inner
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.kind == kind)
                    .map(|(k, _)| k)
                    .collect();
                match found.as_slice() {
                    [one] => Ok(format!("{name}.{one}")),
                    _ => Err(NirError::unsupported(
                        name,
                        format!(
                            "a nested graph with {} {kind} nodes (one is needed)",
                            found.len()
                        ),
                    )),
                }
            };
            entry.insert(name, ends("Input")?);
            exit.insert(name, ends("Output")?);
            for (inner_name, inner_node) in inner.nodes {
                let mut n = inner_node;
                if n.kind == "Input" || n.kind == "Output" {
                    n = NirNode::new("Flatten", Tree::new());
                }
                let joined = format!("{name}.{inner_name}");
                if self.nodes.contains_key(&joined) || out.nodes.insert(joined.clone(), n).is_some()
                {
                    return Err(NirError::graph(
                        Some(&joined),
                        "a node of a nested graph takes the name of another node once flattened",
                    ));
                }
            }
            for (a, b) in inner.edges {
                out.edges
                    .push((format!("{name}.{a}"), format!("{name}.{b}")));
            }
        }
        for (a, b) in &self.edges {
            let from = exit.get(a.as_str()).cloned().unwrap_or_else(|| a.clone());
            let to = entry.get(b.as_str()).cloned().unwrap_or_else(|| b.clone());
            out.edges.push((from, to));
        }
        Ok(out)
    }

    /// The names of the nodes an edge leads to from `name`, in edge order.
    pub fn successors<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .iter()
            .filter(move |(a, _)| a == name)
            .map(|(_, b)| b.as_str())
    }

    /// The names of the nodes with an edge to `name`, in edge order.
    pub fn predecessors<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .iter()
            .filter(move |(_, b)| b == name)
            .map(|(a, _)| a.as_str())
    }
}
