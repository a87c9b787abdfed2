//! The signature member shared by packages and indexes (apk-format.md §2.1–§2.6).
//!
//! A signature member is a cut tar of `.SIGN.<TYPE>.<keyname>` files, gzipped, prepended
//! to the signed bytes (the control member of a package, the whole index member of an
//! APKINDEX). apk uses the *first* entry whose type it knows and whose key it has, and
//! never falls back to a later one, so we verify the same way.

use std::io::Cursor;

use crate::gzip;
use crate::keys::Keyring;
use crate::sign::{SignatureType, Signer};
use crate::tar::{self, EntryType, Flavor, Header};

/// One `.SIGN.*` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureEntry {
    /// Full entry name (`.SIGN.RSA.alice@example.org-5f2b1c3e.rsa.pub`).
    pub name: String,
    /// Known type, or `None` for types apk skips (DSA, ED25519, …).
    pub kind: Option<SignatureType>,
    /// Key file name the signature refers to.
    pub key_name: String,
    /// Raw signature bytes.
    pub signature: Vec<u8>,
}

impl SignatureEntry {
    /// Interprets an entry name and its content.
    pub fn new(name: &str, signature: Vec<u8>) -> Self {
        let (kind, key_name) = match SignatureType::parse_entry_name(name) {
            Some((kind, key)) => (Some(kind), key.to_string()),
            None => (
                None,
                name.strip_prefix(".SIGN.")
                    .and_then(|rest| rest.split_once('.'))
                    .map(|(_, key)| key.to_string())
                    .unwrap_or_default(),
            ),
        };
        Self {
            name: name.to_string(),
            kind,
            key_name,
            signature,
        }
    }
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// No signature entries at all.
    #[error("not signed")]
    Unsigned,
    /// No entry of a known type with a key we have.
    #[error("UNTRUSTED signature: signed by {keys:?}, none of which is in the keys directory")]
    Untrusted {
        /// Key names from the entries.
        keys: Vec<String>,
    },
    /// The chosen entry does not verify.
    #[error("BAD signature by `{key}` ({kind})")]
    Bad {
        /// Key name.
        key: String,
        /// Type.
        kind: String,
    },
}

/// Checks `message` against the entries as apk does; returns the entry that verified.
pub fn verify<'a>(
    entries: &'a [SignatureEntry],
    message: &[u8],
    keys: &Keyring,
) -> Result<&'a SignatureEntry, TrustError> {
    if entries.is_empty() {
        return Err(TrustError::Unsigned);
    }
    let chosen = entries
        .iter()
        .find_map(|e| Some((e, e.kind?, keys.get(&e.key_name)?)));
    let Some((entry, kind, key)) = chosen else {
        return Err(TrustError::Untrusted {
            keys: entries.iter().map(|e| e.key_name.clone()).collect(),
        });
    };
    crate::sign::verify(key, kind, message, &entry.signature).map_err(|_| TrustError::Bad {
        key: entry.key_name.clone(),
        kind: entry
            .name
            .trim_end_matches(entry.key_name.as_str())
            .to_string(),
    })?;
    Ok(entry)
}

/// Signs `message` with every signer (in order, so put the most widely trusted first) and
/// returns the gzipped, cut signature member.
pub fn signature_member(
    signers: &[(&dyn Signer, SignatureType)],
    message: &[u8],
    source_date: u64,
) -> Result<Vec<u8>, crate::sign::SignError> {
    let mut tar_bytes = Vec::new();
    for (signer, kind) in signers {
        let signature = signer.sign(*kind, message)?;
        let mut header = Header::file(
            format!("{}{}", kind.entry_prefix(), signer.key_name()),
            0o644,
            signature.len() as u64,
            source_date,
        );
        header.kind = EntryType::File;
        // Writing to a Vec cannot fail and every field fits (long key names go to pax).
        tar::write_entry(
            &mut tar_bytes,
            Flavor::Pax,
            &header,
            &mut Cursor::new(signature),
        )
        .expect("signature tar entry");
    }
    Ok(gzip::compress(&tar_bytes, gzip::DEFAULT_LEVEL))
}
