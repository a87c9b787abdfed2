//! RUN in the sandbox: the command line, environment and user of the step, run in the
//! build root with `apk` available (the shim, see `crate::apkshim`, where the image has no
//! apk of its own), its output shown and kept as the snapshot's log.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use anyhow::Context as _;

use super::mounts::StepMounts;
use super::secret::MaskedOutput;
use super::step::Step;
use super::stubs::Stubs;
use super::{BuildError, Engine, StageState, stage::command_argv};
use crate::apkcmd::{self, Host, Invocation, Out};
use crate::apkshim::{self, Request};
use crate::containerfile::{CommandForm, Instruction, RunScript};
use crate::layer;
use crate::packages::IndexMemo;
use crate::sandbox::{Pump, RunSpec, SandboxError};

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
            network: match x.flag("network") {
                Some("none") => false,
                Some("host") => true,
                _ => self.opts.network,
            },
            interactive: false,
            ..RunSpec::default()
        }
    }

    /// Runs `spec` with `mounts` in the sandbox and keeps the result, failed or not.
    /// `shell`: the spec runs the step through SHELL (shell form, heredoc), which says what
    /// a missing program means.
    pub(super) fn run_step(
        &self,
        st: &mut StageState,
        spec: &RunSpec,
        mounts: &StepMounts,
        shell: bool,
        indexes: &IndexMemo,
        step: Step,
    ) -> Result<(), BuildError> {
        let rootfs = st.rootfs();
        let image_ids = self.image_owners(st, &spec.user)?;
        let mut log = Vec::new();
        let host = Host {
            reporter: None,
            ..self.apk_host(&rootfs, spec.network, image_ids, indexes)
        };
        let prepared = mounts.prepare(self, st, spec)?;
        let spec = &prepared.spec(spec);
        let stubs = Stubs::make(&rootfs, &spec.mounts)?;
        let served = Served {
            host: &host,
            mounts,
            secrets: &prepared.secrets,
        };
        let ran = self.run_sandboxed(st, &served, spec, &mut log);
        let mut touched = stubs.remove(&rootfs);
        drop(prepared);
        let ran = ran.map_err(|e| self.cannot_start(e, spec, shell, &step.text))?;
        touched.extend(ran.touched.clone());
        for dir in &touched {
            layer::accept_ctime(&mut st.manifest, &rootfs, dir)
                .context("failed to scan the build root")?;
        }
        for sub in served_roots(&ran.requests) {
            crate::packages::record_package_owners(&rootfs, &sub, &mut st.owners)
                .map_err(anyhow::Error::from)?;
        }
        let status = ran.status;
        let failure = (!status.success()).then(|| failure(&rootfs, spec, status, image_ids, &log));
        let snap = self.snapshot(st, &step.text, &log, image_ids)?;
        if image_ids {
            self.chown_back(st)?;
        }
        self.finish_step(st, snap, failure, step)
    }

    /// Runs `spec` in the step's root with apk served per `served`, showing its output
    /// (secrets masked) and keeping it in `log`.
    fn run_sandboxed(
        &self,
        st: &StageState,
        served: &Served<'_>,
        spec: &RunSpec,
        log: &mut Vec<u8>,
    ) -> Result<Ran, SandboxError> {
        let host = served.host;
        let mut masked = MaskedOutput::new(self.reporter, log, served.secrets);
        let mut output = |b: &[u8]| masked.feed(b);
        let spawn = |source| SandboxError::Spawn {
            program: "the apk shim".into(),
            source,
        };
        let Some(service) =
            apkshim::Service::start(&st.root.path().join("apk-shim")).map_err(spawn)?
        else {
            let status = self.sandbox.run(host.rootfs, spec, &mut output)?;
            return Ok(Ran {
                status,
                touched: None,
                requests: Vec::new(),
            });
        };
        let mut requests = Vec::new();
        let mut handle = |conn: UnixStream, pump: &mut Pump<'_>| {
            apkshim::serve(conn, pump, &mut |req, conn| {
                requests.push(req.clone());
                let (stdout, stderr) = (|b: &[u8]| conn.stdout(b), |b: &[u8]| conn.stderr(b));
                if let Some(why) = served.mounts.hides_from_apk(&req.args, &req.cwd) {
                    stderr(format!("ERROR: {why}\n").as_bytes());
                    return 1;
                }
                let out = Out {
                    stdout: &stdout,
                    stderr: &stderr,
                };
                let inv = Invocation {
                    args: &req.args,
                    cwd: &req.cwd,
                    uid: req.uid,
                };
                apkcmd::run(host, inv, &out)
            });
        };
        let mut helper = service.helper(&mut handle);
        let status = self
            .sandbox
            .run_serving(host.rootfs, spec, &mut output, &mut helper)?;
        let touched = helper.touched.take();
        drop(helper);
        Ok(Ran {
            status,
            touched,
            requests,
        })
    }

    /// The sandbox error of a step that could not run, with what to do about it.
    fn cannot_start(&self, e: SandboxError, spec: &RunSpec, shell: bool, text: &str) -> BuildError {
        let step = self.step;
        let program = spec.argv.first().cloned().unwrap_or_default();
        let why = match &e {
            SandboxError::NoProgram { reason, .. } if shell => format!(
                "the image has no {program} to run the shell form ({reason}); install a shell \
                 in an earlier step (e.g. `RUN apk add busybox`, or COPY a static busybox to \
                 /bin/busybox and link /bin/sh to it), set SHELL to one the image has, or write \
                 the command in exec form (`RUN [\"/usr/bin/program\", \"argument\"]`)"
            ),
            SandboxError::NoProgram { reason, .. } => format!(
                "{reason}; install the package that provides it in an earlier step, or name \
                 the program by its full path in the image"
            ),
            SandboxError::CannotExec { .. } => format!(
                "{e}; a script whose #! interpreter the image lacks, or a program built for \
                 another machine or C library, cannot run there"
            ),
            _ => {
                return anyhow::Error::from(e)
                    .context(format!(
                        "step {step} `{text}` runs in the bubblewrap sandbox (every RUN but one \
                         made only of apk commands does)"
                    ))
                    .into();
            }
        };
        anyhow::anyhow!("step {step} `{text}` cannot start: {why}").into()
    }
}

/// How apk is served to a sandboxed RUN, and what its output must not show.
struct Served<'a> {
    host: &'a Host<'a>,
    mounts: &'a StepMounts,
    secrets: &'a [Vec<u8>],
}

/// What a sandboxed RUN left to take care of.
struct Ran {
    status: ExitStatus,
    /// The directory whose ctime only the apk mountpoint changed.
    touched: Option<PathBuf>,
    /// The apk commands the shim forwarded.
    requests: Vec<Request>,
}

/// The roots the forwarded apk commands installed into, relative to the image root (empty
/// for the image itself, else their `--root`).
fn served_roots(requests: &[Request]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for req in requests {
        let Ok(args) = apkcmd::parse(&req.args) else {
            continue;
        };
        let root = match args.value("root") {
            Some(r) if r.starts_with('/') => r.to_owned(),
            Some(r) => format!("{}/{r}", req.cwd),
            None => String::new(),
        };
        let sub = PathBuf::from(root.trim_start_matches('/'));
        if !roots.contains(&sub) {
            roots.push(sub);
        }
    }
    roots
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
