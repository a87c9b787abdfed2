//! Verifying and extracting one package into the root (apk-format.md §1.6, §4.1, §4.8).
//!
//! The package streams once: the control member is checked against the index `C:` before
//! any data is written (so a package that is not the indexed one never touches the root),
//! and `datahash` (SHA-256 of the whole data member, named by the verified control member)
//! is checked at the end, which covers every file and its `APK-TOOLS.checksum.SHA1`; a
//! symlink's recorded checksum is compared with its target on the way. On any failure the
//! entries this package newly created are removed again. File ownership conflicts follow
//! apk 2.14's `apk_db_install_archive_entry`: same name, same origin or `replaces` take over,
//! a `replaces` of the current owner with a higher priority keeps its file, anything else is
//! an error.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha1::Digest as _;

use super::InstallError;
use super::owners::Owners;
use super::script::{ScriptJob, ScriptKind, ScriptOutcome, ScriptRunner};
use crate::checksum::Checksum;
use crate::dep::Dependency;
use crate::installed::{Acl, InstalledDir, InstalledFile, InstalledPackage, xattr_digest};
use crate::package::PackageError;
use crate::package::extract::{check_entry, entry_kind};
use crate::package::read::{DataVisitor, ReadLimits, read_with};
use crate::pkginfo::PkgInfo;
use crate::rootfs::{Applied, ApplyOptions, EntryKind, EntryMeta, RootDir};
use crate::tar::{Entry, EntryType};

/// What the installer knows when a package is unpacked.
pub(super) struct UnpackContext<'a> {
    pub root: &'a RootDir,
    pub apply: &'a ApplyOptions,
    pub owners: &'a Owners,
    /// Installed packages other than the one being replaced.
    pub installed: &'a [InstalledPackage],
    /// Non-directory path → index into `installed` of its owner.
    pub owned: &'a HashMap<String, usize>,
    /// The index entry: name, version, `C:`.
    pub name: &'a str,
    pub version: &'a str,
    pub origin: &'a str,
    pub expected: Checksum,
    pub url: &'a str,
    /// Paths the old version of this package owned (an upgrade overwrites them freely).
    pub previous: &'a HashSet<String>,
    /// The script to run once the identity is verified, before data: pre-install or
    /// pre-upgrade, with its arguments.
    pub pre: Option<(ScriptKind, Vec<String>)>,
}

/// A package after extraction.
pub(super) struct Unpacked {
    pub info: PkgInfo,
    pub scripts: Vec<(String, Vec<u8>)>,
    pub dirs: Vec<InstalledDir>,
    /// Paths taken over from other packages: (path, index of the former owner).
    pub taken: Vec<(String, usize)>,
    /// `f:` flags to set (`x` when xattrs could not be applied).
    pub flags: String,
    /// What became of the pre-install/pre-upgrade script, if the package has one.
    pub pre_outcome: Option<(ScriptKind, ScriptOutcome)>,
    /// Device nodes not created ([`crate::rootfs::DevicePolicy`] allowed skipping them).
    pub skipped_devices: Vec<String>,
}

struct Visitor<'a, 'b> {
    cx: &'b UnpackContext<'a>,
    links: HashSet<String>,
    dirs: Vec<InstalledDir>,
    dir_index: HashMap<String, usize>,
    /// Non-directory paths this package created where nothing was before.
    created: Vec<String>,
    /// Directories this package created, parents first.
    created_dirs: Vec<String>,
    /// Files a package owned already, written under a temporary name beside them and
    /// renamed into place only once the whole package verified: `(temporary, final)`.
    staged: Vec<(String, String)>,
    /// Regular-file digests by path, for hard links.
    digests: HashMap<String, Option<Checksum>>,
    taken: Vec<(String, usize)>,
    flags: String,
    failure: Option<InstallError>,
    my_replaces: Option<(Vec<Dependency>, u32)>,
    skipped_devices: Vec<String>,
}

/// Stops the stream with `err`, kept for the caller to report precisely.
fn abort(v: &mut Visitor<'_, '_>, err: InstallError) -> PackageError {
    let text = err.to_string();
    v.failure = Some(err);
    PackageError::Format(text)
}

/// Hashes content on its way to the root, when the entry carries no checksum of its own.
struct HashingReader<'r> {
    inner: &'r mut dyn Read,
    hash: Option<sha1::Sha1>,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

impl<'a, 'b> Visitor<'a, 'b> {
    fn new(cx: &'b UnpackContext<'a>) -> Self {
        Self {
            cx,
            links: HashSet::new(),
            dirs: Vec::new(),
            dir_index: HashMap::new(),
            created: Vec::new(),
            created_dirs: Vec::new(),
            staged: Vec::new(),
            digests: HashMap::new(),
            taken: Vec::new(),
            flags: String::new(),
            failure: None,
            my_replaces: None,
            skipped_devices: Vec::new(),
        }
    }

    fn dir(&mut self, path: &str) -> &mut InstalledDir {
        let i = match self.dir_index.get(path) {
            Some(&i) => i,
            None => {
                self.dirs.push(InstalledDir {
                    path: path.to_owned(),
                    acl: None,
                    files: Vec::new(),
                });
                self.dir_index.insert(path.to_owned(), self.dirs.len() - 1);
                self.dirs.len() - 1
            }
        };
        &mut self.dirs[i]
    }

    /// apk's ownership rules; `Ok(false)` = keep the other package's file, skip ours.
    fn may_write(&mut self, path: &str) -> Result<bool, InstallError> {
        if self.cx.previous.contains(path) {
            return Ok(true);
        }
        let Some(&owner_idx) = self.cx.owned.get(path) else {
            return Ok(true);
        };
        let owner = &self.cx.installed[owner_idx];
        if owner.entry.name == self.cx.name
            || (!self.cx.origin.is_empty() && owner.entry.origin == self.cx.origin)
        {
            self.taken.push((path.to_owned(), owner_idx));
            return Ok(true);
        }
        let materialized = |deps: &[String], name: &str, version: &str| {
            deps.iter()
                .filter_map(|d| d.parse::<Dependency>().ok())
                .any(|d| d.matches(name, version))
        };
        let owner_prio = if materialized(&owner.replaces, self.cx.name, self.cx.version) {
            i64::from(owner.replaces_priority.unwrap_or(0))
        } else {
            -1
        };
        let (mine, my_prio) = self.my_replaces.clone().unwrap_or_default();
        let pkg_prio = if mine
            .iter()
            .any(|d| d.matches(&owner.entry.name, &owner.entry.version))
        {
            i64::from(my_prio)
        } else {
            -1
        };
        if owner_prio > pkg_prio {
            return Ok(false);
        }
        if pkg_prio >= 0 {
            self.taken.push((path.to_owned(), owner_idx));
            return Ok(true);
        }
        Err(InstallError::FileConflict {
            package: format!("{}-{}", self.cx.name, self.cx.version),
            path: path.to_owned(),
            owner: format!("{}-{}", owner.entry.name, owner.entry.version),
            owner_name: owner.entry.name.clone(),
        })
    }
}

impl DataVisitor for Visitor<'_, '_> {
    fn entry(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        if skipped_silently(entry) {
            return Ok(());
        }
        // Everything else that is not a plain relative name is hostile: refuse.
        check_entry(entry, &mut self.links)?;
        let meta = self.meta(entry);
        if entry.kind == EntryType::Dir {
            return self.apply_dir(entry, &meta);
        }
        match self.may_write(&entry.path) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(abort(self, e)),
        }
        let (applied, actual, written) = self.apply_file(entry, &meta, content)?;
        check_recorded(entry, actual)?;
        self.record_file(entry, &meta, applied, actual, &written);
        Ok(())
    }
}

/// What apk skips silently (§1.6): top-level dot names and `.keep_*` placeholders.
fn skipped_silently(entry: &Entry) -> bool {
    let (_, base) = split(&entry.path);
    let dotted =
        entry.path.starts_with('.') && !entry.path.starts_with("../") && entry.path != "..";
    dotted || base.starts_with(".keep_")
}

/// A recorded checksum that does not match what was written.
fn check_recorded(entry: &Entry, actual: Option<[u8; 20]>) -> Result<(), PackageError> {
    match (actual, entry.checksum_sha1) {
        (Some(actual), Some(recorded)) if actual != recorded => Err(PackageError::FileChecksum {
            path: entry.path.clone(),
            expected: hex::encode(recorded),
            actual: hex::encode(actual),
        }),
        _ => Ok(()),
    }
}

impl Visitor<'_, '_> {
    /// The entry as written into the root: owners mapped through the root's tables.
    fn meta(&self, entry: &Entry) -> EntryMeta {
        EntryMeta {
            path: entry.path.clone(),
            kind: if entry.kind == EntryType::Dir {
                EntryKind::Dir
            } else {
                entry_kind(entry)
            },
            mode: entry.mode & 0o7777,
            uid: self.cx.owners.uid(&entry.uname, entry.uid),
            gid: self.cx.owners.gid(&entry.gname, entry.gid),
            mtime: i64::try_from(entry.mtime).unwrap_or(i64::MAX),
        }
    }

    fn apply_dir(&mut self, entry: &Entry, meta: &EntryMeta) -> Result<(), PackageError> {
        if !self.cx.root.exists(&entry.path).unwrap_or(true) {
            self.created_dirs.push(entry.path.clone());
        }
        let applied = self
            .cx
            .root
            .apply(meta, &mut io::empty(), self.cx.apply)
            .map_err(|e| unsafe_entry(entry, &e))?;
        let xattr_digest = self.set_xattrs(entry, &entry.path, applied);
        let d = self.dir(&entry.path);
        d.acl = Acl {
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.mode,
            xattr_digest,
        }
        .unless_default(Acl::DEFAULT_DIR);
        Ok(())
    }

    /// Writes a non-directory entry; returns what happened, for files without a recorded
    /// checksum and for symlinks the SHA-1 of what was written, and where it was written.
    fn apply_file(
        &mut self,
        entry: &Entry,
        meta: &EntryMeta,
        content: &mut dyn Read,
    ) -> Result<(Applied, Option<[u8; 20]>, String), PackageError> {
        // Paths no package owned are ours to remove again if the package fails; a package's
        // file is replaced only once this one verified, so a failure leaves it as recorded.
        let new_path =
            !self.cx.previous.contains(&entry.path) && !self.cx.owned.contains_key(&entry.path);
        let mut meta = meta.clone();
        if !new_path {
            meta.path = staging_name(&entry.path);
            self.staged.push((meta.path.clone(), entry.path.clone()));
        }
        if let EntryKind::HardLink(target) = &mut meta.kind
            && let Some((temp, _)) = self.staged.iter().find(|(_, f)| f == target)
        {
            // Its target is still under its temporary name.
            target.clone_from(temp);
        }
        let meta = &meta;
        // A recorded checksum is covered by `datahash`, verified once the stream ends; only
        // entries without one are hashed, to fill `Z:` as apk does.
        let mut hashing = HashingReader {
            inner: content,
            hash: (entry.kind == EntryType::File && entry.checksum_sha1.is_none())
                .then(sha1::Sha1::new),
        };
        let result = self.cx.root.apply(meta, &mut hashing, self.cx.apply);
        if new_path {
            self.created.push(entry.path.clone());
        }
        let applied = result.map_err(|e| {
            e.io_error()
                .and_then(|io| crate::package::read::limit_error(io, crate::package::Member::Data))
                .unwrap_or_else(|| unsafe_entry(entry, &e))
        })?;
        let actual: Option<[u8; 20]> = match entry.kind {
            EntryType::File => hashing.hash.map(|h| h.finalize().into()),
            EntryType::Symlink => Some(Checksum::sha1_of(entry.link.as_bytes()).0),
            _ => None,
        };
        Ok((applied, actual, meta.path.clone()))
    }

    /// Adds the written entry to its directory's record.
    fn record_file(
        &mut self,
        entry: &Entry,
        meta: &EntryMeta,
        applied: Applied,
        actual: Option<[u8; 20]>,
        written: &str,
    ) {
        let digest = match entry.kind {
            EntryType::HardLink => self.digests.get(&entry.link).copied().flatten(),
            _ => entry.checksum_sha1.or(actual).map(Checksum),
        };
        if entry.kind == EntryType::File {
            self.digests.insert(entry.path.clone(), digest);
        }
        if applied == Applied::SkippedDevice {
            self.skipped_devices.push(entry.path.clone());
        }
        let xattr_digest = self.set_xattrs(entry, written, applied);
        let (dir, base) = split(&entry.path);
        let file = InstalledFile {
            name: base.to_owned(),
            acl: Acl {
                uid: meta.uid,
                gid: meta.gid,
                mode: meta.mode,
                xattr_digest,
            }
            .unless_default(Acl::DEFAULT_FILE),
            digest,
        };
        self.dir(dir).files.push(file);
    }
}

impl Visitor<'_, '_> {
    fn set_xattrs(&mut self, entry: &Entry, written: &str, applied: Applied) -> Option<Checksum> {
        if entry.xattrs.is_empty() || applied != Applied::Created {
            return None;
        }
        for (name, value) in &entry.xattrs {
            if self.cx.root.set_xattr(written, name, value).is_err() && !self.flags.contains('x') {
                // As apk: a filesystem without xattrs marks the package, not fails it.
                self.flags.push('x');
            }
        }
        xattr_digest(&entry.xattrs)
    }
}

fn unsafe_entry(entry: &Entry, e: &crate::rootfs::RootfsError) -> PackageError {
    PackageError::UnsafeEntry {
        path: entry.path.clone(),
        reason: e.to_string(),
    }
}

/// What the reading thread hands to the writing thread.
enum Msg {
    /// The control member verified: the package's own `replaces`.
    Start(Vec<Dependency>, u32),
    /// A data entry; for regular files, `Chunk`s of its content follow, then `End`.
    Entry(Box<Entry>),
    Chunk(Vec<u8>),
    End,
}

/// Chunks in flight between the threads: bounds memory to about 4 MiB.
const CHANNEL_DEPTH: usize = 64;
const CHUNK: usize = 64 << 10;

/// The reading side: verifies the control member, runs the pre-script, and forwards the
/// data entries to the writer.
struct Forwarder<'a, 'b> {
    cx: &'b UnpackContext<'a>,
    runner: &'b dyn ScriptRunner,
    tx: Option<SyncSender<Msg>>,
    failure: Option<InstallError>,
    pre_outcome: Option<(ScriptKind, ScriptOutcome)>,
}

/// The writer stopped (it keeps its own error); stop reading.
fn stopped() -> PackageError {
    PackageError::Format("extraction stopped".into())
}

impl Forwarder<'_, '_> {
    fn send(&self, msg: Msg) -> Result<(), PackageError> {
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(msg).map_err(|_| stopped())
    }
}

impl DataVisitor for Forwarder<'_, '_> {
    fn control(
        &mut self,
        control: &[u8],
        info: &PkgInfo,
        scripts: &[(String, Vec<u8>)],
    ) -> Result<(), PackageError> {
        let actual = Checksum::sha1_of(control);
        if actual != self.cx.expected {
            let err = InstallError::NotIndexed {
                package: format!("{}-{}", self.cx.name, self.cx.version),
                url: self.cx.url.to_owned(),
                expected: self.cx.expected.to_string(),
                actual: actual.to_string(),
            };
            let text = err.to_string();
            self.failure = Some(err);
            return Err(PackageError::Format(text));
        }
        if info.datahash.is_empty() {
            return Err(PackageError::NoDataHash);
        }
        // The identity is verified: the pre-install script is the indexed package's own.
        if let Some((kind, args)) = &self.cx.pre
            && let Some((_, script)) = scripts
                .iter()
                .find(|(n, _)| ScriptKind::parse(n) == Some(*kind))
        {
            let job = ScriptJob {
                root: self.cx.root.path(),
                name: self.cx.name,
                version: self.cx.version,
                kind: *kind,
                script,
                args,
            };
            self.pre_outcome = Some((*kind, self.runner.run(&job)));
        }
        let replaces = info
            .replaces
            .iter()
            .filter_map(|d| d.parse::<Dependency>().ok())
            .collect();
        self.send(Msg::Start(replaces, info.replaces_priority.unwrap_or(0)))
    }

    fn entry(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        self.send(Msg::Entry(Box::new(entry.clone())))?;
        if entry.kind == EntryType::File {
            let mut remaining = entry.size;
            loop {
                // Sized to the entry: most files are far smaller than a chunk. The reader
                // bounds what it yields by the header size, so this never under-reads.
                let mut buf = vec![0; usize::try_from(remaining).unwrap_or(CHUNK).clamp(1, CHUNK)];
                let n = crate::tar::read::read_full(content, &mut buf)?;
                remaining = remaining.saturating_sub(n as u64);
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                self.send(Msg::Chunk(buf))?;
            }
        }
        self.send(Msg::End)
    }
}

/// The content of the current entry, as the writer receives it.
struct ChannelReader<'r> {
    rx: &'r Receiver<Msg>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Chunk(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Msg::End) | Err(_) => self.ended = true,
                Ok(_) => {
                    return Err(io::Error::other("entry stream out of step"));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The writing side: applies entries as they arrive; stops at the first error.
fn write_entries(v: &mut Visitor<'_, '_>, rx: &Receiver<Msg>) -> Result<(), PackageError> {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Start(replaces, prio) => v.my_replaces = Some((replaces, prio)),
            Msg::Entry(entry) => {
                let mut content = ChannelReader {
                    rx,
                    chunk: Vec::new(),
                    pos: 0,
                    ended: false,
                };
                v.entry(&entry, &mut content)?;
                io::copy(&mut content, &mut io::sink())?;
            }
            Msg::Chunk(_) | Msg::End => {
                return Err(PackageError::Format("entry stream out of step".into()));
            }
        }
    }
    Ok(())
}

/// Streams the package from `input` into the root: this thread inflates and verifies while
/// a second one writes, so decompression and file creation overlap. On error, what the
/// package created is removed.
pub(super) fn unpack(
    cx: &UnpackContext<'_>,
    input: impl BufRead,
    runner: &dyn ScriptRunner,
) -> Result<Unpacked, InstallError> {
    let (tx, rx) = sync_channel(CHANNEL_DEPTH);
    let mut fwd = Forwarder {
        cx,
        runner,
        tx: Some(tx),
        failure: None,
        pre_outcome: None,
    };
    let (read, mut v, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut v = Visitor::new(cx);
            let written = write_entries(&mut v, &rx);
            // Dropping the receiver makes the reader stop at its next send.
            drop(rx);
            (v, written)
        });
        let read = read_with(input, ReadLimits::default(), &mut fwd);
        // The writer ends once it has everything.
        fwd.tx = None;
        let (v, written) = writer.join().expect("writer thread panicked");
        (read, v, written)
    });
    let verified = written.and(read).and_then(check_datahash);
    match verified.and_then(|pkg| commit_staged(cx, &v.staged).map(|()| pkg)) {
        Ok(pkg) => Ok(Unpacked {
            info: pkg.info,
            scripts: pkg.scripts,
            dirs: v.dirs,
            taken: v.taken,
            flags: v.flags,
            pre_outcome: fwd.pre_outcome,
            skipped_devices: v.skipped_devices,
        }),
        Err(err) => {
            // What it created goes again, directories once empty (apk's purge of a
            // package that failed to install).
            let staged = v.staged.iter().map(|(temp, _)| temp);
            for path in staged
                .chain(v.created.iter().rev())
                .chain(v.created_dirs.iter().rev())
            {
                let _ = cx.root.remove(path);
            }
            Err(fwd
                .failure
                .take()
                .or_else(|| v.failure.take())
                .unwrap_or_else(|| InstallError::Package {
                    package: format!("{}-{}", cx.name, cx.version),
                    source: Box::new(err),
                }))
        }
    }
}

/// Moves the files written under temporary names into place (apk's
/// `apk_db_migrate_files`). A temporary name that is not there (a skipped device node) is
/// no error.
fn commit_staged(cx: &UnpackContext<'_>, staged: &[(String, String)]) -> Result<(), PackageError> {
    for (temp, path) in staged {
        match cx.root.rename(temp, path) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(PackageError::UnsafeEntry {
                    path: path.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The temporary name beside `path` that a package's new version of it is written to.
fn staging_name(path: &str) -> String {
    let (dir, _) = split(path);
    let hash = hex::encode(Checksum::sha1_of(path.as_bytes()).0);
    match dir {
        "" => format!(".apk.{hash}"),
        dir => format!("{dir}/.apk.{hash}"),
    }
}

/// The data member read is the one the verified control member names.
fn check_datahash(
    pkg: crate::package::read::Package,
) -> Result<crate::package::read::Package, PackageError> {
    let actual = hex::encode(pkg.data_sha256);
    if pkg.info.datahash.eq_ignore_ascii_case(&actual) {
        Ok(pkg)
    } else {
        Err(PackageError::DataHash {
            expected: pkg.info.datahash.clone(),
            actual,
        })
    }
}
