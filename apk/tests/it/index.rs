//! Indexes: the fixtures read and verify, ours are structurally identical and verify.

use apk::index::{ApkIndex, IndexEntry, SignedIndex};
use apk::package::{Package, ReadLimits};
use apk::sign::SignatureType;

fn fixture_index(dir: &str) -> (Vec<u8>, SignedIndex) {
    let bytes = fs_err::read(testkit::fixture(&format!("{dir}/x86_64/APKINDEX.tar.gz"))).unwrap();
    let idx = SignedIndex::parse(&bytes).unwrap();
    (bytes, idx)
}

fn inflate_members(bytes: &[u8]) -> Vec<Vec<u8>> {
    apk::gzip::inflate_members(bytes, 1 << 30)
        .unwrap()
        .into_iter()
        .map(|m| m.data)
        .collect()
}

#[test]
fn fixture_indexes_read_and_verify_rsa_and_rsa256() {
    let keys = testkit::fixture_keyring();
    for (dir, prefix) in [("repo", ".SIGN.RSA."), ("repo-rsa256", ".SIGN.RSA256.")] {
        let (_, idx) = fixture_index(dir);
        let sig = idx.verify(&keys).unwrap();
        assert!(sig.name.starts_with(prefix), "{}", sig.name);
        assert_eq!(idx.index.description.as_deref(), Some("fixture repo"));
        let names: Vec<_> = idx.index.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hello", "libcstub", "world"]);
        let world = &idx.index.packages[2];
        assert_eq!(world.depends, ["hello>=1.0", "so:libc.so.6"]);
        assert_eq!(world.version, "2.1_rc1-r3");
    }
}

#[test]
fn our_index_member_is_byte_identical_to_apk_index() {
    let (bytes, idx) = fixture_index("repo");
    let theirs = inflate_members(&bytes);
    let ours = inflate_members(&idx.index.index_member(1_700_000_000));
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0], theirs[1], "uncompressed DESCRIPTION+APKINDEX tar");
}

#[test]
fn index_built_from_the_fixture_packages_matches_and_verifies() {
    let mut index = ApkIndex {
        description: Some("fixture repo".into()),
        packages: Vec::new(),
    };
    // Added in reverse to exercise the sorted insert.
    for path in testkit::fixture_packages().iter().rev() {
        let pkg = Package::open(path, ReadLimits::default()).unwrap();
        index.upsert(IndexEntry::from_package(&pkg));
    }
    let (_, fixture) = fixture_index("repo");
    assert_eq!(index.render_text(), fixture.index.render_text());

    let key = testkit::fixture_key();
    for kind in [SignatureType::Rsa, SignatureType::Rsa256] {
        let bytes = index.to_bytes(&[(&key, kind)], 1_700_000_000).unwrap();
        let parsed = SignedIndex::parse(&bytes).unwrap();
        parsed.verify(&testkit::fixture_keyring()).unwrap();
        assert_eq!(parsed.index, index);
        // Twice → same bytes.
        assert_eq!(
            bytes,
            index.to_bytes(&[(&key, kind)], 1_700_000_000).unwrap()
        );
    }
    // The RSA-signed fixture is reproduced exactly but for gzip's compressed bytes: the
    // signature member's tar is identical.
    let ours = index
        .to_bytes(&[(&key, SignatureType::Rsa)], 1_700_000_000)
        .unwrap();
    let theirs = fs_err::read(testkit::fixture("repo/x86_64/APKINDEX.tar.gz")).unwrap();
    let (o, t) = (inflate_members(&ours), inflate_members(&theirs));
    assert_eq!(o[0][..1536], t[0][..1536]);
    assert_eq!(o[1], t[1]);
}

#[test]
fn one_byte_change_anywhere_in_an_index_fails() {
    let keys = testkit::fixture_keyring();
    for dir in ["repo", "repo-rsa256"] {
        let (original, idx) = fixture_index(dir);
        let sig_len = original.len() - idx.signed.len();
        let mut harmless = 0;
        for i in 0..original.len() {
            let mut bytes = original.clone();
            bytes[i] ^= 0x01;
            let Ok(changed) = SignedIndex::parse(&bytes) else {
                continue;
            };
            if changed.verify(&keys).is_err() {
                continue;
            }
            // As for packages: only a signature-member change that decodes identically.
            assert!(
                i < sig_len && changed.signatures == idx.signatures,
                "{dir}: byte {i}"
            );
            harmless += 1;
        }
        assert!(harmless < 16, "{dir}: {harmless}");
    }
}

#[test]
fn incremental_update_replaces_and_removes() {
    let (_, idx) = fixture_index("repo");
    let mut index = idx.index.clone();
    let mut newer = index.packages[0].clone();
    newer.version = "1.1-r0".into();
    assert!(index.upsert(newer.clone()).is_none());
    assert_eq!(index.packages[1], newer, "versions ascend within a name");
    let mut same = newer.clone();
    same.file_size = 1;
    assert_eq!(index.upsert(same).unwrap().file_size, newer.file_size);
    assert!(index.remove("hello", "1.0-r0").is_some());
    assert_eq!(index.packages.len(), 3);
    assert!(index.remove("hello", "9").is_none());
}

#[test]
fn malformed_lines_name_the_line() {
    let err =
        apk::index::parse_text("C:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\nP:a\nV:1\nbroken\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "APKINDEX line 4: expected `X:value`, found \"broken\""
    );
    let err = apk::index::parse_text("P:a\nV:1\nS:big\n").unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}
