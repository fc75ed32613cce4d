//! The loss of Rockpool's weight-quantization autoencoder (model.md section 6.2) and its gradient, on
//! dfdx's tape. `dynap-quant` runs the training loop; this module only differentiates.
//!
//! For the `n` non-zero weight magnitudes of one core, scaled to `x` `[n]`, an encoder `E` `[n, 4]`
//! and a decoder `D` `[4, n]`:
//!
//! ```text
//! code = x E                                  [4], the base weights in scaled units
//! B    = step(sigmoid(D))                     [4, n], step(p) = max(floor(p + 0.5), 0)
//! x^   = code B                               [n]
//! loss = mean((x^ - x)^2) + penalty (sum_k exp(-min(code_k, 0)) - 4)
//! ```
//!
//! The step's derivative is Rockpool's probability-weighted straight-through estimator:
//! `dB/dp = p`, written on the tape as `B = step(p) + (p^2/2 - stop_gradient(p^2/2))`, whose value is
//! exactly `step(p)` (a value minus itself is exactly zero) and whose derivative is `p`. Rockpool's
//! third loss term (`MSE(B, int2bit(bit2int(B)))`) is identically zero in value and gradient and is
//! left out. At an exact tie `code_k = 0` this gives the penalty no gradient where JAX gives half.

use dfdx::dtypes::Dtype;
use dfdx::shapes::Rank0;
use dfdx::tensor::{AsArray, Cpu, OwnedTape, PutTape, SplitTape, Tensor, TensorFromVec};
use dfdx::tensor_ops::{Backward, Device, MeanTo, SumTo, TryMatMul};
use dynap_model::Real;

/// Loss and gradients of the quantization autoencoder (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct BitAutoencoder {
    dev: Cpu,
}

/// The loss of one evaluation and its gradients with respect to the encoder and the decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderGrad<E> {
    /// The loss.
    pub loss: E,
    /// d loss / d E, `[n, 4]` row-major.
    pub encoder: Vec<E>,
    /// d loss / d D, `[4, n]` row-major.
    pub decoder: Vec<E>,
}

/// The bit mask Rockpool's decoder makes from a probability `p = sigmoid(d)` in `(0, 1)`:
/// `max(floor(p + 0.5), 0)`, with the sum in `E`'s precision; `floor(y) >= 1` exactly when `y >= 1`.
/// `dynap_quant::decoder_bit` is the same rule for the quantizer (which does not depend on this crate);
/// its tests hold the two to the same decisions.
#[inline(always)]
pub fn decoder_bit<E: Real>(p: E) -> bool {
    p + E::from_f64(0.5) >= E::ONE
}

impl BitAutoencoder {
    /// A new evaluator.
    pub fn new() -> BitAutoencoder {
        BitAutoencoder::default()
    }

    /// Loss and gradients at `encoder` `[n, 4]` and `decoder` `[4, n]` for the scaled magnitudes `x`
    /// `[n]`, with the negative-code penalty factor `penalty` (Rockpool: 1e3). `n` must be at least 1
    /// and the slices must have matching lengths (the quantizer guarantees both).
    pub fn loss_and_grad<E: TapeFloat>(
        &self,
        x: &[E],
        encoder: &[E],
        decoder: &[E],
        penalty: E,
    ) -> AutoencoderGrad<E> {
        E::ae_loss_and_grad(self, x, encoder, decoder, penalty)
    }

    fn loss_and_grad_on_tape<E>(
        &self,
        x: &[E],
        encoder: &[E],
        decoder: &[E],
        penalty: E,
    ) -> AutoencoderGrad<E>
    where
        E: Dtype + Real,
        Cpu: Device<E>,
    {
        let n = x.len();
        assert!(n > 0 && encoder.len() == 4 * n && decoder.len() == 4 * n);
        let tape = OwnedTape::<E, Cpu>::default;
        let xt: Tensor<(usize, usize), E, Cpu> = self.dev.tensor_from_vec(x.to_vec(), (1, n));
        let enc: Tensor<(usize, usize), E, Cpu> =
            self.dev.tensor_from_vec(encoder.to_vec(), (n, 4));
        let dec: Tensor<(usize, usize), E, Cpu> =
            self.dev.tensor_from_vec(decoder.to_vec(), (4, n));

        // Reconstruction branch.
        let code = xt.clone().put_tape(tape()).matmul(enc.clone());
        let (p, p_tape) = dec.clone().put_tape(tape()).sigmoid().split_tape();
        let hard: Vec<E> = p
            .as_vec()
            .into_iter()
            .map(|v| <E as Real>::from_f64(if decoder_bit(v) { 1.0 } else { 0.0 }))
            .collect();
        let hard = self.dev.tensor_from_vec(hard, (4, n));
        let (half_sq, hs_tape) =
            (p.put_tape(p_tape).square() * <E as Real>::from_f64(0.5)).split_tape();
        // The constant copy must be a tensor of its own (dfdx cannot subtract a tensor from itself).
        let stopped = self.dev.tensor_from_vec(half_sq.as_vec(), (4, n));
        let straight_through = half_sq.put_tape(hs_tape) - stopped;
        let bits = straight_through + hard;
        let recon = code.matmul(bits);
        let mse = (recon - xt.clone()).square().mean::<Rank0, _>();

        // Penalty branch: exp(-min(code, 0)) = exp(relu(-code)).
        let code2 = xt.put_tape(tape()).matmul(enc.clone());
        let pen =
            (code2.negate().relu().exp().sum::<Rank0, _>() - <E as Real>::from_f64(4.0)) * penalty;

        let loss = mse + pen;
        let value = loss.array();
        let grads = loss.backward();
        AutoencoderGrad {
            loss: value,
            encoder: grads.get(&enc).as_vec(),
            decoder: grads.get(&dec).as_vec(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The floating-point types the tape differentiates in (`f32` and `f64`); sealed, so that no dfdx
/// bound appears in another crate's signatures.
pub trait TapeFloat: Real + sealed::Sealed {
    #[doc(hidden)]
    fn ae_loss_and_grad(
        ae: &BitAutoencoder,
        x: &[Self],
        encoder: &[Self],
        decoder: &[Self],
        penalty: Self,
    ) -> AutoencoderGrad<Self>;
}

impl TapeFloat for f32 {
    fn ae_loss_and_grad(
        ae: &BitAutoencoder,
        x: &[f32],
        encoder: &[f32],
        decoder: &[f32],
        penalty: f32,
    ) -> AutoencoderGrad<f32> {
        ae.loss_and_grad_on_tape(x, encoder, decoder, penalty)
    }
}

impl TapeFloat for f64 {
    fn ae_loss_and_grad(
        ae: &BitAutoencoder,
        x: &[f64],
        encoder: &[f64],
        decoder: &[f64],
        penalty: f64,
    ) -> AutoencoderGrad<f64> {
        ae.loss_and_grad_on_tape(x, encoder, decoder, penalty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient written out by hand, in `f64`: the tape must agree.
    fn by_hand(x: &[f64], e: &[f64], d: &[f64], penalty: f64) -> AutoencoderGrad<f64> {
        let n = x.len();
        let mut code = [0.0; 4];
        for k in 0..4 {
            code[k] = (0..n).map(|j| x[j] * e[j * 4 + k]).sum();
        }
        let p: Vec<f64> = d.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
        let b: Vec<f64> = p
            .iter()
            .map(|&v| f64::from(u8::from(decoder_bit(v))))
            .collect();
        let recon: Vec<f64> = (0..n)
            .map(|j| (0..4).map(|k| code[k] * b[k * n + j]).sum())
            .collect();
        let mse = (0..n).map(|j| (recon[j] - x[j]).powi(2)).sum::<f64>() / n as f64;
        let pen = penalty * (code.iter().map(|&c| (-c.min(0.0)).exp()).sum::<f64>() - 4.0);
        let g_recon: Vec<f64> = (0..n).map(|j| 2.0 * (recon[j] - x[j]) / n as f64).collect();
        let mut g_code = [0.0; 4];
        for k in 0..4 {
            g_code[k] = (0..n).map(|j| g_recon[j] * b[k * n + j]).sum::<f64>();
            if code[k] < 0.0 {
                g_code[k] -= penalty * (-code[k]).exp();
            }
        }
        let encoder = (0..n * 4).map(|i| x[i / 4] * g_code[i % 4]).collect();
        let decoder = (0..4 * n)
            .map(|i| {
                let (k, j) = (i / n, i % n);
                g_recon[j] * code[k] * p[i] * p[i] * (1.0 - p[i])
            })
            .collect();
        AutoencoderGrad {
            loss: mse + pen,
            encoder,
            decoder,
        }
    }

    #[test]
    fn tape_gradient_equals_the_hand_derivation() {
        let n = 7;
        let x: Vec<f64> = (0..n).map(|j| 0.1 + 0.13 * j as f64).collect();
        let e: Vec<f64> = (0..4 * n)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.07)
            .collect();
        let d: Vec<f64> = (0..4 * n)
            .map(|i| ((i * 53 % 13) as f64 - 6.0) * 0.3)
            .collect();
        let got = BitAutoencoder::new().loss_and_grad(&x, &e, &d, 1e3);
        let want = by_hand(&x, &e, &d, 1e3);
        assert!((got.loss - want.loss).abs() <= 1e-12 * want.loss.abs());
        assert!(
            want.loss > 1.0,
            "some code is negative, so the penalty is tested"
        );
        for (a, b) in got
            .encoder
            .iter()
            .chain(&got.decoder)
            .zip(want.encoder.iter().chain(&want.decoder))
        {
            assert!((a - b).abs() <= 1e-10 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }
}
