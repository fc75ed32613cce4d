//! The `chip` variant's forward pass: the simulator's construction, its runs, the dendrites' drive
//! and the neuron step that the reverse pass recomputes.

use super::params::{ChipConsts, ChipSynapses, ChipView, DENDRITES, SynapseChoice, dendrite_index};
use super::{ChipRecords, ChipSimulator, ChipState, ChipTrace};
use crate::aligned::Aligned;
use crate::error::Error;
use crate::events::SpikeEvents;
use crate::isa::Isa;
use crate::network::{Matrix, Network, Variant};
use crate::real::Real;
use crate::run::{Input, Recording, RunOptions, for_each_nonzero};
use std::borrow::Cow;

/// The dendrites `len` connections with synapse types `types` (default: AMPA and GABA) can drive.
fn candidates(len: usize, types: Option<&[SynapseChoice]>) -> [bool; DENDRITES] {
    let mut out = [false; DENDRITES];
    for k in 0..len {
        let c = types.map_or(SynapseChoice::default(), |t| t[k]);
        for w in [1.0, -1.0] {
            if let Some(d) = c.dendrite(w) {
                out[dendrite_index(d)] = true;
            }
        }
    }
    out
}

/// Splits a signed weight matrix into one non-negative matrix per dendrite (`|w|` where the connection
/// drives that dendrite, 0 elsewhere); also says which dendrites receive anything.
fn split<T: Real>(
    m: &Matrix,
    types: Option<&[SynapseChoice]>,
) -> ([Vec<T>; DENDRITES], [bool; DENDRITES]) {
    let mut out: [Vec<T>; DENDRITES] = std::array::from_fn(|_| vec![T::ZERO; m.as_slice().len()]);
    let mut used = [false; DENDRITES];
    for (k, &w) in m.as_slice().iter().enumerate() {
        let choice = types.map_or(SynapseChoice::default(), |t| t[k]);
        if let Some(d) = choice.dendrite(w) {
            let i = dendrite_index(d);
            out[i][k] = T::from_f64(w.abs());
            used[i] = true;
        }
    }
    (out, used)
}

/// One batch element's view of the state.
struct Element<'a, T> {
    dendrites: [&'a mut [T]; DENDRITES],
    iahp: &'a mut [T],
    imem: &'a mut [T],
    vmem: &'a mut [T],
    timer: &'a mut [T],
    s: &'a mut [T],
}

/// One batch element's outputs: spikes `[steps][N]`, the records, and the tape of states.
struct Outputs<'a, T> {
    spikes: &'a mut [T],
    /// imem, vmem, iahp, then the four dendrites.
    records: Option<[&'a mut [T]; 3 + DENDRITES]>,
    /// `[steps + 1][FIELDS][N]`: the state before the first step (written by the caller) and after
    /// every step.
    tape: Option<&'a mut [T]>,
}

/// The values per neuron of one tape entry: the four dendrites, iahp, imem, the refractory timer and
/// the spike.
pub(super) const FIELDS: usize = DENDRITES + 4;

impl<T: Real> Element<'_, T> {
    /// Writes the state in tape order into `dst` (`FIELDS * n` values).
    fn save(&self, dst: &mut [T], n: usize) {
        for k in 0..DENDRITES {
            dst[k * n..(k + 1) * n].copy_from_slice(self.dendrites[k]);
        }
        dst[4 * n..5 * n].copy_from_slice(self.iahp);
        dst[5 * n..6 * n].copy_from_slice(self.imem);
        dst[6 * n..7 * n].copy_from_slice(self.timer);
        dst[7 * n..8 * n].copy_from_slice(self.s);
    }
}

/// One neuron's step, with the intermediate values the reverse pass needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct NeuronStep<T> {
    /// The new dendrite currents.
    pub(super) d: [T; DENDRITES],
    /// The new adaptation current.
    pub(super) a: T,
    /// `1 + If_nmda / Imem`: the NMDA gate's divisor.
    pub(super) h: T,
    pub(super) ileak: T,
    pub(super) open: bool,
    pub(super) pre: T,
    pub(super) iin: T,
    /// `Imem / (tau (Imem + Igain))`.
    pub(super) p: T,
    /// `Imem_inf + f - Imem (1 + Iahp / I_leak)`.
    pub(super) q: T,
    pub(super) ia: T,
    pub(super) f: T,
    /// Imem after the Euler step, before and after its floor.
    pub(super) m: T,
    pub(super) mc: T,
    /// The spike (0 or 1; a fraction with smooth spikes).
    pub(super) b: T,
    /// Imem after the reset.
    pub(super) next: T,
    pub(super) timer: T,
}

impl<T: Real> ChipSimulator<T> {
    /// Converts and checks a network of the `chip` variant.
    pub fn new(net: &Network) -> Result<ChipSimulator<T>, Error> {
        if net.variant != Variant::Chip {
            return Err(Error::WrongVariant {
                simulator: Variant::Chip.name(),
                network: net.variant.name(),
            });
        }
        net.validate()?;
        let n = net.neurons();
        let defaults;
        let chip = match &net.chip {
            Some(c) => c,
            None => {
                defaults = ChipSynapses::defaults(n);
                &defaults
            }
        };
        let c = ChipConsts::new(&net.params, chip, net.dt, net.i_scale);
        let al = |v: Vec<T>| Aligned::from_slice(&v);
        let (w_in, w_in_used) = match &net.w_in {
            Some(w) => {
                let (m, used) = split(w, chip.w_in_types.as_deref());
                (Some(m.map(al)), used)
            }
            None => (None, [false; DENDRITES]),
        };
        let (w_rec, w_rec_used) = split(&net.w_rec, chip.w_rec_types.as_deref());
        let w_rec_t = w_rec
            .each_ref()
            .map(|w| al((0..n * n).map(|k| w[(k % n) * n + k / n]).collect()));
        let w_rec = w_rec.map(al);
        let signed = net.w_rec.as_slice();
        let w_rec_signed_t = al((0..n * n)
            .map(|k| T::from_f64(signed[(k % n) * n + k / n]))
            .collect());
        let w_rec_live = (0..n)
            .map(|j| (0..n).any(|i| signed[i * n + j] != 0.0))
            .collect();
        Ok(ChipSimulator {
            n,
            n_in: net.w_in.as_ref().map(Matrix::rows),
            c,
            w_in,
            w_in_used,
            w_rec,
            w_rec_t,
            w_rec_signed_t,
            w_rec_live,
            w_rec_used,
            w_in_candidates: candidates(
                net.w_in.as_ref().map_or(0, |m| m.as_slice().len()),
                chip.w_in_types.as_deref(),
            ),
            w_rec_candidates: candidates(n * n, chip.w_rec_types.as_deref()),
            signed_in: net.w_in.clone(),
            signed_rec: net.w_rec.clone(),
            types_in: chip.w_in_types.clone(),
            types_rec: chip.w_rec_types.clone(),
            dt: T::from_f64(net.dt),
            isa: Isa::detect(),
            params: net.params.clone(),
            chip_params: Some(chip.clone()),
            i_scale: net.i_scale,
            smooth: None,
            fast: None,
        })
    }

    /// The same simulator whose reverse pass differentiates the spike with the fast sigmoid of
    /// steepness `k` in `Imem / Ispkthr`, and not through the reset (as
    /// `SpikeFunction::FastSigmoid` does for the `rockpool` variant); the forward pass is unchanged.
    pub fn with_fast_sigmoid(mut self, k: f64) -> ChipSimulator<T> {
        self.fast = Some(T::from_f64(k));
        self
    }

    /// The same simulator with a smooth spike `s = 1 / (1 + (Ispkthr / Imem)^beta)` (also the reset
    /// fraction) instead of the threshold: differentiable everywhere, for checking gradients against
    /// finite differences. Not a model of the chip.
    pub fn with_smooth_spikes(mut self, beta: f64) -> ChipSimulator<T> {
        self.smooth = Some(T::from_f64(beta));
        self
    }

    /// One neuron's step from its previous state (tape order) and the drive of its four dendrites
    /// (weight units): the equations of the module documentation, shared by the forward and the
    /// reverse pass so that both compute the same values. Branch-free (selects), with the kernels'
    /// logarithm and exponential, so that a loop over the neurons vectorises.
    #[inline(always)]
    pub(super) fn neuron_step(
        &self,
        c: &ChipView<'_, T>,
        j: usize,
        prev: [T; FIELDS],
        u: [T; DENDRITES],
        smooth: Option<T>,
    ) -> NeuronStep<T> {
        let io = c.io[j];
        // Written out (not `array::from_fn`, which the compiler may leave as a call in the loop).
        let dk = |k: usize| io + (prev[k] - io) * c.decay[k][j] + c.jump[k][j] * u[k];
        let d: [T; DENDRITES] = [dk(0), dk(1), dk(2), dk(3)];
        let [i_ampa, i_nmda, i_gaba, i_shunt] = d;
        let a = io + (prev[4] - io) * c.ahp_decay[j] + c.ahp_jump[j] * prev[7];
        let imem = prev[5];
        let h = T::ONE + c.if_nmda[j] / imem;
        let ileak = c.itau_mem[j] + i_shunt;
        let open = prev[6] == T::ZERO;
        let pre = i_ampa + i_nmda / h + c.idc[j] - i_gaba;
        let iin = if open { pre.max_with(T::ZERO) } else { T::ZERO };
        let igain = c.igain_mem[j];
        let tau = c.utk_cmem[j] / ileak;
        let imem_inf = (igain / ileak) * (iin - a - ileak);
        // Imem >= Io, so the logarithm's argument is >= 1 and the exponential's >= 0.
        let ia = io * (c.fb_exp[j] * (imem / io).kernel_ln()).kernel_exp();
        let f = (ia / ileak) * (imem + igain);
        let p = imem / (tau * (imem + igain));
        let q = imem_inf + f - imem * (T::ONE + a / ileak);
        let m = imem + p * q * self.dt;
        let mc = m.max_with(io);
        let b = match smooth {
            None => {
                if mc > c.ispkthr[j] {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Some(beta) => T::ONE / (T::ONE + (beta * (c.ispkthr[j] / mc).ln()).exp()),
        };
        let nb = T::ONE - b;
        NeuronStep {
            d,
            a,
            h,
            ileak,
            open,
            pre,
            iin,
            p,
            q,
            ia,
            f,
            m,
            mc,
            b,
            next: nb * mc + b * io,
            timer: nb * (prev[6] - self.dt).max_with(T::ZERO) + b * c.t_ref[j],
        }
    }

    /// Steps every neuron of one batch element from its state and the drive. Inlined into the
    /// per-instruction-set entry points of [`chip_run_element`].
    #[inline(always)]
    fn step_neurons_body(&self, drive: &[Aligned<T>; DENDRITES], el: &mut Element<'_, T>) {
        let c = self.c.view();
        let [u0, u1, u2, u3] = drive;
        let [d0, d1, d2, d3] = &mut el.dendrites;
        let (ahp, imem, vmem) = (&mut *el.iahp, &mut *el.imem, &mut *el.vmem);
        let (timer, s) = (&mut *el.timer, &mut *el.s);
        // The slices are cut to N in `neurons_loop`. Two loops, so that the threshold's one (the only one that is not a test) has no call in
        // it and vectorises.
        let smooth = self.smooth;
        match smooth {
            None => neurons_loop(
                self, &c, u0, u1, u2, u3, d0, d1, d2, d3, ahp, imem, vmem, timer, s, None,
            ),
            Some(beta) => neurons_loop(
                self,
                &c,
                u0,
                u1,
                u2,
                u3,
                d0,
                d1,
                d2,
                d3,
                ahp,
                imem,
                vmem,
                timer,
                s,
                Some(beta),
            ),
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.n
    }

    /// The resting state: every current at `Io`, no spike, not refractory.
    pub fn initial_state(&self, batch: usize) -> ChipState<T> {
        let rest: Vec<T> = (0..batch).flat_map(|_| self.c.io.iter().copied()).collect();
        let zero = vec![T::ZERO; batch * self.n];
        ChipState {
            batch,
            neurons: self.n,
            dendrites: std::array::from_fn(|_| rest.clone()),
            iahp: rest.clone(),
            imem: rest,
            vmem: zero.clone(),
            timer_ref: zero.clone(),
            spikes: zero,
        }
    }

    /// Runs `input` from `initial` (default: the resting state). Batch elements run in parallel
    /// threads; the result is bit-identical whatever the thread count.
    pub fn run(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
    ) -> Result<ChipTrace<T>, Error> {
        self.run_impl(input, initial, options, None)
    }

    /// The input as the chip kernels read it, checked (shape against the network, values finite; errors
    /// name the entry): the dense values (events expanded, one allocation per call), the channel count,
    /// and whether they are spikes through `w_in`.
    pub(super) fn dense_input<'i>(
        &self,
        input: &Input<'i, T>,
    ) -> Result<(Cow<'i, [T]>, usize, bool), Error> {
        let (batch, steps) = input.dims();
        let (data, channels, spikes_in) = match *input {
            Input::Weighted { data, .. } => (Cow::Borrowed(data), self.n, false),
            Input::Spikes { data, .. } => (
                Cow::Borrowed(data),
                self.n_in.ok_or(Error::NoInputWeights)?,
                true,
            ),
            Input::Events(ev) => (
                Cow::Owned(ev.to_dense()),
                self.n_in.ok_or(Error::NoInputWeights)?,
                true,
            ),
        };
        SpikeEvents::check_dense(&data, batch, steps, channels)?;
        Ok((data, channels, spikes_in))
    }

    pub(super) fn run_impl(
        &self,
        input: Input<'_, T>,
        initial: Option<&ChipState<T>>,
        options: &RunOptions,
        tape: Option<&mut [T]>,
    ) -> Result<ChipTrace<T>, Error> {
        let (batch, steps) = input.dims();
        let n = self.n;
        let (data, channels, spikes_in) = self.dense_input(&input)?;
        let data = &data[..];
        let mut state = match initial {
            Some(s) => {
                let ok = s.batch == batch
                    && s.neurons == n
                    && s.dendrites.iter().all(|v| v.len() == batch * n)
                    && [&s.iahp, &s.imem, &s.vmem, &s.timer_ref, &s.spikes]
                        .iter()
                        .all(|v| v.len() == batch * n);
                if !ok {
                    return Err(Error::StateShape {
                        batch,
                        neurons: n,
                        found_batch: s.batch,
                        found_neurons: s.neurons,
                    });
                }
                s.clone()
            }
            None => self.initial_state(batch),
        };
        let len = batch * steps * n;
        let mut spikes = vec![T::ZERO; len];
        let mut records = (options.recording == Recording::Full).then(|| ChipRecords {
            imem: vec![T::ZERO; len],
            vmem: vec![T::ZERO; len],
            iahp: vec![T::ZERO; len],
            dendrites: std::array::from_fn(|_| vec![T::ZERO; len]),
        });
        if n > 0 && batch > 0 && steps > 0 {
            let per = steps * n;
            let mut outs: Vec<Outputs<'_, T>> = match records.as_mut() {
                Some(r) => {
                    let [d0, d1, d2, d3] = &mut r.dendrites;
                    let mut its = [
                        r.imem.chunks_mut(per),
                        r.vmem.chunks_mut(per),
                        r.iahp.chunks_mut(per),
                        d0.chunks_mut(per),
                        d1.chunks_mut(per),
                        d2.chunks_mut(per),
                        d3.chunks_mut(per),
                    ];
                    spikes
                        .chunks_mut(per)
                        .map(|sp| Outputs {
                            spikes: sp,
                            records: Some(std::array::from_fn(|k| {
                                its[k].next().expect("one chunk per element")
                            })),
                            tape: None,
                        })
                        .collect()
                }
                None => spikes
                    .chunks_mut(per)
                    .map(|sp| Outputs {
                        spikes: sp,
                        records: None,
                        tape: None,
                    })
                    .collect(),
            };
            if let Some(tape) = tape {
                for (out, t) in outs
                    .iter_mut()
                    .zip(tape.chunks_mut((steps + 1) * FIELDS * n))
                {
                    out.tape = Some(t);
                }
            }
            let ChipState {
                dendrites,
                iahp,
                imem,
                vmem,
                timer_ref,
                spikes: s,
                ..
            } = &mut state;
            let [d0, d1, d2, d3] = dendrites;
            let mut its = (
                [
                    d0.chunks_mut(n),
                    d1.chunks_mut(n),
                    d2.chunks_mut(n),
                    d3.chunks_mut(n),
                ],
                iahp.chunks_mut(n),
                imem.chunks_mut(n),
                vmem.chunks_mut(n),
                timer_ref.chunks_mut(n),
                s.chunks_mut(n),
            );
            let mut jobs: Vec<(usize, Element<'_, T>, Outputs<'_, T>)> = Vec::with_capacity(batch);
            for (b, out) in outs.drain(..).enumerate() {
                let el = Element {
                    dendrites: std::array::from_fn(|k| its.0[k].next().expect("one per element")),
                    iahp: its.1.next().expect("one per element"),
                    imem: its.2.next().expect("one per element"),
                    vmem: its.3.next().expect("one per element"),
                    timer: its.4.next().expect("one per element"),
                    s: its.5.next().expect("one per element"),
                };
                jobs.push((b, el, out));
            }
            let threads = match options.threads {
                0 => crate::threads::cores(),
                t => t,
            }
            .clamp(1, batch);
            let work =
                |scratch: &mut Scratch<T>,
                 _: usize,
                 (b, el, out): &mut (usize, Element<'_, T>, Outputs<'_, T>)| {
                    let xs = &data[*b * steps * channels..(*b + 1) * steps * channels];
                    chip_run_element(
                        self, self.isa, xs, channels, spikes_in, steps, el, out, scratch,
                    );
                };
            crate::threads::for_each_item(&mut jobs, threads, || Scratch::new(n), work);
        }
        Ok(ChipTrace {
            batch,
            steps,
            neurons: n,
            spikes,
            records,
            final_state: state,
        })
    }

    /// The time loop of one batch element. No allocation.
    // The neuron loop reads a dozen per-neuron arrays by index; iterators would hide that.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline(always)]
    fn run_element_body(
        &self,
        xs: &[T],
        channels: usize,
        spikes_in: bool,
        steps: usize,
        el: &mut Element<'_, T>,
        out: &mut Outputs<'_, T>,
        scratch: &mut Scratch<T>,
    ) {
        let n = self.n;
        let Scratch { drive, active } = scratch;
        active.clear();
        active.extend((0..n).filter(|&i| el.s[i] != T::ZERO));
        if let Some(tape) = out.tape.as_mut() {
            el.save(&mut tape[..FIELDS * n], n);
        }
        for t in 0..steps {
            // 1. The drive of each dendrite, in weight units (Iscale is in `jump`): the same helper
            // as the reverse pass's recomputation, so both sum in the same order.
            let xt = &xs[t * channels..(t + 1) * channels];
            self.drive(&el.s[..n], xt, spikes_in, drive);
            // 2.-7. Every neuron, then the spiking ones listed for the next step's drive.
            self.step_neurons_body(drive, el);
            active.clear();
            for_each_nonzero(&el.s[..n], |j, _| active.push(j));
            if let Some(tape) = out.tape.as_mut() {
                let e = FIELDS * n;
                let dst = &mut tape[(t + 1) * e..(t + 2) * e];
                el.save(dst, n);
            }
            let row = t * n..(t + 1) * n;
            out.spikes[row.clone()].copy_from_slice(el.s);
            if let Some(r) = out.records.as_mut() {
                r[0][row.clone()].copy_from_slice(el.imem);
                r[1][row.clone()].copy_from_slice(el.vmem);
                r[2][row.clone()].copy_from_slice(el.iahp);
                for k in 0..DENDRITES {
                    r[3 + k][row.clone()].copy_from_slice(el.dendrites[k]);
                }
            }
        }
    }
}

impl<T: Real> ChipSimulator<T> {
    /// The drive of each dendrite (weight units) from the previous spikes and one step's input.
    #[inline(always)]
    pub(super) fn drive(
        &self,
        s_prev: &[T],
        xt: &[T],
        spikes_in: bool,
        drive: &mut [Aligned<T>; DENDRITES],
    ) {
        let n = self.n;
        for d in drive.iter_mut() {
            d.fill(T::ZERO);
        }
        for (k, dk) in drive.iter_mut().enumerate() {
            if self.w_rec_used[k] {
                let w = &self.w_rec[k];
                for_each_nonzero(
                    s_prev,
                    #[inline(always)]
                    |i, si| {
                        for (dj, &wij) in dk.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                            *dj = *dj + si * wij;
                        }
                    },
                );
            }
        }
        if spikes_in {
            let w_in = self.w_in.as_ref().expect("input spikes need w_in");
            for_each_nonzero(
                xt,
                #[inline(always)]
                |ch, x| {
                    for (k, dk) in drive.iter_mut().enumerate() {
                        if self.w_in_used[k] {
                            for (dj, &w) in dk.iter_mut().zip(&w_in[k][ch * n..(ch + 1) * n]) {
                                *dj = *dj + x * w;
                            }
                        }
                    }
                },
            );
        } else {
            let [ampa, _, gaba, _] = drive;
            for (j, &x) in xt.iter().enumerate() {
                if x > T::ZERO {
                    ampa[j] = ampa[j] + x;
                } else {
                    gaba[j] = gaba[j] - x;
                }
            }
        }
    }
}

/// The neuron loop of [`ChipSimulator::step_neurons_body`]. A free function whose written slices are
/// separate parameters on purpose: the compiler then knows they do not alias each other or the
/// constants, and vectorises the loop (see the `rockpool` variant's `step_body`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn neurons_loop<T: Real>(
    sim: &ChipSimulator<T>,
    c: &ChipView<'_, T>,
    u0: &[T],
    u1: &[T],
    u2: &[T],
    u3: &[T],
    d0: &mut [T],
    d1: &mut [T],
    d2: &mut [T],
    d3: &mut [T],
    ahp: &mut [T],
    imem: &mut [T],
    vmem: &mut [T],
    timer: &mut [T],
    s: &mut [T],
    smooth: Option<T>,
) {
    let n = sim.n;
    let (u0, u1, u2, u3) = (&u0[..n], &u1[..n], &u2[..n], &u3[..n]);
    let (d0, d1, d2, d3) = (&mut d0[..n], &mut d1[..n], &mut d2[..n], &mut d3[..n]);
    let (ahp, imem, vmem) = (&mut ahp[..n], &mut imem[..n], &mut vmem[..n]);
    let (timer, s) = (&mut timer[..n], &mut s[..n]);
    let c = &c.cut(n);
    for j in 0..n {
        let prev = [d0[j], d1[j], d2[j], d3[j], ahp[j], imem[j], timer[j], s[j]];
        let st = sim.neuron_step(c, j, prev, [u0[j], u1[j], u2[j], u3[j]], smooth);
        d0[j] = st.d[0];
        d1[j] = st.d[1];
        d2[j] = st.d[2];
        d3[j] = st.d[3];
        ahp[j] = st.a;
        imem[j] = st.next;
        timer[j] = st.timer;
        vmem[j] = c.ut_over_kappa[j] * (st.next / c.io[j]).kernel_ln();
        s[j] = st.b;
    }
}

isa_kernel!(ChipSimulator: chip_run_element => run_element_body(
    xs: &[T],
    channels: usize,
    spikes_in: bool,
    steps: usize,
    el: &mut Element<'_, T>,
    out: &mut Outputs<'_, T>,
    scratch: &mut Scratch<T>,
));

/// Per-thread buffers of a `chip` run, allocated once.
struct Scratch<T> {
    drive: [Aligned<T>; DENDRITES],
    active: Vec<usize>,
}

impl<T: Real> Scratch<T> {
    fn new(n: usize) -> Scratch<T> {
        Scratch {
            drive: std::array::from_fn(|_| Aligned::filled(n, T::ZERO)),
            active: Vec::with_capacity(n),
        }
    }
}
