//! `lib/apk/db/installed`: parsing never panics, and what parses renders to text that
//! parses to the same database.
#![no_main]

use apk::installed::InstalledDb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = InstalledDb::from_bytes(data) {
        let text = db.render();
        let again = InstalledDb::parse(&text).expect("a rendered database parses");
        assert_eq!(again.render(), text, "render is stable");
    }
});
