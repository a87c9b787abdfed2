//! The Containerfile lexer and parser must never panic: any text is a Containerfile or an
//! error naming file:line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = assembler::containerfile::parse(text, std::path::Path::new("Containerfile"));
    }
});
