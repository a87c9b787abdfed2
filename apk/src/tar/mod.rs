//! Tar as apk and abuild write and read it (apk-format.md §1.1, §1.3, §3.1, §4.2).
//!
//! [`write`] emits headers byte for byte like GNU tar + abuild-tar and like apk-tools' own
//! writer; [`read`] is a bounded, lenient streaming reader.

pub mod read;
pub mod write;

pub use read::{Entry, TarReader};
pub use write::{Flavor, Header, write_entry, write_trailer};

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Tar entry types apk knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// Regular file (`0`, also `7` and NUL when reading).
    File,
    /// Hard link to an earlier entry (`1`).
    HardLink,
    /// Symbolic link (`2`).
    Symlink,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// Directory (`5`).
    Dir,
    /// FIFO (`6`).
    Fifo,
}

impl EntryType {
    /// The ustar typeflag byte.
    pub fn typeflag(self) -> u8 {
        match self {
            Self::File => b'0',
            Self::HardLink => b'1',
            Self::Symlink => b'2',
            Self::CharDevice => b'3',
            Self::BlockDevice => b'4',
            Self::Dir => b'5',
            Self::Fifo => b'6',
        }
    }

    /// Parses a typeflag; `None` for types apk does not install.
    pub fn from_typeflag(flag: u8) -> Option<Self> {
        Some(match flag {
            b'0' | b'7' | 0 => Self::File,
            b'1' => Self::HardLink,
            b'2' => Self::Symlink,
            b'3' => Self::CharDevice,
            b'4' => Self::BlockDevice,
            b'5' => Self::Dir,
            b'6' => Self::Fifo,
            _ => return None,
        })
    }
}

/// Errors reading or writing tar streams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    /// The stream ended inside a header or content.
    #[error("tar stream is truncated at byte {offset}: {detail}")]
    Truncated {
        /// Offset in the uncompressed stream.
        offset: u64,
        /// What was being read.
        detail: String,
    },
    /// A header that is not valid tar.
    #[error("bad tar header at byte {offset}: {detail}")]
    BadHeader {
        /// Offset of the header in the uncompressed stream.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A name or link target longer than the format or apk allows.
    #[error("name `{name}` is longer than {limit} bytes")]
    NameTooLong {
        /// The name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// A numeric value that does not fit its header field.
    #[error("`{path}`: value {value} does not fit in a tar header field")]
    FieldOverflow {
        /// Entry path.
        path: String,
        /// The value.
        value: u64,
    },
    /// The content source gave fewer bytes than the header promised.
    #[error(
        "`{path}`: expected {expected} bytes of content, got {actual} (file changed while packaging?)"
    )]
    ShortContent {
        /// Entry path.
        path: String,
        /// Size in the header.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// Underlying I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
