//! The `chip` variant's reverse pass: the taped run and the gradient through its tape, each step
//! recomputed with the forward pass's neuron step.

use super::forward::FIELDS;
use super::params::{ChipView, DENDRITES, SynapseChoice, dendrite_index};
use super::{ChipGradients, ChipOutputGradients, ChipSimulator, ChipState, ChipTape, ChipTrace};
use crate::aligned::Aligned;
use crate::error::Error;
use crate::hwweights::Dendrite;
use crate::isa::Isa;
use crate::network::Matrix;
use crate::real::Real;
use crate::run::{Input, RunOptions, add_rows, d_clip, for_each_nonzero};

impl<T: Real> ChipSimulator<T> {
    /// [`ChipSimulator::run`], recording the state before and after every step for
    /// [`ChipSimulator::gradient`] (`8 N` values per step and batch element).
    pub fn run_taped(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
    ) -> Result<(ChipTrace<T>, ChipTape<T>), Error> {
        self.run_taped_reusing(input, initial, options, None)
    }

    /// [`ChipSimulator::run_taped`] into the memory of a tape no longer needed (`reuse`), when given:
    /// a training loop that records a run per step allocates (and zeroes) its tape once.
    pub fn run_taped_reusing(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
        reuse: Option<ChipTape<T>>,
    ) -> Result<(ChipTrace<T>, ChipTape<T>), Error> {
        let (batch, steps) = input.dims();
        let mut states = reuse.map(|t| t.states).unwrap_or_default();
        // Every entry is written in full by the run, so reused memory needs no clearing.
        states.resize(batch * (steps + 1) * FIELDS * self.n, T::ZERO);
        let trace = self.run_impl(input, initial, options, Some(&mut states))?;
        Ok((
            trace,
            ChipTape {
                batch,
                steps,
                states,
            },
        ))
    }
}

/// One batch element's share of the gradients.
struct ChipElementGradients<T> {
    /// Per dendrite, `[N][N]`.
    w_rec: [Aligned<T>; DENDRITES],
    /// Per dendrite, `[Nin][N]`.
    w_in: [Aligned<T>; DENDRITES],
    input: Vec<T>,
    i_dc: Aligned<T>,
    /// Adjoints of the per-neuron constants, accumulated over steps (see [`ACC`]).
    acc: [Aligned<T>; ACC],
}

/// The values of a gradient one thread sums over the batch elements at a time.
const REDUCE_CHUNK: usize = 4 * 1024;

/// Accumulated constant adjoints: `decay` of the four dendrites (0..4), their `jump` (4..8), the AHP's
/// decay (8) and jump (9), `If_nmda` (10), the floored `Itau_mem` (11) and `Igain_mem` (12).
const ACC: usize = 13;

impl<T: Real> ChipSimulator<T> {
    /// The gradients of a loss through the run recorded in `tape`, given the loss's gradient with
    /// respect to the run's outputs. `input` must be the input of that run.
    ///
    /// The reverse pass walks the steps backwards, recomputes each step from the recorded state with
    /// [`ChipSimulator`]'s own step function, and propagates the adjoints (the chain rule of the
    /// equations in the module documentation). The threshold's derivative is Rockpool's `step_pwl`
    /// surrogate (`d spike / d Imem = 1 A^-1` wherever `Imem > Io`); the refractory gate passes
    /// nothing; floors pass 1 above, 0.5 at a tie, 0 below. A weight's gradient is that of the dendrite
    /// its sign selects; at exactly 0, the mean of its excitatory side and its inhibitory side (so a
    /// zero weight can grow either way). The bias currents' gradients come from the per-neuron
    /// constants' adjoints, accumulated over the steps and carried to the currents in `f64`.
    pub fn gradient(
        &self,
        tape: &ChipTape<T>,
        input: Input<'_, T>,
        outputs: &ChipOutputGradients<'_, T>,
        options: &crate::run::GradientOptions,
    ) -> Result<ChipGradients, Error> {
        let want_input = options.input;
        let (batch, steps) = input.dims();
        if (batch, steps) != (tape.batch, tape.steps) {
            return Err(Error::TapeMismatch {
                tape_batch: tape.batch,
                tape_steps: tape.steps,
                batch,
                steps,
            });
        }
        let n = self.n;
        let (data, channels, spikes_in) = self.dense_input(&input)?;
        let data = &data[..];
        let len = batch * steps * n;
        let all = [outputs.spikes, outputs.imem, outputs.vmem, outputs.iahp]
            .into_iter()
            .chain(outputs.dendrites);
        if let Some(g) = outputs.spikes_every_step
            && g.len() != batch * n
        {
            return Err(Error::InputShape {
                batch,
                steps: 1,
                channels: n,
                found_len: g.len(),
            });
        }
        for g in all.flatten() {
            if g.len() != len {
                return Err(Error::InputShape {
                    batch,
                    steps,
                    channels: n,
                    found_len: g.len(),
                });
            }
        }
        let n_in = self.n_in.unwrap_or(0);
        // Weight gradients only for the dendrites some connection can drive (the kernel writes no
        // other; an empty one sums as zeros): half the per-element memory with AMPA and GABA alone.
        // Each element's buffers are made (allocated and zeroed) by the thread that runs it.
        let element = || ChipElementGradients {
            w_rec: std::array::from_fn(|k| {
                Aligned::filled(if self.w_rec_candidates[k] { n * n } else { 0 }, T::ZERO)
            }),
            w_in: std::array::from_fn(|k| {
                Aligned::filled(
                    if spikes_in && self.w_in_candidates[k] {
                        n_in * n
                    } else {
                        0
                    },
                    T::ZERO,
                )
            }),
            input: vec![T::ZERO; if want_input { steps * channels } else { 0 }],
            i_dc: Aligned::filled(n, T::ZERO),
            acc: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
        };
        let mut elements: Vec<Option<ChipElementGradients<T>>> = (0..batch).map(|_| None).collect();
        let threads = match options.threads {
            0 => crate::threads::cores(),
            t => t,
        }
        .clamp(1, batch.max(1));
        let per_tape = (steps + 1) * FIELDS * n;
        let work = |scratch: &mut ReverseScratch<T>,
                    b: usize,
                    slot: &mut Option<ChipElementGradients<T>>| {
            let g = slot.insert(element());
            let xs = &data[b * steps * channels..(b + 1) * steps * channels];
            let range = b * steps * n..(b + 1) * steps * n;
            fn pick<'a, T>(o: Option<&'a [T]>, r: &std::ops::Range<usize>) -> Option<&'a [T]> {
                o.map(|v| &v[r.clone()])
            }
            let outs = ChipOutputGradients {
                spikes: pick(outputs.spikes, &range),
                imem: pick(outputs.imem, &range),
                vmem: pick(outputs.vmem, &range),
                iahp: pick(outputs.iahp, &range),
                dendrites: outputs.dendrites.map(|o| pick(o, &range)),
                spikes_every_step: outputs.spikes_every_step.map(|v| &v[b * n..(b + 1) * n]),
            };
            let tape_b = &tape.states[b * per_tape..(b + 1) * per_tape];
            chip_reverse_element(
                self, self.isa, tape_b, xs, channels, spikes_in, want_input, steps, &outs, g,
                scratch,
            );
        };
        crate::threads::for_each_item(&mut elements, threads, || ReverseScratch::new(n), work);
        let elements: Vec<ChipElementGradients<T>> = elements
            .into_iter()
            .map(|g| g.expect("every element was run"))
            .collect();
        // Sum over the batch in a fixed order (disjoint ranges of the result in parallel, so that
        // the bits do not depend on the threads), then carry each dendrite's gradient to the signed
        // weight that drives it.
        let sum = |f: &(dyn Fn(&ChipElementGradients<T>) -> &[T] + Sync), len: usize| {
            crate::threads::sum_in_order(&elements, len, REDUCE_CHUNK, threads, f)
        };
        let sum_k = |f: &(dyn Fn(&ChipElementGradients<T>) -> &[Aligned<T>; DENDRITES] + Sync),
                     size: usize| {
            let out: [Vec<f64>; DENDRITES] = std::array::from_fn(|k| {
                if elements.first().is_none_or(|e| f(e)[k].is_empty()) {
                    vec![0.0; size]
                } else {
                    sum(&|e| &f(e)[k], size)
                }
            });
            out
        };
        let signed = |m: &Matrix, g: [Vec<f64>; DENDRITES], types: Option<&[SynapseChoice]>| {
            let v = m
                .as_slice()
                .iter()
                .enumerate()
                .map(|(idx, &w)| {
                    let choice = types.map_or(SynapseChoice::default(), |t| t[idx]);
                    let exc = dendrite_index(if choice.nmda {
                        Dendrite::Nmda
                    } else {
                        Dendrite::Ampa
                    });
                    let inh = dendrite_index(if choice.shunt {
                        Dendrite::Shunt
                    } else {
                        Dendrite::Gaba
                    });
                    if w > 0.0 {
                        g[exc][idx]
                    } else if w < 0.0 {
                        -g[inh][idx]
                    } else {
                        0.5 * (g[exc][idx] - g[inh][idx])
                    }
                })
                .collect();
            Matrix::from_vec(m.rows(), m.cols(), v).expect("same shape")
        };
        let w_rec = signed(
            &self.signed_rec,
            sum_k(&|e| &e.w_rec, n * n),
            self.types_rec.as_deref(),
        );
        let w_in = self
            .signed_in
            .as_ref()
            .filter(|_| spikes_in)
            .map(|m| signed(m, sum_k(&|e| &e.w_in, n_in * n), self.types_in.as_deref()));
        let mut i_dc = vec![0.0; n];
        let mut acc = vec![vec![0.0; n]; ACC];
        for e in &elements {
            for (o, v) in i_dc.iter_mut().zip(&e.i_dc) {
                *o += v.to_f64();
            }
            for (a, v) in acc.iter_mut().zip(&e.acc) {
                for (o, x) in a.iter_mut().zip(v) {
                    *o += x.to_f64();
                }
            }
        }
        let (currents, dendrites) = self.current_gradients(&acc, &i_dc);
        let input = want_input.then(|| {
            elements
                .iter()
                .flat_map(|e| e.input.iter().map(|v| v.to_f64()))
                .collect()
        });
        Ok(ChipGradients {
            w_in,
            w_rec,
            input,
            i_dc,
            currents,
            dendrites,
        })
    }

    /// Carries the accumulated adjoints of the per-neuron constants to the bias currents, in `f64`,
    /// through the once-per-run expressions of `ChipConsts::new` (JAX's tie rule at the `Io`
    /// floors).
    #[allow(clippy::type_complexity)]
    fn current_gradients(
        &self,
        acc: &[Vec<f64>],
        i_dc: &[f64],
    ) -> (Vec<Vec<f64>>, [(Vec<f64>, Vec<f64>); 3]) {
        use crate::Param;
        let p = &self.params;
        let n = self.n;
        let dt = self.dt.to_f64();
        let i_scale = self.i_scale;
        let mut out = vec![vec![0.0; n]; Param::CURRENTS.len()];
        let mut dend: [(Vec<f64>, Vec<f64>); 3] =
            std::array::from_fn(|_| (vec![0.0; n], vec![0.0; n]));
        let idx = |q: Param| {
            Param::CURRENTS
                .iter()
                .position(|&c| c == q)
                .expect("a current")
        };
        for j in 0..n {
            let io = p.i_o[j];
            let utk = p.u_t[j] / ((p.kappa_n[j] + p.kappa_p[j]) / 2.0);
            // One DPI: decay exp(-dt/tau), jump g (1 - e^(-tp/tau)) e^(-max(dt - tp, 0)/tau) scale.
            // Returns d/d (Itau, Igain, Ipulse, scale).
            let dpi = |i_tau: f64,
                       i_gain: f64,
                       c: f64,
                       i_pulse: f64,
                       c_pulse: f64,
                       scale: f64,
                       a_dec: f64,
                       a_jmp: f64| {
                let itau = i_tau.max(io);
                let igain = i_gain.max(io);
                let tau = utk * c / itau;
                let g = igain / itau;
                let tp = p.v_th[j] * c_pulse / i_pulse;
                let dec = (-dt / tau).exp();
                let (charge, dch_dtau, dch_dtp) = if tp.is_nan() {
                    (0.0, 0.0, 0.0)
                } else {
                    let e1 = (-tp / tau).exp();
                    let r = (dt - tp).max(0.0);
                    let e2 = (-r / tau).exp();
                    let dtau = -e1 * tp / (tau * tau) * e2 + (1.0 - e1) * e2 * r / (tau * tau);
                    let dtp = if tp.is_finite() {
                        e1 * e2 / tau + if dt > tp { (1.0 - e1) * e2 / tau } else { 0.0 }
                    } else {
                        0.0
                    };
                    ((1.0 - e1) * e2, dtau, dtp)
                };
                let g_tau = a_dec * dec * dt / (tau * tau) + a_jmp * g * scale * dch_dtau;
                let g_itau = g_tau * (-tau / itau) + a_jmp * charge * scale * (-g / itau);
                let g_igain = a_jmp * charge * scale / itau;
                let g_tp = a_jmp * g * scale * dch_dtp;
                let g_ipulse = if tp.is_finite() && i_pulse > 0.0 {
                    g_tp * (-tp / i_pulse)
                } else {
                    0.0
                };
                let g_scale = a_jmp * g * charge;
                (
                    g_itau * d_clip(i_tau, io),
                    g_igain * d_clip(i_gain, io),
                    g_ipulse,
                    g_scale,
                )
            };
            let chip = self.chip_params.as_ref();
            let mut g_ipulse = 0.0;
            for k in 0..DENDRITES {
                let (i_tau, i_gain, c) = match (k, chip) {
                    (0, _) => (p.i_tau_syn[j], p.i_gain_syn[j], p.c_syn[j]),
                    (_, Some(ch)) => {
                        let d = [&ch.nmda, &ch.gaba, &ch.shunt][k - 1];
                        (d.i_tau[j], d.i_gain[j], d.c[j])
                    }
                    (_, None) => unreachable!("chip_params is always set"),
                };
                let (gt, gg, gp, _) = dpi(
                    i_tau,
                    i_gain,
                    c,
                    p.i_pulse[j],
                    p.c_pulse[j],
                    i_scale,
                    acc[k][j],
                    acc[4 + k][j],
                );
                g_ipulse += gp;
                if k == 0 {
                    out[idx(Param::ItauSyn)][j] = gt;
                    out[idx(Param::IgainSyn)][j] = gg;
                } else {
                    dend[k - 1].0[j] = gt;
                    dend[k - 1].1[j] = gg;
                }
            }
            out[idx(Param::Ipulse)][j] = g_ipulse;
            let (gt, gg, gp, gw) = dpi(
                p.i_tau_ahp[j],
                p.i_gain_ahp[j],
                p.c_ahp[j],
                p.i_pulse_ahp[j],
                p.c_pulse_ahp[j],
                p.i_w_ahp[j],
                acc[8][j],
                acc[9][j],
            );
            out[idx(Param::ItauAhp)][j] = gt;
            out[idx(Param::IgainAhp)][j] = gg;
            out[idx(Param::IpulseAhp)][j] = gp;
            out[idx(Param::IwAhp)][j] = gw;
            out[idx(Param::IfNmda)][j] = acc[10][j];
            out[idx(Param::ItauMem)][j] = acc[11][j] * d_clip(p.i_tau_mem[j], io);
            out[idx(Param::IgainMem)][j] = acc[12][j] * d_clip(p.i_gain_mem[j], io);
            out[idx(Param::Idc)][j] = i_dc[j];
        }
        (out, dend)
    }

    /// The reverse pass of one batch element.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline(always)]
    fn reverse_element_body(
        &self,
        tape: &[T],
        xs: &[T],
        channels: usize,
        spikes_in: bool,
        want_input: bool,
        steps: usize,
        outs: &ChipOutputGradients<'_, T>,
        g: &mut ChipElementGradients<T>,
        sc: &mut ReverseScratch<T>,
    ) {
        let n = self.n;
        let e = FIELDS * n;
        for v in [&mut sc.a_a, &mut sc.a_m, &mut sc.a_s]
            .into_iter()
            .chain(sc.a_d.iter_mut())
        {
            v.fill(T::ZERO);
        }
        for t in (0..steps).rev() {
            let prev = &tape[t * e..(t + 1) * e];
            let row = t * n..(t + 1) * n;
            let add = |a: &mut [T], o: Option<&[T]>| {
                if let Some(o) = o {
                    for (x, &v) in a.iter_mut().zip(&o[row.clone()]) {
                        *x = *x + v;
                    }
                }
            };
            add(&mut sc.a_s, outs.spikes);
            if let Some(every) = outs.spikes_every_step {
                for (x, &v) in sc.a_s.iter_mut().zip(every) {
                    *x = *x + v;
                }
            }
            add(&mut sc.a_m, outs.imem);
            add(&mut sc.a_a, outs.iahp);
            for k in 0..DENDRITES {
                add(&mut sc.a_d[k], outs.dendrites[k]);
            }
            // The drive of step t, recomputed.
            let s_prev = &prev[7 * n..8 * n];
            let xt = &xs[t * channels..(t + 1) * channels];
            self.drive(s_prev, xt, spikes_in, &mut sc.u);
            let zeros = &sc.zeros;
            let a_v = outs.vmem.map_or(&zeros[..], |v| &v[row.clone()]);
            let [u0, u1, u2, u3] = &sc.u;
            let [ad0, ad1, ad2, ad3] = &mut sc.a_d;
            let [gu0, gu1, gu2, gu3] = &mut sc.gu;
            self.reverse_neurons_body(
                prev,
                [u0, u1, u2, u3],
                a_v,
                [ad0, ad1, ad2, ad3],
                [gu0, gu1, gu2, gu3],
                &mut sc.a_a,
                &mut sc.a_m,
                &mut sc.a_s,
                &mut g.i_dc,
                &mut g.acc,
            );
            // Through the weights: the previous spikes drive every dendrite of every neuron. The
            // weight gradients are kept for every dendrite (a zero weight needs both of its sides).
            // Recurrent weights on AMPA and GABA only (the deployment's default): one pass over the
            // signed transpose, each weight taking its sign's dendrite gradient (half the memory
            // traffic of one pass per dendrite).
            let signed_pass = !self.w_rec_used[1] && !self.w_rec_used[3];
            if signed_pass && (self.w_rec_used[0] || self.w_rec_used[2]) {
                let rows = &mut sc.rows;
                rows.clear();
                let (ga, gg) = (&sc.gu[0], &sc.gu[2]);
                let live = &self.w_rec_live;
                for j in 0..n {
                    if (ga[j] != T::ZERO || gg[j] != T::ZERO) && live[j] {
                        rows.push(j);
                    }
                }
                add_rows(
                    &mut sc.a_s,
                    &sc.rows,
                    |j| (ga[j], -gg[j]),
                    &self.w_rec_signed_t,
                    |a, w, (pos, neg)| w.mul_add(if w > T::ZERO { pos } else { neg }, a),
                );
            }
            for k in 0..DENDRITES {
                let gu = &sc.gu[k];
                if self.w_rec_used[k] && !signed_pass {
                    // a_s_i += sum_j W_ij gu_j, as a sum of rows of the transpose over the neurons
                    // whose drive matters (vectorised, and sparse where the gradient is).
                    let rows = &mut sc.rows;
                    rows.clear();
                    let live = &self.w_rec_live;
                    for_each_nonzero(gu, |j, _| {
                        if live[j] {
                            rows.push(j);
                        }
                    });
                    add_rows(
                        &mut sc.a_s,
                        &sc.rows,
                        |j| gu[j],
                        &self.w_rec_t[k],
                        |a, w, d| w.mul_add(d, a),
                    );
                }
                // Only the dendrites some connection can take (by its sign or, at zero, either side).
                if !self.w_rec_candidates[k] {
                    continue;
                }
                for i in 0..n {
                    let si = s_prev[i];
                    if si != T::ZERO {
                        for (gw, gj) in g.w_rec[k][i * n..(i + 1) * n].iter_mut().zip(gu) {
                            *gw = *gw + si * *gj;
                        }
                    }
                }
            }
            if spikes_in && !want_input {
                // Only the weight gradients: the channels that spiked, the candidate dendrites.
                let g_w_in = &mut g.w_in;
                let gu = &sc.gu;
                let candidates = self.w_in_candidates;
                for_each_nonzero(
                    xt,
                    #[inline(always)]
                    |ch, x| {
                        for k in 0..DENDRITES {
                            if candidates[k] {
                                let row = &mut g_w_in[k][ch * n..(ch + 1) * n];
                                for (gw, gj) in row.iter_mut().zip(&gu[k]) {
                                    *gw = *gw + x * *gj;
                                }
                            }
                        }
                    },
                );
            } else if spikes_in {
                let w_in = self.w_in.as_ref().expect("input spikes need w_in");
                for (ch, &x) in xt.iter().enumerate() {
                    let mut gx = T::ZERO;
                    for k in 0..DENDRITES {
                        let gu = &sc.gu[k];
                        if want_input && self.w_in_used[k] {
                            for (wj, gj) in w_in[k][ch * n..(ch + 1) * n].iter().zip(gu) {
                                gx = gx + *wj * *gj;
                            }
                        }
                        if x != T::ZERO && self.w_in_candidates[k] {
                            for (gw, gj) in g.w_in[k][ch * n..(ch + 1) * n].iter_mut().zip(gu) {
                                *gw = *gw + x * *gj;
                            }
                        }
                    }
                    if want_input {
                        g.input[t * channels + ch] = gx;
                    }
                }
            } else if want_input {
                let half = T::ONE / (T::ONE + T::ONE);
                for j in 0..n {
                    let x = xt[j];
                    g.input[t * n + j] = if x > T::ZERO {
                        sc.gu[0][j]
                    } else if x < T::ZERO {
                        -sc.gu[2][j]
                    } else {
                        half * (sc.gu[0][j] - sc.gu[2][j])
                    };
                }
            }
        }
    }
}

/// Per-thread buffers of a `chip` reverse pass, allocated once.
struct ReverseScratch<T> {
    /// `N` zeros (the vmem gradient when the loss has none).
    zeros: Aligned<T>,
    /// The neurons whose drive gradient is not zero, in order.
    rows: Vec<usize>,
    a_d: [Aligned<T>; DENDRITES],
    a_a: Aligned<T>,
    a_m: Aligned<T>,
    a_s: Aligned<T>,
    u: [Aligned<T>; DENDRITES],
    gu: [Aligned<T>; DENDRITES],
}

impl<T: Real> ReverseScratch<T> {
    fn new(n: usize) -> ReverseScratch<T> {
        ReverseScratch {
            zeros: Aligned::filled(n, T::ZERO),
            rows: Vec::with_capacity(n),
            a_d: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            a_a: Aligned::filled(n, T::ZERO),
            a_m: Aligned::filled(n, T::ZERO),
            a_s: Aligned::filled(n, T::ZERO),
            u: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            gu: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
        }
    }
}

impl<T: Real> ChipSimulator<T> {
    /// The reverse of one step for every neuron of one batch element (see `reverse_element`).
    /// Inlined into the per-instruction-set entry points of [`chip_reverse_element`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn reverse_neurons_body(
        &self,
        prev: &[T],
        u: [&Aligned<T>; DENDRITES],
        a_v: &[T],
        a_d: [&mut Aligned<T>; DENDRITES],
        gu: [&mut Aligned<T>; DENDRITES],
        a_a: &mut [T],
        a_m: &mut [T],
        a_s: &mut [T],
        g_idc: &mut [T],
        acc: &mut [Aligned<T>; ACC],
    ) {
        let c = self.c.view();
        let [u0, u1, u2, u3] = u;
        let [ad0, ad1, ad2, ad3] = a_d;
        let [gu0, gu1, gu2, gu3] = gu;
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12] = acc;
        match self.smooth {
            None => reverse_loop(
                self, &c, prev, u0, u1, u2, u3, a_v, ad0, ad1, ad2, ad3, gu0, gu1, gu2, gu3, a_a,
                a_m, a_s, g_idc, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, None,
                self.fast,
            ),
            Some(beta) => reverse_loop(
                self,
                &c,
                prev,
                u0,
                u1,
                u2,
                u3,
                a_v,
                ad0,
                ad1,
                ad2,
                ad3,
                gu0,
                gu1,
                gu2,
                gu3,
                a_a,
                a_m,
                a_s,
                g_idc,
                c0,
                c1,
                c2,
                c3,
                c4,
                c5,
                c6,
                c7,
                c8,
                c9,
                c10,
                c11,
                c12,
                Some(beta),
                None,
            ),
        }
    }
}

/// The reverse of one step, neuron by neuron: the chain rule of [`ChipSimulator::neuron_step`]
/// (recomputed from the previous state `prev`, tape order). On entry `a_*` hold the adjoints of this
/// step's state; on return those of the previous state (for the spike, its adaptation path only);
/// `gu` receives the adjoint of each dendrite's drive and `g_idc` accumulates that of `Idc`. A free
/// function over separate slices so that it vectorises (see `neurons_loop` in `forward.rs`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn reverse_loop<T: Real>(
    sim: &ChipSimulator<T>,
    c: &ChipView<'_, T>,
    prev: &[T],
    u0: &[T],
    u1: &[T],
    u2: &[T],
    u3: &[T],
    a_v: &[T],
    ad0: &mut [T],
    ad1: &mut [T],
    ad2: &mut [T],
    ad3: &mut [T],
    gu0: &mut [T],
    gu1: &mut [T],
    gu2: &mut [T],
    gu3: &mut [T],
    a_a: &mut [T],
    a_m: &mut [T],
    a_s: &mut [T],
    g_idc: &mut [T],
    c0: &mut [T],
    c1: &mut [T],
    c2: &mut [T],
    c3: &mut [T],
    c4: &mut [T],
    c5: &mut [T],
    c6: &mut [T],
    c7: &mut [T],
    c8: &mut [T],
    c9: &mut [T],
    c10: &mut [T],
    c11: &mut [T],
    c12: &mut [T],
    smooth: Option<T>,
    fast: Option<T>,
) {
    let n = sim.n;
    let dt = sim.dt;
    let (c0, c1, c2, c3) = (&mut c0[..n], &mut c1[..n], &mut c2[..n], &mut c3[..n]);
    let (c4, c5, c6, c7) = (&mut c4[..n], &mut c5[..n], &mut c6[..n], &mut c7[..n]);
    let (c8, c9, c10) = (&mut c8[..n], &mut c9[..n], &mut c10[..n]);
    let (c11, c12) = (&mut c11[..n], &mut c12[..n]);
    let c = &c.cut(n);
    let prev = &prev[..FIELDS * n];
    let (p0, p1, p2, p3) = (
        &prev[..n],
        &prev[n..2 * n],
        &prev[2 * n..3 * n],
        &prev[3 * n..4 * n],
    );
    let (p4, p5, p6, p7) = (
        &prev[4 * n..5 * n],
        &prev[5 * n..6 * n],
        &prev[6 * n..7 * n],
        &prev[7 * n..8 * n],
    );
    let (u0, u1, u2, u3, a_v) = (&u0[..n], &u1[..n], &u2[..n], &u3[..n], &a_v[..n]);
    let (ad0, ad1, ad2, ad3) = (&mut ad0[..n], &mut ad1[..n], &mut ad2[..n], &mut ad3[..n]);
    let (gu0, gu1, gu2, gu3) = (&mut gu0[..n], &mut gu1[..n], &mut gu2[..n], &mut gu3[..n]);
    let (a_a, a_m, a_s, g_idc) = (&mut a_a[..n], &mut a_m[..n], &mut a_s[..n], &mut g_idc[..n]);
    for j in 0..n {
        let pj: [T; FIELDS] = [p0[j], p1[j], p2[j], p3[j], p4[j], p5[j], p6[j], p7[j]];
        let st = sim.neuron_step(c, j, pj, [u0[j], u1[j], u2[j], u3[j]], smooth);
        let io = c.io[j];
        let (m_prev, a_new) = (pj[5], st.a);
        let (l, igm, ucm) = (st.ileak, c.igain_mem[j], c.utk_cmem[j]);
        // Vmem = (UT/kappa) ln(Imem'/Io) and the reset Imem' = (1 - b) mc + b Io.
        let g_next = a_m[j] + a_v[j] * c.ut_over_kappa[j] / st.next;
        // With the fast sigmoid the reset is not differentiated: only the spike's own adjoint.
        let g_b = match fast {
            Some(_) => a_s[j],
            None => g_next * (io - st.mc) + a_s[j],
        };
        let sigma = match (smooth, fast) {
            (Some(beta), _) => beta * st.b * (T::ONE - st.b) / st.mc,
            (None, Some(k)) => crate::run::fast_sigmoid_slope(st.mc, c.ispkthr[j], k),
            (None, None) => {
                if st.mc > io {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
        };
        let g_mc = g_next * (T::ONE - st.b) + g_b * sigma;
        let g_m = g_mc * d_clip(st.m, io);
        // m = Imem + p q dt.
        let mut g_mprev = g_m;
        let g_p = g_m * dt * st.q;
        let g_q = g_m * dt * st.p;
        let mpg = m_prev + igm;
        let dp_dm = l * igm / (ucm * mpg * mpg);
        let dp_dl = st.p / l;
        let dq_diin = igm / l;
        let dq_da = -(igm / l) - m_prev / l;
        let dq_dl = -(igm * (st.iin - a_new) / (l * l)) - st.f / l + m_prev * a_new / (l * l);
        let df_dm = (st.ia / l) * (c.fb_exp[j] * mpg / m_prev + T::ONE);
        let dq_dm = df_dm - (T::ONE + a_new / l);
        g_mprev = g_mprev + g_p * dp_dm + g_q * dq_dm;
        let g_l = g_p * dp_dl + g_q * dq_dl;
        let g_iin = g_q * dq_diin;
        let g_a = a_a[j] + g_q * dq_da;
        let g_pre = if st.open {
            g_iin * d_clip(st.pre, T::ZERO)
        } else {
            T::ZERO
        };
        g_idc[j] = g_idc[j] + g_pre;
        // The NMDA gate nmda = D_nmda / (1 + If_nmda / Imem).
        let g_nmda = g_pre;
        g_mprev = g_mprev + g_nmda * st.d[1] * c.if_nmda[j] / (st.h * st.h * m_prev * m_prev);
        let g_d = [
            ad0[j] + g_pre,
            ad1[j] + g_nmda / st.h,
            ad2[j] - g_pre,
            ad3[j] + g_l,
        ];
        // The constants' adjoints: decay and jump of each dendrite and of the AHP, If_nmda, the
        // membrane's floored leak and gain.
        c0[j] = c0[j] + g_d[0] * (pj[0] - io);
        c1[j] = c1[j] + g_d[1] * (pj[1] - io);
        c2[j] = c2[j] + g_d[2] * (pj[2] - io);
        c3[j] = c3[j] + g_d[3] * (pj[3] - io);
        c4[j] = c4[j] + g_d[0] * u0[j];
        c5[j] = c5[j] + g_d[1] * u1[j];
        c6[j] = c6[j] + g_d[2] * u2[j];
        c7[j] = c7[j] + g_d[3] * u3[j];
        c8[j] = c8[j] + g_a * (pj[4] - io);
        c9[j] = c9[j] + g_a * pj[7];
        c10[j] = c10[j] - g_nmda * st.d[1] / (st.h * st.h * m_prev);
        c11[j] = c11[j] + g_l;
        let dp_digm = -(m_prev * l / (ucm * mpg * mpg));
        let dq_digm = (st.iin - a_new) / l - T::ONE + st.ia / l;
        c12[j] = c12[j] + g_p * dp_digm + g_q * dq_digm;
        ad0[j] = g_d[0] * c.decay[0][j];
        ad1[j] = g_d[1] * c.decay[1][j];
        ad2[j] = g_d[2] * c.decay[2][j];
        ad3[j] = g_d[3] * c.decay[3][j];
        gu0[j] = g_d[0] * c.jump[0][j];
        gu1[j] = g_d[1] * c.jump[1][j];
        gu2[j] = g_d[2] * c.jump[2][j];
        gu3[j] = g_d[3] * c.jump[3][j];
        a_a[j] = g_a * c.ahp_decay[j];
        a_m[j] = g_mprev;
        // The previous spike's own path (adaptation); the recurrent one is added by the caller.
        a_s[j] = g_a * c.ahp_jump[j];
    }
}

isa_kernel!(ChipSimulator: chip_reverse_element => reverse_element_body(
    tape: &[T],
    xs: &[T],
    channels: usize,
    spikes_in: bool,
    want_input: bool,
    steps: usize,
    outs: &ChipOutputGradients<'_, T>,
    g: &mut ChipElementGradients<T>,
    sc: &mut ReverseScratch<T>,
));
