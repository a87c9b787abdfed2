//! Hostile packages: clear errors, nothing written outside the target, bounded memory.

use std::io::Write as _;
use std::path::Path;

use apk::package::{Package, PackageError, PackageWriter, ReadLimits, TreeEntry, extract};
use apk::pkginfo::PkgInfo;
use apk::rootfs::{ApplyOptions, RootDir};
use apk::sign::SignatureType;
use apk::tar::{EntryType, Header};

fn info() -> PkgInfo {
    PkgInfo {
        pkgname: "evil".into(),
        pkgver: "1.0-r0".into(),
        arch: "x86_64".into(),
        ..PkgInfo::default()
    }
}

/// A signed package with exactly these entries (names unchecked: the writer writes what it
/// is given; only `scan_tree` validates names).
fn craft(dir: &Path, entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
    let mut list = Vec::new();
    for (i, (path, kind, extra)) in entries.iter().enumerate() {
        let mut header = Header::file(*path, 0o644, 0, 1);
        header.kind = *kind;
        let mut source = None;
        match kind {
            EntryType::File => {
                let src = dir.join(format!("content-{i}"));
                fs_err::write(&src, extra).unwrap();
                header.size = extra.len() as u64;
                source = Some(src);
            }
            EntryType::Symlink | EntryType::HardLink => header.link = (*extra).to_string(),
            EntryType::Dir => header.mode = 0o755,
            _ => {}
        }
        list.push(TreeEntry { header, source });
    }
    let key = testkit::fixture_key();
    let mut w = PackageWriter::new(info(), 1);
    w.signers.push((&key, SignatureType::Rsa));
    let mut out = Vec::new();
    w.write(&list, &mut out).unwrap();
    out
}

struct Sandbox {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let dir = testkit::tempdir();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::create_dir_all(&outside).unwrap();
        Self {
            _dir: dir,
            root,
            outside,
        }
    }

    fn extract(&self, bytes: &[u8]) -> Result<(), PackageError> {
        let root = RootDir::open(&self.root).unwrap();
        extract(
            bytes,
            &root,
            &ApplyOptions::default(),
            ReadLimits::default(),
        )
        .map(|_| ())
    }

    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs_err::read_dir(&self.outside).unwrap().collect();
        assert!(
            names.is_empty(),
            "something was written outside the root: {names:?}"
        );
        assert!(!Path::new("/etc/pwned").exists());
    }
}

fn expect_unsafe(result: Result<(), PackageError>, fragment: &str) {
    let err = result.expect_err("hostile package accepted");
    let text = err.to_string();
    assert!(matches!(err, PackageError::UnsafeEntry { .. }), "{text}");
    assert!(text.contains(fragment), "{text}");
}

#[test]
fn dot_dot_entries_are_refused() {
    let sb = Sandbox::new();
    let bytes = craft(
        sb.root.parent().unwrap(),
        &[("../outside/pwned", EntryType::File, "x")],
    );
    let pkg = Package::read(&bytes[..], ReadLimits::default()).unwrap();
    expect_unsafe(
        pkg.verify(&testkit::fixture_keyring()).map(|_| ()),
        "`..` component",
    );
    expect_unsafe(sb.extract(&bytes), "`..` component");
    sb.assert_outside_untouched();
    let bytes = craft(
        sb.root.parent().unwrap(),
        &[("usr/../../../etc/pwned", EntryType::File, "x")],
    );
    expect_unsafe(sb.extract(&bytes), "`..` component");
    sb.assert_outside_untouched();
}

#[test]
fn absolute_entries_are_refused() {
    let sb = Sandbox::new();
    let target = format!("{}/pwned", sb.outside.display());
    let bytes = craft(
        sb.root.parent().unwrap(),
        &[(&target, EntryType::File, "x")],
    );
    expect_unsafe(sb.extract(&bytes), "absolute path");
    sb.assert_outside_untouched();
}

#[test]
fn a_symlink_then_a_file_through_it_is_refused() {
    let sb = Sandbox::new();
    for link in ["../outside", sb.outside.to_str().unwrap(), "/etc"] {
        let bytes = craft(
            sb.root.parent().unwrap(),
            &[
                ("escape", EntryType::Symlink, link),
                ("escape/pwned", EntryType::File, "x"),
            ],
        );
        let pkg = Package::read(&bytes[..], ReadLimits::default()).unwrap();
        expect_unsafe(
            pkg.verify(&testkit::fixture_keyring()).map(|_| ()),
            "symlink created by the same package",
        );
        expect_unsafe(sb.extract(&bytes), "symlink created by the same package");
        sb.assert_outside_untouched();
        fs_err::remove_file(sb.root.join("escape")).unwrap();
    }
}

#[test]
fn a_symlink_already_in_the_root_is_never_followed_out() {
    let sb = Sandbox::new();
    // The root (an image, say) has an absolute symlink to a host path and one that climbs.
    std::os::unix::fs::symlink(&sb.outside, sb.root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../outside", sb.root.join("rel")).unwrap();
    for path in ["abs/pwned", "rel/pwned"] {
        let bytes = craft(sb.root.parent().unwrap(), &[(path, EntryType::File, "x")]);
        // Resolved as inside a chroot: either created under the root or refused.
        let _ = sb.extract(&bytes);
        sb.assert_outside_untouched();
    }
}

#[test]
fn hard_links_cannot_point_out() {
    let sb = Sandbox::new();
    let bytes = craft(
        sb.root.parent().unwrap(),
        &[("h", EntryType::HardLink, "../outside/x")],
    );
    expect_unsafe(sb.extract(&bytes), "hard link target");
    sb.assert_outside_untouched();
}

#[test]
fn truncated_packages_fail_cleanly_everywhere() {
    let bytes = fs_err::read(&testkit::fixture_packages()[0]).unwrap();
    for cut in (0..bytes.len()).step_by(7) {
        let err = Package::read(&bytes[..cut], ReadLimits::default())
            .and_then(|p| p.verify_contents().map(|()| p))
            .expect_err("a truncated package was accepted");
        assert!(!err.to_string().is_empty());
    }
    let err = Package::read(&bytes[..900], ReadLimits::default()).unwrap_err();
    assert!(err.to_string().contains("control member"), "{err}");
    let err = Package::read(&b"not a package at all"[..], ReadLimits::default()).unwrap_err();
    assert!(matches!(err, PackageError::Gzip { .. }), "{err}");
}

/// A data member that inflates to `gib` GiB of zeros under a tar header for one huge file,
/// built from one deflate block repeated (each refers only to the zeros before it).
fn bomb(gib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mib = 1 << 20;
    let mut data = Vec::new();
    data.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    let mut first = vec![0u8; mib];
    let mut header = Header::file("bomb", 0o644, 0o77_777_777_777, 1);
    header.kind = EntryType::File;
    let mut tar_head = Vec::new();
    apk::tar::write_entry(
        &mut tar_head,
        apk::tar::Flavor::Pax,
        &Header {
            size: 0,
            ..header.clone()
        },
        &mut std::io::empty(),
    )
    .unwrap();
    // Patch the size field of the real header to 8 GiB - 1.
    let real = tar_head.len() - 512;
    tar_head[real + 124..real + 136].copy_from_slice(b"77777777777\0");
    let sum: u32 = tar_head[real..real + 512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    tar_head[real + 148..real + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    first[..tar_head.len()].copy_from_slice(&tar_head);
    let block = |dict: &[u8], input: &[u8]| {
        let mut c = Compress::new(Compression::new(9), false);
        if !dict.is_empty() {
            c.set_dictionary(dict).unwrap();
        }
        let mut out = Vec::with_capacity(input.len());
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    };
    data.extend(block(&[], &first));
    let zeros = vec![0u8; mib];
    let repeated = block(&zeros[..32 << 10], &zeros);
    for _ in 0..gib * 1024 - 1 {
        data.extend_from_slice(&repeated);
    }
    data
}

#[test]
fn a_decompression_bomb_is_stopped_early_with_bounded_memory() {
    let mut control_tar = Vec::new();
    let pkginfo = info().render();
    apk::tar::write_entry(
        &mut control_tar,
        apk::tar::Flavor::Pax,
        &Header::file(".PKGINFO", 0o644, pkginfo.len() as u64, 1),
        &mut pkginfo.as_bytes(),
    )
    .unwrap();
    let mut pkg = apk::gzip::compress(&control_tar, 9);
    let data = bomb(10);
    pkg.extend_from_slice(&data);
    eprintln!("bomb package: {} bytes claiming 10 GiB", pkg.len());

    let sb = Sandbox::new();
    let err = sb.extract(&pkg).unwrap_err();
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("decompression bomb"), "{err}");
    let err = Package::read(&pkg[..], ReadLimits::default()).unwrap_err();
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err}");
    // The partial file stays inside the root, and memory never held the inflated data.
    sb.assert_outside_untouched();
    let status = fs_err::read_to_string("/proc/self/status").unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(hwm_kb < 1 << 20, "peak memory {hwm_kb} kB");
    let _ = std::io::stderr().flush();
}
