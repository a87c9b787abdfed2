//! Progress of an installation, for the program to show (style rule 9: libraries never
//! print).

/// Something worth telling the user while installing.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An index is being fetched (or read from the cache).
    FetchIndex {
        /// The index URL.
        url: &'a str,
        /// Read from the cache, not fetched.
        cached: bool,
    },
    /// A package is being fetched.
    FetchPackage {
        /// Package name.
        name: &'a str,
        /// Package version.
        version: &'a str,
        /// Its size per the index (`S:`).
        size: u64,
    },
    /// Step `index` of `total` starts: installing, upgrading or removing a package.
    Step {
        /// 1-based step number.
        index: usize,
        /// Number of steps.
        total: usize,
        /// `Installing`, `Upgrading`, `Downgrading`, `Purging`, `Replacing` (apk's words).
        action: &'a str,
        /// Package name.
        name: &'a str,
        /// The version being installed (or removed).
        version: &'a str,
        /// The version being replaced, for upgrades, downgrades and replacements.
        old_version: Option<&'a str>,
    },
    /// A script finished (or was not run).
    Script {
        /// `name-version`.
        package: &'a str,
        /// `post-install`, `trigger`, …
        kind: &'a str,
        /// What happened.
        outcome: &'a super::ScriptOutcome,
    },
    /// A non-fatal problem, in apk's words.
    Warning(&'a str),
    /// The world and the database were written: the transaction is over (also after a
    /// package failed, see [`super::InstallError`]).
    Committed,
}

/// Receives [`Event`]s. Implemented by programs (a progress bar on a TTY, lines otherwise).
pub trait Reporter {
    /// Called for every event, in order.
    fn event(&self, event: Event<'_>);
}

/// A reporter that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn event(&self, _event: Event<'_>) {}
}
