//! DynapSim as one operation on dfdx's tape: the forward pass is `dynap-model`'s fused kernel, the
//! backward pass its fused adjoint, so the time loop stays one kernel while readouts, losses and
//! optimizers compose on the tape.
//!
//! Trainable values: the input weights `w_in` `[Nin, N]`, the recurrent weights `w_rec` `[N, N]`, and
//! optionally bias currents in log space, `log I`, one row per trained current and one column per
//! neuron or per core ([`Sharing`]). Log space keeps the currents positive and lets currents that differ
//! by orders of magnitude train at one learning rate; `d loss / d log I = I d loss / d I`.
//!
//! How a pass is made fast without changing a bit:
//! * **Packing.** A small network's batch copies (B x N <= 16 neurons, one AVX-512 vector; `rockpool`
//!   variant) run side by side as one simulated element with block-diagonal weights (`Pack`): the same
//!   arithmetic per neuron, half the steps for the paper's network; the gradients of the shared weights
//!   are the sums of the diagonal blocks (tested equal to the unpacked run).
//! * **Pools.** The layer keeps spent forward tapes in an `Arc<Mutex<..>>` pool to reuse their memory,
//!   and, when no current trains, its simulators, whose weights are replaced for the next pass
//!   (`Simulator::set_weights`, tested equal to a new simulator bit for bit): caches of allocations and
//!   conversions, not state that changes results (a departure from the STYLE examples, on purpose).
//! * **Held input.** [`SpikeInput`] holds a training set's spikes outside dfdx with its packed layout
//!   and its events made once ([`DynapSimLayer::forward_input`]): dfdx can only copy a tensor out
//!   element by element, which was a third of a training step for the paper's network. The held input
//!   gets no gradient and gives the same bits as [`DynapSimLayer::forward`] on the same values (tested).
//! * **Checkpoints.** The full tape is recorded unless it would exceed [`AUTO_CHECKPOINT_BYTES`]
//!   (32 MiB); then every [`AUTO_CHECKPOINT_EVERY`]-th state, the rest recomputed in the reverse pass
//!   ([`DynapSimLayer::with_checkpoints`] overrides); the gradients are the same bits.
//! * **Fused loss.** [`DynapSimLayer::forward_input_loss`] evaluates the loss on the simulator's output
//!   where it lies and keeps only what its gradient needs (`loss::Memo`: for the count loss one slope
//!   per element and neuron, from the taped run's spike totals, handed to the reverse pass as
//!   `OutputGradients::spikes_every_step`): no `[batch, steps, N]` copy out of dfdx and no gradient
//!   buffer of that size; the same bits as [`crate::loss_on_tape`] (tested).
//!
//! A `chip` network runs `ChipSimulator` and its reverse pass in the same layer (weights and any of the
//! 13 currents train, as in the other variant); `chip_reference.rs` (tests only) is its dfdx
//! composition.

use crate::error::Error;
use crate::loss::{Loss, SpikeGradient};
use dfdx::dtypes::Dtype;
use dfdx::shapes::HasShape;
use dfdx::tensor::{Cpu, Gradients, NoneTape, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::ReshapeTo;
use dynap_model::{
    ChipOutputGradients, ChipSimulator, GradientMask, GradientOptions, Input, Matrix, Network,
    OutputGradients, Param, Real, RunOptions, Simulator, SpikeEvents, SpikeFunction, Variant,
};
use std::sync::{Arc, Mutex};

/// How trained bias currents are shared between neurons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// One value per neuron.
    PerNeuron,
    /// One value per core: `core_map[j]` is neuron `j`'s core, `0..cores`. This is what the chip can
    /// realise (one bias set per core).
    PerCore {
        /// Core of each neuron.
        core_map: Vec<usize>,
    },
}

/// Which bias currents train.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentTraining {
    /// The trained currents (each one of [`Param::CURRENTS`]).
    pub currents: Vec<Param>,
    /// How they are shared.
    pub sharing: Sharing,
}

impl CurrentTraining {
    /// No trained currents: weights only, as in Rockpool.
    pub fn none() -> CurrentTraining {
        CurrentTraining {
            currents: Vec::new(),
            sharing: Sharing::PerNeuron,
        }
    }

    fn groups(&self, n: usize) -> usize {
        match &self.sharing {
            Sharing::PerNeuron => n,
            Sharing::PerCore { core_map } => core_map.iter().max().map_or(0, |&c| c + 1),
        }
    }

    /// `d loss / d log I` of the trained values (`[currents, groups]`): `I d loss / d I` summed over
    /// the neurons sharing a value; `values[k]` are current `k`'s values per neuron and `grad(p)` the
    /// gradient with respect to current `p` per neuron.
    fn log_gradient(
        &self,
        n: usize,
        values: &[Vec<f64>],
        grad: impl Fn(Param) -> Vec<f64>,
    ) -> Vec<f64> {
        let groups = self.groups(n);
        let mut g_log = vec![0.0; self.currents.len() * groups];
        for (k, &p) in self.currents.iter().enumerate() {
            let gp = grad(p);
            for j in 0..n {
                g_log[k * groups + self.group_of(j)] += gp[j] * values[k][j];
            }
        }
        g_log
    }

    fn group_of(&self, j: usize) -> usize {
        match &self.sharing {
            Sharing::PerNeuron => j,
            Sharing::PerCore { core_map } => core_map[j],
        }
    }
}

/// The trainable tensors of a [`DynapSimLayer`].
#[derive(Clone, Debug)]
pub struct LayerParams<E: Dtype> {
    /// Input weights `[Nin, N]`.
    pub w_in: Tensor<(usize, usize), E, Cpu>,
    /// Recurrent weights `[N, N]` (`[pre, post]`).
    pub w_rec: Tensor<(usize, usize), E, Cpu>,
    /// `ln(I / 1 A)` of the trained currents, `[currents, groups]`.
    pub log_currents: Tensor<(usize, usize), E, Cpu>,
}

/// A DynapSim layer behind an input weight matrix (Rockpool's `LinearJax + DynapSim`), trainable on
/// dfdx's tape, simulated in precision `E`.
#[derive(Clone, Debug)]
pub struct DynapSimLayer<E: Real> {
    /// Forward-pass tapes whose backward pass has run, kept for the next forward pass to record into.
    tapes: Arc<Mutex<Vec<dynap_model::Tape<E>>>>,
    /// The same for the `chip` variant.
    chip_tapes: Arc<Mutex<Vec<dynap_model::ChipTape<E>>>>,
    /// Simulators of this layer's network (by packing), whose weights are replaced for each pass when
    /// no current is trained (the converted parameters do not change then).
    sims: SimulatorPool<E>,
    base: Network,
    training: CurrentTraining,
    spike: SpikeFunction,
    checkpoint_every: usize,
    threads: usize,
    input_gradient: bool,
    pack: bool,
    /// Which trained values (`[currents, groups]`) replace the base network's currents; `None`: all.
    current_flags: Option<Vec<bool>>,
    /// Factors on the trained values, `[currents][neurons]` (a chip instance's mismatch of them).
    current_factors: Option<Vec<Vec<f64>>>,
    /// The recurrent weights whose gradient the training needs ([`DynapSimLayer::with_gradient_mask`]).
    grad_mask: Option<Arc<GradientMask>>,
}

impl<E: Dtype + Real> DynapSimLayer<E> {
    /// A layer from a network (its values are the initial trainable values and the fixed parameters)
    /// and the currents to train. The network needs input weights; a trained current must be one of the
    /// 13, and a per-core map must give every neuron a core.
    pub fn new(base: Network, training: CurrentTraining) -> Result<DynapSimLayer<E>, Error> {
        base.validate()?;
        if base.w_in.is_none() {
            return Err(dynap_model::Error::NoInputWeights.into());
        }
        if let Some(&p) = training
            .currents
            .iter()
            .find(|p| !Param::CURRENTS.contains(p))
        {
            return Err(Error::NotACurrent { param: p });
        }
        if let Sharing::PerCore { core_map } = &training.sharing
            && core_map.len() != base.neurons()
        {
            return Err(Error::CoreMap {
                neurons: base.neurons(),
                found: core_map.len(),
            });
        }
        Ok(DynapSimLayer {
            tapes: Arc::default(),
            chip_tapes: Arc::default(),
            sims: Arc::default(),
            base,
            training,
            spike: SpikeFunction::Rockpool,
            checkpoint_every: 0,
            threads: 0,
            input_gradient: false,
            pack: true,
            current_flags: None,
            current_factors: None,
            grad_mask: None,
        })
    }

    /// Computes the recurrent weights' gradient inside `mask` only (see
    /// [`GradientMask`]) and reports 0 outside it: for a training that
    /// holds the other weights at 0 (the `rockpool` variant, unpacked batches; elsewhere the dense
    /// gradient is computed and the caller's zeroing gives the same values). Refused when the mask
    /// is not of the network's size.
    pub fn with_gradient_mask(
        mut self,
        mask: Option<Arc<GradientMask>>,
    ) -> Result<DynapSimLayer<E>, Error> {
        if let Some(m) = &mask
            && m.neurons() != self.neurons()
        {
            return Err(dynap_model::Error::GradientMask {
                neurons: self.neurons(),
                found: m.neurons() * m.neurons(),
            }
            .into());
        }
        self.grad_mask = mask;
        // Simulators made before carry the previous mask.
        self.sims = Arc::default();
        Ok(self)
    }

    /// Multiplies the trained currents by `factors[k][j]` (current `k`, neuron `j`) in the network
    /// this layer simulates: a chip instance's mismatch of currents that train (`Trainer::simulate_on`).
    pub(crate) fn with_current_factors(
        mut self,
        factors: Option<Vec<Vec<f64>>>,
    ) -> DynapSimLayer<E> {
        self.current_factors = factors;
        self
    }

    /// The network this layer was made from.
    pub(crate) fn base(&self) -> &Network {
        &self.base
    }

    /// Keeps the base network's currents where `flags[k * groups + g]` is false (the trainer holds
    /// those values; see `Trainer::with_current_flags`), so that they stay exactly as given rather
    /// than round-tripping through `E`'s logarithm.
    pub(crate) fn with_current_flags(mut self, flags: Option<Vec<bool>>) -> DynapSimLayer<E> {
        self.current_flags = flags;
        self
    }

    /// The same layer with another spike function (for finite-difference checks).
    pub fn with_spike_function(mut self, spike: SpikeFunction) -> DynapSimLayer<E> {
        self.spike = spike;
        self
    }

    /// Records only every `k`-th state on the forward pass and recomputes the rest in the backward
    /// pass, with the reverse pass's coefficients in the same recomputation (less memory for long
    /// runs; `k = 1` records every step). By default (`k = 0`), every step is recorded unless that
    /// tape would exceed [`AUTO_CHECKPOINT_BYTES`]; then every [`AUTO_CHECKPOINT_EVERY`]-th. The
    /// gradients are the same bits either way.
    pub fn with_checkpoints(mut self, k: usize) -> DynapSimLayer<E> {
        self.checkpoint_every = k;
        self
    }

    /// The checkpoint interval of a run of `batch` elements of `steps` steps (see
    /// [`DynapSimLayer::with_checkpoints`]).
    fn checkpoints(&self, sim: &Simulator<E>, batch: usize, steps: usize) -> usize {
        if self.checkpoint_every > 0 {
            return self.checkpoint_every;
        }
        if sim.tape_bytes(batch, steps, 1) > AUTO_CHECKPOINT_BYTES {
            AUTO_CHECKPOINT_EVERY
        } else {
            1
        }
    }

    /// Worker threads (0: one per core). Results do not depend on it.
    pub fn with_threads(mut self, threads: usize) -> DynapSimLayer<E> {
        self.threads = threads;
        self
    }

    /// Also propagate the gradient to the layer's input (off by default: it costs a dense product with
    /// `w_in` per step).
    pub fn with_input_gradient(mut self) -> DynapSimLayer<E> {
        self.input_gradient = true;
        self
    }

    /// Runs every batch element on its own, even for a small network whose copies would otherwise run
    /// side by side as one element (the results are the same; this is for comparisons).
    pub fn without_packing(mut self) -> DynapSimLayer<E> {
        self.pack = false;
        self
    }

    /// Whether batch copies may run side by side: the `rockpool` kernel only.
    fn packs(&self) -> bool {
        self.pack && self.base.variant == Variant::Rockpool
    }

    /// The currents this layer trains.
    pub(crate) fn training(&self) -> &CurrentTraining {
        &self.training
    }

    /// Neurons.
    pub fn neurons(&self) -> usize {
        self.base.neurons()
    }

    /// Input channels.
    pub fn input_channels(&self) -> usize {
        self.base.input_channels()
    }

    /// The trainable tensors, initialised from the base network. A trained current shared per core
    /// starts at the mean over the core's neurons.
    pub fn init_params(&self, dev: &Cpu) -> LayerParams<E> {
        let n = self.neurons();
        let to_e = |v: &[f64]| {
            v.iter()
                .map(|&x| <E as Real>::from_f64(x))
                .collect::<Vec<E>>()
        };
        let w_in = self.base.w_in.as_ref().expect("checked in new");
        let g = self.training.groups(n);
        let mut log = vec![0.0f64; self.training.currents.len() * g];
        for (k, &p) in self.training.currents.iter().enumerate() {
            let mut count = vec![0usize; g];
            for (j, &v) in self.base.params.get(p).iter().enumerate() {
                let gi = self.training.group_of(j);
                log[k * g + gi] += v;
                count[gi] += 1;
            }
            for gi in 0..g {
                // A current of 0 A has no logarithm; start such a value at the dark current instead.
                let mean = log[k * g + gi] / count[gi].max(1) as f64;
                log[k * g + gi] = mean
                    .max(
                        self.base
                            .params
                            .i_o
                            .iter()
                            .copied()
                            .fold(f64::INFINITY, f64::min),
                    )
                    .ln();
            }
        }
        LayerParams {
            w_in: dev.tensor_from_vec(to_e(w_in.as_slice()), (w_in.rows(), n)),
            w_rec: dev.tensor_from_vec(to_e(self.base.w_rec.as_slice()), (n, n)),
            log_currents: dev.tensor_from_vec(to_e(&log), (self.training.currents.len(), g)),
        }
    }

    /// The network the parameters describe (for evaluation, export, mapping).
    pub fn network(&self, params: &LayerParams<E>) -> Network {
        let n = self.neurons();
        let to_f = |t: &Tensor<(usize, usize), E, Cpu>| {
            values(t)
                .into_iter()
                .map(Real::to_f64)
                .collect::<Vec<f64>>()
        };
        let mut net = self.base.clone();
        let w_in = net.w_in.as_ref().expect("checked in new");
        net.w_in = Matrix::from_vec(w_in.rows(), n, to_f(&params.w_in));
        net.w_rec = Matrix::from_vec(n, n, to_f(&params.w_rec)).expect("n x n");
        let g = self.training.groups(n);
        let log = to_f(&params.log_currents);
        for (k, &p) in self.training.currents.iter().enumerate() {
            let values = net.params.get_mut(p);
            for (j, v) in values.iter_mut().enumerate() {
                let at = k * g + self.training.group_of(j);
                if self.current_flags.as_ref().is_none_or(|f| f[at]) {
                    *v = match &self.current_factors {
                        None => log[at].exp(),
                        Some(f) => log[at].exp() * f[k][j],
                    };
                }
            }
        }
        net
    }

    /// The simulator of the network `params` describe, laid out for `pack`: a kept one with the new
    /// weights when no current is trained (the same simulator, without converting every parameter
    /// again), else a new one.
    fn simulator(&self, params: &LayerParams<E>, pack: Pack) -> Result<Simulator<E>, Error> {
        if self.training.currents.is_empty() {
            let kept = self.sims.lock().ok().and_then(|mut pool| {
                let i = pool.iter().position(|(c, _)| *c == pack.copies)?;
                Some(pool.swap_remove(i).1)
            });
            if let Some(mut sim) = kept {
                let n = self.neurons();
                let matrix = |t: &Tensor<(usize, usize), E, Cpu>,
                              rows: usize,
                              which: dynap_model::WeightMatrix| {
                    let data = values(t).into_iter().map(Real::to_f64).collect();
                    Matrix::from_vec(rows, n, data).ok_or(dynap_model::Error::WeightShape {
                        matrix: which,
                        expected: (rows, n),
                        found: *t.shape(),
                    })
                };
                let n_in = self.input_channels();
                let w_in = matrix(&params.w_in, n_in, dynap_model::WeightMatrix::Input)?;
                let w_rec = matrix(&params.w_rec, n, dynap_model::WeightMatrix::Recurrent)?;
                sim.set_weights(Some(&pack.block(&w_in)), &pack.block(&w_rec))?;
                return Ok(sim);
            }
        }
        // A small network wastes most of a vector's lanes on padding; its batch copies then run side by
        // side as one element (block-diagonal weights): the same arithmetic per neuron, half the steps.
        let net = self.network(params);
        let sim = Simulator::<E>::new(&pack.network(&net))?.with_spike_function(self.spike);
        Ok(match &self.grad_mask {
            // A packed simulator's matrix is block-diagonal: the mask is for one copy.
            Some(m) if pack.copies == 1 => sim.with_gradient_mask(Arc::clone(m))?,
            _ => sim,
        })
    }

    /// Runs the layer on input spikes `[batch, steps, Nin]` and returns the output spike counts
    /// `[batch, steps, N]`. With a tape, the backward pass is the fused adjoint (and, with
    /// [`DynapSimLayer::with_input_gradient`], reaches the input tensor).
    pub fn forward<T: Tape<E, Cpu>>(
        &self,
        params: &LayerParams<E>,
        input: Raster<E, T>,
    ) -> Result<Raster<E, T>, Error> {
        let (batch, steps, channels) = *input.shape();
        self.check_channels(batch, steps, channels)?;
        let pack = Pack::choose(self.neurons(), batch, self.packs());
        let (input, tape) = input.split_tape();
        let data = LayerInput {
            dense: Arc::new(pack.input(values(&input), steps, channels)),
            events: None,
        };
        match self.run(
            params,
            data,
            (batch, steps, channels),
            pack,
            tape,
            Some(input),
            None,
        )? {
            RunOut::Spikes(out) => Ok(out),
            RunOut::Loss(..) => unreachable!("no loss was given"),
        }
    }

    /// Runs the layer on input spikes held once for many passes ([`SpikeInput`]: a training set that
    /// does not change between iterations is neither copied out of dfdx nor re-laid out per pass) and
    /// records on `tape` (for training, `OwnedTape::default()`). The input receives no gradient.
    pub fn forward_input<T: Tape<E, Cpu>>(
        &self,
        params: &LayerParams<E>,
        input: &SpikeInput<E>,
        tape: T,
    ) -> Result<Raster<E, T>, Error> {
        let shape = (input.batch, input.steps, input.channels);
        self.check_channels(shape.0, shape.1, shape.2)?;
        let pack = Pack::choose(self.neurons(), input.batch, self.packs());
        let data = input.packed(pack)?;
        match self.run(params, data, shape, pack, tape, None, None)? {
            RunOut::Spikes(out) => Ok(out),
            RunOut::Loss(..) => unreachable!("no loss was given"),
        }
    }

    /// [`DynapSimLayer::forward_input`] and then `loss` on its output spikes, fused: the same values
    /// and gradients as [`crate::loss_on_tape`] on that output, without copying the spikes out of
    /// dfdx or keeping a `[batch, steps, N]` gradient on the tape (for a spike-count loss the
    /// gradient is rebuilt from one slope per element and neuron). Returns the loss, recorded on
    /// `tape`, and the output spikes (off the tape, for accuracy and plots).
    #[allow(clippy::type_complexity)]
    pub fn forward_input_loss<T: Tape<E, Cpu>>(
        &self,
        params: &LayerParams<E>,
        input: &SpikeInput<E>,
        loss: &Loss,
        tape: T,
    ) -> Result<(Tensor<(), E, Cpu, T>, Raster<E, NoneTape>), Error> {
        let shape = (input.batch, input.steps, input.channels);
        self.check_channels(shape.0, shape.1, shape.2)?;
        let pack = Pack::choose(self.neurons(), input.batch, self.packs());
        let data = input.packed(pack)?;
        match self.run(params, data, shape, pack, tape, None, Some(loss))? {
            RunOut::Loss(value, out) => Ok((value, out)),
            RunOut::Spikes(_) => unreachable!("a loss was given"),
        }
    }

    fn check_channels(&self, batch: usize, steps: usize, channels: usize) -> Result<(), Error> {
        if channels != self.input_channels() {
            return Err(dynap_model::Error::InputShape {
                batch,
                steps,
                channels: self.input_channels(),
                found_len: batch * steps * channels,
            }
            .into());
        }
        Ok(())
    }

    /// The simulation and its backward operation on `tape`; `data` is the input already packed, and
    /// `events` the same as events when the caller holds them (the `rockpool` kernels read events, the
    /// `chip` kernels the dense raster).
    #[allow(clippy::too_many_arguments)]
    fn run<T: Tape<E, Cpu>>(
        &self,
        params: &LayerParams<E>,
        data: LayerInput<E>,
        (batch, steps, channels): (usize, usize, usize),
        pack: Pack,
        mut tape: T,
        input: Option<Tensor<(usize, usize, usize), E, Cpu>>,
        loss: Option<&Loss>,
    ) -> Result<RunOut<E, T>, Error> {
        let n = self.neurons();
        if self.base.variant == Variant::Chip {
            let net = self.network(params);
            return self.run_chip(
                params,
                net,
                data.dense,
                (batch, steps, channels),
                tape,
                input,
                loss,
            );
        }
        let sim = self.simulator(params, pack)?;
        let (sim_batch, sim_steps) = (batch / pack.copies, steps);
        let events = match data.events {
            Some(ev) => ev,
            None => Arc::new(SpikeEvents::from_dense(
                &data.dense,
                sim_batch,
                sim_steps,
                channels * pack.copies,
            )?),
        };
        let x = Input::Events(&events);
        let options = RunOptions {
            threads: self.threads,
            ..RunOptions::default()
        };
        let dev = params.w_rec.device().clone();
        if !T::OWNS_TAPE {
            let trace = sim.run(x, None, &options)?;
            if self.training.currents.is_empty()
                && let Ok(mut pool) = self.sims.lock()
            {
                pool.push((pack.copies, sim));
            }
            let spikes = pack.output(trace.spikes, steps, n);
            let value = loss
                .map(|l| l.value(&spikes, batch, steps, n))
                .transpose()?;
            let out = dev.tensor_from_vec(spikes, (batch, steps, n));
            return Ok(match value {
                None => RunOut::Spikes(out.put_tape(tape)),
                Some(v) => RunOut::Loss(
                    dev.tensor_from_vec(vec![<E as Real>::from_f64(v)], ())
                        .put_tape(tape),
                    out,
                ),
            });
        }
        let reuse = self.tapes.lock().ok().and_then(|mut pool| pool.pop());
        let (trace, sim_tape) = sim.run_taped_reusing(
            x,
            None,
            &options,
            self.checkpoints(&sim, sim_batch, sim_steps),
            reuse,
        )?;
        let pool = Arc::clone(&self.tapes);
        // Summed by the taped run itself.
        let counts = trace.spike_counts();
        let spikes = pack.output(trace.spikes, steps, n);
        // A fused loss: its value now, and what its gradient needs for the backward pass.
        let fused = match loss {
            Some(l) => {
                let (value, memo) = l.value_and_memo(&spikes, &counts, batch, steps, n)?;
                let scalar: Tensor<(), E, Cpu> =
                    dev.tensor_from_vec(vec![<E as Real>::from_f64(value)], ());
                Some((l.clone(), memo, scalar))
            }
            None => None,
        };
        let out: Tensor<(usize, usize, usize), E, Cpu> =
            dev.tensor_from_vec(spikes, (batch, steps, n));
        let scalar = fused.as_ref().map(|(_, _, s)| s.clone());
        let ghosts = Ghosts {
            out: out.clone(),
            input,
            w_in: params.w_in.clone(),
            w_rec: params.w_rec.clone(),
            log_currents: params.log_currents.clone(),
        };
        let training = self.training.clone();
        let currents: Vec<Vec<f64>> = if training.currents.is_empty() {
            Vec::new()
        } else {
            let net = self.network(params);
            training
                .currents
                .iter()
                .map(|&p| net.params.get(p).to_vec())
                .collect()
        };
        let sims = Arc::clone(&self.sims);
        let grad_options = GradientOptions {
            threads: self.threads,
            input: self.input_gradient && ghosts.input.is_some(),
            currents: !training.currents.is_empty(),
        };
        let n_in = channels;
        tape.add_backward_op(move |grads: &mut Gradients<E, Cpu>| {
            let x = Input::Events(&events);
            let g = {
                // A packed run's gradients are packed as its inputs are.
                let owned;
                let (g_out, g_every): (Option<&[E]>, Option<&[E]>) =
                    match spikes_gradient(grads, &ghosts.out, fused.as_ref(), (batch, steps, n))? {
                        SpikesGradient::Tape(g) if pack.copies == 1 => (Some(g), None),
                        SpikesGradient::Tape(g) => {
                            owned = pack.input(g.to_vec(), steps, n);
                            (Some(&owned[..]), None)
                        }
                        SpikesGradient::Loss(SpikeGradient::PerStep(g)) => {
                            owned = pack.input(g, steps, n);
                            (Some(&owned[..]), None)
                        }
                        SpikesGradient::Loss(SpikeGradient::EveryStep(rows)) => {
                            owned = pack.input(rows, 1, n);
                            (None, Some(&owned[..]))
                        }
                    };
                let outs = OutputGradients {
                    spikes: g_out,
                    spikes_every_step: g_every,
                    ..Default::default()
                };
                // The input, shapes and tape are this run's own, so the reverse pass cannot refuse them.
                sim.gradient(&sim_tape, x, &outs, &grad_options)
                    .expect("the recorded run matches")
            };
            if let Ok(mut pool) = pool.lock() {
                pool.push(sim_tape);
            }
            if training.currents.is_empty()
                && let Ok(mut pool) = sims.lock()
            {
                pool.push((pack.copies, sim));
            }
            let g_w_in = g
                .w_in
                .as_ref()
                .map(|m| pack.fold_matrix(m, n_in, n))
                .unwrap_or_default();
            add_into(grads.get_or_alloc_mut(&ghosts.w_in)?, &g_w_in);
            add_into(
                grads.get_or_alloc_mut(&ghosts.w_rec)?,
                &pack.fold_matrix(&g.w_rec, n, n),
            );
            if let (Some(gi), Some(input)) = (&g.input, &ghosts.input) {
                add_into(
                    grads.get_or_alloc_mut(input)?,
                    &pack.output(gi.clone(), steps, n_in),
                );
            }
            if !training.currents.is_empty() {
                let g_log = training.log_gradient(n, &currents, |p| {
                    pack.fold_vector(g.current(p).expect("a current"), n)
                });
                add_into(grads.get_or_alloc_mut(&ghosts.log_currents)?, &g_log);
            }
            Ok(())
        });
        Ok(match scalar {
            None => RunOut::Spikes(out.put_tape(tape)),
            Some(s) => RunOut::Loss(s.put_tape(tape), out),
        })
    }

    /// [`DynapSimLayer::run`] for the `chip` variant: `ChipSimulator` forward, its reverse pass
    /// backward (batch elements unpacked: the chip model has no packed kernel), with the fused loss
    /// and the tape pool of the other variant.
    #[allow(clippy::too_many_arguments)]
    fn run_chip<T: Tape<E, Cpu>>(
        &self,
        params: &LayerParams<E>,
        net: Network,
        data: Arc<Vec<E>>,
        (batch, steps, channels): (usize, usize, usize),
        mut tape: T,
        input: Option<Tensor<(usize, usize, usize), E, Cpu>>,
        loss: Option<&Loss>,
    ) -> Result<RunOut<E, T>, Error> {
        let n = self.neurons();
        let mut sim = ChipSimulator::<E>::new(&net)?;
        match self.spike {
            SpikeFunction::Smooth { beta } => sim = sim.with_smooth_spikes(beta),
            SpikeFunction::FastSigmoid { k } => sim = sim.with_fast_sigmoid(k),
            SpikeFunction::Rockpool => {}
        }
        // Never packed (see `packs`).
        debug_assert_eq!(data.len(), batch * steps * channels);
        let plain = data;
        let options = RunOptions {
            threads: self.threads,
            ..RunOptions::default()
        };
        let x = Input::Spikes {
            data: &plain,
            batch,
            steps,
        };
        let dev = params.w_rec.device().clone();
        if !T::OWNS_TAPE {
            let trace = sim.run(x, None, &options)?;
            let value = loss
                .map(|l| l.value(&trace.spikes, batch, steps, n))
                .transpose()?;
            let out = dev.tensor_from_vec(trace.spikes, (batch, steps, n));
            return Ok(match value {
                None => RunOut::Spikes(out.put_tape(tape)),
                Some(v) => RunOut::Loss(
                    dev.tensor_from_vec(vec![<E as Real>::from_f64(v)], ())
                        .put_tape(tape),
                    out,
                ),
            });
        }
        let reuse = self.chip_tapes.lock().ok().and_then(|mut pool| pool.pop());
        let (trace, sim_tape) = sim.run_taped_reusing(x, None, &options, reuse)?;
        let pool = Arc::clone(&self.chip_tapes);
        // A fused loss: its value now, and what its gradient needs for the backward pass.
        let fused = match loss {
            Some(l) => {
                let counts = trace.spike_counts();
                let (value, memo) = l.value_and_memo(&trace.spikes, &counts, batch, steps, n)?;
                let scalar: Tensor<(), E, Cpu> =
                    dev.tensor_from_vec(vec![<E as Real>::from_f64(value)], ());
                Some((l.clone(), memo, scalar))
            }
            None => None,
        };
        let out: Tensor<(usize, usize, usize), E, Cpu> =
            dev.tensor_from_vec(trace.spikes, (batch, steps, n));
        let scalar = fused.as_ref().map(|(_, _, s)| s.clone());
        let ghosts = Ghosts {
            out: out.clone(),
            input,
            w_in: params.w_in.clone(),
            w_rec: params.w_rec.clone(),
            log_currents: params.log_currents.clone(),
        };
        let training = self.training.clone();
        let currents: Vec<Vec<f64>> = training
            .currents
            .iter()
            .map(|&p| net.params.get(p).to_vec())
            .collect();
        let threads = self.threads;
        let input_gradient = self.input_gradient;
        tape.add_backward_op(move |grads: &mut Gradients<E, Cpu>| {
            let x = Input::Spikes {
                data: plain.as_slice(),
                batch,
                steps,
            };
            let g = {
                let from_loss;
                let (g_out, g_every): (Option<&[E]>, Option<&[E]>) =
                    match spikes_gradient(grads, &ghosts.out, fused.as_ref(), (batch, steps, n))? {
                        SpikesGradient::Tape(g) => (Some(g), None),
                        SpikesGradient::Loss(g) => {
                            from_loss = g;
                            match &from_loss {
                                SpikeGradient::PerStep(g) => (Some(&g[..]), None),
                                SpikeGradient::EveryStep(rows) => (None, Some(&rows[..])),
                            }
                        }
                    };
                let outs = ChipOutputGradients {
                    spikes: g_out,
                    spikes_every_step: g_every,
                    ..Default::default()
                };
                let options = GradientOptions {
                    threads,
                    input: input_gradient && ghosts.input.is_some(),
                    currents: !training.currents.is_empty(),
                };
                // The input, shapes and tape are this run's own, so the reverse pass cannot refuse them.
                sim.gradient(&sim_tape, x, &outs, &options)
                    .expect("the recorded run matches")
            };
            if let Ok(mut pool) = pool.lock() {
                pool.push(sim_tape);
            }
            let g_w_in = g.w_in.as_ref().map(Matrix::as_slice).unwrap_or_default();
            add_into(grads.get_or_alloc_mut(&ghosts.w_in)?, g_w_in);
            add_into(grads.get_or_alloc_mut(&ghosts.w_rec)?, g.w_rec.as_slice());
            if let (Some(gi), Some(input)) = (&g.input, &ghosts.input) {
                add_into(grads.get_or_alloc_mut(input)?, gi);
            }
            if !training.currents.is_empty() {
                let g_log = training
                    .log_gradient(n, &currents, |p| g.current(p).expect("a current").to_vec());
                add_into(grads.get_or_alloc_mut(&ghosts.log_currents)?, &g_log);
            }
            Ok(())
        });
        Ok(match scalar {
            None => RunOut::Spikes(out.put_tape(tape)),
            Some(s) => RunOut::Loss(s.put_tape(tape), out),
        })
    }
}

/// What [`DynapSimLayer::run`] returns: the output spikes on the tape, or with a fused loss the loss
/// on the tape and the spikes off it.
enum RunOut<E: Dtype, T> {
    Spikes(Raster<E, T>),
    Loss(Tensor<(), E, Cpu, T>, Raster<E, NoneTape>),
}

/// The largest full tape (every step recorded) a layer records by default, in bytes: above it the
/// layer checkpoints every [`AUTO_CHECKPOINT_EVERY`] steps. Writing and reading back a tape this size
/// costs more memory traffic than recomputing the segments (measured at N = 256, batch 8, 57 MB of
/// tape: 8-10 % faster on one core, the peak memory less than half); at N = 1024, batch 1 (29 MB) the
/// full tape is 6 % faster.
pub const AUTO_CHECKPOINT_BYTES: usize = 32 << 20;

/// The checkpoint interval a layer uses above [`AUTO_CHECKPOINT_BYTES`]: a segment's states and
/// coefficients stay in the second-level cache.
pub const AUTO_CHECKPOINT_EVERY: usize = 16;

/// Kept simulators, each with the number of batch copies it runs side by side.
/// The spikes' gradient in a backward pass: the output tensor's, from the tape, or, with a fused
/// loss, the loss's own (for a count loss one row per element that holds at every step).
enum SpikesGradient<'g, E> {
    Tape(&'g [E]),
    Loss(SpikeGradient<E>),
}

/// A fused loss: the loss, what its gradient needs, and its value's tensor on the tape.
type Fused<E> = (Loss, crate::loss::Memo<E>, Tensor<(), E, Cpu>);

/// [`SpikesGradient`] of a backward pass whose output tensor is `out`, `[batch, steps, n]`.
fn spikes_gradient<'g, E: Dtype + Real>(
    grads: &'g mut Gradients<E, Cpu>,
    out: &Tensor<(usize, usize, usize), E, Cpu>,
    fused: Option<&Fused<E>>,
    (batch, steps, n): (usize, usize, usize),
) -> Result<SpikesGradient<'g, E>, dfdx::tensor::CpuError> {
    Ok(match fused {
        None => SpikesGradient::Tape(grads.get_or_alloc_mut(out)?),
        Some((l, memo, scalar)) => {
            grads.try_alloc_for(scalar)?;
            let g_loss = grads.get(scalar).as_vec()[0].to_f64();
            SpikesGradient::Loss(l.spike_gradient(memo, batch, steps, n, g_loss))
        }
    })
}

type SimulatorPool<E> = Arc<Mutex<Vec<(usize, Simulator<E>)>>>;

/// Input spikes `[batch, steps, Nin]` kept outside dfdx for [`DynapSimLayer::forward_input`]: the
/// values and their packed layout are made once and shared by every pass that uses them.
#[derive(Debug)]
pub struct SpikeInput<E> {
    data: Arc<Vec<E>>,
    batch: usize,
    steps: usize,
    channels: usize,
    packed: Mutex<Option<Packed<E>>>,
}

/// A [`SpikeInput`] laid out for one packing: dense, and as events.
type Packed<E> = (Pack, Arc<Vec<E>>, Arc<SpikeEvents<E>>);

/// The input of one run, already packed: dense (what the `chip` kernels read), and as events (what the
/// `rockpool` kernels read) when the caller holds them.
struct LayerInput<E> {
    dense: Arc<Vec<E>>,
    events: Option<Arc<SpikeEvents<E>>>,
}

impl<E: Dtype + Real> SpikeInput<E> {
    /// Spike counts `[batch, steps, channels]`, row-major; the length must be their product.
    pub fn new(
        data: Vec<E>,
        batch: usize,
        steps: usize,
        channels: usize,
    ) -> Result<SpikeInput<E>, Error> {
        if batch
            .checked_mul(steps)
            .and_then(|v| v.checked_mul(channels))
            != Some(data.len())
        {
            return Err(dynap_model::Error::InputShape {
                batch,
                steps,
                channels,
                found_len: data.len(),
            }
            .into());
        }
        Ok(SpikeInput {
            data: Arc::new(data),
            batch,
            steps,
            channels,
            packed: Mutex::new(None),
        })
    }

    /// The shape `(batch, steps, channels)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.batch, self.steps, self.channels)
    }

    /// The values laid out for `pack`, dense and as events, made on first use and kept. Errors when a
    /// value is not finite (naming the first one, in the packed layout's coordinates).
    fn packed(&self, pack: Pack) -> Result<LayerInput<E>, Error> {
        let mut cache = self.packed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, d, ev)) = &*cache
            && *p == pack
        {
            return Ok(LayerInput {
                dense: Arc::clone(d),
                events: Some(Arc::clone(ev)),
            });
        }
        let d = if pack.copies == 1 {
            Arc::clone(&self.data)
        } else {
            Arc::new(swap_outer(
                &self.data,
                pack.copies,
                self.steps,
                self.channels,
            ))
        };
        let ev = Arc::new(SpikeEvents::from_dense(
            &d,
            self.batch / pack.copies,
            self.steps,
            self.channels * pack.copies,
        )?);
        *cache = Some((pack, Arc::clone(&d), Arc::clone(&ev)));
        Ok(LayerInput {
            dense: d,
            events: Some(ev),
        })
    }
}

/// The batch copies of a small network run side by side as one simulated element (see
/// `DynapSimLayer::forward`): `copies` copies, block-diagonal weights, per-neuron parameters repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pack {
    copies: usize,
}

impl Pack {
    /// Packs the whole batch into one element when a vector of 16 lanes (AVX-512) holds all its copies.
    fn choose(n: usize, batch: usize, allowed: bool) -> Pack {
        if allowed && batch > 1 && n > 0 && batch * n <= 16 {
            Pack { copies: batch }
        } else {
            Pack { copies: 1 }
        }
    }

    fn network(&self, net: &Network) -> Network {
        let c = self.copies;
        if c == 1 {
            return net.clone();
        }
        let n = net.neurons();
        let mut out = net.clone();
        for p in Param::ALL {
            let v = net.params.get(p).to_vec();
            *out.params.get_mut(p) = (0..c).flat_map(|_| v.iter().copied()).collect();
        }
        out.w_in = net.w_in.as_ref().map(|m| self.block(m));
        out.w_rec = self.block(&net.w_rec);
        debug_assert_eq!(out.neurons(), c * n);
        out
    }

    /// A shared weight matrix for the copies: the block-diagonal matrix of `copies` copies of `m`.
    fn block(&self, m: &Matrix) -> Matrix {
        let c = self.copies;
        if c == 1 {
            return m.clone();
        }
        let (r, k) = (m.rows(), m.cols());
        let mut big = Matrix::zeros(c * r, c * k);
        for b in 0..c {
            for i in 0..r {
                big.as_mut_slice()[(b * r + i) * c * k + b * k..(b * r + i) * c * k + (b + 1) * k]
                    .copy_from_slice(m.row(i));
            }
        }
        big
    }

    /// `[batch, steps, k]` -> `[batch / copies, steps, copies * k]` (packing only ever happens with
    /// `copies == batch`).
    fn input<E: Copy>(&self, data: Vec<E>, steps: usize, k: usize) -> Vec<E> {
        match self.copies {
            1 => data,
            c => swap_outer(&data, c, steps, k),
        }
    }

    /// `[batch / copies, steps, copies * k]` -> `[batch, steps, k]`.
    fn output<E: Copy>(&self, data: Vec<E>, steps: usize, k: usize) -> Vec<E> {
        match self.copies {
            1 => data,
            c => swap_outer(&data, steps, c, k),
        }
    }

    /// The gradient of a shared `[rows, cols]` matrix: the sum of the diagonal blocks.
    fn fold_matrix<'m>(
        &self,
        m: &'m Matrix,
        rows: usize,
        cols: usize,
    ) -> std::borrow::Cow<'m, [f64]> {
        let c = self.copies;
        if c == 1 {
            // One copy: the matrix itself (a full board's is 128 MiB, not worth a second one).
            return std::borrow::Cow::Borrowed(m.as_slice());
        }
        let mut out = vec![0.0; rows * cols];
        for b in 0..c {
            for i in 0..rows {
                for j in 0..cols {
                    out[i * cols + j] += m.get(b * rows + i, b * cols + j);
                }
            }
        }
        std::borrow::Cow::Owned(out)
    }

    /// The gradient of a shared per-neuron vector: the sum over copies.
    fn fold_vector(&self, v: &[f64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        for (k, &x) in v.iter().enumerate() {
            out[k % n] += x;
        }
        out
    }
}

/// A spike raster `[batch, steps, channels]` on dfdx's tape `T`.
pub type Raster<E, T> = Tensor<(usize, usize, usize), E, Cpu, T>;

/// `[a, b, k]` -> `[b, a, k]`: swaps the two outer axes of a row-major array of `k`-value rows.
fn swap_outer<E: Copy>(data: &[E], a: usize, b: usize, k: usize) -> Vec<E> {
    // The rows of a packed small network are a few values each: copied as fixed-size arrays they are a
    // few moves, where a copy of a run-time length is a call into `memcpy` per row (1000s per
    // training step).
    match k {
        1 => swap_outer_rows::<E, 1>(data, a, b),
        2 => swap_outer_rows::<E, 2>(data, a, b),
        3 => swap_outer_rows::<E, 3>(data, a, b),
        4 => swap_outer_rows::<E, 4>(data, a, b),
        _ => {
            let mut out = Vec::with_capacity(data.len());
            for j in 0..b {
                for i in 0..a {
                    out.extend_from_slice(&data[(i * b + j) * k..(i * b + j + 1) * k]);
                }
            }
            out
        }
    }
}

/// [`swap_outer`] for rows of `K` values.
fn swap_outer_rows<E: Copy, const K: usize>(data: &[E], a: usize, b: usize) -> Vec<E> {
    let (rows, _) = data.as_chunks::<K>();
    let mut out: Vec<[E; K]> = Vec::with_capacity(rows.len());
    for j in 0..b {
        out.extend((0..a).map(|i| rows[i * b + j]));
    }
    out.into_flattened()
}

/// The tensors the backward closure reads or writes gradients for (clones share their data).
struct Ghosts<E: Dtype> {
    out: Tensor<(usize, usize, usize), E, Cpu>,
    input: Option<Tensor<(usize, usize, usize), E, Cpu>>,
    w_in: Tensor<(usize, usize), E, Cpu>,
    w_rec: Tensor<(usize, usize), E, Cpu>,
    log_currents: Tensor<(usize, usize), E, Cpu>,
}

/// A tensor's values; empty for a tensor with no element (where dfdx's `as_vec` panics).
/// A tensor's values in logical (row-major) order. A contiguous tensor (every tensor this crate makes,
/// and most a user passes) is one copy of its memory; others are made contiguous first (dfdx's own
/// element-by-element iteration costs nanoseconds per value, milliseconds per raster).
pub(crate) fn values<S: dfdx::shapes::Shape, E: Dtype>(t: &Tensor<S, E, Cpu>) -> Vec<E> {
    let len = t.shape().num_elements();
    if len == 0 {
        return Vec::new();
    }
    let contiguous = t.clone().contiguous();
    let mut out = vec![E::default(); len];
    contiguous.copy_into(&mut out);
    out
}

fn add_into<E: Real>(dst: &mut [E], src: &[f64]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = *d + <E as Real>::from_f64(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adam, Loss, loss_on_tape};
    use dfdx::tensor::{OwnedTape, Trace};
    use dfdx::tensor_ops::Backward;

    fn task(n_in: usize, steps: usize) -> (Network, Vec<f64>, Loss) {
        let mut net = Network::with_defaults(2);
        net.w_in = Matrix::from_vec(
            n_in,
            2,
            (0..n_in * 2)
                .map(|k| ((k * 37) % 11) as f64 / 11.0 * 16.0 - 2.0)
                .collect(),
        );
        net.w_rec = Matrix::from_vec(2, 2, vec![0.5, -0.5, -0.5, 0.5]).unwrap();
        let input = (0..2 * steps * n_in)
            .map(|k| f64::from(u8::from((k * 2654435761) % 13 == 0)))
            .collect();
        (
            net,
            input,
            Loss::CountMse {
                target: vec![30.0, 5.0],
            },
        )
    }

    #[test]
    fn the_tape_gives_the_fused_gradients_and_adam_lowers_the_loss() {
        let dev = Cpu::default();
        let (n_in, steps) = (20, 200);
        let (net, input, loss) = task(n_in, steps);
        let training = CurrentTraining {
            currents: vec![Param::ItauMem, Param::IgainSyn],
            sharing: Sharing::PerNeuron,
        };
        let layer = DynapSimLayer::<f64>::new(net.clone(), training)
            .unwrap()
            .with_threads(1);
        let mut params = layer.init_params(&dev);
        let x: Tensor<(usize, usize, usize), f64, Cpu> =
            dev.tensor_from_vec(input.clone(), (2, steps, n_in));
        let value = |params: &LayerParams<f64>| {
            let out = layer.forward(params, x.clone()).unwrap();
            loss_on_tape(out, &loss).unwrap().as_vec()[0]
        };
        // One backward through the tape against the model crate directly.
        let out = layer.forward(&params, x.leaky_trace()).unwrap();
        let grads = loss_on_tape(out, &loss).unwrap().backward();
        // The layer's network: trained currents pass through exp(ln I), which may move their last bit.
        let layer_net = layer.network(&params);
        let sim = Simulator::<f64>::new(&layer_net).unwrap();
        let xi = Input::Spikes {
            data: &input,
            batch: 2,
            steps,
        };
        let (trace, tape) = sim.run_taped(xi, None, &RunOptions::default(), 1).unwrap();
        let (_, g_spikes) = loss.value_and_gradient(&trace.spikes, 2, steps, 2).unwrap();
        let direct = sim
            .gradient(
                &tape,
                xi,
                &OutputGradients {
                    spikes: Some(&g_spikes),
                    ..Default::default()
                },
                &GradientOptions::default(),
            )
            .unwrap();
        assert_eq!(grads.get(&params.w_rec).as_vec(), direct.w_rec.as_slice());
        assert_eq!(
            grads.get(&params.w_in).as_vec(),
            direct.w_in.as_ref().unwrap().as_slice()
        );
        let g_log = grads.get(&params.log_currents).as_vec();
        let itau = direct.current(Param::ItauMem).unwrap();
        assert!(
            (g_log[1] - itau[1] * layer_net.params.i_tau_mem[1]).abs()
                <= 1e-12 * g_log[1].abs().max(1e-300)
        );
        // A few Adam steps lower the loss.
        let before = value(&params);
        assert!(
            trace.spikes.iter().sum::<f64>() > 20.0,
            "the task network should spike: {}",
            trace.spikes.iter().sum::<f64>()
        );
        let mut adam = Adam::new(1e-2);
        for _ in 0..30 {
            let out = layer.forward(&params, x.leaky_trace()).unwrap();
            let grads = loss_on_tape(out, &loss).unwrap().backward();
            adam.step(&mut params, &grads);
        }
        let after = value(&params);
        assert!(after < before, "loss {before} -> {after}");
        assert_eq!(adam.steps(), 30);
        // The trained currents stay positive (log space) and reach the network.
        let trained = layer.network(&params);
        assert!(trained.params.i_tau_mem.iter().all(|&v| v > 0.0));
        assert_ne!(trained.params.i_tau_mem, net.params.i_tau_mem);
    }

    #[test]
    fn a_chip_layer_gives_the_chip_reverse_pass_and_trains_currents() {
        let dev = Cpu::default();
        let (n_in, steps) = (20, 200);
        let (mut net, input, loss) = task(n_in, steps);
        net.variant = Variant::Chip;
        // Mutual inhibition: negative weights drive GABA synapses in this variant.
        net.w_rec = Matrix::from_vec(2, 2, vec![0.5, -1.5, -1.5, 0.5]).unwrap();
        let training = CurrentTraining {
            currents: vec![Param::Idc, Param::ItauMem],
            sharing: Sharing::PerNeuron,
        };
        let layer = DynapSimLayer::<f64>::new(net.clone(), training)
            .unwrap()
            .with_threads(1);
        let mut params = layer.init_params(&dev);
        let x: Tensor<(usize, usize, usize), f64, Cpu> =
            dev.tensor_from_vec(input.clone(), (2, steps, n_in));
        let out = layer.forward(&params, x.leaky_trace()).unwrap();
        let grads = loss_on_tape(out, &loss).unwrap().backward();
        let layer_net = layer.network(&params);
        let sim = ChipSimulator::<f64>::new(&layer_net).unwrap();
        let xi = Input::Spikes {
            data: &input,
            batch: 2,
            steps,
        };
        let (trace, tape) = sim.run_taped(xi, None, &RunOptions::default()).unwrap();
        assert!(trace.spikes.iter().sum::<f64>() > 10.0);
        let (_, g_spikes) = loss.value_and_gradient(&trace.spikes, 2, steps, 2).unwrap();
        let direct = sim
            .gradient(
                &tape,
                xi,
                &ChipOutputGradients {
                    spikes: Some(&g_spikes),
                    ..Default::default()
                },
                &GradientOptions {
                    threads: 1,
                    input: false,
                    currents: true,
                },
            )
            .unwrap();
        assert_eq!(grads.get(&params.w_rec).as_vec(), direct.w_rec.as_slice());
        assert_eq!(
            grads.get(&params.w_in).as_vec(),
            direct.w_in.as_ref().unwrap().as_slice()
        );
        let g_log = grads.get(&params.log_currents).as_vec();
        assert_eq!(g_log[1], direct.i_dc[1] * layer_net.params.i_dc[1]);
        let itau = direct.current(Param::ItauMem).unwrap();
        assert_eq!(g_log[2 + 1], itau[1] * layer_net.params.i_tau_mem[1]);
        // Adam lowers the loss.
        let value = |params: &LayerParams<f64>| {
            let out = layer.forward(params, x.clone()).unwrap();
            loss_on_tape(out, &loss).unwrap().as_vec()[0]
        };
        let before = value(&params);
        let mut adam = Adam::new(1e-2);
        for _ in 0..30 {
            let out = layer.forward(&params, x.leaky_trace()).unwrap();
            let grads = loss_on_tape(out, &loss).unwrap().backward();
            adam.step(&mut params, &grads);
        }
        assert!(value(&params) < before);
    }

    #[test]
    fn packing_small_batches_changes_nothing_but_speed() {
        let dev = Cpu::default();
        let (n_in, steps) = (20, 150);
        let (net, input, loss) = task(n_in, steps);
        let training = CurrentTraining {
            currents: vec![Param::ItauMem, Param::Idc],
            sharing: Sharing::PerNeuron,
        };
        let x: Tensor<(usize, usize, usize), f64, Cpu> =
            dev.tensor_from_vec(input, (2, steps, n_in));
        let run = |layer: DynapSimLayer<f64>| {
            let layer = layer.with_input_gradient();
            let params = layer.init_params(&dev);
            let out = layer.forward(&params, x.leaky_trace()).unwrap();
            let spikes = out.as_vec();
            let g = loss_on_tape(out, &loss).unwrap().backward();
            let get = |t: &Tensor<(usize, usize), f64, Cpu>| g.get(t).as_vec();
            (
                spikes,
                get(&params.w_in),
                get(&params.w_rec),
                get(&params.log_currents),
                g.get(&x).as_vec(),
            )
        };
        let packed = run(DynapSimLayer::<f64>::new(net.clone(), training.clone()).unwrap());
        let plain = run(DynapSimLayer::<f64>::new(net, training)
            .unwrap()
            .without_packing());
        assert_eq!(packed.0, plain.0, "spikes");
        assert!(packed.0.iter().sum::<f64>() > 5.0);
        for (k, (a, b)) in [
            (&packed.1, &plain.1),
            (&packed.2, &plain.2),
            (&packed.3, &plain.3),
            (&packed.4, &plain.4),
        ]
        .into_iter()
        .enumerate()
        {
            let max = b.iter().fold(0f64, |m, v| m.max(v.abs()));
            assert!(max > 0.0, "gradient {k} is all zero");
            for (x, y) in a.iter().zip(b.iter()) {
                assert!(
                    (x - y).abs() <= 1e-12 * max,
                    "gradient {k}: packed {x:e}, unpacked {y:e}"
                );
            }
        }
    }

    #[test]
    fn a_held_input_gives_the_same_bits_as_a_tensor_input() {
        let dev = Cpu::default();
        let (n_in, steps) = (20, 150);
        let (net, input, loss) = task(n_in, steps);
        let training = CurrentTraining {
            currents: vec![Param::ItauMem],
            sharing: Sharing::PerNeuron,
        };
        let held = SpikeInput::new(input.clone(), 2, steps, n_in).unwrap();
        assert_eq!(held.shape(), (2, steps, n_in));
        let x: Tensor<(usize, usize, usize), f64, Cpu> =
            dev.tensor_from_vec(input.clone(), (2, steps, n_in));
        for packing in [true, false] {
            let mut layer = DynapSimLayer::<f64>::new(net.clone(), training.clone()).unwrap();
            if !packing {
                layer = layer.without_packing();
            }
            let params = layer.init_params(&dev);
            let grads = |out: Raster<f64, OwnedTape<f64, Cpu>>| {
                let spikes = out.as_vec();
                let g = loss_on_tape(out, &loss).unwrap().backward();
                let get = |t: &Tensor<(usize, usize), f64, Cpu>| g.get(t).as_vec();
                (
                    spikes,
                    get(&params.w_in),
                    get(&params.w_rec),
                    get(&params.log_currents),
                )
            };
            let from_tensor = grads(layer.forward(&params, x.leaky_trace()).unwrap());
            // Twice: the second pass uses the kept packed layout.
            for _ in 0..2 {
                let out = layer.forward_input(&params, &held, OwnedTape::default());
                assert_eq!(grads(out.unwrap()), from_tensor, "packing {packing}");
            }
            assert!(from_tensor.0.iter().sum::<f64>() > 5.0);
            assert!(from_tensor.1.iter().any(|&v| v != 0.0));
        }
        assert!(SpikeInput::new(input, 2, steps, n_in + 1).is_err());
        let wrong = SpikeInput::new(vec![0.0; 2 * steps * (n_in + 1)], 2, steps, n_in + 1).unwrap();
        let layer = DynapSimLayer::<f64>::new(net, CurrentTraining::none()).unwrap();
        let params = layer.init_params(&dev);
        assert!(
            layer
                .forward_input(&params, &wrong, OwnedTape::default())
                .is_err()
        );
    }

    #[test]
    fn a_fused_loss_gives_the_bits_of_the_loss_on_the_tape() {
        let dev = Cpu::default();
        let (n_in, steps) = (20, 150);
        let (net, input, count) = task(n_in, steps);
        let filtered = Loss::FilteredMse {
            decay: 0.9,
            target: (0..steps * 2).map(|k| (k % 7) as f64 * 0.3).collect(),
        };
        let held = SpikeInput::new(input, 2, steps, n_in).unwrap();
        let cases = [
            (&count, CurrentTraining::none(), true, false),
            (&count, CurrentTraining::none(), false, true),
            (&filtered, CurrentTraining::none(), false, false),
            (
                &count,
                CurrentTraining {
                    currents: vec![Param::ItauMem, Param::IgainSyn],
                    sharing: Sharing::PerNeuron,
                },
                true,
                true,
            ),
        ];
        // Both variants: the `chip` one has its own fused path.
        for (variant, (loss, training, packing, twice)) in [Variant::Rockpool, Variant::Chip]
            .into_iter()
            .flat_map(|v| cases.clone().map(|c| (v, c)))
        {
            let currents = !training.currents.is_empty();
            let mut net = net.clone();
            net.variant = variant;
            let mut layer = DynapSimLayer::<f64>::new(net, training).unwrap();
            if !packing {
                layer = layer.without_packing();
            }
            let params = layer.init_params(&dev);
            // An upstream factor other than 1 (twice the loss) must reach the spikes' gradient too.
            let scale = |v: Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>| {
                if twice { v * 2.0 } else { v }
            };
            let unfused = {
                let out = layer
                    .forward_input(&params, &held, OwnedTape::default())
                    .unwrap();
                let spikes = out.as_vec();
                let value = loss_on_tape(out, loss).unwrap();
                let v = value.as_vec()[0].to_bits();
                let g = scale(value).backward();
                let get = |t: &Tensor<(usize, usize), f64, Cpu>| g.get(t).as_vec();
                (
                    v,
                    spikes,
                    get(&params.w_in),
                    get(&params.w_rec),
                    currents.then(|| get(&params.log_currents)),
                )
            };
            let fused = {
                let (value, spikes) = layer
                    .forward_input_loss(&params, &held, loss, OwnedTape::default())
                    .unwrap();
                let v = value.as_vec()[0].to_bits();
                let g = scale(value).backward();
                let get = |t: &Tensor<(usize, usize), f64, Cpu>| g.get(t).as_vec();
                (
                    v,
                    spikes.as_vec(),
                    get(&params.w_in),
                    get(&params.w_rec),
                    currents.then(|| get(&params.log_currents)),
                )
            };
            assert_eq!(
                fused, unfused,
                "{variant:?}, packing {packing}, twice {twice}"
            );
            assert!(unfused.3.iter().any(|&v| v != 0.0));
            // Without a tape: the value only.
            let (value, _) = layer
                .forward_input_loss(&params, &held, loss, NoneTape)
                .unwrap();
            assert_eq!(value.as_vec()[0].to_bits(), unfused.0);
        }
        let layer = DynapSimLayer::<f64>::new(net, CurrentTraining::none()).unwrap();
        let params = layer.init_params(&dev);
        let wrong = Loss::CountMse {
            target: vec![1.0; 3],
        };
        assert!(matches!(
            layer.forward_input_loss(&params, &held, &wrong, OwnedTape::default()),
            Err(Error::Target(_))
        ));
    }

    #[test]
    fn per_core_sharing_sums_the_gradients_of_a_core() {
        let dev = Cpu::default();
        let (n_in, steps) = (20, 120);
        let (net, input, loss) = task(n_in, steps);
        let per_core = CurrentTraining {
            currents: vec![Param::Idc],
            sharing: Sharing::PerCore {
                core_map: vec![0, 0],
            },
        };
        let per_neuron = CurrentTraining {
            currents: vec![Param::Idc],
            sharing: Sharing::PerNeuron,
        };
        let x: Tensor<(usize, usize, usize), f64, Cpu> =
            dev.tensor_from_vec(input, (2, steps, n_in));
        let grad = |training: CurrentTraining| {
            let layer = DynapSimLayer::<f64>::new(net.clone(), training).unwrap();
            let params = layer.init_params(&dev);
            let out = layer.forward(&params, x.leaky_trace()).unwrap();
            loss_on_tape(out, &loss)
                .unwrap()
                .backward()
                .get(&params.log_currents)
                .as_vec()
        };
        let (core, neurons) = (grad(per_core), grad(per_neuron));
        assert_eq!(core.len(), 1);
        assert!((core[0] - (neurons[0] + neurons[1])).abs() <= 1e-12 * core[0].abs().max(1e-300));
        let bad = CurrentTraining {
            currents: vec![Param::Idc],
            sharing: Sharing::PerCore { core_map: vec![0] },
        };
        assert!(DynapSimLayer::<f64>::new(net.clone(), bad).is_err());
        let mut no_input = net.clone();
        no_input.w_in = None;
        assert!(DynapSimLayer::<f64>::new(no_input, CurrentTraining::none()).is_err());
    }
}
