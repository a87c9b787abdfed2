//! S3 storage through object_store. Packages are plain puts; an index is replaced only by
//! a conditional put on the ETag it was read with (`If-Match`, or `If-None-Match: *` for a
//! new index), so two replicas updating one index never lose an update: the loser re-reads
//! the index, re-applies its packages and tries again.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{
    GetOptions, GetRange, GetResult, ObjectMeta, ObjectStore, ObjectStoreExt as _, PutMode,
    PutOptions, PutPayload, UpdateVersion,
};

use crate::config::S3Config;

/// Files above this go up as multipart uploads.
pub const MULTIPART_THRESHOLD: u64 = 16 << 20;
/// Part size of multipart uploads (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 << 20;

/// Why a conditional index write did not happen.
#[derive(Debug)]
pub enum PutIndexError {
    /// Another writer changed the index since it was read: re-read and retry.
    Conflict,
    /// Anything else.
    Other(object_store::Error),
}

/// An index object as read: its bytes and the version to update conditionally.
pub struct IndexObject {
    /// `APKINDEX.tar.gz` bytes.
    pub bytes: Bytes,
    /// ETag/version it was read at.
    pub version: UpdateVersion,
}

/// A bucket (and prefix) holding the tree.
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3Store {
    /// Connects (lazily: nothing is sent until the first request).
    pub fn new(cfg: &S3Config) -> Result<Self, object_store::Error> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_allow_http(cfg.allow_http);
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        Ok(Self {
            store: Arc::new(b.build()?),
            prefix: cfg.prefix.trim_matches('/').to_string(),
        })
    }

    /// The object path of `rel` (`edge/main/x86_64/APKINDEX.tar.gz`).
    pub fn path(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// Reads an index; `None` if there is none yet.
    pub async fn get_index(&self, rel: &str) -> Result<Option<IndexObject>, object_store::Error> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                Ok(Some(IndexObject {
                    bytes: r.bytes().await?,
                    version,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Uploads a package file from disk: one put when small, a multipart upload of
    /// bounded chunks otherwise, so large packages never sit whole in memory.
    pub async fn put_file(
        &self,
        rel: &str,
        local: &std::path::Path,
    ) -> Result<(), object_store::Error> {
        use tokio::io::AsyncReadExt as _;
        let io = |e: std::io::Error| object_store::Error::Generic {
            store: "local staging file",
            source: Box::new(e),
        };
        let path = self.path(rel);
        let mut file = tokio::fs::File::open(local).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        if size <= MULTIPART_THRESHOLD {
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut buf).await.map_err(io)?;
            return self
                .store
                .put(&path, PutPayload::from(Bytes::from(buf)))
                .await
                .map(drop);
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&chunk[..n]);
        }
        writer.finish().await.map(drop)
    }

    /// Writes an index if it is still at `prev` (or still absent when `prev` is `None`).
    pub async fn put_index(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        prev: Option<UpdateVersion>,
    ) -> Result<(), PutIndexError> {
        let mode = match prev {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.path(rel), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Err(PutIndexError::Conflict),
            Err(e) => Err(PutIndexError::Other(e)),
        }
    }

    /// An object for serving, with an optional byte range.
    pub async fn get(
        &self,
        rel: &str,
        range: Option<GetRange>,
        head: bool,
    ) -> Result<GetResult, object_store::Error> {
        let opts = GetOptions {
            range,
            head,
            ..GetOptions::default()
        };
        self.store.get_opts(&self.path(rel), opts).await
    }

    /// Metadata of one object.
    pub async fn head(&self, rel: &str) -> Result<ObjectMeta, object_store::Error> {
        self.store.head(&self.path(rel)).await
    }

    /// Names directly under `rel` (directories with a trailing `/`), sorted.
    pub async fn list(&self, rel: &str) -> Result<Vec<String>, object_store::Error> {
        let prefix = self.path(rel.trim_end_matches('/'));
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        let r = self.store.list_with_delimiter(prefix.as_ref()).await?;
        let mut names: Vec<String> = r
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(|n| format!("{n}/")))
            .chain(
                r.objects
                    .iter()
                    .filter_map(|o| o.location.filename().map(str::to_string)),
            )
            .collect();
        names.sort();
        Ok(names)
    }
}
