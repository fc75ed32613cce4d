//! An independent gradient, for tests only: the same DynapSim step composed from ordinary dfdx
//! operations on dfdx's tape (matmul, exp, ln, maximum, minimum, ...), unrolled over time, in `f64`.
//! Its only hand-written derivative is Rockpool's surrogate (`d s / d imem = [imem > Io]`), written as
//! `s = stop_gradient(s_hard - imem H) + imem H`; the tie rules of `max`/`min` and every chain rule
//! are dfdx's own. The fused adjoint must agree with it to 1e-10 relative.

use dfdx::shapes::{Axis, HasShape};
use dfdx::tensor::{Cpu, Gradients, OwnedTape, PutTape, SplitTape, Tensor, TensorFromVec};
use dfdx::tensor_ops::{Backward, BroadcastTo, SumTo, TryMatMul};
use dynap_model::{Network, Param};

pub(crate) type Tape = OwnedTape<f64, Cpu>;
pub(crate) type V = Tensor<(usize,), f64, Cpu>;
pub(crate) type M = Tensor<(usize, usize), f64, Cpu>;

/// Collects the tape of every operation so that all of them reach the loss's backward pass.
pub(crate) struct Graph {
    pub(crate) dev: Cpu,
    pub(crate) tapes: Vec<Tape>,
}

impl Graph {
    pub(crate) fn park<S: dfdx::shapes::Shape>(
        &mut self,
        t: Tensor<S, f64, Cpu, Tape>,
    ) -> Tensor<S, f64, Cpu> {
        let (t, tape) = t.split_tape();
        self.tapes.push(tape);
        t
    }

    pub(crate) fn t<S: dfdx::shapes::Shape>(
        &self,
        t: &Tensor<S, f64, Cpu>,
    ) -> Tensor<S, f64, Cpu, Tape> {
        t.clone().put_tape(Tape::default())
    }

    pub(crate) fn vec(&self, v: Vec<f64>) -> V {
        let n = v.len();
        self.dev.tensor_from_vec(v, (n,))
    }

    pub(crate) fn mat(&self, v: Vec<f64>, r: usize, c: usize) -> M {
        self.dev.tensor_from_vec(v, (r, c))
    }

    /// A per-neuron vector broadcast over the batch.
    pub(crate) fn rows(&mut self, v: &V, b: usize) -> M {
        let n = v.shape().0;
        let t = self.t(v).broadcast_like::<_, Axis<0>>(&(b, n));
        self.park(t)
    }
}

/// The result of the reference: loss and gradients (w_in, w_rec, the 13 currents in
/// `Param::CURRENTS` order).
pub(crate) struct Reference {
    pub(crate) spikes: Vec<f64>,
    pub(crate) w_in: Vec<f64>,
    pub(crate) w_rec: Vec<f64>,
    pub(crate) currents: Vec<Vec<f64>>,
}

/// `loss = sum over b, t, j of c_s s + c_imem imem + c_isyn isyn + c_iahp iahp + c_vmem vmem` with
/// the coefficient arrays `coeff[k]` `[B, T, N]` in that order.
pub(crate) fn reference(
    net: &Network,
    input: &[f64],
    batch: usize,
    steps: usize,
    coeff: &[Vec<f64>; 5],
) -> Reference {
    reference_with(net, input, batch, steps, coeff, None)
}

/// [`reference`] with the fast-sigmoid surrogate of steepness `k` instead of Rockpool's when given
/// (`d s / d imem = 1 / (Ispkthr (1 + k |imem / Ispkthr - 1|)^2)`).
pub(crate) fn reference_with(
    net: &Network,
    input: &[f64],
    batch: usize,
    steps: usize,
    coeff: &[Vec<f64>; 5],
    fast_sigmoid: Option<f64>,
) -> Reference {
    let dev = Cpu::default();
    let mut g = Graph {
        dev: dev.clone(),
        tapes: Vec::new(),
    };
    let n = net.neurons();
    let w_in_m = net.w_in.as_ref().expect("input weights");
    let n_in = w_in_m.rows();
    let p = &net.params;
    let dt = net.dt;
    let w_in = g.mat(w_in_m.as_slice().to_vec(), n_in, n);
    let w_rec = g.mat(net.w_rec.as_slice().to_vec(), n, n);
    let leaves: Vec<V> = Param::CURRENTS
        .iter()
        .map(|&c| g.vec(p.get(c).to_vec()))
        .collect();
    let leaf = |c: Param| {
        &leaves[Param::CURRENTS
            .iter()
            .position(|&q| q == c)
            .expect("a current")]
    };
    let konst = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { (0..n).map(f).collect() };
    let kappa = konst(&|j| (p.kappa_n[j] + p.kappa_p[j]) / 2.0);
    let utk = konst(&|j| p.u_t[j] / kappa[j]);
    let io = g.vec(p.i_o.clone());

    // Once per run, as Simulator::new (but composed from dfdx operations).
    let floor = |g: &mut Graph, c: Param| {
        let t = g.t(leaf(c)).maximum(io.clone());
        g.park(t)
    };
    let itau_s = floor(&mut g, Param::ItauSyn);
    let igain_s = floor(&mut g, Param::IgainSyn);
    let itau_a = floor(&mut g, Param::ItauAhp);
    let igain_a = floor(&mut g, Param::IgainAhp);
    let itau_m = floor(&mut g, Param::ItauMem);
    let igain_m = floor(&mut g, Param::IgainMem);
    // decay exp(-dt/tau), charge 1 - exp(-t_pulse/tau), tau = utk C / itau, t_pulse = Vth Cp / Ipulse.
    let dpi = |g: &mut Graph, itau: &V, c: &[f64], ipulse: Param, cp: &[f64]| -> (V, V) {
        let tau_recip = g.t(itau) * g.vec(konst(&|j| 1.0 / (utk[j] * c[j]))); // 1/tau = itau / (utk C)
        let tau_recip = g.park(tau_recip);
        let dis = (g.t(&tau_recip) * -dt).exp();
        let dis = g.park(dis);
        let t_p = g.t(leaf(ipulse)).recip() * g.vec(konst(&|j| p.v_th[j] * cp[j]));
        let t_p = g.park(t_p);
        let chg = ((g.t(&t_p) * tau_recip).negate().exp()).negate() + 1.0;
        let chg = g.park(chg);
        (dis, chg)
    };
    let (dis_s, chg_s) = dpi(&mut g, &itau_s, &p.c_syn, Param::Ipulse, &p.c_pulse);
    let (dis_a, chg_a) = dpi(&mut g, &itau_a, &p.c_ahp, Param::IpulseAhp, &p.c_pulse_ahp);
    let gain = |g: &mut Graph, ig: &V, it: &V| {
        let t = g.t(ig) / it.clone();
        g.park(t)
    };
    let gain_s = gain(&mut g, &igain_s, &itau_s);
    let gain_a = gain(&mut g, &igain_a, &itau_a);
    let gain_m = gain(&mut g, &igain_m, &itau_m);

    // Per-neuron values broadcast over the batch.
    let b = batch;
    let (io_b, dis_s, chg_s, dis_a, chg_a) = (
        g.rows(&io, b),
        g.rows(&dis_s, b),
        g.rows(&chg_s, b),
        g.rows(&dis_a, b),
        g.rows(&chg_a, b),
    );
    let (gain_s, gain_a, gain_m) = (g.rows(&gain_s, b), g.rows(&gain_a, b), g.rows(&gain_m, b));
    let (itau_m, igain_m) = (g.rows(&itau_m, b), g.rows(&igain_m, b));
    let idc = g.rows(leaf(Param::Idc), b);
    let iw_ahp = g.rows(leaf(Param::IwAhp), b);
    let rep = |v: &[f64]| -> Vec<f64> { (0..b).flat_map(|_| v.iter().copied()).collect() };
    let kp_over_ut = g.mat(
        rep(&konst(&|j| {
            kappa[j] * kappa[j] / (kappa[j] + 1.0) / p.u_t[j]
        })),
        b,
        n,
    );
    let utk_b = g.mat(rep(&utk), b, n);
    let utk_cmem = g.mat(rep(&konst(&|j| utk[j] * p.c_mem[j])), b, n);
    let t_ref = konst(&|j| p.v_th[j] * p.c_ref[j] / p.i_ref[j]);
    let ispkthr = p.i_spkthr.clone();

    let zeros = g.mat(vec![0.0; b * n], b, n);
    let ones = g.mat(vec![1.0; b * n], b, n);
    let mut isyn = io_b.clone();
    let mut iahp = io_b.clone();
    let mut imem = io_b.clone();
    let mut vmem = zeros.clone();
    let mut s = zeros.clone();
    let mut timer = vec![0.0; b * n];
    let mut loss_terms: Vec<Tensor<(), f64, Cpu>> = Vec::new();
    let mut spikes = vec![0.0; b * steps * n];
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
        let x = g
            .mat(x_t, b, n_in)
            .put_tape(Tape::default())
            .matmul(w_in.clone());
        let x = g.park(x);
        let rec = g.t(&s).matmul(w_rec.clone());
        let rec = g.park(rec);
        let iws = (g.t(&rec) + x) * net.i_scale;
        let iws = g.park(iws);
        let isyn_inf = (g.t(&gain_s) * iws).maximum(io_b.clone());
        let isyn_inf = g.park(isyn_inf);
        let isyn1 = g.t(&dis_s) * isyn.clone() + g.t(&chg_s) * isyn_inf;
        let isyn1 = g.park(isyn1);
        let iahp_inf = g.t(&gain_a) * (g.t(&iw_ahp) * s.clone());
        let iahp_inf = g.park(iahp_inf);
        let a = g.t(&dis_a) * iahp.clone() + g.t(&chg_a) * iahp_inf;
        let a = g.park(a);
        let iahp1 = g.t(&a).maximum(io_b.clone());
        let iahp1 = g.park(iahp1);
        let ffb = (g.t(&vmem) * kp_over_ut.clone()).exp();
        let ffb = g.park(ffb);
        let ileak = g.t(&itau_m) + iahp1.clone();
        let ileak = g.park(ileak);
        let gate = g.mat(
            timer
                .iter()
                .map(|&r| if r == 0.0 { 1.0 } else { 0.0 })
                .collect(),
            b,
            n,
        );
        let pre = (g.t(&isyn1) - ileak.clone() + idc.clone()) * gate;
        let pre = g.park(pre);
        let iin = g.t(&pre).maximum(io_b.clone());
        let iin = g.park(iin);
        let imem_inf = g.t(&gain_m) * (g.t(&iin) - ileak.clone());
        let imem_inf = g.park(imem_inf);
        let pp = g.t(&imem) + igain_m.clone();
        let pp = g.park(pp);
        let f_imem = (g.t(&ffb) * io_b.clone() / ileak.clone()) * pp.clone();
        let f_imem = g.park(f_imem);
        let tau_m = g.t(&utk_cmem) / ileak.clone();
        let tau_m = g.park(tau_m);
        let bv = g.t(&imem_inf) + f_imem - g.t(&imem) * ((g.t(&iahp1) / itau_m.clone()) + 1.0);
        let bv = g.park(bv);
        let av = g.t(&imem) / (g.t(&tau_m) * pp);
        let av = g.park(av);
        let m = g.t(&imem) + g.t(&av) * bv * dt;
        let m = g.park(m);
        let imem_c = g.t(&m).maximum(io_b.clone());
        let imem_c = g.park(imem_c);
        let vmem1 = (g.t(&imem_c) / io_b.clone()).ln() * utk_b.clone();
        let vmem1 = g.park(vmem1);
        // The spike count with Rockpool's surrogate: value ceil(ln(imem/Ispkthr)) clipped at 0,
        // derivative [imem > Io].
        let ic = imem_c.as_vec();
        let (mut hard, mut h) = (vec![0.0; b * n], vec![0.0; b * n]);
        for k in 0..b * n {
            hard[k] = (ic[k] / ispkthr[k % n]).ln().ceil().max(0.0);
            h[k] = match fast_sigmoid {
                None => {
                    if ic[k] > p.i_o[k % n] {
                        1.0
                    } else {
                        0.0
                    }
                }
                Some(kk) => {
                    let g = 1.0 + kk * (ic[k] / ispkthr[k % n] - 1.0).abs();
                    1.0 / (ispkthr[k % n] * g * g)
                }
            };
        }
        let offset: Vec<f64> = (0..b * n).map(|k| hard[k] - ic[k] * h[k]).collect();
        let s1 = g.t(&imem_c) * g.mat(h, b, n) + g.mat(offset, b, n);
        let s1 = g.park(s1);
        let bb = match fast_sigmoid {
            None => {
                let bb = g.t(&s1).maximum(zeros.clone()).minimum(ones.clone());
                g.park(bb)
            }
            // The fast sigmoid's reset is detached: a constant.
            Some(_) => g.mat(hard.iter().map(|&c| c.clamp(0.0, 1.0)).collect(), b, n),
        };
        let imem1 = (g.t(&bb).negate() + 1.0) * imem_c + g.t(&bb) * io_b.clone();
        let imem1 = g.park(imem1);
        let bv_vals = bb.as_vec();
        for k in 0..b * n {
            timer[k] = (1.0 - bv_vals[k]) * (timer[k] - dt).max(0.0) + bv_vals[k] * t_ref[k % n];
        }
        for (k, x) in [&s1, &imem1, &isyn1, &iahp1, &vmem1]
            .into_iter()
            .enumerate()
        {
            add_term(&mut g, x, k, t, &mut loss_terms);
        }
        for (bb_i, chunk) in hard.chunks(n).enumerate() {
            spikes[(bb_i * steps + t) * n..(bb_i * steps + t + 1) * n].copy_from_slice(chunk);
        }
        (isyn, iahp, imem, vmem, s) = (isyn1, iahp1, imem1, vmem1, s1);
    }
    let mut loss = g.t(&loss_terms[0]);
    for term in &loss_terms[1..] {
        loss = loss + g.t(term);
    }
    let (loss, mut tape) = loss.split_tape();
    for t in g.tapes.drain(..) {
        tape = dfdx::tensor::Merge::merge(tape, t);
    }
    let mut grads: Gradients<f64, Cpu> = loss.put_tape(tape).backward();
    Reference {
        spikes,
        w_in: grads.get(&w_in).as_vec(),
        w_rec: grads.get(&w_rec).as_vec(),
        // Currents the graph never used (If_nmda, Iref, Ispkthr) have no gradient: it is zero.
        currents: leaves
            .iter()
            .map(|l| {
                grads
                    .get_or_alloc_mut(l)
                    .expect("allocates")
                    .iter()
                    .copied()
                    .collect()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynap_model::{GradientOptions, Input, Matrix, OutputGradients, RunOptions, Simulator};

    fn net(n: usize, n_in: usize, recurrent: bool, vary: bool) -> Network {
        let mut net = Network::with_defaults(n);
        let w = |k: usize| ((k * 7919 + 13) % 17) as f64 / 17.0;
        net.w_in = Some(
            Matrix::from_vec(n_in, n, (0..n_in * n).map(|k| 1.0 + 9.0 * w(k)).collect()).unwrap(),
        );
        if recurrent {
            net.w_rec =
                Matrix::from_vec(n, n, (0..n * n).map(|k| 4.0 * w(k + 3) - 2.0).collect()).unwrap();
        }
        for j in 0..n {
            net.params.i_dc[j] = 2e-11 * (1.0 + j as f64);
            net.params.i_w_ahp[j] = 1e-9;
            net.params.i_gain_ahp[j] *= 4.0;
            net.params.i_pulse_ahp[j] = 3.5e-9;
            if vary {
                net.params.i_tau_mem[j] *= 1.0 + 0.15 * j as f64;
                net.params.i_gain_syn[j] *= 1.0 - 0.1 * j as f64;
                net.params.i_ref[j] *= 0.4 + 0.2 * j as f64;
            }
        }
        net
    }

    fn coefficients(len: usize) -> [Vec<f64>; 5] {
        let scale = [1.0, 1e9, 1e9, 1e10, 10.0];
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
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-10 * max,
                "{what}[{i}]: fused {a:e}, dfdx-composed {b:e} (max {max:e})"
            );
        }
    }

    /// With the fast-sigmoid surrogate, the adjoint (full tape and checkpoints) equals the dfdx
    /// composition with the same surrogate to 1e-10, and the forward pass spikes as Rockpool's.
    #[test]
    fn the_fast_sigmoid_adjoint_equals_the_dfdx_composition() {
        for (recurrent, vary, batch, every) in
            [(false, false, 1, 1), (true, true, 2, 1), (true, true, 3, 7)]
        {
            let (n, n_in, steps) = (3, 4, 60);
            let net = net(n, n_in, recurrent, vary);
            let input: Vec<f64> = (0..batch * steps * n_in)
                .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)))
                .collect();
            let coeff = coefficients(batch * steps * n);
            let r = reference_with(&net, &input, batch, steps, &coeff, Some(5.0));
            let plain = Simulator::<f64>::new(&net).unwrap();
            let sim = Simulator::<f64>::new(&net)
                .unwrap()
                .with_spike_function(dynap_model::SpikeFunction::FastSigmoid { k: 5.0 });
            let x = Input::Spikes {
                data: &input,
                batch,
                steps,
            };
            let (trace, tape) = sim
                .run_taped(x, None, &RunOptions::default(), every)
                .unwrap();
            assert_eq!(trace.spikes, r.spikes, "the two forward passes spike alike");
            assert_eq!(
                trace.spikes,
                plain.run(x, None, &RunOptions::default()).unwrap().spikes,
                "the forward pass is Rockpool's"
            );
            let outs = OutputGradients {
                spikes: Some(&coeff[0]),
                imem: Some(&coeff[1]),
                isyn: Some(&coeff[2]),
                iahp: Some(&coeff[3]),
                vmem: Some(&coeff[4]),
                spikes_every_step: None,
            };
            let g = sim
                .gradient(
                    &tape,
                    x,
                    &outs,
                    &GradientOptions {
                        threads: 1,
                        input: false,
                        currents: true,
                    },
                )
                .unwrap();
            let what = format!(
                "fast sigmoid: recurrent {recurrent}, varied {vary}, batch {batch}, every {every}"
            );
            close(
                &format!("{what}: w_in"),
                g.w_in.as_ref().unwrap().as_slice(),
                &r.w_in,
            );
            close(&format!("{what}: w_rec"), g.w_rec.as_slice(), &r.w_rec);
            for (k, p) in Param::CURRENTS.iter().enumerate() {
                close(
                    &format!("{what}: {}", p.rockpool_name()),
                    g.current(*p).unwrap(),
                    &r.currents[k],
                );
            }
        }
    }

    /// The fused adjoint equals the dfdx-composed gradient to 1e-10 relative in f64: with and without
    /// recurrence, batch > 1, per-neuron parameters.
    #[test]
    fn the_fused_adjoint_equals_the_dfdx_composition() {
        for (recurrent, vary, batch) in [(false, false, 1), (true, false, 2), (true, true, 3)] {
            let (n, n_in, steps) = (3, 4, 60);
            let net = net(n, n_in, recurrent, vary);
            let input: Vec<f64> = (0..batch * steps * n_in)
                .map(|k| f64::from(u8::from((k * 2654435761) % 7 < 2)))
                .collect();
            let coeff = coefficients(batch * steps * n);
            let r = reference(&net, &input, batch, steps, &coeff);
            let sim = Simulator::<f64>::new(&net).unwrap();
            let x = Input::Spikes {
                data: &input,
                batch,
                steps,
            };
            let (trace, tape) = sim.run_taped(x, None, &RunOptions::default(), 1).unwrap();
            assert_eq!(trace.spikes, r.spikes, "the two forward passes spike alike");
            assert!(
                trace.spikes.iter().sum::<f64>() > 5.0,
                "the network should spike"
            );
            let outs = OutputGradients {
                spikes: Some(&coeff[0]),
                imem: Some(&coeff[1]),
                isyn: Some(&coeff[2]),
                iahp: Some(&coeff[3]),
                vmem: Some(&coeff[4]),
                spikes_every_step: None,
            };
            let g = sim
                .gradient(
                    &tape,
                    x,
                    &outs,
                    &GradientOptions {
                        threads: 1,
                        input: false,
                        currents: true,
                    },
                )
                .unwrap();
            let what = format!("recurrent {recurrent}, varied {vary}, batch {batch}");
            close(
                &format!("{what}: w_in"),
                g.w_in.as_ref().unwrap().as_slice(),
                &r.w_in,
            );
            close(&format!("{what}: w_rec"), g.w_rec.as_slice(), &r.w_rec);
            for (k, p) in Param::CURRENTS.iter().enumerate() {
                close(
                    &format!("{what}: {}", p.rockpool_name()),
                    g.current(*p).unwrap(),
                    &r.currents[k],
                );
            }
        }
    }
}
