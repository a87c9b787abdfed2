//! The APKINDEX reader (gzip members, tar, text) must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = apk::index::SignedIndex::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entries) = apk::index::parse_text(text) {
            let index = apk::index::ApkIndex { description: None, packages: entries };
            // What we parsed, we can write and read back.
            let again = apk::index::parse_text(&index.render_text()).expect("re-parse");
            assert_eq!(again.len(), index.packages.len());
        }
    }
});
