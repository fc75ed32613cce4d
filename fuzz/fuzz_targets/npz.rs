//! The dataset reader on arbitrary bytes: an NPZ archive (ZIP central directory, stored or deflated
//! members, CRC-32, NPY members) read as a dataset of either kind of targets, or an error naming the
//! problem; never a panic, and never an allocation larger than the bytes justify (a deflated member
//! inflates at most 1032 times its compressed size).
#![no_main]

use dynap_train::data::{Dataset, Npz, TargetKind};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(npz) = Npz::parse(data) {
        for name in npz.names() {
            let _ = npz.array(name);
        }
    }
    for kind in [TargetKind::Classes, TargetKind::Regression] {
        let _ = Dataset::from_npz(data, Path::new("fuzz.npz"), kind);
    }
});
