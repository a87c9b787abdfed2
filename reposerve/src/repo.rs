//! The package tree and its indexes: staging uploaded files, validating them with the
//! `apk` crate, and committing them into `<dir>/<version>/<repo>/<arch>/`.
//!
//! The index is the commit point. Accepted files are renamed into place first, then the
//! updated `APKINDEX.tar.gz` is written to a temporary file, fsynced and renamed; only then
//! is the client answered. A crash before the index rename leaves at most a stray `.apk`
//! that no index lists (re-uploading it works, since conflicts are judged by the index), so
//! after a restart the index lists exactly the uploads that were committed.
//!
//! Each index has its own async lock, held from the conflict check to the index rename, so
//! two uploads to one index are serialized while different indexes proceed in parallel.
//! The parsed index is cached under that lock: an upload re-renders and re-signs the small
//! text index but never re-reads a package (apk-format.md §3).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apk::index::{ApkIndex, IndexEntry, SignedIndex};
use apk::keys::{Keyring, PrivateKey};
use apk::package::{Package, PackageError, ReadLimits};
use apk::sign::{SignatureType, Signer};
use axum::http::StatusCode;
use serde::Serialize;

use crate::error::AppError;

/// Index file name in each `<version>/<repo>/<arch>` directory.
pub const INDEX_NAME: &str = "APKINDEX.tar.gz";
/// Staging directory under the root, hidden from listings.
pub const TMP_DIR: &str = ".tmp";

/// One index: `<version>/<repo>/<arch>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexKey {
    /// `edge`, `v3.20`, …
    pub version: String,
    /// `main`, `community`, …
    pub repo: String,
    /// `x86_64`, …
    pub arch: String,
}

impl IndexKey {
    /// The directory relative to the root.
    pub fn rel_dir(&self) -> PathBuf {
        Path::new(&self.version).join(&self.repo).join(&self.arch)
    }
}

/// Checks a `version`/`repo`/`arch` value (or file name): one plain path component.
pub fn check_segment(field: &str, value: &str) -> Result<(), AppError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "bad_field",
            format!(
                "`{field}` = {value:?} must be one path component of letters, digits, `.`, `_`, `+`, `-`, not starting with `.`"
            ),
        ))
    }
}

/// A validated package waiting in the staging directory.
#[derive(Debug)]
pub struct Staged {
    /// The temporary file (removed on drop unless committed).
    pub file: tempfile::TempPath,
    /// Its index entry (arch already set to the target's).
    pub entry: IndexEntry,
    /// Where it goes.
    pub target: IndexKey,
}

/// One accepted package, as the client sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Accepted {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Arch directory.
    pub arch: String,
    /// Path under the server root, as served.
    pub path: String,
    /// True if an existing package of the same version was replaced.
    pub replaced: bool,
    /// True if the repository already had this very package (same control checksum):
    /// nothing was written. A retried CI job re-uploads the same reproducible build, and
    /// that must not fail.
    pub unchanged: bool,
}

/// What an upload does to the package of the same name and version already indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No such version yet.
    New,
    /// A different build of the version replaces it (`allow_replace`).
    Replaces,
    /// The same package again (same `C:` checksum): nothing to write.
    Unchanged,
}

impl Accepted {
    fn of(key: &IndexKey, entry: IndexEntry, outcome: Outcome) -> Self {
        Self {
            path: format!(
                "{}/{}/{}/{}",
                key.version,
                key.repo,
                key.arch,
                entry.file_name()
            ),
            name: entry.name,
            version: entry.version,
            arch: key.arch.clone(),
            replaced: outcome == Outcome::Replaces,
            unchanged: outcome == Outcome::Unchanged,
        }
    }
}

/// The parsed index and the identity of the file it was read from or written to: if an
/// operator rewrites the file (say with `apkbuild index`), the stamp differs and the
/// cache is dropped.
struct CachedIndex {
    index: ApkIndex,
    stamp: Option<Stamp>,
}

/// (inode, size, mtime) of an index file.
type Stamp = (u64, u64, Option<std::time::SystemTime>);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = fs_err::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()))
}

type IndexSlot = Arc<tokio::sync::Mutex<Option<CachedIndex>>>;

/// The package tree.
pub struct Repo {
    root: PathBuf,
    keyring: Option<Keyring>,
    signer: Option<PrivateKey>,
    sign_types: Vec<SignatureType>,
    allow_replace: bool,
    limits: ReadLimits,
    locks: std::sync::Mutex<HashMap<IndexKey, IndexSlot>>,
    s3: Option<crate::store::S3Store>,
}

/// Conditional index writes lost to other replicas before giving up.
const S3_ATTEMPTS: usize = 20;

/// How a package was refused, for metrics and the client.
#[derive(Debug)]
pub struct Rejection {
    /// Metric label and JSON `error`.
    pub reason: &'static str,
    /// Message for the client.
    pub message: String,
}

impl Repo {
    /// A repository rooted at `root`. Uploads need both `keyring` (trusted packagers) and
    /// `signer` (the index key).
    pub fn new(
        root: PathBuf,
        keyring: Option<Keyring>,
        signer: Option<PrivateKey>,
        rsa256: bool,
        allow_replace: bool,
        max_unpacked: u64,
    ) -> Self {
        let mut sign_types = vec![SignatureType::Rsa];
        if rsa256 {
            sign_types.push(SignatureType::Rsa256);
        }
        let limits = ReadLimits {
            max_data: max_unpacked,
            max_data_floor: max_unpacked.min(ReadLimits::default().max_data_floor),
            ..ReadLimits::default()
        };
        Self {
            root,
            keyring,
            signer,
            sign_types,
            allow_replace,
            limits,
            locks: std::sync::Mutex::new(HashMap::new()),
            s3: None,
        }
    }

    /// Keeps packages and indexes in S3 instead of under the root.
    pub fn with_s3(mut self, store: crate::store::S3Store) -> Self {
        self.s3 = Some(store);
        self
    }

    /// The S3 store, when configured.
    pub fn s3(&self) -> Option<&crate::store::S3Store> {
        self.s3.as_ref()
    }

    /// The served root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The staging directory (created, and emptied of leftovers of a crash, at start-up).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    /// Creates the root and an empty staging directory.
    pub fn prepare(&self) -> std::io::Result<()> {
        fs_err::create_dir_all(&self.root)?;
        let tmp = self.tmp_dir();
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp)?;
        }
        fs_err::create_dir_all(&tmp)?;
        self.sweep_index_temps()
    }

    /// Removes `.APKINDEX.tar.gz.*.tmp` files a crash left in `<version>/<repo>/<arch>/`
    /// (never served: hidden names are refused; just clutter).
    fn sweep_index_temps(&self) -> std::io::Result<()> {
        let subdirs = |dir: &Path| -> std::io::Result<Vec<PathBuf>> {
            let mut out = Vec::new();
            for e in fs_err::read_dir(dir)? {
                let e = e?;
                let name = e.file_name();
                if e.file_type()?.is_dir() && !name.to_string_lossy().starts_with('.') {
                    out.push(e.path());
                }
            }
            Ok(out)
        };
        let prefix = format!(".{INDEX_NAME}.");
        for version in subdirs(&self.root)? {
            for repo in subdirs(&version)? {
                for arch in subdirs(&repo)? {
                    for e in fs_err::read_dir(&arch)? {
                        let e = e?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.starts_with(&prefix) && name.ends_with(".tmp") {
                            tracing::info!(file = %e.path().display(), "removing a crash leftover");
                            fs_err::remove_file(e.path())?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether uploads can be accepted at all; the reason if not.
    pub fn upload_ready(&self) -> Result<(), AppError> {
        let missing = match (&self.keyring, &self.signer) {
            (None, _) => "trusted_keys",
            (_, None) => "signing.key",
            _ => return Ok(()),
        };
        Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "uploads_disabled",
            "this server does not accept uploads (not configured)",
            format!("`{missing}` is not set in the configuration"),
        ))
    }

    /// Validates a staged file (blocking: reads and hashes the whole package). `version`,
    /// `repo` and `arch` are the request's (already checked); `arch` defaults to the
    /// package's own.
    pub fn validate(
        &self,
        path: &Path,
        version: &str,
        repo: &str,
        arch: Option<&str>,
    ) -> Result<(IndexEntry, IndexKey), Rejection> {
        let keyring = self.keyring.as_ref().ok_or_else(|| Rejection {
            reason: "uploads_disabled",
            message: "no trusted keys configured".into(),
        })?;
        let pkg = Package::open(path, self.limits).map_err(|e| classify(&e))?;
        pkg.verify(keyring).map_err(|e| classify(&e))?;
        let info = &pkg.info;
        if !apk::dep::is_valid_package_name(&info.pkgname)
            || info.pkgname.starts_with(['.', '-'])
            || info.pkgname.contains('/')
        {
            return Err(Rejection {
                reason: "bad_metadata",
                message: format!(
                    ".PKGINFO pkgname {:?} is not a valid package name",
                    info.pkgname
                ),
            });
        }
        if !apk::version::is_valid(&info.pkgver) || info.pkgver.contains('/') {
            return Err(Rejection {
                reason: "bad_metadata",
                message: format!(
                    ".PKGINFO pkgver {:?} is not a valid apk version",
                    info.pkgver
                ),
            });
        }
        if check_segment("arch", &info.arch).is_err() {
            return Err(Rejection {
                reason: "bad_metadata",
                message: format!(".PKGINFO arch {:?} is not a valid arch", info.arch),
            });
        }
        let arch = match arch {
            Some(a) if a == info.arch || info.arch == "noarch" => a.to_string(),
            Some(a) => {
                return Err(Rejection {
                    reason: "arch_mismatch",
                    message: format!(
                        "package is built for `{}` but was uploaded for arch `{a}`",
                        info.arch
                    ),
                });
            }
            None if info.arch == "noarch" => {
                return Err(Rejection {
                    reason: "arch_mismatch",
                    message: "a noarch package needs an `arch` field naming the repository arch"
                        .into(),
                });
            }
            None => info.arch.clone(),
        };
        let mut entry = IndexEntry::from_package(&pkg);
        // As abuild does: noarch packages are listed under the repository's arch.
        entry.arch.clone_from(&arch);
        Ok((
            entry,
            IndexKey {
                version: version.into(),
                repo: repo.into(),
                arch,
            },
        ))
    }

    fn slot(&self, key: &IndexKey) -> IndexSlot {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(key.clone()).or_default().clone()
    }

    /// Moves `staged` packages into place and updates their indexes; all or nothing as far
    /// as the checks go (conflicts are found before anything moves).
    pub async fn commit(
        self: &Arc<Self>,
        staged: Vec<Staged>,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Vec<Accepted>, AppError> {
        let signer = self
            .signer
            .clone()
            .ok_or_else(|| self.upload_ready().unwrap_err())?;
        let mut by_index: BTreeMap<IndexKey, Vec<Staged>> = BTreeMap::new();
        for s in staged {
            by_index.entry(s.target.clone()).or_default().push(s);
        }
        if self.s3.is_some() {
            return self.commit_s3(by_index, &signer, metrics).await;
        }
        // Locks taken in key order: two multi-index requests cannot deadlock.
        let mut guards = Vec::new();
        for key in by_index.keys() {
            let mut guard = self.slot(key).lock_owned().await;
            let path = self.root.join(key.rel_dir()).join(INDEX_NAME);
            let current = stamp(&path);
            if guard.as_ref().is_none_or(|c| c.stamp != current) {
                *guard = Some(CachedIndex {
                    index: self.load_index(key).await?,
                    stamp: current,
                });
            }
            guards.push(guard);
        }
        let mut outcomes = Vec::new();
        for ((key, items), guard) in by_index.iter().zip(&guards) {
            let index = &guard.as_ref().expect("loaded above").index;
            outcomes.push(self.check_conflicts(key, index, items)?);
        }
        let mut accepted = Vec::new();
        for (((key, items), mut guard), outcomes) in by_index.into_iter().zip(guards).zip(outcomes)
        {
            let dir = self.root.join(key.rel_dir());
            let mut to_write = Vec::new();
            let mut written_outcomes = Vec::new();
            for (s, outcome) in items.into_iter().zip(outcomes) {
                // An indexed package whose file went missing is written again.
                if outcome == Outcome::Unchanged && dir.join(s.entry.file_name()).is_file() {
                    accepted.push(Accepted::of(&key, s.entry, outcome));
                } else {
                    written_outcomes.push(outcome);
                    to_write.push(s);
                }
            }
            if to_write.is_empty() {
                continue;
            }
            let started = std::time::Instant::now();
            let mut index = guard.take().expect("loaded above").index;
            let this = Arc::clone(self);
            let signer = signer.clone();
            let result = tokio::task::spawn_blocking(move || {
                let r = this.write_index(&key, &mut index, to_write, &signer);
                (index, key, r)
            })
            .await
            .map_err(AppError::internal)?;
            let (index, key, r) = result;
            // On error the cache may hold entries that are not on disk: it stays empty and
            // is reloaded next time.
            let entries = r?;
            *guard = Some(CachedIndex {
                index,
                stamp: stamp(&dir.join(INDEX_NAME)),
            });
            metrics.index_update(started.elapsed());
            for (e, outcome) in entries.into_iter().zip(written_outcomes) {
                accepted.push(Accepted::of(&key, e, outcome));
            }
        }
        Ok(accepted)
    }

    /// Refuses duplicates in the request and (unless replacing is allowed) a different
    /// build of a version the index already has; says, per item, what it does.
    fn check_conflicts(
        &self,
        key: &IndexKey,
        index: &ApkIndex,
        items: &[Staged],
    ) -> Result<Vec<Outcome>, AppError> {
        let mut seen = std::collections::HashSet::new();
        let mut outcomes = Vec::new();
        for s in items {
            let (n, v) = (&s.entry.name, &s.entry.version);
            if !seen.insert((n, v)) {
                return Err(AppError::bad_request(
                    "duplicate",
                    format!("{n}-{v} is in the request twice"),
                ));
            }
            let outcome = match index.get(n, v) {
                None => Outcome::New,
                Some(old) if old.checksum == s.entry.checksum => Outcome::Unchanged,
                Some(_) if self.allow_replace => Outcome::Replaces,
                Some(_) => {
                    return Err(AppError::new(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!(
                            "a different build of {n}-{v} is already in {}/{}/{}; bump pkgrel to publish a new build",
                            key.version, key.repo, key.arch
                        ),
                        format!("{n}-{v} exists in {key:?} with another checksum"),
                    ));
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// The S3 flavour of [`Repo::commit`]: packages are put first, then each index is
    /// replaced by a conditional put, re-read and re-applied when another replica won.
    async fn commit_s3(
        self: &Arc<Self>,
        by_index: BTreeMap<IndexKey, Vec<Staged>>,
        signer: &PrivateKey,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Vec<Accepted>, AppError> {
        let s3 = self.s3.as_ref().expect("checked by the caller");
        let rel_of = |key: &IndexKey, name: &str| {
            format!("{}/{}/{}/{name}", key.version, key.repo, key.arch)
        };
        // This replica's own uploads to one index queue here rather than in S3 retries.
        let mut guards = Vec::new();
        for key in by_index.keys() {
            guards.push(self.slot(key).lock_owned().await);
        }
        let load = |key: &IndexKey| {
            let rel = rel_of(key, INDEX_NAME);
            async move {
                match s3.get_index(&rel).await.map_err(AppError::internal)? {
                    None => Ok((ApkIndex::default(), None)),
                    Some(obj) => {
                        let bytes = obj.bytes;
                        let idx = tokio::task::spawn_blocking(move || SignedIndex::parse(&bytes))
                            .await
                            .map_err(AppError::internal)?
                            .map_err(|e| AppError::internal(format!("`{rel}` in S3: {e}")))?;
                        Ok((idx.index, Some(obj.version)))
                    }
                }
            }
        };
        let mut checked = BTreeMap::new();
        let mut accepted = Vec::new();
        let mut by_index_new = BTreeMap::new();
        for (key, items) in by_index {
            let loaded = load(&key).await?;
            let outcomes = self.check_conflicts(&key, &loaded.0, &items)?;
            let mut to_write = Vec::new();
            for (s, outcome) in items.into_iter().zip(outcomes) {
                if outcome == Outcome::Unchanged {
                    accepted.push(Accepted::of(&key, s.entry, outcome));
                } else {
                    to_write.push((s, outcome));
                }
            }
            if !to_write.is_empty() {
                checked.insert(key.clone(), loaded);
                by_index_new.insert(key, to_write);
            }
        }
        for (key, items) in &by_index_new {
            for (s, _) in items {
                s3.put_file(&rel_of(key, &s.entry.file_name()), &s.file)
                    .await
                    .map_err(AppError::internal)?;
            }
        }
        for (key, items) in by_index_new {
            let (items, outcomes): (Vec<Staged>, Vec<Outcome>) = items.into_iter().unzip();
            let started = std::time::Instant::now();
            let mut done = false;
            for attempt in 0..S3_ATTEMPTS {
                // The first attempt writes over the very index the conflicts were checked
                // against: if another replica changed it meanwhile, the conditional put
                // fails and the retry reads it again and checks again.
                let (mut index, version) = match checked.remove(&key) {
                    Some(loaded) => loaded,
                    None => load(&key).await?,
                };
                if attempt > 0 {
                    self.check_conflicts(&key, &index, &items)?;
                }
                for s in &items {
                    index.upsert(s.entry.clone());
                }
                let this = Arc::clone(self);
                let signer = signer.clone();
                let bytes = tokio::task::spawn_blocking(move || this.render(&index, &signer))
                    .await
                    .map_err(AppError::internal)??;
                match s3
                    .put_index(&rel_of(&key, INDEX_NAME), bytes, version)
                    .await
                {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(crate::store::PutIndexError::Conflict) => {
                        tracing::info!(?key, attempt, "index changed by another writer; retrying");
                    }
                    Err(crate::store::PutIndexError::Other(e)) => {
                        return Err(AppError::internal(e));
                    }
                }
            }
            if !done {
                return Err(AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the index is being updated by other servers; retry",
                    format!("{key:?}: {S3_ATTEMPTS} conditional writes lost"),
                ));
            }
            metrics.index_update(started.elapsed());
            for (s, outcome) in items.into_iter().zip(outcomes) {
                accepted.push(Accepted::of(&key, s.entry, outcome));
            }
        }
        drop(guards);
        Ok(accepted)
    }

    /// The signed index bytes (blocking: gzip and RSA).
    fn render(&self, index: &ApkIndex, signer: &PrivateKey) -> Result<Vec<u8>, AppError> {
        let mtime = index
            .packages
            .iter()
            .map(|p| p.build_time)
            .max()
            .unwrap_or_default();
        let signers: Vec<(&dyn Signer, SignatureType)> = self
            .sign_types
            .iter()
            .map(|t| (signer as &dyn Signer, *t))
            .collect();
        index.to_bytes(&signers, mtime).map_err(AppError::internal)
    }

    async fn load_index(&self, key: &IndexKey) -> Result<ApkIndex, AppError> {
        let path = self.root.join(key.rel_dir()).join(INDEX_NAME);
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Ok(ApkIndex::default());
            }
            SignedIndex::open(&path)
                .map(|s| s.index)
                .map_err(AppError::internal)
        })
        .await
        .map_err(AppError::internal)?
    }

    fn write_index(
        &self,
        key: &IndexKey,
        index: &mut ApkIndex,
        items: Vec<Staged>,
        signer: &PrivateKey,
    ) -> Result<Vec<IndexEntry>, AppError> {
        let rel = key.rel_dir();
        let root = apk::rootfs::RootDir::open(&self.root).map_err(AppError::internal)?;
        root.create_dir_all(&rel, 0o755)
            .map_err(AppError::internal)?;
        let dir = self.root.join(&rel);
        let mut updated = index.clone();
        let mut entries = Vec::new();
        for s in items {
            let target = dir.join(s.entry.file_name());
            s.file.persist(&target).map_err(|e| {
                AppError::internal(format!("moving into `{}`: {e}", target.display()))
            })?;
            updated.upsert(s.entry.clone());
            entries.push(s.entry);
        }
        let bytes = self.render(&updated, signer)?;
        apk::atomic::write_atomic(&dir.join(INDEX_NAME), &bytes).map_err(AppError::internal)?;
        *index = updated;
        Ok(entries)
    }
}

/// Maps a package error to a stable reason and a message without server paths.
pub fn classify(err: &PackageError) -> Rejection {
    let inner = match err {
        PackageError::At { error, .. } => error.as_ref(),
        e => e,
    };
    let reason = match inner {
        PackageError::Unsigned => "unsigned",
        PackageError::Untrusted { .. } => "untrusted_key",
        PackageError::BadSignature { .. } => "bad_signature",
        PackageError::DataHash { .. } | PackageError::NoDataHash => "datahash",
        PackageError::FileChecksum { .. } | PackageError::MissingFileChecksum { .. } => {
            "file_checksum"
        }
        PackageError::TooLarge { .. } => "too_large",
        PackageError::UnsafeEntry { .. } => "unsafe_entry",
        PackageError::GzipHeader { .. } => "bad_gzip_header",
        _ => "not_a_package",
    };
    Rejection {
        reason,
        message: inner.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn accepted_segments_are_one_plain_component(v in "\\PC{0,20}") {
            if check_segment("repo", &v).is_ok() {
                proptest::prop_assert!(!v.contains('/') && !v.contains('\\'));
                proptest::prop_assert!(!v.starts_with('.'));
                proptest::prop_assert!(!v.chars().any(char::is_control));
                proptest::prop_assert_eq!(Path::new(&v).components().count(), 1);
            }
        }
    }

    #[test]
    fn index_signed_rsa_and_rsa256_when_configured() {
        let key_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testkit/fixtures/apk-reference/keys/fixture-test-65a1b2c3.rsa");
        let key = PrivateKey::load(&key_path).unwrap();
        let repo = Repo::new("/nonexistent".into(), None, None, true, false, 1 << 20);
        let bytes = repo.render(&ApkIndex::default(), &key).unwrap();
        let idx = SignedIndex::parse(&bytes).unwrap();
        let names: Vec<&str> = idx.signatures.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ".SIGN.RSA.fixture-test-65a1b2c3.rsa.pub",
                ".SIGN.RSA256.fixture-test-65a1b2c3.rsa.pub"
            ]
        );
    }

    #[test]
    fn hostile_segments_refused() {
        for v in [
            "", ".", "..", "../x", "a/b", ".tmp", "a\u{0}", "a b", "ma\nin",
        ] {
            assert!(check_segment("repo", v).is_err(), "{v:?}");
        }
        for v in ["edge", "v3.21", "main", "x86_64", "armv7", "my-repo_2"] {
            assert!(check_segment("repo", v).is_ok(), "{v:?}");
        }
    }
}
