//! The package tree and its indexes: staging uploaded files, validating them with the
//! `apk` crate, and committing them into `<dir>/<version>/<repo>/<arch>/` (or an S3 bucket).
//!
//! The index is the commit point. Accepted files are renamed into place (mode 0644) first,
//! then the updated `APKINDEX.tar.gz` is written to a temporary file, fsynced and renamed;
//! only then is the client answered. A crash before the index rename leaves at most a stray
//! `.apk` that no index lists; [`crate::reconcile`] indexes such strays at start.
//!
//! Uploads to one index are grouped ([`crate::lane`]): those arriving while the index is
//! being written go into the next single write ([`crate::commit`] for local disks,
//! [`crate::replica`] for S3). The parsed index is cached under a per-index lock: a write
//! re-renders and re-signs the small text index but never re-reads a package
//! (apk-format.md §3).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

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
pub(crate) enum Outcome {
    /// No such version yet.
    New,
    /// A different build of the version replaces it (`allow_replace`).
    Replaces,
    /// The same package again (same `C:` checksum): nothing to write.
    Unchanged,
}

impl Accepted {
    pub(crate) fn of(key: &IndexKey, entry: IndexEntry, outcome: Outcome) -> Self {
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
pub(crate) struct CachedIndex {
    pub(crate) index: ApkIndex,
    pub(crate) stamp: Option<Stamp>,
}

/// (inode, size, mtime) of an index file.
pub(crate) type Stamp = (u64, u64, Option<std::time::SystemTime>);

pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = fs_err::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()))
}

pub(crate) type IndexSlot = Arc<tokio::sync::Mutex<Option<CachedIndex>>>;

/// The package tree.
pub struct Repo {
    root: PathBuf,
    keys_dir: Option<PathBuf>,
    keyring: RwLock<Option<Arc<Keyring>>>,
    pub(crate) signer: Option<PrivateKey>,
    sign_types: Vec<SignatureType>,
    pub(crate) allow_replace: bool,
    limits: ReadLimits,
    locks: std::sync::Mutex<HashMap<IndexKey, IndexSlot>>,
    /// The root opened once, for serving (every lookup resolves inside it).
    served: std::sync::OnceLock<apk::rootfs::RootDir>,
    /// Small files just served (dropped per directory on every write here).
    pub(crate) files: crate::files::FileCache,
    pub(crate) lanes: crate::lane::Lanes<IndexKey, crate::commit::Job>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) s3: Option<crate::replica::Replica>,
}

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
            keys_dir: None,
            keyring: RwLock::new(keyring.map(Arc::new)),
            signer,
            sign_types,
            allow_replace,
            limits,
            locks: std::sync::Mutex::new(HashMap::new()),
            served: std::sync::OnceLock::new(),
            files: crate::files::FileCache::default(),
            lanes: crate::lane::Lanes::default(),
            metrics: Arc::default(),
            s3: None,
        }
    }

    /// Keeps packages and indexes in S3 instead of under the root.
    pub fn with_s3(mut self, replica: crate::replica::Replica) -> Self {
        self.s3 = Some(replica);
        self
    }

    /// Where [`Repo::reload_keys`] reads the trusted keys from.
    pub fn with_keys_dir(mut self, dir: PathBuf) -> Self {
        self.keys_dir = Some(dir);
        self
    }

    /// Counts index updates into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The S3 store, when configured.
    pub fn s3(&self) -> Option<&crate::store::S3Store> {
        self.s3.as_ref().map(crate::replica::Replica::store)
    }

    /// The trusted packager keys as loaded last.
    pub fn keyring(&self) -> Option<Arc<Keyring>> {
        self.keyring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the trusted keys directory again (SIGHUP), replacing the keyring only when
    /// the directory still holds at least one key. Returns how many keys are trusted now.
    pub fn reload_keys(&self) -> anyhow::Result<usize> {
        let Some(dir) = &self.keys_dir else {
            anyhow::bail!("no `trusted_keys` directory is configured");
        };
        let keys = load_keyring(dir)?;
        let n = keys.len();
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(keys));
        Ok(n)
    }

    /// The served root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root as a directory handle, opened on first use: paths resolve inside it.
    pub fn root_dir(&self) -> Result<&apk::rootfs::RootDir, apk::rootfs::RootfsError> {
        if let Some(d) = self.served.get() {
            return Ok(d);
        }
        let d = apk::rootfs::RootDir::open(&self.root)?;
        Ok(self.served.get_or_init(|| d))
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
        let keyring = self.keyring();
        let missing = match (&keyring, &self.signer) {
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
        let keyring = self.keyring().ok_or_else(|| Rejection {
            reason: "uploads_disabled",
            message: "no trusted keys configured".into(),
        })?;
        let pkg = Package::open(path, self.limits).map_err(|e| classify(&e))?;
        pkg.verify(&keyring).map_err(|e| classify(&e))?;
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

    pub(crate) fn slot(&self, key: &IndexKey) -> IndexSlot {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(key.clone()).or_default().clone()
    }

    /// Refuses duplicates in the request and (unless replacing is allowed) a different
    /// build of a version the index already has; says, per item, what it does.
    pub(crate) fn check_conflicts(
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
                Some(_) => return Err(conflict(key, n, v)),
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// The signed index bytes (blocking: gzip and RSA).
    pub(crate) fn render(
        &self,
        index: &ApkIndex,
        signer: &PrivateKey,
    ) -> Result<Vec<u8>, AppError> {
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

    pub(crate) async fn load_index(&self, key: &IndexKey) -> Result<ApkIndex, AppError> {
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

    /// Moves `items` into the index directory (mode 0644, like the index, so a non-root
    /// mirror or web server can read them) and writes `index`, which lists them.
    /// Blocking: renames, gzip, RSA and fsync.
    pub(crate) fn write_index(
        &self,
        key: &IndexKey,
        index: &ApkIndex,
        items: Vec<Staged>,
        signer: &PrivateKey,
    ) -> Result<(), AppError> {
        use std::os::unix::fs::PermissionsExt as _;
        let rel = key.rel_dir();
        let root = apk::rootfs::RootDir::open(&self.root).map_err(AppError::internal)?;
        root.create_dir_all(&rel, 0o755)
            .map_err(AppError::internal)?;
        let dir = self.root.join(&rel);
        for s in items {
            let target = dir.join(s.entry.file_name());
            // The staged file is 0600 (tempfile's default); the rename keeps the mode.
            fs_err::set_permissions(&*s.file, std::fs::Permissions::from_mode(0o644))
                .map_err(AppError::internal)?;
            s.file.persist(&target).map_err(|e| {
                AppError::internal(format!("moving into `{}`: {e}", target.display()))
            })?;
        }
        let bytes = self.render(index, signer)?;
        let written = apk::atomic::AtomicFile::create(dir.join(INDEX_NAME))
            .map(|f| f.with_mode(0o644))
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, &bytes)?;
                f.commit()
            })
            .map_err(AppError::internal);
        self.files.forget_dir(&rel);
        written
    }

    /// The read limits uploads are checked with.
    pub(crate) fn limits(&self) -> ReadLimits {
        self.limits
    }
}

/// 409 for a different build of a name-version the index already has.
pub(crate) fn conflict(key: &IndexKey, name: &str, version: &str) -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!(
            "a different build of {name}-{version} is already in {}/{}/{}; bump pkgrel to publish a new build",
            key.version, key.repo, key.arch
        ),
        format!("{name}-{version} exists in {key:?} with another checksum"),
    )
}

/// Loads a trusted keys directory: at least one usable `*.rsa.pub`, warnings logged.
pub fn load_keyring(dir: &Path) -> anyhow::Result<Keyring> {
    use anyhow::Context as _;
    let (keys, warnings) = Keyring::load_dir(dir)
        .with_context(|| format!("failed to read trusted_keys directory `{}`", dir.display()))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if keys.is_empty() {
        anyhow::bail!(
            "trusted_keys `{}` holds no *.rsa.pub key; copy your packagers' public keys there",
            dir.display()
        );
    }
    Ok(keys)
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
