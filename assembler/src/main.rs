//! `assemble`: not implemented yet.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("assemble: not implemented yet; see README.md for what works today");
    ExitCode::from(2)
}
