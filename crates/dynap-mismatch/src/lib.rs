//! # dynap-mismatch
//!
//! Fabrication mismatch: Rockpool's multiplicative Gaussian model on the 24 frozen parameters, dynamic weight noise, chip instances (one seed, one chip) and Monte-Carlo evaluation over many simulated chips.
//!
//! **Status: not built yet.** This crate holds only its documentation until issue 4 (mismatch-aware training) lands; it exports
//! nothing, so nothing can pretend to work.
//!
//! Invariants it will keep:
//! * Depends on dynap-model only, so the chip emulator can use it without a tensor library.
//! * All randomness comes from seeded rand_chacha streams: a chip instance is a seed, and the same seed gives the same bits whatever the thread count.
//! * Iscale, dt and weights are never touched by frozen mismatch.
