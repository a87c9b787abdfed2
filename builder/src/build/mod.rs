//! Building one recipe: sources, cache lookup, build-time dependencies, the phases, then
//! postcheck, strip, trace, package, sign and index. Nothing reaches the repository until
//! every package of the build is written: a failed build leaves the repository and its
//! index as they were. Phases run on the host (in bubblewrap over the host's root, or
//! directly), or with `--rootbld` in a build root of their own ([`rootbld`]).

pub mod accounts;
pub mod idmap;
pub mod package;
pub mod phase;
pub mod pkgconf;
pub mod postcheck;
pub mod repo;
pub mod rootbld;
pub mod sources;
pub mod steps;
pub mod sysroot;
pub mod tracedeps;
pub mod zip;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use apk::index::IndexEntry;
use apk::keys::PrivateKey;
use apk::package::{Package, ReadLimits};
use sha2::{Digest as _, Sha256};

use crate::Reporter;
use crate::apkbuild::Recipe;
use crate::apkbuild::script::Context;
use crate::apkbuild::shell::Shell;
use crate::cache::{Cache, Lookup};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The recipe cannot be read.
    #[error(transparent)]
    Recipe(#[from] crate::apkbuild::RecipeError),
    /// Sources cannot be fetched, verified or unpacked.
    #[error(transparent)]
    Source(#[from] sources::SourceError),
    /// A phase failed, or the sandbox cannot run.
    #[error(transparent)]
    Phase(#[from] phase::PhaseError),
    /// The cache failed (a miss is not an error).
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// A file the recipe names (install script, trigger) cannot be read.
    #[error("{}: {field}=: `{file}`: {source}", apkbuild.display())]
    RecipeFile {
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// `install` or `triggers`.
        field: &'static str,
        /// The file name.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// A package (a build dependency, or one being written) is unusable.
    #[error("package `{}`: {source}", path.display())]
    Package {
        /// The package file or tree.
        path: PathBuf,
        /// Why.
        source: Box<apk::package::PackageError>,
    },
    /// The repository index cannot be read or written.
    #[error("repository index `{}`: {source}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// Why.
        source: Box<apk::index::IndexError>,
    },
    /// A directory cannot be opened as a root.
    #[error("`{}`: {reason}", path.display())]
    Root {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A package tree fails abuild's postcheck.
    #[error("{package}: {problem}")]
    Postcheck {
        /// The package.
        package: String,
        /// What abuild would refuse, and the option that allows it.
        problem: String,
    },
    /// A file of the repository cannot be written.
    #[error("failed to write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Walking a directory.
    #[error(transparent)]
    Walk(#[from] walkdir::Error),
}

/// Everything a build needs besides the recipe.
pub struct Options {
    /// `$REPODEST`.
    pub repodest: PathBuf,
    /// `$CARCH`.
    pub carch: String,
    /// Run phases in bubblewrap.
    pub sandbox: bool,
    /// `--rootbld`: build in a root of its own instead of over the host's.
    pub rootbld: Option<rootbld::RootBuild>,
    /// The packager key.
    pub key: PrivateKey,
    /// SOURCE_DATE_EPOCH.
    pub source_date: u64,
    /// Whether SOURCE_DATE_EPOCH was given (then it is part of the cache key).
    pub source_date_explicit: bool,
    /// `PACKAGER`.
    pub packager: Option<String>,
    /// The build cache (`None`: `--no-cache`).
    pub cache: Option<Cache>,
    /// Where work directories go (`<work>/<repo>/<pkgname>`).
    pub work_root: PathBuf,
    /// Keep the work directory after a successful build.
    pub keep_work: bool,
    /// Variables exported into every phase (sccache…).
    pub exports: Vec<(String, String)>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Built; the package files.
    Built(Vec<PathBuf>),
    /// Taken from the cache; the package files.
    Cached(Vec<PathBuf>),
    /// The recipe does not build for this arch.
    Skipped,
}

/// The arch directory packages of `arch` go to: `noarch` ones go with `$CARCH`'s, as abuild
/// puts them (its `arch2dir`).
pub fn arch_dir(repodest: &Path, repo: &str, arch: &str, carch: &str) -> PathBuf {
    let dir = if arch == "noarch" { carch } else { arch };
    repodest.join(repo).join(dir)
}

/// Builds one recipe: validation, cache lookup, sources, build dependencies, the phases,
/// then the packages written, indexed and stored in the cache.
pub fn build(
    recipe: &Recipe,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Outcome, BuildError> {
    if !recipe.builds_for(&opts.carch) {
        reporter.info(&format!(
            "{}: not built for {} (arch=\"{}\")",
            recipe.pkgname(),
            opts.carch,
            recipe.var("arch")
        ));
        return Ok(Outcome::Skipped);
    }
    for w in recipe
        .warnings
        .iter()
        .cloned()
        .chain(crate::apkbuild::validate::validate(recipe)?)
    {
        reporter.warn(&w);
    }
    let job = Job::start(recipe, opts, reporter)?;
    let repo_entries = repo::all_entries(&opts.repodest, &opts.carch)?;
    let host_deps = repo::closure(&repo_entries, &recipe.build_dependencies(job.check));
    let base = job.base_digest()?;
    // The key needs no download: remote sources enter it through their checksums, which
    // the build that stored the entry verified.
    let (key, inputs) = cache_key(recipe, opts, &host_deps, base.as_deref())?;
    if let Some(paths) = job.take_from_cache(&key)? {
        return Ok(Outcome::Cached(paths));
    }
    let (ctx, accounts) = job.prepare(&host_deps)?;
    let sandbox = job.sandbox(&accounts)?;
    sandbox.preflight()?;
    let phases = steps::Phases::new(recipe, &ctx, sandbox.as_ref(), reporter, job.check);
    phases.run_all()?;
    let files = job.package(&phases, &accounts)?;
    let paths = job.publish(&key, inputs, &files)?;
    Ok(Outcome::Built(paths))
}

/// One build in progress: what its steps share.
struct Job<'a> {
    recipe: &'a Recipe,
    opts: &'a Options,
    reporter: &'a dyn Reporter,
    /// `pkgname`, for messages.
    name: String,
    /// The fresh work directory on the host: `src`, `pkg`, `tmp` (and `root` with
    /// `--rootbld`, `sysroot` for host builds with dependencies).
    work: PathBuf,
    /// Whether check() runs (not `options="!check"`, not cross-building).
    check: bool,
}

impl<'a> Job<'a> {
    /// Starts a build in a fresh work directory.
    fn start(
        recipe: &'a Recipe,
        opts: &'a Options,
        reporter: &'a dyn Reporter,
    ) -> Result<Self, BuildError> {
        let name = recipe.pkgname().to_string();
        let work = opts.work_root.join(recipe.repo()).join(&name);
        if work.exists() {
            fs_err::remove_dir_all(&work)?;
        }
        for d in ["src", "pkg", "tmp"] {
            fs_err::create_dir_all(work.join(d))?;
        }
        let cross = opts.carch != apk::install::host_arch();
        Ok(Self {
            recipe,
            opts,
            reporter,
            name,
            work,
            check: !recipe.has_option("!check") && !cross,
        })
    }

    /// The root setup of a `--rootbld` build.
    fn root_setup(&self) -> Option<rootbld::RootSetup<'_>> {
        let spec = self.opts.rootbld.as_ref()?;
        let key = self.opts.key.public_key();
        Some(rootbld::RootSetup {
            spec,
            dir: self.work.join("root"),
            carch: &self.opts.carch,
            local_repos: repo::local_repositories(&self.opts.repodest, &self.opts.carch),
            packager_key: (
                format!("{}.pub", self.opts.key.name()),
                key.to_pem().unwrap_or_default(),
            ),
            source_date: self.opts.source_date,
            reporter: self.reporter,
        })
    }

    /// The build base's digest, for the cache key (`--rootbld` only).
    fn base_digest(&self) -> Result<Option<String>, BuildError> {
        self.root_setup()
            .map(|setup| rootbld::base_digest(&setup))
            .transpose()
    }

    /// The packages from the cache into the repository, when the cache has them.
    fn take_from_cache(&self, key: &str) -> Result<Option<Vec<PathBuf>>, BuildError> {
        let Some(cache) = &self.opts.cache else {
            return Ok(None);
        };
        let name = &self.name;
        match cache.lookup(key)? {
            Lookup::Hit(_, files) => {
                self.reporter.info(&format!(
                    "{name}: cache hit {} in {}: downloading, not building",
                    &key[..16],
                    cache.describe()
                ));
                let paths = install_files(self.recipe, self.opts, &files)?;
                let _ = fs_err::remove_dir_all(&self.work);
                Ok(Some(paths))
            }
            Lookup::Miss(why) => {
                self.reporter.info(&format!(
                    "{name}: cache miss {} ({why}): building",
                    &key[..16]
                ));
                Ok(None)
            }
        }
    }

    /// Sources fetched, verified and unpacked, build dependencies in a sysroot (or the
    /// build root made): the context the phases run in, and the accounts they see.
    fn prepare(
        &self,
        host_deps: &[&(PathBuf, IndexEntry)],
    ) -> Result<(Context, accounts::Accounts), BuildError> {
        let (recipe, opts, name) = (self.recipe, self.opts, &self.name);
        self.reporter.info(&format!("{name}: fetching sources"));
        let srcdir = self.work.join("src");
        let fetched = sources::fetch(recipe, &srcdir, opts.cache.as_ref(), self.reporter)?;
        sources::verify(recipe, &fetched)?;
        for w in sources::check_initd(recipe, &fetched)? {
            self.reporter.warn(&w);
        }
        if !recipe.functions.contains("unpack") {
            sources::unpack(&fetched, &srcdir)?;
        }
        let (mut ctx, accounts) = match self.root_setup() {
            Some(setup) => self.make_root(&setup)?,
            None => (self.host_context(host_deps)?, self.host_accounts()?),
        };
        ctx.exports
            .push(("SOURCE_DATE_EPOCH".into(), opts.source_date.to_string()));
        ctx.exports.extend(opts.exports.iter().cloned());
        Ok((ctx, accounts))
    }

    /// The host's passwd and group with the recipe's accounts, written to `accounts/` of
    /// the work directory (for the sandbox to show) when the recipe declares any.
    fn host_accounts(&self) -> Result<accounts::Accounts, BuildError> {
        let read = |f: &str| fs_err::read_to_string(Path::new("/etc").join(f)).unwrap_or_default();
        let accounts = accounts::Accounts::allocate(
            &read("passwd"),
            &read("group"),
            &self.recipe.list("pkgusers"),
            &self.recipe.list("pkggroups"),
        );
        if !accounts.is_empty() {
            let dir = self.work.join("accounts");
            fs_err::create_dir_all(&dir)?;
            fs_err::write(dir.join("passwd"), &accounts.passwd)?;
            fs_err::write(dir.join("group"), &accounts.group)?;
        }
        Ok(accounts)
    }

    /// A build over the host's root: dependencies from `$REPODEST` in a sysroot.
    fn host_context(&self, deps: &[&(PathBuf, IndexEntry)]) -> Result<Context, BuildError> {
        let shell = Shell::host().map_err(|e| crate::apkbuild::RecipeError::Shell {
            message: e.to_string(),
        })?;
        let mut ctx = Context::new(
            &self.recipe.dir,
            &self.work,
            &self.opts.carch,
            shell.clone(),
        );
        if !deps.is_empty() {
            let sysroot = self.work.join("sysroot");
            sysroot::install(deps, &sysroot)?;
            self.reporter.info(&format!(
                "{}: build dependencies from the repository: {}",
                self.name,
                deps.iter()
                    .map(|d| format!("{}-{}", d.1.name, d.1.version))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            ctx.exports.extend(sysroot::exports(&sysroot));
        }
        Ok(ctx)
    }

    /// A `--rootbld` build: the root made, the context as seen inside it, the accounts
    /// of the root.
    fn make_root(
        &self,
        setup: &rootbld::RootSetup<'_>,
    ) -> Result<(Context, accounts::Accounts), BuildError> {
        let recipe = self.recipe;
        let accounts = rootbld::make_root(
            setup,
            &recipe.build_dependency_atoms(self.check),
            &recipe.list("pkgusers"),
            &recipe.list("pkggroups"),
            recipe.pkgname(),
        )?;
        let startdir = self.inside_startdir();
        fs_err::create_dir_all(
            setup
                .dir
                .join(startdir.strip_prefix("/").unwrap_or(&startdir)),
        )?;
        for d in ["src", "pkg", "tmp"] {
            fs_err::create_dir_all(setup.dir.join(&rootbld::HOME[1..]).join(d))?;
        }
        if recipe.has_option("net") {
            let _ = fs_err::copy("/etc/resolv.conf", setup.dir.join("etc/resolv.conf"));
        }
        let ctx = Context::new(
            &startdir,
            Path::new(rootbld::HOME),
            &self.opts.carch,
            Shell::root_sh(),
        );
        Ok((ctx, accounts))
    }

    /// Where the recipe appears inside a build root.
    fn inside_startdir(&self) -> PathBuf {
        Path::new(rootbld::HOME)
            .join("aports")
            .join(self.recipe.repo())
            .join(&self.name)
    }

    /// Where the phases run: the build root, bubblewrap over the host (showing the
    /// recipe's accounts), or directly. In a sandbox, the root phases of apkbuild run as
    /// root get every id mapped, so they can chown to the accounts.
    fn sandbox(
        &self,
        accounts: &accounts::Accounts,
    ) -> Result<Box<dyn phase::Sandbox>, BuildError> {
        let net = self.recipe.has_option("net");
        let map_ids = (self.opts.rootbld.is_some() || self.opts.sandbox) && idmap::available();
        if self.opts.rootbld.is_some() {
            let home = Path::new(rootbld::HOME);
            let mut binds = vec![(self.recipe.dir.clone(), self.inside_startdir(), false)];
            for d in ["src", "pkg", "tmp"] {
                binds.push((self.work.join(d), home.join(d), true));
            }
            return Ok(Box::new(phase::RootBwrap {
                root: self.work.join("root"),
                net,
                binds,
                map_ids,
            }));
        }
        Ok(if self.opts.sandbox {
            Box::new(phase::Bubblewrap {
                net,
                writable: Vec::new(),
                accounts: (!accounts.is_empty()).then(|| self.work.join("accounts")),
                map_ids,
            })
        } else {
            Box::new(phase::Direct)
        })
    }

    /// Postcheck, strip (in the sandbox) and write every package, in memory.
    fn package(
        &self,
        phases: &steps::Phases<'_>,
        accounts: &accounts::Accounts,
    ) -> Result<Vec<package::Written>, BuildError> {
        let base = self.work.join("pkg");
        let parts = package::collect_parts(self.recipe, &base, self.reporter)?;
        for (name, part) in &parts {
            for w in postcheck::postcheck(self.recipe, name, &base.join(name), &part.arch)? {
                self.reporter.warn(&w);
            }
        }
        let mut strip = Vec::new();
        for (name, part) in &parts {
            if part.arch != "noarch" && !self.recipe.has_option_for(name, "!strip") {
                let dir = base.join(name);
                strip.extend(
                    tracedeps::strip_targets(&dir)?
                        .into_iter()
                        .map(|f| Path::new(name).join(f)),
                );
            }
        }
        phases.strip(&strip)?;
        postcheck::remove_empty_dirs(self.recipe, &base.join(&self.name));
        let installed = match self.opts.rootbld {
            Some(_) => Some(tracedeps::Installed::read(&self.work.join("root"))?),
            None => None,
        };
        package::package_all(
            self.recipe,
            self.opts,
            &base,
            parts,
            installed,
            accounts.owner_names(),
            self.reporter,
        )
    }

    /// Writes, indexes and caches the packages; the work directory goes unless kept.
    fn publish(
        &self,
        key: &str,
        inputs: Vec<(String, String)>,
        files: &[package::Written],
    ) -> Result<Vec<PathBuf>, BuildError> {
        let name = &self.name;
        let paths = install_files(self.recipe, self.opts, files)?;
        self.reporter.info(&format!(
            "{name}: packaged, signed and indexed {} packages",
            files.len(),
        ));
        if let Some(cache) = &self.opts.cache
            && cache.writable()
        {
            cache.store(key, inputs, files)?;
            self.reporter
                .info(&format!("{name}: stored in the cache as {}", &key[..16]));
        }
        if !self.opts.keep_work {
            let _ = fs_err::remove_dir_all(&self.work);
        }
        Ok(paths)
    }
}

/// The cache key and the inputs it hashes.
fn cache_key(
    recipe: &Recipe,
    opts: &Options,
    deps: &[&(PathBuf, IndexEntry)],
    base: Option<&str>,
) -> Result<(String, Vec<(String, String)>), BuildError> {
    let mut inputs: Vec<(String, String)> = vec![
        ("builder".into(), env!("CARGO_PKG_VERSION").into()),
        ("arch".into(), opts.carch.clone()),
        ("signing-key".into(), opts.key.name().to_string()),
        ("packager".into(), opts.packager.clone().unwrap_or_default()),
    ];
    if let Some(base) = base {
        inputs.push(("build-base".into(), base.to_string()));
    }
    if opts.source_date_explicit {
        inputs.push(("SOURCE_DATE_EPOCH".into(), opts.source_date.to_string()));
    }
    // Every file beside the APKBUILD: the APKBUILD itself, local sources, patches, install
    // scripts.
    for e in walkdir::WalkDir::new(&recipe.dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'))
    {
        let e = e?;
        if e.file_type().is_file() {
            let rel = e
                .path()
                .strip_prefix(&recipe.dir)
                .unwrap_or(e.path())
                .display()
                .to_string();
            inputs.push((
                format!("file:{rel}"),
                hex::encode(Sha256::digest(fs_err::read(e.path())?)),
            ));
        }
    }
    for (file, sum) in recipe.checksums().1 {
        inputs.push((format!("source:{file}"), sum));
    }
    for (_, d) in deps {
        inputs.push((
            format!("dep:{}", d.name),
            format!("{} C:{}", d.version, d.checksum),
        ));
    }
    let mut h = Sha256::new();
    for (k, v) in &inputs {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    Ok((hex::encode(h.finalize()), inputs))
}

/// Writes package files into the repository, each into its arch directory (all written
/// before any is committed), and updates those directories' indexes.
fn install_files(
    recipe: &Recipe,
    opts: &Options,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<PathBuf>, BuildError> {
    let mut by_dir: BTreeMap<PathBuf, Vec<IndexEntry>> = BTreeMap::new();
    let mut pending = Vec::new();
    for (name, bytes) in files {
        let pkg = Package::read(&bytes[..], ReadLimits::default()).map_err(|source| {
            BuildError::Package {
                path: PathBuf::from(name),
                source: Box::new(source),
            }
        })?;
        let dir = arch_dir(&opts.repodest, &recipe.repo(), &pkg.info.arch, &opts.carch);
        let mut e = IndexEntry::from_package(&pkg);
        // abuild indexes with --rewrite-arch: a noarch package is listed in its folder's arch.
        if e.arch == "noarch" {
            e.arch = dir_arch(&dir);
        }
        by_dir.entry(dir.clone()).or_default().push(e);
        fs_err::create_dir_all(&dir)?;
        let path = dir.join(name);
        let mut f = apk::atomic::AtomicFile::create(&path)?.with_mode(0o644);
        f.write_all(bytes)?;
        pending.push((f, path));
    }
    let mut paths = Vec::new();
    for (f, path) in pending {
        f.commit()?;
        paths.push(path);
    }
    for (dir, entries) in by_dir {
        repo::update_index(&dir, &recipe.repo(), entries, &opts.key, opts.source_date)?;
    }
    Ok(paths)
}

fn dir_arch(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
