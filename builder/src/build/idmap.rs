//! The ids 0–65535 mapped as themselves in a phase's user namespace, so `package()` and
//! the split functions (run as root) can `chown` to the recipe's `pkgusers`/`pkggroups`
//! as abuild's fakeroot lets them. bubblewrap alone maps one id (root inside, the caller
//! outside), and a chown to another id fails with "Invalid argument". When apkbuild runs
//! as root, bubblewrap creates the namespace and waits on `--userns-block-fd` while we
//! write its `uid_map` and `gid_map` (the handshake bubblewrap documents for
//! `newuidmap`). Root inside is still confined: its capabilities hold in that namespace
//! only. Without root nothing can be mapped but the caller: one id, as before.
//!
//! `assemble` does the same for RUN steps (its `sandbox` module); this is builder's own
//! smaller version: the two crates share only the `apk` library, whose subject is the
//! package formats, not sandboxes.

use std::io::{self, Read as _};
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Inside 0–65535 = outside 0–65535.
const IDENTITY: &str = "0 0 65536\n";

/// Held from making the handshake pipes until bubblewrap has started: bubblewrap's ends
/// are inheritable meanwhile, and another command started then would hold them too (its
/// copy of the info pipe would keep us waiting for an end that never comes).
static SPAWNING: Mutex<()> = Mutex::new(());

/// The pipes of one handshake: bubblewrap writes `{"child-pid": N}` to the info pipe and
/// closes it, then waits for a byte on the block pipe.
pub struct IdMap {
    info_child: io::PipeWriter,
    info_parent: io::PipeReader,
    block_child: io::PipeReader,
    block_parent: io::PipeWriter,
    _only_us: MutexGuard<'static, ()>,
}

impl IdMap {
    /// New pipes; only bubblewrap's ends cross exec.
    pub fn new() -> io::Result<Self> {
        let only_us = SPAWNING.lock().unwrap_or_else(PoisonError::into_inner);
        let (info_parent, info_child) = io::pipe()?;
        let (block_child, block_parent) = io::pipe()?;
        for fd in [info_child.as_fd(), block_child.as_fd()] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        }
        Ok(Self {
            info_child,
            info_parent,
            block_child,
            block_parent,
            _only_us: only_us,
        })
    }

    /// bubblewrap's arguments for a user namespace whose maps we write (instead of
    /// `--uid`/`--gid`: inside, the phase is the caller, root).
    pub fn args(&self, c: &mut Command) {
        c.args(["--unshare-user", "--userns-block-fd"])
            .arg(self.block_child.as_raw_fd().to_string())
            .arg("--info-fd")
            .arg(self.info_child.as_raw_fd().to_string());
    }

    /// Writes the spawned bubblewrap's maps and lets it go on; stops it when that fails,
    /// as it must never run with ids we did not map.
    pub fn map(self, child: &mut Child) -> Result<(), String> {
        let Self {
            info_child,
            mut info_parent,
            block_child,
            mut block_parent,
            _only_us,
        } = self;
        // Our copies of bubblewrap's ends go, so its closing the info pipe ends our read.
        drop((info_child, block_child, _only_us));
        let mapped = (|| -> Result<(), String> {
            let mut info = String::new();
            info_parent
                .read_to_string(&mut info)
                .map_err(|e| format!("reading bwrap --info-fd: {e}"))?;
            let pid = serde_json::from_str::<serde_json::Value>(&info)
                .ok()
                .and_then(|v| v.get("child-pid")?.as_u64())
                .ok_or_else(|| format!("bwrap reported no child pid (`{}`)", info.trim()))?;
            for file in ["uid_map", "gid_map"] {
                fs_err::write(format!("/proc/{pid}/{file}"), IDENTITY)
                    .map_err(|e| e.to_string())?;
            }
            io::Write::write_all(&mut block_parent, b"1")
                .map_err(|e| format!("releasing bwrap: {e}"))
        })();
        if mapped.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        mapped
    }
}

/// Whether phases run as root can have the ids mapped here: apkbuild runs as root, and
/// the machine lets a namespace map 65536 ids (not so inside a container whose own
/// namespace maps fewer; then root phases keep the one id, as without root). Probed once
/// per process: `build-all` asks for every recipe.
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| rustix::process::geteuid().is_root() && probe().is_ok())
}

/// Runs `true` in a namespace mapped as the phases' would be.
fn probe() -> Result<(), String> {
    let ids = IdMap::new().map_err(|e| e.to_string())?;
    let mut c = Command::new("bwrap");
    ids.args(&mut c);
    c.args(["--unshare-net", "--die-with-parent", "--ro-bind", "/", "/"])
        .args(["true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    drop(c);
    ids.map(&mut child)?;
    match child.wait() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(s.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_maps_the_ids_and_chown_to_another_uid_works() {
        if !available() {
            eprintln!("SKIPPED: not root, or bwrap cannot map 65536 ids here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ids = IdMap::new().unwrap();
        let mut c = Command::new("bwrap");
        ids.args(&mut c);
        c.args(["--ro-bind", "/", "/", "--bind"])
            .arg(dir.path())
            .arg(dir.path())
            .args(["sh", "-c", "touch \"$0/f\" && chown 100:101 \"$0/f\""])
            .arg(dir.path());
        let mut child = c.spawn().unwrap();
        drop(c);
        ids.map(&mut child).unwrap();
        assert!(child.wait().unwrap().success());
        let meta = fs_err::metadata(dir.path().join("f")).unwrap();
        let owner = std::os::unix::fs::MetadataExt::uid(&meta);
        assert_eq!(owner, 100);
    }
}
