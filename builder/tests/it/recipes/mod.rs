//! Recipes built by the real binary; shared helpers here, tests in the modules.

mod abuild;
mod bad_input;
mod cache;
mod clients;
mod owners;
mod packaging;
mod rootbld;
mod s6;
mod sandbox;
mod sources;
mod tree;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub fn apkbuild(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("apkbuild").unwrap();
    cmd.env_clear()
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env(
            "PACKAGER_PRIVKEY",
            testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY)),
        );
    cmd
}

/// The example recipes, copied so tests can change them.
pub fn examples(into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes");
    copy_dir(&src, &into.join("recipes"))
}

/// The recipes written for these tests (`builder/tests/recipes`).
pub fn test_recipes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recipes")
}

/// Copies a directory tree; returns `dst`.
pub fn copy_dir(src: &Path, dst: &Path) -> PathBuf {
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(src).unwrap();
        let to = dst.join(rel);
        if e.file_type().is_dir() {
            fs_err::create_dir_all(&to).unwrap();
        } else {
            fs_err::copy(e.path(), &to).unwrap();
        }
    }
    dst.to_path_buf()
}

/// Whether bwrap can create the user namespace the sandbox needs (checked once).
pub fn bwrap_usable() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        std::process::Command::new("bwrap")
            .args(["--unshare-user", "--uid", "0", "--unshare-net"])
            .args(["--ro-bind", "/", "/", "true"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The sandbox when bwrap works here, else `--no-sandbox` (said on stderr).
pub fn sandbox_flag() -> Option<&'static str> {
    let ok = bwrap_usable();
    if !ok {
        eprintln!("bwrap cannot create a user namespace here: building with --no-sandbox");
    }
    (!ok).then_some("--no-sandbox")
}

/// Builds a one-recipe tree (written by [`bad_recipe`]) with `apkbuild build` into
/// `home/p`; returns the assertion.
pub fn build_one(home: &Path, text: &str, files: &[(&str, &[u8])]) -> assert_cmd::assert::Assert {
    let dir = bad_recipe(home, text, files);
    let mut cmd = apkbuild(home);
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.join("p"))
        .arg("--no-cache")
        .args(sandbox_flag());
    cmd.assert()
}

/// A package [`build_one`] wrote.
pub fn built(home: &Path, file: &str) -> apk::package::Package {
    apk::package::Package::open(&arch_dir(&home.join("p")).join(file), Default::default()).unwrap()
}

/// `apkbuild info --json DIR`.
pub fn info_json(home: &Path, dir: &Path) -> serde_json::Value {
    let out = apkbuild(home)
        .args(["info", "--json"])
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

pub fn build_all(
    home: &Path,
    tree: &Path,
    repodest: &Path,
    extra: &[&str],
) -> assert_cmd::assert::Assert {
    let mut cmd = apkbuild(home);
    cmd.arg("build-all")
        .arg(tree)
        .arg("--repodest")
        .arg(repodest)
        .args(sandbox_flag())
        .args(extra);
    cmd.assert()
}

pub fn arch_dir(repodest: &Path) -> PathBuf {
    repodest.join("main").join(std::env::consts::ARCH)
}

/// (file name, bytes) of every file in the arch dir.
pub fn snapshot(repodest: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = arch_dir(repodest);
    let mut out: Vec<_> = match fs_err::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    fs_err::read(e.path()).unwrap(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// A one-recipe tree in repo `main` with an APKBUILD body and extra files.
pub fn bad_recipe(home: &Path, apkbuild_text: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = home.join("bad/main/bad");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("APKBUILD"), apkbuild_text).unwrap();
    for (n, b) in files {
        fs_err::write(dir.join(n), b).unwrap();
    }
    dir
}

pub const HEAD: &str = "pkgname=bad\npkgver=1.0\npkgrel=0\npkgdesc=\"bad\"\nurl=\"https://example.org\"\narch=\"noarch\"\nlicense=\"MIT\"\n";

/// Builds a good package into a repo, then the bad recipe into the same repo: it must fail
/// with `expect` on stderr and leave the repo and index byte for byte as they were.
pub fn fails_leaving_repo_unchanged(
    name: &str,
    apkbuild_text: &str,
    files: &[(&str, &[u8])],
    expect: &str,
) {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let repodest = home.path().join("packages");
    build_all(
        home.path(),
        &tree.join("main/hello-sh"),
        &repodest,
        &["--no-cache"],
    )
    .success();
    let before = snapshot(&repodest);
    assert!(!before.is_empty());
    let dir = bad_recipe(home.path(), apkbuild_text, files);
    let mut cmd = apkbuild(home.path());
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(&repodest)
        .arg("--no-cache")
        .args(sandbox_flag());
    let out = cmd.assert().failure().get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(expect),
        "{name}: expected `{expect}` in:\n{stderr}"
    );
    assert_eq!(
        snapshot(&repodest),
        before,
        "{name}: the repository changed"
    );
}
