//! `ci/gitlab-downstream` against the API stand-in: fetch, bump, commit; rebuild when
//! the tag exists; nothing to commit; the errors a user meets.

use predicates::str::contains;

use crate::gitlab_api::{Project, Server};
use crate::support::{path_with_ci, require_tool, script};

const PROJECT: &str = "demo/images/hello";
const TOKEN: &str = "glpat-test-token";
const CONTAINERFILE: &str = "FROM scratch\nRUN apk add --no-cache hello=1.0.0-r0\n";

fn server(tags: &[&str]) -> Server {
    Server::start(Project::on_main(
        PROJECT,
        TOKEN,
        &[
            ("Containerfile", CONTAINERFILE),
            ("deploy/app.v1.yaml", "image: r.example.com/a:1\n"),
        ],
        tags,
    ))
}

fn downstream(s: &Server, dir: &std::path::Path) -> assert_cmd::Command {
    require_tool("curl");
    require_tool("jq");
    let mut c = script("gitlab-downstream", dir);
    c.env("CI_API_V4_URL", &s.url)
        .env("DOWNSTREAM_TOKEN", TOKEN)
        .env("PATH", path_with_ci());
    c
}

#[test]
fn update_bumps_and_commits_the_changed_file() {
    let s = server(&[]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .args([
            "update",
            "-T",
            "1.1.0-r0",
            "-m",
            "bump hello",
            PROJECT,
            "Containerfile",
            "--",
        ])
        .args(["bump-containerfile", "-p", "hello", "1.1.0-r0"])
        .assert()
        .success()
        .stderr(contains("committed 01234567 to demo/images/hello on main"));
    assert_eq!(
        s.file("main", "Containerfile").unwrap(),
        "FROM scratch\nRUN apk add --no-cache hello=1.1.0-r0\n"
    );
    let reqs = s.requests();
    let summary: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        summary,
        [
            "GET /api/v4/projects/demo/images/hello/repository/tags/1.1.0-r0",
            "GET /api/v4/projects/demo/images/hello/repository/files/Containerfile/raw",
            "POST /api/v4/projects/demo/images/hello/repository/commits",
        ]
    );
    let commit: serde_json::Value = serde_json::from_str(&reqs[2].body).unwrap();
    assert_eq!(commit["branch"], "main");
    assert_eq!(commit["commit_message"], "bump hello");
    assert_eq!(commit["actions"][0]["action"], "update");
    assert_eq!(commit["actions"][0]["file_path"], "Containerfile");
    // The token went as a header, never in the URL.
    assert!(reqs.iter().all(|r| !r.query.contains(TOKEN)));
}

#[test]
fn existing_tag_triggers_a_rebuild_instead() {
    let s = server(&["1.1.0-r0"]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .args(["update", "-T", "1.1.0-r0", PROJECT, "Containerfile", "--"])
        .args(["bump-containerfile", "-p", "hello", "1.1.0-r0"])
        .assert()
        .success()
        .stderr(contains("already has tag 1.1.0-r0: rebuilding it"))
        .stderr(contains(
            "started pipeline https://gitlab.example.com/demo/images/hello/-/pipelines/7",
        ));
    assert_eq!(s.file("main", "Containerfile").unwrap(), CONTAINERFILE);
    let reqs = s.requests();
    assert_eq!(reqs.last().unwrap().method, "POST");
    assert!(reqs.last().unwrap().path.ends_with("/pipeline"));
    assert_eq!(reqs.last().unwrap().query, "ref=1.1.0-r0");
}

#[test]
fn no_change_means_no_commit() {
    let s = server(&[]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .args(["update", PROJECT, "Containerfile", "--"])
        .args(["bump-containerfile", "-p", "hello", "1.0.0-r0"])
        .assert()
        .success()
        .stderr(contains("already up to date; nothing to commit"));
    assert!(s.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn nested_paths_with_dots_are_encoded_and_committed() {
    let s = server(&[]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .args(["update", "-b", "main", PROJECT, "deploy/app.v1.yaml", "--"])
        .args([
            "bump-manifest",
            "r.example.com/a",
            "2",
            "deploy/app.v1.yaml",
        ])
        .assert()
        .success();
    assert_eq!(
        s.file("main", "deploy/app.v1.yaml").unwrap(),
        "image: r.example.com/a:2\n"
    );
}

#[test]
fn a_failing_command_commits_nothing() {
    let s = server(&[]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .args(["update", PROJECT, "Containerfile", "--"])
        .args(["bump-containerfile", "-p", "absent", "1"])
        .assert()
        .code(1)
        .stderr(contains("no `absent=VERSION` pin"))
        .stderr(contains("nothing was committed"));
    assert!(s.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn api_errors_say_what_to_check() {
    let s = server(&[]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .env("DOWNSTREAM_TOKEN", "wrong")
        .args(["fetch", PROJECT, "main", "Containerfile", "out"])
        .assert()
        .code(1)
        .stderr(contains(
            "HTTP 401: 401 Unauthorized; the token in $DOWNSTREAM_TOKEN is invalid or expired",
        ));
    downstream(&s, t.path())
        .args(["fetch", PROJECT, "main", "Nope", "out"])
        .assert()
        .code(1)
        .stderr(contains("HTTP 404: 404 File Not Found"));
    downstream(&s, t.path())
        .args([
            "update",
            "-b",
            "gone",
            PROJECT,
            "Containerfile",
            "--",
            "true",
        ])
        .assert()
        .code(1)
        .stderr(contains(
            "fetching Containerfile of demo/images/hello at gone",
        ));
    downstream(&s, t.path())
        .args(["tag-exists", PROJECT, "9.9"])
        .assert()
        .code(3);
    downstream(&s, t.path())
        .env("CI_API_V4_URL", "http://127.0.0.1:9/api/v4")
        .args(["tag-exists", PROJECT, "9.9"])
        .assert()
        .code(1)
        .stderr(contains("HTTP 000"))
        .stderr(contains("cannot reach"));
}

#[test]
fn bad_usage_and_missing_settings() {
    let s = server(&[]);
    let t = tempfile::tempdir().unwrap();
    downstream(&s, t.path())
        .env_remove("DOWNSTREAM_TOKEN")
        .args(["trigger", PROJECT, "main"])
        .assert()
        .code(1)
        .stderr(contains("no token in $DOWNSTREAM_TOKEN"));
    downstream(&s, t.path())
        .env_remove("CI_API_V4_URL")
        .args(["trigger", PROJECT, "main"])
        .assert()
        .code(1)
        .stderr(contains("CI_API_V4_URL is not set"));
    let cases: &[(&[&str], &str)] = &[
        (&[], "no COMMAND given"),
        (&["push"], "unknown command"),
        (
            &["-t", "1BAD", "trigger", PROJECT, "main"],
            "needs a variable name",
        ),
        (
            &["update", PROJECT, "Containerfile"],
            "update needs PATH... -- CMD",
        ),
        (
            &["update", PROJECT, "--", "true"],
            "update needs at least one PATH",
        ),
        (
            &["update", PROJECT, "../x", "--", "true"],
            "must be relative",
        ),
        (
            &["commit", PROJECT, "main", "msg", "nopair"],
            "is not LOCAL=PATH",
        ),
    ];
    for (args, msg) in cases {
        downstream(&s, t.path())
            .args(*args)
            .assert()
            .code(2)
            .stderr(contains(*msg));
    }
    downstream(&s, t.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("usage: gitlab-downstream"));
    assert!(s.requests().is_empty(), "bad usage must not reach the API");
}
