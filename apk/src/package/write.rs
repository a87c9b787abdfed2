//! Writing a package the way abuild does (apk-format.md §1.3–§1.8, §7.7).
//!
//! Order of work, as in abuild's `create_apks`: data member first (its SHA-256 becomes
//! `datahash`), then `.PKGINFO` and the control member, then the signature over the control
//! member, then `signature ‖ control ‖ data`. The data member streams through the parallel
//! gzip writer into an anonymous temporary file, so memory stays small for big trees.

use std::io::{self, Cursor, Read, Seek, Write};

use sha1::Digest as _;

use super::tree::{TreeEntry, installed_size};
use super::{PackageError, SCRIPT_NAMES};
use crate::checksum::Checksum;
use crate::gzip::{self, GzipOptions, GzipWriter};
use crate::pkginfo::PkgInfo;
use crate::sign::{SignatureType, Signer};
use crate::signed::signature_member;
use crate::tar::{self, EntryType, Flavor, Header};

/// Files above this size are hashed in a first pass and streamed in a second instead of
/// being held in memory.
const IN_MEMORY_LIMIT: u64 = 8 << 20;

/// An install script for the control member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Control entry name, one of [`SCRIPT_NAMES`] (`.post-install`, `.trigger`, …).
    pub name: String,
    /// Script text; apk `execve`s it, so it needs a `#!` line.
    pub content: Vec<u8>,
}

/// Builds packages. Fields are public: fill in what you need.
pub struct PackageWriter<'a> {
    /// Metadata; `size` and `datahash` are computed.
    pub info: PkgInfo,
    /// Install scripts in control-member order.
    pub scripts: Vec<Script>,
    /// Signers, first = the signature apk will use.
    pub signers: Vec<(&'a dyn Signer, SignatureType)>,
    /// Time stamp for control entries and the signature (SOURCE_DATE_EPOCH).
    pub source_date: u64,
    /// Compression of the data member (level and threads).
    pub gzip: GzipOptions,
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenPackage {
    /// The final `.PKGINFO` (with `size` and `datahash`).
    pub info: PkgInfo,
    /// SHA-1 of the control member: the index `C:`.
    pub identity: Checksum,
    /// Size of the whole `.apk` in bytes: the index `S:`.
    pub file_size: u64,
}

impl<'a> PackageWriter<'a> {
    /// A writer for `info`, unsigned, level-9 gzip on every core.
    pub fn new(info: PkgInfo, source_date: u64) -> Self {
        Self {
            info,
            scripts: Vec::new(),
            signers: Vec::new(),
            source_date,
            gzip: GzipOptions::parallel(),
        }
    }

    /// Writes the package for `entries` (see [`super::scan_tree`]) to `out`.
    pub fn write(
        &self,
        entries: &[TreeEntry],
        out: &mut impl Write,
    ) -> Result<WrittenPackage, PackageError> {
        self.check_scripts()?;
        let (mut data_file, datahash, data_len) = self.data_member(entries)?;
        let info = self.final_info(entries, datahash);
        let control = self.control_member(&info)?;
        let signature = self.signature(&control)?;
        out.write_all(&signature)?;
        out.write_all(&control)?;
        data_file.rewind()?;
        let copied = io::copy(&mut data_file, out)?;
        debug_assert_eq!(copied, data_len);
        out.flush()?;
        Ok(WrittenPackage {
            info,
            identity: Checksum::sha1_of(&control),
            file_size: (signature.len() + control.len()) as u64 + data_len,
        })
    }

    fn check_scripts(&self) -> Result<(), PackageError> {
        for script in &self.scripts {
            if !SCRIPT_NAMES.contains(&script.name.as_str()) {
                return Err(PackageError::Format(format!(
                    "unknown script name `{}` (expected one of {})",
                    script.name,
                    SCRIPT_NAMES.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The gzipped data member in an anonymous temp file, with its SHA-256 and length.
    fn data_member(
        &self,
        entries: &[TreeEntry],
    ) -> Result<(std::fs::File, [u8; 32], u64), PackageError> {
        let mut data_file = HashingWriter::new(tempfile::tempfile()?);
        let mut gz = GzipWriter::new(&mut data_file, self.gzip);
        let mut written = 0;
        for entry in entries {
            written += write_data_entry(&mut gz, entry)?;
        }
        tar::write_trailer(&mut gz, written, 10240)?;
        gz.finish()?;
        Ok(data_file.into_parts())
    }

    /// `.PKGINFO` as written: with the computed `size` and `datahash`, and the build date
    /// defaulting to the source date.
    fn final_info(&self, entries: &[TreeEntry], datahash: [u8; 32]) -> PkgInfo {
        let mut info = self.info.clone();
        info.size = installed_size(entries, !self.scripts.is_empty());
        info.datahash = hex::encode(datahash);
        if info.builddate == 0 {
            info.builddate = self.source_date;
        }
        info
    }

    /// The gzipped control member: .PKGINFO then scripts, cut (no end-of-archive blocks).
    fn control_member(&self, info: &PkgInfo) -> Result<Vec<u8>, PackageError> {
        let mut control_tar = Vec::new();
        let pkginfo = info.render().into_bytes();
        let header = Header::file(".PKGINFO", 0o644, pkginfo.len() as u64, self.source_date);
        tar::write_entry(
            &mut control_tar,
            Flavor::Pax,
            &header,
            &mut Cursor::new(&pkginfo),
        )
        .map_err(tar_err)?;
        for script in &self.scripts {
            let header = Header::file(
                script.name.clone(),
                0o755,
                script.content.len() as u64,
                self.source_date,
            );
            tar::write_entry(
                &mut control_tar,
                Flavor::Pax,
                &header,
                &mut Cursor::new(&script.content),
            )
            .map_err(tar_err)?;
        }
        Ok(gzip::compress(&control_tar, gzip::DEFAULT_LEVEL))
    }

    /// The signature member over `control` (empty when unsigned).
    fn signature(&self, control: &[u8]) -> Result<Vec<u8>, PackageError> {
        if self.signers.is_empty() {
            return Ok(Vec::new());
        }
        signature_member(&self.signers, control, self.source_date).map_err(|e| PackageError::Sign {
            key: self.signers[0].0.key_name().to_string(),
            reason: e.to_string(),
        })
    }
}

fn tar_err(source: tar::TarError) -> PackageError {
    PackageError::Tar {
        member: super::Member::Control,
        source,
    }
}

/// One data entry with abuild-tar's `APK-TOOLS.checksum.SHA1` for files and symlinks.
fn write_data_entry(out: &mut impl Write, entry: &TreeEntry) -> Result<u64, PackageError> {
    let data_err = |source| PackageError::Tar {
        member: super::Member::Data,
        source,
    };
    let mut header: Header = entry.header.clone();
    match header.kind {
        EntryType::Symlink => {
            header.checksum = Some(Checksum::sha1_of(header.link.as_bytes()).0);
            tar::write_entry(out, Flavor::Pax, &header, &mut io::empty()).map_err(data_err)
        }
        EntryType::File => {
            let path = entry.source.as_ref().ok_or_else(|| {
                PackageError::Format(format!("`{}`: regular file without content", header.path))
            })?;
            if header.size <= IN_MEMORY_LIMIT {
                let content = fs_err::read(path)?;
                header.size = content.len() as u64;
                header.checksum = Some(sha1::Sha1::digest(&content).into());
                tar::write_entry(out, Flavor::Pax, &header, &mut Cursor::new(content))
                    .map_err(data_err)
            } else {
                let mut hasher = sha1::Sha1::new();
                io::copy(&mut fs_err::File::open(path)?, &mut hasher)?;
                header.checksum = Some(hasher.finalize().into());
                let mut file = fs_err::File::open(path)?;
                tar::write_entry(out, Flavor::Pax, &header, &mut file as &mut dyn Read)
                    .map_err(data_err)
            }
        }
        _ => tar::write_entry(out, Flavor::Pax, &header, &mut io::empty()).map_err(data_err),
    }
}

/// Counts and SHA-256-hashes everything written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            len: 0,
        }
    }

    fn into_parts(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
