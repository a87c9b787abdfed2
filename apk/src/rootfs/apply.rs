//! Applying one archive entry (a tar header plus its content) to a root: what package
//! installation (`shared/docs/apk-format.md` §1.6, §4.8 step 1), unpacking and `COPY` share.
//!
//! The order of metadata changes matters: the owner is set before the mode because `chown`
//! clears setuid/setgid bits, and the mtime last because creating entries inside a directory
//! would bump it again (callers that care re-apply directory mtimes after the whole archive,
//! as tar does). xattrs, which `chown` would clear too, are for the caller to set afterwards
//! with [`RootDir::set_xattr`].

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::resolve::split_last;
use super::{NodeKind, RootDir, RootfsError, mode_of, owner, timestamps};

/// Refuses archive entry names that a well-formed package never has: empty, absolute,
/// containing a `..` component, or containing control characters (NUL included).
///
/// This is deliberately stricter than resolution, which would merely confine such names to
/// the root: a package entry named `../../etc/passwd` is hostile or broken, and saying so
/// beats extracting it somewhere surprising. `./` prefixes and trailing slashes (`usr/`) are
/// fine. apk's extra skip rules (§1.6: names starting with `.`, `.keep_*`) are policy for the
/// installer, not a safety matter.
pub fn check_entry_name(name: &str) -> Result<(), RootfsError> {
    let refuse = |reason| {
        Err(RootfsError::EntryName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("is empty");
    }
    if name.chars().any(char::is_control) {
        return refuse("contains a control character");
    }
    if name.starts_with('/') {
        return refuse("is absolute");
    }
    if name.split('/').any(|c| c == "..") {
        return refuse("has a `..` component");
    }
    Ok(())
}

/// What an archive entry is (tar typeflags `0`, `5`, `2`, `1`, `3`, `4`, `6`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its bytes are the `content` reader given to [`RootDir::apply`].
    File,
    /// A directory.
    Dir,
    /// A symlink with this target, stored verbatim.
    Symlink(String),
    /// A hard link to this earlier entry (an entry name, relative to the root).
    HardLink(String),
    /// A character device.
    CharDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One archive entry's header, as an extractor hands it to [`RootDir::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// The entry name (checked with [`check_entry_name`]).
    pub path: String,
    /// What to create.
    pub kind: EntryKind,
    /// Permission bits; file-type bits above `0o7777` are ignored. Unused for symlinks and
    /// hard links.
    pub mode: u32,
    /// Numeric owner (already mapped through the image's `passwd`, §4.8).
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// What to do with character and block device entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePolicy {
    /// Create them; fail without `CAP_MKNOD`.
    Create,
    /// Create them when permitted, skip them otherwise (rootless builds).
    #[default]
    CreateOrSkip,
    /// Never create them.
    Skip,
}

/// Options for [`RootDir::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyOptions {
    /// Set owners from the entry. Only meaningful as root or inside a user namespace: an
    /// unprivileged `chown` to another user fails.
    pub chown: bool,
    /// Device node handling.
    pub devices: DevicePolicy,
}

impl ApplyOptions {
    /// Owners set when the effective uid is 0 (root, or root of a user namespace), devices
    /// created when permitted.
    pub fn for_current_process() -> Self {
        Self {
            chown: rustix::process::geteuid().is_root(),
            devices: DevicePolicy::CreateOrSkip,
        }
    }
}

/// What [`RootDir::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// The entry was created (or, for a directory, already existed) and its metadata set.
    Created,
    /// A device node was skipped, per [`DevicePolicy`].
    SkippedDevice,
    /// A directory entry met a symlink to a directory inside the root (e.g. `lib` ->
    /// `usr/lib` in a merged-/usr image); apk keeps the symlink, and so do we.
    KeptDirectorySymlink,
}

impl RootDir {
    /// Creates one archive entry under the root: checks its name, creates missing parent
    /// directories (mode 0755), creates the entry (replacing an existing non-directory,
    /// never following it), writes `content` for files, then sets owner (if
    /// [`ApplyOptions::chown`]), mode and mtime.
    pub fn apply(
        &self,
        meta: &EntryMeta,
        content: &mut dyn Read,
        opts: &ApplyOptions,
    ) -> Result<Applied, RootfsError> {
        check_entry_name(&meta.path)?;
        let rel = Path::new(&meta.path);
        let parent = split_last(rel);
        if parent.name.is_some() && !parent.dir.as_os_str().is_empty() {
            self.create_dir_all(parent.dir, 0o755)
                .map_err(|err| err.for_path(rel))?;
        }
        match &meta.kind {
            EntryKind::File => {
                // Owner-only until the final mode is set, so a file that ends up private is
                // never readable by others, even briefly.
                let mut file = self.create_file(rel, 0o600)?;
                io::copy(content, &mut file).map_err(|e| self.io(rel, "write file contents", e))?;
                self.finish_fd(file.as_fd(), rel, meta, opts)?;
            }
            EntryKind::Dir => return self.apply_dir(rel, meta, opts),
            EntryKind::Symlink(target) => {
                self.symlink(rel, target)?;
                if opts.chown {
                    self.set_owner(rel, meta.uid, meta.gid)?;
                }
                self.set_mtime(rel, meta.mtime)?;
            }
            EntryKind::HardLink(target) => {
                check_entry_name(target)?;
                // Shares the inode (and so the metadata) of its target.
                self.hard_link(rel, target)?;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                if opts.devices == DevicePolicy::Skip {
                    return Ok(Applied::SkippedDevice);
                }
                let (major, minor) = (*major, *minor);
                let kind = if matches!(meta.kind, EntryKind::CharDevice { .. }) {
                    NodeKind::CharDevice { major, minor }
                } else {
                    NodeKind::BlockDevice { major, minor }
                };
                match self.mknod(rel, kind, 0o600) {
                    Ok(()) => {}
                    Err(RootfsError::DeviceNotPermitted { .. })
                        if opts.devices == DevicePolicy::CreateOrSkip =>
                    {
                        return Ok(Applied::SkippedDevice);
                    }
                    Err(e) => return Err(e),
                }
                self.finish_by_name(rel, meta, opts)?;
            }
            EntryKind::Fifo => {
                self.mknod(rel, NodeKind::Fifo, 0o600)?;
                self.finish_by_name(rel, meta, opts)?;
            }
        }
        Ok(Applied::Created)
    }

    fn apply_dir(
        &self,
        rel: &Path,
        meta: &EntryMeta,
        opts: &ApplyOptions,
    ) -> Result<Applied, RootfsError> {
        let op = "create directory";
        let split = split_last(rel);
        let dir = self.resolve_dir_for(split.dir, rel)?;
        let Some(name) = split.name else {
            // `./` names the root (or a directory reached through `..`, already refused by
            // check_entry_name): update it in place.
            let fd = rustix::fs::openat(&dir, ".", dir_flags(), Mode::empty())
                .map_err(|e| self.io(rel, op, e))?;
            self.finish_fd(fd.as_fd(), rel, meta, opts)?;
            return Ok(Applied::Created);
        };
        match rustix::fs::mkdirat(&dir, name, mode_of(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(self.io(rel, op, e)),
        }
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(rel, op, e))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {}
            FileType::Symlink if self.resolve_dir(rel).is_ok() => {
                return Ok(Applied::KeptDirectorySymlink);
            }
            _ => return Err(self.refused(rel, op, "a non-directory is in the way")),
        }
        match rustix::fs::openat(&dir, name, dir_flags() | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => self.finish_fd(fd.as_fd(), rel, meta, opts)?,
            // An existing unreadable directory when unprivileged: change it by name.
            Err(Errno::ACCESS) => self.finish_by_name(rel, meta, opts)?,
            Err(e) => return Err(self.io(rel, op, e)),
        }
        Ok(Applied::Created)
    }

    /// Owner, mode, mtime through an fd of the entry: no name lookup, so no race.
    fn finish_fd(
        &self,
        fd: BorrowedFd<'_>,
        rel: &Path,
        meta: &EntryMeta,
        opts: &ApplyOptions,
    ) -> Result<(), RootfsError> {
        if opts.chown {
            let (uid, gid) = owner(meta.uid, meta.gid);
            rustix::fs::fchown(fd, uid, gid).map_err(|e| self.io(rel, "set owner", e))?;
        }
        rustix::fs::fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777))
            .map_err(|e| self.io(rel, "set mode", e))?;
        rustix::fs::futimens(fd, &timestamps(meta.mtime)).map_err(|e| self.io(rel, "set mtime", e))
    }

    /// Owner, mode, mtime by name (special files, which we do not open).
    fn finish_by_name(
        &self,
        rel: &Path,
        meta: &EntryMeta,
        opts: &ApplyOptions,
    ) -> Result<(), RootfsError> {
        if opts.chown {
            self.set_owner(rel, meta.uid, meta.gid)?;
        }
        self.set_mode(rel, meta.mode)?;
        self.set_mtime(rel, meta.mtime)
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::path::Path;

    use super::super::tests::Fixture;
    use super::super::*;

    fn entry(path: &str, kind: EntryKind, mode: u32) -> EntryMeta {
        EntryMeta {
            path: path.to_owned(),
            kind,
            mode,
            uid: 4242,
            gid: 4343,
            mtime: 1_700_000_000,
        }
    }

    #[test]
    fn apply_creates_entries_with_metadata() {
        let fx = Fixture::new();
        fx.mkdir("usr/lib");
        fx.symlink("lib", "usr/lib");
        let opts = ApplyOptions::for_current_process();
        let none = &mut std::io::empty();
        for r in fx.roots() {
            let file = entry("usr/bin/tool", EntryKind::File, 0o104_755);
            assert_eq!(
                r.apply(&file, &mut &b"#!/bin/sh\n"[..], &opts).unwrap(),
                Applied::Created
            );
            let meta = r.metadata("usr/bin/tool").unwrap();
            // Setuid survives because the owner is set before the mode.
            assert_eq!(meta.mode() & 0o7777, 0o4755);
            assert_eq!(meta.mtime(), 1_700_000_000);
            assert_eq!(meta.len(), 10);
            if opts.chown {
                assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
            }
            // Parents created on the way get 0755 (minus the umask) and the caller's mtime later.
            assert!(r.metadata("usr/bin").unwrap().is_dir());

            let dir = entry("etc/apk/", EntryKind::Dir, 0o750);
            assert_eq!(r.apply(&dir, none, &opts).unwrap(), Applied::Created);
            assert_eq!(r.metadata("etc/apk").unwrap().mode() & 0o7777, 0o750);
            // Re-applying a directory updates it in place.
            let dir = entry("etc/apk", EntryKind::Dir, 0o755);
            assert_eq!(r.apply(&dir, none, &opts).unwrap(), Applied::Created);
            assert_eq!(r.metadata("etc/apk").unwrap().mode() & 0o7777, 0o755);
            // merged /usr: the `lib` symlink is kept, as apk does.
            let lib = entry("lib", EntryKind::Dir, 0o755);
            assert_eq!(
                r.apply(&lib, none, &opts).unwrap(),
                Applied::KeptDirectorySymlink
            );
            assert!(r.metadata("lib").unwrap().file_type().is_symlink());

            let link = entry(
                "usr/bin/sh",
                EntryKind::Symlink("/bin/busybox".into()),
                0o777,
            );
            r.apply(&link, none, &opts).unwrap();
            assert_eq!(
                r.read_link("usr/bin/sh").unwrap(),
                Path::new("/bin/busybox")
            );
            assert_eq!(r.metadata("usr/bin/sh").unwrap().mtime(), 1_700_000_000);

            let hard = entry(
                "usr/bin/tool2",
                EntryKind::HardLink("usr/bin/tool".into()),
                0,
            );
            r.apply(&hard, none, &opts).unwrap();
            assert_eq!(r.metadata("usr/bin/tool2").unwrap().ino(), meta.ino());

            let fifo = entry("run/fifo", EntryKind::Fifo, 0o620);
            r.apply(&fifo, none, &opts).unwrap();
            assert_eq!(r.metadata("run/fifo").unwrap().mode() & 0o7777, 0o620);

            let null = entry(
                "dev/null",
                EntryKind::CharDevice { major: 1, minor: 3 },
                0o666,
            );
            let skip = ApplyOptions {
                devices: DevicePolicy::Skip,
                ..opts
            };
            assert_eq!(r.apply(&null, none, &skip).unwrap(), Applied::SkippedDevice);
            assert!(!r.exists("dev/null").unwrap());
            match r.apply(&null, none, &opts).unwrap() {
                Applied::Created => {
                    assert!(r.metadata("dev/null").unwrap().file_type().is_char_device());
                }
                other => assert_eq!(other, Applied::SkippedDevice),
            }

            // A file over an existing directory is refused, not merged.
            let clash = entry("etc/apk", EntryKind::File, 0o644);
            let err = r.apply(&clash, none, &opts).unwrap_err();
            assert!(matches!(err, RootfsError::Refused { .. }), "{err}");
            let clash = entry("usr/bin/tool/x", EntryKind::Dir, 0o755);
            assert!(r.apply(&clash, none, &opts).is_err());
            for rel in ["usr", "etc", "run", "dev"] {
                fs_err::remove_dir_all(fx.root.join(rel)).unwrap();
            }
            fx.mkdir("usr/lib");
        }
    }

    #[test]
    fn apply_refuses_hostile_entries() {
        let fx = Fixture::new();
        let opts = ApplyOptions::default();
        let none = &mut std::io::empty();
        fx.symlink("escape", "../outside");
        for r in fx.roots() {
            for (meta, msg) in [
                (
                    entry("../outside/x", EntryKind::File, 0o644),
                    "has a `..` component",
                ),
                (entry("/etc/shadow", EntryKind::File, 0o644), "is absolute"),
                (entry("a\nb", EntryKind::Dir, 0o755), "control character"),
                (
                    entry("x", EntryKind::HardLink("../outside/secret".into()), 0),
                    "`..` component",
                ),
                (
                    entry("y", EntryKind::HardLink("/outside/secret".into()), 0),
                    "is absolute",
                ),
            ] {
                let err = r.apply(&meta, none, &opts).unwrap_err();
                assert!(matches!(err, RootfsError::EntryName { .. }), "{err}");
                assert!(err.to_string().contains(msg), "{err}");
            }
            // A legitimate name through a planted symlink is confined (here: not found).
            let meta = entry("escape/pwned", EntryKind::File, 0o644);
            let err = r.apply(&meta, &mut &b"x"[..], &opts).unwrap_err();
            assert!(err.to_string().contains("`escape/pwned` in root"), "{err}");
            // An entry replacing the planted symlink replaces the link, not its target.
            let meta = entry("escape", EntryKind::File, 0o644);
            r.apply(&meta, &mut &b"x"[..], &opts).unwrap();
            assert!(r.metadata("escape").unwrap().is_file());
            r.remove("escape").unwrap();
            r.symlink("escape", "../outside").unwrap();
            fx.assert_outside_untouched();
        }
    }
}
