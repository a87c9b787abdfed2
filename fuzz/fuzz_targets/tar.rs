//! The tar reader (ustar, PAX, GNU long names) never panics and never reads without bound.
#![no_main]

use std::io::Read as _;

use apk::tar::read::TarReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = TarReader::new(data);
    let mut sink = Vec::new();
    while let Ok(Some(_entry)) = reader.next_entry() {
        sink.clear();
        if reader.content().read_to_end(&mut sink).is_err() {
            return;
        }
    }
    let _ = reader.check_tail();
});
