//! # dynap-autodiff
//!
//! Gradients through DynapSim: the simulator as one dfdx operation whose backward pass is the fused adjoint of dynap-model, losses, readouts and optimizers.
//!
//! **Status: not built yet.** This crate holds only its documentation until issue 3 (gradients) lands; it exports
//! nothing, so nothing can pretend to work.
//!
//! Invariants it will keep:
//! * dfdx is sealed here: no dfdx type appears in a public signature of any other crate.
//! * Gradients follow JAX's rules exactly (0.5 at clip and max ties; Rockpool's step_pwl surrogate passes nothing to Ispkthr), so they can be checked against Rockpool's.
//! * Checked three ways: golden gradients, an independent dfdx-composed reference, and central finite differences in f64.
