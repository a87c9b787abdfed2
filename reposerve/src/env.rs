//! Every environment variable `reposerve` reads, in one place.

/// `REPOSERVE_LOG`: a tracing filter (`info`, `reposerve=debug,tower_http=debug`, …)
/// overriding `-v`.
pub const LOG: &str = "REPOSERVE_LOG";

/// `REPOSERVE_LOG_FORMAT`: `json` for one JSON object per line, anything else for text.
pub const LOG_FORMAT: &str = "REPOSERVE_LOG_FORMAT";
