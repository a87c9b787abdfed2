//! Where index and package bytes come from (apk-format.md §3.5).
//!
//! The apk crate stays free of HTTP: [`Fetcher`] is the seam, [`LocalFetcher`] serves local
//! directories and `file://` URLs, and programs that need `http(s)://` supply their own
//! implementation. The cache names files the way apk 2.14 does so that a cache directory
//! shared with a real `apk` stays meaningful to both.

use std::io::Read;
use std::path::PathBuf;

use sha1::Digest as _;

/// Why a URL could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Nothing at that URL (HTTP 404, missing file).
    #[error("`{url}`: not found; check the repository URL and architecture")]
    NotFound {
        /// The URL asked for.
        url: String,
    },
    /// The URL scheme is not served by this fetcher.
    #[error("`{url}`: unsupported URL scheme; this fetcher serves {supported}")]
    Unsupported {
        /// The URL asked for.
        url: String,
        /// What the fetcher can serve.
        supported: &'static str,
    },
    /// Reading failed.
    #[error("`{url}`: {source}")]
    Io {
        /// The URL asked for.
        url: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any other failure (HTTP status, TLS, …), as text.
    #[error("`{url}`: {reason}")]
    Failed {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Opens repository URLs for reading.
pub trait Fetcher {
    /// A stream of the bytes at `url` (an index or a package URL built by the installer).
    fn open(&self, url: &str) -> Result<Box<dyn Read>, FetchError>;
}

/// Serves plain paths and `file://` URLs from the host filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalFetcher;

impl LocalFetcher {
    /// The host path a local repository URL names, if it is one.
    pub fn local_path(url: &str) -> Option<PathBuf> {
        if let Some(rest) = url.strip_prefix("file://") {
            return Some(PathBuf::from(rest));
        }
        if url.contains("://") {
            return None;
        }
        Some(PathBuf::from(url))
    }
}

impl Fetcher for LocalFetcher {
    fn open(&self, url: &str) -> Result<Box<dyn Read>, FetchError> {
        let Some(path) = Self::local_path(url) else {
            return Err(FetchError::Unsupported {
                url: url.to_owned(),
                supported: "local paths and file:// URLs",
            });
        };
        match fs_err::File::open(&path) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FetchError::NotFound {
                url: url.to_owned(),
            }),
            Err(source) => Err(FetchError::Io {
                url: url.to_owned(),
                source,
            }),
        }
    }
}

/// `<repo>/<arch>/APKINDEX.tar.gz`.
pub fn index_url(repo: &str, arch: &str) -> String {
    format!("{}/{arch}/APKINDEX.tar.gz", repo.trim_end_matches('/'))
}

/// `<repo>/<A:>/<P>-<V>.apk`.
pub fn package_url(repo: &str, arch: &str, name: &str, version: &str) -> String {
    format!("{}/{arch}/{name}-{version}.apk", repo.trim_end_matches('/'))
}

/// apk 2.14's cache name for an index: `APKINDEX.<first 4 bytes of SHA-1(url) as hex>.tar.gz`.
pub fn index_cache_name(url: &str) -> String {
    let digest = sha1::Sha1::digest(url.as_bytes());
    format!("APKINDEX.{}.tar.gz", hex::encode(&digest[..4]))
}

/// apk 2.14's cache name for a package: `<P>-<V>.<first 4 bytes of the C: digest>.apk`.
pub fn package_cache_name(
    name: &str,
    version: &str,
    checksum: &crate::checksum::Checksum,
) -> String {
    format!("{name}-{version}.{}.apk", hex::encode(&checksum.0[..4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_cache_names() {
        assert_eq!(
            index_url("https://dl/alpine/v3.20/main/", "x86_64"),
            "https://dl/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"
        );
        assert_eq!(
            package_url("/srv/repo", "aarch64", "hello", "1.0-r0"),
            "/srv/repo/aarch64/hello-1.0-r0.apk"
        );
        let name = index_cache_name("https://dl/x86_64/APKINDEX.tar.gz");
        assert!(name.starts_with("APKINDEX.") && name.ends_with(".tar.gz"));
        assert_eq!(name.len(), "APKINDEX.".len() + 8 + ".tar.gz".len());
        assert_eq!(
            LocalFetcher::local_path("file:///srv/r"),
            Some(PathBuf::from("/srv/r"))
        );
        assert_eq!(LocalFetcher::local_path("https://x"), None);
    }
}
