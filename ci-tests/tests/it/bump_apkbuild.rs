//! `ci/bump-apkbuild` on sample recipes: golden rewrites, pkgrel rules, idempotency, bad
//! input, and the clear error when `apkbuild` is missing.

use predicates::str::contains;

use crate::support::{entries, read, script, write};

const RECIPE: &str = "\
# Maintainer: Demo <demo@example.com>
pkgname=hello
pkgver=\"1.0.0\"
pkgrel=3
source=\"https://example.com/$pkgname-$pkgver.tar.gz\"

build() {
\tpkgver=ignored
}

sha512sums=\"
abc  hello-1.0.0.tar.gz
\"
";

/// PATH without `apkbuild` (the system directories only).
fn path_without_apkbuild() -> &'static str {
    for d in ["/usr/bin", "/bin"] {
        assert!(
            !std::path::Path::new(d).join("apkbuild").exists(),
            "apkbuild is installed in {d}; this test needs a PATH without it"
        );
    }
    "/usr/bin:/bin"
}

#[test]
fn new_version_sets_pkgver_and_resets_pkgrel() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "APKBUILD", RECIPE);
    script("bump-apkbuild", t.path())
        .args(["--no-checksum", "v1.1.0"])
        .assert()
        .success()
        .stderr(contains("pkgver 1.0.0 -> 1.1.0, pkgrel 3 -> 0"));
    // Only the top-level assignments change; quotes are kept; the function body is not
    // touched.
    assert_eq!(
        read(&f),
        RECIPE
            .replace("pkgver=\"1.0.0\"", "pkgver=\"1.1.0\"")
            .replace("pkgrel=3", "pkgrel=0")
    );
    assert_eq!(entries(t.path()), ["APKBUILD"], "no temporary file left");
}

#[test]
fn same_version_twice_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "APKBUILD", RECIPE);
    for _ in 0..2 {
        script("bump-apkbuild", t.path())
            .args(["-f", "APKBUILD", "--no-checksum", "1.2.0_rc1"])
            .assert()
            .success();
    }
    let once = read(&f);
    assert!(once.contains("pkgver=\"1.2.0_rc1\"\npkgrel=0\n"), "{once}");
    script("bump-apkbuild", t.path())
        .args(["--no-checksum", "1.2.0_rc1"])
        .assert()
        .success()
        .stderr(contains("already pkgver=1.2.0_rc1 pkgrel=0"));
    assert_eq!(read(&f), once);
}

#[test]
fn explicit_pkgrel_and_a_recipe_in_a_subdirectory() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "main/hello/APKBUILD", RECIPE);
    script("bump-apkbuild", t.path())
        .args([
            "--file",
            "main/hello/APKBUILD",
            "-r",
            "7",
            "--no-checksum",
            "1.0.0",
        ])
        .assert()
        .success();
    assert_eq!(read(&f), RECIPE.replace("pkgrel=3", "pkgrel=7"));
}

#[test]
fn missing_apkbuild_tool_is_named_and_the_file_untouched() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "APKBUILD", RECIPE);
    script("bump-apkbuild", t.path())
        .env("PATH", path_without_apkbuild())
        .arg("2.0.0")
        .assert()
        .code(1)
        .stderr(contains("`apkbuild` is not on PATH"))
        .stderr(contains("--no-checksum"));
    assert_eq!(read(&f), RECIPE);
    // The same version needs no checksum, so no apkbuild either.
    script("bump-apkbuild", t.path())
        .env("PATH", path_without_apkbuild())
        .arg("1.0.0")
        .assert()
        .success();
    // -c forces it.
    script("bump-apkbuild", t.path())
        .env("PATH", path_without_apkbuild())
        .args(["-c", "1.0.0"])
        .assert()
        .code(1)
        .stderr(contains("`apkbuild` is not on PATH"));
}

#[test]
fn bad_input_is_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "APKBUILD", RECIPE);
    write(t.path(), "NOVER", "pkgname=x\npkgrel=0\n");
    write(t.path(), "COMPUTED", "pkgname=x\npkgver=${_v}\npkgrel=0\n");
    let cases: &[(&[&str], i32, &str)] = &[
        (&[], 2, "no VERSION given"),
        (&["1.0-r1"], 2, "is not an apk version"),
        (&["1.0 2"], 2, "is not an apk version"),
        (&["1.0", "2.0"], 2, "one VERSION only"),
        (&["-r", "x", "1.0"], 2, "is not a number"),
        (&["--bogus", "1.0"], 2, "unknown option"),
        (&["-f", "nope", "1.0"], 1, "`nope` does not exist"),
        (
            &["-f", "NOVER", "--no-checksum", "1.0"],
            1,
            "no `pkgver=` line",
        ),
        (
            &["-f", "COMPUTED", "--no-checksum", "1.0"],
            1,
            "is computed",
        ),
    ];
    for (args, code, msg) in cases {
        script("bump-apkbuild", t.path())
            .args(*args)
            .assert()
            .code(*code)
            .stderr(contains(*msg));
    }
    assert_eq!(read(&t.path().join("APKBUILD")), RECIPE);
}

#[test]
fn help_describes_the_options() {
    let t = tempfile::tempdir().unwrap();
    script("bump-apkbuild", t.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("usage: bump-apkbuild"))
        .stdout(contains("--no-checksum"));
}
