//! The samna JSON reader on arbitrary bytes: a configuration or a list of problems, never a panic or a
//! hang. (Writing back is checked by the crate's property tests: here a full-size write per accepted
//! input would slow the fuzzer a thousandfold.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = dynap_config::from_json(text) {
        let _ = dynap_config::validate(&config, None);
    }
});
