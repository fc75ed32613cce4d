//! The dependency rules of ARCHITECTURE.md, read from `cargo metadata`: crates depend only downward in
//! the order model < autodiff < mismatch < quant < config < hw < train, dfdx never reaches
//! `dynap-config` or `dynap-hw`, and each sealed external crate is used by its one owner only.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const ORDER: [&str; 7] = [
    "dynap-model",
    "dynap-autodiff",
    "dynap-mismatch",
    "dynap-quant",
    "dynap-config",
    "dynap-hw",
    "dynap-train",
];

fn metadata() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Package name -> names of its normal (non-dev, non-build) dependencies, over the resolved graph.
fn normal_graph(meta: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let from = names[node["id"].as_str().unwrap()].to_owned();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| names[d["pkg"].as_str().unwrap()].to_owned())
            .collect();
        graph.insert(from, deps);
    }
    graph
}

fn closure(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        for d in graph.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn crates_depend_only_downward_and_seal_their_externals() {
    let graph = normal_graph(&metadata());
    for (i, krate) in ORDER.iter().enumerate() {
        let deps = graph
            .get(*krate)
            .unwrap_or_else(|| panic!("{krate} is not in the workspace"));
        for d in deps.iter().filter(|d| d.starts_with("dynap-")) {
            let j = ORDER
                .iter()
                .position(|o| o == d)
                .unwrap_or_else(|| panic!("{krate} depends on unknown {d}"));
            assert!(
                j < i,
                "{krate} depends upward on {d}: the order is {ORDER:?}"
            );
        }
    }
    for krate in ["dynap-config", "dynap-hw"] {
        let reach = closure(&graph, krate);
        assert!(
            !reach.contains("dfdx"),
            "{krate} reaches dfdx: a configuration user must not compile it"
        );
    }
    // Each sealed external crate is a direct dependency of its owner only.
    for (external, owner) in [("dfdx", "dynap-autodiff"), ("nusb", "dynap-hw")] {
        for (krate, deps) in &graph {
            if krate.starts_with("dynap-") && krate != owner {
                assert!(
                    !deps.contains(external),
                    "{krate} depends on {external}, which only {owner} may use"
                );
            }
        }
    }
}
