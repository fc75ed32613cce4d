//! The chip profile and twin-truth readers on arbitrary text: a profile or an error with its path,
//! never a panic; what they accept round-trips.
#![no_main]

use dynap_config::format::{read_neurons, read_profile, write_neurons, write_profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = read_profile(text) {
        assert_eq!(read_profile(&write_profile(&p)).expect("round trip"), p);
    }
    if let Ok(n) = read_neurons(text) {
        assert_eq!(read_neurons(&write_neurons(&n)).expect("round trip"), n);
    }
});
