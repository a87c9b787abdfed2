//! From the resolution to the changes: which installed packages go, which candidates are
//! installed or upgraded, what that means for the user before it starts (apk's `-v`
//! listing), and why a name `apk del` was asked to remove stays (apk's "World updated, but
//! the following packages are not removed").

use std::collections::{HashMap, HashSet};

use super::engine::Transaction;
use super::plan::{Available, Source, WorldChange};
use super::report::{Event, PlannedChange};
use super::repos::Repositories;
use crate::installed::{InstalledPackage, InstalledState};
use crate::resolve::Resolution;

/// The changes to make: packages to remove, candidates to install or upgrade.
pub(super) struct Steps {
    /// Installed packages the new world no longer selects.
    pub removed: Vec<InstalledPackage>,
    /// Candidate indexes to install, dependencies first.
    pub installs: Vec<usize>,
}

impl Steps {
    /// Compares the resolution with what is installed, and tells the reporter about the
    /// changes and about names `apk del` was asked to remove but that stay selected.
    pub fn plan(
        available: &Available,
        resolution: &Resolution,
        tx: &mut Transaction<'_, '_>,
        wanted: &WorldChange,
    ) -> Self {
        let (state, repos, opts) = (&tx.state, &tx.repos, tx.opts);
        let selected: HashSet<&str> = resolution
            .install
            .iter()
            .map(|&i| available.candidates[i].name.as_str())
            .collect();
        for name in wanted
            .deleted
            .iter()
            .filter(|n| selected.contains(n.as_str()))
        {
            let required_by = required_by(available, resolution, wanted, name);
            opts.reporter.event(Event::Kept {
                name,
                required_by: &required_by,
            });
            // Said by the event; the report keeps it as a warning.
            let msg = format!("{name}: still required by other world entries, not removed");
            tx.report.warnings.push(msg);
        }
        let removed = state
            .db
            .packages
            .iter()
            .filter(|p| !selected.contains(p.entry.name.as_str()))
            .cloned()
            .collect();
        let installs = resolution
            .install
            .iter()
            .copied()
            .filter(|&ci| !is_current(available, ci, state, wanted))
            .collect();
        let steps = Self { removed, installs };
        opts.reporter
            .event(Event::Plan(&steps.changes(available, state, repos)));
        steps
    }

    /// Number of progress steps.
    pub fn total(&self) -> usize {
        self.removed.len() + self.installs.len()
    }

    /// The changes, for the reporter.
    fn changes(
        &self,
        available: &Available,
        state: &InstalledState,
        repos: &Repositories,
    ) -> Vec<PlannedChange> {
        let mut out: Vec<PlannedChange> = self
            .removed
            .iter()
            .map(|p| PlannedChange {
                name: p.entry.name.clone(),
                old: Some((p.entry.version.clone(), p.entry.installed_size)),
                new: None,
                download: 0,
            })
            .collect();
        for &ci in &self.installs {
            let cand = &available.candidates[ci];
            let (size, download) = match available.sources[ci] {
                Source::Index(e) => {
                    let (entry, ri) = &available.fetched.entries[e];
                    let remote = repos.repos[*ri].url.contains("://");
                    (
                        entry.installed_size,
                        if remote { entry.file_size } else { 0 },
                    )
                }
                _ => (0, 0),
            };
            out.push(PlannedChange {
                name: cand.name.clone(),
                old: state
                    .db
                    .get(&cand.name)
                    .map(|o| (o.entry.version.clone(), o.entry.installed_size)),
                new: Some((cand.version.clone(), size)),
                download,
            });
        }
        out
    }
}

/// Whether candidate `ci` is exactly what is installed already (nothing to do).
fn is_current(
    available: &Available,
    ci: usize,
    state: &InstalledState,
    wanted: &WorldChange,
) -> bool {
    let cand = &available.candidates[ci];
    let old = state.db.get(&cand.name);
    match (available.sources[ci], old) {
        (Source::Installed, _) => true,
        (Source::Index(e), Some(p)) => {
            let entry = &available.fetched.entries[e].0;
            p.entry.version == entry.version && p.entry.checksum == entry.checksum
        }
        (Source::Virtual, Some(p)) => {
            p.entry.version == cand.version
                && Some(&p.entry.depends) == wanted.virtual_pkg.as_ref().map(|v| &v.entry.depends)
        }
        (_, None) => false,
    }
}

/// The names of the new world whose selected packages need `name`, directly or through
/// other selected packages, sorted.
fn required_by(
    available: &Available,
    resolution: &Resolution,
    wanted: &WorldChange,
    name: &str,
) -> Vec<String> {
    // Every name a selected package is or provides, to the package.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for &i in &resolution.install {
        let c = &available.candidates[i];
        by_name.insert(&c.name, i);
        for p in &c.provides {
            by_name.entry(&p.name).or_insert(i);
        }
    }
    let needs = |start: usize| {
        let mut seen = HashSet::from([start]);
        let mut todo = vec![start];
        while let Some(i) = todo.pop() {
            if available.candidates[i].name == name {
                return true;
            }
            for d in available.candidates[i]
                .depends
                .iter()
                .filter(|d| !d.conflict)
            {
                if let Some(&j) = by_name.get(d.name.as_str())
                    && seen.insert(j)
                {
                    todo.push(j);
                }
            }
        }
        false
    };
    let mut out: Vec<String> = wanted
        .world
        .iter()
        .filter(|d| d.name != name)
        .filter(|d| by_name.get(d.name.as_str()).is_some_and(|&i| needs(i)))
        .map(|d| d.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}
