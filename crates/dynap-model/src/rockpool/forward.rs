//! The `rockpool` variant's forward pass: the simulator's construction, its runs, and the kernels of
//! one time step.

use super::params::{Consts, LANES};
use super::{Records, Simulator, SpikeFunction, State, Trace};
use crate::aligned::Aligned;
use crate::error::Error;
use crate::error::WeightMatrix;
use crate::events::{ElementEvents, SpikeEvents};
use crate::isa::Isa;
use crate::network::{Matrix, Network, Variant};
use crate::real::Real;
use crate::run::{Input, Recording, RunOptions, add_rows_unit, clip_lo, count_spikes};

/// A checked input: the weighted input per neuron `[batch][steps][N]`, input spikes as the caller's
/// events, or input spikes as a dense raster `[batch][steps][channels]`, which each worker turns into
/// events one batch element at a time (in parallel, into its own reused buffer).
pub(super) enum Source<'i, T> {
    Weighted(&'i [T]),
    Events(&'i SpikeEvents<T>),
    Dense { data: &'i [T], channels: usize },
}

impl<T: Real> Source<'_, T> {
    /// The input of batch element `b` (`steps` steps of `n` neurons); a dense raster's element is
    /// converted into `events` (a worker's buffer).
    pub(super) fn element<'s>(
        &'s self,
        b: usize,
        steps: usize,
        n: usize,
        events: &'s mut SpikeEvents<T>,
    ) -> Drive<'s, T> {
        match self {
            Source::Weighted(data) => Drive::Weighted(&data[b * steps * n..(b + 1) * steps * n]),
            Source::Events(ev) => Drive::Events(ev.element(b)),
            Source::Dense { data, channels } => {
                let per = steps * channels;
                // (Checked: by `Simulator::source`, or by `element_checked`'s caller.)
                let _ = events.fill_from_dense(&data[b * per..(b + 1) * per], 1, steps, *channels);
                Drive::Events(events.element(0))
            }
        }
    }

    /// [`Source::element`] for a source made by [`Simulator::source_deferred`]: a dense raster's
    /// values are checked as the element is converted, and the first that is not finite is an error
    /// naming it.
    fn element_checked<'s>(
        &'s self,
        b: usize,
        steps: usize,
        n: usize,
        events: &'s mut SpikeEvents<T>,
    ) -> Result<Drive<'s, T>, Error> {
        match self {
            Source::Dense { data, channels } => {
                let per = steps * channels;
                let bad =
                    events.fill_from_dense(&data[b * per..(b + 1) * per], 1, steps, *channels);
                match bad {
                    Some(i) => Err(Error::NonFiniteInput {
                        batch: b,
                        step: i / channels,
                        channel: i % channels,
                    }),
                    None => Ok(Drive::Events(events.element(0))),
                }
            }
            _ => Ok(self.element(b, steps, n, events)),
        }
    }

    /// Input channels: N for weighted input, Nin for spikes.
    pub(super) fn channels(&self, n: usize) -> usize {
        match self {
            Source::Weighted(_) => n,
            Source::Events(ev) => ev.channels(),
            Source::Dense { channels, .. } => *channels,
        }
    }

    /// Whether the input is spikes (through `w_in`).
    pub(super) fn is_spikes(&self) -> bool {
        !matches!(self, Source::Weighted(_))
    }
}

/// The input of one batch element, as the kernels read it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Drive<'a, T> {
    /// Weighted input per neuron, `[steps][N]`.
    Weighted(&'a [T]),
    /// Input spikes, through the padded `w_in`.
    Events(ElementEvents<'a, T>),
}

impl<'a, T: Real> Drive<'a, T> {
    /// The input of steps `from..from + steps`.
    pub(super) fn steps(self, from: usize, steps: usize, n: usize) -> Drive<'a, T> {
        match self {
            Drive::Weighted(xs) => Drive::Weighted(&xs[from * n..(from + steps) * n]),
            Drive::Events(ev) => Drive::Events(ev.steps(from, steps)),
        }
    }
}

/// What a taped run records besides its outputs (see `reverse.rs`): the state every `every` steps
/// (`states`, with `every`), every step's reverse coefficients (`coef`) and every step's
/// positive-feedback factors (`feedback`, `[batch][step][n_pad]`).
pub(super) struct Taped<'a, T> {
    pub(super) states: Option<(&'a mut [T], usize)>,
    pub(super) coef: Option<&'a mut [T]>,
    pub(super) feedback: Option<&'a mut [T]>,
}

impl<T> Default for Taped<'_, T> {
    fn default() -> Self {
        Taped {
            states: None,
            coef: None,
            feedback: None,
        }
    }
}

/// One batch element's share of the outputs, handed to a worker thread.
struct Job<'a, T> {
    batch: usize,
    /// Where to record the padded state every `tape_every` steps (see `reverse.rs`), if anywhere.
    tape: Option<&'a mut [T]>,
    /// Where to record the reverse coefficients of every step, if anywhere (see `Simulator::run_impl`).
    coef: Option<&'a mut [T]>,
    /// Where to record every step's positive-feedback factors `[steps][n_pad]`, if anywhere.
    ffb: Option<&'a mut [T]>,
    /// The element's input error, found by its thread (the run's result is then this error).
    bad: Option<Error>,
    spikes: &'a mut [T],
    /// The element's spike totals, `[N]`, if the run sums them.
    counts: Option<&'a mut [f64]>,
    traces: Option<[&'a mut [T]; 4]>,
    imem: &'a mut [T],
    isyn: &'a mut [T],
    iahp: &'a mut [T],
    s: &'a mut [T],
    timer: &'a mut [T],
    vmem: &'a mut [T],
}

impl<T: Real> Simulator<T> {
    /// Validates the network ([`Network::validate`]) and converts it to precision `T`.
    pub fn new(net: &Network) -> Result<Simulator<T>, Error> {
        if net.variant != Variant::Rockpool {
            return Err(Error::WrongVariant {
                simulator: Variant::Rockpool.name(),
                network: net.variant.name(),
            });
        }
        net.validate()?;
        let n = net.neurons();
        let c = Consts::new(&net.params, net.dt)?;
        let cv = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let dt = T::from_f64(net.dt);
        let n_pad = n.div_ceil(LANES) * LANES;
        let w_in_pad = net.w_in.as_ref().map(|w| {
            let mut pad = Aligned::filled(w.rows() * n_pad, T::ZERO);
            for (dst, src) in pad
                .chunks_exact_mut(n_pad)
                .zip(w.as_slice().chunks_exact(n.max(1)))
            {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = T::from_f64(v);
                }
            }
            pad
        });
        let w_rec = Aligned::from_slice(&cv(net.w_rec.as_slice()));
        let rec_nonzero = w_rec.iter().any(|&w| w != T::ZERO);
        let mut sim = Simulator {
            n,
            n_in: net.w_in.as_ref().map(|w| w.rows()),
            c,
            w_in_pad,
            w_rec,
            w_rec_t: Aligned::default(),
            w_rec_sparse: None,
            w_rec_rows_sparse: None,
            rec_nonzero,
            grad_mask: None,
            i_scale: T::from_f64(net.i_scale),
            dt,
            isa: Isa::detect(),
            spike: SpikeFunction::Rockpool,
            params: net.params.clone(),
        };
        sim.transposes();
        Ok(sim)
    }

    /// The forms of `w_rec` the passes read besides its rows: for a large sparse matrix
    /// ([`SparseRows::worth_it`](crate::run::SparseRows::worth_it)) its non-zero entries by rows and
    /// by columns, the columns sorted from the rows (no pass over the dense transpose); otherwise the
    /// dense transpose.
    fn transposes(&mut self) {
        let n = self.n;
        let mut rows = self.w_rec_rows_sparse.take().unwrap_or_default();
        rows.rebuild(&self.w_rec, n);
        if rows.worth_it(n) {
            let mut cols = self.w_rec_sparse.take().unwrap_or_default();
            cols.transpose_of(&rows, n);
            self.w_rec_sparse = Some(cols);
            self.w_rec_rows_sparse = Some(rows);
        } else {
            self.w_rec_sparse = None;
            self.w_rec_rows_sparse = None;
            self.dense_transpose();
        }
    }

    /// Fills the dense transpose of `w_rec` (`[post][pre]`), which the reverse pass reads when the
    /// matrix is not sparse.
    pub(crate) fn dense_transpose(&mut self) {
        let n = self.n;
        self.w_rec_t.resize(n * n, T::ZERO);
        for (k, t) in self.w_rec_t.iter_mut().enumerate() {
            *t = self.w_rec[(k % n) * n + k / n];
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.n
    }

    /// Replaces the weights, keeping every converted parameter: for a training loop, whose weights change
    /// at every step and its currents not. The matrices must have the network's shapes (`w_in` exactly
    /// when the network has input weights) and finite values; the result is the simulator that
    /// [`Simulator::new`] makes of the network with these weights.
    pub fn set_weights(&mut self, w_in: Option<&Matrix>, w_rec: &Matrix) -> Result<(), Error> {
        let n = self.n;
        match (w_in, self.n_in) {
            (Some(w), Some(n_in)) => w.check(WeightMatrix::Input, (n_in, n))?,
            (None, None) => {}
            _ => return Err(Error::NoInputWeights),
        }
        w_rec.check(WeightMatrix::Recurrent, (n, n))?;
        if let (Some(w), Some(pad)) = (w_in, self.w_in_pad.as_mut()) {
            let n_pad = n.div_ceil(LANES) * LANES;
            for (row, src) in pad
                .chunks_exact_mut(n_pad)
                .zip(w.as_slice().chunks_exact(n.max(1)))
            {
                for (d, &v) in row.iter_mut().zip(src) {
                    *d = T::from_f64(v);
                }
            }
        }
        for (d, &x) in self.w_rec.iter_mut().zip(w_rec.as_slice()) {
            *d = T::from_f64(x);
        }
        self.rec_nonzero = self.w_rec.iter().any(|&w| w != T::ZERO);
        self.transposes();
        Ok(())
    }

    /// The sharpness of the smooth spike function, `None` for Rockpool's spikes (also under another
    /// surrogate: the forward pass is Rockpool's then).
    pub(super) fn smooth_beta(&self) -> Option<T> {
        match self.spike {
            SpikeFunction::Rockpool | SpikeFunction::FastSigmoid { .. } => None,
            SpikeFunction::Smooth { beta } => Some(T::from_f64(beta)),
        }
    }

    /// How the reverse pass differentiates the spike.
    pub(super) fn surrogate(&self) -> super::Surrogate<T> {
        match self.spike {
            SpikeFunction::Rockpool => super::Surrogate::Rockpool,
            SpikeFunction::Smooth { beta } => super::Surrogate::Smooth(T::from_f64(beta)),
            SpikeFunction::FastSigmoid { k } => super::Surrogate::FastSigmoid(T::from_f64(k)),
        }
    }

    /// Turns the ratios imem/Ispkthr that the step left in `s` into Rockpool's spike counts, and lists
    /// the spiking neurons in `active`. (Padding lanes are never listed, so they drive nothing.)
    #[inline(always)]
    pub(super) fn spike_counts(&self, s: &mut [T], n: usize, active: &mut Vec<usize>) {
        // Spikes are sparse: one vector comparison per LANES neurons gives a bit mask of the spiking
        // ones, the chunk is cleared with one store, and only the set bits are visited.
        for (c, chunk) in s.chunks_exact_mut(LANES).enumerate() {
            let chunk: &mut [T; LANES] = chunk.try_into().expect("LANES values");
            let base = c * LANES;
            let mut mask = chunk
                .iter()
                .enumerate()
                .fold(0u32, |m, (k, &r)| m | (u32::from(r > T::ONE) << k));
            if base + LANES > n {
                // Padding lanes never spike.
                mask &= (1u32 << (n - base)) - 1;
            }
            let ratios = *chunk;
            *chunk = [T::ZERO; LANES];
            // A count above 1 needs ln(ratio) > 1, i.e. a ratio above e; below 2.5 (ln 2.5 = 0.92, far
            // from 1 whatever the logarithm's last bits) the count is 1, as `ceil(ln(ratio))` gives it,
            // without the logarithm's long chain for almost every spike.
            let one_below = T::from_f64(2.5);
            while mask != 0 {
                let k = mask.trailing_zeros() as usize;
                let r = ratios[k];
                chunk[k] = if r <= one_below {
                    T::ONE
                } else {
                    count_above(r)
                };
                active.push(base + k);
                mask &= mask - 1;
            }
        }
    }

    /// The same simulator computing the recurrent weights' gradient inside `mask` only (see
    /// [`GradientMask`](crate::GradientMask)): [`Simulator::gradient`] reports 0 for every other
    /// weight. Refused when the mask is not of this network's size. It stays through
    /// [`Simulator::set_weights`].
    pub fn with_gradient_mask(
        mut self,
        mask: std::sync::Arc<crate::run::GradientMask>,
    ) -> Result<Simulator<T>, Error> {
        if mask.neurons() != self.n {
            return Err(Error::GradientMask {
                neurons: self.n,
                found: mask.neurons() * mask.neurons(),
            });
        }
        self.grad_mask = Some(mask);
        Ok(self)
    }

    /// The same simulator with another spike function (see [`SpikeFunction`]).
    pub fn with_spike_function(mut self, spike: SpikeFunction) -> Simulator<T> {
        self.spike = spike;
        self
    }

    /// Rockpool's initial state for `batch` elements: `imem = isyn = iahp = Io`, everything else 0.
    pub fn initial_state(&self, batch: usize) -> State<T> {
        let io = &self.c.io[..self.n];
        let rep = |v: &[T]| -> Vec<T> { (0..batch).flat_map(|_| v.iter().copied()).collect() };
        let zeros = vec![T::ZERO; batch * self.n];
        State {
            batch,
            neurons: self.n,
            imem: rep(io),
            isyn: rep(io),
            iahp: rep(io),
            spikes: zeros.clone(),
            timer_ref: zeros.clone(),
            vmem: zeros,
        }
    }

    /// Runs the network on `input`, from `initial` (or Rockpool's initial state).
    ///
    /// Errors when the input's size or channel count does not fit the network, when it holds a
    /// non-finite value, or when the initial state has the wrong shape.
    pub fn run(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
    ) -> Result<Trace<T>, Error> {
        self.run_impl(input, initial, options, Taped::default(), None, None)
    }

    /// [`Simulator::run`], writing the spikes and the records into the memory of an earlier trace's (a
    /// simulation loop then neither allocates nor clears megabytes per call: every value is written
    /// by the run).
    pub fn run_reusing(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        reuse: Option<Trace<T>>,
    ) -> Result<Trace<T>, Error> {
        let (spikes, records) = reuse.map_or((None, None), |t| (Some(t.spikes), t.records));
        self.run_impl(input, initial, options, Taped::default(), spikes, records)
    }

    /// [`Simulator::run`], writing into the memory of `spikes` and, when the run records, `records`
    /// (of any length and contents: each is resized, and every value is written by the run): for a
    /// caller that keeps its own output buffers, such as a pool, and so does not pay for fresh memory
    /// (a page fault and the kernel's zeroing per page) at every run.
    pub fn run_into(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        spikes: Vec<T>,
        records: Option<Records<T>>,
    ) -> Result<Trace<T>, Error> {
        self.run_impl(
            input,
            initial,
            options,
            Taped::default(),
            Some(spikes),
            records,
        )
    }

    /// The input, checked: its shape and channel count against the network, its values finite. Input
    /// spikes given as a dense raster are converted to events later, per batch element, by the
    /// threads that run them.
    pub(super) fn source<'i>(&self, input: &Input<'i, T>) -> Result<Source<'i, T>, Error> {
        self.source_with(input, true)
    }

    /// [`Simulator::source`], except that a dense spike raster's values are not checked here but by
    /// each element's conversion on its worker thread ([`Source::element_checked`]): one pass over
    /// the raster fewer, and not on one thread.
    fn source_deferred<'i>(&self, input: &Input<'i, T>) -> Result<Source<'i, T>, Error> {
        self.source_with(input, false)
    }

    fn source_with<'i>(&self, input: &Input<'i, T>, values: bool) -> Result<Source<'i, T>, Error> {
        let (batch, steps) = input.dims();
        match *input {
            Input::Weighted { data, .. } => {
                // Weighted input is checked as a raster of N channels.
                SpikeEvents::check_dense(data, batch, steps, self.n)?;
                Ok(Source::Weighted(data))
            }
            Input::Spikes { data, .. } => {
                let channels = self.n_in.ok_or(Error::NoInputWeights)?;
                if values {
                    SpikeEvents::check_dense(data, batch, steps, channels)?;
                } else {
                    SpikeEvents::check_dense_shape(data, batch, steps, channels)?;
                }
                Ok(Source::Dense { data, channels })
            }
            Input::Events(ev) => {
                let channels = self.n_in.ok_or(Error::NoInputWeights)?;
                if ev.channels() != channels {
                    return Err(Error::InputShape {
                        batch,
                        steps,
                        channels,
                        found_len: batch * steps * ev.channels(),
                    });
                }
                Ok(Source::Events(ev))
            }
        }
    }

    /// [`Simulator::run`], optionally recording the padded state every `tape.1` steps into a tape
    /// (`tape.0`, `[batch][entries][TAPE_FIELDS][padded N]`) for the reverse pass.
    ///
    /// With `coef` (`[batch][steps][COEF][padded N]`, a full tape, Rockpool's spikes and no state
    /// traces), each element runs the fused forward of the reverse pass instead
    /// ([`Simulator::fused_forward`]): the same states and spikes, and every step's reverse
    /// coefficients besides.
    pub(super) fn run_impl(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        taped: Taped<'_, T>,
        reuse: Option<Vec<T>>,
        reuse_records: Option<Records<T>>,
    ) -> Result<Trace<T>, Error> {
        let Taped {
            states: tape,
            coef,
            feedback,
        } = taped;
        let (batch, steps) = input.dims();
        // A dense raster's values are checked by the threads, element by element (see below).
        let source = self.source_deferred(&input)?;
        let (coef_used, n_pad) = (coef.is_some(), self.n.div_ceil(LANES) * LANES);
        let mut state = match initial {
            Some(s) => {
                let ok = s.batch == batch
                    && s.neurons == self.n
                    && [&s.imem, &s.isyn, &s.iahp, &s.spikes, &s.timer_ref, &s.vmem]
                        .iter()
                        .all(|v| v.len() == batch * self.n);
                if !ok {
                    return Err(Error::StateShape {
                        batch,
                        neurons: self.n,
                        found_batch: s.batch,
                        found_neurons: s.neurons,
                    });
                }
                s.clone()
            }
            None => self.initial_state(batch),
        };
        let n = self.n;
        let len = batch * steps * n;
        // Every value is written by the run, so reused memory needs no clearing.
        let mut spikes = reuse.unwrap_or_default();
        spikes.resize(len, T::ZERO);
        // A taped run sums each element's spikes as it goes (its loss needs them; see `Trace`).
        let mut counts = vec![0.0; if tape.is_some() { batch * n } else { 0 }];
        let mut traces = (options.recording == Recording::Full).then(|| match reuse_records {
            // Every value is written by the run, so reused memory needs no clearing.
            Some(mut r) => {
                for v in [&mut r.imem, &mut r.isyn, &mut r.iahp, &mut r.vmem] {
                    v.resize(len, T::ZERO);
                }
                r
            }
            None => Records {
                imem: vec![T::ZERO; len],
                isyn: vec![T::ZERO; len],
                iahp: vec![T::ZERO; len],
                vmem: vec![T::ZERO; len],
            },
        });
        {
            let per = steps * n;
            let mut trace_chunks: Vec<Option<[&mut [T]; 4]>> = match traces.as_mut() {
                Some(tr) => tr
                    .imem
                    .chunks_mut(per.max(1))
                    .zip(tr.isyn.chunks_mut(per.max(1)))
                    .zip(tr.iahp.chunks_mut(per.max(1)))
                    .zip(tr.vmem.chunks_mut(per.max(1)))
                    .map(|(((a, b), c), d)| Some([a, b, c, d]))
                    .collect(),
                None => (0..batch).map(|_| None).collect(),
            };
            trace_chunks.resize_with(batch, || None);
            let State {
                imem,
                isyn,
                iahp,
                spikes: s,
                timer_ref,
                vmem,
                ..
            } = &mut state;
            let mut spike_chunks = spikes.chunks_mut(per.max(1));
            // (None for every element when the run does not sum them: `counts` is empty.)
            let mut count_chunks = counts.chunks_mut(n.max(1));
            let tape_every = tape.as_ref().map_or(0, |t| t.1);
            let mut tape_chunks = tape.map(|(t, _)| {
                let per_element = t.len() / batch.max(1);
                t.chunks_mut(per_element.max(1))
            });
            let mut coef_chunks = coef.map(|c| {
                let per_element = c.len() / batch.max(1);
                c.chunks_mut(per_element.max(1))
            });
            let mut ffb_chunks = feedback.map(|f| f.chunks_mut((steps * n_pad).max(1)));
            let mut jobs: Vec<Job<'_, T>> = Vec::with_capacity(batch);
            let mut st = (
                imem.chunks_mut(n.max(1)),
                isyn.chunks_mut(n.max(1)),
                iahp.chunks_mut(n.max(1)),
                s.chunks_mut(n.max(1)),
                timer_ref.chunks_mut(n.max(1)),
                vmem.chunks_mut(n.max(1)),
            );
            for (b, traces) in trace_chunks.into_iter().enumerate() {
                if n == 0 {
                    break;
                }
                jobs.push(Job {
                    batch: b,
                    tape: tape_chunks.as_mut().and_then(Iterator::next),
                    coef: coef_chunks.as_mut().and_then(Iterator::next),
                    ffb: ffb_chunks.as_mut().and_then(Iterator::next),
                    bad: None,
                    spikes: spike_chunks.next().unwrap_or_default(),
                    counts: count_chunks.next(),
                    traces,
                    imem: st.0.next().unwrap_or_default(),
                    isyn: st.1.next().unwrap_or_default(),
                    iahp: st.2.next().unwrap_or_default(),
                    s: st.3.next().unwrap_or_default(),
                    timer: st.4.next().unwrap_or_default(),
                    vmem: st.5.next().unwrap_or_default(),
                });
            }
            let threads = match options.threads {
                0 => crate::threads::cores(),
                t => t,
            }
            .min(jobs.len().max(1));
            let run_job =
                |(scratch, events, big): &mut (Scratch<T>, SpikeEvents<T>, Aligned<T>),
                 _: usize,
                 job: &mut Job<'_, T>| {
                    let drive = match source.element_checked(job.batch, steps, n, events) {
                        Ok(drive) => drive,
                        Err(e) => {
                            job.bad = Some(e);
                            return;
                        }
                    };
                    scratch.load(job, &self.c.io);
                    let mut tape = job.tape.as_deref_mut().map(|t| (t, tape_every));
                    if let Some((t, _)) = tape.as_mut() {
                        scratch.record(t, 0);
                    }
                    if let (Some((t, _)), Some(cf)) = (tape.as_mut(), job.coef.as_deref_mut()) {
                        self.fused_forward(scratch, drive, steps, job.spikes, t, cf, big);
                        if let Some(c) = job.counts.as_deref_mut() {
                            count_spikes(job.spikes, c);
                        }
                    } else {
                        let traces = job
                            .traces
                            .as_mut()
                            .map(|[a, b, c, d]| [&mut **a, &mut **b, &mut **c, &mut **d]);
                        self.run_steps(
                            scratch,
                            drive,
                            steps,
                            Some(&mut *job.spikes),
                            traces,
                            tape,
                            job.ffb.as_deref_mut(),
                            job.counts.as_deref_mut(),
                        );
                    }
                    scratch.store(job);
                };
            let init = || {
                let big = Aligned::filled(if coef_used { 2 * n_pad } else { 0 }, T::ZERO);
                (Scratch::new(n), SpikeEvents::empty(), big)
            };
            crate::threads::for_each_item(&mut jobs, threads, init, run_job);
            // The first element's error, which names its first value that is not finite: the first
            // in the raster, as a check before the run would name it.
            if let Some(e) = jobs.iter_mut().find_map(|job| job.bad.take()) {
                return Err(e);
            }
        }
        Ok(Trace {
            batch,
            steps,
            neurons: n,
            spikes,
            records: traces,
            final_state: state,
            counts,
        })
    }

    /// Runs `steps` steps of one batch element from the state in `scratch`, with the instruction set
    /// chosen at construction. See [`Simulator::run_steps_body`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_steps(
        &self,
        scratch: &mut Scratch<T>,
        drive: Drive<'_, T>,
        steps: usize,
        spikes: Option<&mut [T]>,
        traces: Option<[&mut [T]; 4]>,
        tape: Option<(&mut [T], usize)>,
        feedback: Option<&mut [T]>,
        counts: Option<&mut [f64]>,
    ) {
        run_steps_kernel(
            self, self.isa, scratch, drive, steps, spikes, traces, tape, feedback, counts,
        );
    }

    /// Runs `steps` steps of one batch element from the padded state in `scratch`, writing the spikes
    /// (and the state traces) of each step, and the padded state after every `tape.1`-th step into
    /// `tape.0` (entry 0, the state before the first step, is the caller's). No allocation. Inlined into
    /// the per-instruction-set entry points, so that every loop in it is compiled for that set.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run_steps_body(
        &self,
        scratch: &mut Scratch<T>,
        drive: Drive<'_, T>,
        steps: usize,
        mut spikes: Option<&mut [T]>,
        mut traces: Option<[&mut [T]; 4]>,
        mut tape: Option<(&mut [T], usize)>,
        mut feedback: Option<&mut [T]>,
        mut counts: Option<&mut [f64]>,
    ) {
        let n = self.n;
        let Scratch {
            rec,
            x,
            active,
            state,
            ffb,
        } = scratch;
        // Every aligned buffer is dereferenced once, here, not at every step.
        let [isyn, iahp, imem, vmem, timer, s] = state.each_mut().map(|v| &mut v[..]);
        let (rec, x, ffb) = (&mut rec[..], &mut x[..], &mut ffb[..]);
        let np = ffb.len();
        rec.fill(T::ZERO);
        x.fill(T::ZERO);
        // Neurons that spiked in the previous step (the initial state may carry spikes).
        active.clear();
        active.extend((0..n).filter(|&i| s[i] != T::ZERO));
        let (consts, t_ref) = (self.c.coefficient_inputs(), &self.c.t_ref[..]);
        for t in 0..steps {
            self.form_drive(rec, x, active, s, drive, t);
            let ffb = match feedback.as_deref_mut() {
                Some(f) => &mut f[t * np..(t + 1) * np],
                None => &mut *ffb,
            };
            step_body(
                rec,
                x,
                consts,
                t_ref,
                self.dt,
                self.i_scale,
                self.smooth_beta(),
                isyn,
                iahp,
                imem,
                vmem,
                timer,
                s,
                ffb,
            );
            // `step_body` left imem/Ispkthr in `s`: turn it into the spike count, and list the spiking
            // neurons. (Padding lanes are never listed, so they drive nothing.)
            // Spikes are sparse: a vector test per LANES neurons skips the quiet ones.
            active.clear();
            if self.smooth_beta().is_some() {
                // A smooth spike is a fraction, already final; every neuron drives the others.
                active.extend((0..n).filter(|&i| s[i] != T::ZERO));
            } else {
                self.spike_counts(s, n, active);
            }
            // The run's spike totals, over the listed neurons only: the others add 0, which changes
            // no total (they start at +0 and never fall below it).
            if let Some(c) = counts.as_deref_mut() {
                for &j in active.iter() {
                    c[j] += s[j].to_f64();
                }
            }
            let out = t * n..(t + 1) * n;
            if let Some(sp) = spikes.as_deref_mut() {
                sp[out.clone()].copy_from_slice(&s[..n]);
            }
            if let Some([ti, ts, ta, tv]) = traces.as_mut() {
                ti[out.clone()].copy_from_slice(&imem[..n]);
                ts[out.clone()].copy_from_slice(&isyn[..n]);
                ta[out.clone()].copy_from_slice(&iahp[..n]);
                tv[out].copy_from_slice(&vmem[..n]);
            }
            if let Some((tp, every)) = tape.as_mut()
                && (t + 1) % *every == 0
            {
                let entry = (t + 1) / *every;
                let len = TAPE_FIELDS * isyn.len();
                let dst = &mut tp[entry * len..(entry + 1) * len];
                record_state(dst, [isyn, iahp, imem, vmem, timer, s]);
                // The reverse pass reads the step's drive instead of recomputing it.
                self.record_drive(dst, rec, x);
            }
        }
    }
}

/// Rockpool's spike count `ceil(ln(ratio))` for a ratio imem/Ispkthr above 2.5: rare, so kept out of
/// line (inlined, the compiler computes it for every spike and selects).
#[cold]
#[inline(never)]
fn count_above<T: Real>(ratio: T) -> T {
    ratio.kernel_ln().kernel_ceil()
}

impl<T: Real> Simulator<T> {
    /// Sets `rec` and `x` (padded) to step `t`'s recurrent drive (`sum_i s_i w_rec[i][..]` over the
    /// neurons in `active`, those that spiked) and external drive (given, or input spikes times
    /// `w_in`, event by event): what the forward kernel and the reverse pass's recomputation both
    /// form, in the same order.
    #[inline(always)]
    pub(super) fn form_drive(
        &self,
        rec: &mut [T],
        x: &mut [T],
        active: &[usize],
        s: &[T],
        drive: Drive<'_, T>,
        t: usize,
    ) {
        let n = self.n;
        rec[..n].fill(T::ZERO);
        if let Some(sparse) = &self.w_rec_rows_sparse {
            // A large sparse matrix: the spiking rows' non-zero entries only (the same sums in the
            // same order: a zero term added to a sum that starts at +0 changes no bit).
            sparse.add_rows_unit(
                &mut rec[..n],
                active,
                |i| s[i],
                |acc, w, si| acc + si * w,
                |si| si == T::ONE,
                |acc, w| acc + w,
            );
        } else if self.rec_nonzero {
            recurrent_drive(&mut rec[..n], active, s, &self.w_rec);
        }
        external_drive(x, drive, t, n, self.w_in_pad.as_deref());
    }

    /// Writes the step's drive `(rec + x) Iscale`, formed as `step_body` forms it (so the same bits),
    /// as field 6 of the tape entry `entry`.
    #[inline(always)]
    pub(super) fn record_drive(&self, entry: &mut [T], rec: &[T], x: &[T]) {
        let np = rec.len();
        for ((d, &r), &xv) in entry[6 * np..7 * np].iter_mut().zip(rec).zip(x) {
            *d = (r + xv) * self.i_scale;
        }
    }
}

/// Writes the padded state (isyn, iahp, imem, vmem, timer_ref, spikes) as the first six fields of the
/// tape entry `entry`.
#[inline(always)]
pub(super) fn record_state<T: Real>(entry: &mut [T], state: [&[T]; 6]) {
    let np = state[0].len();
    for (k, v) in state.into_iter().enumerate() {
        copy_lanes(&mut entry[k * np..(k + 1) * np], v);
    }
}

/// Adds `s_i w_rec[i][..]` to `rec` (one row of `rec.len()` values per neuron) for every neuron `i` in
/// `active`, in that order: the recurrent drive, shared by the forward kernel and the reverse pass's
/// recomputation so both sum in the same order.
#[inline(always)]
pub(super) fn recurrent_drive<T: Real>(rec: &mut [T], active: &[usize], s: &[T], w_rec: &[T]) {
    // A count of 1 (nearly every spike) multiplies exactly, so its row is added without the product:
    // the same bits, one operation per value instead of two.
    add_rows_unit(
        rec,
        active,
        |i| s[i],
        w_rec,
        |acc, w, si| acc + si * w,
        |si| si == T::ONE,
        |acc, w| acc + w,
    );
}

/// Sets `x` (padded) to the external drive of step `t`: the given currents, or the input spikes of
/// the step times the padded `w_in` (rows of `x.len()` values), summed over the events in channel
/// order (the padding lanes stay 0).
#[inline(always)]
fn external_drive<T: Real>(
    x: &mut [T],
    drive: Drive<'_, T>,
    t: usize,
    n: usize,
    w_in_pad: Option<&[T]>,
) {
    let np = x.len() / LANES * LANES;
    let x = &mut x[..np];
    match drive {
        Drive::Weighted(xs) => x[..n].copy_from_slice(&xs[t * n..(t + 1) * n]),
        Drive::Events(ev) => {
            x.fill(T::ZERO);
            let w_in = w_in_pad.expect("input events come with input weights");
            ev.for_each(t, |k, v| {
                let row = x.iter_mut().zip(&w_in[k * np..(k + 1) * np]);
                // A single input spike multiplies exactly: its row is added without the product.
                if v == T::ONE {
                    row.for_each(|(xj, &w)| *xj = *xj + w);
                } else {
                    row.for_each(|(xj, &w)| *xj = *xj + v * w);
                }
            });
        }
    }
}

/// One time step of every neuron of one batch element.
///
/// `rec` and `x` are the recurrent and the external drive, `consts` the per-neuron constants of
/// [`Consts::coefficient_inputs`] and `t_ref` the refractory periods. The state slices are updated in
/// place.
///
/// This is a free function whose state slices are separate parameters on purpose: the compiler then
/// knows they do not alias each other, and with selects instead of branches (and the branch-free
/// [`Real::kernel_ln`]/[`Real::kernel_exp`]) the whole neuron loop vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_body<T: Real>(
    rec: &[T],
    x: &[T],
    consts: [&[T]; 19],
    t_ref: &[T],
    dt: T,
    i_scale: T,
    smooth: Option<T>,
    s_isyn: &mut [T],
    s_iahp: &mut [T],
    s_imem: &mut [T],
    s_vmem: &mut [T],
    s_timer: &mut [T],
    s_s: &mut [T],
    ffb: &mut [T],
) {
    // Every array is padded to a multiple of LANES; saying so lets the compiler run whole vectors.
    let n = s_s.len() / LANES * LANES;
    let (rec, x) = (&rec[..n], &x[..n]);
    let_cut!(n; [
        io,
        idc,
        f_dis_syn,
        f_chg_syn,
        gain_syn,
        f_dis_ahp,
        f_chg_ahp,
        gain_ahp,
        iw_ahp,
        kappa_prime,
        ut,
        ut_over_kappa,
        utk_cmem,
        itau_mem,
        igain_mem,
        gain_mem,
        ispkthr,
        _inv_itau_mem,
        _kappa_prime_over_ut,
    ] = consts);
    let t_ref = &t_ref[..n];
    let_cut!(mut n; s_isyn, s_iahp, s_imem, s_vmem, s_timer, ffb);
    // The update runs in three passes over the neurons rather than one. Each pass is a short chain of
    // operations per neuron, so the processor overlaps many neurons; in one long loop the chain
    // exp -> divisions -> ln of a single neuron left it waiting on latencies.
    //
    // Pass 1: the positive-feedback factor from the previous step's vmem, into `ffb` (the caller's
    // scratch, or the tape, whose reverse pass then need not recompute it). Quirk: after a spike that
    // vmem is the pre-reset voltage.
    for j in 0..n {
        ffb[j] = (kappa_prime[j] * (s_vmem[j] / ut[j])).kernel_exp();
    }
    // Pass 2: synapse, adaptation and the membrane's Euler step (before threshold and reset).
    for j in 0..n {
        let io = io[j];
        let iws = (rec[j] + x[j]) * i_scale;
        // Quirk (Rockpool): the target is floored at Io after the sign of the drive is formed,
        // so a net negative drive acts like no drive: inhibition has no effect.
        let isyn_inf = clip_lo(gain_syn[j] * iws, io);
        // Quirk: no floor on isyn; it decays below Io towards ~5e-15 A without input.
        let isyn = f_dis_syn[j] * s_isyn[j] + f_chg_syn[j] * isyn_inf;
        // The AHP target uses the spike count of the previous step (a count, not a bit).
        let iahp_inf = gain_ahp[j] * (iw_ahp[j] * s_s[j]);
        let iahp = clip_lo(f_dis_ahp[j] * s_iahp[j] + f_chg_ahp[j] * iahp_inf, io);
        let f_fb = ffb[j];
        let ileak = itau_mem[j] + iahp;
        // Quirk: the refractory gate is the float test `timer_ref == 0`, and the floor at Io
        // comes after the leak is subtracted (so a refractory neuron gets Io, not 0).
        let gate = if s_timer[j] == T::ZERO {
            T::ONE
        } else {
            T::ZERO
        };
        let iin = clip_lo((isyn - ileak + idc[j]) * gate, io);
        // Quirk: the leak is subtracted a second time here.
        let imem_inf = gain_mem[j] * (iin - ileak);
        let imem = s_imem[j];
        let f_imem = ((io * f_fb) / ileak) * (imem + igain_mem[j]);
        // Quirk: tau_mem uses Ileak (which includes the AHP), not Itau_mem.
        let tau_mem = utk_cmem[j] / ileak;
        let dimem = (imem / (tau_mem * (imem + igain_mem[j])))
            * (imem_inf + f_imem - imem * (T::ONE + iahp / itau_mem[j]));
        s_imem[j] = clip_lo(imem + dimem * dt, io);
        s_isyn[j] = isyn;
        s_iahp[j] = iahp;
    }
    // Pass 3: voltage readout, threshold, reset and refractory timer.
    if let Some(beta) = smooth {
        // The smooth spike of `SpikeFunction::Smooth` (tests only): s = 1 / (1 + (Ispkthr/imem)^beta),
        // also the reset fraction.
        for j in 0..n {
            let io = io[j];
            let imem = s_imem[j];
            s_vmem[j] = ut_over_kappa[j] * (imem / io).kernel_ln();
            let s = T::ONE / (T::ONE + (beta * (ispkthr[j] / imem).ln()).exp());
            let nb = T::ONE - s;
            s_imem[j] = nb * imem + s * io;
            s_timer[j] = nb * clip_lo(s_timer[j] - dt, T::ZERO) + s * t_ref[j];
            s_s[j] = s;
        }
        return;
    }
    for j in 0..n {
        let io = io[j];
        let imem = s_imem[j];
        // Quirk: vmem is read out before the reset.
        s_vmem[j] = ut_over_kappa[j] * (imem / io).kernel_ln();
        // Spike count max(ceil(ln(imem/Ispkthr)), 0) is 0 whenever the ratio is <= 1 and at least 1
        // otherwise, so the reset bit b = min(s, 1) needs only the comparison. The count itself (a
        // Rockpool quirk: it can exceed 1) is computed by the caller for the few neurons above
        // threshold, from the ratio kept in `s_s`.
        let ratio = imem / ispkthr[j];
        let b = if ratio > T::ONE { T::ONE } else { T::ZERO };
        let nb = T::ONE - b;
        // Written as Rockpool writes them, so that non-finite corner cases propagate alike.
        s_imem[j] = nb * imem + b * io;
        s_timer[j] = nb * clip_lo(s_timer[j] - dt, T::ZERO) + b * t_ref[j];
        s_s[j] = ratio;
    }
}

isa_kernel!(run_steps_kernel => run_steps_body(
    scratch: &mut Scratch<T>,
    drive: Drive<'_, T>,
    steps: usize,
    spikes: Option<&mut [T]>,
    traces: Option<[&mut [T]; 4]>,
    tape: Option<(&mut [T], usize)>,
    feedback: Option<&mut [T]>,
    counts: Option<&mut [f64]>,
));

/// Per-thread buffers of one run, allocated once.
pub(super) struct Scratch<T> {
    pub(super) rec: Aligned<T>,
    pub(super) x: Aligned<T>,
    pub(super) active: Vec<usize>,
    /// isyn, iahp, imem, vmem, timer_ref, spikes, padded to a multiple of [`LANES`]; the state during a
    /// run, and the layout of one tape entry.
    pub(super) state: [Aligned<T>; 6],
    /// The step's positive-feedback factors, when no tape records them.
    pub(super) ffb: Aligned<T>,
}

impl<T: Real> Scratch<T> {
    /// Copies a batch element's state into the padded state; the padding lanes start at rest.
    fn load(&mut self, job: &Job<'_, T>, io: &[T]) {
        let n = job.isyn.len();
        let [isyn, iahp, imem, vmem, timer, s] = &mut self.state;
        for (pad, src) in [
            (&mut *isyn, &*job.isyn),
            (&mut *iahp, &*job.iahp),
            (&mut *imem, &*job.imem),
        ] {
            pad[..n].copy_from_slice(src);
            pad[n..].copy_from_slice(&io[n..]);
        }
        for (pad, src) in [
            (&mut *vmem, &*job.vmem),
            (&mut *timer, &*job.timer),
            (&mut *s, &*job.s),
        ] {
            pad[..n].copy_from_slice(src);
            pad[n..].fill(T::ZERO);
        }
    }

    /// Copies the padded state back into a batch element's state.
    fn store(&self, job: &mut Job<'_, T>) {
        let n = job.isyn.len();
        for (dst, src) in [
            (&mut *job.isyn, &self.state[0]),
            (&mut *job.iahp, &self.state[1]),
            (&mut *job.imem, &self.state[2]),
            (&mut *job.vmem, &self.state[3]),
            (&mut *job.timer, &self.state[4]),
            (&mut *job.s, &self.state[5]),
        ] {
            dst.copy_from_slice(&src[..n]);
        }
    }

    /// Writes the padded state as tape entry `entry` (its drive field is left as it was: the drive of
    /// the step that led to a checkpoint is never read).
    pub(super) fn record(&self, tape: &mut [T], entry: usize) {
        let len = TAPE_FIELDS * self.state[0].len();
        record_state(
            &mut tape[entry * len..(entry + 1) * len],
            self.state.each_ref().map(|v| &v[..]),
        );
    }

    /// Sets the padded state from tape entry `entry`.
    pub(super) fn restore(&mut self, tape: &[T], entry: usize) {
        let len = TAPE_FIELDS * self.state[0].len();
        let src = &tape[entry * len..(entry + 1) * len];
        for (k, v) in self.state.iter_mut().enumerate() {
            let m = v.len();
            v.copy_from_slice(&src[k * m..(k + 1) * m]);
        }
    }

    pub(super) fn new(n: usize) -> Self {
        let padded = n.div_ceil(LANES) * LANES;
        Scratch {
            rec: Aligned::filled(padded, T::ZERO),
            x: Aligned::filled(padded, T::ZERO),
            active: Vec::with_capacity(n),
            state: std::array::from_fn(|_| Aligned::filled(padded, T::ZERO)),
            ffb: Aligned::filled(padded, T::ZERO),
        }
    }
}

/// `dst = src` (equal lengths, a multiple of [`LANES`]) in whole vectors written inline: the kernels
/// copy a few vectors per step, for which a call to `memcpy` costs more than the copy.
#[inline(always)]
fn copy_lanes<T: Real>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.chunks_exact_mut(LANES).zip(src.chunks_exact(LANES)) {
        let d: &mut [T; LANES] = d.try_into().expect("LANES values");
        let s: &[T; LANES] = s.try_into().expect("LANES values");
        *d = *s;
    }
}

/// Values per neuron in one tape entry: the padded state `isyn, iahp, imem, vmem, timer_ref, s` after a
/// step, and the drive `(rec + x) Iscale` of that step.
pub(super) const TAPE_FIELDS: usize = 7;
