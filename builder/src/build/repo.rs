//! The output repository: `$REPODEST/<repo>/<arch>/`, its signed APKINDEX updated
//! incrementally, and the build-time dependencies found in it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use apk::index::{ApkIndex, IndexEntry, SignedIndex};
use apk::installed::atom_name;
use apk::keys::PrivateKey;
use apk::sign::SignatureType;

use super::BuildError;

/// `APKINDEX.tar.gz` of an arch directory.
pub fn index_path(arch_dir: &Path) -> PathBuf {
    arch_dir.join("APKINDEX.tar.gz")
}

/// Reads an arch directory's index (empty if there is none yet).
pub fn read_index(arch_dir: &Path) -> Result<ApkIndex, BuildError> {
    let p = index_path(arch_dir);
    if !p.exists() {
        return Ok(ApkIndex::default());
    }
    Ok(SignedIndex::open(&p)
        .map_err(|source| BuildError::Index {
            path: p,
            source: Box::new(source),
        })?
        .index)
}

/// Replaces the entries of the packages in `entries` (any version of the same name) and
/// writes the signed index atomically.
pub fn update_index(
    arch_dir: &Path,
    repo: &str,
    entries: Vec<IndexEntry>,
    key: &PrivateKey,
    mtime: u64,
) -> Result<(), BuildError> {
    let mut index = read_index(arch_dir)?;
    let names: BTreeSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    index.packages.retain(|e| !names.contains(&e.name));
    for e in entries {
        index.upsert(e);
    }
    index.description = Some(repo.to_string());
    let p = index_path(arch_dir);
    let bytes = index
        .to_bytes(&[(key, SignatureType::Rsa)], mtime)
        .map_err(|source| BuildError::Index {
            path: p.clone(),
            source: Box::new(source),
        })?;
    apk::atomic::write_atomic(&p, &bytes)
        .map_err(|source| BuildError::Write { path: p, source })?;
    Ok(())
}

/// Every package of every repository under `repodest` for `arch`: (arch dir, entry).
pub fn all_entries(repodest: &Path, arch: &str) -> Result<Vec<(PathBuf, IndexEntry)>, BuildError> {
    let mut out = Vec::new();
    let Ok(rd) = fs_err::read_dir(repodest) else {
        return Ok(out);
    };
    let mut repos: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    repos.sort();
    for repo in repos {
        let dir = repo.join(arch);
        if index_path(&dir).exists() {
            for e in read_index(&dir)?.packages {
                out.push((dir.clone(), e));
            }
        }
    }
    Ok(out)
}

/// The repositories under `repodest` that have an index for `arch` (`repodest/<repo>`),
/// as an installer's repository URLs.
pub fn local_repositories(repodest: &Path, arch: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs_err::read_dir(repodest) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| index_path(&p.join(arch)).exists())
        .collect();
    out.sort();
    out
}

/// Finds the entry providing `name` (package name or a `provides` name).
pub fn find_provider<'a>(
    entries: &'a [(PathBuf, IndexEntry)],
    name: &str,
) -> Option<&'a (PathBuf, IndexEntry)> {
    entries.iter().find(|(_, e)| e.name == name).or_else(|| {
        entries
            .iter()
            .find(|(_, e)| e.provides.iter().any(|p| atom_name(p) == name))
    })
}

/// The packages to install for building with `names`: those the repository has, and
/// everything they depend on that it has too (names it lacks are left to the host).
pub fn closure<'a>(
    entries: &'a [(PathBuf, IndexEntry)],
    names: &[String],
) -> Vec<&'a (PathBuf, IndexEntry)> {
    let mut out: Vec<&(PathBuf, IndexEntry)> = Vec::new();
    let mut todo: Vec<String> = names.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(n) = todo.pop() {
        if n.starts_with('!') || !seen.insert(n.clone()) {
            continue;
        }
        if let Some(found) = find_provider(entries, &n)
            && !out.iter().any(|o| o.1.name == found.1.name)
        {
            out.push(found);
            // Conflicts (`!name`) name nothing to install.
            todo.extend(
                found
                    .1
                    .depends
                    .iter()
                    .filter(|d| !d.starts_with('!'))
                    .map(|d| atom_name(d).to_string()),
            );
        }
    }
    out.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    out
}
