//! The one path-safety primitive (style rule 6): every write into a root filesystem goes
//! through a [`RootDir`].
//!
//! Package installation (`shared/docs/apk-format.md` §1.6 and §4.8), upload handling, `COPY`
//! into an image and unpacking all extract attacker-influenced names into a directory. A
//! [`RootDir`] holds an fd of that directory and resolves every relative path *inside* it with
//! chroot semantics: `..` stops at the root, absolute symlink targets start at the root, and
//! symlink chains are followed up to Linux's limit (then `ELOOP`). Resolution uses
//! `openat2(RESOLVE_IN_ROOT)` where the kernel allows it and an equivalent userspace walk where
//! it does not ([`Resolver`]). Operations then act on the *last* component inside an fd of its
//! parent without following it, so a symlink planted by one entry can never redirect a later
//! write outside the root (the way youki's `scoped_join` and runc's `securejoin` guard a
//! container rootfs).
//!
//! Archive entry names are checked strictly first ([`check_entry_name`]): a package entry
//! named `../../etc/passwd` is refused with an error, not silently clamped. Symlink *targets*
//! are stored verbatim (`/etc/foo` or `../../x` are legitimate in a rootfs); they are only
//! ever interpreted relative to the root. apk's own skip rules (names starting with `.`,
//! `.keep_*` files, §1.6) are installer policy and live with the installer.
//!
//! Threat model: hostile archive contents. A concurrent process that rewrites the tree while
//! we work on it is out of scope, although the fd-based design leaves it only narrow windows
//! (documented on [`RootDir::set_mode`]).

mod apply;
mod error;
#[cfg(test)]
mod proptests;
mod resolve;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

pub use apply::{Applied, ApplyOptions, DevicePolicy, EntryKind, EntryMeta, check_entry_name};
pub use error::RootfsError;
pub use resolve::SymlinkHop;

/// How paths are resolved inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolver {
    /// Use the kernel when `openat2` works, else the userspace walk (probed at open).
    #[default]
    Auto,
    /// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`; opening fails if it is unavailable.
    Kernel,
    /// The component-by-component `openat(O_PATH | O_NOFOLLOW)` walk.
    Userspace,
}

/// A special file for [`RootDir::mknod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device (`c` in `ls -l`, tar typeflag `3`).
    CharDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A block device (tar typeflag `4`).
    BlockDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A named pipe (tar typeflag `6`); needs no privilege.
    Fifo,
}

/// A directory used as the root for every path given to its methods.
///
/// Paths are relative to the root; a leading `/` is allowed and means the same. Nothing any
/// method creates, modifies or follows is outside the root. Methods that act on a path act on
/// its last component itself (like `lstat`, `lchown`), except [`open_dir`](Self::open_dir)
/// and [`open_file`](Self::open_file), which follow a final symlink (inside the root).
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
    resolver: Resolver,
}

type Result<T, E = RootfsError> = std::result::Result<T, E>;

impl RootDir {
    /// Opens `path` as a root, choosing the resolver automatically ([`Resolver::Auto`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Resolver::Auto)
    }

    /// Opens `path` as a root with the given resolver. [`Resolver::Auto`] probes `openat2` once
    /// here and falls back to the userspace walk on `ENOSYS`, `EPERM` or `EINVAL`.
    pub fn open_with(path: impl AsRef<Path>, resolver: Resolver) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // The root itself is the caller's choice, so following symlinks to reach it is fine.
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootfsError::OpenRoot {
            root: path.clone(),
            source: e.into(),
        })?;
        let resolver = match resolver {
            Resolver::Userspace => Resolver::Userspace,
            Resolver::Kernel | Resolver::Auto => {
                match resolve::kernel(fd.as_fd(), Path::new("."), OFlags::PATH | OFlags::CLOEXEC) {
                    Ok(_) => Resolver::Kernel,
                    Err(e) if resolve::openat2_unavailable(e) && resolver == Resolver::Auto => {
                        Resolver::Userspace
                    }
                    Err(e) => {
                        return Err(RootfsError::KernelResolverUnavailable {
                            root: path,
                            source: e.into(),
                        });
                    }
                }
            }
        };
        Ok(Self { fd, path, resolver })
    }

    /// The root's path as given when it was opened (for messages only: all access is by fd).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The resolver in use: [`Resolver::Kernel`] or [`Resolver::Userspace`], never `Auto`.
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// Another handle to the same root.
    pub fn try_clone(&self) -> Result<Self> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| self.io(Path::new(""), "clone the root fd", e))?;
        Ok(Self {
            fd,
            path: self.path.clone(),
            resolver: self.resolver,
        })
    }

    /// Opens the directory at `rel` as a new root (a "sub-root"): its paths cannot leave it,
    /// not even back into this root.
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Self> {
        let rel = rel.as_ref();
        let fd = self.resolve_dir(rel)?;
        Ok(Self {
            fd,
            path: self.path.join(strip_root(rel)),
            resolver: self.resolver,
        })
    }

    /// Opens the regular file at `rel` for reading, following symlinks inside the root (for
    /// example the image's `etc/passwd` when mapping owner names, §4.8).
    pub fn open_file(&self, rel: impl AsRef<Path>) -> Result<File> {
        let rel = rel.as_ref();
        let op = "open for reading";
        // Look at what the path leads to before opening it for I/O: opening a device node
        // can have side effects, and a FIFO would block.
        let (path_fd, parent) = match self.resolver {
            Resolver::Userspace => {
                let walked =
                    resolve::walk(self.fd.as_fd(), rel).map_err(|f| self.resolve_error(rel, f))?;
                (walked.fd, walked.parent)
            }
            _ => (self.resolve(rel)?, None),
        };
        let expected = fstat(&path_fd, self, rel)?;
        if FileType::from_raw_mode(expected.st_mode) != FileType::RegularFile {
            return Err(self.refused(rel, op, "not a regular file"));
        }
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match parent {
            // Userspace: reopen the last component in its directory, never following it.
            Some((dir, name)) => {
                let dir = dir.as_ref().map_or(self.fd.as_fd(), AsFd::as_fd);
                rustix::fs::openat(dir, &name, flags | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(|e| self.io(rel, op, e))?
            }
            None => self.resolve_kernel(rel, flags)?,
        };
        // The path was resolved twice; refuse if it changed in between.
        let actual = fstat(&fd, self, rel)?;
        if (actual.st_dev, actual.st_ino) != (expected.st_dev, expected.st_ino) {
            return Err(self.io(rel, op, Errno::AGAIN));
        }
        Ok(File::from(fd))
    }

    /// Creates the directory `rel` and any missing parents with `mode` (minus the umask, as
    /// `mkdir -p`). Existing directories, and symlinks to directories inside the root, are
    /// accepted as they are.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<()> {
        let rel = rel.as_ref();
        if self.resolve_dir(rel).is_ok() {
            return Ok(());
        }
        let bytes = rel.as_os_str().as_bytes();
        let mut start = 0;
        for (i, &b) in bytes
            .iter()
            .enumerate()
            .chain(std::iter::once((bytes.len(), &b'/')))
        {
            if b != b'/' {
                continue;
            }
            let name = OsStr::from_bytes(&bytes[start..i]);
            let prefix = Path::new(OsStr::from_bytes(&bytes[..start]));
            start = i + 1;
            if matches!(name.as_bytes(), b"" | b"." | b"..") {
                continue;
            }
            let parent = self.resolve_dir_for(prefix, rel)?;
            match rustix::fs::mkdirat(&parent, name, mode_of(mode & 0o7777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(self.io(rel, "create directory", e)),
            }
        }
        // Fails with ENOTDIR if a file or a dangling symlink was in the way.
        self.resolve_dir(rel).map(drop)
    }

    /// Creates a regular file at `rel` for writing, with `mode` (minus the umask). The parent
    /// must exist. An existing file, symlink or special file at `rel` is *replaced* (unlinked
    /// first, as apk and tar do), so writing never goes through a planted symlink; an existing
    /// directory is an error.
    pub fn create_file(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        let rel = rel.as_ref();
        let (dir, name) = self.slot(rel, "create file")?;
        let fd = rustix::fs::openat(
            &dir,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode_of(mode & 0o7777),
        )
        .map_err(|e| self.io(rel, "create file", e))?;
        Ok(File::from(fd))
    }

    /// Creates a symlink at `rel` whose target is stored verbatim. The target may point
    /// anywhere, even outside the root: it is only ever resolved relative to the root. Replaces
    /// an existing non-directory at `rel`.
    pub fn symlink(&self, rel: impl AsRef<Path>, target: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.slot(rel, "create symlink")?;
        rustix::fs::symlinkat(target.as_ref(), &dir, &name)
            .map_err(|e| self.io(rel, "create symlink", e))
    }

    /// Creates `rel` as a hard link to `existing` (both inside the root; a symlink at
    /// `existing` is linked itself, not followed). Replaces an existing non-directory at `rel`.
    pub fn hard_link(&self, rel: impl AsRef<Path>, existing: impl AsRef<Path>) -> Result<()> {
        let (rel, existing) = (rel.as_ref(), existing.as_ref());
        let op = "create hard link";
        let (src_dir, src_name) = self.parent_and_name(existing, op)?;
        let src = rustix::fs::statat(&src_dir, &src_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(existing, "find hard link target", e))?;
        // Linking a path to itself (seen in sloppy archives) must not unlink the only copy.
        if let Ok(cur) = self.lstat(rel)
            && (cur.st_dev, cur.st_ino) == (src.st_dev, src.st_ino)
        {
            return Ok(());
        }
        let (dir, name) = self.slot(rel, op)?;
        rustix::fs::linkat(&src_dir, &src_name, &dir, &name, AtFlags::empty())
            .map_err(|e| self.io(rel, op, e))
    }

    /// Renames the entry `from` to `to` (both inside the root, neither followed), replacing
    /// a non-directory at `to` in one step.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let op = "rename";
        let (src_dir, src_name) = self.parent_and_name(from, op)?;
        let (dst_dir, dst_name) = self.parent_and_name(to, op)?;
        rustix::fs::renameat(&src_dir, &src_name, &dst_dir, &dst_name)
            .map_err(|e| self.io(to, op, e))
    }

    /// Creates a device node or FIFO at `rel` with `mode` (minus the umask), replacing an
    /// existing non-directory. Device nodes need `CAP_MKNOD`; without it this fails with
    /// [`RootfsError::DeviceNotPermitted`] (an `EPERM`), and callers decide whether to skip.
    pub fn mknod(&self, rel: impl AsRef<Path>, kind: NodeKind, mode: u32) -> Result<()> {
        let rel = rel.as_ref();
        let (file_type, dev, label) = match kind {
            NodeKind::CharDevice { major, minor } => (
                FileType::CharacterDevice,
                rustix::fs::makedev(major, minor),
                "character",
            ),
            NodeKind::BlockDevice { major, minor } => (
                FileType::BlockDevice,
                rustix::fs::makedev(major, minor),
                "block",
            ),
            NodeKind::Fifo => (FileType::Fifo, 0, "fifo"),
        };
        let (dir, name) = self.slot(rel, "create special file")?;
        match rustix::fs::mknodat(&dir, &name, file_type, mode_of(mode & 0o7777), dev) {
            Ok(()) => Ok(()),
            Err(Errno::PERM) if kind != NodeKind::Fifo => Err(RootfsError::DeviceNotPermitted {
                root: self.path.clone(),
                path: rel.to_path_buf(),
                kind: label,
                source: Errno::PERM.into(),
            }),
            Err(e) => Err(self.io(rel, "create special file", e)),
        }
    }

    /// Sets the owner of `rel` itself (a symlink is not followed: `lchown`).
    pub fn set_owner(&self, rel: impl AsRef<Path>, uid: u32, gid: u32) -> Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_or_self(rel)?;
        let (uid, gid) = owner(uid, gid);
        rustix::fs::chownat(&dir, &name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(rel, "set owner", e))
    }

    /// Sets the permission bits (including setuid/setgid/sticky) of `rel`. A symlink at `rel`
    /// is left alone: Linux ignores symlink modes, and following it is exactly what we must
    /// not do.
    ///
    /// Linux has no `lchmod`, so regular files and directories are opened with `O_NOFOLLOW`
    /// and changed through the fd. Special files (and files we may not open) are changed by
    /// name after checking they are not symlinks, which leaves a window only for a concurrent
    /// writer inside the root (outside the threat model, see the module docs).
    pub fn set_mode(&self, rel: impl AsRef<Path>, mode: u32) -> Result<()> {
        let rel = rel.as_ref();
        let op = "set mode";
        let (dir, name) = self.parent_or_self(rel)?;
        let mode = mode_of(mode & 0o7777);
        match self.open_nofollow(&dir, &name, rel, op)? {
            Opened::Symlink => Ok(()),
            Opened::Fd(fd) => rustix::fs::fchmod(&fd, mode).map_err(|e| self.io(rel, op, e)),
            Opened::ByName => rustix::fs::chmodat(&dir, &name, mode, AtFlags::empty())
                .map_err(|e| self.io(rel, op, e)),
        }
    }

    /// Sets the modification and access time of `rel` itself to `mtime` (seconds since the
    /// epoch), without following a symlink.
    pub fn set_mtime(&self, rel: impl AsRef<Path>, mtime: i64) -> Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_or_self(rel)?;
        rustix::fs::utimensat(&dir, &name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(rel, "set mtime", e))
    }

    /// Sets the extended attribute `name` (e.g. `security.capability`, from a
    /// `SCHILY.xattr.*` pax record, §1.6) on the regular file or directory `rel`. Set it after
    /// [`set_owner`](Self::set_owner): changing the owner clears `security.capability`.
    pub fn set_xattr(&self, rel: impl AsRef<Path>, name: &str, value: &[u8]) -> Result<()> {
        let rel = rel.as_ref();
        let op = "set xattr";
        let (dir, last) = self.parent_or_self(rel)?;
        match self.open_nofollow(&dir, &last, rel, op)? {
            Opened::Fd(fd) => {
                rustix::fs::fsetxattr(&fd, name, value, rustix::fs::XattrFlags::empty())
                    .map_err(|e| self.io(rel, op, e))
            }
            Opened::Symlink | Opened::ByName => Err(self.refused(
                rel,
                op,
                "only regular files and directories can carry xattrs here",
            )),
        }
    }

    /// Removes the file, symlink, special file or *empty* directory `rel` (not following a
    /// symlink).
    pub fn remove(&self, rel: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel, "remove")?;
        match rustix::fs::unlinkat(&dir, &name, AtFlags::empty()) {
            Err(Errno::ISDIR) => rustix::fs::unlinkat(&dir, &name, AtFlags::REMOVEDIR),
            other => other,
        }
        .map_err(|e| self.io(rel, "remove", e))
    }

    /// Reads the target of the symlink `rel`, verbatim.
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<PathBuf> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel, "read symlink")?;
        let target = rustix::fs::readlinkat(&dir, &name, Vec::new())
            .map_err(|e| self.io(rel, "read symlink", e))?;
        Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
    }

    /// Metadata of `rel` itself, like `lstat` (a final symlink is described, not followed).
    pub fn metadata(&self, rel: impl AsRef<Path>) -> Result<Metadata> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_or_self(rel)?;
        let fd = rustix::fs::openat(
            &dir,
            &name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(rel, "read metadata", e))?;
        // fstat works on O_PATH fds, so this never opens the object for I/O.
        File::from(fd)
            .metadata()
            .map_err(|e| self.io(rel, "read metadata", e))
    }

    /// Whether something (including a dangling symlink) exists at `rel`.
    pub fn exists(&self, rel: impl AsRef<Path>) -> Result<bool> {
        match self.metadata(rel) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e)
                if e.io_error().and_then(io::Error::raw_os_error)
                    == Some(Errno::NOTDIR.raw_os_error()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The parent directory of `rel` and its last component; refuses paths that end in the
    /// root itself or in `.`/`..` (those name a directory, never a new entry).
    fn parent_and_name(&self, rel: &Path, op: &'static str) -> Result<(OwnedFd, OsString)> {
        let split = resolve::split_last(rel);
        let Some(name) = split.name else {
            return Err(self.refused(rel, op, "the path names the root or ends in `.`/`..`"));
        };
        Ok((self.resolve_dir_for(split.dir, rel)?, name.to_os_string()))
    }

    /// Like [`parent_and_name`](Self::parent_and_name), but a path naming a directory through
    /// `.`/`..` (or the root) resolves to that directory and `.` inside it.
    fn parent_or_self(&self, rel: &Path) -> Result<(OwnedFd, OsString)> {
        let split = resolve::split_last(rel);
        let name = split
            .name
            .map_or_else(|| OsString::from("."), OsStr::to_os_string);
        Ok((self.resolve_dir_for(split.dir, rel)?, name))
    }

    /// Makes room for a new entry at `rel`: resolves the parent and unlinks whatever
    /// non-directory is there (never following it).
    fn slot(&self, rel: &Path, op: &'static str) -> Result<(OwnedFd, OsString)> {
        let (dir, name) = self.parent_and_name(rel, op)?;
        match rustix::fs::unlinkat(&dir, &name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok((dir, name)),
            Err(Errno::ISDIR) => Err(self.refused(rel, op, "a directory is in the way")),
            Err(e) => Err(self.io(rel, op, e)),
        }
    }

    fn lstat(&self, rel: &Path) -> Result<rustix::fs::Stat> {
        let (dir, name) = self.parent_or_self(rel)?;
        rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(rel, "stat", e))
    }

    /// Opens `name` in `dir` for fd-based metadata changes without following a symlink.
    fn open_nofollow(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        rel: &Path,
        op: &'static str,
    ) -> Result<Opened> {
        let path_fd = rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(rel, op, e))?;
        let extra = match FileType::from_raw_mode(fstat(&path_fd, self, rel)?.st_mode) {
            FileType::Symlink => return Ok(Opened::Symlink),
            FileType::Directory => OFlags::DIRECTORY,
            FileType::RegularFile => OFlags::NONBLOCK | OFlags::NOCTTY,
            // Opening a device can have side effects and a socket cannot be opened at all;
            // FIFOs are rare enough to share the by-name path.
            _ => return Ok(Opened::ByName),
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra;
        match rustix::fs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Opened::Fd(fd)),
            // e.g. a mode-000 file when unprivileged: fall back to the by-name call.
            Err(Errno::ACCESS) => Ok(Opened::ByName),
            Err(e) => Err(self.io(rel, op, e)),
        }
    }

    fn io(&self, rel: &Path, op: &'static str, err: impl Into<io::Error>) -> RootfsError {
        RootfsError::Io {
            root: self.path.clone(),
            path: rel.to_path_buf(),
            op,
            source: err.into(),
        }
    }

    fn refused(&self, rel: &Path, op: &'static str, reason: &'static str) -> RootfsError {
        RootfsError::Refused {
            root: self.path.clone(),
            path: rel.to_path_buf(),
            op,
            reason,
        }
    }
}

impl AsFd for RootDir {
    /// The root directory's `O_PATH` fd, for `*at` calls the methods do not cover.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// How [`RootDir::open_nofollow`] could open an entry.
enum Opened {
    Fd(OwnedFd),
    Symlink,
    ByName,
}

fn fstat(fd: &OwnedFd, root: &RootDir, rel: &Path) -> Result<rustix::fs::Stat> {
    rustix::fs::fstat(fd).map_err(|e| root.io(rel, "stat", e))
}

/// `(uid_t)-1` means "leave unchanged" to `chown(2)`; say so explicitly, since rustix
/// debug-asserts against it and the value can come from a hostile tar header.
fn owner(uid: u32, gid: u32) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    (
        (uid != u32::MAX).then(|| rustix::fs::Uid::from_raw(uid)),
        (gid != u32::MAX).then(|| rustix::fs::Gid::from_raw(gid)),
    )
}

fn mode_of(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
}

fn timestamps(secs: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// `rel` without leading slashes, for display paths of sub-roots.
fn strip_root(rel: &Path) -> &Path {
    rel.strip_prefix("/").unwrap_or(rel)
}
