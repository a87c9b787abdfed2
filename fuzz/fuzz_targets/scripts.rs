//! `lib/apk/db/scripts.tar`: parsing never panics, and what parses writes back to bytes
//! that parse to the same scripts.
#![no_main]

use apk::installed::ScriptsDb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = ScriptsDb::parse(data) {
        if let Ok(bytes) = db.to_bytes() {
            let again = ScriptsDb::parse(&bytes).expect("written scripts.tar parses");
            assert_eq!(again, db);
        }
    }
});
