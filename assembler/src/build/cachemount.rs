//! `--mount=type=cache` directories, kept in the store across builds
//! (`STORE/cache-mounts/KEY/`), as BuildKit keeps its cache mounts: one per cache id and
//! base (its `from`/`source`, or its `mode`/`uid`/`gid`), never part of an image nor of a
//! step's cache key.
//!
//! Sharing between steps running at the same time (in this build or another `assemble`
//! using the store) follows BuildKit's modes with `flock(2)` on `N.lock` beside instance
//! `N/`: `shared` holds a shared lock on instance 0 (any number of steps at once),
//! `locked` an exclusive one (waiting for the others), and `private` takes the first
//! instance nobody holds, making a new one when all are in use.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::fs::FlockOperation;
use sha2::{Digest, Sha256};

use crate::containerfile::Sharing;

/// A cache directory held for a step; the lock goes with it.
pub(super) struct Held {
    pub path: PathBuf,
    _lock: fs_err::File,
}

/// The directory of cache `id` with base `base_key` (what `make` starts it as), held per
/// `sharing`; `make(path)` creates it at the new `path` when there is none yet.
pub(super) fn hold(
    store_root: &Path,
    id: &str,
    base_key: &str,
    sharing: Sharing,
    make: &dyn Fn(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<Held> {
    let key = hex::encode(Sha256::digest(format!("{id}\0{base_key}")));
    let dir = store_root.join("cache-mounts").join(key);
    fs_err::create_dir_all(&dir).context("failed to create the cache mount directory")?;
    // For people looking at the store: which cache this is.
    if !dir.join("id").exists() {
        apk::atomic::write_atomic(&dir.join("id"), format!("{id}\n{base_key}\n").as_bytes())?;
    }
    let (n, lock) = lock_instance(&dir, sharing)?;
    let path = dir.join(n.to_string());
    if !path.exists() {
        make_instance(&dir, &path, make)?;
    }
    Ok(Held { path, _lock: lock })
}

/// The instance to use and its lock, per `sharing`.
fn lock_instance(dir: &Path, sharing: Sharing) -> anyhow::Result<(usize, fs_err::File)> {
    let open = |n: usize| -> anyhow::Result<fs_err::File> {
        Ok(fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{n}.lock")))?)
    };
    let op = match sharing {
        Sharing::Shared => FlockOperation::LockShared,
        Sharing::Locked => FlockOperation::LockExclusive,
        Sharing::Private => {
            for n in 0.. {
                let f = open(n)?;
                match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => return Ok((n, f)),
                    Err(rustix::io::Errno::WOULDBLOCK) => continue,
                    Err(e) => return Err(e).context("failed to lock a cache mount"),
                }
            }
            unreachable!("some instance is free")
        }
    };
    let f = open(0)?;
    rustix::fs::flock(&f, op).context("failed to lock a cache mount")?;
    Ok((0, f))
}

/// Makes instance `path` with `make` beside it, then renames it into place (a crash leaves
/// no half-made cache; a step making the same instance at the same time wins or loses
/// whole).
fn make_instance(
    dir: &Path,
    path: &Path,
    make: &dyn Fn(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(dir)
        .context("failed to create a cache mount")?;
    let new = tmp.path().join("d");
    make(&new)?;
    match fs_err::rename(&new, path) {
        Ok(()) => Ok(()),
        Err(_) if path.is_dir() => Ok(()),
        Err(e) => Err(e).context("failed to create a cache mount"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_are_kept_per_id_and_base_and_shared_per_mode() {
        let store = tempfile::tempdir().unwrap();
        let empty = |p: &Path| Ok(fs_err::create_dir(p)?);
        let a = hold(store.path(), "/c", "", Sharing::Shared, &empty).unwrap();
        fs_err::write(a.path.join("kept"), "1").unwrap();
        let b = hold(store.path(), "/c", "", Sharing::Shared, &empty).unwrap();
        assert_eq!(a.path, b.path, "shared: the same directory at once");
        assert!(b.path.join("kept").exists());
        let other = hold(store.path(), "/c", "mode=700", Sharing::Shared, &empty).unwrap();
        assert_ne!(other.path, a.path, "another base: another cache");
        drop((a, b));
        let p1 = hold(store.path(), "/c", "", Sharing::Private, &empty).unwrap();
        let p2 = hold(store.path(), "/c", "", Sharing::Private, &empty).unwrap();
        assert_ne!(
            p1.path, p2.path,
            "private: a second instance while the first is held"
        );
        assert!(p1.path.join("kept").exists() && !p2.path.join("kept").exists());
        drop(p2);
        let p3 = hold(store.path(), "/c", "", Sharing::Private, &empty).unwrap();
        assert!(
            !p3.path.join("kept").exists(),
            "the free second instance is reused"
        );
        drop((p1, p3));
        let l = hold(store.path(), "/c", "", Sharing::Locked, &empty).unwrap();
        assert!(l.path.join("kept").exists());
    }
}
