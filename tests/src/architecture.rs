//! The dependency rules of ARCHITECTURE.md, read from `cargo metadata`: crates depend only downward in
//! the order model < autodiff < mismatch < quant < config < hw < train < python, dfdx never reaches
//! `dynap-mismatch`, `dynap-quant`, `dynap-config` or `dynap-hw` (normal dependencies), and each sealed
//! external crate is used by its one owner only; and, read from the sources: dfdx's seal is real (no
//! re-export, and no other crate drives the dfdx-typed layer API).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const ORDER: [&str; 8] = [
    "dynap-model",
    "dynap-autodiff",
    "dynap-mismatch",
    "dynap-quant",
    "dynap-config",
    "dynap-hw",
    "dynap-train",
    "dynap-python",
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
    for krate in ["dynap-mismatch", "dynap-quant", "dynap-config", "dynap-hw"] {
        let reach = closure(&graph, krate);
        assert!(
            !reach.contains("dfdx"),
            "{krate} reaches dfdx: a user of it alone must not compile a tensor library"
        );
    }
    // Each sealed external crate is a direct dependency of its owner only.
    for (external, owner) in [
        ("dfdx", "dynap-autodiff"),
        ("nusb", "dynap-hw"),
        ("pyo3", "dynap-python"),
        ("numpy", "dynap-python"),
        ("hdf5-pure", "dynap-config"),
        ("faer", "dynap-hw"),
    ] {
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

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// dfdx is sealed in `dynap-autodiff`: it re-exports nothing of dfdx, and no other package names dfdx
/// or the layer API whose signatures carry dfdx types (`DynapSimLayer`, `LayerParams`, `loss_on_tape`);
/// they train through `Trainer`. (A comment may mention them.)
#[test]
fn dfdx_is_sealed_in_dynap_autodiff() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = std::fs::read_to_string(root.join("crates/dynap-autodiff/src/lib.rs")).unwrap();
    for line in lib.lines() {
        let code = line.split("//").next().unwrap_or("");
        assert!(
            !(code.contains("pub use dfdx") || code.contains("pub mod dfdx")),
            "dynap-autodiff re-exports dfdx: {line}"
        );
    }
    let mut files = Vec::new();
    for dir in ["crates", "tests", "benches", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut offences = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "dynap-autodiff"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in ["dfdx::", "DynapSimLayer", "LayerParams", "loss_on_tape"] {
                // This test itself names them in strings.
                if code.contains(name) && !code.contains('"') {
                    offences.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "dfdx or its layer API used outside dynap-autodiff:\n{}",
        offences.join("\n")
    );
}
