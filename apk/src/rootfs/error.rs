//! Errors of the path-safety primitive: every variant names the root and the path relative
//! to it, so a refused package entry or a failed extraction can be reported without guessing.

use std::io;
use std::path::PathBuf;

use super::resolve::SymlinkHop;

/// An error from [`RootDir`](super::RootDir) or [`check_entry_name`](super::check_entry_name).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// An archive entry name that must not be extracted (absolute, `..`, control characters).
    #[error("entry name `{}` {reason}", name.escape_debug())]
    EntryName {
        /// The name as found in the archive.
        name: String,
        /// What is wrong with it, e.g. "has a `..` component".
        reason: &'static str,
    },

    /// The root directory itself could not be opened.
    #[error("cannot open root directory `{}`: {source}", root.display())]
    OpenRoot {
        /// The root as given by the caller.
        root: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// `openat2` was requested explicitly but the kernel or a seccomp filter refuses it.
    #[error(
        "root `{}`: openat2(RESOLVE_IN_ROOT) is not available ({source}); \
         use Resolver::Auto or Resolver::Userspace",
        root.display()
    )]
    KernelResolverUnavailable {
        /// The root being opened.
        root: PathBuf,
        /// The error `openat2` returned.
        source: io::Error,
    },

    /// Looking up a path (or one of its parents) inside the root failed.
    #[error(
        "`{}` in root `{}`: resolving `{}` failed: {source}{}",
        path.display(),
        root.display(),
        at.display(),
        hop_note(via.as_deref())
    )]
    Resolve {
        /// The root.
        root: PathBuf,
        /// The path asked for, relative to the root.
        path: PathBuf,
        /// The prefix, inside the root, whose lookup failed.
        at: PathBuf,
        /// The last symlink that pointed above the root, if any: usually the explanation.
        via: Option<Box<SymlinkHop>>,
        /// The error (`ELOOP` for symlink loops, `ENOENT`, `ENOTDIR` …).
        source: io::Error,
    },

    /// A filesystem operation on an already resolved location failed.
    #[error("`{}` in root `{}`: cannot {op}: {source}", path.display(), root.display())]
    Io {
        /// The root.
        root: PathBuf,
        /// The path, relative to the root.
        path: PathBuf,
        /// What was attempted ("create file", "set owner" …).
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },

    /// The operation makes no sense for what is (or is not) at the path.
    #[error("`{}` in root `{}`: cannot {op}: {reason}", path.display(), root.display())]
    Refused {
        /// The root.
        root: PathBuf,
        /// The path, relative to the root.
        path: PathBuf,
        /// What was attempted.
        op: &'static str,
        /// Why not, e.g. "a directory is in the way".
        reason: &'static str,
    },

    /// Creating a character or block device needs `CAP_MKNOD`.
    #[error(
        "`{}` in root `{}`: creating a {kind} device node needs CAP_MKNOD, which this process \
         lacks ({source}); use DevicePolicy::Skip or DevicePolicy::CreateOrSkip when unprivileged",
        path.display(),
        root.display()
    )]
    DeviceNotPermitted {
        /// The root.
        root: PathBuf,
        /// The device node's path, relative to the root.
        path: PathBuf,
        /// "character" or "block".
        kind: &'static str,
        /// The `EPERM` from `mknodat`.
        source: io::Error,
    },
}

impl RootfsError {
    /// The underlying I/O error, if there is one; callers match on its
    /// [`kind`](io::Error::kind) (`NotFound`, `PermissionDenied` …) or
    /// [`raw_os_error`](io::Error::raw_os_error) (`ELOOP`).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::OpenRoot { source, .. }
            | Self::KernelResolverUnavailable { source, .. }
            | Self::Resolve { source, .. }
            | Self::Io { source, .. }
            | Self::DeviceNotPermitted { source, .. } => Some(source),
            Self::EntryName { .. } | Self::Refused { .. } => None,
        }
    }

    /// Whether the error is "no such file or directory" (also for a missing parent).
    pub fn is_not_found(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    }
}

impl RootfsError {
    /// Reports a failed lookup of a parent as a failure of `rel`, the path the caller asked
    /// about (`at` still says which prefix failed).
    pub(super) fn for_path(mut self, rel: &std::path::Path) -> Self {
        if let Self::Resolve { path, .. } = &mut self {
            *path = rel.to_path_buf();
        }
        self
    }
}

fn hop_note(hop: Option<&SymlinkHop>) -> String {
    match hop {
        Some(hop) if hop.clamped => format!(
            " (through symlink `{}` -> `{}`, which points above the root; its `..` stopped at the root)",
            hop.link.display(),
            hop.target.display()
        ),
        Some(hop) => format!(
            " (through symlink `{}` -> `{}`, an absolute target taken relative to the root)",
            hop.link.display(),
            hop.target.display()
        ),
        None => String::new(),
    }
}
