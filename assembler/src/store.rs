//! The local store: content-addressed snapshots, tags, the step cache and step logs.
//!
//! Layout under the store root:
//! - `snapshots/<12 hex>/meta.json`: parent, the instruction, the image config after the step,
//!   and the digest of its layer; `layer.tar`: what the step changed (files + OCI whiteouts),
//!   absent for a step that changed only the config; `log`: the step's full output.
//! - `tags.json`: `name:tag` → snapshot id.
//! - `cache/<sha256>`: step cache key → snapshot id.
//! - `bases/<id>/`: bases extracted once, shared by the builds on them (see `crate::bases`).
//! - `tmp/`: build roots and half-written snapshots (same filesystem, so renames are atomic).
//!
//! A snapshot id is the first 12 hex digits of the SHA-256 of its `meta.json` bytes, so the
//! same parent + step + layer always gives the same id and re-creating it is a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use apk::atomic::write_atomic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ImageConfig;

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A metadata file is not valid JSON of the expected shape.
    #[error(
        "store file `{path}` is corrupt; remove it or run `{} prune`",
        crate::program::name()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// No tag or snapshot by that name.
    #[error("no image or snapshot `{name}` in the store `{}`; see `{} images`", store.display(), crate::program::name())]
    NotFound {
        /// What was asked for.
        name: String,
        /// The store root.
        store: PathBuf,
    },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a snapshot records (serialised once; its bytes give the id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotMeta {
    /// The snapshot below, if any.
    pub parent: Option<String>,
    /// The instruction after expansion (`RUN …`, `COPY …`), or `FROM …` for base layers.
    pub created_by: String,
    /// `sha256:<hex>` of the uncompressed layer tar (the OCI diff_id); `None` for a step that
    /// changed only the image config.
    pub diff_id: Option<String>,
    /// Size of the layer tar in bytes.
    pub size: u64,
    /// True for layers imported from a base image (kept as separate layers on export).
    pub base: bool,
    /// The snapshot the step's stage started FROM (its base image), when there is one:
    /// the default export keeps the base image's layers as that image exports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The image config in effect after this step.
    pub config: ImageConfig,
}

/// A snapshot in the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// 12 hex digits.
    pub id: String,
    /// Its metadata.
    pub meta: SnapshotMeta,
    /// Its directory.
    pub dir: PathBuf,
}

impl Snapshot {
    /// The layer tar, if the step changed files.
    pub fn layer(&self) -> Option<PathBuf> {
        self.meta
            .diff_id
            .as_ref()
            .map(|_| self.dir.join("layer.tar"))
    }
    /// The step's full output.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }
}

/// An image or snapshot reference: `name[:tag][@id]` or `@id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `name:tag` (tag defaults to `latest`), empty for a bare `@id`.
    pub tag: String,
    /// A snapshot id (or unique prefix).
    pub snapshot: Option<String>,
}

impl ImageRef {
    /// Parses `name[:tag][@snapshot]`.
    pub fn parse(s: &str) -> Self {
        let (name, snapshot) = match s.split_once('@') {
            Some((n, id)) => (n, Some(id.to_string())),
            None => (s, None),
        };
        Self {
            tag: if name.is_empty() {
                String::new()
            } else {
                normalize_tag(name)
            },
            snapshot,
        }
    }
}

/// `name` → `name:latest`; a `:` after the last `/` is a tag, before it a registry port.
pub fn normalize_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["snapshots", "cache", "tmp"] {
            fs_err::create_dir_all(root.join(sub))?;
        }
        Ok(Self { root })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh temporary directory inside the store (removed on drop).
    pub fn tempdir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        Ok(tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.root.join("tmp"))?)
    }

    /// Adds a snapshot: `layer` (a finished tar in the store's tmp dir, moved in) and `log`.
    /// Returns the existing snapshot when the same one is already stored.
    pub fn add_snapshot(
        &self,
        meta: SnapshotMeta,
        layer: Option<&Path>,
        log: &[u8],
    ) -> Result<Snapshot> {
        let bytes = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
        let id = hex::encode(Sha256::digest(&bytes))[..12].to_string();
        let dir = self.root.join("snapshots").join(&id);
        if dir.join("meta.json").is_file() {
            if let Some(l) = layer {
                fs_err::remove_file(l)?;
            }
        } else {
            let staging = self.tempdir("snap-")?;
            if let Some(l) = layer {
                fs_err::rename(l, staging.path().join("layer.tar"))?;
            }
            write_atomic(&staging.path().join("log"), log)?;
            write_atomic(&staging.path().join("meta.json"), &bytes)?;
            let staged = staging.keep();
            if let Err(e) = fs_err::rename(&staged, &dir) {
                // Someone else stored the same snapshot meanwhile.
                fs_err::remove_dir_all(&staged)?;
                if !dir.join("meta.json").is_file() {
                    return Err(e.into());
                }
            }
        }
        Ok(Snapshot { id, meta, dir })
    }

    /// Every snapshot id in the store.
    pub fn snapshot_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs_err::read_dir(self.root.join("snapshots"))? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                ids.push(n.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The snapshot with this id or unique id prefix (a leading `@` is accepted).
    pub fn snapshot(&self, id: &str) -> Result<Snapshot> {
        let id = id.trim_start_matches('@');
        let not_found = || StoreError::NotFound {
            name: format!("@{id}"),
            store: self.root.clone(),
        };
        let full = if id.len() == 12 {
            id.to_string()
        } else {
            let matches: Vec<String> = self
                .snapshot_ids()?
                .into_iter()
                .filter(|s| s.starts_with(id) && !id.is_empty())
                .collect();
            match matches.as_slice() {
                [one] => one.clone(),
                _ => return Err(not_found()),
            }
        };
        let dir = self.root.join("snapshots").join(&full);
        let path = dir.join("meta.json");
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let meta = serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
        Ok(Snapshot {
            id: full,
            meta,
            dir,
        })
    }

    /// The chain from the bottom layer to `top`.
    pub fn chain(&self, top: &Snapshot) -> Result<Vec<Snapshot>> {
        let mut chain = vec![top.clone()];
        while let Some(p) = chain.last().and_then(|s| s.meta.parent.clone()) {
            chain.push(self.snapshot(&p)?);
        }
        chain.reverse();
        Ok(chain)
    }

    /// `name:tag` → snapshot id.
    pub fn tags(&self) -> Result<BTreeMap<String, String>> {
        let path = self.root.join("tags.json");
        match fs_err::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| StoreError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write_tags(&self, tags: &BTreeMap<String, String>) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(tags).map_err(std::io::Error::other)?;
        Ok(write_atomic(&self.root.join("tags.json"), &bytes)?)
    }

    /// Points `tag` (`name[:tag]`) at `id`, moving it if it existed.
    pub fn set_tag(&self, tag: &str, id: &str) -> Result<()> {
        let mut tags = self.tags()?;
        tags.insert(normalize_tag(tag), id.to_string());
        self.write_tags(&tags)
    }

    /// Removes a tag; returns whether it existed.
    pub fn remove_tag(&self, tag: &str) -> Result<bool> {
        let mut tags = self.tags()?;
        let had = tags.remove(&normalize_tag(tag)).is_some();
        self.write_tags(&tags)?;
        Ok(had)
    }

    /// Resolves `name[:tag][@snapshot]` or `@snapshot`. With both, the snapshot must be in the
    /// tagged image's chain... or anywhere: `FROM x:failed@id` names the snapshot exactly, so
    /// the snapshot wins once the tag exists.
    pub fn resolve(&self, r: &ImageRef) -> Result<Snapshot> {
        if !r.tag.is_empty() {
            let tags = self.tags()?;
            let Some(id) = tags.get(&r.tag) else {
                return Err(StoreError::NotFound {
                    name: r.tag.clone(),
                    store: self.root.clone(),
                });
            };
            if r.snapshot.is_none() {
                return self.snapshot(id);
            }
        }
        match &r.snapshot {
            Some(id) => self.snapshot(id),
            None => Err(StoreError::NotFound {
                name: String::new(),
                store: self.root.clone(),
            }),
        }
    }

    /// The step cache: key → snapshot id.
    pub fn cache_get(&self, key: &str) -> Option<Snapshot> {
        let id = fs_err::read_to_string(self.root.join("cache").join(key)).ok()?;
        self.snapshot(id.trim()).ok()
    }

    /// Records a cache entry.
    pub fn cache_put(&self, key: &str, id: &str) -> Result<()> {
        Ok(write_atomic(
            &self.root.join("cache").join(key),
            id.as_bytes(),
        )?)
    }

    /// Removes every snapshot not reachable from a tag, and cache entries pointing at them.
    /// Returns the removed ids.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut keep = BTreeSet::new();
        for id in self.tags()?.values() {
            let mut cur = Some(id.clone());
            while let Some(id) = cur {
                if !keep.insert(id.clone()) {
                    break;
                }
                cur = self.snapshot(&id).ok().and_then(|s| s.meta.parent);
            }
        }
        let mut removed = Vec::new();
        for id in self.snapshot_ids()? {
            if !keep.contains(&id) {
                fs_err::remove_dir_all(self.root.join("snapshots").join(&id))?;
                removed.push(id);
            }
        }
        for e in fs_err::read_dir(self.root.join("cache"))? {
            let path = e?.path();
            let id = fs_err::read_to_string(&path).unwrap_or_default();
            if !keep.contains(id.trim()) {
                fs_err::remove_file(&path)?;
            }
        }
        // Leftovers of interrupted builds.
        for e in fs_err::read_dir(self.root.join("tmp"))? {
            let path = e?.path();
            if path.is_dir() {
                // An overlay's work directory has mode 0 (see `crate::overlay::Mount`).
                crate::overlay::open_up(&path);
                let _ = fs_err::remove_dir_all(&path);
            } else {
                let _ = fs_err::remove_file(&path);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(parent: Option<&str>, by: &str) -> SnapshotMeta {
        SnapshotMeta {
            parent: parent.map(str::to_string),
            created_by: by.into(),
            diff_id: None,
            size: 0,
            base: false,
            from: None,
            config: ImageConfig::default(),
        }
    }

    #[test]
    fn snapshots_are_content_addressed_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store
            .add_snapshot(meta(None, "RUN a"), None, b"log a")
            .unwrap();
        let again = store
            .add_snapshot(meta(None, "RUN a"), None, b"log a")
            .unwrap();
        assert_eq!(a.id, again.id);
        assert_eq!(a.id.len(), 12);
        let b = store
            .add_snapshot(meta(Some(&a.id), "RUN b"), None, b"")
            .unwrap();
        let orphan = store.add_snapshot(meta(None, "RUN c"), None, b"").unwrap();
        store.set_tag("img", &b.id).unwrap();
        store.cache_put("k", &orphan.id).unwrap();
        assert_eq!(store.tags().unwrap()["img:latest"], b.id);
        let chain = store
            .chain(&store.resolve(&ImageRef::parse("img")).unwrap())
            .unwrap();
        assert_eq!(
            chain.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
            [a.id.clone(), b.id.clone()]
        );
        assert_eq!(store.snapshot(&a.id[..6]).unwrap().id, a.id);
        assert_eq!(store.prune().unwrap(), vec![orphan.id]);
        assert!(store.cache_get("k").is_none());
        assert!(
            store
                .resolve(&ImageRef::parse(&format!("img@{}", a.id)))
                .is_ok()
        );
    }

    #[test]
    fn image_refs() {
        assert_eq!(ImageRef::parse("a").tag, "a:latest");
        assert_eq!(
            ImageRef::parse("localhost:5000/a").tag,
            "localhost:5000/a:latest"
        );
        let r = ImageRef::parse("a:failed@0123456789ab");
        assert_eq!(
            (r.tag.as_str(), r.snapshot.as_deref()),
            ("a:failed", Some("0123456789ab"))
        );
        assert_eq!(ImageRef::parse("@abc").tag, "");
    }
}
