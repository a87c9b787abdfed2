//! `reposerve`: serve an apk repository and take authenticated uploads. The engine is the
//! `reposerve` library; this file parses arguments, sets up logging and maps errors to exit
//! codes.

use std::process::ExitCode;

use clap::Parser;
use reposerve::{Cli, env};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = if cli.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env(env::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = std::env::var(env::LOG_FORMAT).is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(env::use_colour())
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(reposerve::server::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", apk::cause::chain(err.chain()));
            ExitCode::FAILURE
        }
    }
}
