//! `APKINDEX.tar.gz`: read, write, sign, verify and update (apk-format.md §3).
//!
//! The file is a signature member followed by one gzip member holding a normal tar (GNU
//! headers as `apk index` writes them, with end blocks) of `DESCRIPTION` and `APKINDEX`.
//! Updates are incremental: the text index is parsed, one entry is added, replaced or
//! removed, and the whole small file is rewritten; no package is re-read.

pub mod entry;

use std::io::Cursor;
use std::path::{Path, PathBuf};

pub use entry::IndexEntry;

use crate::gzip;
use crate::keys::Keyring;
use crate::sign::{SignatureType, Signer};
use crate::signed::{self, SignatureEntry, TrustError};
use crate::tar::{self, Flavor, Header};

/// Largest index we inflate (Alpine's main/x86_64 index is about 2 MiB uncompressed).
pub const MAX_INDEX_SIZE: u64 = 512 << 20;

/// Errors reading or verifying an index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Context: which file.
    #[error("`{path}`: {error}")]
    At {
        /// The index file.
        path: PathBuf,
        /// The error.
        // Not `source`: the message already shows it, and a source would print twice
        // in a `{:#}` chain.
        error: Box<IndexError>,
    },
    /// A line of the APKINDEX text is malformed.
    #[error("APKINDEX line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file is not an index.
    #[error("not an APKINDEX.tar.gz: {0}")]
    Format(String),
    /// gzip or tar damage.
    #[error("corrupt index: {0}")]
    Corrupt(String),
    /// Signature problems.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A gzip member with a non-canonical header.
    #[error(
        "index member at byte {offset}: gzip header carries {field} (expected a plain `gzip -n` header)"
    )]
    GzipHeader {
        /// Member offset.
        offset: usize,
        /// The field.
        field: &'static str,
    },
    /// Signing failed.
    #[error("signing the index failed: {0}")]
    Sign(#[from] crate::sign::SignError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl IndexError {
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

/// The content of an index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApkIndex {
    /// `DESCRIPTION` (abuild: `"$repo $(git describe)"`).
    pub description: Option<String>,
    /// Package blocks in apk's order.
    pub packages: Vec<IndexEntry>,
}

/// An index file taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIndex {
    /// `.SIGN.*` entries.
    pub signatures: Vec<SignatureEntry>,
    /// The compressed index member: what the signature covers.
    pub signed: Vec<u8>,
    /// Parsed content.
    pub index: ApkIndex,
    /// Non-canonical gzip headers found (offset, field).
    pub header_issues: Vec<(usize, &'static str)>,
}

impl SignedIndex {
    /// Reads `APKINDEX.tar.gz` from a file.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let bytes = fs_err::read(path).map_err(|e| IndexError::Io(e).at(path))?;
        Self::parse(&bytes).map_err(|e| e.at(path))
    }

    /// Takes apart the bytes of an `APKINDEX.tar.gz`.
    pub fn parse(bytes: &[u8]) -> Result<Self, IndexError> {
        let members = gzip::inflate_members(bytes, MAX_INDEX_SIZE)
            .map_err(|e| IndexError::Corrupt(e.to_string()))?;
        let mut signatures = Vec::new();
        let mut header_issues = Vec::new();
        for m in &members {
            let head = &bytes[m.offset..m.offset + 10.min(m.len)];
            if head.len() == 10 {
                if head[3] != 0 {
                    header_issues.push((m.offset, "optional fields (FLG != 0)"));
                } else if head[4..8] != [0, 0, 0, 0] {
                    header_issues.push((m.offset, "a modification time (MTIME != 0)"));
                }
            }
        }
        let mut rest = members.as_slice();
        while let Some((first, tail)) = rest.split_first() {
            let entries = tar_entries(&first.data)?;
            if entries.is_empty() || !entries.iter().all(|(name, _)| name.starts_with(".SIGN.")) {
                break;
            }
            signatures.extend(entries.into_iter().map(|(n, c)| SignatureEntry::new(&n, c)));
            rest = tail;
        }
        let [member] = rest else {
            return Err(IndexError::Format(format!(
                "expected one index member after the signature, found {}",
                rest.len()
            )));
        };
        let mut index = ApkIndex::default();
        let mut text = None;
        for (name, content) in tar_entries(&member.data)? {
            match name.as_str() {
                "DESCRIPTION" => {
                    index.description = Some(String::from_utf8_lossy(&content).into_owned());
                }
                "APKINDEX" => text = Some(content),
                _ => {}
            }
        }
        let text = text.ok_or_else(|| IndexError::Format("no APKINDEX entry".into()))?;
        let text = std::str::from_utf8(&text)
            .map_err(|_| IndexError::Format("APKINDEX is not UTF-8".into()))?;
        index.packages = parse_text(text)?;
        Ok(Self {
            signatures,
            signed: bytes[member.offset..member.offset + member.len].to_vec(),
            index,
            header_issues,
        })
    }

    /// Verifies as apk does (first usable signature, no fallback), and that every gzip
    /// header is canonical. Returns the signature that verified.
    pub fn verify(&self, keys: &Keyring) -> Result<&SignatureEntry, IndexError> {
        let sig = signed::verify(&self.signatures, &self.signed, keys)?;
        if let Some(&(offset, field)) = self.header_issues.first() {
            return Err(IndexError::GzipHeader { offset, field });
        }
        Ok(sig)
    }
}

impl ApkIndex {
    /// Sorts packages in apk's order.
    pub fn sort(&mut self) {
        self.packages.sort_by(IndexEntry::order);
    }

    /// Adds `entry`, replacing one with the same name and version. Returns the replaced one.
    pub fn upsert(&mut self, entry: IndexEntry) -> Option<IndexEntry> {
        let old = self
            .packages
            .iter()
            .position(|e| e.name == entry.name && e.version == entry.version)
            .map(|i| self.packages.remove(i));
        let at = self
            .packages
            .partition_point(|e| e.order(&entry) == std::cmp::Ordering::Less);
        self.packages.insert(at, entry);
        old
    }

    /// Removes the package `name`-`version`; returns it if it was there.
    pub fn remove(&mut self, name: &str, version: &str) -> Option<IndexEntry> {
        let i = self
            .packages
            .iter()
            .position(|e| e.name == name && e.version == version)?;
        Some(self.packages.remove(i))
    }

    /// Finds `name`-`version`.
    pub fn get(&self, name: &str, version: &str) -> Option<&IndexEntry> {
        self.packages
            .iter()
            .find(|e| e.name == name && e.version == version)
    }

    /// The `APKINDEX` text: blocks each followed by an empty line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for p in &self.packages {
            p.write_lines(&mut out);
            out.push('\n');
        }
        out
    }

    /// The unsigned index member: gzip of a tar with `DESCRIPTION` (if any) and
    /// `APKINDEX`, both stamped `mtime`, as `apk index` writes it.
    pub fn index_member(&self, mtime: u64) -> Vec<u8> {
        let mut tar_bytes = Vec::new();
        let mut written = 0;
        let text = self.render_text();
        let mut add = |name: &str, content: &[u8]| {
            let header = Header::file(name, 0o644, content.len() as u64, mtime);
            // Writing to a Vec cannot fail and fixed names always fit.
            written += tar::write_entry(
                &mut tar_bytes,
                Flavor::Gnu,
                &header,
                &mut Cursor::new(content),
            )
            .expect("index tar entry");
        };
        if let Some(d) = &self.description {
            add("DESCRIPTION", d.as_bytes());
        }
        add("APKINDEX", text.as_bytes());
        tar::write_trailer(&mut tar_bytes, written, 0).expect("write to Vec");
        gzip::compress(&tar_bytes, gzip::DEFAULT_LEVEL)
    }

    /// The complete `APKINDEX.tar.gz`: signature member (one entry per signer, in order)
    /// followed by the index member. With no signers, the unsigned index.
    pub fn to_bytes(
        &self,
        signers: &[(&dyn Signer, SignatureType)],
        mtime: u64,
    ) -> Result<Vec<u8>, IndexError> {
        let member = self.index_member(mtime);
        let mut out = if signers.is_empty() {
            Vec::new()
        } else {
            signed::signature_member(signers, &member, mtime)?
        };
        out.extend_from_slice(&member);
        Ok(out)
    }
}

/// Parses `APKINDEX` text (also used for the installed database's index lines).
pub fn parse_text(text: &str) -> Result<Vec<IndexEntry>, IndexError> {
    let mut out = Vec::new();
    let mut current: Option<IndexEntry> = None;
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        if line.len() < 2 {
            if let Some(entry) = current.take() {
                out.push(finish(entry, lineno)?);
            }
            continue;
        }
        let bytes = line.as_bytes();
        if bytes[1] != b':' {
            return Err(IndexError::Line {
                line: lineno,
                reason: format!("expected `X:value`, found {line:?}"),
            });
        }
        let letter = char::from(bytes[0]);
        let value = &line[2..];
        let entry = current.get_or_insert_with(IndexEntry::empty);
        let known = entry
            .apply_line(letter, value)
            .map_err(|reason| IndexError::Line {
                line: lineno,
                reason,
            })?;
        // Installed-database letters are skipped in a repository index; anything else
        // unknown is kept so nothing is lost on rewrite.
        if !known && !"FMRaZrqsf".contains(letter) {
            entry.other.push((letter, value.to_string()));
        }
    }
    if let Some(entry) = current.take() {
        out.push(finish(entry, text.split('\n').count())?);
    }
    Ok(out)
}

fn finish(entry: IndexEntry, line: usize) -> Result<IndexEntry, IndexError> {
    if entry.name.is_empty() || entry.version.is_empty() {
        return Err(IndexError::Line {
            line,
            reason: "package block without `P:` or `V:`".into(),
        });
    }
    if entry.checksum.0 == [0; 20] {
        return Err(IndexError::Line {
            line,
            reason: format!("package `{}` has no `C:` checksum", entry.name),
        });
    }
    Ok(entry)
}

fn tar_entries(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, IndexError> {
    use std::io::Read as _;
    let mut reader = tar::TarReader::new(data);
    let mut out = Vec::new();
    while let Some(e) = reader
        .next_entry()
        .map_err(|e| IndexError::Corrupt(e.to_string()))?
    {
        let mut content = Vec::new();
        reader.content().read_to_end(&mut content)?;
        out.push((e.path, content));
    }
    Ok(out)
}
