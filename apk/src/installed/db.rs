//! `lib/apk/db/installed`: the text database of installed packages (apk-format.md §4.1).
//!
//! Each block is an index entry (§3.2) followed by `r:`, `q:`, `s:`, `f:` and the file list
//! grouped by directory. The reader follows apk-tools 2.14's `apk_db_fdb_read`: any field
//! order, `M:`/`R:` need an `F:` and `a:`/`Z:` an `R:`, unknown letters are kept when they come
//! before the first installed-only line and refused after it ("This apk-tools is too old").
//! The writer follows `apk_db_write_fdb` byte for byte.

use std::fmt::Write as _;

use super::{DbFile, InstalledError};
use crate::checksum::Checksum;
use crate::index::IndexEntry;

/// Letters that only appear in the installed database (never in a repository index).
const INSTALLED_LETTERS: &str = "FMRaZrqsf";
/// `f:` flags apk-tools knows, in the order `apk_db_write_fdb` writes them.
const FLAG_ORDER: &str = "fsxS";

/// Owner, group, permissions and xattr digest of a directory (`M:`) or file (`a:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Acl {
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    /// SHA-1 over the sorted xattrs ([`super::xattr_digest`]), if the entry had any.
    pub xattr_digest: Option<Checksum>,
}

impl Acl {
    /// apk's default for directories (`0:0:755`), which `M:` is omitted for.
    pub const DEFAULT_DIR: Self = Self {
        uid: 0,
        gid: 0,
        mode: 0o755,
        xattr_digest: None,
    };
    /// apk's default for files (`0:0:644`), which `a:` is omitted for.
    pub const DEFAULT_FILE: Self = Self {
        uid: 0,
        gid: 0,
        mode: 0o644,
        xattr_digest: None,
    };

    /// `Some(self)` unless it equals `default`: apk compares atomized ACLs with its defaults
    /// and writes only the ones that differ.
    pub fn unless_default(self, default: Self) -> Option<Self> {
        (self != default).then_some(self)
    }

    /// Parses `uid:gid:mode[:digest]` (decimal, decimal, octal, `Q1…`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.splitn(4, ':');
        let mut number = |what: &str, radix: u32| {
            let part = parts.next().unwrap_or_default();
            if part.is_empty() || !part.chars().all(|c| c.is_digit(radix)) {
                return Err(format!(
                    "{what} must be a number, found {part:?} in {text:?}"
                ));
            }
            u32::from_str_radix(part, radix).map_err(|e| format!("{what} {part:?}: {e}"))
        };
        let uid = number("uid", 10)?;
        let gid = number("gid", 10)?;
        let mode = number("mode", 8)?;
        if mode > 0o7777 {
            return Err(format!("mode {mode:o} has bits beyond 7777"));
        }
        let xattr_digest = match parts.next() {
            None => None,
            Some(d) => Some(
                Checksum::parse(d).ok_or_else(|| format!("xattr digest is not Q1/X1: {d:?}"))?,
            ),
        };
        Ok(Self {
            uid,
            gid,
            mode,
            xattr_digest,
        })
    }
}

impl std::fmt::Display for Acl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{:o}", self.uid, self.gid, self.mode)?;
        if let Some(d) = &self.xattr_digest {
            write!(f, ":{d}")?;
        }
        Ok(())
    }
}

/// A file, symlink, hard link or device owned by a package (`R:` with `a:` and `Z:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledFile {
    /// Base name inside its directory.
    pub name: String,
    /// `a:` when not `0:0:644` without xattrs.
    pub acl: Option<Acl>,
    /// `Z:` content digest (symlinks: of the target; hard links: the target file's).
    pub digest: Option<Checksum>,
}

/// A directory of a package and the files it owns there (`F:` with `M:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledDir {
    /// Relative path without leading or trailing `/`; empty for the root directory.
    pub path: String,
    /// `M:` when not `0:0:755` without xattrs.
    pub acl: Option<Acl>,
    /// `R:` entries in archive order.
    pub files: Vec<InstalledFile>,
}

/// One block of the installed database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The index lines; `C:` must equal the repository's for apk to see the same build.
    pub entry: IndexEntry,
    /// `r:` atoms from `.PKGINFO` `replaces`.
    pub replaces: Vec<String>,
    /// `q:` from `.PKGINFO` `replaces_priority` (written when non-zero).
    pub replaces_priority: Option<u32>,
    /// `s:` repository tag the package was pinned to (`name@tag`), without the `@`.
    pub repo_tag: Option<String>,
    /// `f:` flags: `f` broken files, `s` broken script, `x` broken xattrs, `S` SHA-256/160
    /// digests (3.x). Written in apk's order `fsxS`.
    pub flags: String,
    /// `F:` directories in the order the data tar first listed them.
    pub dirs: Vec<InstalledDir>,
}

impl InstalledPackage {
    /// A block for `entry` without files or installed-only fields.
    pub fn new(entry: IndexEntry) -> Self {
        Self {
            entry,
            replaces: Vec::new(),
            replaces_priority: None,
            repo_tag: None,
            flags: String::new(),
            dirs: Vec::new(),
        }
    }

    /// Index of the directory `path`, as apk's `find_diri` finds it.
    pub fn dir_index(&self, path: &str) -> Option<usize> {
        self.dirs.iter().position(|d| d.path == path)
    }

    /// Adds flag `flag` (`f`, `s`, `x` or `S`) unless present.
    pub fn set_flag(&mut self, flag: char) {
        if !self.flags.contains(flag) {
            self.flags.push(flag);
        }
    }

    /// Appends the block (its lines and the empty separator line) in apk's order.
    pub fn write_block(&self, out: &mut String) {
        self.entry.write_lines(out);
        let mut line = |letter: char, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{letter}:{value}");
        };
        if !self.replaces.is_empty() {
            line('r', &self.replaces.join(" "));
        }
        if let Some(q) = self.replaces_priority.filter(|&q| q != 0) {
            line('q', &q);
        }
        if let Some(tag) = self.repo_tag.as_deref().filter(|t| !t.is_empty()) {
            line('s', &tag);
        }
        let flags: String = FLAG_ORDER
            .chars()
            .filter(|&c| self.flags.contains(c))
            .collect();
        if !flags.is_empty() {
            line('f', &flags);
        }
        for dir in &self.dirs {
            line('F', &dir.path);
            if let Some(acl) = dir.acl.and_then(|a| a.unless_default(Acl::DEFAULT_DIR)) {
                line('M', &acl);
            }
            for file in &dir.files {
                line('R', &file.name);
                if let Some(acl) = file.acl.and_then(|a| a.unless_default(Acl::DEFAULT_FILE)) {
                    line('a', &acl);
                }
                if let Some(digest) = &file.digest {
                    line('Z', digest);
                }
            }
        }
        out.push('\n');
    }
}

/// The whole `lib/apk/db/installed`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstalledDb {
    /// Blocks in file order (rendering sorts them).
    pub packages: Vec<InstalledPackage>,
}

impl InstalledDb {
    /// Parses the text of `lib/apk/db/installed`.
    pub fn parse(text: &str) -> Result<Self, InstalledError> {
        let mut parser = Parser::default();
        let mut lines = 0;
        for (i, line) in text.split('\n').enumerate() {
            lines = i + 1;
            parser.line(lines, line)?;
        }
        parser.end_block(lines)?;
        Ok(Self {
            packages: parser.packages,
        })
    }

    /// Reads `lib/apk/db/installed` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InstalledError> {
        Self::parse(super::utf8(DbFile::Installed, bytes)?)
    }

    /// The file as apk writes it: blocks sorted like the index (§3.4), each followed by an
    /// empty line. An empty database is an empty file.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in self.sorted() {
            p.write_block(&mut out);
        }
        out
    }

    /// The packages in apk's order (`apk_db_sorted_installed_packages`).
    pub fn sorted(&self) -> Vec<&InstalledPackage> {
        let mut refs: Vec<_> = self.packages.iter().collect();
        refs.sort_by(|a, b| a.entry.order(&b.entry));
        refs
    }

    /// The installed package called `name`.
    pub fn get(&self, name: &str) -> Option<&InstalledPackage> {
        self.packages.iter().find(|p| p.entry.name == name)
    }

    /// The installed package whose `C:` is `checksum`.
    pub fn by_checksum(&self, checksum: &Checksum) -> Option<&InstalledPackage> {
        self.packages.iter().find(|p| p.entry.checksum == *checksum)
    }

    /// Adds `pkg`, replacing an installed package of the same name (apk installs one version
    /// of a name). Returns the replaced one.
    pub fn upsert(&mut self, pkg: InstalledPackage) -> Option<InstalledPackage> {
        match self
            .packages
            .iter_mut()
            .find(|p| p.entry.name == pkg.entry.name)
        {
            Some(slot) => Some(std::mem::replace(slot, pkg)),
            None => {
                self.packages.push(pkg);
                None
            }
        }
    }

    /// Removes the package called `name`.
    pub fn remove(&mut self, name: &str) -> Option<InstalledPackage> {
        let i = self.packages.iter().position(|p| p.entry.name == name)?;
        Some(self.packages.remove(i))
    }
}

/// `apk_db_fdb_read` as a state machine over lines.
#[derive(Default)]
struct Parser {
    packages: Vec<InstalledPackage>,
    current: Option<InstalledPackage>,
    /// An installed-only line was seen in this block: apk has created the installed record,
    /// and from now on an unknown letter is an error.
    installed: bool,
    dir: Option<usize>,
    file: Option<usize>,
}

impl Parser {
    fn line(&mut self, lineno: usize, line: &str) -> Result<(), InstalledError> {
        let err = |letter, reason: String| {
            InstalledError::line(DbFile::Installed, lineno, letter, reason)
        };
        // apk: a line shorter than two bytes ends the record.
        if line.len() < 2 {
            return self.end_block(lineno);
        }
        let bytes = line.as_bytes();
        if bytes[1] != b':' {
            return Err(err(None, format!("expected `X:value`, found {line:?}")));
        }
        let letter = char::from(bytes[0]);
        let value = &line[2..];
        let pkg = self
            .current
            .get_or_insert_with(|| InstalledPackage::new(IndexEntry::empty()));
        if pkg
            .entry
            .apply_line(letter, value)
            .map_err(|reason| err(Some(letter), reason))?
        {
            return Ok(());
        }
        if !INSTALLED_LETTERS.contains(letter) {
            if self.installed {
                return Err(err(
                    Some(letter),
                    "unknown field after the file list begins (apk-tools 2.14 refuses such a database as \"too old\")"
                        .into(),
                ));
            }
            // Before the first installed-only line apk skips it; we keep it for rewriting.
            pkg.entry.other.push((letter, value.to_string()));
            return Ok(());
        }
        if pkg.entry.name.is_empty() {
            return Err(err(
                Some(letter),
                "installed-database field before `P:` (apk records the package at its first such line)"
                    .into(),
            ));
        }
        self.installed = true;
        let cursor = (&mut self.dir, &mut self.file);
        installed_line(pkg, cursor, letter, value).map_err(|reason| err(Some(letter), reason))
    }

    fn end_block(&mut self, lineno: usize) -> Result<(), InstalledError> {
        self.installed = false;
        self.dir = None;
        self.file = None;
        let Some(pkg) = self.current.take() else {
            return Ok(());
        };
        let err = |reason: String| InstalledError::line(DbFile::Installed, lineno, None, reason);
        if pkg.entry.name.is_empty() || pkg.entry.version.is_empty() {
            return Err(err("package block without `P:` or `V:`".into()));
        }
        if pkg.entry.checksum.0 == [0; 20] {
            return Err(err(format!(
                "package `{}` has no `C:` checksum",
                pkg.entry.name
            )));
        }
        self.packages.push(pkg);
        Ok(())
    }
}

/// Where the file list is: the current `F:` directory and `R:` file of the block.
type Cursor<'a> = (&'a mut Option<usize>, &'a mut Option<usize>);

/// A line only the installed database has (`F:`, `M:`, `R:`, `a:`, `Z:`, `r:`, `q:`, `s:`,
/// `f:`); the error is the reason, the caller adds the line.
fn installed_line(
    pkg: &mut InstalledPackage,
    (dir, file): Cursor<'_>,
    letter: char,
    value: &str,
) -> Result<(), String> {
    match letter {
        'F' => {
            // A repeated `F:` reopens the directory (`find_diri`).
            let i = pkg.dir_index(value).unwrap_or_else(|| {
                pkg.dirs.push(InstalledDir {
                    path: value.to_string(),
                    acl: None,
                    files: Vec::new(),
                });
                pkg.dirs.len() - 1
            });
            *dir = Some(i);
            *file = None;
        }
        'M' => {
            let d = dir.ok_or("without a preceding `F:`")?;
            pkg.dirs[d].acl = Acl::parse(value)?.unless_default(Acl::DEFAULT_DIR);
        }
        'R' => {
            let d = dir.ok_or("without a preceding `F:`")?;
            let files = &mut pkg.dirs[d].files;
            files.push(InstalledFile {
                name: value.to_string(),
                acl: None,
                digest: None,
            });
            *file = Some(files.len() - 1);
        }
        'a' | 'Z' => {
            let (d, f) = dir.zip(*file).ok_or("without a preceding `R:`")?;
            file_line(&mut pkg.dirs[d].files[f], letter, value)?;
        }
        'r' => pkg.replaces = value.split_whitespace().map(str::to_string).collect(),
        'q' => {
            pkg.replaces_priority = Some(
                value
                    .parse()
                    .map_err(|_| format!("must be a number, found {value:?}"))?,
            );
        }
        's' => pkg.repo_tag = Some(value.to_string()),
        'f' => {
            if let Some(bad) = value.chars().find(|c| !FLAG_ORDER.contains(*c)) {
                return Err(format!(
                    "unknown flag {bad:?} (apk-tools knows `f`, `s`, `x`, `S`)"
                ));
            }
            pkg.flags = value.to_string();
        }
        _ => unreachable!("INSTALLED_LETTERS checked by the caller"),
    }
    Ok(())
}

/// `a:` (the file's ACL) or `Z:` (its digest) of the current `R:` file.
fn file_line(file: &mut InstalledFile, letter: char, value: &str) -> Result<(), String> {
    if letter == 'a' {
        file.acl = Acl::parse(value)?.unless_default(Acl::DEFAULT_FILE);
    } else {
        file.digest =
            Some(Checksum::parse(value).ok_or_else(|| format!("not a Q1/X1 digest: {value:?}"))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str =
        "C:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\nP:hello\nV:1.0-r0\nS:1\nI:2\nT:\nU:\nL:\n";

    #[test]
    fn acl_round_trip_and_defaults() {
        let a = Acl::parse("0:0:1777").unwrap();
        assert_eq!(a.mode, 0o1777);
        assert_eq!(a.to_string(), "0:0:1777");
        let x = Acl::parse("100:101:2755:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=").unwrap();
        assert_eq!(x.to_string(), "100:101:2755:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=");
        assert_eq!(
            Acl::parse("0:0:755")
                .unwrap()
                .unless_default(Acl::DEFAULT_DIR),
            None
        );
        for bad in [
            "0:0",
            "0:0:9",
            "a:0:755",
            "0:0:755:junk",
            "0:0:17777",
            ":0:755",
        ] {
            assert!(Acl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_order_is_free_and_output_canonical() {
        let text = format!(
            "F:usr\nR:a\nZ:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\na:0:0:755\nq:5\n{BLOCK}r:foo bar\nf:sf\n\n"
        );
        let db = InstalledDb::parse(&text);
        // `F:` before `P:` is refused, as apk cannot record a nameless package.
        assert!(matches!(
            db,
            Err(InstalledError::Line {
                line: 1,
                letter: Some('F'),
                ..
            })
        ));
        let text = format!(
            "{BLOCK}F:usr\nR:a\nZ:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\na:0:0:755\nq:5\nr:foo bar\nf:sf\nF:usr\nR:b\n\n"
        );
        let db = InstalledDb::parse(&text).unwrap();
        assert_eq!(
            db.render(),
            format!(
                "{BLOCK}r:foo bar\nq:5\nf:fs\nF:usr\nR:a\na:0:0:755\nZ:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\nR:b\n\n"
            )
        );
    }

    #[test]
    fn file_lines_need_their_context() {
        for (body, letter) in [
            ("M:0:0:700\n", 'M'),
            ("R:x\n", 'R'),
            ("F:a\nZ:Q1UYYMDeBTUd7EmTYCzDHrazip1dk=\n", 'Z'),
            ("F:a\na:0:0:600\n", 'a'),
        ] {
            let err = InstalledDb::parse(&format!("{BLOCK}{body}\n")).unwrap_err();
            let InstalledError::Line {
                line, letter: l, ..
            } = err
            else {
                panic!("{err}");
            };
            assert_eq!(l, Some(letter));
            assert_eq!(line, BLOCK.lines().count() + body.lines().count());
        }
        // A new `F:` forgets the current file: `a:` right after it is refused.
        assert!(InstalledDb::parse(&format!("{BLOCK}F:a\nR:x\nF:b\na:0:0:600\n\n")).is_err());
    }

    #[test]
    fn unknown_letters_kept_before_the_file_list_refused_after() {
        let db = InstalledDb::parse(&format!("{BLOCK}g:tag1 tag2\nF:usr\n\n")).unwrap();
        assert_eq!(db.packages[0].entry.other, [('g', "tag1 tag2".to_string())]);
        assert!(db.render().contains("L:\ng:tag1 tag2\nF:usr\n"));
        let err = InstalledDb::parse(&format!("{BLOCK}F:usr\ng:x\n\n")).unwrap_err();
        assert!(err.to_string().contains("too old"), "{err}");
        assert!(InstalledDb::parse(&format!("{BLOCK}f:z\n\n")).is_err());
        assert!(InstalledDb::parse("P:x\nV:1\n\n").is_err(), "no C:");
        assert!(InstalledDb::parse("Pfoo\n").is_err());
    }

    #[test]
    fn blocks_without_files_and_the_root_directory() {
        let text = format!(
            "{BLOCK}\n{}F:\nR:init\na:0:0:755\n\n",
            BLOCK.replace("hello", "aaa")
        );
        let db = InstalledDb::parse(&text).unwrap();
        assert_eq!(db.packages.len(), 2);
        assert!(db.packages[0].dirs.is_empty());
        assert_eq!(db.packages[1].dirs[0].path, "");
        // Sorted by name on output.
        assert!(db.render().starts_with(&BLOCK.replace("hello", "aaa")));
        assert_eq!(InstalledDb::parse("").unwrap().render(), "");
        assert_eq!(InstalledDb::parse("\n\n").unwrap().packages.len(), 0);
    }
}
