//! # dynap-mismatch: fabrication mismatch
//!
//! Draw simulated chips of a network (a chip is a seed) and count how many still do the job:
//!
//! ```
//! use dynap_mismatch::{Mismatch, monte_carlo};
//! use dynap_model::Network;
//!
//! let mut net = Network::with_defaults(4);
//! net.params.i_dc = vec![2e-10; 4];
//! let ten_percent = Mismatch::new(0.1);
//! let chip = ten_percent.frozen(&net, 42); // the same seed, the same chip, bit for bit
//! assert_ne!(chip.params.i_tau_mem, net.params.i_tau_mem);
//! assert_eq!(chip.w_rec, net.w_rec, "weights are not touched by frozen mismatch");
//! let leaks: Vec<f64> = monte_carlo(100, 0, |k| ten_percent.frozen(&net, k as u64).params.i_tau_mem[0]);
//! assert_eq!(leaks.len(), 100);
//! ```
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

pub mod derived;
mod draw;
mod montecarlo;

pub use derived::{DENDRITE_NAMES, DERIVED, Derived, Factors, Knob, hold};
pub use draw::{DYNAMIC_NAMES, FROZEN, Mismatch, normal_factors};
pub use montecarlo::monte_carlo;
