//! The world change of an `apk add`/`apk del` and the candidates the resolver chooses
//! from (apk-format.md §4.4, §5; apk-tools `app_add.c` for `--virtual`).

use crate::checksum::Checksum;
use crate::dep::{Dependency, Op, Provide};
use crate::index::IndexEntry;
use crate::installed::InstalledPackage;
use crate::resolve::Candidate;

use super::InstallError;

pub(super) fn parse_atom(text: &str) -> Result<Dependency, InstallError> {
    text.parse()
        .map_err(|e: crate::dep::DepError| InstallError::BadAtom {
            atom: text.to_owned(),
            reason: e.to_string(),
        })
}

pub(super) fn parse_deps(words: &[String]) -> Vec<Dependency> {
    words.iter().filter_map(|w| w.parse().ok()).collect()
}

pub(super) fn candidate(entry: &IndexEntry, repo_priority: u32) -> Candidate {
    Candidate {
        name: entry.name.clone(),
        version: entry.version.clone(),
        depends: parse_deps(&entry.depends),
        provides: entry
            .provides
            .iter()
            .filter_map(|p| Provide::parse_list(p).ok())
            .flatten()
            .collect(),
        provider_priority: entry.provider_priority,
        install_if: parse_deps(&entry.install_if),
        repo_priority,
    }
}

/// Replaces the world atom for the same name, or appends (apk's `apk_deps_add`).
pub(super) fn world_add(world: &mut Vec<Dependency>, dep: Dependency) {
    match world.iter_mut().find(|d| d.name == dep.name) {
        Some(slot) => *slot = dep,
        None => world.push(dep),
    }
}

/// `%Y%m%d.%H%M%S` of a Unix time, as apk names virtual packages.
pub(super) fn virtual_version(secs: u64) -> String {
    let t = crate::utc(secs);
    format!(
        "{:04}{:02}{:02}.{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub(super) fn virtual_package(
    spec: &str,
    atoms: &[Dependency],
    source_date: u64,
) -> Result<(InstalledPackage, Dependency), InstallError> {
    let bad = || InstallError::BadAtom {
        atom: spec.to_owned(),
        reason: "bad package specifier for --virtual: use NAME or NAME=VERSION".into(),
    };
    let mut dep = parse_atom(spec)?;
    if dep.conflict || dep.tag.is_some() {
        return Err(bad());
    }
    let version = match &dep.constraint {
        None => virtual_version(source_date),
        Some(c) if c.op == Op::Eq => c.version.clone(),
        Some(_) => return Err(bad()),
    };
    dep = parse_atom(&format!("{}={version}", dep.name))?;
    let mut entry = IndexEntry::empty();
    // apk hashes its pid in; we keep it reproducible: name, NUL, version.
    let mut seed = dep.name.clone().into_bytes();
    seed.push(0);
    seed.extend_from_slice(version.as_bytes());
    entry.checksum = Checksum::sha1_of(&seed);
    entry.name = dep.name.clone();
    entry.version = version;
    entry.arch = "noarch".into();
    entry.description = "virtual meta package".into();
    entry.depends = atoms.iter().map(ToString::to_string).collect();
    Ok((InstalledPackage::new(entry), dep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_versions_are_utc_dates() {
        assert_eq!(virtual_version(0), "19700101.000000");
        assert_eq!(virtual_version(1_700_000_000), "20231114.221320");
        assert_eq!(virtual_version(951_782_400), "20000229.000000");
    }
}
