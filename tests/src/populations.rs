//! A network described as populations, across the crates: from the experiment's tables to a checked
//! architecture, a board it fits, its initial weights, a masked training that keeps every weight inside
//! its blocks (both model variants), and a network JSON that carries the description and reads back.

use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer};
use dynap_config::check_mappable;
use dynap_config::format::{NetworkFile, read_network, write_network};
use dynap_model::Variant;
use dynap_train::architecture::{
    ArchitectureConfig, ConnectionConfig, PopulationConfig, initial_network,
};
use std::collections::BTreeMap;

fn population(name: &str, size: usize, recurrent: bool) -> PopulationConfig {
    PopulationConfig {
        name: name.into(),
        size,
        recurrent,
        params: BTreeMap::new(),
        train: Vec::new(),
    }
}

fn connection(from: &str, to: &str) -> ConnectionConfig {
    ConnectionConfig {
        from: from.into(),
        to: to.into(),
        init_gain: None,
    }
}

#[test]
fn a_layered_network_trains_inside_its_blocks_and_travels_with_them() {
    let mut hidden = population("hidden", 10, true);
    hidden.params.insert("tau_mem".into(), 30e-3);
    let config = ArchitectureConfig {
        population: vec![hidden, population("out", 2, false)],
        connection: vec![
            connection("input", "hidden"),
            connection("hidden", "out"),
            connection("input", "out"),
        ],
        readout: Some("out".into()),
    };
    let n_in = 6;
    let a = config.to_architecture(n_in).unwrap();
    let masks = a.masks();
    for variant in [Variant::Rockpool, Variant::Chip] {
        let net = initial_network(&a, variant, 3);
        check_mappable(&a, &net.params).unwrap();
        let mut trainer = Trainer::<f32>::new(net, CurrentTraining::none(), 2e-2)
            .unwrap()
            .with_masks(masks.clone())
            .unwrap();
        let steps = 60;
        let x: Vec<f32> = (0..2 * steps * n_in)
            .map(|k| f32::from(u8::from(k % 5 == 0)))
            .collect();
        let x = SpikeInput::new(x, 2, steps, n_in).unwrap();
        let mut target = vec![0.0; a.neurons()];
        target[a.readout_range().start] = 4.0;
        let loss = Loss::CountMse { target };
        let before = trainer.network();
        for _ in 0..10 {
            trainer.step(&x, &loss, None).unwrap();
        }
        let trained = trainer.network();
        let (w_in, w_rec) = (trained.w_in.as_ref().unwrap(), &trained.w_rec);
        for (w, flags) in [
            (w_in.as_slice(), &masks.w_in),
            (w_rec.as_slice(), &masks.w_rec),
        ] {
            assert!(
                w.iter()
                    .zip(flags)
                    .all(|(&w, &allowed)| allowed || w == 0.0),
                "{variant:?}: a weight left its block"
            );
        }
        assert_ne!(
            before.w_rec, trained.w_rec,
            "{variant:?}: training moved nothing"
        );
        // The trained network and its description, through the network JSON.
        let mut file = NetworkFile::new(trained);
        file.architecture = Some(a.clone());
        let back = read_network(&write_network(&file)).unwrap();
        assert_eq!(back, file);
    }
}

/// The shipped Yin-Yang examples (and the regression example): each parses, its data (shipped beside it) loads and encodes, its
/// network is checked mappable, and a few training steps run (what `cargo xtask train --config
/// examples/yinyang.toml` starts with).
#[test]
fn the_yinyang_example_loads_and_trains() {
    for example in ["yinyang.toml", "yinyang_hw.toml", "randman_regression.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example);
        let config =
            dynap_train::config::Config::from_toml(&std::fs::read_to_string(&path).unwrap())
                .unwrap();
        let dir = dynap_train::fit::config_dir(Some(&path));
        let prep = dynap_train::fit::prepare(&config, &dir).unwrap();
        if example.starts_with("yinyang") {
            assert_eq!(prep.train.samples, 5000);
            assert_eq!(prep.validation.samples, 1000);
            assert_eq!(prep.architecture.neurons(), 120);
            assert_eq!(prep.readout().classes, 3);
        }
        let rate = dynap_train::fit::training_rate(&config, &prep, 1, 1, 0).unwrap();
        assert!(rate > 0.0, "{example}");
    }
}

/// A network over two chips whose blocks allow far more connections than a neuron's 64 CAM entries
/// (`examples/randman_two_chips.toml`, made small): refused without the fan-in option; with it,
/// training keeps at most 64 weights into each neuron, the network maps at the first attempt onto
/// two chips, runs on the twin, and the configuration read back is the trained network (its 4-bit
/// weights and its currents) exactly.
#[test]
fn a_two_chip_network_limited_by_training_maps_at_the_first_attempt_and_reads_back_exactly() {
    use dynap_train::fit;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/randman_two_chips.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Small enough for a test: fewer samples, steps and epochs.
    let text = text
        .replace("train_samples = 1000", "train_samples = 40")
        .replace("validation_samples = 250", "validation_samples = 10")
        .replace("test_samples = 250", "test_samples = 0")
        .replace("steps = 50", "steps = 20")
        .replace("epochs = 8", "epochs = 3")
        .replace("prune_epochs = 3", "prune_epochs = 1")
        .replace("batch_size = 50", "batch_size = 20");
    let config = dynap_train::config::Config::from_toml(&text).unwrap();
    let dir = fit::config_dir(Some(&path));
    let unlimited =
        dynap_train::config::Config::from_toml(&text.replace("fan_in = 64\n", "")).unwrap();
    let e = fit::prepare(&unlimited, &dir).unwrap_err().to_string();
    assert!(e.contains("552 incoming connections"), "{e}");
    let prep = fit::prepare(&config, &dir).unwrap();
    let a = &prep.architecture;
    assert_eq!(a.neurons(), 1049);
    assert_eq!(a.core_ranges(), vec![0..2, 2..4, 4..5]);
    let stage = dynap_train::progress::Progress::hidden().stage("test", 0, "samples");
    let fit = fit::train_seed(&config, &prep, 0, None, false, 0, &stage).unwrap();
    let net = &fit.network;
    let n = net.neurons();
    let w_in = net.w_in.as_ref().unwrap();
    for j in 0..n {
        let kept = (0..w_in.rows()).filter(|&i| w_in.row(i)[j] != 0.0).count()
            + (0..n).filter(|&i| net.w_rec.row(i)[j] != 0.0).count();
        assert!(kept <= 64, "neuron {j} keeps {kept} weights");
    }
    // Mapped at the first attempt, over two chips.
    let mut file = NetworkFile::new(net.clone());
    file.core_map = Some(a.core_map());
    let q =
        dynap_train::quantization::quantize_file(&file, &dynap_quant::Options::default()).unwrap();
    let mapped = dynap_config::map(
        &q.weights,
        &net.params,
        net.dt,
        net.variant,
        &dynap_config::MapOptions {
            chip: net.chip.clone(),
            ..dynap_config::MapOptions::default()
        },
    )
    .unwrap();
    let chips: std::collections::BTreeSet<usize> =
        mapped.mapping.neurons.iter().map(|p| p.chip).collect();
    assert_eq!(chips.into_iter().collect::<Vec<_>>(), vec![0, 1]);
    // Read back: the quantized weights and the trained currents, bit for bit.
    let generator = dynap_model::BiasGenerator::dynapse2();
    let back = dynap_config::unmap(
        &mapped.config,
        Some(&mapped.mapping),
        net.i_scale,
        net.dt,
        &generator,
    )
    .unwrap();
    let (q_in, q_rec) = q.weights.decode();
    assert_eq!(back.network.w_rec, q_rec);
    assert_eq!(back.network.w_in, q_in);
    for p in dynap_model::Param::CURRENTS {
        assert_eq!(back.network.params.get(p), net.params.get(p), "{p:?}");
    }
    // On the twin: every validation sample played through the configuration.
    let readout = prep.readout();
    let mut device = dynap_train::evaluation::open_device(
        &dynap_train::deployment::Device::Emulator {
            mismatch: 0.1,
            seed: 0,
        },
        net.dt,
        net.i_scale,
        net.variant,
    )
    .unwrap();
    let decisions = dynap_train::evaluation::predict_on_device(
        device.as_mut(),
        &mapped,
        net.dt,
        &prep.validation,
        &readout,
        None,
    )
    .unwrap();
    assert_eq!(decisions.len(), 10);
}
