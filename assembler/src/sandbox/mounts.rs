//! Filesystems mounted over the image root for one command (`RUN --mount`): host
//! directories and files bound read-only or read-write, tmpfs, and files whose bytes
//! bubblewrap copies into its own tmpfs (secrets: nothing of them on disk).
//!
//! bubblewrap creates a missing mountpoint in the root, which is on disk: the engine makes
//! and removes them itself (see `crate::build`), so a mount leaves no trace in the image.

use std::io::{self, Seek as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// One mount, at `dest` (an absolute path in the image).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Mount {
    /// The host path `src` (a directory or file).
    Bind {
        src: PathBuf,
        dest: String,
        rw: bool,
    },
    /// A new tmpfs of at most `size` bytes (mode 1777, as the kernel's default).
    Tmpfs {
        dest: String,
        size: Option<u64>,
        ro: bool,
    },
    /// A read-only file holding `data`'s bytes, with `mode`.
    Data {
        dest: String,
        data: Arc<Data>,
        mode: u32,
    },
}

/// Bytes in memory (a memfd) for a [`Mount::Data`]: bubblewrap reads them from an
/// inherited descriptor, so they never touch the disk nor its command line.
#[derive(Debug)]
pub struct Data(OwnedFd);

impl Data {
    /// Holds `bytes`.
    pub fn new(bytes: &[u8]) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create("assemble-mount", rustix::fs::MemfdFlags::CLOEXEC)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes)?;
        Ok(Self(f.into()))
    }

    /// Rewinds, for bubblewrap to read the bytes from the start.
    fn rewind(&self) -> io::Result<()> {
        let mut f = std::fs::File::from(self.0.try_clone()?);
        f.rewind()?;
        Ok(())
    }
}

impl Mount {
    /// Where the command sees it.
    pub fn dest(&self) -> &str {
        match self {
            Mount::Bind { dest, .. } | Mount::Tmpfs { dest, .. } | Mount::Data { dest, .. } => dest,
        }
    }

    /// Whether the mountpoint is a file (else a directory).
    pub fn is_file(&self) -> bool {
        match self {
            Mount::Bind { src, .. } => !src.is_dir(),
            Mount::Tmpfs { .. } => false,
            Mount::Data { .. } => true,
        }
    }
}

/// Adds bubblewrap's arguments for `mounts`, in order.
pub(super) fn args(c: &mut Command, mounts: &[Mount]) -> io::Result<()> {
    for m in mounts {
        match m {
            Mount::Bind { src, dest, rw } => {
                c.arg(if *rw { "--bind" } else { "--ro-bind" })
                    .arg(src)
                    .arg(dest);
            }
            Mount::Tmpfs { dest, size, ro } => {
                c.args(["--perms", "1777"]);
                if let Some(size) = size {
                    c.args(["--size", &size.to_string()]);
                }
                c.args(["--tmpfs", dest]);
                if *ro {
                    c.args(["--remount-ro", dest]);
                }
            }
            Mount::Data { dest, data, mode } => {
                data.rewind()?;
                c.args(["--perms", &format!("{mode:04o}")])
                    .arg("--ro-bind-data")
                    .arg(data.0.as_raw_fd().to_string())
                    .arg(dest);
            }
        }
    }
    Ok(())
}

/// The descriptors bubblewrap must inherit for `mounts`.
pub(super) fn fds(mounts: &[Mount]) -> Vec<BorrowedFd<'_>> {
    mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Data { data, .. } => Some(data.0.as_fd()),
            _ => None,
        })
        .collect()
}
