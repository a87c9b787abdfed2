//! The same properties as the fuzz targets (`fuzz/`), on stable and in every test run:
//! readers never panic on arbitrary or mutated input.

use apk::package::{Package, ReadLimits};
use proptest::prelude::*;

fn small_limits() -> ReadLimits {
    ReadLimits {
        max_control: 1 << 20,
        max_data: 16 << 20,
        max_ratio: 250,
        max_data_floor: 4 << 20,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn package_reader_survives_mutations(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fs_err::read(&testkit::fixture_packages()[which]).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
        bytes.truncate(keep);
        if let Ok(pkg) = Package::read(&bytes[..], small_limits()) {
            let _ = pkg.verify(&testkit::fixture_keyring());
        }
    }

    #[test]
    fn index_reader_survives_mutations(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = fs_err::read(testkit::fixture("repo/x86_64/APKINDEX.tar.gz")).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(idx) = apk::index::SignedIndex::parse(&bytes) {
            let _ = idx.verify(&testkit::fixture_keyring());
        }
    }

    #[test]
    fn text_parsers_survive_anything(text in "\\PC{0,400}", bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = apk::index::parse_text(&text);
        let _ = apk::pkginfo::PkgInfo::parse(text.as_bytes());
        let _ = apk::dep::parse_list(&text);
        let _ = Package::read(&bytes[..], small_limits());
        let _ = apk::index::SignedIndex::parse(&bytes);
    }
}
