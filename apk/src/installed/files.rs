//! The file list of an installed package, built from its data entries the way apk's
//! extractor records them (apk-format.md §4.1; apk-tools `apk_db_install_file`).
//!
//! apk groups files under the directory entries of the data tar in the order they first
//! appear, takes owner and mode from each header, the `Z:` digest from the pax
//! `APK-TOOLS.checksum.SHA1` record (a hard link gets its target's), and the xattr digest of
//! `apk_fileinfo_hash_xattr_array`. Entries it refuses are left out and mark the package
//! broken (`f:f`), as apk does, rather than failing the whole install.

use sha1::Digest as _;

use super::db::{Acl, InstalledDir, InstalledFile, InstalledPackage};
use super::ids::IdMap;
use crate::checksum::Checksum;
use crate::index::IndexEntry;
use crate::package::{Package, check_data_name};
use crate::tar::{Entry, EntryType};

/// apk's xattr digest: SHA-1 over the xattrs sorted by name (`strcmp`), each contributing a
/// big-endian u32 name length, the name, a big-endian u32 value length and the value.
/// `None` without xattrs.
pub fn xattr_digest(xattrs: &[(String, Vec<u8>)]) -> Option<Checksum> {
    if xattrs.is_empty() {
        return None;
    }
    let mut sorted: Vec<_> = xattrs.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = sha1::Sha1::new();
    for (name, value) in sorted {
        // Names and values come from pax records of at most 1 MiB, so they fit a u32.
        h.update((name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update((value.len() as u32).to_be_bytes());
        h.update(value);
    }
    Some(Checksum(h.finalize().into()))
}

fn acl_of(e: &Entry, ids: &IdMap, default: Acl) -> Option<Acl> {
    let (uid, gid) = ids.resolve(e);
    Acl {
        uid,
        gid,
        mode: e.mode & 0o7777,
        xattr_digest: xattr_digest(&e.xattrs),
    }
    .unless_default(default)
}

/// apk's `find_diri`: the current directory first, then any directory of the package.
fn find_dir(pkg: &InstalledPackage, current: Option<usize>, path: &str) -> Option<usize> {
    current
        .filter(|&i| pkg.dirs[i].path == path)
        .or_else(|| pkg.dir_index(path))
}

fn split_path(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

impl InstalledPackage {
    /// The block apk writes after installing a package with index entry `entry` and data
    /// entries `entries` (in archive order). `replaces` and `replaces_priority` come from
    /// `.PKGINFO`, not the index: use [`InstalledPackage::from_read_package`] or set them.
    ///
    /// As apk: every directory entry becomes an `F:` (a repeated one reopens it and takes the
    /// later owner and mode); a non-directory goes to its parent's `F:`, or to a new `F:` with
    /// an empty path when it sits at the top level; entries whose name starts with `.` are
    /// control data and skipped; an unsafe name, a file whose directory was never listed, and
    /// a hard link whose target is not an earlier file of the package are left out and set
    /// flag `f` (broken files).
    ///
    /// Owners are the headers' numeric ids; apk maps the header's names through the target
    /// root's `passwd`/`group` first: use [`InstalledPackage::from_package_with_ids`] for that.
    pub fn from_package(entry: IndexEntry, entries: &[Entry]) -> Self {
        Self::from_package_with_ids(entry, entries, &IdMap::default())
    }

    /// [`InstalledPackage::from_package`] with owner and group names resolved through `ids`
    /// (usually [`IdMap::load`] of the root being installed into), as apk does.
    pub fn from_package_with_ids(entry: IndexEntry, entries: &[Entry], ids: &IdMap) -> Self {
        let mut pkg = Self::new(entry);
        let mut current: Option<usize> = None;
        let mut broken = false;
        for e in entries {
            if e.path.starts_with('.') {
                continue;
            }
            if check_data_name(&e.path).is_err() {
                broken = true;
                continue;
            }
            if e.kind == EntryType::Dir {
                let i = find_dir(&pkg, current, &e.path).unwrap_or_else(|| {
                    pkg.dirs.push(InstalledDir {
                        path: e.path.clone(),
                        acl: None,
                        files: Vec::new(),
                    });
                    pkg.dirs.len() - 1
                });
                pkg.dirs[i].acl = acl_of(e, ids, Acl::DEFAULT_DIR);
                current = Some(i);
                continue;
            }
            let (dir, name) = split_path(&e.path);
            let i = match find_dir(&pkg, current, dir) {
                Some(i) => i,
                None if dir.is_empty() => {
                    pkg.dirs.push(InstalledDir {
                        path: String::new(),
                        acl: None,
                        files: Vec::new(),
                    });
                    pkg.dirs.len() - 1
                }
                // apk: "no dirent in archive".
                None => {
                    broken = true;
                    continue;
                }
            };
            current = Some(i);
            let digest = if e.kind == EntryType::HardLink {
                let (tdir, tname) = split_path(&e.link);
                let target = find_dir(&pkg, current, tdir)
                    .and_then(|d| pkg.dirs[d].files.iter().find(|f| f.name == tname));
                match target {
                    Some(t) => t.digest,
                    // apk: "no hard link target in archive".
                    None => {
                        broken = true;
                        continue;
                    }
                }
            } else {
                e.checksum_sha1.map(Checksum)
            };
            pkg.dirs[i].files.push(InstalledFile {
                name: name.to_string(),
                acl: acl_of(e, ids, Acl::DEFAULT_FILE),
                digest,
            });
        }
        if broken {
            pkg.set_flag('f');
        }
        pkg
    }

    /// [`InstalledPackage::from_package_with_ids`] for a package just read, with `replaces`
    /// and `replaces_priority` from its `.PKGINFO`. `entry` is the repository's index entry (its
    /// `C:` is what apk compares), usually `IndexEntry::from_package(pkg)`.
    pub fn from_read_package(pkg: &Package, entry: IndexEntry, ids: &IdMap) -> Self {
        let entries: Vec<Entry> = pkg.files.iter().map(|f| f.entry.clone()).collect();
        let mut out = Self::from_package_with_ids(entry, &entries, ids);
        out.replaces = pkg.info.replaces.clone();
        out.replaces_priority = pkg.info.replaces_priority;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryType, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
            size: 0,
            link: String::new(),
            dev: (0, 0),
            xattrs: Vec::new(),
            checksum_sha1: None,
            offset: 0,
        }
    }

    fn index() -> IndexEntry {
        let mut e = IndexEntry::empty();
        e.name = "p".into();
        e.version = "1-r0".into();
        e
    }

    #[test]
    fn xattr_digest_sorts_by_name_and_frames_lengths() {
        let a = [
            ("user.b".to_string(), b"2".to_vec()),
            ("security.capability".to_string(), vec![1, 0, 0, 2]),
        ];
        let mut manual = Vec::new();
        for (n, v) in [
            ("security.capability", &[1u8, 0, 0, 2][..]),
            ("user.b", b"2"),
        ] {
            manual.extend_from_slice(&(n.len() as u32).to_be_bytes());
            manual.extend_from_slice(n.as_bytes());
            manual.extend_from_slice(&(v.len() as u32).to_be_bytes());
            manual.extend_from_slice(v);
        }
        assert_eq!(xattr_digest(&a), Some(Checksum::sha1_of(&manual)));
        assert_eq!(xattr_digest(&[]), None);
    }

    #[test]
    fn builds_dirs_files_links_and_acls() {
        let mut file = entry("usr/bin/a", EntryType::File, 0o4755);
        file.checksum_sha1 = Some([7; 20]);
        file.xattrs = vec![("user.x".into(), b"1".to_vec())];
        let mut hard = entry("usr/lib/b", EntryType::HardLink, 0o4755);
        hard.link = "usr/bin/a".into();
        let mut sym = entry("usr/bin/c", EntryType::Symlink, 0o777);
        sym.checksum_sha1 = Some([9; 20]);
        let mut var = entry("var", EntryType::Dir, 0o755);
        var.uid = 100;
        let entries = [
            entry("usr", EntryType::Dir, 0o755),
            entry("usr/bin", EntryType::Dir, 0o755),
            file,
            entry("usr/lib", EntryType::Dir, 0o750),
            hard,
            sym,
            var,
            entry("top", EntryType::File, 0o644),
            entry(".PKGINFO", EntryType::File, 0o644),
            entry("usr", EntryType::Dir, 0o700),
        ];
        let pkg = InstalledPackage::from_package(index(), &entries);
        assert!(pkg.flags.is_empty());
        let paths: Vec<_> = pkg.dirs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["usr", "usr/bin", "usr/lib", "var", ""]);
        // The repeated `usr` entry updated the first one's mode.
        assert_eq!(pkg.dirs[0].acl.unwrap().mode, 0o700);
        let bin = &pkg.dirs[1].files;
        assert_eq!(bin[0].name, "a");
        assert_eq!(
            bin[0].acl.unwrap().to_string(),
            format!(
                "0:0:4755:{}",
                xattr_digest(&[("user.x".into(), b"1".to_vec())]).unwrap()
            )
        );
        assert_eq!(bin[0].digest, Some(Checksum([7; 20])));
        // The symlink went back to usr/bin although usr/lib was current.
        assert_eq!(bin[1].name, "c");
        assert_eq!(bin[1].acl.unwrap().to_string(), "0:0:777");
        let lib = &pkg.dirs[2];
        assert_eq!(lib.acl.unwrap().to_string(), "0:0:750");
        assert_eq!(
            lib.files[0].digest,
            Some(Checksum([7; 20])),
            "hard link: target digest"
        );
        assert_eq!(pkg.dirs[3].acl.unwrap().to_string(), "100:0:755");
        assert_eq!(pkg.dirs[4].files[0].name, "top");
        assert_eq!(pkg.dirs[4].files[0].acl, None);
    }

    #[test]
    fn refused_entries_mark_the_package_broken() {
        for bad in [
            vec![entry("usr/x", EntryType::File, 0o644)],
            vec![entry("usr/../x", EntryType::File, 0o644)],
            vec![entry("/abs", EntryType::File, 0o644)],
            vec![entry("d", EntryType::Dir, 0o755), {
                let mut h = entry("d/h", EntryType::HardLink, 0o644);
                h.link = "d/missing".into();
                h
            }],
        ] {
            let pkg = InstalledPackage::from_package(index(), &bad);
            assert_eq!(pkg.flags, "f", "{bad:?}");
            assert!(pkg.dirs.iter().all(|d| d.files.is_empty()));
        }
    }
}
