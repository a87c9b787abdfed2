//! Building one recipe: sources, cache lookup, build-time dependencies, the phases, then
//! strip, trace, package, sign and index. Nothing reaches the repository until every
//! package of the build is written: a failed build leaves the repository and its index
//! as they were.

pub mod package;
pub mod phase;
pub mod repo;
pub mod sources;
pub mod tracedeps;
pub mod zip;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use apk::index::IndexEntry;
use apk::keys::PrivateKey;
use apk::package::{Package, ReadLimits};
use sha2::{Digest as _, Sha256};

use crate::Reporter;
use crate::apkbuild::Recipe;
use crate::apkbuild::script::{self, Context};
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
    /// A function the recipe needs is missing.
    #[error("{}: {problem}", apkbuild.display())]
    MissingFunction {
        /// The APKBUILD.
        apkbuild: PathBuf,
        /// Which, and what to do.
        problem: String,
    },
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
    /// `strip` failed.
    #[error("strip `{}`: {reason}", path.display())]
    Strip {
        /// The ELF file.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
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

/// The arch directory a recipe's packages go to.
pub fn arch_dir(recipe: &Recipe, opts: &Options) -> PathBuf {
    opts.repodest.join(recipe.repo()).join(&opts.carch)
}

/// The `# Maintainer:` comment (abuild reads it the same way).
fn maintainer(recipe: &Recipe) -> String {
    recipe
        .text
        .lines()
        .find_map(|l| l.strip_prefix("# Maintainer:"))
        .map(|m| m.trim().to_string())
        .unwrap_or_default()
}

/// Builds one recipe: cache lookup, sources, build dependencies, the phases, then the
/// packages written, indexed and stored in the cache.
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
    let job = Job::start(recipe, opts, reporter)?;
    let repo_entries = repo::all_entries(&opts.repodest, &opts.carch)?;
    let deps = repo::closure(&repo_entries, &recipe.build_dependencies(job.check));
    // The key needs no download: remote sources enter it through their sha512sums, which
    // the build that stored the entry verified.
    let (key, inputs) = cache_key(recipe, opts, &deps)?;
    if let Some(paths) = job.take_from_cache(&key)? {
        return Ok(Outcome::Cached(paths));
    }
    let ctx = job.prepare(&deps)?;
    job.run_phases(&ctx)?;
    let paths = job.package(&ctx, &key, inputs)?;
    Ok(Outcome::Built(paths))
}

/// One build in progress: what its steps share.
struct Job<'a> {
    recipe: &'a Recipe,
    opts: &'a Options,
    reporter: &'a dyn Reporter,
    /// `pkgname`, for messages.
    name: String,
    /// The fresh work directory (`$srcdir`, `$pkgbasedir`, `$HOME`).
    work: PathBuf,
    /// Where the packages go.
    out_dir: PathBuf,
    /// Whether check() runs (not `options="!check"`).
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
        fs_err::create_dir_all(work.join("tmp"))?;
        Ok(Self {
            recipe,
            opts,
            reporter,
            name,
            work,
            out_dir: arch_dir(recipe, opts),
            check: !recipe.has_option("!check"),
        })
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
                let paths = install_files(self.recipe, self.opts, &self.out_dir, &files)?;
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

    /// Sources fetched, verified and unpacked, build dependencies in a sysroot: the
    /// context the phases run in.
    fn prepare(&self, deps: &[&(PathBuf, IndexEntry)]) -> Result<Context, BuildError> {
        let (recipe, opts, name) = (self.recipe, self.opts, &self.name);
        let mut ctx = Context::new(&recipe.dir, &self.work, &opts.carch);
        self.reporter.info(&format!("{name}: fetching sources"));
        let fetched = sources::fetch(recipe, &ctx.srcdir(), opts.cache.as_ref(), self.reporter)?;
        sources::verify(recipe, &fetched)?;
        sources::unpack(&fetched, &ctx.srcdir())?;
        if !deps.is_empty() {
            let sysroot = self.work.join("sysroot");
            install_sysroot(deps, &sysroot)?;
            self.reporter.info(&format!(
                "{name}: build dependencies from the repository: {}",
                deps.iter()
                    .map(|d| format!("{}-{}", d.1.name, d.1.version))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            ctx.exports.extend(sysroot_exports(&sysroot));
        }
        ctx.exports
            .push(("SOURCE_DATE_EPOCH".into(), opts.source_date.to_string()));
        ctx.exports
            .push(("CFLAGS".into(), "-Os -fstack-clash-protection".into()));
        ctx.exports.extend(opts.exports.iter().cloned());
        Ok(ctx)
    }

    /// prepare(), build(), check(), package() and the split functions, in the sandbox.
    fn run_phases(&self, ctx: &Context) -> Result<(), BuildError> {
        let sandbox: Box<dyn phase::Sandbox> = if self.opts.sandbox {
            Box::new(phase::Bubblewrap {
                net: self.recipe.has_option("net"),
                writable: Vec::new(),
            })
        } else {
            Box::new(phase::Direct)
        };
        sandbox.preflight()?;
        let phases = Phases {
            job: self,
            ctx,
            runner: phase::Runner {
                sandbox: sandbox.as_ref(),
            },
        };
        phases.run("prepare", &format!("{CD}\nprepare"))?;
        phases.run("build", &format!("{CD}\nbuild"))?;
        phases.check()?;
        phases.package()?;
        phases.split_functions()
    }

    /// Writes, indexes and caches the packages; the work directory goes unless kept.
    fn package(
        &self,
        ctx: &Context,
        key: &str,
        inputs: Vec<(String, String)>,
    ) -> Result<Vec<PathBuf>, BuildError> {
        let name = &self.name;
        let started = std::time::Instant::now();
        let files = package::package_all(self.recipe, self.opts, ctx, self.reporter)?;
        let paths = install_files(self.recipe, self.opts, &self.out_dir, &files)?;
        self.reporter.info(&format!(
            "{name}: packaged, signed and indexed {} packages in {:.3} s",
            files.len(),
            started.elapsed().as_secs_f64()
        ));
        if let Some(cache) = &self.opts.cache
            && cache.writable()
        {
            cache.store(key, inputs, &files)?;
            self.reporter
                .info(&format!("{name}: stored in the cache as {}", &key[..16]));
        }
        if !self.opts.keep_work {
            let _ = fs_err::remove_dir_all(&self.work);
        }
        Ok(paths)
    }
}

/// Where each phase starts: `$builddir`, else `$srcdir`.
const CD: &str = "cd \"$builddir\" 2>/dev/null || cd \"$srcdir\"";

/// The phases of one build and where they run.
struct Phases<'j> {
    job: &'j Job<'j>,
    ctx: &'j Context,
    runner: phase::Runner<'j>,
}

impl Phases<'_> {
    fn run(&self, phase: &str, body: &str) -> Result<(), BuildError> {
        let job = self.job;
        job.reporter.info(&format!("{}: {phase}()", job.name));
        self.runner
            .run(self.ctx, &job.recipe.path, phase, body, job.reporter)?;
        Ok(())
    }

    /// check(), unless `options="!check"`.
    fn check(&self) -> Result<(), BuildError> {
        let job = self.job;
        if job.check && job.recipe.functions.contains("check") {
            self.run("check", &format!("{CD}\ncheck"))?;
        } else if !job.check {
            job.reporter.info(&format!(
                "{}: check() skipped (options=\"!check\")",
                job.name
            ));
        }
        Ok(())
    }

    /// package(), into a fresh `$pkgdir`.
    fn package(&self) -> Result<(), BuildError> {
        let recipe = self.job.recipe;
        if !recipe.functions.contains("package") {
            return Err(BuildError::MissingFunction {
                apkbuild: recipe.path.clone(),
                problem: "no package() function: define one that installs into \"$pkgdir\"".into(),
            });
        }
        self.run(
            "package",
            &format!("rm -rf \"$pkgdir\"\nmkdir -p \"$pkgdir\"\n{CD}\npackage"),
        )
    }

    /// Each subpackage's split function, its variables saved for the packaging step.
    fn split_functions(&self) -> Result<(), BuildError> {
        let recipe = self.job.recipe;
        for sub in recipe.subpackages() {
            if !recipe.functions.contains(&sub.func) {
                return Err(BuildError::MissingFunction {
                    apkbuild: recipe.path.clone(),
                    problem: format!(
                        "subpackage {}: split function {}() is not defined",
                        sub.name, sub.func
                    ),
                });
            }
            let q = script::shell_quote(&sub.name);
            self.run(
                &sub.func,
                &format!(
                    "subpkgname={q}\nsubpkgdir=\"$pkgbasedir/$subpkgname\"\nrm -rf \"$subpkgdir\"\nmkdir -p \"$subpkgdir\"\n{CD}\n{}\n{} > \"$pkgbasedir/.meta-$subpkgname\"",
                    sub.func,
                    script::dump_vars_fn()
                ),
            )?;
        }
        Ok(())
    }
}

/// The cache key and the inputs it hashes.
fn cache_key(
    recipe: &Recipe,
    opts: &Options,
    deps: &[&(PathBuf, IndexEntry)],
) -> Result<(String, Vec<(String, String)>), BuildError> {
    let mut inputs: Vec<(String, String)> = vec![
        ("builder".into(), env!("CARGO_PKG_VERSION").into()),
        ("arch".into(), opts.carch.clone()),
        ("signing-key".into(), opts.key.name().to_string()),
        ("packager".into(), opts.packager.clone().unwrap_or_default()),
    ];
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
    for (file, sum) in recipe.sha512sums() {
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

/// Extracts the build dependencies into a private root.
fn install_sysroot(deps: &[&(PathBuf, IndexEntry)], sysroot: &Path) -> Result<(), BuildError> {
    fs_err::create_dir_all(sysroot)?;
    let root = apk::rootfs::RootDir::open(sysroot).map_err(|e| BuildError::Root {
        path: sysroot.to_path_buf(),
        reason: e.to_string(),
    })?;
    let apply = apk::rootfs::ApplyOptions {
        chown: false,
        devices: apk::rootfs::DevicePolicy::CreateOrSkip,
    };
    for (dir, e) in deps {
        let path = dir.join(e.file_name());
        let input = std::io::BufReader::new(fs_err::File::open(&path)?);
        apk::package::extract(input, &root, &apply, ReadLimits::default()).map_err(|source| {
            BuildError::Package {
                path,
                source: Box::new(source),
            }
        })?;
    }
    Ok(())
}

/// Compiler and pkg-config variables that make a sysroot's headers and libraries usable.
fn sysroot_exports(sysroot: &Path) -> Vec<(String, String)> {
    let s = sysroot.display();
    vec![
        ("CPATH".into(), format!("{s}/usr/include")),
        ("LIBRARY_PATH".into(), format!("{s}/usr/lib:{s}/lib")),
        ("LD_LIBRARY_PATH".into(), format!("{s}/usr/lib:{s}/lib")),
        ("LDFLAGS".into(), format!("-Wl,-rpath-link,{s}/usr/lib")),
        (
            "PKG_CONFIG_PATH".into(),
            format!("{s}/usr/lib/pkgconfig:{s}/usr/share/pkgconfig"),
        ),
        ("PKG_CONFIG_SYSROOT_DIR".into(), s.to_string()),
        (
            "PATH".into(),
            format!("{s}/usr/bin:{s}/bin:{}", crate::apkbuild::CLEAN_PATH),
        ),
    ]
}

/// Writes package files into the repository (all written before any is committed) and
/// updates its index.
fn install_files(
    recipe: &Recipe,
    opts: &Options,
    out_dir: &Path,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<PathBuf>, BuildError> {
    fs_err::create_dir_all(out_dir)?;
    let mut entries = Vec::new();
    let mut pending = Vec::new();
    for (name, bytes) in files {
        let pkg = Package::read(&bytes[..], ReadLimits::default()).map_err(|source| {
            BuildError::Package {
                path: out_dir.join(name),
                source: Box::new(source),
            }
        })?;
        let mut e = IndexEntry::from_package(&pkg);
        if e.arch == "noarch" {
            e.arch.clone_from(&opts.carch);
        }
        entries.push(e);
        let path = out_dir.join(name);
        let mut f = apk::atomic::AtomicFile::create(&path)?.with_mode(0o644);
        f.write_all(bytes)?;
        pending.push((f, path));
    }
    let mut paths = Vec::new();
    for (f, path) in pending {
        f.commit()?;
        paths.push(path);
    }
    repo::update_index(
        out_dir,
        &recipe.repo(),
        entries,
        &opts.key,
        opts.source_date,
    )?;
    Ok(paths)
}
