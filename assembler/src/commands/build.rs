//! `assemble [options] CONTEXT` and `assemble export`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::build::{BuildError, BuildOptions, Reporter};
use crate::cli::Env;
use crate::export::{ExportOptions, LayerMode, Output};
use crate::overlay::Cow;
use crate::sandbox::Bwrap;
use crate::store::{ImageRef, Store};

/// Build options.
#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// Name (and tag) of the image: NAME[:TAG]; repeatable.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile); `-`
    /// reads it from standard input.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A build argument K=V; repeatable.
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// A label K=V set on the image; repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image id (`@SNAPSHOT`, as every command here takes it) to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Print only the image id (`@SNAPSHOT`) on success; errors and warnings still show.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Progress output: auto (bars on a terminal), plain (lines) or tty (bars).
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Build up to this stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, ignoring the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// `host` gives RUN steps the host network (default: none).
    #[arg(long)]
    pub network: Option<String>,
    /// Layer cutting of outputs: default (base layers + one for the build), squash, steps,
    /// or packages[:BUDGET] (one layer per package and per COPY/ADD, at most BUDGET).
    #[arg(long, default_value = "default")]
    pub layers: LayerMode,
    /// Also write the image to TYPE:PATH (oci, oci-archive, docker-archive, rootfs, rootfs-tar,
    /// ext4 with an optional :SIZE, squashfs); repeatable.
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<Output>,
    /// Free space added to an ext4 output without :SIZE (e.g. 256M).
    #[arg(long, default_value = "64M", value_parser = parse_margin)]
    pub ext4_margin: u64,
    /// `--tls-verify=false` pulls base images over plain HTTP (local registries).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Run the image's ENTRYPOINT/CMD as a supervised service under this init (`s6`: the
    /// `s6-init` package's /init); also `LABEL org.assemble.init=s6`.
    #[arg(long, value_enum)]
    pub init: Option<crate::init::Init>,
    /// A secret for `RUN --mount=type=secret`: id=ID[,src=FILE|,env=VARIABLE]; repeatable.
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// The build context.
    pub context: Option<PathBuf>,
}

/// `--progress`: how transfers are shown (docker's values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, else plain lines.
    #[default]
    Auto,
    /// Plain lines (CI logs).
    Plain,
    /// Bars, even when stderr is not a terminal.
    Tty,
}

/// `assemble export IMAGE TYPE:PATH`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// NAME[:TAG][@SNAPSHOT].
    pub image: String,
    /// TYPE:PATH: oci, oci-archive, docker-archive, rootfs, rootfs-tar, ext4 (FILE[:SIZE]) or squashfs.
    pub output: Output,
    /// default, squash, steps or packages[:BUDGET].
    #[arg(long, default_value = "default")]
    pub layers: LayerMode,
    /// Free space added to an ext4 output without :SIZE (e.g. 256M).
    #[arg(long, default_value = "64M", value_parser = parse_margin)]
    pub ext4_margin: u64,
}

fn parse_margin(s: &str) -> Result<u64, String> {
    if s == "0" {
        return Ok(0);
    }
    crate::fsimage::parse_size(s).map_err(|e| e.to_string())
}

/// `Containerfile`, else `Dockerfile`, in the context directory (as podman looks).
fn default_file(context: &Path) -> anyhow::Result<PathBuf> {
    if !context.is_dir() {
        anyhow::bail!(
            "the build context `{}` is not a directory; give the directory holding the Containerfile",
            context.display()
        );
    }
    ["Containerfile", "Dockerfile"]
        .into_iter()
        .map(|name| context.join(name))
        .find(|f| f.is_file())
        .with_context(|| {
            format!(
                "no Containerfile or Dockerfile in `{}`; add one, or name it with -f FILE \
                 (-f - reads it from standard input)",
                context.display()
            )
        })
}

/// Builds.
pub fn run(
    store: &Store,
    a: &BuildArgs,
    env: &Env,
    reporter: &dyn Reporter,
) -> anyhow::Result<ExitCode> {
    let Some(context) = a.context.clone() else {
        anyhow::bail!(
            "no build context given; usage: {} [-t NAME[:TAG]] [-f FILE] CONTEXT (see --help)",
            crate::program::name()
        );
    };
    let (file, source) = containerfile(&context, a.file.as_deref())?;
    let cow = if env.no_overlay {
        Cow::Unavailable("ASSEMBLE_NO_OVERLAY is set".into())
    } else {
        // Before anything starts a thread (see `overlay::enter`).
        crate::overlay::enter()?
    };
    // Checked when a step first needs it: many builds never do.
    let sandbox = Bwrap::default();
    let opts = BuildOptions {
        file,
        source,
        context,
        tags: a.tags.clone(),
        build_args: key_values("--build-arg", &a.build_args)?,
        labels: key_values("--label", &a.labels)?,
        target: a.target.clone(),
        no_cache: a.no_cache,
        network: a.network.as_deref() == Some("host"),
        source_date: env.source_date,
        now: env.now,
        tls_verify: a.tls_verify,
        registry_creds: env.registry_creds.clone(),
        init: a.init,
        secrets: super::secret::parse(&a.secrets, env)?,
        cow,
    };
    let built = match crate::build::build(store, &sandbox, &opts, reporter) {
        Ok(b) => b,
        Err(e @ BuildError::StepFailed { .. }) => {
            reporter.notice(&format!("error: {e}"));
            return Ok(ExitCode::FAILURE);
        }
        // The anyhow error itself: wrapping it would print its chain twice.
        Err(BuildError::Other(e)) => return Err(e),
    };
    write_outputs(store, &built, a, env, reporter)?;
    announce(&built, a, reporter)?;
    Ok(ExitCode::SUCCESS)
}

/// The Containerfile to read (and its text when it comes from standard input, `-f -`):
/// `-f FILE`, else the context's `Containerfile`, else its `Dockerfile` (buildah's order).
fn containerfile(context: &Path, file: Option<&Path>) -> anyhow::Result<(PathBuf, Option<String>)> {
    match file {
        Some(f) if f == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("failed to read the Containerfile from standard input (-f -)")?;
            Ok((PathBuf::from("<stdin>"), Some(text)))
        }
        Some(f) => Ok((f.to_path_buf(), None)),
        None => default_file(context).map(|p| (p, None)),
    }
}

/// `KEY=VALUE` options (`--build-arg`, `--label`) as a map; a later one wins.
fn key_values(option: &str, values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    values
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{option} `{kv}`: expected KEY=VALUE"))
        })
        .collect()
}

/// Writes every `-o` output of the build.
fn write_outputs(
    store: &Store,
    built: &crate::build::Built,
    a: &BuildArgs,
    env: &Env,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    for o in &a.outputs {
        let eo = ExportOptions {
            layers: a.layers,
            created: env.source_date.unwrap_or(env.now),
            tags: a
                .tags
                .iter()
                .map(|t| crate::store::normalize_tag(t))
                .collect(),
            ext4_margin: a.ext4_margin,
        };
        crate::export::export(store, &built.snapshot, o, &eo, reporter)
            .with_context(|| format!("failed to write output `{o}`"))?;
    }
    Ok(())
}

/// Says what was built: the tags, `--iidfile`, and the image id (alone on stdout with -q).
fn announce(
    built: &crate::build::Built,
    a: &BuildArgs,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let id = format!("@{}", built.snapshot.id);
    for t in &a.tags {
        reporter.line(&format!(
            "Successfully tagged {}",
            crate::store::normalize_tag(t)
        ));
    }
    if let Some(path) = &a.iidfile {
        apk::atomic::write_atomic(path, id.as_bytes())
            .with_context(|| format!("failed to write --iidfile `{}`", path.display()))?;
    }
    if a.quiet {
        reporter.result(&id);
    }
    reporter.line(&format!("Built {id}"));
    Ok(())
}

/// Exports a stored image.
pub fn export(
    store: &Store,
    a: &ExportArgs,
    env: &Env,
    reporter: &dyn Reporter,
) -> anyhow::Result<ExitCode> {
    let r = ImageRef::parse(&a.image);
    let snap = store.resolve(&r)?;
    let eo = ExportOptions {
        layers: a.layers,
        created: env.source_date.unwrap_or(env.now),
        tags: if r.tag.is_empty() {
            Vec::new()
        } else {
            vec![r.tag.clone()]
        },
        ext4_margin: a.ext4_margin,
    };
    crate::export::export(store, &snap, &a.output, &eo, reporter)?;
    Ok(ExitCode::SUCCESS)
}
