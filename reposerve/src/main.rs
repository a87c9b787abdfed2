//! `reposerve`: not implemented yet.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("reposerve: not implemented yet; see README.md for what works today");
    ExitCode::from(2)
}
