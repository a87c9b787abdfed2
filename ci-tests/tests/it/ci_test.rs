//! `ci/test`'s own contract (issue 15): every step runs even after a failure, every test
//! binary runs, the closing `total: N passed, N failed` line always prints and the exit
//! status is non-zero on any failure. The script runs from a copy of `ci/` whose `setup` is
//! a no-op, with a `cargo` on PATH that plays a given outcome per subcommand and records
//! what it was asked (what is under test is the script's control flow, not cargo).

use crate::support::{ci_dir, executable, write};

/// A `cargo` that fails the subcommands named in `$FAIL`, prints two test binaries'
/// results for `test` (one failed test when `test` is in `$FAIL`) and records its arguments.
const FAKE_CARGO: &str = r#"#!/bin/sh
echo "$*" >> "$CALLS"
case " $FAIL " in *" $1 "*) fail=1 ;; *) fail=0 ;; esac
if [ "$1" = test ]; then
  echo "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
  echo "test result: FAILED. 4 passed; $fail failed; 0 ignored; 0 measured; 0 filtered out"
fi
exit $fail
"#;

/// Runs the copied `ci/test` with cargo failing `fail`; (exit code, stdout, cargo's calls).
fn run_ci_test(fail: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let ci = dir.path().join("ci");
    fs_err::create_dir_all(&ci).unwrap();
    fs_err::copy(ci_dir().join("test"), ci.join("test")).unwrap();
    executable(&write(&ci, "setup", "#!/bin/sh\nexit 0\n"));
    let bin = dir.path().join("bin");
    executable(&write(&bin, "cargo", FAKE_CARGO));
    let calls = dir.path().join("calls");
    // Only the fake cargo, and no cargo-deny: the test is about the script.
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = std::process::Command::new("bash")
        .arg(ci.join("test"))
        .env("PATH", path)
        .env("FAIL", fail)
        .env("CALLS", &calls)
        .env_remove("CI_FUZZ")
        .output()
        .unwrap();
    let calls = fs_err::read_to_string(&calls).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout, calls)
}

#[test]
fn issue15_ci_test_passes_and_totals_every_binary() {
    let (code, out, calls) = run_ci_test("");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().last(),
        Some("total: 7 passed, 0 failed"),
        "{out}"
    );
    assert!(calls.contains("test --workspace --no-fail-fast"), "{calls}");
}

#[test]
fn issue15_ci_test_failing_test_still_totals_and_fails() {
    let (code, out, _) = run_ci_test("test");
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.lines().last(),
        Some("total: 7 passed, 1 failed"),
        "{out}"
    );
}

#[test]
fn issue15_ci_test_lint_failure_still_runs_the_tests_and_fails() {
    let (code, out, calls) = run_ci_test("fmt clippy");
    assert_eq!(code, 1, "{out}");
    assert!(calls.contains("test --workspace"), "{calls}");
    assert_eq!(
        out.lines().last(),
        Some("total: 7 passed, 0 failed"),
        "{out}"
    );
}
