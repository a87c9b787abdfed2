//! The build cache: one [`object_store::ObjectStore`] over a local directory (the default)
//! or S3. Sources are stored by sha512; built packages under a key hashing every input of
//! the build, with a manifest signed by an Ed25519 key: an entry whose signature does not
//! verify against the configured public key, or whose files do not match the manifest's
//! hashes, is a miss.
//!
//! Layout under the prefix: `sources/<sha512>`, `packages/<key>/<file>.apk`, then
//! `packages/<key>/manifest.json` and `manifest.sig` written last (an entry without a
//! manifest is invisible, so a half-uploaded entry is never used). Each object is one PUT,
//! atomic on S3 and written to a temp file and renamed by the local store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use sha2::{Digest as _, Sha256};

/// Why the cache cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The S3 settings do not make a client.
    #[error(
        "cannot use the S3 cache `{location}` (check the AWS_* variables and --s3-endpoint): {source}"
    )]
    S3Config {
        /// `s3://…`.
        location: String,
        /// object_store's reason.
        source: object_store::Error,
    },
    /// No public key to verify entries against.
    #[error(
        "the cache `{location}` has no public key configured: pass --cache-pubkey FILE (make a \
         pair with `apkbuild cache-keygen DIR`) or --no-cache"
    )]
    NoPublicKey {
        /// The cache.
        location: String,
    },
    /// A key file that is not what it should be.
    #[error("`{}`: not an Ed25519 {kind} key in PEM: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// `public` or `private`.
        kind: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// The signing key is not the pair of the public key.
    #[error("cache signing key `{}` does not match the cache public key `{}`: use the two halves of one `apkbuild cache-keygen` pair", signing.display(), public.display())]
    KeyMismatch {
        /// Private key file.
        signing: PathBuf,
        /// Public key file.
        public: PathBuf,
    },
    /// A store operation failed.
    #[error("cache {op} `{path}`: {source}")]
    Store {
        /// `read` or `write`.
        op: &'static str,
        /// Object path.
        path: String,
        /// object_store's reason.
        source: object_store::Error,
    },
    /// Key encoding failed.
    #[error("encoding the cache key: {0}")]
    Encode(String),
    /// I/O (runtime, local files).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the cache lives and how to reach it.
#[derive(Clone, Debug, Default)]
pub struct CacheConfig {
    /// `s3://bucket/prefix` or a directory.
    pub location: String,
    /// S3 endpoint for S3-compatible servers.
    pub s3_endpoint: Option<String>,
    /// AWS settings from the environment (name, value).
    pub aws_env: Vec<(String, String)>,
    /// Ed25519 private key (PKCS#8 PEM) to sign new entries; none = read-only.
    pub signing_key: Option<PathBuf>,
    /// Ed25519 public key (SPKI PEM) entries must be signed by.
    pub public_key: Option<PathBuf>,
}

/// The manifest of a package entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The cache key.
    pub key: String,
    /// What went into the key (for people reading the cache).
    pub inputs: Vec<(String, String)>,
    /// Package files with their SHA-256 and size.
    pub packages: Vec<CachedFile>,
}

/// One file of an entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedFile {
    /// File name.
    pub file: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Result of a lookup.
pub enum Lookup {
    /// Every file, verified.
    Hit(Manifest, Vec<(String, Vec<u8>)>),
    /// Nothing usable, and why (for the log).
    Miss(String),
}

/// An open cache.
pub struct Cache {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    rt: tokio::runtime::Runtime,
    signer: Option<SigningKey>,
    verifier: VerifyingKey,
    what: String,
}

impl Cache {
    /// Opens the cache. Without a public key there is nothing to trust: an error says how
    /// to make one (`apkbuild cache-keygen`).
    pub fn open(cfg: &CacheConfig) -> Result<Self, CacheError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (store, prefix, what): (Arc<dyn ObjectStore>, ObjPath, String) =
            if let Some(rest) = cfg.location.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket);
                for (k, v) in &cfg.aws_env {
                    if let Ok(key) = k
                        .to_ascii_lowercase()
                        .parse::<object_store::aws::AmazonS3ConfigKey>()
                    {
                        b = b.with_config(key, v);
                    }
                }
                if let Some(ep) = &cfg.s3_endpoint {
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(ep.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let s3 = b.build().map_err(|source| CacheError::S3Config {
                    location: cfg.location.clone(),
                    source,
                })?;
                (Arc::new(s3), ObjPath::from(prefix), cfg.location.clone())
            } else {
                let dir = Path::new(&cfg.location);
                fs_err::create_dir_all(dir)?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(
                    |source| CacheError::Store {
                        op: "open",
                        path: dir.display().to_string(),
                        source,
                    },
                )?;
                (Arc::new(fs), ObjPath::from(""), dir.display().to_string())
            };
        let Some(pubkey) = &cfg.public_key else {
            return Err(CacheError::NoPublicKey { location: what });
        };
        let pem = fs_err::read_to_string(pubkey)?;
        let verifier = VerifyingKey::from_public_key_pem(&pem).map_err(|e| CacheError::BadKey {
            path: pubkey.clone(),
            kind: "public",
            reason: e.to_string(),
        })?;
        let signer = match &cfg.signing_key {
            Some(p) => {
                let pem = fs_err::read_to_string(p)?;
                let k = SigningKey::from_pkcs8_pem(&pem).map_err(|e| CacheError::BadKey {
                    path: p.clone(),
                    kind: "private",
                    reason: e.to_string(),
                })?;
                if k.verifying_key() != verifier {
                    return Err(CacheError::KeyMismatch {
                        signing: p.clone(),
                        public: pubkey.clone(),
                    });
                }
                Some(k)
            }
            None => None,
        };
        Ok(Self {
            store,
            prefix,
            rt,
            signer,
            verifier,
            what,
        })
    }

    /// Where the cache is, for logs.
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// Whether new entries can be written.
    pub fn writable(&self) -> bool {
        self.signer.is_some()
    }

    fn path(&self, rel: &str) -> ObjPath {
        if self.prefix.as_ref().is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.path(rel);
        self.rt.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => match r.bytes().await {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(source) => Err(CacheError::Store {
                        op: "read",
                        path: path.to_string(),
                        source,
                    }),
                },
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(source) => Err(CacheError::Store {
                    op: "read",
                    path: path.to_string(),
                    source,
                }),
            }
        })
    }

    fn put(&self, rel: &str, bytes: &[u8]) -> Result<(), CacheError> {
        let path = self.path(rel);
        self.rt
            .block_on(self.store.put(&path, bytes.to_vec().into()))
            .map_err(|source| CacheError::Store {
                op: "write",
                path: path.to_string(),
                source,
            })?;
        Ok(())
    }

    /// A source by its sha512, checked.
    pub fn get_source(&self, sha512: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let Some(bytes) = self.get(&format!("sources/{sha512}"))? else {
            return Ok(None);
        };
        let actual = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&bytes));
        Ok((actual == sha512).then_some(bytes))
    }

    /// Stores a source under its sha512.
    pub fn put_source(&self, sha512: &str, bytes: &[u8]) -> Result<(), CacheError> {
        if !self.writable() {
            return Ok(());
        }
        self.put(&format!("sources/{sha512}"), bytes)
    }

    /// Looks a package entry up and verifies its signature and every file.
    pub fn lookup(&self, key: &str) -> Result<Lookup, CacheError> {
        let Some(manifest) = self.get(&format!("packages/{key}/manifest.json"))? else {
            return Ok(Lookup::Miss("no entry".into()));
        };
        let Some(sig) = self.get(&format!("packages/{key}/manifest.sig"))? else {
            return Ok(Lookup::Miss("entry has no signature".into()));
        };
        let sig = hex::decode(String::from_utf8_lossy(&sig).trim())
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok());
        if sig.is_none_or(|s| self.verifier.verify(&manifest, &s).is_err()) {
            return Ok(Lookup::Miss("bad signature on the entry's manifest".into()));
        }
        let m: Manifest = match serde_json::from_slice(&manifest) {
            Ok(m) => m,
            Err(e) => return Ok(Lookup::Miss(format!("unreadable manifest: {e}"))),
        };
        if m.key != key {
            return Ok(Lookup::Miss("manifest is for another key".into()));
        }
        let mut files = Vec::new();
        for f in &m.packages {
            let Some(bytes) = self.get(&format!("packages/{key}/{}", f.file))? else {
                return Ok(Lookup::Miss(format!("{} is missing", f.file)));
            };
            if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
                return Ok(Lookup::Miss(format!(
                    "{} is corrupt (checksum mismatch)",
                    f.file
                )));
            }
            files.push((f.file.clone(), bytes));
        }
        Ok(Lookup::Hit(m, files))
    }

    /// Stores a package entry: files first, the signed manifest last.
    pub fn store(
        &self,
        key: &str,
        inputs: Vec<(String, String)>,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), CacheError> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let mut m = Manifest {
            key: key.to_string(),
            inputs,
            packages: Vec::new(),
        };
        for (name, bytes) in files {
            self.put(&format!("packages/{key}/{name}"), bytes)?;
            m.packages.push(CachedFile {
                file: name.clone(),
                sha256: hex::encode(Sha256::digest(bytes)),
                size: bytes.len() as u64,
            });
        }
        let manifest =
            serde_json::to_vec_pretty(&m).map_err(|e| CacheError::Encode(e.to_string()))?;
        let sig = signer.sign(&manifest);
        self.put(
            &format!("packages/{key}/manifest.sig"),
            hex::encode(sig.to_bytes()).as_bytes(),
        )?;
        self.put(&format!("packages/{key}/manifest.json"), &manifest)?;
        Ok(())
    }
}

/// Generates an Ed25519 pair: (PKCS#8 private PEM, SPKI public PEM).
pub fn generate_keypair() -> Result<(String, String), CacheError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| CacheError::Encode(e.to_string()))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| CacheError::Encode(e.to_string()))?;
    Ok((private.to_string(), public))
}

/// Makes sure `dir` holds a key pair (`cache.key`, `cache.pub`) and returns their paths:
/// the local default cache signs its own entries.
pub fn ensure_local_keypair(dir: &Path) -> Result<(PathBuf, PathBuf), CacheError> {
    let private = dir.join("cache.key");
    let public = dir.join("cache.pub");
    if !private.exists() || !public.exists() {
        fs_err::create_dir_all(dir)?;
        let (k, p) = generate_keypair()?;
        let mut f = apk::atomic::AtomicFile::create(&private)?.with_mode(0o600);
        std::io::Write::write_all(&mut f, k.as_bytes())?;
        f.commit()?;
        apk::atomic::write_atomic(&public, p.as_bytes())?;
    }
    Ok((private, public))
}
