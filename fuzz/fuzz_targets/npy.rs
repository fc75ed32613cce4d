//! The NPY reader (weights saved by NumPy) on arbitrary bytes: an array or an error, never a panic, and
//! never an allocation larger than the bytes justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dynap_model::read_npy(data);
});
