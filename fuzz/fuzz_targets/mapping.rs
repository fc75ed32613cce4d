//! The `mapping.json` and tag allow-list readers on arbitrary text: a mapping or an error with its path,
//! never a panic; what they accept round-trips.
#![no_main]

use dynap_config::format::{read_mapping, read_tag_allow, write_mapping, write_tag_allow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = read_mapping(text) {
        assert_eq!(read_mapping(&write_mapping(&m)).expect("round trip"), m);
    }
    if let Ok(t) = read_tag_allow(text) {
        assert_eq!(read_tag_allow(&write_tag_allow(&t)).expect("round trip"), t);
    }
});
