//! The installed state of a root filesystem, as apk-tools 2.14 keeps it (apk-format.md §4).
//!
//! Four files make a root "apk-managed", all written by apk in one pass after every change:
//! - `lib/apk/db/installed` ([`InstalledDb`], §4.1): one block per package, the index lines
//!   of §3.2 followed by `r q s f` and the file list (`F M R a Z`);
//! - `lib/apk/db/scripts.tar` ([`ScriptsDb`], §4.2): every install script, GNU tar;
//! - `lib/apk/db/triggers` ([`TriggersDb`], §4.3): the trigger globs per package;
//! - `etc/apk/world` ([`World`], §4.4): the atoms the user asked for.
//!
//! [`InstalledPackage::from_package`] builds a block from a package's data entries exactly as
//! apk's extractor records them; [`InstalledState`] loads and writes the four files together
//! and [`init_db`] lays out the empty skeleton of §4.8. Readers follow apk's reader (lenient
//! about field order, strict where apk refuses); writers produce apk's canonical bytes, checked
//! against files the real `apk` wrote (`testkit/fixtures/apk-reference/installed-db`).

mod db;
mod files;
mod ids;
mod scripts;
mod state;
mod triggers;
mod world;

use std::path::PathBuf;

pub use db::{Acl, InstalledDb, InstalledDir, InstalledFile, InstalledPackage};
pub use files::xattr_digest;
pub use ids::IdMap;
pub use scripts::{Script, ScriptType, ScriptsDb};
pub use state::{DeviceNode, InstalledState, RenderedState, device_nodes, init_db};
pub use triggers::{PackageTriggers, TriggersDb};
pub use world::{World, atom_name};

use crate::tar::TarError;

/// `lib/apk/db/installed`, relative to the root.
pub const INSTALLED_PATH: &str = "lib/apk/db/installed";
/// `lib/apk/db/scripts.tar`, relative to the root.
pub const SCRIPTS_PATH: &str = "lib/apk/db/scripts.tar";
/// `lib/apk/db/scripts.tar.gz`: newer apk-tools 3.x write the scripts gzipped here when a
/// root has no `scripts.tar` yet; read as a fallback.
pub const SCRIPTS_GZ_PATH: &str = "lib/apk/db/scripts.tar.gz";
/// `lib/apk/db/triggers`, relative to the root.
pub const TRIGGERS_PATH: &str = "lib/apk/db/triggers";
/// `etc/apk/world`, relative to the root.
pub const WORLD_PATH: &str = "etc/apk/world";
/// `etc/apk/arch`, relative to the root.
pub const ARCH_PATH: &str = "etc/apk/arch";
/// `etc/apk/repositories`, relative to the root.
pub const REPOSITORIES_PATH: &str = "etc/apk/repositories";
/// `lib/apk/db/lock`: 2.14's lock file (3.x prefers `run/apk/db.lock` but still opens this one).
pub const LOCK_PATH: &str = "lib/apk/db/lock";

/// Which file of the installed state an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbFile {
    /// `lib/apk/db/installed`.
    Installed,
    /// `lib/apk/db/scripts.tar`.
    Scripts,
    /// `lib/apk/db/triggers`.
    Triggers,
    /// `etc/apk/world`.
    World,
}

impl DbFile {
    /// The path relative to the root.
    pub fn path(self) -> &'static str {
        match self {
            Self::Installed => INSTALLED_PATH,
            Self::Scripts => SCRIPTS_PATH,
            Self::Triggers => TRIGGERS_PATH,
            Self::World => WORLD_PATH,
        }
    }
}

impl std::fmt::Display for DbFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// Errors reading or writing the installed state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstalledError {
    /// A line of a text database is malformed.
    #[error("{file}:{line}: {}{reason}", letter.map(|l| format!("`{l}:` ")).unwrap_or_default())]
    Line {
        /// The database file.
        file: DbFile,
        /// 1-based line number.
        line: usize,
        /// The field letter, when the line has one.
        letter: Option<char>,
        /// What is wrong.
        reason: String,
    },
    /// A database file is not UTF-8 text.
    #[error("{file} is not UTF-8 text (byte {offset})")]
    NotUtf8 {
        /// The database file.
        file: DbFile,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// `scripts.tar` cannot be read or a script cannot be written into it.
    #[error("{SCRIPTS_PATH}: {source}")]
    Tar {
        /// The tar error.
        #[source]
        source: TarError,
    },
    /// The root has no `etc/apk/world`, which apk requires.
    #[error(
        "`{}` has no {WORLD_PATH}: not an apk root (apk says \"Unable to read database state\"); create it with `init_db`",
        root.display()
    )]
    NotInitialized {
        /// The root.
        root: PathBuf,
    },
    /// An architecture name that cannot go into `etc/apk/arch`.
    #[error("invalid architecture {arch:?}: expected one word such as `x86_64`")]
    InvalidArch {
        /// The name given.
        arch: String,
    },
    /// A path inside the root that resolves outside it, or that is not what it must be.
    #[error("`{}`: {reason}", path.display())]
    UnsafePath {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// File system access failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl InstalledError {
    pub(crate) fn line(
        file: DbFile,
        line: usize,
        letter: Option<char>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Line {
            file,
            line,
            letter,
            reason: reason.into(),
        }
    }
}

/// Interprets `bytes` as the UTF-8 text of `file`.
pub(crate) fn utf8(file: DbFile, bytes: &[u8]) -> Result<&str, InstalledError> {
    std::str::from_utf8(bytes).map_err(|e| InstalledError::NotUtf8 {
        file,
        offset: e.valid_up_to(),
    })
}
