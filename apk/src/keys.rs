//! RSA signing keys and the trusted-key directory, as abuild and apk name and read them.
//!
//! See `shared/docs/apk-format.md` §2.4 (key files and naming) and §2.5 (where apk looks for
//! trusted keys). A key's *name* is the file name of its public key, for example
//! `alice@example.org-5f2b1c3e.rsa.pub`: apk finds the key for a `.SIGN.RSA.<name>` entry by
//! opening `<keys dir>/<name>`, so the name, not the key material, is the lookup key.
//!
//! Private keys are read in both PEM forms `openssl genrsa` has written over the years
//! (PKCS#1 `BEGIN RSA PRIVATE KEY` with OpenSSL 1.1, PKCS#8 `BEGIN PRIVATE KEY` with
//! OpenSSL 3) and written as PKCS#8. Public keys are written as SubjectPublicKeyInfo
//! (`BEGIN PUBLIC KEY`), the only form apk's `PEM_read_bio_PUBKEY` accepts.
//!
//! Key generation follows `abuild-keygen`: `<email>-<hex unix time>.rsa` (mode 0600) next
//! to `<same>.rsa.pub` (mode 0644).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rsa::pkcs1::{DecodeRsaPrivateKey as _, der::Decode as _};
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};

/// Key size `abuild-keygen` generates by default (its `-b` option; 2048 before abuild 3.10).
pub const DEFAULT_KEY_BITS: usize = 4096;

/// Smallest key size [`generate`] accepts; smaller RSA keys are factorable in practice.
pub const MIN_KEY_BITS: usize = 1024;

/// Largest modulus read or generated: OpenSSL's `OPENSSL_RSA_MAX_MODULUS_BITS`, so every key
/// apk can use is accepted (the rsa crate alone stops public keys at 4096 bits).
pub const MAX_KEY_BITS: usize = 16384;

/// Which half of a key pair an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A private (signing) key.
    Private,
    /// A public (verifying) key.
    Public,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Private => "private",
            KeyKind::Public => "public",
        })
    }
}

/// Errors reading, generating and writing keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file could not be read.
    #[error("failed to read key `{}`", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The underlying error (from fs-err, so it repeats the path).
        #[source]
        source: io::Error,
    },
    /// A keys directory could not be listed.
    #[error("failed to read keys directory `{}`", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The text is not a usable PEM RSA key of the expected kind.
    #[error("cannot parse {kind} key {}: {reason}", origin(name, path.as_deref()))]
    Parse {
        /// The key's name.
        name: String,
        /// The file it came from, when it came from a file.
        path: Option<PathBuf>,
        /// Private or public.
        kind: KeyKind,
        /// What is wrong with it.
        reason: String,
    },
    /// A PKCS#1 public key in a keys directory: apk cannot read it, so it is not trusted.
    #[error(
        "public key `{}` is a PKCS#1 `BEGIN RSA PUBLIC KEY` file, which apk does not accept; \
         convert it with `openssl rsa -RSAPublicKey_in -pubout`",
        path.display()
    )]
    Pkcs1PublicKey {
        /// The key file.
        path: PathBuf,
    },
    /// A key name that cannot be a file name in a keys directory or a `.SIGN` entry suffix.
    #[error("invalid key name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// [`write_key_pair`] found a file where it would write a key.
    #[error("refusing to overwrite existing key `{}`", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// Key generation failed or was asked for an unsupported size.
    #[error("cannot generate a {bits}-bit RSA key: {reason}")]
    Generate {
        /// The requested size.
        bits: usize,
        /// Why it failed.
        reason: String,
    },
    /// A key could not be encoded as PEM.
    #[error("cannot encode {kind} key `{name}` as PEM: {reason}")]
    Encode {
        /// The key's name.
        name: String,
        /// Private or public.
        kind: KeyKind,
        /// The encoder's message.
        reason: String,
    },
    /// A key file could not be written.
    #[error("failed to write key `{}`", path.display())]
    Write {
        /// The file (or its directory) being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Renders "`name` (from `path`)" for parse errors: the path tells the user which file to fix.
fn origin(name: &str, path: Option<&Path>) -> String {
    match path {
        Some(path) => format!("`{name}` (from `{}`)", path.display()),
        None => format!("`{name}`"),
    }
}

/// Checks that `name` can be a file name in a keys directory and the tail of `.SIGN.<TYPE>.`.
///
/// apk opens `<keys dir>/<name>`, so a `/` would escape the directory; control characters
/// would corrupt the tar entry name and log lines.
fn check_name(name: &str) -> Result<(), KeyError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it is a directory reference"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(KeyError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// The file name of `path` as UTF-8, which a key name must be (it goes into a tar entry).
fn file_name(path: &Path) -> Result<String, KeyError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| KeyError::InvalidName {
            name: path.display().to_string(),
            reason: "the file name is missing or not UTF-8",
        })
}

/// Finds the first PEM block in `text` and returns its label and the block itself.
///
/// OpenSSL skips text before `-----BEGIN` (for example the dump `openssl rsa -text` writes),
/// while the strict RFC 7468 decoder does not, so the block is cut out first.
fn pem_block(text: &str) -> Option<(&str, &str)> {
    let start = text.find("-----BEGIN ")?;
    let after = &text[start + "-----BEGIN ".len()..];
    let label = &after[..after.find("-----")?];
    if label.contains(['\n', '\r']) {
        return None;
    }
    let end_marker = format!("-----END {label}-----");
    let end = start + text[start..].find(&end_marker)? + end_marker.len();
    Some((label, &text[start..end]))
}

/// Builds a public key from PKCS#1 `RSAPublicKey` DER, allowing up to [`MAX_KEY_BITS`].
fn rsa_public_from_pkcs1_der(der: &[u8]) -> Result<RsaPublicKey, String> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(der).map_err(|e| e.to_string())?;
    RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(key.modulus.as_bytes()),
        BigUint::from_bytes_be(key.public_exponent.as_bytes()),
        MAX_KEY_BITS,
    )
    .map_err(|e| e.to_string())
}

/// Decodes a PEM public key block of either form; returns the key and whether it was PKCS#1.
fn decode_public_pem(label: &str, block: &str) -> Result<(RsaPublicKey, PublicKeyFormat), String> {
    let format = match label {
        "PUBLIC KEY" => PublicKeyFormat::Spki,
        "RSA PUBLIC KEY" => PublicKeyFormat::Pkcs1,
        other => {
            return Err(format!(
                "expected `BEGIN PUBLIC KEY` (or `BEGIN RSA PUBLIC KEY`), found `BEGIN {other}`"
            ));
        }
    };
    let (_, der) = rsa::pkcs8::der::pem::decode_vec(block.as_bytes()).map_err(|e| e.to_string())?;
    let key = match format {
        PublicKeyFormat::Pkcs1 => rsa_public_from_pkcs1_der(&der)?,
        PublicKeyFormat::Spki => {
            // Decoded by hand rather than with `DecodePublicKey` so that keys above the rsa
            // crate's 4096-bit default limit, which apk accepts, still load.
            let spki = rsa::pkcs8::SubjectPublicKeyInfoRef::try_from(der.as_slice())
                .map_err(|e| e.to_string())?;
            if spki.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
                return Err(format!(
                    "not an RSA key (algorithm {}); apk v2 signatures are RSA only",
                    spki.algorithm.oid
                ));
            }
            let bits = spki
                .subject_public_key
                .as_bytes()
                .ok_or("the key bit string has unused bits")?;
            rsa_public_from_pkcs1_der(bits)?
        }
    };
    Ok((key, format))
}

/// An RSA private key together with its name, the file name of its public key.
///
/// `Debug` shows only the name and size, never key material.
#[derive(Clone)]
pub struct PrivateKey {
    rsa: RsaPrivateKey,
    name: String,
    /// The aws-lc-rs form, made on first use (see [`crate::sign`]).
    fast: crate::sign::FastSigner,
}

/// Keys are equal when name and key material are.
impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.rsa == other.rsa
    }
}

impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("name", &self.name)
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Wraps an RSA key; `name` is the public key's file name (`….rsa.pub`).
    pub fn from_rsa(rsa: RsaPrivateKey, name: impl Into<String>) -> Result<Self, KeyError> {
        let name = name.into();
        check_name(&name)?;
        Ok(Self::with(rsa, name))
    }

    fn with(rsa: RsaPrivateKey, name: String) -> Self {
        Self {
            rsa,
            name,
            fast: crate::sign::FastSigner::default(),
        }
    }

    /// Parses a PEM private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). Encrypted keys are refused: abuild-sign would prompt for a
    /// passphrase, which a library cannot do.
    pub fn from_pem(text: &str, name: impl Into<String>) -> Result<Self, KeyError> {
        Self::parse(text, name.into(), None)
    }

    /// Reads a private key file. Its name becomes the file name plus `.pub`, the default
    /// abuild gives `PACKAGER_PUBKEY`; use [`PrivateKey::with_name`] to override it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let name = format!("{}.pub", file_name(path)?);
        let text = read_text(path, &name, KeyKind::Private)?;
        Self::parse(&text, name, Some(path))
    }

    fn parse(text: &str, name: String, path: Option<&Path>) -> Result<Self, KeyError> {
        check_name(&name)?;
        let parse_error = |reason: String| KeyError::Parse {
            name: name.clone(),
            path: path.map(Path::to_path_buf),
            kind: KeyKind::Private,
            reason,
        };
        let (label, block) =
            pem_block(text).ok_or_else(|| parse_error("no PEM block found".to_owned()))?;
        let rsa = match label {
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_pem(block).map_err(|e| e.to_string()),
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(block).map_err(|e| e.to_string()),
            "ENCRYPTED PRIVATE KEY" => Err("the key is encrypted; decrypt it with \
                 `openssl pkey -in KEY -out KEY.plain` first"
                .to_owned()),
            other => Err(format!(
                "expected `BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`, found `BEGIN {other}`"
            )),
        }
        .map_err(parse_error)?;
        if rsa.size() * 8 > MAX_KEY_BITS {
            return Err(parse_error(format!(
                "the modulus is larger than {MAX_KEY_BITS} bits"
            )));
        }
        Ok(Self::with(rsa, name))
    }

    /// Returns the same key under another name (abuild-sign's `-p`/`PACKAGER_PUBKEY`).
    pub fn with_name(self, name: impl Into<String>) -> Result<Self, KeyError> {
        Self::from_rsa(self.rsa, name)
    }

    /// The key's name: the public key's file name, used in `.SIGN.<TYPE>.<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying RSA key.
    pub fn rsa(&self) -> &RsaPrivateKey {
        &self.rsa
    }

    /// Modulus size in bits; signatures are this many bits long.
    pub fn bits(&self) -> usize {
        self.rsa.size() * 8
    }

    /// The aws-lc-rs form of the key, made on first use.
    pub(crate) fn fast(&self) -> &crate::sign::FastSigner {
        &self.fast
    }

    /// The matching public key, under the same name.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(
            self.rsa.to_public_key(),
            self.name.clone(),
            PublicKeyFormat::Spki,
        )
    }

    /// Encodes as PKCS#8 PEM (`BEGIN PRIVATE KEY`, LF line ends), what OpenSSL 3's
    /// `openssl genrsa` writes. The text is wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.rsa
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode {
                name: self.name.clone(),
                kind: KeyKind::Private,
                reason: e.to_string(),
            })
    }
}

/// How a public key file was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyFormat {
    /// SubjectPublicKeyInfo, `BEGIN PUBLIC KEY`: what apk reads and what we write.
    Spki,
    /// PKCS#1, `BEGIN RSA PUBLIC KEY`: readable here, but apk rejects it.
    Pkcs1,
}

/// An RSA public key together with its name, its file name in a keys directory.
#[derive(Debug, Clone)]
pub struct PublicKey {
    rsa: RsaPublicKey,
    name: String,
    format: PublicKeyFormat,
    /// The aws-lc-rs forms, parsed on first use (see [`crate::sign`]).
    fast: crate::sign::FastVerifier,
}

/// Keys are equal when name and key material are; the PEM form they were read from is not
/// part of the key.
impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.rsa == other.rsa
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    fn new(rsa: RsaPublicKey, name: String, format: PublicKeyFormat) -> Self {
        Self {
            rsa,
            name,
            format,
            fast: crate::sign::FastVerifier::default(),
        }
    }

    /// Wraps an RSA public key; `name` is its file name (`….rsa.pub`).
    pub fn from_rsa(rsa: RsaPublicKey, name: impl Into<String>) -> Result<Self, KeyError> {
        let name = name.into();
        check_name(&name)?;
        Ok(Self::new(rsa, name, PublicKeyFormat::Spki))
    }

    /// The aws-lc-rs forms of the key, parsed on first use.
    pub(crate) fn fast(&self) -> &crate::sign::FastVerifier {
        &self.fast
    }

    /// Parses a PEM public key: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or, for reading
    /// only, PKCS#1 (`BEGIN RSA PUBLIC KEY`). apk itself rejects PKCS#1 files, so check
    /// [`PublicKey::format`] before installing such a file as a trusted key, or write it
    /// back out with [`PublicKey::to_pem`].
    pub fn from_pem(text: &str, name: impl Into<String>) -> Result<Self, KeyError> {
        Self::parse(text, name.into(), None)
    }

    /// Reads a public key file; its name is the file name, as apk looks it up.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let name = file_name(path)?;
        let text = read_text(path, &name, KeyKind::Public)?;
        Self::parse(&text, name, Some(path))
    }

    fn parse(text: &str, name: String, path: Option<&Path>) -> Result<Self, KeyError> {
        check_name(&name)?;
        let parsed = match pem_block(text) {
            Some((label, block)) => decode_public_pem(label, block),
            None => Err("no PEM block found".to_owned()),
        };
        match parsed {
            Ok((rsa, format)) => Ok(Self::new(rsa, name, format)),
            Err(reason) => Err(KeyError::Parse {
                name,
                path: path.map(Path::to_path_buf),
                kind: KeyKind::Public,
                reason,
            }),
        }
    }

    /// The key's name: its file name, matched against `.SIGN.<TYPE>.<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying RSA key.
    pub fn rsa(&self) -> &RsaPublicKey {
        &self.rsa
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.rsa.size() * 8
    }

    /// The PEM form the key was read in ([`PublicKeyFormat::Spki`] for built keys).
    pub fn format(&self) -> PublicKeyFormat {
        self.format
    }

    /// Encodes as SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`, LF line ends), the form
    /// apk reads and `openssl rsa -pubout` writes.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.rsa
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode {
                name: self.name.clone(),
                kind: KeyKind::Public,
                reason: e.to_string(),
            })
    }
}

/// Reads a key file as text; a non-UTF-8 file cannot be PEM, so that is a parse error.
fn read_text(path: &Path, name: &str, kind: KeyKind) -> Result<String, KeyError> {
    let bytes = fs_err::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| KeyError::Parse {
        name: name.to_owned(),
        path: Some(path.to_path_buf()),
        kind,
        reason: "the file is not UTF-8 text, so not PEM".to_owned(),
    })
}

/// Trusted public keys by name, like apk's `/etc/apk/keys` (apk-format.md §2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: BTreeMap<String, PublicKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every regular file of `dir` (following symlinks, as apk's `openat` does) as a
    /// public key named after its file name.
    ///
    /// A file that is not a usable key does not fail the load, because apk does not fail
    /// either: it only ever opens the file a `.SIGN` entry names, so a stray README in the
    /// keys directory is harmless. Such files are returned as warnings for the caller to
    /// show, in file-name order. PKCS#1 public keys are among them
    /// ([`KeyError::Pkcs1PublicKey`]) and are left out, because apk could not use them and a
    /// keyring that trusted them would accept what apk rejects. Subdirectories are ignored.
    ///
    /// Errors only when `dir` itself cannot be listed.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<(Self, Vec<KeyError>), KeyError> {
        let dir = dir.as_ref();
        let read_dir_error = |source| KeyError::ReadDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in fs_err::read_dir(dir).map_err(read_dir_error)? {
            paths.push(entry.map_err(read_dir_error)?.path());
        }
        paths.sort();

        let mut keyring = Self::new();
        let mut warnings = Vec::new();
        for path in paths {
            match fs_err::metadata(&path) {
                Ok(meta) if !meta.is_file() => continue,
                Ok(_) => {}
                Err(source) => {
                    // A dangling symlink: apk would fail to open it too.
                    warnings.push(KeyError::Read { path, source });
                    continue;
                }
            }
            // abuild keeps the private key beside its `.pub` (and `abuild.conf`): a keys
            // directory that is also the abuild user directory is normal, not a warning.
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".rsa") || name == "abuild.conf" {
                continue;
            }
            match PublicKey::load(&path) {
                Ok(key) if key.format() == PublicKeyFormat::Pkcs1 => {
                    warnings.push(KeyError::Pkcs1PublicKey { path });
                }
                Ok(key) => {
                    keyring.insert(key);
                }
                Err(error) => warnings.push(error),
            }
        }
        Ok((keyring, warnings))
    }

    /// Adds a key under its name, returning the key it replaces.
    pub fn insert(&mut self, key: PublicKey) -> Option<PublicKey> {
        self.keys.insert(key.name.clone(), key)
    }

    /// The key a `.SIGN.<TYPE>.<name>` entry refers to.
    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.keys.get(name)
    }

    /// Key names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Extracts the address from a `$PACKAGER` value the way abuild-keygen does
/// (`${PACKAGER##*<}` then `${…%%>*}`: after the last `<`, up to the next `>`), and returns it
/// only if it contains `@`, abuild's test for "a valid email address".
///
/// `None` is where abuild falls back to `git config user.email`, then `$USER`; that lookup
/// belongs to the caller (libraries read no environment).
pub fn packager_email(packager: &str) -> Option<&str> {
    let address = extract_address(packager);
    address.contains('@').then_some(address)
}

/// abuild-keygen's `${PACKAGER##*<}` + `${…%%>*}`; a value without brackets is unchanged.
fn extract_address(packager: &str) -> &str {
    let after_lt = packager.rsplit_once('<').map_or(packager, |(_, rest)| rest);
    after_lt
        .split_once('>')
        .map_or(after_lt, |(address, _)| address)
}

/// Generates a key pair named like abuild-keygen: `<email>-<unix time in hex>`.
///
/// `email` goes through abuild's `Name <email>` extraction (see [`packager_email`]), so a
/// whole `$PACKAGER` value may be passed; a plain user name (abuild's `$USER` fallback) is
/// used as is. abuild does no further sanitising; we additionally reject names apk could not
/// use as a file name (see [`KeyError::InvalidName`]). The time is `printf %x`, so eight
/// lowercase hex digits for any date from 1978 to 2106. Returns the key, named
/// `<base>.rsa.pub`, and `<base>` (without `.rsa`). `bits` must be within
/// [`MIN_KEY_BITS`]..=[`MAX_KEY_BITS`]; abuild's default is [`DEFAULT_KEY_BITS`].
pub fn generate(email: &str, bits: usize, now_unix: u64) -> Result<(PrivateKey, String), KeyError> {
    if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
        return Err(KeyError::Generate {
            bits,
            reason: format!("the size must be between {MIN_KEY_BITS} and {MAX_KEY_BITS} bits"),
        });
    }
    let who = extract_address(email);
    if who.is_empty() {
        return Err(KeyError::InvalidName {
            name: email.to_owned(),
            reason: "no email address or user name to name the key after",
        });
    }
    let base = format!("{who}-{now_unix:x}");
    let name = format!("{base}.rsa.pub");
    check_name(&name)?;
    // thread_rng is a CSPRNG reseeded from the OS; it is much cheaper than OsRng for the
    // many candidate primes drawn here.
    let rsa =
        RsaPrivateKey::new(&mut rand::thread_rng(), bits).map_err(|e| KeyError::Generate {
            bits,
            reason: e.to_string(),
        })?;
    Ok((PrivateKey::with(rsa, name), base))
}

/// Writes `key` into `dir` (created if missing) as abuild-keygen lays it out: the private key
/// as `<name without .pub>` (PKCS#8 PEM, mode 0600) and the public key as `<name>` (SPKI PEM,
/// mode 0644). Returns `(private path, public path)`.
///
/// Never overwrites: an existing file at either path (even a dangling symlink) is
/// [`KeyError::Exists`] and nothing is written. Each file is written to a temporary file in
/// `dir`, synced, then linked into place without replacing anything, so a crash leaves either
/// no key or a complete one. If the public key cannot be placed, the private key just
/// written is removed again.
pub fn write_key_pair(
    dir: impl AsRef<Path>,
    key: &PrivateKey,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let dir = dir.as_ref();
    let private_name = key
        .name()
        .strip_suffix(".pub")
        .filter(|stem| !stem.is_empty())
        .ok_or_else(|| KeyError::InvalidName {
            name: key.name().to_owned(),
            reason: "a key pair is written as `<stem>` + `<stem>.pub`, so the name must end in `.pub`",
        })?;
    let private_path = dir.join(private_name);
    let public_path = dir.join(key.name());
    for path in [&private_path, &public_path] {
        if fs_err::symlink_metadata(path).is_ok() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let private_pem = key.to_pkcs8_pem()?;
    let public_pem = key.public_key().to_pem()?;
    fs_err::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;

    write_new_file(dir, &private_path, private_pem.as_bytes(), 0o600)?;
    if let Err(error) = write_new_file(dir, &public_path, public_pem.as_bytes(), 0o644) {
        // Best effort: the original error is the one worth reporting.
        let _ = fs_err::remove_file(&private_path);
        return Err(error);
    }
    // Make the new directory entries durable, not only the file contents.
    fs_err::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok((private_path, public_path))
}

/// Writes `bytes` to a new file at `path` with exactly `mode`, via a temp file in `dir`.
fn write_new_file(dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    // tempfile creates its file 0600, so private key bytes are never readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(".keygen-")
        .tempfile_in(dir)
        .map_err(write_error)?;
    // set_permissions is not subject to the umask, unlike the mode given at creation.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(write_error)?;
    tmp.write_all(bytes).map_err(write_error)?;
    tmp.as_file().sync_all().map_err(write_error)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_error(e.error)
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/apk-reference"
    );
    const KEY_NAME: &str = "fixture-test-65a1b2c3.rsa.pub";

    fn fixture(rel: &str) -> PathBuf {
        Path::new(FIXTURES).join(rel)
    }

    fn fixture_private() -> PrivateKey {
        PrivateKey::load(fixture("keys/fixture-test-65a1b2c3.rsa")).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs_err::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn fixture_private_key_is_pkcs8_and_reencodes_byte_for_byte() {
        let text = fs_err::read_to_string(fixture("keys/fixture-test-65a1b2c3.rsa")).unwrap();
        assert!(
            text.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "fixture is PKCS#8"
        );
        let key = fixture_private();
        assert_eq!(key.name(), KEY_NAME);
        assert_eq!(key.bits(), 2048);
        // Our PKCS#8 writer produces exactly what OpenSSL 3 wrote.
        assert_eq!(key.to_pkcs8_pem().unwrap().as_str(), text);
    }

    #[test]
    fn pkcs1_private_key_reads_as_the_same_key() {
        let key = fixture_private();
        let pkcs1 = key.rsa().to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let again = PrivateKey::from_pem(&pkcs1, KEY_NAME).unwrap();
        assert_eq!(again, key);
        // Leading text (as `openssl rsa -text` writes) and CRLF line ends are tolerated.
        let noisy = format!("Private-Key: (2048 bit)\n{}", pkcs1.replace('\n', "\r\n"));
        assert_eq!(PrivateKey::from_pem(&noisy, KEY_NAME).unwrap(), key);
    }

    #[test]
    fn public_key_matches_fixture_and_reencodes_byte_for_byte() {
        let text = fs_err::read_to_string(fixture("keys/fixture-test-65a1b2c3.rsa.pub")).unwrap();
        let public = PublicKey::load(fixture("keys/fixture-test-65a1b2c3.rsa.pub")).unwrap();
        assert_eq!(public.name(), KEY_NAME);
        assert_eq!(public.format(), PublicKeyFormat::Spki);
        assert_eq!(public, fixture_private().public_key());
        assert_eq!(public.to_pem().unwrap(), text);
    }

    #[test]
    fn pkcs1_public_key_is_readable_and_written_back_as_spki() {
        let public = fixture_private().public_key();
        let pkcs1 = public.rsa().to_pkcs1_pem(LineEnding::LF).unwrap();
        let read = PublicKey::from_pem(&pkcs1, KEY_NAME).unwrap();
        assert_eq!(read.format(), PublicKeyFormat::Pkcs1);
        assert_eq!(read, public);
        assert!(
            read.to_pem()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
    }

    #[test]
    fn wrong_or_unsupported_pem_is_a_parse_error_with_the_reason() {
        let public_text =
            fs_err::read_to_string(fixture("keys/fixture-test-65a1b2c3.rsa.pub")).unwrap();
        let err = PrivateKey::from_pem(&public_text, KEY_NAME).unwrap_err();
        assert!(
            matches!(&err, KeyError::Parse { kind: KeyKind::Private, reason, .. }
                if reason.contains("found `BEGIN PUBLIC KEY`")),
            "{err}"
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = PrivateKey::from_pem(encrypted, KEY_NAME).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
        let err = PublicKey::from_pem("hello\n", "README").unwrap_err();
        assert!(err.to_string().contains("no PEM block"), "{err}");
        let broken = "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            PublicKey::from_pem(broken, KEY_NAME),
            Err(KeyError::Parse {
                kind: KeyKind::Public,
                ..
            })
        ));
    }

    #[test]
    fn key_names_must_be_plain_file_names() {
        let public = fixture_private().public_key();
        for bad in ["", ".", "..", "a/b.rsa.pub", "a\nb"] {
            assert!(
                matches!(
                    PublicKey::from_rsa(public.rsa().clone(), bad),
                    Err(KeyError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_key_material() {
        let shown = format!("{:?}", fixture_private());
        assert_eq!(
            shown,
            "PrivateKey { name: \"fixture-test-65a1b2c3.rsa.pub\", bits: 2048, .. }"
        );
    }

    #[test]
    fn load_dir_reads_real_alpine_keys() {
        let (keyring, warnings) = Keyring::load_dir(fixture("alpine-3.20.3-db/keys")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(keyring.len(), 5);
        let name = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
        assert!(keyring.names().any(|n| n == name));
        assert_eq!(keyring.get(name).unwrap().bits(), 4096);
    }

    #[test]
    fn load_dir_reports_unusable_files_and_skips_directories() {
        let dir = tempfile::tempdir().unwrap();
        let public = fixture_private().public_key();
        fs_err::copy(
            fixture("keys/fixture-test-65a1b2c3.rsa.pub"),
            dir.path().join(KEY_NAME),
        )
        .unwrap();
        fs_err::write(dir.path().join("README"), "not a key\n").unwrap();
        fs_err::write(
            dir.path().join("old.rsa.pub"),
            public.rsa().to_pkcs1_pem(LineEnding::LF).unwrap(),
        )
        .unwrap();
        fs_err::create_dir(dir.path().join("subdir")).unwrap();
        std::os::unix::fs::symlink(KEY_NAME, dir.path().join("alias.rsa.pub")).unwrap();
        std::os::unix::fs::symlink("missing", dir.path().join("dangling.rsa.pub")).unwrap();

        let (keyring, warnings) = Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(
            keyring.names().collect::<Vec<_>>(),
            ["alias.rsa.pub", KEY_NAME]
        );
        assert_eq!(keyring.get(KEY_NAME).unwrap().rsa(), public.rsa());
        // Sorted by file name: README, dangling, old.
        assert!(
            matches!(&warnings[..], [
                KeyError::Parse { name, .. },
                KeyError::Read { .. },
                KeyError::Pkcs1PublicKey { path },
            ] if name == "README" && path.ends_with("old.rsa.pub")),
            "{warnings:?}"
        );
        assert!(matches!(
            Keyring::load_dir(dir.path().join("nope")),
            Err(KeyError::ReadDir { .. })
        ));
    }

    #[test]
    fn packager_email_follows_abuild() {
        assert_eq!(
            packager_email("Alice Example <alice@example.org>"),
            Some("alice@example.org")
        );
        assert_eq!(
            packager_email("alice@example.org"),
            Some("alice@example.org")
        );
        assert_eq!(packager_email("A <b> <c@d.e>"), Some("c@d.e"));
        assert_eq!(packager_email("Alice Example"), None);
        assert_eq!(packager_email(""), None);
    }

    #[test]
    fn generate_names_writes_and_refuses_to_overwrite() {
        let now = 0x5f2b_1c3e;
        let (key, base) = generate("Alice <alice@example.org>", 1024, now).unwrap();
        assert_eq!(base, "alice@example.org-5f2b1c3e");
        assert_eq!(key.name(), "alice@example.org-5f2b1c3e.rsa.pub");
        assert_eq!(key.bits(), 1024);

        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("abuild");
        let (private_path, public_path) = write_key_pair(&keys, &key).unwrap();
        assert_eq!(private_path, keys.join("alice@example.org-5f2b1c3e.rsa"));
        assert_eq!(public_path, keys.join("alice@example.org-5f2b1c3e.rsa.pub"));
        assert_eq!(mode(&private_path), 0o600);
        assert_eq!(mode(&public_path), 0o644);
        let loaded = PrivateKey::load(&private_path).unwrap();
        assert_eq!(loaded, key);
        assert_eq!(PublicKey::load(&public_path).unwrap(), key.public_key());
        // Only the two keys: no temp files left behind.
        assert_eq!(fs_err::read_dir(&keys).unwrap().count(), 2);

        let private_before = fs_err::read(&private_path).unwrap();
        let (other, _) = generate("alice@example.org", 1024, now).unwrap();
        assert!(matches!(
            write_key_pair(&keys, &other),
            Err(KeyError::Exists { path }) if path == private_path
        ));
        assert_eq!(fs_err::read(&private_path).unwrap(), private_before);
        // A lone public key also blocks, and nothing half-written remains.
        fs_err::remove_file(&private_path).unwrap();
        assert!(matches!(
            write_key_pair(&keys, &other),
            Err(KeyError::Exists { path }) if path == public_path
        ));
        assert_eq!(fs_err::read_dir(&keys).unwrap().count(), 1);
    }

    #[test]
    fn generate_uses_a_user_name_and_rejects_bad_input() {
        let (key, base) = generate("builder", 1024, 0x6165_ee59).unwrap();
        assert_eq!(base, "builder-6165ee59");
        assert_eq!(key.name(), "builder-6165ee59.rsa.pub");
        assert!(matches!(
            generate("alice", 512, 0),
            Err(KeyError::Generate { bits: 512, .. })
        ));
        assert!(matches!(
            generate("", 1024, 0),
            Err(KeyError::InvalidName { .. })
        ));
        assert!(matches!(
            generate("../evil", 1024, 0),
            Err(KeyError::InvalidName { .. })
        ));
    }
}
