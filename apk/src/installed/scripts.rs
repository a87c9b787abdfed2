//! `lib/apk/db/scripts.tar`: every installed package's scripts (apk-format.md §4.2).
//!
//! An uncompressed tar in apk's own GNU-style headers (`apk_tar_write_entry`): one regular
//! entry per script named `<P>-<V>.<C>.<type>`, mode 0755, owner root, mtime = the package's
//! build date, then two zero blocks (no record padding). apk-tools 2.14 writes `<C>` as `Q1`
//! base64 and reads `X1` hex too; it parses the name from the right, so a `/` inside the
//! base64 is harmless. Names of 100 bytes or more get a GNU `././@LongLink` entry as 3.x
//! writes (2.14 would truncate them).

use std::io::Read as _;

use super::InstalledError;
use super::db::InstalledDb;
use crate::checksum::Checksum;
use crate::index::IndexEntry;
use crate::tar::{self, Flavor, Header, TarReader};

/// The script types apk stores, in apk's order (`APK_SCRIPT_PRE_INSTALL` …), which is the
/// order it writes a package's scripts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScriptType {
    /// `.pre-install`.
    PreInstall,
    /// `.post-install`.
    PostInstall,
    /// `.pre-deinstall`.
    PreDeinstall,
    /// `.post-deinstall`.
    PostDeinstall,
    /// `.pre-upgrade`.
    PreUpgrade,
    /// `.post-upgrade`.
    PostUpgrade,
    /// `.trigger`.
    Trigger,
}

impl ScriptType {
    /// All types in apk's order.
    pub const ALL: [Self; 7] = [
        Self::PreInstall,
        Self::PostInstall,
        Self::PreDeinstall,
        Self::PostDeinstall,
        Self::PreUpgrade,
        Self::PostUpgrade,
        Self::Trigger,
    ];

    /// The name without a dot, as in `scripts.tar` (`post-install`).
    pub fn name(self) -> &'static str {
        match self {
            Self::PreInstall => "pre-install",
            Self::PostInstall => "post-install",
            Self::PreDeinstall => "pre-deinstall",
            Self::PostDeinstall => "post-deinstall",
            Self::PreUpgrade => "pre-upgrade",
            Self::PostUpgrade => "post-upgrade",
            Self::Trigger => "trigger",
        }
    }

    /// Parses a name without the dot (`apk_script_type`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Parses a control-member entry name (`.post-install`).
    pub fn from_control_name(name: &str) -> Option<Self> {
        name.strip_prefix('.').and_then(Self::from_name)
    }
}

/// One script of an installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// `<P>-<V>` as in the entry name (apk identifies the package by `checksum` alone).
    pub package: String,
    /// The package's `C:`.
    pub checksum: Checksum,
    /// Which script.
    pub kind: ScriptType,
    /// Entry mtime: the package's build date (`t:`).
    pub mtime: u64,
    /// The script itself.
    pub content: Vec<u8>,
}

impl Script {
    /// The tar entry name `<P>-<V>.<C>.<type>`.
    pub fn entry_name(&self) -> String {
        format!("{}.{}.{}", self.package, self.checksum, self.kind.name())
    }

    /// The scripts of a package whose index entry is `entry`, from its control-member
    /// scripts (`Package::scripts`: `(".post-install", bytes)` …), in apk's order. Names
    /// that are not script types are ignored, as apk ignores them.
    pub fn for_package(entry: &IndexEntry, scripts: &[(String, Vec<u8>)]) -> Vec<Self> {
        let mut out: Vec<Self> = scripts
            .iter()
            .filter_map(|(name, content)| {
                Some(Self {
                    package: format!("{}-{}", entry.name, entry.version),
                    checksum: entry.checksum,
                    kind: ScriptType::from_control_name(name)?,
                    mtime: entry.build_time,
                    content: content.clone(),
                })
            })
            .collect();
        out.sort_by_key(|s| s.kind);
        out
    }

    /// Splits an entry name from the right as `apk_read_script_archive_entry` does; `None`
    /// for names apk ignores (no type, unknown type, no checksum).
    fn parse_name(name: &str) -> Option<(String, Checksum, ScriptType)> {
        let (rest, kind) = name.rsplit_once('.')?;
        let kind = ScriptType::from_name(kind)?;
        let (package, checksum) = rest.rsplit_once('.')?;
        Some((package.to_string(), Checksum::parse(checksum)?, kind))
    }
}

/// The content of `scripts.tar`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptsDb {
    /// Scripts in file order.
    pub scripts: Vec<Script>,
}

impl ScriptsDb {
    /// Reads `scripts.tar`. Like apk, entries that are not regular files or whose names are
    /// not `<…>.<checksum>.<type>` are skipped; an empty file is an empty database.
    pub fn parse(bytes: &[u8]) -> Result<Self, InstalledError> {
        let tar_err = |source| InstalledError::Tar { source };
        let mut reader = TarReader::new(bytes);
        let mut scripts = Vec::new();
        while let Some(e) = reader.next_entry().map_err(tar_err)? {
            if e.kind != tar::EntryType::File {
                continue;
            }
            let Some((package, checksum, kind)) = Script::parse_name(&e.path) else {
                continue;
            };
            let mut content = Vec::new();
            reader.content().read_to_end(&mut content)?;
            scripts.push(Script {
                package,
                checksum,
                kind,
                mtime: e.mtime,
                content,
            });
        }
        reader.check_tail().map_err(tar_err)?;
        Ok(Self { scripts })
    }

    /// The tar bytes: each script in order as apk writes it, then two zero blocks. An empty
    /// database is 1024 zero bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InstalledError> {
        let mut out = Vec::new();
        let mut written = 0;
        for s in &self.scripts {
            let header = Header::file(s.entry_name(), 0o755, s.content.len() as u64, s.mtime);
            written += tar::write_entry(&mut out, Flavor::Gnu, &header, &mut &s.content[..])
                .map_err(|source| InstalledError::Tar { source })?;
        }
        tar::write_trailer(&mut out, written, 0)?;
        Ok(out)
    }

    /// The scripts apk would write for `db`: those of installed packages only (apk attaches
    /// scripts to installed packages by checksum and drops the rest), packages in the
    /// database's order, each package's scripts in [`ScriptType`] order.
    pub fn canonical(&self, db: &InstalledDb) -> Self {
        let mut scripts = Vec::new();
        for pkg in db.sorted() {
            let mut mine: Vec<&Script> = self
                .scripts
                .iter()
                .filter(|s| s.checksum == pkg.entry.checksum)
                .collect();
            mine.sort_by_key(|s| s.kind);
            // apk keeps one script per type; the last one read wins.
            mine.reverse();
            mine.dedup_by_key(|s| s.kind);
            mine.reverse();
            scripts.extend(mine.into_iter().cloned());
        }
        Self { scripts }
    }

    /// Removes the scripts of the package with checksum `checksum`.
    pub fn remove(&mut self, checksum: &Checksum) {
        self.scripts.retain(|s| s.checksum != *checksum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(kind: ScriptType, content: &[u8]) -> Script {
        Script {
            package: "hello-1.0-r0".into(),
            checksum: Checksum::parse("Q1UYYMDeBTUd7EmTYCzDHrazip1dk=").unwrap(),
            kind,
            mtime: 1_700_000_000,
            content: content.to_vec(),
        }
    }

    #[test]
    fn empty_database_is_two_zero_blocks() {
        let bytes = ScriptsDb::default().to_bytes().unwrap();
        assert_eq!(bytes, vec![0; 1024]);
        assert_eq!(ScriptsDb::parse(&bytes).unwrap(), ScriptsDb::default());
        assert_eq!(ScriptsDb::parse(&[]).unwrap(), ScriptsDb::default());
    }

    #[test]
    fn names_parse_from_the_right() {
        let s = script(ScriptType::PostInstall, b"x");
        assert_eq!(
            s.entry_name(),
            "hello-1.0-r0.Q1UYYMDeBTUd7EmTYCzDHrazip1dk=.post-install"
        );
        let (p, c, k) = Script::parse_name(&s.entry_name()).unwrap();
        assert_eq!((p.as_str(), c, k), ("hello-1.0-r0", s.checksum, s.kind));
        let hex = format!("a.b-1.X1{}.trigger", s.checksum.to_hex());
        assert_eq!(Script::parse_name(&hex).unwrap().1, s.checksum);
        assert!(Script::parse_name("hello.Q1UYYMDeBTUd7EmTYCzDHrazip1dk=.install").is_none());
        assert!(Script::parse_name("post-install").is_none());
    }

    #[test]
    fn round_trip_with_a_long_name_and_canonical_order() {
        let mut long = script(ScriptType::Trigger, b"#!/bin/sh\n");
        long.package = format!("{}-1.0-r0", "n".repeat(90));
        let db = ScriptsDb {
            scripts: vec![script(ScriptType::PostInstall, b"a"), long],
        };
        let bytes = db.to_bytes().unwrap();
        assert_eq!(ScriptsDb::parse(&bytes).unwrap(), db);
        let installed = InstalledDb::parse(
            "C:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\nP:hello\nV:1.0-r0\nS:1\nI:1\nT:\nU:\nL:\n\n",
        )
        .unwrap();
        let mut messy = db.clone();
        messy
            .scripts
            .insert(0, script(ScriptType::PreInstall, b"p"));
        messy
            .scripts
            .push(script(ScriptType::PostInstall, b"newer"));
        let mut orphan = script(ScriptType::PreInstall, b"o");
        orphan.checksum = Checksum([1; 20]);
        messy.scripts.push(orphan);
        let kinds: Vec<_> = messy
            .canonical(&installed)
            .scripts
            .iter()
            .map(|s| (s.kind, s.content.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (ScriptType::PreInstall, b"p".to_vec()),
                (ScriptType::PostInstall, b"newer".to_vec()),
                (ScriptType::Trigger, b"#!/bin/sh\n".to_vec()),
            ]
        );
    }
}
