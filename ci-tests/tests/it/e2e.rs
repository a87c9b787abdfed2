//! The whole chain, source → package → repository → image → manifest, with the example
//! projects' own pipelines run by `gitlab-ci-local` in shell mode and nothing faked but
//! GitLab itself:
//!
//! - the workspace's `apkbuild`, `reposerve` and `assemble` and the `ci/` scripts on PATH;
//! - reposerve on 127.0.0.1 checking the deploy job's ID token (`REPOSERVE_JWT`, minted
//!   with the fixture RSA key) against a real JWKS server;
//! - Debian's `docker-registry` on 127.0.0.1 receiving the image, read back with skopeo;
//! - for the GitLab API the downstream jobs commit through, one stand-in per downstream
//!   project ([`crate::gitlab_api`]), a real HTTP server recording the requests. Each
//!   project's next pipeline runs on the files as the stand-in then holds them, that is
//!   as GitLab would have them after the upstream commit.
//!
//! Why a stand-in and not a local git checkout: the templates talk to GitLab's REST API
//! (`ci/gitlab-downstream`: raw file downloads, the commits API, tags, pipeline
//! triggers), and what matters is what GitLab receives. The stand-in answers as GitLab's
//! API documentation describes and the test asserts on the request bodies, so the
//! templates run unchanged, with no test-only path in them.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::jwks::{JwksServer, JwtKey, now};

use crate::deploy::start_reposerve;
use crate::gitlab_api::{Project, Server};
use crate::gitlab_ci_local::{assert_ok, copy_dir, git, project_with};
use crate::support::{bwrap_works, path_with_ci, read, require_tool, root, workspace_bin};

const TOKEN: &str = "glpat-downstream";
/// Signatures carry the key's file name: the packager's and the repository's.
const PACKAGER_KEY: &str = "builder@example.com-65a1b2c3.rsa";
const REPO_KEY: &str = "packages@example.com-65a1b2c3.rsa";
const AUDIENCE: &str = "https://packages.example.com";

/// Debian's docker-registry on 127.0.0.1, killed by PID on drop.
struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /v2/` answers on `host`.
fn registry_answers(host: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

fn start_registry(dir: &Path) -> Registry {
    // A free port: the registry takes its address from the configuration only.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    fs_err::create_dir_all(dir).unwrap();
    let config = dir.join("registry.yml");
    fs_err::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let start = Instant::now();
    while !registry_answers(&host) {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("docker-registry exited: {st}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "docker-registry did not answer on {host}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Registry { child, host }
}

/// One project's pipeline for `tag`, every job, in shell mode.
fn pipeline(dir: &Path, env: &Env, tag: &str, vars: &[(&str, String)]) -> Output {
    let mut c = Command::new("gitlab-ci-local");
    c.args(["--home", &dir.join(".gcl-home").display().to_string()])
        .arg("--force-shell-executor")
        .args(["--variable", &format!("CI_COMMIT_TAG={tag}")])
        .args(["--variable", &format!("DOWNSTREAM_TOKEN={TOKEN}")])
        .args(["--variable", "SOURCE_DATE_EPOCH=1700000000"]);
    for (k, v) in vars {
        c.args(["--variable", &format!("{k}={v}")]);
    }
    let out = c
        .env("PATH", &env.path)
        .env("HOME", &env.home)
        // skopeo login writes here, not into the user's files.
        .env("REGISTRY_AUTH_FILE", env.home.join("auth.json"))
        .env(
            "GCL_IGNORE_PREDEFINED_VARS",
            "CI_API_V4_URL,CI_REGISTRY_IMAGE,CI_COMMIT_TAG,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD,CI_REGISTRY",
        )
        .current_dir(dir)
        .output()
        .unwrap();
    eprintln!(
        "--- pipeline in {}\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Env {
    path: String,
    home: PathBuf,
}

/// The example project `name` with `files` (path, text) laid over it, committed.
fn checkout(name: &str, files: &[(&str, String)]) -> tempfile::TempDir {
    checkout_with(name, &[], files)
}

/// [`checkout`], with directories of this repository (source, destination) copied in.
fn checkout_with(name: &str, dirs: &[(&str, &str)], files: &[(&str, String)]) -> tempfile::TempDir {
    let t = project_with(&[]);
    copy_dir(&root().join("examples/gitlab").join(name), t.path());
    for (from, to) in dirs {
        copy_dir(&root().join(from), &t.path().join(to));
    }
    for (path, text) in files {
        let p = t.path().join(path);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, text).unwrap();
    }
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", name]);
    t
}

fn downstream(path: &str, files: &[(&str, String)]) -> Server {
    Server::start(Project::on_main(path, TOKEN, files, &[]))
}

/// The one commit `server` received: its JSON body.
fn commit_body(server: &Server) -> serde_json::Value {
    let commits: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/repository/commits"))
        .collect();
    assert_eq!(commits.len(), 1, "{commits:?}");
    serde_json::from_str(&commits[0].body).unwrap()
}

/// The content the commit body gives `file`.
fn committed(body: &serde_json::Value, file: &str) -> String {
    body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file_path"] == file)
        .unwrap_or_else(|| panic!("{file} not in the commit {body}"))["content"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sha512_hex(path: &Path) -> String {
    let o = Command::new("sha512sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The release tarball of hello 1.1.0, as GitLab's archive endpoint would serve it.
fn release_tarball(dir: &Path, script: &str) -> PathBuf {
    let src = dir.join("hello-v1.1.0");
    fs_err::create_dir_all(&src).unwrap();
    fs_err::write(src.join("hello.sh"), script).unwrap();
    let out = dir.join("hello-v1.1.0.tar.gz");
    let st = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@1700000000",
            "--owner=0",
            "--group=0",
            "-czf",
        ])
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg("hello-v1.1.0")
        .status()
        .unwrap();
    assert!(st.success());
    out
}

/// `(apkbuild, reposerve, assemble)`'s directory, or why the test cannot run.
fn preconditions() -> Result<PathBuf, String> {
    let apkbuild = workspace_bin("apkbuild", "builder")?;
    workspace_bin("reposerve", "reposerve")?;
    workspace_bin("assemble", "assembler")?;
    if !bwrap_works() {
        return Err(
            "bubblewrap cannot create namespaces here, and assemble's RUN steps need it".into(),
        );
    }
    for tool in [
        "gitlab-ci-local",
        "rsync",
        "docker-registry",
        "skopeo",
        "curl",
        "jq",
        "tar",
    ] {
        require_tool(tool);
    }
    Ok(apkbuild.parent().unwrap().to_path_buf())
}

#[test]
fn source_tag_to_pushed_image_and_bumped_manifest() {
    let Ok(bin_dir) = preconditions().inspect_err(|why| println!("skipped: {why}")) else {
        return;
    };
    let chain = Chain::start(&bin_dir);
    let bumped = chain.source_bumps_the_apkbuild();
    let pinned = chain.package_is_built_uploaded_and_pinned(bumped);
    let (kust, depl) = chain.image_is_pushed_and_manifests_bumped(pinned);
    // 4. The manifest project's own pipeline accepts what it received.
    let manifests = checkout(
        "manifest",
        &[("kustomization.yaml", kust), ("deployment.yaml", depl)],
    );
    assert_ok(&pipeline(manifests.path(), &chain.env, "", &[]));
}

/// Everything the four pipelines talk to: reposerve (with its JWKS), the registry, the
/// three downstream GitLab projects as their files are now, and the release tarball.
/// Fields drop in order: the servers are stopped before their directory goes.
struct Chain {
    reposerve: crate::deploy::Reposerve,
    /// Kept for its drop (stops it); pipelines reach it through `image_name`.
    _registry: Registry,
    jwks: JwksServer,
    jwt: JwtKey,
    env: Env,
    image_name: String,
    package_srv: Server,
    image_srv: Server,
    manifest_srv: Server,
    script: &'static str,
    tarball: PathBuf,
    containerfile: String,
    kustomization: String,
    deployment: String,
    tmp: tempfile::TempDir,
}

fn fixture_keys() -> (PathBuf, PathBuf) {
    let keys = root().join("testkit/fixtures/apk-reference/keys");
    (
        keys.join(testkit::FIXTURE_KEY),
        keys.join(format!("{}.pub", testkit::FIXTURE_KEY)),
    )
}

impl Chain {
    fn start(bin_dir: &Path) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let env = Env {
            path: format!("{}:{}", bin_dir.display(), path_with_ci()),
            home: tmp.path().join("home"),
        };
        fs_err::create_dir_all(&env.home).unwrap();
        let jwt = JwtKey::fixture("gitlab-1");
        let jwks = JwksServer::start(&[jwt.jwk()]);
        let reposerve = chain_reposerve(tmp.path(), &bin_dir.join("reposerve"), &jwks);
        let registry = start_registry(&tmp.path().join("registry"));
        let image_name = format!("{}/demo/images/hello", registry.host);
        let script = "#!/bin/sh\necho \"hello from 1.1.0\"\n";
        let tarball = release_tarball(tmp.path(), script);
        let package_srv = package_project(&tarball);
        let containerfile = read(&root().join("examples/gitlab/image/Containerfile"));
        let image_srv = downstream(
            "demo/images/hello",
            &[("Containerfile", containerfile.clone())],
        );
        // The manifests point at the registry the image goes to.
        let manifest = root().join("examples/gitlab/manifest");
        let kustomization = read(&manifest.join("kustomization.yaml"))
            .replace("registry.example.com", &registry.host);
        let deployment =
            read(&manifest.join("deployment.yaml")).replace("registry.example.com", &registry.host);
        let manifest_srv = downstream(
            "demo/deploy/hello",
            &[
                ("kustomization.yaml", kustomization.clone()),
                ("deployment.yaml", deployment.clone()),
            ],
        );
        Self {
            reposerve,
            _registry: registry,
            jwks,
            jwt,
            env,
            image_name,
            package_srv,
            image_srv,
            manifest_srv,
            script,
            tarball,
            containerfile,
            kustomization,
            deployment,
            tmp,
        }
    }

    /// 1. The source project is tagged v1.1.0: its pipeline bumps the package project's
    ///    APKBUILD (pkgver, pkgrel, sha512sums of the release tarball). The bumped APKBUILD.
    fn source_bumps_the_apkbuild(&self) -> String {
        let source = checkout("source", &[]);
        assert_ok(&pipeline(
            source.path(),
            &self.env,
            "v1.1.0",
            &[("CI_API_V4_URL", self.package_srv.url.clone())],
        ));
        let bumped = self
            .package_srv
            .file("main", "main/hello/APKBUILD")
            .unwrap();
        let sum = sha512_hex(&self.tarball);
        assert!(bumped.contains("\npkgver=1.1.0\npkgrel=0\n"), "{bumped}");
        assert!(
            bumped.contains(&format!("{sum}  hello-1.1.0.tar.gz")),
            "{bumped}"
        );
        assert_eq!(
            committed(&commit_body(&self.package_srv), "main/hello/APKBUILD"),
            bumped
        );
        bumped
    }

    /// 2. The package project, tagged 1.1.0-r0 on that commit: build, upload with the
    ///    job's ID token, pin the new version in the image project's Containerfile. Its
    ///    .gitlab-ci.yml names this reposerve (the audience stays the public name). Beside
    ///    hello it holds the example recipes (examples/recipes: a library, a program
    ///    linking it, a patched source, install scripts), built in dependency order.
    ///    The pinned Containerfile.
    fn package_is_built_uploaded_and_pinned(&self, bumped: String) -> String {
        let package_ci = read(&root().join("examples/gitlab/package/.gitlab-ci.yml")).replace(
            &format!("url: {AUDIENCE}"),
            &format!("url: {}\n      audience: {AUDIENCE}", self.reposerve.url),
        );
        let package = checkout_with(
            "package",
            &[("examples/recipes/main", "main")],
            &[
                ("main/hello/APKBUILD", bumped),
                (".gitlab-ci.yml", package_ci),
            ],
        );
        let t = now();
        let id_token = self.jwt.token(&json!({
            "aud": AUDIENCE, "iat": t, "exp": t + 600,
            "project_path": "demo/packages/hello", "ref_type": "tag", "ref": "1.1.0-r0",
        }));
        let (fixture_key, fixture_pub) = fixture_keys();
        let out = pipeline(
            package.path(),
            &self.env,
            "1.1.0-r0",
            &[
                ("CI_API_V4_URL", self.image_srv.url.clone()),
                ("REPOSERVE_JWT", id_token),
                ("PACKAGER_PRIVKEY", fixture_key.display().to_string()),
                ("PACKAGER_PUBKEY", fixture_pub.display().to_string()),
            ],
        );
        assert_ok(&out);
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            log.contains("uploaded edge/main/x86_64/hello-1.1.0-r0.apk"),
            "{log}"
        );
        // reposerve checked the token against the JWKS, not merely accepted it.
        assert!(self.jwks.fetches() >= 1, "the JWKS was never fetched");
        let served = self.tmp.path().join("repo/edge/main/x86_64");
        for apk in [
            "hello-1.1.0-r0.apk",
            "libgreet-1.0.0-r0.apk",
            "libgreet-dev-1.0.0-r0.apk",
            "greet-1.0.0-r0.apk",
            "hello-sh-0.3-r1.apk",
            "motd-2.1-r0.apk",
        ] {
            assert!(served.join(apk).is_file(), "{apk} not served:\n{log}");
        }
        let pinned = self.image_srv.file("main", "Containerfile").unwrap();
        assert_eq!(
            pinned,
            self.containerfile
                .replace("hello=1.0.0-r2", "hello=1.1.0-r0")
        );
        assert_eq!(
            committed(&commit_body(&self.image_srv), "Containerfile"),
            pinned
        );
        pinned
    }

    /// 3. The image project, tagged 1.1.0-r0: assemble FROM scratch with the packages
    ///    from reposerve, push to the registry, point the manifests at the new tag. Its
    ///    `repositories` names this reposerve; the registry is plain HTTP. The bumped
    ///    kustomization and deployment.
    fn image_is_pushed_and_manifests_bumped(&self, pinned: String) -> (String, String) {
        let image_ci = read(&root().join("examples/gitlab/image/.gitlab-ci.yml")).replace(
            "  - local: templates/build_image.yml\n",
            "  - local: templates/build_image.yml\n    inputs:\n      tls_verify: \"false\"\n",
        );
        let image = checkout(
            "image",
            &[
                ("Containerfile", pinned),
                (
                    "repositories",
                    format!("{}/edge/main\n", self.reposerve.url),
                ),
                (".gitlab-ci.yml", image_ci),
            ],
        );
        let out = pipeline(
            image.path(),
            &self.env,
            "1.1.0-r0",
            &[
                ("CI_API_V4_URL", self.manifest_srv.url.clone()),
                ("CI_REGISTRY_IMAGE", self.image_name.clone()),
                ("CI_REGISTRY_USER", "gitlab-ci-token".into()),
                ("CI_REGISTRY_PASSWORD", "job-token".into()),
            ],
        );
        assert_ok(&out);
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains("Installing hello (1.1.0-r0)"), "{log}");
        assert!(
            log.contains(&format!("pushed {}:1.1.0-r0", self.image_name)),
            "{log}"
        );
        self.pushed_image_holds_the_new_hello();
        let kust = self
            .manifest_srv
            .file("main", "kustomization.yaml")
            .unwrap();
        let depl = self.manifest_srv.file("main", "deployment.yaml").unwrap();
        assert_eq!(
            kust,
            self.kustomization
                .replace("newTag: \"1.0.0-r2\"", "newTag: \"1.1.0-r0\"")
        );
        assert_eq!(
            depl,
            self.deployment.replace("hello:1.0.0-r2", "hello:1.1.0-r0")
        );
        let body = commit_body(&self.manifest_srv);
        assert_eq!(committed(&body, "kustomization.yaml"), kust);
        assert_eq!(committed(&body, "deployment.yaml"), depl);
        (kust, depl)
    }

    /// What the registry holds is that image, with hello 1.1.0's script in it.
    fn pushed_image_holds_the_new_hello(&self) {
        let inspect = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}:1.1.0-r0", self.image_name))
            .env("REGISTRY_AUTH_FILE", self.env.home.join("auth.json"))
            .output()
            .unwrap();
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(info["Architecture"], "amd64", "{info}");
        assert!(!info["Layers"].as_array().unwrap().is_empty(), "{info}");
        assert_eq!(
            hello_in_pushed_image(&self.image_name, self.tmp.path(), &self.env),
            self.script
        );
    }
}

/// reposerve trusts the packager's key and signs its index with the repository key, both
/// the fixture key under the names the projects use; tokens are checked against `jwks`.
fn chain_reposerve(dir: &Path, bin: &Path, jwks: &JwksServer) -> crate::deploy::Reposerve {
    let (fixture_key, fixture_pub) = fixture_keys();
    let trusted = dir.join("trusted");
    fs_err::create_dir_all(&trusted).unwrap();
    fs_err::copy(&fixture_pub, trusted.join(format!("{PACKAGER_KEY}.pub"))).unwrap();
    let repo_key = dir.join(REPO_KEY);
    fs_err::copy(&fixture_key, &repo_key).unwrap();
    let config = dir.join("reposerve.yaml");
    fs_err::write(
        &config,
        format!(
            "dir: {}\ntrusted_keys: {}\nsigning:\n  key: {}\njwt:\n  jwks: {}\n  claims:\n    aud: {AUDIENCE}\n    project_path: {{glob: \"demo/packages/*\"}}\n    ref_type: tag\n",
            dir.join("repo").display(),
            trusted.display(),
            repo_key.display(),
            jwks.url()
        ),
    )
    .unwrap();
    start_reposerve(bin, &config)
}

/// The package project on the GitLab stand-in: its APKBUILD on main (pointing at the
/// stand-in for the release tarball) and the tarball to download.
fn package_project(tarball: &Path) -> Server {
    let package_srv = Server::start(Project::default());
    let apkbuild = read(&root().join("examples/gitlab/package/main/hello/APKBUILD"))
        .replace("https://gitlab.example.com", &package_srv.base);
    {
        let mut st = package_srv.state.lock().unwrap();
        st.path = "demo/packages/hello".into();
        st.token = TOKEN.into();
        st.files.insert(
            "main".into(),
            [("main/hello/APKBUILD".to_string(), apkbuild)]
                .into_iter()
                .collect(),
        );
        st.downloads.insert(
            "/demo/hello/-/archive/v1.1.0/hello-v1.1.0.tar.gz".into(),
            fs_err::read(tarball).unwrap(),
        );
    }
    package_srv
}

/// `/usr/bin/hello` of the pushed image: copied back from the registry as an OCI layout,
/// found in its layers.
fn hello_in_pushed_image(image_name: &str, tmp: &Path, env: &Env) -> String {
    let layout = tmp.join("pulled");
    let st = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{image_name}:1.1.0-r0"))
        .arg(format!("oci:{}:pulled", layout.display()))
        .env("REGISTRY_AUTH_FILE", env.home.join("auth.json"))
        .status()
        .unwrap();
    assert!(st.success());
    for e in fs_err::read_dir(layout.join("blobs/sha256")).unwrap() {
        let blob = e.unwrap().path();
        let o = Command::new("tar")
            .args(["-xzOf"])
            .arg(&blob)
            .arg("usr/bin/hello")
            .output()
            .unwrap();
        if o.status.success() {
            return String::from_utf8(o.stdout).unwrap();
        }
    }
    panic!("no layer of the pushed image holds usr/bin/hello");
}
