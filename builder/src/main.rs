//! `apkbuild`: build, sign, verify and index apk packages. The engine is the `builder`
//! library; this file parses arguments and maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = builder::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APKBUILD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_level())),
        )
        .with_writer(std::io::stderr)
        .with_ansi(builder::env::use_colour())
        .without_time()
        .with_target(false)
        .init();
    match builder::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`apkbuild inspect x | head`) is not an error worth reporting.
            if apk::cause::is_broken_pipe(err.chain()) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", apk::cause::chain(err.chain()));
            ExitCode::FAILURE
        }
    }
}
