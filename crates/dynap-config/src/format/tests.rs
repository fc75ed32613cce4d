//! The file formats: round trips (property tests, both matrix forms), and errors that name the path.

use super::*;
use crate::map::{Mapping, NeuronPlace};
use crate::model::{CoreMask, Destination, Hop, Tag};
use dynap_model::{
    ChipSynapses, Matrix, Network, Param, QuantMatrix, QuantizedWeights, SynapseChoice, Variant,
    WeightMatrix,
};
use proptest::prelude::*;

/// A random network: `n` neurons, `n_in` channels (or none), sparse or dense weights, per-neuron
/// values varied around the defaults, either variant.
fn network(n: usize, n_in: Option<usize>, density: f64, chip: bool, seed: u64) -> Network {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut weights = |rows: usize| {
        let data = (0..rows * n)
            .map(|_| {
                if rng.r#gen::<f64>() < density {
                    // Any f64, including ones whose shortest decimal is long.
                    rng.r#gen::<f64>() * 20.0 - 10.0
                } else {
                    0.0
                }
            })
            .collect();
        Matrix::from_vec(rows, n, data).unwrap()
    };
    let mut net = Network::with_defaults(n);
    net.w_in = n_in.map(&mut weights);
    net.w_rec = weights(n);
    for (k, p) in Param::CURRENTS.iter().enumerate() {
        for (j, v) in net.params.get_mut(*p).iter_mut().enumerate() {
            *v *= 1.0 + 0.01 * ((j + k) % 7) as f64;
        }
    }
    net.i_scale = 2.5e-9;
    net.dt = 5e-4;
    if chip {
        net.variant = Variant::Chip;
        let mut c = ChipSynapses::defaults(n);
        c.gaba.i_tau[0] *= 1.5;
        c.w_rec_types = Some(
            (0..n * n)
                .map(|k| SynapseChoice {
                    nmda: k % 3 == 0,
                    shunt: k % 5 == 0,
                })
                .collect(),
        );
        net.chip = Some(c);
    }
    net
}

fn quantized(net: &Network, cores: usize) -> QuantizedFile {
    let n = net.neurons();
    let core_map: Vec<usize> = (0..n).map(|j| j * cores / n.max(1)).collect();
    let quant = |m: &Matrix, which| {
        let masks = m
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, &w)| if w == 0.0 { 0 } else { (i % 15 + 1) as u8 })
            .collect();
        let signs = m.as_slice().iter().map(|&w| w.signum() as i8).collect();
        QuantMatrix::new(which, m.rows(), n, masks, signs).unwrap()
    };
    let base: Vec<[f64; 4]> = (0..cores)
        .map(|c| [1e-9, 2e-9 + c as f64 * 1e-10, 4.1e-9, 0.0])
        .collect();
    let weights = QuantizedWeights::new(
        core_map,
        base.clone(),
        net.w_in.as_ref().map(|m| quant(m, WeightMatrix::Input)),
        quant(&net.w_rec, WeightMatrix::Recurrent),
        net.i_scale,
    )
    .unwrap();
    let entries = base
        .iter()
        .enumerate()
        .map(|(c, &iw)| CoreEntry {
            core: c,
            weights: 3 * c,
            iw,
            iw_fitted: (c % 2 == 0).then_some([1.1e-9, 2.0e-9, 4.0e-9, 1e-12]),
            error_before_snap: Some(0.05),
            error_after_snap: (c % 2 == 0).then_some(0.06),
        })
        .collect();
    let mut f = QuantizedFile::new(weights, entries, net);
    f.method = Some(QuantMethod::Autoencoder);
    f.relative_rms_error = Some(0.123);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// network JSON -> text -> network JSON is the identity, in dense and sparse form, with extra keys.
    #[test]
    fn network_files_round_trip(
        n in 1usize..90,
        n_in in proptest::option::of(0usize..12),
        density in prop_oneof![Just(0.0), Just(0.05), Just(1.0)],
        chip: bool,
        with_map: bool,
        seed: u64,
    ) {
        let mut f = NetworkFile::new(network(n, n_in, density, chip, seed));
        if with_map {
            f.core_map = Some((0..n).map(|j| j % 3).collect());
            f.method = Some(QuantMethod::Alternating);
            f.seed = Some(seed);
        }
        f.extra.insert("comment".into(), serde_json::json!({"by": "a user", "n": [1, 2]}));
        let text = write_network(&f);
        let back = read_network(&text).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(write_network(&back), text);
        prop_assert_eq!(back.unknown_keys().collect::<Vec<_>>(), vec!["comment"]);
    }

    /// quantize output -> text -> quantize output is the identity (the decoded weights and dendrites it
    /// also writes are derived, and checked on reading).
    #[test]
    fn quantized_files_round_trip(
        n in 1usize..90,
        n_in in proptest::option::of(0usize..12),
        density in prop_oneof![Just(0.0), Just(0.05), Just(0.8)],
        cores in 1usize..5,
        chip: bool,
        placed: bool,
        seed: u64,
    ) {
        let net = network(n, n_in, density, chip, seed);
        let mut f = quantized(&net, cores.min(n));
        if placed {
            f.places = Some((0..n).map(|j| NeuronPlace { chip: j / 256 % 4, core: 0, neuron: j % 256 }).collect());
        }
        let text = write_quantized(&f);
        let back = read_quantized(&text).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(write_quantized(&back), text.clone());
        // A quantize output is also the network JSON of the network the chip runs.
        let as_net = read_network(&text).unwrap();
        prop_assert_eq!(&as_net.network, &f.network());
    }

    /// mapping.json and tag allow-lists round trip.
    #[test]
    fn mappings_round_trip(
        neurons in proptest::collection::btree_set((0usize..4, 0usize..4, 0usize..256), 0..40),
        inputs in proptest::collection::vec(
            proptest::collection::vec((1i64..16, -7i64..=7, -7i64..=7, 0i64..2048), 0..3), 0..10),
        chip: bool,
        tags in proptest::collection::btree_map(0usize..16, proptest::collection::vec(0u16..2047, 0..20), 0..6),
    ) {
        let m = Mapping {
            iscale: 3e-9,
            dt: 2e-4,
            variant: if chip { Variant::Chip } else { Variant::Rockpool },
            neurons: neurons.into_iter().map(|(chip, core, neuron)| NeuronPlace { chip, core, neuron }).collect(),
            inputs: inputs.into_iter().map(|ds| ds.into_iter().map(|(c, x, y, t)| Destination {
                core: CoreMask::new(c).unwrap(),
                x_hop: Hop::new(x).unwrap(),
                y_hop: Hop::new(y).unwrap(),
                tag: Tag::new(t).unwrap(),
            }).collect()).collect(),
        };
        prop_assert_eq!(read_mapping(&write_mapping(&m)).unwrap(), m);
        prop_assert_eq!(read_tag_allow(&write_tag_allow(&tags)).unwrap(), tags);
    }

    /// Arbitrary text, and valid files with bytes replaced, are read or refused with an error; nothing
    /// panics.
    #[test]
    fn corrupted_files_never_panic(
        text in "\\PC{0,200}",
        edits in proptest::collection::vec((0usize..100_000, proptest::char::any()), 1..5),
    ) {
        let _ = read_network(&text);
        let _ = read_quantized(&text);
        let _ = read_mapping(&text);
        let _ = read_tag_allow(&text);
        let net = network(5, Some(3), 0.5, true, 1);
        for valid in [write_network(&NetworkFile::new(net.clone())), write_quantized(&quantized(&net, 2))] {
            let mut t: Vec<char> = valid.chars().collect();
            for (i, c) in &edits {
                let len = t.len();
                t[i % len] = *c;
            }
            let corrupted: String = t.into_iter().collect();
            let _ = read_network(&corrupted);
            let _ = read_quantized(&corrupted);
            let _ = is_quantized(&corrupted);
        }
    }
}

/// Large sparse matrices are written in the sparse form, small or dense ones as rows; both read alike.
#[test]
fn writers_choose_the_sparse_form_for_large_sparse_matrices() {
    let big = network(200, Some(10), 0.02, false, 7);
    let text = write_network(&NetworkFile::new(big.clone()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["w_rec"]["shape"] == serde_json::json!([200, 200]),
        "w_rec sparse"
    );
    assert!(v["w_in"].is_array(), "2000 entries: dense");
    let dense = network(200, None, 1.0, false, 7);
    let v: serde_json::Value =
        serde_json::from_str(&write_network(&NetworkFile::new(dense))).unwrap();
    assert!(v["w_rec"].is_array(), "a dense matrix stays dense");
    // The same matrix in both forms reads to the same network.
    let small = r#"{"w_rec": [[0, 1.5], [-2, 0]]}"#;
    let sparse = r#"{"w_rec": {"shape": [2, 2], "row": [1, 0], "col": [0, 1], "val": [-2, 1.5]}}"#;
    assert_eq!(read_network(small).unwrap(), read_network(sparse).unwrap());
}

fn error(text: &str) -> FormatError {
    read_network(text).unwrap_err()
}

/// Every kind of bad network file gets an error with the path of the value at fault.
#[test]
fn bad_network_files_name_the_path() {
    let e = error(r#"{"w_rec": [[1]], "variant": "chp"}"#);
    assert_eq!(e.path, "variant");
    assert!(matches!(&e.problem, Problem::UnknownName { found, .. } if found == "chp"));
    assert_eq!(
        e.to_string(),
        "`variant`: \"chp\" is not one of \"rockpool\", \"chip\""
    );
    let e = error(r#"{"w_rec": [[1]], "dt": -0.001}"#);
    assert_eq!(
        (e.path.as_str(), e.to_string().contains("above 0")),
        ("dt", true)
    );
    let e = error(r#"{"w_rec": [[1]], "dt": "1ms"}"#);
    assert_eq!(e.path, "dt");
    let e = error(r#"{"w_in": [[1, 2], [3]]}"#);
    assert_eq!(e.path, "w_in[1]");
    assert_eq!(
        e.problem,
        Problem::Ragged {
            row: 1,
            found: 1,
            expected: 2
        }
    );
    let e = error(r#"{"w_in": [[1, "x"]]}"#);
    assert_eq!(e.path, "w_in[0][1]");
    assert!(matches!(e.problem, Problem::Parse { .. }), "{e}");
    let e = error(r#"{"w_in": [[1, 2]], "w_rec": [[1, 2, 3]]}"#);
    assert_eq!(e.path, "w_rec");
    let e = error(r#"{"w_in": [[1, 2, 3]], "w_rec": [[1, 0], [0, 1]]}"#);
    assert_eq!(
        (e.path.as_str(), &e.problem),
        (
            "w_in",
            &Problem::Shape {
                found: (1, 3),
                expected: (1, 2)
            }
        )
    );
    let e = error(r#"{"w_rec": [[1]], "core_map": [0, 1]}"#);
    assert_eq!(e.path, "core_map");
    let e = error(r#"{"w_rec": [[1]], "core_map": [-1]}"#);
    assert_eq!(e.path, "core_map[0]");
    let e = error(r#"{"w_rec": [[1]], "method": "kmeans"}"#);
    assert!(e.to_string().contains("\"kmeans\""), "{e}");
    let e = error(r#"{"w_rec": [[1]], "iscale": -1}"#);
    assert_eq!(e.path, "iscale");
    let e = error(r#"{"w_rec": [[1, 0], [0, 1]], "Itau_mem": [1e-12]}"#);
    assert_eq!(
        (e.path.as_str(), &e.problem),
        (
            "Itau_mem",
            &Problem::Length {
                found: 1,
                expected: 2
            }
        )
    );
    let e = error(r#"{"w_rec": [[1, 0], [0, 1]], "Itau_mem": [1e-12, "a"]}"#);
    assert_eq!(e.path, "Itau_mem[1]");
    let e = error(r#"{"w_rec": [[1, 0], [0, 1]], "C_mem": -1}"#);
    assert!(matches!(e.problem, Problem::Network(_)), "{e}");
    let e = error(r#"{"w_rec": [[1e999]]}"#);
    assert!(e.path.starts_with("w_rec"), "{e}");
    assert!(error("[1]").problem.to_string().contains("expected"));
    assert!(matches!(error("{").problem, Problem::Parse { line: 1, .. }));
    assert_eq!(error("{}").problem, Problem::NoNeurons);
    assert!(matches!(
        error(r#"{"w_rec": [[1]]} x"#).problem,
        Problem::Parse { .. }
    ));
    // Sparse matrices.
    let e = error(r#"{"w_rec": {"shape": [2, 2], "row": [0, 2], "col": [0, 0], "val": [1, 1]}}"#);
    assert_eq!(
        (e.path.as_str(), &e.problem),
        (
            "w_rec.row[1]",
            &Problem::Index {
                list: "row",
                found: 2,
                limit: 2
            }
        )
    );
    let e = error(r#"{"w_rec": {"shape": [2, 2], "row": [0, 0], "col": [1, 1], "val": [1, 2]}}"#);
    assert_eq!(e.problem, Problem::Duplicate { first: 0 });
    let e = error(r#"{"w_rec": {"shape": [2, 2], "row": [0], "col": [1, 1], "val": [1]}}"#);
    assert_eq!(e.path, "w_rec.col");
    let e = error(r#"{"w_rec": {"shape": [2, 2], "row": [0], "col": [1]}}"#);
    assert_eq!(
        (e.path.as_str(), &e.problem),
        ("w_rec.val", &Problem::Missing)
    );
    let e = error(r#"{"w_rec": {"shape": [2, 2], "rows": [0]}}"#);
    assert!(e.to_string().contains("unknown key `rows`"), "{e}");
    // Hostile shapes are refused before anything is allocated.
    let e =
        error(r#"{"w_rec": {"shape": [1000000000, 1000000000], "row": [], "col": [], "val": []}}"#);
    assert!(matches!(e.problem, Problem::TooLarge { .. }), "{e}");
}

/// Bad quantize outputs and mappings name the path too.
#[test]
fn bad_quantized_files_and_mappings_name_the_path() {
    let q = |t: &str| read_quantized(t).unwrap_err();
    let base = r#""core_map": [0, 0], "cores": [{"core": 0, "iw": [1e-9, 0, 0, 0]}]"#;
    let e = q(&format!(
        r#"{{{base}, "w_rec_mask": [[0, 16], [0, 0]], "w_rec_sign": [[0, 1], [0, 0]]}}"#
    ));
    assert_eq!(e.path, "w_rec_mask[0][1]");
    let e = q(&format!(
        r#"{{{base}, "w_rec_mask": [[0, 1], [0, 0]], "w_rec_sign": [[0, 2], [0, 0]]}}"#
    ));
    assert_eq!(e.path, "w_rec_sign[0][1]");
    let e = q(&format!(r#"{{{base}, "w_rec_mask": [[0, 1], [0, 0]]}}"#));
    assert_eq!(
        (e.path.as_str(), &e.problem),
        ("w_rec_sign", &Problem::Missing)
    );
    let e = q(&format!(
        r#"{{{base}, "w_rec_mask": [[0, 1], [0, 0]], "w_rec_sign": [[0, 1], [0, 0]], "w_rec_dendrite": [["none", "gaba"], ["none", "none"]]}}"#
    ));
    assert_eq!(e.path, "w_rec_dendrite[0][1]");
    let e = q(&format!(
        r#"{{{base}, "w_rec_mask": [[0, 1], [0, 0]], "w_rec_sign": [[0, 1], [0, 0]], "w_rec_dendrite": [["none", "ampx"], ["none", "none"]]}}"#
    ));
    assert_eq!(e.path, "w_rec_dendrite[0][1]");
    let e = q(r#"{"core_map": [0, 1], "cores": [{"core": 2, "iw": [0, 0, 0, 0]}]}"#);
    assert_eq!(e.path, "cores[0].core");
    let e = q(r#"{"core_map": [0], "cores": [{"core": 0, "iw": [0, 0, 0]}]}"#);
    assert_eq!(e.path, "cores[0].iw");
    let e = q(r#"{"core_map": [0], "cores": [{"core": 0, "iw": [0, 0, 0, -1]}]}"#);
    assert_eq!(e.path, "cores[0].iw[3]");
    let e = q(
        r#"{"core_map": [0], "cores": [{"core": 0, "iw": [0, 0, 0, 0]}, {"core": 0, "iw": [0, 0, 0, 0]}]}"#,
    );
    assert_eq!(e.problem, Problem::Duplicate { first: 0 });
    let e = q(r#"{"cores": []}"#);
    assert_eq!(
        (e.path.as_str(), &e.problem),
        ("core_map", &Problem::Missing)
    );
    // mapping.json
    let m = |t: &str| read_mapping(t).unwrap_err();
    let e = m(
        r#"{"neurons": [{"chip": 0, "core": 0, "neuron": 1}, {"chip": 0, "core": 0, "neuron": 1}]}"#,
    );
    assert_eq!(
        (e.path.as_str(), &e.problem),
        ("neurons[1]", &Problem::Duplicate { first: 0 })
    );
    let e = m(r#"{"neurons": [{"chip": 0, "core": 4, "neuron": 1}]}"#);
    assert_eq!(e.path, "neurons[0].core");
    let e = m(
        r#"{"neurons": [], "inputs": [{"destinations": [{"core": [true, false, false, false], "x_hop": 9, "y_hop": 0, "tag": 3}]}]}"#,
    );
    assert_eq!(e.path, "inputs[0].destinations[0].x_hop");
    let e = m(r#"{"neurons": [], "variant": "ship"}"#);
    assert_eq!(e.path, "variant");
    let e = read_tag_allow(r#"{"0:5": [1]}"#).unwrap_err();
    assert_eq!(e.path, "0:5");
    let e = read_tag_allow(r#"{"0:1": [2047]}"#).unwrap_err();
    assert_eq!(e.path, "0:1[0]");
}

/// The per-core entries follow the weights: a file made without a report gets one entry per core used,
/// with the weights' base currents, and reads back equal.
#[test]
fn core_entries_follow_the_weights() {
    let net = network(6, Some(2), 0.5, false, 9);
    let q = quantized(&net, 2);
    let bare = QuantizedFile::new(q.weights.clone(), Vec::new(), &net);
    assert_eq!(
        bare.cores,
        vec![
            CoreEntry::new(0, q.weights.base_currents()[0]),
            CoreEntry::new(1, q.weights.base_currents()[1])
        ]
    );
    assert_eq!(read_quantized(&write_quantized(&bare)).unwrap(), bare);
    // A stale report's currents are not written: the weights' are.
    let mut stale = q.clone();
    stale.cores[1].iw = [1.0; 4];
    assert_eq!(
        read_quantized(&write_quantized(&stale)).unwrap().weights,
        q.weights
    );
}

/// Found by fuzzing: a matrix of rows without columns, and a quantize output whose `cores` list misses
/// a core the core map uses, both read back equal after writing.
#[test]
fn fuzzing_findings_round_trip() {
    let f = read_network(r#"{"w_in": [[]], "comment": 0}"#).unwrap();
    assert_eq!(
        f.network.w_in.as_ref().map(|m| (m.rows(), m.cols())),
        Some((1, 0))
    );
    assert_eq!(read_network(&write_network(&f)).unwrap(), f);
    let q = read_quantized(
        r#"{"core_map": [1, 0], "cores": [{"core": 0, "iw": [1e-9, 0, 0, 0]}], "w_rec_mask": [[0, 1], [0, 0]], "w_rec_sign": [[0, 1], [0, 0]]}"#,
    )
    .unwrap();
    assert_eq!(
        q.cores.iter().map(|c| c.core).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(read_quantized(&write_quantized(&q)).unwrap(), q);
}

/// `is_quantized` tells the two kinds of file apart without reading their matrices.
#[test]
fn quantized_files_are_told_apart() {
    let net = network(4, Some(2), 0.5, false, 3);
    assert!(!is_quantized(&write_network(&NetworkFile::new(net.clone()))).unwrap());
    assert!(is_quantized(&write_quantized(&quantized(&net, 1))).unwrap());
}

/// A random architecture of up to 4 populations (each fed by the input or an earlier one, some extra
/// connections) and its flattened network with random weights inside the blocks (some of them zero).
fn architecture_network(seed: u64, chip: bool) -> (dynap_model::Architecture, Network) {
    use dynap_model::{Architecture, Connection, Population, Source};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let count = rng.gen_range(1..=4);
    let pops: Vec<Population> = (0..count)
        .map(|k| {
            let mut p = Population::new(format!("pop \"{k}\" é"), rng.gen_range(1..=12));
            p.recurrent = rng.gen_bool(0.5);
            if rng.gen_bool(0.5) {
                p.params.insert(Param::ItauMem, 7e-12 + 1e-13 * k as f64);
                p.params.insert(Param::CSyn, 20e-12);
            }
            p
        })
        .collect();
    let mut conns = Vec::new();
    for k in 0..count {
        let from = if k == 0 || rng.gen_bool(0.5) {
            Source::Input
        } else {
            Source::Population(rng.gen_range(0..k))
        };
        conns.push(Connection { from, to: k });
    }
    for _ in 0..rng.gen_range(0..3) {
        let (a, b) = (rng.gen_range(0..count), rng.gen_range(0..count));
        let c = Connection {
            from: Source::Population(a),
            to: b,
        };
        if a != b && !conns.contains(&c) {
            conns.push(c);
        }
    }
    let a = Architecture::new(rng.gen_range(1..=6), pops, conns, rng.gen_range(0..count)).unwrap();
    // Placed in reverse order, half of the time.
    let a = if rng.gen_bool(0.5) {
        let mut first = vec![0; count];
        let mut next = 0;
        for k in (0..count).rev() {
            first[k] = next;
            next += a.populations()[k].size.div_ceil(256);
        }
        a.with_first_cores(&first).unwrap()
    } else {
        a
    };
    let mut net = a.network(if chip {
        Variant::Chip
    } else {
        Variant::Rockpool
    });
    let masks = a.masks();
    let mut fill = |m: &mut Matrix, flags: &[bool]| {
        for (w, &allowed) in m.as_mut_slice().iter_mut().zip(flags) {
            if allowed && rng.gen_bool(0.7) {
                *w = rng.r#gen::<f64>() * 4.0 - 2.0;
            }
        }
    };
    fill(net.w_in.as_mut().unwrap(), &masks.w_in);
    fill(&mut net.w_rec, &masks.w_rec);
    // A value not shared by a whole population is no population's parameter.
    if a.populations()[0].size >= 2 {
        net.params.i_pulse[0] *= 1.25;
    }
    (a, net)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A network JSON with an architecture reads back equal, and writes the same text.
    #[test]
    fn architectures_round_trip(seed: u64, chip: bool) {
        let (a, net) = architecture_network(seed, chip);
        let mut f = NetworkFile::new(net);
        f.architecture = Some(a);
        f.extra.insert("comment".into(), serde_json::json!("kept"));
        let text = write_network(&f);
        let back = read_network(&text).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(write_network(&back), text);
        prop_assert_eq!(back.unknown_keys().collect::<Vec<_>>(), vec!["comment"]);
    }
}

/// The architecture as written: its keys, offsets, and names for sources.
#[test]
fn architecture_json_is_as_documented() {
    use dynap_model::{Architecture, Connection, Population, Source};
    let mut hidden = Population::new("hidden", 2);
    hidden.recurrent = true;
    let a = Architecture::new(
        3,
        vec![hidden, Population::new("out", 1)],
        vec![
            Connection {
                from: Source::Input,
                to: 0,
            },
            Connection {
                from: Source::Population(0),
                to: 1,
            },
        ],
        1,
    )
    .unwrap();
    let mut f = NetworkFile::new(a.network(Variant::Rockpool));
    f.architecture = Some(a);
    let text = write_network(&f);
    assert!(
        text.contains(
            r#""architecture": {"inputs":3,"populations":[{"name":"hidden","size":2,"recurrent":true,"offset":0,"first_core":0},{"name":"out","size":1,"recurrent":false,"offset":2,"first_core":1}],"connections":[{"from":"input","to":"hidden"},{"from":"hidden","to":"out"}],"readout":"out"}"#
        ),
        "{text}"
    );
    // `recurrent` and `offset` may be left out; `null` is no architecture.
    let short = r#"{"w_in": [[0, 0, 0]], "architecture": {"inputs": 1, "populations": [{"name": "a", "size": 3}], "connections": [{"from": "input", "to": "a"}], "readout": "a"}}"#;
    let f = read_network(short).unwrap();
    let a = f.architecture.unwrap();
    assert_eq!((a.neurons(), a.populations()[0].recurrent), (3, false));
    // A parameter shared by a population's neurons, not the default, is its parameter.
    let uniform = short.replace(
        r#""w_in""#,
        r#""Itau_mem": 4e-12, "Ipulse": [1e-8, 1e-8, 2e-8], "w_in""#,
    );
    let a = read_network(&uniform).unwrap().architecture.unwrap();
    assert_eq!(
        a.populations()[0].params.iter().collect::<Vec<_>>(),
        vec![(&Param::ItauMem, &4e-12)]
    );
    // A placement: population `a` on core 5; two populations on one core are refused at the path.
    let placed = short.replace(r#""size": 3}"#, r#""size": 3, "first_core": 5}"#);
    let a = read_network(&placed).unwrap().architecture.unwrap();
    assert_eq!(a.core_map(), vec![5, 5, 5]);
    let two = r#"{"w_in": [[0, 0]], "architecture": {"inputs": 1, "populations": [{"name": "a", "size": 1, "first_core": 2}, {"name": "b", "size": 1, "first_core": 2}], "connections": [{"from": "input", "to": "a"}, {"from": "input", "to": "b"}], "readout": "b"}}"#;
    let e = read_network(two).unwrap_err();
    assert_eq!(e.path, "architecture.populations[1].first_core", "{e}");
    let none = read_network(r#"{"w_rec": [[0]], "architecture": null}"#).unwrap();
    assert_eq!(none.architecture, None);
    assert!(none.extra.is_empty());
}

/// Every kind of bad architecture gets an error at its path.
#[test]
fn bad_architectures_name_the_path() {
    // Two inputs, hidden (2, recurrent) and out (1): w_in [2][3], w_rec [3][3].
    let file = |arch: &str, w_in: &str, w_rec: &str| {
        format!(r#"{{"w_in": {w_in}, "w_rec": {w_rec}, "architecture": {arch}}}"#)
    };
    let w_in = "[[1, 1, 0], [1, 1, 0]]";
    let w_rec = "[[1, 1, 2], [1, 1, 2], [0, 0, 0]]";
    let arch = |inputs: &str, pops: &str, conns: &str, readout: &str| {
        format!(
            r#"{{"inputs": {inputs}, "populations": {pops}, "connections": {conns}, "readout": {readout}}}"#
        )
    };
    let pops = r#"[{"name": "hidden", "size": 2, "recurrent": true}, {"name": "out", "size": 1}]"#;
    let conns = r#"[{"from": "input", "to": "hidden"}, {"from": "hidden", "to": "out"}]"#;
    let good = file(&arch("2", pops, conns, r#""out""#), w_in, w_rec);
    read_network(&good).unwrap();
    let bad = |arch: String| error(&file(&arch, w_in, w_rec));
    // Names.
    let e = bad(arch(
        "2",
        pops,
        r#"[{"from": "input", "to": "hidden"}, {"from": "hiden", "to": "out"}]"#,
        r#""out""#,
    ));
    assert_eq!(
        (e.path.as_str(), &e.problem),
        (
            "architecture.connections[1].from",
            &Problem::NoSuchPopulation {
                name: "hiden".into()
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "`architecture.connections[1].from`: no population named \"hiden\""
    );
    let e = bad(arch("2", pops, conns, r#""output""#));
    assert_eq!(e.path, "architecture.readout");
    // The model's rules, at the place they are about.
    let e = bad(arch(
        "2",
        r#"[{"name": "hidden", "size": 2, "recurrent": true}, {"name": "hidden", "size": 1}]"#,
        conns,
        r#""hidden""#,
    ));
    assert_eq!(e.path, "architecture.populations[1].name");
    assert!(matches!(e.problem, Problem::Network(_)), "{e}");
    let e = bad(arch(
        "2",
        pops,
        r#"[{"from": "input", "to": "hidden"}, {"from": "hidden", "to": "out"}, {"from": "hidden", "to": "out"}]"#,
        r#""out""#,
    ));
    assert_eq!(e.path, "architecture.connections[2]");
    assert!(e.to_string().contains("repeats connection 1"), "{e}");
    let e = bad(arch(
        "2",
        pops,
        r#"[{"from": "input", "to": "hidden"}]"#,
        r#""out""#,
    ));
    assert_eq!(e.path, "architecture.populations[1]");
    assert!(e.to_string().contains("not reached"), "{e}");
    let e = bad(arch(
        "2",
        r#"[{"name": "hidden", "size": 2, "recurrent": "yes"}, {"name": "out", "size": 1}]"#,
        conns,
        r#""out""#,
    ));
    assert_eq!(e.path, "architecture.populations[0].recurrent");
    let e = bad(arch(
        "2",
        r#"[{"name": "hidden", "size": 2, "recurrent": true, "tau": 1}, {"name": "out", "size": 1}]"#,
        conns,
        r#""out""#,
    ));
    assert_eq!(e.path, "architecture.populations[0].tau");
    assert!(matches!(e.problem, Problem::UnknownName { .. }), "{e}");
    let e = bad(arch("-1", pops, conns, r#""out""#));
    assert_eq!(e.path, "architecture.inputs");
    let e = bad(r#"{"inputs": 2, "populations": []}"#.into());
    assert_eq!(
        (e.path.as_str(), &e.problem),
        ("architecture.connections", &Problem::Missing)
    );
    // Against the matrices.
    let e = bad(arch("3", pops, conns, r#""out""#));
    assert_eq!(
        (e.path.as_str(), &e.problem),
        (
            "architecture.inputs",
            &Problem::Count {
                found: 3,
                expected: 2,
                of: "the rows of `w_in`"
            }
        )
    );
    let e = bad(arch(
        "2",
        r#"[{"name": "hidden", "size": 2, "recurrent": true}, {"name": "out", "size": 2}]"#,
        conns,
        r#""out""#,
    ));
    assert_eq!(e.path, "architecture.populations");
    let e = bad(arch(
        "2",
        r#"[{"name": "hidden", "size": 2, "recurrent": true}, {"name": "out", "size": 1, "offset": 1}]"#,
        conns,
        r#""out""#,
    ));
    assert_eq!(
        (e.path.as_str(), &e.problem),
        (
            "architecture.populations[1].offset",
            &Problem::Count {
                found: 1,
                expected: 2,
                of: "the sum of the sizes before it"
            }
        )
    );
    // A weight outside the blocks: input -> out, and out -> hidden.
    let a = arch("2", pops, conns, r#""out""#);
    let e = error(&file(&a, "[[1, 1, 0], [1, 1, 0.5]]", w_rec));
    assert_eq!(
        (e.path.as_str(), &e.problem),
        ("w_in[1][2]", &Problem::OutsideArchitecture { value: 0.5 })
    );
    let e = error(&file(&a, w_in, "[[1, 1, 2], [1, 1, 2], [0, -3, 0]]"));
    assert_eq!(e.path, "w_rec[2][1]");
    assert_eq!(
        e.to_string(),
        "`w_rec[2][1]`: -3, but the architecture allows no connection here (it must be 0)"
    );
    // Without input weights, an architecture's channels are none.
    let e = error(&format!(r#"{{"w_rec": {w_rec}, "architecture": {a}}}"#));
    assert_eq!(e.path, "architecture.inputs");
}
