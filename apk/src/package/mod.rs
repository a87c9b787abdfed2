//! apk v2 packages: three gzip members, signature + control + data (apk-format.md §1, §2).
//!
//! [`write`] builds a package from a directory tree the way abuild does; [`read`] takes one
//! apart, keeping the exact compressed control bytes (what the signature and the index `C:`
//! cover) and hashing the data member as it streams (what `datahash` covers).

pub mod extract;
pub mod read;
pub mod tree;
pub mod write;

use std::path::PathBuf;

pub use extract::extract;
pub use read::{DataVisitor, FileRecord, Package, ReadLimits, SignatureEntry};
pub use tree::{TreeEntry, TreeOptions, scan_tree};
pub use write::{PackageWriter, Script, WrittenPackage};

use crate::pkginfo::PkgInfoError;
use crate::tar::TarError;

/// The three parts of a package, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// The `.SIGN.*` member.
    Signature,
    /// `.PKGINFO` and scripts.
    Control,
    /// The files.
    Data,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Signature => "signature",
            Self::Control => "control",
            Self::Data => "data",
        })
    }
}

/// The control-member script names apk runs (apk-format.md §1.9).
pub const SCRIPT_NAMES: &[&str] = &[
    ".pre-install",
    ".post-install",
    ".pre-upgrade",
    ".post-upgrade",
    ".pre-deinstall",
    ".post-deinstall",
    ".trigger",
];

/// Errors building, reading or verifying a package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Context: which file the error is about.
    #[error("`{path}`: {error}")]
    At {
        /// The package file or tree.
        path: PathBuf,
        /// What went wrong.
        // Not `source`: the message already shows it, and a source would print twice
        // in a `{:#}` chain.
        error: Box<PackageError>,
    },
    /// A gzip member is corrupt or truncated.
    #[error("{member} member at byte {offset}: {source}")]
    Gzip {
        /// Which member.
        member: Member,
        /// Offset of the member in the file.
        offset: u64,
        /// Decoder error.
        #[source]
        source: std::io::Error,
    },
    /// A gzip member's header is not the canonical `gzip -n` one.
    #[error(
        "{member} member at byte {offset}: gzip header carries {field} (expected a plain `gzip -n` header)"
    )]
    GzipHeader {
        /// Which member.
        member: Member,
        /// Offset of the member in the file.
        offset: u64,
        /// The unexpected field.
        field: &'static str,
    },
    /// The tar inside a member is malformed.
    #[error("{member} member: {source}")]
    Tar {
        /// Which member.
        member: Member,
        /// Tar error.
        #[source]
        source: TarError,
    },
    /// `.PKGINFO` cannot be read.
    #[error(transparent)]
    PkgInfo(#[from] PkgInfoError),
    /// The stream is not an apk package.
    #[error("not an apk package: {0}")]
    Format(String),
    /// Something exceeds a configured limit (decompression bombs, oversized members).
    #[error("{what} exceeds the limit of {limit} bytes; {hint}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
        /// How to proceed.
        hint: &'static str,
    },
    /// No signature at all.
    #[error("package is not signed; sign it with `apkbuild sign --key KEY FILE`")]
    Unsigned,
    /// Signed, but by no key in the keys directory.
    #[error("UNTRUSTED signature: signed by {keys:?}, none of which is in the keys directory")]
    Untrusted {
        /// Key names from the `.SIGN.*` entries.
        keys: Vec<String>,
    },
    /// A signature that does not verify.
    #[error(
        "BAD signature by `{key}` ({kind}): the control member was modified or signed with another key"
    )]
    BadSignature {
        /// Key name.
        key: String,
        /// Signature type.
        kind: String,
    },
    /// `.PKGINFO` has no `datahash`.
    #[error(
        ".PKGINFO has no `datahash`: the data member is not protected (legacy pre-2.0 package)"
    )]
    NoDataHash,
    /// The data member does not match `datahash`.
    #[error("data member SHA-256 {actual} does not match .PKGINFO datahash {expected}")]
    DataHash {
        /// From `.PKGINFO`.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// A file's content does not match its `APK-TOOLS.checksum.SHA1`.
    #[error("`{path}`: content SHA-1 {actual} does not match the recorded {expected}")]
    FileChecksum {
        /// Entry path.
        path: String,
        /// Recorded.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// A file or symlink without `APK-TOOLS.checksum.SHA1`.
    #[error("`{path}`: no APK-TOOLS.checksum.SHA1 record (apk would mark the package broken)")]
    MissingFileChecksum {
        /// Entry path.
        path: String,
    },
    /// An entry apk would refuse or that escapes the root.
    #[error("unsafe entry `{path}`: {reason}")]
    UnsafeEntry {
        /// Entry path as stored.
        path: String,
        /// Why.
        reason: String,
    },
    /// Signing failed.
    #[error("signing with `{key}` failed: {reason}")]
    Sign {
        /// Key name.
        key: String,
        /// Why.
        reason: String,
    },
    /// A path that is not UTF-8 or otherwise cannot be packaged.
    #[error("`{path}`: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Plain I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl PackageError {
    /// Adds the file this error is about.
    pub fn at(self, path: impl Into<PathBuf>) -> Self {
        match self {
            e @ Self::At { .. } => e,
            e => Self::At {
                path: path.into(),
                error: Box::new(e),
            },
        }
    }
}

/// Checks a data entry name the way apk's installer does (apk-format.md §1.6): relative,
/// no `.`/`..` components, no control characters, not a top-level dotfile.
pub fn check_data_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    if name.chars().any(char::is_control) {
        return Err("control character in name".into());
    }
    for part in name.split('/') {
        if part == ".." {
            return Err("`..` component".into());
        }
        if part == "." {
            return Err("`.` component".into());
        }
    }
    if name.starts_with('.') {
        return Err("starts with `.` (apk skips such entries)".into());
    }
    Ok(())
}
