//! The checkpoint decoder on arbitrary bytes: a checkpoint or the reason it is refused, never a panic
//! and never an allocation the bytes do not hold; what it accepts encodes and decodes back equal.
#![no_main]

use dynap_train::checkpoint::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = decode(data) {
        assert_eq!(decode(&encode(&c)).expect("round trip"), c);
    }
});
