//! Every environment variable `reposerve` reads, in one place.

/// `REPOSERVE_LOG`: a tracing filter (`info`, `reposerve=debug,tower_http=debug`, …)
/// overriding `-v`.
pub const LOG: &str = "REPOSERVE_LOG";

/// `REPOSERVE_LOG_FORMAT`: `json` for one JSON object per line, anything else for text.
pub const LOG_FORMAT: &str = "REPOSERVE_LOG_FORMAT";

/// `NO_COLOR` (any non-empty value) turns colour off; without it, log lines are coloured
/// only when stderr is a terminal, so job logs and files get plain text.
pub fn use_colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
