//! The vendored fixtures are the shared ones, and every fixture package reads and verifies.

use apk::package::{Package, ReadLimits};

#[test]
fn vendored_fixtures_match_shared() {
    let Some(shared) = testkit::shared_fixtures() else {
        return; // a standalone clone: nothing to compare with
    };
    for entry in walkdir::WalkDir::new(&shared) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(&shared).unwrap();
        let ours = testkit::fixtures().join(rel);
        assert_eq!(
            fs_err::read(entry.path()).unwrap(),
            fs_err::read(&ours).unwrap_or_default(),
            "vendored fixture {} differs from shared/; copy it again",
            rel.display()
        );
    }
}

#[test]
fn every_fixture_package_reads_and_verifies() {
    let keys = testkit::fixture_keyring();
    for path in testkit::fixture_packages() {
        let pkg = Package::open(&path, ReadLimits::default()).unwrap();
        let sig = pkg
            .verify(&keys)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(sig.key_name, "fixture-test-65a1b2c3.rsa.pub");
        assert_eq!(pkg.file_size, fs_err::metadata(&path).unwrap().len());
        assert_eq!(pkg.files.len(), 11, "{}", path.display());
    }
    let hello = Package::open(&testkit::fixture_packages()[0], ReadLimits::default()).unwrap();
    assert_eq!(
        hello.identity().to_string(),
        "Q1UYYMDeBTUd7EmTYCzDHrazip1dk="
    );
    assert_eq!(hello.offsets, (442, 913));
    assert_eq!(hello.scripts[0].0, ".post-install");
}

#[test]
fn one_byte_change_anywhere_fails() {
    let keys = testkit::fixture_keyring();
    for path in testkit::fixture_packages() {
        let original = fs_err::read(&path).unwrap();
        let pkg = Package::read(&original[..], ReadLimits::default()).unwrap();
        let mut harmless = 0;
        for i in 0..original.len() {
            let mut bytes = original.clone();
            bytes[i] ^= 0x01;
            let result = Package::read(&bytes[..], ReadLimits::default())
                .and_then(|p| p.verify(&keys).map(|_| ()).map(|()| p.clone()));
            let Ok(changed) = result else { continue };
            // Only the signature member is covered by no hash (apk-format.md §2.2): a flip
            // there can pass when it leaves the decoded member identical (gzip's XFL/OS
            // bytes, or a deflate back-reference moved within a run of zeros). Anything
            // else must fail.
            assert!(
                (i as u64) < pkg.offsets.0 && changed.signatures == pkg.signatures,
                "{}: flipping byte {i} went unnoticed",
                path.display()
            );
            harmless += 1;
        }
        assert!(
            harmless < 16,
            "{}: {harmless} harmless flips",
            path.display()
        );
    }
}
