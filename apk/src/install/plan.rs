//! What a transaction will do: the new world, the candidates the resolver chooses from,
//! the resolution, and from it the packages to remove and to install (apk-format.md §4.4,
//! §5).

use std::collections::{HashMap, HashSet};

use super::report::Event;
use super::repos::Repositories;
use super::source::Fetched;
use super::world::{candidate, parse_atom, virtual_package, world_add};
use super::{InstallError, InstallOptions, InstallReport};
use crate::dep::Dependency;
use crate::installed::{InstalledPackage, InstalledState};
use crate::resolve::{Candidate, InstalledPackage as ResolverInstalled, Resolution, resolve};

/// What the caller asks for.
#[derive(Clone, Copy)]
pub(super) enum Change<'a> {
    Add(&'a [Dependency]),
    Del(&'a [String]),
}

/// The world after the change, and what the change brought.
pub(super) struct WorldChange {
    pub world: Vec<Dependency>,
    /// The `--virtual` package being created.
    pub virtual_pkg: Option<InstalledPackage>,
    /// Names `apk del` took out of the world.
    pub deleted: Vec<String>,
}

/// Applies `change` to the world of `state`; a `del` of a name not in the world warns.
pub(super) fn change_world(
    state: &InstalledState,
    change: Change<'_>,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<WorldChange, InstallError> {
    let mut world: Vec<Dependency> = state
        .world
        .atoms
        .iter()
        .map(|w| parse_atom(w))
        .collect::<Result<_, _>>()?;
    let mut virtual_pkg = None;
    let mut deleted = Vec::new();
    match change {
        Change::Add(request) => match &opts.virtual_name {
            Some(spec) => {
                let (pkg, dep) = virtual_package(spec, request, opts.source_date)?;
                world_add(&mut world, dep);
                virtual_pkg = Some(pkg);
            }
            None => {
                for dep in request {
                    world_add(&mut world, dep.clone());
                }
            }
        },
        Change::Del(names) => {
            for name in names {
                let before = world.len();
                world.retain(|d| &d.name != name);
                if world.len() == before {
                    warn(
                        opts,
                        report,
                        format!("{name}: not in world, nothing to remove"),
                    );
                }
                deleted.push(name.clone());
            }
        }
    }
    Ok(WorldChange {
        world,
        virtual_pkg,
        deleted,
    })
}

fn warn(opts: &InstallOptions, report: &mut InstallReport, msg: String) {
    opts.reporter.event(Event::Warning(&msg));
    report.warnings.push(msg);
}

/// Where a candidate comes from.
#[derive(Clone, Copy)]
pub(super) enum Source {
    /// `fetched.entries[i]`.
    Index(usize),
    /// An installed package no repository has.
    Installed,
    /// The `--virtual` package being created.
    Virtual,
}

/// Everything the resolver may choose from, with where each candidate comes from.
pub(super) struct Available {
    pub fetched: Fetched,
    pub candidates: Vec<Candidate>,
    pub sources: Vec<Source>,
}

impl Available {
    /// Candidates: indexes (first repository wins a name-version), the installed packages
    /// no repository has, and the virtual package.
    pub fn collect(
        fetched: Fetched,
        repos: &Repositories,
        wanted: &WorldChange,
        state: &InstalledState,
    ) -> Self {
        let mut this = Self {
            fetched,
            candidates: Vec::new(),
            sources: Vec::new(),
        };
        let mut seen = this.add_indexed(repos, &wanted.world);
        this.add_installed(state, wanted.virtual_pkg.as_ref(), &mut seen);
        if let Some(v) = &wanted.virtual_pkg {
            this.candidates.push(candidate(&v.entry, 0));
            this.sources.push(Source::Virtual);
        }
        this
    }

    /// Index entries of this architecture, tagged repositories only for names pinned to
    /// their tag; returns the name-versions taken.
    fn add_indexed(
        &mut self,
        repos: &Repositories,
        world: &[Dependency],
    ) -> HashSet<(String, String)> {
        let pinned_tags: HashSet<(String, String)> = world
            .iter()
            .filter_map(|d| d.tag.clone().map(|t| (d.name.clone(), t)))
            .collect();
        let mut seen = HashSet::new();
        for (i, (entry, ri)) in self.fetched.entries.iter().enumerate() {
            // As 3.x's `apk_db_arch_compatible`: another architecture is not installable.
            if !(entry.arch.is_empty() || entry.arch == repos.arch || entry.arch == "noarch") {
                continue;
            }
            if let Some(tag) = &repos.repos[*ri].tag
                && !pinned_tags.contains(&(entry.name.clone(), tag.clone()))
            {
                continue;
            }
            if !seen.insert((entry.name.clone(), entry.version.clone())) {
                continue;
            }
            self.candidates.push(candidate(entry, *ri as u32));
            self.sources.push(Source::Index(i));
        }
        seen
    }

    /// Installed packages no repository offers (the virtual package being replaced aside).
    fn add_installed(
        &mut self,
        state: &InstalledState,
        virtual_pkg: Option<&InstalledPackage>,
        seen: &mut HashSet<(String, String)>,
    ) {
        for p in &state.db.packages {
            if virtual_pkg.is_some_and(|v| v.entry.name == p.entry.name) {
                continue;
            }
            if seen.insert((p.entry.name.clone(), p.entry.version.clone())) {
                self.candidates.push(candidate(&p.entry, u32::MAX));
                self.sources.push(Source::Installed);
            }
        }
    }

    /// Resolves `world` against the candidates, keeping installed versions except for the
    /// `fresh` names; with no repository at all, an `add` that cannot be satisfied says to
    /// configure one.
    pub fn resolve(
        &self,
        state: &InstalledState,
        world: &[Dependency],
        fresh: &[&str],
        no_repositories: bool,
    ) -> Result<Resolution, InstallError> {
        let installed: Vec<ResolverInstalled> = state
            .db
            .packages
            .iter()
            .filter(|p| !fresh.contains(&p.entry.name.as_str()))
            .map(|p| ResolverInstalled {
                name: p.entry.name.clone(),
                version: p.entry.version.clone(),
            })
            .collect();
        resolve(&self.candidates, &installed, world).map_err(|e| {
            if no_repositories {
                InstallError::NoRepositories
            } else {
                InstallError::Resolve(Box::new(e))
            }
        })
    }

    /// [`InstallReport::planned`]: `(name, version, C:)` of every selected package.
    pub fn planned(
        &self,
        resolution: &Resolution,
        state: &InstalledState,
    ) -> Vec<(String, String, String)> {
        resolution
            .install
            .iter()
            .map(|&i| {
                let c = &self.candidates[i];
                let checksum = match self.sources[i] {
                    Source::Index(e) => self.fetched.entries[e].0.checksum.to_string(),
                    Source::Installed => state
                        .db
                        .packages
                        .iter()
                        .find(|p| p.entry.name == c.name && p.entry.version == c.version)
                        .map(|p| p.entry.checksum.to_string())
                        .unwrap_or_default(),
                    Source::Virtual => String::new(),
                };
                (c.name.clone(), c.version.clone(), checksum)
            })
            .collect()
    }
}

/// Removal order: a package before the packages it depends on.
pub(super) fn removal_order(pkgs: &[InstalledPackage]) -> Vec<usize> {
    let names: Vec<HashSet<String>> = pkgs.iter().map(provided_names).collect();
    let deps: Vec<Vec<usize>> = pkgs
        .iter()
        .map(|p| {
            super::world::parse_deps(&p.entry.depends)
                .iter()
                .filter(|d| !d.conflict)
                .flat_map(|d| {
                    names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| n.contains(&d.name))
                        .map(|(j, _)| j)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect();
    // Post-order DFS gives dependencies first; reversed, dependents first.
    let mut state = vec![false; pkgs.len()];
    let mut out = Vec::new();
    fn visit(i: usize, deps: &[Vec<usize>], seen: &mut [bool], out: &mut Vec<usize>) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        for &j in &deps[i] {
            visit(j, deps, seen, out);
        }
        out.push(i);
    }
    for i in 0..pkgs.len() {
        visit(i, &deps, &mut state, &mut out);
    }
    out.reverse();
    out
}

/// The package's name and the names it provides.
fn provided_names(p: &InstalledPackage) -> HashSet<String> {
    let mut s: HashSet<String> = p
        .entry
        .provides
        .iter()
        .map(|x| x.split('=').next().unwrap_or(x).to_owned())
        .collect();
    s.insert(p.entry.name.clone());
    s
}

/// Non-directory path → index into `pkgs` of its owner.
pub(super) fn owned_paths(pkgs: &[InstalledPackage]) -> HashMap<String, usize> {
    let mut owned = HashMap::new();
    for (j, p) in pkgs.iter().enumerate() {
        for path in file_paths(p) {
            owned.insert(path, j);
        }
    }
    owned
}

/// Every non-directory path `p` owns, relative to the root.
pub(super) fn file_paths(p: &InstalledPackage) -> impl Iterator<Item = String> + '_ {
    p.dirs.iter().flat_map(|d| {
        d.files.iter().map(move |f| {
            if d.path.is_empty() {
                f.name.clone()
            } else {
                format!("{}/{}", d.path, f.name)
            }
        })
    })
}
