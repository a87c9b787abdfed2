//! Command-line arguments and dispatch (the binary parses, this runs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::build::Reporter;
use crate::commands;

/// Build container images from a Containerfile, with a snapshot after every step.
#[derive(Debug, Parser)]
#[command(name = "assemble", version)]
pub struct Cli {
    /// The local store (default: $XDG_DATA_HOME/assemble or ~/.local/share/assemble).
    #[arg(long, global = true, env = "ASSEMBLE_STORE")]
    pub store: Option<PathBuf>,
    /// A subcommand; `assemble [options] CONTEXT` means `assemble build [options] CONTEXT`.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommand names, for [`with_default_command`].
const SUBCOMMANDS: &[&str] = &[
    "build",
    "push",
    "images",
    "snapshots",
    "rmi",
    "prune",
    "logs",
    "run",
    "export",
    "inspect",
    "tag",
    "help",
];

/// Inserts `build` when the command line names no subcommand (`assemble -t x .`), so
/// build options need no subcommand, as with `docker build`'s successors.
pub fn with_default_command(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--store" {
            i += 2;
            continue;
        }
        if a.starts_with("--store=") {
            i += 1;
            continue;
        }
        if SUBCOMMANDS.contains(&a.as_ref())
            || matches!(a.as_ref(), "-h" | "--help" | "-V" | "--version")
        {
            return args;
        }
        break;
    }
    let mut out = args;
    if i <= out.len() {
        out.insert(i.min(out.len()), "build".into());
    }
    out
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image (the default: `assemble [options] CONTEXT`).
    Build(commands::build::BuildArgs),
    /// List tagged images.
    Images,
    /// List the snapshots of an image, newest first.
    Snapshots(commands::store::SnapshotsArgs),
    /// Give an image another name: `assemble tag SOURCE[@SNAPSHOT] TARGET[:TAG]`.
    Tag(commands::store::TagArgs),
    /// Remove tags (then `prune` frees their snapshots).
    Rmi(commands::store::RmiArgs),
    /// Remove snapshots no tag reaches, stale cache entries and leftovers.
    Prune,
    /// Print the full output of an image's steps, or of one snapshot.
    Logs(commands::store::LogsArgs),
    /// Run a command (or a shell) in an image or snapshot.
    Run(commands::run::RunArgs),
    /// Push an image to a registry (OCI distribution API).
    Push(commands::push::PushArgs),
    /// Export an image from the store.
    Export(commands::build::ExportArgs),
    /// Show an image's config, layers, packages and s6 services.
    Inspect(commands::inspect::InspectArgs),
}

impl Cli {
    /// How progress is shown and whether status lines are (`build --progress`, `-q`).
    pub fn output_style(&self) -> (commands::build::ProgressMode, bool) {
        match &self.command {
            Command::Build(a) => (a.progress, a.quiet),
            _ => (commands::build::ProgressMode::Auto, false),
        }
    }
}

/// What the binary passes in from the environment (see `env.rs`).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Default store directory.
    pub default_store: PathBuf,
    /// SOURCE_DATE_EPOCH.
    pub source_date: Option<u64>,
    /// Current time.
    pub now: u64,
    /// ASSEMBLE_REGISTRY_USER / ASSEMBLE_REGISTRY_PASSWORD.
    pub registry_creds: Option<(String, String)>,
    /// Reads one environment variable (`--secret env=NAME`); `None` reads none.
    pub var: Option<fn(&str) -> Option<String>>,
    /// ASSEMBLE_NO_OVERLAY: extract each build's base instead of overlaying the kept one.
    pub no_overlay: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli, env: &Env, reporter: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let store_dir = cli
        .store
        .clone()
        .unwrap_or_else(|| env.default_store.clone());
    let store = crate::store::Store::open(&store_dir)
        .map_err(|e| anyhow::anyhow!("failed to open the store `{}`: {e}", store_dir.display()))?;
    match cli.command {
        Command::Build(a) => commands::build::run(&store, &a, env, reporter),
        Command::Images => commands::store::images(&store, reporter),
        Command::Snapshots(a) => commands::store::snapshots(&store, &a, reporter),
        Command::Tag(a) => commands::store::tag(&store, &a, reporter),
        Command::Rmi(a) => commands::store::rmi(&store, &a, reporter),
        Command::Prune => commands::store::prune(&store, reporter),
        Command::Logs(a) => commands::store::logs(&store, &a, reporter),
        Command::Run(a) => commands::run::run(&store, &a, env, reporter),
        Command::Push(a) => commands::push::run(&store, &a, env, reporter),
        Command::Export(a) => commands::build::export(&store, &a, env, reporter),
        Command::Inspect(a) => commands::inspect::run(&store, &a, reporter),
    }
}
