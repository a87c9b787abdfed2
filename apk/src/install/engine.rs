//! The transaction: world change → indexes → resolution → removals, then installs and
//! upgrades in dependency order → triggers → database (apk-format.md §3.5, §4).
//!
//! [`run_or_plan`] reads as those steps; [`Transaction`] is the state they share (the root,
//! its repositories and installed state, the report, the progress count), and the steps
//! that change the root live in [`super::apply`].

use std::collections::HashSet;
use std::path::Path;

use super::plan::{Available, Change, WorldChange, change_world, removal_order};
use super::report::Event;
use super::repos::Repositories;
use super::source::{Fetched, load_indexes};
use super::steps::Steps;
use super::{InstallError, InstallOptions, InstallReport};
use crate::installed::InstalledState;
use crate::rootfs::RootDir;

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
    let mut tx = Transaction::open(root_path, change, opts, plan_only)?;
    let wanted = change_world(&tx.state, change, opts, &mut tx.report)?;
    let fetched = tx.fetch_indexes(change)?;
    let available = Available::collect(fetched, &tx.repos, &wanted, &tx.state);
    let no_repositories = tx.repos.repos.is_empty() && matches!(change, Change::Add(_));
    let fresh = fresh_names(change, opts);
    let resolution = available.resolve(&tx.state, &wanted.world, &fresh, no_repositories)?;
    if plan_only {
        tx.report.planned = available.planned(&resolution, &tx.state);
        return Ok(tx.report);
    }
    let steps = Steps::plan(&available, &resolution, &mut tx, &wanted);
    tx.total = steps.total();
    tx.remove_all(&steps.removed);
    // As apk's commit: what was done is recorded even when a package fails, so the root's
    // database always describes its files (apk-format.md §4.8).
    let installed = tx.install_all(&steps.installs, &available, &wanted);
    tx.run_triggers();
    let report = tx.commit(&wanted)?;
    installed.map(|()| report)
}

/// The names `--upgrade`/`--latest` resolves afresh: the requested ones.
fn fresh_names<'c>(change: Change<'c>, opts: &InstallOptions) -> Vec<&'c str> {
    match change {
        Change::Add(request) if opts.upgrade => request.iter().map(|d| d.name.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// What the steps of one `add`/`del` share.
pub(super) struct Transaction<'o, 'a> {
    pub opts: &'o InstallOptions<'a>,
    pub root_path: &'o Path,
    pub root: RootDir,
    pub repos: Repositories,
    pub state: InstalledState,
    pub report: InstallReport,
    /// Progress: steps done and to do.
    pub step: usize,
    pub total: usize,
    /// Directories whose content this run changed (for triggers), relative to the root.
    pub changed_dirs: HashSet<String>,
}

impl<'o, 'a> Transaction<'o, 'a> {
    /// Opens the root and reads its repositories and installed state; `apk add` creates the
    /// database with `initdb` (a plan pretends it is empty), `apk del` never does.
    fn open(
        root_path: &'o Path,
        change: Change<'_>,
        opts: &'o InstallOptions<'a>,
        plan_only: bool,
    ) -> Result<Self, InstallError> {
        let root = RootDir::open(root_path)?;
        let repos = Repositories::load(&root, &opts.repositories)?;
        let initdb = opts.initdb && matches!(change, Change::Add(_));
        let state = match load_state(root_path, &repos.arch, initdb && !plan_only) {
            Err(InstallError::NoDatabase { .. }) if plan_only && initdb => {
                InstalledState::default()
            }
            other => other?,
        };
        Ok(Self {
            opts,
            root_path,
            root,
            repos,
            state,
            report: InstallReport::default(),
            step: 0,
            total: 0,
            changed_dirs: HashSet::new(),
        })
    }

    /// The verified indexes of every repository (`apk del` needs none).
    fn fetch_indexes(&mut self, change: Change<'_>) -> Result<Fetched, InstallError> {
        match change {
            Change::Add(_) => load_indexes(&self.repos, self.opts, &mut self.report),
            Change::Del(_) => Ok(Fetched {
                entries: Vec::new(),
            }),
        }
    }

    /// Removes what the new world no longer selects, dependents first.
    fn remove_all(&mut self, removed: &[crate::installed::InstalledPackage]) {
        for k in removal_order(removed) {
            self.remove_package(removed[k].clone());
        }
    }

    /// Installs and upgrades, dependencies first; stops at the first package that fails
    /// (whose own files [`super::unpack`] removed again).
    fn install_all(
        &mut self,
        installs: &[usize],
        available: &Available,
        wanted: &WorldChange,
    ) -> Result<(), InstallError> {
        for &ci in installs {
            self.install_candidate(ci, available, wanted)?;
        }
        Ok(())
    }

    /// Announces the next step.
    pub fn progress(&mut self, action: &str, name: &str, version: &str, old: Option<&str>) {
        self.step += 1;
        self.opts.reporter.event(Event::Step {
            index: self.step,
            total: self.total,
            action,
            name,
            version,
            old_version: old,
        });
    }

    /// Writes the world and the database.
    fn commit(mut self, wanted: &WorldChange) -> Result<InstallReport, InstallError> {
        self.state.world.atoms = wanted.world.iter().map(ToString::to_string).collect();
        self.state.write(self.root_path).map_err(db_error)?;
        self.opts.reporter.event(Event::Committed);
        self.report.world = self
            .state
            .world
            .render()
            .lines()
            .map(str::to_owned)
            .collect();
        Ok(self.report)
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

pub(super) fn db_error(e: crate::installed::InstalledError) -> InstallError {
    InstallError::Database(Box::new(e))
}
