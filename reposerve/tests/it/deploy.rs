//! The client side: `ci/apkdeploy` (sh + curl, token from a GitLab `id_tokens` variable)
//! and `apkbuild deploy` upload REPODEST-style trees.

use std::path::Path;

use serde_json::json;
use testkit::jwks::{JwksServer, JwtKey, now};

use crate::support::{Env, Pkg};

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    fs_err::create_dir_all(p.parent().unwrap()).unwrap();
    fs_err::write(p, bytes).unwrap();
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/apkdeploy")
}

#[test]
fn apkdeploy_script_uploads_repodest_with_id_token() {
    let key = JwtKey::fixture("k1");
    let jwks = JwksServer::start(&[key.jwk()]);
    let env = Env::new(&format!(
        "jwt:\n  jwks: {}\n  claims:\n    aud: https://repo.test\n",
        jwks.url()
    ));
    let server = env.start(&[]);
    let tree = env.tmp.path().join("packages");
    write(
        &tree,
        "main/x86_64/a-1.0-r0.apk",
        &Pkg::new("a", "1.0-r0").build(),
    );
    write(
        &tree,
        "community/x86_64/b-1.0-r0.apk",
        &Pkg::new("b", "1.0-r0").build(),
    );
    let t = now();
    let token = key.token(&json!({"aud": "https://repo.test", "exp": t + 300, "iat": t}));
    let run = |extra: &[&str]| {
        std::process::Command::new("sh")
            .arg(script())
            .args(["-u", &server.url(""), "-t", "MY_ID_TOKEN", "-V", "v3.21"])
            .args(extra)
            .arg(&tree)
            .env("MY_ID_TOKEN", &token)
            .env_remove("CI_JOB_JWT_V2")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.index_names("v3.21", "main", "x86_64"), ["a-1.0-r0"]);
    assert_eq!(
        env.index_names("v3.21", "community", "x86_64"),
        ["b-1.0-r0"]
    );
    // Again (a retried job): the same packages are accepted and change nothing.
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A different build of a published version: 409 fails, unless -s.
    let mut other = Pkg::new("a", "1.0-r0");
    other.extra_bytes = 64;
    write(&tree, "main/x86_64/a-1.0-r0.apk", &other.build());
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run(&["-s"]).status.success());

    if let Ok(out) = std::process::Command::new("shellcheck")
        .arg(script())
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        eprintln!("SKIP shellcheck: not installed (ci/setup installs it)");
    }
}

#[test]
fn apkbuild_deploy_uploads_full_tree() {
    use clap::Parser as _;
    let env = Env::new("");
    let server = env.start(&["-d"]);
    let tree = env.tmp.path().join("out");
    write(
        &tree,
        "edge/main/x86_64/c-2.0-r0.apk",
        &Pkg::new("c", "2.0-r0").build(),
    );
    write(
        &tree,
        "edge/main/x86_64/d-2.0-r0.apk",
        &Pkg::new("d", "2.0-r0").build(),
    );
    let mut noarch = Pkg::new("e", "1-r0");
    noarch.arch = "noarch";
    write(&tree, "edge/testing/aarch64/e-1-r0.apk", &noarch.build());
    let cli = builder::Cli::parse_from([
        "apkbuild",
        "deploy",
        "--url",
        &server.url(""),
        "--token-env",
        "APKBUILD_TEST_UNSET_TOKEN",
        tree.to_str().unwrap(),
    ]);
    let code = builder::run(cli).unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert_eq!(
        env.index_names("edge", "main", "x86_64"),
        ["c-2.0-r0", "d-2.0-r0"]
    );
    assert_eq!(env.index_names("edge", "testing", "aarch64"), ["e-1-r0"]);
}
