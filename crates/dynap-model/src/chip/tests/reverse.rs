//! Tests of the `chip` variant's reverse pass.

use super::forward::chip_net;
use crate::chip::*;
use crate::network::{Matrix, Network};
use crate::run::{Input, Recording, RunOptions};

/// A small network in which every path of the gradient is active: input and recurrent weights
/// of both signs on all four dendrites, NMDA gating, adaptation, no refractory period (its gate is
/// not differentiable).
fn gradient_net() -> Network {
    let (n, n_in) = (3, 2);
    let mut net = chip_net(n);
    net.w_in = Matrix::from_vec(n_in, n, vec![3.0, -2.0, 4.0, 2.5, 3.5, -1.5]);
    net.w_rec =
        Matrix::from_vec(n, n, vec![0.0, 1.5, -2.0, -1.0, 0.0, 2.0, 1.2, -0.8, 0.0]).unwrap();
    let mut chip = ChipSynapses::defaults(n);
    chip.w_in_types = Some(
        (0..n_in * n)
            .map(|k| SynapseChoice {
                nmda: k % 2 == 1,
                shunt: k % 3 == 0,
            })
            .collect(),
    );
    chip.w_rec_types = Some(
        (0..n * n)
            .map(|k| SynapseChoice {
                nmda: k % 3 == 1,
                shunt: k % 2 == 1,
            })
            .collect(),
    );
    chip.nmda = DendriteParams::with_time_constant(n, 30e-3, 100.0, 25e-12);
    chip.gaba = DendriteParams::with_time_constant(n, 6e-3, 80.0, 25e-12);
    net.chip = Some(chip);
    for j in 0..n {
        net.params.c_ref[j] = 0.0;
        net.params.i_dc[j] = 8e-12 + 2e-12 * j as f64;
        net.params.i_f_nmda[j] = 2e-11;
        net.params.i_w_ahp[j] = 1e-10;
        net.params.i_gain_ahp[j] *= 4.0;
    }
    net
}

fn coefficients(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|k| (((k + 1) * (seed * 2 + 7919)) % 101) as f64 / 101.0 - 0.4)
        .collect()
}

/// Scales that bring every output to order 1 in the loss.
const SCALES: [f64; 8] = [1.0, 1e10, 1.0, 1e10, 1e9, 1e9, 1e9, 1e9];

/// `L = sum of c_k * output_k * scale_k` over spikes, imem, vmem, iahp and the four dendrites.
fn loss_of(trace: &ChipTrace<f64>) -> f64 {
    let r = trace.records.as_ref().unwrap();
    let outs: [&Vec<f64>; 8] = [
        &trace.spikes,
        &r.imem,
        &r.vmem,
        &r.iahp,
        &r.dendrites[0],
        &r.dendrites[1],
        &r.dendrites[2],
        &r.dendrites[3],
    ];
    outs.iter()
        .enumerate()
        .map(|(k, v)| {
            v.iter()
                .zip(coefficients(v.len(), k))
                .map(|(a, c)| a * c * SCALES[k])
                .sum::<f64>()
        })
        .sum()
}

fn smooth_run(net: &Network, x: &[f64], batch: usize, steps: usize, spikes: bool) -> f64 {
    let sim = ChipSimulator::<f64>::new(net)
        .unwrap()
        .with_smooth_spikes(5.0);
    let input = if spikes {
        Input::Spikes {
            data: x,
            batch,
            steps,
        }
    } else {
        Input::Weighted {
            data: x,
            batch,
            steps,
        }
    };
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 1,
    };
    loss_of(&sim.run(input, None, &opts).unwrap())
}

fn adjoint(net: &Network, x: &[f64], batch: usize, steps: usize, spikes: bool) -> ChipGradients {
    let sim = ChipSimulator::<f64>::new(net)
        .unwrap()
        .with_smooth_spikes(5.0);
    let input = || {
        if spikes {
            Input::Spikes {
                data: x,
                batch,
                steps,
            }
        } else {
            Input::Weighted {
                data: x,
                batch,
                steps,
            }
        }
    };
    let opts = RunOptions {
        recording: Recording::Full,
        threads: 2,
    };
    let (_, tape) = sim.run_taped(input(), None, &opts).unwrap();
    let len = batch * steps * net.neurons();
    let c: Vec<Vec<f64>> = (0..8)
        .map(|k| coefficients(len, k).iter().map(|c| c * SCALES[k]).collect())
        .collect();
    let outs = ChipOutputGradients {
        spikes: Some(&c[0]),
        imem: Some(&c[1]),
        vmem: Some(&c[2]),
        iahp: Some(&c[3]),
        dendrites: [Some(&c[4]), Some(&c[5]), Some(&c[6]), Some(&c[7])],
        spikes_every_step: None,
    };
    let options = crate::run::GradientOptions {
        threads: 2,
        input: true,
        currents: true,
    };
    sim.gradient(&tape, input(), &outs, &options).unwrap()
}

fn assert_close(what: &str, adjoint: f64, fd: f64) {
    let scale = adjoint.abs().max(fd.abs()).max(1e-6);
    assert!(
        (adjoint - fd).abs() <= 1e-5 * scale,
        "{what}: adjoint {adjoint:e}, finite difference {fd:e}"
    );
}

#[test]
fn the_adjoint_equals_central_finite_differences() {
    let net = gradient_net();
    let (batch, steps) = (2, 80);
    let x: Vec<f64> = (0..batch * steps * 2)
        .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)) * (1.0 + (k % 3) as f64 * 0.5))
        .collect();
    // The run is active: some smooth spikes are nearly whole.
    let sim = ChipSimulator::<f64>::new(&net).unwrap();
    let hard = sim
        .run(
            Input::Spikes {
                data: &x,
                batch,
                steps,
            },
            None,
            &RunOptions::default(),
        )
        .unwrap();
    assert!(
        hard.spikes.iter().sum::<f64>() >= 4.0,
        "{}",
        hard.spikes.iter().sum::<f64>()
    );
    let g = adjoint(&net, &x, batch, steps, true);
    // Steps of 1e-4 on values of order 1: the truncation error (h^2) is far below the tolerance,
    // and so is the rounding (smaller steps are dominated by it: 1e-6 is off by 0.4 %).
    let fd = |f: &dyn Fn(&mut Network, f64)| {
        let h = 1e-4;
        let (mut up, mut down) = (net.clone(), net.clone());
        f(&mut up, h);
        f(&mut down, -h);
        (smooth_run(&up, &x, batch, steps, true) - smooth_run(&down, &x, batch, steps, true))
            / (2.0 * h)
    };
    for k in 0..net.w_rec.as_slice().len() {
        if net.w_rec.as_slice()[k] != 0.0 {
            let d = fd(&|m: &mut Network, h| m.w_rec.as_mut_slice()[k] += h);
            assert_close(&format!("w_rec[{k}]"), g.w_rec.as_slice()[k], d);
        }
    }
    let w_in = g.w_in.as_ref().unwrap();
    for k in 0..w_in.as_slice().len() {
        let d = fd(&|m: &mut Network, h| m.w_in.as_mut().unwrap().as_mut_slice()[k] += h);
        assert_close(&format!("w_in[{k}]"), w_in.as_slice()[k], d);
    }
    for j in 0..net.neurons() {
        let d = fd(&|m: &mut Network, h| m.params.i_dc[j] += h * 1e-11) / 1e-11;
        assert_close(&format!("Idc[{j}]"), g.i_dc[j], d);
    }
    // The input, given as input spikes through w_in (a few entries).
    for k in [0, 5, 37, 160, 301] {
        let h = 1e-4;
        let mut up = x.clone();
        up[k] += h;
        let mut down = x.clone();
        down[k] -= h;
        let d = (smooth_run(&net, &up, batch, steps, true)
            - smooth_run(&net, &down, batch, steps, true))
            / (2.0 * h);
        assert_close(&format!("input[{k}]"), g.input.as_ref().unwrap()[k], d);
    }
}

#[test]
fn the_adjoint_of_weighted_input_equals_finite_differences() {
    let mut net = gradient_net();
    net.w_in = None;
    net.chip.as_mut().unwrap().w_in_types = None;
    let (batch, steps) = (1, 60);
    let x: Vec<f64> = (0..batch * steps * 3)
        .map(|k| ((k * 37) % 11) as f64 / 11.0 * 4.0 - 1.5)
        .collect();
    let g = adjoint(&net, &x, batch, steps, false);
    // Richardson's extrapolation of central differences at h and h/2 (error O(h^4)): these
    // gradients span six orders of magnitude, and no single plain step is both above the rounding
    // of the small ones and below the truncation of the large ones.
    let richardson = |at: &dyn Fn(f64) -> f64, h: f64| {
        let d = |h: f64| (at(h) - at(-h)) / (2.0 * h);
        (4.0 * d(h / 2.0) - d(h)) / 3.0
    };
    for k in [0, 4, 11, 50, 99, 170] {
        let at = |h: f64| {
            let mut v = x.clone();
            v[k] += h;
            smooth_run(&net, &v, batch, steps, false)
        };
        assert_close(
            &format!("input[{k}]"),
            g.input.as_ref().unwrap()[k],
            richardson(&at, 2e-3),
        );
    }
    for k in 0..9 {
        if net.w_rec.as_slice()[k] != 0.0 {
            let at = |h: f64| {
                let mut m = net.clone();
                m.w_rec.as_mut_slice()[k] += h;
                smooth_run(&m, &x, batch, steps, false)
            };
            assert_close(
                &format!("w_rec[{k}]"),
                g.w_rec.as_slice()[k],
                richardson(&at, 2e-3),
            );
        }
    }
}

#[test]
fn hard_spike_gradients_are_finite_and_independent_of_threads() {
    let net = gradient_net();
    let (batch, steps) = (3, 120);
    let x: Vec<f32> = (0..batch * steps * 2)
        .map(|k| f32::from(u8::from((k * 2654435761) % 5 < 2)) * 1.5)
        .collect();
    let sim = ChipSimulator::<f32>::new(&net).unwrap();
    let input = Input::Spikes {
        data: &x,
        batch,
        steps,
    };
    let (trace, tape) = sim.run_taped(input, None, &RunOptions::default()).unwrap();
    assert!(trace.spikes.iter().sum::<f32>() > 5.0);
    // The count MSE's gradient: 2 (count - 3) on every step.
    let counts = trace.spike_counts();
    let g: Vec<f32> = (0..batch * steps * 3)
        .map(|k| {
            let (b, j) = (k / (steps * 3), k % 3);
            2.0 * (counts[b * 3 + j] as f32 - 3.0)
        })
        .collect();
    let outs = ChipOutputGradients {
        spikes: Some(&g),
        ..Default::default()
    };
    let opts = |threads: usize| crate::run::GradientOptions {
        threads,
        input: true,
        currents: true,
    };
    let one = sim.gradient(&tape, input, &outs, &opts(1)).unwrap();
    assert_eq!(sim.gradient(&tape, input, &outs, &opts(3)).unwrap(), one);
    assert!(one.w_rec.as_slice().iter().all(|v| v.is_finite()));
    assert!(
        one.w_in
            .as_ref()
            .unwrap()
            .as_slice()
            .iter()
            .any(|&v| v != 0.0)
    );
    assert!(one.i_dc.iter().all(|v| v.is_finite()));
}

#[test]
fn current_gradients_equal_finite_differences() {
    use crate::Param;
    // Strong DC input keeps the input current and Imem above their floors, whose kinks would
    // otherwise put the finite differences' noise at 1e-4 (the adjoint sat within it).
    let mut net = gradient_net();
    for j in 0..net.neurons() {
        net.params.i_dc[j] = 6e-11 * (1.0 + 0.3 * j as f64);
    }
    let (batch, steps) = (2, 40);
    let x: Vec<f64> = (0..batch * steps * 2)
        .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)) * (1.0 + (k % 3) as f64 * 0.5))
        .collect();
    let g = adjoint(&net, &x, batch, steps, true);
    // d L / d I by Richardson's extrapolation of central differences in relative steps, at the
    // step (from 2e-2 down to 2.4e-6) where halving it changes the estimate least: the currents'
    // sensitivities span seven orders of magnitude and some responses are sharply nonlinear, so
    // no single step suits them all. Returns (estimate, its estimated error).
    let fd = |at: &dyn Fn(f64) -> f64, v: f64| -> (f64, f64) {
        let r = |h: f64| {
            let d = |h: f64| (at(h) - at(-h)) / (2.0 * h);
            (4.0 * d(h / 2.0) - d(h)) / 3.0 / v
        };
        let hs: Vec<f64> = (0..14).map(|k| 2e-2 / f64::from(1u32 << k)).collect();
        let est: Vec<f64> = hs.iter().map(|&h| r(h)).collect();
        est.windows(2)
            .map(|w| (w[1], (w[1] - w[0]).abs()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("steps")
    };
    // As the dfdx comparisons do, relative to the largest gradient of the parameter over the
    // neurons (the differences' rounding noise is about absolute).
    let check = |what: &str, ours: &[f64], fds: &[(f64, f64)]| {
        let max = ours.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (j, (o, (f, err))) in ours.iter().zip(fds).enumerate() {
            assert!(
                (o - f).abs() <= 1e-5 * max + err,
                "{what}[{j}]: adjoint {o:e}, finite difference {f:e} (+- {err:e}, max {max:e})"
            );
        }
    };
    for p in Param::CURRENTS.iter().filter(|&&p| p != Param::Ispkthr) {
        let mut fds = Vec::new();
        for j in 0..net.neurons() {
            let v = net.params.get(*p)[j];
            let at = |h: f64| {
                let mut m = net.clone();
                m.params.get_mut(*p)[j] = v * (1.0 + h);
                smooth_run(&m, &x, batch, steps, true)
            };
            fds.push(if v == 0.0 { (0.0, 0.0) } else { fd(&at, v) });
        }
        check(p.rockpool_name(), g.current(*p).unwrap(), &fds);
    }
    fn get(m: &mut Network, d: usize, q: usize, j: usize) -> &mut f64 {
        let c = m.chip.as_mut().unwrap();
        let dp = match d {
            0 => &mut c.nmda,
            1 => &mut c.gaba,
            _ => &mut c.shunt,
        };
        if q == 0 {
            &mut dp.i_tau[j]
        } else {
            &mut dp.i_gain[j]
        }
    }
    for (d, name) in ["nmda", "gaba", "shunt"].iter().enumerate() {
        for (q, which) in ["Itau", "Igain"].iter().enumerate() {
            let mut fds = Vec::new();
            for j in 0..net.neurons() {
                let v = *get(&mut net.clone(), d, q, j);
                let at = |h: f64| {
                    let mut m = net.clone();
                    *get(&mut m, d, q, j) = v * (1.0 + h);
                    smooth_run(&m, &x, batch, steps, true)
                };
                fds.push(fd(&at, v));
            }
            let ours = if q == 0 {
                &g.dendrites[d].0
            } else {
                &g.dendrites[d].1
            };
            check(&format!("{which}_{name}"), ours, &fds);
        }
    }
}
