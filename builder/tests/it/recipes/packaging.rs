//! Packaging details: triggers, exported sccache variables, !strip and !tracedeps.

use super::*;

#[test]
fn triggers_go_to_the_control_segment_and_sccache_variables_reach_the_phases() {
    let home = testkit::tempdir();
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}triggers=\"$pkgname.trigger=/usr/share/bad/*:/usr/lib/bad\"\n\
             build() {{ [ \"$SCCACHE_BUCKET\" = ci-sccache ] && [ \"$RUSTC_WRAPPER\" = sccache ]; }}\n\
             package() {{ mkdir -p \"$pkgdir\"/usr/share/bad; }}\n"
        ),
        &[("bad.trigger", b"#!/bin/sh\necho triggered \"$@\"\n")],
    );
    let repodest = home.path().join("p");
    let mut cmd = apkbuild(home.path());
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(&repodest)
        .arg("--no-cache")
        .args(sandbox_flag())
        .env("SCCACHE_BUCKET", "ci-sccache")
        .env("RUSTC_WRAPPER", "sccache");
    cmd.assert().success();
    let pkg = apk::package::Package::open(
        &arch_dir(&repodest).join("bad-1.0-r0.apk"),
        Default::default(),
    )
    .unwrap();
    assert_eq!(pkg.info.triggers, ["/usr/share/bad/*", "/usr/lib/bad"]);
    assert!(
        pkg.scripts
            .iter()
            .any(|(n, c)| n == ".trigger" && c.starts_with(b"#!/bin/sh"))
    );
}

#[test]
fn options_nostrip_and_notracedeps_keep_files_and_names_as_they_are() {
    let home = testkit::tempdir();
    // A real ELF: the host's `true`, copied into the package.
    let text = |options: &str| {
        format!(
            "{HEAD}arch=\"all\"\noptions=\"!check {options}\"\n\
             package() {{ install -Dm755 /bin/true \"$pkgdir\"/usr/bin/mytrue; }}\n"
        )
    };
    let build = |options: &str, repo: &str| {
        let dir = bad_recipe(home.path(), &text(options), &[]);
        let repodest = home.path().join(repo);
        let mut cmd = apkbuild(home.path());
        cmd.arg("build")
            .arg(&dir)
            .arg("--repodest")
            .arg(&repodest)
            .arg("--no-cache")
            .args(sandbox_flag());
        cmd.assert().success();
        apk::package::Package::open(
            &arch_dir(&repodest).join("bad-1.0-r0.apk"),
            Default::default(),
        )
        .unwrap()
    };
    let size = |p: &apk::package::Package| {
        p.files
            .iter()
            .find(|f| f.entry.path == "usr/bin/mytrue")
            .unwrap()
            .entry
            .size
    };
    let traced = build("", "a");
    assert!(
        traced
            .info
            .provides
            .contains(&"cmd:mytrue=1.0-r0".to_string())
    );
    assert!(
        traced
            .info
            .depends
            .iter()
            .any(|d| d.starts_with("so:libc.")),
        "{:?}",
        traced.info.depends
    );
    let untraced = build("!tracedeps", "b");
    assert!(untraced.info.provides.is_empty() && untraced.info.depends.is_empty());
    let unstripped = build("!strip", "c");
    let original = fs_err::metadata("/bin/true").unwrap().len();
    assert_eq!(size(&unstripped), original);
    assert!(size(&traced) <= original);
}
