//! How hints name this program: a command to run next must be one the user can type as it
//! is printed, and after the quick start `assemble` is not on PATH. The binary sets the name
//! once at start (its path when it was run by path); the library reads it.

use std::sync::OnceLock;

static NAME: OnceLock<String> = OnceLock::new();

/// Sets the command hints print; the first call wins.
pub fn set(name: String) {
    let _ = NAME.set(name);
}

/// The command hints print: what [`set`] was given, else `assemble`.
pub fn name() -> &'static str {
    NAME.get().map_or("assemble", String::as_str)
}
