//! Applying a layer tar to a root: entries written through [`RootDir`] (no path leaves the
//! root), whiteouts and opaque directories honoured, owners and modes as recorded.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use apk::rootfs::{ApplyOptions, EntryKind, EntryMeta, RootDir};

use super::{Owners, entry_name, forget};

/// Errors applying a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Reading the tar failed.
    #[error("failed to read layer `{layer}`: {source}")]
    Read {
        /// The layer file.
        layer: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// An entry was refused or could not be created.
    #[error("layer `{layer}`: entry `{entry}` refused: {source}")]
    Entry {
        /// The layer file.
        layer: PathBuf,
        /// The entry name.
        entry: String,
        /// Cause.
        source: Box<apk::rootfs::RootfsError>,
    },
}

/// Extracts a layer tar (OCI whiteouts honoured) into `root`, every path through
/// [`RootDir`], so hostile names and symlinks cannot reach outside it.
pub fn apply(root: &RootDir, layer: &Path) -> Result<(), ApplyError> {
    let read_err = |source| ApplyError::Read {
        layer: layer.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(layer).map_err(read_err)?;
    apply_reader(root, io::BufReader::new(file), layer)
}

/// Extracts a layer into a build root: as [`apply`], but owners go to `owners` (the image
/// owners of the root's paths), never to the disk. A build root is then owned by the user
/// running `assemble` throughout, which the sandbox maps to the step's USER: as root or
/// rootless alike, a RUN can modify files an earlier step gave to another user (a uid
/// bubblewrap does not map would look like `nobody`, and be read-only, inside).
pub fn apply_recording(
    root: &RootDir,
    layer: &Path,
    owners: &mut Owners,
) -> Result<(), ApplyError> {
    let read_err = |source| ApplyError::Read {
        layer: layer.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(layer).map_err(read_err)?;
    apply_reader_recording(root, io::BufReader::new(file), layer, owners, Path::new(""))
}

/// As [`apply`], from any reader (`layer` names it in errors).
pub fn apply_reader(root: &RootDir, reader: impl Read, layer: &Path) -> Result<(), ApplyError> {
    let opts = ApplyOptions::for_current_process();
    apply_inner(root, reader, layer, &mut Owners::new(), Path::new(""), opts)
}

/// [`apply_recording`] from any reader, with paths recorded under `prefix` (where `root`
/// sits in the image: ADD extracts an archive into a subdirectory).
pub fn apply_reader_recording(
    root: &RootDir,
    reader: impl Read,
    layer: &Path,
    owners: &mut Owners,
    prefix: &Path,
) -> Result<(), ApplyError> {
    let opts = ApplyOptions {
        chown: false,
        ..ApplyOptions::for_current_process()
    };
    apply_inner(root, reader, layer, owners, prefix, opts)
}

fn apply_inner(
    root: &RootDir,
    reader: impl Read,
    layer: &Path,
    owners: &mut Owners,
    prefix: &Path,
    opts: ApplyOptions,
) -> Result<(), ApplyError> {
    let read_err = |source| ApplyError::Read {
        layer: layer.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = entry_name(&entry);
        if name.is_empty() || name == "." {
            continue;
        }
        let entry_err = |source| ApplyError::Entry {
            layer: layer.to_path_buf(),
            entry: name.clone(),
            source: Box::new(source),
        };
        apk::rootfs::check_entry_name(&name).map_err(entry_err)?;
        if whiteout(root, owners, prefix, &name).map_err(entry_err)? {
            continue;
        }
        let Some(meta) = entry_meta(&entry, &name) else {
            continue;
        };
        if meta.kind == EntryKind::Dir {
            dirs.push(meta.clone());
        } else {
            forget(owners, &prefix.join(&name));
        }
        owners.insert(prefix.join(&name), (meta.uid, meta.gid));
        // A file replacing a directory (or the reverse) from a lower layer.
        if let Ok(md) = root.metadata(&name)
            && md.is_dir() != (meta.kind == EntryKind::Dir)
        {
            remove_all(root, Path::new(&name)).map_err(entry_err)?;
        }
        root.apply(&meta, &mut entry, &opts).map_err(entry_err)?;
    }
    // Creating entries bumped directory mtimes: set them again, deepest first.
    for d in dirs.iter().rev() {
        let _ = root.set_mtime(&d.path, d.mtime);
    }
    Ok(())
}

/// Carries out entry `name` when it is a whiteout (`.wh..wh..opq` empties its directory,
/// `.wh.NAME` removes NAME), forgetting the owners of what it removed; false for any
/// other entry.
fn whiteout(
    root: &RootDir,
    owners: &mut Owners,
    prefix: &Path,
    name: &str,
) -> Result<bool, apk::rootfs::RootfsError> {
    let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
    if base == ".wh..wh..opq" {
        clear_dir(root, Path::new(dir))?;
        let d = prefix.join(dir);
        let own = owners.get(&d).copied();
        forget(owners, &d);
        if let Some(o) = own {
            owners.insert(d, o);
        }
        return Ok(true);
    }
    if let Some(victim) = base.strip_prefix(".wh.") {
        let victim = Path::new(dir).join(victim);
        remove_all(root, &victim)?;
        forget(owners, &prefix.join(&victim));
        return Ok(true);
    }
    Ok(false)
}

/// What tar `entry` (named `name`) puts in the root; `None` for a kind we skip.
fn entry_meta<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Option<EntryMeta> {
    let h = entry.header();
    let link = || {
        entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let kind = match h.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink(link()),
        tar::EntryType::Link => EntryKind::HardLink(
            link()
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string(),
        ),
        tar::EntryType::Char | tar::EntryType::Block => {
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            if h.entry_type() == tar::EntryType::Char {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        }
        tar::EntryType::Fifo => EntryKind::Fifo,
        _ => return None,
    };
    Some(EntryMeta {
        path: name.to_string(),
        kind,
        mode: h.mode().unwrap_or(0o644),
        uid: h.uid().unwrap_or(0) as u32,
        gid: h.gid().unwrap_or(0) as u32,
        mtime: h.mtime().unwrap_or(0) as i64,
    })
}

/// The host path of `rel` inside `root`, refusing any symlink on the way (so a recursive
/// removal there cannot leave the root).
fn host_path(root: &RootDir, rel: &Path) -> Result<PathBuf, apk::rootfs::RootfsError> {
    let mut cur = PathBuf::new();
    for c in rel.components() {
        if let std::path::Component::Normal(n) = c {
            cur.push(n);
            let md = root.metadata(&cur)?;
            if md.file_type().is_symlink() && cur != rel {
                // Resolve inside the root and continue from there.
                return Err(apk::rootfs::RootfsError::EntryName {
                    name: rel.display().to_string(),
                    reason: "crosses a symlink",
                });
            }
        }
    }
    Ok(root.path().join(rel))
}

fn remove_all(root: &RootDir, rel: &Path) -> Result<(), apk::rootfs::RootfsError> {
    match root.metadata(rel) {
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
        Ok(md) if !md.is_dir() => return root.remove(rel),
        Ok(_) => {}
    }
    let host = host_path(root, rel)?;
    fs_err::remove_dir_all(&host).map_err(|e| apk::rootfs::RootfsError::EntryName {
        name: format!("{}: {e}", rel.display()),
        reason: "could not be removed",
    })
}

fn clear_dir(root: &RootDir, rel: &Path) -> Result<(), apk::rootfs::RootfsError> {
    let host = host_path(root, rel)?;
    let Ok(entries) = fs_err::read_dir(&host) else {
        return Ok(());
    };
    for e in entries.flatten() {
        remove_all(root, &rel.join(e.file_name()))?;
    }
    Ok(())
}
