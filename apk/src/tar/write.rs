//! Tar headers exactly as the Alpine tools write them (apk-format.md §1.3, §3.1, §4.2).
//!
//! Two flavours exist in the wild and we must emit both byte for byte:
//! - [`Flavor::Pax`]: what abuild gets from `tar --format=posix --pax-option=exthdr.name=
//!   %d/PaxHeaders/%f,atime:=0,ctime:=0` piped through `abuild-tar`: every entry is preceded by
//!   a pax `x` header carrying `ctime=0`, `atime=0` and, for files and symlinks, the
//!   `APK-TOOLS.checksum.SHA1` record. Used for all three members of a package.
//! - [`Flavor::Gnu`]: what `apk index` and apk's `scripts.tar` writer emit: `ustar  \0` magic,
//!   12-digit size/mtime fields without a terminator, `root`/`root` names, no pax headers.
//!
//! The `tar` crate cannot do either (fixed pax header names, GNU long names, a forced
//! end-of-archive trailer), so this is our own writer.

use std::io::{self, Read, Write};

use super::{BLOCK, EntryType, TarError};

/// Which tar dialect a header is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// POSIX ustar with a pax `x` header before every entry (abuild, GNU tar `--format=posix`).
    Pax,
    /// GNU-magic headers as apk-tools writes them for indexes and `scripts.tar`.
    Gnu,
}

/// Everything a tar header records about one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Path inside the archive, relative, without a trailing `/` (added for directories).
    pub path: String,
    /// Entry type.
    pub kind: EntryType,
    /// Permission bits (and setuid/setgid/sticky), not the file type.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name; empty means "numeric only".
    pub uname: String,
    /// Group name; empty means "numeric only".
    pub gname: String,
    /// Modification time, Unix seconds.
    pub mtime: u64,
    /// Size of the content that follows (0 for everything but regular files).
    pub size: u64,
    /// Link target for symlinks and hard links.
    pub link: String,
    /// Device numbers for character and block devices.
    pub dev: (u32, u32),
    /// Extended attributes, written as `SCHILY.xattr.<name>` pax records.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// SHA-1 written as `APK-TOOLS.checksum.SHA1` (files and symlinks in a data member).
    pub checksum: Option<[u8; 20]>,
}

impl Header {
    /// A root-owned regular file of `size` bytes.
    pub fn file(path: impl Into<String>, mode: u32, size: u64, mtime: u64) -> Self {
        Self {
            path: path.into(),
            kind: EntryType::File,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime,
            size,
            link: String::new(),
            dev: (0, 0),
            xattrs: Vec::new(),
            checksum: None,
        }
    }

    fn ustar_name(&self) -> String {
        if self.kind == EntryType::Dir {
            format!("{}/", self.path)
        } else {
            self.path.clone()
        }
    }
}

/// Writes one entry (header, optional pax header, and content from `data`) to `out`.
/// Returns the number of bytes written. `data` must yield exactly `header.size` bytes.
pub fn write_entry(
    out: &mut impl Write,
    flavor: Flavor,
    header: &Header,
    data: &mut dyn io::Read,
) -> Result<u64, TarError> {
    let mut written = 0;
    let name = header.ustar_name();
    if header.link.len() > 100 && flavor != Flavor::Pax {
        // Checked before anything is written, so a refused entry leaves `out` untouched.
        return Err(TarError::NameTooLong {
            name: header.link.clone(),
            limit: 100,
        });
    }
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    let (ustar_name, prefix) = match split_ustar_name(&name) {
        // apk-tools 3.x (`apk_tar_write_entry`) precedes a name that does not fit the
        // 99 bytes `strlcpy` leaves in the ustar field with a GNU `././@LongLink` entry; the
        // GNU header has no `prefix` field to split into.
        _ if flavor == Flavor::Gnu && name.len() >= 100 => {
            written += write_gnu_long_name(out, header, &name)?;
            (truncate(&name, 99), String::new())
        }
        Some(split) => split,
        // Only the pax flavour gets here: GNU names of 100 bytes or more took the arm above.
        None => {
            records.push(("path".into(), name.clone().into_bytes()));
            (truncate(&name, 100), String::new())
        }
    };
    if header.link.len() > 100 {
        records.push(("linkpath".into(), header.link.clone().into_bytes()));
    }
    if flavor == Flavor::Pax {
        written += write_pax_header(out, header, &name, records)?;
    }
    let block = encode_header(flavor, header, &ustar_name, &prefix)?;
    out.write_all(&block)?;
    written += BLOCK as u64;
    written += write_content(out, header, data)?;
    Ok(written)
}

/// The pax `x` header before `header` (named `<dir>/PaxHeaders/<base>` after `name`) with
/// `records` and those GNU tar and abuild-tar add; returns the bytes written.
fn write_pax_header(
    out: &mut impl Write,
    header: &Header,
    name: &str,
    mut records: Vec<(String, Vec<u8>)>,
) -> Result<u64, TarError> {
    // GNU tar emits its own records first and appends the `--pax-option` overrides
    // (`ctime:=0,atime:=0`, reversed because it prepends to its override list) when the
    // header is finished; abuild-tar then appends the checksum.
    for (key, value) in &header.xattrs {
        records.push((format!("SCHILY.xattr.{key}"), value.clone()));
    }
    records.push(("ctime".into(), b"0".to_vec()));
    records.push(("atime".into(), b"0".to_vec()));
    if let Some(sum) = header.checksum {
        records.push((
            "APK-TOOLS.checksum.SHA1".into(),
            hex::encode(sum).into_bytes(),
        ));
    }
    let pax = encode_pax_records(&records);
    let (dir, base) = match name.trim_end_matches('/').rsplit_once('/') {
        Some((dir, base)) => (dir, base),
        None => (".", name.trim_end_matches('/')),
    };
    let pax_name = format!("{dir}/PaxHeaders/{base}");
    let (pax_ustar, pax_prefix) =
        split_ustar_name(&pax_name).unwrap_or_else(|| (truncate(&pax_name, 100), String::new()));
    let pax_header = PaxHeaderFields {
        name: &pax_ustar,
        prefix: &pax_prefix,
        size: pax.len() as u64,
        mtime: header.mtime,
    };
    let block = pax_header.encode()?;
    out.write_all(&block)?;
    out.write_all(&pax)?;
    Ok(BLOCK as u64 + pax.len() as u64 + pad(out, pax.len() as u64)?)
}

/// Copies exactly `header.size` bytes of `data` and the padding after them; returns the
/// bytes written.
fn write_content(
    out: &mut impl Write,
    header: &Header,
    data: &mut dyn io::Read,
) -> Result<u64, TarError> {
    let copied = io::copy(&mut data.take(header.size), out)?;
    if copied != header.size {
        return Err(TarError::ShortContent {
            path: header.path.clone(),
            expected: header.size,
            actual: copied,
        });
    }
    Ok(copied + pad(out, copied)?)
}

/// The longest name [`Flavor::Gnu`] writes through a `././@LongLink` entry. apk-tools puts
/// the name's length *without* its NUL in the `L` header but writes the NUL too, so a name
/// whose length is a multiple of 512 would desynchronise every reader; apk's own script names
/// fit in 255 bytes, so capping below 512 loses nothing.
pub const MAX_GNU_LONG_NAME: usize = 511;

/// Writes the GNU `L` entry apk-tools 3.x (`apk_tar_write_longname_entry`) emits before a
/// header whose name is 100 bytes or longer: name `././@LongLink`, the entry's own mode, owner
/// and mtime, size = name length, then the name, a NUL and padding.
fn write_gnu_long_name(out: &mut impl Write, header: &Header, name: &str) -> Result<u64, TarError> {
    if name.len() > MAX_GNU_LONG_NAME {
        return Err(TarError::NameTooLong {
            name: name.to_string(),
            limit: MAX_GNU_LONG_NAME,
        });
    }
    let long = Header {
        path: "././@LongLink".into(),
        kind: EntryType::File,
        size: name.len() as u64,
        link: String::new(),
        ..header.clone()
    };
    let mut block = encode_header(Flavor::Gnu, &long, &long.path, "")?;
    block[156] = b'L';
    finish_checksum(&mut block);
    out.write_all(&block)?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    let data = name.len() as u64 + 1;
    Ok(BLOCK as u64 + data + pad(out, data)?)
}

/// Writes the two zero blocks that end an archive, then zero blocks up to a multiple of
/// `record` bytes of the whole archive (`written` bytes so far). GNU tar's default record is
/// 10240 bytes (abuild data members); apk's own writer pads nothing (`record` = 0).
pub fn write_trailer(out: &mut impl Write, written: u64, record: u64) -> io::Result<u64> {
    let mut total = written + 2 * BLOCK as u64;
    if record > 0 {
        total = total.div_ceil(record) * record;
    }
    let zeros = total - written;
    io::copy(&mut io::repeat(0).take(zeros), out)?;
    Ok(zeros)
}

fn pad(out: &mut impl Write, len: u64) -> io::Result<u64> {
    let rem = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
    out.write_all(&[0u8; BLOCK][..rem as usize])?;
    Ok(rem)
}

/// Encodes pax records `"<len> <key>=<value>\n"`, where `<len>` counts the whole record
/// including its own digits.
pub fn encode_pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Splits a name into ustar `name` (≤ 100 bytes) and `prefix` (≤ 155 bytes) at a `/`, as
/// GNU tar does; `None` when it cannot be represented without a pax `path` record.
fn split_ustar_name(name: &str) -> Option<(String, String)> {
    if name.len() <= 100 {
        return Some((name.to_string(), String::new()));
    }
    let bytes = name.as_bytes();
    // The prefix is the longest head ending before a '/' that leaves a name of ≤ 100 bytes.
    let max_prefix = 155.min(bytes.len() - 1);
    (1..=max_prefix)
        .rev()
        .filter(|&i| bytes[i] == b'/')
        .find(|&i| bytes.len() - i - 1 <= 100 && i > 0)
        .map(|i| (name[i + 1..].to_string(), name[..i].to_string()))
        .filter(|(n, _)| !n.is_empty())
}

fn truncate(name: &str, max: usize) -> String {
    let mut end = max.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

struct PaxHeaderFields<'a> {
    name: &'a str,
    prefix: &'a str,
    size: u64,
    mtime: u64,
}

impl PaxHeaderFields<'_> {
    fn encode(&self) -> Result<[u8; BLOCK], TarError> {
        let mut b = [0u8; BLOCK];
        put_str(&mut b[0..100], self.name);
        put_octal(&mut b[100..108], 0o644, self.name)?;
        put_octal(&mut b[108..116], 0, self.name)?;
        put_octal(&mut b[116..124], 0, self.name)?;
        put_octal(&mut b[124..136], self.size, self.name)?;
        put_octal(&mut b[136..148], self.mtime, self.name)?;
        b[156] = b'x';
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put_str(&mut b[345..500], self.prefix);
        finish_checksum(&mut b);
        Ok(b)
    }
}

fn encode_header(
    flavor: Flavor,
    h: &Header,
    name: &str,
    prefix: &str,
) -> Result<[u8; BLOCK], TarError> {
    let mut b = [0u8; BLOCK];
    let path = &h.path;
    put_str(&mut b[0..100], name);
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777), path)?;
    put_octal(&mut b[108..116], u64::from(h.uid), path)?;
    put_octal(&mut b[116..124], u64::from(h.gid), path)?;
    match flavor {
        Flavor::Pax => {
            put_octal(&mut b[124..136], h.size, path)?;
            put_octal(&mut b[136..148], h.mtime, path)?;
        }
        Flavor::Gnu => {
            // apk-tools prints `%011o`-style fields without the terminating NUL.
            put_octal_full(&mut b[124..136], h.size, path)?;
            put_octal_full(&mut b[136..148], h.mtime, path)?;
        }
    }
    b[156] = h.kind.typeflag();
    put_str(&mut b[157..257], &h.link);
    match flavor {
        Flavor::Pax => {
            b[257..263].copy_from_slice(b"ustar\0");
            b[263..265].copy_from_slice(b"00");
            put_str(&mut b[265..297], &h.uname);
            put_str(&mut b[297..329], &h.gname);
            put_octal(&mut b[329..337], u64::from(h.dev.0), path)?;
            put_octal(&mut b[337..345], u64::from(h.dev.1), path)?;
            put_str(&mut b[345..500], prefix);
        }
        Flavor::Gnu => {
            b[257..265].copy_from_slice(b"ustar  \0");
            put_str(&mut b[265..297], "root");
            put_str(&mut b[297..329], "root");
        }
    }
    finish_checksum(&mut b);
    Ok(b)
}

fn put_str(field: &mut [u8], s: &str) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Octal digits filling the field but its last byte, then NUL (`0000644\0`).
fn put_octal(field: &mut [u8], value: u64, path: &str) -> Result<(), TarError> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(TarError::FieldOverflow {
            path: path.to_string(),
            value,
        });
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// Octal digits filling the whole field, no terminator (apk-tools' GNU-style headers).
fn put_octal_full(field: &mut [u8], value: u64, path: &str) -> Result<(), TarError> {
    let digits = field.len();
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(TarError::FieldOverflow {
            path: path.to_string(),
            value,
        });
    }
    field.copy_from_slice(text.as_bytes());
    Ok(())
}

fn finish_checksum(b: &mut [u8; BLOCK]) {
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let text = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = encode_pax_records(&[("ctime".into(), b"0".to_vec())]);
        assert_eq!(r, b"11 ctime=0\n");
        let r = encode_pax_records(&[(
            "APK-TOOLS.checksum.SHA1".into(),
            b"9db6f074fca0a903137b91c7c866b21d4e7205a7".to_vec(),
        )]);
        assert_eq!(&r[..3], b"68 ");
        assert_eq!(r.len(), 68);
        // Crossing a digit boundary: 98 bytes of body plus two digits would be exactly
        // 100, which itself needs three digits.
        let r = encode_pax_records(&[("k".into(), vec![b'v'; 94])]);
        assert_eq!(r.len(), 101);
        assert!(r.starts_with(b"101 "));
    }

    #[test]
    fn long_names_split_at_a_slash() {
        let name = format!("{}/{}", "a".repeat(120), "b".repeat(50));
        let (n, p) = split_ustar_name(&name).unwrap();
        assert_eq!(n, "b".repeat(50));
        assert_eq!(p, "a".repeat(120));
        assert!(split_ustar_name(&"c".repeat(101)).is_none());
    }

    #[test]
    fn gnu_long_names_get_a_longlink_entry() {
        let name = format!("{}/{}", "p".repeat(60), "q".repeat(60));
        let h = Header::file(name.clone(), 0o755, 3, 1_700_000_000);
        let mut out = Vec::new();
        let n = write_entry(&mut out, Flavor::Gnu, &h, &mut &b"abc"[..]).unwrap();
        assert_eq!(n, out.len() as u64);
        assert_eq!(out.len(), 4 * BLOCK);
        assert_eq!(&out[..14], b"././@LongLink\0");
        assert_eq!(out[156], b'L');
        assert_eq!(&out[124..136], b"000000000171"); // 121 = name without its NUL
        assert_eq!(&out[100..108], b"0000755\0");
        assert_eq!(&out[BLOCK..BLOCK + name.len()], name.as_bytes());
        assert_eq!(out[BLOCK + name.len()], 0);
        // The real header keeps the first 99 bytes, NUL-terminated, as `strlcpy` does.
        let hdr = &out[2 * BLOCK..3 * BLOCK];
        assert_eq!(&hdr[..99], &name.as_bytes()[..99]);
        assert_eq!(hdr[99], 0);
        assert_eq!(hdr[156], b'0');
        // Our reader takes the long name back.
        let mut r = super::super::TarReader::new(&out[..]);
        assert_eq!(r.next_entry().unwrap().unwrap().path, name);
        let too_long = Header::file("x".repeat(512), 0o755, 0, 0);
        assert!(matches!(
            write_entry(&mut Vec::new(), Flavor::Gnu, &too_long, &mut io::empty()),
            Err(TarError::NameTooLong { limit: 511, .. })
        ));
    }

    #[test]
    fn header_checksum_matches_gnu_format() {
        let h = Header::file("DESCRIPTION", 0o644, 12, 1_700_000_000);
        let b = encode_header(Flavor::Gnu, &h, "DESCRIPTION", "").unwrap();
        assert_eq!(&b[124..136], b"000000000014");
        assert_eq!(&b[136..148], b"014524770400");
        assert_eq!(&b[148..156], b"011420\0 ");
    }
}
