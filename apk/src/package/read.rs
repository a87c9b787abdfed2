//! Reading and verifying packages (apk-format.md §1.10, §2.2, §2.6).
//!
//! The file is read as a stream, member by member, through a tap that sees exactly the
//! compressed bytes each gzip member consumed: the signature and control members are kept
//! (they are small and the control bytes are what is signed), the data member is SHA-256
//! hashed while its tar entries stream past a visitor. Memory stays bounded by the limits,
//! whatever the package claims.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::bufread::GzDecoder;
use sha1::Digest as _;

use super::{Member, PackageError};
use crate::checksum::Checksum;
use crate::keys::Keyring;
use crate::pkginfo::PkgInfo;
pub use crate::signed::SignatureEntry;
use crate::signed::{self, TrustError};
use crate::tar::{Entry, EntryType, TarReader};

/// Bounds on what a package may make us read or allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest compressed signature or control member.
    pub max_control: u64,
    /// Largest uncompressed data stream.
    pub max_data: u64,
    /// Largest ratio of uncompressed bytes to compressed bytes read so far, once past
    /// `max_data_floor`: a 100 kB bomb is stopped after the floor, not after 10 GB.
    pub max_ratio: u64,
    /// Uncompressed bytes always allowed regardless of the ratio.
    pub max_data_floor: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_control: 16 << 20,
            max_data: 64 << 30,
            max_ratio: 250,
            max_data_floor: 256 << 20,
        }
    }
}

/// A data entry and its verified facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// The tar entry as read.
    pub entry: Entry,
    /// SHA-1 of the content (files) or target (symlinks), computed while reading.
    pub actual_sha1: Option<[u8; 20]>,
}

/// Receives each data entry with a reader over its content.
pub trait DataVisitor {
    /// Called once per entry, in archive order.
    fn entry(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError>;

    /// Called once the control member is read, before the first data entry: lets an
    /// installer check the package identity (`C:`) and run `pre-install` before anything is
    /// written.
    fn control(
        &mut self,
        _control: &[u8],
        _info: &PkgInfo,
        _scripts: &[(String, Vec<u8>)],
    ) -> Result<(), PackageError> {
        Ok(())
    }
}

/// A package taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// `.SIGN.*` entries in order.
    pub signatures: Vec<SignatureEntry>,
    /// The compressed control member: what the signature covers, SHA-1 = identity.
    pub control: Vec<u8>,
    /// Parsed `.PKGINFO`.
    pub info: PkgInfo,
    /// Raw `.PKGINFO` bytes.
    pub pkginfo_raw: Vec<u8>,
    /// Install scripts (`.post-install` …) with their content.
    pub scripts: Vec<(String, Vec<u8>)>,
    /// Data entries with computed digests.
    pub files: Vec<FileRecord>,
    /// SHA-256 of the compressed data member.
    pub data_sha256: [u8; 32],
    /// Size of the whole file.
    pub file_size: u64,
    /// Offsets where the control and data members start.
    pub offsets: (u64, u64),
    /// gzip header problems found (non-canonical fields), reported by [`Package::verify`].
    pub header_issues: Vec<(Member, u64, &'static str)>,
}

impl Package {
    /// Reads and takes apart the package at `path`.
    pub fn open(path: &Path, limits: ReadLimits) -> Result<Self, PackageError> {
        let file = fs_err::File::open(path).map_err(|e| PackageError::Io(e).at(path))?;
        Self::read(io::BufReader::with_capacity(256 << 10, file), limits).map_err(|e| e.at(path))
    }

    /// Reads a package from a stream, computing every digest verification needs.
    pub fn read(input: impl BufRead, limits: ReadLimits) -> Result<Self, PackageError> {
        let mut files = Vec::new();
        let mut visitor = ChecksumVisitor { files: &mut files };
        let mut pkg = read_with(input, limits, &mut visitor)?;
        pkg.files = files;
        Ok(pkg)
    }

    /// The index `C:` identity: SHA-1 of the control member.
    pub fn identity(&self) -> Checksum {
        Checksum::sha1_of(&self.control)
    }

    /// Verifies like `apk verify`, and stricter: the signature (first known type with a key
    /// in `keys`, no fallback), `datahash`, every per-file checksum, entry names, and
    /// canonical gzip headers. Returns the signature that verified.
    pub fn verify(&self, keys: &Keyring) -> Result<&SignatureEntry, PackageError> {
        let entry = signed::verify(&self.signatures, &self.control, keys).map_err(|e| match e {
            TrustError::Unsigned => PackageError::Unsigned,
            TrustError::Untrusted { keys } => PackageError::Untrusted { keys },
            TrustError::Bad { key, kind } => PackageError::BadSignature { key, kind },
        })?;
        self.verify_contents()?;
        Ok(entry)
    }

    /// Everything [`Package::verify`] checks except the signature.
    pub fn verify_contents(&self) -> Result<(), PackageError> {
        if let Some(&(member, offset, field)) = self.header_issues.first() {
            return Err(PackageError::GzipHeader {
                member,
                offset,
                field,
            });
        }
        if self.info.datahash.is_empty() {
            return Err(PackageError::NoDataHash);
        }
        let actual = hex::encode(self.data_sha256);
        if !self.info.datahash.eq_ignore_ascii_case(&actual) {
            return Err(PackageError::DataHash {
                expected: self.info.datahash.clone(),
                actual,
            });
        }
        let mut links = std::collections::HashSet::new();
        for rec in &self.files {
            let e = &rec.entry;
            super::extract::check_entry(e, &mut links)?;
            if let Some(actual) = rec.actual_sha1 {
                let recorded =
                    e.checksum_sha1
                        .ok_or_else(|| PackageError::MissingFileChecksum {
                            path: e.path.clone(),
                        })?;
                if recorded != actual {
                    return Err(PackageError::FileChecksum {
                        path: e.path.clone(),
                        expected: hex::encode(recorded),
                        actual: hex::encode(actual),
                    });
                }
            }
        }
        Ok(())
    }
}

struct ChecksumVisitor<'a> {
    files: &'a mut Vec<FileRecord>,
}

impl DataVisitor for ChecksumVisitor<'_> {
    fn entry(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        let actual_sha1 = match entry.kind {
            EntryType::File => {
                let mut h = sha1::Sha1::new();
                io::copy(content, &mut h)?;
                Some(h.finalize().into())
            }
            EntryType::Symlink => Some(Checksum::sha1_of(entry.link.as_bytes()).0),
            _ => None,
        };
        self.files.push(FileRecord {
            entry: entry.clone(),
            actual_sha1,
        });
        Ok(())
    }
}

/// Streams a package: signature and control members are collected, data entries go to
/// `visitor` with their content. `files` of the result is left empty.
pub fn read_with(
    input: impl BufRead,
    limits: ReadLimits,
    visitor: &mut dyn DataVisitor,
) -> Result<Package, PackageError> {
    let mut tap = Tap {
        inner: input,
        mode: TapMode::Capture(Vec::new()),
        consumed: Rc::new(Cell::new(0)),
        limit: limits.max_control,
        overflow: false,
    };
    let mut header_issues = Vec::new();
    let head = read_head(&mut tap, limits, &mut header_issues)?;
    let info = PkgInfo::parse(&head.pkginfo_raw)?;
    visitor.control(&head.control, &info, &head.scripts)?;
    let (data_offset, data_sha256) = read_data(&mut tap, limits, visitor, &mut header_issues)?;
    if !tap.fill_buf()?.is_empty() {
        return Err(PackageError::Format(format!(
            "unexpected bytes after the data member at offset {} (a second data stream?)",
            tap.consumed.get()
        )));
    }
    Ok(Package {
        signatures: head.signatures,
        control: head.control,
        info,
        pkginfo_raw: head.pkginfo_raw,
        scripts: head.scripts,
        files: Vec::new(),
        data_sha256,
        file_size: tap.consumed.get(),
        offsets: (head.control_offset, data_offset),
        header_issues,
    })
}

/// What comes before the data member: the signatures and the control member.
struct Head {
    signatures: Vec<SignatureEntry>,
    /// The control member's compressed bytes (what the signatures sign).
    control: Vec<u8>,
    pkginfo_raw: Vec<u8>,
    scripts: Scripts,
    control_offset: u64,
}

/// Signature members until a member holds something that is not `.SIGN.*`: that one is the
/// control member.
fn read_head<R: BufRead>(
    tap: &mut Tap<R>,
    limits: ReadLimits,
    header_issues: &mut Vec<(Member, u64, &'static str)>,
) -> Result<Head, PackageError> {
    let mut signatures = Vec::new();
    loop {
        let offset = tap.consumed.get();
        if tap.fill_buf()?.is_empty() {
            return Err(PackageError::Format(if offset == 0 {
                "the file is empty".into()
            } else {
                "no control member (.PKGINFO) after the signature".into()
            }));
        }
        let member_kind = if signatures.is_empty() {
            Member::Signature
        } else {
            Member::Control
        };
        let (raw, entries) = read_small_member(tap, member_kind, offset, limits, header_issues)?;
        if !entries.is_empty() && entries.iter().all(|(e, _)| e.path.starts_with(".SIGN.")) {
            for (e, content) in entries {
                signatures.push(SignatureEntry::new(&e.path, content));
            }
            continue;
        }
        let (pkginfo_raw, scripts) = split_control(entries)?;
        if let Some(empty) = signatures.iter().find(|s| s.signature.is_empty()) {
            return Err(PackageError::Format(format!(
                "empty signature entry `{}`",
                empty.name
            )));
        }
        return Ok(Head {
            signatures,
            control: raw,
            pkginfo_raw,
            scripts,
            control_offset: offset,
        });
    }
}

/// A small member's tar entries with their content.
type SmallEntries = Vec<(Entry, Vec<u8>)>;

/// Install scripts: `(name, content)`.
type Scripts = Vec<(String, Vec<u8>)>;

/// One signature or control member: its compressed bytes and its tar entries.
fn read_small_member<R: BufRead>(
    tap: &mut Tap<R>,
    member_kind: Member,
    offset: u64,
    limits: ReadLimits,
    header_issues: &mut Vec<(Member, u64, &'static str)>,
) -> Result<(Vec<u8>, SmallEntries), PackageError> {
    tap.mode = TapMode::Capture(Vec::new());
    let inflated = inflate_member(tap, member_kind, offset, limits.max_control)?;
    if tap.overflow {
        return Err(PackageError::TooLarge {
            what: format!("compressed {member_kind} member"),
            limit: limits.max_control,
            hint: "signature and control members are small; this is not an apk package",
        });
    }
    let TapMode::Capture(raw) = std::mem::replace(&mut tap.mode, TapMode::Off) else {
        unreachable!("tap mode set above")
    };
    check_gzip_header(&raw, member_kind, offset, header_issues);
    let entries = read_small_tar(&inflated, member_kind)?;
    Ok((raw, entries))
}

/// The control member's `.PKGINFO` and scripts (`.SIGN.*` skipped); a data entry there is
/// the unsupported single-stream layout.
fn split_control(entries: SmallEntries) -> Result<(Vec<u8>, Scripts), PackageError> {
    let mut pkginfo = None;
    let mut scripts = Vec::new();
    for (e, content) in entries {
        if e.path.starts_with(".SIGN.") {
            continue;
        }
        if !e.path.starts_with('.') || e.path.contains('/') {
            return Err(PackageError::Format(format!(
                "data entry `{}` inside the control member (single-stream legacy layout is not supported)",
                e.path
            )));
        }
        if e.path == ".PKGINFO" {
            pkginfo = Some(content);
        } else {
            scripts.push((e.path, content));
        }
    }
    let pkginfo =
        pkginfo.ok_or_else(|| PackageError::Format("the control member has no .PKGINFO".into()))?;
    Ok((pkginfo, scripts))
}

/// The data member, streamed through `visitor` and hashed: its offset and SHA-256.
fn read_data<R: BufRead>(
    tap: &mut Tap<R>,
    limits: ReadLimits,
    visitor: &mut dyn DataVisitor,
    header_issues: &mut Vec<(Member, u64, &'static str)>,
) -> Result<(u64, [u8; 32]), PackageError> {
    let data_offset = tap.consumed.get();
    if tap.fill_buf()?.is_empty() {
        return Err(PackageError::Format(
            "no data member after the control member".into(),
        ));
    }
    tap.mode = TapMode::Sha256(sha2::Sha256::new(), Vec::with_capacity(10));
    tap.limit = u64::MAX;
    visit_data(tap, limits, visitor, data_offset)?;
    let (data_sha256, raw_head) = match std::mem::replace(&mut tap.mode, TapMode::Off) {
        TapMode::Sha256(h, head) => (h.finalize().into(), head),
        _ => unreachable!("tap mode set above"),
    };
    check_gzip_header(&raw_head, Member::Data, data_offset, header_issues);
    Ok((data_offset, data_sha256))
}

/// Inflates the data member under the limits and hands each tar entry to `visitor`.
fn visit_data<R: BufRead>(
    tap: &mut Tap<R>,
    limits: ReadLimits,
    visitor: &mut dyn DataVisitor,
    data_offset: u64,
) -> Result<(), PackageError> {
    let consumed = Rc::clone(&tap.consumed);
    let decoder = GzDecoder::new(tap);
    let bounded = Bounded {
        inner: decoder,
        out: 0,
        limit: limits.max_data,
        ratio: Some((
            consumed,
            data_offset,
            limits.max_ratio,
            limits.max_data_floor,
        )),
    };
    let mut tar = TarReader::new(bounded);
    let map_err = |e: crate::tar::TarError| member_error(e, Member::Data, data_offset);
    while let Some(entry) = tar.next_entry().map_err(map_err)? {
        let mut content = tar.content();
        visitor
            .entry(&entry, &mut content)
            .map_err(|e| flatten_data_error(e, data_offset))?;
        // Drain what the visitor left so the stream stays in step.
        io::copy(&mut content, &mut io::sink())
            .map_err(|e| member_error(e.into(), Member::Data, data_offset))?;
    }
    tar.check_tail().map_err(map_err)?;
    let mut bounded = tar.into_inner();
    // Consume the gzip trailer so the tap has seen the whole member.
    io::copy(&mut bounded, &mut io::sink())
        .map_err(|e| member_error(e.into(), Member::Data, data_offset))?;
    Ok(())
}

fn member_error(e: crate::tar::TarError, member: Member, offset: u64) -> PackageError {
    match e {
        crate::tar::TarError::Io(source) => io_to_package(source, member, offset),
        source => PackageError::Tar { member, source },
    }
}

/// The error for a decompression limit reached while reading `member`, if `source` is one.
pub(crate) fn limit_error(source: &io::Error, member: Member) -> Option<PackageError> {
    let limit = source.get_ref()?.downcast_ref::<LimitHit>()?.0;
    Some(PackageError::TooLarge {
        what: format!("uncompressed {member} member"),
        limit,
        hint: "the package is corrupt or a decompression bomb; raise the limit only for a trusted package",
    })
}

fn io_to_package(source: io::Error, member: Member, offset: u64) -> PackageError {
    if let Some(e) = limit_error(&source, member) {
        return e;
    }
    PackageError::Gzip {
        member,
        offset,
        source,
    }
}

fn flatten_data_error(e: PackageError, offset: u64) -> PackageError {
    match e {
        PackageError::Io(source) => io_to_package(source, Member::Data, offset),
        other => other,
    }
}

fn inflate_member<R: BufRead>(
    tap: &mut Tap<R>,
    member: Member,
    offset: u64,
    limit: u64,
) -> Result<Vec<u8>, PackageError> {
    let mut out = Vec::new();
    let decoder = GzDecoder::new(tap);
    let mut bounded = Bounded {
        inner: decoder,
        out: 0,
        limit,
        ratio: None,
    };
    bounded
        .read_to_end(&mut out)
        .map_err(|e| io_to_package(e, member, offset))?;
    Ok(out)
}

/// Reads all entries of a small in-memory tar (signature or control member).
fn read_small_tar(data: &[u8], member: Member) -> Result<Vec<(Entry, Vec<u8>)>, PackageError> {
    if !data.len().is_multiple_of(512) {
        return Err(PackageError::Format(format!(
            "{member} member is {} bytes, not a multiple of 512",
            data.len()
        )));
    }
    let mut tar = TarReader::new(data);
    let mut out = Vec::new();
    while let Some(entry) = tar
        .next_entry()
        .map_err(|source| PackageError::Tar { member, source })?
    {
        let mut content = Vec::new();
        tar.content().read_to_end(&mut content)?;
        out.push((entry, content));
    }
    Ok(out)
}

/// abuild and apk write `gzip -n` headers: no flags, MTIME 0. Anything else is either
/// another tool or a modified byte that no hash covers, so strict verification flags it.
fn check_gzip_header(
    raw: &[u8],
    member: Member,
    offset: u64,
    issues: &mut Vec<(Member, u64, &'static str)>,
) {
    if raw.len() < 10 {
        return;
    }
    if raw[3] != 0 {
        issues.push((member, offset, "optional fields (FLG != 0)"));
    } else if raw[4..8] != [0, 0, 0, 0] {
        issues.push((member, offset, "a modification time (MTIME != 0)"));
    }
}

/// Error payload marking a decompression limit.
#[derive(Debug)]
struct LimitHit(u64);

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompressed size limit of {} bytes reached", self.0)
    }
}

impl std::error::Error for LimitHit {}

/// Fails reads once more than `limit` bytes came out, or (with `ratio`) once the output
/// outgrows `ratio` × the compressed bytes consumed since `start`, past a floor.
struct Bounded<R> {
    inner: R,
    out: u64,
    limit: u64,
    ratio: Option<(Rc<Cell<u64>>, u64, u64, u64)>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limit {
            return Err(io::Error::other(LimitHit(self.limit)));
        }
        if let Some((consumed, start, ratio, floor)) = &self.ratio {
            let allowed = (consumed.get() - start).saturating_mul(*ratio);
            if self.out > *floor && self.out > allowed {
                return Err(io::Error::other(LimitHit(allowed.max(*floor))));
            }
        }
        Ok(n)
    }
}

enum TapMode {
    Off,
    /// Keep the bytes (signature and control members).
    Capture(Vec<u8>),
    /// Hash the bytes, keeping the first 10 (the gzip header).
    Sha256(sha2::Sha256, Vec<u8>),
}

/// A `BufRead` that records exactly the bytes its consumer consumed.
struct Tap<R> {
    inner: R,
    mode: TapMode,
    /// Shared with the data member's [`Bounded`] for the ratio rule.
    consumed: Rc<Cell<u64>>,
    /// Most bytes captured in [`TapMode::Capture`]; beyond it `overflow` is set.
    limit: u64,
    overflow: bool,
}

impl<R: BufRead> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tap<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // `fill_buf` on a non-empty buffer returns it without I/O; with nothing consumed
        // there is nothing to record, and calling it could start a read.
        if amt == 0 {
            return;
        }
        if let Ok(buf) = self.inner.fill_buf() {
            let taken = &buf[..amt.min(buf.len())];
            match &mut self.mode {
                TapMode::Off => {}
                TapMode::Capture(v) => {
                    if (v.len() + taken.len()) as u64 <= self.limit {
                        v.extend_from_slice(taken);
                    } else {
                        self.overflow = true;
                    }
                }
                TapMode::Sha256(h, head) => {
                    h.update(taken);
                    if head.len() < 10 {
                        let more = (10 - head.len()).min(taken.len());
                        head.extend_from_slice(&taken[..more]);
                    }
                }
            }
        }
        self.consumed.set(self.consumed.get() + amt as u64);
        self.inner.consume(amt);
    }
}
