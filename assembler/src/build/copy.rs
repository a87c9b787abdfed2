//! COPY and ADD: sources from the context (minus `.containerignore`/`.dockerignore`),
//! another stage or an image, globs, `--chown`, `--chmod`, local tar archives extracted by
//! ADD, and ADD of a URL checked with `--checksum`. Sources are read through a [`RootDir`] of their tree and
//! written through one of the image root, so no symlink leads outside either.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use apk::rootfs::{ApplyOptions, EntryKind, EntryMeta, RootDir};
use sha2::{Digest, Sha256};

use super::copy_flags::{self, CopyFlags};
use super::{Engine, StageState};
use crate::containerfile::{Instruction, Kind};
use crate::dockerignore::DockerIgnore;

enum Content {
    /// A path inside the source tree.
    Tree(PathBuf),
    /// Bytes (heredoc, downloaded URL).
    Bytes(Vec<u8>),
}

struct Item {
    dest: String,
    kind: EntryKind,
    mode: u32,
    mtime: i64,
    content: Content,
    /// ADD of a local archive: extract into `dest`.
    extract: bool,
    /// The owner it has in the source tree (COPY --from keeps it); root otherwise.
    owner: Option<(u32, u32)>,
}

/// What a COPY/ADD will write, decided (and hashed) before anything is written.
pub struct CopyPlan {
    items: Vec<Item>,
    source: Option<PathBuf>,
    chown: Option<String>,
    chmod: Option<u32>,
    /// Digest of every source's name, metadata and bytes: part of the cache key.
    pub content_hash: String,
    _image_root: Option<tempfile::TempDir>,
}

pub(super) fn plan(e: &Engine<'_>, st: &StageState, x: &Instruction) -> anyhow::Result<CopyPlan> {
    let (sources, dest, heredocs, add) = match &x.kind {
        Kind::Copy {
            sources,
            dest,
            heredocs,
        } => (sources, dest, heredocs, false),
        Kind::Add {
            sources,
            dest,
            heredocs,
        } => (sources, dest, heredocs, true),
        _ => unreachable!("copy::plan is only called for COPY and ADD"),
    };
    let line = x.span.line;
    let at = format!("{}:{line}", e.opts.file.display());
    let flags = CopyFlags::read(x, add, &at)?;
    let dest = Dest::new(
        &st.config.working_dir,
        dest,
        sources.len() + heredocs.len(),
        flags.parents,
    );
    let src = Source::open(e, x.flag("from"), line)?;
    let mut items: Vec<Item> = heredocs.iter().map(|h| dest.heredoc(h)).collect();
    for s in sources {
        if add && copy_flags::is_url(s) {
            flags.check_url(&at)?;
            let bytes = download(s, x.flag("checksum"), e.reporter)
                .with_context(|| format!("line {line}: ADD {s}"))?;
            items.push(dest.download(s, bytes));
        } else {
            src.items(s, &dest, &flags, line, &mut items)?;
        }
    }
    if flags.link {
        copy_flags::check_link(&st.rootfs(), items.iter().map(|i| i.dest.as_str()), &at)?;
    }
    let chmod = chmod_flag(x.flag("chmod"), line)?;
    let content_hash = src.hash(&items, e.opts.source_date)?;
    Ok(CopyPlan {
        items,
        source: Some(src.path),
        chown: x.flag("chown").map(str::to_string),
        chmod,
        content_hash,
        _image_root: src.image_root,
    })
}

/// Where a COPY/ADD writes: its destination made absolute (against WORKDIR), ending with
/// `/` when it is a directory.
struct Dest {
    abs: String,
    /// Named as a directory, or more than one source.
    is_dir: bool,
}

impl Dest {
    /// `parents`: COPY --parents, whose destination is always a directory.
    fn new(working_dir: &str, dest: &str, n_sources: usize, parents: bool) -> Self {
        let workdir = if working_dir.is_empty() {
            "/"
        } else {
            working_dir
        };
        let mut abs = if dest.starts_with('/') {
            dest.to_string()
        } else {
            format!("{}/{dest}", workdir.trim_end_matches('/'))
        };
        let is_dir = dest.ends_with('/') || dest == "." || n_sources > 1 || parents;
        if is_dir && !abs.ends_with('/') {
            abs.push('/');
        }
        Dest { abs, is_dir }
    }

    /// The path of a source named `name`: inside a directory destination, else the
    /// destination itself.
    fn named(&self, name: &str) -> String {
        if self.abs.ends_with('/') {
            format!("{}{name}", self.abs)
        } else {
            self.abs.clone()
        }
    }

    /// A heredoc's file: named by its delimiter inside a directory destination.
    fn heredoc(&self, h: &crate::containerfile::Heredoc) -> Item {
        let dest = if self.is_dir {
            format!("{}{}", self.abs, h.delimiter)
        } else {
            self.abs.clone()
        };
        Item {
            dest,
            kind: EntryKind::File,
            mode: 0o644,
            mtime: 0,
            content: Content::Bytes(h.content.clone().into_bytes()),
            extract: false,
            owner: None,
        }
    }

    /// ADD of a URL: named by the URL's last segment.
    fn download(&self, url: &str, bytes: Vec<u8>) -> Item {
        let name = url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("download");
        Item {
            dest: self.named(name),
            kind: EntryKind::File,
            mode: 0o600,
            mtime: 0,
            content: Content::Bytes(bytes),
            extract: false,
            owner: None,
        }
    }
}

/// The tree COPY/ADD reads from: the context (minus its ignore file), another stage's root,
/// or an image extracted for `--from`.
struct Source {
    path: PathBuf,
    ignore: DockerIgnore,
    root: RootDir,
    canon: PathBuf,
    image_root: Option<tempfile::TempDir>,
    /// The image owners of another stage's or an image's paths (`--from`), which COPY
    /// keeps as Docker (since 18.09) and buildah (since 1.37) do; `None` for the context,
    /// whose files become root's.
    owners: Option<crate::layer::Owners>,
}

impl Source {
    fn open(e: &Engine<'_>, from: Option<&str>, line: usize) -> anyhow::Result<Self> {
        let mut image_root = None;
        let (path, ignore, owners) = match from {
            None => (
                e.opts.context.clone(),
                DockerIgnore::read(&e.opts.context).map_err(anyhow::Error::from)?,
                None,
            ),
            Some(from) => match earlier_stage(e, from) {
                Some(s) => (s.rootfs(), DockerIgnore::default(), Some(s.owners.clone())),
                None => {
                    let (tmp, owners) = image_tree(e, from, line)?;
                    let p = tmp.path().to_path_buf();
                    image_root = Some(tmp);
                    (p, DockerIgnore::default(), Some(owners))
                }
            },
        };
        let root =
            RootDir::open(&path).with_context(|| format!("cannot open `{}`", path.display()))?;
        let canon = fs_err::canonicalize(&path)?;
        Ok(Source {
            path,
            ignore,
            root,
            canon,
            image_root,
            owners,
        })
    }

    /// The owner `rel` has in the source tree, when the tree has image owners (`--from`).
    fn owner(&self, rel: &Path) -> Option<(u32, u32)> {
        self.owners
            .as_ref()
            .map(|o| o.get(rel).copied().unwrap_or((0, 0)))
    }

    /// The items of source `src` (a path or glob) written to `dest`.
    fn items(
        &self,
        src: &str,
        dest: &Dest,
        flags: &CopyFlags,
        line: usize,
        items: &mut Vec<Item>,
    ) -> anyhow::Result<()> {
        let (kept_from, pattern) = copy_flags::parents_pivot(src, flags.parents);
        let matches = expand_source(&self.root, &self.path, &pattern, &self.ignore)
            .with_context(|| format!("line {line}: {} source `{src}`", flags.keyword))?;
        if matches.is_empty() {
            bail!(
                "line {line}: `{src}` matches no file in `{}`",
                self.path.display()
            );
        }
        for rel in matches {
            if flags.excluded(&rel) {
                continue;
            }
            let inside = self.inside(&rel, line)?;
            // --parents: the path below the pivot is kept, with its directories.
            let target = match flags.parents {
                true => {
                    let kept = rel.strip_prefix(&kept_from).unwrap_or(&rel);
                    self.parent_dirs(&kept_from, kept, dest, items)?;
                    Some(format!("{}{}", dest.abs, kept.display()))
                }
                false => None,
            };
            let md = self.root.metadata(&inside)?;
            if md.is_dir() {
                let target = target.unwrap_or_else(|| dest.abs.trim_end_matches('/').to_string());
                self.walk_dir(&inside, &target, &flags.exclude, items)?;
                continue;
            }
            let base = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let extract = flags.unpack && is_archive(&self.root, &inside);
            items.push(Item {
                dest: match (extract, target) {
                    (true, _) => dest.abs.clone(),
                    (false, Some(t)) => t,
                    (false, None) => dest.named(&base),
                },
                kind: EntryKind::File,
                mode: md.mode() & 0o7777,
                mtime: md.mtime(),
                owner: self.owner(&inside),
                content: Content::Tree(inside),
                extract,
            });
        }
        Ok(())
    }

    /// COPY --parents: the directories between the pivot `base` and `kept` (its parents
    /// in the source), with their metadata, as directories of `dest`.
    fn parent_dirs(
        &self,
        base: &Path,
        kept: &Path,
        dest: &Dest,
        items: &mut Vec<Item>,
    ) -> anyhow::Result<()> {
        let mut parents: Vec<&Path> = kept
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        parents.reverse();
        for p in parents {
            let in_src = base.join(p);
            let md = self.root.metadata(&in_src)?;
            items.push(Item {
                dest: format!("{}{}", dest.abs, p.display()),
                kind: EntryKind::Dir,
                mode: md.mode() & 0o7777,
                mtime: md.mtime(),
                owner: self.owner(&in_src),
                content: Content::Tree(in_src),
                extract: false,
            });
        }
        Ok(())
    }

    /// `rel` in the tree: a top-level symlink is followed, but only to somewhere inside it.
    fn inside(&self, rel: &Path, line: usize) -> anyhow::Result<PathBuf> {
        let host = self.path.join(rel);
        let real = fs_err::canonicalize(&host)
            .with_context(|| format!("line {line}: `{}` cannot be resolved", rel.display()))?;
        let Ok(inside) = real.strip_prefix(&self.canon) else {
            bail!(
                "line {line}: `{}` is a symlink pointing outside the build context (to `{}`); refusing to copy it. Copy the target into the context instead",
                rel.display(),
                real.display()
            );
        };
        Ok(inside.to_path_buf())
    }

    /// Digest of every item's name, metadata and bytes: the plan's part of the cache key.
    /// Mtimes are keyed as the layer will hold them: SOURCE_DATE_EPOCH (`clamp`) clamps
    /// them there, so a source copied afresh with the same bytes still hits the cache.
    fn hash(&self, items: &[Item], clamp: Option<u64>) -> anyhow::Result<String> {
        let clamp = |m: i64| clamp.map_or(m, |c| m.min(c.try_into().unwrap_or(i64::MAX)));
        let mut h = Sha256::new();
        for it in items {
            h.update(format!(
                "{}\0{:?}\0{:o}\0{}\0{}\0{:?}\0",
                it.dest,
                it.kind,
                it.mode,
                clamp(it.mtime),
                it.extract,
                it.owner
            ));
            match &it.content {
                Content::Bytes(b) => h.update(b),
                Content::Tree(p) if it.kind == EntryKind::File => {
                    let mut f = self.root.open_file(p)?;
                    std::io::copy(&mut f, &mut h)?;
                }
                Content::Tree(_) => {}
            }
        }
        Ok(hex::encode(h.finalize()))
    }
}

/// `--from=NAME`: an earlier stage of this build, by name or index, when there is one.
fn earlier_stage<'s>(e: &'s Engine<'_>, from: &str) -> Option<&'s StageState> {
    let lower = from.to_ascii_lowercase();
    let stage = e
        .file
        .stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()) || s.index.to_string() == lower)
        .map(|s| s.index);
    stage.and_then(|i| e.stages.get(&i))
}

/// `--from=IMAGE`: the image's files, extracted into a temporary directory, and their
/// owners in the image.
fn image_tree(
    e: &Engine<'_>,
    from: &str,
    line: usize,
) -> anyhow::Result<(tempfile::TempDir, crate::layer::Owners)> {
    let top = super::from::resolve_base(e.store, from, e.opts, e.reporter)?
        .with_context(|| format!("line {line}: --from=scratch has no files"))?;
    let tmp = e.store.tempdir("from-")?;
    let owners = super::from::materialize_recording(e.store, &top, tmp.path())?;
    Ok((tmp, owners))
}

/// `--chmod=MODE`, an octal mode.
fn chmod_flag(flag: Option<&str>, line: usize) -> anyhow::Result<Option<u32>> {
    let Some(m) = flag else {
        return Ok(None);
    };
    let mode = u32::from_str_radix(m, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .with_context(|| {
            format!("line {line}: --chmod={m}: expected an octal mode such as 0755")
        })?;
    Ok(Some(mode))
}

pub(super) fn execute(
    _e: &Engine<'_>,
    st: &mut StageState,
    plan: &CopyPlan,
    log: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let rootfs = st.rootfs();
    let dst = RootDir::open(&rootfs)?;
    let src = match &plan.source {
        Some(s) => Some(RootDir::open(s)?),
        None => None,
    };
    let chown = match &plan.chown {
        Some(u) => Some(crate::sandbox::resolve_user(&rootfs, u)?),
        None => None,
    };
    // Owners go to the owner table, not the disk (see `layer::apply_recording`).
    let opts = ApplyOptions {
        chown: false,
        ..ApplyOptions::for_current_process()
    };
    for it in &plan.items {
        let rel = it
            .dest
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if it.extract {
            if let Content::Tree(p) = &it.content {
                let src = src.as_ref().context("no source")?;
                extract(&dst, src, p, &rel, &mut st.owners)?;
                log.extend_from_slice(
                    format!("extracted {} into /{rel}\n", p.display()).as_bytes(),
                );
            }
            continue;
        }
        if rel.is_empty() {
            continue;
        }
        // --chown wins; else the source's owner (--from), else root.
        let (uid, gid) = chown.or(it.owner).unwrap_or((0, 0));
        let meta = EntryMeta {
            path: rel.clone(),
            kind: it.kind.clone(),
            mode: plan.chmod.unwrap_or(it.mode),
            uid,
            gid,
            mtime: it.mtime,
        };
        write_entry(&dst, src.as_ref(), it, &meta, &opts)?;
        st.owners.insert(PathBuf::from(&rel), (uid, gid));
        log.extend_from_slice(format!("/{rel}\n").as_bytes());
    }
    Ok(())
}

/// Writes `it` into `dst` as `meta` says, its bytes read from `src` when they are there.
fn write_entry(
    dst: &RootDir,
    src: Option<&RootDir>,
    it: &Item,
    meta: &EntryMeta,
    opts: &ApplyOptions,
) -> anyhow::Result<()> {
    match &it.content {
        Content::Bytes(b) => dst.apply(meta, &mut &b[..], opts)?,
        Content::Tree(p) if it.kind == EntryKind::File => {
            let mut f = src.context("no source")?.open_file(p)?;
            dst.apply(meta, &mut f, opts)?
        }
        Content::Tree(_) => dst.apply(meta, &mut std::io::empty(), opts)?,
    };
    Ok(())
}

/// ADD of a local tar archive `p` (gzipped or not): extracted into `rel` of the image.
fn extract(
    dst: &RootDir,
    src: &RootDir,
    p: &Path,
    rel: &str,
    owners: &mut crate::layer::Owners,
) -> anyhow::Result<()> {
    dst.create_dir_all(rel, 0o755)?;
    let sub = if rel.is_empty() {
        dst.try_clone()?
    } else {
        dst.open_dir(rel)?
    };
    let f = src.open_file(p)?;
    let mut magic = [0u8; 2];
    let mut f2 = src.open_file(p)?;
    let _ = f2.read(&mut magic)?;
    let reader: Box<dyn Read> = if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            f,
        )))
    } else {
        Box::new(std::io::BufReader::new(f))
    };
    // The archive's owners are the image's, even where the disk cannot hold them.
    crate::layer::apply_reader_recording(&sub, reader, p, owners, Path::new(rel))?;
    Ok(())
}

impl Source {
    /// The directory `dir` of the tree and everything below it (minus the ignore file's
    /// and `--exclude`'s patterns, the latter relative to `dir`), written to `target`.
    fn walk_dir(
        &self,
        dir: &Path,
        target: &str,
        exclude: &DockerIgnore,
        items: &mut Vec<Item>,
    ) -> anyhow::Result<()> {
        let host = self.path.join(dir);
        let md = self.root.metadata(dir)?;
        if !target.is_empty() {
            items.push(Item {
                dest: target.to_string(),
                kind: EntryKind::Dir,
                mode: md.mode() & 0o7777,
                mtime: md.mtime(),
                owner: self.owner(dir),
                content: Content::Tree(dir.to_path_buf()),
                extract: false,
            });
        }
        for entry in walkdir::WalkDir::new(&host)
            .min_depth(1)
            .sort_by_file_name()
        {
            let entry = entry?;
            let rel_in_src = entry.path().strip_prefix(&self.path)?.to_path_buf();
            let below = entry.path().strip_prefix(&host)?;
            if self.ignore.is_ignored(&rel_in_src) || exclude.is_ignored(below) {
                continue;
            }
            let md = self.root.metadata(&rel_in_src)?;
            let kind = if md.file_type().is_symlink() {
                EntryKind::Symlink(
                    self.root
                        .read_link(&rel_in_src)?
                        .to_string_lossy()
                        .into_owned(),
                )
            } else if md.is_dir() {
                EntryKind::Dir
            } else if md.is_file() {
                EntryKind::File
            } else {
                continue;
            };
            items.push(Item {
                dest: format!("{target}/{}", below.display()),
                kind,
                mode: md.mode() & 0o7777,
                mtime: md.mtime(),
                owner: self.owner(&rel_in_src),
                content: Content::Tree(rel_in_src),
                extract: false,
            });
        }
        Ok(())
    }
}

/// Why a source the ignore file leaves out cannot be copied (or bind-mounted) by name.
pub(super) const IGNORED: &str = "it is excluded by the context's ignore file \
    (.containerignore or .dockerignore), as in Docker; remove the pattern there to use it";

fn expand_source(
    root: &RootDir,
    src_root: &Path,
    src: &str,
    ignore: &DockerIgnore,
) -> anyhow::Result<Vec<PathBuf>> {
    let clean = src.trim_start_matches('/').trim_start_matches("./");
    let clean = if clean.is_empty() { "." } else { clean };
    if !clean.contains(['*', '?', '[']) {
        let p = PathBuf::from(clean);
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            bail!("`..` leads outside the build context");
        }
        if clean != "." && !root.exists(&p)? {
            bail!("no such file or directory in `{}`", src_root.display());
        }
        if ignore.leaves_out(src_root, &p)? {
            // Docker leaves it out of the context, so it is "not found" there.
            bail!(IGNORED);
        }
        return Ok(vec![p]);
    }
    let pat = glob::Pattern::new(clean)?;
    let opts = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(src_root)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry?;
        let rel = entry.path().strip_prefix(src_root)?;
        if pat.matches_path_with(rel, opts) && !ignore.is_ignored(rel) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(out)
}

fn is_archive(root: &RootDir, rel: &Path) -> bool {
    let mut buf = [0u8; 512];
    let Ok(mut f) = root.open_file(rel) else {
        return false;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    (n >= 2 && buf[..2] == [0x1f, 0x8b]) || (n == 512 && &buf[257..262] == b"ustar")
}

fn download(
    url: &str,
    checksum: Option<&str>,
    reporter: &dyn super::Reporter,
) -> anyhow::Result<Vec<u8>> {
    let resp = reqwest::blocking::get(url)?.error_for_status()?;
    let total = resp.content_length();
    let mut bytes = Vec::new();
    let p = reporter.progress(&format!("Downloading {url}"), total);
    crate::progress::ProgressRead::new(resp, p).read_to_end(&mut bytes)?;
    if let Some(sum) = checksum {
        let want = sum
            .strip_prefix("sha256:")
            .context("--checksum must be `sha256:<hex>`")?;
        let got = hex::encode(Sha256::digest(&bytes));
        if !got.eq_ignore_ascii_case(want) {
            bail!("checksum mismatch: expected sha256:{want}, got sha256:{got}");
        }
    }
    Ok(bytes)
}
