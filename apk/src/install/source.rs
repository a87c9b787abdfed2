//! Indexes and packages from the repositories, through the [`Fetcher`](super::Fetcher) and
//! the optional cache (apk-format.md §3.5): every index verified against the trusted keys
//! before use or caching, every package cached only once it verified.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::fetch::{index_cache_name, index_url, package_cache_name};
use super::report::Event;
use super::repos::{Repositories, Repository};
use super::unpack::{UnpackContext, Unpacked, unpack};
use super::{InstallError, InstallOptions, InstallReport};
use crate::index::{IndexEntry, SignedIndex};

pub(super) struct Fetched {
    /// Every index entry with the position of its repository.
    pub entries: Vec<(IndexEntry, usize)>,
}

/// Plain paths are not cached (apk caches remote repositories only); `file://` URLs are,
/// like any URL.
fn is_local(url: &str) -> bool {
    !url.contains("://")
}

/// Every repository's verified index, with the repository's description (`apk update`).
pub(super) fn load_repository_indexes(
    repos: &Repositories,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<Vec<super::RepositoryIndex>, InstallError> {
    repos
        .repos
        .iter()
        .map(|repo| {
            let index = load_index(repo, repos, opts, report)?;
            Ok(super::RepositoryIndex {
                repository: repo.clone(),
                description: index.index.description,
                packages: index.index.packages,
            })
        })
        .collect()
}

/// Reads every repository's index, verifying its signature.
pub(super) fn load_indexes(
    repos: &Repositories,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<Fetched, InstallError> {
    let mut entries = Vec::new();
    for (ri, repo) in repos.repos.iter().enumerate() {
        let index = load_index(repo, repos, opts, report)?;
        entries.extend(index.index.packages.into_iter().map(|e| (e, ri)));
    }
    Ok(Fetched { entries })
}

/// One repository's index: from the cache unless refreshing, else fetched; verified, and
/// cached only once it verified (or was explicitly allowed).
fn load_index(
    repo: &Repository,
    repos: &Repositories,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<SignedIndex, InstallError> {
    let url = index_url(&repo.url, &repos.arch);
    let cache = opts
        .cache_dir
        .as_ref()
        .filter(|_| !is_local(&url))
        .map(|d| d.join(index_cache_name(&url)));
    let cached = cache.clone().filter(|p| !opts.update_cache && p.is_file());
    opts.reporter.event(Event::FetchIndex {
        url: &url,
        cached: cached.is_some(),
    });
    let bytes = match &cached {
        Some(path) => fs_err::read(path).map_err(|source| InstallError::Io {
            path: path.clone(),
            source,
        })?,
        None => fetch_index(opts, &url)?,
    };
    let index = SignedIndex::parse(&bytes).map_err(|e| InstallError::Index {
        repository: repo.url.clone(),
        source: Box::new(e),
    })?;
    verify_index(&index, repo, repos, opts, report)?;
    if let Some(path) = cache.filter(|_| cached.is_none()) {
        write_cache(&path, &bytes)?;
    }
    Ok(index)
}

fn fetch_index(opts: &InstallOptions, url: &str) -> Result<Vec<u8>, InstallError> {
    let mut bytes = Vec::new();
    opts.fetcher
        .open(url)?
        .take(crate::index::MAX_INDEX_SIZE)
        .read_to_end(&mut bytes)
        .map_err(|source| super::FetchError::Io {
            url: url.to_owned(),
            source,
        })?;
    Ok(bytes)
}

/// Refuses an index no trusted key verifies, unless `--allow-untrusted` (then a warning).
fn verify_index(
    index: &SignedIndex,
    repo: &Repository,
    repos: &Repositories,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<(), InstallError> {
    let Err(e) = index.verify(&repos.keys) else {
        return Ok(());
    };
    if !opts.allow_untrusted {
        return Err(InstallError::Untrusted {
            repository: repo.url.clone(),
            reason: e.to_string(),
        });
    }
    let msg = format!(
        "{}: UNTRUSTED signature, used anyway (--allow-untrusted)",
        repo.url
    );
    opts.reporter.event(Event::Warning(&msg));
    report.warnings.push(msg);
    Ok(())
}

fn write_cache(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    create_parent(path)?;
    crate::atomic::write_atomic(path, bytes).map_err(|source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the cache directory holding `path`.
fn create_parent(path: &Path) -> Result<(), InstallError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    fs_err::create_dir_all(dir).map_err(|source| InstallError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Opens the package (cache first), unpacks it, and caches it once it verified.
pub(super) fn fetch_and_unpack(
    cx: &UnpackContext<'_>,
    opts: &InstallOptions,
    entry: &IndexEntry,
) -> Result<Unpacked, InstallError> {
    let cache = opts
        .cache_dir
        .as_ref()
        .filter(|_| !is_local(cx.url))
        .map(|d| {
            d.join(package_cache_name(
                &entry.name,
                &entry.version,
                &entry.checksum,
            ))
        });
    if let Some(path) = cache.as_ref().filter(|p| p.is_file()) {
        let file = fs_err::File::open(path).map_err(|source| InstallError::Io {
            path: path.clone(),
            source,
        })?;
        return unpack(cx, BufReader::with_capacity(256 << 10, file), opts.scripts);
    }
    let input = opts.fetcher.open(cx.url)?;
    let Some(path) = cache else {
        return unpack(cx, BufReader::with_capacity(256 << 10, input), opts.scripts);
    };
    create_parent(&path)?;
    let io_err = |source| InstallError::Io {
        path: path.clone(),
        source,
    };
    let file = crate::atomic::AtomicFile::create(&path).map_err(io_err)?;
    let mut tee = Tee {
        inner: input,
        copy: file,
        error: None,
    };
    let unpacked = unpack(
        cx,
        BufReader::with_capacity(256 << 10, &mut tee),
        opts.scripts,
    )?;
    if let Some(e) = tee.error {
        return Err(io_err(e));
    }
    tee.copy.flush().map_err(io_err)?;
    tee.copy.commit().map_err(io_err)?;
    Ok(unpacked)
}

/// Copies what is read into the cache file.
struct Tee {
    inner: Box<dyn Read>,
    copy: crate::atomic::AtomicFile,
    error: Option<std::io::Error>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.error.is_none()
            && let Err(e) = self.copy.write_all(&buf[..n])
        {
            self.error = Some(e);
        }
        Ok(n)
    }
}
