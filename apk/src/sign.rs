//! apk v2 signatures: `.SIGN.<TYPE>.<keyname>` entry names, signing and verifying.
//!
//! See `shared/docs/apk-format.md` §2.1 (entry names and types), §2.2 (which bytes are
//! signed: the whole compressed control member of a package, or everything after the
//! signature member of an index) and §2.3 (the algorithm). A signature is RSA PKCS#1 v1.5 over
//! a SHA-1, SHA-256 or SHA-512 digest with the standard DigestInfo prefix, exactly what
//! `openssl dgst -sha1 -sign` writes for abuild-sign. PKCS#1 v1.5 is deterministic, so the
//! same key and bytes always give the same signature.
//!
//! The RSA work goes to aws-lc-rs (already in the tree through rustls): every verification,
//! and signing with SHA-256 and SHA-512, several times faster than the pure-Rust `rsa`
//! crate, which matters when an index of thousands of packages is verified. aws-lc-rs only
//! *verifies* PKCS#1 v1.5 with SHA-1 (`RSA_PKCS1_*_SHA1_FOR_LEGACY_USE_ONLY`), so
//! `.SIGN.RSA.` signatures are still made by `rsa`, as are operations on keys aws-lc-rs
//! refuses (over 8192 bits, or too small to import). Both give the same bytes: PKCS#1 v1.5
//! is deterministic.
//!
//! The rsa crate has an unfixed timing side channel (RUSTSEC-2023-0071, "Marvin"); signing
//! with it always uses blinding (`sign_with_rng`), which masks the private-key operation, and
//! signing keys are only used locally or behind authentication (see `shared/docs/crates.md`).
//! Verification uses only the public key and is not affected.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::signature::{ParsedPublicKey, RsaKeyPair, RsaPublicKeyComponents};

use digest::Digest as _;
use rsa::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts as _;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::keys::{PrivateKey, PublicKey};

/// The signature types apk v2 knows and we support (apk-format.md §2.1).
///
/// apk also knows `DSA`, which nothing has produced for a decade; it is treated like any
/// unknown type (e.g. `ED25519`): the entry is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureType {
    /// `.SIGN.RSA.`: SHA-1. abuild-sign's default and what Alpine's own packages use.
    #[default]
    Rsa,
    /// `.SIGN.RSA256.`: SHA-256. abuild-sign `-t RSA256`, melange's default.
    Rsa256,
    /// `.SIGN.RSA512.`: SHA-512. Accepted by apk; no Alpine tool writes it.
    Rsa512,
}

impl SignatureType {
    /// Every supported type, longest name first (the order prefixes must be tried in).
    pub const ALL: [SignatureType; 3] = [
        SignatureType::Rsa512,
        SignatureType::Rsa256,
        SignatureType::Rsa,
    ];

    /// The `<TYPE>` token of the entry name: `RSA`, `RSA256` or `RSA512`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureType::Rsa => "RSA",
            SignatureType::Rsa256 => "RSA256",
            SignatureType::Rsa512 => "RSA512",
        }
    }

    /// The entry name up to the key name: `.SIGN.RSA.`, `.SIGN.RSA256.` or `.SIGN.RSA512.`.
    pub fn entry_prefix(self) -> &'static str {
        match self {
            SignatureType::Rsa => ".SIGN.RSA.",
            SignatureType::Rsa256 => ".SIGN.RSA256.",
            SignatureType::Rsa512 => ".SIGN.RSA512.",
        }
    }

    /// The full tar entry name for a signature by the key named `key_name`.
    pub fn entry_name(self, key_name: &str) -> String {
        format!("{}{key_name}", self.entry_prefix())
    }

    /// Splits a tar entry name like `.SIGN.RSA256.alice@example.org-5f2b1c3e.rsa.pub` into
    /// its type and key name.
    ///
    /// The whole `<TYPE>.` token is compared, so `RSA256.` never reads as `RSA` with a key
    /// named `256.…`. Returns `None` for names that are not signatures, for types we do not
    /// support (`DSA`, `ED25519`, …), and for key names apk could not open as a file in its
    /// keys directory (empty, `.`, `..`, or containing `/`): apk skips all of those entries.
    pub fn parse_entry_name(name: &str) -> Option<(SignatureType, &str)> {
        let rest = name.strip_prefix(".SIGN.")?;
        let (ty, key_name) = Self::ALL.into_iter().find_map(|ty| {
            rest.strip_prefix(ty.as_str())
                .and_then(|r| r.strip_prefix('.'))
                .map(|key_name| (ty, key_name))
        })?;
        let usable =
            !key_name.is_empty() && key_name != "." && key_name != ".." && !key_name.contains('/');
        usable.then_some((ty, key_name))
    }

    /// The digest's name, for messages: `SHA-1`, `SHA-256` or `SHA-512`.
    pub fn digest_name(self) -> &'static str {
        match self {
            SignatureType::Rsa => "SHA-1",
            SignatureType::Rsa256 => "SHA-256",
            SignatureType::Rsa512 => "SHA-512",
        }
    }

    fn index(self) -> usize {
        match self {
            SignatureType::Rsa => 0,
            SignatureType::Rsa256 => 1,
            SignatureType::Rsa512 => 2,
        }
    }

    /// aws-lc-rs's verification parameters and digest for this type (keys of 1024 to 8192
    /// bits: the `rsa` crate takes the rest).
    fn aws_lc(
        self,
    ) -> (
        &'static aws_lc_rs::signature::RsaParameters,
        &'static aws_lc_rs::digest::Algorithm,
    ) {
        use aws_lc_rs::{digest, signature};
        match self {
            SignatureType::Rsa => (
                &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ),
            SignatureType::Rsa256 => (
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                &digest::SHA256,
            ),
            SignatureType::Rsa512 => (
                &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                &digest::SHA512,
            ),
        }
    }

    /// The PKCS#1 v1.5 scheme with this type's DigestInfo prefix.
    fn padding(self) -> Pkcs1v15Sign {
        match self {
            SignatureType::Rsa => Pkcs1v15Sign::new::<Sha1>(),
            SignatureType::Rsa256 => Pkcs1v15Sign::new::<Sha256>(),
            SignatureType::Rsa512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }
}

impl fmt::Display for SignatureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the command-line spelling `rsa`, `rsa256` or `rsa512`, in any case (so abuild-sign's
/// `-t RSA256` works too).
impl FromStr for SignatureType {
    type Err = SignError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|ty| ty.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| SignError::UnknownType {
                value: value.to_owned(),
            })
    }
}

/// Errors signing and verifying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A signature type name that is not `rsa`, `rsa256` or `rsa512`.
    #[error("unknown signature type `{value}`; expected rsa, rsa256 or rsa512")]
    UnknownType {
        /// The rejected value.
        value: String,
    },
    /// The RSA operation failed (for example a key too small for the SHA-512 DigestInfo).
    #[error("signing with key `{key}` ({ty}, {}) failed", ty.digest_name())]
    Sign {
        /// The signing key's name.
        key: String,
        /// The requested signature type.
        ty: SignatureType,
        /// The rsa crate's error.
        #[source]
        source: rsa::Error,
    },
    /// The signature is not as long as the key's modulus, so it was made by another key or
    /// was truncated.
    #[error(
        "{ty} signature for key `{key}` is {actual} bytes, but that key's signatures are \
         {expected} bytes; it was made with another key or is truncated"
    )]
    WrongLength {
        /// The verifying key's name.
        key: String,
        /// The signature type.
        ty: SignatureType,
        /// The key's modulus length in bytes.
        expected: usize,
        /// The signature's length in bytes.
        actual: usize,
    },
    /// The signature does not match the signed bytes under this key.
    #[error(
        "{ty} signature does not verify with key `{key}`: the signed bytes or the signature \
         were changed, or another key with the same name signed them"
    )]
    Mismatch {
        /// The verifying key's name.
        key: String,
        /// The signature type.
        ty: SignatureType,
    },
}

/// Incremental hashing of a signed unit with the digest a [`SignatureType`] uses.
///
/// Implements [`io::Write`], so a large index can be `io::copy`'d through it.
#[derive(Clone)]
pub struct SignatureHasher {
    ty: SignatureType,
    state: HasherState,
}

#[derive(Clone)]
enum HasherState {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

impl fmt::Debug for SignatureHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHasher")
            .field("ty", &self.ty)
            .finish_non_exhaustive()
    }
}

impl SignatureHasher {
    /// Starts hashing for a signature of type `ty`.
    pub fn new(ty: SignatureType) -> Self {
        let state = match ty {
            SignatureType::Rsa => HasherState::Sha1(Sha1::new()),
            SignatureType::Rsa256 => HasherState::Sha256(Sha256::new()),
            SignatureType::Rsa512 => HasherState::Sha512(Sha512::new()),
        };
        Self { ty, state }
    }

    /// The signature type this hasher is for.
    pub fn signature_type(&self) -> SignatureType {
        self.ty
    }

    /// Feeds more of the signed bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HasherState::Sha1(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
        }
    }

    /// Finishes the digest.
    pub fn finalize(self) -> MessageDigest {
        let bytes = match self.state {
            HasherState::Sha1(h) => h.finalize().to_vec(),
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha512(h) => h.finalize().to_vec(),
        };
        MessageDigest { ty: self.ty, bytes }
    }
}

impl io::Write for SignatureHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The digest of a signed unit, tagged with the signature type it was computed for, so it
/// cannot be signed or verified under the wrong DigestInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDigest {
    ty: SignatureType,
    bytes: Vec<u8>,
}

impl MessageDigest {
    /// Hashes `message` in one go.
    pub fn of(ty: SignatureType, message: &[u8]) -> Self {
        let mut hasher = SignatureHasher::new(ty);
        hasher.update(message);
        hasher.finalize()
    }

    /// The signature type (and so the hash function) of this digest.
    pub fn signature_type(&self) -> SignatureType {
        self.ty
    }

    /// The raw digest (20, 32 or 64 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Something that can make apk signatures: the seam between building a package or index and
/// where the private key lives (a key file now; a remote signer could implement it later).
pub trait Signer {
    /// The name written into `.SIGN.<TYPE>.<name>`: the public key's file name in the
    /// verifier's keys directory.
    fn key_name(&self) -> &str;

    /// Signs a digest computed with [`SignatureHasher`] (type taken from the digest).
    fn sign_digest(&self, digest: &MessageDigest) -> Result<Vec<u8>, SignError>;

    /// Signs `message`, the exact signed unit (apk-format.md §2.2), with signature type `ty`.
    fn sign(&self, ty: SignatureType, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_digest(&MessageDigest::of(ty, message))
    }
}

/// The aws-lc-rs key pair of a [`PrivateKey`], imported on first use; `None` inside when
/// aws-lc-rs refuses the key (then the `rsa` crate signs).
#[derive(Clone, Default)]
pub(crate) struct FastSigner(Arc<OnceLock<Option<RsaKeyPair>>>);

impl fmt::Debug for FastSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FastSigner")
    }
}

impl FastSigner {
    fn get(&self, key: &PrivateKey) -> Option<&RsaKeyPair> {
        self.0
            .get_or_init(|| {
                use rsa::pkcs8::EncodePrivateKey as _;
                let der = key.rsa().to_pkcs8_der().ok()?;
                RsaKeyPair::from_pkcs8(der.as_bytes()).ok()
            })
            .as_ref()
    }
}

/// The aws-lc-rs forms of a [`PublicKey`], one per signature type, parsed on first use;
/// `None` inside for keys aws-lc-rs does not take (then the `rsa` crate verifies).
#[derive(Clone, Default)]
pub(crate) struct FastVerifier(Arc<[OnceLock<Option<ParsedPublicKey>>; 3]>);

impl fmt::Debug for FastVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FastVerifier")
    }
}

impl FastVerifier {
    fn get(&self, key: &PublicKey, ty: SignatureType) -> Option<&ParsedPublicKey> {
        self.0[ty.index()]
            .get_or_init(|| {
                if !(1024..=8192).contains(&key.bits()) {
                    return None;
                }
                let components = RsaPublicKeyComponents {
                    n: key.rsa().n().to_bytes_be(),
                    e: key.rsa().e().to_bytes_be(),
                };
                components.to_parsed_public_key(ty.aws_lc().0).ok()
            })
            .as_ref()
    }
}

impl Signer for PrivateKey {
    fn key_name(&self) -> &str {
        self.name()
    }

    fn sign_digest(&self, digest: &MessageDigest) -> Result<Vec<u8>, SignError> {
        let ty = digest.signature_type();
        if ty != SignatureType::Rsa
            && let Some(pair) = self.fast().get(self)
        {
            let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding = match ty {
                SignatureType::Rsa512 => &aws_lc_rs::signature::RSA_PKCS1_SHA512,
                _ => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            };
            let imported =
                aws_lc_rs::digest::Digest::import_less_safe(digest.as_bytes(), ty.aws_lc().1);
            let mut signature = vec![0; pair.public_modulus_len()];
            if let Ok(d) = imported
                && pair.sign_digest(encoding, &d, &mut signature).is_ok()
            {
                return Ok(signature);
            }
        }
        // Blinded (RUSTSEC-2023-0071); the output is still deterministic, because PKCS#1
        // v1.5 padding has no random part and blinding is undone before returning.
        self.rsa()
            .sign_with_rng(&mut rand::thread_rng(), ty.padding(), digest.as_bytes())
            .map_err(|source| SignError::Sign {
                key: self.name().to_owned(),
                ty,
                source,
            })
    }
}

/// Verifies that `signature` is `key`'s signature of type `ty` over `message`, the exact
/// signed unit (apk-format.md §2.2).
pub fn verify(
    key: &PublicKey,
    ty: SignatureType,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignError> {
    verify_digest(key, &MessageDigest::of(ty, message), signature)
}

/// Verifies a signature against a digest from [`SignatureHasher`], for signed units that are
/// streamed rather than held in memory.
pub fn verify_digest(
    key: &PublicKey,
    digest: &MessageDigest,
    signature: &[u8],
) -> Result<(), SignError> {
    let ty = digest.signature_type();
    let expected = key.rsa().size();
    if signature.len() != expected {
        return Err(SignError::WrongLength {
            key: key.name().to_owned(),
            ty,
            expected,
            actual: signature.len(),
        });
    }
    let mismatch = || SignError::Mismatch {
        key: key.name().to_owned(),
        ty,
    };
    if let Some(parsed) = key.fast().get(key, ty) {
        let d = aws_lc_rs::digest::Digest::import_less_safe(digest.as_bytes(), ty.aws_lc().1)
            .map_err(|_| mismatch())?;
        return parsed
            .verify_digest_sig(&d, signature)
            .map_err(|_| mismatch());
    }
    key.rsa()
        .verify(ty.padding(), digest.as_bytes(), signature)
        .map_err(|_| mismatch())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::path::Path;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/apk-reference"
    );
    const KEY_NAME: &str = "fixture-test-65a1b2c3.rsa.pub";

    fn fixture_bytes(rel: &str) -> Vec<u8> {
        fs_err::read(Path::new(FIXTURES).join(rel)).unwrap()
    }

    fn private_key() -> PrivateKey {
        PrivateKey::load(Path::new(FIXTURES).join("keys/fixture-test-65a1b2c3.rsa")).unwrap()
    }

    fn public_key() -> PublicKey {
        PublicKey::load(Path::new(FIXTURES).join("keys/fixture-test-65a1b2c3.rsa.pub")).unwrap()
    }

    /// Length of the first gzip member of `bytes`: `bufread::GzDecoder` over a slice stops at
    /// the member's trailer and leaves the rest of the slice unread.
    fn first_member_len(bytes: &[u8]) -> usize {
        let mut decoder = flate2::bufread::GzDecoder::new(bytes);
        std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
        bytes.len() - decoder.into_inner().len()
    }

    /// Inflates the signature member and returns the offset, name and data of its one
    /// `.SIGN.*` entry, skipping pax headers.
    fn signature_entry(member: &[u8]) -> (usize, String, Vec<u8>) {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(member)
            .read_to_end(&mut tar)
            .unwrap();
        let mut offset = 0;
        while offset + 512 <= tar.len() {
            let header = &tar[offset..offset + 512];
            let name = String::from_utf8(
                header[..100]
                    .iter()
                    .take_while(|&&b| b != 0)
                    .copied()
                    .collect(),
            )
            .unwrap();
            let size_field = std::str::from_utf8(&header[124..136]).unwrap();
            let size = usize::from_str_radix(size_field.trim_matches(['\0', ' ']), 8).unwrap_or(0);
            let data = offset + 512;
            if header[156] == b'0' && name.starts_with(".SIGN.") {
                return (data, name, tar[data..data + size].to_vec());
            }
            offset = data + size.div_ceil(512) * 512;
        }
        panic!("no .SIGN entry in the signature member");
    }

    #[test]
    fn entry_names_round_trip_and_do_not_confuse_prefixes() {
        for ty in SignatureType::ALL {
            let name = ty.entry_name(KEY_NAME);
            assert_eq!(SignatureType::parse_entry_name(&name), Some((ty, KEY_NAME)));
        }
        assert_eq!(
            SignatureType::parse_entry_name(".SIGN.RSA256.k.rsa.pub"),
            Some((SignatureType::Rsa256, "k.rsa.pub"))
        );
        // A key literally named "256.k" under plain RSA is still RSA.
        assert_eq!(
            SignatureType::parse_entry_name(".SIGN.RSA.256.k"),
            Some((SignatureType::Rsa, "256.k"))
        );
        for skipped in [
            ".SIGN.DSA.k.rsa.pub",
            ".SIGN.ED25519.k.pub",
            ".SIGN.RSA1024.k",
            ".SIGN.RSAk",
            ".SIGN.RSA.",
            ".SIGN.RSA./etc/passwd",
            ".SIGN.RSA...",
            ".PKGINFO",
            "SIGN.RSA.k",
        ] {
            assert_eq!(SignatureType::parse_entry_name(skipped), None, "{skipped}");
        }
    }

    #[test]
    fn type_parses_from_cli_values() {
        assert_eq!("rsa".parse::<SignatureType>().unwrap(), SignatureType::Rsa);
        assert_eq!(
            "rsa256".parse::<SignatureType>().unwrap(),
            SignatureType::Rsa256
        );
        assert_eq!(
            "RSA512".parse::<SignatureType>().unwrap(),
            SignatureType::Rsa512
        );
        assert!(matches!(
            "ed25519".parse::<SignatureType>(),
            Err(SignError::UnknownType { value }) if value == "ed25519"
        ));
        assert_eq!(SignatureType::default().to_string(), "RSA");
    }

    #[test]
    fn sign_and_verify_each_type_and_detect_tampering() {
        let key = private_key();
        let public = public_key();
        let message = b"control.tar.gz bytes".to_vec();
        for ty in SignatureType::ALL {
            let signature = key.sign(ty, &message).unwrap();
            assert_eq!(signature.len(), 256);
            // PKCS#1 v1.5 is deterministic even with blinding.
            assert_eq!(key.sign(ty, &message).unwrap(), signature);
            verify(&public, ty, &message, &signature).unwrap();

            let mut bad_message = message.clone();
            bad_message[3] ^= 0x01;
            assert!(matches!(
                verify(&public, ty, &bad_message, &signature),
                Err(SignError::Mismatch { key, ty: t }) if key == KEY_NAME && t == ty
            ));
            let mut bad_signature = signature.clone();
            bad_signature[100] ^= 0x80;
            assert!(matches!(
                verify(&public, ty, &message, &bad_signature),
                Err(SignError::Mismatch { .. })
            ));
            assert!(matches!(
                verify(&public, ty, &message, &signature[1..]),
                Err(SignError::WrongLength {
                    expected: 256,
                    actual: 255,
                    ..
                })
            ));
        }
        // The type is part of what is signed: a SHA-1 signature is not a SHA-256 one.
        let signature = key.sign(SignatureType::Rsa, &message).unwrap();
        assert!(verify(&public, SignatureType::Rsa256, &message, &signature).is_err());
    }

    #[test]
    fn aws_lc_and_the_rsa_crate_agree_byte_for_byte() {
        let key = private_key();
        let public = public_key();
        let message = b"control member";
        for ty in SignatureType::ALL {
            let digest = MessageDigest::of(ty, message);
            let ours = key.sign(ty, message).unwrap();
            let by_rsa = key
                .rsa()
                .sign_with_rng(&mut rand::thread_rng(), ty.padding(), digest.as_bytes())
                .unwrap();
            assert_eq!(ours, by_rsa, "{ty}");
            public
                .rsa()
                .verify(ty.padding(), digest.as_bytes(), &ours)
                .unwrap();
            verify(&public, ty, message, &by_rsa).unwrap();
            assert!(
                public.fast().get(&public, ty).is_some(),
                "{ty} verified by aws-lc-rs"
            );
        }
        assert!(
            key.fast().get(&key).is_some(),
            "SHA-256/512 signed by aws-lc-rs"
        );
    }

    #[test]
    fn small_keys_fall_back_to_the_rsa_crate() {
        let (key, _) = crate::keys::generate("small@test.invalid", 1024, 0).unwrap();
        let public = key.public_key();
        for ty in SignatureType::ALL {
            let signature = key.sign(ty, b"m").unwrap();
            verify(&public, ty, b"m", &signature).unwrap();
            assert!(verify(&public, ty, b"n", &signature).is_err());
        }
    }

    #[test]
    fn pkcs1_form_of_the_key_signs_identically() {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let key = private_key();
        let pkcs1 = key.rsa().to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        let again = PrivateKey::from_pem(&pkcs1, KEY_NAME).unwrap();
        let message = b"hello";
        assert_eq!(
            again.sign(SignatureType::Rsa, message).unwrap(),
            key.sign(SignatureType::Rsa, message).unwrap()
        );
    }

    #[test]
    fn streaming_digest_matches_one_shot() {
        let message: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = SignatureHasher::new(SignatureType::Rsa256);
        std::io::copy(&mut &message[..], &mut hasher).unwrap();
        let digest = hasher.finalize();
        assert_eq!(digest, MessageDigest::of(SignatureType::Rsa256, &message));
        assert_eq!(digest.as_bytes().len(), 32);
        let signature = private_key().sign_digest(&digest).unwrap();
        verify(&public_key(), SignatureType::Rsa256, &message, &signature).unwrap();
        verify_digest(&public_key(), &digest, &signature).unwrap();
    }

    #[test]
    fn verifies_and_reproduces_the_fixture_package_signature() {
        let apk = fixture_bytes("repo/x86_64/hello-1.0-r0.apk");
        let boundary = first_member_len(&apk);
        assert_eq!(boundary, 442);
        let (offset, name, signature) = signature_entry(&apk[..boundary]);
        assert_eq!(
            offset, 1536,
            "after the pax header pair and the ustar header"
        );
        assert_eq!(signature.len(), 256);
        let (ty, key_name) = SignatureType::parse_entry_name(&name).unwrap();
        assert_eq!((ty, key_name), (SignatureType::Rsa, KEY_NAME));

        // The signed unit is exactly the control member.
        let control_len = first_member_len(&apk[boundary..]);
        let control = &apk[boundary..boundary + control_len];
        assert_eq!(boundary + control_len, 913);
        verify(&public_key(), ty, control, &signature).unwrap();
        // Deterministic PKCS#1 v1.5: we produce abuild's bytes exactly.
        assert_eq!(private_key().sign(ty, control).unwrap(), signature);
        // Signing more than the control member (e.g. including data) does not verify.
        assert!(verify(&public_key(), ty, &apk[boundary..], &signature).is_err());
    }

    #[test]
    fn verifies_and_reproduces_the_fixture_index_signatures() {
        for (rel, expected_ty) in [
            ("repo/x86_64/APKINDEX.tar.gz", SignatureType::Rsa),
            ("repo-rsa256/x86_64/APKINDEX.tar.gz", SignatureType::Rsa256),
        ] {
            let index = fixture_bytes(rel);
            let boundary = first_member_len(&index);
            let (_, name, signature) = signature_entry(&index[..boundary]);
            let (ty, key_name) = SignatureType::parse_entry_name(&name).unwrap();
            assert_eq!((ty, key_name), (expected_ty, KEY_NAME), "{rel}");
            let signed = &index[boundary..];
            verify(&public_key(), ty, signed, &signature).unwrap();
            assert_eq!(private_key().sign(ty, signed).unwrap(), signature, "{rel}");
        }
    }
}
