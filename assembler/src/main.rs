//! `assemble`: build container images from a Containerfile. The engine is the `assembler`
//! library; this file parses arguments, prints progress and maps errors to exit codes.

mod env;
mod printer;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = assembler::cli::Cli::parse_from(assembler::cli::with_default_command(
        std::env::args_os().collect(),
    ));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSEMBLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(env::use_colour())
        .without_time()
        .with_target(false)
        .init();
    assembler::program::set(env::program());
    let (progress, quiet) = cli.output_style();
    let printer = printer::Printer::new(progress, quiet);
    let result = env::load().and_then(|env| assembler::cli::run(cli, &env, &printer));
    match result {
        Ok(code) => code,
        // A closed pipe (`assemble inspect x | head`) is not an error worth reporting.
        Err(err) if apk::cause::is_broken_pipe(err.chain()) => ExitCode::SUCCESS,
        Err(err) => {
            // A Containerfile diagnostic (a parse error, or one the whole-file check before
            // the first step found) renders its own `error:` header with file:line:col and
            // a snippet; anything else gets one. (`error:` with its colon: other messages
            // may start with the word, as "error sending request" does.)
            let msg = apk::cause::chain(err.chain());
            if msg.starts_with("error: ") {
                eprintln!("{msg}");
            } else {
                eprintln!("error: {msg}");
            }
            ExitCode::FAILURE
        }
    }
}
