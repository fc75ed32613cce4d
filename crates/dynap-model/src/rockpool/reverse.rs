//! The `rockpool` variant's reverse pass: the taped forward run, the gradient through its tape, and
//! the kernels of one reverse step.

use super::forward::{Drive, Scratch, Source, TAPE_FIELDS, Taped, record_state};
use super::params::LANES;
use super::{Gradients, OutputGradients, Simulator, SpikeFunction, State, Surrogate, Tape, Trace};
use crate::aligned::Aligned;
use crate::error::Error;
use crate::events::SpikeEvents;
use crate::isa::Isa;
use crate::network::Matrix;
use crate::param::{NeuronParams, Param};
use crate::real::Real;
use crate::run::{
    GradientOptions, Input, Recording, RunOptions, add_rows, clip_lo, d_clip, for_each_nonzero,
};
use std::ops::Range;

/// `take!(it; a, b, ...)` binds the next items of the iterator `it` (which has them) to `a, b, ...`.
macro_rules! take {
    ($it:ident; $($v:ident),* $(,)?) => {
        $(let $v = $it.next().expect("one slice per coefficient");)*
    };
}

/// Per-thread buffers of the reverse pass, with the `(n, every)` they were made for.
type Pooled<T> = ((usize, usize), (ReverseScratch<T>, SpikeEvents<T>));

/// A pool of reverse-pass buffers (see [`Tape`]); a clone starts empty.
#[derive(Default)]
pub(super) struct ScratchPool<T>(std::sync::Mutex<Vec<Pooled<T>>>);

impl<T> Clone for ScratchPool<T> {
    fn clone(&self) -> Self {
        ScratchPool(std::sync::Mutex::default())
    }
}

impl<T> std::fmt::Debug for ScratchPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScratchPool")
    }
}

impl<T> ScratchPool<T> {
    /// Buffers made for `key`, if the pool has some.
    fn take(&self, key: (usize, usize)) -> Option<(ReverseScratch<T>, SpikeEvents<T>)> {
        let mut pool = self.0.lock().ok()?;
        let at = pool.iter().position(|(k, _)| *k == key)?;
        Some(pool.swap_remove(at).1)
    }

    fn put(&self, key: (usize, usize), item: (ReverseScratch<T>, SpikeEvents<T>)) {
        if let Ok(mut pool) = self.0.lock() {
            pool.push((key, item));
        }
    }
}

/// A thread's reverse-pass buffers, returned to their pool when the thread is done.
struct Lease<'a, T> {
    key: (usize, usize),
    item: Option<(ReverseScratch<T>, SpikeEvents<T>)>,
    pool: &'a ScratchPool<T>,
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.pool.put(self.key, item);
        }
    }
}

/// Number of accumulated per-neuron constant adjoints (see `reverse_step`).
const ACC: usize = 12;

/// One batch element's share of the gradients, in the working precision.
struct ElementGradients<T> {
    w_rec: Aligned<T>,
    w_in: Aligned<T>,
    input: Vec<T>,
    acc: [Aligned<T>; ACC],
    /// The adjoints of the state `(isyn, iahp, imem, vmem, s)`, `[5][n_pad]`, between the parts of
    /// the element's reverse pass.
    adj: [Aligned<T>; 5],
}

/// Per-thread buffers of the reverse pass, allocated once.
struct ReverseScratch<T> {
    forward: Scratch<T>,
    segment: Aligned<T>,
    /// The coefficients of one chunk of steps, `[step][COEF][n_pad]`; with checkpoints, of a whole
    /// segment (see [`Simulator::fused_segment`]).
    coef: Aligned<T>,
    /// Per step of a fused segment, the coefficients that differ for a spike count of 2 or more
    /// (`k_imem`, `thr_i`), `[2][n_pad]`.
    big: Aligned<T>,
    drive: Aligned<T>,
    /// The neurons whose drive adjoint is not zero, in order.
    rows: Vec<usize>,
    /// Whether the bias currents' adjoints are accumulated.
    currents: bool,
}

impl<T: Real> Simulator<T> {
    /// Runs like [`Simulator::run`] and records a [`Tape`] for [`Simulator::gradient`]: the state after
    /// every step (`checkpoint_every` = 1), or after every `checkpoint_every`-th step, the others being
    /// recomputed during the reverse pass (less memory, one more forward pass of work).
    pub fn run_taped(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        checkpoint_every: usize,
    ) -> Result<(Trace<T>, Tape<T>), Error> {
        self.run_taped_reusing(input, initial, options, checkpoint_every, None)
    }

    /// The memory a [`Tape`] of `batch` elements and `steps` steps takes with `checkpoint_every`, in
    /// bytes.
    pub fn tape_bytes(&self, batch: usize, steps: usize, checkpoint_every: usize) -> usize {
        let n_pad = self.n.div_ceil(LANES) * LANES;
        let coef = if self.records_coefficients(batch, steps, checkpoint_every, Recording::Spikes) {
            batch * steps * COEF * n_pad
        } else {
            0
        };
        let ffb = if self.records_feedback(batch, steps, checkpoint_every, Recording::Spikes) {
            batch * steps * n_pad
        } else {
            0
        };
        (batch * (steps / checkpoint_every.max(1) + 1) * TAPE_FIELDS * n_pad + coef + ffb)
            * std::mem::size_of::<T>()
    }

    /// Whether [`Simulator::run_taped`] records every step's positive-feedback factor
    /// `exp(kappa' vmem / Ut)` (one value per neuron and step) besides the checkpoints: with
    /// checkpoints, Rockpool's spikes and no state traces, while they take at most
    /// [`FFB_TAPE_BYTES`]. The reverse pass's recomputation of a segment then reads the factor instead
    /// of computing an exponential and a logarithm (for the next step's vmem, which nothing else reads
    /// there) per neuron and step: a seventh of the reverse pass at N = 256.
    fn records_feedback(
        &self,
        batch: usize,
        steps: usize,
        checkpoint_every: usize,
        recording: Recording,
    ) -> bool {
        let n_pad = self.n.div_ceil(LANES) * LANES;
        checkpoint_every.max(1) > 1
            && self.spike == SpikeFunction::Rockpool
            && recording == Recording::Spikes
            && batch * steps * n_pad * std::mem::size_of::<T>() <= FFB_TAPE_BYTES
    }

    /// Whether [`Simulator::run_taped`] has the forward pass make every step's reverse coefficients
    /// (and the reverse pass skip its first half): with a full tape, Rockpool's spikes and no state
    /// traces, for a network of one vector of neurons ([`LANES`]), while they take at most
    /// [`COEF_TAPE_BYTES`]. Such a network's step is a chain of dependent operations that leaves the
    /// processor mostly idle, so the coefficients' independent operations fill the idle slots of the
    /// forward pass nearly for free, where the reverse pass's own first half recomputed every step
    /// (a fifth of a training step of the paper's network): 10 % faster training, and value and
    /// gradient at N = 16. At two vectors (N = 32) it was already 3 % slower: the forward pass is
    /// then bound by its throughput, and the coefficients take 16 values per neuron and step.
    pub(super) fn records_coefficients(
        &self,
        batch: usize,
        steps: usize,
        checkpoint_every: usize,
        recording: Recording,
    ) -> bool {
        let n_pad = self.n.div_ceil(LANES) * LANES;
        checkpoint_every.max(1) == 1
            && self.spike == SpikeFunction::Rockpool
            && recording == Recording::Spikes
            && n_pad <= LANES
            && batch * steps * COEF * n_pad * std::mem::size_of::<T>() <= COEF_TAPE_BYTES
    }

    /// [`Simulator::run_taped`], recording into the memory of an earlier tape (a training loop then
    /// does not allocate, and the operating system does not clear, tens of megabytes each step).
    pub fn run_taped_reusing(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        checkpoint_every: usize,
        reuse: Option<Tape<T>>,
    ) -> Result<(Trace<T>, Tape<T>), Error> {
        let (batch, steps) = input.dims();
        let every = checkpoint_every.max(1);
        let n_pad = self.n.div_ceil(LANES) * LANES;
        let mut tape = Tape {
            batch,
            steps,
            n_pad,
            every,
            states: Aligned::default(),
            coef: Aligned::default(),
            ffb: Aligned::default(),
            scratch: ScratchPool::default(),
        };
        if let Some(t) = reuse {
            tape.states = t.states;
            tape.coef = t.coef;
            tape.ffb = t.ffb;
            tape.scratch = t.scratch;
        }
        let coefficients = self.records_coefficients(batch, steps, every, options.recording);
        // Every value is written by the run, so reused memory needs no clearing.
        tape.coef.resize(
            if coefficients {
                batch * steps * COEF * n_pad
            } else {
                0
            },
            T::ZERO,
        );
        let feedback = self.records_feedback(batch, steps, every, options.recording);
        tape.ffb
            .resize(if feedback { batch * steps * n_pad } else { 0 }, T::ZERO);
        // Every entry is written in full by the run, so reused memory needs no clearing.
        tape.states
            .resize(batch * tape.entries() * tape.entry_len(), T::ZERO);
        let trace = self.run_impl(
            input,
            initial,
            options,
            Taped {
                states: Some((&mut tape.states, every)),
                coef: coefficients.then_some(&mut tape.coef[..]),
                feedback: feedback.then_some(&mut tape.ffb[..]),
            },
            None,
            None,
        )?;
        Ok((trace, tape))
    }

    /// The gradients of a loss through the run recorded in `tape`, given the loss's gradient with
    /// respect to the run's outputs. `input` must be the input of that run.
    pub fn gradient(
        &self,
        tape: &Tape<T>,
        input: Input<'_, T>,
        outputs: &OutputGradients<'_, T>,
        options: &GradientOptions,
    ) -> Result<Gradients, Error> {
        let (batch, steps) = input.dims();
        if (batch, steps) != (tape.batch, tape.steps) {
            return Err(Error::TapeMismatch {
                tape_batch: tape.batch,
                tape_steps: tape.steps,
                batch,
                steps,
            });
        }
        // The forward pass checked the input's values; here only its shape (a different input of the
        // same shape gives a gradient at the wrong point, not a crash).
        // The forward pass checked the input; checking it again here costs one pass over it (and a
        // dense raster is converted to events again).
        let source = self.source(&input)?;
        let channels = source.channels(self.n);
        let spikes_in = source.is_spikes();
        let n = self.n;
        let len = batch * steps * n;
        for g in [
            outputs.spikes,
            outputs.imem,
            outputs.isyn,
            outputs.iahp,
            outputs.vmem,
        ]
        .into_iter()
        .flatten()
        {
            if g.len() != len {
                return Err(Error::InputShape {
                    batch,
                    steps,
                    channels: n,
                    found_len: g.len(),
                });
            }
        }
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
        let n_in = if spikes_in { channels } else { 0 };
        let per_tape = tape.entries() * tape.entry_len();
        let threads = match options.threads {
            0 => crate::threads::cores(),
            t => t,
        }
        .clamp(1, batch.max(1));
        // Each element's reverse pass runs in `parts` consecutive ranges of segments, latest first,
        // each taken by whichever thread is free (the element's adjoints and gradients carried from
        // one to the next): the threads then finish within a part of each other, not within a whole
        // element (one core of this machine often ran a third slower than the other). Each element's
        // buffers are made (allocated and zeroed) by the thread that runs its first part.
        let segments = steps.div_ceil(tape.every);
        let parts = if threads > 1 {
            REVERSE_PARTS.min(segments.max(1))
        } else {
            1
        };
        // A dense input is converted to events once per element, in parallel, before the parts
        // (which go to different threads) run.
        let converted: Vec<SpikeEvents<T>> = match source {
            Source::Dense { data, channels } if parts > 1 => {
                let per = steps * channels;
                let mut v: Vec<SpikeEvents<T>> = (0..batch).map(|_| SpikeEvents::empty()).collect();
                crate::threads::for_each_item(
                    &mut v,
                    threads,
                    || (),
                    |(), b, ev| {
                        // (Checked: `source` checked every value.)
                        let _ =
                            ev.fill_from_dense(&data[b * per..(b + 1) * per], 1, steps, channels);
                    },
                );
                v
            }
            _ => Vec::new(),
        };
        let mut elements: Vec<Option<ElementGradients<T>>> = (0..batch).map(|_| None).collect();
        // The recurrent weights' per-element gradient: the mask's entries only when it is sparse.
        let sparse_grad = self.grad_mask.as_deref().filter(|m| m.is_sparse());
        let w_rec_len = sparse_grad.map_or(n * n, |m| m.len());
        let element = || ElementGradients {
            w_rec: Aligned::filled(w_rec_len, T::ZERO),
            w_in: Aligned::filled(n_in * tape.n_pad, T::ZERO),
            input: vec![T::ZERO; if options.input { steps * channels } else { 0 }],
            acc: std::array::from_fn(|_| Aligned::filled(tape.n_pad, T::ZERO)),
            adj: std::array::from_fn(|_| Aligned::filled(tape.n_pad, T::ZERO)),
        };
        let scratch = || ReverseScratch {
            forward: Scratch::new(n),
            segment: Aligned::filled(
                if tape.every > 1 {
                    (tape.every + 1) * tape.entry_len()
                } else {
                    0
                },
                T::ZERO,
            ),
            coef: Aligned::filled(
                chunk_steps(tape.n_pad).max(if tape.every > 1 { tape.every } else { 0 })
                    * COEF
                    * tape.n_pad,
                T::ZERO,
            ),
            big: Aligned::filled(2 * tape.n_pad, T::ZERO),
            drive: Aligned::filled(tape.n_pad, T::ZERO),
            rows: Vec::with_capacity(n),
            currents: options.currents,
        };
        let work = |lease: &mut Lease<'_, T>,
                    b: usize,
                    p: usize,
                    slot: &mut Option<ElementGradients<T>>| {
            let g = match slot {
                Some(g) => g,
                slot => slot.insert(element()),
            };
            let (scratch, events) = lease
                .item
                .as_mut()
                .expect("a lease holds its buffers until it is dropped");
            // Reused buffers hold another run's values: everything the pass reads it writes first.
            scratch.currents = options.currents;
            let drive = match converted.get(b) {
                Some(ev) => Drive::Events(ev.element(0)),
                None => source.element(b, steps, n, events),
            };
            let range = b * steps * n..(b + 1) * steps * n;
            let every = outputs.spikes_every_step.map(|v| &v[b * n..(b + 1) * n]);
            let [spikes, imem, isyn, iahp, vmem] = [
                outputs.spikes,
                outputs.imem,
                outputs.isyn,
                outputs.iahp,
                outputs.vmem,
            ]
            .map(|o| o.map(|v| &v[range.clone()]));
            let outs = [spikes, imem, isyn, iahp, vmem, every];
            let tape_b = &tape.states[b * per_tape..(b + 1) * per_tape];
            let per_coef = steps * COEF * tape.n_pad;
            let coef_b =
                (!tape.coef.is_empty()).then(|| &tape.coef[b * per_coef..(b + 1) * per_coef]);
            let per_ffb = steps * tape.n_pad;
            let ffb_b = (!tape.ffb.is_empty()).then(|| &tape.ffb[b * per_ffb..(b + 1) * per_ffb]);
            let part = segments * (parts - p - 1) / parts..segments * (parts - p) / parts;
            self.reverse_one(tape, tape_b, coef_b, ffb_b, part, drive, outs, g, scratch);
        };
        let key = (n, tape.every);
        let init = || Lease {
            key,
            item: Some(
                tape.scratch
                    .take(key)
                    .unwrap_or_else(|| (scratch(), SpikeEvents::empty())),
            ),
            pool: &tape.scratch,
        };
        crate::threads::for_each_part(&mut elements, parts, threads, init, work);
        let elements: Vec<ElementGradients<T>> = elements
            .into_iter()
            .map(|g| g.expect("every element was run"))
            .collect();
        // Reduce over the batch in a fixed order, so that the result does not depend on the threads
        // (which sum disjoint ranges of the result in parallel).
        let sum = |f: &(dyn Fn(&ElementGradients<T>) -> &[T] + Sync), len: usize| {
            crate::threads::sum_in_order(&elements, len, REDUCE_CHUNK, threads, f)
        };
        let mut w_rec = sum(&|e| &e.w_rec, w_rec_len);
        match (&self.grad_mask, sparse_grad) {
            (_, Some(m)) => w_rec = m.to_dense(&w_rec),
            (Some(m), None) => m.zero_outside(&mut w_rec),
            (None, None) => {}
        }
        let w_rec = Matrix::from_vec(n, n, w_rec).expect("n x n");
        // The input weights' gradient was accumulated in padded rows.
        let w_in_grad = spikes_in.then(|| {
            let padded = sum(&|e| &e.w_in, n_in * tape.n_pad);
            let data = padded
                .chunks_exact(tape.n_pad)
                .flat_map(|row| row[..n].iter().copied())
                .collect();
            Matrix::from_vec(n_in, n, data).expect("nin x n")
        });
        let input_grad = options.input.then(|| {
            elements
                .iter()
                .flat_map(|e| e.input.iter().map(|v| v.to_f64()))
                .collect::<Vec<f64>>()
        });
        let acc: Vec<Vec<f64>> = (0..ACC).map(|a| sum(&|e| &e.acc[a], tape.n_pad)).collect();
        Ok(Gradients {
            w_in: w_in_grad,
            w_rec,
            input: input_grad,
            currents: if options.currents {
                self.current_gradients(&acc)
            } else {
                Vec::new()
            },
        })
    }

    /// The reverse pass of one batch element, with the instruction set chosen at construction.
    #[allow(clippy::too_many_arguments)]
    fn reverse_one(
        &self,
        tape: &Tape<T>,
        tape_b: &[T],
        coef_b: Option<&[T]>,
        ffb_b: Option<&[T]>,
        segments: Range<usize>,
        drive: Drive<'_, T>,
        outs: [Option<&[T]>; 6],
        g: &mut ElementGradients<T>,
        scratch: &mut ReverseScratch<T>,
    ) {
        reverse_kernel(
            self, self.isa, tape, tape_b, coef_b, ffb_b, segments, drive, outs, g, scratch,
        );
    }

    /// The reverse pass of one batch element. Inlined into the per-instruction-set entry points, in two
    /// versions: with the bias currents' adjoints, and without.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn reverse_one_body(
        &self,
        tape: &Tape<T>,
        tape_b: &[T],
        coef_b: Option<&[T]>,
        ffb_b: Option<&[T]>,
        segments: Range<usize>,
        src: Drive<'_, T>,
        outs: [Option<&[T]>; 6],
        g: &mut ElementGradients<T>,
        scratch: &mut ReverseScratch<T>,
    ) {
        if scratch.currents {
            self.reverse_element::<true>(
                tape, tape_b, coef_b, ffb_b, segments, src, outs, g, scratch,
            );
        } else {
            self.reverse_element::<false>(
                tape, tape_b, coef_b, ffb_b, segments, src, outs, g, scratch,
            );
        }
    }

    /// [`Simulator::reverse_one_body`], accumulating the per-neuron constants' adjoints if `CUR`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn reverse_element<const CUR: bool>(
        &self,
        tape: &Tape<T>,
        tape_b: &[T],
        coef_b: Option<&[T]>,
        ffb_b: Option<&[T]>,
        segments: Range<usize>,
        src: Drive<'_, T>,
        outs: [Option<&[T]>; 6],
        g: &mut ElementGradients<T>,
        scratch: &mut ReverseScratch<T>,
    ) {
        let n = self.n;
        let steps = tape.steps;
        let e = tape.entry_len();
        let np = tape.n_pad;
        let chunk = chunk_steps(np);
        // Every aligned buffer is dereferenced once, here, not at every step.
        let ReverseScratch {
            forward,
            segment,
            coef,
            big,
            drive: drive_buf,
            rows,
            ..
        } = scratch;
        // The element's adjoints: zero before its last segment, then carried from part to part.
        let [a_isyn, a_iahp, a_imem, a_vmem, a_s] = g.adj.each_mut().map(|v| &mut v[..]);
        let [
            acc0,
            acc1,
            acc2,
            acc3,
            acc4,
            acc5,
            acc6,
            acc7,
            acc8,
            acc9,
            acc10,
            acc11,
        ] = g.acc.each_mut().map(|v| &mut v[..]);
        let (coef, drive_buf) = (&mut coef[..], &mut drive_buf[..]);
        let (g_w_rec, g_w_in) = (&mut g.w_rec[..], &mut g.w_in[..]);
        let w_rec_t = &self.w_rec_t[..];
        let grad_mask = self.grad_mask.as_deref().filter(|m| m.is_sparse());
        let w_in_pad = self.w_in_pad.as_deref();
        let consts = self.c.coefficient_inputs();
        let c = &self.c;
        let chain_consts: [&[T]; 6] = [
            &c.f_dis_syn,
            &c.f_dis_ahp,
            &c.f_chg_ahp,
            &c.gain_ahp,
            &c.iw_ahp,
            &c.gain_syn,
        ];
        for seg in segments.rev() {
            let start = seg * tape.every;
            let len = tape.every.min(steps - start);
            // The states of this segment: straight from the tape, or recomputed from its checkpoint.
            // With checkpoints and Rockpool's spikes, the recomputation also gives each step's
            // coefficients (pass 1 is fused into it: the step's intermediates are computed once).
            // (The fused recomputation computes Rockpool's surrogate only.)
            let fused = tape.every > 1 && self.spike == SpikeFunction::Rockpool;
            let states: &[T] = if tape.every == 1 {
                &tape_b[seg * e..(seg + 2) * e]
            } else if fused {
                forward.restore(tape_b, seg);
                self.fused_segment::<CUR>(
                    forward,
                    src.steps(start, len, n),
                    len,
                    ffb_b.map(|f| &f[start * np..(start + len) * np]),
                    segment,
                    coef,
                    big,
                );
                segment
            } else {
                forward.restore(tape_b, seg);
                forward.record(segment, 0);
                self.run_steps(
                    forward,
                    src.steps(start, len, n),
                    len,
                    None,
                    None,
                    Some((segment, 1)),
                    None,
                    None,
                );
                segment
            };
            fn field<T>(s: &[T], f: usize, np: usize) -> &[T] {
                &s[f * np..(f + 1) * np]
            }
            // The segment's steps in chunks, last chunk first (a fused segment is one chunk whose
            // coefficients are already made).
            let chunk = if fused { len } else { chunk };
            let mut hi = len;
            while hi > 0 {
                let lo = hi.saturating_sub(chunk);
                // Pass 1, over the chunk's steps in any order: each step's coefficients. They depend
                // on the recorded states only, not on the adjoints, so the steps overlap freely.
                for k in (lo..hi).filter(|_| !fused && coef_b.is_none()) {
                    let prev = &states[k * e..(k + 1) * e];
                    let cur = &states[(k + 1) * e..(k + 2) * e];
                    let co = &mut coef[(k - lo) * COEF * np..(k - lo + 1) * COEF * np];
                    self.step_coefficients::<CUR>(consts, prev, cur, co);
                }
                // Pass 2, backwards through the chunk: the adjoints, a short chain per step.
                for k in (lo..hi).rev() {
                    let t = start + k;
                    let prev = &states[k * e..(k + 1) * e];
                    let cur = &states[(k + 1) * e..(k + 2) * e];
                    let co = match coef_b {
                        // Made by the forward pass (a full tape: a segment is one step).
                        Some(cb) => &cb[t * COEF * np..(t + 1) * COEF * np],
                        None => &coef[(k - lo) * COEF * np..(k - lo + 1) * COEF * np],
                    };
                    // The loss's own gradient with respect to this step's outputs.
                    for (adj, out) in [
                        (&mut *a_s, outs[0]),
                        (&mut *a_imem, outs[1]),
                        (&mut *a_isyn, outs[2]),
                        (&mut *a_iahp, outs[3]),
                        (&mut *a_vmem, outs[4]),
                    ] {
                        if let Some(o) = out {
                            add_assign(&mut adj[..n], &o[t * n..(t + 1) * n]);
                        }
                    }
                    if let Some(every) = outs[5] {
                        add_assign(&mut a_s[..n], every);
                    }
                    let [f_dis_s, f_dis_a, f_chg_a, gain_a, iw_ahp, gain_s] = chain_consts;
                    reverse_chain::<T, CUR>(
                        {
                            let co = |i: usize| &co[i * np..(i + 1) * np];
                            [
                                co(0),
                                co(1),
                                co(2),
                                co(3),
                                co(4),
                                co(5),
                                co(6),
                                co(7),
                                co(8),
                                co(9),
                                co(10),
                                co(11),
                                co(12),
                                co(13),
                                co(14),
                                co(15),
                            ]
                        },
                        [
                            f_dis_s,
                            f_dis_a,
                            f_chg_a,
                            gain_a,
                            iw_ahp,
                            gain_s,
                            field(cur, 6, np),
                            field(prev, 0, np),
                            field(prev, 1, np),
                            field(prev, 5, np),
                        ],
                        self.i_scale,
                        a_isyn,
                        a_iahp,
                        a_imem,
                        a_vmem,
                        a_s,
                        drive_buf,
                        acc0,
                        acc1,
                        acc2,
                        acc3,
                        acc4,
                        acc5,
                        acc6,
                        acc7,
                        acc8,
                        acc9,
                        acc10,
                        acc11,
                    );
                    let drive = &drive_buf[..n];
                    // w_rec: d/dW_ij = s_i(t-1) * drive_j, over the neurons that spiked.
                    let s_prev = field(prev, 5, np);
                    match grad_mask {
                        // The mask's entries of the row only (the same operation on each).
                        Some(m) => for_each_nonzero(&s_prev[..n], |i, si| {
                            let (range, cols) = m.row(i);
                            for (gw, &j) in g_w_rec[range].iter_mut().zip(cols) {
                                *gw = si.mul_add(drive[j as usize], *gw);
                            }
                        }),
                        None => for_each_nonzero(&s_prev[..n], |i, si| {
                            for (gw, &d) in g_w_rec[i * n..(i + 1) * n].iter_mut().zip(drive) {
                                *gw = si.mul_add(d, *gw);
                            }
                        }),
                    }
                    // The previous spikes also reach every neuron through w_rec: a_s_i += sum_j W_ij
                    // drive_j, as a sum of rows of the transpose over the neurons whose drive matters
                    // (no horizontal sums, and the quiet synapses, whose target sat on its floor, are
                    // skipped).
                    if let Some(sparse) = &self.w_rec_sparse {
                        // A large sparse matrix: the transpose's non-zero entries only (the same
                        // sums in the same order, without the zero terms).
                        rows.clear();
                        for_each_nonzero(drive, |j, _| rows.push(j));
                        sparse.add_rows(&mut a_s[..n], rows, |j| drive[j]);
                    } else if self.rec_nonzero {
                        rows.clear();
                        for_each_nonzero(drive, |j, _| rows.push(j));
                        add_rows(
                            &mut a_s[..n],
                            rows,
                            |j| drive[j],
                            w_rec_t,
                            |a, w, d| w.mul_add(d, a),
                        );
                    }
                    // The padding lanes' adjoints stay 0: they start at 0, the loss and w_rec add only
                    // to real lanes, and the chain multiplies them by the finite coefficients of a
                    // quiet copy of neuron 0. Nothing reads them.
                    match src {
                        Drive::Events(ev) => {
                            // w_in (padded rows): d/dW_kj = count_k * drive_j, over the step's events.
                            let drive = &drive_buf[..np];
                            ev.for_each(t, |kk, sk| {
                                for (gw, &d) in g_w_in[kk * np..(kk + 1) * np].iter_mut().zip(drive)
                                {
                                    *gw = sk.mul_add(d, *gw);
                                }
                            });
                            if !g.input.is_empty() {
                                let w = w_in_pad.expect("events come with w_in");
                                let channels = w.len() / np;
                                for (kk, gi) in g.input[t * channels..(t + 1) * channels]
                                    .iter_mut()
                                    .enumerate()
                                {
                                    *gi = dot(&w[kk * np..kk * np + n], &drive[..n]);
                                }
                            }
                        }
                        Drive::Weighted(_) => {
                            if !g.input.is_empty() {
                                g.input[t * n..(t + 1) * n].copy_from_slice(drive);
                            }
                        }
                    }
                }
                hi = lo;
            }
        }
    }

    /// The coefficients of one step (see [`reverse_coefficients`]) into `co` (`[COEF][n_pad]`), from
    /// the tape entries before (`prev`) and after (`cur`) the step. Inlined into the reverse kernel.
    #[inline(always)]
    fn step_coefficients<const CUR: bool>(
        &self,
        consts: [&[T]; 19],
        prev: &[T],
        cur: &[T],
        co: &mut [T],
    ) {
        let np = co.len() / COEF;
        fn field<T>(s: &[T], f: usize, np: usize) -> &[T] {
            &s[f * np..(f + 1) * np]
        }
        let mut co = co.chunks_exact_mut(np);
        take!(co; c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
        // The surrogate is chosen once, outside the loop over neurons: each version of the loop is
        // then free of branches and vectorises (a match inside it kept it scalar).
        let half = T::ONE / (T::ONE + T::ONE);
        macro_rules! with {
            ($spike:expr) => {{
                let spike = $spike;
                reverse_coefficients::<T, CUR>(
                    consts,
                    [
                        field(cur, 6, np),
                        field(prev, 0, np),
                        field(prev, 1, np),
                        field(prev, 2, np),
                        field(prev, 3, np),
                        field(prev, 4, np),
                        field(prev, 5, np),
                        field(cur, 5, np),
                    ],
                    self.dt,
                    spike,
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
                    c13,
                    c14,
                    c15,
                );
            }};
        }
        match self.surrogate() {
            // clip(s, 0, 1) at its ties: s is a count, 0 or 1 is a tie, >= 2 is above; Rockpool's
            // step_pwl surrogate.
            Surrogate::Rockpool => with!(|s1: T, imem_c: T, _: T, o: T, _: T| (
                if s1 > T::ONE { T::ONE } else { s1 },
                if s1 > T::ONE { T::ZERO } else { half },
                if imem_c > o { T::ONE } else { T::ZERO },
                T::ZERO,
            )),
            // SpikeFunction::FastSigmoid: Rockpool's reset with its derivative detached (no
            // gradient through the reset, as surrogate-gradient training does: through it the
            // adjoint grows without bound over a run), the fast sigmoid's derivative.
            Surrogate::FastSigmoid(k) => with!(|s1: T, imem_c: T, _: T, _: T, thr: T| (
                if s1 > T::ONE { T::ONE } else { s1 },
                T::ZERO,
                crate::run::fast_sigmoid_slope(imem_c, thr, k),
                T::ZERO,
            )),
            Surrogate::Smooth(beta) => with!(|s1: T, _: T, inv_imem_c: T, _: T, thr: T| {
                let k = beta * s1 * (T::ONE - s1);
                (s1, T::ONE, k * inv_imem_c, -(k / thr))
            }),
        }
    }

    /// The forward pass of one batch element that also makes the reverse coefficients (see
    /// [`Simulator::records_coefficients`]), with the instruction set chosen at construction: from the
    /// state in `fwd` (recorded by the caller as tape entry 0), runs `steps` steps with the operations
    /// of [`Simulator::fused_segment`] (the forward kernel's), writing every tape entry, the
    /// coefficients of every step with the currents' (`coef`, `[step][COEF][n_pad]`) and the spikes
    /// (`[steps][n]`); `big` is scratch of `2 n_pad` values. The same states and spikes as the forward
    /// kernel, and the coefficients of [`reverse_coefficients`] (tested).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_forward(
        &self,
        fwd: &mut Scratch<T>,
        drive: Drive<'_, T>,
        steps: usize,
        spikes: &mut [T],
        tape: &mut [T],
        coef: &mut [T],
        big: &mut [T],
    ) {
        fused_forward_kernel(self, self.isa, fwd, drive, steps, spikes, tape, coef, big);
    }

    /// See [`Simulator::fused_forward`]. Inlined into the per-instruction-set entry points.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn fused_forward_body(
        &self,
        fwd: &mut Scratch<T>,
        drive: Drive<'_, T>,
        steps: usize,
        spikes: &mut [T],
        tape: &mut [T],
        coef: &mut [T],
        big: &mut [T],
    ) {
        let n = self.n;
        let np = fwd.state[0].len();
        let e = TAPE_FIELDS * np;
        // With the currents' coefficients: a superset, the same values for the ones both passes use.
        self.fused_segment::<true>(fwd, drive, steps, None, tape, coef, big);
        // The state after the last step (its drive, field 6, is written).
        fwd.record(tape, steps);
        for (t, out) in spikes.chunks_exact_mut(n.max(1)).take(steps).enumerate() {
            out.copy_from_slice(&tape[(t + 1) * e + 5 * np..(t + 1) * e + 5 * np + n]);
        }
    }

    /// The fused recomputation of one checkpointed segment (Rockpool's spikes): from the state restored
    /// in `fwd`, runs the segment's `len` steps with the forward kernel's operations and writes, for
    /// every step `k`, the state before it (segment entry `k`), its drive (entry `k + 1`, field 6) and
    /// its coefficients (`coef[k]`, the values [`Simulator::step_coefficients`] gives), computing each
    /// step's intermediates once rather than once for the state and again for the coefficients. With
    /// `feedback` (the segment's recorded factors, `[len][n_pad]`) it reads each step's factor and does
    /// not compute vmem: the recorded states' vmem is then stale, which the reverse chain never reads.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn fused_segment<const CUR: bool>(
        &self,
        fwd: &mut Scratch<T>,
        drive: Drive<'_, T>,
        len: usize,
        feedback: Option<&[T]>,
        segment: &mut [T],
        coef: &mut [T],
        big: &mut [T],
    ) {
        let n = self.n;
        let np = fwd.state[0].len();
        let e = TAPE_FIELDS * np;
        let c = &self.c;
        let Scratch {
            rec,
            x,
            active,
            state,
            ..
        } = fwd;
        let [isyn, iahp, imem, vmem, timer, s] = state;
        active.clear();
        active.extend((0..n).filter(|&i| s[i] != T::ZERO));
        let (k_big, thr_big) = big.split_at_mut(np);
        let consts = c.coefficient_inputs();
        for k in 0..len {
            // The state before step k, and the step's drive, as the forward kernel records them.
            let (before, after) = segment[k * e..(k + 2) * e].split_at_mut(e);
            record_state(before, [isyn, iahp, imem, vmem, timer, s]);
            self.form_drive(rec, x, active, s, drive, k);
            self.record_drive(after, rec, x);
            let iws = &after[6 * np..7 * np];
            let mut co = coef[k * COEF * np..(k + 1) * COEF * np].chunks_exact_mut(np);
            take!(co; c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
            // With the recorded factors, the recomputation skips the exponential (and the next
            // vmem's logarithm, which only that exponential reads): a second compiled version of the
            // same call, so the neuron loop has no branch.
            macro_rules! coefficients {
                ($ffb:literal, $factors:expr) => {
                    forward_coefficients::<T, CUR, $ffb>(
                        $factors,
                        consts,
                        [&c.t_ref, iws],
                        self.dt,
                        isyn,
                        iahp,
                        imem,
                        vmem,
                        timer,
                        s,
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
                        c13,
                        c14,
                        c15,
                        k_big,
                        thr_big,
                    )
                };
            }
            match feedback {
                Some(f) => coefficients!(true, &f[k * np..(k + 1) * np]),
                None => coefficients!(false, &[]),
            }
            // The ratios imem/Ispkthr left in `s` become the counts, as in the forward kernel.
            active.clear();
            self.spike_counts(s, n, active);
            // A count of 2 or more has no reset derivative (db/ds = 0 instead of JAX's 0.5 at the
            // clip's tie): its lanes take the other version of the coefficients that depend on it.
            let mut co = coef[k * COEF * np..(k + 1) * COEF * np].chunks_exact_mut(np);
            let k_imem = co.next().expect("one slice per coefficient");
            let thr_i = co.nth(13).expect("one slice per coefficient");
            for &j in active.iter() {
                if s[j] > T::ONE {
                    k_imem[j] = k_big[j];
                    if CUR {
                        thr_i[j] = thr_big[j];
                    }
                }
            }
        }
    }

    /// Carries the accumulated adjoints of the per-neuron constants to the 13 bias currents, in `f64`,
    /// through the once-per-run expressions (see `Consts::new`), with JAX's tie rule at the `Io`
    /// floors.
    fn current_gradients(&self, acc: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let p: &NeuronParams = &self.params;
        let n = self.n;
        let dt = self.dt.to_f64();
        let mut out = vec![vec![0.0; n]; Param::CURRENTS.len()];
        let idx = |q: Param| {
            Param::CURRENTS
                .iter()
                .position(|&c| c == q)
                .expect("a current")
        };
        for j in 0..n {
            let io = p.i_o[j];
            let utk = p.u_t[j] / ((p.kappa_n[j] + p.kappa_p[j]) / 2.0);
            // A DPI (synapse or AHP): decay exp(-dt/tau), charge 1 - exp(-t_pulse/tau), gain Ig/Itau,
            // tau = utk C / max(Itau, Io), t_pulse = Vth C_pulse / Ipulse, gain from max(Igain, Io).
            let dpi = |i_tau: f64,
                       i_gain: f64,
                       c: f64,
                       i_pulse: f64,
                       c_pulse: f64,
                       a_dis: f64,
                       a_chg: f64,
                       a_gain: f64| {
                let itau = i_tau.max(io);
                let igain = i_gain.max(io);
                let tau = utk * c / itau;
                let t_p = p.v_th[j] * c_pulse / i_pulse;
                let e_dt = (-dt / tau).exp();
                let gain = igain / itau;
                let (g_tau_chg, g_tp) = if t_p.is_finite() {
                    let e_tp = (-t_p / tau).exp();
                    (-a_chg * e_tp * t_p / (tau * tau), a_chg * e_tp / tau)
                } else {
                    (0.0, 0.0)
                };
                let g_tau = a_dis * e_dt * dt / (tau * tau) + g_tau_chg;
                let g_itau = g_tau * (-tau / itau) + a_gain * (-gain / itau);
                let g_igain = a_gain / itau;
                let g_ipulse = if i_pulse > 0.0 && t_p.is_finite() {
                    g_tp * (-t_p / i_pulse)
                } else {
                    0.0
                };
                (
                    g_itau * d_clip(i_tau, io),
                    g_igain * d_clip(i_gain, io),
                    g_ipulse,
                )
            };
            let (g_itau_s, g_igain_s, g_ipulse) = dpi(
                p.i_tau_syn[j],
                p.i_gain_syn[j],
                p.c_syn[j],
                p.i_pulse[j],
                p.c_pulse[j],
                acc[0][j],
                acc[1][j],
                acc[2][j],
            );
            let (g_itau_a, g_igain_a, g_ipulse_a) = dpi(
                p.i_tau_ahp[j],
                p.i_gain_ahp[j],
                p.c_ahp[j],
                p.i_pulse_ahp[j],
                p.c_pulse_ahp[j],
                acc[3][j],
                acc[4][j],
                acc[5][j],
            );
            let itau_m = p.i_tau_mem[j].max(io);
            let igain_m = p.i_gain_mem[j].max(io);
            let gain_m = igain_m / itau_m;
            let g_itau_m = acc[8][j] + acc[10][j] * (-gain_m / itau_m);
            let g_igain_m = acc[9][j] + acc[10][j] / itau_m;
            out[idx(Param::ItauSyn)][j] = g_itau_s;
            out[idx(Param::IgainSyn)][j] = g_igain_s;
            out[idx(Param::Ipulse)][j] = g_ipulse;
            out[idx(Param::ItauAhp)][j] = g_itau_a;
            out[idx(Param::IgainAhp)][j] = g_igain_a;
            out[idx(Param::IpulseAhp)][j] = g_ipulse_a;
            out[idx(Param::IwAhp)][j] = acc[6][j];
            out[idx(Param::Idc)][j] = acc[7][j];
            out[idx(Param::ItauMem)][j] = g_itau_m * d_clip(p.i_tau_mem[j], io);
            out[idx(Param::IgainMem)][j] = g_igain_m * d_clip(p.i_gain_mem[j], io);
            // Rockpool's surrogate passes nothing to Ispkthr; the smooth spike does.
            out[idx(Param::Ispkthr)][j] = acc[11][j];
            // Iref only sets the refractory timer, whose gate passes nothing; If_nmda is unused.
        }
        out
    }
}

isa_kernel!(reverse_kernel => reverse_one_body(
    tape: &Tape<T>,
    tape_b: &[T],
    coef_b: Option<&[T]>,
    ffb_b: Option<&[T]>,
    segments: Range<usize>,
    drive: Drive<'_, T>,
    outs: [Option<&[T]>; 6],
    g: &mut ElementGradients<T>,
    scratch: &mut ReverseScratch<T>,
));

isa_kernel!(fused_forward_kernel => fused_forward_body(
    fwd: &mut Scratch<T>,
    drive: Drive<'_, T>,
    steps: usize,
    spikes: &mut [T],
    tape: &mut [T],
    coef: &mut [T],
    big: &mut [T],
));

/// The most memory the forward pass's reverse coefficients may take (see
/// [`Simulator::records_coefficients`]): written by the forward pass and read back by the reverse,
/// they must stay in the second-level cache to save time (half of one core's, on the machines
/// measured). At N = 16 and batch 8 (8 MB) there was no gain left.
const COEF_TAPE_BYTES: usize = 1 << 20;

/// The most memory the recorded positive-feedback factors may take (see
/// [`Simulator::records_feedback`]): one value per neuron and step, written and read in order, so
/// unlike the coefficients they need not stay in cache (8 MB at N = 256, batch 8, T = 1000). Above it,
/// a long run keeps only its checkpoints.
const FFB_TAPE_BYTES: usize = 64 << 20;

/// `dst += src`, elementwise. A function of its own so the compiler knows the two do not alias and
/// vectorises the loop.
#[inline(always)]
fn add_assign<T: Real>(dst: &mut [T], src: &[T]) {
    for (a, &v) in dst.iter_mut().zip(src) {
        *a = *a + v;
    }
}

/// `sum_j a_j b_j`, in a fixed order.
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    // 32 partial sums over exact chunks: the loop vectorises into four independent vector accumulators,
    // which hides the latency of the additions. The order is fixed by the data length only.
    let mut part = [T::ZERO; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..32 {
            part[k] = part[k] + x[k] * y[k];
        }
    }
    // Reduce the partial sums as a tree (vector adds, then a short horizontal tree), not as a chain
    // of 32 dependent scalar additions.
    let mut v = [T::ZERO; 8];
    for k in 0..8 {
        v[k] = (part[k] + part[k + 8]) + (part[k + 16] + part[k + 24]);
    }
    let mut s = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
    for (&x, &y) in ra.iter().zip(rb) {
        s = s + x * y;
    }
    s
}

/// The parts each element's reverse pass is cut into when several threads share the batch (at most
/// one per checkpoint segment; see [`Simulator::gradient`]).
const REVERSE_PARTS: usize = 4;

/// The values of a gradient one thread sums over the batch elements at a time.
const REDUCE_CHUNK: usize = 16 * 1024;

/// Steps per chunk of the reverse pass: the coefficients of a chunk (`COEF` values per neuron and
/// step) stay within the first-level cache.
fn chunk_steps(n_pad: usize) -> usize {
    (512 / n_pad).max(1)
}

/// Coefficients per neuron and step that [`reverse_coefficients`] hands to [`reverse_chain`].
const COEF: usize = 16;

/// The first half of the reverse of one time step: everything that depends on the recorded states
/// only, not on the adjoints.
///
/// `consts`: the per-neuron constants of [`Consts::coefficient_inputs`](super::params::Consts::coefficient_inputs).
/// `step`: the step's drive `iws = (rec + x) Iscale` (from the tape), the previous state `isyn, iahp,
/// imem, vmem, timer_ref, s` and this step's spikes `s`.
///
/// The step is recomputed with the forward kernel's operations, in its order (so the same values), and
/// its reverse, which is linear in the adjoints of the step's state, is reduced to coefficients
/// (the written slices, in this order, the `COEF` values per neuron):
/// * `k_imem, k_s, k_v`: `g_m = a_imem k_imem + a_s k_s + a_vmem k_v` is the adjoint of the Euler
///   update `m` (through the reset, the surrogate, the voltage readout and the floor at `Io`);
/// * `c_imem0, c_pre, c_iahp, c_vmem`: per unit of `g_m`, the adjoint of the previous `imem`, of the
///   floored input current (which reaches `isyn` and `Idc`), of this step's `iahp` and of the
///   previous `vmem`;
/// * `d_a, d_u`: the derivatives of the AHP floor and of the synapse's charge through its floor;
/// * `c_gm, c_p, c_itm`: per unit of `g_m`, the adjoints of `gain_mem`, `igain_mem` and `itau_mem`;
/// * `isyn_inf, iahp_inf`: the targets of the synapse and the AHP (their charge factors' adjoints);
/// * `thr_i, thr_s`: the threshold's adjoint per unit of `a_imem` and `a_s` (smooth spikes only).
///
/// Derivatives follow JAX's rules (see the module documentation). Like the forward kernel, a free
/// function with its written slices as separate values and selects instead of branches, so that it
/// vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn reverse_coefficients<T: Real, const CUR: bool>(
    consts: [&[T]; 19],
    step: [&[T]; 8],
    dt: T,
    spike: impl Fn(T, T, T, T, T) -> (T, T, T, T),
    k_imem: &mut [T],
    k_s: &mut [T],
    k_v: &mut [T],
    c_imem0: &mut [T],
    c_pre: &mut [T],
    c_iahp: &mut [T],
    c_vmem: &mut [T],
    d_a: &mut [T],
    d_u: &mut [T],
    c_gm: &mut [T],
    c_p: &mut [T],
    c_itm: &mut [T],
    o_isyn_inf: &mut [T],
    o_iahp_inf: &mut [T],
    thr_i: &mut [T],
    thr_s: &mut [T],
) {
    let n = k_imem.len() / LANES * LANES;
    let consts = cut_to(consts, n);
    // The ones used here besides `Before`'s (see `Consts::coefficient_inputs` for the order).
    let [
        ..,
        ut_over_kappa,
        _,
        _,
        _,
        _,
        ispkthr,
        inv_itau_m,
        kp_over_ut,
    ] = consts;
    let_cut!(n; [iws, p_isyn, p_iahp, p_imem, p_vmem, p_timer, p_s, c_s] = step);
    let_cut!(
        mut n;
        k_imem, k_s, k_v, c_imem0, c_pre, c_iahp, c_vmem, d_a, d_u, c_gm, c_p, c_itm, o_isyn_inf,
        o_iahp_inf, thr_i, thr_s
    );
    for j in 0..n {
        // Recompute step t from the previous state: the forward kernel's operations, in its order.
        let x = Before::at(
            consts,
            j,
            iws[j],
            [
                p_isyn[j], p_iahp[j], p_imem[j], p_vmem[j], p_timer[j], p_s[j],
            ],
        );
        let st = recompute(&x, x.feedback(), dt);
        let o = x.o;
        let imem_c = st.imem_c;
        let inv_imem_c = T::ONE / imem_c;
        let s1 = c_s[j];
        // Reset imem1 = (1 - b) imem_c + b Io, spike s1 = S(imem_c), vmem1 = (Ut/kappa) ln(imem_c/Io).
        // The spike's value and derivatives from (s1, imem_c, 1/imem_c, Io, Ispkthr).
        let spike = spike(s1, imem_c, inv_imem_c, o, ispkthr[j]);
        let c = coefficients(
            &x,
            &st,
            spike,
            [inv_imem_c, ut_over_kappa[j], inv_itau_m[j], kp_over_ut[j]],
            dt,
        );
        k_imem[j] = c.k_imem;
        k_s[j] = c.k_s;
        k_v[j] = c.k_v;
        c_imem0[j] = c.c_imem0;
        c_vmem[j] = c.c_vmem;
        c_pre[j] = c.c_pre;
        c_iahp[j] = c.c_iahp;
        d_a[j] = c.d_a;
        d_u[j] = c.d_u;
        // The rest serves only the per-neuron constants' adjoints.
        if CUR {
            thr_i[j] = c.thr_i;
            thr_s[j] = c.thr_s;
            c_p[j] = c.c_p;
            c_gm[j] = c.c_gm;
            c_itm[j] = c.c_itm;
            o_isyn_inf[j] = st.isyn_inf;
            o_iahp_inf[j] = st.iahp_inf;
        }
    }
}

/// One step of the forward kernel and, from the same intermediates, its coefficients (those of
/// [`reverse_coefficients`] for Rockpool's spikes, assuming a count of at most 1; `big` receives
/// `k_imem` and `thr_i` for a count of 2 or more, which the caller substitutes once the counts are
/// known). `consts` as for [`reverse_coefficients`], then `t_ref` and the step's drive; the state
/// slices (isyn, iahp, imem, vmem, timer, spike count) hold the state before the step on entry and
/// after it on return, with the ratio imem/Ispkthr in place of the count, as the forward kernel leaves
/// it. The same operations in the same order as both, so the same bits. With `FFB` the step's
/// positive-feedback factor comes from `ffb` (recorded by the forward kernel) and vmem is left as it
/// was (only that factor reads it).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_coefficients<T: Real, const CUR: bool, const FFB: bool>(
    ffb: &[T],
    consts: [&[T]; 19],
    [t_ref, iws]: [&[T]; 2],
    dt: T,
    s_isyn: &mut [T],
    s_iahp: &mut [T],
    s_imem: &mut [T],
    s_vmem: &mut [T],
    s_timer: &mut [T],
    s_s: &mut [T],
    k_imem: &mut [T],
    k_s: &mut [T],
    k_v: &mut [T],
    c_imem0: &mut [T],
    c_pre: &mut [T],
    c_iahp: &mut [T],
    c_vmem: &mut [T],
    d_a: &mut [T],
    d_u: &mut [T],
    c_gm: &mut [T],
    c_p: &mut [T],
    c_itm: &mut [T],
    o_isyn_inf: &mut [T],
    o_iahp_inf: &mut [T],
    thr_i: &mut [T],
    thr_s: &mut [T],
    k_big: &mut [T],
    thr_big: &mut [T],
) {
    let n = s_s.len() / LANES * LANES;
    let consts = cut_to(consts, n);
    // The ones used here besides `Before`'s (see `Consts::coefficient_inputs` for the order).
    let [
        ..,
        ut_over_kappa,
        _,
        _,
        _,
        _,
        ispkthr,
        inv_itau_m,
        kp_over_ut,
    ] = consts;
    let_cut!(n; [t_ref, iws] = [t_ref, iws]);
    // Read only with the recorded factors (otherwise empty).
    let ffb = if FFB { &ffb[..n] } else { ffb };
    let_cut!(
        mut n;
        s_isyn, s_iahp, s_imem, s_vmem, s_timer, s_s, k_imem, k_s, k_v, c_imem0, c_pre, c_iahp,
        c_vmem, d_a, d_u, c_gm, c_p, c_itm, o_isyn_inf, o_iahp_inf, thr_i, thr_s, k_big, thr_big
    );
    let half = T::ONE / (T::ONE + T::ONE);
    for j in 0..n {
        // The forward step (see `step_body`), from the state before it.
        let x = Before::at(
            consts,
            j,
            iws[j],
            [
                s_isyn[j], s_iahp[j], s_imem[j], s_vmem[j], s_timer[j], s_s[j],
            ],
        );
        let f = if FFB { ffb[j] } else { x.feedback() };
        let st = recompute(&x, f, dt);
        let (o, imem_c) = (x.o, st.imem_c);
        // Readout, threshold and reset, as the forward kernel's third pass.
        let ratio = imem_c / ispkthr[j];
        let b = if ratio > T::ONE { T::ONE } else { T::ZERO };
        let nb = T::ONE - b;
        if !FFB {
            s_vmem[j] = ut_over_kappa[j] * (imem_c / o).kernel_ln();
        }
        s_imem[j] = nb * imem_c + b * o;
        s_timer[j] = nb * clip_lo(x.timer - dt, T::ZERO) + b * t_ref[j];
        s_s[j] = ratio;
        s_isyn[j] = st.isyn1;
        s_iahp[j] = st.iahp1;

        // The coefficients for a count of at most 1 (b is min(count, 1), JAX's 0.5 at the clip's
        // tie), and `k_imem`, `thr_i` for a count of 2 or more (no reset derivative).
        let ds_dimem = if imem_c > o { T::ONE } else { T::ZERO };
        let c = coefficients(
            &x,
            &st,
            (b, half, ds_dimem, T::ZERO),
            [
                T::ONE / imem_c,
                ut_over_kappa[j],
                inv_itau_m[j],
                kp_over_ut[j],
            ],
            dt,
        );
        let reset_big = (o - imem_c) * T::ZERO;
        k_imem[j] = c.k_imem;
        k_big[j] = ((T::ONE - b) + reset_big * ds_dimem) * c.dm;
        k_s[j] = c.k_s;
        k_v[j] = c.k_v;
        c_imem0[j] = c.c_imem0;
        c_vmem[j] = c.c_vmem;
        c_pre[j] = c.c_pre;
        c_iahp[j] = c.c_iahp;
        d_a[j] = c.d_a;
        d_u[j] = c.d_u;
        if CUR {
            thr_i[j] = c.thr_i;
            thr_big[j] = reset_big * T::ZERO;
            thr_s[j] = c.thr_s;
            c_p[j] = c.c_p;
            c_gm[j] = c.c_gm;
            c_itm[j] = c.c_itm;
            o_isyn_inf[j] = st.isyn_inf;
            o_iahp_inf[j] = st.iahp_inf;
        }
    }
}

/// Every slice of `c` cut to its first `n` values, so that the compiler knows their length. Written
/// out: `array::map` is not unrolled, and the loops that read the result then stay scalar (three
/// times the instructions).
#[inline(always)]
fn cut_to<T>(c: [&[T]; 19], n: usize) -> [&[T]; 19] {
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, o, p, q, r, s, t] = c;
    [
        &a[..n],
        &b[..n],
        &c[..n],
        &d[..n],
        &e[..n],
        &f[..n],
        &g[..n],
        &h[..n],
        &i[..n],
        &j[..n],
        &k[..n],
        &l[..n],
        &m[..n],
        &o[..n],
        &p[..n],
        &q[..n],
        &r[..n],
        &s[..n],
        &t[..n],
    ]
}

/// One neuron's constants and state before a step, as [`recompute`] reads them.
struct Before<T> {
    o: T,
    idc: T,
    f_dis_s: T,
    f_chg_s: T,
    gain_s: T,
    f_dis_a: T,
    f_chg_a: T,
    gain_a: T,
    iw_ahp: T,
    kappa_prime: T,
    ut: T,
    utk_cmem: T,
    itau_m: T,
    igain_m: T,
    gain_m: T,
    /// The step's drive `(rec + x) Iscale`.
    iws: T,
    isyn: T,
    iahp: T,
    imem: T,
    vmem: T,
    timer: T,
    s: T,
}

impl<T: Real> Before<T> {
    /// The step's positive-feedback factor from the vmem before it, as the forward kernel forms it.
    #[inline(always)]
    fn feedback(&self) -> T {
        (self.kappa_prime * (self.vmem / self.ut)).kernel_exp()
    }

    /// Neuron `j`'s constants (of [`Consts::coefficient_inputs`](super::params::Consts::coefficient_inputs)), its step's
    /// drive `iws` and its state `isyn, iahp, imem, vmem, timer_ref, s` before the step.
    #[inline(always)]
    fn at(
        consts: [&[T]; 19],
        j: usize,
        iws: T,
        [isyn, iahp, imem, vmem, timer, s]: [T; 6],
    ) -> Self {
        let [
            io,
            idc,
            f_dis_s,
            f_chg_s,
            gain_s,
            f_dis_a,
            f_chg_a,
            gain_a,
            iw_ahp,
            kappa_prime,
            ut,
            _,
            utk_cmem,
            itau_m,
            igain_m,
            gain_m,
            ..,
        ] = consts;
        Before {
            o: io[j],
            idc: idc[j],
            f_dis_s: f_dis_s[j],
            f_chg_s: f_chg_s[j],
            gain_s: gain_s[j],
            f_dis_a: f_dis_a[j],
            f_chg_a: f_chg_a[j],
            gain_a: gain_a[j],
            iw_ahp: iw_ahp[j],
            kappa_prime: kappa_prime[j],
            ut: ut[j],
            utk_cmem: utk_cmem[j],
            itau_m: itau_m[j],
            igain_m: igain_m[j],
            gain_m: gain_m[j],
            iws,
            isyn,
            iahp,
            imem,
            vmem,
            timer,
            s,
        }
    }
}

/// The intermediates of one neuron's step (before threshold and reset).
struct Recomputed<T> {
    u: T,
    isyn_inf: T,
    iahp_inf: T,
    a: T,
    iahp1: T,
    ffb: T,
    ileak: T,
    gate: T,
    isyn1: T,
    pre: T,
    iin: T,
    p: T,
    q: T,
    f_imem: T,
    tau_m: T,
    r: T,
    bv: T,
    den: T,
    av: T,
    m: T,
    imem_c: T,
}

/// One neuron's step up to the floored Euler update `imem_c`, with the forward kernel's operations in
/// its order (`step_body`), so the same values; shared by [`reverse_coefficients`] and
/// [`forward_coefficients`]. Inlined into their vector loops.
#[inline(always)]
fn recompute<T: Real>(x: &Before<T>, ffb: T, dt: T) -> Recomputed<T> {
    let o = x.o;
    let u = x.gain_s * x.iws;
    let isyn_inf = clip_lo(u, o);
    let iahp_inf = x.gain_a * (x.iw_ahp * x.s);
    let a = x.f_dis_a * x.iahp + x.f_chg_a * iahp_inf;
    let iahp1 = clip_lo(a, o);
    let ileak = x.itau_m + iahp1;
    let gate = if x.timer == T::ZERO { T::ONE } else { T::ZERO };
    // isyn1 = f_dis_s isyn0 + f_chg_s isyn_inf, as the forward kernel forms it.
    let isyn1 = x.f_dis_s * x.isyn + x.f_chg_s * isyn_inf;
    let pre = (isyn1 - ileak + x.idc) * gate;
    let iin = clip_lo(pre, o);
    let imem_inf = x.gain_m * (iin - ileak);
    let imem0 = x.imem;
    let p = imem0 + x.igain_m;
    let q = (o * ffb) / ileak;
    let f_imem = q * p;
    let tau_m = x.utk_cmem / ileak;
    let r = iahp1 / x.itau_m;
    let bv = imem_inf + f_imem - imem0 * (T::ONE + r);
    let den = tau_m * p;
    let av = imem0 / den;
    let m = imem0 + av * bv * dt;
    let imem_c = clip_lo(m, o);
    Recomputed {
        u,
        isyn_inf,
        iahp_inf,
        a,
        iahp1,
        ffb,
        ileak,
        gate,
        isyn1,
        pre,
        iin,
        p,
        q,
        f_imem,
        tau_m,
        r,
        bv,
        den,
        av,
        m,
        imem_c,
    }
}

/// One neuron's coefficients (see [`reverse_coefficients`]) and the floor's derivative `dm`.
struct Coefficients<T> {
    k_imem: T,
    k_s: T,
    k_v: T,
    thr_i: T,
    thr_s: T,
    c_imem0: T,
    c_vmem: T,
    c_pre: T,
    c_iahp: T,
    d_a: T,
    d_u: T,
    c_p: T,
    c_gm: T,
    c_itm: T,
    dm: T,
}

/// One neuron's coefficients from its step's intermediates, given the spike's `(b, db/ds, ds/dimem,
/// ds/dIspkthr)` and `[1/imem_c, Ut/kappa, 1/itau_mem, kappa'/Ut]`. Derivatives follow JAX's rules.
#[inline(always)]
fn coefficients<T: Real>(
    x: &Before<T>,
    st: &Recomputed<T>,
    (b, db_ds, ds_dimem, ds_dthr): (T, T, T, T),
    [inv_imem_c, ut_over_kappa, inv_itau, kp_over_ut]: [T; 4],
    dt: T,
) -> Coefficients<T> {
    let o = x.o;
    let imem0 = x.imem;
    let Recomputed {
        u,
        a,
        ffb,
        ileak,
        gate,
        pre,
        iin,
        p,
        q,
        f_imem,
        tau_m,
        r,
        bv,
        den,
        av,
        m,
        imem_c,
        ..
    } = *st;
    // g_s = a_s + a_imem (Io - imem_c) db_ds;
    // g_imem_c = a_imem (1 - b) + g_s ds_dimem + a_vmem (Ut/kappa) / imem_c; g_m = g_imem_c dclip.
    let reset = (o - imem_c) * db_ds;
    let dm = d_clip(m, o);
    // Per unit of g_m: m = imem0 + av bv dt.
    let g_av = dt * bv;
    let g_bv = dt * av;
    // The backward expressions divide through reciprocals (the divider bounds these kernels); the
    // recomputed forward values keep the forward's divisions.
    let inv_den = T::ONE / den;
    let inv_ileak = T::ONE / ileak;
    // 1/tau_m = p/den and 1/p = tau_m/den.
    let g_tau = -(g_av * av * p * inv_den);
    let g_p = -(g_av * av * tau_m * inv_den) + g_bv * q;
    let g_ffb = g_bv * (o * p * inv_ileak);
    let g_pre = g_bv * x.gain_m * d_clip(pre, o) * gate;
    let g_ileak = -((g_tau * tau_m + g_bv * f_imem) * inv_ileak) - g_bv * x.gain_m - g_pre;
    Coefficients {
        k_imem: ((T::ONE - b) + reset * ds_dimem) * dm,
        k_s: ds_dimem * dm,
        k_v: ut_over_kappa * inv_imem_c * dm,
        thr_i: reset * ds_dthr,
        thr_s: ds_dthr,
        c_imem0: T::ONE + g_av * inv_den - g_bv * (T::ONE + r) + g_p,
        c_vmem: g_ffb * ffb * kp_over_ut,
        c_pre: g_pre,
        c_iahp: g_ileak - g_bv * imem0 * inv_itau,
        d_a: d_clip(a, o),
        d_u: x.f_chg_s * d_clip(u, o),
        c_p: g_p,
        c_gm: g_bv * (iin - ileak),
        c_itm: g_ileak + g_bv * imem0 * r * inv_itau,
        dm,
    }
}

/// The second half of the reverse of one time step: the adjoints of the previous state from those of
/// this step's, through the coefficients of [`reverse_coefficients`] (`coef`).
///
/// `inputs`: the constants `f_dis_syn, f_dis_ahp, f_chg_ahp, gain_ahp, iw_ahp, gain_syn`, the step's
/// drive `iws` and the previous `isyn, iahp, s`. On entry the five adjoint slices hold the adjoints of
/// this step's state (isyn, iahp, imem post reset, vmem, spike count); on return those of the previous
/// state (for the spike count, only its own adaptation path: the caller adds the recurrent one).
/// `drive` receives `d loss / d (rec + x)` and the accumulators the adjoints of `f_dis_syn,
/// f_chg_syn, gain_syn, f_dis_ahp, f_chg_ahp, gain_ahp, iw_ahp, idc, itau_mem, igain_mem, gain_mem,
/// ispkthr` (one parameter each).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn reverse_chain<T: Real, const CUR: bool>(
    coef: [&[T]; COEF],
    inputs: [&[T]; 10],
    i_scale: T,
    a_isyn: &mut [T],
    a_iahp: &mut [T],
    a_imem: &mut [T],
    a_vmem: &mut [T],
    a_s: &mut [T],
    drive: &mut [T],
    g_fds: &mut [T],
    g_fcs: &mut [T],
    g_gs: &mut [T],
    g_fda: &mut [T],
    g_fca: &mut [T],
    g_ga: &mut [T],
    g_iwa: &mut [T],
    g_idc: &mut [T],
    g_itm: &mut [T],
    g_igm: &mut [T],
    g_gm: &mut [T],
    g_thr: &mut [T],
) {
    let n = a_s.len() / LANES * LANES;
    let_cut!(n; [
        k_imem,
        k_s,
        k_v,
        c_imem0,
        c_pre,
        c_iahp,
        c_vmem,
        d_a,
        d_u,
        c_gm,
        c_p,
        c_itm,
        isyn_inf,
        iahp_inf,
        thr_i,
        thr_s,
    ] = coef);
    let_cut!(n; [f_dis_s, f_dis_a, f_chg_a, gain_a, iw_ahp, gain_s, iws, p_isyn, p_iahp, p_s] = inputs);
    let_cut!(
        mut n;
        a_isyn, a_iahp, a_imem, a_vmem, a_s, drive, g_fds, g_fcs, g_gs, g_fda, g_fca, g_ga, g_iwa,
        g_idc, g_itm, g_igm, g_gm, g_thr
    );
    for j in 0..n {
        let (ai, asp) = (a_imem[j], a_s[j]);
        let g_m = ai * k_imem[j] + asp * k_s[j] + a_vmem[j] * k_v[j];
        let g_isyn1 = a_isyn[j] + g_m * c_pre[j];
        let g_iahp1 = a_iahp[j] + g_m * c_iahp[j];
        a_imem[j] = g_m * c_imem0[j];
        a_vmem[j] = g_m * c_vmem[j];
        // AHP: iahp1 = max(f_dis_a iahp0 + f_chg_a iahp_inf, Io), iahp_inf = gain_a iw_ahp s0.
        let g_a = g_iahp1 * d_a[j];
        a_iahp[j] = g_a * f_dis_a[j];
        let g_iahp_inf = g_a * f_chg_a[j];
        a_s[j] = g_iahp_inf * gain_a[j] * iw_ahp[j];
        // Synapse: isyn1 = f_dis_s isyn0 + f_chg_s max(gain_s iws, Io).
        a_isyn[j] = g_isyn1 * f_dis_s[j];
        let g_u = g_isyn1 * d_u[j];
        drive[j] = g_u * gain_s[j] * i_scale;
        // The per-neuron constants' adjoints, when the currents' gradients are asked for.
        if CUR {
            g_thr[j] = g_thr[j] + (ai * thr_i[j] + asp * thr_s[j]);
            g_gm[j] = g_gm[j] + g_m * c_gm[j];
            g_idc[j] = g_idc[j] + g_m * c_pre[j];
            g_igm[j] = g_igm[j] + g_m * c_p[j];
            g_itm[j] = g_itm[j] + g_m * c_itm[j];
            g_fda[j] = g_fda[j] + g_a * p_iahp[j];
            g_fca[j] = g_fca[j] + g_a * iahp_inf[j];
            let s0 = p_s[j];
            g_ga[j] = g_ga[j] + g_iahp_inf * (iw_ahp[j] * s0);
            g_iwa[j] = g_iwa[j] + g_iahp_inf * gain_a[j] * s0;
            g_fds[j] = g_fds[j] + g_isyn1 * p_isyn[j];
            g_fcs[j] = g_fcs[j] + g_isyn1 * isyn_inf[j];
            g_gs[j] = g_gs[j] + g_u * iws[j];
        }
    }
}
