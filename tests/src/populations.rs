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

/// The shipped Yin-Yang example: it parses, its data (shipped beside it) loads and encodes, its
/// network is checked mappable, and a few training steps run (what `cargo xtask train --config
/// examples/yinyang.toml` starts with).
#[test]
fn the_yinyang_example_loads_and_trains() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/yinyang.toml");
    let config =
        dynap_train::config::Config::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = dynap_train::fit::config_dir(Some(&path));
    let prep = dynap_train::fit::prepare(&config, &dir).unwrap();
    assert_eq!(prep.train.samples, 5000);
    assert_eq!(prep.validation.samples, 1000);
    assert_eq!(prep.architecture.neurons(), 120);
    assert_eq!(prep.readout().classes, 3);
    let rate = dynap_train::fit::training_rate(&config, &prep, 1, 1, 0).unwrap();
    assert!(rate > 0.0);
}
