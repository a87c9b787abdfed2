//! `ci/bump-containerfile`: `ARG TAG=` defaults and `apk add name=ver-rN` pins.

use predicates::str::contains;

use crate::support::{entries, read, script, write};

const CONTAINERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG TAG=1.0.0-r0
arg OTHER="x" TAG="1.0.0-r0"
FROM scratch
ARG REPO
RUN apk add --no-cache -X "$REPO" \
      hello=1.0.0-r0 \
      hello-doc=1.0.0-r0 busybox
RUN echo hello=1.0.0-r0 > /etc/motd
LABEL note="hello=1.0.0-r0"
"#;

#[test]
fn sets_every_arg_default_keeping_quotes() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "Containerfile", CONTAINERFILE);
    script("bump-containerfile", t.path())
        .arg("1.1.0-r0")
        .assert()
        .success()
        .stderr(contains("TAG=1.1.0-r0 (2 place(s))"));
    assert_eq!(
        read(&f),
        CONTAINERFILE
            .replace("ARG TAG=1.0.0-r0", "ARG TAG=1.1.0-r0")
            .replace("TAG=\"1.0.0-r0\"", "TAG=\"1.1.0-r0\"")
    );
    assert_eq!(entries(t.path()), ["Containerfile"]);
}

#[test]
fn rewrites_only_the_pin_in_apk_add() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "Dockerfile", CONTAINERFILE);
    // No Containerfile: the Dockerfile is the default.
    script("bump-containerfile", t.path())
        .args(["-p", "hello", "1.1.0-r0"])
        .assert()
        .success()
        .stderr(contains("hello=1.1.0-r0 (1 place(s))"));
    // hello-doc, the `echo` RUN and the LABEL keep their text.
    assert_eq!(
        read(&f),
        CONTAINERFILE.replace("      hello=1.0.0-r0 \\", "      hello=1.1.0-r0 \\")
    );
    let once = read(&f);
    script("bump-containerfile", t.path())
        .args(["--package", "hello", "1.1.0-r0"])
        .assert()
        .success()
        .stderr(contains("hello already 1.1.0-r0"));
    assert_eq!(read(&f), once);
    script("bump-containerfile", t.path())
        .args(["-p", "hello-doc", "--file", "Dockerfile", "1.1.0-r0"])
        .assert()
        .success();
    assert!(read(&f).contains("hello-doc=1.1.0-r0 busybox"));
}

#[test]
fn other_arg_name() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "Containerfile", "ARG VERSION=1\nFROM scratch\n");
    script("bump-containerfile", t.path())
        .args(["-a", "VERSION", "2"])
        .assert()
        .success();
    assert_eq!(read(&f), "ARG VERSION=2\nFROM scratch\n");
}

#[test]
fn nothing_to_change_and_bad_input_are_errors() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "Containerfile", CONTAINERFILE);
    let cases: &[(&[&str], i32, &str)] = &[
        (&[], 2, "no VALUE given"),
        (&["a b"], 2, "has characters outside"),
        (&["1\"; rm -rf /"], 2, "has characters outside"),
        (&["-a", "1X", "1"], 2, "is not a name"),
        (&["-p", "a b", "1"], 2, "package name"),
        (&["-a", "NOPE", "1"], 1, "no `ARG NOPE=...` line"),
        (&["-p", "busybox", "1"], 1, "no `busybox=VERSION` pin"),
        (&["-p", "nope", "1"], 1, "no `nope=VERSION` pin"),
        (&["-f", "missing", "1"], 1, "`missing` does not exist"),
    ];
    for (args, code, msg) in cases {
        script("bump-containerfile", t.path())
            .args(*args)
            .assert()
            .code(*code)
            .stderr(contains(*msg));
    }
    assert_eq!(read(&t.path().join("Containerfile")), CONTAINERFILE);
    assert_eq!(entries(t.path()), ["Containerfile"]);
    script("bump-containerfile", t.path())
        .arg("-h")
        .assert()
        .success()
        .stdout(contains("usage: bump-containerfile"));
}
