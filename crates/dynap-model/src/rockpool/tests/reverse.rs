//! Tests of the `rockpool` variant's reverse pass.

use crate::error::Error;
use crate::events::SpikeEvents;
use crate::network::{Matrix, Network};
use crate::real::Real;
use crate::rockpool::*;
use crate::run::{GradientMask, GradientOptions, Input, Recording, RunOptions};

/// A small network in which every path is active: input and recurrent drive, strong adaptation, a
/// DC current, no refractory period (C_ref = 0, so the non-differentiable gate stays open).
fn active_net() -> Network {
    let (n, n_in) = (4, 3);
    let mut net = Network::with_defaults(n);
    let w = |k: usize| ((k * 7919 + 13) % 17) as f64 / 17.0;
    net.w_in =
        Some(Matrix::from_vec(n_in, n, (0..n_in * n).map(|k| 2.0 + 6.0 * w(k)).collect()).unwrap());
    net.w_rec = Matrix::from_vec(n, n, (0..n * n).map(|k| 3.0 * w(k + 5) - 1.5).collect()).unwrap();
    for j in 0..n {
        let f = 1.0 + 0.2 * j as f64;
        net.params.c_ref[j] = 0.0;
        net.params.i_dc[j] = 3e-11 * f;
        net.params.i_tau_mem[j] *= f;
        net.params.i_gain_syn[j] *= 0.5 * f;
        net.params.i_w_ahp[j] = 2e-9;
        net.params.i_gain_ahp[j] *= 4.0;
        net.params.i_pulse_ahp[j] = 3.5e-9;
        net.params.i_tau_syn[j] *= 1.0 + 0.1 * j as f64;
    }
    net
}

fn input(batch: usize, steps: usize, n_in: usize) -> Vec<f64> {
    (0..batch * steps * n_in)
        .map(|k| f64::from(u8::from((k * 2654435761) % 11 < 2)) * (1.0 + (k % 3) as f64 * 0.5))
        .collect()
}

/// Fixed pseudo-random loss weights on every recorded output.
fn coeffs(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|k| (((k + 1) * (seed * 2 + 7919)) % 101) as f64 / 101.0 - 0.4)
        .collect()
}

const SCALES: [f64; 5] = [1.0, 1e9, 1e9, 1e10, 1.0];

/// L = sum_k c_k * output_k * scale over spikes, imem, isyn, iahp, vmem.
fn loss(sim: &Simulator<f64>, net_input: &[f64], batch: usize, steps: usize) -> f64 {
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    let tr = sim
        .run(
            Input::Spikes {
                data: net_input,
                batch,
                steps,
            },
            None,
            &opts,
        )
        .unwrap();
    let st = tr.records.unwrap();
    [&tr.spikes, &st.imem, &st.isyn, &st.iahp, &st.vmem]
        .iter()
        .enumerate()
        .map(|(k, v)| {
            v.iter()
                .zip(coeffs(v.len(), k))
                .map(|(a, c)| a * c * SCALES[k])
                .sum::<f64>()
        })
        .sum()
}

fn adjoint(
    sim: &Simulator<f64>,
    net_input: &[f64],
    batch: usize,
    steps: usize,
    every: usize,
) -> Gradients {
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    let input = Input::Spikes {
        data: net_input,
        batch,
        steps,
    };
    let (_, tape) = sim.run_taped(input, None, &opts, every).unwrap();
    let len = batch * steps * sim.neurons();
    let c: Vec<Vec<f64>> = (0..5)
        .map(|k| coeffs(len, k).iter().map(|c| c * SCALES[k]).collect())
        .collect();
    let outs = OutputGradients {
        spikes: Some(&c[0]),
        imem: Some(&c[1]),
        isyn: Some(&c[2]),
        iahp: Some(&c[3]),
        vmem: Some(&c[4]),
        spikes_every_step: None,
    };
    sim.gradient(
        &tape,
        input,
        &outs,
        &GradientOptions {
            threads: 1,
            input: true,
            currents: true,
        },
    )
    .unwrap()
}

fn check(what: &str, adj: f64, fd: f64, scale: f64) {
    let err = (adj - fd).abs();
    assert!(
        err <= 1e-5 * fd.abs().max(adj.abs()) + 1e-7 * scale,
        "{what}: adjoint {adj:e}, finite difference {fd:e}"
    );
}

#[test]
fn the_adjoint_matches_central_finite_differences() {
    let beta = 4.0;
    let net = active_net();
    let (batch, steps, n_in) = (2, 80, 3);
    let x = input(batch, steps, n_in);
    let smooth = SpikeFunction::Smooth { beta };
    let sim = |net: &Network| {
        Simulator::<f64>::new(net)
            .unwrap()
            .with_spike_function(smooth)
    };
    let g = adjoint(&sim(&net), &x, batch, steps, 1);
    let central = |f: &dyn Fn(f64) -> f64, p: f64| {
        let h = 1e-5 * p.abs().max(1e-30);
        (f(p + h) - f(p - h)) / (2.0 * h)
    };
    // Weights.
    let wmax = g
        .w_rec
        .as_slice()
        .iter()
        .chain(g.w_in.as_ref().unwrap().as_slice())
        .fold(0f64, |a, b| a.max(b.abs()));
    assert!(wmax > 0.0);
    for (i, j) in [(0, 1), (1, 1), (2, 3), (3, 0)] {
        let f = |v: f64| {
            let mut m = net.clone();
            m.w_rec.as_mut_slice()[i * 4 + j] = v;
            loss(&sim(&m), &x, batch, steps)
        };
        check(
            &format!("w_rec[{i}][{j}]"),
            g.w_rec.get(i, j),
            central(&f, net.w_rec.get(i, j)),
            wmax,
        );
    }
    for (k, j) in [(0, 0), (1, 2), (2, 3)] {
        let f = |v: f64| {
            let mut m = net.clone();
            m.w_in.as_mut().unwrap().as_mut_slice()[k * 4 + j] = v;
            loss(&sim(&m), &x, batch, steps)
        };
        let w0 = net.w_in.as_ref().unwrap().get(k, j);
        check(
            &format!("w_in[{k}][{j}]"),
            g.w_in.as_ref().unwrap().get(k, j),
            central(&f, w0),
            wmax,
        );
    }
    // The input.
    let gi = g.input.as_ref().unwrap();
    // At inputs that are not 0: at 0 the synapse target sits on its floor (a kink of max(u, Io)).
    let nonzero: Vec<usize> = (0..x.len()).filter(|&i| x[i] > 0.0).collect();
    for idx in [
        nonzero[1],
        nonzero[9],
        nonzero[20],
        nonzero[nonzero.len() - 3],
    ] {
        let f = |v: f64| {
            let mut y = x.clone();
            y[idx] = v;
            loss(&sim(&net), &y, batch, steps)
        };
        check(&format!("input[{idx}]"), gi[idx], central(&f, x[idx]), wmax);
    }
    // Every bias current of two neurons (Iref and If_nmda must be exactly 0).
    for p in Param::CURRENTS {
        let gp = g.current(p).unwrap();
        let scale = gp.iter().fold(0f64, |a, b| a.max(b.abs()));
        for j in [0, 3] {
            if matches!(p, Param::Iref | Param::IfNmda) {
                assert_eq!(gp[j], 0.0, "{p:?}");
                continue;
            }
            let f = |v: f64| {
                let mut m = net.clone();
                m.params.get_mut(p)[j] = v;
                loss(&sim(&m), &x, batch, steps)
            };
            let p0 = net.params.get(p)[j];
            check(
                &format!("{}[{j}]", p.rockpool_name()),
                gp[j] * p0,
                central(&f, p0) * p0,
                scale * p0,
            );
        }
    }
}

#[test]
fn every_instruction_set_gives_the_same_gradients() {
    let net = active_net();
    let (batch, steps) = (2, 90);
    let x: Vec<f32> = input(batch, steps, 3).iter().map(|&v| v as f32).collect();
    let mut sim = Simulator::<f32>::new(&net).unwrap();
    let run = |sim: &Simulator<f32>| {
        let input = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let (_, tape) = sim
            .run_taped(input, None, &RunOptions::default(), 1)
            .unwrap();
        let c: Vec<f32> = coeffs(batch * steps * 4, 1)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let outs = OutputGradients {
            spikes: Some(&c),
            vmem: Some(&c),
            ..Default::default()
        };
        sim.gradient(&tape, input, &outs, &GradientOptions::default())
            .unwrap()
    };
    sim.isa = Isa::Baseline;
    let baseline = run(&sim);
    for isa in Isa::available() {
        sim.isa = isa;
        assert_eq!(run(&sim), baseline, "{isa:?}");
    }
}

/// For a network whose padded width differs from its size (20 neurons in 32 lanes), the gradient
/// with respect to input spikes is `w_in` times the gradient with respect to the weighted input of
/// the same run (given as that weighted input, formed in the kernel's order).
#[test]
fn the_input_spike_gradient_is_w_in_times_the_drive_gradient() {
    let (n, n_in, steps, batch) = (20, 7, 50, 2);
    let mut net = Network::with_defaults(n);
    let w = |k: usize| ((k * 7919 + 13) % 19) as f64 / 19.0;
    net.w_in =
        Some(Matrix::from_vec(n_in, n, (0..n_in * n).map(|k| 1.0 + 6.0 * w(k)).collect()).unwrap());
    net.w_rec = Matrix::from_vec(n, n, (0..n * n).map(|k| 2.0 * w(k + 3) - 1.0).collect()).unwrap();
    let x = input(batch, steps, n_in);
    // The weighted input as the kernel forms it: channel by channel, non-zero counts only.
    let w_in = net.w_in.as_ref().unwrap();
    let mut weighted = vec![0.0; batch * steps * n];
    for row in 0..batch * steps {
        for k in 0..n_in {
            let v = x[row * n_in + k];
            if v != 0.0 {
                for j in 0..n {
                    weighted[row * n + j] += v * w_in.get(k, j);
                }
            }
        }
    }
    let sim = Simulator::<f64>::new(&net).unwrap();
    let opts = RunOptions {
        recording: Recording::Spikes,
        threads: 1,
    };
    let c = coeffs(batch * steps * n, 2);
    let outs = OutputGradients {
        spikes: Some(&c),
        vmem: Some(&c),
        ..Default::default()
    };
    let grad = |input: Input<'_, f64>| {
        let (trace, tape) = sim.run_taped(input, None, &opts, 1).unwrap();
        let g = sim
            .gradient(&tape, input, &outs, &GradientOptions::default())
            .unwrap();
        (trace.spikes, g.input.unwrap())
    };
    let (spikes_a, g_spikes) = grad(Input::Spikes {
        data: &x,
        batch,
        steps,
    });
    let (spikes_b, g_weighted) = grad(Input::Weighted {
        data: &weighted,
        batch,
        steps,
    });
    assert_eq!(spikes_a, spikes_b, "the two inputs are the same run");
    assert!(g_weighted.iter().any(|&v| v != 0.0));
    for row in 0..batch * steps {
        for k in 0..n_in {
            let want: f64 = (0..n)
                .map(|j| w_in.get(k, j) * g_weighted[row * n + j])
                .sum();
            let got = g_spikes[row * n_in + k];
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
                "row {row}, channel {k}: {got:e} vs {want:e}"
            );
        }
    }
}

/// A spike gradient given once per element (`spikes_every_step`) is the same as that row repeated
/// at every step, bit for bit; a row of the wrong length is an error.
#[test]
fn a_per_element_spike_gradient_is_the_row_repeated() {
    let net = active_net();
    let (batch, steps) = (3, 50);
    let xf: Vec<f32> = input(batch, steps, 3).iter().map(|&v| v as f32).collect();
    let sim = Simulator::<f32>::new(&net).unwrap();
    let input = Input::Spikes {
        data: &xf,
        batch,
        steps,
    };
    let (_, tape) = sim
        .run_taped(input, None, &RunOptions::default(), 1)
        .unwrap();
    let rows: Vec<f32> = coeffs(batch * 4, 9).iter().map(|&v| v as f32).collect();
    let repeated: Vec<f32> = (0..batch)
        .flat_map(|b| (0..steps).flat_map(move |_| b * 4..(b + 1) * 4))
        .map(|k| rows[k])
        .collect();
    let opts = GradientOptions::default();
    let full = sim
        .gradient(
            &tape,
            input,
            &OutputGradients {
                spikes: Some(&repeated),
                ..Default::default()
            },
            &opts,
        )
        .unwrap();
    let every = sim
        .gradient(
            &tape,
            input,
            &OutputGradients {
                spikes_every_step: Some(&rows),
                ..Default::default()
            },
            &opts,
        )
        .unwrap();
    assert_eq!(every, full);
    assert!(full.w_rec.as_slice().iter().any(|&v| v != 0.0));
    let short = OutputGradients {
        spikes_every_step: Some(&rows[1..]),
        ..Default::default()
    };
    assert!(matches!(
        sim.gradient(&tape, input, &short, &opts),
        Err(Error::InputShape { .. })
    ));
}

/// With checkpoints, the forward pass records every step's positive-feedback factor and the
/// reverse pass's recomputation reads it instead of computing it (and the next vmem) again: the
/// gradients keep the bits of a tape without the factors, in f32 and f64, with counts of 2 or more
/// and a gradient on vmem. It fails if the recorded factor is not the one the step used.
#[test]
fn the_recorded_feedback_changes_no_bit() {
    fn check<T: Real>() {
        let mut net = active_net();
        for (j, idc) in [1e-5, 2e-7, 3e-11, 6e-8].into_iter().enumerate() {
            net.params.i_dc[j] = idc;
            net.params.c_ref[j] = if j == 3 { 1e-13 } else { 0.0 };
        }
        let (batch, steps) = (3, 50);
        let x: Vec<T> = input(batch, steps, 3)
            .iter()
            .map(|&v| T::from_f64(v))
            .collect();
        let sim = Simulator::<T>::new(&net).unwrap();
        let input = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let c: Vec<T> = coeffs(batch * steps * 4, 9)
            .iter()
            .map(|&v| T::from_f64(v))
            .collect();
        let outs = OutputGradients {
            spikes: Some(&c),
            vmem: Some(&c),
            imem: Some(&c),
            ..Default::default()
        };
        let opts = RunOptions {
            recording: Recording::Spikes,
            threads: 2,
        };
        for every in [4, 7] {
            let (trace, tape) = sim.run_taped(input, None, &opts, every).unwrap();
            assert_eq!(tape.ffb.len(), batch * steps * tape.n_pad, "every {every}");
            let max = trace.spikes.iter().fold(0.0, |m, s| s.to_f64().max(m));
            assert!(
                max >= 2.0,
                "the network must reach counts of 2 or more ({max})"
            );
            let mut bare = tape.clone();
            bare.ffb = Aligned::default();
            for currents in [true, false] {
                let options = GradientOptions {
                    threads: 2,
                    input: true,
                    currents,
                };
                let with = sim.gradient(&tape, input, &outs, &options).unwrap();
                let without = sim.gradient(&bare, input, &outs, &options).unwrap();
                assert_eq!(with, without, "every {every}, currents {currents}");
            }
        }
    }
    check::<f32>();
    check::<f64>();
}

/// Counts of 2 or more change the reset's derivative; the fused recomputation of checkpointed
/// segments substitutes those lanes' coefficients after the counts are known. Strong drive (some
/// neurons' Idc alone gives counts of 4) must give the full tape's gradients bit for bit.
#[test]
fn checkpoints_give_the_same_bits_with_counts_above_one() {
    let mut net = active_net();
    for (j, idc) in [1e-5, 2e-7, 3e-11, 6e-8].into_iter().enumerate() {
        net.params.i_dc[j] = idc;
        net.params.c_ref[j] = if j == 3 { 1e-13 } else { 0.0 };
    }
    let (batch, steps) = (2, 60);
    let xf: Vec<f32> = input(batch, steps, 3).iter().map(|&v| v as f32).collect();
    let sim = Simulator::<f32>::new(&net).unwrap();
    let input = Input::Spikes {
        data: &xf,
        batch,
        steps,
    };
    let c: Vec<f32> = coeffs(batch * steps * 4, 5)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let outs = OutputGradients {
        spikes: Some(&c),
        vmem: Some(&c),
        ..Default::default()
    };
    let grads = |every: usize, currents: bool| {
        let opts = RunOptions {
            recording: Recording::Spikes,
            threads: 1,
        };
        let (trace, tape) = sim.run_taped(input, None, &opts, every).unwrap();
        let max = trace.spikes.iter().copied().fold(0.0, f32::max);
        let g = sim
            .gradient(
                &tape,
                input,
                &outs,
                &GradientOptions {
                    threads: 1,
                    input: true,
                    currents,
                },
            )
            .unwrap();
        (max, g)
    };
    for currents in [true, false] {
        let (max, full) = grads(1, currents);
        assert!(
            max >= 2.0,
            "the network must reach counts of 2 or more ({max})"
        );
        for every in [3, 8, 61] {
            assert_eq!(grads(every, currents).1, full, "every {every}");
        }
    }
}

/// The trace, the checkpoints (padding lanes included) and the recorded factors of a taped run do
/// not depend on the threads, with dense input and with events, in f32 and f64.
#[test]
fn the_tape_is_the_same_whatever_the_threads() {
    fn check<T: Real>() {
        let net = active_net();
        let (batch, steps) = (3, 70);
        let x: Vec<T> = input(batch, steps, 3)
            .iter()
            .map(|&v| T::from_f64(v))
            .collect();
        let sim = Simulator::<T>::new(&net).unwrap();
        let dense = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let events = SpikeEvents::from_dense(&x, batch, steps, 3).unwrap();
        for input in [dense, Input::Events(&events)] {
            let taped = |every: usize, threads: usize| {
                let opts = RunOptions {
                    recording: Recording::Spikes,
                    threads,
                };
                let (trace, tape) = sim.run_taped(input, None, &opts, every).unwrap();
                (trace, tape.states.to_vec(), tape.ffb.to_vec())
            };
            for every in [1, 4, 7, 70] {
                let one = taped(every, 1);
                assert!(one.0.spikes.iter().any(|&s| s != T::ZERO));
                for threads in [2, 3] {
                    assert!(
                        taped(every, threads) == one,
                        "every {every}, threads {threads}"
                    );
                }
            }
        }
    }
    check::<f32>();
    check::<f64>();
}

/// `Trace::spike_counts` (in a taped run summed by the forward kernel over each step's spiking
/// neurons, or from the raster after the coefficient-making forward; in a plain run from the
/// raster when asked) has the bits of `0.0 + s_0 + s_1 + ...` over the trace's spikes: plain runs,
/// full tapes with and without coefficients, checkpoints with recorded factors, Rockpool's and the
/// smooth spike, counts of 2 or more, f32 and f64.
#[test]
fn the_counts_are_the_sums_of_the_spikes() {
    fn check<T: Real>() {
        let mut net = active_net();
        for (j, idc) in [1e-5, 2e-7, 3e-11, 6e-8].into_iter().enumerate() {
            net.params.i_dc[j] = idc;
        }
        let (batch, steps) = (2, 60);
        let x: Vec<T> = input(batch, steps, 3)
            .iter()
            .map(|&v| T::from_f64(v))
            .collect();
        let input = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let n = net.neurons();
        for spike in [
            SpikeFunction::Rockpool,
            SpikeFunction::Smooth { beta: 20.0 },
        ] {
            let sim = Simulator::<T>::new(&net)
                .unwrap()
                .with_spike_function(spike);
            let opts = RunOptions {
                recording: Recording::Spikes,
                threads: 2,
            };
            let mut traces = vec![sim.run(input, None, &opts).unwrap()];
            for every in [1, 4] {
                traces.push(sim.run_taped(input, None, &opts, every).unwrap().0);
            }
            assert!(
                sim.records_coefficients(batch, steps, 1, Recording::Spikes)
                    == (spike == SpikeFunction::Rockpool)
            );
            for (k, trace) in traces.iter().enumerate() {
                let want: Vec<f64> = (0..batch * n)
                    .map(|bj| {
                        (0..steps).fold(0.0, |c, t| {
                            c + trace.spikes[(bj / n * steps + t) * n + bj % n].to_f64()
                        })
                    })
                    .collect();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                // Taped runs sum them as they go; a plain run leaves it to `spike_counts`.
                assert_eq!(trace.counts.is_empty(), k == 0, "{spike:?}, run {k}");
                assert_eq!(
                    bits(&trace.spike_counts()),
                    bits(&want),
                    "{spike:?}, run {k}"
                );
                assert!(want.iter().any(|&c| c > 0.0), "{spike:?}, run {k}");
            }
        }
    }
    check::<f32>();
    check::<f64>();
}

#[test]
fn checkpoints_and_threads_do_not_change_a_bit() {
    let net = active_net();
    let (batch, steps) = (3, 70);
    let x = input(batch, steps, 3);
    let sim = Simulator::<f32>::new(&net).unwrap();
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let grads = |every: usize, threads: usize, currents: bool| {
        let opts = RunOptions {
            recording: Recording::Spikes,
            threads,
        };
        let input = Input::Spikes {
            data: &xf,
            batch,
            steps,
        };
        let (_, tape) = sim.run_taped(input, None, &opts, every).unwrap();
        let c: Vec<f32> = coeffs(batch * steps * 4, 3)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let outs = OutputGradients {
            spikes: Some(&c),
            imem: Some(&c),
            ..Default::default()
        };
        sim.gradient(
            &tape,
            input,
            &outs,
            &GradientOptions {
                threads,
                input: true,
                currents,
            },
        )
        .unwrap()
    };
    let reference = grads(1, 1, true);
    assert!(reference.w_rec.as_slice().iter().any(|&v| v != 0.0));
    assert!(reference.currents.iter().flatten().any(|&v| v != 0.0));
    for (every, threads) in [(1, 2), (7, 1), (10, 3), (70, 2), (200, 1)] {
        assert_eq!(
            grads(every, threads, true),
            reference,
            "every {every}, threads {threads}"
        );
        // Without the currents' gradients: the same weight and input gradients, no currents.
        let weights_only = grads(every, threads, false);
        assert_eq!(
            weights_only,
            Gradients {
                currents: Vec::new(),
                ..reference.clone()
            },
            "weights only, every {every}, threads {threads}"
        );
        assert_eq!(weights_only.current(Param::IgainMem), None);
    }
}

/// A tape keeps the reverse pass's buffers for the next gradient through it (a training loop
/// reuses its tapes); buffers that hold another run's values, with and without the currents, and
/// made for another checkpoint interval, must give the bits of fresh ones.
#[test]
fn reused_buffers_do_not_change_a_bit() {
    let net = active_net();
    let (batch, steps) = (2, 60);
    let sim = Simulator::<f32>::new(&net).unwrap();
    let opts = RunOptions {
        recording: Recording::Spikes,
        threads: 2,
    };
    let data = |seed: usize| -> Vec<f32> {
        let x = input(batch, steps, 3);
        (0..x.len())
            .map(|k| x[(k + seed * 7) % x.len()] as f32)
            .collect()
    };
    let c: Vec<f32> = coeffs(batch * steps * 4, 3)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let outs = OutputGradients {
        spikes: Some(&c),
        imem: Some(&c),
        ..Default::default()
    };
    let grad = |tape: &Tape<f32>, x: &[f32], currents: bool| {
        let input = Input::Spikes {
            data: x,
            batch,
            steps,
        };
        let options = GradientOptions {
            threads: 2,
            input: true,
            currents,
        };
        sim.gradient(tape, input, &outs, &options).unwrap()
    };
    let run = |x: &[f32], every: usize, reuse: Option<Tape<f32>>| {
        let input = Input::Spikes {
            data: x,
            batch,
            steps,
        };
        sim.run_taped_reusing(input, None, &opts, every, reuse)
            .unwrap()
            .1
    };
    let (x0, x1) = (data(0), data(1));
    for every in [1, 8] {
        let fresh = grad(&run(&x0, every, None), &x0, true);
        // The same tape's buffers after another gradient, and after one without the currents.
        let tape = run(&x1, every, None);
        let _ = grad(&tape, &x1, false);
        let _ = grad(&tape, &x1, true);
        let _ = grad(&tape, &x1, false);
        let tape = run(&x0, every, Some(tape));
        assert_eq!(grad(&tape, &x0, true), fresh, "every {every}");
        // Buffers made for another interval are not taken.
        let tape = run(&x0, 3, Some(tape));
        let _ = grad(&tape, &x0, true);
        let tape = run(&x0, every, Some(tape));
        assert_eq!(grad(&tape, &x0, true), fresh, "every {every}, after 3");
    }
}

/// A small network's forward pass makes the reverse coefficients (`records_coefficients`): the
/// same spikes, final state and tape as the plain forward kernel (which state traces select),
/// and the same gradients, bit for bit, with counts of 2 or more, with and without the currents,
/// in both precisions.
#[test]
fn the_forward_coefficients_change_no_bit() {
    fn check<T: Real + std::fmt::Debug>() {
        let mut net = active_net();
        for (j, idc) in [1e-5, 2e-7, 3e-11, 6e-8].into_iter().enumerate() {
            net.params.i_dc[j] = idc;
            net.params.c_ref[j] = if j == 3 { 1e-13 } else { 0.0 };
        }
        let (batch, steps) = (3, 60);
        let x: Vec<T> = input(batch, steps, 3)
            .iter()
            .map(|&v| T::from_f64(v))
            .collect();
        let sim = Simulator::<T>::new(&net).unwrap();
        let input = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let c: Vec<T> = coeffs(batch * steps * 4, 5)
            .iter()
            .map(|&v| T::from_f64(v))
            .collect();
        let outs = OutputGradients {
            spikes: Some(&c),
            imem: Some(&c),
            vmem: Some(&c),
            ..Default::default()
        };
        let run = |recording: Recording| {
            let opts = RunOptions {
                recording,
                threads: 2,
            };
            sim.run_taped(input, None, &opts, 1).unwrap()
        };
        let (fast, fast_tape) = run(Recording::Spikes);
        let (plain, plain_tape) = run(Recording::Full);
        assert!(sim.records_coefficients(batch, steps, 1, Recording::Spikes));
        assert!(!fast_tape.coef.is_empty() && plain_tape.coef.is_empty());
        assert!(
            fast.spikes.iter().any(|&v| v >= T::from_f64(2.0)),
            "counts of 2"
        );
        let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast.spikes), bits(&plain.spikes));
        assert_eq!(bits(&fast_tape.states), bits(&plain_tape.states));
        let (a, b) = (&fast.final_state, &plain.final_state);
        for (u, v) in [
            (&a.imem, &b.imem),
            (&a.isyn, &b.isyn),
            (&a.iahp, &b.iahp),
            (&a.vmem, &b.vmem),
            (&a.timer_ref, &b.timer_ref),
            (&a.spikes, &b.spikes),
        ] {
            assert_eq!(bits(u), bits(v));
        }
        for currents in [true, false] {
            let options = GradientOptions {
                threads: 2,
                input: true,
                currents,
            };
            let g = |tape: &Tape<T>| sim.gradient(tape, input, &outs, &options).unwrap();
            let (gf, gp) = (g(&fast_tape), g(&plain_tape));
            let gbits = |g: &Gradients| {
                let mut v: Vec<u64> = g.w_rec.as_slice().iter().map(|x| x.to_bits()).collect();
                v.extend(
                    g.w_in
                        .iter()
                        .flat_map(|m| m.as_slice().iter().map(|x| x.to_bits())),
                );
                v.extend(g.input.iter().flatten().map(|x| x.to_bits()));
                v.extend(g.currents.iter().flatten().map(|x| x.to_bits()));
                v
            };
            assert_eq!(gbits(&gf), gbits(&gp), "currents {currents}");
            assert!(gf.w_rec.as_slice().iter().any(|&v| v != 0.0));
        }
    }
    check::<f32>();
    check::<f64>();
}

/// A large sparse network takes the non-zero entries of `w_rec` in the forward drive and the
/// reverse pass's sum over the transpose: the same spikes, records and gradients (values; a zero may
/// differ in sign) as the dense rows, which the simulator reads when told the matrix is not sparse.
#[test]
fn the_sparse_rows_of_a_large_network_give_the_dense_rows_results() {
    let (n, n_in, steps, batch) = (600, 10, 60, 2);
    let mut net = Network::with_defaults(n);
    // 12 connections into each neuron: 2 % of w_rec.
    let w = |k: usize| ((k * 7919 + 13) % 17) as f64 / 17.0;
    let mut w_rec = vec![0.0; n * n];
    for j in 0..n {
        for c in 0..12 {
            let i = (j * 31 + c * 97 + 7) % n;
            w_rec[i * n + j] = 4.0 * w(i + j + c) - 1.5;
        }
    }
    net.w_rec = Matrix::from_vec(n, n, w_rec).unwrap();
    net.w_in =
        Some(Matrix::from_vec(n_in, n, (0..n_in * n).map(|k| 3.0 + 6.0 * w(k)).collect()).unwrap());
    let sparse = Simulator::<f64>::new(&net).unwrap();
    assert!(sparse.w_rec_sparse.is_some() && sparse.w_rec_rows_sparse.is_some());
    let mut dense = sparse.clone();
    dense.w_rec_sparse = None;
    dense.w_rec_rows_sparse = None;
    dense.dense_transpose();
    // The columns sorted from the rows are the non-zero entries of the dense transpose, in order.
    assert_eq!(
        sparse.w_rec_sparse.as_ref(),
        Some(&crate::run::SparseRows::of(&dense.w_rec_t, n))
    );
    let x = input(batch, steps, n_in);
    let run = |sim: &Simulator<f64>| {
        let opts = RunOptions {
            recording: Recording::Full,
            threads: 1,
        };
        let input = Input::Spikes {
            data: &x,
            batch,
            steps,
        };
        let (trace, tape) = sim.run_taped(input, None, &opts, 1).unwrap();
        let counts = trace.spike_counts();
        let every: Vec<f64> = counts.iter().map(|c| 2.0 * (c - 3.0)).collect();
        let g = sim
            .gradient(
                &tape,
                input,
                &OutputGradients {
                    spikes_every_step: Some(&every),
                    ..Default::default()
                },
                &GradientOptions {
                    threads: 1,
                    input: false,
                    currents: true,
                },
            )
            .unwrap();
        (trace, g)
    };
    let (ts, gs) = run(&sparse);
    let (td, gd) = run(&dense);
    assert!(
        ts.spikes.iter().sum::<f64>() > 100.0,
        "the network should spike"
    );
    assert_eq!(ts.spikes, td.spikes);
    assert_eq!(ts.records, td.records);
    assert_eq!(gs.w_rec, gd.w_rec);
    assert_eq!(gs.w_in, gd.w_in);
    assert_eq!(gs.currents, gd.currents);
}

/// With a gradient mask, the recurrent weights' gradient is the dense one with every entry outside
/// the mask set to 0, bit for bit: over the mask's entries only when it is sparse (the network's
/// connections plus some zero weights, which must still get their gradient), as the dense matrix
/// zeroed when it is not; the other gradients do not change. Batch of 3 on 1 and 2 threads.
#[test]
fn a_gradient_mask_gives_the_dense_gradient_inside_it_and_zero_outside() {
    fn check<T: Real>() {
        let (n, n_in, steps, batch) = (200, 8, 50, 3);
        let mut net = Network::with_defaults(n);
        let w = |k: usize| ((k * 7919 + 13) % 17) as f64 / 17.0;
        let mut w_rec = vec![0.0; n * n];
        // 8 connections into each neuron (4 % of w_rec), and 4 more allowed at weight 0.
        let mut flags = vec![false; n * n];
        for j in 0..n {
            for c in 0..12 {
                let i = (j * 31 + c * 97 + 7) % n;
                flags[i * n + j] = true;
                if c < 8 {
                    w_rec[i * n + j] = 4.0 * w(i + j + c) - 1.5;
                }
            }
        }
        net.w_rec = Matrix::from_vec(n, n, w_rec).unwrap();
        net.w_in = Some(
            Matrix::from_vec(n_in, n, (0..n_in * n).map(|k| 3.0 + 6.0 * w(k)).collect()).unwrap(),
        );
        let x: Vec<T> = input(batch, steps, n_in)
            .into_iter()
            .map(T::from_f64)
            .collect();
        let run = |sim: &Simulator<T>, threads: usize| {
            let opts = RunOptions {
                recording: Recording::Spikes,
                threads,
            };
            let input = Input::Spikes {
                data: &x,
                batch,
                steps,
            };
            let (trace, tape) = sim.run_taped(input, None, &opts, 1).unwrap();
            let every: Vec<T> = trace
                .spike_counts()
                .iter()
                .map(|c| T::from_f64(2.0 * (c - 3.0)))
                .collect();
            sim.gradient(
                &tape,
                input,
                &OutputGradients {
                    spikes_every_step: Some(&every),
                    ..Default::default()
                },
                &GradientOptions {
                    threads,
                    input: false,
                    currents: true,
                },
            )
            .unwrap()
        };
        let plain = Simulator::<T>::new(&net).unwrap();
        let sparse_mask = std::sync::Arc::new(GradientMask::new(n, &flags).unwrap());
        assert!(sparse_mask.is_sparse() && sparse_mask.len() == 12 * n);
        // Every eighth row allowed in full besides: too many entries for the sparse path.
        let mut wide = flags.clone();
        for i in (0..n).step_by(4) {
            wide[i * n..(i + 1) * n].fill(true);
        }
        let dense_mask = std::sync::Arc::new(GradientMask::new(n, &wide).unwrap());
        assert!(!dense_mask.is_sparse());
        let want = run(&plain, 1);
        assert!(
            want.w_rec
                .as_slice()
                .iter()
                .zip(&flags)
                .any(|(&g, &f)| f && g != 0.0),
            "the network should have a gradient inside the mask"
        );
        for (mask, allowed) in [(sparse_mask, &flags), (dense_mask, &wide)] {
            let sim = plain.clone().with_gradient_mask(mask).unwrap();
            for threads in [1, 2] {
                let got = run(&sim, threads);
                let expected: Vec<u64> = want
                    .w_rec
                    .as_slice()
                    .iter()
                    .zip(allowed)
                    .map(|(&g, &f)| if f { g } else { 0.0 }.to_bits())
                    .collect();
                let found: Vec<u64> = got.w_rec.as_slice().iter().map(|g| g.to_bits()).collect();
                assert_eq!(found, expected, "threads {threads}");
                assert_eq!(got.w_in, want.w_in);
                assert_eq!(got.currents, want.currents);
            }
        }
        // A mask of another size is refused, naming the sizes.
        let other = std::sync::Arc::new(GradientMask::new(3, &[true; 9]).unwrap());
        let err = plain.clone().with_gradient_mask(other).unwrap_err();
        assert_eq!(
            err,
            Error::GradientMask {
                neurons: n,
                found: 9
            }
        );
    }
    check::<f32>();
    check::<f64>();
}
