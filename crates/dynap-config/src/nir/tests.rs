use super::*;
use crate::format::{NetworkFile, write_network};
use dynap_model::{
    Architecture, ChipSynapses, Connection, Input, Matrix, Network, Population, RunOptions, Source,
    SynapseChoice, Variant, simulate_spikes,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FEEDFORWARD: &[u8] = include_bytes!("../../tests/data/nir/feedforward.nir");
const RECURRENT: &[u8] = include_bytes!("../../tests/data/nir/recurrent.nir");
const KINDS: &[u8] = include_bytes!("../../tests/data/nir/kinds.nir");
const NESTED: &[u8] = include_bytes!("../../tests/data/nir/nested.nir");
const EXPECTED: &str = include_str!("../../tests/data/nir/expected.json");

fn expected(file: &str, key: &str) -> Vec<Vec<f64>> {
    let v: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    serde_json::from_value(v[file][key].clone()).unwrap()
}

fn graph_of(bytes: &[u8]) -> NirGraph {
    read_nir(bytes).unwrap()
}

#[test]
fn files_of_the_official_package_read_with_their_types_edges_and_weights() {
    let v: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    for (name, bytes) in [
        ("feedforward.nir", FEEDFORWARD),
        ("recurrent.nir", RECURRENT),
        ("kinds.nir", KINDS),
        ("nested.nir", NESTED),
    ] {
        let g = graph_of(bytes);
        assert_eq!(g.version, "1.0.8");
        let kinds: BTreeMap<String, String> = g
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), n.kind.clone()))
            .collect();
        let want: BTreeMap<String, String> =
            serde_json::from_value(v[name]["nodes"].clone()).unwrap();
        assert_eq!(kinds, want, "{name}");
        let edges: Vec<Vec<String>> = serde_json::from_value(v[name]["edges"].clone()).unwrap();
        let got: Vec<Vec<String>> = g
            .edges
            .iter()
            .map(|(a, b)| vec![a.clone(), b.clone()])
            .collect();
        assert_eq!(got, edges, "{name}");
    }
    let g = graph_of(FEEDFORWARD);
    let (shape, w) = g.nodes["fc1"].numbers("fc1", "weight").unwrap();
    assert_eq!(shape, vec![4, 3]);
    assert!(matches!(
        g.nodes["fc1"].fields["weight"],
        Value::Floats { single: true, .. }
    ));
    assert_eq!(w, expected("feedforward.nir", "fc1").concat());
    let (_, w) = g.nodes["fc2"].numbers("fc2", "weight").unwrap();
    assert_eq!(w, expected("feedforward.nir", "fc2").concat());
}

#[test]
fn what_is_read_is_written_back_the_same() {
    for bytes in [FEEDFORWARD, RECURRENT, KINDS, NESTED] {
        let g = graph_of(bytes);
        let again = graph_of(&write_nir(&g).unwrap());
        assert_eq!(again, g);
    }
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    assert_eq!(read_nir(b"").unwrap_err().kind, NirErrorKind::File);
    assert_eq!(
        read_nir(b"not hdf5 at all").unwrap_err().kind,
        NirErrorKind::File
    );
    for cut in [8, 100, 1000, FEEDFORWARD.len() / 2, FEEDFORWARD.len() - 7] {
        let _ = read_nir(&FEEDFORWARD[..cut]);
    }
    let mut flipped = FEEDFORWARD.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..200 {
        let i = rng.gen_range(0..flipped.len());
        flipped[i] ^= 1 << rng.gen_range(0..8);
        if let Ok(g) = read_nir(&flipped) {
            let _ = import(&g, &ImportOptions::default());
        }
    }
}

#[test]
fn what_fuzzing_found_is_an_error() {
    // A dataset whose shape promises more values than its storage gives (they read as none), and one
    // whose damaged header claims billions of values.
    for (bytes, words) in [
        (
            &include_bytes!("../../tests/data/nir/fuzz_shape_mismatch.nir")[..],
            "were read",
        ),
        (
            &include_bytes!("../../tests/data/nir/fuzz_huge_shape.nir")[..],
            "values",
        ),
    ] {
        match read_nir(bytes) {
            Err(e) => assert!(e.to_string().contains(words), "{e}"),
            Ok(g) => assert_eq!(read_nir(&write_nir(&g).unwrap()).unwrap().nodes, g.nodes),
        }
    }
}

#[test]
fn a_feedforward_graph_imports_as_populations_and_scaled_blocks() {
    let imported = import(&graph_of(FEEDFORWARD), &ImportOptions::default()).unwrap();
    assert!(!imported.report.exact);
    let arch = imported.file.architecture.as_ref().unwrap();
    let names: Vec<&str> = arch.populations().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["lif1", "lif2"]);
    assert_eq!(arch.readout(), 1);
    assert_eq!(arch.inputs(), 3);
    let net = &imported.file.network;
    assert_eq!(net.variant, Variant::Chip);
    let reports = &imported.report.populations;
    // lif1: r w_in / threshold = 2 / 2 = 1; lif2 (LIF): r / threshold = 1.
    let w1 = expected("feedforward.nir", "fc1");
    let w_in = net.w_in.as_ref().unwrap();
    for (i, row) in w1.iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            assert_eq!(w_in.get(j, i), w * reports[0].scale);
        }
    }
    let w2 = expected("feedforward.nir", "fc2");
    for (i, row) in w2.iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            assert_eq!(net.w_rec.get(j, 4 + i), w * reports[1].scale);
        }
    }
    // Time constants exactly: tau = (Ut / kappa) C / Itau.
    let kappa = 0.705;
    let tau_mem = 0.025 / kappa * 3e-12 / net.params.i_tau_mem[0];
    let tau_syn = 0.025 / kappa * 24.5e-12 / net.params.i_tau_syn[0];
    assert!((tau_mem - 2e-2).abs() < 1e-15, "{tau_mem}");
    assert!((tau_syn - 5e-3).abs() < 1e-15, "{tau_syn}");
    // The LIF population: no synapse, the shortest the step resolves.
    let tau_syn2 = 0.025 / kappa * 24.5e-12 / net.params.i_tau_syn[4];
    assert!((tau_syn2 - 1e-3).abs() < 1e-15);
    // GABA: the membrane's time constant on the synapse's capacitance, the fitted gain.
    let chip = net.chip.as_ref().unwrap();
    let tau_gaba = 0.025 / kappa * 24.5e-12 / chip.gaba.i_tau[0];
    assert!((tau_gaba - 2e-2).abs() < 1e-15, "{tau_gaba}");
    let ratio = chip.gaba.i_gain[0] / chip.gaba.i_tau[0];
    assert!((ratio / (100.0 * reports[0].inhibition) - 1.0).abs() < 1e-12);
    assert!(reports[0].inhibition != 1.0, "the inhibition is fitted");
}

#[test]
fn a_recurrent_edge_is_a_recurrent_population() {
    let imported = import(&graph_of(RECURRENT), &ImportOptions::default()).unwrap();
    let arch = imported.file.architecture.as_ref().unwrap();
    assert_eq!(arch.populations().len(), 1);
    assert!(arch.populations()[0].recurrent);
    let s = imported.report.populations[0].scale;
    let w_rec = expected("recurrent.nir", "w_rec");
    for (i, row) in w_rec.iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            assert_eq!(imported.file.network.w_rec.get(j, i), w * s);
        }
    }
}

#[test]
fn a_nested_recurrent_layer_is_flattened_into_a_recurrent_population() {
    let imported = import(&graph_of(NESTED), &ImportOptions::default()).unwrap();
    let arch = imported.file.architecture.as_ref().unwrap();
    let names: Vec<&str> = arch.populations().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["rnn.lif"]);
    assert!(arch.populations()[0].recurrent);
    let s = imported.report.populations[0].scale;
    let net = &imported.file.network;
    for (i, row) in expected("nested.nir", "fc").iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            assert_eq!(net.w_in.as_ref().unwrap().get(j, i), w * s);
        }
    }
    for (i, row) in expected("nested.nir", "w_rec").iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            assert_eq!(net.w_rec.get(j, i), w * s);
        }
    }
}

#[test]
fn scale_if_threshold_and_li_import_with_warnings() {
    let imported = import(&graph_of(KINDS), &ImportOptions::default()).unwrap();
    let arch = imported.file.architecture.as_ref().unwrap();
    let names: Vec<&str> = arch.populations().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["if", "thr", "li"]);
    let w = &imported.report.warnings;
    for name in [
        "'if' is IF",
        "'thr' is a Threshold",
        "'li' is an LI readout",
    ] {
        assert!(w.iter().any(|m| m.contains(name)), "{name}: {w:?}");
    }
    // The Scale node multiplies the Linear before it: 0.5 * 2 = 1 on the diagonal.
    let s = imported.report.populations[0].scale;
    let w_in = imported.file.network.w_in.as_ref().unwrap();
    assert_eq!(w_in.get(0, 0), 1.0 * s);
    assert_eq!(w_in.get(0, 2), 0.5 * s);
}

#[test]
fn what_the_chip_cannot_run_is_named_with_its_node() {
    for (bytes, node, words) in [
        (
            &include_bytes!("../../tests/data/nir/bad_bias.nir")[..],
            "fc",
            "bias[1] = 0.5",
        ),
        (
            &include_bytes!("../../tests/data/nir/bad_leak.nir")[..],
            "lif",
            "negative leak",
        ),
        (
            &include_bytes!("../../tests/data/nir/bad_fan_in.nir")[..],
            "lif",
            "neuron 0 has 70 synapses",
        ),
        (
            &include_bytes!("../../tests/data/nir/bad_mixed_tau.nir")[..],
            "lif",
            "'tau_mem' differs",
        ),
        (
            &include_bytes!("../../tests/data/nir/bad_node.nir")[..],
            "delay",
            "a Delay node has no DYNAP-SE2 counterpart",
        ),
    ] {
        let e = import(&graph_of(bytes), &ImportOptions::default()).unwrap_err();
        assert_eq!(e.kind, NirErrorKind::Unsupported, "{e}");
        assert_eq!(e.node.as_deref(), Some(node), "{e}");
        assert!(e.to_string().contains(words), "{e}");
    }
}

#[test]
fn a_flatten_between_an_image_input_and_a_linear_passes_the_values_on() {
    // Input [2, 3] -> Flatten -> Linear [4, 6] -> CubaLIF 4 -> Output, as tools export an MLP on
    // images.
    let mut g = graph_of(FEEDFORWARD);
    g.nodes.get_mut("input").unwrap().fields.insert(
        "shape".into(),
        Value::Ints {
            shape: vec![2],
            data: vec![2, 3],
        },
    );
    let w: Vec<f64> = (0..24).map(|k| 0.001 * k as f64).collect();
    g.nodes
        .get_mut("fc1")
        .unwrap()
        .fields
        .insert("weight".into(), Value::floats(vec![4, 6], w.clone()));
    g.nodes
        .insert("flat".into(), NirNode::new("Flatten", Tree::new()));
    g.edges
        .retain(|e| e != &("input".to_string(), "fc1".to_string()));
    g.edges.push(("input".into(), "flat".into()));
    g.edges.push(("flat".into(), "fc1".into()));
    let imported = import(&g, &ImportOptions::default()).unwrap();
    assert_eq!(imported.lif.inputs, 6);
    let s = imported.report.populations[0].scale;
    let w_in = imported.file.network.w_in.as_ref().unwrap();
    assert_eq!(w_in.get(5, 3), w[3 * 6 + 5] * s);
}

#[test]
fn per_neuron_thresholds_and_resistances_are_carried_by_the_weights() {
    // lif1 (CubaLIF, w_in 2): thresholds 1, 2, 4, 8 and r 1, 1, 2, 2: gains 2, 1, 1, 0.5.
    let mut g = graph_of(FEEDFORWARD);
    let node = g.nodes.get_mut("lif1").unwrap();
    node.fields.insert(
        "v_threshold".into(),
        Value::floats(vec![4], vec![1.0, 2.0, 4.0, 8.0]),
    );
    node.fields
        .insert("r".into(), Value::floats(vec![4], vec![1.0, 1.0, 2.0, 2.0]));
    let imported = import(&g, &ImportOptions::default()).unwrap();
    let s = imported.report.populations[0].scale;
    let w1 = expected("feedforward.nir", "fc1");
    let w_in = imported.file.network.w_in.as_ref().unwrap();
    for (i, gain) in [2.0, 1.0, 1.0, 0.5].into_iter().enumerate() {
        for (j, &w) in w1[i].iter().enumerate() {
            assert_eq!(w_in.get(j, i), w * (s * gain));
        }
    }
}

#[test]
fn differing_parameters_are_averaged_on_request() {
    let g = graph_of(include_bytes!("../../tests/data/nir/bad_mixed_tau.nir"));
    let options = ImportOptions {
        average: true,
        ..ImportOptions::default()
    };
    let imported = import(&g, &options).unwrap();
    let w = &imported.report.warnings;
    assert!(
        w.iter()
            .any(|m| m.contains("'lif': 'tau_mem' varies") && m.contains("0.02 to 0.03")),
        "{w:?}"
    );
    let tau = 0.025 / 0.705 * 3e-12 / imported.file.network.params.i_tau_mem[0];
    assert!((tau - 0.07 / 3.0).abs() < 1e-12, "{tau}");
}

#[test]
fn malformed_graphs_are_graph_errors() {
    let mut g = graph_of(FEEDFORWARD);
    g.nodes.get_mut("lif1").unwrap().fields.remove("tau_mem");
    let e = import(&g, &ImportOptions::default()).unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.node.as_deref()),
        (NirErrorKind::Graph, Some("lif1"))
    );
    assert!(e.message.contains("no 'tau_mem'"), "{e}");
    let mut g = graph_of(FEEDFORWARD);
    g.edges.retain(|(a, _)| a != "lif2");
    let e = import(&g, &ImportOptions::default()).unwrap_err();
    assert_eq!(e.node.as_deref(), Some("output"));
    assert!(e.message.contains("not reached from the input"), "{e}");
    let mut g = graph_of(FEEDFORWARD);
    g.nodes
        .get_mut("fc2")
        .unwrap()
        .fields
        .insert("weight".into(), Value::floats(vec![2, 3], vec![0.0; 6]));
    let e = import(&g, &ImportOptions::default()).unwrap_err();
    assert_eq!(e.node.as_deref(), Some("fc2"));
    assert!(e.message.contains("takes 3 inputs"), "{e}");
}

#[test]
fn hostile_graphs_are_errors_not_panics_or_huge_allocations() {
    let err = |g: &NirGraph| {
        import(g, &ImportOptions::default())
            .unwrap_err()
            .to_string()
    };
    // A duplicate edge would double the weights.
    let mut g = graph_of(FEEDFORWARD);
    g.edges.push(("fc1".into(), "lif1".into()));
    let bytes = write_nir(&g).unwrap();
    assert!(
        read_nir(&bytes)
            .unwrap_err()
            .to_string()
            .contains("listed twice")
    );
    // An input of 2.5 channels.
    let mut g = graph_of(FEEDFORWARD);
    g.nodes
        .get_mut("input")
        .unwrap()
        .fields
        .insert("shape".into(), Value::floats(vec![1], vec![2.5]));
    assert!(err(&g).contains("whole numbers"), "{}", err(&g));
    // More neurons than a board.
    let mut g = graph_of(FEEDFORWARD);
    for v in g.nodes.get_mut("lif2").unwrap().fields.values_mut() {
        if let Value::Floats { shape, data, .. } = v {
            let x = data[0];
            *shape = vec![5000];
            *data = vec![x; 5000];
        }
    }
    assert!(
        err(&g).contains("a DYNAP-SE2 board has 4096"),
        "{}",
        err(&g)
    );
    // A chain of weights whose product would be 60 000 x 60 000.
    let mut g = graph_of(FEEDFORWARD);
    g.nodes.get_mut("input").unwrap().fields.insert(
        "shape".into(),
        Value::Ints {
            shape: vec![1],
            data: vec![60_000],
        },
    );
    g.nodes.get_mut("fc1").unwrap().fields.insert(
        "weight".into(),
        Value::floats(vec![1, 60_000], vec![0.0; 60_000]),
    );
    g.nodes.insert(
        "wide".into(),
        NirNode::new("Linear", {
            let mut f = Tree::new();
            f.insert(
                "weight".into(),
                Value::floats(vec![60_000, 1], vec![0.0; 60_000]),
            );
            f
        }),
    );
    g.edges
        .retain(|e| e != &("fc1".to_string(), "lif1".to_string()));
    g.edges.push(("fc1".into(), "wide".into()));
    g.edges.push(("wide".into(), "lif1".into()));
    assert!(err(&g).contains("more than"), "{}", err(&g));
    // Damaged export metadata: NaN population indices, short synapse types.
    let mut g = export(&chip_file(9)).unwrap();
    g.nodes
        .get_mut("hidden")
        .unwrap()
        .metadata
        .insert("dynap_population".into(), Value::scalar(f64::NAN));
    let _ = import(&g, &ImportOptions::default());
    let mut g = export(&chip_file(9)).unwrap();
    g.nodes.get_mut("w_hidden_hidden").unwrap().metadata.insert(
        "dynap_nmda".into(),
        Value::Ints {
            shape: vec![1],
            data: vec![0],
        },
    );
    assert!(err(&g).contains("'dynap_nmda'"), "{}", err(&g));
    let mut g = export(&chip_file(9)).unwrap();
    g.nodes
        .get_mut("out")
        .unwrap()
        .metadata
        .insert("dynap_first_core".into(), Value::scalar(1e30));
    assert!(err(&g).contains("dynap_first_core"), "{}", err(&g));
    // A shape that disagrees with its values.
    let mut g = graph_of(FEEDFORWARD);
    g.nodes
        .get_mut("lif1")
        .unwrap()
        .fields
        .insert("tau_mem".into(), Value::floats(vec![9], vec![0.02; 4]));
    assert!(
        err(&g).contains("has shape [9] but 4 values"),
        "{}",
        err(&g)
    );
}

#[test]
fn the_reference_simulation_follows_the_documented_equations() {
    let mut g = graph_of(FEEDFORWARD);
    // One input spike into lif1's neuron 0 through weight 0.1: I jumps by w_in w / tau_syn.
    let w: Vec<f64> = (0..12).map(|k| if k == 0 { 0.1 } else { 0.0 }).collect();
    g.nodes
        .get_mut("fc1")
        .unwrap()
        .fields
        .insert("weight".into(), Value::floats(vec![4, 3], w));
    let lif = LifNetwork::from_graph(&g).unwrap();
    let steps = 30;
    let mut input = vec![0f32; steps * 3];
    input[0] = 1.0;
    let out = lif.simulate(&input, 1, steps, 1e-3).unwrap();
    assert!(
        lif.simulate(&input[1..], 1, steps, 1e-3).is_err(),
        "a short input is an error"
    );
    // By hand: I_1 = 2 * 0.1 / 5e-3 = 40; v_1 = (1e-3 / 2e-2) * (0 - 0 + 40) = 2 > 2? no.
    let (dt, ts, tm) = (1e-3, 5e-3, 2e-2);
    let (mut i, mut v) = (0.0f64, 0.0f64);
    let mut want = Vec::new();
    for t in 0..steps {
        let x = if t == 0 { 0.1 } else { 0.0 };
        i += -(dt / ts) * i + (2.0 / ts) * x;
        v += (dt / tm) * (0.0 - v + i);
        let s = v > 2.0;
        if s {
            v = 0.0;
        }
        want.push(f32::from(u8::from(s)));
    }
    let got: Vec<f32> = (0..steps).map(|t| out[t * 6]).collect();
    assert_eq!(got, want);
    assert!(want.contains(&1.0), "the neuron fires");
}

/// A chip network of two populations (the first recurrent) with synapse types, and its file.
fn chip_file(seed: u64) -> NetworkFile {
    chip_file_with(seed, true)
}

/// [`chip_file`], with `Itau_mem` drawn per neuron or not.
fn chip_file_with(seed: u64, per_neuron: bool) -> NetworkFile {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut hidden = Population::new("hidden", 5);
    hidden.recurrent = true;
    let arch = Architecture::new(
        3,
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
    .unwrap();
    let mut net = arch.network(Variant::Chip);
    let masks = arch.masks();
    for (w, m) in net
        .w_in
        .as_mut()
        .unwrap()
        .as_mut_slice()
        .iter_mut()
        .zip(&masks.w_in)
    {
        *w = if *m { rng.gen_range(-3.0..3.0) } else { 0.0 };
    }
    for (w, m) in net.w_rec.as_mut_slice().iter_mut().zip(&masks.w_rec) {
        *w = if *m { rng.gen_range(-3.0..3.0) } else { 0.0 };
    }
    if per_neuron {
        for v in net.params.i_tau_mem.iter_mut() {
            *v *= rng.gen_range(0.5..2.0);
        }
    }
    net.i_scale = 3e-9;
    net.dt = 5e-4;
    let chip = net.chip.as_mut().unwrap();
    chip.nmda.i_tau[3] = 7e-12;
    // Types on the connections of the blocks (outside them, where weights are 0, they mean nothing
    // and are not kept).
    chip.w_rec_types = Some(
        (0..49)
            .map(|k| SynapseChoice {
                nmda: masks.w_rec[k] && k % 3 == 0,
                shunt: masks.w_rec[k] && k % 5 == 0,
            })
            .collect(),
    );
    let mut file = NetworkFile::new(net);
    file.architecture = Some(arch);
    file
}

#[test]
fn export_then_import_is_exact() {
    let mut files = vec![chip_file(1), chip_file(2)];
    // Without a declared architecture, with the input already weighted, the rockpool variant.
    let mut net = Network::with_defaults(4);
    net.w_rec = Matrix::from_vec(4, 4, (0..16).map(|k| (k as f64 * 0.37).sin()).collect()).unwrap();
    files.push(NetworkFile::new(net.clone()));
    net.w_in = Matrix::from_vec(2, 4, vec![1.0, -2.0, 0.5, 0.0, 0.0, 3.0, 1.0, 2.0]);
    net.w_rec = Matrix::zeros(4, 4);
    files.push(NetworkFile::new(net));
    // A chip network without types.
    let mut c = chip_file(3);
    c.network.chip.as_mut().unwrap().w_rec_types = None;
    files.push(c);
    for file in files {
        let graph = export(&file).unwrap();
        let back = import(
            &read_nir(&write_nir(&graph).unwrap()).unwrap(),
            &ImportOptions::default(),
        )
        .unwrap();
        assert!(back.report.exact);
        assert_eq!(write_network(&back.file), write_network(&file));
    }
}

#[test]
fn an_export_is_linear_and_cubalif_nodes_with_the_recurrent_block_as_a_cycle() {
    let file = chip_file_with(4, false);
    let g = export(&file).unwrap();
    let kinds: Vec<(&str, &str)> = g
        .nodes
        .iter()
        .map(|(k, n)| (k.as_str(), n.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("hidden", "CubaLIF"),
            ("input", "Input"),
            ("out", "CubaLIF"),
            ("output", "Output"),
            ("w_hidden_hidden", "Linear"),
            ("w_hidden_out", "Linear"),
            ("w_input_hidden", "Linear"),
            ("w_input_out", "Linear"),
        ]
    );
    assert!(
        g.edges
            .contains(&("hidden".into(), "w_hidden_hidden".into()))
    );
    assert!(
        g.edges
            .contains(&("w_hidden_hidden".into(), "hidden".into()))
    );
    // Without the metadata the graph is a plain LIF network, which imports by translation to the same
    // structure, with weights within the scale fit's rounding.
    let mut plain = g.clone();
    for n in plain.nodes.values_mut() {
        n.metadata.clear();
    }
    plain.metadata.clear();
    let options = ImportOptions {
        dt: file.network.dt,
        ..ImportOptions::default()
    };
    let back = import(&plain, &options).unwrap();
    assert!(!back.report.exact);
    let a = back.file.architecture.as_ref().unwrap();
    assert_eq!(a.populations().len(), 2);
    assert!(a.populations()[0].recurrent);
    let orig = file.network.w_in.as_ref().unwrap().as_slice();
    let new = back.file.network.w_in.as_ref().unwrap().as_slice();
    for (x, y) in orig.iter().zip(new) {
        assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} {y}");
    }
}

/// Pearson correlation.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn an_imported_network_fires_like_its_lif_reference() {
    // input 20 -> CubaLIF 30 -> CubaLIF 10, random positive and negative weights, Poisson input.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut g = graph_of(FEEDFORWARD);
    let (n_in, n1, n2) = (20usize, 30usize, 10usize);
    let mut w = |rows: usize, cols: usize, scale: f64| {
        Value::floats(
            vec![rows, cols],
            (0..rows * cols)
                .map(|_| rng.gen_range(-0.3..1.0) * scale)
                .collect(),
        )
    };
    g.nodes
        .get_mut("fc1")
        .unwrap()
        .fields
        .insert("weight".into(), w(n1, n_in, 0.004));
    g.nodes
        .get_mut("fc2")
        .unwrap()
        .fields
        .insert("weight".into(), w(n2, n1, 0.01));
    g.nodes.get_mut("input").unwrap().fields.insert(
        "shape".into(),
        Value::Ints {
            shape: vec![1],
            data: vec![n_in as i64],
        },
    );
    for (name, n) in [("lif1", n1), ("lif2", n2)] {
        let node = g.nodes.get_mut(name).unwrap();
        for v in node.fields.values_mut() {
            if let Value::Floats { shape, data, .. } = v {
                let x = data[0];
                *shape = vec![n];
                *data = vec![x; n];
            }
        }
    }
    let imported = import(&g, &ImportOptions::default()).unwrap();
    let (batch, steps) = (8, 300);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let input: Vec<f32> = (0..batch * steps * n_in)
        .map(|k| {
            let rate = 20.0 + 80.0 * ((k % n_in) as f64 / n_in as f64);
            f32::from(u8::from(rng.gen_bool(rate * 1e-3)))
        })
        .collect();
    let reference = imported.lif.simulate(&input, batch, steps, 1e-3).unwrap();
    let dpi = simulate_spikes::<f32>(
        &imported.file.network,
        Input::Spikes {
            data: &input,
            batch,
            steps,
        },
        &RunOptions::default(),
    )
    .unwrap();
    let n = n1 + n2;
    let counts = |s: &[f32]| -> Vec<f64> {
        let mut c = vec![0.0; batch * n];
        for b in 0..batch {
            for t in 0..steps {
                for j in 0..n {
                    c[b * n + j] += f64::from(s[(b * steps + t) * n + j].min(1.0));
                }
            }
        }
        c
    };
    let (a, b) = (counts(&reference), counts(&dpi));
    let r = correlation(&a, &b);
    eprintln!(
        "count correlation {r:.3}; totals {} {}",
        a.iter().sum::<f64>(),
        b.iter().sum::<f64>()
    );
    assert!(r > 0.8, "{r}");
}

#[test]
fn chip_file_maps_names() {
    // The chip variant's dendrite parameters travel under the names of the network JSON.
    let f = chip_file(5);
    let g = export(&f).unwrap();
    let m = &g.nodes["hidden"].metadata;
    for key in [
        "dynap_Itau_nmda",
        "dynap_Igain_gaba",
        "dynap_C_shunt",
        "dynap_Itau_mem",
        "dynap_Iscale",
    ] {
        assert!(m.contains_key(key), "{key}");
    }
    let _ = ChipSynapses::defaults(1);
}
