//! Rockpool's autoencoder quantizer (`autoencoder_quantization` / `learn_weights`, model.md section
//! 6.2), faithful, for one core at a time. The loss and its gradient are computed by a fused pass
//! written out by hand (no allocation per epoch; Rockpool's JAX scan is otherwise ten times faster than
//! composing the loss from dfdx operations on large cores), checked against dfdx's tape
//! (`dynap_autodiff::BitAutoencoder`) in the tests; this module runs Rockpool's loop around it:
//!
//! * magnitudes `w` (the core's non-zero weights, in Rockpool's order), scale `s = 1/(max w - min w + 1)`,
//!   `x = s w`;
//! * encoder `[n, 4]` ~ U(+-sqrt(6/n)) and decoder `[4, n]` ~ U(+-sqrt(6/4)), rounded to `f32` (Rockpool
//!   draws them from numpy's global generator; we draw from ChaCha8 with the given seed and the core
//!   number, or take them from the caller, as the golden cases do);
//! * `jax.example_libraries.optimizers.adam`, whose step index restarts at 0 in every chunk of 1000
//!   epochs (Quirk: its bias correction restarts, reproduced);
//! * early stopping: after every chunk, the chunk's mean loss must improve on the best by 1e-6, or a
//!   counter grows; more than 5 such chunks in a row stop the loop (or a fixed number of epochs);
//! * the loss recorded for an epoch is the one evaluated before that epoch's update;
//! * base currents `Iw_k = code_k Iscale / s`, masks from the final decoder's bits (bit k = `Iw_k`).
//!
//! It runs in `f32` (Rockpool's precision) or `f64`.

use crate::Precision;
use dynap_model::{BASE_WEIGHTS, Real};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The bit mask Rockpool's decoder makes from a probability `p = sigmoid(d)` in `(0, 1)`:
/// `max(floor(p + 0.5), 0)`, with the sum in `E`'s precision; `floor(y) >= 1` exactly when `y >= 1`.
/// (`dynap_autodiff::decoder_bit` is the same rule on dfdx's tape; a test holds the two equal.)
#[inline(always)]
pub fn decoder_bit<E: Real>(p: E) -> bool {
    p + E::from_f64(0.5) >= E::ONE
}

/// Options of the autoencoder; the defaults are Rockpool's.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderOptions {
    /// Run exactly `num_epoch` epochs (`true`) or chunks with early stopping (`false`, Rockpool's
    /// default).
    pub fixed_epoch: bool,
    /// Epochs (fixed) or the upper limit on epochs (early stopping). Rockpool: 1e7.
    pub num_epoch: usize,
    /// Epochs per chunk (Rockpool: 1000).
    pub chunk: usize,
    /// Improvement of the chunk mean loss below which a chunk counts as not improving (1e-6).
    pub eps: f64,
    /// Non-improving chunks tolerated before stopping (5: the sixth stops).
    pub patience: usize,
    /// Adam's learning rate (Rockpool: 1e-4).
    pub step_size: f64,
    /// Factor of the negative-code penalty (1e3).
    pub penalty: f64,
    /// Seed of the initial encoder and decoder (stream = core number).
    pub seed: u64,
    /// Arithmetic precision (Rockpool: `f32`).
    pub precision: Precision,
    /// Rockpool's quirks (compatibility mode, the default): the scale `1 / (max - min + 1)`, Adam's step
    /// index restarting in every chunk, and the step's derivative `p` instead of 1. Off: the scale
    /// `1 / max`, one continuous step index, the plain straight-through derivative.
    pub rockpool_quirks: bool,
}

impl Default for AutoencoderOptions {
    fn default() -> AutoencoderOptions {
        AutoencoderOptions {
            fixed_epoch: false,
            num_epoch: 10_000_000,
            chunk: 1000,
            eps: 1e-6,
            patience: 5,
            step_size: 1e-4,
            penalty: 1e3,
            seed: 0,
            precision: Precision::F32,
            rockpool_quirks: true,
        }
    }
}

/// Initial encoder `[n, 4]` and decoder `[4, n]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderInit {
    /// Encoder weights.
    pub encoder: Vec<f64>,
    /// Decoder weights.
    pub decoder: Vec<f64>,
}

impl AutoencoderInit {
    /// Rockpool's Kaiming-uniform draws for `n` magnitudes, from ChaCha8 (`seed`, stream `core`),
    /// rounded to `f32`.
    pub fn draw(n: usize, seed: u64, core: usize) -> AutoencoderInit {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(core as u64);
        let mut uniform = |bound: f64, count: usize| -> Vec<f64> {
            (0..count)
                .map(|_| f64::from((bound * (2.0 * rng.r#gen::<f64>() - 1.0)) as f32))
                .collect()
        };
        let encoder = uniform((6.0 / n as f64).sqrt(), n * BASE_WEIGHTS);
        let decoder = uniform((6.0 / BASE_WEIGHTS as f64).sqrt(), n * BASE_WEIGHTS);
        AutoencoderInit { encoder, decoder }
    }
}

/// Everything one core's autoencoder run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderRun {
    /// The magnitudes, in Rockpool's order (as computed in the run's precision).
    pub w_flat: Vec<f64>,
    /// `s = 1 / (max - min + 1)`.
    pub scale: f64,
    /// Loss of every epoch, evaluated before its update.
    pub loss: Vec<f64>,
    /// Final code (base weights in scaled units).
    pub code: [f64; BASE_WEIGHTS],
    /// Final mask of every magnitude (bit k selects `Iw_k`).
    pub masks: Vec<u8>,
    /// `Iw_k = code_k Iscale / s` (A); may be negative, as in Rockpool.
    pub iw: [f64; BASE_WEIGHTS],
    /// Final encoder `[n, 4]`.
    pub encoder: Vec<f64>,
    /// Final decoder `[4, n]`.
    pub decoder: Vec<f64>,
}

/// The code, masks and base currents the autoencoder's weights decode to, for magnitudes `w_flat`.
/// Deterministic (no training): used to check decoding against Rockpool's final weights.
pub fn decode(
    w_flat: &[f64],
    encoder: &[f64],
    decoder: &[f64],
    i_scale: f64,
    precision: Precision,
) -> AutoencoderRun {
    match precision {
        Precision::F32 => decode_in::<f32>(w_flat, encoder, decoder, i_scale, Vec::new(), true),
        Precision::F64 => decode_in::<f64>(w_flat, encoder, decoder, i_scale, Vec::new(), true),
    }
}

fn cast<E: Real>(v: &[f64]) -> Vec<E> {
    v.iter().map(|&x| E::from_f64(x)).collect()
}

fn to_f64<E: Real>(v: &[E]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// `(w, s, x = s w)` in `E`; `s = 1 / (max - min + 1)` with Rockpool's quirk, `1 / max` without.
fn scaled<E: Real>(w_flat: &[f64], quirks: bool) -> (Vec<E>, E, Vec<E>) {
    let w: Vec<E> = cast(w_flat);
    let max = w.iter().copied().fold(
        E::from_f64(f64::NEG_INFINITY),
        |a, b| {
            if b > a { b } else { a }
        },
    );
    let min = w
        .iter()
        .copied()
        .fold(E::from_f64(f64::INFINITY), |a, b| if b < a { b } else { a });
    let one = E::from_f64(1.0);
    let s = if quirks {
        one / (max - min + one)
    } else {
        one / max
    };
    let x = w.iter().map(|&v| s * v).collect();
    (w, s, x)
}

fn decode_in<E: Real>(
    w_flat: &[f64],
    encoder: &[f64],
    decoder: &[f64],
    i_scale: f64,
    loss: Vec<f64>,
    quirks: bool,
) -> AutoencoderRun {
    let n = w_flat.len();
    let (w, s, x) = scaled::<E>(w_flat, quirks);
    let enc: Vec<E> = cast(encoder);
    let dec: Vec<E> = cast(decoder);
    let mut code = [E::from_f64(0.0); BASE_WEIGHTS];
    for (k, c) in code.iter_mut().enumerate() {
        for j in 0..n {
            *c = *c + x[j] * enc[j * BASE_WEIGHTS + k];
        }
    }
    let mut masks = vec![0u8; n];
    for k in 0..BASE_WEIGHTS {
        for (j, m) in masks.iter_mut().enumerate() {
            let p = sigmoid(dec[k * n + j]);
            if decoder_bit(p) {
                *m |= 1 << k;
            }
        }
    }
    let iscale = E::from_f64(i_scale);
    AutoencoderRun {
        w_flat: to_f64(&w),
        scale: s.to_f64(),
        loss,
        code: code.map(|c| c.to_f64()),
        masks,
        iw: code.map(|c| (c * iscale / s).to_f64()),
        encoder: to_f64(&enc),
        decoder: to_f64(&dec),
    }
}

/// `1 / (1 + exp(-d))` with the kernel's vectorisable exp (within 2 ulp; JAX's is an approximation
/// too). Below -87 the sigmoid is 1 in either precision, so the argument is clamped into the kernel's
/// range.
#[inline(always)]
fn sigmoid<E: Real>(d: E) -> E {
    E::ONE / (E::ONE + (-d).max_with(E::from_f64(-87.0)).kernel_exp())
}

/// The loss and its gradient in one pass, with its scratch memory (allocated once per core).
///
/// With `code = x E`, `p = sigmoid(D)`, `B = step(p)`, `r = code B - x`:
/// `dL/dcode_k = sum_j (2 r_j / n) B_kj - penalty exp(-code_k) [code_k < 0]` (half at a tie, JAX's
/// rule for `min`), `dL/dE_jk = x_j dL/dcode_k`, `dL/dD_kj = (2 r_j / n) code_k p_kj p_kj (1 - p_kj)`.
struct Fused<E> {
    /// Rockpool's derivative of the step, `p` (true), or the plain straight-through 1.
    probability_weighted: bool,
    p: Vec<E>,
    bits: Vec<E>,
    g_recon: Vec<E>,
    g_enc: Vec<E>,
    g_dec: Vec<E>,
}

impl<E: Real> Fused<E> {
    fn new(n: usize) -> Fused<E> {
        let z = E::from_f64(0.0);
        Fused {
            probability_weighted: true,
            p: vec![z; 4 * n],
            bits: vec![z; 4 * n],
            g_recon: vec![z; n],
            g_enc: vec![z; 4 * n],
            g_dec: vec![z; 4 * n],
        }
    }

    /// Fills `g_enc` and `g_dec`; returns the loss.
    fn loss_and_grad(&mut self, x: &[E], enc: &[E], dec: &[E], penalty: E) -> E {
        let n = x.len();
        let (zero, one, two) = (E::from_f64(0.0), E::from_f64(1.0), E::from_f64(2.0));
        let mut code = [zero; BASE_WEIGHTS];
        for (j, &xj) in x.iter().enumerate() {
            for (k, c) in code.iter_mut().enumerate() {
                *c = *c + xj * enc[j * BASE_WEIGHTS + k];
            }
        }
        for ((p, b), &d) in self.p.iter_mut().zip(self.bits.iter_mut()).zip(dec) {
            *p = sigmoid(d);
            *b = if decoder_bit(*p) { one } else { zero };
        }
        let inv_n = one / E::from_f64(n as f64);
        let mut sse = zero;
        for (j, (&xj, g)) in x.iter().zip(self.g_recon.iter_mut()).enumerate() {
            let mut recon = zero;
            for (k, &c) in code.iter().enumerate() {
                recon = recon + c * self.bits[k * n + j];
            }
            let r = recon - xj;
            sse = sse + r * r;
            *g = two * r * inv_n;
        }
        let mut g_code = [zero; BASE_WEIGHTS];
        let mut pen = zero;
        for k in 0..BASE_WEIGHTS {
            let row = &self.bits[k * n..(k + 1) * n];
            let mut g = zero;
            for (&gr, &b) in self.g_recon.iter().zip(row) {
                g = g + gr * b;
            }
            let c = code[k];
            let neg = if c < zero { c } else { zero };
            let e = (-neg).exp();
            pen = pen + e;
            // d exp(-min(c, 0)) / dc = -exp(-c) below 0, 0 above, half of that at the tie.
            let slope = if c < zero {
                one
            } else if c == zero {
                E::from_f64(0.5)
            } else {
                zero
            };
            g_code[k] = g - penalty * e * slope;
        }
        for (&xj, row) in x.iter().zip(self.g_enc.chunks_exact_mut(BASE_WEIGHTS)) {
            for (g, &gc) in row.iter_mut().zip(&g_code) {
                *g = xj * gc;
            }
        }
        for (k, &c) in code.iter().enumerate() {
            let rows = self.g_dec[k * n..(k + 1) * n]
                .iter_mut()
                .zip(&self.p[k * n..(k + 1) * n]);
            for ((g, &p), &gr) in rows.zip(&self.g_recon) {
                let ste = if self.probability_weighted { p } else { one };
                *g = gr * c * ste * (p * (one - p));
            }
        }
        sse * inv_n + (pen - E::from_f64(BASE_WEIGHTS as f64)) * penalty
    }
}

/// Trains the autoencoder on one core's magnitudes (`w_flat`, at least one, all non-zero) from `init`.
pub fn train(
    w_flat: &[f64],
    init: &AutoencoderInit,
    i_scale: f64,
    opts: &AutoencoderOptions,
) -> AutoencoderRun {
    match opts.precision {
        Precision::F32 => train_in::<f32>(w_flat, init, i_scale, opts),
        Precision::F64 => train_in::<f64>(w_flat, init, i_scale, opts),
    }
}

fn train_in<E: Real>(
    w_flat: &[f64],
    init: &AutoencoderInit,
    i_scale: f64,
    opts: &AutoencoderOptions,
) -> AutoencoderRun {
    let quirks = opts.rockpool_quirks;
    let (_, _, x) = scaled::<E>(w_flat, quirks);
    let mut params: [Vec<E>; 2] = [cast(&init.encoder), cast(&init.decoder)];
    let mut m: [Vec<E>; 2] = [
        vec![E::from_f64(0.0); x.len() * 4],
        vec![E::from_f64(0.0); x.len() * 4],
    ];
    let mut v = m.clone();
    let mut fused = Fused::<E>::new(x.len());
    fused.probability_weighted = quirks;
    let penalty = E::from_f64(opts.penalty);
    // Rockpool's constants are Python floats, rounded to E where they meet E values.
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    let b1e = E::from_f64(b1);
    let b2e = E::from_f64(b2);
    let (omb1, omb2) = (E::from_f64(1.0 - b1), E::from_f64(1.0 - b2));
    let (lr, eps_e, one) = (
        E::from_f64(opts.step_size),
        E::from_f64(eps),
        E::from_f64(1.0),
    );
    let mut loss = Vec::new();
    let mut epoch = |params: &mut [Vec<E>; 2], i: usize, loss: &mut Vec<f64>| {
        let value = fused.loss_and_grad(&x, &params[0], &params[1], penalty);
        loss.push(value.to_f64());
        let t = i32::try_from(i + 1).unwrap_or(i32::MAX);
        let c1 = one - E::from_f64(b1e.to_f64().powi(t));
        let c2 = one - E::from_f64(b2e.to_f64().powi(t));
        for (p, grads) in [&fused.g_enc, &fused.g_dec].into_iter().enumerate() {
            // Slices zipped, so that the loop has no bounds check and vectorises.
            let state = m[p].iter_mut().zip(v[p].iter_mut());
            for ((x, &g), (m, v)) in params[p].iter_mut().zip(grads).zip(state) {
                *m = omb1 * g + b1e * *m;
                *v = omb2 * (g * g) + b2e * *v;
                let mhat = *m / c1;
                let vhat = *v / c2;
                *x = *x - lr * mhat / (vhat.sqrt() + eps_e);
            }
        }
    };
    if opts.fixed_epoch {
        for i in 0..opts.num_epoch {
            epoch(&mut params, i, &mut loss);
        }
    } else {
        let chunk = opts.chunk.max(1);
        let (mut best, mut stalled) = (f64::INFINITY, 0);
        for _ in 0..opts.num_epoch / chunk {
            let start = loss.len();
            for i in 0..chunk {
                // Quirk: the step index restarts in every chunk.
                let index = if quirks { i } else { loss.len() };
                epoch(&mut params, index, &mut loss);
            }
            let mean = loss[start..].iter().sum::<f64>() / chunk as f64;
            if best - mean < opts.eps {
                stalled += 1;
                if stalled > opts.patience {
                    break;
                }
            } else {
                stalled = 0;
                best = mean;
            }
        }
    }
    decode_in::<E>(
        w_flat,
        &to_f64(&params[0]),
        &to_f64(&params[1]),
        i_scale,
        loss,
        quirks,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynap_autodiff::BitAutoencoder;

    /// The quantizer's decision rule is the tape's, at and around the threshold, in both precisions.
    #[test]
    fn the_decoder_bit_is_the_tapes() {
        let around = |x: f64| [x.next_down(), x, x.next_up()];
        for p in [0.0, 0.25, 0.4999999, 0.5, 0.5000001, 0.75, 1.0]
            .into_iter()
            .flat_map(around)
        {
            assert_eq!(decoder_bit(p), dynap_autodiff::decoder_bit(p), "f64 {p:e}");
            let q = p as f32;
            for q in [q.next_down(), q, q.next_up()] {
                assert_eq!(decoder_bit(q), dynap_autodiff::decoder_bit(q), "f32 {q:e}");
            }
        }
    }

    #[test]
    fn the_fused_gradient_equals_dfdx_tape() {
        let n = 23;
        let x: Vec<f64> = (0..n).map(|j| 0.05 + 0.041 * j as f64).collect();
        let init = AutoencoderInit::draw(n, 3, 0);
        let mut enc = init.encoder.clone();
        enc[5] = -2.0; // a negative code: the penalty is exercised
        let mut fused = Fused::new(n);
        let loss = fused.loss_and_grad(&x, &enc, &init.decoder, 1e3);
        let tape = BitAutoencoder::new().loss_and_grad(&x, &enc, &init.decoder, 1e3);
        assert!(
            (loss - tape.loss).abs() <= 1e-12 * tape.loss.abs(),
            "{loss} {}",
            tape.loss
        );
        assert!(loss > 1.0);
        for (a, b) in fused
            .g_enc
            .iter()
            .chain(&fused.g_dec)
            .zip(tape.encoder.iter().chain(&tape.decoder))
        {
            assert!((a - b).abs() <= 1e-11 * b.abs().max(1e-6), "{a} vs {b}");
        }
    }
}
