//! A stage's build root: an overlay over its base kept in the store (see
//! [`crate::overlay`], [`crate::bases`]) where overlayfs can be mounted, else a directory the
//! base is extracted into (FROM scratch needs neither). Both give the same manifests, so
//! the same layers and snapshot ids.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Engine;
use crate::bases::Base;
use crate::layer::{self, Manifest, Owners};
use crate::overlay::{self, Cow};
use crate::store::Snapshot;

/// A build root under the store's `tmp/`: its files are at `rootfs/`.
pub(super) struct BuildRoot {
    /// Declared first: unmounted before the directory is removed.
    overlay: Option<Overlay>,
    dir: tempfile::TempDir,
}

/// The overlay of a build root.
struct Overlay {
    mount: overlay::Mount,
    /// The base (the lower directory) and its scan.
    lower: PathBuf,
    lower_manifest: Manifest,
    upper: PathBuf,
}

impl BuildRoot {
    /// The build root's directory (the root itself is its `rootfs/`).
    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A metadata scan of the root: on an overlay, the base's scan changed by what the
    /// upper directory holds.
    pub(super) fn scan(&self) -> std::io::Result<Manifest> {
        match &self.overlay {
            Some(o) => layer::scan_merged(&o.lower_manifest, &o.upper, o.mount.merged()),
            None => layer::scan(&self.dir.path().join("rootfs")),
        }
    }

    /// Brings `manifest` in step after [`layer::chown_to_image`] or [`layer::chown_to_host`],
    /// which read back what they changed: on an overlay, a chown copied files up, which
    /// the scan numbers by the upper file (see [`layer::scan_merged`]).
    pub(super) fn chowned(&self, manifest: &mut Manifest) -> std::io::Result<()> {
        if self.overlay.is_some() {
            *manifest = self.scan()?;
        }
        Ok(())
    }

    /// Makes `before` (the root's manifest before a step) agree with `after` on what
    /// overlayfs changed by itself (see [`layer::settle_copy_ups`]).
    pub(super) fn settle(&self, before: &mut Manifest, after: &Manifest) -> std::io::Result<()> {
        match &self.overlay {
            Some(o) => layer::settle_copy_ups(before, after, &o.lower, o.mount.merged()),
            None => Ok(()),
        }
    }
}

/// How stages of one build get their roots: overlays while they can be mounted, and the
/// note printed once when a base is extracted instead.
#[derive(Debug)]
pub(super) struct Roots {
    cow: RefCell<Cow>,
    noted: Cell<bool>,
}

impl Roots {
    pub(super) fn new(cow: Cow) -> Self {
        Self {
            cow: RefCell::new(cow),
            noted: Cell::new(false),
        }
    }
}

impl Engine<'_> {
    /// A build root holding `top`'s files, and the image owners of its paths.
    pub(super) fn build_root(&self, top: Option<&Snapshot>) -> anyhow::Result<(BuildRoot, Owners)> {
        let dir = self
            .store
            .tempdir("build-")
            .context("failed to create a build root")?;
        let Some(top) = top else {
            return empty(dir);
        };
        let cow = self.roots.cow.borrow().clone();
        if let Cow::Overlay { userxattr } = cow {
            let Some(base) = crate::bases::get(self.store, top, self.reporter)? else {
                return empty(dir);
            };
            match mount(&dir, &base.rootfs, userxattr) {
                Ok(mount) => return Ok(over(dir, mount, base)),
                // Not for this build, then: the next stages need not try again.
                Err(e) => *self.roots.cow.borrow_mut() = Cow::Unavailable(e.to_string()),
            }
        }
        self.note_extracting();
        let rootfs = dir.path().join("rootfs");
        fs_err::create_dir_all(&rootfs)?;
        let owners = super::from::materialize_recording(self.store, top, &rootfs)?;
        Ok((BuildRoot { overlay: None, dir }, owners))
    }

    fn note_extracting(&self) {
        let Some(note) = self.roots.cow.borrow().note() else {
            return;
        };
        if !self.roots.noted.replace(true) {
            self.reporter.line(&format!("note: {note}"));
        }
    }
}

/// An empty root (FROM scratch, or a base without files).
fn empty(dir: tempfile::TempDir) -> anyhow::Result<(BuildRoot, Owners)> {
    fs_err::create_dir(dir.path().join("rootfs"))?;
    Ok((BuildRoot { overlay: None, dir }, Owners::new()))
}

/// The build root `dir` over `base`, mounted at its `rootfs/`.
fn over(dir: tempfile::TempDir, mount: overlay::Mount, base: Base) -> (BuildRoot, Owners) {
    let overlay = Overlay {
        mount,
        lower: base.rootfs,
        lower_manifest: base.manifest,
        upper: dir.path().join("upper"),
    };
    let root = BuildRoot {
        overlay: Some(overlay),
        dir,
    };
    (root, base.owners)
}

/// Mounts the base `lower` with an empty upper directory at the build root `dir`'s
/// `rootfs/`.
fn mount(
    dir: &tempfile::TempDir,
    lower: &Path,
    userxattr: bool,
) -> std::io::Result<overlay::Mount> {
    overlay::Mount::new(
        lower,
        &dir.path().join("upper"),
        &dir.path().join("work"),
        &dir.path().join("rootfs"),
        userxattr,
    )
}
