//! The build engine: runs a Containerfile's stages step by step, keeping a snapshot after
//! every RUN, COPY and ADD, reusing cached steps, and keeping a failed RUN's partial state.
//!
//! Here: the build's entry and the state its steps share. The stage loop and the config
//! instructions are in `stage`; a RUN/COPY/ADD step (key, cache) in `step`; its RUN in the
//! sandbox in `run`, a native `apk add`/`apk del` in `apk`, COPY/ADD in `copy`; finishing a
//! step (snapshot, `:failed`, owners) in `snapshot`; FROM in `from`.

// A build stops at its first error, which is moved once: keep its fields flat.
#![allow(clippy::result_large_err)]

mod apk;
mod copy;
mod from;
mod run;
mod snapshot;
mod stage;
mod step;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::{ImageConfig, rfc3339};
use crate::containerfile::{self, BuildArgs, Containerfile, Platform, StageArgs};
use crate::layer::{self, Manifest};
use crate::sandbox::Sandbox;
use crate::store::{Snapshot, Store};

pub use from::{materialize, materialize_recording};

/// Progress and command output (the binary prints; the library never does).
pub trait Reporter {
    /// A status line (`Step 1/4 : …`, `--> Snapshot created: @…`).
    fn line(&self, line: &str);
    /// Live output of a command.
    fn output(&self, bytes: &[u8]);
    /// A handle showing the progress of a transfer of `total` bytes (when known) described
    /// by `what` (`Pulling …`, `Pushing …`, `Compressing layer …`); silent by default.
    fn progress(&self, what: &str, total: Option<u64>) -> Box<dyn crate::progress::Progress> {
        let _ = (what, total);
        Box::new(crate::progress::Silent)
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Containerfile.
    pub file: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// `-t` names.
    pub tags: Vec<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--network host`.
    pub network: bool,
    /// SOURCE_DATE_EPOCH: clamps layer mtimes and sets `created`.
    pub source_date: Option<u64>,
    /// The current time (for `created` without SOURCE_DATE_EPOCH).
    pub now: u64,
    /// Verify TLS when pulling (false: plain HTTP, for local registries).
    pub tls_verify: bool,
    /// Registry user and password.
    pub registry_creds: Option<(String, String)>,
    /// `--init`: make the image's program a supervised service of this init.
    pub init: Option<crate::init::Init>,
}

/// Build errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A step failed; its partial state is a snapshot.
    #[error(
        "step {step} `{instruction}` failed ({status})\nMost recent snapshot is @{snapshot}\n{look}"
    )]
    StepFailed {
        /// Step number.
        step: usize,
        /// The instruction.
        instruction: String,
        /// Exit status text.
        status: String,
        /// The snapshot with the partial state.
        snapshot: String,
        /// The `:failed` tag.
        tag: String,
        /// The store root.
        store: String,
        /// How to look inside: the command opening a shell there, or, when the image has
        /// no shell, unpacking it.
        look: String,
    },
    /// Anything else, with its context.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The final snapshot (tagged with every `-t`).
    pub snapshot: Snapshot,
}

struct StageState {
    root: tempfile::TempDir,
    from: Option<String>,
    manifest: Manifest,
    /// Image owners of the root's paths (see [`layer::Owners`]).
    owners: layer::Owners,
    top: Option<Snapshot>,
    config: ImageConfig,
    args: StageArgs,
}

impl StageState {
    fn rootfs(&self) -> PathBuf {
        self.root.path().join("rootfs")
    }
}

/// Builds per `opts`.
pub fn build(
    store: &Store,
    sandbox: &dyn Sandbox,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Built, BuildError> {
    let file = containerfile::parse_file(&opts.file).map_err(anyhow::Error::from)?;
    for n in &file.notes {
        reporter.line(&format!("note: {n}"));
    }
    let bargs = global_args(&file, opts)?;
    let target = target_stage(&file, opts)?;
    let needed = needed_stages(&file, &bargs, target);
    let mut engine = Engine {
        store,
        sandbox,
        opts,
        reporter,
        file: &file,
        step: 0,
        total: needed
            .iter()
            .map(|&i| file.stages[i].instructions.len() + 1)
            .sum(),
        stages: BTreeMap::new(),
        failed_tag: failed_tag(&opts.tags),
    };
    for &i in &needed {
        engine.build_stage(i, &bargs)?;
    }
    let mut state = engine
        .stages
        .remove(&target)
        .context("target stage was not built")?;
    if let Some(init) =
        crate::init::requested(opts.init, &state.config).map_err(anyhow::Error::from)?
    {
        engine.init_step(&mut state, init)?;
    }
    let top = engine.finish_config(&state)?;
    for t in &opts.tags {
        store
            .set_tag(t, &top.id)
            .context("failed to tag the image")?;
    }
    Ok(Built { snapshot: top })
}

/// The build args with the Containerfile's global ARGs (before the first FROM) declared.
fn global_args(file: &Containerfile, opts: &BuildOptions) -> anyhow::Result<BuildArgs> {
    let mut bargs = BuildArgs::new(
        opts.build_args.clone(),
        &Platform::host(),
        &Platform::host(),
    );
    bargs
        .declare_globals(file)
        .map_err(|e| anyhow::anyhow!("{}: global ARG: {e}", opts.file.display()))?;
    Ok(bargs)
}

/// The index of the stage to build: `--target`, else the last.
fn target_stage(file: &Containerfile, opts: &BuildOptions) -> anyhow::Result<usize> {
    let Some(t) = &opts.target else {
        return Ok(file.stages.len() - 1);
    };
    let stage = file
        .stage(t)
        .with_context(|| format!("--target `{t}`: no such stage in `{}`", opts.file.display()))?;
    Ok(stage.index)
}

/// The stages `target` needs (itself included), in file order; stage references are
/// expanded with the global ARGs.
fn needed_stages(file: &Containerfile, bargs: &BuildArgs, target: usize) -> Vec<usize> {
    let gv = bargs.global_vars();
    file.needed_stages(target, &|s| {
        containerfile::expand_word(s, &gv, file.escape).unwrap_or_else(|_| s.to_string())
    })
}

/// `NAME:failed` for the first `-t NAME[:tag]` (`unnamed:failed` without one).
fn failed_tag(tags: &[String]) -> String {
    let name = tags
        .first()
        .map(|t| crate::store::normalize_tag(t))
        .and_then(|t| t.rsplit_once(':').map(|(n, _)| n.to_string()))
        .unwrap_or_else(|| "unnamed".into());
    format!("{name}:failed")
}

struct Engine<'a> {
    store: &'a Store,
    sandbox: &'a dyn Sandbox,
    opts: &'a BuildOptions,
    reporter: &'a dyn Reporter,
    file: &'a Containerfile,
    step: usize,
    total: usize,
    stages: BTreeMap<usize, StageState>,
    failed_tag: String,
}

impl Engine<'_> {
    fn created(&self) -> String {
        rfc3339(self.opts.source_date.unwrap_or(self.opts.now))
    }

    fn announce(&mut self, text: &str) {
        self.step += 1;
        self.reporter
            .line(&format!("Step {}/{} : {text}", self.step, self.total));
    }
}
