//! The bubblewrap sandbox: preflight, read-only recipe directory, root inside, no network.

use super::*;
use predicates::prelude::*;
use std::path::Path;

#[test]
fn missing_sandbox_is_explained_before_any_phase_runs() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    // No bwrap on this PATH: the preflight must say what is missing and how to proceed.
    apkbuild(home.path())
        .env("PATH", "/nonexistent")
        .arg("build")
        .arg(tree.join("main/motd"))
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("`bwrap` is not installed")
                .and(predicate::str::contains("--no-sandbox")),
        );
}

#[test]
fn sandbox_keeps_the_recipe_directory_read_only_and_package_runs_as_root() {
    if sandbox_flag().is_some() {
        eprintln!("SKIPPED: bwrap cannot create a user namespace here");
        return;
    }
    fails_leaving_repo_unchanged(
        "write outside",
        &format!(
            "{HEAD}build() {{ touch \"$startdir\"/written-by-build; }}\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"
        ),
        &[],
        "build() failed",
    );
    let home = testkit::tempdir();
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}package() {{ mkdir -p \"$pkgdir\"/etc; echo x > \"$pkgdir\"/etc/x; chown 0:0 \"$pkgdir\"/etc/x; [ \"$(id -u)\" = 0 ]; }}\n"
        ),
        &[],
    );
    apkbuild(home.path())
        .arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .assert()
        .success();
}

#[test]
fn network_is_off_in_the_sandbox_unless_options_net() {
    if sandbox_flag().is_some() || !Path::new("/bin/bash").exists() {
        eprintln!("SKIPPED: needs bwrap with user namespaces and /bin/bash");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recipe = |options: &str| {
        format!(
            "{HEAD}options=\"{options}\"\nbuild() {{ /bin/bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}'; }}\n\
             package() {{ mkdir -p \"$pkgdir\"; }}\n"
        )
    };
    fails_leaving_repo_unchanged("no net", &recipe(""), &[], "build() failed");
    let home = testkit::tempdir();
    let dir = bad_recipe(home.path(), &recipe("net"), &[]);
    apkbuild(home.path())
        .arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .assert()
        .success();
}

#[test]
fn sandboxed_and_direct_builds_give_the_same_bytes() {
    if sandbox_flag().is_some() {
        eprintln!("SKIPPED: bwrap cannot create a user namespace here");
        return;
    }
    // The cache key leaves sandboxing out so that runners without user namespaces share
    // entries with those that have them: that holds only if the bytes are the same.
    let home = testkit::tempdir();
    let tree = examples(home.path());
    build_all(home.path(), &tree, &home.path().join("a"), &["--no-cache"]).success();
    build_all(
        home.path(),
        &tree,
        &home.path().join("b"),
        &["--no-cache", "--no-sandbox"],
    )
    .success();
    assert_eq!(
        snapshot(&home.path().join("a")),
        snapshot(&home.path().join("b"))
    );
}

#[test]
fn issue12_build_and_check_run_unprivileged_package_as_root_as_with_abuild() {
    if sandbox_flag().is_some() {
        eprintln!("SKIPPED: bwrap cannot create a user namespace here");
        return;
    }
    let home = testkit::tempdir();
    let recipe = |options: &str, check_uid: &str| {
        format!(
            "{HEAD}options=\"{options}\"\nbuilddir=\"$srcdir\"\n\
             build() {{ [ \"$(id -u)\" = 1000 ]; touch built; }}\n\
             check() {{ [ \"$(id -u)\" = {check_uid} ]; }}\n\
             package() {{ [ \"$(id -u)\" = 0 ]; install -Dm644 built \"$pkgdir\"/usr/share/bad/built; }}\n"
        )
    };
    for (options, uid) in [("", "1000"), ("checkroot", "0")] {
        build_one(home.path(), &recipe(options, uid), &[]).success();
    }
}

#[test]
fn issue12_chown_to_a_pkguser_works_as_root_and_says_to_run_as_root_without() {
    if sandbox_flag().is_some() {
        eprintln!("SKIPPED: bwrap cannot create a user namespace here");
        return;
    }
    let recipe = format!(
        "{HEAD}pkgusers=\"svc\"\npackage() {{ mkdir -p \"$pkgdir\"/var/lib/svc; chown 100:101 \"$pkgdir\"/var/lib/svc; }}\n"
    );
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        // The ids are mapped: svc (uid 100) is recorded by name; gid 101 names no
        // pkggroup and stays as it is.
        let home = testkit::tempdir();
        build_one(home.path(), &recipe, &[]).success();
        let pkg = built(home.path(), "bad-1.0-r0.apk");
        let dir = pkg
            .files
            .iter()
            .find(|f| f.entry.path.starts_with("var/lib/svc"))
            .unwrap();
        let e = &dir.entry;
        assert_eq!(
            (e.uname.as_str(), e.uid, e.gname.as_str(), e.gid),
            ("svc", 0, "", 101)
        );
    } else {
        fails_leaving_repo_unchanged("chown", &recipe, &[], "run apkbuild as root");
    }
}
