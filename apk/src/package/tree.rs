//! Turning a package directory (`$pkgdir`) into data-member entries (apk-format.md §1.6,
//! §7.7).
//!
//! abuild lists the tree with `find | LC_ALL=C sort`, i.e. plain byte order of the whole
//! path, and stamps every entry with SOURCE_DATE_EPOCH; we do the same so the bytes are
//! reproducible and look like abuild's.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{PackageError, check_data_name};
use crate::tar::{EntryType, Header};

/// One entry of the data member and where its content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Tar header (checksum is filled in while writing).
    pub header: Header,
    /// File to read content from (regular files only).
    pub source: Option<PathBuf>,
}

/// How to read ownership and times from the tree.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// mtime of every entry (SOURCE_DATE_EPOCH).
    pub source_date: u64,
    /// Numeric ids recorded as 0 (root): the ids of whoever created the tree without
    /// privileges, as fakeroot would show them. Other ids are kept.
    pub root_ids: Option<(u32, u32)>,
    /// uid → name and gid → name of owners recorded by name alone: such an entry gets
    /// the name and id 0, as abuild's `.owner-map`/`.group-map` (`mix mix:0`) make tar
    /// write it, since the build's ids mean nothing on the target: apk resolves the name
    /// through the target's passwd/group (apk-format.md §1.3). Other ids get empty names.
    pub names: (HashMap<u32, String>, HashMap<u32, String>),
}

impl TreeOptions {
    /// Every entry at `source_date`, files created by the current user recorded as root.
    pub fn new(source_date: u64) -> Self {
        Self {
            source_date,
            root_ids: Some((
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            )),
            names: (HashMap::new(), HashMap::new()),
        }
    }
}

/// Lists `root` as sorted data entries. The root itself is not an entry.
pub fn scan_tree(root: &Path, opts: &TreeOptions) -> Result<Vec<TreeEntry>, PackageError> {
    let mut entries = Vec::new();
    // (dev, ino) of regular files already seen, for hard links.
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    for (rel, full) in sorted_paths(root)? {
        check_data_name(&rel).map_err(|reason| PackageError::BadPath {
            path: full.clone(),
            reason: format!("cannot be packaged: {reason}"),
        })?;
        let meta = fs_err::symlink_metadata(&full)?;
        let header = owned_header(&rel, &meta, opts);
        entries.push(typed_entry(header, rel, full, &meta, &mut inodes)?);
    }
    Ok(entries)
}

/// Every path below `root` (relative, UTF-8, and its full path) in `LC_ALL=C sort` order.
fn sorted_paths(root: &Path) -> Result<Vec<(String, PathBuf)>, PackageError> {
    let mut paths = Vec::new();
    for item in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            PackageError::BadPath {
                path,
                reason: e.to_string(),
            }
        })?;
        let rel = item
            .path()
            .strip_prefix(root)
            .map_err(|_| PackageError::BadPath {
                path: item.path().to_path_buf(),
                reason: "outside the package root".into(),
            })?;
        let rel = rel.to_str().ok_or_else(|| PackageError::BadPath {
            path: item.path().to_path_buf(),
            reason: "name is not UTF-8".into(),
        })?;
        paths.push((rel.to_string(), item.path().to_path_buf()));
    }
    paths.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(paths)
}

/// A header for `rel` with its mode and owners (the unprivileged creator's ids as root,
/// named owners as their name and 0); a regular file until [`typed_entry`] says otherwise.
fn owned_header(rel: &str, meta: &std::fs::Metadata, opts: &TreeOptions) -> Header {
    let (uid, gid) = match opts.root_ids {
        Some((u, g)) => (
            if meta.uid() == u { 0 } else { meta.uid() },
            if meta.gid() == g { 0 } else { meta.gid() },
        ),
        None => (meta.uid(), meta.gid()),
    };
    let mut header = Header::file(rel.to_string(), meta.mode() & 0o7777, 0, opts.source_date);
    (header.uid, header.uname) = named(uid, &opts.names.0);
    (header.gid, header.gname) = named(gid, &opts.names.1);
    header
}

/// `id` as recorded: 0 and its name when `names` has it, else itself and no name.
fn named(id: u32, names: &HashMap<u32, String>) -> (u32, String) {
    match names.get(&id) {
        Some(name) => (0, name.clone()),
        None => (id, String::new()),
    }
}

/// The entry for `rel` by its file type: a directory, symlink, file (or a hard link to a
/// file `inodes` already holds), device or fifo; sockets are refused.
fn typed_entry(
    mut header: Header,
    rel: String,
    full: PathBuf,
    meta: &std::fs::Metadata,
    inodes: &mut HashMap<(u64, u64), String>,
) -> Result<TreeEntry, PackageError> {
    let ft = meta.file_type();
    let mut source = None;
    if ft.is_dir() {
        header.kind = EntryType::Dir;
    } else if ft.is_symlink() {
        header.kind = EntryType::Symlink;
        header.mode = 0o777;
        let target = fs_err::read_link(&full)?;
        header.link = target
            .to_str()
            .ok_or_else(|| PackageError::BadPath {
                path: full.clone(),
                reason: "symlink target is not UTF-8".into(),
            })?
            .to_string();
    } else if ft.is_file() {
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some(first) = inodes.get(&key) {
                header.kind = EntryType::HardLink;
                header.link = first.clone();
                return Ok(TreeEntry { header, source });
            }
            inodes.insert(key, rel);
        }
        header.size = meta.len();
        source = Some(full);
    } else if ft.is_char_device() || ft.is_block_device() {
        header.kind = if ft.is_char_device() {
            EntryType::CharDevice
        } else {
            EntryType::BlockDevice
        };
        let rdev = meta.rdev();
        header.dev = (
            (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32,
            ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32,
        );
    } else if ft.is_fifo() {
        header.kind = EntryType::Fifo;
    } else {
        return Err(PackageError::BadPath {
            path: full,
            reason: "sockets cannot be packaged".into(),
        });
    }
    Ok(TreeEntry { header, source })
}

/// abuild's `size`: bytes of regular files, each inode once; 1 when that is 0 but the
/// package has entries or scripts (0 would make apk treat it as virtual).
pub fn installed_size(entries: &[TreeEntry], has_scripts: bool) -> u64 {
    let size: u64 = entries
        .iter()
        .filter(|e| e.header.kind == EntryType::File)
        .map(|e| e.header.size)
        .sum();
    if size == 0 && (!entries.is_empty() || has_scripts) {
        1
    } else {
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_like_lc_all_c_sort_and_hardlinks_detected() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs_err::create_dir_all(r.join("usr/bin")).unwrap();
        fs_err::create_dir_all(r.join("usr/bin-x")).unwrap();
        fs_err::write(r.join("usr/bin/a"), b"hello").unwrap();
        fs_err::hard_link(r.join("usr/bin/a"), r.join("usr/bin/b")).unwrap();
        std::os::unix::fs::symlink("a", r.join("usr/bin/c")).unwrap();
        let entries = scan_tree(r, &TreeOptions::new(1)).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.header.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "usr",
                "usr/bin",
                "usr/bin-x",
                "usr/bin/a",
                "usr/bin/b",
                "usr/bin/c"
            ]
        );
        assert_eq!(entries[4].header.kind, EntryType::HardLink);
        assert_eq!(entries[4].header.link, "usr/bin/a");
        assert_eq!(entries[5].header.mode, 0o777);
        assert!(
            entries
                .iter()
                .all(|e| e.header.uid == 0 && e.header.mtime == 1)
        );
        assert_eq!(installed_size(&entries, false), 5);
    }

    #[test]
    fn named_owners_are_recorded_by_name_with_id_zero() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("f"), b"x").unwrap();
        let (uid, gid) = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        let mut opts = TreeOptions::new(1);
        // The file's owners as the build's pkguser and pkggroup.
        opts.root_ids = None;
        opts.names.0.insert(uid, "mix".into());
        opts.names.1.insert(gid, "mixg".into());
        let h = &scan_tree(dir.path(), &opts).unwrap()[0].header;
        assert_eq!((h.uid, h.gid), (0, 0));
        assert_eq!((h.uname.as_str(), h.gname.as_str()), ("mix", "mixg"));
        // Unnamed ids stay as they are, without names.
        opts.names = Default::default();
        let h = &scan_tree(dir.path(), &opts).unwrap()[0].header;
        assert_eq!((h.uid, h.gid, h.uname.as_str()), (uid, gid, ""));
    }

    #[test]
    fn top_level_dotfiles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(".hidden"), b"x").unwrap();
        let err = scan_tree(dir.path(), &TreeOptions::new(1)).unwrap_err();
        assert!(err.to_string().contains("apk skips"), "{err}");
    }
}
