//! Sources: fetch (local files beside the APKBUILD, http/https downloads with retries, the
//! source cache by sha512), verify `sha512sums`, and unpack archives inside `$srcdir`
//! through [`apk::rootfs::RootDir`] so that no entry can land outside it.

use std::io::{Read, Write as _};
use std::path::{Component, Path, PathBuf};

use apk::rootfs::RootDir;
use sha2::{Digest as _, Sha512};

use crate::Reporter;
use crate::apkbuild::{Recipe, Source};
use crate::cache::Cache;

/// Why sources cannot be fetched, verified or unpacked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A local source is not beside the APKBUILD.
    #[error("{}: source `{spec}`: no such file beside the APKBUILD ({})", apkbuild.display(), expected.display())]
    MissingLocal {
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// The `source` entry.
        spec: String,
        /// Where it was looked for.
        expected: PathBuf,
    },
    /// A source file name with a directory part.
    #[error("{}: source file name `{name}` must be a plain file name (no `/` or `..`)", apkbuild.display())]
    BadName {
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// The file name.
        name: String,
    },
    /// A download failed every attempt.
    #[error("{}: failed to fetch `{url}` ({attempts} attempts): {reason}", apkbuild.display())]
    Fetch {
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last error, with its causes.
        reason: String,
    },
    /// A source has no checksum line.
    #[error("{}: no {algo}sums entry for `{file}`: run `apkbuild checksum {}` to record it", apkbuild.display(), recipe_dir(apkbuild).display())]
    NoChecksum {
        /// `sha512` (or legacy `sha256`).
        algo: &'static str,
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// The source file name.
        file: String,
    },
    /// A source does not match its checksum line.
    #[error(
        "{}: {algo} of `{file}` does not match {algo}sums (expected {}…, got {}…): if the new \
         file is intended, run `apkbuild checksum {}`",
        apkbuild.display(), &expected[..expected.len().min(16)], &actual[..actual.len().min(16)], recipe_dir(apkbuild).display()
    )]
    Mismatch {
        /// `sha512` (or legacy `sha256`).
        algo: &'static str,
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// The source file name.
        file: String,
        /// sha512 recorded.
        expected: String,
        /// sha512 found.
        actual: String,
    },
    /// An init script that is not an OpenRC runscript.
    #[error("{}: {file} is not an openrc #!/sbin/openrc-run script (abuild's initdcheck)", apkbuild.display())]
    NotOpenRc {
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// The source.
        file: String,
    },
    /// An archive entry that would land outside `$srcdir`.
    #[error("refusing to unpack `{archive}`: entry `{}` {problem}", entry.display())]
    UnsafeEntry {
        /// The archive's file name.
        archive: String,
        /// The entry.
        entry: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An archive that cannot be read or written out.
    #[error("failed to unpack `{archive}`: {reason}")]
    Unpack {
        /// The archive's file name.
        archive: String,
        /// What failed.
        reason: String,
    },
    /// The source cache failed.
    #[error("source cache: {0}")]
    Cache(String),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The directory of an APKBUILD, for the command to run.
fn recipe_dir(apkbuild: &Path) -> &Path {
    apkbuild.parent().unwrap_or(apkbuild)
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Hex SHA-512 of a file.
pub fn sha512_file(path: &Path) -> Result<String, SourceError> {
    let mut f = fs_err::File::open(path)?;
    let mut h = Sha512::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Hex digest of a file with `algo` (`sha512`, or the legacy `sha256`).
fn digest_file(path: &Path, algo: &str) -> Result<String, SourceError> {
    if algo != "sha256" {
        return sha512_file(path);
    }
    let mut f = fs_err::File::open(path)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Puts every source into `srcdir` (created). Downloads go through the source cache when
/// the expected sha512 is known.
pub fn fetch(
    recipe: &Recipe,
    srcdir: &Path,
    cache: Option<&Cache>,
    reporter: &dyn Reporter,
) -> Result<Vec<(Source, PathBuf)>, SourceError> {
    fs_err::create_dir_all(srcdir)?;
    // The source cache is keyed by sha512: legacy sha256sums recipes download.
    let sums = recipe.sha512sums();
    let mut out = Vec::new();
    for src in recipe.sources() {
        let dest = srcdir.join(&src.file_name);
        check_plain_name(&src.file_name, recipe)?;
        match &src.url {
            None => {
                let local = recipe.dir.join(&src.file_name);
                if !local.is_file() {
                    return Err(SourceError::MissingLocal {
                        apkbuild: recipe.path.clone(),
                        spec: src.spec.clone(),
                        expected: local,
                    });
                }
                fs_err::copy(&local, &dest)?;
            }
            Some(url) => {
                let expected = sums
                    .iter()
                    .find(|(n, _)| n == &src.file_name)
                    .map(|(_, s)| s);
                let cached = match (cache, expected) {
                    (Some(c), Some(sum)) => c
                        .get_source(sum)
                        .map_err(|e| SourceError::Cache(format!("{e:#}")))?,
                    _ => None,
                };
                if let Some(bytes) = cached {
                    reporter.info(&format!("{}: from the source cache", src.file_name));
                    apk::atomic::write_atomic(&dest, &bytes)?;
                } else {
                    download(url, &dest, reporter).map_err(|(attempts, reason)| {
                        SourceError::Fetch {
                            apkbuild: recipe.path.clone(),
                            url: url.clone(),
                            attempts,
                            reason,
                        }
                    })?;
                    if let (Some(c), Some(sum)) = (cache, expected)
                        && sha512_file(&dest)? == *sum
                    {
                        c.put_source(sum, &fs_err::read(&dest)?)
                            .map_err(|e| SourceError::Cache(format!("{e:#}")))?;
                    }
                }
            }
        }
        out.push((src, dest));
    }
    Ok(out)
}

fn check_plain_name(name: &str, recipe: &Recipe) -> Result<(), SourceError> {
    let p = Path::new(name);
    if name.is_empty()
        || p.components().count() != 1
        || !matches!(p.components().next(), Some(Component::Normal(_)))
    {
        return Err(SourceError::BadName {
            apkbuild: recipe.path.clone(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Downloads `url` to `dest` (atomically), with three attempts; on failure the number of
/// attempts and the last error.
fn download(url: &str, dest: &Path, reporter: &dyn Reporter) -> Result<(), (u32, String)> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(600))
        .user_agent(concat!("apkbuild/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| (0, chain(&e)))?;
    let mut last = String::new();
    for attempt in 1..=3u32 {
        if attempt > 1 {
            std::thread::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)));
            reporter.info(&format!("retrying {url} (attempt {attempt} of 3)"));
        }
        match try_download(&client, url, dest, reporter) {
            Ok(()) => return Ok(()),
            Err(e) => last = chain(e.as_ref()),
        }
    }
    Err((3, last))
}

fn try_download(
    client: &reqwest::blocking::Client,
    url: &str,
    dest: &Path,
    reporter: &dyn Reporter,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut resp = client.get(url).send()?.error_for_status()?;
    let total = resp.content_length();
    let mut file = apk::atomic::AtomicFile::create(dest)?.with_mode(0o644);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = resp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        done += n as u64;
        reporter.progress(url, done, total);
    }
    file.commit()?;
    Ok(())
}

/// Checks every source against `sha512sums` (or, when there are none, the legacy
/// `sha256sums`, as abuild's `sumalgo`).
pub fn verify(recipe: &Recipe, fetched: &[(Source, PathBuf)]) -> Result<(), SourceError> {
    let (algo, sums) = recipe.checksums();
    for (src, path) in fetched {
        let Some((_, expected)) = sums.iter().find(|(n, _)| n == &src.file_name) else {
            return Err(SourceError::NoChecksum {
                algo,
                apkbuild: recipe.path.clone(),
                file: src.file_name.clone(),
            });
        };
        let actual = digest_file(path, algo)?;
        if &actual != expected {
            return Err(SourceError::Mismatch {
                algo,
                apkbuild: recipe.path.clone(),
                file: src.file_name.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// abuild's `initdcheck`: a `*.initd` source must be an OpenRC runscript
/// (`#!/sbin/openrc-run`); the old `runscript` interpreter is a warning.
pub fn check_initd(
    recipe: &Recipe,
    fetched: &[(Source, PathBuf)],
) -> Result<Vec<String>, SourceError> {
    let mut warnings = Vec::new();
    for (src, path) in fetched.iter().filter(|(s, _)| s.spec.ends_with(".initd")) {
        let text = fs_err::read(path)?;
        let first = String::from_utf8_lossy(text.split(|b| *b == b'\n').next().unwrap_or_default())
            .into_owned();
        if first.ends_with("sbin/runscript") {
            warnings.push(format!("{} is not an openrc #!/sbin/openrc-run", src.spec));
        } else if !first.ends_with("sbin/openrc-run") {
            return Err(SourceError::NotOpenRc {
                apkbuild: recipe.path.clone(),
                file: src.spec.clone(),
            });
        }
    }
    Ok(warnings)
}

/// The kind of archive a source file name says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archive {
    /// `.tar`
    Tar,
    /// `.tar.gz` / `.tgz`
    Gz,
    /// `.tar.xz`
    Xz,
    /// `.tar.bz2`
    Bz2,
    /// `.tar.lz` (lzip)
    Lz,
    /// `.tar.lzma`
    Lzma,
    /// `.tar.zst`
    Zst,
    /// `.zip`
    Zip,
}

/// Recognises archives by name, as abuild's `default_unpack` does (and only those: any
/// other file is left for the recipe, as abuild leaves it).
pub fn archive_kind(name: &str) -> Option<Archive> {
    const KINDS: &[(&str, Archive)] = &[
        (".tar.gz", Archive::Gz),
        (".tgz", Archive::Gz),
        (".tar.xz", Archive::Xz),
        (".tar.bz2", Archive::Bz2),
        (".tar.lz", Archive::Lz),
        (".tar.lzma", Archive::Lzma),
        (".tar.zst", Archive::Zst),
        (".tar", Archive::Tar),
        (".zip", Archive::Zip),
    ];
    KINDS
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map(|(_, kind)| *kind)
}

/// Unpacks every archive source into `srcdir`.
pub fn unpack(fetched: &[(Source, PathBuf)], srcdir: &Path) -> Result<(), SourceError> {
    let root = RootDir::open(srcdir).map_err(|e| SourceError::Unpack {
        archive: srcdir.display().to_string(),
        reason: e.to_string(),
    })?;
    for (src, path) in fetched {
        let Some(kind) = archive_kind(&src.file_name) else {
            continue;
        };
        let unsafe_err = |e: Unsafe| match e {
            Unsafe::Entry(entry, problem) => SourceError::UnsafeEntry {
                archive: src.file_name.clone(),
                entry,
                problem,
            },
            Unsafe::Other(reason) => SourceError::Unpack {
                archive: src.file_name.clone(),
                reason,
            },
        };
        if kind == Archive::Zip {
            unpack_zip(&fs_err::read(path)?, &root).map_err(unsafe_err)?;
            continue;
        }
        let file = std::io::BufReader::new(fs_err::File::open(path)?);
        let reader: Box<dyn Read> = match kind {
            Archive::Tar => Box::new(file),
            Archive::Gz => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Archive::Xz => Box::new(liblzma::read::XzDecoder::new(file)),
            Archive::Bz2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
            Archive::Lz => Box::new(liblzma::read::XzDecoder::new_stream(
                file,
                liblzma::stream::Stream::new_lzip_decoder(u64::MAX, 0).map_err(|e| {
                    SourceError::Unpack {
                        archive: src.file_name.clone(),
                        reason: e.to_string(),
                    }
                })?,
            )),
            Archive::Lzma => Box::new(liblzma::read::XzDecoder::new_stream(
                file,
                liblzma::stream::Stream::new_lzma_decoder(u64::MAX).map_err(|e| {
                    SourceError::Unpack {
                        archive: src.file_name.clone(),
                        reason: e.to_string(),
                    }
                })?,
            )),
            Archive::Zst => Box::new(zstd::stream::read::Decoder::new(file)?),
            Archive::Zip => unreachable!("handled above"),
        };
        unpack_tar(reader, &root).map_err(unsafe_err)?;
    }
    Ok(())
}

/// What went wrong inside one archive.
enum Unsafe {
    /// An entry that would leave the root: (entry, why).
    Entry(PathBuf, &'static str),
    /// Anything else.
    Other(String),
}

impl<E: std::error::Error> From<E> for Unsafe {
    fn from(e: E) -> Self {
        Unsafe::Other(chain(&e))
    }
}

/// A relative path with only normal components, or an error naming the entry.
fn safe_rel(name: &Path) -> Result<PathBuf, Unsafe> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(Unsafe::Entry(
                    name.to_path_buf(),
                    "leaves the source directory (absolute or `..`)",
                ));
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `link` (relative) pointing to `target` stays inside the root.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fn unpack_zip(bytes: &[u8], root: &RootDir) -> Result<(), Unsafe> {
    let members = super::zip::read(bytes).map_err(Unsafe::Other)?;
    for m in members {
        let rel = safe_rel(Path::new(&m.name))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        if let Some(parent) = rel.parent()
            && !parent.as_os_str().is_empty()
        {
            root.create_dir_all(parent, 0o755)?;
        }
        let mode = if m.mode & 0o7777 == 0 {
            0o644
        } else {
            m.mode & 0o7777
        };
        if m.is_dir() {
            root.create_dir_all(&rel, mode | 0o700)?;
        } else if m.is_symlink() {
            let target = PathBuf::from(String::from_utf8_lossy(&m.data).into_owned());
            if !link_stays_inside(&rel, &target) {
                return Err(Unsafe::Entry(
                    rel,
                    "is a symlink pointing outside the source directory",
                ));
            }
            root.symlink(&rel, &target)?;
        } else {
            let mut f = root.create_file(&rel, 0o600)?;
            std::io::Write::write_all(&mut f, &m.data)?;
            root.set_mode(&rel, mode | 0o600)?;
        }
    }
    Ok(())
}

fn unpack_tar(reader: impl Read, root: &RootDir) -> Result<(), Unsafe> {
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = safe_rel(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        if let Some(parent) = rel.parent()
            && !parent.as_os_str().is_empty()
        {
            root.create_dir_all(parent, 0o755)?;
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => root.create_dir_all(&rel, mode | 0o700)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = root.create_file(&rel, 0o600)?;
                std::io::copy(&mut entry, &mut f)?;
                root.set_mode(&rel, mode | 0o600)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| Unsafe::Entry(rel.clone(), "is a symlink without a target"))?
                    .into_owned();
                if !link_stays_inside(&rel, &target) {
                    return Err(Unsafe::Entry(
                        rel,
                        "is a symlink pointing outside the source directory",
                    ));
                }
                root.symlink(&rel, &target)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| Unsafe::Entry(rel.clone(), "is a hard link without a target"))?
                    .into_owned();
                root.hard_link(&rel, safe_rel(&target)?)?;
            }
            // pax/GNU headers are consumed by the tar crate; devices and FIFOs have no
            // place in a source tree.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_that_climb_out_are_refused() {
        assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("a"), Path::new("/etc/passwd")));
    }

    proptest::proptest! {
        #[test]
        fn safe_paths_never_leave(parts in proptest::collection::vec("(\\.\\.|\\.|/|[a-z]{1,3})", 0..8)) {
            let name = parts.join("/");
            if let Ok(p) = safe_rel(Path::new(&name)) {
                proptest::prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }

        #[test]
        fn accepted_links_stay_inside(
            link in proptest::collection::vec("[a-z]{1,3}", 1..5),
            target in proptest::collection::vec("(\\.\\.|\\.|[a-z]{1,3})", 1..8),
        ) {
            let link = link.join("/");
            let target = target.join("/");
            if link_stays_inside(Path::new(&link), Path::new(&target)) {
                let mut depth = 0i64;
                for c in Path::new(&link).parent().unwrap().join(&target).components() {
                    match c {
                        Component::ParentDir => depth -= 1,
                        Component::Normal(_) => depth += 1,
                        _ => {}
                    }
                    proptest::prop_assert!(depth >= 0);
                }
            }
        }
    }

    #[test]
    fn archive_names() {
        assert_eq!(archive_kind("x-1.tar.gz"), Some(Archive::Gz));
        assert_eq!(archive_kind("x.tar.zst"), Some(Archive::Zst));
        assert_eq!(archive_kind("x.tar.lz"), Some(Archive::Lz));
        assert_eq!(archive_kind("x.tar.lzma"), Some(Archive::Lzma));
        // abuild unpacks only the names its default_unpack lists.
        assert_eq!(archive_kind("x.txz"), None);
        assert_eq!(archive_kind("x.TAR.GZ"), None);
        assert_eq!(archive_kind("x.patch"), None);
    }

    #[test]
    fn lzma_tarballs_unpack() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        tar.append_data(&mut h, "d/f", &b"hi\n"[..]).unwrap();
        let plain = tar.into_inner().unwrap();
        let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
        let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        std::io::Write::write_all(&mut enc, &plain).unwrap();
        let bytes = enc.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("x.tar.lzma");
        fs_err::write(&archive, bytes).unwrap();
        let src = Source {
            spec: "x.tar.lzma".into(),
            file_name: "x.tar.lzma".into(),
            url: None,
        };
        let out = dir.path().join("src");
        fs_err::create_dir_all(&out).unwrap();
        unpack(&[(src, archive)], &out).unwrap();
        assert_eq!(fs_err::read(out.join("d/f")).unwrap(), b"hi\n");
    }
}
