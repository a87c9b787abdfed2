//! Every environment variable `assemble` reads.
//!
//! - `ASSEMBLE_STORE`: the store directory (also `--store`; read by clap).
//! - `XDG_DATA_HOME`, `HOME`: the default store is `$XDG_DATA_HOME/assemble`, else
//!   `$HOME/.local/share/assemble`.
//! - `SOURCE_DATE_EPOCH`: clamps layer mtimes and sets `created`, for reproducible images.
//! - `ASSEMBLE_REGISTRY_USER`, `ASSEMBLE_REGISTRY_PASSWORD`: registry credentials (push, pull).
//! - `ASSEMBLE_LOG`: tracing filter.
//! - the variables `--secret id=…,env=NAME` names (or `--secret id=NAME` when set).
//! - `ASSEMBLE_NO_OVERLAY`: set (non-empty) to extract each build's base into its build
//!   root instead of mounting an overlay over the base kept in the store.
//! - `NO_COLOR`: no colour even on a terminal.

use std::path::PathBuf;

/// The command hints print to run this program again: the bare name when it was found on
/// PATH, else the path of the running binary (after the quick start `assemble` is not on
/// PATH, but `target/release/assemble` is where it was run from).
pub fn program() -> String {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if !argv0.is_empty() && !argv0.to_string_lossy().contains('/') {
        return argv0.to_string_lossy().into_owned();
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&argv0));
    let exe = exe.to_string_lossy().into_owned();
    shlex::try_quote(&exe).map_or(exe.clone(), std::borrow::Cow::into_owned)
}

/// Reads the environment once.
pub fn load() -> anyhow::Result<assembler::cli::Env> {
    let default_store = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("assemble"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".local/share/assemble"),
    };
    let source_date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(v.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "SOURCE_DATE_EPOCH=`{v}` is not a number of seconds; unset it or fix it"
            )
        })?),
        _ => None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let registry_creds = match (
        std::env::var("ASSEMBLE_REGISTRY_USER"),
        std::env::var("ASSEMBLE_REGISTRY_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) if !u.is_empty() => Some((u, p)),
        _ => None,
    };
    let no_overlay = std::env::var_os("ASSEMBLE_NO_OVERLAY").is_some_and(|v| !v.is_empty());
    Ok(assembler::cli::Env {
        default_store,
        source_date,
        now,
        registry_creds,
        var: Some(|name| std::env::var(name).ok()),
        no_overlay,
    })
}

/// `NO_COLOR` (any non-empty value) turns colour off; without it, log lines are coloured
/// only when stderr is a terminal, so job logs and files get plain text.
pub fn use_colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
