//! Tests of the `rockpool` variant's forward pass.

use crate::error::{Error, WeightMatrix};
use crate::network::{Matrix, Network};
use crate::real::Real;
use crate::rockpool::forward::*;
use crate::rockpool::params::LANES;
use crate::rockpool::*;
use crate::run::{Input, Recording, RunOptions, add_rows};
use proptest::prelude::*;

/// A small recurrent network with a deterministic, irregular input.
fn small_net(n: usize, n_in: usize) -> (Network, Vec<f64>) {
    let mut net = Network::with_defaults(n);
    let w =
        |i: usize, j: usize, k: usize| ((i * 31 + j * 17 + k * 7) % 23) as f64 / 23.0 * 4.0 - 1.0;
    net.w_in =
        Some(Matrix::from_vec(n_in, n, (0..n_in * n).map(|x| w(x, 1, 3) * 3.0).collect()).unwrap());
    net.w_rec = Matrix::from_vec(n, n, (0..n * n).map(|x| w(x, 5, 2)).collect()).unwrap();
    for j in 0..n {
        net.params.i_dc[j] = 1e-11 * (1 + j % 3) as f64;
    }
    let input = (0..3 * 400 * n_in)
        .map(|x| f64::from(u8::from((x * 2654435761) % 97 < 9)))
        .collect();
    (net, input)
}

fn run<T: Real>(
    net: &Network,
    input: &[f64],
    batch: usize,
    steps: usize,
    threads: usize,
) -> Trace<T> {
    let data: Vec<T> = input.iter().map(|&x| T::from_f64(x)).collect();
    Simulator::<T>::new(net)
        .unwrap()
        .run(
            Input::Spikes {
                data: &data,
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
}

/// A simulator whose weights were replaced is the simulator of the network with those weights, bit
/// for bit; bad weights are refused with the matrix named.
#[test]
fn replaced_weights_give_the_new_networks_simulator() {
    let (net, input) = small_net(6, 5);
    let (mut other, _) = small_net(6, 5);
    let w_in = other.w_in.as_mut().unwrap();
    for (k, w) in w_in.as_mut_slice().iter_mut().enumerate() {
        *w = -0.7 * *w + (k % 5) as f64 * 0.3;
    }
    other.w_rec =
        Matrix::from_vec(6, 6, (0..36).map(|k| (k % 7) as f64 * 0.4 - 1.0).collect()).unwrap();
    let mut sim = Simulator::<f32>::new(&net).unwrap();
    sim.set_weights(other.w_in.as_ref(), &other.w_rec).unwrap();
    let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
    let run = |s: &Simulator<f32>| {
        s.run(
            Input::Spikes {
                data: &data,
                batch: 3,
                steps: 400,
            },
            None,
            &RunOptions {
                recording: Recording::Full,
                threads: 1,
            },
        )
        .unwrap()
    };
    let fresh = run(&Simulator::<f32>::new(&other).unwrap());
    let replaced = run(&sim);
    assert_eq!(fresh, replaced);
    assert_ne!(
        fresh.spikes,
        run(&Simulator::<f32>::new(&net).unwrap()).spikes
    );
    let mut bad = other.w_rec.clone();
    bad.as_mut_slice()[7] = f64::NAN;
    assert!(matches!(
        sim.set_weights(other.w_in.as_ref(), &bad),
        Err(Error::NonFiniteWeight {
            matrix: WeightMatrix::Recurrent,
            ..
        })
    ));
    assert!(matches!(
        sim.set_weights(other.w_in.as_ref(), &Matrix::zeros(6, 5)),
        Err(Error::WeightShape {
            matrix: WeightMatrix::Recurrent,
            ..
        })
    ));
    assert_eq!(
        sim.set_weights(None, &other.w_rec),
        Err(Error::NoInputWeights)
    );
}

/// A run into an earlier trace's memory (of another input, larger or smaller) gives the bits of a
/// fresh run: every reused value is overwritten.
#[test]
fn a_run_into_reused_memory_gives_the_same_bits() {
    let (net, input) = small_net(5, 4);
    let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
    let sim = Simulator::<f32>::new(&net).unwrap();
    let opts = RunOptions::default();
    let x = |batch: usize, steps: usize| Input::Spikes {
        data: &data[..batch * steps * 4],
        batch,
        steps,
    };
    let fresh = sim.run(x(2, 300), None, &opts).unwrap();
    assert!(fresh.spikes.iter().any(|&s| s != 0.0));
    for (b, t) in [(3, 400), (1, 50), (2, 300)] {
        let mut other = sim.run(x(b, t), None, &opts).unwrap();
        other.spikes.iter_mut().for_each(|s| *s = 7.0);
        let reused = sim
            .run_reusing(x(2, 300), None, &opts, Some(other))
            .unwrap();
        assert_eq!(reused.spikes, fresh.spikes, "reusing {b} x {t}");
        assert_eq!(reused.final_state, fresh.final_state);
    }
}

#[test]
fn the_final_state_continues_a_run_exactly() {
    let (net, input) = small_net(6, 5);
    let whole = run::<f32>(&net, &input, 3, 400, 1);
    let sim = Simulator::<f32>::new(&net).unwrap();
    let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
    // Split the [3, 400, 5] input into two halves of 200 steps, per batch element.
    let half = |h: usize| -> Vec<f32> {
        (0..3)
            .flat_map(|b| data[(b * 400 + h * 200) * 5..][..200 * 5].to_vec())
            .collect()
    };
    let (a, b) = (half(0), half(1));
    let opts = RunOptions {
        recording: Recording::Spikes,
        threads: 1,
    };
    let first = sim
        .run(
            Input::Spikes {
                data: &a,
                batch: 3,
                steps: 200,
            },
            None,
            &opts,
        )
        .unwrap();
    let second = sim
        .run(
            Input::Spikes {
                data: &b,
                batch: 3,
                steps: 200,
            },
            Some(&first.final_state),
            &opts,
        )
        .unwrap();
    assert_eq!(second.final_state, whole.final_state);
    for bi in 0..3 {
        let w = &whole.spikes[bi * 400 * 6..][..400 * 6];
        assert_eq!(&first.spikes[bi * 200 * 6..][..200 * 6], &w[..200 * 6]);
        assert_eq!(&second.spikes[bi * 200 * 6..][..200 * 6], &w[200 * 6..]);
    }
    assert!(
        whole.spikes.iter().sum::<f32>() > 10.0,
        "the test network should spike"
    );
}

/// A dense input's values are checked by the threads as they convert their elements: the error
/// still names the first value in the raster that is not finite (NaN or an infinity, in any
/// element, the first or a later one), whatever the threads, and a plain run, a taped run and a
/// gradient agree.
#[test]
fn the_first_non_finite_input_is_named_whatever_the_threads() {
    let (net, input) = small_net(7, 5);
    let sim = Simulator::<f64>::new(&net).unwrap();
    let (batch, steps, channels) = (3, 400, 5);
    let at = |b: usize, t: usize, c: usize| (b * steps + t) * channels + c;
    for (bad, first) in [
        (vec![at(2, 399, 4)], (2, 399, 4)),
        (vec![at(1, 7, 2), at(2, 3, 0)], (1, 7, 2)),
        (vec![at(2, 0, 0), at(0, 250, 3), at(0, 251, 1)], (0, 250, 3)),
    ] {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut data = input.clone();
            for &i in &bad {
                data[i] = value;
            }
            let want = Error::NonFiniteInput {
                batch: first.0,
                step: first.1,
                channel: first.2,
            };
            let x = Input::Spikes {
                data: &data,
                batch,
                steps,
            };
            for threads in [1, 2, 3] {
                let opts = RunOptions {
                    recording: Recording::Spikes,
                    threads,
                };
                assert_eq!(
                    sim.run(x, None, &opts).unwrap_err(),
                    want,
                    "threads {threads}"
                );
                assert_eq!(
                    sim.run_taped(x, None, &opts, 16).unwrap_err(),
                    want,
                    "taped, threads {threads}"
                );
            }
            // The gradient checks the raster before it starts, as it did.
            let good = Input::Spikes {
                data: &input,
                batch,
                steps,
            };
            let opts = RunOptions::default();
            let (_, tape) = sim.run_taped(good, None, &opts, 16).unwrap();
            let g = vec![1.0; batch * steps * net.neurons()];
            let outs = crate::OutputGradients {
                spikes: Some(&g),
                ..Default::default()
            };
            assert_eq!(
                sim.gradient(&tape, x, &outs, &crate::GradientOptions::default())
                    .unwrap_err(),
                want
            );
        }
    }
}

#[test]
fn results_are_bit_identical_whatever_the_thread_count() {
    let (net, input) = small_net(7, 5);
    let one = run::<f32>(&net, &input, 3, 400, 1);
    for threads in [2, 3, 8] {
        assert_eq!(run::<f32>(&net, &input, 3, 400, threads), one);
    }
    let one = run::<f64>(&net, &input, 3, 400, 1);
    assert_eq!(run::<f64>(&net, &input, 3, 400, 2), one);
}

#[test]
fn every_instruction_set_gives_the_same_bits() {
    let (net, input) = small_net(13, 5);
    let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
    let mut sim = Simulator::<f32>::new(&net).unwrap();
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    let run = |sim: &Simulator<f32>| {
        sim.run(
            Input::Spikes {
                data: &data,
                batch: 3,
                steps: 400,
            },
            None,
            &opts,
        )
        .unwrap()
    };
    sim.isa = Isa::Baseline;
    let baseline = run(&sim);
    assert!(baseline.spikes.iter().sum::<f32>() > 10.0);
    for isa in Isa::available() {
        sim.isa = isa;
        assert_eq!(run(&sim), baseline, "{isa:?}");
    }
}

#[test]
fn negative_drive_has_no_effect_in_the_rockpool_variant() {
    // model.md 1.6: a neuron with Idc = 1e-9 fires 7 spikes in 200 steps with or without an input
    // of -50 every other step.
    let mut net = Network::with_defaults(1);
    net.params.i_dc[0] = 1e-9;
    let sim = Simulator::<f32>::new(&net).unwrap();
    let zero = vec![0f32; 200];
    let neg: Vec<f32> = (0..200)
        .map(|t| if t % 2 == 0 { -50.0 } else { 0.0 })
        .collect();
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    let a = sim
        .run(
            Input::Weighted {
                data: &zero,
                batch: 1,
                steps: 200,
            },
            None,
            &opts,
        )
        .unwrap();
    let b = sim
        .run(
            Input::Weighted {
                data: &neg,
                batch: 1,
                steps: 200,
            },
            None,
            &opts,
        )
        .unwrap();
    assert_eq!(a.spikes.iter().sum::<f32>(), 7.0);
    assert_eq!(a, b);
}

#[test]
fn refractory_steps_are_the_ceiling_of_t_ref_over_dt() {
    // t_ref = Vth C_ref / Iref = 3.5 ms at dt = 1 ms: 4 blocked steps after each spike.
    let mut net = Network::with_defaults(1);
    net.params.i_dc[0] = 5e-9;
    net.params.i_ref[0] = 0.7 * 1.5e-12 / 3.5e-3;
    let sim = Simulator::<f32>::new(&net).unwrap();
    let opts = RunOptions::default();
    let mut state = sim.initial_state(1);
    let mut blocked_after_spike = Vec::new();
    let mut counting = None;
    for _ in 0..300 {
        let step = sim
            .run(
                Input::Weighted {
                    data: &[0.0],
                    batch: 1,
                    steps: 1,
                },
                Some(&state),
                &opts,
            )
            .unwrap();
        state = step.final_state;
        if state.spikes[0] > 0.0 {
            if let Some(c) = counting.take() {
                blocked_after_spike.push(c);
            }
            counting = Some(0);
        } else if let Some(c) = counting.as_mut() {
            if state.timer_ref[0] == 0.0 {
                // The gate opens at the next step: the blocked steps were those before.
                blocked_after_spike.push(*c + 1);
                counting = None;
            } else {
                *c += 1;
            }
        }
    }
    assert!(blocked_after_spike.len() > 3, "{blocked_after_spike:?}");
    assert!(
        blocked_after_spike.iter().all(|&c| c == 4),
        "{blocked_after_spike:?}"
    );
}

#[test]
fn strong_drive_gives_spike_counts_above_one() {
    // model.md 1.8: Idc = 1e-5 A gives counts of 4.
    let mut net = Network::with_defaults(1);
    net.params.i_dc[0] = 1e-5;
    let sim = Simulator::<f32>::new(&net).unwrap();
    let empty = sim.run(
        Input::Weighted {
            data: &[],
            batch: 0,
            steps: 0,
        },
        None,
        &RunOptions::default(),
    );
    assert!(empty.unwrap().spikes.is_empty());
    let z = vec![0f32; 50];
    let tr = sim
        .run(
            Input::Weighted {
                data: &z,
                batch: 1,
                steps: 50,
            },
            None,
            &RunOptions::default(),
        )
        .unwrap();
    assert_eq!(tr.spikes.iter().copied().fold(0.0, f32::max), 4.0);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (net, input) = small_net(4, 3);
    let sim = Simulator::<f64>::new(&net).unwrap();
    let opts = RunOptions::default();
    let e = sim
        .run(
            Input::Spikes {
                data: &input[..10],
                batch: 1,
                steps: 4,
            },
            None,
            &opts,
        )
        .unwrap_err();
    assert_eq!(
        e,
        Error::InputShape {
            batch: 1,
            steps: 4,
            channels: 3,
            found_len: 10
        }
    );
    let mut bad = input[..12].to_vec();
    bad[7] = f64::NAN;
    let e = sim
        .run(
            Input::Spikes {
                data: &bad,
                batch: 1,
                steps: 4,
            },
            None,
            &opts,
        )
        .unwrap_err();
    assert_eq!(
        e,
        Error::NonFiniteInput {
            batch: 0,
            step: 2,
            channel: 1
        }
    );
    let state = sim.initial_state(2);
    let e = sim
        .run(
            Input::Spikes {
                data: &input[..12],
                batch: 1,
                steps: 4,
            },
            Some(&state),
            &opts,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::StateShape {
                batch: 1,
                found_batch: 2,
                ..
            }
        ),
        "{e}"
    );
    let ff = Simulator::<f64>::new(&Network::with_defaults(3)).unwrap();
    let e = ff
        .run(
            Input::Spikes {
                data: &[0.0; 3],
                batch: 1,
                steps: 1,
            },
            None,
            &opts,
        )
        .unwrap_err();
    assert_eq!(e, Error::NoInputWeights);
    let mut degenerate = Network::with_defaults(2);
    degenerate.params.i_pulse[1] = 0.0;
    degenerate.params.c_pulse[1] = 0.0;
    assert!(matches!(
        Simulator::<f32>::new(&degenerate),
        Err(Error::Degenerate { neuron: 1, .. })
    ));
}

/// The spike counts `spike_counts` writes, for one chunk of ratios imem/Ispkthr.
fn counts<T: Real>(ratios: &[f64]) -> (Vec<T>, Vec<usize>) {
    let sim = Simulator::<T>::new(&Network::with_defaults(ratios.len())).unwrap();
    let mut s: Vec<T> = ratios.iter().map(|&r| T::from_f64(r)).collect();
    s.resize(ratios.len().div_ceil(LANES) * LANES, T::ZERO);
    let mut active = Vec::new();
    sim.spike_counts(&mut s, ratios.len(), &mut active);
    s.truncate(ratios.len());
    (s, active)
}

proptest! {
    #[test]
    fn spike_counts_are_the_ceiling_of_the_log_ratio(
        ratios in prop::collection::vec(
            prop_oneof![
                0.0f64..1.0,
                1.0f64..1.000_01,
                1.0f64..3.0,
                2.4f64..2.8,
                (std::f64::consts::E - 1e-4)..(std::f64::consts::E + 1e-4),
                1.0f64..1e4,
                Just(1.0),
                Just(std::f64::consts::E),
                Just(2.5),
            ],
            1..40,
        ),
    ) {
        // The reference: Rockpool's max(ceil(ln(imem/Ispkthr)), 0), with the kernel's logarithm.
        fn expected<T: Real>(r: f64) -> T {
            let r = T::from_f64(r);
            if r > T::ONE { r.kernel_ln().kernel_ceil() } else { T::ZERO }
        }
        let (got, active) = counts::<f32>(&ratios);
        for (k, &r) in ratios.iter().enumerate() {
            prop_assert_eq!(got[k].to_bits(), expected::<f32>(r).to_bits(), "f32 ratio {}", r);
        }
        let spiking: Vec<usize> = (0..ratios.len()).filter(|&k| got[k] != 0.0).collect();
        prop_assert_eq!(active, spiking);
        let (got, _) = counts::<f64>(&ratios);
        for (k, &r) in ratios.iter().enumerate() {
            prop_assert_eq!(got[k].to_bits(), expected::<f64>(r).to_bits(), "f64 ratio {}", r);
        }
    }
}

proptest! {
    /// The recurrent drive adds a count-1 row without the product: the bits of `acc + s w`, for
    /// every width (the register blocks and the rest) and counts of 1 and more.
    #[test]
    fn unit_rows_give_the_bits_of_the_product(
        n in 1usize..200,
        picks in prop::collection::vec((0usize..200, 0usize..4), 0..12),
        seed in 0u64..1000,
    ) {
        let weight = |k: usize| {
            let h = (k as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            (h as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        };
        let w: Vec<f32> = (0..n * n).map(weight).collect();
        let mut s = vec![0.0f32; n];
        let mut active = Vec::new();
        for &(i, c) in &picks {
            let i = i % n;
            if s[i] == 0.0 {
                // Counts of 1 (most), 2, 3 and 1 again.
                s[i] = [1.0, 2.0, 3.0, 1.0][c];
                active.push(i);
            }
        }
        let start: Vec<f32> = (0..n).map(|k| weight(k + n * n)).collect();
        let mut fast = start.clone();
        recurrent_drive(&mut fast, &active, &s, &w);
        let mut plain = start;
        add_rows(&mut plain, &active, |i| s[i], &w, |acc, w, si| acc + si * w);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&fast), bits(&plain));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn states_stay_in_their_physical_ranges(
        scale in prop::collection::vec(0.3f64..3.0, 6),
        w_scale in 0.0f64..40.0,
        idc in 0.0f64..2e-9,
    ) {
        let (mut net, input) = small_net(4, 5);
        net.params.i_tau_mem.iter_mut().for_each(|x| *x *= scale[0]);
        net.params.i_gain_syn.iter_mut().for_each(|x| *x *= scale[1]);
        net.params.i_w_ahp.iter_mut().for_each(|x| *x *= scale[2] * 1e4);
        net.params.i_gain_ahp.iter_mut().for_each(|x| *x *= scale[3] * 10.0);
        net.params.i_spkthr.iter_mut().for_each(|x| *x *= scale[4]);
        net.params.i_ref.iter_mut().for_each(|x| *x *= scale[5]);
        net.params.i_dc.iter_mut().for_each(|x| *x = idc);
        net.w_rec.as_mut_slice().iter_mut().for_each(|w| *w *= w_scale / 4.0);
        if let Some(w) = net.w_in.as_mut() { w.as_mut_slice().iter_mut().for_each(|w| *w *= w_scale); }
        let t = run::<f32>(&net, &input[..2 * 400 * 5], 2, 400, 1);
        let st = t.records.unwrap();
        let io = 5e-13f32;
        prop_assert!(st.imem.iter().all(|&x| x >= io));
        prop_assert!(st.iahp.iter().all(|&x| x >= io));
        prop_assert!(st.isyn.iter().all(|&x| x > 0.0));
        prop_assert!(st.vmem.iter().all(|&x| x >= 0.0 && x.is_finite()));
        prop_assert!(t.spikes.iter().all(|&s| s >= 0.0 && s.fract() == 0.0));
    }
}

/// Runs into buffers of any length and contents (here too short, too long, and NaN) give the trace of
/// a plain run, bit for bit: every value is written; `run_reusing` reuses an earlier trace's records.
#[test]
fn runs_into_reused_buffers_give_the_plain_runs_trace() {
    let (net, input) = small_net(20, 5);
    let (batch, steps) = (3, 400);
    let want = run::<f32>(&net, &input, batch, steps, 2);
    let sim = Simulator::<f32>::new(&net).unwrap();
    let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
    let x = Input::Spikes {
        data: &data,
        batch,
        steps,
    };
    let options = RunOptions {
        recording: Recording::Full,
        threads: 2,
    };
    let len = batch * steps * 20;
    let garbage = |k: usize| vec![f32::NAN; k];
    let records = Records {
        imem: garbage(len + 7),
        isyn: garbage(len / 2),
        iahp: garbage(0),
        vmem: garbage(len),
    };
    let got = sim
        .run_into(x, None, &options, garbage(len * 2), Some(records))
        .unwrap();
    assert_eq!(got, want);
    let again = sim.run_reusing(x, None, &options, Some(got)).unwrap();
    assert_eq!(again, want);
}
