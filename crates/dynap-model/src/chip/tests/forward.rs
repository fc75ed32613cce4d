//! Tests of the `chip` variant's forward pass.

use crate::Simulator;
use crate::chip::*;
use crate::error::Error;
use crate::network::{Matrix, Network, Variant};
use crate::run::{Input, Recording, RunOptions};

/// A network of the `chip` variant with the default parameters.
pub(super) fn chip_net(n: usize) -> Network {
    let mut net = Network::with_defaults(n);
    net.variant = Variant::Chip;
    net
}

fn run(net: &Network, data: &[f64], batch: usize, steps: usize, spikes: bool) -> ChipTrace<f64> {
    let sim = ChipSimulator::<f64>::new(net).unwrap();
    let input = if spikes {
        Input::Spikes { data, batch, steps }
    } else {
        Input::Weighted { data, batch, steps }
    };
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    sim.run(input, None, &opts).unwrap()
}

/// Firing rates (Hz) of neurons driven by the DC currents `idc`, over `seconds`, at time step `dt`.
fn rates(idc: &[f64], dt: f64, seconds: f64) -> Vec<f64> {
    let mut net = chip_net(idc.len());
    net.dt = dt;
    net.params.i_dc = idc.to_vec();
    let steps = (seconds / dt).round() as usize;
    let x = vec![0.0; steps * idc.len()];
    let sim = ChipSimulator::<f64>::new(&net).unwrap();
    let tr = sim
        .run(
            Input::Weighted {
                data: &x,
                batch: 1,
                steps,
            },
            None,
            &RunOptions {
                recording: Recording::Spikes,
                threads: 1,
            },
        )
        .unwrap();
    tr.spike_counts().iter().map(|c| c / seconds).collect()
}

#[test]
fn the_rate_under_dc_input_follows_the_f_i_curve_of_a_much_finer_step() {
    // Rates from 4 to 55 Hz. The reference step is 100x finer than the checked one; halving the
    // step further moves no rate by more than one spike in the window.
    let idc = [2e-11, 5e-11, 1e-10, 2e-10, 5e-10, 1e-9, 2e-9];
    let seconds = 2.0;
    let reference = rates(&idc, 1e-6 * 10.0, seconds);
    assert!(reference.windows(2).all(|w| w[0] < w[1]), "{reference:?}");
    assert!(reference[0] > 1.0 && reference[6] > 40.0, "{reference:?}");
    let error = |dt: f64| -> Vec<f64> {
        rates(&idc, dt, seconds)
            .iter()
            .zip(&reference)
            .map(|(r, f)| (r - f).abs())
            .collect()
    };
    // At 0.1 ms every rate is within 5 % of the reference (plus one spike of counting).
    let fine = error(1e-4);
    for (k, e) in fine.iter().enumerate() {
        assert!(
            *e <= 0.05 * reference[k] + 1.0 / seconds,
            "Idc {}: {fine:?}",
            idc[k]
        );
    }
    // Explicit Euler converges: the error shrinks with the step, at every current.
    let coarse = error(1e-3);
    let middle = error(3e-4);
    for k in 0..idc.len() {
        assert!(
            fine[k] <= middle[k] && middle[k] <= coarse[k],
            "{coarse:?} {middle:?} {fine:?}"
        );
    }
}

/// One neuron, four input channels, one per dendrite (AMPA, NMDA, GABA, SHUNT), each dendrite with
/// its own time constant.
fn four_dendrite_net(taus: [f64; 4], w: f64) -> Network {
    let mut net = chip_net(1);
    let kappa = (net.params.kappa_n[0] + net.params.kappa_p[0]) / 2.0;
    net.params.i_tau_syn[0] = net.params.u_t[0] / kappa * net.params.c_syn[0] / taus[0];
    net.params.i_gain_syn[0] = 100.0 * net.params.i_tau_syn[0];
    let mut chip = ChipSynapses::defaults(1);
    chip.nmda = DendriteParams::with_time_constant(1, taus[1], 100.0, 25e-12);
    chip.gaba = DendriteParams::with_time_constant(1, taus[2], 100.0, 25e-12);
    chip.shunt = DendriteParams::with_time_constant(1, taus[3], 100.0, 24.5e-12);
    chip.w_in_types = Some(vec![
        SynapseChoice::default(),
        SynapseChoice {
            nmda: true,
            shunt: false,
        },
        SynapseChoice::default(),
        SynapseChoice {
            nmda: false,
            shunt: true,
        },
    ]);
    net.w_in = Matrix::from_vec(4, 1, vec![w, w, -w, -w]);
    net.chip = Some(chip);
    net
}

#[test]
fn an_isolated_dendrite_jumps_by_its_pulse_and_decays_with_its_time_constant() {
    let taus = [10e-3, 50e-3, 5e-3, 20e-3];
    let net = four_dendrite_net(taus, 2.0);
    let steps = 40;
    let mut x = vec![0.0; steps * 4];
    x[..4].fill(1.0);
    let tr = run(&net, &x, 1, steps, true);
    let rec = tr.records.unwrap();
    let p = &net.params;
    let io = p.i_o[0];
    let dt = net.dt;
    let t_pulse = p.v_th[0] * p.c_pulse[0] / p.i_pulse[0];
    for (k, &tau) in taus.iter().enumerate() {
        let i = &rec.dendrites[k];
        // The pulse, integrated exactly: charge towards g Iw for t_pulse, then decay for the rest.
        let target = 100.0 * 2.0 * net.i_scale;
        let jump = target * (1.0 - (-t_pulse / tau).exp()) * (-(dt - t_pulse) / tau).exp();
        let rel = ((i[0] - io) - jump).abs() / jump;
        assert!(rel < 1e-9, "dendrite {k}: jump {} vs {jump}", i[0] - io);
        // Then a pure exponential towards Io with the dendrite's own time constant.
        for t in 1..steps {
            let ratio = (i[t] - io) / (i[t - 1] - io);
            let expected = (-dt / tau).exp();
            assert!(
                (ratio - expected).abs() < 1e-9,
                "dendrite {k}, step {t}: {ratio} vs {expected}"
            );
        }
        let fitted = -dt * 30.0 / ((i[31] - io) / (i[1] - io)).ln();
        assert!(
            (fitted - tau).abs() < 1e-9 * tau,
            "dendrite {k}: tau {fitted} vs {tau}"
        );
    }
    // Every other dendrite stays at rest when only one is driven.
    let mut only_gaba = vec![0.0; steps * 4];
    only_gaba[2] = 1.0;
    let rec = run(&net, &only_gaba, 1, steps, true).records.unwrap();
    for k in [0, 1, 3] {
        assert!(
            rec.dendrites[k].iter().all(|&v| v == io),
            "dendrite {k} moved"
        );
    }
    assert!(rec.dendrites[2][0] > 10.0 * io);
}

/// A neuron driven by `idc` with a regular 100 Hz input through weight `w` of synapse `choice`;
/// its spike count over 2 s.
fn count_with_input(idc: f64, w: f64, choice: SynapseChoice) -> f64 {
    let mut net = chip_net(1);
    net.params.i_dc[0] = idc;
    net.w_in = Matrix::from_vec(1, 1, vec![w]);
    let mut chip = ChipSynapses::defaults(1);
    chip.w_in_types = Some(vec![choice]);
    net.chip = Some(chip);
    let steps = 2000;
    let x: Vec<f64> = (0..steps)
        .map(|t| f64::from(u8::from(t % 10 == 0)))
        .collect();
    run(&net, &x, 1, steps, true).spike_counts()[0]
}

#[test]
fn inhibitory_input_lowers_the_rate_and_excitatory_input_raises_it() {
    let idc = 5e-10;
    let plain = count_with_input(idc, 0.0, SynapseChoice::default());
    assert!(plain > 40.0, "{plain}");
    let gaba = count_with_input(idc, -0.5, SynapseChoice::default());
    let shunt = count_with_input(
        idc,
        -0.5,
        SynapseChoice {
            nmda: false,
            shunt: true,
        },
    );
    let ampa = count_with_input(idc, 0.5, SynapseChoice::default());
    assert!(gaba < 0.8 * plain, "GABA: {gaba} vs {plain}");
    assert!(shunt < 0.8 * plain, "SHUNT: {shunt} vs {plain}");
    assert!(ampa > 1.2 * plain, "AMPA: {ampa} vs {plain}");
    // Stronger inhibition silences the neuron.
    assert_eq!(count_with_input(idc, -5.0, SynapseChoice::default()), 0.0);
    // The `rockpool` variant, same network and input: the negative weight changes nothing.
    let mut net = Network::with_defaults(1);
    net.params.i_dc[0] = idc;
    let mut sim_counts = |w: f64| {
        net.w_in = Matrix::from_vec(1, 1, vec![w]);
        let sim = Simulator::<f64>::new(&net).unwrap();
        let x: Vec<f64> = (0..2000)
            .map(|t| f64::from(u8::from(t % 10 == 0)))
            .collect();
        let tr = sim
            .run(
                Input::Spikes {
                    data: &x,
                    batch: 1,
                    steps: 2000,
                },
                None,
                &RunOptions::default(),
            )
            .unwrap();
        tr.spikes.iter().sum::<f64>()
    };
    assert_eq!(sim_counts(-0.5), sim_counts(0.0));
}

#[test]
fn nmda_input_is_gated_by_the_membrane_voltage() {
    // The same input on AMPA or on NMDA, from rest and from a depolarised membrane (a DC current
    // below the rheobase): the peak rise of Imem it causes, NMDA over AMPA.
    let peak_rise = |idc: f64, nmda: bool| -> f64 {
        let mut net = chip_net(1);
        net.params.i_dc[0] = idc;
        net.params.i_f_nmda[0] = 5e-11;
        net.w_in = Matrix::from_vec(1, 1, vec![0.02]);
        let mut chip = ChipSynapses::defaults(1);
        chip.w_in_types = Some(vec![SynapseChoice { nmda, shunt: false }]);
        net.chip = Some(chip);
        let (settle, steps) = (300, 400);
        let mut x = vec![0.0; steps];
        x[settle] = 1.0;
        let tr = run(&net, &x, 1, steps, true);
        assert_eq!(tr.spike_counts()[0], 0.0, "the test wants no spike");
        let imem = tr.records.unwrap().imem;
        let before = imem[settle - 1];
        imem[settle..].iter().fold(0.0f64, |m, &v| m.max(v)) - before
    };
    // At rest (Imem = Io, a hundredth of If_nmda) the gate is closed; with the membrane held at
    // about If_nmda it lets about half through.
    let at_rest = peak_rise(0.0, true) / peak_rise(0.0, false);
    let depolarised = peak_rise(1e-11, true) / peak_rise(1e-11, false);
    assert!(at_rest < 0.05, "NMDA/AMPA at rest: {at_rest}");
    assert!(depolarised > 0.3, "NMDA/AMPA depolarised: {depolarised}");
}

#[test]
fn bad_networks_and_inputs_are_named_errors() {
    let net = Network::with_defaults(2);
    assert_eq!(
        ChipSimulator::<f64>::new(&net).unwrap_err().to_string(),
        "this network is of the `rockpool` model variant; the `chip` simulator cannot run it"
    );
    let mut net = chip_net(2);
    assert!(Simulator::<f64>::new(&net).is_err());
    let mut chip = ChipSynapses::defaults(2);
    chip.gaba.c[1] = 0.0;
    net.chip = Some(chip.clone());
    assert_eq!(
        ChipSimulator::<f64>::new(&net).unwrap_err().to_string(),
        "C_gaba of neuron 1 is 0e0; it must be finite and > 0"
    );
    chip.gaba.c[1] = 25e-12;
    chip.w_rec_types = Some(vec![SynapseChoice::default(); 3]);
    net.chip = Some(chip);
    assert_eq!(
        ChipSimulator::<f64>::new(&net).unwrap_err().to_string(),
        "the synapse types of w_rec have 3 entries, expected one per weight (4)"
    );
    let net = chip_net(2);
    let sim = ChipSimulator::<f64>::new(&net).unwrap();
    let opts = RunOptions::default();
    let bad = [0.0, f64::NAN, 0.0, 0.0];
    assert!(matches!(
        sim.run(
            Input::Weighted {
                data: &bad,
                batch: 1,
                steps: 2
            },
            None,
            &opts
        ),
        Err(Error::NonFiniteInput {
            batch: 0,
            step: 0,
            channel: 1
        })
    ));
    assert!(matches!(
        sim.run(
            Input::Spikes {
                data: &bad,
                batch: 1,
                steps: 2
            },
            None,
            &opts
        ),
        Err(Error::NoInputWeights)
    ));
}

#[test]
fn threads_and_split_runs_do_not_change_a_bit() {
    let mut net = chip_net(5);
    let w: Vec<f64> = (0..15)
        .map(|k| ((k * 7) % 11) as f64 / 11.0 - 0.4)
        .collect();
    net.w_in = Matrix::from_vec(3, 5, w);
    net.w_rec = Matrix::from_vec(
        5,
        5,
        (0..25)
            .map(|k| ((k * 5) % 7) as f64 * 0.05 - 0.12)
            .collect(),
    )
    .unwrap();
    let mut chip = ChipSynapses::defaults(5);
    chip.w_rec_types = Some(
        (0..25)
            .map(|k| SynapseChoice {
                nmda: k % 3 == 0,
                shunt: k % 2 == 0,
            })
            .collect(),
    );
    net.chip = Some(chip);
    for j in 0..5 {
        net.params.i_dc[j] = 2e-10 * (j + 1) as f64;
    }
    let (batch, steps) = (3, 300);
    let x: Vec<f32> = (0..batch * steps * 3)
        .map(|k| f32::from(u8::from((k * 2654435761) % 13 == 0)))
        .collect();
    let sim = ChipSimulator::<f32>::new(&net).unwrap();
    let full = |threads: usize| {
        sim.run(
            Input::Spikes {
                data: &x,
                batch,
                steps,
            },
            None,
            &RunOptions {
                recording: Recording::Full,
                threads,
            },
        )
        .unwrap()
    };
    let one = full(1);
    assert_eq!(full(2), one);
    assert!(one.spikes.iter().sum::<f32>() > 20.0);
    // The same spikes held as events give the same run; events of another width are refused.
    let events = crate::SpikeEvents::from_dense(&x, batch, steps, 3).unwrap();
    let opts_full = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    assert_eq!(
        sim.run(Input::Events(&events), None, &opts_full).unwrap(),
        one
    );
    let wide =
        crate::SpikeEvents::from_dense(&vec![0.0f32; batch * steps * 4], batch, steps, 4).unwrap();
    assert!(matches!(
        sim.run(Input::Events(&wide), None, &opts_full),
        Err(Error::InputShape { channels: 3, .. })
    ));
    // Two halves, the second from the first's final state, equal the whole (spikes of batch 0).
    let half = steps / 2;
    let first: Vec<f32> = x[..half * 3].to_vec();
    let second: Vec<f32> = x[half * 3..steps * 3].to_vec();
    let opts = RunOptions::default();
    let a = sim
        .run(
            Input::Spikes {
                data: &first,
                batch: 1,
                steps: half,
            },
            None,
            &opts,
        )
        .unwrap();
    let b = sim
        .run(
            Input::Spikes {
                data: &second,
                batch: 1,
                steps: steps - half,
            },
            Some(&a.final_state),
            &opts,
        )
        .unwrap();
    let joined: Vec<f32> = a.spikes.iter().chain(&b.spikes).copied().collect();
    assert_eq!(joined, one.spikes[..steps * 5]);
}
