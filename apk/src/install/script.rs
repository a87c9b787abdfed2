//! Install scripts and triggers (apk-format.md §1.9, §4.2, §4.3).
//!
//! The installer decides *which* script runs *when* and with which arguments, exactly as
//! apk 2.14 does; a [`ScriptRunner`] decides *how* (the image engine runs them in a
//! bubblewrap sandbox chrooted into the target). A failing script marks the package with
//! apk's `f:s` flag and is reported, never fatal, as in apk.

use std::fmt;
use std::path::Path;

/// The scripts apk knows, in the words of their control entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptKind {
    /// `.pre-install`: before a first install; argument: the new version.
    PreInstall,
    /// `.post-install`: after a first install; argument: the new version.
    PostInstall,
    /// `.pre-upgrade`: before replacing a version; arguments: new, old version.
    PreUpgrade,
    /// `.post-upgrade`: after replacing a version; arguments: new, old version.
    PostUpgrade,
    /// `.pre-deinstall`: before removal; argument: the old version.
    PreDeinstall,
    /// `.post-deinstall`: after removal; argument: the old version.
    PostDeinstall,
    /// `.trigger`: after a transaction changed a directory matching the package's globs;
    /// arguments: the changed directories.
    Trigger,
}

impl ScriptKind {
    /// Every kind, in control-member order.
    pub const ALL: [ScriptKind; 7] = [
        Self::PreInstall,
        Self::PostInstall,
        Self::PreUpgrade,
        Self::PostUpgrade,
        Self::PreDeinstall,
        Self::PostDeinstall,
        Self::Trigger,
    ];

    /// The name without the leading dot (`post-install`), as in `scripts.tar`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreInstall => "pre-install",
            Self::PostInstall => "post-install",
            Self::PreUpgrade => "pre-upgrade",
            Self::PostUpgrade => "post-upgrade",
            Self::PreDeinstall => "pre-deinstall",
            Self::PostDeinstall => "post-deinstall",
            Self::Trigger => "trigger",
        }
    }

    /// Parses `post-install` or `.post-install`.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_prefix('.').unwrap_or(name);
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ScriptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One script to run inside the target root.
#[derive(Debug, Clone, Copy)]
pub struct ScriptJob<'a> {
    /// The target root on the host.
    pub root: &'a Path,
    /// Package name.
    pub name: &'a str,
    /// Package version (the one the script belongs to).
    pub version: &'a str,
    /// Which script.
    pub kind: ScriptKind,
    /// Its content (starts with `#!`); apk writes it to `lib/apk/exec/<P>-<V>.<kind>` in the
    /// root, runs it chrooted there with `argv[0]` = that path, then deletes it.
    pub script: &'a [u8],
    /// Arguments after `argv[0]` (versions, or changed directories for triggers).
    pub args: &'a [String],
}

impl ScriptJob<'_> {
    /// The name apk gives the script under `lib/apk/exec/`.
    pub fn exec_name(&self) -> String {
        format!("{}-{}.{}", self.name, self.version, self.kind)
    }
}

/// What became of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// It ran and exited 0.
    Succeeded,
    /// It ran and failed (exit status or signal, as text); the package gets `f:s`.
    Failed(String),
    /// It was not run (no runner, no shell in the image…), with the reason.
    NotRun(String),
}

impl fmt::Display for ScriptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded => f.write_str("ok"),
            Self::Failed(why) => write!(f, "failed: {why}"),
            Self::NotRun(why) => write!(f, "not run: {why}"),
        }
    }
}

/// Runs scripts in the target root.
pub trait ScriptRunner {
    /// Runs one script; never panics on script failure, reports it.
    fn run(&self, job: &ScriptJob<'_>) -> ScriptOutcome;
}

/// Runs nothing and records every script as not run (what apko does).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoScripts;

impl ScriptRunner for NoScripts {
    fn run(&self, _job: &ScriptJob<'_>) -> ScriptOutcome {
        ScriptOutcome::NotRun("scripts disabled".into())
    }
}
