//! # dynap-config: the DYNAP-SE2 configuration
//!
//! Map a quantized network onto a chip, write it as samna JSON, read it back and validate it:
//!
//! ```
//! use dynap_config::{MapOptions, from_json, map, to_json, validate};
//! use dynap_model::{NeuronParams, QuantMatrix, QuantizedWeights, Variant, WeightMatrix};
//!
//! let w_rec = QuantMatrix::new(WeightMatrix::Recurrent, 2, 2, vec![0, 5, 3, 0], vec![0, 1, -1, 0])?;
//! let weights = QuantizedWeights::new(vec![0, 0], vec![[1e-9, 2e-9, 4e-9, 8e-9]], None, w_rec, 1e-8)?;
//! let mapped = map(&weights, &NeuronParams::defaults(2), 1e-3, Variant::Rockpool, &MapOptions::default())
//!     .map_err(|e| e.to_string())?;
//! let text = to_json(&mapped.config); // what samna loads
//! let config = from_json(&text).map_err(|p| format!("{} problems", p.len()))?;
//! assert!(validate(&config, Some(&mapped.mapping.inputs)).is_empty());
//! assert_eq!(to_json(&config), text, "byte-stable");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The object model of a board's configuration as samna has it ([`Configuration`]: chips of 4 cores of
//! 256 neurons, each with 64 CAM synapses and 4 SRAM destinations, bias parameters per core and chip,
//! latches), samna-compatible JSON in both directions ([`to_json`], [`from_json`]), a compact versioned
//! binary encoding ([`to_binary`], [`from_binary`]), validation of every hardware limit
//! ([`validate()`]), mapping of quantized networks onto cores ([`map()`]) and back ([`unmap`]), whether a
//! network described as populations maps before it is trained ([`check_mappable`]), and the
//! files that travel with configurations ([`format`](mod@format): the network JSON, the quantize output,
//! `mapping.json`, tag allow-lists; readers take text, writers return text). With the cargo feature
//! `nir`, the module `nir` reads and writes NIR graphs (HDF5 bytes, pure Rust) and translates LIF
//! networks to DynapSim and back.
//!
//! Invariants of this crate:
//! * no dfdx: a user who only reads, validates or writes configurations compiles no tensor library;
//! * every field with a hardware range has a checked type, so a [`Configuration`] holds only values the
//!   chip can take; readers report every problem with its place (chip, core, neuron, slot, or the JSON
//!   path), not only the first;
//! * problems are data: a [`Violation`] is a [`Location`] and a [`Rule`] carrying the broken limit's
//!   values, a [`MapError`] a list of [`MapProblem`]s; their `Display` is for people, and no code
//!   reads it;
//! * JSON written by this crate reads back to the same configuration and writes the same bytes; fields it
//!   does not model are kept and written back;
//! * mapping is deterministic, and for a quantized network network -> configuration -> network is exact
//!   (masks, signs, base currents after the bias generator, per-core currents);
//! * it maps quantized networks only ([`dynap_model::QuantizedWeights`]); quantizing a float network
//!   first is `dynap-train`'s job.

mod binary;
mod feasibility;
pub mod format;
mod json;
mod map;
mod model;
#[cfg(feature = "nir")]
pub mod nir;
mod validate;

pub use binary::{BinaryError, FORMAT_VERSION, MAGIC, from_binary, to_binary};
pub use feasibility::{
    PopulationProblem, UnmappableArchitecture, check_mappable, check_mappable_with,
};
pub use json::{JsonProblem, from_json, to_json};
pub use map::{
    CoreBiases, MapError, MapOptions, MapProblem, Mapped, Mapping, NetworkSource, NeuronPlace,
    Unmapped, cluster_by_parameters, core_biases, current_range, deployed_bias, map, snap_current,
    unmap,
};
pub use model::*;
pub use validate::{Location, Rule, Slot, Source, Violation, is_known_bias, validate};

#[cfg(test)]
mod tests;
