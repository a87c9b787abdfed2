//! What `assemble` says when something is wrong or reused (issue 15): each error once, its
//! cause chain without repeats, hints naming the binary that runs, and words that match
//! what a step did.

use std::process::Output;

use crate::support::{PRELUDE, Ws, text};

/// `assemble ARGS` in `dir` (no store needed: these fail before one is opened).
fn assemble_in(dir: &std::path::Path, args: &[&str]) -> Output {
    assemble_stdin(dir, args, "")
}

/// As [`assemble_in`], with `stdin` as its standard input.
fn assemble_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    assert_cmd::Command::cargo_bin("assemble")
        .unwrap()
        .current_dir(dir)
        .env_remove("ASSEMBLE_STORE")
        .arg("--store")
        .arg(dir.join("store"))
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap()
}

/// A directory holding the context `ctx/` with `containerfile` as its Containerfile.
fn context_with(containerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(dir.path().join("ctx")).unwrap();
    fs_err::write(dir.path().join("ctx/Containerfile"), containerfile).unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    assert!(!o.status.success());
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn issue15_containerfile_parse_error_is_printed_once() {
    let dir = context_with("FROM scratch\nRUNX foo\n");
    let err = stderr(&assemble_in(dir.path(), &["build", "ctx"]));
    insta::assert_snapshot!(err, @r"
    error: unknown instruction `RUNX`
     --> ctx/Containerfile:2:1
      |
    2 | RUNX foo
      | ^^^^
      |
    help: did you mean RUN?
    ");
}

/// A mistake the whole-file check finds before the first step, and a parse error of a
/// Containerfile read from standard input, print their diagnostic once, without the
/// binary's own `error:` in front of the diagnostic's.
#[test]
fn issue15_errors_before_the_first_step_are_printed_once() {
    let dir = context_with("FROM scratch\nRUN true\nADD --keep-git-dir repo /src\n");
    let err = stderr(&assemble_in(dir.path(), &["build", "ctx"]));
    insta::assert_snapshot!(err, @r"
    error: ADD --keep-git-dir: ADD of a git repository is not supported
     --> ctx/Containerfile:3:5
      |
    3 | ADD --keep-git-dir repo /src
      |     ^^^^^^^^^^^^^^
      |
    help: clone it in a RUN step of a build stage and COPY --from that stage
    ");
    let o = assemble_stdin(
        dir.path(),
        &["build", "-f", "-", "ctx"],
        "FROM scratch\nFORM x\n",
    );
    insta::assert_snapshot!(stderr(&o), @r"
    error: unknown instruction `FORM`
     --> <stdin>:2:1
      |
    2 | FORM x
      | ^^^^
      |
    help: did you mean FROM?
    ");
}

#[test]
fn issue15_missing_containerfile_names_both_and_says_it_once() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(dir.path().join("empty")).unwrap();
    let err = stderr(&assemble_in(dir.path(), &["build", "empty"]));
    insta::assert_snapshot!(err, @"error: no Containerfile or Dockerfile in `empty`; add one, or name it with -f FILE (-f - reads it from standard input)");
    let err = stderr(&assemble_in(dir.path(), &["build", "nowhere"]));
    insta::assert_snapshot!(err, @"error: the build context `nowhere` is not a directory; give the directory holding the Containerfile");
    let err = stderr(&assemble_in(dir.path(), &["build", "-f", "nope", "empty"]));
    insta::assert_snapshot!(err, @"error: failed to open file `nope`: No such file or directory (os error 2)");
}

#[test]
fn issue15_hints_name_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("assemble");
    let o = assemble_in(dir.path(), &["rmi", "nothing:here"]);
    let err = text(&o).replace(&bin.display().to_string(), "[ASSEMBLE]");
    insta::assert_snapshot!(err.trim_end(), @"error: no image `nothing:here`; see `[ASSEMBLE] images`");
}

/// The quick start's rerun: its COPY source is written afresh (same bytes, a new mtime),
/// which SOURCE_DATE_EPOCH clamps in the layer anyway, so the step is the cached one.
#[test]
fn issue15_unchanged_copy_rewritten_says_using_cache() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!("{PRELUDE}COPY data /data\n"));
    fs_err::write(ws.path("ctx/data"), "same bytes\n").unwrap();
    let o = ws.assemble(&["-t", "copy", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    fs_err::remove_file(ws.path("ctx/data")).unwrap();
    fs_err::write(ws.path("ctx/data"), "same bytes\n").unwrap();
    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    fs_err::File::options()
        .write(true)
        .open(ws.path("ctx/data"))
        .unwrap()
        .set_modified(future)
        .unwrap();
    let o = ws.assemble(&["-t", "copy", "ctx"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let copy = out.split("COPY data /data").nth(1).unwrap();
    assert!(copy.trim_start().starts_with("--> Using cache @"), "{out}");
}
