//! Building one recipe: sources, cache lookup, build-time dependencies, the phases, then
//! strip, trace, package, sign and index. Nothing reaches the repository until every
//! package of the build is written: a failed build leaves the repository and its index
//! as they were.

pub mod phase;
pub mod repo;
pub mod sources;
pub mod tracedeps;
pub mod zip;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use apk::index::IndexEntry;
use apk::keys::PrivateKey;
use apk::package::{Package, PackageWriter, ReadLimits, Script, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;
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

/// Builds one recipe.
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
    let name = recipe.pkgname().to_string();
    let out_dir = arch_dir(recipe, opts);
    let work = opts.work_root.join(recipe.repo()).join(&name);
    if work.exists() {
        fs_err::remove_dir_all(&work)?;
    }
    fs_err::create_dir_all(work.join("tmp"))?;
    let mut ctx = Context::new(&recipe.dir, &work, &opts.carch);

    let repo_entries = repo::all_entries(&opts.repodest, &opts.carch)?;
    let check = !recipe.has_option("!check");
    let deps = repo::closure(&repo_entries, &recipe.build_dependencies(check));
    // The key needs no download: remote sources enter it through their sha512sums, which
    // the build that stored the entry verified.
    let (key, inputs) = cache_key(recipe, opts, &deps)?;

    if let Some(cache) = &opts.cache {
        match cache.lookup(&key)? {
            Lookup::Hit(_, files) => {
                reporter.info(&format!(
                    "{name}: cache hit {} in {}: downloading, not building",
                    &key[..16],
                    cache.describe()
                ));
                let paths = install_files(recipe, opts, &out_dir, &files)?;
                let _ = fs_err::remove_dir_all(&work);
                return Ok(Outcome::Cached(paths));
            }
            Lookup::Miss(why) => {
                reporter.info(&format!(
                    "{name}: cache miss {} ({why}): building",
                    &key[..16]
                ));
            }
        }
    }

    reporter.info(&format!("{name}: fetching sources"));
    let fetched = sources::fetch(recipe, &ctx.srcdir(), opts.cache.as_ref(), reporter)?;
    sources::verify(recipe, &fetched)?;
    sources::unpack(&fetched, &ctx.srcdir())?;
    if !deps.is_empty() {
        let sysroot = work.join("sysroot");
        install_sysroot(&deps, &sysroot)?;
        reporter.info(&format!(
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

    let sandbox: Box<dyn phase::Sandbox> = if opts.sandbox {
        Box::new(phase::Bubblewrap {
            net: recipe.has_option("net"),
            writable: Vec::new(),
        })
    } else {
        Box::new(phase::Direct)
    };
    sandbox.preflight()?;
    let runner = phase::Runner {
        sandbox: sandbox.as_ref(),
    };
    let cd = "cd \"$builddir\" 2>/dev/null || cd \"$srcdir\"";
    let run = |phase: &str, body: &str| -> Result<(), BuildError> {
        reporter.info(&format!("{name}: {phase}()"));
        runner.run(&ctx, &recipe.path, phase, body, reporter)?;
        Ok(())
    };
    run("prepare", &format!("{cd}\nprepare"))?;
    run("build", &format!("{cd}\nbuild"))?;
    if check && recipe.functions.contains("check") {
        run("check", &format!("{cd}\ncheck"))?;
    } else if !check {
        reporter.info(&format!("{name}: check() skipped (options=\"!check\")"));
    }
    if !recipe.functions.contains("package") {
        return Err(BuildError::MissingFunction {
            apkbuild: recipe.path.clone(),
            problem: "no package() function: define one that installs into \"$pkgdir\"".into(),
        });
    }
    run(
        "package",
        &format!("rm -rf \"$pkgdir\"\nmkdir -p \"$pkgdir\"\n{cd}\npackage"),
    )?;
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
        run(
            &sub.func,
            &format!(
                "subpkgname={q}\nsubpkgdir=\"$pkgbasedir/$subpkgname\"\nrm -rf \"$subpkgdir\"\nmkdir -p \"$subpkgdir\"\n{cd}\n{}\n{} > \"$pkgbasedir/.meta-$subpkgname\"",
                sub.func,
                script::dump_vars_fn()
            ),
        )?;
    }

    let started = std::time::Instant::now();
    let files = package_all(recipe, opts, &ctx, reporter)?;
    let paths = install_files(recipe, opts, &out_dir, &files)?;
    reporter.info(&format!(
        "{name}: packaged, signed and indexed {} packages in {:.3} s",
        files.len(),
        started.elapsed().as_secs_f64()
    ));
    if let Some(cache) = &opts.cache
        && cache.writable()
    {
        cache.store(&key, inputs, &files)?;
        reporter.info(&format!("{name}: stored in the cache as {}", &key[..16]));
    }
    if !opts.keep_work {
        let _ = fs_err::remove_dir_all(&work);
    }
    Ok(Outcome::Built(paths))
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

/// Reads the `name SEP value` records a split function left.
fn read_meta(path: &Path) -> Result<BTreeMap<String, String>, BuildError> {
    let text = fs_err::read_to_string(path)?;
    Ok(text
        .split('\x1e')
        .filter(|r| !r.is_empty())
        .filter_map(|r| r.split_once('\x1f'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Strips, traces and writes every package of the build (in memory: name, bytes).
fn package_all(
    recipe: &Recipe,
    opts: &Options,
    ctx: &Context,
    reporter: &dyn Reporter,
) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let fullver = recipe.full_version();
    let base = ctx.pkgbasedir();
    let mut metas: BTreeMap<String, (BTreeMap<String, String>, String)> = BTreeMap::new();
    metas.insert(
        recipe.pkgname().to_string(),
        (recipe.vars.clone(), recipe.pkgarch()),
    );
    for sub in recipe.subpackages() {
        let meta = read_meta(&base.join(format!(".meta-{}", sub.name)))?;
        metas.insert(sub.name.clone(), (meta, sub.arch.clone()));
    }
    let mut traced = BTreeMap::new();
    for name in metas.keys() {
        let dir = base.join(name);
        fs_err::create_dir_all(&dir)?;
        if !recipe.has_option("!strip") {
            let n = tracedeps::strip(&dir)?;
            if n > 0 {
                reporter.info(&format!("{name}: stripped {n} ELF files"));
            }
        }
        let noarch = metas[name].1 == "noarch";
        traced.insert(
            name.clone(),
            (dir.clone(), tracedeps::trace(&dir, &fullver, noarch)?),
        );
    }
    let trace = !recipe.has_option("!tracedeps");
    let auto = tracedeps::auto_depends(&traced, &fullver);
    let install = words(recipe.var("install"));
    let triggers = words(recipe.var("triggers"));
    let mut out = Vec::new();
    // Main package first, then subpackages in recipe order.
    let mut order = vec![recipe.pkgname().to_string()];
    order.extend(recipe.subpackages().into_iter().map(|s| s.name));
    for name in order {
        let (vars, arch) = &metas[&name];
        let v = |k: &str| vars.get(k).cloned().unwrap_or_default();
        let mut info = PkgInfo {
            pkgname: name.clone(),
            pkgver: fullver.clone(),
            pkgdesc: v("pkgdesc"),
            url: v("url"),
            builddate: opts.source_date,
            packager: opts.packager.clone().unwrap_or_default(),
            arch: arch.clone(),
            origin: recipe.pkgname().to_string(),
            maintainer: maintainer(recipe),
            license: v("license"),
            replaces: words(&v("replaces")),
            depends: words(&v("depends")),
            provides: words(&v("provides")),
            install_if: words(&v("install_if")),
            provider_priority: v("provider_priority").parse().ok(),
            replaces_priority: v("replaces_priority").parse().ok(),
            generator: Some(format!(
                "Generated by apkbuild {}",
                env!("CARGO_PKG_VERSION")
            )),
            ..PkgInfo::default()
        };
        let (dir, t) = &traced[&name];
        let mut scripts = Vec::new();
        for file in &install {
            if let Some(kind) = file.strip_prefix(&format!("{name}.")) {
                scripts.push(Script {
                    name: format!(".{kind}"),
                    content: fs_err::read(recipe.dir.join(file)).map_err(|source| {
                        BuildError::RecipeFile {
                            apkbuild: recipe.path.clone(),
                            field: "install",
                            file: file.clone(),
                            source,
                        }
                    })?,
                });
            }
        }
        for t in &triggers {
            let (file, dirs) = t.split_once('=').unwrap_or((t, ""));
            if file.strip_suffix(".trigger") == Some(name.as_str()) {
                scripts.push(Script {
                    name: ".trigger".into(),
                    content: fs_err::read(recipe.dir.join(file))?,
                });
                info.triggers = dirs
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect();
            }
        }
        scripts.sort_by_key(|s| apk::package::SCRIPT_NAMES.iter().position(|n| *n == s.name));
        // abuild: a `#!/bin/sh` script makes the package depend on /bin/sh (unless it
        // already depends on busybox or /bin/sh, or is busybox).
        let has_sh = |d: &String| {
            let n = d.split(['<', '>', '=', '~']).next().unwrap_or(d);
            n == "busybox" || n == "/bin/sh"
        };
        if name != "busybox"
            && !info.depends.iter().any(has_sh)
            && scripts.iter().any(|s| {
                s.content
                    .strip_prefix(b"#!")
                    .is_some_and(|r| r.trim_ascii_start().starts_with(b"/bin/sh"))
            })
        {
            info.depends.push("/bin/sh".into());
        }
        if trace {
            for p in &t.provides {
                if !info.provides.contains(p) {
                    info.provides.push(p.clone());
                }
            }
            for d in &auto[&name] {
                if !info.depends.contains(d) {
                    info.depends.push(d.clone());
                }
            }
        }
        let pkg_err = |source| BuildError::Package {
            path: dir.clone(),
            source: Box::new(source),
        };
        let entries = scan_tree(dir, &TreeOptions::new(opts.source_date)).map_err(pkg_err)?;
        let mut writer = PackageWriter::new(info.clone(), opts.source_date);
        writer.scripts = scripts;
        writer.signers.push((&opts.key, SignatureType::Rsa));
        let mut bytes = Vec::new();
        {
            let mut buf = BufWriter::new(&mut bytes);
            writer.write(&entries, &mut buf).map_err(pkg_err)?;
            buf.flush()?;
        }
        reporter.info(&format!(
            "{name}: {} ({} bytes)",
            info.file_name(),
            bytes.len()
        ));
        out.push((info.file_name(), bytes));
    }
    Ok(out)
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
