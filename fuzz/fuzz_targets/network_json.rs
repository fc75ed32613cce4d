//! The network JSON reader on arbitrary text: a network or an error with its path, never a panic; what
//! it accepts writes back and reads back equal.
#![no_main]

use dynap_config::format::{read_network, write_network};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = read_network(text) {
        let again = read_network(&write_network(&file)).expect("what was read writes back readable");
        assert_eq!(again, file);
    }
});
