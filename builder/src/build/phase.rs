//! Running a recipe's shell functions, in a bubblewrap sandbox by default (network off
//! unless `options="net"`, the file system read-only except the work directory, uid 0 in a
//! user namespace), directly with `--no-sandbox` as abuild does, or in a build root of
//! its own (`--rootbld`, abuild's `rootbld`): the root's files only, its own `/bin/sh`.

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
    /// A command the recipe runs is not there.
    #[error(
        "{recipe}: {phase}() failed: `{tool}` is not installed {place}: add the package \
         providing it to makedepends (or checkdepends for check()); last lines of its output:\n{tail}"
    )]
    MissingTool {
        /// The APKBUILD.
        recipe: String,
        /// Which phase.
        phase: String,
        /// The command.
        tool: String,
        /// "in the build root" or "on this machine".
        place: &'static str,
        /// The last lines of output.
        tail: String,
    },
    /// The build root lacks its shell.
    #[error("the build root {} has no /bin/sh: use a --build-base with busybox (an Alpine minirootfs) or install alpine-base", root.display())]
    NoRootShell {
        /// The root.
        root: PathBuf,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How a phase's shell is started: the seam between the build and its isolation.
pub trait Sandbox {
    /// Checks that this sandbox can work here, saying what is missing if not.
    fn preflight(&self) -> Result<(), PhaseError>;
    /// A command running `script` under the context's shell with its environment.
    fn command(&self, ctx: &Context, script: &str) -> Command;
    /// Where a missing command is missing from, for messages.
    fn place(&self) -> &'static str {
        "on this machine"
    }
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
        namespaces(&mut c, ctx, self.net);
        c.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args(["--tmpfs", "/tmp"]);
        // The recipe may live under /tmp, hidden by the tmpfs: show it again, read-only.
        c.arg("--ro-bind").arg(&ctx.startdir).arg(&ctx.startdir);
        for w in std::iter::once(&ctx.work).chain(&self.writable) {
            c.arg("--bind").arg(w).arg(w);
        }
        finish(&mut c, ctx, script);
        c
    }
}

/// A build root of its own: the root (a copy of the build base plus the build
/// dependencies) read-only as `/` with its `/tmp` and `/var/tmp` writable, the recipe
/// directory read-only and the work directories writable at the context's paths, uid 0
/// in a user namespace, no network unless `net`. Nothing else of the host is visible.
#[derive(Clone, Debug)]
pub struct RootBwrap {
    /// The root on the host.
    pub root: PathBuf,
    /// Allow network (options="net").
    pub net: bool,
    /// (host path, path inside, writable) of the recipe and work directories.
    pub binds: Vec<(PathBuf, PathBuf, bool)>,
}

impl Sandbox for RootBwrap {
    fn preflight(&self) -> Result<(), PhaseError> {
        preflight()?;
        if self.root.join("bin/sh").symlink_metadata().is_err() {
            return Err(PhaseError::NoRootShell {
                root: self.root.clone(),
            });
        }
        Ok(())
    }

    fn command(&self, ctx: &Context, script: &str) -> Command {
        let mut c = Command::new("bwrap");
        namespaces(&mut c, ctx, self.net);
        c.args(["--new-session", "--hostname", "apkbuild"]);
        c.arg("--ro-bind").arg(&self.root).arg("/");
        for dir in ["tmp", "var/tmp"] {
            c.arg("--bind")
                .arg(self.root.join(dir))
                .arg(Path::new("/").join(dir));
        }
        c.args(["--dev", "/dev", "--proc", "/proc"]);
        for (host, inside, writable) in &self.binds {
            c.arg(if *writable { "--bind" } else { "--ro-bind" })
                .arg(host)
                .arg(inside);
        }
        finish(&mut c, ctx, script);
        c
    }

    fn place(&self) -> &'static str {
        "in the build root"
    }
}

/// The namespaces of a phase: a user namespace where it runs as root (uid 0) or as the
/// build user (uid 1000), its own IPC, PID and UTS, and no network unless `net`.
fn namespaces(c: &mut Command, ctx: &Context, net: bool) {
    let id = if ctx.as_root { "0" } else { "1000" };
    c.args(["--unshare-user", "--uid", id, "--gid", id])
        .args(["--unshare-ipc", "--unshare-pid", "--unshare-uts"])
        .arg("--die-with-parent");
    if !net {
        c.arg("--unshare-net");
    }
}

/// The common tail of a bwrap command line: the working directory, the clean
/// environment, the shell and the script.
fn finish(c: &mut Command, ctx: &Context, script: &str) {
    c.arg("--chdir").arg(&ctx.startdir);
    c.arg("--clearenv");
    for (k, v) in ctx.env() {
        c.arg("--setenv").arg(k).arg(v);
    }
    c.args(ctx.shell.argv()).args(["-c", script, "apkbuild"]);
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
        let script = ctx.script(&format!("exec 2>&1\nset -e\n{body}"));
        let mut cmd = self.sandbox.command(ctx, &script);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (status, tail) = run_showing(cmd.spawn()?, phase, reporter)?;
        if status.success() {
            return Ok(());
        }
        Err(self.failure(apkbuild, phase, status, tail))
    }

    /// What a failed phase says: the command it missed, or its status; its last lines.
    fn failure(
        &self,
        apkbuild: &Path,
        phase: &str,
        status: std::process::ExitStatus,
        tail: VecDeque<String>,
    ) -> PhaseError {
        let tool = (status.code() == Some(127))
            .then(|| tail.iter().rev().find_map(|l| missing_command(l)))
            .flatten();
        let chown_refused = tail.iter().any(|l| {
            (l.contains("ownership") || l.contains("chown")) && l.contains("Invalid argument")
        });
        let mut tail = quote(tail);
        if chown_refused {
            // abuild runs package() under fakeroot, which records any owner; a user
            // namespace maps root alone.
            tail.push_str(
                "\n  (apkbuild has no fakeroot: in the sandbox files can belong to root only, \
                 so chown to pkgusers/pkggroups fails; set the owner in an install script)",
            );
        }
        let (recipe, phase) = (apkbuild.display().to_string(), phase.to_string());
        match tool {
            Some(tool) => PhaseError::MissingTool {
                recipe,
                phase,
                tool,
                place: self.sandbox.place(),
                tail,
            },
            None => PhaseError::Failed {
                recipe,
                phase,
                status: status.to_string(),
                tail,
            },
        }
    }
}

/// Waits for a phase, passing its output lines to `reporter`; returns its status and
/// last lines (bwrap's own errors, from stderr, after the script's, from stdout).
fn run_showing(
    mut child: std::process::Child,
    phase: &str,
    reporter: &dyn Reporter,
) -> Result<(std::process::ExitStatus, VecDeque<String>), PhaseError> {
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let mut tail = VecDeque::with_capacity(TAIL);
    let mut keep = |line: String| {
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap_or_else(|e| format!("<unreadable output: {e}>"));
            reporter.output(phase, &line);
            keep(line);
        }
    }
    let status = child.wait()?;
    for line in err_thread.join().unwrap_or_default().lines() {
        keep(line.to_string());
    }
    Ok((status, tail))
}

/// The command ash says it could not find: `apkbuild: line 3: gcc: not found`.
fn missing_command(line: &str) -> Option<String> {
    let rest = line.strip_suffix(": not found")?;
    let tool = rest.rsplit(": ").next()?;
    (!tool.is_empty() && !tool.contains(' ')).then(|| tool.to_string())
}

/// Output lines as an indented block.
fn quote(lines: VecDeque<String>) -> String {
    lines
        .into_iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
