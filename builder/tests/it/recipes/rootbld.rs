//! Issue 12: `--rootbld` builds in a root of its own made from Alpine's minirootfs (or from
//! packages), and what it builds installs and runs in a fresh Alpine root with Alpine's
//! own apk, scripts on and signatures checked.

use predicates::prelude::*;

use super::*;
use crate::reference::{self, clients, in_alpine, ok};

/// `apkbuild build-all --rootbld --build-base BASE` of `dirs` into `repodest`.
fn rootbld(home: &Path, base: &Path, repodest: &Path, dirs: &[PathBuf]) -> assert_cmd::Command {
    let mut cmd = apkbuild(home);
    cmd.arg("build-all")
        .args(dirs)
        .arg("--repodest")
        .arg(repodest)
        .args(["--no-cache", "--rootbld", "--build-base"])
        .arg(base);
    cmd
}

/// The preconditions of these tests: the reference clients and bwrap.
fn ready(test: &str) -> Option<PathBuf> {
    let dir = clients(test)?;
    reference::bwrap_works(test).then_some(dir)
}

#[test]
fn issue12_rootbld_in_the_minirootfs_gives_packages_alpine_apk_installs_and_runs() {
    let Some(clients) = ready("rootbld in the minirootfs") else {
        return;
    };
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let repodest = home.path().join("packages");
    let dirs = [tree.join("main/hello-sh"), tree.join("main/motd")];
    rootbld(
        home.path(),
        &reference::minirootfs_tar(&clients),
        &repodest,
        &dirs,
    )
    .assert()
    .success()
    .stderr(predicate::str::contains(
        "applying it with apkbuild's built-in applier",
    ));
    for f in ["hello-sh-0.3-r1.apk", "motd-2.1-r0.apk"] {
        let pkg =
            apk::package::Package::open(&arch_dir(&repodest).join(f), Default::default()).unwrap();
        pkg.verify(&testkit::fixture_keyring()).unwrap();
        assert!(!pkg.info.depends.iter().any(|d| d.contains("libc.so.6")));
    }
    // The same inputs in a new root give the same bytes.
    let again = home.path().join("again");
    rootbld(
        home.path(),
        &reference::minirootfs_tar(&clients),
        &again,
        &dirs,
    )
    .assert()
    .success();
    assert_eq!(snapshot(&again), snapshot(&repodest));
    // A second, fresh Alpine root; Alpine's apk checks our signatures and runs the
    // pre-install script that creates the service user.
    let root = reference::fresh_alpine(&clients, &home.path().join("alpine"));
    let log = reference::alpine_apk_add(&root, &repodest, &["hello-sh", "motd"]);
    assert!(
        log.contains("Executing hello-sh-0.3-r1.pre-install"),
        "{log}"
    );
    let run = ok(
        "the installed programs",
        &in_alpine(
            &root,
            None,
            &["/bin/sh", "-c", "hello-sh && motd && id hellod"],
        ),
    );
    assert!(run.contains("hello from hello-sh"), "{run}");
    assert!(run.contains("Message of the day: patched"), "{run}");
    assert!(run.contains("hellod"), "{run}");
}

#[test]
fn issue12_rootbld_hides_the_host_runs_the_root_s_shell_and_keeps_the_network_off() {
    let Some(clients) = ready("rootbld isolation") else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let home = testkit::tempdir();
    let recipe = |options: &str, expect_net: &str| {
        format!(
            "{HEAD}options=\"{options}\"\n\
             build() {{\n\
             \t[ \"$(readlink /proc/$$/exe)\" = /bin/busybox ]\n\
             \t[ -e /etc/alpine-release ] && [ ! -e /etc/debian_version ]\n\
             \t[ ! -e {home} ]\n\
             \tif nc -w 2 127.0.0.1 {port} </dev/null; then net=on; else net=off; fi\n\
             \t[ $net = {expect_net} ]\n\
             }}\n\
             package() {{ mkdir -p \"$pkgdir\"; }}\n",
            home = home.path().display()
        )
    };
    for (options, net) in [("", "off"), ("net", "on")] {
        let dir = bad_recipe(home.path(), &recipe(options, net), &[]);
        rootbld(
            home.path(),
            &reference::minirootfs_tar(&clients),
            &home.path().join("p"),
            &[dir],
        )
        .assert()
        .success();
    }
}

#[test]
fn issue12_rootbld_names_a_tool_the_root_lacks() {
    let Some(clients) = ready("rootbld missing tool") else {
        return;
    };
    // The minirootfs has no compiler: a C recipe cannot build there, and says why.
    let home = testkit::tempdir();
    let tree = examples(home.path());
    rootbld(
        home.path(),
        &reference::minirootfs_tar(&clients),
        &home.path().join("p"),
        &[tree.join("main/hello-server")],
    )
    .assert()
    .failure()
    .stderr(predicate::str::contains(
        "build() failed: `cc` is not installed in the build root: add the package providing it to makedepends",
    ));
}

#[test]
fn issue12_rootbld_installs_makedepends_from_repodest_and_keys_the_cache_on_the_base() {
    let Some(clients) = ready("rootbld makedepends") else {
        return;
    };
    let home = testkit::tempdir();
    // An offline base: the minirootfs unpacked, its remote repositories dropped.
    let base = reference::fresh_alpine(&clients, &home.path().join("base"));
    fs_err::write(base.join("etc/apk/repositories"), "").unwrap();
    let tree = examples(home.path());
    let repodest = home.path().join("packages");
    rootbld(home.path(), &base, &repodest, &[tree.join("main/motd")])
        .assert()
        .success();
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}makedepends=\"motd\"\nbuilddir=\"$srcdir\"\nbuild() {{ motd > motd.txt; }}\n\
             package() {{ install -Dm644 motd.txt \"$pkgdir\"/usr/share/bad/motd.txt; }}\n"
        ),
        &[],
    );
    let build = |base: &Path| {
        let mut cmd = apkbuild(home.path());
        cmd.arg("build")
            .arg(&dir)
            .arg("--repodest")
            .arg(&repodest)
            .arg("--cache")
            .arg(home.path().join("cache"))
            .args(["--rootbld", "--build-base"])
            .arg(base)
            .assert()
            .success()
    };
    build(&base).stderr(predicate::str::contains(
        "build root: installing build dependencies: motd",
    ));
    build(&base).stdout(predicate::str::contains("cached "));
    // Another base is another cache key.
    fs_err::write(base.join("etc/motd"), "changed base\n").unwrap();
    build(&base).stdout(predicate::str::contains("built "));
}

#[test]
fn issue12_rootbld_without_a_base_installs_alpine_base_build_base_abuild() {
    let Some(clients) = ready("rootbld from packages") else {
        return;
    };
    let home = testkit::tempdir();
    let base_repo = home.path().join("base-packages");
    // alpine-base made of the minirootfs' files, and empty build-base and abuild: what the
    // repositories give abuild's rootbld, built here.
    let tar = fs_err::read(reference::minirootfs_tar(&clients)).unwrap();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&tar))
    };
    let base_dir = home.path().join("bases/main/alpine-base");
    fs_err::create_dir_all(&base_dir).unwrap();
    // Not a name abuild unpacks: package() extracts it, absolute symlinks and all.
    fs_err::write(base_dir.join("rootfs.bin"), &tar).unwrap();
    let meta = |name: &str| {
        HEAD.replace("pkgname=bad", &format!("pkgname={name}"))
            + "options=\"!check !strip !tracedeps !fhs suid\"\n"
    };
    fs_err::write(
        base_dir.join("APKBUILD"),
        meta("alpine-base")
            + &format!(
                "arch=\"all\"\nprovides=\"/bin/sh\"\nsource=\"rootfs.bin\"\n\
                 package() {{ mkdir -p \"$pkgdir\"; tar -xzf \"$srcdir\"/rootfs.bin -C \"$pkgdir\"; \
                 rm -rf \"$pkgdir\"/lib/apk/db \"$pkgdir\"/etc/apk/world \"$pkgdir\"/etc/apk/repositories \"$pkgdir\"/dev; }}\n\
                 sha512sums=\"{sum}  rootfs.bin\"\n"
            ),
    )
    .unwrap();
    for name in ["build-base", "abuild"] {
        let d = home.path().join("bases/main").join(name);
        fs_err::create_dir_all(&d).unwrap();
        fs_err::write(
            d.join("APKBUILD"),
            meta(name) + "package() { mkdir -p \"$pkgdir\"; }\n",
        )
        .unwrap();
    }
    build_all(
        home.path(),
        &home.path().join("bases"),
        &base_repo,
        &["--no-cache"],
    )
    .success();
    let tree = examples(home.path());
    let keys = testkit::fixture("keys");
    apkbuild(home.path())
        .arg("build")
        .arg(tree.join("main/hello-sh"))
        .arg("--repodest")
        .arg(home.path().join("packages"))
        .args(["--no-cache", "--rootbld", "-X"])
        .arg(base_repo.join("main"))
        .arg("--keys-dir")
        .arg(keys)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "build root: installing alpine-base build-base abuild from the repositories",
        ));
}

#[test]
fn issue12_rootbld_without_a_base_or_repositories_says_what_to_pass() {
    if Path::new("/etc/apk/repositories").exists() {
        eprintln!("SKIPPED: this machine has /etc/apk/repositories, which --rootbld would use");
        return;
    }
    let home = testkit::tempdir();
    let tree = examples(home.path());
    apkbuild(home.path())
        .arg("build")
        .arg(tree.join("main/motd"))
        .arg("--rootbld")
        .assert()
        .failure()
        .stderr(predicate::str::contains("none is configured: pass -X URL"));
}

#[test]
fn issue12_rootbld_names_dependencies_by_what_the_root_provides() {
    let Some(clients) = ready("rootbld dependency naming") else {
        return;
    };
    let home = testkit::tempdir();
    let base = reference::minirootfs_tar(&clients);
    // The root's own busybox needs musl's soname, which the root's musl provides; a
    // pkg-config module nothing provides is left out, with abuild's warning.
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}arch=\"all\"\noptions=\"!strip\"\n\
             package() {{ install -Dm755 /bin/busybox \"$pkgdir\"/usr/bin/bb; mkdir -p \"$pkgdir\"/usr/lib/pkgconfig; \
             printf 'Name: bad\\nVersion: 1\\nRequires: nosuch\\n' > \"$pkgdir\"/usr/lib/pkgconfig/bad.pc; }}\n"
        ),
        &[],
    );
    let repodest = home.path().join("p");
    rootbld(home.path(), &base, &repodest, &[dir])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Could not find any provider for pc:nosuch",
        ));
    let pkg = apk::package::Package::open(
        &arch_dir(&repodest).join("bad-1.0-r0.apk"),
        Default::default(),
    )
    .unwrap();
    let depends = &pkg.info.depends;
    assert!(
        depends.iter().any(|d| d.starts_with("so:libc.musl-")),
        "{depends:?}"
    );
    assert!(!depends.iter().any(|d| d.contains("nosuch")), "{depends:?}");
    // A program linked against the host's glibc needs a soname no Alpine package has.
    let home = testkit::tempdir();
    let src = home.path().join("glibc.c");
    fs_err::write(&src, "int main(void) { return 0; }\n").unwrap();
    let bin = home.path().join("glibc-bin");
    let compiled = std::process::Command::new("cc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !compiled {
        eprintln!("SKIPPED the glibc half: no C compiler on this machine");
        return;
    }
    let bytes = fs_err::read(&bin).unwrap();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&bytes))
    };
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}arch=\"all\"\noptions=\"!strip\"\nsource=\"glibc-bin\"\n\
             package() {{ install -Dm755 \"$srcdir\"/glibc-bin \"$pkgdir\"/usr/bin/glibc-bin; }}\n\
             sha512sums=\"{sum}  glibc-bin\"\n"
        ),
        &[("glibc-bin", &bytes)],
    );
    rootbld(home.path(), &base, &home.path().join("p"), &[dir])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "libc.so.6: path not found: no package of the build root provides so:libc.so.6",
        ));
}
