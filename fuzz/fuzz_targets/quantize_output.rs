//! The quantize-output reader on arbitrary text: quantized weights or an error with its path, never a
//! panic; what it accepts writes back and reads back equal.
#![no_main]

use dynap_config::format::{read_quantized, write_quantized};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = dynap_config::format::is_quantized(text);
    if let Ok(file) = read_quantized(text) {
        let again =
            read_quantized(&write_quantized(&file)).expect("what was read writes back readable");
        assert_eq!(again, file);
    }
});
