//! Trees on the host that mounts show: a path in one with its symlinks resolved inside it,
//! a digest of what it holds (a bind's part of the step key), and a copy of it (a
//! read-write bind's throw-away copy, a filtered context, a cache's first content).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// `source` in the tree at `root`, its symlinks resolved inside the tree (an absolute one
/// from the tree's root), as a path relative to `root`.
pub(super) fn real_path(root: &Path, source: &str) -> anyhow::Result<PathBuf> {
    let dir = apk::rootfs::RootDir::open(root)?;
    let rel = super::mounts::clean_abs("/", source);
    crate::sandbox::resolve_real(&dir, rel.trim_start_matches('/'))
        .with_context(|| format!("source \"{rel}\": not found in `{}`", root.display()))
}

/// A digest of what `rel` in `root` holds (names, types, modes, bytes, link targets;
/// not times, as BuildKit's content checksums), skipping what `skip` (given a path
/// relative to `root`) says; and whether it skipped anything.
pub(super) fn tree_digest(
    root: &Path,
    rel: &Path,
    skip: &dyn Fn(&Path) -> bool,
) -> anyhow::Result<(String, bool)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut h = Sha256::new();
    let mut skipped = false;
    let top = root.join(rel);
    let mut walk = walkdir::WalkDir::new(&top).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry?;
        let in_root = entry.path().strip_prefix(root)?;
        if entry.depth() > 0 && skip(in_root) {
            skipped = true;
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        let md = entry.metadata()?;
        let name = entry.path().strip_prefix(&top)?;
        h.update(format!("{}\0{:o}\0", name.display(), md.mode()));
        if md.is_file() {
            std::io::copy(&mut fs_err::File::open(entry.path())?, &mut h)?;
        } else if md.file_type().is_symlink() {
            h.update(
                fs_err::read_link(entry.path())?
                    .as_os_str()
                    .as_encoded_bytes(),
            );
        }
        h.update([0]);
    }
    Ok((hex::encode(h.finalize()), skipped))
}

/// Copies `from` (a directory or file) to the new path `to`: directories, files and
/// symlinks with their modes and times, not following links; skipping what `skip` (given
/// a path relative to `from`) says. Devices, fifos and sockets are left out.
pub(super) fn copy_tree(
    from: &Path,
    to: &Path,
    skip: &dyn Fn(&Path) -> bool,
) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let mut dirs = Vec::new();
    let mut walk = walkdir::WalkDir::new(from).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from)?;
        if entry.depth() > 0 && skip(rel) {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        let dest = if rel.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(rel)
        };
        let md = entry.metadata()?;
        let ft = md.file_type();
        if ft.is_dir() {
            fs_err::create_dir(&dest)?;
            dirs.push((dest, md));
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs_err::read_link(entry.path())?, &dest)?;
        } else if ft.is_file() {
            fs_err::copy(entry.path(), &dest)?;
            set_mtime(&dest, &md)?;
        }
    }
    // Last, deepest first: a read-only directory is filled before its mode is set, and
    // filling it does not change its time afterwards.
    for (dest, md) in dirs.iter().rev() {
        fs_err::set_permissions(dest, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        set_mtime(dest, md)?;
    }
    Ok(())
}

fn set_mtime(path: &Path, md: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let t = rustix::fs::Timespec {
        tv_sec: md.mtime(),
        tv_nsec: md.mtime_nsec(),
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_modes_links_and_skip_what_is_ignored() {
        use std::os::unix::fs::PermissionsExt as _;
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs_err::create_dir_all(src.join("ro/sub")).unwrap();
        fs_err::write(src.join("ro/sub/f"), "x").unwrap();
        fs_err::write(src.join("skip"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        fs_err::set_permissions(src.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let dst = t.path().join("dst");
        copy_tree(&src, &dst, &|p| p == Path::new("skip")).unwrap();
        assert_eq!(fs_err::read_to_string(dst.join("ro/sub/f")).unwrap(), "x");
        assert!(!dst.join("skip").exists());
        assert_eq!(
            fs_err::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let mode = fs_err::metadata(dst.join("ro"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
        let (a, skipped) = tree_digest(&src, Path::new(""), &|p| p == Path::new("skip")).unwrap();
        assert!(skipped);
        fs_err::write(src.join("skip"), "changed").unwrap();
        assert_eq!(
            tree_digest(&src, Path::new(""), &|p| p == Path::new("skip"))
                .unwrap()
                .0,
            a
        );
        fs_err::set_permissions(src.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
        fs_err::set_permissions(dst.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
