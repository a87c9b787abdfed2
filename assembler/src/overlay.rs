//! Copy-on-write build roots: overlayfs over a base extracted once into the store
//! ([`crate::bases`]), so a stage on a 1 GB base starts with a mount instead of extracting
//! the whole base, and the step's snapshot reads only what the step changed.
//!
//! Why overlayfs in a private mount namespace (measured on a 1 GB, 16k-file root; the
//! snapshot bench prints the end-to-end figures): mounting takes ~5 ms and a scan through
//! the mount ~15–30 ms. fuse-overlayfs needs a daemon and one more package, and its first
//! scan of the same root took 0.5 s. A hard-link farm took 0.3 s to make and 1.4 s to remove,
//! and a step writing a file in place (`>>`) would change the kept base through the shared
//! inode. ext4 has no reflinks.
//!
//! The namespace: the mount must be seen by our own writes (COPY, ADD, the native apk), by
//! the scans and by bubblewrap, so `assemble build` moves its whole process into a private
//! mount namespace first ([`enter`], before any thread starts): as root, a mount namespace;
//! otherwise a user namespace mapping only our own uid and gid, to themselves (files,
//! owners and `geteuid` read as before, and bubblewrap nests its own namespace inside it),
//! and a mount namespace it owns, where overlayfs may be mounted (Linux ≥ 5.11, with
//! `userxattr`). The mounts go with the process: nothing stays mounted on the host, even
//! after a crash. Where any of this fails, builds extract their base as before, with a note.

use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

/// Whether build roots can be overlays here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cow {
    /// Not asked for (library callers not in a namespace of their own): bases are
    /// extracted into each build root, as before.
    #[default]
    Off,
    /// Asked for but unavailable here, with the reason (the build notes it once).
    Unavailable(String),
    /// overlayfs in our private mount namespace; `userxattr` when a user namespace owns it
    /// (overlayfs then keeps its whiteouts' and opaque directories' marks in `user.*`).
    Overlay {
        /// Mount with `userxattr`.
        userxattr: bool,
    },
}

impl Cow {
    /// The note to print when a base is extracted after all.
    pub fn note(&self) -> Option<String> {
        match self {
            Self::Unavailable(why) => Some(format!(
                "overlayfs is unavailable ({why}); extracting the base into the build root instead"
            )),
            _ => None,
        }
    }
}

/// Moves this process into a private mount namespace where overlayfs may be mounted (see
/// the module docs). Call it before the process starts a thread: a user namespace can be
/// entered only by a single-threaded process.
pub fn enter() -> Result<Cow, Fatal> {
    use rustix::thread::UnshareFlags;
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    if uid == 0 {
        // Root keeps the host's ids (the sandbox maps the image's 65536 of them from
        // here), so no user namespace: a mount namespace alone.
        let entered = unshare(UnshareFlags::NEWNS)
            .map_err(|e| format!("cannot make a private mount namespace: {e}"))
            .and_then(|()| private_mounts());
        return Ok(usable(entered, false));
    }
    if let Err(e) = unshare(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) {
        return Ok(Cow::Unavailable(format!(
            "cannot create a user namespace: {e}"
        )));
    }
    // From here on the process is in the new namespace: without its maps every file would
    // look owned by `nobody`, so a failure is fatal rather than a fallback.
    let maps = [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("{uid} {uid} 1\n")),
        ("/proc/self/gid_map", format!("{gid} {gid} 1\n")),
    ];
    for (file, map) in maps {
        fs_err::write(file, map).map_err(|source| Fatal::NoIdMap { source })?;
    }
    Ok(usable(private_mounts(), true))
}

/// Overlays with `userxattr` once the namespace is `entered`, else why not.
fn usable(entered: Result<(), String>, userxattr: bool) -> Cow {
    match entered {
        Ok(()) => Cow::Overlay { userxattr },
        Err(why) => Cow::Unavailable(why),
    }
}

/// Entering the namespace went wrong past the point of return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Fatal {
    /// The process is in a new user namespace that has no id map: every file would look
    /// owned by `nobody`.
    #[error(
        "the user namespace made for copy-on-write build roots could not be given an id map; \
         set ASSEMBLE_NO_OVERLAY=1 to build without it"
    )]
    NoIdMap {
        /// Cause.
        source: io::Error,
    },
}

/// `unshare(2)`. rustix deprecates its safe wrapper because `CLONE_FILES` can leave a thread
/// with descriptors another thread cannot see; we never pass that flag, and a user
/// namespace refuses a process with other threads anyway (`EINVAL`).
#[allow(deprecated)]
fn unshare(flags: rustix::thread::UnshareFlags) -> rustix::io::Result<()> {
    rustix::thread::unshare(flags)
}

/// Nothing we mount may propagate back to the namespace we came from.
fn private_mounts() -> Result<(), String> {
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| format!("cannot make the mounts private: {e}"))
}

/// An overlayfs mount of a build root: `lower` read-only (the kept base), `upper` what the
/// build changed, seen merged at `merged`. Unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    merged: PathBuf,
    work: PathBuf,
}

impl Mount {
    /// Mounts `lower` + `upper` at `merged`, with `work` as overlayfs's work directory (all
    /// three made empty, on the filesystem of `upper`).
    pub fn new(
        lower: &Path,
        upper: &Path,
        work: &Path,
        merged: &Path,
        userxattr: bool,
    ) -> io::Result<Self> {
        for d in [upper, work, merged] {
            fs_err::create_dir_all(d)?;
        }
        // Redirects (renamed lower directories) and metacopy (a copied-up file's data left
        // below) would make the upper directory an incomplete account of the changes the
        // snapshot reads from it; without them a directory rename of the base is `EXDEV`,
        // which `mv` and friends handle by copying. `volatile`: the upper directory is
        // thrown away after the build, so its writes need no sync (a snapshot's layer is
        // written and synced by us).
        let options = format!(
            "lowerdir={},upperdir={},workdir={},{}metacopy=off,index=off,volatile",
            escape(lower),
            escape(upper),
            escape(work),
            if userxattr {
                "userxattr,"
            } else {
                "redirect_dir=off,"
            },
        );
        let data = std::ffi::CString::new(options).map_err(io::Error::other)?;
        rustix::mount::mount("overlay", merged, "overlay", MountFlags::empty(), &*data).map_err(
            |e| {
                io::Error::new(
                    e.kind(),
                    format!("mounting overlayfs at `{}`: {e}", merged.display()),
                )
            },
        )?;
        Ok(Self {
            merged: merged.to_path_buf(),
            work: work.to_path_buf(),
        })
    }

    /// Where the merged root is.
    pub fn merged(&self) -> &Path {
        &self.merged
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.merged, UnmountFlags::DETACH);
        // overlayfs leaves `work/work` (and `work/index`) with mode 0, which an unprivileged
        // owner cannot empty; open them up so the build root can be removed.
        open_up(&self.work);
    }
}

/// Gives the owner access to `dir` and every directory below it (to remove them).
pub fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_err() {
        return;
    }
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            open_up(&e.path());
        }
    }
}

/// A path as an overlayfs option value: `\`, `,` and `:` escaped.
fn escape(p: &Path) -> String {
    let mut s = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, '\\' | ',' | ':') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_escape_separators() {
        assert_eq!(escape(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
    }

    #[test]
    fn mode_zero_directories_are_opened_up_for_removal() {
        use std::os::unix::fs::PermissionsExt as _;
        let t = tempfile::tempdir().unwrap();
        let w = t.path().join("work/work/inner");
        fs_err::create_dir_all(&w).unwrap();
        for d in [t.path().join("work/work/inner"), t.path().join("work/work")] {
            fs_err::set_permissions(&d, std::fs::Permissions::from_mode(0o0)).unwrap();
        }
        open_up(&t.path().join("work"));
        fs_err::remove_dir_all(t.path().join("work")).unwrap();
    }
}
