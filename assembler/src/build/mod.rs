//! The build engine: runs a Containerfile's stages step by step, keeping a snapshot after
//! every RUN, COPY and ADD, reusing cached steps, and keeping a failed step's partial state.
//!
//! Here: the build's entry and the state its steps share. The stage loop and the config
//! instructions are in `stage`; a RUN/COPY/ADD step (key, cache) in `step`; its RUN in the
//! sandbox in `run`, a native `apk add`/`apk del` in `apk`, COPY/ADD in `copy`; finishing a
//! step (snapshot, `:failed`, owners) in `snapshot`; FROM in `from`; the build root (an
//! overlay over the base kept in the store, or an extracted base) in `root`.

// A build stops at its first error, which is moved once: keep its fields flat.
#![allow(clippy::result_large_err)]

mod apk;
mod cachemount;
mod copy;
mod copy_flags;
mod from;
mod mounts;
mod onbuild;
mod root;
mod run;
mod secret;
mod snapshot;
mod stage;
mod step;
mod stubs;
mod tree;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::{ImageConfig, rfc3339};
use crate::containerfile::{self, BuildArgs, Containerfile, ParseError, Platform, StageArgs};
use crate::layer::{self, Manifest};
use crate::sandbox::Sandbox;
use crate::store::{Snapshot, Store};

pub use from::{materialize, materialize_recording};
pub use secret::Secret;

/// Progress and command output (the binary prints; the library never does).
pub trait Reporter {
    /// A status line (`Step 1/4 : …`, `--> Snapshot created: @…`).
    fn line(&self, line: &str);
    /// Live output of a command.
    fn output(&self, bytes: &[u8]);
    /// A warning or error, shown even when status lines are not (`--quiet`).
    fn notice(&self, line: &str) {
        self.line(line);
    }
    /// The result a script reads (`--quiet` prints only the image id), on a line of its own.
    fn result(&self, line: &str) {
        self.output(format!("{line}\n").as_bytes());
    }
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
    /// The Containerfile (as named in messages when `source` is given).
    pub file: PathBuf,
    /// The Containerfile's text when it was not read from `file` (`-f -`: standard input).
    pub source: Option<String>,
    /// The build context directory.
    pub context: PathBuf,
    /// `-t` names.
    pub tags: Vec<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--label`: set on the built image.
    pub labels: BTreeMap<String, String>,
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
    /// `--secret`: the values `RUN --mount=type=secret` shows, by id.
    pub secrets: BTreeMap<String, Secret>,
    /// Whether build roots may be overlays over bases kept in the store.
    pub cow: crate::overlay::Cow,
}

/// Build errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A step failed; its partial state is a snapshot.
    #[error(
        "{at}: step {step} `{instruction}` failed ({status})\nMost recent snapshot is @{snapshot}, tagged {tag}\n{look}"
    )]
    StepFailed {
        /// `file:line` of the instruction.
        at: String,
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
    root: root::BuildRoot,
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
    let file = read_containerfile(opts)?;
    for n in &file.notes {
        reporter.line(&format!("note: {n}"));
    }
    let bargs = global_args(&file, opts)?;
    let target = target_stage(&file, opts)?;
    let needed = needed_stages(&file, &bargs, target);
    let check = validate::Check {
        file: &file,
        path: &opts.file,
        bargs: &bargs,
        secrets: &opts.secrets,
    };
    check.run(&needed).map_err(anyhow::Error::from)?;
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
        at: String::new(),
        roots: root::Roots::new(opts.cow.clone()),
    };
    for &i in &needed {
        engine.build_stage(i, &bargs)?;
    }
    let mut state = engine
        .stages
        .remove(&target)
        .context("target stage was not built")?;
    state.config.labels.extend(opts.labels.clone());
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
    let unused = bargs.unused(&file);
    if !unused.is_empty() {
        reporter.notice(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        ));
    }
    Ok(Built { snapshot: top })
}

/// The parsed Containerfile, from `opts.source` when given (standard input), else the file.
fn read_containerfile(opts: &BuildOptions) -> anyhow::Result<Containerfile> {
    match &opts.source {
        Some(text) => Ok(containerfile::parse(text, &opts.file)?),
        // The error names the file already (see `containerfile::ReadError`).
        None => Ok(containerfile::parse_file(&opts.file)?),
    }
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

/// `NAME:failed` for the first `-t NAME[:tag]`; without one `unnamed-SNAPSHOT:failed`, a
/// name of its own for each failure (the failed step's snapshot).
fn failed_tag(tags: &[String], snapshot: &str) -> String {
    let name = tags
        .first()
        .map(|t| crate::store::normalize_tag(t))
        .and_then(|t| t.rsplit_once(':').map(|(n, _)| n.to_string()))
        .unwrap_or_else(|| format!("unnamed-{snapshot}"));
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
    /// `file:line` of the instruction being carried out, for its errors.
    at: String,
    roots: root::Roots,
}

impl Engine<'_> {
    fn created(&self) -> String {
        rfc3339(self.opts.source_date.unwrap_or(self.opts.now))
    }

    /// Starts the next step: `inst`, shown as `text`.
    fn announce(&mut self, inst: &containerfile::Instruction, text: &str) {
        self.step += 1;
        self.at = format!("{}:{}", self.opts.file.display(), inst.span.line);
        self.reporter
            .line(&format!("Step {}/{} : {text}", self.step, self.total));
    }

    /// `e`, an error of the current step, naming its `file:line` (a [`ParseError`] already
    /// names its `file:line:col`; a step's failure its `file:line`).
    fn located(&self, e: BuildError) -> BuildError {
        let BuildError::Other(e) = e else {
            return e;
        };
        if e.downcast_ref::<ParseError>().is_some() {
            return e.into();
        }
        let (at, text) = self.place(&e);
        anyhow::anyhow!("{at}: {text}").into()
    }

    /// Where error `e` of the current step is, and what it says without the place: a
    /// [`ParseError`] at its own `file:line:col` (its message and hint), any other at the
    /// step's `file:line` (messages that name the line themselves lose that prefix).
    fn place(&self, e: &anyhow::Error) -> (String, String) {
        if let Some(p) = e.downcast_ref::<ParseError>() {
            let text = match &p.hint {
                Some(hint) => format!("{}; {hint}", p.message),
                None => p.message.clone(),
            };
            return (
                format!("{}:{}:{}", p.path.display(), p.line, p.column),
                text,
            );
        }
        let text = format!("{e:#}");
        let line = self.at.rsplit(':').next().unwrap_or_default();
        let text = [format!("{}: ", self.at), format!("line {line}: ")]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix.as_str()))
            .unwrap_or(&text)
            .to_string();
        (self.at.clone(), text)
    }
}
