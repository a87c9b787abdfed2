//! At start, every index is made a function of the packages stored again.
//!
//! A crash (or a `kill -9`) between storing a package and writing its index leaves a stray
//! package that no index lists; with several replicas on a store without atomic conditional
//! writes, an index write may also have dropped an entry another replica had acknowledged.
//! Strays are **indexed, not deleted**: a stray was validated before it was stored, and on
//! S3 it may be an acknowledged upload or another replica's upload in flight, so deleting
//! it could lose a package a client was told is published. Indexing one that was never
//! acknowledged only publishes what its uploader asked for (a retry of that upload is then
//! a no-op). Each stray is verified against the trusted keys first; what does not verify is
//! left alone and logged.
//!
//! Entries whose package file is gone (removed by an operator) are dropped, and packages an
//! older reposerve stored with mode 0600 are made 0644.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use apk::index::{ApkIndex, IndexEntry, SignedIndex};
use apk::keys::Keyring;
use apk::package::{Package, ReadLimits};

use crate::error::AppError;
use crate::repo::{INDEX_NAME, IndexKey, Repo};

impl Repo {
    /// Indexes strays and drops entries of missing packages, in every index. A server
    /// that cannot sign (no `signing.key` or no `trusted_keys`) changes nothing.
    pub async fn reconcile(self: &Arc<Self>) -> anyhow::Result<()> {
        if self.signer.is_none() || self.keyring().is_none() {
            return Ok(());
        }
        let keys = match self.s3() {
            Some(store) => s3_index_keys(store).await?,
            None => {
                let root = self.root().to_path_buf();
                tokio::task::spawn_blocking(move || local_index_keys(&root)).await??
            }
        };
        for key in keys {
            let r = if self.s3.is_some() {
                self.converge(&key, Vec::new(), true).await
            } else {
                self.reconcile_local(&key).await
            };
            if let Err(e) = r {
                tracing::error!(
                    ?key,
                    "cannot reconcile the index with the packages stored: {e}"
                );
            }
        }
        Ok(())
    }

    async fn reconcile_local(self: &Arc<Self>, key: &IndexKey) -> Result<(), AppError> {
        let _guard = self.slot(key).lock_owned().await;
        let this = Arc::clone(self);
        let key = key.clone();
        tokio::task::spawn_blocking(move || this.reconcile_dir(&key))
            .await
            .map_err(AppError::internal)?
    }

    /// One local index directory (blocking).
    fn reconcile_dir(&self, key: &IndexKey) -> Result<(), AppError> {
        let dir = self.root().join(key.rel_dir());
        let index_path = dir.join(INDEX_NAME);
        let index = if index_path.exists() {
            SignedIndex::open(&index_path)
                .map_err(AppError::internal)?
                .index
        } else {
            ApkIndex::default()
        };
        let files = package_files(&dir).map_err(AppError::internal)?;
        let mut by_file: BTreeMap<String, IndexEntry> = BTreeMap::new();
        for e in &index.packages {
            let file = e.file_name();
            if files.get(&file) == Some(&e.file_size) {
                by_file.insert(file, e.clone());
            } else if !files.contains_key(&file) {
                tracing::warn!(?key, package = %file, "the package file is gone: dropped from the index");
            }
        }
        let keyring = self
            .keyring()
            .ok_or_else(|| self.upload_ready().unwrap_err())?;
        let mut added = 0;
        let strays: Vec<&String> = files.keys().filter(|n| !by_file.contains_key(*n)).collect();
        for name in strays {
            match read_entry(&dir.join(name), key, name, &keyring, self.limits()) {
                Ok(e) => {
                    tracing::info!(?key, package = %name, "stray package indexed");
                    by_file.insert(name.clone(), e);
                    added += 1;
                }
                Err(why) => tracing::warn!(?key, package = %name, "stray file not indexed: {why}"),
            }
        }
        let dropped = index.packages.len() + added - by_file.len();
        if added == 0 && dropped == 0 {
            return Ok(());
        }
        let mut rebuilt = ApkIndex {
            description: index.description,
            packages: by_file.into_values().collect(),
        };
        rebuilt.sort();
        let signer = self
            .signer
            .clone()
            .ok_or_else(|| self.upload_ready().unwrap_err())?;
        self.write_index(key, &rebuilt, Vec::new(), &signer)?;
        tracing::info!(
            ?key,
            added,
            dropped,
            "index rebuilt from the packages stored"
        );
        Ok(())
    }
}

/// Reads and verifies a stored package and makes its entry for `key`'s index.
pub(crate) fn read_entry(
    path: &Path,
    key: &IndexKey,
    name: &str,
    keyring: &Keyring,
    limits: ReadLimits,
) -> Result<IndexEntry, String> {
    let pkg = Package::open(path, limits).map_err(|e| e.to_string())?;
    pkg.verify(keyring).map_err(|e| e.to_string())?;
    let info = &pkg.info;
    if info.arch != key.arch && info.arch != "noarch" {
        return Err(format!(
            "built for `{}`, stored under `{}`",
            info.arch, key.arch
        ));
    }
    let mut entry = IndexEntry::from_package(&pkg);
    // As an upload: noarch packages are listed under the index's arch.
    entry.arch.clone_from(&key.arch);
    if entry.file_name() != name {
        return Err(format!("its .PKGINFO makes it `{}`", entry.file_name()));
    }
    Ok(entry)
}

/// `*.apk` regular files of a directory (not hidden) and their sizes; packages with mode
/// 0600 (as older reposerve stored them) are made 0644 on the way.
fn package_files(dir: &Path) -> std::io::Result<BTreeMap<String, u64>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = BTreeMap::new();
    for e in fs_err::read_dir(dir)? {
        let e = e?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".apk") || !e.file_type()?.is_file() {
            continue;
        }
        let meta = e.metadata()?;
        if meta.permissions().mode() & 0o044 != 0o044 {
            fs_err::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644))?;
        }
        out.insert(name, meta.len());
    }
    Ok(out)
}

/// Every `<version>/<repo>/<arch>` directory under the root (hidden names skipped).
fn local_index_keys(root: &Path) -> std::io::Result<Vec<IndexKey>> {
    let subdirs = |dir: &Path| -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        for e in fs_err::read_dir(dir)? {
            let e = e?;
            if let Ok(name) = e.file_name().into_string()
                && !name.starts_with('.')
                && e.file_type()?.is_dir()
            {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    };
    let mut keys = Vec::new();
    for version in subdirs(root)? {
        for repo in subdirs(&root.join(&version))? {
            for arch in subdirs(&root.join(&version).join(&repo))? {
                keys.push(IndexKey {
                    version: version.clone(),
                    repo: repo.clone(),
                    arch,
                });
            }
        }
    }
    Ok(keys)
}

/// The same, from the bucket's listing.
async fn s3_index_keys(store: &crate::store::S3Store) -> anyhow::Result<Vec<IndexKey>> {
    let subdirs = |rel: String| async move {
        let names = store.list(&rel).await?;
        anyhow::Ok(
            names
                .into_iter()
                .filter_map(|n| n.strip_suffix('/').map(str::to_string))
                .filter(|n| !n.starts_with('.'))
                .collect::<Vec<_>>(),
        )
    };
    let mut keys = Vec::new();
    for version in subdirs(String::new()).await? {
        for repo in subdirs(format!("{version}/")).await? {
            for arch in subdirs(format!("{version}/{repo}/")).await? {
                keys.push(IndexKey {
                    version: version.clone(),
                    repo: repo.clone(),
                    arch,
                });
            }
        }
    }
    Ok(keys)
}
