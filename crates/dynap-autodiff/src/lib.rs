//! # dynap-autodiff: gradients through DynapSim
//!
//! Train a network by gradient descent through the chip model, without touching dfdx:
//!
//! ```
//! use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer};
//! use dynap_model::{Matrix, Network};
//!
//! let mut net = Network::with_defaults(2);
//! net.w_in = Matrix::from_vec(3, 2, vec![20.0, 0.0, 20.0, 0.0, 0.0, 5.0]);
//! let mut trainer = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2)?;
//! let x = SpikeInput::new(vec![1.0; 50 * 3], 1, 50, 3)?; // [batch, steps, channels]
//! let loss = Loss::CountMse { target: vec![4.0, 0.0] };
//! let first = trainer.step(&x, &loss, None)?;
//! for _ in 0..10 {
//!     trainer.step(&x, &loss, None)?;
//! }
//! assert!(trainer.step(&x, &loss, None)? <= first);
//! let trained = trainer.network();
//! # Ok::<(), dynap_autodiff::Error>(())
//! ```
//!
//! The simulator as one operation on dfdx's tape ([`DynapSimLayer`]) whose backward pass is the fused
//! adjoint of `dynap-model`; the loss and gradient of Rockpool's quantization autoencoder
//! ([`BitAutoencoder`], trained by `dynap-quant`); losses on output spikes ([`Loss`], also on the tape with
//! [`loss_on_tape`]); trainable bias currents in log space, per neuron or per core
//! ([`CurrentTraining`]); and Adam ([`Adam`]) over weights and currents together.
//!
//! Invariants of this crate:
//! * dfdx is sealed here: no dfdx type appears in a public signature of any other crate;
//! * gradients follow JAX's rules exactly (0.5 at clip and max ties; Rockpool's `step_pwl` surrogate
//!   passes nothing to `Ispkthr`), so they can be checked against Rockpool's;
//! * checked three ways: golden gradients (the `grad` cases of the golden harness), an independent
//!   composition of the same step from ordinary dfdx operations (`reference.rs`, tests only), and
//!   central finite differences in `f64` with a smooth spike (in `dynap-model`);
//! * the same inputs give the same bits, whatever the thread count.

pub mod autoencoder;
#[cfg(test)]
mod chip_reference;
mod error;
pub mod layer;
pub mod loss;
pub mod optimizer;
#[cfg(test)]
mod reference;
mod trainer;

pub use autoencoder::{AutoencoderGrad, BitAutoencoder, TapeFloat, decoder_bit};
pub use error::Error;
pub use layer::{
    AUTO_CHECKPOINT_BYTES, AUTO_CHECKPOINT_EVERY, CurrentTraining, DynapSimLayer, LayerParams,
    Raster, Sharing, SpikeInput,
};
pub use loss::{Activity, Loss, SpikeGradient, TargetShape, loss_on_tape};
pub use optimizer::Adam;
pub use trainer::{ParamGradients, Trainer, TrainerState, WeightFactors};
