//! Packaging and indexing benchmarks, printed as ratios against a baseline measured in the
//! same run (never asserted: speed is reported, not tested).
//!
//! 1. write + sign a package of a generated 10,000-file / ~100 MB tree, against
//!    `tar --format=posix -c | gzip -9` of the same tree (abuild's own pipeline);
//! 2. an index of 5,000 generated packages written from the files, against adding one
//!    package to that index incrementally.
//!
//! `cargo bench -p apk --bench package` (set `BENCH_FILES`/`BENCH_MB` to change the tree).

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use apk::index::{ApkIndex, IndexEntry};
use apk::keys::PrivateKey;
use apk::package::{Package, PackageWriter, ReadLimits, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;

const WORDS: &[&str] = &[
    "fn",
    "let",
    "mut",
    "impl",
    "struct",
    "return",
    "match",
    "Some",
    "None",
    "Ok",
    "Err",
    "self",
    "pub",
    "use",
    "crate",
    "where",
    "for",
    "in",
    "if",
    "else",
    "while",
    "loop",
    "package",
    "index",
    "signature",
    "version",
    "depends",
    "provides",
    "alpine",
    "musl",
    "0",
    "1",
    "42",
    "255",
    "4096",
    "{",
    "}",
    "(",
    ")",
    ";",
    "=",
    "->",
    "::",
    "&",
    "*",
];

/// Deterministic text that compresses about like source code.
fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

fn generate_tree(root: &Path, files: usize, total: usize) {
    let per_file = total / files;
    for i in 0..files {
        let dir = root.join(format!("usr/share/bench/d{:03}", i / 100));
        if i % 100 == 0 {
            fs_err::create_dir_all(&dir).unwrap();
        }
        // Vary sizes around the mean so there are small and large files.
        let len = per_file / 2 + (i * 7919) % per_file;
        fs_err::write(dir.join(format!("f{i:05}.txt")), text(i as u64, len)).unwrap();
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

fn info(name: &str, version: &str) -> PkgInfo {
    PkgInfo {
        pkgname: name.into(),
        pkgver: version.into(),
        pkgdesc: format!("generated package {name}"),
        url: "https://example.org".into(),
        arch: "x86_64".into(),
        license: "MIT".into(),
        depends: vec!["so:libc.musl-x86_64.so.1".into()],
        provides: vec![format!("cmd:{name}={version}")],
        ..PkgInfo::default()
    }
}

fn main() {
    let files = env_usize("BENCH_FILES", 10_000);
    let mb = env_usize("BENCH_MB", 100);
    let key_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/apk-reference/keys/fixture-test-65a1b2c3.rsa"
    );
    let key = PrivateKey::load(key_path).expect("fixture key");
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    generate_tree(&tree, files, mb << 20);
    println!(
        "tree: {files} files, {mb} MB, {} cores",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    bench_package(work.path(), &tree, &key);
    bench_index(work.path(), &key);
}

/// A number from the environment, else `default`.
fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Packaging `tree` (write + sign, best of two) against abuild's `tar | gzip -9`, then
/// reading it back.
fn bench_package(work: &Path, tree: &Path, key: &PrivateKey) {
    // Baseline: abuild's pipeline, GNU tar piped to gzip -9.
    let ((), baseline) = time(|| {
        let status = Command::new("sh")
            .arg("-c")
            .arg("tar --format=posix --sort=name -C \"$1\" -cf - . | gzip -9 -n > \"$2\"")
            .arg("sh")
            .arg(tree)
            .arg(work.join("baseline.tar.gz"))
            .status()
            .expect("sh");
        assert!(status.success(), "tar | gzip failed");
    });
    let baseline_size = fs_err::metadata(work.join("baseline.tar.gz"))
        .unwrap()
        .len();

    let mut ours = Duration::MAX;
    let mut size = 0;
    for _ in 0..2 {
        let (written, t) = time(|| {
            let entries = scan_tree(tree, &TreeOptions::new(1_700_000_000)).unwrap();
            let mut w = PackageWriter::new(info("bench", "1.0-r0"), 1_700_000_000);
            w.signers.push((key, SignatureType::Rsa));
            let file = fs_err::File::create(work.join("bench-1.0-r0.apk")).unwrap();
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let written = w.write(&entries, &mut out).unwrap();
            out.flush().unwrap();
            written
        });
        ours = ours.min(t);
        size = written.file_size;
    }
    println!(
        "package write+sign: {:.2}s ({} bytes) vs tar|gzip -9: {:.2}s ({} bytes) -> ratio {:.2}",
        ours.as_secs_f64(),
        size,
        baseline.as_secs_f64(),
        baseline_size,
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
    let (_, read) = time(|| {
        Package::open(&work.join("bench-1.0-r0.apk"), ReadLimits::default())
            .unwrap()
            .verify_contents()
            .unwrap();
    });
    println!("package read+verify: {:.2}s", read.as_secs_f64());
}

/// Indexing 5,000 generated packages from their files, against adding one to the index.
fn bench_index(work: &Path, key: &PrivateKey) {
    let repo = work.join("repo");
    let paths = generate_packages(work, &repo, key, 5_000);
    let (index, full) = time(|| {
        let mut index = ApkIndex::default();
        for p in &paths {
            let pkg = Package::open(p, ReadLimits::default()).unwrap();
            pkg.verify_contents().unwrap();
            index.upsert(IndexEntry::from_package(&pkg));
        }
        let bytes = index
            .to_bytes(&[(key, SignatureType::Rsa)], 1_700_000_000)
            .unwrap();
        fs_err::write(repo.join("APKINDEX.tar.gz"), bytes).unwrap();
        index
    });
    let ((), incremental) = time(|| {
        let mut idx = apk::index::SignedIndex::open(&repo.join("APKINDEX.tar.gz"))
            .unwrap()
            .index;
        let pkg = Package::open(&paths[0], ReadLimits::default()).unwrap();
        let mut entry = IndexEntry::from_package(&pkg);
        entry.version = "1.1-r0".into();
        idx.upsert(entry);
        let bytes = idx
            .to_bytes(&[(key, SignatureType::Rsa)], 1_700_000_000)
            .unwrap();
        fs_err::write(repo.join("APKINDEX.tar.gz"), bytes).unwrap();
    });
    println!(
        "index of {} packages from files: {:.2}s; add one package incrementally: {:.3}s -> ratio {:.4}",
        index.packages.len(),
        full.as_secs_f64(),
        incremental.as_secs_f64(),
        incremental.as_secs_f64() / full.as_secs_f64()
    );
}

/// `count` small signed packages in `repo`.
fn generate_packages(work: &Path, repo: &Path, key: &PrivateKey, count: usize) -> Vec<PathBuf> {
    fs_err::create_dir_all(repo).unwrap();
    let small = work.join("small");
    fs_err::create_dir_all(small.join("usr/bin")).unwrap();
    fs_err::write(small.join("usr/bin/tool"), text(7, 2000)).unwrap();
    let entries = scan_tree(&small, &TreeOptions::new(1_700_000_000)).unwrap();
    let mut paths = Vec::new();
    for i in 0..count {
        let name = format!("pkg{i:04}");
        let mut w = PackageWriter::new(info(&name, "1.0-r0"), 1_700_000_000);
        w.gzip.threads = 1;
        w.signers.push((key, SignatureType::Rsa));
        let path = repo.join(format!("{name}-1.0-r0.apk"));
        let mut out = Vec::new();
        w.write(&entries, &mut out).unwrap();
        fs_err::write(&path, out).unwrap();
        paths.push(path);
    }
    paths
}
