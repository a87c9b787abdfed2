//! `.PKGINFO`, dependency atoms and versions must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = apk::pkginfo::PkgInfo::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = apk::dep::parse_list(text);
        let _ = apk::version::is_valid(text);
        let _ = apk::version::compare(text, "1.0-r0");
    }
});
