//! `apkbuild build`: build one recipe into `$REPODEST/<repo>/<arch>/` (abuild -r).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::apkbuild::Recipe;
use crate::build::{self, Outcome};
use crate::cache::{Cache, CacheConfig};
use crate::env::Env;

/// Options shared by `build` and `build-all`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Output repository root [default: $REPODEST or ~/packages].
    #[arg(long, value_name = "DIR")]
    pub repodest: Option<PathBuf>,
    /// Target architecture ($CARCH).
    #[arg(long, default_value = std::env::consts::ARCH)]
    pub arch: String,
    /// Packager private key [default: $PACKAGER_PRIVKEY or abuild.conf].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Run the phases directly instead of in a bubblewrap sandbox (as abuild does).
    #[arg(long, conflicts_with = "rootbld")]
    pub no_sandbox: bool,
    /// Build in a root of its own, as `abuild rootbld`: the --build-base root filesystem
    /// (or, without one, alpine-base build-base abuild from the repositories) plus the
    /// recipe's build dependencies, under bubblewrap; nothing of the host is visible.
    #[arg(long)]
    pub rootbld: bool,
    /// The root filesystem --rootbld starts from: a .tar.gz (e.g. Alpine's minirootfs) or a
    /// directory.
    #[arg(long, value_name = "ROOTFS", requires = "rootbld")]
    pub build_base: Option<PathBuf>,
    /// More repositories --rootbld installs from (besides the root's own and $REPODEST).
    #[arg(
        long = "repository",
        short = 'X',
        value_name = "URL|DIR",
        requires = "rootbld"
    )]
    pub repositories: Vec<String>,
    /// Keys trusted for the repositories of a root built without --build-base
    /// [default: /etc/apk/keys].
    #[arg(long, value_name = "DIR", requires = "rootbld")]
    pub keys_dir: Option<PathBuf>,
    /// Cache location: a directory or `s3://bucket/prefix` [default: $APKBUILD_CACHE or
    /// the user's cache directory].
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub cache: Option<String>,
    /// S3 endpoint for S3-compatible servers (e.g. http://127.0.0.1:9000).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Ed25519 private key signing new cache entries [default: $APKBUILD_CACHE_KEY].
    #[arg(long, value_name = "FILE")]
    pub cache_key: Option<PathBuf>,
    /// Ed25519 public key cache entries must be signed by [default: $APKBUILD_CACHE_PUBKEY].
    #[arg(long, value_name = "FILE")]
    pub cache_pubkey: Option<PathBuf>,
    /// Build even when the cache has the packages (and do not read or write it).
    #[arg(long)]
    pub no_cache: bool,
    /// Work directory root [default: ${XDG_CACHE_HOME:-~/.cache}/apkbuild/work, also with --cache].
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Keep each work directory after a successful build.
    #[arg(long)]
    pub keep_work: bool,
}

impl BuildArgs {
    /// Turns the arguments and environment into build options.
    pub fn options(&self, env: &Env) -> anyhow::Result<build::Options> {
        let key = crate::keyconf::load_privkey(self.key.as_ref(), env)?;
        let repodest = self
            .repodest
            .clone()
            .or_else(|| env.repodest.clone())
            .or_else(|| env.home.as_ref().map(|h| h.join("packages")))
            .context("no output directory: pass --repodest DIR or set REPODEST")?;
        let cache_dir = env.cache_dir();
        let cache = self.cache(env, &cache_dir)?;
        let rootbld = self.root_build()?;
        Ok(build::Options {
            repodest: std::path::absolute(repodest)?,
            carch: self.arch.clone(),
            sandbox: !self.no_sandbox,
            rootbld,
            key,
            source_date: env.source_date_or(super::now()),
            source_date_explicit: env.source_date_epoch.is_some(),
            packager: env.packager.clone(),
            cache,
            work_root: std::path::absolute(
                self.workdir
                    .clone()
                    .unwrap_or_else(|| cache_dir.join("work")),
            )?,
            keep_work: self.keep_work,
            exports: env.sccache.clone(),
        })
    }
}

impl BuildArgs {
    /// The build cache (`None` with `--no-cache`): `--cache`, `$APKBUILD_CACHE`, or the
    /// user's cache directory; a local one without keys signs its own entries.
    fn cache(&self, env: &Env, cache_dir: &std::path::Path) -> anyhow::Result<Option<Cache>> {
        if self.no_cache {
            return Ok(None);
        }
        let location = self
            .cache
            .clone()
            .or_else(|| env.cache.clone())
            .unwrap_or_else(|| cache_dir.join("cache").display().to_string());
        let mut cfg = CacheConfig {
            location: location.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            aws_env: env.aws.clone(),
            signing_key: self.cache_key.clone().or_else(|| env.cache_key.clone()),
            public_key: self
                .cache_pubkey
                .clone()
                .or_else(|| env.cache_pubkey.clone()),
        };
        if cfg.s3_endpoint.is_none() {
            cfg.s3_endpoint = env
                .aws
                .iter()
                .find(|(k, _)| k == "AWS_ENDPOINT_URL" || k == "AWS_ENDPOINT")
                .map(|(_, v)| v.clone());
        }
        if !location.starts_with("s3://") && cfg.public_key.is_none() {
            let (k, p) = crate::cache::ensure_local_keypair(std::path::Path::new(&location))?;
            cfg.signing_key = Some(k);
            cfg.public_key = Some(p);
        }
        Ok(Some(Cache::open(&cfg)?))
    }

    /// What `--rootbld` builds in (`None` without it).
    fn root_build(&self) -> anyhow::Result<Option<build::rootbld::RootBuild>> {
        if !self.rootbld {
            return Ok(None);
        }
        let base = match &self.build_base {
            Some(b) if !b.exists() => anyhow::bail!(
                "--build-base `{}` does not exist: pass a root filesystem .tar.gz (e.g. \
                 alpine-minirootfs-3.20.3-x86_64.tar.gz) or directory",
                b.display()
            ),
            Some(b) => Some(std::path::absolute(b)?),
            None => None,
        };
        Ok(Some(build::rootbld::RootBuild {
            repositories: self.root_repositories(base.is_none())?,
            base,
            keys_dir: self.keys_dir.clone(),
        }))
    }

    /// `-X` repositories; for a root made without `--build-base`, the host's
    /// `/etc/apk/repositories` when `-X` names none (an Alpine machine's own).
    fn root_repositories(&self, no_base: bool) -> anyhow::Result<Vec<String>> {
        if !no_base || !self.repositories.is_empty() {
            return Ok(self.repositories.clone());
        }
        let text = fs_err::read_to_string("/etc/apk/repositories").unwrap_or_default();
        let repos: Vec<String> = apk::install::parse_repositories(&text)
            .into_iter()
            .filter(|r| r.tag.is_none())
            .map(|r| r.url)
            .collect();
        if repos.is_empty() {
            anyhow::bail!(
                "--rootbld without --build-base installs alpine-base build-base abuild from \
                 repositories, and none is configured: pass -X URL (e.g. an Alpine mirror's \
                 v3.20/main) or --build-base ROOTFS"
            );
        }
        Ok(repos)
    }
}

/// Arguments of `apkbuild build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Build options.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Prints an outcome line on stdout.
pub fn print_outcome(name: &str, outcome: &Outcome) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match outcome {
        Outcome::Built(p) => {
            for f in p {
                writeln!(out, "built {}", f.display())?;
            }
        }
        Outcome::Cached(p) => {
            for f in p {
                writeln!(out, "cached {}", f.display())?;
            }
        }
        Outcome::Skipped => writeln!(out, "skipped {name}")?,
    }
    Ok(())
}

/// Runs `apkbuild build`.
pub fn run(args: &Args, env: &Env, quiet: bool) -> anyhow::Result<ExitCode> {
    let opts = args.build.options(env)?;
    let recipe = Recipe::load(&args.dir, &opts.carch)?;
    let reporter = crate::report::Stderr::new(quiet);
    let outcome = build::build(&recipe, &opts, &reporter)?;
    print_outcome(recipe.pkgname(), &outcome)?;
    Ok(ExitCode::SUCCESS)
}
