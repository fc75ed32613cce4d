//! The experiment configuration reader on arbitrary text: a configuration or an error naming the key,
//! never a panic; what it accepts writes back and reads back equal.
#![no_main]

use dynap_train::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml(text) {
        assert_eq!(Config::from_toml(&config.to_toml()).expect("round trip"), config);
    }
});
