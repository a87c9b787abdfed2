//! The example tree: it builds, verifies, resolves, reproduces; graph, info, checksum.

use super::*;
use predicates::prelude::*;

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

    assert_eq!(
        resolve_world(&index.index, &["cmd:greet", "cmd:hello-sh"]),
        ["base-system", "greet", "hello-sh", "libgreet"]
    );
}

/// The names a world of `atoms` installs from `index`. The base system (libc and /bin/sh)
/// is what an image's base layer provides.
fn resolve_world(index: &apk::index::ApkIndex, atoms: &[&str]) -> Vec<String> {
    let get = |n: &str| index.packages.iter().find(|e| e.name == n).unwrap();
    let candidate = |e: &apk::index::IndexEntry| apk::resolve::Candidate {
        name: e.name.clone(),
        version: e.version.clone(),
        depends: e.depends.iter().map(|d| d.parse().unwrap()).collect(),
        provides: e.provides.iter().map(|p| p.parse().unwrap()).collect(),
        provider_priority: e.provider_priority,
        install_if: e.install_if.iter().map(|d| d.parse().unwrap()).collect(),
        repo_priority: 0,
    };
    let mut candidates: Vec<_> = index.packages.iter().map(candidate).collect();
    let base = apk::index::IndexEntry {
        name: "base-system".into(),
        version: "1-r0".into(),
        provides: vec!["so:libc.so.6=6".into(), "/bin/sh".into()],
        depends: Vec::new(),
        install_if: Vec::new(),
        ..get("motd").clone()
    };
    candidates.push(candidate(&base));
    let world: Vec<apk::dep::Dependency> = atoms.iter().map(|a| a.parse().unwrap()).collect();
    let res = apk::resolve::resolve(&candidates, &[], &world).unwrap();
    let mut names: Vec<String> = res
        .install
        .iter()
        .map(|&i| candidates[i].name.clone())
        .collect();
    names.sort_unstable();
    names
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
    assert_eq!(a.len(), 8, "seven packages and the index");
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
        .stdout(
            "main/hello-server\nmain/hello-sh\nmain/libgreet\nmain/greet: libgreet\nmain/motd\n",
        );
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
    let v = info_json(home.path(), &tree.join("main/libgreet"));
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
fn so_names_order_the_tree_once_the_repository_knows_them() {
    let home = testkit::tempdir();
    let tree = examples(home.path());
    let repodest = home.path().join("packages");
    build_all(home.path(), &tree, &repodest, &["--no-cache"]).success();
    // A recipe that names only the soname it links against.
    let dir = tree.join("main/greet2");
    fs_err::create_dir_all(&dir).unwrap();
    let apkbuild_text = fs_err::read_to_string(tree.join("main/greet/APKBUILD"))
        .unwrap()
        .replace("pkgname=greet", "pkgname=greet2")
        .replace(
            "makedepends=\"libgreet-dev\"",
            "makedepends=\"so:libgreet.so.1 pc:greet\"",
        )
        .replace("\"$pkgdir\"/usr/bin/greet", "\"$pkgdir\"/usr/bin/greet2");
    fs_err::write(dir.join("APKBUILD"), apkbuild_text).unwrap();
    fs_err::copy(tree.join("main/greet/greet.c"), dir.join("greet.c")).unwrap();
    apkbuild(home.path())
        .arg("graph")
        .arg(&tree)
        .arg("--repodest")
        .arg(&repodest)
        .assert()
        .success()
        .stdout(predicate::str::contains("main/greet2: libgreet\n"));
    build_all(
        home.path(),
        &tree.join("main/greet2"),
        &repodest,
        &["--no-cache"],
    )
    .success()
    .stderr(predicate::str::contains(
        "build dependencies from the repository: libgreet-1.0.0-r0 libgreet-dev-1.0.0-r0",
    ));
}

#[test]
fn a_dependency_cycle_is_named() {
    let home = testkit::tempdir();
    for (a, b) in [("aa", "bb"), ("bb", "aa")] {
        let dir = home.path().join("t/main").join(a);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(
            dir.join("APKBUILD"),
            HEAD.replace("pkgname=bad", &format!("pkgname={a}"))
                + &format!("makedepends=\"{b}\"\n"),
        )
        .unwrap();
    }
    apkbuild(home.path())
        .arg("graph")
        .arg(home.path().join("t"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("dependency cycle among aa, bb"));
}
