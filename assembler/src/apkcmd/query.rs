//! What the read-only verbs (`info`, `search`, `version`) look at: the installed database
//! of the target root and the verified repository indexes, merged as apk's database merges
//! them (one package per `C:` checksum), and apk's sort order and name matching.

use std::cmp::Ordering;

use apk::index::IndexEntry;
use apk::install::{InstallOptions, NoScripts, RepositoryIndex};
use apk::installed::{InstalledPackage, InstalledState};

use super::Cx;

pub(super) use super::info::info;
pub(super) use super::listing::{search, version};

/// One package: from a repository, installed, or both.
pub(super) struct Pkg<'d> {
    pub entry: &'d IndexEntry,
    pub installed: Option<&'d InstalledPackage>,
    /// The tag of the repository it is available from (`Some("")` untagged); `None` when
    /// no repository has it.
    pub repo_tag: Option<&'d str>,
    /// Its trigger globs, when installed.
    pub triggers: &'d [String],
}

impl Pkg<'_> {
    /// `name-version`.
    pub fn pv(&self) -> String {
        format!("{}-{}", self.entry.name, self.entry.version)
    }

    /// Whether it is or provides `name`.
    pub fn provides(&self, name: &str) -> bool {
        self.entry.name == name
            || self
                .entry
                .provides
                .iter()
                .any(|p| p.split('=').next() == Some(name))
    }

    /// The version at which it provides `name`, if versioned.
    fn provided_version(&self, name: &str) -> Option<&str> {
        if self.entry.name == name {
            return Some(&self.entry.version);
        }
        self.entry.provides.iter().find_map(|p| {
            p.split_once('=')
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v)
        })
    }

    /// Whether it satisfies the dependency `atom` (apk's `apk_dep_is_provided`).
    pub fn satisfies(&self, atom: &apk::dep::Dependency) -> bool {
        if !self.provides(&atom.name) {
            return false;
        }
        match (&atom.constraint, self.provided_version(&atom.name)) {
            (None, _) => true,
            (Some(c), Some(v)) => c.matches(v),
            (Some(_), None) => false,
        }
    }
}

/// The installed state and the indexes, loaded once per command.
pub(super) struct Db {
    pub state: InstalledState,
    pub indexes: Vec<RepositoryIndex>,
}

impl Db {
    /// Reads what the verb needs; an index that cannot be read is a warning, as apk
    /// carries on with the repositories it has.
    pub fn load(cx: &Cx<'_>, installed: bool, repositories: bool) -> Self {
        let state = if installed {
            InstalledState::load(&cx.target).unwrap_or_default()
        } else {
            InstalledState::default()
        };
        let indexes = if repositories {
            load_indexes(cx)
        } else {
            Vec::new()
        };
        Self { state, indexes }
    }

    /// Every package, installed ones merged with the repository entry of the same `C:`,
    /// sorted as apk displays them (name, case-insensitively first, then version).
    pub fn packages(&self) -> Vec<Pkg<'_>> {
        let mut out: Vec<Pkg<'_>> = Vec::new();
        for index in &self.indexes {
            let tag = index.repository.tag.as_deref().unwrap_or("");
            for entry in &index.packages {
                if out.iter().any(|p| p.entry.checksum == entry.checksum) {
                    continue;
                }
                let installed = self
                    .state
                    .db
                    .packages
                    .iter()
                    .find(|i| i.entry.checksum == entry.checksum);
                out.push(Pkg {
                    entry,
                    installed,
                    repo_tag: Some(tag),
                    triggers: self.triggers(installed),
                });
            }
        }
        for i in &self.state.db.packages {
            if !out.iter().any(|p| p.entry.checksum == i.entry.checksum) {
                out.push(Pkg {
                    entry: &i.entry,
                    installed: Some(i),
                    repo_tag: None,
                    triggers: self.triggers(Some(i)),
                });
            }
        }
        out.sort_by(|a, b| display_order(a.entry, b.entry));
        out
    }
}

impl Db {
    fn triggers(&self, installed: Option<&InstalledPackage>) -> &[String] {
        let Some(i) = installed else {
            return &[];
        };
        self.state
            .triggers
            .entries
            .iter()
            .find(|t| t.checksum == i.entry.checksum)
            .map_or(&[], |t| t.globs.as_slice())
    }
}

fn load_indexes(cx: &Cx<'_>) -> Vec<RepositoryIndex> {
    let fetcher = cx.fetcher();
    let mut o = InstallOptions::new(&fetcher, &NoScripts, &apk::install::NoReporter);
    if cx.options(&mut o).is_err() {
        return Vec::new();
    }
    match apk::install::indexes(&cx.target, &o) {
        Ok(i) => i,
        Err(e) => {
            cx.warning(&e.to_string());
            Vec::new()
        }
    }
}

/// apk's `apk_name_cmp_display`: case-insensitive, then byte order.
pub(super) fn name_order(a: &str, b: &str) -> Ordering {
    a.to_ascii_lowercase()
        .cmp(&b.to_ascii_lowercase())
        .then_with(|| a.cmp(b))
}

/// apk's `apk_pkg_cmp_display`: by name, then version.
fn display_order(a: &IndexEntry, b: &IndexEntry) -> Ordering {
    name_order(&a.name, &b.name).then_with(|| apk::version::compare(&a.version, &b.version))
}

/// apk's human size (`apk_get_human_size`): divided by 1024 while 10000 or more.
pub(super) fn human_size(bytes: u64) -> (u64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut s, mut i) = (bytes, 0);
    while s >= 10000 && i < UNITS.len() - 1 {
        s /= 1024;
        i += 1;
    }
    (s, UNITS[i])
}

pub(super) use apk::glob::matches_casefold as glob_casefold;

/// The packages depending on `pkg` (a dependency it satisfies), by name; `installed`:
/// the installed ones only (`apk info -r`; `apk search -r` looks at all).
pub(super) fn reverse_dependencies<'d>(
    pkgs: &'d [Pkg<'d>],
    pkg: &Pkg<'_>,
    installed: bool,
) -> Vec<&'d Pkg<'d>> {
    pkgs.iter()
        .filter(|p| !installed || p.installed.is_some())
        .filter(|p| {
            p.entry.depends.iter().any(|d| {
                d.parse::<apk::dep::Dependency>()
                    .is_ok_and(|d| !d.conflict && pkg.satisfies(&d))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_helpers() {
        assert_eq!(human_size(9999), (9999, "B"));
        assert_eq!(human_size(123_456), (120, "KiB"));
        assert_eq!(human_size(50 << 20), (50, "MiB"));
        assert_eq!(name_order("Abc", "abd"), Ordering::Less);
        assert_eq!(name_order("B", "a"), Ordering::Greater);
    }
}
