//! The native installer (`apk::install`): real packages written and signed with the
//! fixture key, real signed indexes, installed into empty roots in temporary directories.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use apk::dep::Dependency;
use apk::install::{
    self, InstallError, InstallOptions, ScriptJob, ScriptKind, ScriptOutcome, ScriptRunner,
};
use testkit::repo::{Node, PkgSpec, RepoBuilder};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: RepoBuilder,
    outside: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = testkit::tempdir();
        let root = tmp.path().join("root");
        fs_err::create_dir_all(&root).unwrap();
        let outside = tmp.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(outside.join("canary"), "host file\n").unwrap();
        let repo = RepoBuilder::new(&tmp.path().join("repo"));
        Self {
            _tmp: tmp,
            root,
            repo,
            outside,
        }
    }

    fn opts(&self) -> InstallOptions<'static> {
        let mut o = InstallOptions::local();
        o.repositories.extra = vec![self.repo.dir.display().to_string()];
        o.repositories.keys_dir = Some(testkit::fixture("keys"));
        o.repositories.arch = Some("x86_64".into());
        o.source_date = testkit::repo::SOURCE_DATE;
        o
    }

    fn add(&self, atoms: &str) -> Result<install::InstallReport, InstallError> {
        self.add_with(atoms, &self.opts())
    }

    fn add_with(
        &self,
        atoms: &str,
        opts: &InstallOptions,
    ) -> Result<install::InstallReport, InstallError> {
        install::add(&self.root, &Dependency::parse_list(atoms).unwrap(), opts)
    }

    fn del(&self, names: &str) -> install::InstallReport {
        let names: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
        install::del(&self.root, &names, &self.opts()).unwrap()
    }

    fn read(&self, rel: &str) -> String {
        fs_err::read_to_string(self.root.join(rel)).unwrap()
    }

    fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).symlink_metadata().is_ok()
    }

    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs_err::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["canary"], "something was written outside the root");
        assert_eq!(
            fs_err::read_to_string(self.outside.join("canary")).unwrap(),
            "host file\n"
        );
    }
}

fn baselayout() -> PkgSpec {
    PkgSpec::new("alpine-baselayout", "3.6.5-r0")
        .file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102:nginx:/var/lib/nginx:/sbin/nologin\n",
        )
        .file("etc/group", "root:x:0:root\nnginx:x:102:nginx\n")
        .file("etc/hostname", "localhost\n")
        .node("tmp", Node::Dir(0o1777))
        .node("root", Node::Dir(0o700))
        .node("var/empty", Node::Dir(0o555))
}

fn musl() -> PkgSpec {
    PkgSpec::new("musl", "1.2.5-r0")
        .file("lib/ld-musl-x86_64.so.1", "\x7fELF musl loader\n")
        .node(
            "lib/libc.musl-x86_64.so.1",
            Node::Symlink("ld-musl-x86_64.so.1".into()),
        )
        .provides("so:libc.musl-x86_64.so.1=1")
}

fn busybox() -> PkgSpec {
    PkgSpec::new("busybox", "1.36.1-r29")
        .file("bin/busybox", "#!busybox binary\n")
        .node("bin/sh", Node::Symlink("/bin/busybox".into()))
        .node("bin/vi", Node::HardLink("bin/busybox".into()))
        .depends("so:libc.musl-x86_64.so.1")
        .provides("cmd:sh=1.36.1-r29 cmd:busybox=1.36.1-r29 /bin/sh")
        .script(
            ".post-install",
            "#!/bin/busybox sh\n/bin/busybox --install -s\n",
        )
}

fn base_env() -> Env {
    let mut env = Env::new();
    env.repo.add(&baselayout());
    env.repo.add(&musl());
    env.repo.add(&busybox());
    env
}

#[test]
fn scratch_root_gets_baselayout_and_busybox() {
    let env = base_env();
    env.repo.write_index(true);
    let report = env.add("alpine-baselayout busybox").unwrap();
    let names: Vec<&str> = report.installed.iter().map(|(n, _)| n.as_str()).collect();
    // Dependencies first: musl (so:) before busybox.
    assert!(
        names.iter().position(|n| *n == "musl") < names.iter().position(|n| *n == "busybox"),
        "{names:?}"
    );
    assert_eq!(names.len(), 3);
    assert_eq!(env.read("etc/apk/world"), "alpine-baselayout\nbusybox\n");
    assert_eq!(env.read("etc/hostname"), "localhost\n");
    assert_eq!(
        fs_err::read_link(env.root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let meta = |p: &str| fs_err::symlink_metadata(env.root.join(p)).unwrap();
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta("root").mode() & 0o7777, 0o700);
    assert_eq!(meta("bin/busybox").mode() & 0o7777, 0o755);
    assert_eq!(meta("bin/vi").ino(), meta("bin/busybox").ino());

    let installed = env.read("lib/apk/db/installed");
    assert!(installed.starts_with("C:Q1"), "{installed}");
    assert!(installed.contains("P:busybox\nV:1.36.1-r29\nA:x86_64\n"));
    assert!(installed.contains("F:tmp\nM:0:0:1777\n"), "{installed}");
    assert!(installed.contains("R:sh\na:0:0:777\nZ:Q1"), "{installed}");
    // Hard links carry the target's digest.
    let z = |name: &str| {
        let at = installed.find(&format!("R:{name}\n")).unwrap();
        installed[at..]
            .lines()
            .find(|l| l.starts_with("Z:"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(z("vi"), z("busybox"));
    // The db C: is the index's.
    let index_c = env
        .repo
        .index
        .packages
        .iter()
        .find(|e| e.name == "busybox")
        .unwrap()
        .checksum
        .to_string();
    assert!(installed.contains(&format!("C:{index_c}\nP:busybox")));
    // The script is kept for apk and was recorded as not run.
    let scripts = fs_err::read(env.root.join("lib/apk/db/scripts.tar")).unwrap();
    let name = format!("busybox-1.36.1-r29.{index_c}.post-install");
    assert!(scripts.windows(name.len()).any(|w| w == name.as_bytes()));
    assert!(
        report
            .scripts
            .iter()
            .any(|(p, k, o)| p == "busybox-1.36.1-r29"
                && *k == ScriptKind::PostInstall
                && matches!(o, ScriptOutcome::NotRun(_)))
    );
    assert_eq!(env.read("lib/apk/db/triggers"), "");
    assert_eq!(env.read("etc/apk/arch"), "x86_64\n");

    // Running it again changes nothing.
    let again = env.add("alpine-baselayout busybox").unwrap();
    assert!(again.is_noop(), "{again:?}");
    assert_eq!(env.read("lib/apk/db/installed"), installed);
}

#[test]
fn so_and_cmd_names_resolve_to_providers() {
    let env = base_env();
    env.repo.write_index(true);
    let report = env.add("cmd:sh").unwrap();
    let mut names: Vec<&str> = report.installed.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["busybox", "musl"]);
    assert_eq!(env.read("etc/apk/world"), "cmd:sh\n");
    let err = env.add("so:libmissing.so.1").unwrap_err().to_string();
    assert!(err.contains("so:libmissing.so.1"), "{err}");
    assert!(err.contains("world"), "{err}");
}

#[test]
fn owners_are_mapped_through_the_roots_passwd() {
    let mut env = base_env();
    let mut nginx = PkgSpec::new("nginx", "1.26.0-r0")
        .file("var/lib/nginx/html/index.html", "hello\n")
        .depends("alpine-baselayout");
    nginx.owners.push((
        "var/lib/nginx/html/index.html".into(),
        "nginx".into(),
        "nginx".into(),
    ));
    nginx.owners.push((
        "var/lib/nginx/html".into(),
        "nobody-here".into(),
        "nginx".into(),
    ));
    env.repo.add(&nginx);
    env.repo.write_index(true);
    env.add("nginx").unwrap();
    let installed = env.read("lib/apk/db/installed");
    // uname/gname resolved in the image (101/102), unknown names keep the numeric id (0).
    assert!(
        installed.contains("R:index.html\na:101:102:644\n"),
        "{installed}"
    );
    assert!(
        installed.contains("F:var/lib/nginx/html\nM:0:102:755\n"),
        "{installed}"
    );
    if rustix::process::geteuid().is_root() {
        let meta = fs_err::metadata(env.root.join("var/lib/nginx/html/index.html")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (101, 102));
    }
}

fn versions_env() -> Env {
    let mut env = Env::new();
    for v in ["1.0-r0", "1.2-r0", "2.0-r0"] {
        let mut spec = PkgSpec::new("foo", v).file("usr/bin/foo", &format!("foo {v}\n"));
        spec = if v == "1.0-r0" {
            spec.file("usr/share/foo/old.txt", "old\n")
                .file("usr/share/foo/shared.txt", "1\n")
                .file("usr/lib/foo-old/plugin", "p\n")
        } else {
            spec.file("usr/share/foo/new.txt", "new\n")
                .file("usr/share/foo/shared.txt", "2\n")
        };
        env.repo.add(&spec);
    }
    env.repo.write_index(true);
    env
}

#[test]
fn pins_select_versions() {
    let env = versions_env();
    env.add("foo=1.0-r0").unwrap();
    assert_eq!(env.read("usr/bin/foo"), "foo 1.0-r0\n");
    assert_eq!(env.read("etc/apk/world"), "foo=1.0-r0\n");
    let report = env.add("foo>=1.2").unwrap();
    assert_eq!(
        report.upgraded,
        [("foo".into(), "1.0-r0".into(), "2.0-r0".into())]
    );
    assert_eq!(env.read("usr/bin/foo"), "foo 2.0-r0\n");
    assert_eq!(env.read("etc/apk/world"), "foo>=1.2\n");
    let err = env.add("foo>=3").unwrap_err().to_string();
    assert!(err.contains("no such version"), "{err}");
    assert!(err.contains("2.0-r0"), "{err}");
}

#[test]
fn upgrade_removes_stale_files() {
    let env = versions_env();
    env.add("foo=1.0-r0").unwrap();
    assert!(env.exists("usr/share/foo/old.txt"));
    assert!(env.exists("usr/lib/foo-old/plugin"));
    env.add("foo=2.0-r0").unwrap();
    assert!(!env.exists("usr/share/foo/old.txt"));
    assert!(!env.exists("usr/lib/foo-old/plugin"));
    assert!(
        !env.exists("usr/lib/foo-old"),
        "the emptied directory goes too"
    );
    assert_eq!(env.read("usr/share/foo/shared.txt"), "2\n");
    assert_eq!(env.read("usr/share/foo/new.txt"), "new\n");
    let installed = env.read("lib/apk/db/installed");
    assert!(!installed.contains("old.txt"), "{installed}");
    assert_eq!(installed.matches("P:foo").count(), 1);
}

#[test]
fn del_removes_files_and_updates_world() {
    let mut env = base_env();
    env.repo.add(
        &PkgSpec::new("tool", "1.0-r0")
            .file("usr/bin/tool", "t\n")
            .depends("busybox"),
    );
    env.repo.write_index(true);
    env.add("alpine-baselayout tool").unwrap();
    assert!(env.exists("usr/bin/tool") && env.exists("bin/busybox"));
    let report = env.del("tool");
    let mut removed: Vec<&str> = report.removed.iter().map(|(n, _)| n.as_str()).collect();
    removed.sort_unstable();
    assert_eq!(removed, ["busybox", "musl", "tool"]);
    assert!(!env.exists("usr/bin/tool"));
    assert!(!env.exists("bin/busybox") && !env.exists("bin/sh"));
    assert!(
        !env.exists("usr/bin"),
        "directories no package lists any more go"
    );
    assert!(env.exists("etc/passwd"));
    assert_eq!(env.read("etc/apk/world"), "alpine-baselayout\n");
    let installed = env.read("lib/apk/db/installed");
    assert_eq!(installed.matches("\nP:").count(), 1, "{installed}");
    // A package still required stays, with a warning.
    env.add("busybox").unwrap();
    env.add("tool").unwrap();
    let report = env.del("busybox");
    assert!(report.removed.is_empty());
    assert!(report.warnings.iter().any(|w| w.contains("still required")));
    assert!(env.exists("bin/busybox"));
}

#[test]
fn del_on_a_root_without_database_fails_and_creates_nothing() {
    let env = Env::new();
    let err = install::del(&env.root, &["x".into()], &env.opts()).unwrap_err();
    assert!(matches!(err, InstallError::NoDatabase { .. }), "{err}");
    assert_eq!(fs_err::read_dir(&env.root).unwrap().count(), 0);
}

#[test]
fn virtual_packages_group_atoms_like_apk() {
    let mut env = base_env();
    env.repo
        .add(&PkgSpec::new("make", "4.4-r0").file("usr/bin/make", "m\n"));
    env.repo.write_index(true);
    let mut opts = env.opts();
    opts.virtual_name = Some(".build-deps".into());
    env.add_with("make busybox", &opts).unwrap();
    assert_eq!(env.read("etc/apk/world"), ".build-deps=20231114.221320\n");
    let installed = env.read("lib/apk/db/installed");
    assert!(
        installed.contains(
            "P:.build-deps\nV:20231114.221320\nA:noarch\nS:0\nI:0\nT:virtual meta package\nU:\nL:\nD:make busybox\n"
        ),
        "{installed}"
    );
    assert!(env.exists("usr/bin/make"));
    let report = env.del(".build-deps");
    assert_eq!(report.removed.len(), 4, "{report:?}");
    assert!(!env.exists("usr/bin/make"));
    assert_eq!(env.read("etc/apk/world"), "\n");
    assert_eq!(env.read("lib/apk/db/installed"), "");

    opts.virtual_name = Some(".x>1".into());
    assert!(matches!(
        env.add_with("make", &opts),
        Err(InstallError::BadAtom { .. })
    ));
}

#[test]
fn a_package_that_is_not_the_indexed_one_is_refused() {
    let mut env = versions_env();
    // Same name and version, different build: its control member (C:) differs.
    let (_, other) = env
        .repo
        .build(&PkgSpec::new("foo", "2.0-r0").file("usr/bin/foo", "trojan\n"));
    fs_err::write(env.repo.dir.join("x86_64/foo-2.0-r0.apk"), other).unwrap();
    let err = env.add("foo=2.0-r0").unwrap_err();
    assert!(matches!(err, InstallError::NotIndexed { .. }), "{err}");
    assert!(err.to_string().contains("is not the indexed one"), "{err}");
    assert!(!env.exists("usr/bin/foo"), "nothing of it was written");
    // As apk after a failed commit: the world keeps the request, the database has no foo.
    assert_eq!(env.read("etc/apk/world"), "foo=2.0-r0\n");
    assert!(!env.read("lib/apk/db/installed").contains("P:foo"));
}

#[test]
fn untrusted_indexes_are_refused() {
    let env = base_env();
    env.repo.write_index(false);
    let err = env.add("busybox").unwrap_err();
    assert!(matches!(err, InstallError::Untrusted { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&env.repo.dir.display().to_string())
    );
    // Signed, but by a key the root does not trust.
    env.repo.write_index(true);
    let empty_keys = env._tmp.path().join("nokeys");
    fs_err::create_dir_all(&empty_keys).unwrap();
    let mut opts = env.opts();
    opts.repositories.keys_dir = Some(empty_keys);
    let err = env.add_with("busybox", &opts).unwrap_err();
    assert!(err.to_string().contains("UNTRUSTED"), "{err}");
    assert!(!env.exists("bin/busybox"));
    // --allow-untrusted still checks packages against the index, and warns.
    opts.allow_untrusted = true;
    let report = env.add_with("busybox", &opts).unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("UNTRUSTED")));
}

#[test]
fn keys_and_repositories_come_from_the_root() {
    let env = base_env();
    env.repo.write_index(true);
    fs_err::create_dir_all(env.root.join("etc/apk/keys")).unwrap();
    fs_err::copy(
        testkit::fixture("keys/fixture-test-65a1b2c3.rsa.pub"),
        env.root.join("etc/apk/keys/fixture-test-65a1b2c3.rsa.pub"),
    )
    .unwrap();
    fs_err::write(
        env.root.join("etc/apk/repositories"),
        format!("# local\n\n{}\n", env.repo.dir.display()),
    )
    .unwrap();
    fs_err::write(env.root.join("etc/apk/arch"), "x86_64\n").unwrap();
    let opts = InstallOptions::local();
    env.add_with("busybox", &opts).unwrap();
    assert!(env.exists("bin/busybox"));
}

#[test]
fn file_conflicts_follow_apks_replaces_rules() {
    let mut env = Env::new();
    env.repo
        .add(&PkgSpec::new("a", "1-r0").file("usr/share/common", "a\n"));
    env.repo
        .add(&PkgSpec::new("b", "1-r0").file("usr/share/common", "b\n"));
    let mut c = PkgSpec::new("c", "1-r0").file("usr/share/common", "c\n");
    c.replaces.push("a".into());
    env.repo.add(&c);
    env.repo.write_index(true);
    env.add("a").unwrap();
    let err = env.add("b").unwrap_err();
    assert!(matches!(err, InstallError::FileConflict { .. }), "{err}");
    assert!(err.to_string().contains("owned by a-1-r0"), "{err}");
    assert_eq!(env.read("usr/share/common"), "a\n");
    // The failed request stays in the world, as apk leaves it; take it out to go on.
    env.del("b");
    env.add("c").unwrap();
    assert_eq!(env.read("usr/share/common"), "c\n");
    let installed = env.read("lib/apk/db/installed");
    assert_eq!(installed.matches("R:common").count(), 1, "{installed}");
    assert!(installed.contains("r:a\n"));
}

fn hostile(env: &mut Env, spec: &PkgSpec) -> InstallError {
    env.repo.add(spec);
    env.repo.write_index(true);
    let err = env.add(&spec.name).unwrap_err();
    env.assert_outside_untouched();
    assert!(
        !env.exists("usr/bin/before"),
        "partial files were left: {err}"
    );
    // The refused request stays in the world, as apk leaves it; the next one starts clean.
    env.del(&spec.name);
    err
}

#[test]
fn malicious_packages_are_refused_and_the_host_is_untouched() {
    let mut env = Env::new();
    let outside = env.outside.display().to_string();
    let dotdot = PkgSpec::new("dotdot", "1-r0")
        .file("usr/bin/before", "x\n")
        .file("usr/../../outside/pwned", "x\n");
    let err = hostile(&mut env, &dotdot);
    assert!(err.to_string().contains(".."), "{err}");

    let through = PkgSpec::new("through", "1-r0")
        .file("usr/bin/before", "x\n")
        .node("usr/evil", Node::Symlink(outside.clone()))
        .file("usr/evil/pwned", "x\n");
    let err = hostile(&mut env, &through);
    assert!(err.to_string().contains("symlink"), "{err}");

    // A symlink left by an earlier package: resolution stays inside the root.
    let planted = PkgSpec::new("planted", "1-r0").node("usr/lib/trap", Node::Symlink(outside));
    env.repo.add(&planted);
    let user = PkgSpec::new("user", "1-r0").file("usr/lib/trap/pwned", "x\n");
    env.repo.add(&user);
    env.repo.write_index(true);
    env.add("planted").unwrap();
    let _ = env.add("user");
    env.assert_outside_untouched();
    env.del("user");

    let absolute = PkgSpec::new("absolute", "1-r0")
        .file("usr/bin/before", "x\n")
        .file("/etc/evil", "x\n");
    let err = hostile(&mut env, &absolute);
    assert!(err.to_string().contains("absolute"), "{err}");

    let dev = PkgSpec::new("devnode", "1-r0")
        .file("usr/bin/before", "x\n")
        .node("usr/dev/mem", Node::CharDevice(1, 1));
    env.repo.add(&dev);
    env.repo.write_index(true);
    match env.add("devnode") {
        Err(err) => {
            assert!(err.to_string().contains("usr/dev/mem"), "{err}");
            assert!(!env.exists("usr/bin/before"));
        }
        Ok(_) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "skipped: this process may create device nodes (CAP_MKNOD), so the unprivileged refusal cannot be shown here"
                );
            }
        }
    }
    env.assert_outside_untouched();
}

/// Fails every script, as a broken `post-install` would.
struct FailingScripts;

impl ScriptRunner for FailingScripts {
    fn run(&self, job: &ScriptJob<'_>) -> ScriptOutcome {
        assert_eq!(job.args, ["1.36.1-r29"]);
        ScriptOutcome::Failed(format!("{} exited with status 1", job.exec_name()))
    }
}

#[test]
fn a_failing_script_marks_the_package_and_is_not_fatal() {
    let env = base_env();
    env.repo.write_index(true);
    let mut opts = env.opts();
    opts.scripts = &FailingScripts;
    let report = env.add_with("busybox", &opts).unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("post-install")));
    let installed = env.read("lib/apk/db/installed");
    assert!(installed.contains("f:s\n"), "{installed}");
}

#[test]
fn cache_holds_indexes_and_packages_under_apks_names() {
    let env = base_env();
    env.repo.write_index(true);
    let cache = env._tmp.path().join("cache");
    let mut opts = env.opts();
    let url = format!("file://{}", env.repo.dir.display());
    opts.repositories.extra = vec![url.clone()];
    opts.cache_dir = Some(cache.clone());
    env.add_with("busybox", &opts).unwrap();
    let index_url = format!("{url}/x86_64/APKINDEX.tar.gz");
    assert!(cache.join(install::index_cache_name(&index_url)).is_file());
    let bb = env
        .repo
        .index
        .packages
        .iter()
        .find(|e| e.name == "busybox")
        .unwrap();
    let cached = cache.join(install::package_cache_name(
        "busybox",
        "1.36.1-r29",
        &bb.checksum,
    ));
    assert!(cached.is_file());
    // A second root installs from the cache alone.
    fs_err::remove_dir_all(env.repo.dir.join("x86_64")).unwrap();
    let other = env._tmp.path().join("root2");
    fs_err::create_dir_all(&other).unwrap();
    install::add(&other, &Dependency::parse_list("busybox").unwrap(), &opts).unwrap();
    assert!(other.join("bin/busybox").is_file());
}

#[test]
fn the_fixture_world_gives_apks_own_database_byte_for_byte() {
    let tmp = testkit::tempdir();
    let root = tmp.path().join("root");
    fs_err::create_dir_all(&root).unwrap();
    let mut opts = InstallOptions::local();
    opts.repositories.extra = vec![testkit::fixture("repo").display().to_string()];
    opts.repositories.keys_dir = Some(testkit::fixture("keys"));
    opts.repositories.arch = Some("x86_64".into());
    install::add(&root, &Dependency::parse_list("world").unwrap(), &opts).unwrap();
    for (ours, theirs) in [
        ("lib/apk/db/installed", "installed"),
        ("lib/apk/db/scripts.tar", "scripts.tar"),
        ("lib/apk/db/triggers", "triggers"),
        ("etc/apk/world", "world"),
    ] {
        let ours_bytes = fs_err::read(root.join(ours)).unwrap();
        let theirs_bytes =
            fs_err::read(testkit::fixture(&format!("installed-db/{theirs}"))).unwrap();
        assert!(
            ours_bytes == theirs_bytes,
            "{ours} differs from apk's:\nours:\n{}\ntheirs:\n{}",
            String::from_utf8_lossy(&ours_bytes),
            String::from_utf8_lossy(&theirs_bytes)
        );
    }
}

#[test]
fn tagged_repositories_serve_only_pinned_names() {
    let env = base_env();
    env.repo.write_index(true);
    let mut edge = RepoBuilder::new(&env._tmp.path().join("edge"));
    edge.add(&PkgSpec::new("shiny", "0.1-r0").file("usr/bin/shiny", "s\n"));
    edge.add(&PkgSpec::new("other-arch", "1-r0").file("usr/bin/o", "o\n"));
    for e in &mut edge.index.packages {
        if e.name == "other-arch" {
            e.arch = "aarch64".into();
        }
    }
    edge.write_index(true);
    let mut opts = env.opts();
    opts.repositories
        .extra
        .push(format!("@edge {}", edge.dir.display()));
    let err = env.add_with("shiny", &opts).unwrap_err().to_string();
    assert!(err.contains("shiny"), "{err}");
    env.add_with("shiny@edge", &opts).unwrap();
    assert!(env.exists("usr/bin/shiny"));
    assert!(env.read("lib/apk/db/installed").contains("s:edge\n"));
    assert_eq!(env.read("etc/apk/world"), "shiny@edge\n");
    // A package of another architecture is never installable.
    assert!(env.add_with("other-arch@edge", &opts).is_err());
}

#[test]
fn xattrs_are_applied_and_recorded() {
    let mut env = Env::new();
    let mut spec = PkgSpec::new("caps", "1-r0").file("usr/bin/ping", "p\n");
    spec.xattrs.push((
        "usr/bin/ping".into(),
        "user.apk-test".into(),
        b"on".to_vec(),
    ));
    env.repo.add(&spec);
    env.repo.write_index(true);
    env.add("caps").unwrap();
    let installed = env.read("lib/apk/db/installed");
    let digest = apk::installed::xattr_digest(&[("user.apk-test".into(), b"on".to_vec())])
        .unwrap()
        .to_string();
    let mut value = [0u8; 8];
    match rustix::fs::getxattr(env.root.join("usr/bin/ping"), "user.apk-test", &mut value) {
        Ok(n) => {
            assert_eq!(&value[..n], b"on");
            assert!(
                installed.contains(&format!("R:ping\na:0:0:755:{digest}\n")),
                "{installed}"
            );
        }
        Err(e) => {
            // A filesystem without user xattrs: apk marks the package `f:x`, and so do we.
            assert!(installed.contains("f:x\n"), "{e}: {installed}");
        }
    }
}

#[test]
fn the_same_inputs_give_the_same_database_bytes() {
    let env = base_env();
    env.repo.write_index(true);
    let mut opts = env.opts();
    opts.virtual_name = Some(".deps".into());
    let roots: Vec<PathBuf> = (0..2)
        .map(|i| {
            let root = env._tmp.path().join(format!("repro{i}"));
            fs_err::create_dir_all(&root).unwrap();
            install::add(
                &root,
                &Dependency::parse_list("busybox alpine-baselayout").unwrap(),
                &opts,
            )
            .unwrap();
            root
        })
        .collect();
    for rel in [
        "lib/apk/db/installed",
        "lib/apk/db/scripts.tar",
        "lib/apk/db/triggers",
        "etc/apk/world",
        "bin/busybox",
    ] {
        assert_eq!(
            fs_err::read(roots[0].join(rel)).unwrap(),
            fs_err::read(roots[1].join(rel)).unwrap(),
            "{rel}"
        );
    }
}

/// Records what would run, in order, and reports success.
#[derive(Default)]
struct Recorder(std::cell::RefCell<Vec<String>>);

impl ScriptRunner for Recorder {
    fn run(&self, job: &ScriptJob<'_>) -> ScriptOutcome {
        assert!(job.script.starts_with(b"#!"));
        self.0
            .borrow_mut()
            .push(format!("{} {}", job.exec_name(), job.args.join(" ")));
        ScriptOutcome::Succeeded
    }
}

#[test]
fn scripts_and_triggers_run_in_apks_order_with_apks_arguments() {
    let mut env = Env::new();
    let mut fonts = PkgSpec::new("fontconfig", "2.15-r0")
        .file("usr/bin/fc-cache", "f\n")
        .script(".trigger", "#!/bin/sh\nfc-cache\n");
    fonts.triggers.push("/usr/share/fonts/*".into());
    env.repo.add(&fonts);
    for v in ["1.0-r0", "2.0-r0"] {
        env.repo.add(
            &PkgSpec::new("font-x", v)
                .file("usr/share/fonts/x/x.ttf", v)
                .script(".pre-install", "#!/bin/sh\n")
                .script(".post-install", "#!/bin/sh\n")
                .script(".pre-upgrade", "#!/bin/sh\n")
                .script(".post-upgrade", "#!/bin/sh\n")
                .script(".pre-deinstall", "#!/bin/sh\n")
                .script(".post-deinstall", "#!/bin/sh\n"),
        );
    }
    env.repo.write_index(true);
    let recorder = Recorder::default();
    let mut opts = env.opts();
    opts.scripts = &recorder;
    env.add_with("fontconfig font-x=1.0-r0", &opts).unwrap();
    env.add_with("font-x=2.0-r0", &opts).unwrap();
    let names: Vec<String> = ["font-x"].iter().map(|s| (*s).to_owned()).collect();
    install::del(&env.root, &names, &opts).unwrap();
    assert_eq!(
        recorder.0.borrow().as_slice(),
        [
            "font-x-1.0-r0.pre-install 1.0-r0",
            "font-x-1.0-r0.post-install 1.0-r0",
            "fontconfig-2.15-r0.trigger /usr/share/fonts/x",
            "font-x-2.0-r0.pre-upgrade 2.0-r0 1.0-r0",
            "font-x-2.0-r0.post-upgrade 2.0-r0 1.0-r0",
            "fontconfig-2.15-r0.trigger /usr/share/fonts/x",
            "font-x-2.0-r0.pre-deinstall 2.0-r0",
            "font-x-2.0-r0.post-deinstall 2.0-r0",
            "fontconfig-2.15-r0.trigger /usr/share/fonts/x",
        ]
    );
    let triggers = env.read("lib/apk/db/triggers");
    assert!(triggers.ends_with(" /usr/share/fonts/*\n"), "{triggers}");
}

#[test]
fn packages_of_the_same_origin_share_files() {
    let mut env = Env::new();
    let mut a = PkgSpec::new("lib-a", "1-r0").file("usr/share/common/x", "a\n");
    a.origin = "src".into();
    let mut b = PkgSpec::new("lib-b", "1-r0").file("usr/share/common/x", "b\n");
    b.origin = "src".into();
    env.repo.add(&a);
    env.repo.add(&b);
    env.repo.write_index(true);
    env.add("lib-a").unwrap();
    env.add("lib-b").unwrap();
    assert_eq!(env.read("usr/share/common/x"), "b\n");
}

#[test]
fn plan_add_resolves_without_touching_the_root() {
    let mut env = Env::new();
    env.repo
        .add(&PkgSpec::new("liba", "1.0-r0").file("usr/lib/liba.so.1", "a\n"));
    env.repo.add(
        &PkgSpec::new("tool", "2.0-r0")
            .file("usr/bin/tool", "t\n")
            .depends("liba"),
    );
    env.repo.write_index(true);
    let atoms = Dependency::parse_list("tool").unwrap();
    // An empty root: no database is created by a plan.
    let r = install::plan_add(&env.root, &atoms, &env.opts()).unwrap();
    let planned: Vec<(&str, &str)> = r
        .planned
        .iter()
        .map(|(n, v, _)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(planned, [("liba", "1.0-r0"), ("tool", "2.0-r0")]);
    assert!(r.planned[1].2.starts_with("Q1"));
    assert_eq!(fs_err::read_dir(&env.root).unwrap().count(), 0);
    assert!(r.installed.is_empty());
    // After the install, the same plan (the installed packages, same checksums).
    env.add("tool").unwrap();
    let again = install::plan_add(&env.root, &atoms, &env.opts()).unwrap();
    assert_eq!(again.planned, r.planned);
}

/// Issue 14: an `apk add` whose second package is corrupt leaves the first recorded with
/// its files and nothing of the second, a database the real apk audits clean.
#[test]
fn issue14_a_failed_add_records_what_was_installed_and_nothing_of_the_failed_package() {
    let mut env = Env::new();
    env.repo
        .add(&PkgSpec::new("good", "1-r0").file("usr/share/good/a", "a\n"));
    let bad = PkgSpec::new("bad", "1-r0")
        .depends("good")
        .file("usr/bin/bad", "#!/bin/sh\n")
        .file("usr/share/bad/data", &"z".repeat(100_000));
    env.repo.add(&bad);
    env.repo.write_index(true);
    // Its control member is the indexed one; its data stream breaks near the end, once
    // files were written.
    let apk = env.repo.dir.join("x86_64/bad-1-r0.apk");
    let mut bytes = fs_err::read(&apk).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0xff;
    fs_err::write(&apk, bytes).unwrap();
    let err = env.add("bad").unwrap_err();
    assert!(matches!(err, InstallError::Package { .. }), "{err}");
    assert!(env.exists("usr/share/good/a"));
    assert!(!env.exists("usr/bin/bad") && !env.exists("usr/share/bad"));
    let installed = env.read("lib/apk/db/installed");
    assert!(installed.contains("P:good\n") && !installed.contains("P:bad\n"));
    assert_eq!(env.read("etc/apk/world"), "bad\n");
    let Some(real) = testkit::reference_client("apk") else {
        return;
    };
    let root = env.root.display().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&real)
            .args(["--root", &root, "--no-network"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, audit, err) = run(&["audit", "--system"]);
    assert!(ok && audit.is_empty(), "apk audit: {audit}{err}");
    let (ok, info, err) = run(&["info", "-vv"]);
    assert!(ok, "{err}");
    assert_eq!(info, "good-1-r0 - generated package good\n", "{err}");
}

#[test]
fn add_upgrade_chooses_the_requested_names_afresh() {
    let env = versions_env();
    env.add("foo=1.0-r0").unwrap();
    // Without -u the installed version satisfies `foo` and stays, as apk keeps it.
    assert!(env.add("foo").unwrap().is_noop());
    assert_eq!(env.read("usr/bin/foo"), "foo 1.0-r0\n");
    let mut opts = env.opts();
    opts.upgrade = true;
    let report = env.add_with("foo", &opts).unwrap();
    assert_eq!(
        report.upgraded,
        [("foo".into(), "1.0-r0".into(), "2.0-r0".into())]
    );
}

/// Issue 14: an upgrade whose new version breaks half-way leaves the old version's files
/// as the database records them (the new ones were written beside them and never moved
/// into place), with no temporary file left.
#[test]
fn issue14_a_failed_upgrade_keeps_the_old_files_as_recorded() {
    let env = versions_env();
    env.add("foo=1.0-r0").unwrap();
    let apk = env.repo.dir.join("x86_64/foo-2.0-r0.apk");
    let mut bytes = fs_err::read(&apk).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0xff;
    fs_err::write(&apk, bytes).unwrap();
    let err = env.add("foo=2.0-r0").unwrap_err();
    assert!(matches!(err, InstallError::Package { .. }), "{err}");
    assert_eq!(env.read("usr/bin/foo"), "foo 1.0-r0\n");
    assert_eq!(env.read("usr/share/foo/shared.txt"), "1\n");
    assert!(env.exists("usr/share/foo/old.txt") && !env.exists("usr/share/foo/new.txt"));
    for dir in ["usr/bin", "usr/share/foo"] {
        let left: Vec<_> = fs_err::read_dir(env.root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".apk."))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    assert!(env.read("lib/apk/db/installed").contains("V:1.0-r0\n"));
    let Some(real) = testkit::reference_client("apk") else {
        return;
    };
    let out = std::process::Command::new(real)
        .arg("--root")
        .arg(&env.root)
        .args(["--no-network", "audit", "--system"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}
