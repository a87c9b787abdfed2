//! What the reposerve benches share: packages made in-process, a multipart body, and the
//! release `reposerve` started on 127.0.0.1 over a tree with the fixture keys.

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use apk::package::{PackageWriter, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Package `name`-1.0-r0 of the files under `tree`, signed by `key` with `ty`.
pub fn build_package(
    tree: &Path,
    name: &str,
    key: &apk::keys::PrivateKey,
    ty: SignatureType,
) -> Vec<u8> {
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
    w.signers.push((key, ty));
    let mut out = Vec::new();
    w.write(&entries, &mut out).unwrap();
    out
}

/// Packages `prefix00000`… (`count` of them), made on every core, in name order.
pub fn packages(
    tree: &Path,
    prefix: &str,
    count: usize,
    key: &apk::keys::PrivateKey,
    ty: SignatureType,
) -> Vec<(String, Vec<u8>)> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut out: Vec<(String, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            let name = format!("{prefix}{i:05}");
                            let bytes = build_package(tree, &name, key, ty);
                            (name, bytes)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    out.sort();
    out
}

/// A `multipart/form-data` body with one `file` part: (content type, body).
pub fn multipart(file: &[u8]) -> (String, Vec<u8>) {
    let b = "benchboundary42";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.apk\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// The fixture signing key's path.
pub fn key_path() -> PathBuf {
    testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY))
}

/// Starts the release `reposerve` (development mode, uploads signed by the fixture key)
/// serving `root`; returns the child (kill it by its PID) and its address.
pub fn start_reposerve(work: &Path, root: &Path) -> (Child, String) {
    let keys = work.join("trusted");
    fs_err::create_dir_all(&keys).unwrap();
    fs_err::copy(
        testkit::fixture(&format!("keys/{}.pub", testkit::FIXTURE_KEY)),
        keys.join(format!("{}.pub", testkit::FIXTURE_KEY)),
    )
    .unwrap();
    let cfg = work.join("reposerve.yaml");
    fs_err::write(
        &cfg,
        format!(
            "dir: {}\ntrusted_keys: {}\nsigning:\n  key: {}\n",
            root.display(),
            keys.display(),
            key_path().display()
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
    (child, addr)
}
