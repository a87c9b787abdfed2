//! deploy_apk.yml's job in shell mode against the real reposerve on 127.0.0.1: the
//! packages reach the server with the job's ID token (minted here with the fixture key and
//! checked by reposerve against a real JWKS server), and a token for another audience is
//! refused.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use testkit::jwks::{JwksServer, JwtKey, now};

use crate::gitlab_ci_local::{assert_ok, git, project_with};
use crate::support::{path_with_ci, require_tool, root};

/// The reposerve binary built beside this test binary.
fn reposerve_bin() -> Result<PathBuf, String> {
    crate::support::workspace_bin("reposerve", "reposerve")
}

/// A running reposerve, killed by PID on drop.
pub struct Reposerve {
    child: Child,
    pub url: String,
}

impl Drop for Reposerve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_reposerve(bin: &std::path::Path, config: &std::path::Path) -> Reposerve {
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(["-l", "127.0.0.1:0"])
        .env("REPOSERVE_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reposerve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("listening"))
            {
                let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(120)) else {
        let _ = child.kill();
        panic!("reposerve did not start");
    };
    Reposerve {
        child,
        url: format!("http://{addr}"),
    }
}

/// A reposerve trusting the fixture packager key and checking tokens for `aud` against a
/// real JWKS server serving `key`.
fn secured_reposerve(bin: &Path, dir: &Path, key: &JwtKey, aud: &str) -> (Reposerve, JwksServer) {
    let keys = root().join("testkit/fixtures/apk-reference/keys");
    let trusted = dir.join("trusted");
    fs_err::create_dir_all(&trusted).unwrap();
    let name = testkit::FIXTURE_KEY;
    fs_err::copy(
        keys.join(format!("{name}.pub")),
        trusted.join(format!("{name}.pub")),
    )
    .unwrap();
    let jwks = JwksServer::start(&[key.jwk()]);
    let config = dir.join("reposerve.yaml");
    fs_err::write(
        &config,
        format!(
            "dir: {}\ntrusted_keys: {}\nsigning:\n  key: {}\njwt:\n  jwks: {}\n  claims:\n    aud: {aud}\n",
            dir.join("repo").display(),
            trusted.display(),
            keys.join(name).display(),
            jwks.url()
        ),
    )
    .unwrap();
    (start_reposerve(bin, &config), jwks)
}

/// A project including deploy_apk.yml, whose stand-in build job leaves the fixture packages
/// as its artifacts.
fn deploy_project(url: &str, aud: &str) -> tempfile::TempDir {
    let ci = format!(
        "include:\n  - local: templates/deploy_apk.yml\n    inputs:\n      url: {url}\n      audience: {aud}\n\nbuild-apk:\n  stage: build\n  script:\n    - mkdir -p packages/main/x86_64\n    - cp fixture/*.apk packages/main/x86_64/\n  artifacts:\n    paths:\n      - packages/\n",
    );
    let p = project_with(&[(".gitlab-ci.yml", ci)]);
    let fixture = p.path().join("fixture");
    fs_err::create_dir_all(&fixture).unwrap();
    for pkg in testkit::fixture_packages() {
        fs_err::copy(&pkg, fixture.join(pkg.file_name().unwrap())).unwrap();
    }
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "packages"]);
    p
}

#[test]
fn deploy_job_uploads_with_the_id_token() {
    let bin = match reposerve_bin() {
        Ok(b) => b,
        Err(why) => {
            println!("skipped: deploy-apk needs a reposerve, but {why}");
            return;
        }
    };
    require_tool("curl");
    let tmp = tempfile::tempdir().unwrap();
    let key = JwtKey::fixture("k1");
    let aud = "https://packages.example.com";
    let (server, _jwks) = secured_reposerve(&bin, tmp.path(), &key, aud);
    let p = deploy_project(&server.url, aud);
    let t = now();
    let run = |audience: &str| {
        let token = key.token(&json!({"aud": audience, "exp": t + 300, "iat": t}));
        Command::new("gitlab-ci-local")
            .args(["--home", &p.path().join(".gcl-home").display().to_string()])
            .args(["--force-shell-executor", "--needs", "deploy-apk"])
            .args(["--variable", &format!("REPOSERVE_JWT={token}")])
            .env("PATH", path_with_ci())
            .env("HOME", p.path())
            .current_dir(p.path())
            .output()
            .unwrap()
    };
    let wrong = run("https://elsewhere.example.com");
    assert!(
        !wrong.status.success(),
        "a token for another audience was accepted"
    );
    let log = String::from_utf8_lossy(&wrong.stdout);
    assert!(
        log.contains("HTTP 401") || log.contains("HTTP 403"),
        "{log}"
    );
    let served = tmp.path().join("repo/edge/main/x86_64");
    assert!(!served.join("hello-1.0-r0.apk").exists());

    let ok = run(aud);
    assert_ok(&ok);
    let log = String::from_utf8_lossy(&ok.stdout);
    assert!(
        log.contains("uploaded edge/main/x86_64/hello-1.0-r0.apk"),
        "{log}"
    );
    for pkg in testkit::fixture_packages() {
        let name = pkg.file_name().unwrap();
        assert!(served.join(name).is_file(), "{name:?} not on the server");
    }
    assert!(served.join("APKINDEX.tar.gz").is_file());
}

/// The README promises `--help` on every `ci/` script; getopts alone rejected it.
#[test]
fn help_describes_the_options() {
    let t = tempfile::tempdir().unwrap();
    for flag in ["--help", "-h"] {
        crate::support::script("apkdeploy", t.path())
            .arg(flag)
            .assert()
            .success()
            .stdout(predicates::str::contains("usage: apkdeploy"))
            .stdout(predicates::str::contains("-s "));
    }
}

/// The token variables a `--help` text lists as its default, in order.
fn default_token_variables(help: &str) -> Vec<String> {
    // Help texts wrap anywhere.
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let after = &help[help
        .find("the first set of")
        .expect("the default list in the help")..];
    let mut names: Vec<String> = Vec::new();
    for w in after.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')) {
        if (w.contains("TOKEN") || w.contains("JWT")) && !w.ends_with("_VAR") {
            if names.iter().any(|n| n == w) {
                break;
            }
            names.push(w.to_string());
        }
    }
    names
}

/// Regression (issue 15): `apkbuild deploy` and `ci/apkdeploy` read the token from the same
/// variables in the same order (they disagreed on the second name).
#[test]
fn issue15_both_upload_clients_read_one_token_variable_order() {
    let Ok(apkbuild) = crate::support::workspace_bin("apkbuild", "builder")
        .inspect_err(|why| println!("skipped: {why}"))
    else {
        return;
    };
    let help = |mut c: Command| String::from_utf8(c.output().unwrap().stdout).unwrap();
    let mut a = Command::new(apkbuild);
    a.args(["deploy", "--help"]);
    let mut b = Command::new(crate::support::ci_dir().join("apkdeploy"));
    b.arg("--help");
    let (a, b) = (help(a), help(b));
    let order = [
        "REPOSERVE_JWT",
        "REPOSERVE_ID_TOKEN",
        "REPOSERVE_TOKEN",
        "CI_JOB_JWT_V2",
    ];
    assert_eq!(default_token_variables(&a), order, "{a}");
    assert_eq!(default_token_variables(&b), order, "{b}");
}
