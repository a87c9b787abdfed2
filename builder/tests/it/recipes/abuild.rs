//! Issue 12: recipes evaluate and build as abuild 3.17 does. `toolbox` (in
//! `tests/recipes`) uses most constructs at once and is built once for this binary; the
//! tests below each check one construct in what it produced. Smaller recipes of their own
//! cover what must fail or warn.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use apk::package::Package;
use predicates::prelude::*;

use super::*;

const VER: &str = "1.2.3_rc1-r0";

/// The toolbox recipe built once: its repository.
struct Toolbox {
    _home: tempfile::TempDir,
    repodest: PathBuf,
    stderr: String,
}

fn toolbox() -> &'static Toolbox {
    static BUILT: OnceLock<Toolbox> = OnceLock::new();
    BUILT.get_or_init(|| {
        let home = testkit::tempdir();
        let tree = copy_dir(&test_recipes(), &home.path().join("recipes"));
        let repodest = home.path().join("packages");
        let out = build_all(
            home.path(),
            &tree.join("main/toolbox"),
            &repodest,
            &["--no-cache"],
        )
        .success()
        .get_output()
        .clone();
        Toolbox {
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            _home: home,
            repodest,
        }
    })
}

/// A package of the toolbox build.
fn pkg(name: &str) -> Package {
    let path = arch_dir(&toolbox().repodest).join(format!("{name}-{VER}.apk"));
    Package::open(&path, Default::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn paths(p: &Package) -> Vec<String> {
    p.files
        .iter()
        .filter(|f| f.entry.kind != apk::tar::EntryType::Dir)
        .map(|f| f.entry.path.clone())
        .collect()
}

/// `key=value` lines the recipe's package() wrote about its shell.
fn recorded_vars() -> BTreeMap<String, String> {
    let dir = testkit::tempdir();
    let p = arch_dir(&toolbox().repodest).join(format!("toolbox-{VER}.apk"));
    let root = apk::rootfs::RootDir::open(dir.path()).unwrap();
    let input = std::io::BufReader::new(fs_err::File::open(p).unwrap());
    apk::package::extract(input, &root, &Default::default(), Default::default()).unwrap();
    fs_err::read_to_string(dir.path().join("usr/share/toolbox/vars"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn issue12_recipes_run_under_busybox_ash() {
    let vars = recorded_vars();
    assert!(vars["shell"].ends_with("busybox"), "{vars:?}");
    // ${var//pat/rep}, ${var/pat/rep}, ${var:off:len} at the top level and in build()
    assert_eq!(vars["_dashed"], "1-2-3_rc1");
    assert_eq!(vars["_upper"], "1.2.3-RC1");
    assert_eq!(vars["_major"], "1");
    assert_eq!(vars["version"], "1_2_3_rc1");
}

#[test]
fn issue12_variables_abuild_sets() {
    let vars = recorded_vars();
    let arch = std::env::consts::ARCH;
    let triplet = format!("{arch}-alpine-linux-musl");
    for (k, v) in [
        ("CARCH", arch),
        ("CBUILD", &triplet),
        ("CHOST", &triplet),
        ("CTARGET", &triplet),
        ("CBUILD_ARCH", arch),
        ("CTARGET_ARCH", arch),
        ("CLIBC", "musl"),
        ("pkgarch", arch),
        ("repo", "main"),
    ] {
        assert_eq!(vars[k], v, "{k}");
    }
}

#[test]
fn issue12_subpackage_arches_follow_subpkg_set_and_noarch_lands_in_the_build_arch() {
    let arch = std::env::consts::ARCH;
    for (name, want) in [
        ("toolbox", arch),
        ("toolbox-dbg", arch),
        ("toolbox-dev", arch),
        ("toolbox-libs", arch),
        ("toolbox-moved", arch),
        ("toolbox-doc", "noarch"),
        ("toolbox-openrc", "noarch"),
        ("toolbox-bash-completion", "noarch"),
        ("toolbox-zsh-completion", "noarch"),
        ("toolbox-fish-completion", "noarch"),
        ("toolbox-lang", "noarch"),
        ("toolbox-pyc", "noarch"),
        ("toolbox-nftrules", "noarch"),
        ("toolbox-systemd", "noarch"),
        ("toolbox-udev", "noarch"),
        ("toolbox-data", "noarch"),
        ("toolbox-arch", arch),
    ] {
        assert_eq!(pkg(name).info.arch, want, "{name}");
    }
    // abuild's index rewrites noarch to the folder's arch.
    let index =
        apk::index::SignedIndex::open(&arch_dir(&toolbox().repodest).join("APKINDEX.tar.gz"))
            .unwrap();
    let doc = index
        .index
        .packages
        .iter()
        .find(|e| e.name == "toolbox-doc");
    assert_eq!(doc.unwrap().arch, arch);
}

#[test]
fn issue12_info_reports_subpackage_arches() {
    let home = testkit::tempdir();
    let tree = copy_dir(&test_recipes(), &home.path().join("recipes"));
    let v = info_json(home.path(), &tree.join("main/toolbox"));
    let arch_of = |n: &str| {
        v["subpackages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .map(|s| s["arch"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(arch_of("toolbox-doc"), "noarch");
    assert_eq!(arch_of("toolbox-bash-completion"), "noarch");
    assert_eq!(arch_of("toolbox-arch"), std::env::consts::ARCH);
    assert_eq!(arch_of("toolbox-data"), "noarch");
    assert_eq!(v["maintainer"], "Old Style <old@example.org>");
}

#[test]
fn issue12_default_openrc_moves_init_d_without_conf_d() {
    assert_eq!(paths(&pkg("toolbox-openrc")), ["etc/init.d/toolbox"]);
    assert!(!paths(&pkg("toolbox")).iter().any(|p| p.starts_with("etc")));
    assert_eq!(
        pkg("toolbox-openrc").info.install_if,
        ["openrc", &format!("toolbox={VER}")]
    );
}

#[test]
fn issue12_amove_moves_every_pattern_that_exists() {
    // globs, leading slashes and a name with a space moved; the missing pattern made
    // amove return 1 (the recipe checks that) without stopping the others.
    assert_eq!(
        paths(&pkg("toolbox-moved")),
        [
            "usr/share/toolbox/move/a",
            "usr/share/toolbox/move/b",
            "usr/share/toolbox/with space"
        ]
    );
}

#[test]
fn issue12_default_split_functions_file_for_file() {
    let expect: &[(&str, &[&str])] = &[
        (
            "toolbox-doc",
            &[
                "usr/share/doc/toolbox/README",
                "usr/share/man/man1/tb-hard.1.gz",
                "usr/share/man/man1/tb-sym.1.gz",
                "usr/share/man/man1/tb.1.gz",
            ],
        ),
        (
            "toolbox-dev",
            &[
                "usr/include/tb.h",
                "usr/lib/libtb.so",
                "usr/lib/pkgconfig/tb.pc",
            ],
        ),
        ("toolbox-libs", &["usr/lib/libtb.so.1.2"]),
        (
            "toolbox-bash-completion",
            &["usr/share/bash-completion/completions/tb"],
        ),
        (
            "toolbox-zsh-completion",
            &["usr/share/zsh/site-functions/_tb"],
        ),
        (
            "toolbox-fish-completion",
            &["usr/share/fish/vendor_completions.d/tb.fish"],
        ),
        ("toolbox-lang", &["usr/share/locale/de/LC_MESSAGES/tb.mo"]),
        (
            "toolbox-pyc",
            &["usr/lib/python3.12/site-packages/tbmod/__pycache__/x.pyc"],
        ),
        ("toolbox-nftrules", &["usr/share/nftables.avail/tb.nft"]),
        ("toolbox-systemd", &["usr/lib/systemd/system/tb.service"]),
        ("toolbox-udev", &["usr/lib/udev/rules.d/60-tb.rules"]),
        ("toolbox-data", &["usr/share/toolbox/data.txt"]),
        ("toolbox-arch", &["usr/libexec/toolbox/arch-tool"]),
    ];
    for (name, files) in expect {
        assert_eq!(paths(&pkg(name)), *files, "{name}");
    }
    // Man pages: the page compressed once, its symlink and hard link point at it.
    let doc = pkg("toolbox-doc");
    let link = |p: &str| {
        doc.files
            .iter()
            .find(|f| f.entry.path == p)
            .map(|f| f.entry.link.clone())
            .unwrap()
    };
    assert_eq!(link("usr/share/man/man1/tb-sym.1.gz"), "tb.1.gz");
    assert_eq!(link("usr/share/man/man1/tb.1.gz"), "tb-hard.1.gz");
    // What is left in the main package.
    assert_eq!(
        paths(&pkg("toolbox")),
        [
            "usr/bin/tb",
            "usr/lib/python3.12/site-packages/tbmod/__init__.py",
            "usr/lib/python3.12/site-packages/tbsingle.py",
            "usr/lib/toolbox/libplug.so.3",
            "usr/share/toolbox/vars",
        ]
    );
}

#[test]
fn issue12_split_functions_set_descriptions_and_install_if() {
    let ver = format!("toolbox={VER}");
    for (name, desc, install_if) in [
        (
            "toolbox-doc",
            "A box of tools for testing (1-2-3_rc1) (documentation)",
            vec!["docs".to_string(), ver.clone()],
        ),
        (
            "toolbox-bash-completion",
            "Bash completions for toolbox",
            vec![ver.clone(), "bash-completion".into()],
        ),
        (
            "toolbox-zsh-completion",
            "Zsh completions for toolbox",
            vec![ver.clone(), "zsh".into()],
        ),
        (
            "toolbox-lang",
            "Languages for package toolbox",
            vec![ver.clone(), "lang".into()],
        ),
        (
            "toolbox-pyc",
            "Precompiled Python bytecode for toolbox",
            vec![ver.clone(), "pyc".into()],
        ),
        (
            "toolbox-nftrules",
            "A box of tools for testing (1-2-3_rc1) (nftables ruleset)",
            vec!["nftables-rulesets".into(), ver.clone()],
        ),
        (
            "toolbox-systemd",
            "A box of tools for testing (1-2-3_rc1) (systemd files)",
            vec!["systemd".into(), ver.clone()],
        ),
        (
            "toolbox-udev",
            "A box of tools for testing (1-2-3_rc1) (udev rules)",
            vec!["udev".into(), ver.clone()],
        ),
    ] {
        let p = pkg(name);
        assert_eq!(p.info.pkgdesc, desc, "{name}");
        assert_eq!(p.info.install_if, install_if, "{name}");
    }
}

#[test]
fn issue12_default_dbg_splits_debug_symbols_pinned_to_the_version() {
    let dbg = pkg("toolbox-dbg");
    assert_eq!(
        paths(&dbg),
        [
            "usr/lib/debug/usr/bin/tb.debug",
            "usr/lib/debug/usr/lib/libtb.so.1.2.debug",
            "usr/lib/debug/usr/lib/toolbox/libplug.so.3.debug",
            "usr/lib/debug/usr/libexec/toolbox/arch-tool.debug",
        ]
    );
    for other in ["toolbox", "toolbox-libs", "toolbox-arch"] {
        assert!(dbg.info.depends.contains(&format!("!{other}<{VER}")));
        assert!(dbg.info.depends.contains(&format!("!{other}>{VER}")));
    }
}

#[test]
fn issue12_package_variables_reach_the_main_package_only() {
    // package() added toolbox-extra to depends; subpackages are split in a fresh shell.
    assert!(
        pkg("toolbox")
            .info
            .depends
            .contains(&"toolbox-extra".into())
    );
    let arch = pkg("toolbox-arch").info;
    assert!(arch.depends.contains(&"busybox".into()));
    assert!(!arch.depends.contains(&"toolbox-extra".into()));
    // provides and install_if are cleared before a split function (abuild's pre_split).
    assert!(
        arch.provides.is_empty() && arch.install_if.is_empty(),
        "{arch:?}"
    );
    let main = pkg("toolbox").info;
    assert!(main.provides.contains(&format!("tb={VER}")));
    assert_eq!(main.install_if, ["tb-wanted"]);
    assert_eq!(main.replaces, ["oldbox"]);
    assert_eq!(
        (main.provider_priority, main.replaces_priority),
        (Some(10), Some(5))
    );
    // abuild writes `$(echo $license)`: a multi-line license on one line.
    assert_eq!(main.license, "MIT AND BSD-2-Clause");
    assert_eq!(main.maintainer, "Old Style <old@example.org>");
}

#[test]
fn issue12_tracing_honours_sonameprefix_ldpath_pcprefix_python_and_per_package_options() {
    let main = pkg("toolbox").info;
    assert!(main.provides.contains(&"so:toolbox:libplug.so.3=3".into()));
    // somask="libm.so.6": linked, but no dependency on it.
    assert!(
        !main.depends.iter().any(|d| d.starts_with("so:libm")),
        "{main:?}"
    );
    assert!(main.depends.contains(&"so:toolbox:libtb.so.1".into()));
    assert!(main.provides.contains(&format!("py3.12:tbmod={VER}")));
    assert!(main.provides.contains(&format!("py3.12:tbsingle={VER}")));
    assert!(main.depends.contains(&"python3~3.12".into()));
    let libs = pkg("toolbox-libs").info;
    assert_eq!(libs.provides, ["so:toolbox:libtb.so.1=1.2"]);
    let dev = pkg("toolbox-dev").info;
    for p in ["pc:tb=1.2_rc1", "pc:tbx=2.0"] {
        assert!(dev.provides.contains(&p.into()), "{dev:?}");
    }
    for d in [
        "toolbox-libs",
        "pc:zlib>=1.2.3_beta1",
        "pc:libfoo",
        "pkgconfig",
    ] {
        assert!(dev.depends.contains(&d.into()), "{dev:?}");
    }
    // options="toolbox-arch::!tracedeps": nothing traced for that subpackage only.
    let arch = pkg("toolbox-arch").info;
    assert!(
        !arch.depends.iter().any(|d| d.starts_with("so:")),
        "{arch:?}"
    );
    assert!(arch.provides.is_empty());
}

#[test]
fn issue12_pcprefix_names_provided_and_sibling_pkg_config_modules() {
    let home = testkit::tempdir();
    let pc = |name: &str, req: &str| {
        format!(
            "mkdir -p \"$1\"/usr/lib/pkgconfig; printf 'Name: {name}\\nVersion: 1.0\\nRequires: {req}\\n' > \"$1\"/usr/lib/pkgconfig/{name}.pc"
        )
    };
    let text = format!(
        "{HEAD}pcprefix=\"bad:\"\nsubpackages=\"$pkgname-b:_b\"\n\
         _pc() {{ {}; }}\n_pcb() {{ {}; }}\n\
         package() {{ _pc \"$pkgdir\"; }}\n_b() {{ _pcb \"$subpkgdir\"; }}\n",
        pc("a", "b >= 1.0, zlib"),
        pc("b", "")
    );
    build_one(home.path(), &text, &[]).success();
    let a = built(home.path(), "bad-1.0-r0.apk").info;
    assert!(a.provides.contains(&"pc:bad:a=1.0".into()), "{a:?}");
    assert!(a.depends.contains(&"pc:bad:b>=1.0".into()), "{a:?}");
    assert!(a.depends.contains(&"pc:zlib".into()), "{a:?}");
    let b = built(home.path(), "bad-b-1.0-r0.apk").info;
    assert!(b.provides.contains(&"pc:bad:b=1.0".into()), "{b:?}");
}

#[test]
fn issue12_the_build_reports_postcheck_warnings() {
    // The main package keeps nothing abuild warns about; the log names the phases.
    assert!(toolbox().stderr.contains("toolbox: _moved()"));
}

// --- small recipes of their own ---------------------------------------------------------

#[test]
fn issue12_maintainer_variable_of_newer_recipes() {
    let home = testkit::tempdir();
    let text = format!(
        "{HEAD}maintainer=\"New Style <new@example.org>\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"
    );
    build_one(home.path(), &text, &[]).success();
    assert_eq!(
        built(home.path(), "bad-1.0-r0.apk").info.maintainer,
        "New Style <new@example.org>"
    );
}

#[test]
fn issue12_legacy_checksums_show_in_info_and_sha256sums_verify() {
    let home = testkit::tempdir();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(b"x\n"))
    };
    let text = format!(
        "{HEAD}source=\"data.txt\"\npackage() {{ install -Dm644 \"$srcdir\"/data.txt \"$pkgdir\"/usr/share/bad/data.txt; }}\n\
         sha256sums=\"{sum}  data.txt\"\nmd5sums=\"401b30e3b8b5d629635a5c613cdb7919  data.txt\"\n"
    );
    build_one(home.path(), &text, &[("data.txt", b"x\n")])
        .success()
        .stderr(predicate::str::contains("found old (sha256) checksums"));
    let v = info_json(home.path(), &home.path().join("bad/main/bad"));
    assert_eq!(v["variables"]["sha256sums"], format!("{sum}  data.txt"));
    assert_eq!(
        v["variables"]["md5sums"],
        "401b30e3b8b5d629635a5c613cdb7919  data.txt"
    );
    assert_eq!(v["checksums"]["algorithm"], "sha256");
    // A wrong sha256 fails like a wrong sha512.
    let wrong = text.replace(&sum, &"ab".repeat(32));
    build_one(home.path(), &wrong, &[("data.txt", b"x\n")])
        .failure()
        .stderr(predicate::str::contains(
            "sha256 of `data.txt` does not match",
        ));
}

#[test]
fn issue12_a_recipe_without_arch_is_read_with_a_warning_and_not_built() {
    let home = testkit::tempdir();
    let text = HEAD.replace("arch=\"noarch\"\n", "") + "package() { mkdir -p \"$pkgdir\"; }\n";
    let dir = bad_recipe(home.path(), &text, &[]);
    apkbuild(home.path())
        .arg("info")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "arch: {}",
            std::env::consts::ARCH
        )))
        .stderr(predicate::str::contains("arch is empty"));
    build_one(home.path(), &text, &[])
        .success()
        .stdout(predicate::str::contains("skipped bad"));
}

#[test]
fn issue12_sourcing_stops_at_a_failing_command_as_under_set_e() {
    let home = testkit::tempdir();
    let dir = bad_recipe(
        home.path(),
        &format!("{HEAD}false\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"),
        &[],
    );
    apkbuild(home.path())
        .arg("info")
        .arg(&dir)
        .assert()
        .failure()
        .stderr(predicate::str::contains("sources recipes under `set -e`"));
}

#[test]
fn issue12_validate_refuses_what_abuild_refuses() {
    let cases: &[(&str, &str)] = &[
        (
            "depend=\"foo\"\n",
            "APKBUILD contains 'depend'. It should be 'depends'",
        ),
        ("depends=\"foo=bar\"\n", "Invalid version: bar"),
        ("provides=\"bad=1.0\"\n", "provides must not contain bad"),
        (
            "install=\"bad.post-instal\"\n",
            "unknown install script suffix",
        ),
        ("triggers=\"bad.trigger\"\n", "triggers must contain '='"),
        ("pkgdesc=\"\"\n", "missing pkgdesc"),
        (
            "subpackages=\"bad-x\"\n",
            "split function x() is not defined",
        ),
        ("# Maintainer: Someone\n", "is not a valid rfc822 address"),
    ];
    for (line, expect) in cases {
        let home = testkit::tempdir();
        let text = format!("{line}{HEAD}package() {{ mkdir -p \"$pkgdir\"; }}\n");
        // The variable line goes after HEAD so that it overrides it.
        let text = if line.starts_with('#') {
            text
        } else {
            format!("{HEAD}{line}package() {{ mkdir -p \"$pkgdir\"; }}\n")
        };
        build_one(home.path(), &text, &[])
            .failure()
            .stderr(predicate::str::contains(*expect));
    }
}

/// A package() that abuild refuses, refused with `expect`, and accepted with `option`.
fn refused_unless(package: &str, option: &str, expect: &str) {
    let home = testkit::tempdir();
    let text = |opt: &str| format!("{HEAD}options=\"!strip {opt}\"\npackage() {{ {package}; }}\n");
    build_one(home.path(), &text(""), &[])
        .failure()
        .stderr(predicate::str::contains(expect));
    build_one(home.path(), &text(option), &[]).success();
}

#[test]
fn issue12_postcheck_refuses_non_fhs_paths_unless_options_fhs() {
    refused_unless(
        "install -Dm644 /dev/null \"$pkgdir\"/usr/local/share/x",
        "!fhs",
        "Packages must not put anything under /usr/local",
    );
}

#[test]
fn issue12_postcheck_refuses_lib64_and_suid_unless_options_say_so() {
    refused_unless(
        "install -Dm644 /dev/null \"$pkgdir\"/usr/lib64/x",
        "lib64",
        "Packages must not put anything under /usr/lib64",
    );
    refused_unless(
        "install -Dm4755 /dev/null \"$pkgdir\"/usr/share/bad/x",
        "suid",
        "Found executable files with SUID bit set",
    );
}

#[test]
fn issue12_init_scripts_must_be_openrc_runscripts() {
    let home = testkit::tempdir();
    let script = b"#!/bin/sh\necho not openrc\n";
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(script))
    };
    let text = format!(
        "{HEAD}source=\"bad.initd\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{sum}  bad.initd\"\n"
    );
    build_one(home.path(), &text, &[("bad.initd", script)])
        .failure()
        .stderr(predicate::str::contains(
            "bad.initd is not an openrc #!/sbin/openrc-run script",
        ));
}

#[test]
fn issue12_archcheck_refuses_binaries_in_noarch() {
    refused_unless(
        "install -Dm755 /bin/true \"$pkgdir\"/usr/bin/t",
        "!archcheck",
        "Arch specific binaries found so arch must not be set to \"noarch\"",
    );
}

#[test]
fn issue12_a_split_function_that_moves_nothing_fails() {
    let home = testkit::tempdir();
    let text = format!(
        "{HEAD}subpackages=\"$pkgname-doc\"\npackage() {{ install -Dm644 /dev/null \"$pkgdir\"/usr/share/bad/x; }}\n"
    );
    build_one(home.path(), &text, &[])
        .failure()
        .stderr(predicate::str::contains("Missing subpkgdir for bad-doc"));
}

#[test]
fn issue12_split_function_setting_noarch_is_taken_with_a_warning() {
    let home = testkit::tempdir();
    let text = format!(
        "{}arch=\"all\"\nsubpackages=\"$pkgname-extra:_extra\"\n\
         package() {{ install -Dm644 /dev/null \"$pkgdir\"/usr/share/bad/x; }}\n\
         _extra() {{ arch=\"noarch\"; amove usr/share/bad; }}\n",
        HEAD.replace("arch=\"noarch\"\n", "")
    );
    build_one(home.path(), &text, &[])
        .success()
        .stderr(predicate::str::contains(
            "use subpackages=\"bad-extra::noarch\"",
        ));
    assert_eq!(
        built(home.path(), "bad-extra-1.0-r0.apk").info.arch,
        "noarch"
    );
}

#[test]
fn issue12_keepdirs_keeps_the_main_package_s_empty_directories() {
    let home = testkit::tempdir();
    let text = |opt: &str| {
        format!(
            "{HEAD}options=\"{opt}\"\nsubpackages=\"$pkgname-doc\"\n\
             package() {{ install -Dm644 /dev/null \"$pkgdir\"/usr/share/doc/bad/x; mkdir -p \"$pkgdir\"/usr/bin; }}\n"
        )
    };
    build_one(home.path(), &text(""), &[]).success();
    assert!(built(home.path(), "bad-1.0-r0.apk").files.is_empty());
    build_one(home.path(), &text("keepdirs"), &[]).success();
    let kept: Vec<String> = built(home.path(), "bad-1.0-r0.apk")
        .files
        .iter()
        .map(|f| f.entry.path.clone())
        .collect();
    assert_eq!(kept, ["usr", "usr/bin"]);
}

#[test]
fn issue12_a_recipe_s_own_unpack_runs_instead_of_ours() {
    let home = testkit::tempdir();
    let tarball = home.path().join("src.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            fs_err::File::create(&tarball).unwrap(),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        tar.append_data(&mut h, "bad-1.0/file", &b"hi\n"[..])
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let bytes = fs_err::read(&tarball).unwrap();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&bytes))
    };
    let text = format!(
        "{HEAD}source=\"src.tar.gz\"\nunpack() {{ default_unpack; touch \"$srcdir\"/unpacked-by-recipe; }}\n\
         package() {{ [ -e \"$srcdir\"/unpacked-by-recipe ]; install -Dm644 file \"$pkgdir\"/usr/share/bad/file; }}\n\
         sha512sums=\"{sum}  src.tar.gz\"\n"
    );
    build_one(home.path(), &text, &[("src.tar.gz", &bytes)])
        .success()
        .stderr(predicate::str::contains("bad: unpack()"));
}
