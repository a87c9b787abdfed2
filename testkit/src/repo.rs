//! Generated apk repositories for installer tests and benchmarks: real packages written
//! with [`PackageWriter`], signed with the fixture key, and a signed `APKINDEX.tar.gz`.

use std::path::{Path, PathBuf};

use apk::index::{ApkIndex, IndexEntry};
use apk::package::{PackageWriter, Script, TreeEntry, WrittenPackage};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;
use apk::tar::{EntryType, Header};

/// Time stamp of every generated entry.
pub const SOURCE_DATE: u64 = 1_700_000_000;

/// One entry of a generated package.
#[derive(Clone, Debug)]
pub enum Node {
    /// A directory with this mode.
    Dir(u32),
    /// A regular file with content and mode.
    File(Vec<u8>, u32),
    /// A symlink to this target.
    Symlink(String),
    /// A hard link to an earlier entry.
    HardLink(String),
    /// A character device.
    CharDevice(u32, u32),
}

/// What to put in a generated package.
#[derive(Clone, Debug, Default)]
pub struct PkgSpec {
    /// `pkgname`.
    pub name: String,
    /// `pkgver`.
    pub version: String,
    /// `depend` atoms.
    pub depends: Vec<String>,
    /// `provides`.
    pub provides: Vec<String>,
    /// `replaces`.
    pub replaces: Vec<String>,
    /// `triggers` globs.
    pub triggers: Vec<String>,
    /// `origin` (defaults to the name).
    pub origin: String,
    /// Entries by path; parent directories are added as 0755 entries.
    pub nodes: Vec<(String, Node)>,
    /// Owner names per path (`uname`, `gname`), default root.
    pub owners: Vec<(String, String, String)>,
    /// Control scripts (`.post-install` …).
    pub scripts: Vec<(String, Vec<u8>)>,
    /// Extended attributes per path: (path, name, value).
    pub xattrs: Vec<(String, String, Vec<u8>)>,
}

impl PkgSpec {
    /// A package with no files.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            ..Self::default()
        }
    }

    /// Adds a regular file (0644, or 0755 under `bin`/`sbin`).
    pub fn file(mut self, path: &str, content: &str) -> Self {
        let mode = if path.contains("bin/") { 0o755 } else { 0o644 };
        self.nodes
            .push((path.into(), Node::File(content.as_bytes().to_vec(), mode)));
        self
    }

    /// Adds any node.
    pub fn node(mut self, path: &str, node: Node) -> Self {
        self.nodes.push((path.into(), node));
        self
    }

    /// Adds dependencies (space-separated atoms).
    pub fn depends(mut self, atoms: &str) -> Self {
        self.depends
            .extend(atoms.split_whitespace().map(str::to_owned));
        self
    }

    /// Adds provides (space-separated).
    pub fn provides(mut self, atoms: &str) -> Self {
        self.provides
            .extend(atoms.split_whitespace().map(str::to_owned));
        self
    }

    /// Adds a control script.
    pub fn script(mut self, name: &str, content: &str) -> Self {
        self.scripts
            .push((name.into(), content.as_bytes().to_vec()));
        self
    }
}

/// A repository directory being filled: `<dir>/<arch>/*.apk` and the index.
pub struct RepoBuilder {
    /// The repository base (what `etc/apk/repositories` names).
    pub dir: PathBuf,
    /// Architecture directory.
    pub arch: String,
    /// Index entries of the packages written so far.
    pub index: ApkIndex,
    content: tempfile::TempDir,
    counter: usize,
}

impl RepoBuilder {
    /// A repository at `dir` for `x86_64`.
    pub fn new(dir: &Path) -> Self {
        fs_err::create_dir_all(dir.join("x86_64")).expect("repository directory");
        Self {
            dir: dir.to_path_buf(),
            arch: "x86_64".into(),
            index: ApkIndex {
                description: Some("generated test repository".into()),
                packages: Vec::new(),
            },
            content: crate::tempdir(),
            counter: 0,
        }
    }

    /// The data entries of `spec`, parents first, sorted like abuild.
    fn entries(&mut self, spec: &PkgSpec) -> Vec<TreeEntry> {
        let mut nodes: Vec<(String, Node)> = Vec::new();
        for (path, node) in &spec.nodes {
            let mut prefix = String::new();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len().saturating_sub(1)] {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if !spec.nodes.iter().any(|(p, _)| p == &prefix)
                    && !nodes.iter().any(|(p, _)| p == &prefix)
                {
                    nodes.push((prefix.clone(), Node::Dir(0o755)));
                }
            }
            nodes.retain(|(p, _)| p != path);
            nodes.push((path.clone(), node.clone()));
        }
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (path, node) in nodes {
            let mut header = Header::file(path.clone(), 0o644, 0, SOURCE_DATE);
            header.uname = "root".into();
            header.gname = "root".into();
            if let Some((_, u, g)) = spec.owners.iter().find(|(p, _, _)| p == &path) {
                header.uname = u.clone();
                header.gname = g.clone();
            }
            header.xattrs = spec
                .xattrs
                .iter()
                .filter(|(p, _, _)| p == &path)
                .map(|(_, n, v)| (n.clone(), v.clone()))
                .collect();
            let mut source = None;
            match node {
                Node::Dir(mode) => {
                    header.kind = EntryType::Dir;
                    header.mode = mode;
                }
                Node::File(content, mode) => {
                    self.counter += 1;
                    let src = self.content.path().join(self.counter.to_string());
                    fs_err::write(&src, &content).expect("content file");
                    header.mode = mode;
                    header.size = content.len() as u64;
                    source = Some(src);
                }
                Node::Symlink(target) => {
                    header.kind = EntryType::Symlink;
                    header.mode = 0o777;
                    header.link = target;
                }
                Node::HardLink(target) => {
                    header.kind = EntryType::HardLink;
                    header.link = target;
                }
                Node::CharDevice(major, minor) => {
                    header.kind = EntryType::CharDevice;
                    header.mode = 0o666;
                    header.dev = (major, minor);
                }
            }
            out.push(TreeEntry { header, source });
        }
        out
    }

    /// Writes `spec` as `<dir>/<arch>/<name>-<version>.apk`, signed, and indexes it.
    pub fn add(&mut self, spec: &PkgSpec) -> WrittenPackage {
        let bytes = self.build(spec);
        let (written, bytes) = bytes;
        let path = self
            .dir
            .join(&self.arch)
            .join(format!("{}-{}.apk", spec.name, spec.version));
        fs_err::write(&path, bytes).expect("package file");
        let mut entry = IndexEntry::from_written(&written);
        entry.arch = self.arch.clone();
        self.index.upsert(entry);
        written
    }

    /// The bytes of `spec` as a signed package, without writing or indexing it.
    pub fn build(&mut self, spec: &PkgSpec) -> (WrittenPackage, Vec<u8>) {
        let info = PkgInfo {
            pkgname: spec.name.clone(),
            pkgver: spec.version.clone(),
            pkgdesc: format!("generated package {}", spec.name),
            url: "https://example.com".into(),
            builddate: SOURCE_DATE,
            packager: "Test <test@example.com>".into(),
            arch: self.arch.clone(),
            origin: if spec.origin.is_empty() {
                spec.name.clone()
            } else {
                spec.origin.clone()
            },
            license: "MIT".into(),
            depends: spec.depends.clone(),
            provides: spec.provides.clone(),
            replaces: spec.replaces.clone(),
            triggers: spec.triggers.clone(),
            ..PkgInfo::default()
        };
        let entries = self.entries(spec);
        let key = crate::fixture_key();
        let mut writer = PackageWriter::new(info, SOURCE_DATE);
        writer.signers = vec![(&key, SignatureType::Rsa)];
        writer.gzip = apk::gzip::GzipOptions::default();
        writer.scripts = spec
            .scripts
            .iter()
            .map(|(n, c)| Script {
                name: n.clone(),
                content: c.clone(),
            })
            .collect();
        let mut out = Vec::new();
        let written = writer.write(&entries, &mut out).expect("write package");
        (written, out)
    }

    /// Writes `APKINDEX.tar.gz`, signed with the fixture key (or unsigned).
    pub fn write_index(&self, signed: bool) -> PathBuf {
        let key = crate::fixture_key();
        let signers: Vec<(&dyn apk::sign::Signer, SignatureType)> = if signed {
            vec![(&key, SignatureType::Rsa)]
        } else {
            Vec::new()
        };
        let bytes = self
            .index
            .to_bytes(&signers, SOURCE_DATE)
            .expect("index bytes");
        let path = self.dir.join(&self.arch).join("APKINDEX.tar.gz");
        fs_err::write(&path, bytes).expect("index file");
        path
    }
}
