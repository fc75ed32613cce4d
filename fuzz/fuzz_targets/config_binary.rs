//! The binary reader: on arbitrary bytes (the header checks), and on arbitrary payloads wrapped in a
//! valid header with a correct checksum (the decoder itself). Never a panic, a hang or an allocation
//! beyond the decoder's limit; a decoded configuration encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dynap_config::from_binary(data);
    let mut wrapped = Vec::with_capacity(data.len() + 24);
    wrapped.extend_from_slice(dynap_config::MAGIC);
    wrapped.extend_from_slice(&dynap_config::FORMAT_VERSION.to_le_bytes());
    wrapped.extend_from_slice(&(data.len() as u64).to_le_bytes());
    wrapped.extend_from_slice(&crc32(data).to_le_bytes());
    wrapped.extend_from_slice(data);
    if let Ok(config) = dynap_config::from_binary(&wrapped) {
        assert_eq!(dynap_config::to_binary(&config), wrapped);
    }
});

/// CRC-32 (IEEE), bit by bit: the fuzz target does not share the crate's implementation.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
