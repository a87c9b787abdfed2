//! The example projects through `gitlab-ci-local` (npm, installed by ci/setup): its
//! `--preview` resolves each project's includes (with `spec: inputs`) and validates the
//! result against GitLab's JSON schema; in shell mode it runs the downstream-commit jobs
//! against the GitLab API stand-in, which then holds the files as GitLab would.

use std::path::Path;
use std::process::{Command, Output};

use crate::gitlab_api::{Project, Server};
use crate::support::{path_with_ci, read, require_tool, root};

pub fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for e in fs_err::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs_err::copy(e.path(), &target).unwrap();
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=CI Test", "-c", "user.email=ci@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?} failed");
}

/// A git repository holding `files` (name, text) plus a copy of templates/, as the
/// example projects expect (their includes are `local: templates/...`).
pub fn project_with(files: &[(&str, String)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&root().join("templates"), &t.path().join("templates"));
    for (name, text) in files {
        fs_err::write(t.path().join(name), text).unwrap();
    }
    git(t.path(), &["init", "-q", "-b", "main"]);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "example"]);
    t
}

/// The example project `examples/gitlab/<name>` as a repository.
fn example(name: &str) -> tempfile::TempDir {
    let t = project_with(&[]);
    copy_dir(&root().join("examples/gitlab").join(name), t.path());
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", name]);
    t
}

/// Runs gitlab-ci-local in `dir` with its home inside `dir` (no user settings) and
/// `ci/` on PATH.
fn gcl(dir: &Path, args: &[&str]) -> Output {
    require_tool("gitlab-ci-local");
    require_tool("rsync");
    Command::new("gitlab-ci-local")
        .args(["--home", &dir.join(".gcl-home").display().to_string()])
        .args(args)
        .env("PATH", path_with_ci())
        .env(
            "GCL_IGNORE_PREDEFINED_VARS",
            "CI_API_V4_URL,CI_REGISTRY_IMAGE,CI_COMMIT_TAG",
        )
        .current_dir(dir)
        .output()
        .unwrap()
}

fn preview(dir: &Path) -> String {
    let out = gcl(dir, &["--preview"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "gitlab-ci-local --preview failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Top-level job names of a preview.
fn jobs(preview: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_saphyr::from_str(preview).unwrap();
    doc.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "stages")
        .cloned()
        .collect()
}

#[test]
fn preview_resolves_every_example() {
    let expected: &[(&str, &[&str])] = &[
        ("source", &["commit-downstream-apkbuild", "test"]),
        (
            "package",
            &["build-apk", "deploy-apk", "commit-downstream-container"],
        ),
        ("image", &["build-image", "commit-downstream-manifest"]),
        ("manifest", &["check"]),
    ];
    for (name, want) in expected {
        let p = example(name);
        let out = preview(p.path());
        let mut got = jobs(&out);
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| (*s).to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{name}:\n{out}");
        assert!(
            !out.contains("$[["),
            "{name}: an input was left uninterpolated:\n{out}"
        );
    }
    // The inputs given by the examples reached the jobs.
    let out = preview(example("package").path());
    assert!(
        out.contains("REPOSERVE_URL: https://packages.example.com"),
        "{out}"
    );
    assert!(out.contains("aud: $REPOSERVE_URL"), "{out}");
    assert!(out.contains("PIN_PACKAGE: hello"), "{out}");
}

#[test]
fn rust_variant_and_recipe_tree_pipeline() {
    let ci = "include:\n  - local: templates/build_apk.yml\n    inputs:\n      build_variant: /rust\n      sccache_bucket: ci-cache\n  - local: templates/pipeline.yml\n    inputs:\n      recipes: main community\n      stage: test\n";
    let p = project_with(&[(".gitlab-ci.yml", ci.to_string())]);
    let out = preview(p.path());
    let mut got = jobs(&out);
    got.sort();
    assert_eq!(got, ["build-apk/rust", "recipes", "recipes-graph"], "{out}");
    assert!(out.contains("SCCACHE_BUCKET: ci-cache"), "{out}");
    assert!(out.contains("RUSTC_WRAPPER: sccache"), "{out}");
    assert!(
        out.contains("apkbuild graph --gitlab main community"),
        "{out}"
    );
    // A mistyped input is refused, as GitLab does.
    let bad = ci.replace("build_variant: /rust", "build_variant: /rsut");
    let p = project_with(&[(".gitlab-ci.yml", bad)]);
    let out = gcl(p.path(), &["--preview"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not in the list of allowed options")
            || String::from_utf8_lossy(&out.stdout).contains("not in the list of allowed options"),
        "{out:?}"
    );
}

fn downstream_server(path: &str, files: &[(&str, String)], tags: &[&str]) -> Server {
    Server::start(Project::on_main(path, "glpat-downstream", files, tags))
}

/// Runs one job of `project` in shell mode as a tag pipeline for `tag`.
fn run_job(project: &Path, job: &str, server: &Server, tag: &str) -> Output {
    gcl(
        project,
        &[
            "--force-shell-executor",
            "--variable",
            &format!("CI_COMMIT_TAG={tag}"),
            "--variable",
            &format!("CI_API_V4_URL={}", server.url),
            "--variable",
            "DOWNSTREAM_TOKEN=glpat-downstream",
            "--variable",
            "CI_REGISTRY_IMAGE=registry.example.com/demo/images/hello",
            job,
        ],
    )
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "job failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_project_tag_bumps_the_manifest_project() {
    let manifest = root().join("examples/gitlab/manifest");
    let kust = read(&manifest.join("kustomization.yaml"));
    let deploy = read(&manifest.join("deployment.yaml"));
    let s = downstream_server(
        "demo/deploy/hello",
        &[
            ("kustomization.yaml", kust.clone()),
            ("deployment.yaml", deploy.clone()),
        ],
        &[],
    );
    let p = example("image");
    assert_ok(&run_job(
        p.path(),
        "commit-downstream-manifest",
        &s,
        "1.1.0-r0",
    ));
    assert_eq!(
        s.file("main", "kustomization.yaml").unwrap(),
        kust.replace("newTag: \"1.0.0-r2\"", "newTag: \"1.1.0-r0\"")
    );
    assert_eq!(
        s.file("main", "deployment.yaml").unwrap(),
        deploy.replace("hello:1.0.0-r2", "hello:1.1.0-r0")
    );
    let commit = s
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&commit.body).unwrap();
    assert!(
        body["commit_message"]
            .as_str()
            .unwrap()
            .starts_with("registry.example.com/demo/images/hello:1.1.0-r0 ("),
        "{body}"
    );
    // The bumped manifest project still passes its own pipeline.
    let m = project_with(&[
        (".gitlab-ci.yml", read(&manifest.join(".gitlab-ci.yml"))),
        (
            "kustomization.yaml",
            s.file("main", "kustomization.yaml").unwrap(),
        ),
        (
            "deployment.yaml",
            s.file("main", "deployment.yaml").unwrap(),
        ),
    ]);
    assert_ok(&gcl(m.path(), &["--force-shell-executor", "check"]));
}

#[test]
fn package_project_tag_pins_the_image_and_rebuilds_an_existing_tag() {
    let containerfile = read(&root().join("examples/gitlab/image/Containerfile"));
    let s = downstream_server(
        "demo/images/hello",
        &[("Containerfile", containerfile.clone())],
        &["1.0.0-r2"],
    );
    let p = example("package");
    assert_ok(&run_job(
        p.path(),
        "commit-downstream-container",
        &s,
        "1.1.0-r0",
    ));
    assert_eq!(
        s.file("main", "Containerfile").unwrap(),
        containerfile.replace("hello=1.0.0-r2", "hello=1.1.0-r0")
    );
    // The image project already has 1.0.0-r2: a rebuild, no commit.
    let before = s.requests().len();
    assert_ok(&run_job(
        p.path(),
        "commit-downstream-container",
        &s,
        "1.0.0-r2",
    ));
    let after = s.requests();
    let new: Vec<String> = after[before..]
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.query))
        .collect();
    assert_eq!(
        new,
        [
            "GET /api/v4/projects/demo/images/hello/repository/tags/1.0.0-r2 ",
            "POST /api/v4/projects/demo/images/hello/pipeline ref=1.0.0-r2",
        ]
    );
}

/// An `apkbuild` that has `subcommand` (issue-3's recipe commands): $CI_TESTS_APKBUILD,
/// else the one built beside this test binary. `Err` says why there is none.
fn apkbuild_with(subcommand: &str) -> Result<std::path::PathBuf, String> {
    let bin = match std::env::var_os("CI_TESTS_APKBUILD") {
        Some(b) => std::path::PathBuf::from(b),
        None => {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .and_then(Path::parent)
                .map(|d| d.join("apkbuild"))
                .ok_or("no target directory")?
        }
    };
    if !bin.is_file() {
        return Err(format!(
            "{} is not built (cargo build -p builder)",
            bin.display()
        ));
    }
    let ok = Command::new(&bin)
        .args([subcommand, "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(bin)
    } else {
        Err(format!(
            "{} has no `{subcommand}` subcommand yet",
            bin.display()
        ))
    }
}

/// PATH with the directory of `apkbuild` and `ci/`.
fn path_with_apkbuild(apkbuild: &Path) -> String {
    format!(
        "{}:{}",
        apkbuild.parent().unwrap().display(),
        path_with_ci()
    )
}

fn sha512(data: &[u8]) -> String {
    let t = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(t.path(), data).unwrap();
    let o = Command::new("sha512sum").arg(t.path()).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn package_project_build_job_builds_signs_and_verifies() {
    let apkbuild = match apkbuild_with("build-all") {
        Ok(b) => b,
        Err(why) => {
            println!("skipped: build-apk runs `apkbuild build-all`, but {why}");
            return;
        }
    };
    let script = "#!/bin/sh\necho hello\n";
    let recipe = format!(
        "pkgname=hello\npkgver=1.0.0\npkgrel=0\npkgdesc=\"Prints a greeting\"\nurl=\"https://example.com\"\narch=\"noarch\"\nlicense=\"MIT\"\nsource=\"hello.sh\"\n\npackage() {{\n\tinstall -Dm755 \"$srcdir\"/hello.sh \"$pkgdir\"/usr/bin/hello\n}}\n\nsha512sums=\"\n{}  hello.sh\n\"\n",
        sha512(script.as_bytes())
    );
    let ci = "include:\n  - local: templates/build_apk.yml\n    inputs:\n      key_name: fixture-test-65a1b2c3.rsa\n      build_args: --no-sandbox\n";
    let p = project_with(&[(".gitlab-ci.yml", ci.to_string())]);
    let dir = p.path().join("main/hello");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("APKBUILD"), recipe).unwrap();
    fs_err::write(dir.join("hello.sh"), script).unwrap();
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "recipe"]);
    let keys = root().join("testkit/fixtures/apk-reference/keys");
    let out = Command::new("gitlab-ci-local")
        .args(["--home", &p.path().join(".gcl-home").display().to_string()])
        .arg("--force-shell-executor")
        .args([
            "--variable",
            &format!(
                "PACKAGER_PRIVKEY={}",
                keys.join("fixture-test-65a1b2c3.rsa").display()
            ),
        ])
        .args([
            "--variable",
            &format!(
                "PACKAGER_PUBKEY={}",
                keys.join("fixture-test-65a1b2c3.rsa.pub").display()
            ),
        ])
        .args(["--variable", "SOURCE_DATE_EPOCH=1700000000"])
        .arg("build-apk")
        .env("PATH", path_with_apkbuild(&apkbuild))
        .env("HOME", p.path())
        .current_dir(p.path())
        .output()
        .unwrap();
    assert_ok(&out);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("PASS") && log.contains("build-apk"), "{log}");
    // The artifacts hold the signed package and index, under the build job's name.
    let arts = p
        .path()
        .join(".gitlab-ci-local/artifacts/build-apk/packages/main");
    let arch = fs_err::read_dir(&arts)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut names = crate::support::entries(&arch);
    names.sort();
    assert_eq!(names, ["APKINDEX.tar.gz", "hello-1.0.0-r0.apk"], "{log}");
}

#[test]
fn source_project_tag_bumps_the_package_project() {
    let apkbuild = match apkbuild_with("checksum") {
        Ok(b) => b,
        Err(why) => {
            println!("skipped: the source project's job runs `apkbuild checksum`, but {why}");
            return;
        }
    };
    let tarball = b"the release tarball of hello 1.1.0\n".to_vec();
    let sum = sha512(&tarball);
    let s = Server::start(Project::default());
    // The recipe downloads its release from the stand-in instead of gitlab.example.com.
    let recipe = read(&root().join("examples/gitlab/package/main/hello/APKBUILD"))
        .replace("https://gitlab.example.com", &s.base);
    {
        let mut st = s.state.lock().unwrap();
        st.path = "demo/packages/hello".into();
        st.token = "glpat-downstream".into();
        st.files.insert(
            "main".into(),
            [("main/hello/APKBUILD".to_string(), recipe.clone())]
                .into_iter()
                .collect(),
        );
        st.downloads.insert(
            "/demo/hello/-/archive/v1.1.0/hello-v1.1.0.tar.gz".into(),
            tarball,
        );
    }
    let p = example("source");
    let out = Command::new("gitlab-ci-local")
        .args(["--home", &p.path().join(".gcl-home").display().to_string()])
        .args([
            "--force-shell-executor",
            "--variable",
            "CI_COMMIT_TAG=v1.1.0",
        ])
        .args(["--variable", &format!("CI_API_V4_URL={}", s.url)])
        .args(["--variable", "DOWNSTREAM_TOKEN=glpat-downstream"])
        .arg("commit-downstream-apkbuild")
        .env("PATH", path_with_apkbuild(&apkbuild))
        .env("GCL_IGNORE_PREDEFINED_VARS", "CI_API_V4_URL,CI_COMMIT_TAG")
        .env("HOME", p.path())
        .current_dir(p.path())
        .output()
        .unwrap();
    assert_ok(&out);
    let bumped = s.file("main", "main/hello/APKBUILD").unwrap();
    assert!(bumped.contains("\npkgver=1.1.0\npkgrel=0\n"), "{bumped}");
    assert!(
        bumped.contains(&format!("{sum}  hello-1.1.0.tar.gz")),
        "{bumped}"
    );
}

#[test]
fn recipe_tree_generator_writes_a_valid_child_pipeline() {
    let apkbuild = match apkbuild_with("graph") {
        Ok(b)
            if Command::new(&b)
                .args(["graph", "--help"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--gitlab")) =>
        {
            b
        }
        Ok(b) => {
            println!("skipped: {} has no `graph --gitlab` yet", b.display());
            return;
        }
        Err(why) => {
            println!("skipped: recipes-graph runs `apkbuild graph --gitlab`, but {why}");
            return;
        }
    };
    let ci = "include:\n  - local: templates/pipeline.yml\n    inputs:\n      recipes: main\n      image: alpine:3.20\n      key_name: ci@example.com-1234.rsa\n";
    let p = project_with(&[(".gitlab-ci.yml", ci.to_string())]);
    // Two recipes, the second building against the first.
    for (name, deps) in [("libgreet", ""), ("greet", "libgreet")] {
        let dir = p.path().join("main").join(name);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(
            dir.join("APKBUILD"),
            format!("pkgname={name}\npkgver=1.0\npkgrel=0\npkgdesc=\"x\"\nurl=\"https://example.com\"\narch=\"noarch\"\nlicense=\"MIT\"\nmakedepends=\"{deps}\"\n\npackage() {{\n\tmkdir -p \"$pkgdir\"\n}}\n"),
        )
        .unwrap();
    }
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "recipes"]);
    let out = Command::new("gitlab-ci-local")
        .args(["--home", &p.path().join(".gcl-home").display().to_string()])
        .args(["--force-shell-executor", "recipes-graph"])
        .env("PATH", path_with_apkbuild(&apkbuild))
        .env("HOME", p.path())
        .current_dir(p.path())
        .output()
        .unwrap();
    assert_ok(&out);
    let child = read(
        &p.path()
            .join(".gitlab-ci-local/artifacts/recipes-graph/recipes-pipeline.yml"),
    );
    let doc: serde_json::Value = serde_saphyr::from_str(&child).unwrap();
    assert_eq!(doc["default"]["image"], "alpine:3.20", "{child}");
    assert_eq!(
        doc["default"]["before_script"][0],
        "mkdir -p .apk-keys && cp \"$PACKAGER_PRIVKEY\" \".apk-keys/ci@example.com-1234.rsa\"",
        "{child}"
    );
    let mut errors = Vec::new();
    crate::yaml::check_pipeline("child pipeline", &doc, &mut errors);
    assert!(errors.is_empty(), "{}\n{child}", errors.join("\n"));
    // The child pipeline itself passes gitlab-ci-local's GitLab schema check.
    let c = project_with(&[(".gitlab-ci.yml", child.clone())]);
    preview(c.path());
    assert!(child.contains("apkbuild build"), "{child}");
}
