//! Upload-to-indexed latency with a large index, printed as a ratio against a baseline
//! measured in the same run (never asserted: speed is reported, not tested).
//!
//! 1. Baseline: `apkbuild index` of a directory of 20,000 packages (what the shell server
//!    users run today does after each upload: `apk index` over everything + `abuild-sign`).
//! 2. reposerve (the release binary on 127.0.0.1) serving that directory and index:
//!    time from sending `POST /upload` to the 200 answer, which comes only once the
//!    signed index is renamed into place. The first upload also parses the index (cold);
//!    the rest use the cached index (warm).
//!
//! `cargo bench -p reposerve --bench upload` (`BENCH_PACKAGES`, `BENCH_UPLOADS` to change).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apk::sign::SignatureType;
use clap::Parser as _;
use common::{env_num, key_path, multipart, packages, start_reposerve};

fn main() {
    let n = env_num("BENCH_PACKAGES", 20_000);
    let uploads = env_num("BENCH_UPLOADS", 20);
    let tmp = tempfile::Builder::new()
        .prefix("reposerve-bench-")
        .tempdir()
        .unwrap();
    let tree = tmp.path().join("tree");
    testkit::write_fixture_like_tree(&tree, "bench");
    let root = tmp.path().join("repo");
    let arch_dir = root.join("edge/main/x86_64");
    fs_err::create_dir_all(&arch_dir).unwrap();
    let key = testkit::fixture_key();

    eprintln!("generating {n} packages…");
    let started = Instant::now();
    for (name, bytes) in packages(&tree, "pkg", n, &key, SignatureType::Rsa) {
        fs_err::write(arch_dir.join(format!("{name}-1.0-r0.apk")), bytes).unwrap();
    }
    eprintln!("  done in {:.1?}", started.elapsed());

    let full = full_index(&arch_dir);
    // reposerve over the same tree.
    let (mut child, addr) = start_reposerve(tmp.path(), &root);
    let times = upload_times(&addr, &tree, &key, uploads);
    let _ = child.kill();
    let _ = child.wait();
    print_results(n, full, &times);
}

/// Baseline: a full signed index of the directory, as the in-process `apkbuild index`,
/// timed.
fn full_index(arch_dir: &Path) -> Duration {
    let key_path = key_path();
    let mut files: Vec<PathBuf> = fs_err::read_dir(arch_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let index = arch_dir.join("APKINDEX.tar.gz");
    let mut args: Vec<String> = vec![
        "apkbuild".into(),
        "index".into(),
        "-o".into(),
        index.display().to_string(),
        "--sign".into(),
        key_path.display().to_string(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let started = Instant::now();
    builder::run(builder::Cli::parse_from(args)).unwrap();
    started.elapsed()
}

/// Time from sending each of `uploads` new packages to reposerve at `addr` to its answer.
fn upload_times(
    addr: &str,
    tree: &Path,
    key: &apk::keys::PrivateKey,
    uploads: usize,
) -> Vec<Duration> {
    let client = reqwest::blocking::Client::new();
    let mut times = Vec::new();
    for i in 0..uploads {
        let pkg = common::build_package(tree, &format!("new{i:03}"), key, SignatureType::Rsa);
        let (ct, body) = multipart(&pkg);
        let started = Instant::now();
        let resp = client
            .post(format!("http://{addr}/upload"))
            .header("content-type", ct)
            .body(body)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().unwrap());
        times.push(started.elapsed());
    }
    times
}

fn print_results(n: usize, full: Duration, times: &[Duration]) {
    let cold = times[0];
    let mut warm: Vec<Duration> = times[1..].to_vec();
    warm.sort();
    let median = warm.get(warm.len() / 2).copied().unwrap_or(cold);
    println!("index of {n} packages:");
    println!("  baseline  apkbuild index (full)        {full:>10.1?}");
    println!(
        "  reposerve upload→indexed, first (cold) {cold:>10.1?}  ({:.1}x faster)",
        full.as_secs_f64() / cold.as_secs_f64()
    );
    println!(
        "  reposerve upload→indexed, median warm  {median:>10.1?}  ({:.1}x faster)",
        full.as_secs_f64() / median.as_secs_f64()
    );
}
