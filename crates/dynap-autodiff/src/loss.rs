//! Losses on output spike rasters `[batch, steps, N]`: their value and their gradient with respect to
//! the spikes, in closed form. The dfdx layer puts the same losses on dfdx's
//! tape; these plain functions serve callers that need no tape (the golden harness, evaluation).

use dfdx::dtypes::Dtype;
use dfdx::shapes::HasShape;
use dfdx::tensor::{Cpu, Gradients, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dynap_model::Real;

/// Which loss, with its target.
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// `mean over b, n of (sum_t s[b,t,n] - target[n])^2`, `target` `[N]`.
    CountMse {
        /// Target spike count per neuron.
        target: Vec<f64>,
    },
    /// `y[b,t,n] = a y[b,t-1,n] + s[b,t,n]` with `y[b,-1,n] = 0` and `a = exp(-dt/tau)`;
    /// `mean over b, t, n of (y[b,t,n] - target[t,n])^2`, `target` `[T, N]`.
    FilteredMse {
        /// Decay factor per step, `exp(-dt/tau)`.
        decay: f64,
        /// Target trace `[T, N]`.
        target: Vec<f64>,
    },
    /// `mean over b, t, n of (s[b,t,n] - target[b,t,n])^2`, `target` `[B, T, N]` (the paper's loss, with
    /// a one-hot target held at every step).
    RasterMse {
        /// Target raster `[B, T, N]`.
        target: Vec<f64>,
    },
    /// Cross-entropy of the softmax of the output rates (spike counts / steps) against one class per
    /// batch element: `mean over b of -log softmax(rate[b])[class[b]]`.
    RateCrossEntropy {
        /// The target neuron of each batch element.
        class: Vec<usize>,
    },
    /// Classification by the spike counts of the readout neurons (`readout`, a range of the layer's
    /// neurons, split into `classes` equal consecutive groups, class `c` the `c`-th group): the
    /// cross-entropy of `softmax(mean count of each group[b] / temperature)` against `class[b]`,
    /// averaged over the batch, plus `activity`'s penalty. A count loss: its gradient is the same at
    /// every step. Groups larger than one neuron average the chip's mismatch out of the vote.
    CountCrossEntropy {
        /// The class of each batch element.
        class: Vec<usize>,
        /// The readout neurons.
        readout: std::ops::Range<usize>,
        /// The classes (`readout.len()` is a multiple of them).
        classes: usize,
        /// Spikes per unit of logit (a softer softmax for larger values).
        temperature: f64,
        /// Bounds on every neuron's spike count, if any.
        activity: Option<Activity>,
    },
    /// Regression by the spike counts of the readout neurons (`readout`, split into `dims` equal
    /// consecutive groups, dimension `d` the `d`-th group): each group's mean count over `full`
    /// spikes is the prediction `p[b, d]` of `target[b, d]` (targets scaled so that 0 and 1 are the
    /// ends of their range: 0 spikes predict 0, `full` spikes predict 1);
    /// `mean over b, d of (p[b, d] - target[b, d])^2`, plus `activity`'s penalty. A count loss.
    CountRegression {
        /// Targets `[batch, dims]`, row-major.
        target: Vec<f64>,
        /// The readout neurons.
        readout: std::ops::Range<usize>,
        /// Target dimensions (`readout.len()` is a multiple of them).
        dims: usize,
        /// The mean count per neuron of a group that predicts 1.
        full: f64,
        /// Bounds on every neuron's spike count, if any.
        activity: Option<Activity>,
    },
}

/// A penalty that keeps every neuron's spike count in a sample within `[min, max]` (firing rates the
/// chip can carry): `weight * mean over b, j of (relu(count - max)^2 + relu(min - count)^2)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// The lowest count without penalty.
    pub min: f64,
    /// The highest count without penalty.
    pub max: f64,
    /// The penalty's weight.
    pub weight: f64,
}

impl Activity {
    /// The penalty of counts `[batch, n]`, and its slope per count added into `slopes`.
    fn add(&self, counts: &[f64], slopes: &mut [f64]) -> f64 {
        let scale = self.weight / counts.len().max(1) as f64;
        let mut loss = 0.0;
        for (c, g) in counts.iter().zip(slopes) {
            let over = (c - self.max).max(0.0);
            let under = (self.min - c).max(0.0);
            loss += (over * over + under * under) * scale;
            *g += 2.0 * (over - under) * scale;
        }
        loss
    }
}

/// The count cross-entropy of counts `[batch, n]`: the loss and its slopes `d loss / d count`.
fn count_cross_entropy(
    counts: &[f64],
    class: &[usize],
    readout: &std::ops::Range<usize>,
    classes: usize,
    temperature: f64,
    activity: Option<&Activity>,
    n: usize,
) -> (f64, Vec<f64>) {
    let batch = class.len();
    let group = readout.len() / classes.max(1);
    let mut slopes = vec![0.0; counts.len()];
    let mut loss = 0.0;
    for (b, &c) in class.iter().enumerate() {
        let row = &counts[b * n + readout.start..b * n + readout.end];
        let logits: Vec<f64> = row
            .chunks_exact(group.max(1))
            .map(|g| g.iter().sum::<f64>() / group as f64 / temperature)
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        loss += (z.ln() + max - logits[c]) / batch as f64;
        for (k, &l) in logits.iter().enumerate() {
            let p = (l - max).exp() / z;
            let slope =
                (p - if k == c { 1.0 } else { 0.0 }) / batch as f64 / temperature / group as f64;
            let first = b * n + readout.start + k * group;
            slopes[first..first + group].fill(slope);
        }
    }
    if let Some(a) = activity {
        loss += a.add(counts, &mut slopes);
    }
    (loss, slopes)
}

/// The count regression of counts `[batch, n]`: the loss and its slopes `d loss / d count`.
fn count_regression(
    counts: &[f64],
    target: &[f64],
    readout: &std::ops::Range<usize>,
    dims: usize,
    full: f64,
    activity: Option<&Activity>,
    n: usize,
) -> (f64, Vec<f64>) {
    let batch = target.len() / dims.max(1);
    let group = readout.len() / dims.max(1);
    let scale = 1.0 / (batch * dims).max(1) as f64;
    let mut slopes = vec![0.0; counts.len()];
    let mut loss = 0.0;
    for b in 0..batch {
        let row = &counts[b * n + readout.start..b * n + readout.end];
        for (d, g) in row.chunks_exact(group.max(1)).enumerate() {
            let p = g.iter().sum::<f64>() / group as f64 / full;
            let e = p - target[b * dims + d];
            loss += e * e * scale;
            let first = b * n + readout.start + d * group;
            slopes[first..first + group].fill(2.0 * e * scale / full / group as f64);
        }
    }
    if let Some(a) = activity {
        loss += a.add(counts, &mut slopes);
    }
    (loss, slopes)
}

/// Spike totals `[batch, n]` of a raster `[batch, steps, n]`, in step order.
fn totals<E: Real>(spikes: &[E], batch: usize, steps: usize, n: usize) -> Vec<f64> {
    let mut counts = vec![0.0; batch * n];
    for (b, counts) in counts.chunks_exact_mut(n.max(1)).enumerate() {
        for t in 0..steps {
            let row = &spikes[(b * steps + t) * n..(b * steps + t + 1) * n];
            for (c, &s) in counts.iter_mut().zip(row) {
                *c += s.to_f64();
            }
        }
    }
    counts
}

/// Adds `scale` times the slopes `[batch, n]` of a count loss to every step of the gradient
/// `[batch, steps, n]`.
fn every_step<E: Real>(g: &mut [E], slopes: &[f64], scale: f64, steps: usize, n: usize) {
    for (b, slope) in slopes.chunks_exact(n.max(1)).enumerate() {
        let per: Vec<E> = slope.iter().map(|&c| E::from_f64(c * scale)).collect();
        for t in 0..steps {
            let row = &mut g[(b * steps + t) * n..(b * steps + t + 1) * n];
            for (gk, &v) in row.iter_mut().zip(&per) {
                *gk = *gk + v;
            }
        }
    }
}

/// A problem with a loss's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetShape {
    /// The loss.
    pub loss: &'static str,
    /// The number of target values the run needs.
    pub expected: usize,
    /// The number given.
    pub found: usize,
}

impl std::fmt::Display for TargetShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} target has {} values, the run needs {}",
            self.loss, self.found, self.expected
        )
    }
}

impl std::error::Error for TargetShape {}

impl Loss {
    /// The loss of `spikes` `[batch, steps, n]` and its gradient with respect to every spike.
    pub fn value_and_gradient<E: Real>(
        &self,
        spikes: &[E],
        batch: usize,
        steps: usize,
        n: usize,
    ) -> Result<(f64, Vec<E>), TargetShape> {
        let mut grad = vec![E::ZERO; spikes.len()];
        let value = self.eval(spikes, batch, steps, n, Some((&mut grad, 1.0)))?;
        Ok((value, grad))
    }

    /// The loss of `spikes` `[batch, steps, n]`.
    pub fn value<E: Real>(
        &self,
        spikes: &[E],
        batch: usize,
        steps: usize,
        n: usize,
    ) -> Result<f64, TargetShape> {
        self.eval(spikes, batch, steps, n, None)
    }

    /// The loss, and with `grad = Some((g, scale))`, `scale` times its gradient added into `g` (so a
    /// tape's backward pass writes straight into its gradient buffer).
    pub fn eval<E: Real>(
        &self,
        spikes: &[E],
        batch: usize,
        steps: usize,
        n: usize,
        mut grad: Option<(&mut [E], f64)>,
    ) -> Result<f64, TargetShape> {
        let mut add = |k: usize, v: f64| {
            if let Some((g, scale)) = grad.as_mut() {
                g[k] = g[k] + E::from_f64(v * *scale);
            }
        };
        let check = |loss: &'static str, expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(TargetShape {
                    loss,
                    expected,
                    found,
                })
            }
        };
        // The loss is summed in f64; the gradient is added in the spikes' precision.
        let at = |b: usize, t: usize, j: usize| (b * steps + t) * n + j;
        match self {
            Loss::CountMse { target } => {
                check("count_mse", n, target.len())?;
                let (loss, slopes) = count_mse(spikes, target, batch, steps, n);
                if let Some((g, s)) = grad.as_mut() {
                    let mut per: Vec<E> = Vec::with_capacity(n);
                    for (b, slope) in slopes.chunks_exact(n.max(1)).enumerate() {
                        // The same gradient at every step: converted once per neuron, added per step.
                        per.clear();
                        per.extend(slope.iter().map(|&c| E::from_f64(c * *s)));
                        for t in 0..steps {
                            let row = &mut g[at(b, t, 0)..at(b, t, 0) + n];
                            for (gk, &v) in row.iter_mut().zip(&per) {
                                *gk = *gk + v;
                            }
                        }
                    }
                }
                Ok(loss)
            }
            Loss::FilteredMse { decay, target } => {
                check("filtered_mse", steps * n, target.len())?;
                let scale = 1.0 / (batch * steps * n).max(1) as f64;
                let mut loss = 0.0;
                let mut y = vec![0.0; steps];
                for b in 0..batch {
                    for j in 0..n {
                        let mut acc = 0.0;
                        for t in 0..steps {
                            acc = decay * acc + spikes[at(b, t, j)].to_f64();
                            y[t] = acc;
                            let e = acc - target[t * n + j];
                            loss += e * e * scale;
                        }
                        // Reverse recurrence: ybar_t = 2 e_t scale + a ybar_{t+1}; d/ds_t = ybar_t.
                        let mut ybar = 0.0;
                        for t in (0..steps).rev() {
                            ybar = 2.0 * (y[t] - target[t * n + j]) * scale + decay * ybar;
                            add(at(b, t, j), ybar);
                        }
                    }
                }
                Ok(loss)
            }
            Loss::RasterMse { target } => {
                check("raster_mse", spikes.len(), target.len())?;
                let scale = 1.0 / spikes.len().max(1) as f64;
                let mut loss = 0.0;
                for (k, (&s, &y)) in spikes.iter().zip(target).enumerate() {
                    let e = s.to_f64() - y;
                    loss += e * e * scale;
                    add(k, 2.0 * e * scale);
                }
                Ok(loss)
            }
            Loss::CountCrossEntropy {
                class,
                readout,
                classes,
                temperature,
                activity,
            } => {
                self.check_count_cross_entropy(batch, n)?;
                let counts = totals(spikes, batch, steps, n);
                let (loss, slopes) = count_cross_entropy(
                    &counts,
                    class,
                    readout,
                    *classes,
                    *temperature,
                    activity.as_ref(),
                    n,
                );
                if let Some((g, s)) = grad.as_mut() {
                    every_step(g, &slopes, *s, steps, n);
                }
                Ok(loss)
            }
            Loss::CountRegression {
                target,
                readout,
                dims,
                full,
                activity,
            } => {
                self.check_count_regression(batch, n)?;
                let counts = totals(spikes, batch, steps, n);
                let (loss, slopes) =
                    count_regression(&counts, target, readout, *dims, *full, activity.as_ref(), n);
                if let Some((g, s)) = grad.as_mut() {
                    every_step(g, &slopes, *s, steps, n);
                }
                Ok(loss)
            }
            Loss::RateCrossEntropy { class } => {
                check("rate_cross_entropy", batch, class.len())?;
                if let Some(&c) = class.iter().find(|&&c| c >= n) {
                    return Err(TargetShape {
                        loss: "rate_cross_entropy class",
                        expected: n,
                        found: c,
                    });
                }
                let mut loss = 0.0;
                for (b, &c) in class.iter().enumerate() {
                    let rates: Vec<f64> = (0..n)
                        .map(|j| {
                            (0..steps)
                                .map(|t| spikes[at(b, t, j)].to_f64())
                                .sum::<f64>()
                                / steps.max(1) as f64
                        })
                        .collect();
                    let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = rates.iter().map(|r| (r - max).exp()).sum();
                    loss += (z.ln() + max - rates[c]) / batch as f64;
                    for (j, &r) in rates.iter().enumerate() {
                        let p = (r - max).exp() / z;
                        let d = (p - if j == c { 1.0 } else { 0.0 })
                            / batch as f64
                            / steps.max(1) as f64;
                        for t in 0..steps {
                            add(at(b, t, j), d);
                        }
                    }
                }
                Ok(loss)
            }
        }
    }
}

impl Loss {
    fn check_count_cross_entropy(&self, batch: usize, n: usize) -> Result<(), TargetShape> {
        let Loss::CountCrossEntropy {
            class,
            readout,
            classes,
            temperature,
            ..
        } = self
        else {
            return Ok(());
        };
        if class.len() != batch {
            return Err(TargetShape {
                loss: "count_cross_entropy",
                expected: batch,
                found: class.len(),
            });
        }
        if readout.end > n || readout.is_empty() {
            return Err(TargetShape {
                loss: "count_cross_entropy readout",
                expected: n,
                found: readout.end,
            });
        }
        if *classes == 0 || readout.len() % classes != 0 {
            return Err(TargetShape {
                loss: "count_cross_entropy readout (a multiple of the classes)",
                expected: *classes,
                found: readout.len(),
            });
        }
        if let Some(&c) = class.iter().find(|&&c| c >= *classes) {
            return Err(TargetShape {
                loss: "count_cross_entropy class",
                expected: *classes,
                found: c,
            });
        }
        if !(temperature.is_finite() && *temperature > 0.0) {
            return Err(TargetShape {
                loss: "count_cross_entropy temperature",
                expected: 1,
                found: 0,
            });
        }
        Ok(())
    }
}

impl Loss {
    fn check_count_regression(&self, batch: usize, n: usize) -> Result<(), TargetShape> {
        let Loss::CountRegression {
            target,
            readout,
            dims,
            full,
            ..
        } = self
        else {
            return Ok(());
        };
        let fail = |loss, expected, found| {
            Err(TargetShape {
                loss,
                expected,
                found,
            })
        };
        if *dims == 0 || target.len() != batch * dims {
            return fail("count_regression", batch * dims, target.len());
        }
        if readout.end > n || readout.is_empty() {
            return fail("count_regression readout", n, readout.end);
        }
        if readout.len() % dims != 0 {
            return fail(
                "count_regression readout (a multiple of the dimensions)",
                *dims,
                readout.len(),
            );
        }
        if let Some(k) = target.iter().position(|v| !v.is_finite()) {
            return fail("count_regression target (finite values)", target.len(), k);
        }
        if !(full.is_finite() && *full > 0.0) {
            return fail("count_regression full count", 1, 0);
        }
        Ok(())
    }
}

/// What a loss's gradient needs from the forward pass, kept by a fused layer pass
/// ([`crate::DynapSimLayer::forward_input_loss`]) instead of the spikes.
pub(crate) enum Memo<E> {
    /// A count loss: `d loss / d s[b, t, j]` is the same at every step, `slope[b][j]`.
    Slopes(Vec<f64>),
    /// Any other loss: the spikes themselves.
    Spikes(Vec<E>),
}

impl Loss {
    /// The loss of `spikes` `[batch, steps, n]` and its gradient with respect to the spikes, with the
    /// values of [`Loss::value_and_gradient`] (a zero as its positive one): for a count loss one row
    /// per batch element that holds at every step ([`SpikeGradient::EveryStep`], what the simulators
    /// take as `spikes_every_step`, without a `[batch, steps, n]` buffer), otherwise the raster's.
    /// `counts` are the run's spike totals `[batch, n]` (`Trace::spike_counts`).
    pub fn value_and_spike_gradient<E: Real>(
        &self,
        spikes: &[E],
        counts: &[f64],
        batch: usize,
        steps: usize,
        n: usize,
    ) -> Result<(f64, SpikeGradient<E>), TargetShape> {
        let (value, memo) = self.value_and_memo(spikes, counts, batch, steps, n)?;
        Ok((value, self.spike_gradient(&memo, batch, steps, n, 1.0)))
    }

    /// The loss of `spikes` `[batch, steps, n]` and what its gradient needs; `counts` are the
    /// simulator's spike totals `[batch, n]`, which the count loss uses instead of summing the raster
    /// again (alone, on one thread).
    pub(crate) fn value_and_memo<E: Real>(
        &self,
        spikes: &[E],
        counts: &[f64],
        batch: usize,
        steps: usize,
        n: usize,
    ) -> Result<(f64, Memo<E>), TargetShape> {
        match self {
            Loss::CountMse { target } if target.len() == n && counts.len() == batch * n => {
                let (loss, slopes) = count_mse_of(counts.to_vec(), target, batch, n);
                Ok((loss, Memo::Slopes(slopes)))
            }
            Loss::CountCrossEntropy {
                class,
                readout,
                classes,
                temperature,
                activity,
            } if counts.len() == batch * n => {
                self.check_count_cross_entropy(batch, n)?;
                let (loss, slopes) = count_cross_entropy(
                    counts,
                    class,
                    readout,
                    *classes,
                    *temperature,
                    activity.as_ref(),
                    n,
                );
                Ok((loss, Memo::Slopes(slopes)))
            }
            Loss::CountRegression {
                target,
                readout,
                dims,
                full,
                activity,
            } if counts.len() == batch * n => {
                self.check_count_regression(batch, n)?;
                let (loss, slopes) =
                    count_regression(counts, target, readout, *dims, *full, activity.as_ref(), n);
                Ok((loss, Memo::Slopes(slopes)))
            }
            _ => Ok((
                self.value(spikes, batch, steps, n)?,
                Memo::Spikes(spikes.to_vec()),
            )),
        }
    }

    /// `scale` times the gradient with respect to the spikes, from the memo of
    /// [`Loss::value_and_memo`], with the values [`Loss::eval`] adds into a zeroed buffer: for the
    /// count loss one row per element, `[batch, n]`, that holds at every step (`0 + v`, as `eval`
    /// forms it, so a negative zero comes out as its positive one); otherwise `[batch, steps, n]`.
    pub(crate) fn spike_gradient<E: Real>(
        &self,
        memo: &Memo<E>,
        batch: usize,
        steps: usize,
        n: usize,
        scale: f64,
    ) -> SpikeGradient<E> {
        match memo {
            Memo::Slopes(slopes) => SpikeGradient::EveryStep(
                slopes
                    .iter()
                    .map(|&c| E::ZERO + E::from_f64(c * scale))
                    .collect(),
            ),
            Memo::Spikes(spikes) => {
                if let Loss::RasterMse { target } = self {
                    // The gradient alone, as `eval` adds it to zero (its loss sum, a chain of
                    // dependent additions, is not needed here).
                    let sc = 1.0 / spikes.len().max(1) as f64;
                    let g = spikes
                        .iter()
                        .zip(target)
                        .map(|(&s, &y)| E::ZERO + E::from_f64(2.0 * (s.to_f64() - y) * sc * scale))
                        .collect();
                    return SpikeGradient::PerStep(g);
                }
                let mut g = vec![E::ZERO; spikes.len()];
                // The targets were checked when the memo was made.
                let _ = self.eval(spikes, batch, steps, n, Some((&mut g, scale)));
                SpikeGradient::PerStep(g)
            }
        }
    }
}

/// A loss's gradient with respect to the spikes (see [`Loss::value_and_spike_gradient`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SpikeGradient<E> {
    /// `[batch, n]`, the same at every step.
    EveryStep(Vec<E>),
    /// `[batch, steps, n]`.
    PerStep(Vec<E>),
}

/// The spike-count MSE of `spikes` `[batch, steps, n]` against `target` (`n` values), averaged over
/// batch and neurons, and its slope `d loss / d count` per batch element and neuron, `[batch][n]`.
fn count_mse<E: Real>(
    spikes: &[E],
    target: &[f64],
    batch: usize,
    steps: usize,
    n: usize,
) -> (f64, Vec<f64>) {
    let mut counts = vec![0.0; batch * n];
    // Row by row (the raster is [B, T, N]), so that the loops read memory in order.
    for (b, counts) in counts.chunks_exact_mut(n.max(1)).enumerate() {
        for t in 0..steps {
            let row = &spikes[(b * steps + t) * n..(b * steps + t + 1) * n];
            for (c, &s) in counts.iter_mut().zip(row) {
                *c += s.to_f64();
            }
        }
    }
    count_mse_of(counts, target, batch, n)
}

/// [`count_mse`] from the spike counts `[batch, n]` (`0.0 + s_0 + s_1 + ...` in step order, as the
/// simulator's [`dynap_model::Trace::spike_counts`] are summed), which become the slopes.
fn count_mse_of(mut counts: Vec<f64>, target: &[f64], batch: usize, n: usize) -> (f64, Vec<f64>) {
    let scale = 1.0 / (batch * n).max(1) as f64;
    let mut loss = 0.0;
    for row in counts.chunks_exact_mut(n.max(1)) {
        for (c, tj) in row.iter_mut().zip(target) {
            let e = *c - tj;
            loss += e * e * scale;
            *c = 2.0 * e * scale;
        }
    }
    (loss, counts)
}

/// `loss` of output spikes `[batch, steps, N]` as a scalar on dfdx's tape; its backward pass adds the
/// closed-form gradient times the incoming one to the spikes' gradient.
pub fn loss_on_tape<E: Dtype + Real, T: Tape<E, Cpu>>(
    spikes: Tensor<(usize, usize, usize), E, Cpu, T>,
    loss: &Loss,
) -> Result<Tensor<(), E, Cpu, T>, TargetShape> {
    let (batch, steps, n) = *spikes.shape();
    let (spikes, mut tape) = spikes.split_tape();
    let values: Vec<E> = crate::layer::values(&spikes);
    let value = loss.value(&values, batch, steps, n)?;
    let loss = loss.clone();
    let out: Tensor<(), E, Cpu> = spikes
        .device()
        .tensor_from_vec(vec![<E as Real>::from_f64(value)], ());
    let (s_ghost, o_ghost) = (spikes.clone(), out.clone());
    tape.add_backward_op(move |grads: &mut Gradients<E, Cpu>| {
        grads.try_alloc_for(&o_ghost)?;
        let g_out = grads.get(&o_ghost).as_vec()[0].to_f64();
        let dst: &mut [E] = grads.get_or_alloc_mut(&s_ghost)?;
        // The targets were checked in the forward pass, so the gradient cannot fail here.
        let _ = loss.eval(&values, batch, steps, n, Some((dst, g_out)));
        Ok(())
    });
    Ok(out.put_tape(tape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster() -> Vec<f64> {
        (0..2 * 7 * 3)
            .map(|k| f64::from(u8::from(k % 5 == 1)) + f64::from(u8::from(k % 11 == 0)))
            .collect()
    }

    /// One loss of each kind, for the raster of [`raster`] (`[2, 7, 3]`).
    fn every_loss() -> [Loss; 8] {
        [
            Loss::CountMse {
                target: vec![1.0, 2.0, 0.5],
            },
            Loss::FilteredMse {
                decay: 0.8,
                target: (0..21).map(|k| k as f64 * 0.1).collect(),
            },
            Loss::RasterMse {
                target: (0..42).map(|k| (k % 3) as f64 * 0.7).collect(),
            },
            Loss::RateCrossEntropy { class: vec![2, 0] },
            Loss::CountCrossEntropy {
                class: vec![1, 0],
                readout: 1..3,
                classes: 2,
                temperature: 2.0,
                activity: None,
            },
            Loss::CountCrossEntropy {
                class: vec![0, 1],
                readout: 1..3,
                classes: 2,
                temperature: 0.7,
                // Bounds between counts (the penalty has kinks at them).
                activity: Some(Activity {
                    min: 1.5,
                    max: 2.5,
                    weight: 0.3,
                }),
            },
            Loss::CountRegression {
                target: vec![0.4, 0.1],
                readout: 1..3,
                dims: 1,
                full: 3.0,
                activity: None,
            },
            Loss::CountRegression {
                target: vec![0.2, 1.3, -0.5, 0.7],
                readout: 1..3,
                dims: 2,
                full: 1.5,
                activity: Some(Activity {
                    min: 0.5,
                    max: 2.5,
                    weight: 0.2,
                }),
            },
        ]
    }

    /// Every loss is a polynomial (or log-sum-exp) of the spikes: its gradient must equal central
    /// differences.
    #[test]
    fn gradients_match_finite_differences() {
        let s = raster();
        let losses = every_loss();
        for loss in &losses {
            let (_, g) = loss.value_and_gradient(&s, 2, 7, 3).unwrap();
            for k in [0, 5, 17, 41] {
                let h = 1e-6;
                let mut up = s.clone();
                up[k] += h;
                let mut down = s.clone();
                down[k] -= h;
                let fd = (loss.value_and_gradient(&up, 2, 7, 3).unwrap().0
                    - loss.value_and_gradient(&down, 2, 7, 3).unwrap().0)
                    / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() < 1e-8,
                    "{loss:?} at {k}: {fd} vs {}",
                    g[k]
                );
            }
        }
    }

    /// The fused layer's spike gradient (`value_and_memo`, then `spike_gradient`) has the bits of
    /// `eval`'s gradient, scaled, for every loss: its shortcuts (the count loss's one row per element,
    /// the raster loss without its sum) change no value.
    #[test]
    fn the_fused_spike_gradient_has_evals_bits() {
        fn check<E: Real>(loss: &Loss, s: &[E]) {
            let scale = 0.37;
            let mut want = vec![E::ZERO; s.len()];
            loss.eval(s, 2, 7, 3, Some((&mut want, scale))).unwrap();
            // The counts as the simulator sums them.
            let counts: Vec<f64> = (0..2 * 3)
                .map(|bj| (0..7).fold(0.0, |c, t| c + s[(bj / 3 * 7 + t) * 3 + bj % 3].to_f64()))
                .collect();
            let (value, memo) = loss.value_and_memo(s, &counts, 2, 7, 3).unwrap();
            assert_eq!(
                value.to_bits(),
                loss.value(s, 2, 7, 3).unwrap().to_bits(),
                "{loss:?}"
            );
            let got = match loss.spike_gradient(&memo, 2, 7, 3, scale) {
                SpikeGradient::PerStep(g) => g,
                SpikeGradient::EveryStep(rows) => (0..2 * 7)
                    .flat_map(|bt| rows[bt / 7 * 3..bt / 7 * 3 + 3].to_vec())
                    .collect(),
            };
            let bits = |v: &[E]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{loss:?}");
        }
        let losses = every_loss();
        for loss in &losses {
            check::<f64>(loss, &raster());
            check::<f32>(
                loss,
                &raster().iter().map(|&v| v as f32).collect::<Vec<_>>(),
            );
        }
    }

    #[test]
    fn wrong_targets_are_errors() {
        let s = raster();
        let e = Loss::CountMse { target: vec![1.0] }
            .value_and_gradient(&s, 2, 7, 3)
            .unwrap_err();
        assert_eq!(
            e,
            TargetShape {
                loss: "count_mse",
                expected: 3,
                found: 1
            }
        );
        assert!(
            Loss::RateCrossEntropy { class: vec![0, 7] }
                .value_and_gradient(&s, 2, 7, 3)
                .is_err()
        );
        let cce = |class: Vec<usize>, readout: std::ops::Range<usize>| Loss::CountCrossEntropy {
            class,
            readout,
            classes: 2,
            temperature: 1.0,
            activity: None,
        };
        let e = cce(vec![0, 2], 1..3)
            .value_and_gradient(&s, 2, 7, 3)
            .unwrap_err();
        assert_eq!(e.loss, "count_cross_entropy class");
        let e = cce(vec![0, 1], 2..5)
            .value_and_gradient(&s, 2, 7, 3)
            .unwrap_err();
        assert_eq!(e.loss, "count_cross_entropy readout");
        // Three readout neurons do not split into two classes.
        let e = cce(vec![0, 1], 0..3)
            .value_and_gradient(&s, 2, 7, 3)
            .unwrap_err();
        assert_eq!(
            e.loss,
            "count_cross_entropy readout (a multiple of the classes)"
        );
        let e = cce(vec![0], 0..3)
            .value_and_gradient(&s, 2, 7, 3)
            .unwrap_err();
        assert_eq!(e.loss, "count_cross_entropy");
    }

    #[test]
    fn grouped_readouts_vote_by_their_mean_count() {
        // One element, 4 neurons, 1 step: counts [3, 1, 0, 2]; readout 0..4 in 2 classes: class 0's
        // mean count is 2, class 1's is 1.
        let spikes = [3.0f64, 1.0, 0.0, 2.0];
        let loss = Loss::CountCrossEntropy {
            class: vec![1],
            readout: 0..4,
            classes: 2,
            temperature: 0.5,
            activity: None,
        };
        let (value, grad) = loss.value_and_gradient(&spikes, 1, 1, 4).unwrap();
        let (l0, l1): (f64, f64) = (2.0 / 0.5, 1.0 / 0.5);
        let z = l0.exp() + l1.exp();
        assert!((value - (z.ln() - l1)).abs() < 1e-12);
        let p0 = l0.exp() / z;
        let g0 = p0 / 0.5 / 2.0;
        let g1 = (1.0 - p0 - 1.0) / 0.5 / 2.0;
        for (k, want) in [g0, g0, g1, g1].into_iter().enumerate() {
            assert!(
                (grad[k] - want).abs() < 1e-12,
                "neuron {k}: {} against {want}",
                grad[k]
            );
        }
    }

    #[test]
    fn a_regression_group_predicts_its_mean_count_over_the_full_count() {
        // One element, 4 neurons, 1 step: counts [3, 1, 0, 2]; two dims of two neurons, full 4:
        // predictions 2/4 and 1/4.
        let spikes = [3.0f64, 1.0, 0.0, 2.0];
        let loss = Loss::CountRegression {
            target: vec![0.75, 0.0],
            readout: 0..4,
            dims: 2,
            full: 4.0,
            activity: None,
        };
        let (value, grad) = loss.value_and_gradient(&spikes, 1, 1, 4).unwrap();
        let (e0, e1) = (0.5 - 0.75, 0.25 - 0.0);
        assert!((value - (e0 * e0 + e1 * e1) / 2.0).abs() < 1e-15);
        let (g0, g1) = (e0 / 4.0 / 2.0, e1 / 4.0 / 2.0);
        for (k, want) in [g0, g0, g1, g1].into_iter().enumerate() {
            assert!((grad[k] - want).abs() < 1e-15, "neuron {k}");
        }
        // Wrong targets are errors, named.
        let bad = |target: Vec<f64>, readout: std::ops::Range<usize>, full: f64| {
            Loss::CountRegression {
                target,
                readout,
                dims: 2,
                full,
                activity: None,
            }
            .value(&spikes, 1, 1, 4)
            .unwrap_err()
            .loss
        };
        assert_eq!(bad(vec![0.0], 0..4, 1.0), "count_regression");
        assert_eq!(bad(vec![0.0, 0.0], 0..5, 1.0), "count_regression readout");
        assert_eq!(
            bad(vec![0.0, 0.0], 0..3, 1.0),
            "count_regression readout (a multiple of the dimensions)"
        );
        assert_eq!(
            bad(vec![0.0, f64::NAN], 0..4, 1.0),
            "count_regression target (finite values)"
        );
        assert_eq!(
            bad(vec![0.0, 0.0], 0..4, 0.0),
            "count_regression full count"
        );
    }
}
