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

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apk::package::{PackageWriter, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;
use clap::Parser as _;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn build_package(tree: &Path, name: &str, key: &apk::keys::PrivateKey) -> Vec<u8> {
    let entries = scan_tree(tree, &TreeOptions::new(1_700_000_000)).unwrap();
    let info = PkgInfo {
        pkgname: name.into(),
        pkgver: "1.0-r0".into(),
        pkgdesc: format!("benchmark package {name}"),
        url: "https://example.invalid".into(),
        arch: "x86_64".into(),
        origin: name.into(),
        license: "MIT".into(),
        depends: vec!["so:libc.musl-x86_64.so.1".into()],
        ..PkgInfo::default()
    };
    let mut w = PackageWriter::new(info, 1_700_000_000);
    w.gzip.threads = 1;
    w.signers.push((key, SignatureType::Rsa));
    let mut out = Vec::new();
    w.write(&entries, &mut out).unwrap();
    out
}

fn multipart(file: &[u8]) -> (String, Vec<u8>) {
    let b = "benchboundary42";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.apk\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

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
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (tree, arch_dir, key) = (&tree, &arch_dir, &key);
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let name = format!("pkg{i:05}");
                    let bytes = build_package(tree, &name, key);
                    fs_err::write(arch_dir.join(format!("{name}-1.0-r0.apk")), bytes).unwrap();
                }
            });
        }
    });
    eprintln!("  done in {:.1?}", started.elapsed());

    // Baseline: a full index of the directory, as the in-process `apkbuild index`.
    let key_path = testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY));
    let mut files: Vec<PathBuf> = fs_err::read_dir(&arch_dir)
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
    let full = started.elapsed();

    // reposerve over the same tree.
    let keys = tmp.path().join("trusted");
    fs_err::create_dir_all(&keys).unwrap();
    fs_err::copy(
        testkit::fixture(&format!("keys/{}.pub", testkit::FIXTURE_KEY)),
        keys.join(format!("{}.pub", testkit::FIXTURE_KEY)),
    )
    .unwrap();
    let cfg = tmp.path().join("reposerve.yaml");
    fs_err::write(
        &cfg,
        format!(
            "dir: {}\ntrusted_keys: {}\nsigning:\n  key: {}\n",
            root.display(),
            keys.display(),
            key_path.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reposerve"))
        .args(["-d", "-l", "127.0.0.1:0", "-c"])
        .arg(&cfg)
        .env("REPOSERVE_LOG_FORMAT", "json")
        .env("REPOSERVE_LOG", "warn,reposerve=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("reposerve exited").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "listening (http)" {
            break v["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::blocking::Client::new();
    let mut times = Vec::new();
    for i in 0..uploads {
        let pkg = build_package(&tree, &format!("new{i:03}"), &key);
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
    let _ = child.kill();
    let _ = child.wait();
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
