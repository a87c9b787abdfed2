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
    /// The changes about to be made, removals first (apk lists them with `-v`).
    Plan(&'a [PlannedChange]),
    /// `apk del NAME` took `name` out of the world, but the package stays: the world names
    /// in `required_by` still need it.
    Kept {
        /// The name asked to be removed.
        name: &'a str,
        /// The world's names that keep it, sorted.
        required_by: &'a [String],
    },
    /// The world and the database were written: the transaction is over (also after a
    /// package failed, see [`super::InstallError`]).
    Committed,
}

/// One change of a transaction, as apk's `apk_change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// The package name.
    pub name: String,
    /// The installed version and its installed size, when one is removed or replaced.
    pub old: Option<(String, u64)>,
    /// The version coming in and its installed size.
    pub new: Option<(String, u64)>,
    /// Bytes to download for it (0 from local repositories).
    pub download: u64,
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
