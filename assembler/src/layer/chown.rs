//! Moving the disk owners of a build root to the image owners and back, for steps whose
//! sandbox maps the image's ids (see [`crate::sandbox`]): the manifest follows the disk so a
//! chown is not mistaken for a change made by the step.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use apk::rootfs::RootDir;

use super::{Kind, Manifest, Node, Owners};

/// Gives every path of `manifest` its image owner from `image` on disk (root when unknown),
/// so a sandbox that maps the image's ids sees them, and keeps `manifest` in step (a chown
/// changes ctime, which must not count as a change of the step). Returns how many changed.
pub fn chown_to_image(root: &Path, manifest: &mut Manifest, image: &Owners) -> io::Result<usize> {
    chown_where(root, manifest, |p| image.get(p).copied().unwrap_or((0, 0)))
}

/// Gives every path of `manifest` back to `host` on disk (after [`chown_to_image`] and the
/// step's snapshot, whose layer recorded the image owners in the owner table).
pub fn chown_to_host(root: &Path, manifest: &mut Manifest, host: (u32, u32)) -> io::Result<usize> {
    chown_where(root, manifest, |_| host)
}

fn chown_where(
    root: &Path,
    manifest: &mut Manifest,
    want: impl Fn(&Path) -> (u32, u32),
) -> io::Result<usize> {
    let dir = RootDir::open(root).map_err(io::Error::other)?;
    let mut changed = 0;
    let mut inodes = std::collections::HashSet::new();
    for (p, n) in manifest.iter_mut() {
        let (uid, gid) = want(p);
        if (n.uid, n.gid) == (uid, gid) || n.kind == Kind::Socket {
            continue;
        }
        dir.set_owner(p, uid, gid).map_err(io::Error::other)?;
        // chown drops setuid/setgid bits, even for root.
        if n.mode & 0o6000 != 0 && !matches!(n.kind, Kind::Symlink(_)) {
            dir.set_mode(p, n.mode).map_err(io::Error::other)?;
        }
        // A regular file may have other names (hard links) whose ctime this moved too:
        // every name of such an inode is read once, after all the chowns.
        if matches!(n.kind, Kind::File) {
            inodes.insert(n.ino);
        } else {
            refresh(&dir, p, n)?;
        }
        changed += 1;
    }
    if !inodes.is_empty() {
        for (p, n) in manifest.iter_mut() {
            if inodes.contains(&n.ino) && matches!(n.kind, Kind::File) {
                refresh(&dir, p, n)?;
            }
        }
    }
    Ok(changed)
}

/// Reads back what a chown changed: owners, mode bits (setuid/setgid may drop) and ctime.
fn refresh(dir: &RootDir, p: &Path, n: &mut Node) -> io::Result<()> {
    let md = dir.metadata(p).map_err(io::Error::other)?;
    n.uid = md.uid();
    n.gid = md.gid();
    n.mode = md.mode() & 0o7777;
    n.ctime = (md.ctime(), md.ctime_nsec());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::scan;
    use super::*;

    #[test]
    #[allow(clippy::print_stderr)] // a skipped test says why
    fn chowning_to_image_owners_and_back_leaves_no_change_to_record() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP: chown to other ids needs root");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("app/sub")).unwrap();
        fs_err::write(r.join("app/tool"), "x").unwrap();
        fs_err::set_permissions(r.join("app/tool"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        fs_err::hard_link(r.join("app/tool"), r.join("app/sub/link")).unwrap();
        std::os::unix::fs::symlink("tool", r.join("app/ln")).unwrap();
        let mut m = scan(r).unwrap();
        let mut image = Owners::new();
        for p in ["app", "app/sub", "app/tool", "app/sub/link", "app/ln"] {
            image.insert(PathBuf::from(p), (1000, 1001));
        }
        assert_eq!(chown_to_image(r, &mut m, &image).unwrap(), 5);
        assert_eq!(m, scan(r).unwrap(), "the manifest follows the disk");
        let md = fs_err::symlink_metadata(r.join("app/tool")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (1000, 1001, 0o4755)
        );
        assert_eq!(chown_to_image(r, &mut m, &image).unwrap(), 0);
        chown_to_host(r, &mut m, (0, 0)).unwrap();
        assert_eq!(m, scan(r).unwrap());
        let md = fs_err::symlink_metadata(r.join("app/sub/link")).unwrap();
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o4755));
    }
}
