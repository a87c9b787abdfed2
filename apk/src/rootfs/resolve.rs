//! Resolving a path inside a root with chroot semantics.
//!
//! Two resolvers with the same contract: `..` never climbs above the root, absolute symlink
//! targets start again at the root, at most [`MAX_SYMLINKS`] symlinks are followed per lookup
//! (more gives `ELOOP`), and every component but the last must be a directory (a trailing `/`
//! or `/.` makes the last one a directory too), exactly as the kernel resolves paths.
//!
//! - [`kernel`] asks Linux ≥ 5.6 to do it: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
//!   The kernel also guards against concurrent renames (it fails with `EAGAIN`, so we retry).
//! - [`walk`] does it in userspace, one `openat(O_PATH | O_NOFOLLOW)` per component with
//!   `readlinkat` on the symlink's own fd, for kernels without `openat2` and for seccomp
//!   profiles (older Docker, some CI runners) that answer it with `ENOSYS` or `EPERM`. Because
//!   it keeps a stack of directory fds and never passes a multi-component path to the kernel,
//!   nothing it opens can be outside the root; `/proc` magic links are read as plain strings
//!   and resolved inside the root, which is what `RESOLVE_NO_MAGICLINKS` guarantees too.
//!
//! The walker also explains failures: which prefix failed and which symlink pointed out of the
//! root, so kernel-resolver errors are re-walked in userspace to produce the same messages.
//! The `RootDir` lookup methods that pick a resolver live here too.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{Resolver, Result, RootDir, RootfsError, fstat};

/// Linux's own limit (`MAXSYMLINKS`), so both resolvers agree on when a chain is a loop.
pub(super) const MAX_SYMLINKS: usize = 40;

/// `openat2` can fail with `EAGAIN` when a rename or mount raced with `..` resolution.
const EAGAIN_RETRIES: usize = 32;

/// The `RESOLVE_*` flags used for every kernel lookup.
pub(super) fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Whether an `openat2` error means "this kernel or sandbox cannot do it", as opposed to a
/// real lookup failure.
pub(super) fn openat2_unavailable(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::OPNOTSUPP
    )
}

/// Resolves `path` under `root` with the kernel and opens the result with `flags`.
pub(super) fn kernel(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    // openat2 rejects an empty path; "." is the root itself, as for the walker.
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, path, flags, Mode::empty(), resolve_flags()) {
            Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// A symlink the walker went through whose target pointed above the root; reported in errors
/// because it is usually why a lookup ended somewhere unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkHop {
    /// The symlink, relative to the root.
    pub link: PathBuf,
    /// Its target, verbatim.
    pub target: PathBuf,
    /// `true` if a `..` of the target was stopped at the root; `false` if the target is
    /// absolute and was therefore taken relative to the root.
    pub clamped: bool,
}

/// Why a userspace walk failed.
#[derive(Debug)]
pub(super) struct Failure {
    pub errno: Errno,
    /// The logical prefix (inside the root) whose lookup failed.
    pub at: PathBuf,
    pub via: Option<Box<SymlinkHop>>,
}

/// What a successful walk found.
#[derive(Debug)]
pub(super) struct Walked {
    /// `O_PATH` fd of the final object (symlinks followed).
    pub fd: OwnedFd,
    /// For a non-directory: the directory it was found in (`None` = the root) and its name
    /// there, so it can be reopened for reading with `O_NOFOLLOW`.
    pub parent: Option<(Option<OwnedFd>, OsString)>,
}

/// One pending component and the symlink (index into `hops`) it came from.
type Pending = (OsString, Option<usize>);

fn split(path: &[u8], origin: Option<usize>) -> impl Iterator<Item = Pending> + '_ {
    path.split(|&b| b == b'/')
        .map(move |c| (OsStr::from_bytes(c).to_os_string(), origin))
}

fn join(names: &[OsString], last: Option<&OsStr>) -> PathBuf {
    let mut path = PathBuf::new();
    for name in names.iter().map(OsString::as_os_str).chain(last) {
        path.push(name);
    }
    path
}

/// Resolves `path` under `root` in userspace (see the module docs).
pub(super) fn walk(root: BorrowedFd<'_>, path: &Path) -> Result<Walked, Failure> {
    let mut w = Walker {
        root,
        stack: Vec::new(),
        queue: split(path.as_os_str().as_bytes(), None).collect(),
        hops: Vec::new(),
        via: None,
    };
    while let Some((name, origin)) = w.queue.pop_front() {
        if w.dots(&name, origin) {
            continue;
        }
        if let Some(found) = w.step(name)? {
            return Ok(found);
        }
    }
    w.finish()
}

/// The state of one userspace walk.
struct Walker<'r> {
    root: BorrowedFd<'r>,
    /// Directories entered below the root, with their names (for messages). `..` pops.
    stack: Vec<(OwnedFd, OsString)>,
    /// Components still to resolve (a symlink's target is pushed in front).
    queue: VecDeque<Pending>,
    hops: Vec<SymlinkHop>,
    /// The hop that sent the walk back to the root, for messages.
    via: Option<usize>,
}

impl Walker<'_> {
    /// The failure at the current position, `last` being the component being looked up.
    fn fail(&self, errno: Errno, last: Option<&OsStr>) -> Failure {
        let names: Vec<OsString> = self.stack.iter().map(|(_, n)| n.clone()).collect();
        Failure {
            errno,
            at: join(&names, last),
            via: self.via.map(|i| Box::new(self.hops[i].clone())),
        }
    }

    /// `""`, `.` and `..`: handled here (true), without a lookup.
    fn dots(&mut self, name: &OsStr, origin: Option<usize>) -> bool {
        match name.as_bytes() {
            // The current position is always a directory, so these are no-ops here; a
            // trailing "/" after a non-directory is caught in `step` as ENOTDIR.
            b"" | b"." => true,
            b".." => {
                if self.stack.pop().is_none() {
                    // Chroot semantics: `..` at the root stays at the root.
                    if let Some(i) = origin {
                        self.hops[i].clamped = true;
                        self.via = Some(i);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Looks `name` up in the current directory: enters a directory, follows a symlink, or
    /// ends the walk at the last component (`Some`).
    fn step(&mut self, name: OsString) -> Result<Option<Walked>, Failure> {
        let cur = self.stack.last().map_or(self.root, |(fd, _)| fd.as_fd());
        let opened = rustix::fs::openat(
            cur,
            &name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let fd = opened.map_err(|e| self.fail(e, Some(&name)))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| self.fail(e, Some(&name)))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => self.stack.push((fd, name)),
            FileType::Symlink => self.follow(&fd, &name)?,
            _ if self.queue.is_empty() => {
                let parent = self.stack.pop().map(|(fd, _)| fd);
                return Ok(Some(Walked {
                    fd,
                    parent: Some((parent, name)),
                }));
            }
            // A file with more components after it (even just a trailing "/").
            _ => return Err(self.fail(Errno::NOTDIR, Some(&name))),
        }
        Ok(None)
    }

    /// Puts the target of the symlink `fd` (named `name`) in front of the queue.
    fn follow(&mut self, fd: &OwnedFd, name: &OsStr) -> Result<(), Failure> {
        if self.hops.len() >= MAX_SYMLINKS {
            return Err(self.fail(Errno::LOOP, Some(name)));
        }
        // Read the link through its own fd: no second lookup of `name` that a
        // concurrent rename could redirect.
        let target = rustix::fs::readlinkat(fd, "", Vec::new())
            .map_err(|e| self.fail(e, Some(name)))?
            .into_bytes();
        if target.is_empty() {
            return Err(self.fail(Errno::NOENT, Some(name)));
        }
        let names: Vec<OsString> = self.stack.iter().map(|(_, n)| n.clone()).collect();
        let absolute = target.starts_with(b"/");
        self.hops.push(SymlinkHop {
            link: join(&names, Some(name)),
            target: PathBuf::from(OsString::from_vec(target.clone())),
            clamped: false,
        });
        let hop = self.hops.len() - 1;
        if absolute {
            // Absolute targets are relative to the root, as under chroot(2).
            self.stack.clear();
            self.via = Some(hop);
        }
        let pending: Vec<Pending> = split(&target, Some(hop)).collect();
        for item in pending.into_iter().rev() {
            self.queue.push_front(item);
        }
        Ok(())
    }

    /// The walk ended on a directory: the last one entered, or the root.
    fn finish(mut self) -> Result<Walked, Failure> {
        let fd = match self.stack.pop() {
            Some((fd, _)) => fd,
            None => rustix::fs::openat(
                self.root,
                ".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Failure {
                errno: e,
                at: PathBuf::new(),
                via: None,
            })?,
        };
        Ok(Walked { fd, parent: None })
    }
}

impl RootDir {
    /// Resolves `rel` (following symlinks inside the root) to an `O_PATH` fd.
    pub(crate) fn resolve(&self, rel: &Path) -> Result<OwnedFd> {
        match self.resolver {
            Resolver::Userspace => walk(self.fd.as_fd(), rel)
                .map(|w| w.fd)
                .map_err(|f| self.resolve_error(rel, f)),
            _ => self.resolve_kernel(rel, OFlags::PATH | OFlags::CLOEXEC),
        }
    }

    /// Resolves `rel` to an `O_PATH` fd of a directory (`ENOTDIR` otherwise).
    pub(super) fn resolve_dir(&self, rel: &Path) -> Result<OwnedFd> {
        match self.resolver {
            Resolver::Userspace => {
                let fd = self.resolve(rel)?;
                let stat = fstat(&fd, self, rel)?;
                if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                    Ok(fd)
                } else {
                    Err(self.resolve_error(
                        rel,
                        Failure {
                            errno: Errno::NOTDIR,
                            at: rel.to_path_buf(),
                            via: None,
                        },
                    ))
                }
            }
            _ => self.resolve_kernel(rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC),
        }
    }

    /// [`resolve_dir`](Self::resolve_dir) of `dir`, a prefix of `rel`, with errors naming
    /// `rel`: the caller asked about `rel`, and `at` already says which prefix failed.
    pub(super) fn resolve_dir_for(&self, dir: &Path, rel: &Path) -> Result<OwnedFd> {
        self.resolve_dir(dir).map_err(|err| err.for_path(rel))
    }

    pub(super) fn resolve_kernel(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd> {
        kernel(self.fd.as_fd(), rel, flags).map_err(|errno| {
            // Walk again in userspace to say *where* and *through which symlink* it failed.
            match walk(self.fd.as_fd(), rel) {
                Err(failure) if failure.errno == errno => self.resolve_error(rel, failure),
                _ => self.resolve_error(
                    rel,
                    Failure {
                        errno,
                        at: rel.to_path_buf(),
                        via: None,
                    },
                ),
            }
        })
    }

    pub(super) fn resolve_error(&self, rel: &Path, failure: Failure) -> RootfsError {
        RootfsError::Resolve {
            root: self.path.clone(),
            path: rel.to_path_buf(),
            at: failure.at,
            via: failure.via,
            source: failure.errno.into(),
        }
    }
}

/// A relative path split into the directory holding its last component and that component's
/// name; `None` when the path names a directory reached through `.`/`..` or the root itself,
/// in which case `dir` is the whole path and callers act on `.` inside it.
pub(super) struct Split<'a> {
    pub dir: &'a Path,
    pub name: Option<&'a OsStr>,
}

/// Splits `path` at its last `/`, ignoring trailing slashes (`usr/` is the entry `usr`).
pub(super) fn split_last(path: &Path) -> Split<'_> {
    let bytes = path.as_os_str().as_bytes();
    let mut end = bytes.len();
    while end > 0 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    let trimmed = &bytes[..end];
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    if matches!(name, b"" | b"." | b"..") {
        Split {
            dir: path,
            name: None,
        }
    } else {
        Split {
            dir: Path::new(OsStr::from_bytes(dir)),
            name: Some(OsStr::from_bytes(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_cases() {
        let s = |p: &str| {
            let s = split_last(Path::new(p));
            (
                s.dir.to_str().unwrap().to_owned(),
                s.name.map(|n| n.to_str().unwrap().to_owned()),
            )
        };
        assert_eq!(s("usr/bin/x"), ("usr/bin".into(), Some("x".into())));
        assert_eq!(s("usr/"), (String::new(), Some("usr".into())));
        assert_eq!(s("x"), (String::new(), Some("x".into())));
        assert_eq!(s("/x"), (String::new(), Some("x".into())));
        assert_eq!(s("a/.."), ("a/..".into(), None));
        assert_eq!(s("a/."), ("a/.".into(), None));
        assert_eq!(s(""), (String::new(), None));
        assert_eq!(s("/"), ("/".into(), None));
    }
}
