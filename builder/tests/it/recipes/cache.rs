//! The S3 cache against a real s3s-fs: hits, rebuilds of dependents, tampering, foreign keys.

use super::*;
use std::path::Path;

/// Builds with the S3 cache against a real s3s-fs; `None` (and a message) when it cannot run.
fn s3_server() -> Option<testkit::s3::S3Server> {
    match testkit::s3::S3Server::start() {
        Ok(s) => {
            s.create_bucket("apkcache");
            Some(s)
        }
        Err(e) => {
            eprintln!("SKIPPED: no S3 server: {e}");
            None
        }
    }
}

fn s3_build(
    home: &Path,
    tree: &Path,
    repodest: &Path,
    s3: &testkit::s3::S3Server,
    keys: &Path,
) -> String {
    let mut cmd = apkbuild(home);
    cmd.arg("build-all")
        .arg(tree)
        .arg("--repodest")
        .arg(repodest)
        .args(sandbox_flag())
        .args([
            "--cache",
            "s3://apkcache/ci",
            "--s3-endpoint",
            &s3.endpoint(),
        ])
        .arg("--cache-key")
        .arg(keys.join("cache.key"))
        .arg("--cache-pubkey")
        .arg(keys.join("cache.pub"));
    for (k, v) in s3.aws_env() {
        cmd.env(k, v);
    }
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn s3_cache_second_build_builds_nothing_and_a_change_rebuilds_only_dependents() {
    let Some(s3) = s3_server() else { return };
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let keys = home.path().join("cache-keys");
    apkbuild(home.path())
        .arg("cache-keygen")
        .arg(&keys)
        .assert()
        .success();

    let first = s3_build(home.path(), &tree, &home.path().join("p1"), &s3, &keys);
    assert_eq!(first.matches("cache miss").count(), 5, "{first}");
    // A second runner with an empty repository: everything comes from S3, same bytes.
    let second = s3_build(home.path(), &tree, &home.path().join("p2"), &s3, &keys);
    assert_eq!(
        second.matches("downloading, not building").count(),
        5,
        "{second}"
    );
    assert!(
        !second.contains("build()"),
        "nothing may be built: {second}"
    );
    assert!(second.contains("0 built, 5 from the cache"), "{second}");
    assert_eq!(
        snapshot(&home.path().join("p1")),
        snapshot(&home.path().join("p2"))
    );

    // Changing libgreet rebuilds it and greet (which links against it), nothing else.
    let apkbuild_path = tree.join("main/libgreet/APKBUILD");
    let text = fs_err::read_to_string(&apkbuild_path).unwrap();
    fs_err::write(
        &apkbuild_path,
        text.replace("A tiny greeting library", "A tiny greeting library, v2"),
    )
    .unwrap();
    let third = s3_build(home.path(), &tree, &home.path().join("p3"), &s3, &keys);
    assert!(third.contains("libgreet: cache miss"), "{third}");
    assert!(third.contains("greet: cache miss"), "{third}");
    assert!(third.contains("hello-sh: cache hit"), "{third}");
    assert!(third.contains("motd: cache hit"), "{third}");
    assert!(third.contains("2 built, 3 from the cache"), "{third}");

    // A cache entry whose file was tampered with is detected and rebuilt; an entry signed
    // by another key is a miss.
    let bucket = s3.data_dir().join("apkcache/ci/packages");
    for e in walkdir::WalkDir::new(&bucket) {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("motd-") {
            fs_err::write(e.path(), b"garbage").unwrap();
        }
    }
    let other_keys = home.path().join("other-keys");
    apkbuild(home.path())
        .arg("cache-keygen")
        .arg(&other_keys)
        .assert()
        .success();
    let fourth = s3_build(home.path(), &tree, &home.path().join("p4"), &s3, &keys);
    assert!(
        fourth.contains("motd: cache miss") && fourth.contains("corrupt"),
        "{fourth}"
    );
    let fifth = s3_build(
        home.path(),
        &tree,
        &home.path().join("p5"),
        &s3,
        &other_keys,
    );
    assert!(fifth.contains("bad signature"), "{fifth}");
    assert!(fifth.contains("5 built, 0 from the cache"), "{fifth}");
}
