//! # dynap-mismatch: fabrication mismatch
//!
//! Rockpool's mismatch model (model.md section 5): every selected value `p` of a network becomes
//! `p (1 + sigma z)` with `z ~ N(0, 1)` drawn per element and `sigma = percent / sigma_rule` (the "3 sigma
//! rule": 99.7 % of deviations within `percent`). *Frozen* mismatch acts on the 24 per-neuron simulation
//! parameters (currents and layout constants, never `Iscale`, `dt` or the weights): one draw is one chip.
//! *Dynamic* mismatch acts on the weights, for noise injection during training. Draws can be truncated so
//! that no value changes sign. Monte-Carlo evaluation runs a network on many simulated chips.
//!
//! Invariants of this crate:
//! * depends on `dynap-model` only (the chip emulator uses it without a tensor library);
//! * all randomness comes from seeded `rand_chacha` streams: a chip is a seed, each parameter has its own
//!   stream, and the same seed gives the same bits whatever the thread count;
//! * `Iscale`, `dt` and the weights are never touched by frozen mismatch.

mod draw;
mod montecarlo;

pub use draw::{DYNAMIC_NAMES, FROZEN, Mismatch, normal_factors};
pub use montecarlo::monte_carlo;
