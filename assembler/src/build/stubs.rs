//! Mountpoints for a step's mounts (BuildKit's "mount stubs"): bubblewrap needs each
//! target to exist, and would create a missing one in the image root, on disk, where it
//! would end up in the step's layer. So the engine makes the missing directories (and the
//! file of a file mount) itself, then removes them after the run when still empty and
//! unchanged, and sets the times of the directory holding them back, as BuildKit's
//! `MountStubsCleaner` does; the layer scan is told that directory's ctime changed only
//! for this (see `crate::layer::accept_ctime`).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use apk::rootfs::RootDir;
use rustix::fs::Timestamps;

use crate::sandbox::{Mount, resolve_real, restore_times, times};

/// The mountpoints made for one run.
#[derive(Default)]
pub(super) struct Stubs {
    made: Vec<Made>,
}

/// What was made for one mount.
struct Made {
    /// Created paths (real, relative to the root), outermost first, with (dev, inode).
    created: Vec<(PathBuf, (u64, u64))>,
    /// The existing directory that holds them, its times before and its mtime after.
    parent: Option<(PathBuf, Timestamps, (i64, i64))>,
}

impl Stubs {
    /// Makes the missing mountpoints of `mounts` in `root`.
    pub fn make(root: &Path, mounts: &[Mount]) -> anyhow::Result<Self> {
        let dir = RootDir::open(root)?;
        let mut stubs = Stubs::default();
        for m in mounts {
            let made = make_one(&dir, m.dest(), m.is_file())
                .with_context(|| format!("cannot make the mountpoint {}", m.dest()))?;
            stubs.made.extend(made);
        }
        Ok(stubs)
    }

    /// Removes what is still as made; returns the directories whose only change was
    /// holding a mountpoint for a while (their times set back).
    pub fn remove(self, root: &Path) -> Vec<PathBuf> {
        let Ok(dir) = RootDir::open(root) else {
            return Vec::new();
        };
        let mut touched = Vec::new();
        for made in self.made.into_iter().rev() {
            let untouched = made.parent.as_ref().filter(|(real, _, after)| {
                dir.metadata(real)
                    .is_ok_and(|m| (m.mtime(), m.mtime_nsec()) == *after)
            });
            let mut all_gone = true;
            for (path, id) in made.created.iter().rev() {
                let ours = dir
                    .metadata(path)
                    .is_ok_and(|m| (m.dev(), m.ino()) == *id && (m.is_dir() || m.len() == 0));
                all_gone &= ours && dir.remove(path).is_ok();
            }
            if let (true, Some((real, before, _))) = (all_gone, untouched)
                && restore_times(&dir, real, before).is_ok()
            {
                touched.push(real.clone());
            }
        }
        touched
    }
}

/// Makes the missing part of `dest` (a directory, or a file when `file`).
fn make_one(dir: &RootDir, dest: &str, file: bool) -> anyhow::Result<Option<Made>> {
    let parts: Vec<&str> = dest.split('/').filter(|p| !p.is_empty()).collect();
    let mut real = PathBuf::new();
    let mut i = 0;
    while i < parts.len() {
        let next = real.join(parts[i]);
        match resolve_real(dir, &next.to_string_lossy()) {
            Some(r) => real = r,
            None => break,
        }
        i += 1;
    }
    if i == parts.len() {
        return Ok(None);
    }
    // The root itself is no entry of a layer: its times need no care.
    let before = match real.as_os_str().is_empty() {
        true => None,
        false => Some(times(&dir.metadata(&real)?)),
    };
    let mut created = Vec::new();
    let mut path = real.clone();
    for (n, part) in parts[i..].iter().enumerate() {
        path.push(part);
        if file && i + n + 1 == parts.len() {
            dir.create_file(&path, 0o644)?;
        } else {
            dir.create_dir_all(&path, 0o755)?;
        }
        let m = dir.metadata(&path)?;
        created.push((path.clone(), (m.dev(), m.ino())));
    }
    let parent = match before {
        Some(before) => {
            let after = dir.metadata(&real)?;
            Some((real, before, (after.mtime(), after.mtime_nsec())))
        }
        None => None,
    };
    Ok(Some(Made { created, parent }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpfs(dest: &str) -> Mount {
        Mount::Tmpfs {
            dest: dest.into(),
            size: None,
            ro: false,
        }
    }

    #[test]
    fn mountpoints_leave_no_trace() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs_err::create_dir_all(root.join("run")).unwrap();
        std::os::unix::fs::symlink("/run", root.join("var-run")).unwrap();
        let before = fs_err::metadata(root.join("run")).unwrap();
        let mounts = [tmpfs("/run/a/b"), tmpfs("/var-run/c"), tmpfs("/run")];
        let stubs = Stubs::make(root, &mounts).unwrap();
        assert!(root.join("run/a/b").is_dir() && root.join("run/c").is_dir());
        let touched = stubs.remove(root);
        assert_eq!(touched, [PathBuf::from("run"), PathBuf::from("run")]);
        assert!(!root.join("run/a").exists() && !root.join("run/c").exists());
        let after = fs_err::metadata(root.join("run")).unwrap();
        assert_eq!(
            (before.mtime(), before.mtime_nsec()),
            (after.mtime(), after.mtime_nsec())
        );
        // What the step put in a mountpoint stays, with its directory.
        let stubs = Stubs::make(root, &[tmpfs("/opt/x")]).unwrap();
        fs_err::write(root.join("opt/x/kept"), "1").unwrap();
        assert!(stubs.remove(root).is_empty());
        assert!(root.join("opt/x/kept").exists());
        // A file mountpoint, made at the top of the root.
        let data = crate::sandbox::MountData::new(b"s").unwrap();
        let secret = Mount::Data {
            dest: "/top/secret".into(),
            data: std::sync::Arc::new(data),
            mode: 0o400,
        };
        let stubs = Stubs::make(root, &[secret]).unwrap();
        assert!(root.join("top/secret").is_file());
        assert!(stubs.remove(root).is_empty());
        assert!(!root.join("top").exists());
    }
}
