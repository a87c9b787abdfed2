//! Recipes with `pkgusers`/`pkggroups` (aports' daemons): package() and split functions
//! chown to them, in host builds and in `--rootbld`, when apkbuild runs as root; the
//! packages record those owners as abuild does (the name, id 0); Alpine's apk gives the
//! files to the accounts its pre-install made; without root, a chown says to run as root.

use std::collections::BTreeMap;
use std::process::Command as StdCommand;

use predicates::prelude::*;

use super::*;
use crate::reference::{self, clients, ok};

/// Whether the tests run as root (the id mapping needs it).
fn is_root() -> bool {
    StdCommand::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The preconditions of a build that maps ids: root and bwrap.
fn as_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: not root (apkbuild maps the ids only as root)");
        return false;
    }
    if !bwrap_usable() {
        eprintln!("SKIPPED {test}: bwrap cannot create a user namespace here");
        return false;
    }
    true
}

/// The `owners` test recipe, copied into `home`.
fn owners_recipe(home: &Path) -> PathBuf {
    copy_dir(
        &test_recipes().join("main/owners"),
        &home.join("tree/main/owners"),
    )
}

/// Builds the `owners` recipe (as root) with `extra` options; returns `$REPODEST`.
fn build_owners(home: &Path, extra: &[&std::ffi::OsStr]) -> PathBuf {
    let repodest = home.join("p");
    apkbuild(home)
        .arg("build")
        .arg(owners_recipe(home))
        .arg("--repodest")
        .arg(&repodest)
        .arg("--no-cache")
        .args(extra)
        .assert()
        .success();
    repodest
}

/// (uname, gname, uid, gid) of every data entry of a built package, by path.
fn owners_of(repodest: &Path, file: &str) -> BTreeMap<String, (String, String, u32, u32)> {
    let pkg =
        apk::package::Package::open(&arch_dir(repodest).join(file), Default::default()).unwrap();
    pkg.files
        .iter()
        .map(|f| {
            let e = &f.entry;
            let path = e.path.trim_end_matches('/').to_string();
            (path, (e.uname.clone(), e.gname.clone(), e.uid, e.gid))
        })
        .collect()
}

/// The packages record the recipe's accounts as abuild's `.owner-map` does, and root's
/// files as before (no names, 0/0).
fn assert_recorded_owners(repodest: &Path) {
    let named = |u: &str, g: &str| (u.to_string(), g.to_string(), 0, 0);
    let main = owners_of(repodest, "owners-1.0-r0.apk");
    assert_eq!(main["var/lib/ownd"], named("ownd", "ownd"), "{main:?}");
    assert_eq!(main["var/lib/ownd/state"], named("ownd", "ownd"));
    assert_eq!(main["etc/ownd.conf"], named("", "ownlog"));
    for root_owned in ["etc", "var", "var/lib"] {
        assert_eq!(main[root_owned], named("", ""), "{root_owned}");
    }
    let log = owners_of(repodest, "owners-log-1.0-r0.apk");
    assert_eq!(log["var/log/ownd"], named("ownd", "ownlog"), "{log:?}");
    assert_eq!(log["var/log/ownd/current"], named("ownd", "ownlog"));
    assert_eq!(log["var/log"], named("", ""));
}

#[test]
fn pkgusers_own_files_in_a_host_build_as_root() {
    if !as_root("pkgusers in a host build") {
        return;
    }
    let home = testkit::tempdir();
    let repodest = build_owners(home.path(), &[]);
    assert_recorded_owners(&repodest);
    // The host's own accounts file is untouched.
    let passwd = fs_err::read_to_string("/etc/passwd").unwrap();
    assert!(!passwd.lines().any(|l| l.starts_with("ownd:")), "{passwd}");
}

#[test]
fn pkgusers_own_files_in_rootbld_and_alpines_apk_gives_them_to_the_accounts() {
    let Some(clients) = clients("pkgusers in --rootbld") else {
        return;
    };
    if !as_root("pkgusers in --rootbld") || !reference::bwrap_works("pkgusers in --rootbld") {
        return;
    }
    let home = testkit::tempdir();
    let base = reference::minirootfs_tar(&clients);
    let repodest = build_owners(
        home.path(),
        &[
            "--rootbld".as_ref(),
            "--build-base".as_ref(),
            base.as_os_str(),
        ],
    );
    assert_recorded_owners(&repodest);
    let root = reference::fresh_alpine(&clients, &home.path().join("alpine"));
    let add = ["apk", "add", "--repositories-file", "/dev/null"];
    let add = [&add[..], &["-X", "/repo/main", "owners", "owners-log"]].concat();
    let log = ok(
        "Alpine's apk add",
        &as_root_in_alpine(&root, &repodest, &add),
    );
    assert!(log.contains("Executing owners-1.0-r0.pre-install"), "{log}");
    let stat = "stat -c '%n %U:%G' /var/lib/ownd /var/lib/ownd/state /etc/ownd.conf \
                /var/log/ownd/current";
    let owners = ok(
        "stat",
        &as_root_in_alpine(&root, &repodest, &["/bin/sh", "-c", stat]),
    );
    assert_eq!(
        owners,
        "/var/lib/ownd ownd:ownd\n/var/lib/ownd/state ownd:ownd\n\
         /etc/ownd.conf root:ownlog\n/var/log/ownd/current ownd:ownlog\n"
    );
}

/// `argv` in the Alpine root as real root (no user namespace, so apk's chown to the
/// accounts' ids really happens), `repodest` at `/repo`.
fn as_root_in_alpine(root: &Path, repodest: &Path, argv: &[&str]) -> std::process::Output {
    StdCommand::new("bwrap")
        .args([
            "--unshare-net",
            "--unshare-pid",
            "--die-with-parent",
            "--bind",
        ])
        .arg(root)
        .arg("/")
        .args(["--proc", "/proc", "--dev", "/dev", "--ro-bind"])
        .arg(repodest)
        .arg("/repo")
        .args([
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .args(argv)
        .output()
        .unwrap()
}

#[test]
fn issue12_chown_to_a_pkguser_without_root_says_to_run_apkbuild_as_root() {
    if !as_root("rootless chown") {
        return;
    }
    // The build run as `nobody`: one id in the sandbox, so the chown cannot be done.
    let home = testkit::tempdir();
    let dir = owners_recipe(home.path());
    let chown = StdCommand::new("chown")
        .args(["-R", "65534:65534"])
        .arg(home.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let mut rootless = assert_cmd::Command::new("setpriv");
    rootless
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("apkbuild"))
        .arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .env_clear()
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "PACKAGER_PRIVKEY",
            testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY)),
        );
    rootless.assert().failure().stderr(
        predicate::str::contains("package() failed")
            .and(predicate::str::contains("run apkbuild as root")),
    );
}
