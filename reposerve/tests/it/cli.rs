//! The command line users' deployments depend on, and start-up errors.

use assert_cmd::Command;

fn reposerve() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("reposerve"))
}

#[test]
fn compatible_flags() {
    let out = reposerve().arg("--help").assert().success();
    let help = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for flag in ["-c <CONFIG>", "-d", "-v", "-l <ADDR>", "-L <ADDRS>", "-S"] {
        assert!(help.contains(flag), "missing {flag} in:\n{help}");
    }
    assert!(
        help.contains("/etc/reposerve.yaml")
            && help.contains("0.0.0.0:8080")
            && help.contains("0.0.0.0:8443")
    );
}

#[test]
fn bad_config_names_the_file_and_key() {
    let tmp = testkit::tempdir();
    let cfg = tmp.path().join("r.yaml");
    fs_err::write(&cfg, "dir: /x\nsurprise: 1\n").unwrap();
    let out = reposerve().arg("-c").arg(&cfg).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("r.yaml") && err.contains("surprise"), "{err}");

    let missing = tmp.path().join("nope.yaml");
    let out = reposerve().arg("-c").arg(&missing).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("nope.yaml"), "{err}");

    fs_err::write(&cfg, format!("dir: {}\n", tmp.path().join("d").display())).unwrap();
    let out = reposerve().arg("-c").arg(&cfg).arg("-S").assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("-S") && err.contains("tls"), "{err}");
}
