//! Shared test helpers: the reference fixtures made by the real apk-tools and abuild, the
//! fixture RSA key, and temporary working directories.
//!
//! The fixtures are vendored under `testkit/fixtures/apk-reference` (a copy of
//! `shared/fixtures/apk-reference`, checked to be identical when that directory exists) so
//! a clone of this repository tests on its own.

pub mod garage;
pub mod jwks;
pub mod s3;

use std::path::{Path, PathBuf};

use apk::keys::{Keyring, PrivateKey, PublicKey};

pub mod repo;

/// Name of the fixture key pair (the `.SIGN.RSA.` entries refer to the `.pub` name).
pub const FIXTURE_KEY: &str = "fixture-test-65a1b2c3.rsa";

/// `testkit/fixtures/apk-reference`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apk-reference")
}

/// `shared/fixtures/apk-reference` beside the repository, when present.
pub fn shared_fixtures() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/apk-reference");
    p.is_dir().then_some(p)
}

/// A fixture file by relative path.
pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// The fixture private key.
pub fn fixture_key() -> PrivateKey {
    PrivateKey::load(fixture(&format!("keys/{FIXTURE_KEY}"))).expect("fixture private key")
}

/// The fixture public key.
pub fn fixture_pubkey() -> PublicKey {
    PublicKey::load(fixture(&format!("keys/{FIXTURE_KEY}.pub"))).expect("fixture public key")
}

/// A keyring trusting only the fixture key.
pub fn fixture_keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(fixture_pubkey());
    k
}

/// The three fixture packages of `repo/x86_64`.
pub fn fixture_packages() -> Vec<PathBuf> {
    [
        "hello-1.0-r0.apk",
        "libcstub-1.2.3-r0.apk",
        "world-2.1_rc1-r3.apk",
    ]
    .iter()
    .map(|n| fixture(&format!("repo/x86_64/{n}")))
    .collect()
}

/// A temporary directory removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("apk-test-")
        .tempdir()
        .expect("temporary directory")
}

/// Writes a small package tree like the fixtures' (a binary, a symlink, a doc file and a
/// 0750 directory) under `root` for package `name`.
pub fn write_fixture_like_tree(root: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    let bin = root.join("usr/bin");
    fs_err::create_dir_all(&bin).unwrap();
    fs_err::write(bin.join(name), format!("#!/bin/sh\necho {name}\n")).unwrap();
    fs_err::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(name, bin.join(format!("{name}-link"))).unwrap();
    let doc = root.join("usr/share/doc").join(name);
    fs_err::create_dir_all(&doc).unwrap();
    fs_err::write(doc.join("README"), format!("{name} readme\n")).unwrap();
    let var = root.join("var/lib").join(name);
    fs_err::create_dir_all(&var).unwrap();
    fs_err::set_permissions(&var, std::fs::Permissions::from_mode(0o750)).unwrap();
}

/// A real apk client from `shared/reference-clients` beside the repository (`apk` is
/// apk-tools 2.14, `apk3` is 3.x), when present; else `None` after printing a SKIP line
/// naming what is missing.
pub fn reference_client(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference-clients")
        .join(name);
    if p.is_file() {
        return Some(p);
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "SKIP: the real `{name}` is not at {} (CI has shared/reference-clients)",
            p.display()
        );
    }
    None
}

/// A tool the tests run: `$<env_var>` if set, else `name` on `PATH`, in `$CARGO_HOME/bin` or
/// in `~/.cargo/bin` (where `cargo install` puts it).
pub fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
