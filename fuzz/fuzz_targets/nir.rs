//! The NIR reader (HDF5 through hdf5-pure, then the graph) on arbitrary bytes: a graph or an error,
//! never a panic; a graph it accepts writes back and reads back equal (but for the datasets of types
//! NIR does not use, which are not written), and reads as populations or an error naming the node.
//! (Built with `--cfg fuzzing`, the deflate decoder skips its checksum, so damaged compressed data
//! reads as values, NaN among them.)
#![no_main]

use dynap_config::nir::{LifNetwork, NirGraph, Tree, Value, read_nir, write_nir};
use libfuzzer_sys::fuzz_target;

fn strip(tree: &mut Tree) {
    tree.retain(|_, v| !matches!(v, Value::Unsupported(_)));
    for v in tree.values_mut() {
        if let Value::Group(t) = v {
            strip(t);
        }
    }
}

fn stripped(graph: &NirGraph) -> NirGraph {
    let mut g = graph.clone();
    strip(&mut g.metadata);
    for node in g.nodes.values_mut() {
        strip(&mut node.fields);
        strip(&mut node.metadata);
    }
    g.version = String::new();
    g
}

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = read_nir(data) {
        let bytes = write_nir(&graph).expect("a graph read writes");
        let again = read_nir(&bytes).expect("what was written reads");
        // As text: a NaN the file holds (a value NIR would refuse later) is not equal to itself.
        assert_eq!(
            format!("{:?}", stripped(&again)),
            format!("{:?}", stripped(&graph))
        );
        let _ = LifNetwork::from_graph(&graph);
    }
});
