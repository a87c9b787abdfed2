//! The exact-line fast path: a RUN that is only apk commands (`apk add …`, `apk update &&
//! apk add …`, `apk del …`) is carried out by [`crate::apkcmd`] here, with no sandbox and
//! no shell in the image, one command after the other as `&&` would. The same code serves
//! apk in any other RUN through the shim (see `run.rs`), so this is an optimisation with
//! the same result. What an `apk add` would install is part of the step's cache key.

use std::path::Path;

use super::step::Step;
use super::{BuildError, Engine, StageState};
use crate::apkcmd::{self, Host, Invocation, Out};
use crate::containerfile::ApkCommand;
use crate::packages::IndexMemo;

impl Engine<'_> {
    /// What a step lends the apk commands it runs (the fast path's and the shim's).
    pub(super) fn apk_host<'h>(
        &'h self,
        rootfs: &'h Path,
        network: bool,
        chown: bool,
        indexes: &'h IndexMemo,
    ) -> Host<'h> {
        Host {
            rootfs,
            sandbox: self.sandbox,
            network,
            indexes,
            source_date: self.opts.source_date.unwrap_or(self.opts.now),
            chown,
            reporter: Some(self.reporter),
        }
    }

    /// Runs `cmd`'s commands natively and keeps the result, failed or not.
    pub(super) fn apk_step(
        &self,
        st: &mut StageState,
        cmd: &ApkCommand,
        network: bool,
        indexes: &IndexMemo,
        step: Step,
    ) -> Result<(), BuildError> {
        let rootfs = st.rootfs();
        // With the image's ids mapped, install scripts see the image's owners and the
        // installer sets the packages' owners on disk, as in a sandboxed RUN.
        let image_ids = self.image_owners(st, "")?;
        self.reporter
            .line("--> Carried out by the native installer (no shell needed)");
        let host = self.apk_host(&rootfs, network, image_ids, indexes);
        let mut log = Vec::new();
        let failure = self.run_apk(&host, st, cmd, &mut log);
        crate::packages::record_package_owners(&rootfs, Path::new(""), &mut st.owners)
            .map_err(anyhow::Error::from)?;
        let snap = self.snapshot(st, &step.text, &log, image_ids)?;
        if image_ids {
            self.chown_back(st)?;
        }
        self.finish_step(st, snap, failure, step)
    }

    /// Each command in turn, output shown and kept in `log`; `Some(status)` for the first
    /// that fails.
    fn run_apk(
        &self,
        host: &Host<'_>,
        st: &StageState,
        cmd: &ApkCommand,
        log: &mut Vec<u8>,
    ) -> Option<String> {
        let buf = std::cell::RefCell::new(std::mem::take(log));
        let reporter = self.reporter;
        let write = |b: &[u8]| {
            reporter.output(b);
            buf.borrow_mut().extend_from_slice(b);
        };
        let out = Out {
            stdout: &write,
            stderr: &write,
        };
        let uid =
            crate::sandbox::resolve_user(&st.rootfs(), &st.config.user).map_or(0, |(uid, _)| uid);
        let cwd = workdir(st);
        let failure = cmd.commands.iter().find_map(|args| {
            let inv = Invocation {
                args,
                cwd: &cwd,
                uid,
            };
            let code = apkcmd::run(host, inv, &out);
            (code != 0).then(|| format!("exit status: {code}"))
        });
        *log = buf.into_inner();
        failure
    }

    /// What the step's `apk add` would install from the current indexes, as cache key
    /// bytes; the reporter says what it found. A failure is keyed too (the step then runs
    /// and reports it for real).
    pub(super) fn apk_plan(
        &self,
        st: &StageState,
        cmd: &ApkCommand,
        indexes: &IndexMemo,
    ) -> Vec<u8> {
        let rootfs = st.rootfs();
        let host = self.apk_host(&rootfs, false, false, indexes);
        let cwd = workdir(st);
        let Some(add) = cmd.commands.iter().rev().find(|a| is_add(a)) else {
            return Vec::new();
        };
        let inv = Invocation {
            args: add,
            cwd: &cwd,
            uid: 0,
        };
        match apkcmd::plan_add(&host, inv) {
            Ok(planned) => {
                self.reporter.line(&format!(
                    "--> The repositories resolve this to: {}",
                    shown(&planned)
                ));
                planned_key(&planned)
            }
            Err(e) => {
                self.reporter
                    .line(&format!("--> Could not resolve ahead ({e}); the step runs"));
                format!("unresolved: {e}").into_bytes()
            }
        }
    }
}

fn is_add(args: &[String]) -> bool {
    apkcmd::parse(args).is_ok_and(|a| a.applet == apkcmd::Applet::Add)
}

/// The step's WORKDIR, where relative paths of its apk commands start.
fn workdir(st: &StageState) -> String {
    match st.config.working_dir.as_str() {
        "" => "/".to_owned(),
        w => w.to_owned(),
    }
}

/// The planned packages for a person: the first eight and how many in all.
fn shown(planned: &[(String, String, String)]) -> String {
    let names: Vec<String> = planned.iter().map(|(n, v, _)| format!("{n}-{v}")).collect();
    if names.len() > 8 {
        format!("{}, … ({} in all)", names[..8].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

/// The planned packages as cache key bytes.
fn planned_key(planned: &[(String, String, String)]) -> Vec<u8> {
    planned
        .iter()
        // A `--virtual` package (no checksum) is versioned by the build time: keyed by
        // name only, or every build without SOURCE_DATE_EPOCH misses.
        .map(|(n, v, c)| match c.is_empty() {
            true => format!("{n}\n"),
            false => format!("{n} {v} {c}\n"),
        })
        .collect::<String>()
        .into_bytes()
}
