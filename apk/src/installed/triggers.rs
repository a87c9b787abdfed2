//! `lib/apk/db/triggers`: the trigger globs of installed packages (apk-format.md §4.3).
//!
//! One line per package that has triggers, `<C> <glob> <glob>…\n`, packages in the
//! installed database's order (`apk_db_triggers_write`); an empty file when none. The globs
//! come from `.PKGINFO` `triggers`; 2.14 fires only those starting with `/` (3.x also `+/`).

use super::db::InstalledDb;
use super::{DbFile, InstalledError};
use crate::checksum::Checksum;

/// The triggers of one installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageTriggers {
    /// The package's `C:`.
    pub checksum: Checksum,
    /// Globs in `.PKGINFO` order.
    pub globs: Vec<String>,
}

/// The content of `lib/apk/db/triggers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggersDb {
    /// One entry per package, in file order.
    pub entries: Vec<PackageTriggers>,
}

impl TriggersDb {
    /// Parses the file. Empty lines are skipped; a line must start with a `Q1`/`X1` checksum
    /// followed by a space or its end.
    pub fn parse(text: &str) -> Result<Self, InstalledError> {
        let mut entries = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let (sum, globs) = line.split_once(' ').unwrap_or((line, ""));
            let checksum = Checksum::parse(sum).ok_or_else(|| {
                InstalledError::line(
                    DbFile::Triggers,
                    i + 1,
                    None,
                    format!("expected `<Q1 checksum> <glob>…`, found {line:?}"),
                )
            })?;
            entries.push(PackageTriggers {
                checksum,
                globs: globs.split_whitespace().map(str::to_string).collect(),
            });
        }
        Ok(Self { entries })
    }

    /// Reads the file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InstalledError> {
        Self::parse(super::utf8(DbFile::Triggers, bytes)?)
    }

    /// The file as apk writes it; entries without globs are not written.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in self.entries.iter().filter(|e| !e.globs.is_empty()) {
            out.push_str(&e.checksum.to_string());
            for g in &e.globs {
                out.push(' ');
                out.push_str(g);
            }
            out.push('\n');
        }
        out
    }

    /// The entries apk would write for `db`: installed packages only, in the database's
    /// order (apk attaches triggers to installed packages by checksum; a later line for the
    /// same package replaces the earlier).
    pub fn canonical(&self, db: &InstalledDb) -> Self {
        let entries = db
            .sorted()
            .into_iter()
            .filter_map(|p| {
                self.entries
                    .iter()
                    .rev()
                    .find(|e| e.checksum == p.entry.checksum)
                    .cloned()
            })
            .collect();
        Self { entries }
    }

    /// Sets the globs of the package with checksum `checksum` (none removes its line).
    pub fn set(&mut self, checksum: Checksum, globs: Vec<String>) {
        self.entries.retain(|e| e.checksum != checksum);
        if !globs.is_empty() {
            self.entries.push(PackageTriggers { checksum, globs });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let text = "Q1UYYMDeBTUd7EmTYCzDHrazip1dk= /usr/share/fonts/* /usr/lib/gdk-pixbuf-2.0/*\n";
        let db = TriggersDb::parse(text).unwrap();
        assert_eq!(db.entries[0].globs.len(), 2);
        assert_eq!(db.render(), text);
        assert_eq!(TriggersDb::parse("").unwrap().render(), "");
        let err = TriggersDb::parse("\nnot-a-sum /x\n").unwrap_err();
        assert!(matches!(err, InstalledError::Line { line: 2, .. }), "{err}");
        let mut db = TriggersDb::default();
        db.set(Checksum([1; 20]), vec!["/a".into()]);
        db.set(Checksum([1; 20]), vec!["/b".into()]);
        assert_eq!(db.entries.len(), 1);
        db.set(Checksum([1; 20]), Vec::new());
        assert_eq!(db.render(), "");
    }
}
