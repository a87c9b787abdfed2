//! The transaction: world change → indexes → resolution → removals, then installs and
//! upgrades in dependency order → triggers → database (apk-format.md §3.5, §4).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::fetch::package_url;
use super::owners::Owners;
use super::report::Event;
use super::repos::Repositories;
use super::script::{ScriptJob, ScriptKind, ScriptOutcome};
use super::source::{Fetched, fetch_and_unpack, load_indexes};
use super::unpack::UnpackContext;
use super::world::{candidate, parse_atom, parse_deps, virtual_package, world_add};
use super::{InstallError, InstallOptions, InstallReport};
use crate::dep::Dependency;
use crate::index::IndexEntry;
use crate::installed::{InstalledPackage, InstalledState, Script, ScriptType, ScriptsDb};
use crate::resolve::{InstalledPackage as ResolverInstalled, resolve};
use crate::rootfs::RootDir;

/// What the caller asks for.
#[derive(Clone, Copy)]
pub(super) enum Change<'a> {
    Add(&'a [Dependency]),
    Del(&'a [String]),
}

/// Where a candidate comes from.
#[derive(Clone, Copy)]
enum Source {
    /// `entries[i]`.
    Index(usize),
    /// An installed package no repository has.
    Installed,
    /// The `--virtual` package being created.
    Virtual,
}

/// `name-version`.
fn id(p: &InstalledPackage) -> String {
    format!("{}-{}", p.entry.name, p.entry.version)
}

/// Every non-directory path `p` owns, relative to the root.
fn file_paths(p: &InstalledPackage) -> impl Iterator<Item = String> + '_ {
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

fn script_type(kind: ScriptKind) -> Option<ScriptType> {
    ScriptType::from_name(kind.as_str())
}

/// Removal order: a package before the packages it depends on.
fn removal_order(pkgs: &[&InstalledPackage]) -> Vec<usize> {
    let names: Vec<HashSet<String>> = pkgs
        .iter()
        .map(|p| {
            let mut s: HashSet<String> = p
                .entry
                .provides
                .iter()
                .map(|x| x.split('=').next().unwrap_or(x).to_owned())
                .collect();
            s.insert(p.entry.name.clone());
            s
        })
        .collect();
    let deps: Vec<Vec<usize>> = pkgs
        .iter()
        .map(|p| {
            parse_deps(&p.entry.depends)
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
    let mut state = vec![0u8; pkgs.len()];
    let mut out = Vec::new();
    fn visit(i: usize, deps: &[Vec<usize>], state: &mut [u8], out: &mut Vec<usize>) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for &j in &deps[i] {
            visit(j, deps, state, out);
        }
        out.push(i);
    }
    for i in 0..pkgs.len() {
        visit(i, &deps, &mut state, &mut out);
    }
    out.reverse();
    out
}

/// Minimal `fnmatch` for trigger globs: `*` and `?` (not crossing nothing special).
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

struct Runner<'o, 'a> {
    opts: &'o InstallOptions<'a>,
    root: &'o Path,
}

impl Runner<'_, '_> {
    /// Runs `kind` of `pkg` if the package has that script.
    fn script(
        &self,
        report: &mut InstallReport,
        pkg: &mut InstalledPackage,
        scripts: &ScriptsDb,
        kind: ScriptKind,
        args: &[String],
    ) {
        let Some(script) = scripts
            .scripts
            .iter()
            .find(|s| s.checksum == pkg.entry.checksum && Some(s.kind) == script_type(kind))
        else {
            return;
        };
        let job = ScriptJob {
            root: self.root,
            name: &pkg.entry.name,
            version: &pkg.entry.version,
            kind,
            script: &script.content,
            args,
        };
        let outcome = self.opts.scripts.run(&job);
        self.record(report, pkg, kind, outcome);
    }

    fn record(
        &self,
        report: &mut InstallReport,
        pkg: &mut InstalledPackage,
        kind: ScriptKind,
        outcome: ScriptOutcome,
    ) {
        if matches!(outcome, ScriptOutcome::Failed(_)) {
            pkg.set_flag('s');
            let msg = format!("{}.{kind}: script exited with error ({outcome})", id(pkg));
            report.warnings.push(msg);
        }
        let text = outcome.to_string();
        self.opts.reporter.event(Event::Script {
            package: &id(pkg),
            kind: kind.as_str(),
            outcome: &text,
        });
        report.scripts.push((id(pkg), kind, outcome));
    }
}

/// Removes `paths` (files), then `dirs` deepest first when empty and unlisted by `keep`.
fn remove_paths(root: &RootDir, files: &[String], dirs: &[String], keep: &HashSet<String>) {
    for f in files {
        let _ = root.remove(f);
    }
    let mut dirs: Vec<&String> = dirs.iter().filter(|d| !keep.contains(*d)).collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for d in dirs {
        // Only succeeds when empty, which is what apk does with its directory refcounts.
        let _ = root.remove(d);
    }
}

/// Reads the root's installed state, creating it first with `initdb`.
fn load_state(root_path: &Path, arch: &str, initdb: bool) -> Result<InstalledState, InstallError> {
    match InstalledState::load(root_path) {
        Ok(state) => Ok(state),
        Err(crate::installed::InstalledError::NotInitialized { .. }) if initdb => {
            crate::installed::init_db(root_path, arch).map_err(db_error)?;
            InstalledState::load(root_path).map_err(db_error)
        }
        Err(crate::installed::InstalledError::NotInitialized { .. }) => {
            Err(InstallError::NoDatabase {
                root: root_path.to_path_buf(),
            })
        }
        Err(e) => Err(db_error(e)),
    }
}

fn db_error(e: crate::installed::InstalledError) -> InstallError {
    InstallError::Database(Box::new(e))
}

pub(super) fn run(
    root_path: &Path,
    change: Change<'_>,
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    run_or_plan(root_path, change, opts, false)
}

/// [`run`] that stops after the resolution when `plan_only`, changing nothing in the root
/// (no database is created either) and listing the result in [`InstallReport::planned`].
pub(super) fn run_or_plan(
    root_path: &Path,
    change: Change<'_>,
    opts: &InstallOptions,
    plan_only: bool,
) -> Result<InstallReport, InstallError> {
    let root = RootDir::open(root_path)?;
    let mut report = InstallReport::default();
    let repos = Repositories::load(&root, &opts.repositories)?;
    // `apk del` never creates a database; `apk add` does with `initdb`.
    let initdb = opts.initdb && matches!(change, Change::Add(_));
    let mut state = match load_state(root_path, &repos.arch, initdb && !plan_only) {
        Err(InstallError::NoDatabase { .. }) if plan_only && initdb => InstalledState::default(),
        other => other?,
    };
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
                    let msg = format!("{name}: not in world, nothing to remove");
                    opts.reporter.event(Event::Warning(&msg));
                    report.warnings.push(msg);
                }
                deleted.push(name.clone());
            }
        }
    }

    let fetched = match change {
        Change::Add(_) => load_indexes(&repos, opts, &mut report)?,
        Change::Del(_) => Fetched {
            entries: Vec::new(),
        },
    };

    // Candidates: indexes (first repository wins a name-version), the installed packages
    // no repository has, and the virtual package.
    let pinned_tags: HashSet<(String, String)> = world
        .iter()
        .filter_map(|d| d.tag.clone().map(|t| (d.name.clone(), t)))
        .collect();
    let mut candidates = Vec::new();
    let mut sources = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, (entry, ri)) in fetched.entries.iter().enumerate() {
        // As 3.x's `apk_db_arch_compatible`: another architecture is not installable.
        if !(entry.arch.is_empty() || entry.arch == repos.arch || entry.arch == "noarch") {
            continue;
        }
        if let Some(tag) = &repos.repos[*ri].tag
            && !pinned_tags.contains(&(entry.name.clone(), tag.clone()))
        {
            continue;
        }
        let key = (entry.name.clone(), entry.version.clone());
        if seen.contains_key(&key) {
            continue;
        }
        seen.insert(key, candidates.len());
        candidates.push(candidate(entry, *ri as u32));
        sources.push(Source::Index(i));
    }
    for p in &state.db.packages {
        if virtual_pkg
            .as_ref()
            .is_some_and(|v: &InstalledPackage| v.entry.name == p.entry.name)
        {
            continue;
        }
        let key = (p.entry.name.clone(), p.entry.version.clone());
        if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(key) {
            slot.insert(candidates.len());
            candidates.push(candidate(&p.entry, u32::MAX));
            sources.push(Source::Installed);
        }
    }
    if let Some(v) = &virtual_pkg {
        candidates.push(candidate(&v.entry, 0));
        sources.push(Source::Virtual);
    }
    let installed: Vec<ResolverInstalled> = state
        .db
        .packages
        .iter()
        .map(|p| ResolverInstalled {
            name: p.entry.name.clone(),
            version: p.entry.version.clone(),
        })
        .collect();
    let resolution = resolve(&candidates, &installed, &world).map_err(|e| {
        if repos.repos.is_empty() && matches!(change, Change::Add(_)) {
            InstallError::NoRepositories
        } else {
            InstallError::Resolve(Box::new(e))
        }
    })?;
    if plan_only {
        report.planned = resolution
            .install
            .iter()
            .map(|&i| {
                let c = &candidates[i];
                let checksum = match sources[i] {
                    Source::Index(e) => fetched.entries[e].0.checksum.to_string(),
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
            .collect();
        return Ok(report);
    }

    // The plan.
    let selected: HashSet<&str> = resolution
        .install
        .iter()
        .map(|&i| candidates[i].name.as_str())
        .collect();
    for name in &deleted {
        if selected.contains(name.as_str()) {
            let msg = format!("{name}: still required by other world entries, not removed");
            opts.reporter.event(Event::Warning(&msg));
            report.warnings.push(msg);
        }
    }
    let removed: Vec<InstalledPackage> = state
        .db
        .packages
        .iter()
        .filter(|p| !selected.contains(p.entry.name.as_str()))
        .cloned()
        .collect();
    let mut steps = Vec::new();
    for &ci in &resolution.install {
        let cand = &candidates[ci];
        let old = state.db.get(&cand.name);
        let keep = match (sources[ci], old) {
            (Source::Installed, _) => true,
            (Source::Index(e), Some(p)) => {
                let entry = &fetched.entries[e].0;
                p.entry.version == entry.version && p.entry.checksum == entry.checksum
            }
            (Source::Virtual, Some(p)) => {
                p.entry.version == cand.version
                    && Some(&p.entry.depends) == virtual_pkg.as_ref().map(|v| &v.entry.depends)
            }
            (_, None) => false,
        };
        if !keep {
            steps.push(ci);
        }
    }
    let total = removed.len() + steps.len();
    let mut step = 0;
    let runner = Runner {
        opts,
        root: root_path,
    };
    let mut changed_dirs: HashSet<String> = HashSet::new();

    // Removals, dependents first.
    let removed_refs: Vec<&InstalledPackage> = removed.iter().collect();
    for k in removal_order(&removed_refs) {
        step += 1;
        let mut pkg = removed[k].clone();
        opts.reporter.event(Event::Step {
            index: step,
            total,
            action: "Purging",
            name: &pkg.entry.name,
            version: &pkg.entry.version,
        });
        let args = vec![pkg.entry.version.clone()];
        runner.script(
            &mut report,
            &mut pkg,
            &state.scripts,
            ScriptKind::PreDeinstall,
            &args,
        );
        let keep: HashSet<String> = state
            .db
            .packages
            .iter()
            .filter(|p| p.entry.name != pkg.entry.name)
            .flat_map(|p| p.dirs.iter().map(|d| d.path.clone()))
            .collect();
        let files: Vec<String> = file_paths(&pkg).collect();
        let dirs: Vec<String> = pkg.dirs.iter().map(|d| d.path.clone()).collect();
        remove_paths(&root, &files, &dirs, &keep);
        changed_dirs.extend(dirs);
        runner.script(
            &mut report,
            &mut pkg,
            &state.scripts,
            ScriptKind::PostDeinstall,
            &args,
        );
        state.remove(&pkg.entry.name);
        report
            .removed
            .push((pkg.entry.name.clone(), pkg.entry.version.clone()));
    }

    // Installs and upgrades, dependencies first.
    for ci in steps {
        step += 1;
        let cand = &candidates[ci];
        let old = state.db.get(&cand.name).cloned();
        let action = match &old {
            None => "Installing",
            Some(o) => match crate::version::compare(&cand.version, &o.entry.version) {
                std::cmp::Ordering::Less => "Downgrading",
                std::cmp::Ordering::Equal => "Replacing",
                std::cmp::Ordering::Greater => "Upgrading",
            },
        };
        opts.reporter.event(Event::Step {
            index: step,
            total,
            action,
            name: &cand.name,
            version: &cand.version,
        });
        let (pre, post, args) = match &old {
            None => (
                ScriptKind::PreInstall,
                ScriptKind::PostInstall,
                vec![cand.version.clone()],
            ),
            Some(o) => (
                ScriptKind::PreUpgrade,
                ScriptKind::PostUpgrade,
                vec![cand.version.clone(), o.entry.version.clone()],
            ),
        };
        let (mut pkg, scripts, globs) = match sources[ci] {
            Source::Virtual => (
                virtual_pkg.clone().expect("virtual source has a package"),
                Vec::new(),
                Vec::new(),
            ),
            Source::Installed => unreachable!("installed candidates are kept"),
            Source::Index(e) => {
                let (entry, ri) = &fetched.entries[e];
                install_one(
                    &root,
                    &mut state,
                    entry,
                    &repos.repos[*ri],
                    old.as_ref(),
                    (pre, &args),
                    opts,
                    &runner,
                    &mut report,
                )?
            }
        };
        changed_dirs.extend(pkg.dirs.iter().map(|d| d.path.clone()));
        let scripts_db = ScriptsDb {
            scripts: scripts.clone(),
        };
        runner.script(&mut report, &mut pkg, &scripts_db, post, &args);
        match &old {
            None => report
                .installed
                .push((pkg.entry.name.clone(), pkg.entry.version.clone())),
            Some(o) => report.upgraded.push((
                pkg.entry.name.clone(),
                o.entry.version.clone(),
                pkg.entry.version.clone(),
            )),
        }
        state.install(pkg, scripts, globs);
    }

    // Triggers: every package whose globs match a directory this run changed.
    if total > 0 {
        let mut changed: Vec<String> = changed_dirs.into_iter().map(|d| format!("/{d}")).collect();
        changed.sort();
        for t in state.triggers.entries.clone() {
            let matched: Vec<String> = changed
                .iter()
                .filter(|d| {
                    t.globs
                        .iter()
                        .any(|g| g.starts_with('/') && glob_match(g, d))
                })
                .cloned()
                .collect();
            if matched.is_empty() {
                continue;
            }
            if let Some(i) = state
                .db
                .packages
                .iter()
                .position(|p| p.entry.checksum == t.checksum)
            {
                let mut pkg = state.db.packages[i].clone();
                runner.script(
                    &mut report,
                    &mut pkg,
                    &state.scripts,
                    ScriptKind::Trigger,
                    &matched,
                );
                state.db.packages[i] = pkg;
            }
        }
    }

    state.world.atoms = world.iter().map(ToString::to_string).collect();
    state.write(root_path).map_err(db_error)?;
    report.world = state.world.render().lines().map(str::to_owned).collect();
    Ok(report)
}

/// Fetches, verifies and extracts one package from a repository; returns its database
/// block, scripts and trigger globs (not yet recorded in `state`).
#[allow(clippy::too_many_arguments)]
fn install_one(
    root: &RootDir,
    state: &mut InstalledState,
    entry: &IndexEntry,
    repo: &super::Repository,
    old: Option<&InstalledPackage>,
    (pre, args): (ScriptKind, &[String]),
    opts: &InstallOptions,
    runner: &Runner<'_, '_>,
    report: &mut InstallReport,
) -> Result<(InstalledPackage, Vec<Script>, Vec<String>), InstallError> {
    let others: Vec<InstalledPackage> = state
        .db
        .packages
        .iter()
        .filter(|p| p.entry.name != entry.name)
        .cloned()
        .collect();
    let mut owned = HashMap::new();
    for (j, p) in others.iter().enumerate() {
        for path in file_paths(p) {
            owned.insert(path, j);
        }
    }
    let previous: HashSet<String> = old.map(|o| file_paths(o).collect()).unwrap_or_default();
    let owners = Owners::load(root);
    let url = package_url(&repo.url, &entry.arch, &entry.name, &entry.version);
    let cx = UnpackContext {
        root,
        apply: &opts.apply,
        owners: &owners,
        installed: &others,
        owned: &owned,
        name: &entry.name,
        version: &entry.version,
        origin: &entry.origin,
        expected: entry.checksum,
        url: &url,
        previous: &previous,
        pre: Some((pre, args.to_vec())),
    };
    opts.reporter.event(Event::FetchPackage {
        name: &entry.name,
        version: &entry.version,
        size: entry.file_size,
    });
    let unpacked = fetch_and_unpack(&cx, opts, entry)?;
    let mut pkg = InstalledPackage::new(entry.clone());
    pkg.replaces = unpacked.info.replaces.clone();
    pkg.replaces_priority = unpacked.info.replaces_priority.filter(|&q| q != 0);
    pkg.repo_tag = repo.tag.clone();
    pkg.flags = unpacked.flags.clone();
    pkg.dirs = unpacked.dirs;
    if let Some((kind, outcome)) = unpacked.pre_outcome {
        runner.record(report, &mut pkg, kind, outcome);
    }
    for path in &unpacked.skipped_devices {
        let msg = format!(
            "{}-{}: device node /{path} was not created (creating device nodes needs root); the tree lacks it",
            entry.name, entry.version
        );
        opts.reporter.event(Event::Warning(&msg));
    }
    // Files taken over leave their former owners' records.
    for (path, j) in &unpacked.taken {
        let former = &others[*j].entry.name;
        if let Some(p) = state
            .db
            .packages
            .iter_mut()
            .find(|p| &p.entry.name == former)
        {
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
            for d in p.dirs.iter_mut().filter(|d| d.path == dir) {
                d.files.retain(|f| f.name != base);
            }
        }
    }
    // An upgrade removes what the old version had and the new one does not.
    if let Some(o) = old {
        let now: HashSet<String> = file_paths(&pkg).collect();
        let stale: Vec<String> = file_paths(o).filter(|p| !now.contains(p)).collect();
        let mut keep: HashSet<String> = pkg.dirs.iter().map(|d| d.path.clone()).collect();
        keep.extend(
            others
                .iter()
                .flat_map(|p| p.dirs.iter().map(|d| d.path.clone())),
        );
        let dirs: Vec<String> = o.dirs.iter().map(|d| d.path.clone()).collect();
        remove_paths(root, &stale, &dirs, &keep);
    }
    let scripts = Script::for_package(entry, &unpacked.scripts);
    Ok((pkg, scripts, unpacked.info.triggers.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_globs() {
        assert!(glob_match("/usr/share/fonts/*", "/usr/share/fonts/misc"));
        assert!(!glob_match("/usr/share/fonts/*", "/usr/share/icons"));
        assert!(glob_match(
            "/usr/lib/gdk-pixbuf-?.0/*",
            "/usr/lib/gdk-pixbuf-2.0/loaders"
        ));
    }
}
