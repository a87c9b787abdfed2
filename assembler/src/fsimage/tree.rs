//! The image's file tree as its layers say it is: every path with the owner, mode, mtime and
//! kind recorded in the layer tars, after whiteouts.
//!
//! Why not a scan of the extracted root: unprivileged, extraction cannot `chown` or create
//! device nodes, so the extracted tree says "owned by whoever ran assemble". The layer headers
//! are the truth the filesystem images (and `assemble inspect`) are made from.

use std::collections::BTreeMap;
use std::io::Read as _;

use crate::store::{Snapshot, Store};

/// What kind of entry a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Dir,
    /// A symlink to this target.
    Symlink(String),
    /// A second name of this earlier path.
    HardLink(String),
    /// A character device.
    Char(u32, u32),
    /// A block device.
    Block(u32, u32),
    /// A named pipe.
    Fifo,
}

/// One path of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds).
    pub mtime: u64,
}

impl Meta {
    /// A root-owned entry made by the export itself.
    pub fn root_owned(kind: Kind, mode: u32, mtime: u64) -> Self {
        Self {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime,
        }
    }
}

/// Relative path (no leading `/`, no trailing `/`) → entry, sorted.
pub type Tree = BTreeMap<String, Meta>;

fn clean(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    name.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// Removes `path` and everything below it.
fn remove_below(tree: &mut Tree, path: &str, keep_self: bool) {
    if !keep_self {
        tree.remove(path);
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let doomed: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        tree.remove(&k);
    }
}

/// The merged tree of `top`'s chain.
pub fn merged(store: &Store, top: &Snapshot) -> anyhow::Result<Tree> {
    let mut tree = Tree::new();
    for s in store.chain(top)? {
        let Some(layer) = s.layer() else { continue };
        let mut archive = tar::Archive::new(fs_err::File::open(&layer)?);
        // Whiteouts hide lower layers only, so a layer's own entries go in after them.
        let mut adds = Vec::new();
        for e in archive.entries_with_seek()? {
            let e = e?;
            let name = clean(&e.path_bytes());
            if name.is_empty() || name == "." {
                continue;
            }
            let (dir, base) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
            if base == ".wh..wh..opq" {
                remove_below(&mut tree, dir, true);
                continue;
            }
            if let Some(victim) = base.strip_prefix(".wh.") {
                let victim = if dir.is_empty() {
                    victim.to_string()
                } else {
                    format!("{dir}/{victim}")
                };
                remove_below(&mut tree, &victim, false);
                continue;
            }
            let h = e.header();
            let link = || {
                e.link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            let dev = || {
                (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                )
            };
            let kind = match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File(e.size()),
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink(link()),
                tar::EntryType::Link => Kind::HardLink(clean(link().as_bytes())),
                tar::EntryType::Char => Kind::Char(dev().0, dev().1),
                tar::EntryType::Block => Kind::Block(dev().0, dev().1),
                tar::EntryType::Fifo => Kind::Fifo,
                _ => continue,
            };
            let meta = Meta {
                kind,
                mode: h.mode().unwrap_or(0o644) & 0o7777,
                uid: h.uid().unwrap_or(0) as u32,
                gid: h.gid().unwrap_or(0) as u32,
                mtime: h.mtime().unwrap_or(0),
            };
            adds.push((name, meta));
        }
        for (name, meta) in adds {
            // A file replacing a directory of a lower layer replaces what was below it too.
            if meta.kind != Kind::Dir && tree.get(&name).is_some_and(|m| m.kind == Kind::Dir) {
                remove_below(&mut tree, &name, false);
            }
            tree.insert(name, meta);
        }
    }
    Ok(tree)
}

/// The bytes of the regular file at `path` (relative) in `top`'s chain, from the newest layer
/// that has it; `None` when absent or deleted.
pub fn read_file(store: &Store, top: &Snapshot, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let chain = store.chain(top)?;
    let hidden = |name: &str| {
        // A whiteout of the file or of one of its parent directories.
        let mut p = String::new();
        for part in path.split('/') {
            let wh = if p.is_empty() {
                format!(".wh.{part}")
            } else {
                format!("{p}/.wh.{part}")
            };
            let opq = if p.is_empty() {
                ".wh..wh..opq".to_string()
            } else {
                format!("{p}/.wh..wh..opq")
            };
            if name == wh || name == opq {
                return true;
            }
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(part);
        }
        false
    };
    for s in chain.iter().rev() {
        let Some(layer) = s.layer() else { continue };
        let mut archive = tar::Archive::new(fs_err::File::open(&layer)?);
        let mut found = None;
        let mut gone = false;
        for e in archive.entries_with_seek()? {
            let mut e = e?;
            let name = clean(&e.path_bytes());
            if name == path {
                if e.header().entry_type().is_file() {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes)?;
                    found = Some(bytes);
                } else {
                    gone = true;
                }
            } else if hidden(&name) {
                gone = true;
            }
        }
        // An entry in this layer wins over a whiteout of a lower one in the same layer.
        if found.is_some() {
            return Ok(found);
        }
        if gone {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Bytes a file tree takes: regular file sizes and entry counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sum of regular file sizes.
    pub bytes: u64,
    /// Entries (inodes), directories included.
    pub entries: u64,
}

/// What `tree` holds.
pub fn usage(tree: &Tree) -> Usage {
    let mut u = Usage::default();
    for m in tree.values() {
        u.entries += 1;
        if let Kind::File(n) = m.kind {
            u.bytes += n;
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Kind) -> Meta {
        Meta::root_owned(kind, 0o755, 0)
    }

    #[test]
    fn remove_below_keeps_siblings_with_a_common_prefix() {
        let mut t = Tree::new();
        for p in ["a", "a/b", "a/b/c", "ab", "a-b"] {
            t.insert(p.into(), m(Kind::Dir));
        }
        remove_below(&mut t, "a", false);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a-b", "ab"]);
        let mut t = Tree::new();
        for p in ["d", "d/x", "d/y/z"] {
            t.insert(p.into(), m(Kind::Dir));
        }
        remove_below(&mut t, "d", true);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["d"]);
    }

    #[test]
    fn usage_counts_files_and_entries() {
        let mut t = Tree::new();
        t.insert("a".into(), m(Kind::File(10)));
        t.insert("b".into(), m(Kind::Dir));
        t.insert("c".into(), m(Kind::Symlink("a".into())));
        assert_eq!(
            usage(&t),
            Usage {
                bytes: 10,
                entries: 3
            }
        );
    }
}
