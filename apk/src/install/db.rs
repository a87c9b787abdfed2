//! The installed database of a root: `lib/apk/db/installed`, `scripts.tar`, `triggers` and
//! `etc/apk/world` (apk-format.md §4.1–§4.4), read leniently and written byte for byte as
//! apk 2.14 writes them.

use std::fmt::Write as _;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::InstallError;
use super::script::ScriptKind;
use crate::index::IndexEntry;
use crate::rootfs::RootDir;
use crate::tar::{self, Flavor, Header, TarReader};

/// Owner, group, mode and xattr digest of an installed file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// `Q1…` digest of the xattrs, if any.
    pub xattr: Option<String>,
}

impl Acl {
    fn render(&self) -> String {
        let mut s = format!("{}:{}:{:o}", self.uid, self.gid, self.mode);
        if let Some(x) = &self.xattr {
            s.push(':');
            s.push_str(x);
        }
        s
    }

    fn parse(text: &str) -> Option<Self> {
        let mut it = text.splitn(4, ':');
        let uid = it.next()?.parse().ok()?;
        let gid = it.next()?.parse().ok()?;
        let mode = u32::from_str_radix(it.next()?, 8).ok()?;
        let xattr = it.next().map(str::to_owned);
        Some(Self {
            uid,
            gid,
            mode,
            xattr,
        })
    }

    fn is(&self, uid: u32, gid: u32, mode: u32) -> bool {
        self.uid == uid && self.gid == gid && self.mode == mode && self.xattr.is_none()
    }
}

/// A non-directory entry a package installed (`R:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledFile {
    /// Base name.
    pub name: String,
    /// Owner, group, mode (`a:`).
    pub acl: Acl,
    /// `Z:` digest (`Q1…`).
    pub digest: Option<String>,
}

/// A directory a package lists (`F:`), with the files it installed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledDir {
    /// Relative path, no leading or trailing `/`.
    pub path: String,
    /// Owner, group, mode (`M:`).
    pub acl: Acl,
    /// Files in archive order.
    pub files: Vec<InstalledFile>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The index lines; `C:` is the repository's.
    pub entry: IndexEntry,
    /// `r:` atoms.
    pub replaces: Vec<String>,
    /// `q:`.
    pub replaces_priority: u32,
    /// `s:` repository tag.
    pub tag: Option<String>,
    /// `f:` flags (`f`, `s`, `x`, `S`).
    pub flags: String,
    /// `F:` blocks in archive order.
    pub dirs: Vec<InstalledDir>,
    /// Scripts from `scripts.tar`.
    pub scripts: Vec<(ScriptKind, Vec<u8>)>,
    /// Trigger globs from `triggers`.
    pub triggers: Vec<String>,
}

impl InstalledPackage {
    /// A package with no files yet.
    pub fn new(entry: IndexEntry) -> Self {
        Self {
            entry,
            replaces: Vec::new(),
            replaces_priority: 0,
            tag: None,
            flags: String::new(),
            dirs: Vec::new(),
            scripts: Vec::new(),
            triggers: Vec::new(),
        }
    }

    /// `name-version`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.entry.name, self.entry.version)
    }

    /// Every non-directory path the package owns, relative to the root.
    pub fn file_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.dirs.iter().flat_map(|d| {
            d.files.iter().map(move |f| {
                if d.path.is_empty() {
                    f.name.clone()
                } else {
                    format!("{}/{}", d.path, f.name)
                }
            })
        })
    }

    /// Adds `flag` to `f:` once.
    pub fn mark(&mut self, flag: char) {
        if !self.flags.contains(flag) {
            self.flags.push(flag);
        }
    }

    fn render(&self, out: &mut String) {
        self.entry.write_lines(out);
        if !self.replaces.is_empty() {
            let _ = writeln!(out, "r:{}", self.replaces.join(" "));
        }
        if self.replaces_priority != 0 {
            let _ = writeln!(out, "q:{}", self.replaces_priority);
        }
        if let Some(tag) = &self.tag {
            let _ = writeln!(out, "s:{tag}");
        }
        if !self.flags.is_empty() {
            let _ = writeln!(out, "f:{}", self.flags);
        }
        for dir in &self.dirs {
            let _ = writeln!(out, "F:{}", dir.path);
            if !dir.acl.is(0, 0, 0o755) {
                let _ = writeln!(out, "M:{}", dir.acl.render());
            }
            for file in &dir.files {
                let _ = writeln!(out, "R:{}", file.name);
                if !file.acl.is(0, 0, 0o644) {
                    let _ = writeln!(out, "a:{}", file.acl.render());
                }
                if let Some(z) = &file.digest {
                    let _ = writeln!(out, "Z:{z}");
                }
            }
        }
        out.push('\n');
    }
}

/// The whole installed state of a root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledDb {
    /// Installed packages.
    pub packages: Vec<InstalledPackage>,
    /// `etc/apk/world` lines.
    pub world: Vec<String>,
}

/// `Q1` + base64 of a SHA-1.
pub fn q1(sha1: &[u8; 20]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(sha1)
    )
}

/// `Q1` digest of xattrs as apk computes it (§4.1): sorted by name, length-prefixed.
pub fn xattr_digest(xattrs: &[(String, Vec<u8>)]) -> Option<String> {
    use sha1::Digest as _;
    if xattrs.is_empty() {
        return None;
    }
    let mut sorted: Vec<_> = xattrs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = sha1::Sha1::new();
    for (name, value) in sorted {
        h.update((name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update((value.len() as u32).to_be_bytes());
        h.update(value);
    }
    Some(q1(&h.finalize().into()))
}

const INSTALLED: &str = "lib/apk/db/installed";
const SCRIPTS: &str = "lib/apk/db/scripts.tar";
const TRIGGERS: &str = "lib/apk/db/triggers";
const WORLD: &str = "etc/apk/world";

fn read_opt(root: &RootDir, rel: &str) -> Result<Option<Vec<u8>>, InstallError> {
    match root.open_file(rel) {
        Ok(mut f) => {
            let mut v = Vec::new();
            f.read_to_end(&mut v).map_err(|source| InstallError::Io {
                path: root.path().join(rel),
                source,
            })?;
            Ok(Some(v))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl InstalledDb {
    /// Reads the database of `root`; `None` when it has none (no `installed` and no world).
    pub fn read(root: &RootDir) -> Result<Option<Self>, InstallError> {
        let installed = read_opt(root, INSTALLED)?;
        let world = read_opt(root, WORLD)?;
        if installed.is_none() && world.is_none() {
            return Ok(None);
        }
        let path = root.path().join(INSTALLED);
        let text = String::from_utf8_lossy(installed.as_deref().unwrap_or_default()).into_owned();
        let mut db = Self {
            packages: parse_installed(&text, &path)?,
            world: String::from_utf8_lossy(world.as_deref().unwrap_or_default())
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        };
        if let Some(bytes) = read_opt(root, SCRIPTS)? {
            db.attach_scripts(&bytes);
        }
        if let Some(bytes) = read_opt(root, TRIGGERS)? {
            for line in String::from_utf8_lossy(&bytes).lines() {
                let mut words = line.split_whitespace();
                let Some(sum) = words.next() else { continue };
                if let Some(p) = db
                    .packages
                    .iter_mut()
                    .find(|p| p.entry.checksum.to_string() == sum)
                {
                    p.triggers = words.map(str::to_owned).collect();
                }
            }
        }
        Ok(Some(db))
    }

    fn attach_scripts(&mut self, bytes: &[u8]) {
        let mut reader = TarReader::new(Cursor::new(bytes));
        while let Ok(Some(entry)) = reader.next_entry() {
            let mut content = Vec::new();
            if reader.content().read_to_end(&mut content).is_err() {
                break;
            }
            // `<P>-<V>.<C>.<type>`, parsed from the right as apk does.
            let Some((rest, kind)) = entry.path.rsplit_once('.') else {
                continue;
            };
            let Some(kind) = ScriptKind::parse(kind) else {
                continue;
            };
            let Some((id, sum)) = rest.rsplit_once('.') else {
                continue;
            };
            if let Some(p) = self
                .packages
                .iter_mut()
                .find(|p| p.id() == id && p.entry.checksum.to_string() == sum)
            {
                p.scripts.push((kind, content));
            }
        }
    }

    /// Packages in apk's order (§3.4).
    pub fn sort(&mut self) {
        self.packages.sort_by(|a, b| a.entry.order(&b.entry));
    }

    /// The `installed` file.
    pub fn render_installed(&self) -> String {
        let mut out = String::new();
        for p in &self.packages {
            p.render(&mut out);
        }
        out
    }

    /// The `scripts.tar` file.
    pub fn render_scripts(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut written = 0;
        for p in &self.packages {
            for (kind, content) in &p.scripts {
                let mut header = Header::file(
                    format!("{}.{}.{}", p.id(), p.entry.checksum, kind),
                    0o755,
                    content.len() as u64,
                    p.entry.build_time,
                );
                header.uname = "root".into();
                header.gname = "root".into();
                // Names over 100 bytes cannot be stored in apk 2.14's format: skip the
                // script rather than fail the install (apk would truncate it).
                if let Ok(n) =
                    tar::write_entry(&mut out, Flavor::Gnu, &header, &mut Cursor::new(content))
                {
                    written += n;
                }
            }
        }
        let _ = tar::write_trailer(&mut out, written, 0);
        out
    }

    /// The `triggers` file.
    pub fn render_triggers(&self) -> String {
        let mut out = String::new();
        for p in &self.packages {
            if !p.triggers.is_empty() {
                let _ = writeln!(out, "{} {}", p.entry.checksum, p.triggers.join(" "));
            }
        }
        out
    }

    /// The `world` file: sorted like names, one per line.
    pub fn render_world(&self) -> String {
        let mut world = self.world.clone();
        world.sort_by(|a, b| {
            a.to_ascii_lowercase()
                .cmp(&b.to_ascii_lowercase())
                .then_with(|| a.cmp(b))
        });
        world.dedup();
        let mut out = world.join("\n");
        out.push('\n');
        out
    }

    /// Writes the four files atomically inside `root`, creating `lib/apk/db` and `etc/apk`.
    pub fn write(&self, root: &RootDir) -> Result<(), InstallError> {
        root.create_dir_all("lib/apk/db", 0o755)?;
        root.create_dir_all("etc/apk", 0o755)?;
        write_in_root(root, "lib/apk/db", "scripts.tar", &self.render_scripts())?;
        write_in_root(
            root,
            "lib/apk/db",
            "triggers",
            self.render_triggers().as_bytes(),
        )?;
        write_in_root(
            root,
            "lib/apk/db",
            "installed",
            self.render_installed().as_bytes(),
        )?;
        write_in_root(root, "etc/apk", "world", self.render_world().as_bytes())
    }
}

/// Atomically writes `dir/name` inside `root`: the directory is resolved inside the root
/// first and then addressed through its file descriptor, so a symlinked `lib` in the image
/// cannot redirect the write to the host.
pub(crate) fn write_in_root(
    root: &RootDir,
    dir: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), InstallError> {
    let sub = root.open_dir(dir)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&sub));
    let target = PathBuf::from(format!("/proc/self/fd/{fd}/{name}"));
    let mut file = crate::atomic::AtomicFile::create(&target)
        .map_err(|source| io_err(root, dir, name, source))?
        .with_mode(0o644);
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|source| io_err(root, dir, name, source))?;
    file.commit()
        .map_err(|source| io_err(root, dir, name, source))
}

fn io_err(root: &RootDir, dir: &str, name: &str, source: std::io::Error) -> InstallError {
    InstallError::Io {
        path: root.path().join(dir).join(name),
        source,
    }
}

fn parse_installed(text: &str, path: &Path) -> Result<Vec<InstalledPackage>, InstallError> {
    let mut out = Vec::new();
    let mut cur: Option<InstalledPackage> = None;
    let bad = |line: usize, reason: String| InstallError::Database {
        path: path.to_path_buf(),
        line,
        reason,
    };
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            if let Some(p) = cur.take() {
                out.push(p);
            }
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b':' {
            return Err(bad(lineno, format!("expected `X:value`, found {line:?}")));
        }
        let letter = bytes[0] as char;
        let value = &line[2..];
        let p = cur.get_or_insert_with(|| InstalledPackage::new(IndexEntry::empty()));
        match letter {
            'r' => p.replaces = value.split_whitespace().map(str::to_owned).collect(),
            'q' => p.replaces_priority = value.parse().unwrap_or(0),
            's' => p.tag = Some(value.to_owned()),
            'f' => p.flags = value.to_owned(),
            'F' => p.dirs.push(InstalledDir {
                path: value.to_owned(),
                acl: Acl {
                    uid: 0,
                    gid: 0,
                    mode: 0o755,
                    xattr: None,
                },
                files: Vec::new(),
            }),
            'M' => {
                let acl = Acl::parse(value).ok_or_else(|| bad(lineno, format!("bad M:{value}")))?;
                p.dirs
                    .last_mut()
                    .ok_or_else(|| bad(lineno, "M: before any F:".into()))?
                    .acl = acl;
            }
            'R' => {
                p.dirs
                    .last_mut()
                    .ok_or_else(|| bad(lineno, "R: before any F:".into()))?
                    .files
                    .push(InstalledFile {
                        name: value.to_owned(),
                        acl: Acl {
                            uid: 0,
                            gid: 0,
                            mode: 0o644,
                            xattr: None,
                        },
                        digest: None,
                    });
            }
            'a' | 'Z' => {
                let file = p
                    .dirs
                    .last_mut()
                    .and_then(|d| d.files.last_mut())
                    .ok_or_else(|| bad(lineno, format!("{letter}: before any R:")))?;
                if letter == 'a' {
                    file.acl =
                        Acl::parse(value).ok_or_else(|| bad(lineno, format!("bad a:{value}")))?;
                } else {
                    file.digest = Some(value.to_owned());
                }
            }
            _ => {
                // Unknown letters are kept if they are index fields, skipped otherwise.
                match p.entry.apply_line(letter, value) {
                    Ok(true) => {}
                    Ok(false) => p.entry.other.push((letter, value.to_owned())),
                    Err(reason) => return Err(bad(lineno, reason)),
                }
            }
        }
    }
    if let Some(p) = cur.take() {
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_installed_round_trips() {
        let text = include_str!("../../../testkit/fixtures/apk-reference/installed-db/installed");
        let pkgs = parse_installed(text, Path::new("installed")).unwrap();
        assert_eq!(pkgs.len(), 3);
        let db = InstalledDb {
            packages: pkgs,
            world: vec!["world".into()],
        };
        assert_eq!(db.render_installed(), text);
        assert_eq!(db.render_world(), "world\n");
        assert_eq!(db.packages[0].dirs[7].acl.mode, 0o750);
    }

    #[test]
    fn empty_scripts_tar_is_1024_zero_bytes() {
        assert_eq!(InstalledDb::default().render_scripts(), vec![0u8; 1024]);
    }
}
