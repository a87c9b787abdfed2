//! Recipes built by the real binary: the example tree, the S3 cache, and bad input.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn apkbuild(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("apkbuild").unwrap();
    cmd.env_clear()
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env(
            "PACKAGER_PRIVKEY",
            testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY)),
        );
    cmd
}

/// The example recipes, copied so tests can change them.
fn examples(into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes");
    let dst = into.join("recipes");
    for e in walkdir::WalkDir::new(&src) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(&src).unwrap();
        let to = dst.join(rel);
        if e.file_type().is_dir() {
            fs_err::create_dir_all(&to).unwrap();
        } else {
            fs_err::copy(e.path(), &to).unwrap();
        }
    }
    dst
}

/// The sandbox when bwrap works here, else `--no-sandbox` (said on stderr).
fn sandbox_flag() -> Option<&'static str> {
    let ok = std::process::Command::new("bwrap")
        .args([
            "--unshare-user",
            "--uid",
            "0",
            "--unshare-net",
            "--ro-bind",
            "/",
            "/",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("bwrap cannot create a user namespace here: building with --no-sandbox");
    }
    (!ok).then_some("--no-sandbox")
}

fn build_all(
    home: &Path,
    tree: &Path,
    repodest: &Path,
    extra: &[&str],
) -> assert_cmd::assert::Assert {
    let mut cmd = apkbuild(home);
    cmd.arg("build-all")
        .arg(tree)
        .arg("--repodest")
        .arg(repodest)
        .args(sandbox_flag())
        .args(extra);
    cmd.assert()
}

fn arch_dir(repodest: &Path) -> PathBuf {
    repodest.join("main").join(std::env::consts::ARCH)
}

/// (file name, bytes) of every file in the arch dir.
fn snapshot(repodest: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = arch_dir(repodest);
    let mut out: Vec<_> = match fs_err::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    fs_err::read(e.path()).unwrap(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

#[test]
fn example_tree_builds_verifies_and_resolves_through_so_and_cmd() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let repodest = home.path().join("packages");
    build_all(home.path(), &tree, &repodest, &["--no-cache"])
        .success()
        .stderr(predicate::str::contains(
            "greet: build dependencies from the repository",
        ));
    let dir = arch_dir(&repodest);
    for f in [
        "libgreet-1.0.0-r0.apk",
        "libgreet-dev-1.0.0-r0.apk",
        "libgreet-doc-1.0.0-r0.apk",
        "greet-1.0.0-r0.apk",
        "hello-sh-0.3-r1.apk",
        "motd-2.1-r0.apk",
    ] {
        let pkg = apk::package::Package::open(&dir.join(f), Default::default()).unwrap();
        pkg.verify(&testkit::fixture_keyring()).unwrap();
        pkg.verify_contents().unwrap();
    }
    let index = apk::index::SignedIndex::open(&dir.join("APKINDEX.tar.gz")).unwrap();
    index.verify(&testkit::fixture_keyring()).unwrap();
    let get = |n: &str| index.index.packages.iter().find(|e| e.name == n).unwrap();
    assert!(
        get("greet")
            .depends
            .contains(&"so:libgreet.so.1".to_string())
    );
    assert!(
        get("greet")
            .provides
            .contains(&"cmd:greet=1.0.0-r0".to_string())
    );
    assert!(
        get("libgreet")
            .provides
            .contains(&"so:libgreet.so.1=1.0.0".to_string())
    );
    assert_eq!(
        get("libgreet-dev").depends,
        ["libgreet=1.0.0-r0", "pkgconfig"]
    );
    assert!(
        get("libgreet-dev")
            .provides
            .contains(&"pc:greet=1.0.0".to_string())
    );
    assert_eq!(
        get("hello-sh").arch,
        std::env::consts::ARCH,
        "noarch rewritten as abuild does"
    );
    // The patch was applied.
    let motd =
        apk::package::Package::open(&dir.join("motd-2.1-r0.apk"), Default::default()).unwrap();
    assert!(
        motd.files
            .iter()
            .any(|f| f.entry.path.ends_with("usr/bin/motd"))
    );
    // The .pre-install that creates the user is in the control segment.
    let hello =
        apk::package::Package::open(&dir.join("hello-sh-0.3-r1.apk"), Default::default()).unwrap();
    assert!(
        hello
            .scripts
            .iter()
            .any(|(name, content)| name == ".pre-install"
                && String::from_utf8_lossy(content).contains("adduser"))
    );

    // A world naming only commands and sonames resolves to the right packages. The base
    // system (libc and /bin/sh) is what an image's base layer provides.
    let candidate = |e: &apk::index::IndexEntry| apk::resolve::Candidate {
        name: e.name.clone(),
        version: e.version.clone(),
        depends: e.depends.iter().map(|d| d.parse().unwrap()).collect(),
        provides: e.provides.iter().map(|p| p.parse().unwrap()).collect(),
        provider_priority: e.provider_priority,
        install_if: e.install_if.iter().map(|d| d.parse().unwrap()).collect(),
        repo_priority: 0,
    };
    let mut candidates: Vec<_> = index.index.packages.iter().map(candidate).collect();
    let base = apk::index::IndexEntry {
        name: "base-system".into(),
        version: "1-r0".into(),
        provides: vec!["so:libc.so.6=6".into(), "/bin/sh".into()],
        depends: Vec::new(),
        install_if: Vec::new(),
        ..get("motd").clone()
    };
    candidates.push(candidate(&base));
    let world: Vec<apk::dep::Dependency> = ["cmd:greet", "cmd:hello-sh"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let res = apk::resolve::resolve(&candidates, &[], &world).unwrap();
    let mut names: Vec<&str> = res
        .install
        .iter()
        .map(|&i| candidates[i].name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["base-system", "greet", "hello-sh", "libgreet"]);
}

/// Builds with the S3 cache against a real s3s-fs; `None` (and a message) when it cannot run.
fn s3_server() -> Option<testkit::s3::S3Server> {
    match testkit::s3::S3Server::start() {
        Ok(s) => {
            s.create_bucket("apkcache");
            Some(s)
        }
        Err(e) => {
            eprintln!("SKIPPED: no S3 server: {e}");
            None
        }
    }
}

fn s3_build(
    home: &Path,
    tree: &Path,
    repodest: &Path,
    s3: &testkit::s3::S3Server,
    keys: &Path,
) -> String {
    let mut cmd = apkbuild(home);
    cmd.arg("build-all")
        .arg(tree)
        .arg("--repodest")
        .arg(repodest)
        .args(sandbox_flag())
        .args([
            "--cache",
            "s3://apkcache/ci",
            "--s3-endpoint",
            &s3.endpoint(),
        ])
        .arg("--cache-key")
        .arg(keys.join("cache.key"))
        .arg("--cache-pubkey")
        .arg(keys.join("cache.pub"));
    for (k, v) in s3.aws_env() {
        cmd.env(k, v);
    }
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn s3_cache_second_build_builds_nothing_and_a_change_rebuilds_only_dependents() {
    let Some(s3) = s3_server() else { return };
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let keys = home.path().join("cache-keys");
    apkbuild(home.path())
        .arg("cache-keygen")
        .arg(&keys)
        .assert()
        .success();

    let first = s3_build(home.path(), &tree, &home.path().join("p1"), &s3, &keys);
    assert_eq!(first.matches("cache miss").count(), 4, "{first}");
    // A second runner with an empty repository: everything comes from S3, same bytes.
    let second = s3_build(home.path(), &tree, &home.path().join("p2"), &s3, &keys);
    assert_eq!(
        second.matches("downloading, not building").count(),
        4,
        "{second}"
    );
    assert!(
        !second.contains("build()"),
        "nothing may be built: {second}"
    );
    assert!(second.contains("0 built, 4 from the cache"), "{second}");
    assert_eq!(
        snapshot(&home.path().join("p1")),
        snapshot(&home.path().join("p2"))
    );

    // Changing libgreet rebuilds it and greet (which links against it), nothing else.
    let apkbuild_path = tree.join("main/libgreet/APKBUILD");
    let text = fs_err::read_to_string(&apkbuild_path).unwrap();
    fs_err::write(
        &apkbuild_path,
        text.replace("A tiny greeting library", "A tiny greeting library, v2"),
    )
    .unwrap();
    let third = s3_build(home.path(), &tree, &home.path().join("p3"), &s3, &keys);
    assert!(third.contains("libgreet: cache miss"), "{third}");
    assert!(third.contains("greet: cache miss"), "{third}");
    assert!(third.contains("hello-sh: cache hit"), "{third}");
    assert!(third.contains("motd: cache hit"), "{third}");
    assert!(third.contains("2 built, 2 from the cache"), "{third}");

    // A cache entry whose file was tampered with is detected and rebuilt; an entry signed
    // by another key is a miss.
    let bucket = s3.data_dir().join("apkcache/ci/packages");
    for e in walkdir::WalkDir::new(&bucket) {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("motd-") {
            fs_err::write(e.path(), b"garbage").unwrap();
        }
    }
    let other_keys = home.path().join("other-keys");
    apkbuild(home.path())
        .arg("cache-keygen")
        .arg(&other_keys)
        .assert()
        .success();
    let fourth = s3_build(home.path(), &tree, &home.path().join("p4"), &s3, &keys);
    assert!(
        fourth.contains("motd: cache miss") && fourth.contains("corrupt"),
        "{fourth}"
    );
    let fifth = s3_build(
        home.path(),
        &tree,
        &home.path().join("p5"),
        &s3,
        &other_keys,
    );
    assert!(fifth.contains("bad signature"), "{fifth}");
    assert!(fifth.contains("4 built, 0 from the cache"), "{fifth}");
}

/// A one-recipe tree in repo `main` with an APKBUILD body and extra files.
fn bad_recipe(home: &Path, apkbuild_text: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = home.join("bad/main/bad");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("APKBUILD"), apkbuild_text).unwrap();
    for (n, b) in files {
        fs_err::write(dir.join(n), b).unwrap();
    }
    dir
}

const HEAD: &str = "pkgname=bad\npkgver=1.0\npkgrel=0\npkgdesc=\"bad\"\nurl=\"https://example.org\"\narch=\"noarch\"\nlicense=\"MIT\"\n";

/// Builds a good package into a repo, then the bad recipe into the same repo: it must fail
/// with `expect` on stderr and leave the repo and index byte for byte as they were.
fn fails_leaving_repo_unchanged(
    name: &str,
    apkbuild_text: &str,
    files: &[(&str, &[u8])],
    expect: &str,
) {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let repodest = home.path().join("packages");
    build_all(
        home.path(),
        &tree.join("main/hello-sh"),
        &repodest,
        &["--no-cache"],
    )
    .success();
    let before = snapshot(&repodest);
    assert!(!before.is_empty());
    let dir = bad_recipe(home.path(), apkbuild_text, files);
    let mut cmd = apkbuild(home.path());
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(&repodest)
        .arg("--no-cache")
        .args(sandbox_flag());
    let out = cmd.assert().failure().get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(expect),
        "{name}: expected `{expect}` in:\n{stderr}"
    );
    assert_eq!(
        snapshot(&repodest),
        before,
        "{name}: the repository changed"
    );
}

#[test]
fn missing_and_wrong_sha512sums_name_the_file_and_the_fix() {
    fails_leaving_repo_unchanged(
        "missing",
        &format!("{HEAD}source=\"data.txt\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"),
        &[("data.txt", b"x\n")],
        "no sha512sums entry for `data.txt`: run `apkbuild checksum",
    );
    fails_leaving_repo_unchanged(
        "wrong",
        &format!(
            "{HEAD}source=\"data.txt\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{}  data.txt\"\n",
            "ab".repeat(64)
        ),
        &[("data.txt", b"x\n")],
        "sha512 of `data.txt` does not match sha512sums",
    );
}

#[test]
fn failing_build_says_which_phase_and_shows_its_output() {
    fails_leaving_repo_unchanged(
        "build",
        &format!(
            "{HEAD}build() {{ echo compiling-things; echo oops >&2; false; }}\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"
        ),
        &[],
        "build() failed (exit status: 1); last lines of its output:\n  | compiling-things\n  | oops",
    );
}

#[test]
fn syntax_error_reports_file_and_line() {
    fails_leaving_repo_unchanged(
        "syntax",
        &format!("{HEAD}build() {{\n  if true; then\n}}\n"),
        &[],
        "APKBUILD:10: Syntax error: \"}\" unexpected\n   |\n10 | }\n   |",
    );
}

#[test]
fn unreachable_source_url_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fails_leaving_repo_unchanged(
        "unreachable",
        &format!(
            "{HEAD}source=\"x.tar.gz::http://127.0.0.1:{port}/x.tar.gz\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{}  x.tar.gz\"\n",
            "ab".repeat(64)
        ),
        &[],
        &format!("failed to fetch `http://127.0.0.1:{port}/x.tar.gz`"),
    );
}

#[test]
fn tarball_with_dotdot_entries_is_refused() {
    // Written by hand: tar tools refuse to create such entries.
    let mut tar = Vec::new();
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../escaped.tx");
    header.set_size(3);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(b"hi\n");
    tar.resize(512 * 2, 0);
    tar.resize(512 * 4, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&gz))
    };
    fails_leaving_repo_unchanged(
        "dotdot",
        &format!(
            "{HEAD}source=\"evil.tar.gz\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{sum}  evil.tar.gz\"\n"
        ),
        &[("evil.tar.gz", &gz)],
        "leaves the source directory",
    );
}

#[test]
fn same_inputs_and_source_date_give_the_same_bytes() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    build_all(home.path(), &tree, &home.path().join("a"), &["--no-cache"]).success();
    build_all(home.path(), &tree, &home.path().join("b"), &["--no-cache"]).success();
    let (a, b) = (
        snapshot(&home.path().join("a")),
        snapshot(&home.path().join("b")),
    );
    assert_eq!(a.len(), 7, "six packages and the index");
    assert_eq!(a, b);
}

#[test]
fn graph_orders_the_tree_and_writes_a_gitlab_child_pipeline() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    apkbuild(home.path())
        .arg("graph")
        .arg(&tree)
        .assert()
        .success()
        .stdout("main/hello-sh\nmain/libgreet\nmain/greet: libgreet\nmain/motd\n");
    let out = apkbuild(home.path())
        .args(["graph", "--gitlab"])
        .arg(&tree)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let yaml = String::from_utf8(out).unwrap();
    assert!(yaml.contains("\"build:main/greet\":\n  stage: build\n  needs:\n    - job: \"build:main/libgreet\"\n      artifacts: true\n"), "{yaml}");
    assert!(
        yaml.contains("\"build:main/libgreet\":\n  stage: build\n  needs: []\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("apkbuild build \"recipes/main/greet\""),
        "{yaml}"
    );
}

#[test]
fn info_prints_variables_subpackages_and_file_names() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let out = apkbuild(home.path())
        .args(["info", "--json"])
        .arg(tree.join("main/libgreet"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["variables"]["pkgname"], "libgreet");
    assert_eq!(v["variables"]["license"], "MIT");
    assert_eq!(v["repo"], "main");
    assert_eq!(v["subpackages"][0]["name"], "libgreet-dev");
    assert_eq!(v["subpackages"][0]["func"], "dev");
    assert_eq!(v["subpackages"][1]["func"], "doc");
    assert_eq!(
        v["packages"],
        serde_json::json!([
            "libgreet-1.0.0-r0.apk",
            "libgreet-dev-1.0.0-r0.apk",
            "libgreet-doc-1.0.0-r0.apk"
        ])
    );
    apkbuild(home.path())
        .arg("info")
        .arg(tree.join("main/hello-sh"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("install=\"hello-sh.pre-install\"")
                .and(predicate::str::contains("hello-sh-0.3-r1.apk")),
        );
}

#[test]
fn checksum_rewrites_sha512sums_so_the_build_passes() {
    let home = testkit::tempdir();
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}source=\"data.txt\"\npackage() {{ install -Dm644 \"$srcdir\"/data.txt \"$pkgdir\"/usr/share/bad/data.txt; }}\nsha512sums=\"\n{}  data.txt\n\"\n",
            "ab".repeat(64)
        ),
        &[("data.txt", b"x\n")],
    );
    apkbuild(home.path())
        .arg("checksum")
        .arg(&dir)
        .assert()
        .success();
    let text = fs_err::read_to_string(dir.join("APKBUILD")).unwrap();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(b"x\n"))
    };
    assert!(
        text.ends_with(&format!("sha512sums=\"\n{sum}  data.txt\n\"\n")),
        "{text}"
    );
    assert_eq!(text.matches("sha512sums=").count(), 1, "{text}");
    let mut cmd = apkbuild(home.path());
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .args(sandbox_flag());
    cmd.assert()
        .success()
        .stdout(predicate::str::contains("bad-1.0-r0.apk"));
}

#[test]
fn missing_sandbox_is_explained_before_any_phase_runs() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    // No bwrap on this PATH: the preflight must say what is missing and how to proceed.
    apkbuild(home.path())
        .env("PATH", "/nonexistent")
        .arg("build")
        .arg(tree.join("main/motd"))
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("`bwrap` is not installed")
                .and(predicate::str::contains("--no-sandbox")),
        );
}

#[test]
fn sandbox_keeps_the_recipe_directory_read_only_and_package_runs_as_root() {
    if sandbox_flag().is_some() {
        eprintln!("SKIPPED: bwrap cannot create a user namespace here");
        return;
    }
    fails_leaving_repo_unchanged(
        "write outside",
        &format!(
            "{HEAD}build() {{ touch \"$startdir\"/written-by-build; }}\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"
        ),
        &[],
        "build() failed",
    );
    let home = testkit::tempdir();
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}package() {{ mkdir -p \"$pkgdir\"/etc; echo x > \"$pkgdir\"/etc/x; chown 0:0 \"$pkgdir\"/etc/x; [ \"$(id -u)\" = 0 ]; }}\n"
        ),
        &[],
    );
    apkbuild(home.path())
        .arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .assert()
        .success();
}

/// Serves `body` for `requests` HTTP requests on 127.0.0.1, then closes the port.
fn serve(body: Vec<u8>, requests: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            seen.push(line.trim().to_string());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
        }
        seen
    });
    (port, handle)
}

#[test]
fn http_sources_are_downloaded_renamed_and_served_from_the_source_cache() {
    let home = testkit::tempdir();
    // An upstream tarball `web-1.0/hello.txt`.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("web-1.0/hello.txt").unwrap();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, &b"hello\n"[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    let body = gz.finish().unwrap();
    let (port, server) = serve(body, 2);
    let text = |rel: u32| {
        format!(
            "pkgname=web\npkgver=1.0\npkgrel={rel}\npkgdesc=\"w\"\nurl=\"https://example.org\"\narch=\"noarch\"\nlicense=\"MIT\"\n\
             source=\"web-$pkgver.tar.gz::http://127.0.0.1:{port}/dl/upstream.tar.gz\"\n\
             package() {{ install -Dm644 hello.txt \"$pkgdir\"/usr/share/web/hello.txt; }}\n"
        )
    };
    let dir = bad_recipe(home.path(), &text(0), &[]);
    apkbuild(home.path())
        .arg("checksum")
        .arg(&dir)
        .assert()
        .success();
    let sums = fs_err::read_to_string(dir.join("APKBUILD")).unwrap();
    assert!(sums.contains("  web-1.0.tar.gz\n"), "{sums}");
    let cache = home.path().join("cache");
    let build = || {
        let mut cmd = apkbuild(home.path());
        cmd.arg("build")
            .arg(&dir)
            .arg("--repodest")
            .arg(home.path().join("p"))
            .arg("--cache")
            .arg(&cache)
            .args(sandbox_flag());
        cmd.assert().success()
    };
    build().stdout(predicate::str::contains("web-1.0-r0.apk"));
    assert_eq!(
        server.join().unwrap(),
        ["GET /dl/upstream.tar.gz HTTP/1.1"; 2]
    );
    // The server is gone; a changed recipe still builds from the source cache.
    let block = &sums[sums.find("sha512sums=").unwrap()..];
    fs_err::write(dir.join("APKBUILD"), format!("{}{block}", text(1))).unwrap();
    build()
        .stderr(predicate::str::contains(
            "web-1.0.tar.gz: from the source cache",
        ))
        .stdout(predicate::str::contains("web-1.0-r1.apk"));
}

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
fn network_is_off_in_the_sandbox_unless_options_net() {
    if sandbox_flag().is_some() || !Path::new("/bin/bash").exists() {
        eprintln!("SKIPPED: needs bwrap with user namespaces and /bin/bash");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recipe = |options: &str| {
        format!(
            "{HEAD}options=\"{options}\"\nbuild() {{ /bin/bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}'; }}\n\
             package() {{ mkdir -p \"$pkgdir\"; }}\n"
        )
    };
    fails_leaving_repo_unchanged("no net", &recipe(""), &[], "build() failed");
    let home = testkit::tempdir();
    let dir = bad_recipe(home.path(), &recipe("net"), &[]);
    apkbuild(home.path())
        .arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .assert()
        .success();
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

/// A zip of `files` (relative paths under a temporary root) made by Info-ZIP's `zip -y`.
fn make_zip(home: &Path, files: &[(&str, &str)], link: Option<(&str, &str)>) -> Vec<u8> {
    let root = home.join("zip-src");
    for (p, content) in files {
        let p = root.join(p);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, content).unwrap();
    }
    if let Some((l, t)) = link {
        std::os::unix::fs::symlink(t, root.join(l)).unwrap();
    }
    let out = home.join("made.zip");
    let st = std::process::Command::new("zip")
        .current_dir(&root)
        .args(["-q", "-r", "-y", "-X"])
        .arg(&out)
        .arg(".")
        .status()
        .expect("zip (installed by ci/setup)");
    assert!(st.success());
    fs_err::read(out).unwrap()
}

#[test]
fn zip_sources_unpack_and_escaping_entries_are_refused() {
    let home = testkit::tempdir();
    let big = "deflate me ".repeat(2000);
    let zip = make_zip(
        home.path(),
        &[("bad-1.0/doc/a.txt", "zipped\n"), ("bad-1.0/big.txt", &big)],
        Some(("bad-1.0/link", "doc/a.txt")),
    );
    assert!(zip.len() < big.len() / 4, "big.txt is deflated");
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&zip))
    };
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}source=\"src.zip\"\npackage() {{ [ -L link ]; [ $(wc -c < big.txt) = 22000 ]; install -Dm644 link \"$pkgdir\"/usr/share/bad/a.txt; }}\nsha512sums=\"{sum}  src.zip\"\n"
        ),
        &[("src.zip", &zip)],
    );
    let mut cmd = apkbuild(home.path());
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .args(sandbox_flag());
    cmd.assert().success();

    // The same archive with the member renamed `../…` (same length, so offsets hold).
    let other = testkit::tempdir();
    let zip = make_zip(other.path(), &[("xx/evil.txt", "x\n")], None);
    let mut evil = zip.clone();
    let needle = b"xx/evil.txt";
    let mut i = 0;
    while let Some(p) = evil[i..].windows(needle.len()).position(|w| w == needle) {
        evil[i + p..i + p + 3].copy_from_slice(b"../");
        i += p + needle.len();
    }
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&evil))
    };
    fails_leaving_repo_unchanged(
        "zip dotdot",
        &format!(
            "{HEAD}source=\"evil.zip\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{sum}  evil.zip\"\n"
        ),
        &[("evil.zip", &evil)],
        "refusing to unpack `evil.zip`: entry `../evil.txt` leaves the source directory",
    );
}
