//! Running a recipe's shell functions, in a bubblewrap sandbox by default (network off
//! unless `options="net"`, the file system read-only except the work directory, uid 0 in a
//! user namespace), directly with `--no-sandbox` as abuild does, or in a build root of
//! its own (`--rootbld`, abuild's `rootbld`): the root's files only, its own `/bin/sh`.
//! When apkbuild runs as root, the phases run as root see the ids 0–65535 as themselves
//! ([`super::idmap`]), so they can chown to the recipe's accounts.

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::idmap::IdMap;
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
    /// The ids of a root phase's namespace could not be written.
    #[error(
        "could not map the ids 0-65535 in the build sandbox: {reason}; check that /proc is \
         mounted read-write and user namespaces are enabled (user.max_user_namespaces > 0)"
    )]
    IdMap {
        /// What failed.
        reason: String,
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
    /// A command running `script` under the context's shell with its environment; in a
    /// namespace whose ids `ids` maps when given.
    fn command(&self, ctx: &Context, script: &str, ids: Option<&IdMap>) -> Command;
    /// Whether phases run as root get the ids 0–65535 mapped ([`super::idmap`]).
    fn maps_ids(&self) -> bool {
        false
    }
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
    /// A directory holding the `passwd` and `group` the phases see instead of the
    /// host's (the recipe's accounts added, [`super::accounts`]).
    pub accounts: Option<PathBuf>,
    /// Map the ids 0–65535 for the phases run as root ([`super::idmap::available`]).
    pub map_ids: bool,
}

/// No isolation: the phases run as the current user, as abuild does.
#[derive(Clone, Copy, Debug)]
pub struct Direct;

impl Sandbox for Direct {
    fn preflight(&self) -> Result<(), PhaseError> {
        Ok(())
    }

    fn command(&self, ctx: &Context, script: &str, _ids: Option<&IdMap>) -> Command {
        ctx.command(script)
    }
}

impl Sandbox for Bubblewrap {
    fn preflight(&self) -> Result<(), PhaseError> {
        preflight()
    }

    fn command(&self, ctx: &Context, script: &str, ids: Option<&IdMap>) -> Command {
        let mut c = Command::new("bwrap");
        namespaces(&mut c, ctx, self.net, ids);
        c.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args(["--tmpfs", "/tmp"]);
        if let Some(dir) = &self.accounts {
            for file in ["passwd", "group"] {
                c.arg("--ro-bind")
                    .arg(dir.join(file))
                    .arg(Path::new("/etc").join(file));
            }
        }
        // The recipe may live under /tmp, hidden by the tmpfs: show it again, read-only.
        c.arg("--ro-bind").arg(&ctx.startdir).arg(&ctx.startdir);
        for w in std::iter::once(&ctx.work).chain(&self.writable) {
            c.arg("--bind").arg(w).arg(w);
        }
        finish(&mut c, ctx, script);
        c
    }

    fn maps_ids(&self) -> bool {
        self.map_ids
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
    /// Map the ids 0–65535 for the phases run as root ([`super::idmap::available`]).
    pub map_ids: bool,
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

    fn command(&self, ctx: &Context, script: &str, ids: Option<&IdMap>) -> Command {
        let mut c = Command::new("bwrap");
        namespaces(&mut c, ctx, self.net, ids);
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

    fn maps_ids(&self) -> bool {
        self.map_ids
    }
}

/// The namespaces of a phase: a user namespace where it runs as root (uid 0, with the
/// ids `ids` maps if any) or as the build user (uid 1000), its own IPC, PID and UTS, and
/// no network unless `net`.
fn namespaces(c: &mut Command, ctx: &Context, net: bool, ids: Option<&IdMap>) {
    match ids {
        Some(ids) => ids.args(c),
        None => {
            let id = if ctx.as_root { "0" } else { "1000" };
            c.args(["--unshare-user", "--uid", id, "--gid", id]);
        }
    }
    c.args(["--unshare-ipc", "--unshare-pid", "--unshare-uts"])
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
        let ids = (ctx.as_root && self.sandbox.maps_ids())
            .then(IdMap::new)
            .transpose()?;
        let mut cmd = self.sandbox.command(ctx, &script, ids.as_ref());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        if let Some(ids) = ids {
            ids.map(&mut child)
                .map_err(|reason| PhaseError::IdMap { reason })?;
        }
        let (status, tail) = run_showing(child, phase, reporter)?;
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
        let hint = owner_hint(&tail);
        let tail = quote(tail) + hint.unwrap_or_default();
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

/// Said after a phase's output that shows a refused `chown`: in a namespace of one id
/// (apkbuild not root), files can belong to root alone.
pub const ROOTLESS_CHOWN_HINT: &str = "\n  (a chown or `install -o` to another owner needs the ids of \
     pkgusers/pkggroups mapped in the build sandbox, which apkbuild does only when it runs as \
     root (\"Invalid argument\": one id is mapped); run apkbuild as root, as CI jobs do, to \
     build recipes whose package() sets owners)";

/// Said after a phase's output that names an account the phase does not know.
pub const UNKNOWN_OWNER_HINT: &str = "\n  (declare the owner in pkgusers=/pkggroups=: the build \
     sandbox adds them to the passwd and group its phases see; with --no-sandbox they must \
     exist on this machine, whose files apkbuild never changes)";

/// What a failed phase's output says about owners, if anything.
fn owner_hint(tail: &VecDeque<String>) -> Option<&'static str> {
    let refused = |l: &String| {
        // coreutils install: "cannot change owner and permissions of"; chown:
        // "changing ownership of"; busybox: "can't chown".
        (l.contains("owner") || l.contains("chown")) && l.contains("Invalid argument")
    };
    // coreutils: "invalid user 'mix'", "invalid group"; busybox: "unknown user mix".
    let unknown = |l: &String| {
        [
            "invalid user",
            "invalid group",
            "unknown user",
            "unknown group",
        ]
        .iter()
        .any(|w| l.contains(w))
    };
    if tail.iter().any(refused) {
        Some(ROOTLESS_CHOWN_HINT)
    } else if tail.iter().any(unknown) {
        Some(UNKNOWN_OWNER_HINT)
    } else {
        None
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    fn failed(lines: &[&str]) -> String {
        let runner = Runner { sandbox: &Direct };
        let tail = lines.iter().map(ToString::to_string).collect();
        let status = std::process::ExitStatus::from_raw(1 << 8);
        runner
            .failure(Path::new("APKBUILD"), "package", status, tail)
            .to_string()
    }

    #[test]
    fn a_refused_chown_says_to_run_apkbuild_as_root() {
        // busybox install -o and coreutils chown, in a namespace of one id.
        for line in [
            "install: can't change ownership of '/w/pkg/mix/var/lib/mix': Invalid argument",
            "chown: changing ownership of '/w/pkg/mix/x': Invalid argument",
            "install: cannot change owner and permissions of '/w/x': Invalid argument",
        ] {
            let msg = failed(&[line]);
            assert!(msg.contains("run apkbuild as root"), "{msg}");
            assert!(msg.contains("package() failed"), "{msg}");
        }
    }

    #[test]
    fn an_unknown_owner_says_to_declare_it() {
        let msg = failed(&["install: invalid user 'mix'"]);
        assert!(msg.contains("declare the owner in pkgusers="), "{msg}");
        assert!(!failed(&["make: error"]).contains("pkgusers"));
    }
}
