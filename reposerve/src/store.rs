//! S3 storage through object_store: objects, listings, and the start-up probe of how the
//! store treats conditional writes ([`S3Store::probe`]).
//!
//! Correctness never depends on the store honouring `If-Match`: the index is rebuilt from
//! the packages listed and read back ([`crate::replica`]). Conditional writes, where the
//! store has them, only spare rewrites.

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

/// How the store treats `If-None-Match: *` and `If-Match: <etag>` on PUT, as probed at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Both are checked atomically: of simultaneous conditional PUTs on one ETag, one wins
    /// (AWS S3, and stores that lock per object).
    Atomic,
    /// Both are checked, but not atomically: `winners` of `tried` simultaneous conditional
    /// PUTs on one ETag succeeded (s3s-fs checks before it streams the body, without a lock).
    NotAtomic {
        /// Most successes seen in one round.
        winners: usize,
        /// PUTs sent per round.
        tried: usize,
    },
    /// The headers are ignored: a second create or a write on a wrong ETag succeeded.
    Ignored(&'static str),
    /// The store refuses conditional writes (`501 Not Implemented` or similar).
    Refused(String),
}

impl WriteMode {
    /// Whether index writes carry `If-Match`/`If-None-Match`: where the store checks them
    /// at all they avoid wasted rewrites, atomic or not.
    pub fn conditional(&self) -> bool {
        matches!(self, Self::Atomic | Self::NotAtomic { .. })
    }

    /// One line for the log: what was found and what reposerve does about it.
    pub fn describe(&self) -> String {
        match self {
            Self::Atomic => "the store honours If-Match and If-None-Match atomically: index writes are compare-and-swap; every upload is still confirmed by reading the index back".into(),
            Self::NotAtomic { winners, tried } => format!(
                "the store checks If-Match and If-None-Match but not atomically ({winners} of {tried} simultaneous conditional writes on one ETag succeeded): index writes stay conditional to spare rewrites, and every replica rebuilds the index from the packages listed until what it reads back covers them"
            ),
            Self::Ignored(what) => format!(
                "the store ignores conditional writes ({what}): index writes are plain, and every replica rebuilds the index from the packages listed until what it reads back covers them"
            ),
            Self::Refused(why) => format!(
                "the store refuses conditional writes ({why}): index writes are plain, and every replica rebuilds the index from the packages listed until what it reads back covers them"
            ),
        }
    }
}

/// A package object as listed: file name and size.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listed {
    /// `name-version.apk`.
    pub name: String,
    /// Bytes.
    pub size: u64,
}

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

    /// Uploads a package file from disk: one put when small (`create`: only if no object
    /// has that name, where the store checks), a multipart upload of bounded chunks
    /// otherwise, so large packages never sit whole in memory. Returns the new ETag.
    pub async fn put_file(
        &self,
        rel: &str,
        local: &std::path::Path,
        create: bool,
    ) -> Result<Option<String>, object_store::Error> {
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
            let opts = PutOptions {
                mode: if create {
                    PutMode::Create
                } else {
                    PutMode::Overwrite
                },
                ..PutOptions::default()
            };
            return self
                .store
                .put_opts(&path, PutPayload::from(Bytes::from(buf)), opts)
                .await
                .map(|r| r.e_tag);
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
        writer.finish().await.map(|r| r.e_tag)
    }

    /// Writes an index if it is still at `prev` (or still absent when `prev` is `None`);
    /// unconditionally when `conditional` is false.
    pub async fn put_index(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        prev: Option<UpdateVersion>,
        conditional: bool,
    ) -> Result<(), PutIndexError> {
        let mode = match prev {
            _ if !conditional => PutMode::Overwrite,
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

    /// Metadata of one object; `None` if there is none.
    pub async fn head(&self, rel: &str) -> Result<Option<ObjectMeta>, object_store::Error> {
        match self.store.head(&self.path(rel)).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Downloads an object into `local` (a staging file), streaming.
    pub async fn get_to_file(
        &self,
        rel: &str,
        local: &std::path::Path,
    ) -> Result<(), object_store::Error> {
        use futures::StreamExt as _;
        use tokio::io::AsyncWriteExt as _;
        let io = |e: std::io::Error| object_store::Error::Generic {
            store: "local staging file",
            source: Box::new(e),
        };
        let mut out = tokio::fs::File::create(local).await.map_err(io)?;
        let mut stream = self.store.get(&self.path(rel)).await?.into_stream();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await.map_err(io)?;
        }
        out.flush().await.map_err(io)
    }

    /// The package objects (`*.apk`, not hidden) directly under `rel`, sorted by name.
    pub async fn list_packages(&self, rel: &str) -> Result<Vec<Listed>, object_store::Error> {
        let prefix = self.path(rel.trim_end_matches('/'));
        let r = self.store.list_with_delimiter(Some(&prefix)).await?;
        let mut out: Vec<Listed> = r
            .objects
            .iter()
            .filter_map(|o| {
                let name = o.location.filename()?;
                (name.ends_with(".apk") && !name.starts_with('.')).then(|| Listed {
                    name: name.to_string(),
                    size: o.size,
                })
            })
            .collect();
        out.sort();
        Ok(out)
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

/// The probe's object names live under this hidden prefix (never served: hidden names are
/// refused) and are deleted afterwards.
const PROBE_DIR: &str = ".reposerve-probe";
/// Simultaneous conditional PUTs per round of the probe, and rounds.
const PROBE_RACERS: usize = 8;
const PROBE_ROUNDS: usize = 2;
/// Body of each racing PUT: large enough that a store checking the condition before it
/// streams the body has all racers past the check before the first one lands.
const PROBE_BODY: usize = 64 << 10;

impl S3Store {
    /// Finds out how the store treats conditional writes: a second `If-None-Match: *`
    /// create and an `If-Match` on a wrong ETag must fail, and of several simultaneous
    /// conditional PUTs on one ETag (or one absent name) only one may succeed.
    ///
    /// Errors only when the store cannot be used at all (unreachable, bad credentials, no
    /// bucket): the message then says what failed.
    pub async fn probe(&self) -> Result<WriteMode, object_store::Error> {
        let id = format!("{:016x}", rand_id());
        let base = format!("{PROBE_DIR}/{id}");
        let result = self.probe_in(&base).await;
        self.delete_under(&base).await;
        result
    }

    async fn probe_in(&self, base: &str) -> Result<WriteMode, object_store::Error> {
        let a = self.path(&format!("{base}/a"));
        let create = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        // Plain access first: an error here is the store's or the configuration's.
        self.store
            .put(&a, PutPayload::from_static(b"probe"))
            .await?;
        self.store.delete(&a).await?;
        match self
            .store
            .put_opts(&a, PutPayload::from_static(b"1"), create())
            .await
        {
            Ok(_) => {}
            Err(e) => return Ok(WriteMode::Refused(e.to_string())),
        }
        if self
            .store
            .put_opts(&a, PutPayload::from_static(b"2"), create())
            .await
            .is_ok()
        {
            return Ok(WriteMode::Ignored(
                "a second If-None-Match: * create succeeded",
            ));
        }
        let Some(etag) = self.store.head(&a).await?.e_tag else {
            return Ok(WriteMode::Refused("objects have no ETag".into()));
        };
        let wrong = UpdateVersion {
            e_tag: Some("\"0123456789abcdef0123456789abcdef\"".into()),
            version: None,
        };
        let stale = PutOptions {
            mode: PutMode::Update(wrong),
            ..PutOptions::default()
        };
        if self
            .store
            .put_opts(&a, PutPayload::from_static(b"3"), stale)
            .await
            .is_ok()
        {
            return Ok(WriteMode::Ignored("an If-Match on a wrong ETag succeeded"));
        }
        let mut most = 1;
        let mut current = etag;
        for round in 0..PROBE_ROUNDS {
            let update = UpdateVersion {
                e_tag: Some(current.clone()),
                version: None,
            };
            most = most.max(self.race(&a, || PutMode::Update(update.clone())).await);
            let fresh = self.path(&format!("{base}/b{round}"));
            most = most.max(self.race(&fresh, || PutMode::Create).await);
            if let Some(e) = self.store.head(&a).await?.e_tag {
                current = e;
            }
        }
        Ok(if most > 1 {
            WriteMode::NotAtomic {
                winners: most,
                tried: PROBE_RACERS,
            }
        } else {
            WriteMode::Atomic
        })
    }

    /// Sends [`PROBE_RACERS`] PUTs with `mode` at once; returns how many succeeded.
    async fn race(&self, path: &ObjPath, mode: impl Fn() -> PutMode) -> usize {
        let puts = (0..PROBE_RACERS).map(|i| {
            let mut body = vec![0u8; PROBE_BODY];
            body[0] = u8::try_from(i).unwrap_or(0);
            let opts = PutOptions {
                mode: mode(),
                ..PutOptions::default()
            };
            self.store.put_opts(path, PutPayload::from(body), opts)
        });
        futures::future::join_all(puts)
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count()
    }

    /// Best-effort removal of everything under `rel`.
    async fn delete_under(&self, rel: &str) {
        use futures::StreamExt as _;
        let prefix = self.path(rel);
        let found: Vec<ObjPath> = self
            .store
            .list(Some(&prefix))
            .filter_map(|m| async move { m.ok().map(|m| m.location) })
            .collect()
            .await;
        for p in found {
            let _ = self.store.delete(&p).await;
        }
    }
}

/// A random identifier for the probe's objects (two probing replicas never collide).
fn rand_id() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}
