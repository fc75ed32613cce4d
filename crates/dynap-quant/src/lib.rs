//! # dynap-quant
//!
//! Per-core 4-bit weight quantization: Rockpool's autoencoder (faithful, with a compatibility mode for its quirks) and a better alternating least-squares quantizer, with base currents snapped to what the bias generator can make.
//!
//! **Status: not built yet.** This crate holds only its documentation until issue 5 (quantization) lands; it exports
//! nothing, so nothing can pretend to work.
//!
//! Invariants it will keep:
//! * The output is the hardware weight format defined in dynap-model (per-core base currents, 4-bit masks, signs or synapse types), which the simulator runs directly.
//! * Deterministic: the same weights and seed give the same masks and currents.
//! * A core without non-zero weights quantizes to zero masks and zero base currents (where Rockpool crashes).
