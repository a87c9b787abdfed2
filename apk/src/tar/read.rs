//! A streaming tar reader that accepts what apk accepts (apk-format.md §1.1).
//!
//! Lenient where apk is lenient: POSIX and GNU magic, NUL- or space-terminated octal, the
//! ustar `prefix`, GNU `L` long names, pax `path`/`linkpath`/`SCHILY.xattr.*`/
//! `APK-TOOLS.checksum.*`, a missing end-of-archive. Strict where safety needs it: every
//! length is bounded, so a hostile stream cannot make us allocate without limit.

use std::io::{self, Read};

use super::{BLOCK, EntryType, TarError};

/// The longest name or link target apk accepts (`PATH_MAX - 10`).
pub const MAX_NAME: usize = 4086;
/// The largest pax or GNU long-name payload we buffer.
const MAX_EXTENDED: u64 = 1 << 20;

/// One entry as read from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path as recorded, with any trailing `/` removed.
    pub path: String,
    /// Entry type.
    pub kind: EntryType,
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name (may be empty).
    pub uname: String,
    /// Group name (may be empty).
    pub gname: String,
    /// Modification time, Unix seconds.
    pub mtime: u64,
    /// Content size.
    pub size: u64,
    /// Link target (symlinks, hard links).
    pub link: String,
    /// Device numbers.
    pub dev: (u32, u32),
    /// `SCHILY.xattr.*` records, name without the prefix.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// `APK-TOOLS.checksum.SHA1` as raw bytes, if present and well formed.
    pub checksum_sha1: Option<[u8; 20]>,
    /// Offset of the entry's header in the uncompressed stream (for error messages).
    pub offset: u64,
}

/// Reads entries from an uncompressed tar stream.
pub struct TarReader<R> {
    inner: R,
    /// Bytes of the current entry's content not yet consumed, plus padding.
    remaining: u64,
    padding: u64,
    offset: u64,
    ended: bool,
}

impl<R: Read> TarReader<R> {
    /// Wraps a stream positioned at a header.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            remaining: 0,
            padding: 0,
            offset: 0,
            ended: false,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Whether the end-of-archive marker (a zero block) has been seen.
    pub fn saw_end(&self) -> bool {
        self.ended
    }

    /// Gives back the underlying stream.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at a zero block or a clean end of stream.
    /// Content of the previous entry that was not read is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        self.skip_rest()?;
        let mut long_name: Option<String> = None;
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        loop {
            let Some((block, start)) = self.read_header()? else {
                return Ok(None);
            };
            let size = parse_octal(&block[124..136], "size", start)?;
            let typeflag = block[156];
            if matches!(typeflag, b'x' | b'L' | b'g' | b'K') {
                self.read_extended(typeflag, size, start, &mut long_name, &mut pax)?;
                continue;
            }
            let entry = entry_of(&block, start, size, long_name, pax)?;
            self.remaining = entry.size;
            self.padding = (BLOCK as u64 - entry.size % BLOCK as u64) % BLOCK as u64;
            return Ok(Some(entry));
        }
    }

    /// The next header block and its offset; `None` at a clean end of stream or a zero
    /// block (the end-of-archive marker).
    fn read_header(&mut self) -> Result<Option<([u8; BLOCK], u64)>, TarError> {
        let mut block = [0u8; BLOCK];
        let start = self.offset;
        match read_full(&mut self.inner, &mut block)? {
            0 => return Ok(None),
            BLOCK => {}
            n => {
                return Err(TarError::Truncated {
                    offset: start,
                    detail: format!("a header block of {n} bytes"),
                });
            }
        }
        self.offset += BLOCK as u64;
        if block.iter().all(|&b| b == 0) {
            self.ended = true;
            return Ok(None);
        }
        if &block[257..262] != b"ustar" {
            return Err(TarError::BadHeader {
                offset: start,
                detail: "no ustar magic".into(),
            });
        }
        verify_checksum(&block, start)?;
        Ok(Some((block, start)))
    }

    /// A PAX (`x`), GNU long name (`L`) or ignored (`g`, `K`) header's content, kept for
    /// the entry that follows.
    fn read_extended(
        &mut self,
        typeflag: u8,
        size: u64,
        start: u64,
        long_name: &mut Option<String>,
        pax: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), TarError> {
        if size > MAX_EXTENDED {
            return Err(TarError::BadHeader {
                offset: start,
                detail: format!("extended header of {size} bytes"),
            });
        }
        let mut data = vec![0u8; size as usize];
        self.read_exact_counted(&mut data, start)?;
        self.skip_padding(size)?;
        match typeflag {
            b'x' => pax.extend(parse_pax(&data, start)?),
            b'L' => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                *long_name = Some(utf8(&data[..end], start)?);
            }
            // Global pax headers and GNU long link names: apk ignores both.
            _ => {}
        }
        Ok(())
    }

    /// Reader over the current entry's content.
    pub fn content(&mut self) -> ContentReader<'_, R> {
        ContentReader { tar: self }
    }

    /// After the end marker: checks that the rest of the stream is zero blocks only, as apk
    /// requires (anything else after the end is a format error).
    pub fn check_tail(&mut self) -> Result<(), TarError> {
        self.skip_rest()?;
        let mut block = [0u8; BLOCK];
        loop {
            let start = self.offset;
            match read_full(&mut self.inner, &mut block)? {
                0 => return Ok(()),
                BLOCK if block.iter().all(|&b| b == 0) => self.offset += BLOCK as u64,
                BLOCK => {
                    return Err(TarError::BadHeader {
                        offset: start,
                        detail: "data after the end-of-archive marker".into(),
                    });
                }
                n => {
                    return Err(TarError::Truncated {
                        offset: start,
                        detail: format!("a trailing record of {n} bytes"),
                    });
                }
            }
        }
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let n = self.remaining + self.padding;
        if n > 0 {
            let start = self.offset;
            let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
            self.offset += copied;
            if copied != n {
                return Err(TarError::Truncated {
                    offset: start,
                    detail: format!("{} bytes of content missing", n - copied),
                });
            }
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    fn skip_padding(&mut self, size: u64) -> Result<(), TarError> {
        self.padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.remaining = 0;
        self.skip_rest()
    }

    fn read_exact_counted(&mut self, buf: &mut [u8], start: u64) -> Result<(), TarError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => TarError::Truncated {
                offset: start,
                detail: "an extended header".into(),
            },
            _ => TarError::Io(e),
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }
}

/// Reads the content of the current entry; returns EOF at its end.
pub struct ContentReader<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for ContentReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tar.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.tar.remaining).unwrap_or(usize::MAX));
        let n = self.tar.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar entry content is truncated",
            ));
        }
        self.tar.remaining -= n as u64;
        self.tar.offset += n as u64;
        Ok(n)
    }
}

/// The entry a (non-extended) header block describes, with the long name and PAX records
/// read before it applied.
fn entry_of(
    block: &[u8; BLOCK],
    start: u64,
    size: u64,
    long_name: Option<String>,
    pax: Vec<(String, Vec<u8>)>,
) -> Result<Entry, TarError> {
    let typeflag = block[156];
    let kind = EntryType::from_typeflag(typeflag).ok_or_else(|| TarError::BadHeader {
        offset: start,
        detail: format!("unsupported entry type {:?}", typeflag as char),
    })?;
    let mut path = match long_name {
        Some(name) => name,
        None => ustar_name(block, start)?,
    };
    let mut link = utf8(cstr(&block[157..257]), start)?;
    // A regular file's linkname is ignored: abuild ≤ 3.13 stored a binary legacy
    // checksum there.
    if kind == EntryType::File {
        link.clear();
    }
    let (xattrs, checksum_sha1) = apply_pax(pax, &mut path, &mut link, start)?;
    if path.len() > MAX_NAME || link.len() > MAX_NAME {
        return Err(TarError::NameTooLong {
            name: path,
            limit: MAX_NAME,
        });
    }
    if kind == EntryType::Dir || path.ends_with('/') {
        while path.len() > 1 && path.ends_with('/') {
            path.pop();
        }
    }
    Ok(Entry {
        path,
        kind,
        mode: parse_octal(&block[100..108], "mode", start)? as u32 & 0o7777,
        uid: parse_octal(&block[108..116], "uid", start)? as u32,
        gid: parse_octal(&block[116..124], "gid", start)? as u32,
        uname: utf8(cstr(&block[265..297]), start)?,
        gname: utf8(cstr(&block[297..329]), start)?,
        mtime: parse_octal(&block[136..148], "mtime", start)?,
        size: if kind == EntryType::File { size } else { 0 },
        link,
        dev: (
            parse_octal(&block[329..337], "devmajor", start)? as u32,
            parse_octal(&block[337..345], "devminor", start)? as u32,
        ),
        xattrs,
        checksum_sha1,
        offset: start,
    })
}

/// The ustar name: `prefix/name` when the prefix field is used.
fn ustar_name(block: &[u8; BLOCK], start: u64) -> Result<String, TarError> {
    let name = cstr(&block[0..100]);
    let prefix = cstr(&block[345..500]);
    if prefix.is_empty() {
        utf8(name, start)
    } else {
        Ok(format!("{}/{}", utf8(prefix, start)?, utf8(name, start)?))
    }
}

/// Extended attributes: `(name, value)`.
type Xattrs = Vec<(String, Vec<u8>)>;

/// PAX records over the header's fields: `path` and `linkpath` replace them; the xattrs and
/// apk's SHA-1 checksum are returned.
fn apply_pax(
    pax: Vec<(String, Vec<u8>)>,
    path: &mut String,
    link: &mut String,
    start: u64,
) -> Result<(Xattrs, Option<[u8; 20]>), TarError> {
    let mut xattrs = Vec::new();
    let mut checksum_sha1 = None;
    for (key, value) in pax {
        match key.as_str() {
            "path" => *path = utf8(&value, start)?,
            "linkpath" => *link = utf8(&value, start)?,
            "APK-TOOLS.checksum.SHA1" => {
                let mut sum = [0u8; 20];
                if hex::decode_to_slice(&value, &mut sum).is_ok() {
                    checksum_sha1 = Some(sum);
                }
            }
            k => {
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), value));
                }
            }
        }
    }
    Ok((xattrs, checksum_sha1))
}

/// Fills `buf` as far as the stream goes: like `read_exact`, but a short count at the end
/// of the stream is an answer, not an error (a truncated archive is reported by the caller
/// with its offset).
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn verify_checksum(block: &[u8; BLOCK], offset: u64) -> Result<(), TarError> {
    let stored = parse_octal(&block[148..156], "chksum", offset)?;
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    // Some historic writers summed signed chars; accept that too.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::BadHeader {
            offset,
            detail: format!("header checksum {stored:o} does not match {unsigned:o}"),
        })
    }
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn utf8(bytes: &[u8], offset: u64) -> Result<String, TarError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| TarError::BadHeader {
        offset,
        detail: format!("name is not UTF-8: {:?}", String::from_utf8_lossy(bytes)),
    })
}

/// Octal digits, optionally led by spaces and followed only by NUL/space padding; an
/// all-empty field reads as 0. GNU base-256 (high bit set) is accepted for large values.
fn parse_octal(field: &[u8], name: &'static str, offset: u64) -> Result<u64, TarError> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| bad_number(name, field, offset))?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut digits = field.iter().skip_while(|&&b| b == b' ').peekable();
    while let Some(&&b) = digits.peek() {
        if !(b'0'..=b'7').contains(&b) {
            break;
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| bad_number(name, field, offset))?;
        digits.next();
    }
    if digits.all(|&b| b == 0 || b == b' ') {
        Ok(v)
    } else {
        Err(bad_number(name, field, offset))
    }
}

fn bad_number(name: &'static str, field: &[u8], offset: u64) -> TarError {
    TarError::BadHeader {
        offset,
        detail: format!(
            "field `{name}` is not an octal number: {:?}",
            String::from_utf8_lossy(field)
        ),
    }
}

fn parse_pax(data: &[u8], offset: u64) -> Result<Vec<(String, Vec<u8>)>, TarError> {
    let bad = |detail: String| TarError::BadHeader { offset, detail };
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("pax record without a length".into()))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("pax record length is not a number".into()))?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad(format!("pax record of length {len} is malformed")));
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("pax record without `=`".into()))?;
        let key = String::from_utf8_lossy(&record[..eq]).into_owned();
        out.push((key, record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_accept_nul_and_space_padding() {
        assert_eq!(parse_octal(b"0000644\0", "mode", 0).unwrap(), 0o644);
        assert_eq!(parse_octal(b"000000000014", "size", 0).unwrap(), 12);
        assert_eq!(parse_octal(b"  644 \0\0", "mode", 0).unwrap(), 0o644);
        assert_eq!(parse_octal(b"\0\0\0\0\0\0\0\0", "devmajor", 0).unwrap(), 0);
        assert!(parse_octal(b"06x4\0\0\0\0", "mode", 0).is_err());
        assert!(parse_octal(b"77777777777777777777777", "size", 0).is_err());
    }

    #[test]
    fn pax_records_parse() {
        let recs = parse_pax(b"11 ctime=0\n14 path=a/b=c\n", 0).unwrap();
        assert_eq!(recs[1], ("path".to_string(), b"a/b=c".to_vec()));
        assert!(parse_pax(b"99 ctime=0\n", 0).is_err());
        assert!(parse_pax(b"5 a=b\n", 0).is_err());
    }
}
