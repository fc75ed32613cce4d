//! The event wire format's decoder on arbitrary bytes: events or an error naming the record, never a
//! panic; what decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = dynap_hw::decode(data) {
        assert_eq!(dynap_hw::encode(&events), data);
    }
});
