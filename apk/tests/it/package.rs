//! Packages we write have the fixtures' structure, verify, and are reproducible.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use apk::package::read::read_with;
use apk::package::{
    DataVisitor, Package, PackageError, PackageWriter, ReadLimits, Script, TreeOptions, scan_tree,
};
use apk::sign::SignatureType;
use apk::tar::{Entry, EntryType};

/// Unpacks a trusted fixture package into `dir` (test helper, not the safe installer).
struct Unpack<'a>(&'a Path);

impl DataVisitor for Unpack<'_> {
    fn entry(&mut self, e: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        let p = self.0.join(&e.path);
        match e.kind {
            EntryType::Dir => fs_err::create_dir_all(&p)?,
            EntryType::Symlink => std::os::unix::fs::symlink(&e.link, &p)?,
            EntryType::File => {
                let mut data = Vec::new();
                content.read_to_end(&mut data)?;
                fs_err::write(&p, data)?;
            }
            other => panic!("unexpected {other:?}"),
        }
        if e.kind != EntryType::Symlink {
            fs_err::set_permissions(&p, std::fs::Permissions::from_mode(e.mode))?;
        }
        Ok(())
    }
}

/// The members of a package, inflated.
fn members(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(&mut rest);
        let mut m = Vec::new();
        d.read_to_end(&mut m).unwrap();
        out.push(m);
    }
    out
}

/// The control tar's entries with the values that legitimately differ blanked:
/// `datahash` (our gzip bytes differ from GNU gzip's) and `size` (the fixture script wrote
/// a block-rounded size like abuild < 3.14; we compute abuild 3.14's sum of file sizes).
fn control_entries(control: &[u8]) -> Vec<(Entry, String)> {
    let mut tar = apk::tar::TarReader::new(control);
    let mut out = Vec::new();
    while let Some(mut e) = tar.next_entry().unwrap() {
        let mut content = String::new();
        tar.content().read_to_string(&mut content).unwrap();
        if e.path == ".PKGINFO" {
            e.size = 0;
            content = content
                .lines()
                .map(|l| match l.split_once(" = ") {
                    Some((k @ ("datahash" | "size"), _)) => format!("{k} = …\n"),
                    _ => format!("{l}\n"),
                })
                .collect();
        }
        out.push((e, content));
    }
    out
}

/// Panics with the first differing 512-byte block instead of two huge arrays.
fn assert_same_blocks(ours: &[u8], theirs: &[u8], what: &str) {
    for (i, (a, b)) in ours.chunks(512).zip(theirs.chunks(512)).enumerate() {
        assert!(
            a == b,
            "{what}: block {i} differs\nours:   {:?}\ntheirs: {:?}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
}

fn rebuild(fixture: &Path, out_dir: &Path) -> Vec<u8> {
    let bytes = fs_err::read(fixture).unwrap();
    let tree = out_dir.join("tree");
    fs_err::create_dir_all(&tree).unwrap();
    let original = read_with(&bytes[..], ReadLimits::default(), &mut Unpack(&tree)).unwrap();
    let mut info = original.info.clone();
    info.datahash.clear();
    let key = testkit::fixture_key();
    let mut w = PackageWriter::new(info, 1_700_000_000);
    w.signers.push((&key, SignatureType::Rsa));
    w.scripts = original
        .scripts
        .iter()
        .map(|(name, content)| Script {
            name: name.clone(),
            content: content.clone(),
        })
        .collect();
    let entries = scan_tree(&tree, &TreeOptions::new(1_700_000_000)).unwrap();
    let mut out = Vec::new();
    let written = w.write(&entries, &mut out).unwrap();
    assert_eq!(written.file_size, out.len() as u64);
    out
}

#[test]
fn rebuilt_fixture_packages_match_the_real_tools_stream_for_stream() {
    for fixture in testkit::fixture_packages() {
        let dir = testkit::tempdir();
        let ours = rebuild(&fixture, dir.path());
        let theirs = fs_err::read(&fixture).unwrap();
        let (ours_m, theirs_m) = (members(&ours), members(&theirs));
        assert_eq!(ours_m.len(), 3);
        assert_eq!(theirs_m.len(), 3);
        // Signature member: identical (PKCS#1 v1.5 is deterministic) but for the signed
        // bytes themselves, which differ because our gzip bytes differ from GNU gzip's.
        let name = fixture.display().to_string();
        assert_same_blocks(
            &ours_m[0][..1536],
            &theirs_m[0][..1536],
            &format!("{name} signature"),
        );
        assert_eq!(ours_m[0].len(), theirs_m[0].len());
        // Control member: identical except the datahash and size values.
        assert_eq!(
            control_entries(&ours_m[1]),
            control_entries(&theirs_m[1]),
            "{name}: control"
        );
        // Data member: the uncompressed tar is byte-identical to abuild's.
        assert_same_blocks(&ours_m[2], &theirs_m[2], &format!("{name} data"));
        // And ours verifies with the fixture key.
        let pkg = Package::read(&ours[..], ReadLimits::default()).unwrap();
        pkg.verify(&testkit::fixture_keyring()).unwrap();
    }
}

#[test]
fn writing_twice_gives_the_same_bytes() {
    let fixture = &testkit::fixture_packages()[0];
    let a = rebuild(fixture, testkit::tempdir().path());
    let b = rebuild(fixture, testkit::tempdir().path());
    assert_eq!(a, b);
}
