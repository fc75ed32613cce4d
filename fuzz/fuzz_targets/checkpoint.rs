//! The checkpoint decoder on arbitrary bytes: a checkpoint or the reason it is refused, never a panic
//! and never an allocation the bytes do not hold; what it accepts encodes and decodes back to the same
//! bytes (compared as bytes: a corrupted moment may be NaN, which no NaN equals).
#![no_main]

use dynap_train::checkpoint::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = decode(data) {
        let bytes = encode(&c);
        assert_eq!(encode(&decode(&bytes).expect("round trip")), bytes);
    }
});
