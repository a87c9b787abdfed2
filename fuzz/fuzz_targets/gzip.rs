//! The gzip member splitter never panics and honours its output limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(members) = apk::gzip::inflate_members(data, LIMIT) {
        let total: u64 = members.iter().map(|m| m.data.len() as u64).sum();
        assert!(total <= LIMIT, "{total} bytes out past the {LIMIT} limit");
    }
});
