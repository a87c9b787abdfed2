//! Unit tests of the path-safety primitive. Every scenario runs against both resolvers; the
//! kernel one is skipped only where `openat2` is unavailable (then `Auto` must pick the walk).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

/// A temp dir holding `root/` (the root) and a sibling `outside/` with a file `secret` that
/// no operation may touch.
pub(super) struct Fixture {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs_err::create_dir(&root).unwrap();
        fs_err::create_dir(&outside).unwrap();
        fs_err::write(outside.join("secret"), b"secret").unwrap();
        let perms = std::fs::Permissions::from_mode(0o644);
        fs_err::set_permissions(outside.join("secret"), perms).unwrap();
        Self { tmp, root, outside }
    }

    /// One root handle per available resolver.
    pub fn roots(&self) -> Vec<RootDir> {
        let mut roots = vec![RootDir::open_with(&self.root, Resolver::Userspace).unwrap()];
        match RootDir::open_with(&self.root, Resolver::Kernel) {
            Ok(root) => roots.push(root),
            Err(RootfsError::KernelResolverUnavailable { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        roots
    }

    pub fn symlink(&self, rel: &str, target: &str) {
        std::os::unix::fs::symlink(target, self.root.join(rel)).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        fs_err::create_dir_all(self.root.join(rel)).unwrap();
    }

    /// The outside directory still holds exactly the untouched `secret`, and the temp dir
    /// holds nothing but `root` and `outside`.
    pub fn assert_outside_untouched(&self) {
        let names = |dir: &Path| {
            let mut v: Vec<_> = fs_err::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&self.outside), ["secret"]);
        assert_eq!(names(self.tmp.path()), ["outside", "root"]);
        let secret = self.outside.join("secret");
        assert_eq!(fs_err::read(&secret).unwrap(), b"secret");
        let meta = fs_err::metadata(&secret).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        assert_eq!(meta.uid(), rustix::process::getuid().as_raw());
    }
}

/// The real path of an fd, from procfs (test-only: the library never needs paths).
pub(super) fn fd_path(fd: &impl AsFd) -> PathBuf {
    fs_err::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap()
}

fn resolved(root: &RootDir, rel: &str) -> PathBuf {
    fd_path(&root.resolve(Path::new(rel)).unwrap())
}

fn errno(err: &RootfsError) -> Option<i32> {
    err.io_error().and_then(std::io::Error::raw_os_error)
}

#[test]
fn auto_picks_a_working_resolver() {
    let fx = Fixture::new();
    let auto = RootDir::open(&fx.root).unwrap();
    assert_ne!(auto.resolver(), Resolver::Auto);
    let kernel_ok = RootDir::open_with(&fx.root, Resolver::Kernel).is_ok();
    assert_eq!(auto.resolver() == Resolver::Kernel, kernel_ok);
    let err = RootDir::open(fx.root.join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn dotdot_is_clamped_at_the_root() {
    let fx = Fixture::new();
    fx.mkdir("a/b");
    let root = fs_err::canonicalize(&fx.root).unwrap();
    for r in fx.roots() {
        assert_eq!(resolved(&r, "../../.."), root);
        assert_eq!(resolved(&r, "a/../../../a/b"), root.join("a/b"));
        assert_eq!(resolved(&r, "a/b/../../.."), root);
        assert_eq!(resolved(&r, ""), root);
        assert_eq!(resolved(&r, "."), root);
    }
}

#[test]
fn absolute_paths_are_relative_to_the_root() {
    let fx = Fixture::new();
    fx.mkdir("etc");
    let root = fs_err::canonicalize(&fx.root).unwrap();
    for r in fx.roots() {
        assert_eq!(resolved(&r, "/etc"), root.join("etc"));
        assert_eq!(resolved(&r, "//etc/"), root.join("etc"));
        assert_eq!(resolved(&r, "/"), root);
    }
}

#[test]
fn absolute_symlink_to_etc_stays_in_root() {
    let fx = Fixture::new();
    fx.mkdir("etc");
    fx.symlink("link", "/etc");
    let root = fs_err::canonicalize(&fx.root).unwrap();
    let host_passwd = fs_err::read("/etc/passwd").ok();
    for r in fx.roots() {
        assert_eq!(resolved(&r, "link"), root.join("etc"));
        let mut f = r.create_file("link/passwd", 0o644).unwrap();
        f.write_all(b"root:x:0:0::/root:/bin/sh\n").unwrap();
        assert!(fx.root.join("etc/passwd").is_file());
    }
    assert_eq!(fs_err::read("/etc/passwd").ok(), host_passwd);
}

#[test]
fn dotdot_symlink_chains_are_clamped() {
    let fx = Fixture::new();
    fx.mkdir("a/b");
    fx.mkdir("x");
    fx.symlink("a/b/up", "../../../../..");
    fx.symlink("a/chain1", "b/chain2");
    fx.symlink("a/b/chain2", "../../a/b/up/../..");
    let root = fs_err::canonicalize(&fx.root).unwrap();
    for r in fx.roots() {
        assert_eq!(resolved(&r, "a/b/up"), root);
        assert_eq!(resolved(&r, "a/b/up/x"), root.join("x"));
        assert_eq!(resolved(&r, "a/chain1/x"), root.join("x"));
        assert_eq!(resolved(&r, "a/b/up/../../a/b/up/a"), root.join("a"));
    }
}

#[test]
fn symlink_loops_fail_with_eloop() {
    let fx = Fixture::new();
    fx.symlink("self", "self");
    fx.symlink("ping", "pong");
    fx.symlink("pong", "/ping");
    fx.symlink("deep", "deep/x");
    for r in fx.roots() {
        for path in ["self", "ping/x", "pong", "deep"] {
            let err = r.resolve(Path::new(path)).unwrap_err();
            assert_eq!(
                errno(&err),
                Some(Errno::LOOP.raw_os_error()),
                "{path}: {err}"
            );
        }
        let err = r.create_file("ping/file", 0o644).unwrap_err();
        assert_eq!(errno(&err), Some(Errno::LOOP.raw_os_error()), "{err}");
    }
}

#[test]
fn long_but_finite_chains_resolve() {
    let fx = Fixture::new();
    fx.mkdir("end");
    // 39 links plus the final one: within Linux's limit of 40.
    for i in 0..39 {
        fx.symlink(&format!("l{i}"), &format!("l{}", i + 1));
    }
    fx.symlink("l39", "end");
    fx.symlink("too_far", "l0");
    let root = fs_err::canonicalize(&fx.root).unwrap();
    for r in fx.roots() {
        assert_eq!(resolved(&r, "l0"), root.join("end"));
        let err = r.resolve(Path::new("too_far")).unwrap_err();
        assert_eq!(errno(&err), Some(Errno::LOOP.raw_os_error()), "{err}");
    }
}

#[test]
fn writes_through_hostile_parents_never_leave_the_root() {
    let fx = Fixture::new();
    let outside = fx.outside.to_str().unwrap().to_owned();
    fx.symlink("rel_out", "../outside");
    fx.symlink("abs_out", &outside);
    fx.mkdir("a");
    fx.symlink("a/deep_out", "../../../../outside");
    for r in fx.roots() {
        for parent in ["rel_out", "abs_out", "a/deep_out", "../outside", &outside] {
            let err = r.create_file(format!("{parent}/pwned"), 0o644).unwrap_err();
            assert!(err.is_not_found(), "{parent}: {err}");
            let err = r.symlink(format!("{parent}/pwned"), "/x").unwrap_err();
            assert!(err.is_not_found(), "{parent}: {err}");
        }
        fx.assert_outside_untouched();
        // Once the clamped location exists inside the root, writes land there.
        r.create_dir_all("outside", 0o755).unwrap();
        r.create_file("rel_out/in_root", 0o644).unwrap();
        assert!(fx.root.join("outside/in_root").is_file());
        fs_err::remove_dir_all(fx.root.join("outside")).unwrap();
        fx.assert_outside_untouched();
    }
}

#[test]
fn create_file_replaces_a_symlink_instead_of_writing_its_target() {
    let fx = Fixture::new();
    let secret = fx.outside.join("secret");
    fx.symlink("abs", secret.to_str().unwrap());
    fx.symlink("rel", "../outside/secret");
    fx.mkdir("dir");
    for r in fx.roots() {
        for name in ["abs", "rel"] {
            let mut f = r.create_file(name, 0o644).unwrap();
            f.write_all(b"mine").unwrap();
            drop(f);
            let meta = fs_err::symlink_metadata(fx.root.join(name)).unwrap();
            assert!(meta.is_file());
            assert_eq!(fs_err::read(fx.root.join(name)).unwrap(), b"mine");
            r.remove(name).unwrap();
            r.symlink(name, secret.to_str().unwrap()).unwrap();
        }
        let err = r.create_file("dir", 0o644).unwrap_err();
        assert!(matches!(err, RootfsError::Refused { .. }), "{err}");
        fx.assert_outside_untouched();
    }
}

#[test]
fn metadata_changes_do_not_follow_symlinks() {
    let fx = Fixture::new();
    let secret = fx.outside.join("secret");
    fx.symlink("link", secret.to_str().unwrap());
    fx.symlink("rel", "../outside/secret");
    for r in fx.roots() {
        for name in ["link", "rel"] {
            r.set_mode(name, 0o777).unwrap();
            r.set_mtime(name, 1_000_000).unwrap();
            if rustix::process::geteuid().is_root() {
                r.set_owner(name, 4242, 4242).unwrap();
                assert_eq!(r.metadata(name).unwrap().uid(), 4242);
            }
            let meta = r.metadata(name).unwrap();
            assert!(meta.file_type().is_symlink());
            assert_eq!(meta.mtime(), 1_000_000);
            let err = r.set_xattr(name, "user.x", b"1").unwrap_err();
            assert!(matches!(err, RootfsError::Refused { .. }), "{err}");
        }
        fx.assert_outside_untouched();
        assert_ne!(fs_err::metadata(&secret).unwrap().mtime(), 1_000_000);
    }
}

#[test]
fn set_mode_owner_mtime_on_files_and_dirs() {
    let fx = Fixture::new();
    fx.mkdir("d");
    for r in fx.roots() {
        r.create_file("d/f", 0o600).unwrap();
        r.set_mode("d/f", 0o4755).unwrap();
        r.set_mode("d", 0o750).unwrap();
        r.set_mode("d/..", 0o755).unwrap();
        r.set_mtime("d/f", 86_400).unwrap();
        assert_eq!(r.metadata("d/f").unwrap().mode() & 0o7777, 0o4755);
        assert_eq!(r.metadata("d").unwrap().mode() & 0o7777, 0o750);
        assert_eq!(r.metadata("d/f").unwrap().mtime(), 86_400);
        assert_eq!(r.metadata("").unwrap().mode() & 0o7777, 0o755);
        match r.set_xattr("d/f", "user.apk-test", b"v") {
            Ok(()) => {}
            // Not every filesystem under /tmp takes user xattrs.
            Err(e) => assert_eq!(errno(&e), Some(Errno::OPNOTSUPP.raw_os_error()), "{e}"),
        }
        r.remove("d/f").unwrap();
    }
}

#[test]
fn hard_links_stay_inside() {
    let fx = Fixture::new();
    fx.symlink("out_link", "../outside/secret");
    for r in fx.roots() {
        let mut f = r.create_file("a", 0o644).unwrap();
        f.write_all(b"data").unwrap();
        r.hard_link("b", "a").unwrap();
        r.hard_link("b", "b").unwrap();
        let (a, b) = (r.metadata("a").unwrap(), r.metadata("b").unwrap());
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.nlink(), 2);
        // A symlink is linked itself, never the file it points at.
        r.hard_link("c", "out_link").unwrap();
        assert!(r.metadata("c").unwrap().file_type().is_symlink());
        let err = r.hard_link("d", "../outside/secret").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let err = r.hard_link("e", "out_link/x").unwrap_err();
        assert!(err.io_error().is_some(), "{err}");
        for name in ["a", "b", "c"] {
            r.remove(name).unwrap();
        }
        fx.assert_outside_untouched();
        assert_eq!(
            fs_err::metadata(fx.outside.join("secret")).unwrap().nlink(),
            1
        );
    }
}

#[test]
fn special_files() {
    let fx = Fixture::new();
    for r in fx.roots() {
        r.mknod("fifo", NodeKind::Fifo, 0o644).unwrap();
        assert!(r.metadata("fifo").unwrap().file_type().is_fifo());
        match r.mknod("null", NodeKind::CharDevice { major: 1, minor: 3 }, 0o666) {
            Ok(()) => {
                let meta = r.metadata("null").unwrap();
                assert!(meta.file_type().is_char_device());
                assert_eq!(meta.rdev(), rustix::fs::makedev(1, 3));
                r.remove("null").unwrap();
            }
            Err(e @ RootfsError::DeviceNotPermitted { .. }) => {
                assert_eq!(
                    e.io_error().unwrap().kind(),
                    std::io::ErrorKind::PermissionDenied
                );
                assert!(e.to_string().contains("CAP_MKNOD"), "{e}");
            }
            Err(e) => panic!("{e}"),
        }
        r.remove("fifo").unwrap();
    }
}

#[test]
fn directories_links_and_lookups() {
    let fx = Fixture::new();
    fx.symlink("dangling", "/nowhere");
    fx.symlink("usr_lib", "/usr/lib");
    for r in fx.roots() {
        r.create_dir_all("usr/lib/../lib/apk/./db", 0o755).unwrap();
        r.create_dir_all("usr_lib/x", 0o755).unwrap();
        assert!(fx.root.join("usr/lib/x").is_dir());
        assert!(r.exists("usr/lib/apk/db").unwrap());
        assert!(r.exists("dangling").unwrap());
        assert!(!r.exists("missing").unwrap());
        assert!(!r.exists("missing/deeper").unwrap());
        assert_eq!(r.read_link("dangling").unwrap(), Path::new("/nowhere"));
        assert!(r.create_dir_all("dangling/x", 0o755).is_err());
        r.create_file("usr/file", 0o644).unwrap();
        let err = r.create_dir_all("usr/file/x", 0o755).unwrap_err();
        assert_eq!(errno(&err), Some(Errno::NOTDIR.raw_os_error()), "{err}");
        assert!(r.remove("").is_err());
        r.remove("usr/lib/x").unwrap();
        r.remove("usr/file").unwrap();
        assert!(!r.exists("usr_lib/x").unwrap());

        let sub = r.open_dir("usr_lib").unwrap();
        assert_eq!(sub.resolver(), r.resolver());
        assert_eq!(
            fd_path(&sub.resolve(Path::new("../../..")).unwrap()),
            fd_path(&sub)
        );
        sub.symlink("esc", "/").unwrap();
        assert_eq!(
            fd_path(&sub.resolve(Path::new("esc/apk")).unwrap()),
            fd_path(&sub).join("apk")
        );
        sub.remove("esc").unwrap();
    }
    fx.assert_outside_untouched();
}

#[test]
fn open_file_follows_links_inside_only() {
    let fx = Fixture::new();
    fx.mkdir("etc");
    fs_err::write(fx.root.join("etc/passwd"), b"root:x:0:0\n").unwrap();
    fx.symlink("pw", "/etc/passwd");
    fx.symlink("host", fx.outside.join("secret").to_str().unwrap());
    for r in fx.roots() {
        let mut text = String::new();
        r.open_file("pw")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "root:x:0:0\n");
        assert!(r.open_file("host").unwrap_err().is_not_found());
        assert!(matches!(
            r.open_file("etc").unwrap_err(),
            RootfsError::Refused { .. }
        ));
    }
}

#[test]
fn errors_explain_where_and_through_which_symlink() {
    let fx = Fixture::new();
    fx.mkdir("usr");
    fx.symlink("usr/lib", "/../..");
    fx.symlink("abs", "/opt/app");
    for r in fx.roots() {
        let err = r.create_file("usr/lib/x/y", 0o644).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("`usr/lib/x/y` in root `"), "{msg}");
        assert!(msg.contains("resolving `x` failed"), "{msg}");
        assert!(msg.contains("symlink `usr/lib` -> `/../..`"), "{msg}");
        let msg = r
            .create_file("abs/bin/tool", 0o755)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("resolving `opt` failed"), "{msg}");
        assert!(
            msg.contains("`abs` -> `/opt/app`, an absolute target"),
            "{msg}"
        );
    }
}

#[test]
fn entry_names_are_checked_strictly() {
    for ok in [
        "usr/bin/x",
        "usr/",
        "./etc/apk",
        "a/./b",
        ".PKGINFO",
        "a..b/..c",
    ] {
        check_entry_name(ok).unwrap();
    }
    let cases = [
        ("", "entry name `` is empty"),
        ("/etc/passwd", "entry name `/etc/passwd` is absolute"),
        (
            "../../etc/passwd",
            "entry name `../../etc/passwd` has a `..` component",
        ),
        (
            "usr/../../x",
            "entry name `usr/../../x` has a `..` component",
        ),
        ("a/..", "entry name `a/..` has a `..` component"),
        ("a\0b", "entry name `a\\0b` contains a control character"),
        (
            "x\x1b[2J",
            "entry name `x\\u{1b}[2J` contains a control character",
        ),
    ];
    for (name, msg) in cases {
        assert_eq!(check_entry_name(name).unwrap_err().to_string(), msg);
    }
}
