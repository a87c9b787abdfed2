//! One module per subcommand: `Args` (clap) and `run`.

pub mod deploy;
pub mod index;
pub mod inspect;
pub mod keygen;
pub mod pack;
pub mod sign;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use apk::index::SignedIndex;
use apk::keys::Keyring;
use apk::package::{Package, ReadLimits};

/// A file given on the command line, recognised by name and content.
pub enum ApkFile {
    /// A `.apk` package.
    Package(Box<Package>),
    /// An `APKINDEX.tar.gz`.
    Index(Box<SignedIndex>),
}

/// Opens a package or an index. `*.apk` is a package, `*APKINDEX*` an index; anything
/// else is tried as a package, then as an index.
pub fn open_apk_file(path: &Path) -> anyhow::Result<ApkFile> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let as_index =
        || -> anyhow::Result<ApkFile> { Ok(ApkFile::Index(Box::new(SignedIndex::open(path)?))) };
    if name.contains("APKINDEX") {
        return as_index();
    }
    match Package::open(path, ReadLimits::default()) {
        Ok(pkg) => Ok(ApkFile::Package(Box::new(pkg))),
        Err(err) if !name.ends_with(".apk") => as_index().map_err(|_| err.into()),
        Err(err) => Err(err.into()),
    }
}

/// The trusted keys: `--keys-dir` directories, or by default `/etc/apk/keys` and the
/// abuild user directory (where `apkbuild keygen` puts keys), whichever exist.
pub fn load_keyring(dirs: &[PathBuf], env: &crate::env::Env) -> anyhow::Result<Keyring> {
    let defaults: Vec<PathBuf> = [Some(PathBuf::from("/etc/apk/keys")), env.abuild_userdir()]
        .into_iter()
        .flatten()
        .filter(|d| d.is_dir())
        .collect();
    let explicit = !dirs.is_empty();
    let dirs = if explicit { dirs.to_vec() } else { defaults };
    let mut keyring = Keyring::new();
    for dir in &dirs {
        let (keys, warnings) = Keyring::load_dir(dir)
            .with_context(|| format!("failed to read keys directory `{}`", dir.display()))?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        for name in keys.names().map(str::to_string).collect::<Vec<_>>() {
            if let Some(k) = keys.get(&name) {
                keyring.insert(k.clone());
            }
        }
    }
    if keyring.is_empty() {
        anyhow::bail!(
            "no trusted public keys found in {}; pass --keys-dir DIR holding the signer's .rsa.pub",
            if dirs.is_empty() {
                "/etc/apk/keys or the abuild user directory".to_string()
            } else {
                dirs.iter()
                    .map(|d| format!("`{}`", d.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    Ok(keyring)
}

/// Current time in Unix seconds (the default when SOURCE_DATE_EPOCH is unset).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
