//! Reading `.zip` sources (abuild's `default_unpack` runs `unzip`): the central directory,
//! stored and deflated members, directories, symlinks and Unix modes. Zip64 and encryption
//! are refused. Paths are checked by the caller exactly like tar entries.

use std::io::Read as _;

/// One member.
pub struct Member {
    /// Name as stored (`/`-separated; directories end with `/`).
    pub name: String,
    /// Unix mode from the external attributes (0 if the archive has none).
    pub mode: u32,
    /// Content (the target for symlinks), decompressed and CRC-checked.
    pub data: Vec<u8>,
}

impl Member {
    /// A directory entry.
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/') || self.mode & 0o170_000 == 0o040_000
    }

    /// A symlink entry.
    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170_000 == 0o120_000
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<usize, String> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
        .ok_or_else(|| format!("truncated at byte {at}"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at byte {at}"))
}

/// Reads every member of a zip archive held in memory.
pub fn read(bytes: &[u8]) -> Result<Vec<Member>, String> {
    // End of central directory: 22 bytes plus a comment of up to 64 KiB, searched backwards.
    let min = bytes.len().saturating_sub(22 + 0xffff);
    let eocd = (min..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or("no end of central directory record: not a zip file")?;
    let count = u16_at(bytes, eocd + 10)?;
    let mut at = u32_at(bytes, eocd + 16)? as usize;
    if at == 0xffff_ffff || count == 0xffff {
        return Err("zip64 archives are not supported".into());
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if !bytes
            .get(at..)
            .is_some_and(|b| b.starts_with(b"PK\x01\x02"))
        {
            return Err(format!("bad central directory entry at byte {at}"));
        }
        let made_by_unix = bytes.get(at + 5) == Some(&3);
        let flags = u16_at(bytes, at + 8)?;
        let method = u16_at(bytes, at + 10)?;
        let crc = u32_at(bytes, at + 16)?;
        let csize = u32_at(bytes, at + 20)? as usize;
        let usize_ = u32_at(bytes, at + 24)? as usize;
        let (nlen, elen, clen) = (
            u16_at(bytes, at + 28)?,
            u16_at(bytes, at + 30)?,
            u16_at(bytes, at + 32)?,
        );
        let external = u32_at(bytes, at + 38)?;
        let local = u32_at(bytes, at + 42)? as usize;
        let name = bytes.get(at + 46..at + 46 + nlen).ok_or("truncated name")?;
        let name = String::from_utf8_lossy(name).into_owned();
        at += 46 + nlen + elen + clen;
        if flags & 1 != 0 {
            return Err(format!("`{name}` is encrypted"));
        }
        if !bytes
            .get(local..)
            .is_some_and(|b| b.starts_with(b"PK\x03\x04"))
        {
            return Err(format!("`{name}`: bad local header"));
        }
        let data_at = local + 30 + u16_at(bytes, local + 26)? + u16_at(bytes, local + 28)?;
        let raw = bytes
            .get(data_at..data_at + csize)
            .ok_or_else(|| format!("`{name}`: truncated data"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut d = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(raw)
                    .take(usize_ as u64 + 1)
                    .read_to_end(&mut d)
                    .map_err(|e| format!("`{name}`: {e}"))?;
                d
            }
            m => return Err(format!("`{name}`: compression method {m} is not supported")),
        };
        if data.len() != usize_ || crc32fast::hash(&data) != crc {
            return Err(format!(
                "`{name}`: size or CRC does not match (corrupt archive)"
            ));
        }
        out.push(Member {
            name,
            mode: if made_by_unix { external >> 16 } else { 0 },
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut b = bytes;
            // Often make it look like a zip so the parser goes deeper.
            if b.len() > 30 {
                let n = b.len();
                b[n - 22..n - 18].copy_from_slice(b"PK\x05\x06");
            }
            let _ = read(&b);
        }
    }
}
