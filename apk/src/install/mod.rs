//! Installing and removing packages in a root filesystem, natively: what `apk add` and
//! `apk del` do, with no apk binary (apk-format.md §3.5, §4).
//!
//! [`add`] and [`del`] read the target's repositories, keys and installed database, resolve
//! the new world with [`crate::resolve`], fetch every needed package through a [`Fetcher`]
//! (optionally through a cache), refuse any index whose signature no trusted key verifies and
//! any package whose control member is not the one the index lists (`C:`) or whose data does
//! not match its `datahash`, extract through [`crate::rootfs::RootDir`], remove what old
//! versions owned, run scripts through a [`ScriptRunner`], and finally write
//! `lib/apk/db/{installed,scripts.tar,triggers}` and `etc/apk/world` atomically, so a real
//! `apk` in the image sees exactly what was installed.
//!
//! ```no_run
//! use apk::dep::Dependency;
//! use apk::install::{self, InstallOptions};
//!
//! // `RUN apk add --no-cache -X /srv/repo --keys-dir /srv/keys busybox`, no scripts run.
//! let mut opts = InstallOptions::local();
//! opts.repositories.extra = vec!["/srv/repo".into()];
//! opts.repositories.keys_dir = Some("/srv/keys".into());
//! opts.source_date = 1_700_000_000;
//! let atoms = Dependency::parse_list("busybox")?;
//! let report = install::add("/tmp/rootfs".as_ref(), &atoms, &opts)?;
//! assert!(report.installed.iter().any(|(name, _)| name == "busybox"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Programs supply their own [`Fetcher`] for `http(s)://` repositories, a [`ScriptRunner`]
//! that runs scripts sandboxed inside the root, and a [`Reporter`] for progress.

mod apply;
mod engine;
mod fetch;
mod owners;
mod plan;
mod report;
mod repos;
mod script;
mod source;
mod steps;
mod unpack;
mod world;

use std::path::{Path, PathBuf};

pub use fetch::{
    FetchError, Fetcher, LocalFetcher, index_cache_name, index_url, package_cache_name, package_url,
};
pub use report::{Event, NoReporter, PlannedChange, Reporter};
pub use repos::{Repositories, Repository, RepositoryConfig, host_arch, parse_repositories};
pub use script::{NoScripts, ScriptJob, ScriptKind, ScriptOutcome, ScriptRunner};

use crate::dep::Dependency;
use crate::rootfs::{ApplyOptions, DevicePolicy};

/// How to carry out an installation. Build one with [`InstallOptions::new`] and set fields.
pub struct InstallOptions<'a> {
    /// Repositories, keys and architecture (the root's, plus what the caller adds).
    pub repositories: RepositoryConfig,
    /// Install even when no trusted key verifies an index (`--allow-untrusted`); packages
    /// are still checked against the index `C:`.
    pub allow_untrusted: bool,
    /// Cache directory for indexes and packages, apk's names (`None` = `--no-cache`).
    pub cache_dir: Option<PathBuf>,
    /// Refetch indexes even when cached (`-U`, `--update-cache`).
    pub update_cache: bool,
    /// `--virtual NAME[=VERSION]`: the atoms become dependencies of a new virtual package
    /// `NAME`, and world gets `NAME=VERSION` instead of the atoms.
    pub virtual_name: Option<String>,
    /// Build time of virtual packages and the version they get when none is given
    /// (`%Y%m%d.%H%M%S`, as apk): pass SOURCE_DATE_EPOCH for reproducible results.
    pub source_date: u64,
    /// Owner and device handling of extracted entries.
    pub apply: ApplyOptions,
    /// Create the database skeleton (`apk --initdb`) when the root has none.
    pub initdb: bool,
    /// `-u`/`--upgrade`, `-l`/`--latest` of `apk add`: the requested names are chosen
    /// afresh (the best version available) instead of kept at their installed version.
    pub upgrade: bool,
    /// Where bytes come from.
    pub fetcher: &'a dyn Fetcher,
    /// Who runs install scripts and triggers.
    pub scripts: &'a dyn ScriptRunner,
    /// Who hears about progress.
    pub reporter: &'a dyn Reporter,
}

impl<'a> InstallOptions<'a> {
    /// Options reading everything from the root, no cache, owners set when running as root,
    /// device nodes required (an unprivileged install of a package with device nodes fails
    /// rather than silently producing a different tree), `--initdb` on.
    pub fn new(
        fetcher: &'a dyn Fetcher,
        scripts: &'a dyn ScriptRunner,
        reporter: &'a dyn Reporter,
    ) -> Self {
        let mut apply = ApplyOptions::for_current_process();
        apply.devices = DevicePolicy::Create;
        Self {
            repositories: RepositoryConfig::default(),
            allow_untrusted: false,
            cache_dir: None,
            update_cache: false,
            virtual_name: None,
            source_date: 0,
            apply,
            initdb: true,
            upgrade: false,
            fetcher,
            scripts,
            reporter,
        }
    }

    /// [`InstallOptions::new`] with local repositories only, no scripts and no progress.
    pub fn local() -> InstallOptions<'static> {
        InstallOptions::new(&LocalFetcher, &NoScripts, &NoReporter)
    }
}

/// What a run of [`add`] or [`del`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Newly installed `(name, version)`.
    pub installed: Vec<(String, String)>,
    /// Upgraded or downgraded `(name, old version, new version)`.
    pub upgraded: Vec<(String, String, String)>,
    /// Removed `(name, version)`.
    pub removed: Vec<(String, String)>,
    /// Every script considered: `(name-version, kind, outcome)`.
    pub scripts: Vec<(String, ScriptKind, ScriptOutcome)>,
    /// Non-fatal problems, in apk's words.
    pub warnings: Vec<String>,
    /// The world written.
    pub world: Vec<String>,
    /// [`plan_add`] only: every package the root would then hold, `(name, version, C:
    /// checksum)`, dependencies first (empty checksum for a `--virtual` package).
    pub planned: Vec<(String, String, String)>,
}

impl InstallReport {
    /// Whether the run changed no package.
    pub fn is_noop(&self) -> bool {
        self.installed.is_empty() && self.upgraded.is_empty() && self.removed.is_empty()
    }
}

/// Why an installation failed. Errors before the first package is touched (repositories,
/// indexes, resolution) change nothing. When a package fails to fetch, verify or extract,
/// its own files are removed again, the changes made before it stay, and the database is
/// written as apk writes it after a failed commit: every package whose files are in the
/// root is recorded, and the world is the requested one, so `apk fix` or the same
/// `apk add` again completes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A file could not be read or written.
    #[error("`{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path inside the root was refused or failed.
    #[error(transparent)]
    Rootfs(Box<crate::rootfs::RootfsError>),
    /// The keys directory could not be read.
    #[error("keys directory `{}`: {source}", path.display())]
    Keys {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: Box<crate::keys::KeyError>,
    },
    /// A requested atom or a world line does not parse.
    #[error("`{atom}` is not a valid dependency: {reason}")]
    BadAtom {
        /// The text.
        atom: String,
        /// Why.
        reason: String,
    },
    /// No repository is configured but packages are needed.
    #[error(
        "no repositories: add one to etc/apk/repositories in the root or pass --repository URL"
    )]
    NoRepositories,
    /// An index or package could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An index could not be parsed.
    #[error("repository `{repository}`: bad index: {source}")]
    Index {
        /// The repository URL.
        repository: String,
        /// The parse error.
        source: Box<crate::index::IndexError>,
    },
    /// No trusted key verifies an index.
    #[error(
        "repository `{repository}`: UNTRUSTED signature ({reason}); add its public key to etc/apk/keys or pass --keys-dir, or --allow-untrusted"
    )]
    Untrusted {
        /// The repository URL.
        repository: String,
        /// What the verifier said.
        reason: String,
    },
    /// The world cannot be satisfied.
    #[error("unable to select packages: {0}")]
    Resolve(Box<crate::resolve::ResolveError>),
    /// A package file was not the one the index lists.
    #[error(
        "{package}: package from `{url}` is not the indexed one (index C:{expected}, file C:{actual}); refresh the index (-U) or fix the repository"
    )]
    NotIndexed {
        /// `name-version`.
        package: String,
        /// Where it came from.
        url: String,
        /// The index's `C:`.
        expected: String,
        /// What the file's control member hashes to.
        actual: String,
    },
    /// A package failed to read, verify or extract; files it wrote were removed again.
    #[error("{package}: {source}")]
    Package {
        /// `name-version`.
        package: String,
        /// What went wrong.
        source: Box<crate::package::PackageError>,
    },
    /// Two packages own the same path and neither `replaces` the other.
    #[error(
        "{package}: trying to overwrite {path} owned by {owner}; add `replaces=\"{owner_name}\"` to the package or remove {owner_name} first"
    )]
    FileConflict {
        /// `name-version` of the package being installed.
        package: String,
        /// The path.
        path: String,
        /// `name-version` of the current owner.
        owner: String,
        /// Name of the current owner.
        owner_name: String,
    },
    /// The installed database of the root is unreadable or cannot be written.
    #[error("installed database: {0}; repair or remove it")]
    Database(Box<crate::installed::InstalledError>),
    /// The root has no database and `initdb` is off.
    #[error(
        "`{}` has no apk database (lib/apk/db/installed, etc/apk/world); pass --initdb to create one",
        root.display()
    )]
    NoDatabase {
        /// The root.
        root: PathBuf,
    },
}

impl From<crate::rootfs::RootfsError> for InstallError {
    fn from(e: crate::rootfs::RootfsError) -> Self {
        Self::Rootfs(Box::new(e))
    }
}

/// `apk add`: adds `request` to the world of `root` (or, with
/// [`InstallOptions::virtual_name`], a virtual package depending on it) and makes the root
/// match the new world.
pub fn add(
    root: &Path,
    request: &[Dependency],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    engine::run(root, plan::Change::Add(request), opts)
}

/// What [`add`] would install, from the current indexes (fetched and verified as [`add`]
/// does), without changing the root: [`InstallReport::planned`]. Cheap next to an install
/// (no package is fetched), so a caller can tell whether the same request against the same
/// root would give the same result, e.g. for a build cache.
pub fn plan_add(
    root: &Path,
    request: &[Dependency],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    engine::run_or_plan(root, plan::Change::Add(request), opts, true)
}

/// One repository's index, verified as [`add`] verifies it.
#[derive(Debug, Clone)]
pub struct RepositoryIndex {
    /// The repository line it came from.
    pub repository: Repository,
    /// The index's `DESCRIPTION` (`v3.20.3-40-g…`), which `apk update` prints.
    pub description: Option<String>,
    /// Its packages, every architecture.
    pub packages: Vec<crate::index::IndexEntry>,
}

/// The verified indexes of the repositories [`add`] would use (what `apk update`, `apk
/// search` and `apk version` read), fetched and cached as [`add`] does; changes nothing in
/// the root and needs no database there.
pub fn indexes(root: &Path, opts: &InstallOptions) -> Result<Vec<RepositoryIndex>, InstallError> {
    let dir = crate::rootfs::RootDir::open(root)?;
    let repos = Repositories::load(&dir, &opts.repositories)?;
    source::load_repository_indexes(&repos, opts, &mut InstallReport::default())
}

/// The repositories, keys and architecture [`add`] would use for `root`.
pub fn repositories(root: &Path, config: &RepositoryConfig) -> Result<Repositories, InstallError> {
    Repositories::load(&crate::rootfs::RootDir::open(root)?, config)
}

/// `apk del`: removes `names` from the world of `root` and removes every package no longer
/// needed. A name still required by another world entry stays installed, with a warning.
pub fn del(
    root: &Path,
    names: &[String],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    engine::run(root, plan::Change::Del(names), opts)
}
