//! Scanning a copy-on-write build root (see [`crate::overlay`]) in time proportional to what
//! the build changed: the lower directory (the kept base) is scanned once per stage, then
//! only overlayfs's upper directory, which holds every path created, changed or deleted
//! since the mount. Plus [`settle_copy_ups`], which keeps what overlayfs changes by itself
//! out of a step's layer, so the layers are those of an extracted root.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use super::{Kind, Manifest, Node, forget, node};

/// A scan of an overlay's lower directory as the merged root shows it, directory sizes left
/// out: overlayfs shows a copied-up directory with the upper directory's size, which says
/// nothing about the image (a directory's change shows in its mtime and ctime).
pub fn scan_lower(lower: &Path) -> io::Result<Manifest> {
    let mut m = super::scan(lower)?;
    for n in m.values_mut() {
        sizeless(n);
    }
    Ok(m)
}

/// The manifest of the merged root: `lower` (from [`scan_lower`]) changed by each entry of
/// the `upper` directory, read through `merged` (where a directory keeps the lower one's
/// inode number; other entries take the upper file's own). A whiteout deletes its path;
/// an opaque directory, or a non-directory, hides what the lower directory had below it.
pub fn scan_merged(lower: &Manifest, upper: &Path, merged: &Path) -> io::Result<Manifest> {
    let mut out = lower.clone();
    // Pre-order: a directory's own verdict comes before its entries.
    for entry in walkdir::WalkDir::new(upper)
        .follow_links(false)
        .min_depth(1)
    {
        let entry = entry.map_err(io::Error::other)?;
        let md = entry.metadata().map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(upper).map_err(io::Error::other)?;
        if whiteout(&md) {
            forget(&mut out, rel);
            continue;
        }
        if !md.is_dir() || opaque(entry.path()) {
            forget(&mut out, rel);
        }
        let full = merged.join(rel);
        let mut n = node(&full, &fs_err::symlink_metadata(&full)?)?;
        sizeless(&mut n);
        if !md.is_dir() {
            // overlayfs shows a copied-up file with the inode number of the lower file it
            // came from only while it remembers the origin: in a user namespace it cannot
            // record it, and shows the upper file's own number once the dentry is evicted,
            // and for a new hard link to it at once. The upper file's own number is
            // stable, and the same for all its names (the layer's hard links are found by
            // number).
            n.ino = md.ino();
        }
        out.insert(rel.to_path_buf(), n);
    }
    Ok(out)
}

/// Takes into `before` the ctime (and a non-directory's inode number, see [`scan_merged`])
/// of each path that overlayfs copied up from the lower directory during a step without
/// anything about it changing: a directory is copied up when something below it changes,
/// a file when it is opened for writing or its metadata is set (to the same values, or it
/// would not be settled). Such a path matches the lower directory's in all but these; a
/// file must also have its bytes and one name (a new hard link to it is a change, as on
/// an extracted root).
pub fn settle_copy_ups(
    before: &mut Manifest,
    after: &Manifest,
    lower: &Path,
    merged: &Path,
) -> io::Result<()> {
    for (p, a) in after {
        let Some(b) = before.get_mut(p) else {
            continue;
        };
        if b == a || !copy_of(b, a) {
            continue;
        }
        let low = lower.join(p);
        let Ok(md) = fs_err::symlink_metadata(&low) else {
            continue;
        };
        let mut l = node(&low, &md)?;
        sizeless(&mut l);
        if !copy_of(&l, b) {
            continue;
        }
        if a.kind == Kind::File && !same_file(&low, &merged.join(p))? {
            continue;
        }
        b.ctime = a.ctime;
        b.ino = a.ino;
    }
    Ok(())
}

/// Writes `manifest` (a [`scan_lower`] of `lower`) to `out`, for [`load_lower`]: a base's
/// scan costs a `lstat` per file, its copy one read. The copy is tied to the inode and
/// ctime of `lower` itself, so a base copied or moved elsewhere is scanned again.
pub fn save_lower(manifest: &Manifest, lower: &Path, out: &Path) -> io::Result<()> {
    let mut w = io::BufWriter::new(fs_err::File::create(out)?);
    w.write_all(MAGIC)?;
    w.write_all(&stamp(lower)?)?;
    w.write_all(&(manifest.len() as u64).to_le_bytes())?;
    for (p, n) in manifest {
        put_bytes(&mut w, p.as_os_str().as_bytes())?;
        let (kind, target): (u8, &[u8]) = match &n.kind {
            Kind::File => (0, b""),
            Kind::Dir => (1, b""),
            Kind::Symlink(t) => (2, t.as_os_str().as_bytes()),
            Kind::Char => (3, b""),
            Kind::Block => (4, b""),
            Kind::Fifo => (5, b""),
            Kind::Socket => (6, b""),
        };
        w.write_all(&[kind])?;
        put_bytes(&mut w, target)?;
        for v in [n.mode, n.uid, n.gid] {
            w.write_all(&v.to_le_bytes())?;
        }
        for v in [n.size, n.ino, n.rdev] {
            w.write_all(&v.to_le_bytes())?;
        }
        for v in [n.mtime.0, n.mtime.1, n.ctime.0, n.ctime.1] {
            w.write_all(&v.to_le_bytes())?;
        }
    }
    w.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}

/// The manifest [`save_lower`] wrote for `lower`; `None` when there is none, or it was
/// written for another directory (then scan it).
pub fn load_lower(saved: &Path, lower: &Path) -> io::Result<Option<Manifest>> {
    let Ok(f) = fs_err::File::open(saved) else {
        return Ok(None);
    };
    let mut r = io::BufReader::new(f);
    let mut head = [0u8; MAGIC.len() + STAMP];
    if r.read_exact(&mut head).is_err() || head[..MAGIC.len()] != *MAGIC {
        return Ok(None);
    }
    if head[MAGIC.len()..] != stamp(lower)? {
        return Ok(None);
    }
    let count = u64::from_le_bytes(take(&mut r)?);
    let mut entries = Vec::with_capacity(count.min(1 << 24) as usize);
    for _ in 0..count {
        let path = PathBuf::from(OsString::from_vec(get_bytes(&mut r)?));
        let [kind] = take::<1>(&mut r)?;
        let target = PathBuf::from(OsString::from_vec(get_bytes(&mut r)?));
        let kind = match kind {
            0 => Kind::File,
            1 => Kind::Dir,
            2 => Kind::Symlink(target),
            3 => Kind::Char,
            4 => Kind::Block,
            5 => Kind::Fifo,
            6 => Kind::Socket,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "unknown kind")),
        };
        let [mode, uid, gid] = [(); 3].map(|()| take(&mut r).map(u32::from_le_bytes));
        let [size, ino, rdev] = [(); 3].map(|()| take(&mut r).map(u64::from_le_bytes));
        let [ms, mn, cs, cn] = [(); 4].map(|()| take(&mut r).map(i64::from_le_bytes));
        let node = Node {
            kind,
            mode: mode?,
            uid: uid?,
            gid: gid?,
            size: size?,
            mtime: (ms?, mn?),
            ctime: (cs?, cn?),
            ino: ino?,
            rdev: rdev?,
        };
        entries.push((path, node));
    }
    // Written in order: the map is built in one pass.
    Ok(Some(entries.into_iter().collect()))
}

const MAGIC: &[u8] = b"assemble lower manifest 1\n";
const STAMP: usize = 24;

/// What ties a saved manifest to its directory: the directory's inode and ctime.
fn stamp(lower: &Path) -> io::Result<[u8; STAMP]> {
    let md = fs_err::symlink_metadata(lower)?;
    let mut s = [0u8; STAMP];
    s[..8].copy_from_slice(&md.ino().to_le_bytes());
    s[8..16].copy_from_slice(&md.ctime().to_le_bytes());
    s[16..].copy_from_slice(&md.ctime_nsec().to_le_bytes());
    Ok(s)
}

fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

fn get_bytes(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = u32::from_le_bytes(take(r)?) as usize;
    if len > 1 << 20 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "name too long"));
    }
    let mut b = vec![0u8; len];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn take<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// Whether `b` may be a copy of `a` made by overlayfs: they differ at most in their ctime
/// and inode number.
fn copy_of(a: &Node, b: &Node) -> bool {
    let mut b = b.clone();
    b.ctime = a.ctime;
    b.ino = a.ino;
    *a == b
}

/// Whether the copied-up file `merged` has one name and the bytes of `lower` (whose size
/// it has, see [`copy_of`]).
fn same_file(lower: &Path, merged: &Path) -> io::Result<bool> {
    if fs_err::symlink_metadata(merged)?.nlink() != 1 {
        return Ok(false);
    }
    let (mut x, mut y) = (fs_err::File::open(lower)?, fs_err::File::open(merged)?);
    let mut left = x.metadata()?.len();
    let (mut bx, mut by) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    while left > 0 {
        let n = left.min(bx.len() as u64) as usize;
        x.read_exact(&mut bx[..n])?;
        y.read_exact(&mut by[..n])?;
        if bx[..n] != by[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

fn sizeless(n: &mut Node) {
    if n.kind == Kind::Dir {
        n.size = 0;
    }
}

/// overlayfs's whiteout: a character device 0/0.
fn whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// An upper directory that hides the lower one of the same path (it replaced a removed
/// directory): marked `y` in `trusted.overlay.opaque`, or `user.overlay.opaque` with
/// `userxattr`.
fn opaque(dir: &Path) -> bool {
    let mut value = [0u8; 8];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            rustix::fs::lgetxattr(dir, *name, &mut value[..]).is_ok_and(|n| value[..n] == *b"y")
        })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn whiteouts_and_replacements_hide_the_lower_paths() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        for d in ["a/b", "c/d", "e"] {
            fs_err::create_dir_all(lower.join(d)).unwrap();
        }
        fs_err::write(lower.join("a/b/f"), "f").unwrap();
        fs_err::write(lower.join("c/d/g"), "g").unwrap();
        let low = scan_lower(&lower).unwrap();
        // No overlay here: an upper directory as overlayfs would leave it, read through
        // itself. `c` became a file; `a/b/f` changed; a new file in `e`.
        let upper = t.path().join("upper");
        fs_err::create_dir_all(upper.join("a/b")).unwrap();
        fs_err::write(upper.join("a/b/f"), "changed").unwrap();
        fs_err::write(upper.join("c"), "now a file").unwrap();
        fs_err::create_dir_all(upper.join("e")).unwrap();
        fs_err::write(upper.join("e/new"), "n").unwrap();
        let m = scan_merged(&low, &upper, &upper).unwrap();
        let keys: Vec<PathBuf> = m.keys().cloned().collect();
        let want: Vec<PathBuf> = ["a", "a/b", "a/b/f", "c", "e", "e/new"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(keys, want);
        assert_eq!(m[Path::new("a/b/f")].size, 7);
        assert_eq!(m[Path::new("a")].size, 0, "directory sizes are left out");
    }

    #[test]
    fn a_saved_lower_scan_loads_back_for_its_directory_only() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        fs_err::create_dir_all(lower.join("d")).unwrap();
        fs_err::write(lower.join("d/f"), "f").unwrap();
        std::os::unix::fs::symlink("d/f", lower.join("l")).unwrap();
        let m = scan_lower(&lower).unwrap();
        let saved = t.path().join("manifest");
        save_lower(&m, &lower, &saved).unwrap();
        assert_eq!(load_lower(&saved, &lower).unwrap(), Some(m));
        let other = t.path().join("other");
        fs_err::create_dir(&other).unwrap();
        assert_eq!(load_lower(&saved, &other).unwrap(), None);
        assert_eq!(load_lower(&t.path().join("none"), &lower).unwrap(), None);
    }

    #[test]
    fn an_unchanged_copy_is_settled_and_a_changed_one_is_not() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        fs_err::create_dir_all(&lower).unwrap();
        fs_err::write(lower.join("same"), "x").unwrap();
        fs_err::write(lower.join("other"), "x").unwrap();
        let mut before = scan_lower(&lower).unwrap();
        // Copies with the lower file's inode number, mtime and mode, but a new ctime: what
        // a copy-up looks like through the merged root.
        let merged = t.path().join("merged");
        fs_err::create_dir_all(&merged).unwrap();
        fs_err::write(merged.join("same"), "x").unwrap();
        fs_err::write(merged.join("other"), "y").unwrap();
        let mut after = before.clone();
        for n in after.values_mut() {
            n.ctime.0 += 1;
            n.ino += 1;
        }
        settle_copy_ups(&mut before, &after, &lower, &merged).unwrap();
        assert_eq!(before[Path::new("same")], after[Path::new("same")]);
        assert_ne!(before[Path::new("other")], after[Path::new("other")]);
    }
}
