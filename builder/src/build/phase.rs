//! Running a recipe's shell functions, in a bubblewrap sandbox by default (network off
//! unless `options="net"`, the file system read-only except the work directory, uid 0 in a
//! user namespace) or directly with `--no-sandbox`, as abuild does.

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Reporter;
use crate::apkbuild::script::Context;

/// How many lines of a failed phase's output the error shows.
const TAIL: usize = 25;

/// A phase that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhaseError {
    /// The function exited non-zero.
    #[error("{recipe}: {phase}() failed ({status}); last lines of its output:\n{tail}")]
    Failed {
        /// The APKBUILD.
        recipe: String,
        /// Which phase.
        phase: String,
        /// Exit status.
        status: String,
        /// The last lines of output.
        tail: String,
    },
    /// The sandbox cannot work here.
    #[error(
        "the build sandbox (bubblewrap) cannot run here: {reason}\n\
         To proceed: install bubblewrap (`apt-get install bubblewrap` / `apk add bubblewrap`) \
         and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, \
         user.max_user_namespaces > 0; on a GitLab Docker runner a privileged runner or a \
         seccomp profile that permits clone(CLONE_NEWUSER)), or pass --no-sandbox to run the \
         phases directly as abuild does"
    )]
    NoSandbox {
        /// What the preflight saw.
        reason: String,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How a phase's shell is started: the seam between the build and its isolation.
pub trait Sandbox {
    /// Checks that this sandbox can work here, saying what is missing if not.
    fn preflight(&self) -> Result<(), PhaseError>;
    /// A command running `script` under `/bin/sh` with the context's environment.
    fn command(&self, ctx: &Context, script: &str) -> Command;
}

/// bubblewrap: a user namespace with uid 0, the file system read-only except the work
/// directory, a private /tmp, and no network unless `net`.
#[derive(Clone, Debug)]
pub struct Bubblewrap {
    /// Allow network (options="net").
    pub net: bool,
    /// More writable directories besides the work directory.
    pub writable: Vec<PathBuf>,
}

/// No isolation: the phases run as the current user, as abuild does.
#[derive(Clone, Copy, Debug)]
pub struct Direct;

impl Sandbox for Direct {
    fn preflight(&self) -> Result<(), PhaseError> {
        Ok(())
    }

    fn command(&self, ctx: &Context, script: &str) -> Command {
        ctx.command(script)
    }
}

impl Sandbox for Bubblewrap {
    fn preflight(&self) -> Result<(), PhaseError> {
        preflight()
    }

    fn command(&self, ctx: &Context, script: &str) -> Command {
        let mut c = Command::new("bwrap");
        c.args(["--unshare-user", "--uid", "0", "--gid", "0"])
            .args([
                "--unshare-ipc",
                "--unshare-pid",
                "--unshare-uts",
                "--die-with-parent",
            ]);
        if !self.net {
            c.arg("--unshare-net");
        }
        c.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args(["--tmpfs", "/tmp"]);
        // The recipe may live under /tmp, hidden by the tmpfs: show it again, read-only.
        c.arg("--ro-bind").arg(&ctx.startdir).arg(&ctx.startdir);
        for w in std::iter::once(&ctx.work).chain(&self.writable) {
            c.arg("--bind").arg(w).arg(w);
        }
        c.arg("--chdir").arg(&ctx.startdir);
        c.arg("--clearenv");
        for (k, v) in ctx.env() {
            c.arg("--setenv").arg(k).arg(v);
        }
        c.args(["/bin/sh", "-c", script, "apkbuild"]);
        c
    }
}

/// Runs phases for one build.
pub struct Runner<'a> {
    /// Where the phases run.
    pub sandbox: &'a dyn Sandbox,
}

/// Checks that bubblewrap can create a user namespace with uid 0 and no network.
pub fn preflight() -> Result<(), PhaseError> {
    let out = Command::new("bwrap")
        .args([
            "--unshare-user",
            "--uid",
            "0",
            "--gid",
            "0",
            "--unshare-net",
        ])
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "true",
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PhaseError::NoSandbox {
            reason: "`bwrap` is not installed (not found in PATH)".into(),
        }),
        Err(e) => Err(PhaseError::NoSandbox {
            reason: format!("failed to start bwrap: {e}"),
        }),
        Ok(o) if !o.status.success() => Err(PhaseError::NoSandbox {
            reason: format!(
                "bwrap could not create a user namespace: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        }),
        Ok(_) => Ok(()),
    }
}

impl Runner<'_> {
    /// Runs `body` (shell code after the APKBUILD is sourced) as phase `phase`.
    pub fn run(
        &self,
        ctx: &Context,
        apkbuild: &Path,
        phase: &str,
        body: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), PhaseError> {
        let script = ctx.script(apkbuild, &format!("exec 2>&1\nset -e\n{body}"));
        let mut cmd = self.sandbox.command(ctx, &script);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take();
        // bwrap's own errors go to stderr; the script's output (2>&1) to stdout.
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = stderr {
                let _ = std::io::Read::read_to_string(&mut e, &mut s);
            }
            s
        });
        let mut tail = VecDeque::with_capacity(TAIL);
        if let Some(out) = child.stdout.take() {
            for line in std::io::BufReader::new(out).lines() {
                let line = line.unwrap_or_else(|e| format!("<unreadable output: {e}>"));
                reporter.output(phase, &line);
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        let status = child.wait()?;
        let err = err_thread.join().unwrap_or_default();
        for line in err.lines() {
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
        }
        if status.success() {
            return Ok(());
        }
        Err(PhaseError::Failed {
            recipe: apkbuild.display().to_string(),
            phase: phase.to_string(),
            status: status.to_string(),
            tail: tail
                .into_iter()
                .map(|l| format!("  | {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }
}
