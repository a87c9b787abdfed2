//! A helper program the command in the sandbox can call back through, as `/sbin/apk`
//! (or the first of `/usr/sbin`, `/usr/bin`, `/bin` in an image without `/sbin`) in images
//! without apk (see `crate::apkshim`): its mountpoint, and the loop that serves its
//! requests while passing on the command's output.
//!
//! bubblewrap needs a file to bind the program over, and it would create one (and `/sbin`,
//! mode 0700) in the image root, which is on disk and would end up in the step's layer;
//! a `/sbin` the image lacks would also change what the command sees (`ln -s usr/sbin
//! /sbin` would link inside it). So we choose an existing directory, make the mountpoint
//! ourselves and take it away after the run, unless the step put a
//! real file there (an `apk add apk-tools` through the helper). Creating and removing an
//! entry changes its directory's mtime and ctime: when nothing else changed that directory,
//! its times are set back and [`Helper::touched`] names it, so the layer scan can tell the
//! ctime apart from a change of the step (`crate::layer::accept_ctime`).

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use apk::rootfs::RootDir;
use rustix::event::{PollFd, PollFlags};
use rustix::fs::{AtFlags, Timespec, Timestamps};

/// The helper program's name in the sandbox.
const NAME: &str = "apk";

/// Where it goes: `/sbin/apk` as in Alpine, else (an image without `/sbin`, where creating
/// one would change what the command sees) the first of these the image has; `/sbin` is
/// made only when it has none of them.
const DIRS: [&str; 4] = ["sbin", "usr/sbin", "usr/bin", "bin"];

/// Directories whose `apk` means the image has one of its own (the default PATH's).
const OWN: [&str; 6] = [
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

/// A program and the socket it calls, served while a command runs.
pub struct Helper<'h> {
    /// The program on the host, bound read-only at `/sbin/apk` when the image has none.
    pub program: &'h Path,
    /// Where its requests arrive.
    pub listener: &'h UnixListener,
    /// An `O_PATH` descriptor of the listener's socket file, inherited by the sandbox: the
    /// program connects through `/proc/self/fd/N`, no host directory being visible.
    pub socket: BorrowedFd<'h>,
    /// Handles one connection; writes to it through [`Pump::wait_writable`].
    pub serve: &'h mut dyn FnMut(UnixStream, &mut Pump<'_>),
    /// Set by the run: the directory (relative to the root) whose ctime only the
    /// mountpoint changed.
    pub touched: Option<PathBuf>,
    /// Set by the run: where the program was mounted, relative to the root (`None` when
    /// the image has an apk of its own).
    pub mounted: Option<String>,
}

/// The command's combined output, passed on while a request is served: the command may be
/// blocked writing the very output the helper relays to it, so a served request never
/// waits on its connection without draining the output too.
pub struct Pump<'a> {
    reader: &'a mut io::PipeReader,
    output: &'a mut dyn FnMut(&[u8]),
    open: bool,
}

impl<'a> Pump<'a> {
    pub(super) fn new(reader: &'a mut io::PipeReader, output: &'a mut dyn FnMut(&[u8])) -> Self {
        Self {
            reader,
            output,
            open: true,
        }
    }

    /// Whether the command's output has not ended yet.
    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    /// Passes on what the command wrote (call when the pipe is readable).
    pub(super) fn read_some(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        match self.reader.read(&mut buf) {
            Ok(0) => self.open = false,
            Ok(n) => (self.output)(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Blocks until `fd` can be written, passing on the command's output meanwhile.
    pub fn wait_writable(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        loop {
            let mut fds = vec![PollFd::new(&fd, PollFlags::OUT)];
            if self.open {
                fds.push(PollFd::new(&*self.reader, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, None) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let writable = !fds[0].revents().is_empty();
            let readable = fds.get(1).is_some_and(|f| !f.revents().is_empty());
            drop(fds);
            if readable {
                self.read_some()?;
            }
            if writable {
                return Ok(());
            }
        }
    }
}

/// Serves requests and passes on output until the command's output ends.
pub(super) fn serve_until_done(pump: &mut Pump<'_>, helper: &mut Helper<'_>) -> io::Result<()> {
    while pump.is_open() {
        let mut fds = [
            PollFd::new(&*pump.reader, PollFlags::IN),
            PollFd::new(helper.listener, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let (output, request) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if output {
            pump.read_some()?;
        }
        if request && let Ok((conn, _)) = helper.listener.accept() {
            (helper.serve)(conn, pump);
        }
    }
    Ok(())
}

/// The placeholder we made for bubblewrap to mount the program over.
pub(super) struct Mountpoint {
    /// Its path relative to the root (`sbin/apk`).
    pub at: String,
    /// Its (device, inode): still ours only if unchanged.
    id: (u64, u64),
    /// `sbin` when we created it.
    created_dir: Option<&'static str>,
    /// The existing directory holding it, with its times before and after we added it.
    parent: Option<ParentTimes>,
}

struct ParentTimes {
    /// Its real path relative to the root (symlinks such as `sbin -> usr/sbin` resolved).
    real: PathBuf,
    before: Timestamps,
    after: (i64, i64),
}

/// Makes the mountpoint, unless the image has an apk of its own (then `None`: the command
/// uses the image's apk).
pub(super) fn prepare(root: &Path) -> io::Result<Option<Mountpoint>> {
    let dir = RootDir::open(root).map_err(io::Error::other)?;
    for d in OWN {
        if dir
            .exists(format!("{d}/{NAME}"))
            .map_err(io::Error::other)?
        {
            return Ok(None);
        }
    }
    let existing = DIRS.iter().find_map(|d| {
        let real = resolve_real(&dir, d)?;
        let m = dir.metadata(&real).ok().filter(std::fs::Metadata::is_dir)?;
        Some((*d, real, times(&m)))
    });
    let parent = match &existing {
        Some((d, ..)) => *d,
        None => {
            dir.create_dir_all(DIRS[0], 0o755)
                .map_err(io::Error::other)?;
            DIRS[0]
        }
    };
    let at = format!("{parent}/{NAME}");
    dir.create_file(&at, 0o755).map_err(io::Error::other)?;
    let placeholder = dir.metadata(&at).map_err(io::Error::other)?;
    let parent_times = match existing {
        Some((_, real, before)) => {
            let m = dir.metadata(&real).map_err(io::Error::other)?;
            Some(ParentTimes {
                real,
                before,
                after: (m.mtime(), m.mtime_nsec()),
            })
        }
        None => None,
    };
    Ok(Some(Mountpoint {
        at,
        id: (placeholder.dev(), placeholder.ino()),
        created_dir: parent_times.is_none().then_some(DIRS[0]),
        parent: parent_times,
    }))
}

impl Mountpoint {
    /// Removes what we made if it is still ours; returns the directory whose ctime we
    /// changed, when nothing else changed it.
    pub(super) fn remove(self, root: &Path) -> Option<PathBuf> {
        let dir = RootDir::open(root).ok()?;
        let ours = dir
            .metadata(&self.at)
            .is_ok_and(|m| m.is_file() && m.len() == 0 && (m.dev(), m.ino()) == self.id);
        if !ours {
            return None;
        }
        let untouched = self.parent.as_ref().and_then(|p| {
            let m = dir.metadata(&p.real).ok()?;
            ((m.mtime(), m.mtime_nsec()) == p.after).then_some(p)
        });
        dir.remove(&self.at).ok()?;
        if let Some(created) = self.created_dir {
            // Only when empty: the step may have put files there.
            let _ = dir.remove(created);
        }
        let p = untouched?;
        restore_times(&dir, &p.real, &p.before).ok()?;
        Some(p.real.clone())
    }
}

/// The access and modification times of `m`, to set back later.
pub(crate) fn times(m: &std::fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    }
}

/// Sets `real`'s (a path relative to `dir`, no symlink at its end) times to `t`.
pub(crate) fn restore_times(dir: &RootDir, real: &Path, t: &Timestamps) -> io::Result<()> {
    let name = real.file_name().ok_or_else(|| io::Error::other("root"))?;
    let holder = match real.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => dir.open_dir(p).map_err(io::Error::other)?,
        None => dir.try_clone().map_err(io::Error::other)?,
    };
    rustix::fs::utimensat(holder.as_fd(), name, t, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The real path of `rel` inside the root, its symlinks followed as the sandbox would
/// (absolute targets from the root); `None` when it does not exist or loops.
pub(crate) fn resolve_real(dir: &RootDir, rel: &str) -> Option<PathBuf> {
    let mut done: Vec<String> = Vec::new();
    let mut todo: std::collections::VecDeque<String> = words(rel).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let path: PathBuf = done.iter().chain(std::iter::once(&c)).collect();
        if !dir.metadata(&path).ok()?.file_type().is_symlink() {
            done.push(c);
            continue;
        }
        hops += 1;
        let target = dir.read_link(&path).ok()?;
        let target = target.to_str()?;
        if hops > 16 {
            return None;
        }
        if target.starts_with('/') {
            done.clear();
        }
        for w in words(target).collect::<Vec<_>>().into_iter().rev() {
            todo.push_front(w);
        }
    }
    Some(done.iter().collect())
}

fn words(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/').filter(|w| !w.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_paths_follow_links_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("usr/sbin")).unwrap();
        std::os::unix::fs::symlink("usr/sbin", t.path().join("sbin")).unwrap();
        std::os::unix::fs::symlink("/usr", t.path().join("u")).unwrap();
        std::os::unix::fs::symlink("loop", t.path().join("loop")).unwrap();
        let dir = RootDir::open(t.path()).unwrap();
        assert_eq!(resolve_real(&dir, "sbin"), Some(PathBuf::from("usr/sbin")));
        assert_eq!(
            resolve_real(&dir, "u/sbin"),
            Some(PathBuf::from("usr/sbin"))
        );
        assert_eq!(resolve_real(&dir, "loop"), None);
        assert_eq!(resolve_real(&dir, "missing"), None);
    }

    #[test]
    fn the_mountpoint_leaves_no_trace() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("sbin")).unwrap();
        let before = fs_err::metadata(t.path().join("sbin")).unwrap();
        let m = prepare(t.path()).unwrap().unwrap();
        assert!(t.path().join("sbin/apk").is_file());
        assert_eq!(m.remove(t.path()), Some(PathBuf::from("sbin")));
        let after = fs_err::metadata(t.path().join("sbin")).unwrap();
        assert!(!t.path().join("sbin/apk").exists());
        assert_eq!(
            (before.mtime(), before.mtime_nsec()),
            (after.mtime(), after.mtime_nsec())
        );
        // No directory for it at all: /sbin made and taken away again.
        let t = tempfile::tempdir().unwrap();
        let m = prepare(t.path()).unwrap().unwrap();
        assert_eq!(m.at, "sbin/apk");
        assert_eq!(m.remove(t.path()), None);
        assert!(!t.path().join("sbin").exists());
        // No /sbin but a /bin: it goes there rather than make a /sbin the command would see.
        fs_err::create_dir_all(t.path().join("bin")).unwrap();
        let m = prepare(t.path()).unwrap().unwrap();
        assert_eq!(m.at, "bin/apk");
        assert_eq!(m.remove(t.path()), Some(PathBuf::from("bin")));
        assert!(!t.path().join("sbin").exists());
        // The image's own apk is kept and used.
        fs_err::write(t.path().join("bin/apk"), "real").unwrap();
        assert!(prepare(t.path()).unwrap().is_none());
    }
}
