//! Repositories, keys and architecture of a target root (apk-format.md §4.5, §4.6, §2.5).
//!
//! Everything is read *inside* the root through [`RootDir`], so an image whose
//! `etc/apk/keys` is a symlink to `/` cannot make us trust the host's files.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::keys::{Keyring, PublicKey, PublicKeyFormat};
use crate::rootfs::RootDir;

use super::InstallError;

/// One repository line: `[@tag ]URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The repository base URL or local directory.
    pub url: String,
    /// `@tag` (without the `@`), for `name@tag` pins.
    pub tag: Option<String>,
}

impl Repository {
    /// Parses one line of `etc/apk/repositories`; `None` for blank and comment lines.
    pub fn parse_line(line: &str) -> Option<Self> {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        if let Some(rest) = line.strip_prefix('@') {
            let (tag, url) = rest.split_once(char::is_whitespace)?;
            let url = url.trim();
            if url.is_empty() {
                return None;
            }
            return Some(Self {
                url: url.to_owned(),
                tag: Some(tag.to_owned()),
            });
        }
        Some(Self {
            url: line.trim_end().to_owned(),
            tag: None,
        })
    }
}

/// What an installation reads from the target root, plus what the caller adds.
#[derive(Debug, Clone, Default)]
pub struct Repositories {
    /// Repositories in priority order (first preferred).
    pub repos: Vec<Repository>,
    /// Trusted keys.
    pub keys: Keyring,
    /// Primary architecture (first line of `etc/apk/arch`).
    pub arch: String,
}

/// Parses `etc/apk/repositories`-style text.
pub fn parse_repositories(text: &str) -> Vec<Repository> {
    text.lines().filter_map(Repository::parse_line).collect()
}

fn read_in_root(root: &RootDir, rel: &str) -> Result<Option<String>, InstallError> {
    match root.open_file(rel) {
        Ok(mut f) => {
            let mut s = String::new();
            f.read_to_string(&mut s)
                .map_err(|source| InstallError::Io {
                    path: root.path().join(rel),
                    source,
                })?;
            Ok(Some(s))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(source) => Err(source.into()),
    }
}

fn list_dir_in_root(root: &RootDir, rel: &str) -> Result<Vec<String>, InstallError> {
    let dir = match root.open_dir(rel) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(source) => return Err(source.into()),
    };
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir_fd(&dir))
    );
    let mut names = Vec::new();
    let io_err = |source| InstallError::Io {
        path: root.path().join(rel),
        source,
    };
    for entry in fs_err::read_dir(&path).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn dir_fd(dir: &RootDir) -> std::os::fd::BorrowedFd<'_> {
    std::os::fd::AsFd::as_fd(dir)
}

/// Loads the keys of a directory inside the root (`etc/apk/keys`, `lib/apk/keys`), skipping
/// what apk could not use, as [`Keyring::load_dir`] does on the host.
fn load_keys_in_root(root: &RootDir, rel: &str, keys: &mut Keyring) -> Result<(), InstallError> {
    for name in list_dir_in_root(root, rel)? {
        if name.ends_with(".rsa") || name.starts_with('.') {
            continue;
        }
        let file = format!("{rel}/{name}");
        let Ok(Some(text)) = read_in_root(root, &file) else {
            continue;
        };
        if let Ok(key) = PublicKey::from_pem(&text, name.clone())
            && key.format() != PublicKeyFormat::Pkcs1
        {
            keys.insert(key);
        }
    }
    Ok(())
}

/// Where repositories, keys and the architecture come from.
#[derive(Debug, Clone, Default)]
pub struct RepositoryConfig {
    /// Extra repositories (`--repository URL`, apk's `-X`), tried after the root's.
    pub extra: Vec<String>,
    /// Ignore `etc/apk/repositories` of the root.
    pub ignore_root_repositories: bool,
    /// A host directory of trusted keys replacing the root's (`--keys-dir DIR`).
    pub keys_dir: Option<PathBuf>,
    /// The architecture, overriding `etc/apk/arch`.
    pub arch: Option<String>,
}

/// The architecture of the machine running us, in apk's words.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "x86",
        "arm" => "armv7",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

impl Repositories {
    /// Reads `etc/apk/repositories`, `etc/apk/repositories.d/*.list`, the keys (`etc/apk/keys`
    /// and `lib/apk/keys`, or `config.keys_dir`) and `etc/apk/arch` of `root`.
    pub fn load(root: &RootDir, config: &RepositoryConfig) -> Result<Self, InstallError> {
        let mut repos = Vec::new();
        if !config.ignore_root_repositories {
            if let Some(text) = read_in_root(root, "etc/apk/repositories")? {
                repos.extend(parse_repositories(&text));
            }
            for name in list_dir_in_root(root, "etc/apk/repositories.d")? {
                if name.ends_with(".list")
                    && let Some(text) =
                        read_in_root(root, &format!("etc/apk/repositories.d/{name}"))?
                {
                    repos.extend(parse_repositories(&text));
                }
            }
        }
        for url in &config.extra {
            repos.extend(Repository::parse_line(url));
        }
        let keys = match &config.keys_dir {
            Some(dir) => load_host_keys(dir)?,
            None => {
                let mut keys = Keyring::new();
                load_keys_in_root(root, "etc/apk/keys", &mut keys)?;
                load_keys_in_root(root, "lib/apk/keys", &mut keys)?;
                keys
            }
        };
        let arch = match &config.arch {
            Some(a) => a.clone(),
            None => read_in_root(root, "etc/apk/arch")?
                .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| host_arch().to_owned()),
        };
        Ok(Self { repos, keys, arch })
    }
}

fn load_host_keys(dir: &Path) -> Result<Keyring, InstallError> {
    let (keys, _warnings) = Keyring::load_dir(dir).map_err(|source| InstallError::Keys {
        path: dir.to_path_buf(),
        source: Box::new(source),
    })?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_line_parses_without_panicking(line in "\\PC{0,80}") {
            let _ = Repository::parse_line(&line);
        }

        #[test]
        fn tagged_lines_round_trip(tag in "[a-z][a-z0-9-]{0,10}", url in "[a-z]{1,8}://[a-z0-9./-]{1,30}") {
            let repo = Repository::parse_line(&format!("@{tag} {url}")).unwrap();
            prop_assert_eq!(repo.tag.as_deref(), Some(tag.as_str()));
            prop_assert_eq!(repo.url, url);
        }
    }

    #[test]
    fn repository_lines() {
        let text = "# main\n\nhttps://dl/v3.20/main\n@edge https://dl/edge/testing\n  /srv/local/repo\n@bad\n";
        let repos = parse_repositories(text);
        assert_eq!(
            repos,
            [
                Repository {
                    url: "https://dl/v3.20/main".into(),
                    tag: None
                },
                Repository {
                    url: "https://dl/edge/testing".into(),
                    tag: Some("edge".into())
                },
                Repository {
                    url: "/srv/local/repo".into(),
                    tag: None
                },
            ]
        );
    }
}
