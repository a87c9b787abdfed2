//! The real apk clients of `../shared/reference-clients` (apk-tools 2.14.10 `apk`, 3.0.6
//! `apk3`, and Alpine 3.20.3's minirootfs with Alpine's own apk 2.14.4): where they are,
//! and how tests run them. Tests skip, saying so, where the folder is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder, or `None` after printing why the test is skipped.
pub fn clients(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference-clients");
    if dir.join("apk").is_file() && dir.join("apk3").is_file() && minirootfs_tar(&dir).is_file() {
        return Some(dir);
    }
    eprintln!(
        "SKIPPED {test}: no reference clients at {} (apk, apk3, the Alpine minirootfs)",
        dir.display()
    );
    None
}

/// Alpine's minirootfs archive.
pub fn minirootfs_tar(clients: &Path) -> PathBuf {
    clients.join("alpine-minirootfs-3.20.3-x86_64.tar.gz")
}

/// Whether bwrap can make the user namespace the Alpine root runs in.
pub fn bwrap_works(test: &str) -> bool {
    let ok = crate::recipes::bwrap_usable();
    if !ok {
        eprintln!("SKIPPED {test}: bwrap cannot create a user namespace here");
    }
    ok
}

/// A fresh copy of the minirootfs at `root`, trusting the fixture key.
pub fn fresh_alpine(clients: &Path, root: &Path) -> PathBuf {
    fs_err::create_dir_all(root).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(minirootfs_tar(clients))
        .arg("-C")
        .arg(root)
        .arg("--exclude=./dev/*")
        .status()
        .unwrap();
    assert!(status.success(), "unpacking the minirootfs failed");
    trust_fixture_key(root);
    root.to_path_buf()
}

/// Puts the fixture public key into `root/etc/apk/keys`.
pub fn trust_fixture_key(root: &Path) {
    let keys = root.join("etc/apk/keys");
    fs_err::create_dir_all(&keys).unwrap();
    let name = format!("{}.pub", testkit::FIXTURE_KEY);
    fs_err::copy(testkit::fixture(&format!("keys/{name}")), keys.join(&name)).unwrap();
}

/// Runs `argv` inside the Alpine `root` as its root user (a user namespace), with `repo`
/// visible at `/repo` read-only and no network: Alpine's own programs, the root's files.
pub fn in_alpine(root: &Path, repo: Option<&Path>, argv: &[&str]) -> Output {
    let mut cmd = Command::new("bwrap");
    cmd.args([
        "--unshare-user",
        "--uid",
        "0",
        "--gid",
        "0",
        "--unshare-net",
    ])
    .args(["--unshare-pid", "--die-with-parent", "--bind"])
    .arg(root)
    .arg("/")
    .args(["--proc", "/proc", "--dev", "/dev"]);
    if let Some(repo) = repo {
        cmd.arg("--ro-bind").arg(repo).arg("/repo");
    }
    cmd.args([
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/sbin:/usr/bin:/sbin:/bin",
    ])
    .args(argv);
    cmd.output().unwrap()
}

/// Alpine's own apk adds `packages` from the repository `repodest/main` into `root`
/// (signatures checked, scripts run); returns its output.
pub fn alpine_apk_add(root: &Path, repodest: &Path, packages: &[&str]) -> String {
    let mut argv = vec![
        "apk",
        "add",
        "--repositories-file",
        "/dev/null",
        "-X",
        "/repo/main",
    ];
    argv.extend(packages);
    ok("Alpine's apk add", &in_alpine(root, Some(repodest), &argv))
}

/// Asserts a command succeeded, showing its output if not; returns its stdout.
pub fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
