//! An independent gradient of the `chip` variant, for tests only: its step composed from ordinary
//! dfdx operations on dfdx's tape, unrolled over time, in `f64` (like `reference.rs` for the `rockpool`
//! variant). The only hand-written derivative is the surrogate of the threshold
//! (`d spike / d Imem = [Imem > Io]`), written as `b = stop_gradient(b_hard - Imem H) + Imem H`; the
//! split of a signed weight into its dendrite (`W_k = +-W * mask_k`) and every chain rule are dfdx's.
//! The fused reverse pass of `ChipSimulator` must agree with it to 1e-10 relative.

use dfdx::tensor::{Cpu, Gradients, PutTape, SplitTape, Tensor, TensorFromVec};
use dfdx::tensor_ops::{Backward, SumTo, TryMatMul};
use dynap_model::{
    ChipSynapses, DENDRITES, Dendrite, Matrix, Network, SynapseChoice, dendrite_index,
};

use crate::reference::{Graph, M, V};

/// The reference's spikes and gradients (w_in, w_rec, Idc).
pub(crate) struct ChipReference {
    pub(crate) spikes: Vec<f64>,
    pub(crate) w_in: Vec<f64>,
    pub(crate) w_rec: Vec<f64>,
    pub(crate) i_dc: Vec<f64>,
}

/// The mask of the connections of `m` that drive dendrite `k`, and the sign that makes `+-W` their
/// weight current.
fn mask(m: &Matrix, types: Option<&[SynapseChoice]>, k: usize) -> (Vec<f64>, f64) {
    let sign = if k == dendrite_index(Dendrite::Ampa) || k == dendrite_index(Dendrite::Nmda) {
        1.0
    } else {
        -1.0
    };
    let v = m
        .as_slice()
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let c = types.map_or(SynapseChoice::default(), |t| t[i]);
            f64::from(u8::from(c.dendrite(w).map(dendrite_index) == Some(k)))
        })
        .collect();
    (v, sign)
}

/// `loss = sum over b, t, j of c_0 s + c_1 imem + c_2 vmem + c_3 iahp + c_{4+k} dendrite_k`, with
/// Rockpool's surrogate, or with the fast sigmoid of steepness `k` when given (and the reset detached,
/// as `ChipSimulator::with_fast_sigmoid` does).
pub(crate) fn chip_reference_with(
    net: &Network,
    input: &[f64],
    batch: usize,
    steps: usize,
    coeff: &[Vec<f64>; 8],
    fast_sigmoid: Option<f64>,
) -> ChipReference {
    let dev = Cpu::default();
    let mut g = Graph {
        dev: dev.clone(),
        tapes: Vec::new(),
    };
    let n = net.neurons();
    let b = batch;
    let w_in_m = net.w_in.as_ref().expect("input weights");
    let n_in = w_in_m.rows();
    let defaults = ChipSynapses::defaults(n);
    let chip = net.chip.as_ref().unwrap_or(&defaults);
    let p = &net.params;
    let dt = net.dt;
    let w_in = g.mat(w_in_m.as_slice().to_vec(), n_in, n);
    let w_rec = g.mat(net.w_rec.as_slice().to_vec(), n, n);
    let idc_leaf: V = dev.tensor_from_vec(p.i_dc.clone(), (n,));
    // Per dendrite: W_k = sign_k * W * mask_k.
    let split = |g: &mut Graph, w: &M, m: &Matrix, types: Option<&[SynapseChoice]>| -> Vec<M> {
        (0..DENDRITES)
            .map(|k| {
                let (mk, sign) = mask(m, types, k);
                let t = g.t(w) * g.mat(mk, m.rows(), m.cols()) * sign;
                g.park(t)
            })
            .collect()
    };
    let w_in_k = split(&mut g, &w_in, w_in_m, chip.w_in_types.as_deref());
    let w_rec_k = split(&mut g, &w_rec, &net.w_rec, chip.w_rec_types.as_deref());
    // Constants, as ChipSimulator::new computes them (in f64 they are the same numbers).
    let rep = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { (0..b * n).map(|k| f(k % n)).collect() };
    let kappa = |j: usize| (p.kappa_n[j] + p.kappa_p[j]) / 2.0;
    let utk = |j: usize| p.u_t[j] / kappa(j);
    let dpi = |j: usize, i_tau: f64, i_gain: f64, c: f64, i_pulse: f64, c_pulse: f64| {
        let io = p.i_o[j];
        let itau = i_tau.max(io);
        let tau = utk(j) * c / itau;
        let gain = i_gain.max(io) / itau;
        let t_pulse = p.v_th[j] * c_pulse / i_pulse;
        let charge = (1.0 - (-t_pulse / tau).exp()) * (-(dt - t_pulse).max(0.0) / tau).exp();
        ((-dt / tau).exp(), gain * charge)
    };
    let dend = |j: usize, k: usize| -> (f64, f64) {
        let d = Dendrite::ALL[k];
        let (i_tau, i_gain, c) = match chip.params(d) {
            None => (p.i_tau_syn[j], p.i_gain_syn[j], p.c_syn[j]),
            Some(q) => (q.i_tau[j], q.i_gain[j], q.c[j]),
        };
        let (dc, jp) = dpi(j, i_tau, i_gain, c, p.i_pulse[j], p.c_pulse[j]);
        (dc, jp * net.i_scale)
    };
    let dec: Vec<M> = (0..DENDRITES)
        .map(|k| g.mat(rep(&|j| dend(j, k).0), b, n))
        .collect();
    let jmp: Vec<M> = (0..DENDRITES)
        .map(|k| g.mat(rep(&|j| dend(j, k).1), b, n))
        .collect();
    let ahp = |j: usize| {
        let (dc, jp) = dpi(
            j,
            p.i_tau_ahp[j],
            p.i_gain_ahp[j],
            p.c_ahp[j],
            p.i_pulse_ahp[j],
            p.c_pulse_ahp[j],
        );
        (dc, jp * p.i_w_ahp[j])
    };
    let adec = g.mat(rep(&|j| ahp(j).0), b, n);
    let ajmp = g.mat(rep(&|j| ahp(j).1), b, n);
    let io = g.mat(rep(&|j| p.i_o[j]), b, n);
    let ifn = g.mat(rep(&|j| p.i_f_nmda[j]), b, n);
    let itm = g.mat(rep(&|j| p.i_tau_mem[j].max(p.i_o[j])), b, n);
    let igm = g.mat(rep(&|j| p.i_gain_mem[j].max(p.i_o[j])), b, n);
    let ucm = g.mat(rep(&|j| utk(j) * p.c_mem[j]), b, n);
    let utk_b = g.mat(rep(&utk), b, n);
    let fe = g.mat(rep(&|j| kappa(j) / (kappa(j) + 1.0)), b, n);
    let t_ref: Vec<f64> = rep(&|j| {
        let t = p.v_th[j] * p.c_ref[j] / p.i_ref[j];
        if t.is_nan() { 0.0 } else { t }
    });
    let idc = g.rows(&idc_leaf, b);
    let zeros = g.mat(vec![0.0; b * n], b, n);

    // The resting state: new tensors with Io's values (dfdx refuses a binary operation whose two
    // operands are the same tensor).
    let rest = |g: &Graph| g.mat(rep(&|j| p.i_o[j]), b, n);
    let mut d: Vec<M> = (0..DENDRITES).map(|_| rest(&g)).collect();
    let mut iahp = rest(&g);
    let mut imem = rest(&g);
    let mut s = zeros.clone();
    let mut timer = vec![0.0; b * n];
    let mut spikes = vec![0.0; b * steps * n];
    let mut terms: Vec<Tensor<(), f64, Cpu>> = Vec::new();
    let add_term =
        |g: &mut Graph, x: &M, k: usize, t: usize, terms: &mut Vec<Tensor<(), f64, Cpu>>| {
            let c: Vec<f64> = (0..b)
                .flat_map(|bb| coeff[k][(bb * steps + t) * n..(bb * steps + t + 1) * n].to_vec())
                .collect();
            let term = (g.t(x) * g.mat(c, b, n)).sum::<(), _>();
            terms.push(g.park(term));
        };
    for t in 0..steps {
        let x_t: Vec<f64> = (0..b)
            .flat_map(|bb| input[(bb * steps + t) * n_in..(bb * steps + t + 1) * n_in].to_vec())
            .collect();
        let x = g.mat(x_t, b, n_in);
        let mut d1 = Vec::with_capacity(DENDRITES);
        for k in 0..DENDRITES {
            let u = g.t(&s).matmul(w_rec_k[k].clone()) + g.t(&x).matmul(w_in_k[k].clone());
            let u = g.park(u);
            let v = (g.t(&d[k]) - io.clone()) * dec[k].clone() + io.clone() + g.t(&jmp[k]) * u;
            d1.push(g.park(v));
        }
        let a1 = (g.t(&iahp) - io.clone()) * adec.clone() + io.clone() + g.t(&ajmp) * s.clone();
        let a1 = g.park(a1);
        let h = g.t(&ifn) / imem.clone() + 1.0;
        let h = g.park(h);
        let pre = g.t(&d1[0]) + g.t(&d1[1]) / h + idc.clone() - d1[2].clone();
        let pre = g.park(pre);
        let leak = g.t(&itm) + d1[3].clone();
        let leak = g.park(leak);
        let gate = g.mat(
            timer
                .iter()
                .map(|&r| if r == 0.0 { 1.0 } else { 0.0 })
                .collect(),
            b,
            n,
        );
        let iin = g.t(&pre).maximum(zeros.clone()) * gate;
        let iin = g.park(iin);
        let tau = g.t(&ucm) / leak.clone();
        let tau = g.park(tau);
        let minf = (g.t(&igm) / leak.clone()) * (g.t(&iin) - a1.clone() - leak.clone());
        let minf = g.park(minf);
        let ia = ((g.t(&imem) / io.clone()).ln() * fe.clone()).exp() * io.clone();
        let ia = g.park(ia);
        let mg = g.t(&imem) + igm.clone();
        let mg = g.park(mg);
        let f = (g.t(&ia) / leak.clone()) * mg.clone();
        let f = g.park(f);
        let pp = g.t(&imem) / (g.t(&tau) * mg);
        let pp = g.park(pp);
        let q = g.t(&minf) + f - g.t(&imem) * ((g.t(&a1) / leak.clone()) + 1.0);
        let q = g.park(q);
        let m = g.t(&imem) + g.t(&pp) * q * dt;
        let m = g.park(m);
        let mc = g.t(&m).maximum(io.clone());
        let mc = g.park(mc);
        let mv = mc.as_vec();
        let (mut hard, mut hh) = (vec![0.0; b * n], vec![0.0; b * n]);
        for k in 0..b * n {
            hard[k] = f64::from(u8::from(mv[k] > p.i_spkthr[k % n]));
            hh[k] = match fast_sigmoid {
                None => f64::from(u8::from(mv[k] > p.i_o[k % n])),
                Some(kk) => {
                    let thr = p.i_spkthr[k % n];
                    let g = 1.0 + kk * (mv[k] / thr - 1.0).abs();
                    1.0 / (thr * g * g)
                }
            };
        }
        let offset: Vec<f64> = (0..b * n).map(|k| hard[k] - mv[k] * hh[k]).collect();
        let bb = g.t(&mc) * g.mat(hh, b, n) + g.mat(offset, b, n);
        let bb = g.park(bb);
        // The reset: through the spike, or (fast sigmoid) detached, a constant.
        let reset = match fast_sigmoid {
            None => bb.clone(),
            Some(_) => g.mat(hard.clone(), b, n),
        };
        let next = (g.t(&reset).negate() + 1.0) * mc + g.t(&reset) * io.clone();
        let next = g.park(next);
        let vmem = (g.t(&next) / io.clone()).ln() * utk_b.clone();
        let vmem = g.park(vmem);
        for k in 0..b * n {
            timer[k] = (1.0 - hard[k]) * (timer[k] - dt).max(0.0) + hard[k] * t_ref[k];
        }
        let outs = [&bb, &next, &vmem, &a1, &d1[0], &d1[1], &d1[2], &d1[3]];
        for (k, o) in outs.into_iter().enumerate() {
            add_term(&mut g, o, k, t, &mut terms);
        }
        for (bi, chunk) in hard.chunks(n).enumerate() {
            spikes[(bi * steps + t) * n..(bi * steps + t + 1) * n].copy_from_slice(chunk);
        }
        (d, iahp, imem, s) = (d1, a1, next, bb);
    }
    let mut loss = g.t(&terms[0]);
    for term in &terms[1..] {
        loss = loss + g.t(term);
    }
    let (loss, mut tape) = loss.split_tape();
    for t in g.tapes.drain(..) {
        tape = dfdx::tensor::Merge::merge(tape, t);
    }
    let grads: Gradients<f64, Cpu> = loss.put_tape(tape).backward();
    ChipReference {
        spikes,
        w_in: grads.get(&w_in).as_vec(),
        w_rec: grads.get(&w_rec).as_vec(),
        i_dc: grads.get(&idc_leaf).as_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynap_model::{
        ChipOutputGradients, ChipSimulator, DendriteParams, Input, RunOptions, Variant,
    };

    fn net(n: usize, n_in: usize, recurrent: bool, vary: bool, types: bool) -> Network {
        let mut net = Network::with_defaults(n);
        net.variant = Variant::Chip;
        let w = |k: usize| ((k * 7919 + 13) % 17) as f64 / 17.0;
        // Weights of both signs, none zero (at zero the fused pass takes the mean of both sides, a
        // choice the composition cannot express).
        let signed = |k: usize, scale: f64| {
            let v = w(k) + 0.1;
            if k % 3 == 1 { -scale * v } else { scale * v }
        };
        net.w_in = Matrix::from_vec(n_in, n, (0..n_in * n).map(|k| signed(k, 8.0)).collect());
        if recurrent {
            net.w_rec =
                Matrix::from_vec(n, n, (0..n * n).map(|k| signed(k + 5, 3.0)).collect()).unwrap();
        }
        let mut chip = ChipSynapses::defaults(n);
        chip.w_in_types = Some(
            (0..n_in * n)
                .map(|k| SynapseChoice {
                    nmda: k % 4 == 2,
                    shunt: k % 5 == 1,
                })
                .collect(),
        );
        // Without types the recurrent weights are on AMPA and GABA only, which the reverse pass
        // handles in one signed pass.
        chip.w_rec_types = types.then(|| {
            (0..n * n)
                .map(|k| SynapseChoice {
                    nmda: k % 2 == 0,
                    shunt: k % 3 == 0,
                })
                .collect()
        });
        if vary {
            chip.nmda = DendriteParams::with_time_constant(n, 40e-3, 60.0, 25e-12);
            chip.shunt = DendriteParams::with_time_constant(n, 4e-3, 150.0, 24.5e-12);
        }
        net.chip = Some(chip);
        for j in 0..n {
            net.params.i_dc[j] = 1e-11 * (1.0 + j as f64);
            net.params.i_f_nmda[j] = 3e-11;
            net.params.i_w_ahp[j] = 1e-10;
            net.params.i_gain_ahp[j] *= 4.0;
            if vary {
                net.params.i_tau_mem[j] *= 1.0 + 0.15 * j as f64;
                net.params.i_gain_syn[j] *= 1.0 - 0.1 * j as f64;
            }
        }
        net
    }

    fn coefficients(len: usize) -> [Vec<f64>; 8] {
        let scale = [1.0, 1e9, 10.0, 1e10, 1e9, 1e9, 1e9, 1e9];
        std::array::from_fn(|k| {
            (0..len)
                .map(|i| {
                    (((i + 3) * (2 * k + 7919)) % 97) as f64 / 97.0 * scale[k] - 0.3 * scale[k]
                })
                .collect()
        })
    }

    fn close(what: &str, ours: &[f64], theirs: &[f64]) {
        let max = theirs.iter().fold(0f64, |a, b| a.max(b.abs()));
        assert!(max > 0.0, "{what}: all zero");
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-10 * max,
                "{what}[{i}]: fused {a:e}, dfdx-composed {b:e} (max {max:e})"
            );
        }
    }

    /// The `chip` variant's fused reverse pass equals the dfdx-composed gradient to 1e-10 relative in
    /// f64: with and without recurrence, batch > 1, per-neuron parameters, all four dendrites; with
    /// Rockpool's surrogate and with the fast sigmoid.
    #[test]
    fn the_chip_reverse_pass_equals_the_dfdx_composition() {
        check_chip_reverse(None);
        check_chip_reverse(Some(3.0));
    }

    fn check_chip_reverse(fast: Option<f64>) {
        for (recurrent, vary, batch, types) in [
            (false, false, 1, true),
            (true, false, 2, true),
            (true, true, 3, true),
            (true, true, 2, false),
        ] {
            let (n, n_in, steps) = (3, 4, 70);
            let net = net(n, n_in, recurrent, vary, types);
            let input: Vec<f64> = (0..batch * steps * n_in)
                .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)))
                .collect();
            let coeff = coefficients(batch * steps * n);
            let r = chip_reference_with(&net, &input, batch, steps, &coeff, fast);
            let mut sim = ChipSimulator::<f64>::new(&net).unwrap();
            if let Some(k) = fast {
                sim = sim.with_fast_sigmoid(k);
            }
            let x = Input::Spikes {
                data: &input,
                batch,
                steps,
            };
            let (trace, tape) = sim.run_taped(x, None, &RunOptions::default()).unwrap();
            assert_eq!(trace.spikes, r.spikes, "the two forward passes spike alike");
            assert!(
                trace.spikes.iter().sum::<f64>() > 5.0,
                "the network should spike"
            );
            let outs = ChipOutputGradients {
                spikes: Some(&coeff[0]),
                imem: Some(&coeff[1]),
                vmem: Some(&coeff[2]),
                iahp: Some(&coeff[3]),
                dendrites: [
                    Some(&coeff[4]),
                    Some(&coeff[5]),
                    Some(&coeff[6]),
                    Some(&coeff[7]),
                ],
                spikes_every_step: None,
            };
            let options = dynap_model::GradientOptions {
                threads: 1,
                input: false,
                currents: true,
            };
            let g = sim.gradient(&tape, x, &outs, &options).unwrap();
            let what = format!(
                "fast {fast:?}, recurrent {recurrent}, varied {vary}, batch {batch}, types {types}"
            );
            close(
                &format!("{what}: w_in"),
                g.w_in.as_ref().unwrap().as_slice(),
                &r.w_in,
            );
            if recurrent {
                close(&format!("{what}: w_rec"), g.w_rec.as_slice(), &r.w_rec);
            }
            close(&format!("{what}: Idc"), &g.i_dc, &r.i_dc);
        }
    }
}
