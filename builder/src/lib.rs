//! The engine behind `apkbuild`: each subcommand is a module in [`commands`] with its
//! arguments and a `run` function. Environment variables read anywhere are listed in
//! [`env`].

pub mod commands;
pub mod env;
pub mod keyconf;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build, sign, verify and index Alpine apk packages (abuild's job, in one binary).
#[derive(Debug, Parser)]
#[command(name = "apkbuild", version, about, long_about = None)]
pub struct Cli {
    /// More output (repeat for debug logs).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The tracing filter for `-v`/`-q`.
    pub fn log_level(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an RSA signing key pair, named like abuild-keygen does.
    Keygen(commands::keygen::Args),
    /// Package a directory tree as a signed .apk (abuild's create_apks for a ready tree).
    Pack(Box<commands::pack::Args>),
    /// Sign (or re-sign) packages and APKINDEX files.
    Sign(commands::sign::Args),
    /// Verify signatures, datahash and every file checksum of packages and indexes.
    Verify(commands::verify::Args),
    /// Write an APKINDEX.tar.gz for packages (like `apk index` + `abuild-sign`).
    Index(commands::index::Args),
    /// Show what is inside a package or an index.
    Inspect(commands::inspect::Args),
    /// Upload a package tree to a reposerve (`POST /upload`).
    Deploy(commands::deploy::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = env::Env::from_process();
    match cli.command {
        Command::Keygen(args) => commands::keygen::run(&args, &env),
        Command::Pack(args) => commands::pack::run(&args, &env),
        Command::Sign(args) => commands::sign::run(&args, &env),
        Command::Verify(args) => commands::verify::run(&args, &env),
        Command::Index(args) => commands::index::run(&args, &env),
        Command::Inspect(args) => commands::inspect::run(&args, &env),
        Command::Deploy(args) => commands::deploy::run(&args, &env),
    }
}
