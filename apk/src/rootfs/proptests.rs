//! Property tests (style rule 14): random paths built from `..`, `.`, `/`, plain names and
//! pre-made hostile symlinks either fail or resolve inside the root; random sequences of
//! operations never create or change anything outside it; both resolvers agree.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use proptest::prelude::*;

use super::tests::{Fixture, fd_path};
use super::*;

const COMPONENTS: [&str; 8] = ["a", "b", "..", ".", "/", "sym_out", "sym_abs", "sym_loop"];

/// A root full of traps, next to an `outside/secret` that must survive.
fn hostile() -> Fixture {
    let fx = Fixture::new();
    let outside = fx.outside.to_str().unwrap().to_owned();
    fx.mkdir("a/b");
    fs_err::write(fx.root.join("b"), b"a file named b").unwrap();
    fx.symlink("sym_out", "../outside");
    fx.symlink("sym_abs", &outside);
    fx.symlink("sym_loop", "a/sym_loop");
    fx.symlink("a/sym_loop", "../sym_loop/x");
    fx.symlink("a/sym_out", "../../../../outside/secret");
    fx.symlink("a/sym_abs", "/");
    fx.symlink("a/b/sym_out", "../../../..");
    fx.symlink("a/b/sym_abs", &format!("{outside}/secret"));
    fx.symlink("a/b/sym_loop", "/a/b/sym_loop/..");
    fx
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&COMPONENTS[..]), 0..8).prop_map(|c| c.join("/"))
}

#[derive(Debug, Clone)]
enum Op {
    CreateFile(String),
    CreateDirAll(String),
    Symlink(String),
    HardLink(String, String),
    SetMode(String),
    SetMtime(String),
    SetOwner(String),
    Remove(String),
    ApplyFile(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        path().prop_map(Op::CreateFile),
        path().prop_map(Op::CreateDirAll),
        path().prop_map(Op::Symlink),
        (path(), path()).prop_map(|(a, b)| Op::HardLink(a, b)),
        path().prop_map(Op::SetMode),
        path().prop_map(Op::SetMtime),
        path().prop_map(Op::SetOwner),
        path().prop_map(Op::Remove),
        path().prop_map(Op::ApplyFile),
    ]
}

/// Runs one operation; errors are fine, escaping is not.
fn run(r: &RootDir, op: &Op) {
    let _ = match op {
        Op::CreateFile(p) => r
            .create_file(p, 0o644)
            .map(|mut f| f.write_all(b"written").unwrap()),
        Op::CreateDirAll(p) => r.create_dir_all(p, 0o755),
        Op::Symlink(p) => r.symlink(p, "../../../outside/secret"),
        Op::HardLink(p, q) => r.hard_link(p, q),
        Op::SetMode(p) => r.set_mode(p, 0o700),
        Op::SetMtime(p) => r.set_mtime(p, 12345),
        Op::SetOwner(p) if rustix::process::geteuid().is_root() => r.set_owner(p, 4242, 4242),
        Op::SetOwner(_) => Ok(()),
        Op::Remove(p) => r.remove(p),
        Op::ApplyFile(p) => {
            let meta = EntryMeta {
                path: p.clone(),
                kind: EntryKind::File,
                mode: 0o4755,
                uid: 4242,
                gid: 4242,
                mtime: 12345,
            };
            let opts = ApplyOptions::for_current_process();
            r.apply(&meta, &mut &b"payload"[..], &opts).map(drop)
        }
    };
}

/// `(dev, ino)` of a successful resolution, or the errno of a failed one.
fn outcome(r: &RootDir, p: &str) -> Result<(u64, u64), Option<i32>> {
    match r.resolve(Path::new(p)) {
        Ok(fd) => {
            let st = rustix::fs::fstat(&fd).unwrap();
            Ok((st.st_dev, st.st_ino))
        }
        Err(e) => Err(e.io_error().and_then(std::io::Error::raw_os_error)),
    }
}

proptest! {
    #[test]
    fn resolution_lands_inside_the_root(paths in prop::collection::vec(path(), 1..16)) {
        let fx = hostile();
        let root = fs_err::canonicalize(&fx.root).unwrap();
        for r in fx.roots() {
            for p in &paths {
                if let Ok(fd) = r.resolve(Path::new(p)) {
                    let real = fd_path(&fd);
                    prop_assert!(real.starts_with(&root), "{p:?} -> {real:?}");
                }
            }
        }
    }

    #[test]
    fn resolvers_agree(paths in prop::collection::vec(path(), 1..16)) {
        let fx = hostile();
        let roots = fx.roots();
        for p in &paths {
            let outcomes: Vec<_> = roots.iter().map(|r| outcome(r, p)).collect();
            prop_assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{p:?}: {outcomes:?}");
        }
    }

    #[test]
    fn operations_never_touch_the_outside(ops in prop::collection::vec(op(), 1..12)) {
        // A fresh trap-filled root per resolver, since the operations change it.
        for resolver in [Resolver::Userspace, Resolver::Kernel] {
            let fx = hostile();
            let Ok(r) = RootDir::open_with(&fx.root, resolver) else { continue };
            let root = fs_err::canonicalize(&fx.root).unwrap();
            for op in &ops {
                run(&r, op);
                fx.assert_outside_untouched();
            }
            // Everything the operations left behind is inside the root, and its metadata
            // changes did not reach the host file through any link.
            for entry in walkdir::WalkDir::new(&root).follow_links(false) {
                let entry = entry.unwrap();
                prop_assert!(entry.path().starts_with(&root));
            }
            let secret = fs_err::metadata(fx.outside.join("secret")).unwrap();
            prop_assert_ne!(secret.mtime(), 12345);
        }
    }
}
