//! The emulator against the simulator, and its faults.

use super::*;
use dynap_config::{Destination, Hop, MapOptions, map, unmap};
use dynap_model::{
    BiasGenerator, Input, NeuronParams, QuantMatrix, QuantizedWeights, RunOptions, Variant,
    WeightMatrix,
};

/// A small excitatory/inhibitory network that spikes, mapped; the raster `[steps, channels]`.
fn setup(cores: usize) -> (dynap_config::Mapped, Vec<f64>, usize) {
    setup_variant(cores, Variant::Rockpool)
}

/// [`setup`] for a model variant; a `chip` network puts some connections on NMDA and SHUNT.
fn setup_variant(cores: usize, variant: Variant) -> (dynap_config::Mapped, Vec<f64>, usize) {
    let (n_in, n, steps) = (20, 12, 300);
    let mut s = 12345u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut mi = vec![0u8; n_in * n];
    let mut si = vec![0i8; n_in * n];
    for i in 0..n_in * n {
        if next() < 0.4 {
            mi[i] = 4 + (next() * 11.0) as u8;
            si[i] = if next() < 0.8 { 1 } else { -1 };
        }
    }
    let mut mr = vec![0u8; n * n];
    let mut sr = vec![0i8; n * n];
    for i in 0..n * n {
        if next() < 0.3 {
            mr[i] = 1 + (next() * 14.0) as u8;
            sr[i] = if next() < 0.5 { 1 } else { -1 };
        }
    }
    let core_map: Vec<usize> = (0..n).map(|j| j * cores / n).collect();
    let q = QuantizedWeights::new(
        core_map,
        vec![[5e-9, 1e-8, 2e-8, 4e-8]; cores],
        Some(QuantMatrix::new(WeightMatrix::Input, n_in, n, mi, si).unwrap()),
        QuantMatrix::new(WeightMatrix::Recurrent, n, n, mr, sr).unwrap(),
        1e-8,
    )
    .unwrap();
    let mut options = MapOptions::default();
    if variant == Variant::Chip {
        let mut chip = dynap_model::ChipSynapses::defaults(n);
        chip.nmda = dynap_model::DendriteParams::with_time_constant(n, 40e-3, 100.0, 25e-12);
        chip.w_in_types = Some(
            (0..n_in * n)
                .map(|k| dynap_model::SynapseChoice {
                    nmda: k % 3 == 0,
                    shunt: k % 2 == 0,
                })
                .collect(),
        );
        chip.w_rec_types = Some(
            (0..n * n)
                .map(|k| dynap_model::SynapseChoice {
                    nmda: k % 4 == 1,
                    shunt: k % 5 == 0,
                })
                .collect(),
        );
        options.chip = Some(chip);
    }
    // No DC current: the twin runs from power-up, before the stimulus starts, and with a DC current
    // its neurons would not be at rest when it does.
    let mut params = NeuronParams::defaults(n);
    params.i_dc = vec![0.0; n];
    let mapped = map(&q, &params, 1e-3, variant, &options).unwrap();
    let raster: Vec<f64> = (0..steps * n_in)
        .map(|_| f64::from(u8::from(next() < 0.05)))
        .collect();
    (mapped, raster, steps)
}

fn simulate_reverse_mapped(
    mapped: &dynap_config::Mapped,
    raster: &[f64],
    steps: usize,
) -> Vec<f64> {
    let u = unmap(
        &mapped.config,
        Some(&mapped.mapping),
        1e-8,
        1e-3,
        &BiasGenerator::dynapse2(),
    )
    .unwrap();
    let data: Vec<f32> = raster.iter().map(|&v| v as f32).collect();
    let spikes = dynap_model::simulate_spikes(
        &u.network,
        Input::Spikes {
            data: &data,
            batch: 1,
            steps,
        },
        &RunOptions::default(),
    )
    .unwrap();
    spikes.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn a_chip_twin_equals_the_reverse_mapped_chip_simulation_spike_for_spike() {
    let (mapped, raster, steps) = setup_variant(2, Variant::Chip);
    assert_eq!(mapped.mapping.variant, Variant::Chip);
    let expected = simulate_reverse_mapped(&mapped, &raster, steps);
    assert!(
        expected.iter().sum::<f64>() > 20.0,
        "the network must spike"
    );
    // The same configuration run as Rockpool's model spikes differently: the variant matters.
    let rockpool_twin = play_fresh(exact_twin(), &mapped, &raster, steps).raster;
    assert_ne!(rockpool_twin, expected);
    let chip_twin = EmulatorOptions {
        variant: Variant::Chip,
        ..exact_twin()
    };
    let played = play_fresh(chip_twin, &mapped, &raster, steps);
    assert_eq!(played.unexpected, 0);
    let first = played
        .raster
        .iter()
        .zip(&expected)
        .position(|(a, b)| a != b);
    assert!(
        first.is_none(),
        "first difference at {first:?} of {} ({} vs {} spikes)",
        expected.len(),
        played.raster.iter().sum::<f64>(),
        expected.iter().sum::<f64>()
    );
}

/// A new twin with `options`, configured with `mapped`, playing `raster`.
fn play_fresh(
    options: EmulatorOptions,
    mapped: &dynap_config::Mapped,
    raster: &[f64],
    steps: usize,
) -> Played {
    let mut emu = Emulator::new(options);
    emu.apply(&mapped.config).unwrap();
    play(
        &mut emu,
        &mapped.mapping,
        raster,
        steps,
        &PlayOptions::default(),
    )
    .unwrap()
}

fn exact_twin() -> EmulatorOptions {
    EmulatorOptions {
        mismatch: 0.0,
        ..EmulatorOptions::default()
    }
}

#[test]
fn without_mismatch_the_twin_equals_the_reverse_mapped_simulation_spike_for_spike() {
    let (mapped, raster, steps) = setup(1);
    let expected = simulate_reverse_mapped(&mapped, &raster, steps);
    assert!(
        expected.iter().sum::<f64>() > 20.0,
        "the network must spike"
    );
    let mut emu = Emulator::new(exact_twin());
    emu.apply(&mapped.config).unwrap();
    let played = play(
        &mut emu,
        &mapped.mapping,
        &raster,
        steps,
        &PlayOptions::default(),
    )
    .unwrap();
    assert_eq!(played.unexpected, 0);
    assert_eq!(played.raster, expected);
    // Again after a reset: the same.
    emu.reset().unwrap();
    let again = play(
        &mut emu,
        &mapped.mapping,
        &raster,
        steps,
        &PlayOptions::default(),
    )
    .unwrap();
    assert_eq!(again.raster, expected);
}

#[test]
fn across_cores_and_across_the_clock_wrap_too() {
    let (mapped, raster, steps) = setup(2);
    let expected = simulate_reverse_mapped(&mapped, &raster, steps);
    let mut emu = Emulator::new(EmulatorOptions {
        clock_start_us: u64::from(u32::MAX) - 150_000, // wraps during the stimulus
        ..exact_twin()
    });
    emu.apply(&mapped.config).unwrap();
    let played = play(
        &mut emu,
        &mapped.mapping,
        &raster,
        steps,
        &PlayOptions::default(),
    )
    .unwrap();
    let total = |r: &[f64]| r.iter().sum::<f64>();
    // Two cores: a neuron's input lines are its core's tags, in the order of the input channels, so
    // the sums are the simulator's, bit for bit, across the wrap too.
    assert!(total(&expected) > 20.0);
    assert_eq!(played.raster, expected);
    assert!(emu.time_us().unwrap() < 1_000_000, "the clock wrapped");
}

#[test]
fn mismatch_makes_a_different_chip_and_the_same_seed_the_same_chip() {
    let (mapped, raster, steps) = setup(1);
    let run = |seed: u64| {
        let mut emu = Emulator::new(EmulatorOptions {
            mismatch: 0.2,
            seed,
            ..EmulatorOptions::default()
        });
        emu.apply(&mapped.config).unwrap();
        play(
            &mut emu,
            &mapped.mapping,
            &raster,
            steps,
            &PlayOptions::default(),
        )
        .unwrap()
        .raster
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn control_events_come_back_with_the_hop_rewritten() {
    let mut emu = Emulator::new(exact_twin());
    emu.write_events(&[control_event(5000)]).unwrap();
    let back = emu.read_events().unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].destination.x_hop.get(), -6);
    assert_eq!(back[0].destination.y_hop.get(), -7);
    assert_eq!(back[0].timestamp, 5000);
}

#[test]
fn faults_are_errors_not_hangs() {
    let (mapped, raster, steps) = setup(1);
    // Dropped output events: fewer spikes, no hang.
    let mut emu = Emulator::new(EmulatorOptions {
        drop_every: 3,
        ..exact_twin()
    });
    emu.apply(&mapped.config).unwrap();
    let lossy = play(
        &mut emu,
        &mapped.mapping,
        &raster,
        steps,
        &PlayOptions::default(),
    )
    .unwrap();
    let full = simulate_reverse_mapped(&mapped, &raster, steps);
    assert!(lossy.raster.iter().sum::<f64>() < full.iter().sum::<f64>());
    // Late input events are delivered at once and counted.
    let mut emu = Emulator::new(exact_twin());
    emu.apply(&mapped.config).unwrap();
    let input = mapped
        .mapping
        .inputs
        .iter()
        .find(|d| !d.is_empty())
        .unwrap()[0];
    emu.write_events(&[Event {
        destination: input,
        timestamp: 50_000,
    }])
    .unwrap();
    emu.read_events().unwrap();
    emu.write_events(&[Event {
        destination: input,
        timestamp: 1_000,
    }])
    .unwrap();
    emu.read_events().unwrap();
    assert_eq!(emu.late_events(), 1);
    // A device that never answers: a timeout after the bounded number of reads.
    struct Silent;
    impl Transport for Silent {
        fn name(&self) -> String {
            "silent".into()
        }
        fn reset(&mut self) -> Result<(), HwError> {
            Ok(())
        }
        fn apply(&mut self, _: &dynap_config::Configuration) -> Result<(), HwError> {
            Ok(())
        }
        fn write_events(&mut self, _: &[Event]) -> Result<(), HwError> {
            Ok(())
        }
        fn read_events(&mut self) -> Result<Vec<Event>, HwError> {
            Ok(Vec::new())
        }
        fn time_us(&mut self) -> Result<u32, HwError> {
            Ok(0)
        }
    }
    let e = play(
        &mut Silent,
        &mapped.mapping,
        &raster,
        steps,
        &PlayOptions {
            max_reads: 5,
            ..PlayOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(
        e.problem(),
        &HwProblem::NoEndMarker {
            reads: 5,
            device: "silent".into()
        }
    );
    // A configuration the device refuses.
    let mut bad = mapped.config.clone();
    dynap_config::set_param(
        &mut bad.chips[0].cores[0].parameters,
        "NOT_A_BIAS_N",
        dynap_config::Parameter::for_name("NOT_A_BIAS_N", 0, 0).unwrap(),
    );
    let e = Emulator::new(exact_twin()).apply(&bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    let HwProblem::RulesBroken { violations } = e.problem() else {
        panic!("not a broken rule: {e}");
    };
    assert_eq!(
        violations
            .iter()
            .map(|v| (v.at, v.rule.clone()))
            .collect::<Vec<_>>(),
        vec![(
            dynap_config::Location::core(0, 0),
            dynap_config::Rule::UnknownBias {
                name: "NOT_A_BIAS_N".into()
            }
        )]
    );
    assert!(e.to_string().contains("unknown bias name"), "{e}");
    // A raster of the wrong size.
    let e = play(
        &mut Emulator::new(exact_twin()),
        &mapped.mapping,
        &raster[1..],
        steps,
        &PlayOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        e.problem(),
        &HwProblem::RasterSize {
            values: raster.len() - 1,
            steps,
            channels: mapped.mapping.inputs.len()
        }
    );
    assert!(e.to_string().contains("raster holds"), "{e}");
    // A value that is not a spike count, named by step and channel.
    let mut half = raster.clone();
    half[2 * mapped.mapping.inputs.len() + 3] = 0.5;
    let e = play(
        &mut Emulator::new(exact_twin()),
        &mapped.mapping,
        &half,
        steps,
        &PlayOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.problem(),
        &HwProblem::NotASpikeCount {
            step: 2,
            channel: 3,
            value: 0.5
        }
    );
}

/// The bridge against the fake samna module (`bridge/fake_samna`), which records calls and echoes
/// events with `x_hop + 1`.
#[test]
fn the_samna_bridge_speaks_to_samna() {
    let log = std::env::temp_dir().join(format!("dynap-fake-samna-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/bridge/fake_samna");
    let bitfile = std::env::temp_dir().join(format!("dynap-fake-{}.bit", std::process::id()));
    std::fs::write(&bitfile, b"bitstream").unwrap();
    let options = BridgeOptions {
        env: vec![
            ("PYTHONPATH".into(), fake.into()),
            ("FAKE_SAMNA_LOG".into(), log.display().to_string()),
        ],
        bitfile: Some(bitfile.clone()),
        chips: 2,
        ..BridgeOptions::default()
    };
    let mut b = SamnaBridge::start(&options).expect("python3 and the fake samna");
    assert!(b.name().contains("FAKE0001"), "{}", b.name());
    let (mapped, _, _) = setup(1);
    b.apply(&mapped.config).unwrap();
    let sent = vec![
        control_event(1234),
        Event {
            timestamp: 99,
            ..control_event(0)
        },
    ];
    b.write_events(&sent).unwrap();
    let back = b.read_events().unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].destination.x_hop.get(), -6);
    assert_eq!(back[0].timestamp, 1234);
    assert_eq!(b.time_us().unwrap(), 0);
    // An event the board sends back with a hop of +8 (the fake adds one to x_hop 7): the record's
    // field and value, as a protocol error.
    b.write_events(&[Event {
        destination: Destination {
            x_hop: Hop::new(7).unwrap(),
            ..control_event(0).destination
        },
        timestamp: 3,
    }])
    .unwrap();
    let e = b.read_events().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert_eq!(
        e.problem(),
        &HwProblem::MalformedEvent(CodecError {
            index: 0,
            problem: CodecProblem::Hop {
                field: HopField::X,
                value: 15
            }
        })
    );
    assert!(e.to_string().contains("x_hop field 15"), "{e}");
    b.reset().unwrap();
    drop(b);
    let calls = std::fs::read_to_string(&log).unwrap();
    let json_len = dynap_config::to_json(&mapped.config).len();
    // The vendor's sequence, in order: open, upload the bitstream, reset the FPGA, take the model,
    // power-cycle and reset both chips, clear the errors; clear them again before applying; a reset
    // resets the chips' logic and drains; closing closes the device.
    let calls: Vec<&str> = calls.lines().collect();
    let expected = [
        "get_all_devices".to_owned(),
        "open_device FAKE0001".to_owned(),
        format!("configure_opal_kelly {}", bitfile.display()),
        "reset_fpga".to_owned(),
        "get_model".to_owned(),
        "reset PowerCycle 3".to_owned(),
        "reset ConfigReset 3".to_owned(),
        "clear_error_queue".to_owned(),
        format!("from_json {json_len}"),
        "clear_error_queue".to_owned(),
        format!("apply_configuration {json_len}"),
        "grid_bus_write_events 2".to_owned(),
    ];
    assert_eq!(&calls[..expected.len()], &expected, "{calls:#?}");
    let tail = [
        "reset LogicReset 3",
        "read_events 0",
        "clear_error_queue",
        "close_device",
    ];
    assert_eq!(&calls[calls.len() - tail.len()..], &tail, "{calls:#?}");
    // A bitfile the FPGA does not take: the reason, from the vendor's call.
    let e = SamnaBridge::start(&BridgeOptions {
        env: vec![("PYTHONPATH".into(), fake.into())],
        bitfile: Some("/nonexistent/Dynapse2Stack.bit".into()),
        ..BridgeOptions::default()
    })
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("did not take the bitfile"), "{e}");
    let _ = std::fs::remove_file(&bitfile);
    // No board: a clear refusal; no samna at all: says so.
    let e = SamnaBridge::start(&BridgeOptions {
        env: vec![
            ("PYTHONPATH".into(), fake.into()),
            ("FAKE_SAMNA_NO_BOARD".into(), "1".into()),
        ],
        ..BridgeOptions::default()
    })
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(
        e.to_string().contains("samna sees no DYNAP-SE2 board"),
        "{e}"
    );
    let e = SamnaBridge::start(&BridgeOptions {
        env: vec![("PYTHONPATH".into(), "/nonexistent".into())],
        ..BridgeOptions::default()
    })
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(
        matches!(e.problem(), HwProblem::NoSamna { message } if message.starts_with("ModuleNotFoundError")),
        "{e}"
    );
    assert!(e.to_string().contains("no samna"), "{e}");
    // The bridge dies in the middle of a run: gone, not a hang.
    let mut b = SamnaBridge::start(&BridgeOptions {
        env: vec![
            ("PYTHONPATH".into(), fake.into()),
            ("FAKE_SAMNA_DIE_ON_READ".into(), "1".into()),
        ],
        ..BridgeOptions::default()
    })
    .unwrap();
    b.write_events(&[control_event(5)]).unwrap();
    let e = b.read_events().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    assert!(
        matches!(
            e.problem(),
            HwProblem::BridgeEnded {
                end: BridgeEnd::ClosedOutput | BridgeEnd::Exited,
                ..
            }
        ),
        "{e}"
    );
    assert!(b.read_events().is_err(), "and it stays gone");
    // A Python that does not exist: gone, with the reason.
    let e = SamnaBridge::start(&BridgeOptions {
        python: "/nonexistent/python".into(),
        ..BridgeOptions::default()
    })
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    assert!(
        matches!(e.problem(), HwProblem::BridgeNotStarted { python, .. } if python == std::path::Path::new("/nonexistent/python")),
        "{e}"
    );
    assert!(e.to_string().contains("cannot start"), "{e}");
}

/// A device that records what is asked of it: a calibration may use only what a board offers, so
/// every configuration must keep the chip's rules and every event written must be an input event
/// through a tag some CAM entry of the applied configuration listens to (or a control event).
struct Recording {
    inner: Emulator,
    listened: std::collections::BTreeSet<u16>,
    configurations: usize,
    events: usize,
    refused: Vec<String>,
}

impl Transport for Recording {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn reset(&mut self) -> Result<(), HwError> {
        self.inner.reset()
    }
    fn apply(&mut self, config: &dynap_config::Configuration) -> Result<(), HwError> {
        let broken = dynap_config::validate(config, None);
        if !broken.is_empty() {
            self.refused.push(format!("{broken:?}"));
        }
        self.listened = config
            .chips
            .iter()
            .flat_map(|c| c.cores.iter())
            .flat_map(|c| c.neurons.iter())
            .flat_map(|n| n.synapses.iter().filter(|s| s.is_active()))
            .map(|s| s.tag.get())
            .collect();
        self.configurations += 1;
        self.inner.apply(config)
    }
    fn write_events(&mut self, events: &[Event]) -> Result<(), HwError> {
        for e in events {
            let tag = e.destination.tag.get();
            if tag != dynap_config::CONTROL_TAG && !self.listened.contains(&tag) {
                self.refused
                    .push(format!("an event to tag {tag}, which no CAM listens to"));
            }
        }
        self.events += events.len();
        self.inner.write_events(events)
    }
    fn read_events(&mut self) -> Result<Vec<Event>, HwError> {
        self.inner.read_events()
    }
    fn time_us(&mut self) -> Result<u32, HwError> {
        self.inner.time_us()
    }
}

/// Calibration through the device interface recovers the twin's hidden factors of a core: at 20 %
/// mismatch every quantity the profile calls identifiable within 2 % (relative RMS over the 256
/// neurons; the truth spreads 11 to 19 %), and the profile predicts the rates of stimuli it did not
/// use far better than the nominal neuron.
#[test]
fn calibration_recovers_the_twins_factors() {
    let twin = EmulatorOptions {
        mismatch: 0.2,
        seed: 3,
        dt: 1e-4,
        ..EmulatorOptions::default()
    };
    let mut device = Recording {
        inner: Emulator::new(twin.clone()),
        listened: Default::default(),
        configurations: 0,
        events: 0,
        refused: Vec::new(),
    };
    let options = CalibrateOptions {
        cores: vec![1],
        ..CalibrateOptions::chips(1)
    };
    let mut lines = 0;
    let found = calibrate(&mut device, &options, &mut |_| lines += 1).unwrap();
    assert!(device.refused.is_empty(), "{:?}", device.refused);
    assert_eq!((device.configurations, lines), (15, 15));
    assert!(device.events > 0);
    let p = &found.profile;
    assert_eq!(p.identifiable, ["t_ref", "dc_gain", "syn_gain", "tau_mem"]);
    assert_eq!(p.neurons.len(), 256);
    assert!(p.neurons.iter().all(|n| (n.chip, n.core) == (0, 1)));
    assert!(
        p.chip_time_s > 1.0 && p.chip_time_s < 60.0,
        "{}",
        p.chip_time_s
    );
    assert!((p.residual - 0.2).abs() < 0.03, "{}", p.residual);
    let truth = describe(&twin, 1);
    for name in &p.identifiable {
        let (mut err, mut spread) = (0.0, 0.0);
        for n in &p.neurons {
            let t = &truth[n.slot()];
            assert_eq!((t.chip, t.core, t.neuron), (n.chip, n.core, n.neuron));
            let (f, x) = (n.factor(name).unwrap(), t.factor(name).unwrap());
            err += (f / x - 1.0).powi(2);
            spread += (x - 1.0).powi(2);
        }
        let (err, spread) = ((err / 256.0).sqrt(), (spread / 256.0).sqrt());
        assert!(
            err < 0.02 && spread > 0.1,
            "{name}: error {err}, spread {spread}"
        );
    }
    let check = predict_held_out(&mut device, &options, p, &mut |_| {}).unwrap();
    assert!(device.refused.is_empty(), "{:?}", device.refused);
    for (what, with, without) in &check.stimuli {
        assert!(
            *with < 0.05 && *with < without / 3.0,
            "{what}: {with} with the profile, {without} without"
        );
    }
}

/// A neuron's true factors depend on its place only: the same neuron in two configurations that
/// use different other cores fires the same spikes, and `describe` reports the factors the twin
/// draws for that place.
#[test]
fn the_twins_mismatch_belongs_to_the_place() {
    let run = |core_map: Vec<usize>| -> Vec<f64> {
        let n = core_map.len();
        let mut params = NeuronParams::defaults(n);
        params.i_dc = vec![5e-8; n];
        let cores = core_map.iter().max().unwrap() + 1;
        let q = QuantizedWeights::new(
            core_map,
            vec![[1e-8; 4]; cores],
            None,
            QuantMatrix::zeros(n, n),
            1e-8,
        )
        .unwrap();
        let mapped = map(&q, &params, 1e-3, Variant::Rockpool, &MapOptions::default()).unwrap();
        let mut twin = Emulator::new(EmulatorOptions {
            mismatch: 0.3,
            seed: 9,
            ..EmulatorOptions::default()
        });
        twin.apply(&mapped.config).unwrap();
        let out = play(
            &mut twin,
            &mapped.mapping,
            &[],
            200,
            &PlayOptions::default(),
        )
        .unwrap();
        // The last neuron's spikes: chip 0, core 2, neuron 0 in both.
        (0..200).map(|k| out.raster[k * n + n - 1]).collect()
    };
    let alone = run(vec![2]);
    let with_others = run(vec![0, 0, 1, 2]);
    assert!(alone.iter().sum::<f64>() > 5.0);
    assert_eq!(alone, with_others);
    // The truth names that place, and its factors are the draw of its slot.
    let truth = describe(
        &EmulatorOptions {
            mismatch: 0.3,
            seed: 9,
            ..EmulatorOptions::default()
        },
        1,
    );
    let t = &truth[slot(0, 2, 0)];
    assert_eq!((t.chip, t.core, t.neuron), (0, 2, 0));
    let drawn = dynap_mismatch::Mismatch::new(0.3).factors_at(9, &[slot(0, 2, 0)]);
    assert_eq!(t.factor("Itau_mem"), Some(drawn[0].params[10]));
    assert!(
        t.factor("Itau_gaba").is_none(),
        "the rockpool model has no dendrites"
    );
    assert!(t.factor("gaba_gain").is_none());
}
