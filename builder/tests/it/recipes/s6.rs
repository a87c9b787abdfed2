//! The s6 recipes (issue 6): the host's s6, execline, skalibs and glibc repackaged, their
//! dependencies named by the tracer's `so:` names and all resolvable inside the repository,
//! and `s6-init` depending on `s6` and `execline` by name.

use super::*;

fn host_has(pkg: &str) -> bool {
    std::process::Command::new("dpkg")
        .args(["-s", pkg])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn issue6_s6_recipes_resolve_through_so_names_inside_the_repository() {
    if !(host_has("s6") && host_has("execline")) {
        eprintln!("SKIP: Debian's s6 and execline are not installed (ci/setup installs them)");
        return;
    }
    let home = testkit::tempdir();
    let repodest = home.path().join("packages");
    let s6 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../s6");
    build_all(home.path(), &s6, &repodest, &["--no-cache"]).success();
    let dir = arch_dir(&repodest);
    let index = apk::index::SignedIndex::open(&dir.join("APKINDEX.tar.gz")).unwrap();
    index.verify(&testkit::fixture_keyring()).unwrap();
    let pkgs = &index.index.packages;
    let get = |n: &str| pkgs.iter().find(|e| e.name == n).unwrap();
    assert_eq!(get("s6-init").depends, ["s6", "execline"]);
    let s6_deps = &get("s6").depends;
    for so in [
        "so:libc.so.6",
        "so:libskarnet.so.2.13",
        "so:libexecline.so.2.9",
    ] {
        assert!(s6_deps.contains(&so.to_string()), "{s6_deps:?}");
    }
    assert!(
        get("s6")
            .provides
            .iter()
            .any(|p| p.starts_with("cmd:s6-svscan="))
    );
    assert!(
        get("execline")
            .provides
            .iter()
            .any(|p| p.starts_with("cmd:execlineb="))
    );
    assert!(
        get("glibc")
            .provides
            .iter()
            .any(|p| p.starts_with("so:libc.so.6="))
    );
    // Every so: name any package needs is provided by a package of the repository.
    let provided: Vec<&str> = pkgs
        .iter()
        .flat_map(|e| e.provides.iter())
        .map(|p| p.split('=').next().unwrap())
        .collect();
    for e in pkgs {
        for d in e.depends.iter().filter(|d| d.starts_with("so:")) {
            assert!(provided.contains(&d.as_str()), "{}: {d} unresolved", e.name);
        }
    }
    // The helper is static: s6-init needs no C library package.
    assert!(!get("s6-init").depends.iter().any(|d| d.starts_with("so:")));
}
