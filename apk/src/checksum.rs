//! Package identities and file digests in apk's text forms (apk-format.md §3.3, §4.1).
//!
//! apk writes SHA-1 digests as `Q1` + standard base64 (`C:` identities, `Z:` file
//! digests) and reads `X1` + hex too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A SHA-1 digest as apk prints it: `Q1` + base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(pub [u8; 20]);

impl Checksum {
    /// SHA-1 of `data`.
    pub fn sha1_of(data: &[u8]) -> Self {
        use sha1::Digest as _;
        Self(sha1::Sha1::digest(data).into())
    }

    /// Parses `Q1<base64>` or `X1<hex>`; `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = [0u8; 20];
        if let Some(b64) = text.strip_prefix("Q1") {
            let bytes = STANDARD.decode(b64).ok()?;
            out.copy_from_slice(bytes.get(..20).filter(|_| bytes.len() == 20)?);
        } else if let Some(hex_text) = text.strip_prefix("X1") {
            hex::decode_to_slice(hex_text, &mut out).ok()?;
        } else {
            return None;
        }
        Some(Self(out))
    }

    /// Lowercase hex, as in pax `APK-TOOLS.checksum.SHA1` records.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Q1{}", STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checksum({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q1_round_trip() {
        let c = Checksum::parse("Q1UYYMDeBTUd7EmTYCzDHrazip1dk=").unwrap();
        assert_eq!(c.to_string(), "Q1UYYMDeBTUd7EmTYCzDHrazip1dk=");
        let x = Checksum::parse(&format!("X1{}", c.to_hex())).unwrap();
        assert_eq!(x, c);
        assert!(Checksum::parse("Q1short").is_none());
        assert!(Checksum::parse("0123").is_none());
    }

    #[test]
    fn symlink_digest_matches_fixture() {
        // The fixture's `hello-link -> hello` carries this pax checksum.
        assert_eq!(
            Checksum::sha1_of(b"hello").to_hex(),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
    }
}
