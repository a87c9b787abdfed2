//! The steps of a transaction that change the root: removing a package, installing or
//! upgrading one (fetch, verify, extract, take over files, drop stale ones), its scripts,
//! and the triggers at the end (apk-format.md §1.9, §4.2, §4.3, §4.8).

use std::collections::HashSet;
use std::path::Path;

use super::engine::Transaction;
use super::fetch::package_url;
use super::owners::Owners;
use super::plan::{Available, Source, WorldChange, file_paths, owned_paths};
use super::report::Event;
use super::script::{ScriptJob, ScriptKind, ScriptOutcome};
use super::source::fetch_and_unpack;
use super::unpack::{UnpackContext, Unpacked};
use super::{InstallError, InstallOptions, InstallReport, Repository};
use crate::index::IndexEntry;
use crate::installed::{InstalledPackage, Script, ScriptType, ScriptsDb};
use crate::rootfs::RootDir;

/// The scripts around one install or upgrade, with their arguments (apk 2.14's
/// `apk_db_install_pkg`: new version, then the old one for upgrades).
struct Hooks {
    pre: ScriptKind,
    post: ScriptKind,
    args: Vec<String>,
}

impl Hooks {
    fn for_change(version: &str, old: Option<&InstalledPackage>) -> Self {
        match old {
            None => Self {
                pre: ScriptKind::PreInstall,
                post: ScriptKind::PostInstall,
                args: vec![version.to_owned()],
            },
            Some(o) => Self {
                pre: ScriptKind::PreUpgrade,
                post: ScriptKind::PostUpgrade,
                args: vec![version.to_owned(), o.entry.version.clone()],
            },
        }
    }
}

/// apk's word for replacing `old` with `version`.
fn action(version: &str, old: Option<&InstalledPackage>) -> &'static str {
    match old {
        None => "Installing",
        Some(o) => match crate::version::compare(version, &o.entry.version) {
            std::cmp::Ordering::Less => "Downgrading",
            std::cmp::Ordering::Equal => "Replacing",
            std::cmp::Ordering::Greater => "Upgrading",
        },
    }
}

/// A package extracted into the root, not yet recorded in the state.
struct Extracted {
    pkg: InstalledPackage,
    scripts: Vec<Script>,
    triggers: Vec<String>,
}

impl<'o, 'a> Transaction<'o, 'a> {
    fn runner(&self) -> Runner<'o, 'a> {
        Runner {
            opts: self.opts,
            root: self.root_path,
        }
    }

    /// Purges one installed package: pre-deinstall, its files, post-deinstall.
    pub(super) fn remove_package(&mut self, mut pkg: InstalledPackage) {
        self.progress("Purging", &pkg.entry.name, &pkg.entry.version, None);
        let args = vec![pkg.entry.version.clone()];
        let runner = self.runner();
        let scripts = &self.state.scripts;
        runner.script(
            &mut self.report,
            &mut pkg,
            scripts,
            ScriptKind::PreDeinstall,
            &args,
        );
        let keep: HashSet<String> = self
            .state
            .db
            .packages
            .iter()
            .filter(|p| p.entry.name != pkg.entry.name)
            .flat_map(|p| p.dirs.iter().map(|d| d.path.clone()))
            .collect();
        let files: Vec<String> = file_paths(&pkg).collect();
        let dirs: Vec<String> = pkg.dirs.iter().map(|d| d.path.clone()).collect();
        remove_paths(&self.root, &files, &dirs, &keep);
        self.changed_dirs.extend(dirs);
        let scripts = &self.state.scripts;
        runner.script(
            &mut self.report,
            &mut pkg,
            scripts,
            ScriptKind::PostDeinstall,
            &args,
        );
        self.state.remove(&pkg.entry.name);
        let (name, version) = (pkg.entry.name, pkg.entry.version);
        self.report.removed.push((name, version));
    }

    /// Installs or upgrades candidate `ci` and records it in the state.
    pub(super) fn install_candidate(
        &mut self,
        ci: usize,
        available: &Available,
        wanted: &WorldChange,
    ) -> Result<(), InstallError> {
        let cand = &available.candidates[ci];
        let old = self.state.db.get(&cand.name).cloned();
        let was = old.as_ref().map(|o| o.entry.version.as_str());
        let what = action(&cand.version, old.as_ref());
        self.progress(what, &cand.name, &cand.version, was);
        let hooks = Hooks::for_change(&cand.version, old.as_ref());
        let mut done = match available.sources[ci] {
            Source::Virtual => Extracted {
                pkg: wanted
                    .virtual_pkg
                    .clone()
                    .expect("virtual source has a package"),
                scripts: Vec::new(),
                triggers: Vec::new(),
            },
            Source::Installed => unreachable!("installed candidates are kept"),
            Source::Index(e) => {
                let (entry, ri) = &available.fetched.entries[e];
                let repo = self.repos.repos[*ri].clone();
                self.extract(entry, &repo, old.as_ref(), &hooks)?
            }
        };
        self.changed_dirs
            .extend(done.pkg.dirs.iter().map(|d| d.path.clone()));
        let scripts_db = ScriptsDb {
            scripts: done.scripts.clone(),
        };
        let runner = self.runner();
        runner.script(
            &mut self.report,
            &mut done.pkg,
            &scripts_db,
            hooks.post,
            &hooks.args,
        );
        let (name, version) = (done.pkg.entry.name.clone(), done.pkg.entry.version.clone());
        match old {
            None => self.report.installed.push((name, version)),
            Some(o) => self.report.upgraded.push((name, o.entry.version, version)),
        }
        self.state.install(done.pkg, done.scripts, done.triggers);
        Ok(())
    }

    /// Fetches, verifies and extracts one package from a repository; returns its database
    /// block, scripts and trigger globs (not yet recorded in the state).
    fn extract(
        &mut self,
        entry: &IndexEntry,
        repo: &Repository,
        old: Option<&InstalledPackage>,
        hooks: &Hooks,
    ) -> Result<Extracted, InstallError> {
        let others: Vec<InstalledPackage> = self
            .state
            .db
            .packages
            .iter()
            .filter(|p| p.entry.name != entry.name)
            .cloned()
            .collect();
        let unpacked = self.unpack(entry, repo, old, hooks, &others)?;
        let mut pkg = InstalledPackage::new(entry.clone());
        pkg.replaces = unpacked.info.replaces.clone();
        pkg.replaces_priority = unpacked.info.replaces_priority.filter(|&q| q != 0);
        pkg.repo_tag = repo.tag.clone();
        pkg.flags = unpacked.flags.clone();
        pkg.dirs = unpacked.dirs;
        if let Some((kind, outcome)) = unpacked.pre_outcome {
            self.runner()
                .record(&mut self.report, &mut pkg, kind, outcome);
        }
        self.warn_skipped_devices(entry, &unpacked.skipped_devices);
        self.release_taken(&others, &unpacked.taken);
        if let Some(o) = old {
            remove_stale(&self.root, o, &pkg, &others);
        }
        Ok(Extracted {
            pkg,
            scripts: Script::for_package(entry, &unpacked.scripts),
            triggers: unpacked.info.triggers,
        })
    }

    /// Streams the package into the root (the pre-script runs once its identity is known).
    fn unpack(
        &self,
        entry: &IndexEntry,
        repo: &Repository,
        old: Option<&InstalledPackage>,
        hooks: &Hooks,
        others: &[InstalledPackage],
    ) -> Result<Unpacked, InstallError> {
        let owned = owned_paths(others);
        let previous: HashSet<String> = old.map(|o| file_paths(o).collect()).unwrap_or_default();
        let owners = Owners::load(&self.root);
        let url = package_url(&repo.url, &entry.arch, &entry.name, &entry.version);
        let cx = UnpackContext {
            root: &self.root,
            apply: &self.opts.apply,
            owners: &owners,
            installed: others,
            owned: &owned,
            name: &entry.name,
            version: &entry.version,
            origin: &entry.origin,
            expected: entry.checksum,
            url: &url,
            previous: &previous,
            pre: Some((hooks.pre, hooks.args.clone())),
        };
        self.opts.reporter.event(Event::FetchPackage {
            name: &entry.name,
            version: &entry.version,
            size: entry.file_size,
        });
        fetch_and_unpack(&cx, self.opts, entry)
    }

    fn warn_skipped_devices(&self, entry: &IndexEntry, skipped: &[String]) {
        for path in skipped {
            let msg = format!(
                "{}-{}: device node /{path} was not created (creating device nodes needs root); the tree lacks it",
                entry.name, entry.version
            );
            self.opts.reporter.event(Event::Warning(&msg));
        }
    }

    /// Files taken over leave their former owners' records.
    fn release_taken(&mut self, others: &[InstalledPackage], taken: &[(String, usize)]) {
        for (path, j) in taken {
            let former = &others[*j].entry.name;
            let Some(p) = self
                .state
                .db
                .packages
                .iter_mut()
                .find(|p| &p.entry.name == former)
            else {
                continue;
            };
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
            for d in p.dirs.iter_mut().filter(|d| d.path == dir) {
                d.files.retain(|f| f.name != base);
            }
        }
    }

    /// Triggers: every package whose globs match a directory this run changed.
    pub(super) fn run_triggers(&mut self) {
        if self.total == 0 {
            return;
        }
        let mut changed: Vec<String> = self.changed_dirs.iter().map(|d| format!("/{d}")).collect();
        changed.sort();
        let runner = self.runner();
        for t in self.state.triggers.entries.clone() {
            let matched: Vec<String> = changed
                .iter()
                .filter(|d| {
                    t.globs
                        .iter()
                        .any(|g| g.starts_with('/') && crate::glob::matches(g, d))
                })
                .cloned()
                .collect();
            if matched.is_empty() {
                continue;
            }
            let packages = &mut self.state.db.packages;
            if let Some(pkg) = packages.iter_mut().find(|p| p.entry.checksum == t.checksum) {
                let scripts = &self.state.scripts;
                runner.script(
                    &mut self.report,
                    pkg,
                    scripts,
                    ScriptKind::Trigger,
                    &matched,
                );
            }
        }
    }
}

/// An upgrade removes what the old version had and the new one does not.
fn remove_stale(
    root: &RootDir,
    old: &InstalledPackage,
    new: &InstalledPackage,
    others: &[InstalledPackage],
) {
    let now: HashSet<String> = file_paths(new).collect();
    let stale: Vec<String> = file_paths(old).filter(|p| !now.contains(p)).collect();
    let mut keep: HashSet<String> = new.dirs.iter().map(|d| d.path.clone()).collect();
    keep.extend(
        others
            .iter()
            .flat_map(|p| p.dirs.iter().map(|d| d.path.clone())),
    );
    let dirs: Vec<String> = old.dirs.iter().map(|d| d.path.clone()).collect();
    remove_paths(root, &stale, &dirs, &keep);
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

/// Runs scripts and records their outcome; holds no borrow of the transaction, so a step
/// may pass the state's scripts while the report is borrowed mutably.
#[derive(Clone, Copy)]
struct Runner<'o, 'a> {
    opts: &'o InstallOptions<'a>,
    root: &'o Path,
}

/// `name-version`.
fn id(p: &InstalledPackage) -> String {
    format!("{}-{}", p.entry.name, p.entry.version)
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
        let Some(script) = scripts.scripts.iter().find(|s| {
            s.checksum == pkg.entry.checksum && Some(s.kind) == ScriptType::from_name(kind.as_str())
        }) else {
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
        self.opts.reporter.event(Event::Script {
            package: &id(pkg),
            kind: kind.as_str(),
            outcome: &outcome,
        });
        report.scripts.push((id(pkg), kind, outcome));
    }
}
