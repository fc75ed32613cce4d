//! Adam, the optimizer of the paper (and of Rockpool's `jax.example_libraries.optimizers.adam`), over a
//! layer's trainable tensors. Its state is kept in `f64` and its arithmetic is elementwise in a fixed
//! order, so the same gradients give the same bits.

use crate::layer::LayerParams;
use dfdx::dtypes::Dtype;
use dfdx::shapes::HasShape;
use dfdx::tensor::{Cpu, Gradients, Tensor};
use dynap_model::Real;

/// Adam with the usual bias correction: `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
/// `x -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    t: u64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl Adam {
    /// Adam with learning rate `lr` and the standard b1 = 0.9, b2 = 0.999, eps = 1e-8.
    pub fn new(lr: f64) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The optimizer's state (step count, first and second moments), for checkpoints.
    pub fn state(&self) -> (u64, &[Vec<f64>], &[Vec<f64>]) {
        (self.t, &self.m, &self.v)
    }

    /// Restores a state saved with [`Adam::state`].
    pub fn set_state(&mut self, t: u64, m: Vec<Vec<f64>>, v: Vec<Vec<f64>>) {
        self.t = t;
        self.m = m;
        self.v = v;
    }

    /// One step on every trainable tensor of `params` with the gradients in `grads`, which must come from
    /// a backward pass through [`crate::DynapSimLayer::forward`] (it gives every trainable tensor a
    /// gradient, zero where the loss does not depend on it).
    pub fn step<E: Dtype + Real>(
        &mut self,
        params: &mut LayerParams<E>,
        grads: &Gradients<E, Cpu>,
    ) {
        self.t += 1;
        let tensors: [&mut Tensor<(usize, usize), E, Cpu>; 3] = [
            &mut params.w_in,
            &mut params.w_rec,
            &mut params.log_currents,
        ];
        if self.m.len() != tensors.len() {
            self.m = tensors
                .iter()
                .map(|t| vec![0.0; t.shape().0 * t.shape().1])
                .collect();
            self.v = self.m.clone();
        }
        let c1 = 1.0 - self.beta1.powi(self.t.min(i32::MAX as u64) as i32);
        let c2 = 1.0 - self.beta2.powi(self.t.min(i32::MAX as u64) as i32);
        for (k, tensor) in tensors.into_iter().enumerate() {
            if tensor.shape().0 * tensor.shape().1 == 0 {
                continue;
            }
            let g = grads.get(&*tensor).as_vec();
            let mut x = tensor.as_vec(); // not empty: checked above
            for (i, xi) in x.iter_mut().enumerate() {
                let g = g[i].to_f64();
                let m = &mut self.m[k][i];
                let v = &mut self.v[k][i];
                *m = self.beta1 * *m + (1.0 - self.beta1) * g;
                *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
                let update = self.lr * (*m / c1) / ((*v / c2).sqrt() + self.eps);
                *xi = <E as Real>::from_f64(xi.to_f64() - update);
            }
            tensor.copy_from(&x);
        }
    }
}
