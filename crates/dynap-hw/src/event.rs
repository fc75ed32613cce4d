//! Events and their wire format.
//!
//! An event is a destination (core mask, hops, tag: what an SRAM entry holds) and a timestamp in
//! microseconds on the board's 32-bit clock, which wraps after 4294.97 s.
//!
//! Wire format of one event (8 bytes, little-endian), ours, used between the host and the emulator or
//! the samna bridge:
//!
//! ```text
//! bits  0..11  tag (0..2047)
//! bits 11..15  core mask (bit i = core i)
//! bits 15..19  x_hop + 7 (0..14)
//! bits 19..23  y_hop + 7 (0..14)
//! bits 23..32  zero
//! then         timestamp, u32 microseconds
//! ```
//!
//! Decoding refuses a record whose hop fields read 15 (x or y = +8) or whose high bits are set, with
//! the record's index.

use dynap_config::{CoreMask, Destination, Hop, Tag};
use std::fmt;

/// Bytes per encoded event.
pub const EVENT_BYTES: usize = 8;

/// An event: where it goes and when (microseconds on the board's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// Destination: core mask, hops, tag.
    pub destination: Destination,
    /// Timestamp, microseconds (wraps at 2^32).
    pub timestamp: u32,
}

/// A malformed record in an event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError {
    /// The record's index in the stream.
    pub index: usize,
    /// What is wrong with it.
    pub problem: CodecProblem,
}

/// What is wrong with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecProblem {
    /// The stream ends inside the record.
    Truncated {
        /// Bytes of the record present (1..8).
        bytes: usize,
    },
    /// Bits 23..32 of the word, which are zero, are set.
    ReservedBits {
        /// The word.
        word: u32,
    },
    /// A hop field reads 15 (a hop of +8).
    Hop {
        /// Which field.
        field: HopField,
        /// The field's 4 bits.
        value: u32,
    },
}

/// A hop field of the wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HopField {
    /// Bits 15..19.
    X,
    /// Bits 19..23.
    Y,
}

impl fmt::Display for HopField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HopField::X => "x_hop",
            HopField::Y => "y_hop",
        })
    }
}

impl fmt::Display for CodecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecProblem::Truncated { bytes } => write!(
                f,
                "the stream ends {bytes} bytes into a record of {EVENT_BYTES}"
            ),
            CodecProblem::ReservedBits { word } => {
                write!(f, "reserved bits set (word {word:#010x})")
            }
            CodecProblem::Hop { field, value } => {
                write!(f, "{field} field {value} is not a hop in -7..=7")
            }
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}: {}", self.index, self.problem)
    }
}

impl std::error::Error for CodecError {}

/// Encodes events into the wire format.
pub fn encode(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * EVENT_BYTES);
    for e in events {
        let d = &e.destination;
        let word = u32::from(d.tag.get())
            | u32::from(d.core.bits()) << 11
            | ((d.x_hop.get() + 7) as u32) << 15
            | ((d.y_hop.get() + 7) as u32) << 19;
        out.extend_from_slice(&word.to_le_bytes());
        out.extend_from_slice(&e.timestamp.to_le_bytes());
    }
    out
}

/// Decodes a stream written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Event>, CodecError> {
    if !bytes.len().is_multiple_of(EVENT_BYTES) {
        return Err(CodecError {
            index: bytes.len() / EVENT_BYTES,
            problem: CodecProblem::Truncated {
                bytes: bytes.len() % EVENT_BYTES,
            },
        });
    }
    bytes
        .chunks_exact(EVENT_BYTES)
        .enumerate()
        .map(|(index, r)| {
            let word = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            let timestamp = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
            let bad = |problem: CodecProblem| CodecError { index, problem };
            if word >> 23 != 0 {
                return Err(bad(CodecProblem::ReservedBits { word }));
            }
            let hop = |value: u32, field: HopField| {
                Hop::new(i64::from(value) - 7).map_err(|_| bad(CodecProblem::Hop { field, value }))
            };
            Ok(Event {
                destination: Destination {
                    tag: Tag::new(i64::from(word & 0x7FF)).expect("11 bits"),
                    core: CoreMask::new(i64::from(word >> 11 & 0xF)).expect("4 bits"),
                    x_hop: hop(word >> 15 & 0xF, HopField::X)?,
                    y_hop: hop(word >> 19 & 0xF, HopField::Y)?,
                },
                timestamp,
            })
        })
        .collect()
}

/// Unwraps 32-bit timestamps into a 64-bit time line, given the last time seen (microseconds): the
/// nearest 64-bit value whose low 32 bits are `ts`, going forward by less than 2^31 µs (35 min).
pub fn unwrap_time(last: u64, ts: u32) -> u64 {
    let delta = ts.wrapping_sub(last as u32);
    if delta < 1 << 31 {
        last + u64::from(delta)
    } else {
        last.saturating_sub(u64::from(delta.wrapping_neg()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(tag: i64, core: i64, x: i64, y: i64, t: u32) -> Event {
        Event {
            destination: Destination {
                tag: Tag::new(tag).unwrap(),
                core: CoreMask::new(core).unwrap(),
                x_hop: Hop::new(x).unwrap(),
                y_hop: Hop::new(y).unwrap(),
            },
            timestamp: t,
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(
            raw in proptest::collection::vec((0i64..2048, 0i64..16, -7i64..=7, -7i64..=7, any::<u32>()), 0..50)
        ) {
            let events: Vec<Event> = raw.iter().map(|&(t, c, x, y, ts)| event(t, c, x, y, ts)).collect();
            let bytes = encode(&events);
            prop_assert_eq!(bytes.len(), events.len() * EVENT_BYTES);
            prop_assert_eq!(decode(&bytes).unwrap(), events);
        }

        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(events) = decode(&bytes) {
                prop_assert_eq!(encode(&events), bytes);
            }
        }

        #[test]
        fn unwrapping_follows_the_clock(start in any::<u64>(), steps in proptest::collection::vec(0u32..(1 << 30), 1..20)) {
            let start = start >> 2;
            let mut t = start;
            let mut seen = start;
            for s in steps {
                t += u64::from(s);
                seen = unwrap_time(seen, t as u32);
                prop_assert_eq!(seen, t);
            }
        }
    }

    #[test]
    fn bad_records_are_named() {
        let mut bytes = encode(&[event(5, 1, 0, 0, 10), event(6, 1, 7, -7, 11)]);
        bytes[8 + 1] |= 0x80; // x_hop field of record 1 becomes 15
        bytes[8 + 2] |= 0x07;
        let e = decode(&bytes).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(
            e.problem,
            CodecProblem::Hop {
                field: HopField::X,
                value: 15
            }
        );
        assert!(e.to_string().contains("x_hop field 15"), "{e}");
        assert_eq!(
            decode(&[0; 9]).unwrap_err().to_string(),
            "event 1: the stream ends 1 bytes into a record of 8"
        );
        let mut high = encode(&[event(1, 1, 0, 0, 0)]);
        high[3] = 0x80;
        let e = decode(&high).unwrap_err();
        assert_eq!(
            e,
            CodecError {
                index: 0,
                problem: CodecProblem::ReservedBits { word: 0x803B_8801 }
            }
        );
        assert!(e.to_string().contains("reserved bits"), "{e}");
        assert_eq!(
            decode(&[0; 9]).unwrap_err().problem,
            CodecProblem::Truncated { bytes: 1 }
        );
        assert_eq!(
            unwrap_time(u64::from(u32::MAX) - 5, 10),
            u64::from(u32::MAX) + 11
        );
    }
}
