//! Ignore files (`.containerignore`, `.dockerignore`; `--exclude` patterns are the same):
//! any text parses or is refused with its line, and matching never panics.
#![no_main]

use std::path::Path;

use assembler::dockerignore::DockerIgnore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The last line doubles as a path to match, so patterns and paths meet.
    let probe = text.lines().last().unwrap_or_default();
    if let Ok(ignore) = DockerIgnore::parse(text, Path::new(".dockerignore")) {
        for p in [probe, "a/b/c", "src/main.rs", ".git"] {
            let _ = ignore.is_ignored(Path::new(p));
        }
    }
});
