//! The compact binary encoding: a header, then the configuration in bincode 2 (standard
//! configuration: little-endian, variable-length integers).
//!
//! ```text
//! offset  size  field
//! 0       8     magic "DYNAPCFG"
//! 8       4     format version (u32 LE), currently 1
//! 12      8     payload length in bytes (u64 LE)
//! 20      4     CRC-32 (IEEE) of the payload (u32 LE)
//! 24      n     payload
//! ```
//!
//! A file from a newer format version, with a bad checksum, truncated or with trailing bytes is refused
//! with an error that says which.

use crate::model::Configuration;
use crate::validate::Violation;
use std::fmt;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"DYNAPCFG";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 24;

/// Why a binary configuration cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryError {
    /// The file does not start with the magic number.
    NotAConfiguration,
    /// The file is shorter than its header says.
    Truncated {
        /// Bytes the header and payload need.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// Bytes after the payload.
    TrailingBytes {
        /// How many.
        count: u64,
    },
    /// Written by a newer version of the format.
    NewerVersion {
        /// The file's version.
        found: u32,
    },
    /// The payload does not match its checksum.
    Checksum {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the payload.
        found: u32,
    },
    /// The payload does not decode.
    Payload {
        /// The decoder's message (bincode's).
        problem: String,
    },
    /// The payload decodes to a value the chip cannot take (the first found).
    Invalid(Box<Violation>),
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::NotAConfiguration => write!(
                f,
                "not a binary dynap configuration (the file does not start with \"DYNAPCFG\")"
            ),
            BinaryError::Truncated { expected, found } => write!(
                f,
                "truncated: the header announces {expected} bytes, the file has {found}"
            ),
            BinaryError::TrailingBytes { count } => {
                write!(f, "{count} unexpected bytes after the configuration")
            }
            BinaryError::NewerVersion { found } => write!(
                f,
                "written by a newer format version ({found}); this program reads version {FORMAT_VERSION}: update it"
            ),
            BinaryError::Checksum { expected, found } => write!(
                f,
                "checksum mismatch (header {expected:08x}, payload {found:08x}): the file is corrupted"
            ),
            BinaryError::Payload { problem } => {
                write!(f, "the configuration does not decode: {problem}")
            }
            BinaryError::Invalid(v) => write!(f, "the configuration does not decode: {v}"),
        }
    }
}

impl std::error::Error for BinaryError {}

/// Encodes a configuration.
pub fn to_binary(config: &Configuration) -> Vec<u8> {
    let payload = bincode::encode_to_vec(config, bincode::config::standard())
        .expect("encoding into memory cannot fail");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes a configuration written by [`to_binary`]; the decoded values are range-checked again.
pub fn from_binary(bytes: &[u8]) -> Result<Configuration, BinaryError> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(BinaryError::NotAConfiguration);
    }
    if bytes.len() < HEADER {
        return Err(BinaryError::Truncated {
            expected: HEADER as u64,
            found: bytes.len() as u64,
        });
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = word(8);
    if version > FORMAT_VERSION {
        return Err(BinaryError::NewerVersion { found: version });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let total = (HEADER as u64).saturating_add(len);
    if (bytes.len() as u64) < total {
        return Err(BinaryError::Truncated {
            expected: total,
            found: bytes.len() as u64,
        });
    }
    if (bytes.len() as u64) > total {
        return Err(BinaryError::TrailingBytes {
            count: bytes.len() as u64 - total,
        });
    }
    let payload = &bytes[HEADER..];
    let expected = word(20);
    let found = crc32fast::hash(payload);
    if expected != found {
        return Err(BinaryError::Checksum { expected, found });
    }
    let limit = bincode::config::standard().with_limit::<{ 1 << 30 }>();
    let (config, used): (Configuration, usize) = bincode::decode_from_slice(payload, limit)
        .map_err(|e| BinaryError::Payload {
            problem: e.to_string(),
        })?;
    if used != payload.len() {
        return Err(BinaryError::TrailingBytes {
            count: (payload.len() - used) as u64,
        });
    }
    crate::validate::check_ranges(&config).map_err(BinaryError::Invalid)?;
    Ok(config)
}
