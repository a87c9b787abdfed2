//! Layers: what a step changed, found by a metadata scan, written as an OCI layer tar.
//!
//! Why a scan and not overlayfs: bubblewrap 0.8's `--overlay` needs the build root on a
//! filesystem overlayfs accepts as upper dir inside a user namespace, and a COPY or an apk
//! install done by us (not inside bwrap) would need its own mount. A scan of `lstat` data
//! (inode, size, mtime, ctime, mode, owner, link target) costs time per *file*, not per byte,
//! and the layer then holds only the changed files' bytes plus whiteouts: a snapshot costs in
//! proportion to what the step changed. ctime is in the key because a process cannot set it,
//! so a rewrite that restores size and mtime is still seen.
//!
//! Layers are written with the `tar` crate in a fixed form: entries sorted by path, numeric
//! owners, no user/group names, and mtimes clamped to SOURCE_DATE_EPOCH when given.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

mod apply;
mod chown;
mod overlay;

pub use apply::{ApplyError, apply, apply_reader, apply_reader_recording, apply_recording};
pub use chown::{chown_to_host, chown_to_image};
pub use overlay::{load_lower, save_lower, scan_lower, scan_merged, settle_copy_ups};

/// What the scan records about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    rdev: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    Char,
    Block,
    Fifo,
    Socket,
}

/// A metadata scan of a root: relative path → node, sorted.
pub type Manifest = BTreeMap<PathBuf, Node>;

/// Scans `root` (not following symlinks).
pub fn scan(root: &Path) -> io::Result<Manifest> {
    let mut out = Manifest::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        let md = entry.metadata().map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(root).map_err(io::Error::other)?;
        out.insert(rel.to_path_buf(), node(entry.path(), &md)?);
    }
    Ok(out)
}

/// What the scan records about `path`, whose `lstat` is `md`.
fn node(path: &Path, md: &std::fs::Metadata) -> io::Result<Node> {
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        Kind::Symlink(fs_err::read_link(path)?)
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_char_device() {
        Kind::Char
    } else if ft.is_block_device() {
        Kind::Block
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        Kind::Socket
    };
    Ok(Node {
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
        ino: md.ino(),
        rdev: md.rdev(),
    })
}

/// Takes the current ctime of `rel` into `manifest` when nothing else about it changed:
/// the sandbox's helper mountpoint (`crate::sandbox::Helper::touched`) added and removed
/// an entry there and set its times back, which the kernel records in the ctime alone, so
/// the directory is not part of the step's layer.
pub fn accept_ctime(manifest: &mut Manifest, root: &Path, rel: &Path) -> io::Result<()> {
    let Some(node) = manifest.get_mut(rel) else {
        return Ok(());
    };
    let md = fs_err::symlink_metadata(root.join(rel))?;
    let now = (
        md.mode() & 0o7777,
        md.uid(),
        md.gid(),
        (md.mtime(), md.mtime_nsec()),
        md.ino(),
    );
    if now == (node.mode, node.uid, node.gid, node.mtime, node.ino) {
        node.ctime = (md.ctime(), md.ctime_nsec());
    }
    Ok(())
}

/// Summary of a written layer.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the tar bytes.
    pub diff_id: String,
    /// Tar size.
    pub size: u64,
    /// Entries written (whiteouts included).
    pub entries: usize,
}

/// Hashes what passes through.
pub struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }
    /// `(inner, "sha256:<hex>", bytes)`.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hash.finalize())),
            self.len,
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Which paths changed from `old` to `new`: `(upserts, deletions)`, both sorted. A deleted
/// directory's children are not listed (its whiteout covers them).
pub fn diff(old: &Manifest, new: &Manifest) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let upserts = new
        .iter()
        .filter(|(p, n)| old.get(*p) != Some(n))
        .map(|(p, _)| p.clone())
        .collect();
    let deletions = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .filter(|p| {
            // Covered by the parent's own deletion or replacement by a non-directory.
            match p.parent().filter(|q| !q.as_os_str().is_empty()) {
                None => true,
                Some(parent) => {
                    old.get(parent).is_some_and(|n| n.kind == Kind::Dir)
                        && new.get(parent).is_some_and(|n| n.kind == Kind::Dir)
                }
            }
        })
        .cloned()
        .collect();
    (upserts, deletions)
}

/// Writes the changes from `old` to `new` (scans of `root`) as a layer tar at `out`.
/// `clamp` limits every mtime (SOURCE_DATE_EPOCH).
pub fn write_diff(
    root: &Path,
    old: &Manifest,
    new: &Manifest,
    clamp: Option<u64>,
    out: &Path,
) -> io::Result<LayerInfo> {
    write_diff_owned(root, old, new, clamp, None, out)
}

/// How host owners become image owners in a layer.
///
/// bubblewrap maps exactly one id: whatever the step's USER, what it creates is owned on the
/// host by the user running `assemble` (root, or a rootless user). So entries owned by
/// `host` are recorded as owned by `created` when new in this step (the USER that made them)
/// and by root otherwise; entries with other owners (set by COPY --chown, packages) keep them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerMap {
    /// The host uid and gid the sandbox maps.
    pub host: (u32, u32),
    /// Owner of entries created in this step.
    pub created: (u32, u32),
}

/// The owners paths have in the image, where the disk cannot say: bubblewrap maps one id,
/// and an unprivileged build cannot `chown`, so a file made by `USER 1000` in one step and
/// appended to in the next is owned by the host user on disk both times. Filled from the
/// tar headers of the layers a root is built from, from COPY `--chown`, and from what each
/// step's layer recorded.
pub type Owners = BTreeMap<PathBuf, (u32, u32)>;

impl OwnerMap {
    /// No translation: the disk owners are the image owners (the sandbox mapped the image's
    /// ids to themselves). No host id is `u32::MAX`, the kernel's "no id" (-1).
    pub fn as_on_disk() -> Self {
        Self {
            host: (u32::MAX, u32::MAX),
            created: (0, 0),
        }
    }

    /// The map of a step that ran in the sandbox: disk owners as they are when the sandbox
    /// mapped the image's ids (`on_disk`), else the host user's files belong to `created`.
    pub fn for_step(on_disk: bool, created: (u32, u32)) -> Self {
        if on_disk {
            return Self::as_on_disk();
        }
        Self {
            host: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
            created,
        }
    }
}

/// Forgets `path` and everything below it (in an owner table or a manifest).
pub fn forget<V>(owners: &mut BTreeMap<PathBuf, V>, path: &Path) {
    owners.remove(path);
    let below: Vec<PathBuf> = owners
        .range(path.to_path_buf()..)
        .skip_while(|(p, _)| *p == path)
        .take_while(|(p, _)| p.starts_with(path))
        .map(|(p, _)| p.clone())
        .collect();
    for p in below {
        owners.remove(&p);
    }
}

/// [`write_diff`] with owners translated per [`OwnerMap`].
pub fn write_diff_owned(
    root: &Path,
    old: &Manifest,
    new: &Manifest,
    clamp: Option<u64>,
    owners: Option<OwnerMap>,
    out: &Path,
) -> io::Result<LayerInfo> {
    write_diff_inner(root, old, new, clamp, owners, None, out)
}

/// [`write_diff_owned`] that keeps `image` (the image owners of the root's paths) in step:
/// an entry the host user owns gets its image owner from `image` when known (it existed
/// before this step, or COPY `--chown` set it), else the step's USER when new, else root;
/// `image` then holds what the layer recorded.
pub fn write_diff_tracked(
    root: &Path,
    old: &Manifest,
    new: &Manifest,
    clamp: Option<u64>,
    owners: OwnerMap,
    image: &mut Owners,
    out: &Path,
) -> io::Result<LayerInfo> {
    write_diff_inner(root, old, new, clamp, Some(owners), Some(image), out)
}

fn write_diff_inner(
    root: &Path,
    old: &Manifest,
    new: &Manifest,
    clamp: Option<u64>,
    owners: Option<OwnerMap>,
    mut image: Option<&mut Owners>,
    out: &Path,
) -> io::Result<LayerInfo> {
    let (upserts, deletions) = diff(old, new);
    if let Some(image) = image.as_deref_mut() {
        for p in &deletions {
            forget(image, p);
        }
    }
    let mut tar = create_layer(out)?;
    for p in &deletions {
        append_whiteout(&mut tar, p, clamp.unwrap_or(0))?;
    }
    let mut entries = deletions.len();
    let mut links: HashMap<u64, PathBuf> = HashMap::new();
    for p in &upserts {
        let n = image_owned(p, &new[p], old, owners, image.as_deref_mut());
        let mtime = clamp.map_or(n.mtime.0.max(0) as u64, |c| {
            (n.mtime.0.max(0) as u64).min(c)
        });
        if append_node(&mut tar, &root.join(p), p, &n, mtime, &mut links)? {
            entries += 1;
        }
    }
    finish_layer(tar, entries)
}

/// A whiteout entry hiding `p` (`.wh.<name>` beside it).
fn append_whiteout(tar: &mut LayerBuilder, p: &Path, mtime: u64) -> io::Result<()> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wh = p.with_file_name(format!(".wh.{name}"));
    let mut h = header(tar::EntryType::Regular, 0o600, 0, 0, mtime);
    tar.append_data(&mut h, &wh, io::empty())
}

/// `node` with the owners the image records for `p` (see [`write_diff_tracked`]), and
/// `image` updated to them.
fn image_owned(
    p: &Path,
    node: &Node,
    old: &Manifest,
    owners: Option<OwnerMap>,
    image: Option<&mut Owners>,
) -> Node {
    let mut n = node.clone();
    if let Some(m) = owners {
        let fresh = !old.contains_key(p);
        let known = image.as_deref().and_then(|i| i.get(p)).copied();
        if n.uid == m.host.0 {
            n.uid = known.map_or(if fresh { m.created.0 } else { 0 }, |k| k.0);
        }
        if n.gid == m.host.1 {
            n.gid = known.map_or(if fresh { m.created.1 } else { 0 }, |k| k.1);
        }
    }
    if let Some(image) = image {
        // A directory replaced by a file takes its children along.
        if old.get(p).is_some_and(|o| o.kind != n.kind) {
            forget(image, p);
        }
        image.insert(p.to_path_buf(), (n.uid, n.gid));
    }
    n
}

/// Appends `n` (at `full` on the host) as `p`; false when it has no place in a layer (a
/// socket). `links` remembers the first name of each multiply linked file in this layer.
fn append_node(
    tar: &mut LayerBuilder,
    full: &Path,
    p: &Path,
    n: &Node,
    mtime: u64,
    links: &mut HashMap<u64, PathBuf>,
) -> io::Result<bool> {
    match &n.kind {
        Kind::File => {
            // A second name of a file already in this layer: a hard link.
            let nlink = fs_err::symlink_metadata(full)?.nlink();
            if nlink > 1 {
                if let Some(first) = links.get(&n.ino) {
                    let mut h = header(tar::EntryType::Link, n.mode, n.uid, n.gid, mtime);
                    tar.append_link(&mut h, p, first)?;
                    return Ok(true);
                }
                links.insert(n.ino, p.to_path_buf());
            }
            let mut h = header(tar::EntryType::Regular, n.mode, n.uid, n.gid, mtime);
            let f = fs_err::File::open(full)?;
            h.set_size(f.metadata()?.len());
            tar.append_data(&mut h, p, f)?;
        }
        Kind::Dir => {
            let mut h = header(tar::EntryType::Directory, n.mode, n.uid, n.gid, mtime);
            tar.append_data(&mut h, p, io::empty())?;
        }
        Kind::Symlink(target) => {
            let mut h = header(tar::EntryType::Symlink, 0o777, n.uid, n.gid, mtime);
            tar.append_link(&mut h, p, target)?;
        }
        Kind::Char | Kind::Block | Kind::Fifo => {
            let t = match n.kind {
                Kind::Char => tar::EntryType::Char,
                Kind::Block => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            };
            let mut h = header(t, n.mode, n.uid, n.gid, mtime);
            h.set_device_major(rustix::fs::major(n.rdev))?;
            h.set_device_minor(rustix::fs::minor(n.rdev))?;
            tar.append_data(&mut h, p, io::empty())?;
        }
        // Sockets belong to a running process, not an image.
        Kind::Socket => return Ok(false),
    }
    Ok(true)
}

fn header(t: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(t);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// Merges layer tars (bottom first) into one layer with the same effect, written to `out`:
/// whiteouts that still matter first, then each path's last version in layer order.
pub fn squash(layers: &[PathBuf], out: &Path) -> io::Result<LayerInfo> {
    let state = squash_state(layers)?;
    let mut tar = create_layer(out)?;
    let mut entries = 0;
    for (name, s) in &state {
        if matches!(s, Squashed::Deleted) {
            append_whiteout(&mut tar, Path::new(name), 0)?;
            entries += 1;
        }
    }
    entries += copy_last_versions(&mut tar, layers, &state)?;
    finish_layer(tar, entries)
}

/// What the squashed layer holds for a path.
#[derive(Clone)]
enum Squashed {
    Deleted,
    Present { layer: usize, opaque: bool },
}

/// Each path's fate after all `layers`, read bottom first.
fn squash_state(layers: &[PathBuf]) -> io::Result<BTreeMap<String, Squashed>> {
    let mut state = BTreeMap::new();
    for (i, l) in layers.iter().enumerate() {
        let mut a = tar::Archive::new(io::BufReader::new(fs_err::File::open(l)?));
        for e in a.entries()? {
            let e = e?;
            let is_dir = e.header().entry_type() == tar::EntryType::Directory;
            squash_entry(&mut state, entry_name(&e), is_dir, i);
        }
    }
    Ok(state)
}

/// Records one entry of layer `layer` in `state`: an opaque marker, a whiteout or a path.
fn squash_entry(state: &mut BTreeMap<String, Squashed>, name: String, is_dir: bool, layer: usize) {
    let (dir, base) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
    if base == ".wh..wh..opq" {
        let inside = format!("{dir}/");
        state.retain(|k, _| !k.starts_with(&inside));
        if let Some(Squashed::Present { opaque, .. }) = state.get_mut(dir) {
            *opaque = true;
        }
        return;
    }
    if let Some(v) = base.strip_prefix(".wh.") {
        let victim = if dir.is_empty() {
            v.to_string()
        } else {
            format!("{dir}/{v}")
        };
        let inside = format!("{victim}/");
        state.retain(|k, _| !k.starts_with(&inside));
        state.insert(victim, Squashed::Deleted);
        return;
    }
    let opaque = is_dir && matches!(state.get(&name), Some(Squashed::Deleted));
    let opaque = opaque
        || matches!(state.get(&name), Some(Squashed::Present { opaque: true, .. }) if is_dir);
    if !is_dir {
        // A file replacing a directory hides what was below it.
        let inside = format!("{name}/");
        state.retain(|k, _| !k.starts_with(&inside));
    }
    state.insert(name, Squashed::Present { layer, opaque });
}

/// Copies each present path's last version from `layers` into `tar`, in layer order, with
/// an opaque marker after a directory that replaced a deleted one; returns the entries
/// written.
fn copy_last_versions(
    tar: &mut LayerBuilder,
    layers: &[PathBuf],
    state: &BTreeMap<String, Squashed>,
) -> io::Result<usize> {
    let mut entries = 0;
    for (i, l) in layers.iter().enumerate() {
        let mut a = tar::Archive::new(io::BufReader::new(fs_err::File::open(l)?));
        for e in a.entries()? {
            let mut e = e?;
            let name = entry_name(&e);
            let Some(Squashed::Present { layer, opaque }) = state.get(&name) else {
                continue;
            };
            if *layer != i {
                continue;
            }
            let mut h = e.header().clone();
            copy_entry(tar, &mut h, &name, &mut e)?;
            entries += 1;
            if *opaque {
                let mut h = header(tar::EntryType::Regular, 0o600, 0, 0, 0);
                tar.append_data(&mut h, format!("{name}/.wh..wh..opq"), io::empty())?;
                entries += 1;
            }
        }
    }
    Ok(entries)
}

/// Splits a layer into `groups + 1` layers with the same combined effect: group 0 gets
/// every directory, whiteout and unassigned entry (so parents always come first), group
/// `k + 1` the entries `assign` maps to `k`. Each path appears in exactly one output, so the
/// order of the outputs does not matter for files. Empty outputs are dropped.
pub fn split(
    layer: &Path,
    groups: usize,
    assign: &dyn Fn(&str) -> Option<usize>,
    work: &Path,
) -> io::Result<Vec<(PathBuf, LayerInfo)>> {
    Ok(split_labelled(layer, groups, assign, work)?
        .into_iter()
        .map(|(_, p, i)| (p, i))
        .collect())
}

/// [`split`], each output with its group number (0 for the unassigned group).
pub fn split_labelled(
    layer: &Path,
    groups: usize,
    assign: &dyn Fn(&str) -> Option<usize>,
    work: &Path,
) -> io::Result<Vec<(usize, PathBuf, LayerInfo)>> {
    let mut builders = Vec::new();
    let mut counts = vec![0usize; groups + 1];
    for g in 0..=groups {
        let path = work.join(format!("split-{g}.tar"));
        let tar = create_layer(&path)?;
        builders.push((path, tar));
    }
    let mut a = tar::Archive::new(io::BufReader::new(fs_err::File::open(layer)?));
    for e in a.entries()? {
        let mut e = e?;
        let name = entry_name(&e);
        let mut h = e.header().clone();
        let g = match h.entry_type() {
            tar::EntryType::Directory => 0,
            _ if name
                .rsplit('/')
                .next()
                .is_some_and(|b| b.starts_with(".wh.")) =>
            {
                0
            }
            _ => assign(&name).map_or(0, |k| k.min(groups - 1) + 1),
        };
        copy_entry(&mut builders[g].1, &mut h, &name, &mut e)?;
        counts[g] += 1;
    }
    let mut out = Vec::new();
    for (g, ((path, tar), n)) in builders.into_iter().zip(counts).enumerate() {
        let info = finish_layer(tar, n)?;
        if n > 0 {
            out.push((g, path, info));
        }
    }
    Ok(out)
}

/// A layer tar being written, hashed as it goes (the hash is the layer's diff_id).
type LayerBuilder = tar::Builder<HashWriter<io::BufWriter<fs_err::File>>>;

fn create_layer(out: &Path) -> io::Result<LayerBuilder> {
    let file = io::BufWriter::new(fs_err::File::create(out)?);
    Ok(tar::Builder::new(HashWriter::new(file)))
}

/// Ends the archive and fsyncs it: a snapshot must not point at a torn layer.
fn finish_layer(tar: LayerBuilder, entries: usize) -> io::Result<LayerInfo> {
    let (buf, diff_id, size) = tar.into_inner()?.finish();
    buf.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(LayerInfo {
        diff_id,
        size,
        entries,
    })
}

/// An entry's path as layers compare it: no leading `./`, no trailing `/`.
fn entry_name<R: Read>(e: &tar::Entry<'_, R>) -> String {
    String::from_utf8_lossy(&e.path_bytes())
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

/// Appends a layer entry under `name` with header `h`: links keep their (possibly long)
/// targets through the builder's long-name support, other entries bring their data.
fn copy_entry<W: io::Write, R: io::Read>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    e: &mut tar::Entry<'_, R>,
) -> io::Result<()> {
    match h.entry_type() {
        tar::EntryType::Symlink | tar::EntryType::Link => {
            let target = e
                .link_name_bytes()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default();
            let target = PathBuf::from(String::from_utf8_lossy(&target).into_owned());
            tar.append_link(h, name, target)
        }
        _ => tar.append_data(h, name, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apk::rootfs::RootDir;

    fn names(layer: &Path) -> Vec<String> {
        let mut a = tar::Archive::new(fs_err::File::open(layer).unwrap());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn diff_layer_holds_only_changes_and_applies_back() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs_err::create_dir_all(root.join("a/b")).unwrap();
        fs_err::write(root.join("a/b/keep"), "k").unwrap();
        fs_err::write(root.join("a/b/gone"), "g").unwrap();
        fs_err::create_dir_all(root.join("d/e")).unwrap();
        fs_err::write(root.join("d/e/f"), "f").unwrap();
        let before = scan(&root).unwrap();
        let base = t.path().join("base.tar");
        write_diff(&root, &Manifest::new(), &before, None, &base).unwrap();
        fs_err::write(root.join("a/b/new"), "n").unwrap();
        fs_err::remove_file(root.join("a/b/gone")).unwrap();
        fs_err::remove_dir_all(root.join("d")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let after = scan(&root).unwrap();
        let layer = t.path().join("l.tar");
        let info = write_diff(&root, &before, &after, Some(100), &layer).unwrap();
        assert_eq!(
            names(&layer),
            ["a/b/.wh.gone", ".wh.d", "a/b", "a/b/new", "link"]
        );
        assert_eq!(info.entries, 5);

        // Replaying the layer on a copy of the old state gives the new state.
        let copy = t.path().join("copy");
        fs_err::create_dir_all(copy.join("a/b")).unwrap();
        fs_err::write(copy.join("a/b/keep"), "k").unwrap();
        fs_err::write(copy.join("a/b/gone"), "g").unwrap();
        fs_err::create_dir_all(copy.join("d/e")).unwrap();
        apply(&RootDir::open(&copy).unwrap(), &layer).unwrap();
        let got: Vec<_> = scan(&copy).unwrap().into_keys().collect();
        let want: Vec<_> = after.into_keys().collect();
        assert_eq!(got, want);
        assert_eq!(
            fs_err::read_link(copy.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );

        // Squashing the two-layer history gives one layer with the same effect.
        let sq = t.path().join("sq.tar");
        let _ = squash(&[base, layer], &sq).unwrap();
        let sq_names = names(&sq);
        assert!(sq_names.contains(&"a/b/new".to_string()));
        assert!(
            !sq_names
                .iter()
                .any(|n| n == "a/b/gone" || n.starts_with("d/"))
        );
    }

    #[test]
    fn hostile_layers_cannot_reach_outside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs_err::create_dir_all(&root).unwrap();
        let outside = t.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        // A symlink to the outside, then a write through it.
        let layer = t.path().join("evil.tar");
        {
            let mut b = tar::Builder::new(fs_err::File::create(&layer).unwrap());
            let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0, 0);
            b.append_link(&mut h, "escape", &outside).unwrap();
            let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
            h.set_size(4);
            b.append_data(&mut h, "escape/pwned", &b"evil"[..]).unwrap();
            b.finish().unwrap();
        }
        let r = RootDir::open(&root).unwrap();
        let _ = apply(&r, &layer);
        assert!(!outside.join("pwned").exists());
        // `..` names are refused outright.
        let dotdot = t.path().join("dotdot.tar");
        {
            let mut raw = Vec::new();
            let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
            h.set_size(4);
            h.as_old_mut().name[..9].copy_from_slice(b"../pwned2");
            h.set_cksum();
            raw.extend_from_slice(h.as_bytes());
            raw.extend_from_slice(b"evil");
            raw.resize(512 * 2, 0);
            raw.resize(512 * 4, 0);
            fs_err::write(&dotdot, raw).unwrap();
        }
        assert!(matches!(apply(&r, &dotdot), Err(ApplyError::Entry { .. })));
        assert!(!t.path().join("pwned2").exists());
        // A whiteout cannot delete through a symlink either.
        let wh = t.path().join("wh.tar");
        fs_err::write(outside.join("keep"), "k").unwrap();
        {
            let mut b = tar::Builder::new(fs_err::File::create(&wh).unwrap());
            let mut h = header(tar::EntryType::Regular, 0o600, 0, 0, 0);
            b.append_data(&mut h, "escape/.wh.keep", std::io::empty())
                .unwrap();
            b.finish().unwrap();
        }
        let _ = apply(&r, &wh);
        assert!(outside.join("keep").exists());
    }
}
