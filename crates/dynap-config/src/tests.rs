//! Tests of the configuration: encodings, validation rules, mapping and reverse mapping.

use super::*;
use dynap_model::{NeuronParams, QuantMatrix, QuantizedWeights, Variant, WeightMatrix};
use proptest::prelude::*;

fn tag(t: i64) -> Tag {
    Tag::new(t).unwrap()
}

fn dest(core: u8, x: i64, y: i64, t: i64) -> Destination {
    Destination {
        core: CoreMask::new(i64::from(core)).unwrap(),
        x_hop: Hop::new(x).unwrap(),
        y_hop: Hop::new(y).unwrap(),
        tag: tag(t),
    }
}

fn qm(which: WeightMatrix, rows: usize, cols: usize, m: &[u8], s: &[i8]) -> QuantMatrix {
    QuantMatrix::new(which, rows, cols, m.to_vec(), s.to_vec()).unwrap()
}

/// Rockpool's worked single-core example (hardware.md section 4.8).
fn worked_example() -> (QuantizedWeights, NeuronParams) {
    let w_in = qm(
        WeightMatrix::Input,
        3,
        3,
        &[5, 0, 3, 0, 0, 0, 8, 1, 0],
        &[1, 0, -1, 0, 0, 0, 1, -1, 0],
    );
    let w_rec = qm(
        WeightMatrix::Recurrent,
        3,
        3,
        &[0, 2, 0, 15, 0, 0, 0, 0, 4],
        &[0, 1, 0, -1, 0, 0, 0, 0, 1],
    );
    let q = QuantizedWeights::new(
        vec![0, 0, 0],
        vec![[1e-9, 2e-9, 4e-9, 8e-9]],
        Some(w_in),
        w_rec,
        1e-8,
    )
    .unwrap();
    (q, NeuronParams::defaults(3))
}

fn syn(d: Dendrite, w: u8, t: i64) -> Synapse {
    Synapse {
        dendrite: d,
        weight: WeightMask::new(i64::from(w)).unwrap(),
        tag: tag(t),
        ..Synapse::default()
    }
}

#[test]
fn the_worked_example_maps_as_rockpool_does() {
    let (q, p) = worked_example();
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let core = &m.config.chips[0].cores[0];
    let cam = |n: usize| -> Vec<Synapse> {
        core.neurons[n]
            .synapses
            .iter()
            .copied()
            .filter(Synapse::is_active)
            .collect()
    };
    // Weight masks: bit i = W_i, LSB first (5 = [1,0,1,0]).
    assert_eq!(
        cam(0),
        vec![
            syn(Dendrite::Ampa, 5, 0),
            syn(Dendrite::Ampa, 8, 2),
            syn(Dendrite::Gaba, 15, 4)
        ]
    );
    assert_eq!(
        cam(1),
        vec![syn(Dendrite::Gaba, 1, 2), syn(Dendrite::Ampa, 2, 3)]
    );
    assert_eq!(
        cam(2),
        vec![syn(Dendrite::Gaba, 3, 0), syn(Dendrite::Ampa, 4, 5)]
    );
    for n in 0..3 {
        assert_eq!(core.neurons[n].destinations[0], dest(15, -7, -7, n as i64));
        assert_eq!(core.neurons[n].destinations[1], dest(1, 0, 0, 3 + n as i64));
        assert!(!core.neurons[n].destinations[2].is_used());
    }
    assert_eq!(core.neurons[3].destinations[0], dest(15, -7, -7, 3));
    assert!(!core.neurons[3].destinations[1].is_used());
    assert_eq!(
        m.mapping.inputs,
        vec![vec![dest(1, 0, 0, 0)], vec![], vec![dest(1, 0, 0, 2)]]
    );
    // The base weights' codes are Rockpool's (hardware.md section 4.2).
    let code = |name: &str| {
        let p = get_param(&core.parameters, name).unwrap();
        (p.coarse, p.fine)
    };
    assert_eq!(code("SYAM_W0_P"), (3, 31));
    assert_eq!(code("SYAM_W3_P"), (4, 31));
    assert_eq!(code("SOIF_LEAK_N"), (0, 29));
    assert_eq!(code("DEAM_EGAIN_P"), (3, 92));
    assert_eq!(core.parameters.len(), 23);
    // Default Idc = 5e-13 > 0: the DC latch is on for the three neurons, off for the others.
    assert!(core.neurons[2].latches[0] && !core.neurons[3].latches[0]);
    // And back, exactly (base weights as the bias generator makes them).
    let u = unmap(
        &m.config,
        Some(&m.mapping),
        1.0,
        1.0,
        &dynap_model::BiasGenerator::dynapse2(),
    )
    .unwrap();
    assert_eq!(u.weights.w_in(), q.w_in());
    assert_eq!(u.weights.w_rec(), q.w_rec());
    assert_eq!(u.weights.core_map(), q.core_map());
    assert!((u.weights.base_currents()[0][0] - 1.0043e-9).abs() < 1e-13);
    assert_eq!(u.network.i_scale, 1e-8);
}

#[test]
fn json_round_trips_byte_for_byte_and_reads_samna_variants() {
    let (q, p) = worked_example();
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let text = to_json(&m.config);
    let back = from_json(&text).unwrap();
    assert_eq!(back, m.config);
    assert_eq!(to_json(&back), text);
    assert_readers_agree(&text);
    // Lists as arrays, keys in another order, the other spelling, unknown keys kept.
    let variant = r#"{"value0": {"chips": [{"cores": [{"neurons": [{"destinations": [{"tag": 5, "yHop": 0,
        "xHop": 1, "core": [true, false, false, false]}], "synapses": {"value1": {"tag": 9, "dendrite": 512,
        "weight": [false, true, false, false]}}}], "parameters": [{"key": "SOIF_LEAK_N", "value": {"type": 78,
        "coarseValue": 2, "fineValue": 7, "_initialType": "N"}}], "sadcEnables": {"SoifRefractory": true},
        "futureField": {"a": 1}}], "somethingNew": [1, 2]}], "rootExtra": true}}"#;
    let c = from_json(variant).unwrap();
    assert_readers_agree(variant);
    let n = &c.chips[0].cores[0].neurons[0];
    assert_eq!(n.destinations[0], dest(1, 1, 0, 5));
    assert_eq!(n.synapses[1], syn(Dendrite::Gaba, 2, 9));
    let leak = get_param(&c.chips[0].cores[0].parameters, "SOIF_LEAK_N").unwrap();
    assert_eq!(
        (leak.kind, leak.coarse, leak.fine, leak.initial_type),
        ('N', 2, 7, 1)
    );
    assert!(c.chips[0].cores[0].sadc_enables[1]);
    let text = to_json(&c);
    assert!(text.contains(r#""futureField":{"a":1}"#));
    assert!(text.contains(r#""somethingNew":[1,2]"#));
    assert!(text.contains(r#""rootExtra":true"#));
    assert!(text.contains(r#""SoifRefectory":true"#));
    assert_eq!(to_json(&from_json(&text).unwrap()), text);
}

#[test]
fn json_reports_every_bad_value_with_its_path() {
    let bad = r#"{"value0": {"chips": [{"cores": {"value1": {"neurons": {"value17": {"synapses": {"value3":
        {"tag": 2048, "dendrite": 3}}, "destinations": {"value0": {"xHop": 9, "tag": 1}}}},
        "parameters": [{"key": "SOIF_DC_P", "value": {"type": 81, "coarseValue": 6, "fineValue": 300}}]}}}]}}"#;
    let problems: Vec<String> = from_json(bad)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        vec![
            "chips[0].cores[1].neurons[17].synapses[3].dendrite: dendrite = 3 is outside {0, 128, 256, 512, 1024}",
            "chips[0].cores[1].neurons[17].synapses[3].tag: tag = 2048 is outside 0..=2047",
            "chips[0].cores[1].neurons[17].destinations[0].xHop: hop = 9 is outside -7..=7",
            "chips[0].cores[1].parameters.SOIF_DC_P.type: expected 78 ('N') or 80 ('P'), found 81",
            "chips[0].cores[1].parameters.SOIF_DC_P.coarseValue: coarse = 6 is outside 0..=5",
            "chips[0].cores[1].parameters.SOIF_DC_P.fineValue: fine = 300 is outside 0..=255",
        ]
    );
    let e = from_json("{\"value0\": {\"chips\": [}}").unwrap_err();
    assert!(e[0].to_string().starts_with("line 1, column"), "{:?}", e);
    let too_many = format!(
        "{{\"value0\":{{\"chips\":[{{\"cores\":[{{\"neurons\":[{{\"synapses\":[{}]}}]}}]}}]}}}}",
        vec!["{}"; 65].join(",")
    );
    assert_eq!(
        from_json(&too_many).unwrap_err()[0].to_string(),
        "chips[0].cores[0].neurons[0].synapses: 65 entries, at most 64"
    );
}

/// Reads `text` with both JSON readers: the streaming reader must accept it and give the tree
/// reader's configuration.
fn assert_readers_agree(text: &str) -> Configuration {
    let tree = crate::json::read_tree(text).unwrap();
    let streamed = crate::json::read_streaming(text);
    assert!(
        streamed.is_some(),
        "the streaming reader left a text the tree reader accepts"
    );
    // (Not `assert_eq!`: a full-size configuration's `Debug` is megabytes.)
    assert!(
        streamed.as_ref() == Some(&tree),
        "the readers read different configurations"
    );
    tree
}

/// A samna text that uses every field the reader models and every shape it tolerates: `valueN`
/// objects and arrays, partial arrays, keys out of order, both sADC spellings, a parameter entry without
/// a value, integer masks and booleans, sADC groups with gaps, unmodelled sub-trees and keys at every
/// level that keeps them.
const RICH_JSON: &str = r#"{"value0":{"chips":[{"cores":{"value0":{"neurons":{"value3":{"synapses":{"value0":{"dendrite":1024,"stp":false,"weight":{"value0":true,"value1":false,"value2":true,"value3":false},"preciseDelay":false,"mismatchedDelay":true,"tag":17},"value63":{"dendrite":512,"weight":5,"tag":2047,"note":"x"}},"destinations":{"value0":{"core":{"value0":true,"value1":false,"value2":false,"value3":true},"xHop":-1,"yHop":0,"tag":17},"value3":{"core":[false,true],"xHop":7,"yHop":-7,"tag":0}},"latchSoDc":true,"latchDeMux":1,"latchHoActive":false},"value255":{"latchSoifType":true,"unknownLatch":[1,{"a":2}]}},"neuronMonitoringOn":true,"monitoredNeuron":255,"parameters":[{"key":"SOIF_LEAK_N","value":{"type":78,"coarseValue":1,"fineValue":20,"_address":12,"_cookie":3,"_initialType":1,"_switchableType":false}},{"value":{"type":"P","coarseValue":5,"fineValue":255,"_initialType":"P"},"key":"SOIF_DC_P"},{"key":"SOIF_GAIN_N"},{"key":"SOIF_REFR_N","value":{"coarseValue":true,"_switchableType":1,"comment":"kept out"}}],"sadcEnables":{"SoifMem":true,"SoifRefectory":false,"SoifRefractory":true,"SohoDegain":true},"enableSyawStdbufAn":true,"enablePulseExtenderMonitor1":false,"enablePulseExtenderMonitor2":true,"_id":0,"_cookie":-5,"coreExtra":{"b":[1,2.5,"x\u00e9"],"a":null}},"value2":{"neurons":[{},{"synapses":[{"tag":1,"dendrite":128,"weight":[true,true,true,true]}]}],"parameters":{"SYAM_W0_P":{"type":80,"coarseValue":0,"fineValue":1}},"sadcEnables":{"SoifRefractory":true},"_id":true}},"globalParameters":[{"key":"R2R_BUFFER_CCB_N","value":{"type":78,"coarseValue":3,"fineValue":7,"_address":18446744073709551615}}],"sharedParameters01":[],"sharedParameters23":[{"key":"PG_BUF_N","value":{"coarseValue":2,"fineValue":9}}],"sadcGroupParameters01":{"value0":[],"value5":[{"key":"X_N","value":{"type":78,"coarseValue":0,"fineValue":0}}]},"sadcGroupParameters23":[[],[{"key":"Y_P"}]],"sadcEnables":{"NccfExtinViGroup0Pg1":true,"NccfExtinViGroup2Pg0":false},"dvsIf":{"dropEvents":false,"dvsMode":0,"poolingShift":{"x":0,"y":1e2}},"bioamps":{"gain":1,"route":{}},"enablePg0ReferenceMonitor":true,"enablePg1ReferenceMonitor":false,"paramGen0Powerdown":0,"paramGen1Powerdown":true,"chipExtra":[1,{"z":true}]},{"cores":[]}],"rootExtra":{"k":"v"}},"unused":[1,2]}"#;

#[test]
fn the_streaming_reader_takes_every_tolerated_shape() {
    let c = assert_readers_agree(RICH_JSON);
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(RICH_JSON).unwrap(),
    )
    .unwrap();
    assert_eq!(assert_readers_agree(&pretty), c);
    let core = &c.chips[0].cores[0];
    assert_eq!(core.neurons[3].synapses[63], syn(Dendrite::Gaba, 5, 2047));
    assert_eq!(core.neurons[3].destinations[3], dest(2, 7, -7, 0));
    assert!(
        !core.sadc_enables[1],
        "SoifRefectory is read before its other spelling"
    );
    assert!(
        c.chips[0].cores[2].sadc_enables[1],
        "SoifRefectory came from its other spelling"
    );
    let gain = get_param(&core.parameters, "SOIF_GAIN_N").unwrap();
    assert_eq!((gain.initial_type, gain.switchable_type), (1, false));
    let refr = get_param(&core.parameters, "SOIF_REFR_N").unwrap();
    assert_eq!(
        (refr.coarse, refr.initial_type, refr.switchable_type),
        (1, 0, true)
    );
    assert_eq!(c.chips[0].sadc_group_parameters01.len(), 6);
    assert_eq!(c.chips[0].sadc_group_parameters23.len(), 2);
    assert_eq!(
        c.chips[0].dvs_if,
        r#"{"dropEvents":false,"dvsMode":0,"poolingShift":{"x":0,"y":100.0}}"#
    );
    assert_eq!(
        core.extra,
        vec![(
            "coreExtra".to_owned(),
            r#"{"b":[1,2.5,"xé"],"a":null}"#.to_owned()
        )]
    );
    assert_eq!(
        c.extra,
        vec![("rootExtra".to_owned(), r#"{"k":"v"}"#.to_owned())]
    );
    // Shapes left to the tree reader, which still reads them.
    for text in [
        r#"{"chips":[{}]}"#,
        r#"{"value0":{"chips":{"value1":{}}}}"#,
        r#"{"value0":{"chips":[{"cores":[{"_id":1,"_id":2}]}]}}"#,
        r#"{"value0":{"chips":[{"x":1,"x":2}]}}"#,
    ] {
        assert_eq!(crate::json::read_streaming(text), None, "{text}");
        assert!(from_json(text).is_ok(), "{text}");
    }
}

/// The spans of `text`'s scalar tokens (strings, numbers, literals), in order.
fn scalar_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
            }
            b'-' | b'0'..=b'9' => {
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
            }
            b'a'..=b'z' => {
                while i < b.len() && b[i].is_ascii_lowercase() {
                    i += 1;
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        spans.push((start, i));
    }
    spans
}

/// Corrupts `text`: a scalar token replaced by a value at or beyond a limit, of another type, or by
/// another key's name (a key given twice, a key renamed), or one character replaced.
fn corrupt(text: &str, rng: &mut rand_chacha::ChaCha8Rng) -> String {
    use rand::Rng;
    const TOKENS: [&str; 58] = [
        "0",
        "1",
        "2",
        "-1",
        "3",
        "5",
        "6",
        "7",
        "8",
        "-7",
        "-8",
        "15",
        "16",
        "78",
        "80",
        "81",
        "128",
        "255",
        "256",
        "512",
        "1024",
        "2047",
        "2048",
        "1.0",
        "-0",
        "1e400",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "true",
        "false",
        "null",
        "\"N\"",
        "\"P\"",
        "\"x\"",
        "[]",
        "{}",
        "[true,false,true,true,false]",
        "{\"value4\":true}",
        "[{}]",
        "\"value0\"",
        "\"value9\"",
        "\"value01\"",
        "\"value+1\"",
        "\"value256\"",
        "\"key\"",
        "\"tag\"",
        "\"t\\u0061g\"",
        "\"value\"",
        "\"chips\"",
        "\"cores\"",
        "\"neurons\"",
        "\"synapses\"",
        "\"SoifRefectory\"",
        "\"SoifRefractory\"",
        "\"_initialType\"",
        "\"type\"",
        "\"\\ud800\"",
    ];
    let mut t = text.to_owned();
    for _ in 0..rng.gen_range(1..3) {
        if rng.gen_bool(0.8) {
            let spans = scalar_spans(&t);
            let (a, b) = spans[rng.gen_range(0..spans.len())];
            t.replace_range(a..b, TOKENS[rng.gen_range(0..TOKENS.len())]);
        } else {
            let i = rng.gen_range(0..t.len());
            if t.is_char_boundary(i) && t.is_char_boundary(i + 1) {
                let c = b"{}[]:,\"0159-.etnx "[rng.gen_range(0..18)];
                t.replace_range(i..i + 1, std::str::from_utf8(&[c]).unwrap());
            }
        }
    }
    t
}

#[test]
fn corrupted_texts_read_as_the_tree_reader_reads_them() {
    use rand::SeedableRng;
    let small = r#"{"value0":{"chips":[{"cores":{"value0":{"neurons":{"value3":{"synapses":{"value0":{"dendrite":1024,"weight":{"value0":true,"value1":false,"value2":false,"value3":false},"tag":17}},"destinations":{"value0":{"core":{"value0":true,"value1":false,"value2":false,"value3":false},"xHop":0,"yHop":0,"tag":17}}}},"parameters":[{"key":"SOIF_LEAK_N","value":{"type":78,"coarseValue":1,"fineValue":20}}]}}}]}}"#;
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(RICH_JSON).unwrap(),
    )
    .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let (mut streamed, mut refused) = (0, 0);
    for base in [RICH_JSON, &pretty, small] {
        for _ in 0..1500 {
            let text = corrupt(base, &mut rng);
            let tree = crate::json::read_tree(&text);
            if let Some(c) = crate::json::read_streaming(&text) {
                streamed += 1;
                assert!(tree.as_ref() == Ok(&c), "the readers disagree on {text}");
            }
            let read = from_json(&text);
            assert!(
                read == tree,
                "from_json and the tree reader disagree on {text}"
            );
            if let Err(problems) = read {
                refused += 1;
                assert!(!problems.is_empty(), "{text}");
                for p in &problems {
                    assert!(!p.path.is_empty() && !p.problem.is_empty(), "{text}: {p:?}");
                }
            }
        }
    }
    // Both outcomes are common, so the comparison is not vacuous.
    assert!(
        streamed > 500 && refused > 1000,
        "{streamed} streamed, {refused} refused"
    );
}

#[test]
fn binary_round_trips_and_refuses_damage() {
    let (q, p) = worked_example();
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let bytes = to_binary(&m.config);
    assert_eq!(&bytes[..8], MAGIC);
    assert_eq!(from_binary(&bytes).unwrap(), m.config);
    let mut newer = bytes.clone();
    newer[8] = 2;
    assert_eq!(
        from_binary(&newer).unwrap_err().to_string(),
        "written by a newer format version (2); this program reads version 1: update it"
    );
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        from_binary(&flipped),
        Err(BinaryError::Checksum { .. })
    ));
    assert!(matches!(
        from_binary(&bytes[..bytes.len() - 3]),
        Err(BinaryError::Truncated { .. })
    ));
    assert_eq!(
        from_binary(b"{\"value0\"").unwrap_err(),
        BinaryError::NotAConfiguration
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        from_binary(&longer),
        Err(BinaryError::TrailingBytes { count: 1 })
    ));
}

#[test]
fn each_validation_rule_has_its_exact_error() {
    let mut c = Configuration::new(2);
    // Unknown bias, wrong type.
    set_param(
        &mut c.chips[0].cores[1].parameters,
        "SOIF_FOO_N",
        Parameter::for_name("SOIF_FOO_N", 1, 1).unwrap(),
    );
    let mut wrong = Parameter::for_name("SOIF_LEAK_N", 1, 1).unwrap();
    wrong.kind = 'P';
    set_param(&mut c.chips[1].cores[0].parameters, "SOIF_LEAK_N", wrong);
    // A route to a chip that does not exist (chip 0 + 3 hops on a 2-chip board).
    c.chips[0].cores[0].neurons[5].destinations[1] = dest(1, 3, 0, 10);
    // Two sources with one tag into chip 1 core 2.
    c.chips[0].cores[0].neurons[1].destinations[1] = dest(4, 1, 0, 99);
    c.chips[1].cores[3].neurons[7].destinations[2] = dest(4, 0, 0, 99);
    // The control tag towards a core.
    c.chips[1].cores[0].neurons[0].destinations[1] = dest(1, 0, 0, 2047);
    // Monitor routes to the host are fine.
    c.chips[1].cores[0].neurons[0].destinations[0] = dest(15, -7, -7, 0);
    let v: Vec<String> = validate(&c, Some(&[vec![dest(4, 1, 0, 99)]]))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        v,
        vec![
            "chip 0, core 0, neuron 1, destination 1: tag 99 reaches chip 1 core 2 from input channel 0 and from chip 0 core 0 neuron 1: a core cannot tell them apart",
            "chip 0, core 0, neuron 5, destination 1: destination (x_hop 3, y_hop 0) is not a chip of this board (2 chips at x = 1..2, y = 0) nor the host",
            "chip 0, core 1: unknown bias name \"SOIF_FOO_N\"",
            "chip 1, core 0: bias SOIF_LEAK_N has transistor type P, but its name says N",
            "chip 1, core 0, neuron 0, destination 1: tag 2047 is reserved for control events, but this entry sends it to chip 1 core 0",
            "chip 1, core 3, neuron 7, destination 2: tag 99 reaches chip 1 core 2 from input channel 0 and from chip 1 core 3 neuron 7: a core cannot tell them apart",
        ]
    );
    assert!(validate(&Configuration::new(1), None).is_empty());
}

/// The violations are data: each rule family is told by its variant and the values of the broken
/// limit, not by its message.
#[test]
fn violations_carry_their_rule_and_its_data() {
    let place = |chip, core, neuron| NeuronPlace { chip, core, neuron };
    let mut c = Configuration::new(2);
    // Biases: an unknown name, a wrong transistor type.
    set_param(
        &mut c.chips[0].cores[1].parameters,
        "SOIF_FOO_N",
        Parameter::for_name("SOIF_FOO_N", 1, 1).unwrap(),
    );
    let mut wrong = Parameter::for_name("SOIF_DC_P", 1, 1).unwrap();
    wrong.kind = 'N';
    set_param(&mut c.chips[1].global_parameters, "SOIF_DC_P", wrong);
    // Routes: off the board; the control tag towards two cores.
    c.chips[1].cores[0].neurons[3].destinations[2] = dest(1, 2, 0, 10);
    c.chips[0].cores[2].neurons[9].destinations[1] = dest(0b0110, 1, 0, 2047);
    // Tags: an input channel and a neuron into chip 0 core 3 with tag 40.
    c.chips[1].cores[1].neurons[4].destinations[1] = dest(0b1000, -1, 0, 40);
    // Inputs: the control tag, a destination off the board.
    let inputs = [
        vec![dest(0b1000, 0, 0, 40)],
        vec![dest(1, 0, 0, 2047)],
        vec![dest(1, 5, 0, 1)],
    ];
    let v = validate(&c, Some(&inputs));
    let found: Vec<(Location, Rule)> = v.into_iter().map(|v| (v.at, v.rule)).collect();
    let destination = |h, k, n, s| Location {
        slot: Some(Slot::Destination(s)),
        ..Location::neuron(h, k, n)
    };
    assert_eq!(
        found,
        vec![
            (Location::chip(0), Rule::InputControlTag { channel: 1 }),
            (
                Location::chip(0),
                Rule::InputOffBoard {
                    channel: 2,
                    x_hop: 5,
                    y_hop: 0,
                    chips: 2
                }
            ),
            (
                Location::core(0, 1),
                Rule::UnknownBias {
                    name: "SOIF_FOO_N".into()
                }
            ),
            (
                destination(0, 2, 9, 1),
                Rule::ControlTag { chip: 1, core: 1 }
            ),
            (
                destination(0, 2, 9, 1),
                Rule::ControlTag { chip: 1, core: 2 }
            ),
            (
                Location::chip(1),
                Rule::BiasType {
                    name: "SOIF_DC_P".into(),
                    kind: 'N',
                    expected: 'P'
                }
            ),
            (
                destination(1, 0, 3, 2),
                Rule::RouteOffBoard {
                    x_hop: 2,
                    y_hop: 0,
                    chips: 2
                }
            ),
            (
                destination(1, 1, 4, 1),
                Rule::TagConflict {
                    tag: 40,
                    chip: 0,
                    core: 3,
                    first: Source::Input(0),
                    second: Source::Neuron(place(1, 1, 4))
                }
            ),
        ]
    );
    // The chip count.
    let mut five = Configuration::new(MAX_CHIPS);
    five.chips.push(five.chips[0].clone());
    assert_eq!(
        validate(&five, None)[0].rule,
        Rule::ChipCount {
            chips: 5,
            max: MAX_CHIPS
        }
    );
}

/// The binary decoder's second range check names the rule and the place, as data.
#[test]
fn binary_values_the_chip_cannot_take_are_refused_with_their_rule() {
    let refused = |c: &Configuration| match from_binary(&to_binary(c)) {
        Err(BinaryError::Invalid(v)) => *v,
        other => panic!("not refused as invalid: {other:?}"),
    };
    let mut c = Configuration::new(1);
    c.chips[0].dvs_if = "{".into();
    let v = refused(&c);
    assert_eq!(
        (v.at, v.rule),
        (
            Location::chip(0),
            Rule::UnmodelledJson {
                key: "dvsIf".into()
            }
        )
    );
    let mut c = Configuration::new(1);
    let mut p = Parameter::for_name("SOIF_LEAK_N", 1, 1).unwrap();
    p.coarse = 9;
    set_param(
        &mut c.chips[0].cores[3].parameters,
        "SOIF_LEAK_N",
        p.clone(),
    );
    let v = refused(&c);
    assert_eq!(v.at, Location::core(0, 3));
    assert_eq!(
        v.rule,
        Rule::ParameterRange {
            name: "SOIF_LEAK_N".into(),
            parameter: p
        }
    );
    assert!(
        BinaryError::Invalid(Box::new(v))
            .to_string()
            .contains("chip 0, core 3: parameter SOIF_LEAK_N is out of range"),
    );
    let mut c = Configuration::new(1);
    c.chips[0].cores[1].neurons.pop();
    assert_eq!(refused(&c).rule, Rule::NeuronCount { neurons: 255 });
}

/// A random quantized network on `cores` global cores: inputs reach any neuron; neuron j's recurrent
/// connections stay in its own core and the next one (so no neuron needs more than its SRAM entries).
fn random_network(
    n_in: usize,
    n: usize,
    cores: usize,
    density: f64,
    seed: u64,
) -> QuantizedWeights {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let core_map: Vec<usize> = (0..n).map(|j| j * cores / n.max(1)).collect();
    let entry = |mask: &mut u8, sign: &mut i8, next: &mut dyn FnMut() -> f64| {
        if next() < density {
            *mask = 1 + (next() * 15.0) as u8;
            *sign = if next() < 0.5 { 1 } else { -1 };
        }
    };
    let mut mi = vec![0u8; n_in * n];
    let mut si = vec![0i8; n_in * n];
    for i in 0..n_in * n {
        entry(&mut mi[i], &mut si[i], &mut next);
    }
    let mut mr = vec![0u8; n * n];
    let mut sr = vec![0i8; n * n];
    for pre in 0..n {
        for post in 0..n {
            let (a, b) = (core_map[pre], core_map[post]);
            if b == a || b == (a + 1) % cores {
                entry(&mut mr[pre * n + post], &mut sr[pre * n + post], &mut next);
            }
        }
    }
    let generator = dynap_model::BiasGenerator::dynapse2();
    let base: Vec<[f64; 4]> = (0..cores)
        .map(|g| {
            std::array::from_fn(|k| {
                let name = ["SYAM_W0_P", "SYAM_W1_P", "SYAM_W2_P", "SYAM_W3_P"][k];
                let code = generator
                    .code_from_current(name, (1 + k + g) as f64 * 1e-9)
                    .unwrap();
                generator.current_from_code(name, code).unwrap()
            })
        })
        .collect();
    QuantizedWeights::new(
        core_map,
        base,
        (n_in > 0).then(|| QuantMatrix::new(WeightMatrix::Input, n_in, n, mi, si).unwrap()),
        QuantMatrix::new(WeightMatrix::Recurrent, n, n, mr, sr).unwrap(),
        1e-8,
    )
    .unwrap()
}

fn assert_round_trip(q: &QuantizedWeights) {
    let p = NeuronParams::defaults(q.neurons());
    let m = map(q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let u = unmap(
        &m.config,
        Some(&m.mapping),
        1.0,
        1.0,
        &dynap_model::BiasGenerator::dynapse2(),
    )
    .unwrap();
    assert_eq!(u.weights.core_map(), q.core_map());
    assert_eq!(u.weights.base_currents(), q.base_currents());
    for (ours, theirs) in [
        (u.weights.w_in(), q.w_in()),
        (Some(u.weights.w_rec()), Some(q.w_rec())),
    ] {
        assert_eq!(ours.is_some(), theirs.is_some());
        if let (Some(a), Some(b)) = (ours, theirs) {
            let first = (0..a.masks().len())
                .find(|&i| a.masks()[i] != b.masks()[i] || a.signs()[i] != b.signs()[i]);
            assert_eq!(
                first,
                None,
                "first difference at flat index {first:?} of {}x{}",
                a.rows(),
                a.cols()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_networks_round_trip_exactly(
        n_in in 0usize..40,
        n in 1usize..120,
        cores in 1usize..16,
        seed in 0u64..10_000,
    ) {
        let cores = cores.min(n);
        // Fan-in stays within 64.
        let per_core = n.div_ceil(cores) * 2;
        let density = (40.0 / (n_in + per_core) as f64).min(0.5);
        let q = random_network(n_in, n, cores, density, seed);
        assert_round_trip(&q);
    }

}

proptest! {
    // Each case writes and reads full-size chips (65 536 CAM entries each): few cases.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn random_configurations_round_trip_through_json_and_binary(
        seed in 0u64..10_000,
        chips in 1usize..3,
    ) {
        let q = random_network(10, 8 * chips, 4 * chips, 0.3, seed);
        let p = NeuronParams::defaults(q.neurons());
        let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
        let text = to_json(&m.config);
        let back = from_json(&text).unwrap();
        prop_assert_eq!(&back, &m.config);
        prop_assert_eq!(&to_json(&back), &text);
        prop_assert_eq!(assert_readers_agree(&text), back);
        prop_assert_eq!(from_binary(&to_binary(&m.config)).unwrap(), m.config);
    }
}

#[test]
fn a_full_board_round_trips() {
    // 4 chips x 1024 neurons, every neuron used; about 12 connections into each neuron.
    let q = random_network(60, 4096, 16, 0.02, 7);
    assert_round_trip(&q);
    let p = NeuronParams::defaults(q.neurons());
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    assert_eq!(from_binary(&to_binary(&m.config)).unwrap(), m.config);
    let text = to_json(&m.config);
    let back = from_json(&text).unwrap();
    assert_eq!(back, m.config);
    assert_eq!(to_json(&back), text);
    assert_eq!(assert_readers_agree(&text), back);
}

#[test]
fn limits_are_errors_that_name_the_neuron() {
    // Fan-in exactly 64 with zero rows after it is fine (Rockpool raises here).
    let n_in = 70;
    let mut m = vec![0u8; n_in];
    let mut s = vec![0i8; n_in];
    for i in 0..64 {
        m[i] = 1;
        s[i] = 1;
    }
    let ok = QuantizedWeights::new(
        vec![0],
        vec![[1e-9; 4]],
        Some(qm(WeightMatrix::Input, n_in, 1, &m, &s)),
        QuantMatrix::zeros(1, 1),
        1e-8,
    )
    .unwrap();
    let p = NeuronParams::defaults(1);
    assert!(map(&ok, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).is_ok());
    m[64] = 3;
    s[64] = -1;
    let over = QuantizedWeights::new(
        vec![0],
        vec![[1e-9; 4]],
        Some(qm(WeightMatrix::Input, n_in, 1, &m, &s)),
        QuantMatrix::zeros(1, 1),
        1e-8,
    )
    .unwrap();
    let e = map(&over, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap_err();
    assert_eq!(
        e.problems,
        vec![MapProblem::FanIn {
            neuron: 0,
            place: NeuronPlace {
                chip: 0,
                core: 0,
                neuron: 0
            },
            found: 65,
            limit: 64
        }]
    );
    assert_eq!(
        e.problems[0].to_string(),
        "neuron 0 (chip 0 core 0 neuron 0) has 65 incoming connections; a neuron has 64 CAM entries"
    );
    // Fan-out: neuron 0 reaches 4 chips, but has 3 SRAM entries besides the monitor route.
    let n = 4;
    let mut mr = vec![0u8; n * n];
    let mut sr = vec![0i8; n * n];
    for post in 0..n {
        mr[post] = 1;
        sr[post] = 1;
    }
    let q = QuantizedWeights::new(
        vec![0, 4, 8, 12],
        vec![[1e-9; 4]; 13],
        None,
        qm(WeightMatrix::Recurrent, n, n, &mr, &sr),
        1e-8,
    )
    .unwrap();
    let e = map(
        &q,
        &NeuronParams::defaults(n),
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e.problems[..],
            [MapProblem::FanOut {
                neuron: 0,
                chips: 4,
                limit: 4,
                ..
            }]
        ),
        "{e}"
    );
    assert_eq!(
        e.problems[0].to_string(),
        "neuron 0 (chip 0 core 0 neuron 0) reaches 4 chips; a neuron has 4 SRAM entries, one of them the monitor route"
    );
    // Too many neurons on a core.
    let q = QuantizedWeights::new(
        vec![0; 257],
        vec![[0.0; 4]],
        None,
        QuantMatrix::zeros(257, 257),
        1e-8,
    )
    .unwrap();
    let e = map(
        &q,
        &NeuronParams::defaults(257),
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.problems,
        vec![MapProblem::CoreFull {
            chip: 0,
            core: 0,
            neurons: 257,
            limit: 256
        }]
    );
    assert_eq!(
        e.problems[0].to_string(),
        "chip 0 core 0 is given 257 neurons; a core has 256"
    );
    // Tags: an allow-list of two tags for three sources into one core.
    let (q, p) = worked_example();
    let mut opts = MapOptions::default();
    opts.tag_allow.insert(0, vec![0, 1]);
    let e = map(&q, &p, 1e-3, Variant::Rockpool, &opts).unwrap_err();
    // Inputs 0 and 2 take tags 0 and 1; neuron 0, which also reaches core 0, finds none.
    assert_eq!(
        e.problems[0],
        MapProblem::NoTagLeft {
            source: NetworkSource::Neuron(0),
            cores: vec![0]
        }
    );
    assert!(
        e.problems[0].to_string().starts_with(
            "no tag left for neuron 0: every tag allowed on the cores it reaches (chip 0 core 0)"
        ),
        "{e}"
    );
}

#[test]
fn inputs_the_mapper_cannot_use_are_problems_with_their_data() {
    let (q, p) = worked_example();
    let e = map(
        &q,
        &NeuronParams::defaults(2),
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.problems,
        vec![MapProblem::ParamCount {
            params: 2,
            weights: 3
        }]
    );
    // Dendrites for another number of neurons: the model's own error, kept whole.
    let opts = MapOptions {
        chip: Some(dynap_model::ChipSynapses::defaults(2)),
        ..MapOptions::default()
    };
    let e = map(&q, &p, 1e-3, Variant::Chip, &opts).unwrap_err();
    assert!(matches!(e.problems[..], [MapProblem::Model(_)]), "{e}");
    // A mapping that places a neuron off the configuration.
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let mut mapping = m.mapping.clone();
    mapping.neurons[1].chip = 3;
    let g = dynap_model::BiasGenerator::dynapse2();
    let e = unmap(&m.config, Some(&mapping), 1.0, 1.0, &g).unwrap_err();
    assert_eq!(
        e.problems,
        vec![MapProblem::MissingNeuron {
            place: mapping.neurons[1]
        }]
    );
    // A CAM entry listening to a tag nobody sends there.
    let mut c = m.config.clone();
    c.chips[0].cores[0].neurons[1].synapses[7] = syn(Dendrite::Ampa, 2, 1500);
    let e = unmap(&c, Some(&m.mapping), 1.0, 1.0, &g).unwrap_err();
    assert!(
        matches!(
            e.problems[..],
            [MapProblem::UnsentTag {
                synapse: 7,
                tag: 1500,
                ..
            }]
        ),
        "{e}"
    );
}

#[test]
fn tags_are_reused_across_cores_and_respect_allow_lists() {
    // 2 cores, each with its own inputs: the same tag can serve a different source on each core.
    let q = random_network(30, 20, 2, 0.2, 3);
    let p = NeuronParams::defaults(20);
    let mut opts = MapOptions::default();
    opts.tag_allow.insert(1, (1000..1100).collect());
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &opts).unwrap();
    for neuron in &m.config.chips[0].cores[1].neurons {
        for s in neuron.synapses.iter().filter(|s| s.is_active()) {
            assert!((1000..1100).contains(&s.tag.get()));
        }
    }
    assert_round_trip(&q);
}

#[test]
fn clustering_groups_similar_neurons() {
    let mut p = NeuronParams::defaults(6);
    // Two kinds of neurons, interleaved: fast (large leak) and slow.
    for j in 0..6 {
        p.i_tau_mem[j] = if j % 2 == 0 { 1e-11 } else { 1e-12 };
    }
    let map = cluster_by_parameters(&p, 2);
    assert_eq!(map[0], map[2]);
    assert_eq!(map[2], map[4]);
    assert_eq!(map[1], map[3]);
    assert_ne!(map[0], map[1]);
    assert_eq!(
        cluster_by_parameters(&NeuronParams::defaults(300), 0)
            .iter()
            .max(),
        Some(&1)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Fuzzing the readers: arbitrary text and bytes, and valid files with characters or bytes
    /// replaced, give a configuration or errors, never a panic.
    #[test]
    fn readers_never_panic(
        text in "\\PC{0,300}",
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        edits in proptest::collection::vec((0usize..1_000_000, proptest::num::u8::ANY), 1..6),
    ) {
        let _ = from_json(&text);
        let _ = from_binary(&bytes);
        let small = r#"{"value0":{"chips":[{"cores":{"value0":{"neurons":{"value3":{"synapses":{"value0":{"dendrite":1024,"weight":{"value0":true,"value1":false,"value2":false,"value3":false},"tag":17}},"destinations":{"value0":{"core":{"value0":true,"value1":false,"value2":false,"value3":false},"xHop":0,"yHop":0,"tag":17}}}},"parameters":[{"key":"SOIF_LEAK_N","value":{"type":78,"coarseValue":1,"fineValue":20}}]}}}]}}"#;
        let mut t = small.as_bytes().to_vec();
        for &(i, b) in &edits {
            let n = t.len();
            t[i % n] = b;
        }
        if let Ok(s) = String::from_utf8(t)
            && let Ok(c) = from_json(&s)
        {
            let _ = validate(&c, None);
            prop_assert_eq!(from_json(&to_json(&c)).unwrap(), c);
        }
        let mut b = to_binary(&Configuration::new(1));
        for &(i, v) in &edits {
            let n = b.len();
            b[i % n] = v;
        }
        let _ = from_binary(&b);
    }
}

#[test]
fn without_input_weights_recurrent_tags_start_after_n_as_in_rockpool() {
    let w_rec = qm(WeightMatrix::Recurrent, 2, 2, &[0, 3, 5, 0], &[0, 1, -1, 0]);
    let q = QuantizedWeights::new(vec![0, 0], vec![[1e-9; 4]], None, w_rec, 1e-8).unwrap();
    let m = map(
        &q,
        &NeuronParams::defaults(2),
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )
    .unwrap();
    let core = &m.config.chips[0].cores[0];
    assert_eq!(core.neurons[0].destinations[1].tag.get(), 2);
    assert_eq!(core.neurons[1].destinations[1].tag.get(), 3);
    assert_eq!(core.neurons[1].synapses[0], syn(Dendrite::Ampa, 3, 2));
}

#[test]
fn unmap_refuses_sources_it_cannot_tell_apart() {
    let (q, p) = worked_example();
    let m = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let mut c = m.config.clone();
    // Neuron 2 now also sends tag 3 (neuron 0's) to core 0.
    c.chips[0].cores[0].neurons[2].destinations[1].tag = tag(3);
    let e = unmap(
        &c,
        Some(&m.mapping),
        1.0,
        1.0,
        &dynap_model::BiasGenerator::dynapse2(),
    )
    .unwrap_err();
    let place = |neuron| NeuronPlace {
        chip: 0,
        core: 0,
        neuron,
    };
    assert!(
        matches!(
            &e.problems[..],
            [MapProblem::Violation(Violation {
                rule: Rule::TagConflict {
                    tag: 3,
                    chip: 0,
                    core: 0,
                    first: Source::Neuron(a),
                    second: Source::Neuron(b),
                },
                ..
            })] if *a == place(0) && *b == place(2)
        ),
        "{e}"
    );
    assert!(e.problems[0].to_string().contains("tag 3 reaches chip 0 core 0 from chip 0 core 0 neuron 0 and from chip 0 core 0 neuron 2"), "{e}");
    // Two CAM entries for one source in one neuron.
    let mut c = m.config.clone();
    c.chips[0].cores[0].neurons[0].synapses[5] = syn(Dendrite::Ampa, 1, 0);
    let e = unmap(
        &c,
        Some(&m.mapping),
        1.0,
        1.0,
        &dynap_model::BiasGenerator::dynapse2(),
    )
    .unwrap_err();
    assert_eq!(
        e.problems,
        vec![MapProblem::SecondCamEntry {
            place: place(0),
            synapse: 5,
            tag: 0
        }]
    );
    assert!(
        e.problems[0]
            .to_string()
            .contains("a second CAM entry for tag 0"),
        "{e}"
    );
    // No chip at all.
    assert!(
        from_json(r#"{"value0":{"chips":[]}}"#).unwrap_err()[0]
            .problem
            .contains("no chip")
    );
}

#[test]
fn a_chip_network_maps_to_its_dendrites_and_comes_back() {
    use dynap_model::{ChipSynapses, DendriteParams, SynapseChoice};
    let (q, p) = worked_example();
    let mut chip = ChipSynapses::defaults(3);
    chip.nmda = DendriteParams::with_time_constant(3, 50e-3, 20.0, 25e-12);
    chip.gaba = DendriteParams::with_time_constant(3, 5e-3, 200.0, 25e-12);
    chip.shunt = DendriteParams::with_time_constant(3, 20e-3, 50.0, 24.5e-12);
    // Input 0 -> neuron 0 on NMDA; input 2 -> neuron 1 (negative) on SHUNT; the rest AMPA/GABA.
    let mut in_types = vec![SynapseChoice::default(); 9];
    in_types[0].nmda = true;
    in_types[2 * 3 + 1].shunt = true;
    chip.w_in_types = Some(in_types.clone());
    chip.w_rec_types = Some(vec![SynapseChoice::default(); 9]);
    let opts = MapOptions {
        chip: Some(chip.clone()),
        ..MapOptions::default()
    };
    let m = map(&q, &p, 1e-3, Variant::Chip, &opts).unwrap();
    let core = &m.config.chips[0].cores[0];
    let dendrites = |post: usize| -> Vec<Dendrite> {
        core.neurons[post]
            .synapses
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.dendrite)
            .collect()
    };
    // Neuron 0 listens to input 0 (NMDA) and input 2 (AMPA); neuron 1 to input 2 (SHUNT) and neuron
    // 0 (AMPA).
    assert_eq!(
        dendrites(0),
        vec![Dendrite::Nmda, Dendrite::Ampa, Dendrite::Gaba]
    );
    assert_eq!(dendrites(1), vec![Dendrite::Shunt, Dendrite::Ampa]);
    // Each dendrite's biases are its own currents, coded.
    let g = dynap_model::BiasGenerator::dynapse2();
    let decoded = core_biases(core, &g);
    let get = |name: &str| {
        decoded
            .dendrites
            .iter()
            .find(|(s, _)| *s == name)
            .map(|&(_, v)| v)
            .unwrap()
    };
    for (name, value) in [
        ("Itau_nmda", chip.nmda.i_tau[0]),
        ("Igain_nmda", chip.nmda.i_gain[0]),
        ("Itau_gaba", chip.gaba.i_tau[0]),
        ("Itau_shunt", chip.shunt.i_tau[0]),
        ("Igain_shunt", chip.shunt.i_gain[0]),
    ] {
        let chip_name = dynap_model::chip_bias_from_sim(name).unwrap();
        let code = g.code_from_current(chip_name, value).unwrap();
        let snapped = g.current_from_code(chip_name, code).unwrap();
        assert_eq!(get(name), snapped, "{name}");
    }
    // Back: the variant, the synapse types and the dendrites' currents.
    let u = unmap(&m.config, Some(&m.mapping), 1e-8, 1e-3, &g).unwrap();
    assert_eq!(u.network.variant, Variant::Chip);
    let back = u.network.chip.as_ref().unwrap();
    assert_eq!(back.w_in_types.as_ref().unwrap(), &in_types);
    for j in 0..3 {
        assert_eq!(back.nmda.i_tau[j], get("Itau_nmda"));
        assert_eq!(back.gaba.i_tau[j], get("Itau_gaba"));
        assert_eq!(back.shunt.i_gain[j], get("Igain_shunt"));
    }
    // A Rockpool mapping of the same weights writes AMPA and GABA only, and restores no dendrites.
    let r = map(&q, &p, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
    let u = unmap(&r.config, Some(&r.mapping), 1e-8, 1e-3, &g).unwrap();
    assert!(u.network.chip.is_none());
}

/// Every current a neuron trains is deployed to a bias whose codes span a range, and snapping is
/// idempotent and stays in it; a core of snapped currents maps to those currents exactly.
#[test]
fn snapped_currents_are_what_the_chip_makes() {
    let g = dynap_model::BiasGenerator::dynapse2();
    for &p in dynap_model::Param::CURRENTS.iter() {
        let Some((lo, hi)) = crate::current_range(&g, p) else {
            panic!("{p:?} has no bias");
        };
        assert!(0.0 < lo && lo < hi, "{p:?}: {lo} {hi}");
        for v in [lo * 0.5, lo, 3.7e-11, 1e-9, 2.2e-8, hi, hi * 2.0] {
            let s = crate::snap_current(&g, p, v).unwrap();
            assert!((lo..=hi).contains(&s) || s == 0.0, "{p:?} {v}: {s}");
            assert_eq!(crate::snap_current(&g, p, s), Some(s), "{p:?} {v}");
        }
    }
}
