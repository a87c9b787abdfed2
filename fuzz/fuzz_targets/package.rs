//! The package reader and verifier must never panic or allocate without bound.
#![no_main]

use apk::package::{Package, ReadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ReadLimits {
        max_control: 1 << 20,
        max_data: 64 << 20,
        max_ratio: 250,
        max_data_floor: 8 << 20,
    };
    if let Ok(pkg) = Package::read(data, limits) {
        let _ = pkg.verify_contents();
        let _ = pkg.identity();
    }
});
