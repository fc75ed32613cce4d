//! The JSON files that travel with configurations, each reader beside its writer: the network JSON
//! ([`read_network`], [`write_network`]), the quantize output, which `dynap unmap` also writes
//! ([`read_quantized`], [`write_quantized`]), `mapping.json` ([`read_mapping`], [`write_mapping`]) and
//! the per-core tag allow-lists of `dynap map --tags` ([`read_tag_allow`], [`write_tag_allow`]), and
//! chip profiles and the twin's truth ([`read_profile`], [`write_profile`], [`read_neurons`],
//! [`write_neurons`]).
//! Readers take text and writers return text: no I/O here, as in the rest of the crate.
//!
//! The formats are documented key by key in `docs/formats.md` at the repository's root. In short:
//! * matrices (`w_in` `[Nin][N]`, `w_rec` `[N][N]`, masks, signs, dendrites, synapse types) are dense
//!   nested lists, or the sparse object `{"shape": [rows, cols], "row": [...], "col": [...], "val":
//!   [...]}` (COO, entries absent from it are zero); every reader accepts both forms; writers use the
//!   sparse form for a matrix of more than [`SPARSE_ABOVE`] entries of which at most a quarter are
//!   non-zero (then it is no larger than the dense form);
//! * per-neuron values (`Itau_mem`, `C_mem`, ...) are Rockpool's names, each a list of `N` numbers or
//!   one number for all neurons; `iscale` is also read as Rockpool's `Iscale`;
//! * closed sets are parsed here, never defaulted: a misspelled `variant`, `method` or dendrite name is
//!   an error that lists the allowed names;
//! * a network JSON may carry the populations and connections it was described with (`architecture`,
//!   [`NetworkFile::architecture`]); its reader checks that every weight outside their blocks is 0;
//! * keys no format defines are kept ([`NetworkFile::extra`]) and written back, so a user's own
//!   metadata survives a round trip; the reader reports them so a program can warn about a typo.
//!
//! Every error is a [`FormatError`]: the JSON path of the value at fault (`w_rec[3][17]`,
//! `neurons[5].core`, `cores[2].iw`) and what is wrong with it, as data ([`Problem`]).

mod architecture;
mod error;
mod mapping;
mod matrix;
mod network;
mod profile;
mod quantized;
#[cfg(test)]
mod tests;
mod text;

pub use error::{FormatError, Problem};
pub use mapping::{read_mapping, read_tag_allow, write_mapping, write_tag_allow};
pub use matrix::{MAX_MATRIX_ENTRIES, SPARSE_ABOVE};
pub(crate) use network::DENDRITE_NAMES;
pub use network::{NetworkFile, QuantMethod, read_network, write_network};
pub use profile::{
    ChipProfile, NeuronFactors, PROFILE_VERSION, read_neurons, read_profile, write_neurons,
    write_profile,
};
pub use quantized::{CoreEntry, QuantizedFile, read_quantized, write_quantized};

/// Whether a network or quantize JSON holds quantized weights (`w_in_mask` or `w_rec_mask`), without
/// reading its matrices: `dynap map` takes either kind of file.
pub fn is_quantized(text: &str) -> Result<bool, FormatError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        w_in_mask: Option<serde::de::IgnoredAny>,
        w_rec_mask: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = text::parse(text, |d| serde::Deserialize::deserialize(d))?;
    Ok(probe.w_in_mask.is_some() || probe.w_rec_mask.is_some())
}
