//! Signature verification at index time (issue 13): `apkbuild index --keys-dir` of 5,000
//! packages signed with an RSA-4096 key, against the real `apk index --keys-dir` (apk-tools
//! 2.14 from `../shared/reference-clients`, OpenSSL, one thread) over the same files, runs
//! alternating, printed as a ratio (goal: <= 0.5x). reposerve's upload check is the same
//! code (`Package::verify`, `apk::sign`), one package per blocking thread.
//!
//! The packages carry `.SIGN.RSA256.` signatures so that making 5,000 of them takes seconds
//! (aws-lc-rs signs SHA-256; SHA-1 signing stays with the slower `rsa` crate); verifying
//! either type costs the same RSA public-key operation.
//!
//! `cargo bench -p reposerve --bench verify` (`BENCH_PACKAGES`, `BENCH_ROUNDS`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use apk::sign::SignatureType;
use clap::Parser as _;
use common::env_num;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n = env_num("BENCH_PACKAGES", 5000);
    let rounds = env_num("BENCH_ROUNDS", 3);
    let apk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference-clients/apk");
    let tmp = tempfile::Builder::new()
        .prefix("reposerve-verify-")
        .tempdir()
        .unwrap();
    let (keys, files) = signed_packages(tmp.path(), n);
    let ours = || index_ours(&tmp.path().join("ours.tar.gz"), &keys, &files);
    let theirs = || index_theirs(&apk, &tmp.path().join("theirs.tar.gz"), &keys, &files);
    let have_apk = apk.is_file();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate who goes first, so neither always meets a warmer page cache.
        if round % 2 == 0 {
            a.push(ours());
            if have_apk {
                b.push(theirs());
            }
        } else {
            if have_apk {
                b.push(theirs());
            }
            a.push(ours());
        }
    }
    let ours = median(a);
    println!("index of {n} RSA-4096-signed packages, signatures verified, median of {rounds}:");
    println!("  apkbuild index --keys-dir  {ours:>10.1?}");
    if have_apk {
        let theirs = median(b);
        println!(
            "  apk index --keys-dir       {theirs:>10.1?}  (apk-tools 2.14)\n  ratio apkbuild/apk: {:.2}x (goal: <= 0.50x)",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    } else {
        println!(
            "  apk index: skipped: {} not found (../shared/reference-clients)",
            apk.display()
        );
    }
}

/// A fresh RSA-4096 key pair in `<tmp>/keys` and `n` packages signed with it in
/// `<tmp>/pkgs`, sorted.
fn signed_packages(tmp: &Path, n: usize) -> (PathBuf, Vec<PathBuf>) {
    eprintln!("generating an RSA-4096 key…");
    let (key, _) = apk::keys::generate("bench@example.invalid", 4096, 1_700_000_000).unwrap();
    let keys = tmp.join("keys");
    apk::keys::write_key_pair(&keys, &key).unwrap();
    let tree = tmp.join("tree");
    testkit::write_fixture_like_tree(&tree, "bench");
    let dir = tmp.join("pkgs");
    fs_err::create_dir_all(&dir).unwrap();
    eprintln!("signing {n} packages…");
    for (name, bytes) in common::packages(&tree, "pkg", n, &key, SignatureType::Rsa256) {
        fs_err::write(dir.join(format!("{name}-1.0-r0.apk")), bytes).unwrap();
    }
    let mut files: Vec<PathBuf> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (keys, files)
}

/// `apkbuild index --keys-dir` of `files` into `out`, timed.
fn index_ours(out: &Path, keys: &Path, files: &[PathBuf]) -> Duration {
    let mut args: Vec<String> = vec!["apkbuild".into(), "index".into(), "-o".into()];
    args.push(out.display().to_string());
    args.extend(["--keys-dir".into(), keys.display().to_string()]);
    args.extend(files.iter().map(|f| f.display().to_string()));
    let started = Instant::now();
    builder::run(builder::Cli::parse_from(args)).unwrap();
    started.elapsed()
}

/// The real `apk index --keys-dir` of `files` into `out`, timed.
fn index_theirs(apk: &Path, out: &Path, keys: &Path, files: &[PathBuf]) -> Duration {
    let started = Instant::now();
    let output = Command::new(apk)
        .arg("index")
        .arg("--keys-dir")
        .arg(keys)
        .arg("-o")
        .arg(out)
        .args(files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "apk index: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}
