//! Extracting a package's data member into a root filesystem, safely (apk-format.md §1.6,
//! §4.8 step 1).
//!
//! Every entry goes through [`crate::rootfs::RootDir`], so nothing can be created, changed
//! or followed outside the root. On top of that, entries that apk would skip or that only a
//! hostile package contains are refused with an error naming the entry: absolute names,
//! `..`, control characters, and paths that go *through* a symlink the same package
//! created (the classic "symlink, then a file through it" escape).

use std::collections::HashSet;
use std::io::{BufRead, Read};

use super::read::{DataVisitor, Package, ReadLimits, read_with};
use super::{PackageError, check_data_name};
use crate::rootfs::{ApplyOptions, EntryKind, EntryMeta, RootDir};
use crate::tar::{Entry, EntryType};

/// Refuses what [`check_data_name`] refuses, and any path with an ancestor that is a
/// symlink earlier in the same package. `links` collects the package's symlinks.
pub fn check_entry(entry: &Entry, links: &mut HashSet<String>) -> Result<(), PackageError> {
    let unsafe_entry = |reason: String| PackageError::UnsafeEntry {
        path: entry.path.clone(),
        reason,
    };
    check_data_name(&entry.path).map_err(unsafe_entry)?;
    let mut prefix = String::new();
    let parts: Vec<&str> = entry.path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if links.contains(&prefix) {
            return Err(unsafe_entry(format!(
                "goes through `{prefix}`, a symlink created by the same package"
            )));
        }
    }
    if entry.kind == EntryType::Symlink {
        links.insert(entry.path.clone());
    } else {
        links.remove(&entry.path);
    }
    if entry.kind == EntryType::HardLink {
        check_data_name(&entry.link)
            .map_err(|r| unsafe_entry(format!("hard link target `{}`: {r}", entry.link)))?;
    }
    Ok(())
}

struct Extractor<'a> {
    root: &'a RootDir,
    opts: &'a ApplyOptions,
    links: HashSet<String>,
    files: Vec<Entry>,
}

impl DataVisitor for Extractor<'_> {
    fn entry(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        check_entry(entry, &mut self.links)?;
        let kind = entry_kind(entry);
        let meta = EntryMeta {
            path: entry.path.clone(),
            kind,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: i64::try_from(entry.mtime).unwrap_or(i64::MAX),
        };
        self.root.apply(&meta, content, self.opts).map_err(|e| {
            // A limit reached while writing the content is the package's fault, not
            // the path's: report it as such.
            e.io_error()
                .and_then(|io| super::read::limit_error(io, super::Member::Data))
                .unwrap_or_else(|| PackageError::UnsafeEntry {
                    path: entry.path.clone(),
                    reason: e.to_string(),
                })
        })?;
        for (name, value) in &entry.xattrs {
            // Best effort, as apk: a filesystem without xattrs marks the package, not fails.
            let _ = self.root.set_xattr(&entry.path, name, value);
        }
        self.files.push(entry.clone());
        Ok(())
    }
}

/// Streams a package into `root`. Returns the package (signatures, control, `.PKGINFO`;
/// `files` left empty) and the entries written, in archive order. On error, entries
/// already written stay in the root (the caller owns cleanup, as apk does with its
/// `.apk-new` files); nothing is ever written outside it.
pub fn extract(
    input: impl BufRead,
    root: &RootDir,
    opts: &ApplyOptions,
    limits: ReadLimits,
) -> Result<(Package, Vec<Entry>), PackageError> {
    let mut x = Extractor {
        root,
        opts,
        links: HashSet::new(),
        files: Vec::new(),
    };
    let pkg = read_with(input, limits, &mut x)?;
    if !pkg.info.datahash.is_empty() && pkg.info.datahash != hex::encode(pkg.data_sha256) {
        return Err(PackageError::DataHash {
            expected: pkg.info.datahash.clone(),
            actual: hex::encode(pkg.data_sha256),
        });
    }
    Ok((pkg, x.files))
}

/// What a package's tar entry becomes in a root.
pub(crate) fn entry_kind(entry: &Entry) -> EntryKind {
    match entry.kind {
        EntryType::File => EntryKind::File,
        EntryType::Dir => EntryKind::Dir,
        EntryType::Symlink => EntryKind::Symlink(entry.link.clone()),
        EntryType::HardLink => EntryKind::HardLink(entry.link.clone()),
        EntryType::CharDevice => EntryKind::CharDevice {
            major: entry.dev.0,
            minor: entry.dev.1,
        },
        EntryType::BlockDevice => EntryKind::BlockDevice {
            major: entry.dev.0,
            minor: entry.dev.1,
        },
        EntryType::Fifo => EntryKind::Fifo,
    }
}
