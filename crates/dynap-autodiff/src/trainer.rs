//! Training without dfdx in sight: a [`DynapSimLayer`], its trainable values and [`Adam`] behind plain
//! Rust types, for the crates above this one (`dynap-train`'s training loop, the benchmarks).
//!
//! dfdx is sealed in this crate: a caller hands in a [`Network`], input spikes ([`SpikeInput`]) and a
//! [`Loss`], and gets back numbers, networks and checkpoints. Every step is the layer's fused pass (the
//! loss evaluated on the simulator's output, the backward pass the model's fused adjoint), so the bits
//! are those of [`DynapSimLayer::forward_input_loss`] followed by [`Adam::step`]. A network described
//! as populations ([`dynap_model::Architecture`]) keeps its weights inside its blocks through training
//! ([`Trainer::with_masks`]: the other weights' gradients are zeroed before Adam).
//!
//! ```
//! use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer};
//! use dynap_model::{Matrix, Network};
//!
//! // Two neurons behind three input channels; make neuron 0 fire 4 times in 50 steps.
//! let mut net = Network::with_defaults(2);
//! net.w_in = Matrix::from_vec(3, 2, vec![20.0, 0.0, 20.0, 0.0, 0.0, 5.0]);
//! let mut trainer = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2)?;
//! let x = SpikeInput::new(vec![1.0; 50 * 3], 1, 50, 3)?;
//! let loss = Loss::CountMse { target: vec![4.0, 0.0] };
//! let first = trainer.step(&x, &loss, None)?;
//! for _ in 0..20 {
//!     trainer.step(&x, &loss, None)?;
//! }
//! assert!(trainer.step(&x, &loss, None)? <= first);
//! let trained = trainer.network(); // the nominal network with the trained weights
//! assert_eq!(trained.neurons(), 2);
//! # Ok::<(), dynap_autodiff::Error>(())
//! ```

use crate::error::Error;
use crate::layer::{CurrentTraining, DynapSimLayer, LayerParams, SpikeInput};
use crate::loss::Loss;
use crate::optimizer::Adam;
use dfdx::dtypes::Dtype;
use dfdx::shapes::HasShape;
use dfdx::tensor::{Cpu, Gradients as TapeGradients, OwnedTape, Tensor};
use dfdx::tensor_ops::Backward;
use dynap_model::{GradientMask, Masks, Network, Real, SpikeFunction};
use std::sync::Arc;

/// A network being trained: its trainable values (weights, and bias currents in log space when asked
/// for), Adam's state, and the network the forward pass simulates (the nominal one, or a mismatched
/// chip for noise injection).
#[derive(Debug)]
pub struct Trainer<E: Dtype + Real> {
    dev: Cpu,
    /// The layer on the nominal network: it defines the trained network.
    nominal: DynapSimLayer<E>,
    /// The layer on a chip instance, while the forward pass runs on one ([`Trainer::simulate_on`]).
    chip: Option<DynapSimLayer<E>>,
    params: LayerParams<E>,
    adam: Adam,
    threads: usize,
    /// How the layers differentiate a spike.
    spike: SpikeFunction,
    /// The weights allowed to be non-zero ([`Trainer::with_masks`]); `None`: all of them.
    masks: Option<Masks>,
    /// `masks.w_rec` as the reverse pass reads it.
    grad_mask: Option<Arc<GradientMask>>,
    /// Which trained current values move (`[currents, groups]`), if not all.
    current_flags: Option<Vec<bool>>,
    /// `[ln lo, ln hi]` of each trained current, kept after every step ([`Trainer::with_current_bounds`]).
    current_bounds: Option<Vec<(f64, f64)>>,
}

/// Multiplicative noise on the weights for one step (dynamic mismatch): the forward pass runs with
/// `w * factor` and the gradient reaches `w` as `factor * d loss / d w'` (the chain rule).
#[derive(Clone, Debug, PartialEq)]
pub struct WeightFactors {
    /// One factor per entry of `w_in` `[Nin, N]`, row-major.
    pub w_in: Vec<f64>,
    /// One factor per entry of `w_rec` `[N, N]`, row-major.
    pub w_rec: Vec<f64>,
}

/// Everything a training step depends on besides its input: the trainable values and Adam's state.
/// Restoring it ([`Trainer::restore`]) continues a training bit for bit.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// `w_in` `[Nin, N]`, row-major, as `f64` (exact for `f32` values).
    pub w_in: Vec<f64>,
    /// `w_rec` `[N, N]`, row-major.
    pub w_rec: Vec<f64>,
    /// `ln(I / 1 A)` of the trained currents, `[currents, groups]`, row-major.
    pub log_currents: Vec<f64>,
    /// Adam's step count.
    pub adam_steps: u64,
    /// Adam's first moments, one vector per trainable tensor.
    pub adam_m: Vec<Vec<f64>>,
    /// Adam's second moments.
    pub adam_v: Vec<Vec<f64>>,
}

/// The gradients of one value-and-gradient pass, read on demand.
pub struct ParamGradients<E: Dtype + Real> {
    grads: TapeGradients<E, Cpu>,
    params: LayerParams<E>,
}

impl<E: Dtype + Real> std::fmt::Debug for ParamGradients<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamGradients").finish_non_exhaustive()
    }
}

/// Entries of a trainable tensor (dfdx cannot read an empty tensor's values: no current trains).
fn len<E: Dtype>(t: &Tensor<(usize, usize), E, Cpu>) -> usize {
    let (r, c) = *t.shape();
    r * c
}

fn to_f64<E: Dtype + Real>(t: &Tensor<(usize, usize), E, Cpu>) -> Vec<f64> {
    if len(t) == 0 {
        return Vec::new();
    }
    t.as_vec().into_iter().map(Real::to_f64).collect()
}

fn to_e<E: Dtype + Real>(v: &[f64]) -> Vec<E> {
    v.iter().map(|&x| <E as Real>::from_f64(x)).collect()
}

impl<E: Dtype + Real> ParamGradients<E> {
    /// d loss / d w_in `[Nin, N]`, row-major.
    pub fn w_in(&self) -> Vec<f64> {
        self.of(&self.params.w_in)
    }

    /// d loss / d w_rec `[N, N]`, row-major.
    pub fn w_rec(&self) -> Vec<f64> {
        self.of(&self.params.w_rec)
    }

    /// d loss / d ln I of the trained currents, `[currents, groups]`, row-major.
    pub fn log_currents(&self) -> Vec<f64> {
        self.of(&self.params.log_currents)
    }

    fn of(&self, t: &Tensor<(usize, usize), E, Cpu>) -> Vec<f64> {
        if len(t) == 0 {
            return Vec::new();
        }
        self.grads
            .get(t)
            .as_vec()
            .into_iter()
            .map(Real::to_f64)
            .collect()
    }
}

impl<E: Dtype + Real> Trainer<E> {
    /// A trainer starting from `net` (its weights and currents are the initial values; it needs input
    /// weights), training the weights and the currents `training` names, with Adam at `learning_rate`.
    pub fn new(
        net: Network,
        training: CurrentTraining,
        learning_rate: f64,
    ) -> Result<Trainer<E>, Error> {
        let dev = Cpu::default();
        let nominal = DynapSimLayer::<E>::new(net, training)?;
        let params = nominal.init_params(&dev);
        Ok(Trainer {
            dev,
            nominal,
            chip: None,
            params,
            adam: Adam::new(learning_rate),
            threads: 0,
            spike: SpikeFunction::Rockpool,
            masks: None,
            grad_mask: None,
            current_flags: None,
            current_bounds: None,
        })
    }

    /// Holds the weights outside `masks` (a network architecture's blocks) at exactly 0 through
    /// training: their gradients are zeroed before Adam, so their moments stay 0 and their updates are
    /// exactly 0. Refused when the masks are not of the weights' sizes, or when a weight outside them
    /// (or Adam's moment of one) is not 0. With every flag set, the steps are bit for bit those of a
    /// trainer without masks.
    pub fn with_masks(mut self, masks: Masks) -> Result<Trainer<E>, Error> {
        for (matrix, t, flags) in [
            ("w_in", &self.params.w_in, &masks.w_in),
            ("w_rec", &self.params.w_rec, &masks.w_rec),
        ] {
            if flags.len() != len(t) {
                return Err(Error::Masks {
                    matrix,
                    expected: len(t),
                    found: flags.len(),
                });
            }
        }
        let (_, m, v) = self.adam.state();
        check_masked(
            &masks,
            self.neurons(),
            &to_f64(&self.params.w_in),
            &to_f64(&self.params.w_rec),
            m,
            v,
        )?;
        // The reverse pass computes the recurrent gradient inside the mask only.
        let mask = Arc::new(GradientMask::new(self.neurons(), &masks.w_rec)?);
        self.nominal = self.nominal.with_gradient_mask(Some(Arc::clone(&mask)))?;
        self.chip = self
            .chip
            .map(|l| l.with_gradient_mask(Some(Arc::clone(&mask))))
            .transpose()?;
        self.grad_mask = Some(mask);
        self.masks = Some(masks);
        Ok(self)
    }

    /// Holds some trained current values at their initial value: `flags[k * groups + g]` says whether
    /// value `g` (a neuron or a core, by the [`CurrentTraining`]'s sharing) of the `k`-th trained
    /// current moves. Their gradients are zeroed before Adam, so their moments stay 0 and their
    /// updates are exactly 0, and the network keeps their neurons' own values, bit for bit (a
    /// population of the chip whose biases stay as configured, beside one whose biases train).
    /// Refused when `flags` is not of the trained values' size.
    pub fn with_current_flags(mut self, flags: Vec<bool>) -> Result<Trainer<E>, Error> {
        let expected = len(&self.params.log_currents);
        if flags.len() != expected {
            return Err(Error::Masks {
                matrix: "log_currents",
                expected,
                found: flags.len(),
            });
        }
        self.nominal = self.nominal.with_current_flags(Some(flags.clone()));
        self.chip = self.chip.map(|l| l.with_current_flags(Some(flags.clone())));
        self.current_flags = Some(flags);
        Ok(self)
    }

    /// The masks the weights are held to, if any ([`Trainer::with_masks`]).
    pub fn masks(&self) -> Option<&Masks> {
        self.masks.as_ref()
    }

    fn neurons(&self) -> usize {
        self.params.w_rec.shape().0
    }

    /// Worker threads for the batch (0: one per core). Results do not depend on it.
    pub fn with_threads(mut self, threads: usize) -> Trainer<E> {
        self.threads = threads;
        self.nominal = self.nominal.with_threads(threads);
        self.chip = self.chip.map(|l| l.with_threads(threads));
        self
    }

    /// The spike function the layers train with (`SpikeFunction::FastSigmoid` trains hidden layers;
    /// the default is Rockpool's). The forward pass's spikes do not change with it.
    pub fn with_spike_function(mut self, spike: SpikeFunction) -> Trainer<E> {
        self.spike = spike;
        self.nominal = self.nominal.with_spike_function(spike);
        self.chip = self.chip.map(|l| l.with_spike_function(spike));
        self
    }

    /// Adam's learning rate from the next step on (a schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.adam.lr = lr;
    }

    /// Adam's learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.adam.lr
    }

    /// Runs the forward pass on `chip`'s fixed parameters (a mismatched instance of the network: its
    /// currents and layout values; its weights are ignored, the trained ones are used), or on the
    /// nominal network with `None`. A trained current keeps the chip's mismatch of it: the trained
    /// value times `chip / nominal` per neuron. The gradients still reach the trainable values.
    pub fn simulate_on(&mut self, chip: Option<&Network>) -> Result<(), Error> {
        self.chip = match chip {
            None => None,
            Some(net) => {
                let base = self.nominal.base();
                if net.neurons() != base.neurons() {
                    return Err(Error::ChipSize {
                        neurons: base.neurons(),
                        found: net.neurons(),
                    });
                }
                let currents = &self.nominal.training().currents;
                let factors: Vec<Vec<f64>> = currents
                    .iter()
                    .map(|&p| {
                        net.params
                            .get(p)
                            .iter()
                            .zip(base.params.get(p))
                            .map(|(c, b)| c / b)
                            .collect()
                    })
                    .collect();
                Some(
                    DynapSimLayer::<E>::new(net.clone(), self.nominal.training().clone())?
                        .with_threads(self.threads)
                        .with_spike_function(self.spike)
                        .with_current_flags(self.current_flags.clone())
                        .with_current_factors((!factors.is_empty()).then_some(factors))
                        .with_gradient_mask(self.grad_mask.clone())?,
                )
            }
        };
        Ok(())
    }

    fn layer(&self) -> &DynapSimLayer<E> {
        self.chip.as_ref().unwrap_or(&self.nominal)
    }

    /// The trainable values with `factors` applied to the weights (`w' = E(f64(w) factor)`).
    fn noisy(&self, factors: &WeightFactors) -> Result<LayerParams<E>, Error> {
        let mut p = self.params.clone();
        for (t, f, which) in [
            (&mut p.w_in, &factors.w_in, "w_in"),
            (&mut p.w_rec, &factors.w_rec, "w_rec"),
        ] {
            let w = t.as_vec();
            if w.len() != f.len() {
                return Err(Error::Factors {
                    matrix: which,
                    expected: w.len(),
                    found: f.len(),
                });
            }
            let noisy: Vec<E> = w
                .iter()
                .zip(f)
                .map(|(&w, &f)| <E as Real>::from_f64(w.to_f64() * f))
                .collect();
            t.copy_from(&noisy);
        }
        Ok(p)
    }

    /// The loss on `input` and its gradients with respect to the trainable values (nothing changes).
    pub fn value_and_gradient(
        &self,
        input: &SpikeInput<E>,
        loss: &Loss,
    ) -> Result<(f64, ParamGradients<E>), Error> {
        let (value, _) =
            self.layer()
                .forward_input_loss(&self.params, input, loss, OwnedTape::default())?;
        let loss_value = value.as_vec()[0].to_f64();
        Ok((
            loss_value,
            ParamGradients {
                grads: value.backward(),
                params: self.params.clone(),
            },
        ))
    }

    /// One Adam step on the loss of `input`, the forward pass with the weights scaled by `factors`
    /// when given (dynamic mismatch); returns the loss before the step.
    pub fn step(
        &mut self,
        input: &SpikeInput<E>,
        loss: &Loss,
        factors: Option<&WeightFactors>,
    ) -> Result<f64, Error> {
        // The noisy copies share the clean tensors' identities, so their gradients are the clean
        // tensors' entries (scaled below by the chain rule's factors).
        let used = match factors {
            Some(f) => self.noisy(f)?,
            None => self.params.clone(),
        };
        let (value, _) =
            self.layer()
                .forward_input_loss(&used, input, loss, OwnedTape::default())?;
        let loss_value = value.as_vec()[0].to_f64();
        let mut grads = value.backward();
        if let Some(f) = factors {
            for (t, f) in [(&used.w_in, &f.w_in), (&used.w_rec, &f.w_rec)] {
                // Allocation fails only when memory is exhausted.
                let g = grads.get_or_alloc_mut(t).expect("allocates");
                for (g, f) in g.iter_mut().zip(f) {
                    *g *= <E as Real>::from_f64(*f);
                }
            }
        }
        if let Some(m) = &self.masks {
            // A zero gradient keeps Adam's moments at 0 and so its update at exactly 0: a weight that
            // starts at 0 stays 0 (with_masks and restore refuse any other start).
            for (t, flags) in [(&used.w_in, &m.w_in), (&used.w_rec, &m.w_rec)] {
                if len(t) == 0 {
                    continue;
                }
                let g = grads.get_or_alloc_mut(t).expect("allocates");
                for (g, &allowed) in g.iter_mut().zip(flags) {
                    if !allowed {
                        *g = <E as Real>::from_f64(0.0);
                    }
                }
            }
        }
        if let Some(flags) = &self.current_flags
            && len(&used.log_currents) > 0
        {
            let g = grads
                .get_or_alloc_mut(&used.log_currents)
                .expect("allocates");
            for (g, &moves) in g.iter_mut().zip(flags) {
                if !moves {
                    *g = <E as Real>::from_f64(0.0);
                }
            }
        }
        self.adam.step(&mut self.params, &grads);
        self.bound_currents();
        Ok(loss_value)
    }

    /// Keeps every moving trained current within `[lo, hi]` (amperes, one pair per trained current,
    /// in `training.currents` order): the values start there and every step ends there (a projection
    /// in log space), so a current trains only within what the chip's bias generator makes. Refused
    /// for another number of pairs, or a pair that is not `0 < lo <= hi`.
    pub fn with_current_bounds(mut self, bounds: &[(f64, f64)]) -> Result<Trainer<E>, Error> {
        let currents = self.nominal.training().currents.len();
        if bounds.len() != currents {
            return Err(Error::State {
                what: "current bounds",
                expected: currents,
                found: bounds.len(),
            });
        }
        if let Some(k) = bounds
            .iter()
            .position(|&(lo, hi)| !(lo > 0.0 && lo <= hi && hi.is_finite()))
        {
            return Err(Error::State {
                what: "current bounds (0 < lo <= hi)",
                expected: currents,
                found: k,
            });
        }
        self.current_bounds = Some(bounds.iter().map(|&(lo, hi)| (lo.ln(), hi.ln())).collect());
        self.bound_currents();
        Ok(self)
    }

    fn bound_currents(&mut self) {
        let Some(bounds) = &self.current_bounds else {
            return;
        };
        let t = &mut self.params.log_currents;
        if len(t) == 0 {
            return;
        }
        let groups = len(t) / bounds.len().max(1);
        let mut v = t.as_vec();
        let mut changed = false;
        for (at, x) in v.iter_mut().enumerate() {
            if self.current_flags.as_ref().is_some_and(|f| !f[at]) {
                continue;
            }
            let (lo, hi) = bounds[at / groups.max(1)];
            let y = x.to_f64().clamp(lo, hi);
            if y != x.to_f64() {
                *x = <E as Real>::from_f64(y);
                changed = true;
            }
        }
        if changed {
            t.copy_from(&v);
        }
    }

    /// The weights `(w_in [Nin, N], w_rec [N, N])`, row-major, as the network holds them.
    pub fn weights(&self) -> (Vec<f64>, Vec<f64>) {
        (to_f64(&self.params.w_in), to_f64(&self.params.w_rec))
    }

    /// Replaces the weights (row-major, the network's sizes), keeping Adam's state: the next step
    /// differentiates at these weights. A straight-through estimate of a quantized network sets the
    /// quantized weights, steps, and sets the float weights moved by the step's change. Refused
    /// (nothing changes) for other sizes, or a non-zero weight the masks forbid.
    pub fn set_weights(&mut self, w_in: &[f64], w_rec: &[f64]) -> Result<(), Error> {
        for (what, expected, found) in [
            ("w_in", len(&self.params.w_in), w_in.len()),
            ("w_rec", len(&self.params.w_rec), w_rec.len()),
        ] {
            if expected != found {
                return Err(Error::State {
                    what,
                    expected,
                    found,
                });
            }
        }
        if let Some(m) = &self.masks {
            check_masked(m, self.neurons(), w_in, w_rec, &[], &[])?;
        }
        self.params.w_in.copy_from(&to_e::<E>(w_in));
        self.params.w_rec.copy_from(&to_e::<E>(w_rec));
        Ok(())
    }

    /// The network with the trained values on the nominal (mismatch-free) parameters.
    pub fn network(&self) -> Network {
        self.nominal.network(&self.params)
    }

    /// The network the forward pass simulates now (the chip instance when one is set) with the trained
    /// values.
    pub fn simulated_network(&self) -> Network {
        self.layer().network(&self.params)
    }

    /// Adam's steps so far.
    pub fn steps(&self) -> u64 {
        self.adam.steps()
    }

    /// The state to resume from (see [`TrainerState`]).
    pub fn state(&self) -> TrainerState {
        let (t, m, v) = self.adam.state();
        TrainerState {
            w_in: to_f64(&self.params.w_in),
            w_rec: to_f64(&self.params.w_rec),
            log_currents: to_f64(&self.params.log_currents),
            adam_steps: t,
            adam_m: m.to_vec(),
            adam_v: v.to_vec(),
        }
    }

    /// Continues from a saved state; refused (nothing changes) when its sizes do not fit this network.
    pub fn restore(&mut self, state: TrainerState) -> Result<(), Error> {
        let fresh = self.nominal.init_params(&self.dev);
        let sizes = [
            ("w_in", len(&fresh.w_in), state.w_in.len()),
            ("w_rec", len(&fresh.w_rec), state.w_rec.len()),
            (
                "log_currents",
                len(&fresh.log_currents),
                state.log_currents.len(),
            ),
        ];
        for (what, expected, found) in sizes {
            if expected != found {
                return Err(Error::State {
                    what,
                    expected,
                    found,
                });
            }
        }
        let moments_fit = |m: &[Vec<f64>]| {
            m.is_empty() || (m.len() == 3 && m.iter().zip(&sizes).all(|(v, s)| v.len() == s.1))
        };
        if !moments_fit(&state.adam_m) || !moments_fit(&state.adam_v) {
            return Err(Error::State {
                what: "Adam's moments",
                expected: sizes.iter().map(|s| s.1).sum(),
                found: state.adam_m.iter().map(Vec::len).sum(),
            });
        }
        if let Some(m) = &self.masks {
            check_masked(
                m,
                self.neurons(),
                &state.w_in,
                &state.w_rec,
                &state.adam_m,
                &state.adam_v,
            )?;
        }
        self.params.w_in.copy_from(&to_e::<E>(&state.w_in));
        self.params.w_rec.copy_from(&to_e::<E>(&state.w_rec));
        if !state.log_currents.is_empty() {
            self.params
                .log_currents
                .copy_from(&to_e::<E>(&state.log_currents));
        }
        self.adam
            .set_state(state.adam_steps, state.adam_m, state.adam_v);
        Ok(())
    }
}

/// Checks that the weights and Adam's moments (`[w_in, w_rec, log_currents]`, or none yet) are 0
/// wherever `masks` forbids a weight; `n` neurons. The sizes are the caller's to check.
fn check_masked(
    masks: &Masks,
    n: usize,
    w_in: &[f64],
    w_rec: &[f64],
    m: &[Vec<f64>],
    v: &[Vec<f64>],
) -> Result<(), Error> {
    fn moment(of: &[Vec<f64>], k: usize) -> &[f64] {
        of.get(k).map_or(&[], Vec::as_slice)
    }
    let checks: [(&'static str, &[f64], &[bool]); 6] = [
        ("w_in", w_in, &masks.w_in),
        ("w_rec", w_rec, &masks.w_rec),
        ("Adam's first moment of w_in", moment(m, 0), &masks.w_in),
        ("Adam's first moment of w_rec", moment(m, 1), &masks.w_rec),
        ("Adam's second moment of w_in", moment(v, 0), &masks.w_in),
        ("Adam's second moment of w_rec", moment(v, 1), &masks.w_rec),
    ];
    for (what, values, flags) in checks {
        if let Some(i) = values
            .iter()
            .zip(flags)
            .position(|(&x, &allowed)| !allowed && x != 0.0)
        {
            return Err(Error::Masked {
                what,
                pre: i / n.max(1),
                post: i % n.max(1),
                value: values[i],
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynap_model::Matrix;

    fn small() -> (Network, SpikeInput<f32>, Loss) {
        let mut net = Network::with_defaults(3);
        net.w_in = Matrix::from_vec(
            4,
            3,
            (0..12).map(|k| f64::from((k % 5) as f32) * 4.0).collect(),
        );
        net.w_rec =
            Matrix::from_vec(3, 3, vec![0.0, 0.5, -0.5, 0.2, 0.0, 0.1, 0.0, 0.3, 0.0]).unwrap();
        let x: Vec<f32> = (0..2 * 60 * 4)
            .map(|k| f32::from(u8::from(k % 7 == 0)))
            .collect();
        let x = SpikeInput::new(x, 2, 60, 4).unwrap();
        let loss = Loss::CountMse {
            target: vec![3.0, 1.0, 0.0],
        };
        (net, x, loss)
    }

    /// The trainer's step is the layer's fused pass and Adam, bit for bit.
    #[test]
    fn a_step_is_the_layers_pass_and_adam() {
        let (net, x, loss) = small();
        let mut t = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2).unwrap();
        let dev = Cpu::default();
        let layer = DynapSimLayer::<f32>::new(net, CurrentTraining::none()).unwrap();
        let mut params = layer.init_params(&dev);
        let mut adam = Adam::new(1e-2);
        for _ in 0..3 {
            let (value, _) = layer
                .forward_input_loss(&params, &x, &loss, OwnedTape::default())
                .unwrap();
            let expected = f64::from(value.as_vec()[0]);
            let grads = value.backward();
            adam.step(&mut params, &grads);
            assert_eq!(
                t.step(&x, &loss, None).unwrap().to_bits(),
                expected.to_bits()
            );
        }
        assert_eq!(t.state().w_in, to_f64(&params.w_in));
        assert_eq!(t.state().w_rec, to_f64(&params.w_rec));
    }

    /// A restored state continues bit for bit; a state of another network is refused.
    #[test]
    fn a_restored_state_continues_bit_for_bit() {
        let (net, x, loss) = small();
        let mut a = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2).unwrap();
        for _ in 0..2 {
            a.step(&x, &loss, None).unwrap();
        }
        let saved = a.state();
        let mut b = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2).unwrap();
        b.restore(saved).unwrap();
        for _ in 0..2 {
            assert_eq!(
                a.step(&x, &loss, None).unwrap().to_bits(),
                b.step(&x, &loss, None).unwrap().to_bits()
            );
        }
        assert_eq!(a.state(), b.state());
        let mut other = Trainer::<f32>::new(
            {
                let mut n = Network::with_defaults(2);
                n.w_in = Some(Matrix::zeros(4, 2));
                n
            },
            CurrentTraining::none(),
            1e-2,
        )
        .unwrap();
        let e = other.restore(a.state()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::State {
                    what: "w_in",
                    expected: 8,
                    found: 12
                }
            ),
            "{e:?}"
        );
    }

    /// Current flags: the held values stay exactly at their start, the others move; flags of another
    /// size are refused.
    #[test]
    fn held_current_values_stay_and_the_others_train() {
        let (net, x, loss) = small();
        let training = CurrentTraining {
            currents: vec![dynap_model::Param::ItauMem, dynap_model::Param::IgainMem],
            sharing: crate::Sharing::PerCore {
                core_map: vec![0, 0, 1],
            },
        };
        // Itau_mem of core 1 and Igain_mem of core 0 held.
        let flags = vec![true, false, false, true];
        let mut t = Trainer::<f32>::new(net.clone(), training.clone(), 5e-2)
            .unwrap()
            .with_current_flags(flags)
            .unwrap();
        let start = t.state().log_currents;
        for _ in 0..4 {
            t.step(&x, &loss, None).unwrap();
        }
        let end = t.state().log_currents;
        assert_eq!(end[1].to_bits(), start[1].to_bits());
        assert_eq!(end[2].to_bits(), start[2].to_bits());
        assert_ne!(end[0], start[0]);
        assert_ne!(end[3], start[3]);
        // The held currents are the network's own, bit for bit; the trained ones are one per core.
        let trained = t.network();
        let (tau, gain) = (
            trained.params.get(dynap_model::Param::ItauMem),
            trained.params.get(dynap_model::Param::IgainMem),
        );
        assert_eq!(tau[2], net.params.get(dynap_model::Param::ItauMem)[2]);
        assert_eq!(gain[0], net.params.get(dynap_model::Param::IgainMem)[0]);
        assert_eq!(gain[1], net.params.get(dynap_model::Param::IgainMem)[1]);
        assert_eq!(tau[0], tau[1]);
        assert_ne!(tau[0], net.params.get(dynap_model::Param::ItauMem)[0]);
        // On a chip instance, a trained current keeps the chip's mismatch of it; a held one is the
        // chip's own.
        let mut chip = net.clone();
        chip.params.get_mut(dynap_model::Param::ItauMem)[1] *= 1.25;
        chip.params.get_mut(dynap_model::Param::ItauMem)[2] *= 0.75;
        t.simulate_on(Some(&chip)).unwrap();
        let on_chip = t.simulated_network();
        let tau_chip = on_chip.params.get(dynap_model::Param::ItauMem);
        assert_eq!(tau_chip[0], tau[0]);
        assert!((tau_chip[1] / (1.25 * tau[1]) - 1.0).abs() < 1e-12);
        assert_eq!(tau_chip[2], chip.params.get(dynap_model::Param::ItauMem)[2]);
        t.step(&x, &loss, None).unwrap();
        // An instance of another network is refused.
        let mut other = Network::with_defaults(2);
        other.w_in = Some(Matrix::zeros(4, 2));
        assert!(matches!(
            t.simulate_on(Some(&other)),
            Err(Error::ChipSize {
                neurons: 3,
                found: 2
            })
        ));
        let e = Trainer::<f32>::new(net, training, 5e-2)
            .unwrap()
            .with_current_flags(vec![true; 3])
            .err()
            .unwrap();
        assert!(
            matches!(
                e,
                Error::Masks {
                    matrix: "log_currents",
                    expected: 4,
                    found: 3
                }
            ),
            "{e:?}"
        );
    }

    /// Masks of `small()`'s sizes: `w_in` channels 0 and 2 to neurons 0 and 1 only, `w_rec` the
    /// connections into neuron 1 only; the network's weights outside them set to 0.
    fn masked() -> (Network, Masks) {
        let (mut net, ..) = small();
        let masks = Masks {
            w_in: (0..12).map(|k| (k / 3) % 2 == 0 && k % 3 < 2).collect(),
            w_rec: (0..9).map(|k| k % 3 == 1).collect(),
        };
        let w_in = net.w_in.as_mut().unwrap().as_mut_slice();
        for (w, &allowed) in w_in.iter_mut().zip(&masks.w_in) {
            if !allowed {
                *w = 0.0;
            }
        }
        for (w, &allowed) in net.w_rec.as_mut_slice().iter_mut().zip(&masks.w_rec) {
            if !allowed {
                *w = 0.0;
            }
        }
        (net, masks)
    }

    /// After many steps the masked weights and their moments are still exactly 0, and the allowed
    /// ones moved (both matrices, both variants).
    #[test]
    fn masked_weights_stay_exactly_zero() {
        let (_, x, loss) = small();
        for variant in [dynap_model::Variant::Rockpool, dynap_model::Variant::Chip] {
            let (mut net, masks) = masked();
            net.variant = variant;
            let mut free = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 5e-2).unwrap();
            let mut t = Trainer::<f32>::new(net, CurrentTraining::none(), 5e-2)
                .unwrap()
                .with_masks(masks.clone())
                .unwrap();
            let before = t.state();
            for _ in 0..40 {
                t.step(&x, &loss, None).unwrap();
                free.step(&x, &loss, None).unwrap();
            }
            // Without the masks, the forbidden weights would have moved: the masks hold them.
            let unheld = free.state();
            for (flags, w) in [(&masks.w_in, &unheld.w_in), (&masks.w_rec, &unheld.w_rec)] {
                assert!(
                    flags
                        .iter()
                        .zip(w)
                        .any(|(&allowed, &w)| !allowed && w != 0.0),
                    "{variant:?}"
                );
            }
            let after = t.state();
            for (what, b, a, flags, m, v) in [
                (
                    "w_in",
                    &before.w_in,
                    &after.w_in,
                    &masks.w_in,
                    &after.adam_m[0],
                    &after.adam_v[0],
                ),
                (
                    "w_rec",
                    &before.w_rec,
                    &after.w_rec,
                    &masks.w_rec,
                    &after.adam_m[1],
                    &after.adam_v[1],
                ),
            ] {
                let mut moved = 0;
                for k in 0..flags.len() {
                    if flags[k] {
                        moved += usize::from(a[k] != b[k]);
                    } else {
                        assert_eq!(a[k].to_bits(), 0, "{variant:?} {what}[{k}] = {}", a[k]);
                        assert_eq!((m[k], v[k]), (0.0, 0.0), "{variant:?} {what}[{k}]");
                    }
                }
                assert!(moved > 0, "{variant:?}: no allowed entry of {what} moved");
            }
            let net = t.network();
            let trained = net.w_in.as_ref().unwrap().as_slice();
            assert!(
                trained
                    .iter()
                    .zip(&masks.w_in)
                    .all(|(&w, &a)| a || w == 0.0)
            );
        }
    }

    /// A sparse mask (a fan-in of 3 of 48 neurons plus 2 zero weights that may grow) makes the
    /// reverse pass compute the recurrent gradient inside it only: the steps are bit for bit those of
    /// the same trainer whose reverse pass computes the dense gradient (zeroed outside the mask
    /// before Adam), on 1 and 2 threads, with weight noise.
    #[test]
    fn a_sparse_mask_steps_as_the_dense_gradient_does() {
        let (n, n_in) = (48, 4);
        let mut net = Network::with_defaults(n);
        let mut flags = vec![false; n * n];
        let mut w_rec = vec![0.0; n * n];
        for j in 0..n {
            for c in 0..5 {
                let i = (j * 7 + c * 11 + 3) % n;
                flags[i * n + j] = true;
                if c < 3 {
                    w_rec[i * n + j] = 0.8 * (((i + 2 * j + c) % 5) as f64 - 2.0);
                }
            }
        }
        net.w_rec = Matrix::from_vec(n, n, w_rec).unwrap();
        net.w_in = Matrix::from_vec(
            n_in,
            n,
            (0..n_in * n)
                .map(|k| 2.0 + f64::from((k % 5) as u8))
                .collect(),
        );
        let masks = Masks {
            w_in: vec![true; n_in * n],
            w_rec: flags,
        };
        let x: Vec<f32> = (0..60 * n_in)
            .map(|k| f32::from(u8::from(k % 3 == 0)))
            .collect();
        let x = SpikeInput::new(x, 1, 60, n_in).unwrap();
        let loss = Loss::CountMse {
            target: (0..n).map(|j| (j % 4) as f64).collect(),
        };
        for threads in [1, 2] {
            let make = || {
                Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 5e-2)
                    .unwrap()
                    .with_masks(masks.clone())
                    .unwrap()
                    .with_threads(threads)
            };
            let mut sparse = make();
            assert!(sparse.grad_mask.as_ref().unwrap().is_sparse());
            let mut dense = make();
            dense.nominal = dense.nominal.clone().with_gradient_mask(None).unwrap();
            let factors = WeightFactors {
                w_in: (0..n_in * n).map(|k| 1.0 + 0.01 * (k % 7) as f64).collect(),
                w_rec: (0..n * n).map(|k| 0.95 + 0.01 * (k % 11) as f64).collect(),
            };
            for it in 0..6 {
                let noise = (it % 2 == 1).then_some(&factors);
                let a = sparse.step(&x, &loss, noise).unwrap();
                let b = dense.step(&x, &loss, noise).unwrap();
                assert_eq!(a.to_bits(), b.to_bits(), "step {it}, threads {threads}");
            }
            let (a, b) = (sparse.state(), dense.state());
            assert_eq!(a.w_rec, b.w_rec);
            assert_eq!(a.w_in, b.w_in);
            assert!(
                a.w_rec
                    .iter()
                    .zip(&net.w_rec.as_slice().to_vec())
                    .any(|(x, y)| x != y)
            );
        }
    }

    /// With every flag set, a masked trainer is bit for bit the trainer without masks.
    #[test]
    fn all_true_masks_change_nothing() {
        let (net, x, loss) = small();
        let mut plain = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2).unwrap();
        let mut all = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2)
            .unwrap()
            .with_masks(Masks::all(4, 3))
            .unwrap();
        for _ in 0..5 {
            assert_eq!(
                plain.step(&x, &loss, None).unwrap().to_bits(),
                all.step(&x, &loss, None).unwrap().to_bits()
            );
        }
        assert_eq!(plain.state(), all.state());
    }

    /// Masks of the wrong size, a weight or a restored moment outside them: refused, naming it.
    #[test]
    fn masks_that_do_not_fit_are_refused() {
        let (net, x, loss) = small();
        let t = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2).unwrap();
        let short = Masks {
            w_in: vec![true; 11],
            w_rec: vec![true; 9],
        };
        assert!(matches!(
            t.with_masks(short),
            Err(Error::Masks {
                matrix: "w_in",
                expected: 12,
                found: 11
            })
        ));
        // small()'s w_in[0][2] is 8, which masked()'s masks forbid.
        let (masked_net, mut masks) = masked();
        let e = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2)
            .unwrap()
            .with_masks(masks.clone())
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Masked {
                    what: "w_in",
                    pre: 0,
                    post: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("w_in[0][2]"), "{e}");
        // masked()'s w_rec[0][1] is 0.5: a mask without it refuses the network.
        masks.w_rec[1] = false;
        assert!(matches!(
            Trainer::<f32>::new(masked_net, CurrentTraining::none(), 1e-2)
                .unwrap()
                .with_masks(masks),
            Err(Error::Masked {
                what: "w_rec",
                pre: 0,
                post: 1,
                ..
            })
        ));
        // A state trained without masks does not restore into a masked trainer.
        let mut free = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2).unwrap();
        free.step(&x, &loss, None).unwrap();
        let (masked_net, masks) = masked();
        let mut t = Trainer::<f32>::new(masked_net, CurrentTraining::none(), 1e-2)
            .unwrap()
            .with_masks(masks)
            .unwrap();
        let mut state = free.state();
        assert!(matches!(
            t.restore(state.clone()),
            Err(Error::Masked { what: "w_in", .. })
        ));
        // Weights zeroed but moments left: still refused, by the moment.
        let fresh = t.state();
        state.w_in = fresh.w_in.clone();
        state.w_rec = fresh.w_rec.clone();
        assert!(matches!(
            t.restore(state),
            Err(Error::Masked {
                what: "Adam's first moment of w_in",
                ..
            })
        ));
        assert_eq!(t.state(), fresh, "a refused state changes nothing");
    }

    /// Weight factors: the forward pass sees `w f`, the gradient reaching `w` is `f` times the
    /// gradient at `w f` (checked against a trainer started at the noisy weights).
    #[test]
    fn weight_factors_scale_the_forward_weights_and_the_gradient() {
        let (net, x, loss) = small();
        let factors = WeightFactors {
            w_in: (0..12)
                .map(|k| 1.0 + 0.05 * f64::from(k % 3) - 0.04)
                .collect(),
            w_rec: (0..9).map(|k| 1.0 - 0.03 * f64::from(k % 4)).collect(),
        };
        let t = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2).unwrap();
        let noisy = t.noisy(&factors).unwrap();
        let mut noisy_net = net.clone();
        noisy_net.w_in = Matrix::from_vec(4, 3, to_f64(&noisy.w_in));
        noisy_net.w_rec = Matrix::from_vec(3, 3, to_f64(&noisy.w_rec)).unwrap();
        let at_noisy = Trainer::<f32>::new(noisy_net, CurrentTraining::none(), 1e-2).unwrap();
        let (v_noisy, g_noisy) = at_noisy.value_and_gradient(&x, &loss).unwrap();
        // One step with factors, from the clean weights: Adam's first step moves each weight by
        // -lr * sign(g) (bias-corrected, |m/sqrt(v)| = 1), so the step's direction is the gradient's sign.
        let mut stepped = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2).unwrap();
        let before = stepped.state();
        let v = stepped.step(&x, &loss, Some(&factors)).unwrap();
        assert_eq!(v.to_bits(), v_noisy.to_bits());
        let after = stepped.state();
        let g = g_noisy.w_rec();
        for (k, g) in g.iter().enumerate() {
            let scaled = g * factors.w_rec[k];
            let moved = after.w_rec[k] - before.w_rec[k];
            if scaled != 0.0 {
                assert_eq!(moved.signum(), -scaled.signum(), "w_rec[{k}]");
            }
        }
        let short = WeightFactors {
            w_in: vec![1.0; 3],
            w_rec: factors.w_rec.clone(),
        };
        assert!(matches!(
            t.noisy(&short),
            Err(Error::Factors { matrix: "w_in", .. })
        ));
    }
}
