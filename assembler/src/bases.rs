//! Extracted bases: the root a stage starts FROM, extracted once into the store and shared
//! by every build on that base as the read-only lower directory of its overlay (see
//! [`crate::overlay`]).
//!
//! Layout under the store root: `bases/<id>/rootfs/` holds the files, owned on disk by the
//! user running `assemble` as in any build root, and `bases/<id>/owners.json` the image
//! owners of its paths that are not `0:0` (see [`layer::Owners`]), and `bases/<id>/manifest`
//! its scan (see [`layer::save_lower`]). `<id>` is the snapshot
//! holding the topmost layer of the base's chain (config-only snapshots above it share its
//! files), so a base is content-addressed as snapshots are. A base is extracted under
//! `tmp/`, synced, and renamed into place: a half-extracted base is never used. Nothing
//! writes to it after that (overlayfs writes only to the build's upper directory), and
//! `assemble prune` removes the bases of snapshots it removed.

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use apk::atomic::write_atomic;

use crate::build::Reporter;
use crate::layer::{self, Manifest, Owners};
use crate::store::{Snapshot, Store};

/// A base extracted into the store.
#[derive(Debug)]
pub struct Base {
    /// The snapshot holding its topmost layer.
    pub id: String,
    /// Its files.
    pub rootfs: PathBuf,
    /// The image owners of its paths.
    pub owners: Owners,
    /// A scan of `rootfs` (see [`layer::scan_lower`]).
    pub manifest: Manifest,
}

const OWNERS: &str = "owners.json";
/// The scan of `rootfs` (see [`layer::save_lower`]).
const MANIFEST: &str = "manifest";

/// The base of `top`'s files, extracted first when the store has none yet; `None` when the
/// chain has no layer (an empty root).
pub fn get(store: &Store, top: &Snapshot, reporter: &dyn Reporter) -> anyhow::Result<Option<Base>> {
    let Some(files) = store
        .chain(top)?
        .into_iter()
        .rev()
        .find(|s| s.layer().is_some())
    else {
        return Ok(None);
    };
    let dir = dir(store).join(&files.id);
    if !dir.join(OWNERS).is_file() {
        reporter.line(&format!(
            "--> Extracting base @{} into the store (once: later builds on it share it)",
            files.id
        ));
        extract(store, &files, &dir)
            .with_context(|| format!("failed to extract base @{} into the store", files.id))?;
    }
    load(&dir, files.id).map(Some)
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("bases")
}

/// Extracts `top`'s chain into `dest`, atomically.
fn extract(store: &Store, top: &Snapshot, dest: &Path) -> anyhow::Result<()> {
    let tmp = store.tempdir("base-")?;
    let rootfs = tmp.path().join("rootfs");
    fs_err::create_dir(&rootfs)?;
    let owners = crate::build::materialize_recording(store, top, &rootfs)?;
    write_atomic(&tmp.path().join(OWNERS), &owners_json(&owners)?)?;
    // Tied to the directory, which the rename keeps.
    let manifest = layer::scan_lower(&rootfs)?;
    layer::save_lower(&manifest, &rootfs, &tmp.path().join(MANIFEST))?;
    // Every file on disk before the rename makes the base visible.
    let fd = fs_err::File::open(tmp.path())?;
    rustix::fs::syncfs(&fd).context("failed to sync the extracted base")?;
    fs_err::create_dir_all(dir(store))?;
    if dest.exists() && !dest.join(OWNERS).is_file() {
        // Not ours to trust: a base renamed in place is complete, so this was made by hand
        // or damaged.
        remove(dest)?;
    }
    let staged = tmp.keep();
    if let Err(e) = fs_err::rename(&staged, dest) {
        // Another build extracted the same base meanwhile.
        remove(&staged)?;
        if !dest.join(OWNERS).is_file() {
            return Err(e.into());
        }
    }
    Ok(())
}

/// The non-root owners as `[uid, gid, hex path]` triples (paths are bytes, not text).
fn owners_json(owners: &Owners) -> anyhow::Result<Vec<u8>> {
    let entries: Vec<(u32, u32, String)> = owners
        .iter()
        .filter(|(_, o)| **o != (0, 0))
        .map(|(p, (u, g))| (*u, *g, hex::encode(p.as_os_str().as_bytes())))
        .collect();
    Ok(serde_json::to_vec(&entries)?)
}

/// Reads an extracted base: its scan, and its owners with `0:0` for every path not listed.
fn load(dir: &Path, id: String) -> anyhow::Result<Base> {
    let rootfs = dir.join("rootfs");
    let scan = || -> std::io::Result<Manifest> {
        if let Some(m) = layer::load_lower(&dir.join(MANIFEST), &rootfs)? {
            return Ok(m);
        }
        layer::scan_lower(&rootfs)
    };
    let manifest =
        scan().with_context(|| format!("failed to scan the base `{}`", rootfs.display()))?;
    let path = dir.join(OWNERS);
    let entries: Vec<(u32, u32, String)> =
        serde_json::from_slice(&fs_err::read(&path)?).with_context(|| corrupt(&path))?;
    let mut owners: Owners = manifest.keys().map(|p| (p.clone(), (0, 0))).collect();
    for (uid, gid, p) in entries {
        let p = hex::decode(&p).with_context(|| corrupt(&path))?;
        owners.insert(PathBuf::from(std::ffi::OsString::from_vec(p)), (uid, gid));
    }
    Ok(Base {
        id,
        rootfs,
        owners,
        manifest,
    })
}

/// What to say about a damaged owner table.
fn corrupt(path: &Path) -> String {
    format!(
        "`{}` is corrupt; run `{} prune`",
        path.display(),
        crate::program::name()
    )
}

/// Removes the bases whose snapshot is no longer in the store (after
/// [`Store::prune`]); returns their ids.
pub fn prune(store: &Store) -> anyhow::Result<Vec<String>> {
    let Ok(entries) = fs_err::read_dir(dir(store)) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for e in entries {
        let e = e?;
        let id = e.file_name().to_string_lossy().into_owned();
        if store.snapshot(&id).is_err() {
            remove(&e.path())?;
            removed.push(id);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Removes an extracted base; its read-only directories are opened up first (an
/// unprivileged owner could not empty them).
fn remove(dir: &Path) -> std::io::Result<()> {
    crate::overlay::open_up(dir);
    fs_err::remove_dir_all(dir)
}
