//! Sources: fetch (local files beside the APKBUILD, http/https downloads with retries, the
//! source cache by sha512), verify `sha512sums`, and unpack archives inside `$srcdir`
//! through [`apk::rootfs::RootDir`] so that no entry can land outside it.

use std::io::{Read, Write as _};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use apk::rootfs::RootDir;
use sha2::{Digest as _, Sha512};

use crate::Reporter;
use crate::apkbuild::{Recipe, Source};
use crate::cache::Cache;

/// Hex SHA-512 of a file.
pub fn sha512_file(path: &Path) -> anyhow::Result<String> {
    let mut f = fs_err::File::open(path)?;
    let mut h = Sha512::new();
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
) -> anyhow::Result<Vec<(Source, PathBuf)>> {
    fs_err::create_dir_all(srcdir)?;
    let sums = recipe.sha512sums();
    let mut out = Vec::new();
    for src in recipe.sources() {
        let dest = srcdir.join(&src.file_name);
        check_plain_name(&src.file_name, recipe)?;
        match &src.url {
            None => {
                let local = recipe.dir.join(&src.file_name);
                if !local.is_file() {
                    bail!(
                        "{}: source `{}`: no such file beside the APKBUILD ({})",
                        recipe.path.display(),
                        src.spec,
                        local.display()
                    );
                }
                fs_err::copy(&local, &dest)?;
            }
            Some(url) => {
                let expected = sums
                    .iter()
                    .find(|(n, _)| n == &src.file_name)
                    .map(|(_, s)| s);
                let cached = match (cache, expected) {
                    (Some(c), Some(sum)) => c.get_source(sum)?,
                    _ => None,
                };
                if let Some(bytes) = cached {
                    reporter.info(&format!("{}: from the source cache", src.file_name));
                    apk::atomic::write_atomic(&dest, &bytes)?;
                } else {
                    download(url, &dest, reporter).with_context(|| {
                        format!("{}: failed to fetch `{url}`", recipe.path.display())
                    })?;
                    if let (Some(c), Some(sum)) = (cache, expected)
                        && sha512_file(&dest)? == *sum
                    {
                        c.put_source(sum, &fs_err::read(&dest)?)?;
                    }
                }
            }
        }
        out.push((src, dest));
    }
    Ok(out)
}

fn check_plain_name(name: &str, recipe: &Recipe) -> anyhow::Result<()> {
    let p = Path::new(name);
    if name.is_empty()
        || p.components().count() != 1
        || !matches!(p.components().next(), Some(Component::Normal(_)))
    {
        bail!(
            "{}: source file name `{name}` must be a plain file name (no `/` or `..`)",
            recipe.path.display()
        );
    }
    Ok(())
}

/// Downloads `url` to `dest` (atomically), with three attempts.
fn download(url: &str, dest: &Path, reporter: &dyn Reporter) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(600))
        .user_agent(concat!("apkbuild/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut last = None;
    for attempt in 1..=3 {
        if attempt > 1 {
            std::thread::sleep(std::time::Duration::from_millis(500 * attempt));
            reporter.info(&format!("retrying {url} (attempt {attempt} of 3)"));
        }
        match try_download(&client, url, dest, reporter) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("download failed")))
}

fn try_download(
    client: &reqwest::blocking::Client,
    url: &str,
    dest: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
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

/// Checks every source against `sha512sums`.
pub fn verify(recipe: &Recipe, fetched: &[(Source, PathBuf)]) -> anyhow::Result<()> {
    let sums = recipe.sha512sums();
    for (src, path) in fetched {
        let Some((_, expected)) = sums.iter().find(|(n, _)| n == &src.file_name) else {
            bail!(
                "{}: no sha512sums entry for `{}`: run `apkbuild checksum {}` to record it",
                recipe.path.display(),
                src.file_name,
                recipe.dir.display()
            );
        };
        let actual = sha512_file(path)?;
        if &actual != expected {
            bail!(
                "{}: sha512 of `{}` does not match sha512sums (expected {}…, got {}…): if the \
                 new file is intended, run `apkbuild checksum {}`",
                recipe.path.display(),
                src.file_name,
                &expected[..expected.len().min(16)],
                &actual[..16],
                recipe.dir.display()
            );
        }
    }
    Ok(())
}

/// The kind of archive a source file name says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archive {
    /// `.tar`
    Tar,
    /// `.tar.gz` / `.tgz`
    Gz,
    /// `.tar.xz` / `.txz`
    Xz,
    /// `.tar.bz2` / `.tbz2`
    Bz2,
    /// `.tar.zst`
    Zst,
}

/// Recognises archives by name, as abuild's `default_unpack` does.
pub fn archive_kind(name: &str) -> Option<Archive> {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
        Some(Archive::Gz)
    } else if n.ends_with(".tar.xz") || n.ends_with(".txz") {
        Some(Archive::Xz)
    } else if n.ends_with(".tar.bz2") || n.ends_with(".tbz2") {
        Some(Archive::Bz2)
    } else if n.ends_with(".tar.zst") || n.ends_with(".tzst") {
        Some(Archive::Zst)
    } else if n.ends_with(".tar") {
        Some(Archive::Tar)
    } else {
        None
    }
}

/// Unpacks every archive source into `srcdir`.
pub fn unpack(fetched: &[(Source, PathBuf)], srcdir: &Path) -> anyhow::Result<()> {
    let root = RootDir::open(srcdir)?;
    for (src, path) in fetched {
        let Some(kind) = archive_kind(&src.file_name) else {
            continue;
        };
        let file = std::io::BufReader::new(fs_err::File::open(path)?);
        let reader: Box<dyn Read> = match kind {
            Archive::Tar => Box::new(file),
            Archive::Gz => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Archive::Xz => Box::new(liblzma::read::XzDecoder::new(file)),
            Archive::Bz2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
            Archive::Zst => Box::new(zstd::stream::read::Decoder::new(file)?),
        };
        unpack_tar(reader, &root)
            .with_context(|| format!("refusing to unpack `{}`", src.file_name))?;
    }
    Ok(())
}

/// A relative path with only normal components, or an error naming the entry.
fn safe_rel(name: &Path) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => bail!(
                "entry `{}` leaves the source directory (absolute or `..`)",
                name.display()
            ),
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

fn unpack_tar(reader: impl Read, root: &RootDir) -> anyhow::Result<()> {
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
                    .context("symlink without a target")?
                    .into_owned();
                if !link_stays_inside(&rel, &target) {
                    bail!(
                        "symlink `{}` -> `{}` points outside the source directory",
                        rel.display(),
                        target.display()
                    );
                }
                root.symlink(&rel, &target)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .context("hard link without a target")?
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
        assert_eq!(archive_kind("x.patch"), None);
    }
}
