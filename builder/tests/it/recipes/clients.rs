//! Issue 12: what we build is what the real clients accept. The example tree, plus the
//! quick start's `demo-runtime` (the provider of the `so:libc.so.6` the host-built C
//! packages need), is built once for this binary; then apk-tools 2.14 (`apk`) and 3.0
//! (`apk3`) verify every package and install them into an empty root, Alpine's own apk
//! installs the noarch and script packages into the minirootfs, and `apk index` writes
//! the same APKINDEX text as `apkbuild index`.

use std::process::Command;
use std::sync::OnceLock;

use super::*;
use crate::reference::{self, clients, in_alpine, ok};

/// The example packages built once.
struct Built {
    _home: tempfile::TempDir,
    repodest: PathBuf,
}

fn example_repo() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let home = testkit::tempdir();
        let tree = examples(home.path());
        let runtime = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/quickstart/recipes/main/demo-runtime");
        copy_dir(&runtime, &tree.join("main/demo-runtime"));
        let repodest = home.path().join("packages");
        build_all(home.path(), &tree, &repodest, &["--no-cache"]).success();
        Built {
            _home: home,
            repodest,
        }
    })
}

/// Every `.apk` of the example repository, sorted.
fn packages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs_err::read_dir(arch_dir(&example_repo().repodest))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "apk"))
        .collect();
    out.sort();
    out
}

fn keys() -> PathBuf {
    testkit::fixture("keys")
}

/// A real client, run as root: directly when we are, else in a user namespace.
fn client(clients: &Path, name: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        return Command::new(clients.join(name));
    }
    let mut cmd = Command::new("bwrap");
    cmd.args([
        "--unshare-user",
        "--uid",
        "0",
        "--gid",
        "0",
        "--bind",
        "/",
        "/",
    ])
    .args(["--dev", "/dev", "--proc", "/proc"])
    .arg(clients.join(name));
    cmd
}

#[test]
fn issue12_every_example_package_verifies_with_apk_and_apk3() {
    let Some(clients) = clients("apk verify") else {
        return;
    };
    let pkgs = packages();
    assert_eq!(pkgs.len(), 8, "{pkgs:?}");
    for name in ["apk", "apk3"] {
        let out = Command::new(clients.join(name))
            .arg("verify")
            .arg("--keys-dir")
            .arg(keys())
            .args(&pkgs)
            .output()
            .unwrap();
        let text = ok(&format!("{name} verify"), &out);
        assert_eq!(
            text.lines().filter(|l| l.contains("OK")).count(),
            pkgs.len(),
            "{name}: {text}"
        );
    }
}

#[test]
fn issue12_example_packages_install_with_apk_and_apk3_into_an_empty_root() {
    let Some(clients) = clients("apk add into an empty root") else {
        return;
    };
    if !reference::bwrap_works("apk add into an empty root") {
        return;
    }
    // hello-sh needs a /bin/sh and libgreet-dev pkgconfig, which nothing in the tree
    // provides (an image's base does): they are installed into Alpine's root below.
    let wanted = [
        "demo-runtime",
        "greet",
        "hello-server",
        "libgreet",
        "libgreet-doc",
        "motd",
    ];
    for name in ["apk", "apk3"] {
        let home = testkit::tempdir();
        let root = home.path().join("root");
        reference::trust_fixture_key(&root);
        let out = client(&clients, name)
            .arg("--root")
            .arg(&root)
            .args(["--initdb", "--no-cache", "--repositories-file", "/dev/null"])
            .arg("-X")
            .arg(example_repo().repodest.join("main"))
            .arg("add")
            .args(wanted)
            .output()
            .unwrap();
        ok(&format!("{name} add"), &out);
        let info = client(&clients, name)
            .arg("--root")
            .arg(&root)
            .arg("info")
            .output()
            .unwrap();
        let listed = ok(&format!("{name} info"), &info);
        for w in wanted {
            assert!(listed.lines().any(|l| l == w), "{name}: {w} in {listed}");
        }
        // The C program runs there on the runtime the repository provides.
        let run = in_alpine(&root, None, &["/usr/bin/greet", "tester"]);
        assert!(ok("greet", &run).contains("Hello, tester!"));
    }
}

#[test]
fn issue12_noarch_and_script_packages_install_with_alpines_apk_into_the_minirootfs() {
    let Some(clients) = clients("Alpine's apk add") else {
        return;
    };
    if !reference::bwrap_works("Alpine's apk add") {
        return;
    }
    let home = testkit::tempdir();
    let root = reference::fresh_alpine(&clients, &home.path().join("alpine"));
    let log = reference::alpine_apk_add(
        &root,
        &example_repo().repodest,
        &["hello-sh", "motd", "libgreet-doc", "hello-server"],
    );
    assert!(
        log.contains("Executing hello-sh-0.3-r1.pre-install"),
        "{log}"
    );
    let run = in_alpine(
        &root,
        None,
        &[
            "/bin/sh",
            "-c",
            "hello-sh && motd && apk info -e hello-server",
        ],
    );
    let out = ok("the installed programs", &run);
    assert!(out.contains("hello from hello-sh"), "{out}");
}

#[test]
fn issue12_apk_index_and_apkbuild_index_write_the_same_apkindex() {
    let Some(clients) = clients("apk index") else {
        return;
    };
    let home = testkit::tempdir();
    let pkgs = packages();
    for rewrite in [None, Some(std::env::consts::ARCH)] {
        let theirs = home.path().join("apk.tar.gz");
        let mut cmd = Command::new(clients.join("apk"));
        cmd.arg("index")
            .arg("--keys-dir")
            .arg(keys())
            .args(["--no-warnings", "-o"])
            .arg(&theirs)
            .args(rewrite.map(|a| format!("--rewrite-arch={a}")))
            .args(&pkgs);
        ok("apk index", &cmd.output().unwrap());
        let ours = home.path().join("ours.tar.gz");
        apkbuild(home.path())
            .arg("index")
            .arg("-o")
            .arg(&ours)
            .args(rewrite.map(|a| format!("--rewrite-arch={a}")))
            .args(&pkgs)
            .assert()
            .success();
        assert_eq!(
            apkindex_text(&ours),
            apkindex_text(&theirs),
            "rewrite-arch {rewrite:?}"
        );
    }
}

/// The `APKINDEX` member of an index archive (signed or not).
fn apkindex_text(path: &Path) -> String {
    let file = fs_err::File::open(path).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().as_os_str() == "APKINDEX" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut entry, &mut s).unwrap();
            return s;
        }
    }
    panic!("no APKINDEX in {}", path.display());
}
