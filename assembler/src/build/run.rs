//! RUN in the sandbox: the command line, environment and user of the step, run in the
//! build root, its output shown and kept as the snapshot's log.

use std::path::Path;
use std::process::ExitStatus;

use anyhow::Context as _;

use super::step::Step;
use super::{BuildError, Engine, StageState, stage::command_argv};
use crate::containerfile::{CommandForm, Instruction, RunScript};
use crate::sandbox::RunSpec;

impl Engine<'_> {
    /// What the sandbox runs for RUN `x` (`command`, or its heredoc or script).
    pub(super) fn run_spec(
        &self,
        st: &StageState,
        x: &Instruction,
        command: &CommandForm,
    ) -> RunSpec {
        let argv = match x.kind.run_script() {
            Some(RunScript::Body(h)) => {
                let mut a = st.config.shell();
                a.push(h.content.clone());
                a
            }
            Some(RunScript::Shell(s)) => {
                let mut a = st.config.shell();
                a.push(s);
                a
            }
            None => command_argv(command, &st.config),
        };
        RunSpec {
            argv,
            env: st
                .args
                .run_env()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            workdir: st.config.working_dir.clone(),
            user: st.config.user.clone(),
            network: self.opts.network || x.flag("network") == Some("host"),
            interactive: false,
        }
    }

    /// Runs `spec` in the sandbox and keeps the result, failed or not.
    pub(super) fn run_step(
        &self,
        st: &mut StageState,
        spec: &RunSpec,
        step: Step,
    ) -> Result<(), BuildError> {
        let rootfs = st.rootfs();
        let image_ids = self.image_owners(st, &spec.user)?;
        let mut log = Vec::new();
        let status = self.run_sandboxed(&rootfs, spec, &step.text, &mut log)?;
        let failure = (!status.success()).then(|| failure(&rootfs, spec, status, image_ids, &log));
        let snap = self.snapshot(st, &step.text, &log, image_ids)?;
        if image_ids {
            self.chown_back(st)?;
        }
        self.finish_step(st, snap, failure, step)
    }

    /// Runs `spec` in `rootfs`, showing its output and keeping it in `log`.
    fn run_sandboxed(
        &self,
        rootfs: &Path,
        spec: &RunSpec,
        text: &str,
        log: &mut Vec<u8>,
    ) -> anyhow::Result<ExitStatus> {
        let reporter = self.reporter;
        let status = self
            .sandbox
            .run(rootfs, spec, &mut |b| {
                reporter.output(b);
                log.extend_from_slice(b);
            })
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "step {} `{text}` runs in the bubblewrap sandbox (every RUN but a \
                     plain `apk add`/`apk del` does)",
                    self.step
                )
            })?;
        Ok(status)
    }
}

/// The failure of a RUN exiting with `status`; with a hint when a rootless `chown` was
/// refused.
fn failure(
    rootfs: &Path,
    spec: &RunSpec,
    status: ExitStatus,
    image_ids: bool,
    log: &[u8],
) -> String {
    let mut f = status.to_string();
    let as_root = crate::sandbox::resolve_user(rootfs, &spec.user).ok();
    if !image_ids && as_root == Some((0, 0)) && crate::sandbox::chown_refused(log) {
        f.push_str(crate::sandbox::ROOTLESS_CHOWN_HINT);
    }
    f
}
