//! keygen → pack → index → verify → sign → inspect, and bad input.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn apkbuild(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("apkbuild").unwrap();
    // Never touch the real user's keys or abuild.conf.
    cmd.env_clear()
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "1700000000");
    cmd
}

fn fixture_key() -> PathBuf {
    testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY))
}

fn keys_dir() -> PathBuf {
    testkit::fixture("keys")
}

/// Packs the fixture-like tree for `name` into `repo` with the fixture key.
fn pack(home: &Path, repo: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let tree = home.join(format!("tree-{name}"));
    if !tree.exists() {
        testkit::write_fixture_like_tree(&tree, name);
    }
    fs_err::create_dir_all(repo).unwrap();
    let mut cmd = apkbuild(home);
    cmd.args(["pack", tree.to_str().unwrap(), "--name", name])
        .args(["--version", "1.0-r0", "--arch", "x86_64"])
        .args(["-o", repo.to_str().unwrap()]);
    if !extra.contains(&"--unsigned") {
        cmd.args(["--key", fixture_key().to_str().unwrap()]);
    }
    cmd.args(extra)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{name}-1.0-r0.apk")));
    repo.join(format!("{name}-1.0-r0.apk"))
}

#[test]
fn keygen_names_keys_like_abuild_and_records_them() {
    let home = testkit::tempdir();
    apkbuild(home.path())
        .args(["keygen", "-n", "-a", "-b", "1024"])
        .env("PACKAGER", "Alice <alice@example.org>")
        .assert()
        .success()
        .stdout(predicate::str::contains("alice@example.org-"));
    let dir = home.path().join(".config/abuild");
    let names: Vec<String> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let private = names
        .iter()
        .find(|n| n.ends_with(".rsa"))
        .expect("private key");
    assert!(names.contains(&format!("{private}.pub")));
    let conf = fs_err::read_to_string(dir.join("abuild.conf")).unwrap();
    assert!(conf.contains(&format!(
        "PACKAGER_PRIVKEY=\"{}\"",
        dir.join(private).display()
    )));
    use std::os::unix::fs::PermissionsExt;
    let mode = fs_err::metadata(dir.join(private))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // abuild.conf's key is used when no --key is given.
    let tree = home.path().join("t");
    testkit::write_fixture_like_tree(&tree, "x");
    apkbuild(home.path())
        .args([
            "pack",
            tree.to_str().unwrap(),
            "--name",
            "x",
            "--version",
            "1-r0",
            "-o",
        ])
        .arg(home.path())
        .assert()
        .success();
    apkbuild(home.path())
        .args(["verify"])
        .arg(home.path().join("x-1-r0.apk"))
        .assert()
        .success()
        .stdout(predicate::str::contains("OK"));
}

#[test]
fn pack_index_verify_round_trip_is_reproducible() {
    let home = testkit::tempdir();
    let repo = home.path().join("repo/x86_64");
    let hello = pack(
        home.path(),
        &repo,
        "hello",
        &["--provides", "cmd:hello=1.0-r0"],
    );
    pack(home.path(), &repo, "world", &["--depends", "hello>=1.0"]);
    let index = repo.join("APKINDEX.tar.gz");
    let index_args = |cmd: &mut Command| {
        cmd.args([
            "index",
            "-o",
            index.to_str().unwrap(),
            "--sign",
            fixture_key().to_str().unwrap(),
        ])
        .args([
            "--description",
            "test repo",
            "--keys-dir",
            keys_dir().to_str().unwrap(),
        ])
        .arg(repo.join("hello-1.0-r0.apk"))
        .arg(repo.join("world-1.0-r0.apk"));
    };
    let mut cmd = apkbuild(home.path());
    index_args(&mut cmd);
    cmd.assert()
        .success()
        .stdout(predicate::str::contains("2 packages"));
    let first = (fs_err::read(&hello).unwrap(), fs_err::read(&index).unwrap());

    apkbuild(home.path())
        .args(["verify", "--keys-dir", keys_dir().to_str().unwrap()])
        .arg(&index)
        .arg(&hello)
        .assert()
        .success()
        .stdout(predicate::str::contains("index of 2 packages"));

    // Same inputs and SOURCE_DATE_EPOCH → the same bytes.
    fs_err::remove_file(&hello).unwrap();
    pack(
        home.path(),
        &home.path().join("again"),
        "hello",
        &["--provides", "cmd:hello=1.0-r0"],
    );
    assert_eq!(
        fs_err::read(home.path().join("again/hello-1.0-r0.apk")).unwrap(),
        first.0
    );
    fs_err::copy(home.path().join("again/hello-1.0-r0.apk"), &hello).unwrap();
    let mut cmd = apkbuild(home.path());
    index_args(&mut cmd);
    cmd.assert().success();
    assert_eq!(fs_err::read(&index).unwrap(), first.1);

    // Incremental: with --index (and no --keys-dir, which forces reading every package)
    // the unchanged packages are not read again.
    let mut cmd = apkbuild(home.path());
    cmd.args([
        "index",
        "-o",
        index.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
    ])
    .args([
        "--sign",
        fixture_key().to_str().unwrap(),
        "--description",
        "test repo",
    ])
    .arg(repo.join("hello-1.0-r0.apk"))
    .arg(repo.join("world-1.0-r0.apk"))
    .assert()
    .success()
    .stdout(predicate::str::contains("(0 read, 2 reused)"));
    assert_eq!(fs_err::read(&index).unwrap(), first.1);
}

#[test]
fn sign_replaces_signatures_of_indexes_and_packages() {
    let home = testkit::tempdir();
    let repo = home.path().join("repo");
    let hello = pack(home.path(), &repo, "hello", &["--unsigned"]);
    let index = repo.join("APKINDEX.tar.gz");
    apkbuild(home.path())
        .args(["index", "-o", index.to_str().unwrap()])
        .arg(&hello)
        .assert()
        .success();
    // Unsigned files fail verification with a hint.
    apkbuild(home.path())
        .args(["verify", "--keys-dir", keys_dir().to_str().unwrap()])
        .arg(&hello)
        .assert()
        .failure()
        .stdout(predicate::str::contains("not signed"));
    apkbuild(home.path())
        .args([
            "sign",
            "--type",
            "rsa256",
            "--key",
            fixture_key().to_str().unwrap(),
        ])
        .arg(&index)
        .arg(&hello)
        .assert()
        .success();
    apkbuild(home.path())
        .args(["verify", "--keys-dir", keys_dir().to_str().unwrap()])
        .arg(&index)
        .arg(&hello)
        .assert()
        .success();
    apkbuild(home.path())
        .args(["inspect"])
        .arg(&index)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            ".SIGN.RSA256.fixture-test-65a1b2c3.rsa.pub",
        ));
}

#[test]
fn tampering_fails_and_names_the_file_and_the_field() {
    let home = testkit::tempdir();
    let repo = home.path().join("repo");
    let hello = pack(home.path(), &repo, "hello", &[]);
    let mut bytes = fs_err::read(&hello).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    fs_err::write(&hello, &bytes).unwrap();
    apkbuild(home.path())
        .args(["verify", "--keys-dir", keys_dir().to_str().unwrap()])
        .arg(&hello)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("hello-1.0-r0.apk: FAILED"))
        .stdout(predicate::str::contains("data member"));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let home = testkit::tempdir();
    let junk = home.path().join("junk.apk");
    fs_err::write(&junk, b"this is not gzip").unwrap();
    apkbuild(home.path())
        .args(["inspect"])
        .arg(&junk)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("junk.apk"))
        .stderr(predicate::str::contains("signature member at byte 0"));
    apkbuild(home.path())
        .args([
            "pack",
            ".",
            "--name",
            "x",
            "--version",
            "1.0-r",
            "--unsigned",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a valid apk version"));
    apkbuild(home.path())
        .args(["pack", ".", "--name", "x", "--version", "1.0-r0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no signing key"));
    apkbuild(home.path())
        .args(["sign", "--key", "/nonexistent.rsa", "x.apk"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent.rsa"));
    apkbuild(home.path()).args(["frobnicate"]).assert().code(2);
}

#[test]
fn inspect_json_lists_files_with_checksums() {
    let out = apkbuild(testkit::tempdir().path())
        .args(["inspect", "--json"])
        .arg(&testkit::fixture_packages()[0])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["identity"], "Q1UYYMDeBTUd7EmTYCzDHrazip1dk=");
    let link = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "usr/bin/hello-link")
        .unwrap();
    assert_eq!(link["sha1"], "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
    assert_eq!(link["link"], "hello");
}

/// `-o out/` is a directory, created when missing (it used to fail renaming onto `out/`).
#[test]
fn pack_output_with_a_trailing_slash_is_a_directory() {
    let home = testkit::tempdir();
    testkit::write_fixture_like_tree(&home.path().join("tree"), "hi");
    apkbuild(home.path())
        .args([
            "pack",
            "tree",
            "--name",
            "hi",
            "--version",
            "1.0-r0",
            "--unsigned",
        ])
        .args(["-o", "new/dir/"])
        .assert()
        .success();
    assert!(home.path().join("new/dir/hi-1.0-r0.apk").is_file());
}

/// `apkbuild keygen`'s log line, run on a terminal (`script` gives it one) or a pipe.
fn keygen_stderr(home: &Path, tty: bool, no_color: bool) -> String {
    let bin = assert_cmd::cargo::cargo_bin("apkbuild");
    let dir = home.join(format!("keys-{tty}-{no_color}"));
    let args = format!(
        "{} keygen -n -b 1024 --dir {}",
        bin.display(),
        dir.display()
    );
    let mut cmd = if tty {
        let mut c = std::process::Command::new("script");
        c.args(["-qefc", &args, "/dev/null"]);
        c
    } else {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &args]);
        c
    };
    cmd.env("HOME", home).env("PACKAGER", "T <t@example.org>");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{o:?}");
    // `script` puts the terminal's output (stderr too) on stdout.
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn issue15_colour_only_on_a_terminal_and_never_with_no_color() {
    let home = tempfile::tempdir().unwrap();
    let piped = keygen_stderr(home.path(), false, false);
    assert!(piped.contains("INFO generating"), "{piped}");
    assert!(!piped.contains('\x1b'), "escape codes in a pipe: {piped:?}");
    if std::process::Command::new("script")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no `script` (util-linux) to give the terminal cases a terminal");
        return;
    }
    let tty = keygen_stderr(home.path(), true, false);
    assert!(tty.contains('\x1b'), "a terminal gets colour: {tty:?}");
    let tty_no_color = keygen_stderr(home.path(), true, true);
    assert!(tty_no_color.contains("INFO generating"), "{tty_no_color}");
    assert!(!tty_no_color.contains('\x1b'), "NO_COLOR: {tty_no_color:?}");
}

/// `apkbuild info --json DIR | head -c 10` and `apkbuild inspect PKG | head -1`: the reader
/// leaving early is no error. Our end of the pipe is closed before the child writes, so the
/// write fails with EPIPE every time, not only when the output outgrows the pipe.
#[test]
fn a_closed_pipe_is_not_an_error() {
    let home = testkit::tempdir();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes/main/motd");
    let package = testkit::fixture_packages()[0].clone();
    for args in [
        vec!["info".into(), "--json".into(), recipe.into_os_string()],
        vec!["inspect".into(), package.into_os_string()],
    ] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("apkbuild"))
            .args(&args)
            .env("HOME", home.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}
