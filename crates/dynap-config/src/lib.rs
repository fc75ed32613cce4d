//! # dynap-config
//!
//! The DYNAP-SE2 configuration: the object model (chips, cores, neurons, CAM, SRAM, biases, latches), samna-compatible JSON and a versioned binary encoding, validation of every hardware limit, mapping of quantized networks and reverse mapping.
//!
//! **Status: not built yet.** This crate holds only its documentation until issue 6 (configuration) lands; it exports
//! nothing, so nothing can pretend to work.
//!
//! Invariants it will keep:
//! * Does not depend on dfdx: a user who only reads, validates or writes configurations compiles no tensor library.
//! * Maps quantized networks only; quantizing a float network first is orchestrated by dynap-train.
//! * Validation reports every violation, each with where it failed (chip, core, neuron, slot) and the limit.
