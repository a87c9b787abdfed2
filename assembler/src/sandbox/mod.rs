//! Running commands inside an image root: the [`Sandbox`] seam and its bubblewrap backend.
//!
//! bubblewrap gives us the user namespace, a private mount namespace whose `/` is the image
//! root (nothing of the host is visible: no `--bind` of host paths besides the root itself
//! and what a step's `RUN --mount` asks for), fresh `/proc` and `/dev`, and
//! `--die-with-parent`.
//! The network is unshared unless the build asked for `--network host`.
//!
//! Which ids the user namespace maps: bubblewrap alone maps exactly one (the step's USER,
//! mapped to the caller), so `chown` to any other id fails with "Invalid argument". When
//! `assemble` runs as root and the command runs as root, we map the image's ids 0–65535 to
//! the same host ids instead: bubblewrap creates the namespace and waits on
//! `--userns-block-fd` while we write `uid_map`/`gid_map` (what its own docs show for
//! `newuidmap`). Root inside is still confined: its capabilities hold only in that
//! namespace. A step with a non-root USER gets the same mapping with bubblewrap itself
//! started as that uid and gid: the namespace's creator holds every capability in it while
//! bubblewrap sets it up (so it reaches the root through directories only root may enter,
//! once root is mapped), then drops them, and the command runs as that USER with Docker's
//! permission checks: root's files are root's, not its own (bubblewrap 0.8 cannot switch
//! uid itself in a namespace it did not map: `--userns` + `--uid` fails with "unable to
//! switch to gid"). Without root, one id is mapped: the step's USER, as the caller.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

mod helper;
mod mounts;
mod program;

pub use helper::{Helper, Pump};
pub(crate) use helper::{resolve_real, restore_times, times};
pub use mounts::{Data as MountData, Mount};
pub use program::{DEFAULT_PATH, missing as missing_program};

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// argv (already including the shell for the shell form).
    pub argv: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// Working directory inside the root (created if missing).
    pub workdir: String,
    /// USER: `uid[:gid]` numerically, or a name looked up in the root's `/etc/passwd`.
    pub user: String,
    /// Share the host network.
    pub network: bool,
    /// Attach the caller's terminal (for `assemble run -it`).
    pub interactive: bool,
    /// Filesystems mounted over the root (`RUN --mount`), in order; their mountpoints
    /// must exist in the root.
    pub mounts: Vec<Mount>,
    /// `(KEY, value)` given to the command through bubblewrap's environment rather than
    /// its command line, which any process on the host can read: secrets.
    pub hidden_env: Vec<(String, String)>,
}

/// Sandbox errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The tool is missing or user namespaces are off.
    #[error("the sandbox cannot run here: {reason}; {hint}")]
    Unavailable {
        /// What failed.
        reason: String,
        /// What to do.
        hint: &'static str,
    },
    /// The first check of the sandbox failed (the message says why and what to do).
    #[error("{message}")]
    NotReady {
        /// The check's error message.
        message: String,
    },
    /// Starting or waiting for the process failed.
    #[error("failed to run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Cause.
        source: io::Error,
    },
    /// USER names no account in the image.
    #[error("USER `{user}`: no such user in the image's /etc/passwd; use a numeric uid[:gid]")]
    UnknownUser {
        /// The name.
        user: String,
    },
    /// The command's program is not in the image (checked before starting it).
    #[error("{reason}")]
    NoProgram {
        /// The program, as the command names it.
        program: String,
        /// Why it cannot be started.
        reason: String,
    },
    /// The program is there but the kernel would not run it: bubblewrap's `execvp` failed
    /// (a script whose interpreter is missing, a binary for another machine, …).
    #[error("`{program}` cannot be executed in the image: {reason}")]
    CannotExec {
        /// The program.
        program: String,
        /// The system's reason, as bubblewrap reported it.
        reason: String,
    },
}

/// A place to run commands in an image root.
pub trait Sandbox {
    /// Checks that commands can run; explains what is missing otherwise.
    fn preflight(&self) -> Result<(), SandboxError>;
    /// Whether a command run as `user` sees the image's ids 0–65535 as themselves (so root's
    /// `chown` works, a non-root USER's access is checked against the image's owners, and
    /// what it writes is owned on disk by the ids it used); the build root must then hold
    /// the image's owners on disk. When false, the one id mapped is the caller's, and disk
    /// owners say nothing about image owners.
    fn maps_image_ids(&self, root: &Path, user: &str) -> bool {
        let _ = (root, user);
        false
    }
    /// Runs `spec` in `root`, passing each chunk of combined stdout/stderr to `output` (unless
    /// interactive). Returns the exit status.
    fn run(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExitStatus, SandboxError>;
    /// [`Sandbox::run`] (not interactive) with `helper`'s program available as `/sbin/apk`
    /// where the image has none, its requests served until the command's output ends.
    fn run_serving(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
        helper: &mut Helper<'_>,
    ) -> Result<ExitStatus, SandboxError>;
}

/// The bubblewrap sandbox. It is checked ([`Sandbox::preflight`]) the first time a command
/// runs, not before: a build whose steps never need it (COPY, ADD, a native `apk add` of
/// packages without scripts) works where bubblewrap is missing.
#[derive(Debug, Clone)]
pub struct Bwrap {
    /// The `bwrap` binary.
    pub program: PathBuf,
    /// The preflight's outcome (its message when it failed), once known.
    checked: std::sync::OnceLock<Result<(), String>>,
    /// Whether the image's ids can be mapped here (probed once, as root only).
    identity: std::sync::OnceLock<bool>,
    /// Whether bubblewrap started as a non-root uid may create a namespace whose ids we
    /// map (probed once, as root only, for steps with a non-root USER).
    identity_as_user: std::sync::OnceLock<bool>,
}

impl Default for Bwrap {
    fn default() -> Self {
        Self {
            program: PathBuf::from("bwrap"),
            checked: std::sync::OnceLock::new(),
            identity: std::sync::OnceLock::new(),
            identity_as_user: std::sync::OnceLock::new(),
        }
    }
}

impl Bwrap {
    fn command(
        &self,
        root: &Path,
        spec: &RunSpec,
        identity: Option<&IdentityFds>,
        helper: Option<(&Path, &str)>,
    ) -> Result<Command, SandboxError> {
        let (uid, gid) = resolve_user(root, &spec.user)?;
        let mut c = Command::new(&self.program);
        c.env_clear();
        c.arg("--unshare-all");
        if spec.network {
            c.arg("--share-net");
        }
        c.arg("--die-with-parent");
        // Docker gives root its capabilities and a non-root USER none.
        if uid == 0 {
            c.args(["--cap-add", "ALL"]);
        }
        if !spec.interactive {
            c.arg("--new-session");
        }
        c.arg("--bind").arg(root).arg("/");
        c.args(["--proc", "/proc", "--dev", "/dev"]);
        mounts::args(&mut c, &spec.mounts).map_err(|e| self.spawn_err(e))?;
        user_namespace(&mut c, identity, (uid, gid));
        if spec.network && root.join("etc/resolv.conf").is_file() {
            c.args(["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]);
        }
        if let Some((program, at)) = helper {
            c.arg("--ro-bind").arg(program).arg(format!("/{at}"));
        }
        let workdir = if spec.workdir.is_empty() {
            "/"
        } else {
            &spec.workdir
        };
        let wd = make_workdir(root, workdir, identity.map(|_| (uid, gid)));
        c.args(["--chdir", if wd { workdir } else { "/" }]);
        set_env(&mut c, &spec.env);
        c.envs(spec.hidden_env.iter().map(|(k, v)| (k, v)));
        c.arg("--");
        c.args(&spec.argv);
        Ok(c)
    }
}

/// Creates a missing WORKDIR and its missing parents (bwrap refuses a missing `--chdir`
/// target), owned as BuildKit makes them: by the USER of that point. `owner` is that
/// user's ids where the sandbox maps the image's ids (disk owners are the image's then);
/// with one mapped id every path is the step user's anyway. Whether the directory is there.
fn make_workdir(root: &Path, workdir: &str, owner: Option<(u32, u32)>) -> bool {
    let Ok(dir) = apk::rootfs::RootDir::open(root) else {
        return false;
    };
    let missing: Vec<&Path> = Path::new(workdir.trim_start_matches('/'))
        .ancestors()
        .filter(|rel| !rel.as_os_str().is_empty() && !dir.exists(rel).unwrap_or(true))
        .collect();
    if dir.create_dir_all(workdir, 0o755).is_err() {
        return false;
    }
    if let Some((uid, gid)) = owner.filter(|&(uid, _)| uid != 0) {
        for rel in missing {
            let _ = dir.set_owner(rel, uid, gid);
        }
    }
    true
}

impl Bwrap {
    /// Whether a namespace mapping the ids 0–65535 can be made here: not inside a container
    /// whose own namespace maps fewer ids, nor without bubblewrap (then the one-id mapping,
    /// and its errors, apply).
    fn probe_identity(&self, as_user: Option<(u32, u32)>) -> bool {
        let _only_us = SPAWNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Ok(fds) = IdentityFds::new() else {
            return false;
        };
        let mut c = Command::new(&self.program);
        if let Some((uid, gid)) = as_user {
            c.uid(uid).gid(gid);
        }
        c.env_clear()
            .args(["--unshare-all", "--unshare-user", "--die-with-parent"])
            .arg("--userns-block-fd")
            .arg(fds.block_child.as_raw_fd().to_string())
            .arg("--info-fd")
            .arg(fds.info_child.as_raw_fd().to_string())
            .args(["--ro-bind", "/", "/", "--", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(mut child) = c.spawn() else {
            return false;
        };
        drop(c);
        fds.map_ids(&mut child).is_ok() && child.wait().is_ok_and(|s| s.success())
    }
}

impl Sandbox for Bwrap {
    fn preflight(&self) -> Result<(), SandboxError> {
        let out = Command::new(&self.program)
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--ro-bind",
                "/",
                "/",
                "--",
                "true",
            ])
            .stdin(Stdio::null())
            .output();
        match out {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SandboxError::Unavailable {
                reason: format!("`{}` is not installed", self.program.display()),
                hint: "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: \
                       `dnf install bubblewrap`, Alpine: `apk add bubblewrap`) or put `bwrap` on PATH",
            }),
            Err(e) => Err(SandboxError::Spawn {
                program: self.program.display().to_string(),
                source: e,
            }),
            Ok(o) if !o.status.success() => Err(SandboxError::Unavailable {
                reason: format!(
                    "bwrap could not create namespaces: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                hint: "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 \
                       or user.max_user_namespaces > 0), or run inside a container started with them",
            }),
            Ok(_) => Ok(()),
        }
    }

    fn maps_image_ids(&self, root: &Path, user: &str) -> bool {
        if !rustix::process::geteuid().is_root() {
            return false;
        }
        match resolve_user(root, user) {
            Ok((0, _)) => *self.identity.get_or_init(|| self.probe_identity(None)),
            Ok(_) => {
                *self.identity.get_or_init(|| self.probe_identity(None))
                    && *self
                        .identity_as_user
                        .get_or_init(|| self.probe_identity(Some((65534, 65534))))
            }
            Err(_) => false,
        }
    }

    fn run(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExitStatus, SandboxError> {
        self.ready()?;
        let made = MadeMountpoints::note(root);
        let result = self.run_plain(root, spec, output);
        made.remove(root);
        result
    }

    fn run_serving(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
        helper: &mut Helper<'_>,
    ) -> Result<ExitStatus, SandboxError> {
        self.ready()?;
        let made = MadeMountpoints::note(root);
        // Where the mountpoint cannot be made, the command runs without the helper.
        let mount = helper::prepare(root).ok().flatten();
        helper.mounted = mount.as_ref().map(|m| m.at.clone());
        let result = self.serve(root, spec, output, helper);
        helper.touched = mount.and_then(|m| m.remove(root));
        made.remove(root);
        result
    }
}

/// The mountpoint directories bubblewrap makes in a root that lacks them (`--proc /proc`,
/// `--dev /dev`, in a FROM scratch image): taken away again, as they were not the step's.
struct MadeMountpoints(Vec<&'static str>);

impl MadeMountpoints {
    fn note(root: &Path) -> Self {
        let missing = |d: &&str| fs_err::symlink_metadata(root.join(d)).is_err();
        Self(["proc", "dev"].into_iter().filter(missing).collect())
    }

    /// Removes them if still empty (what the command wrote there went to the mounts).
    fn remove(self, root: &Path) {
        let Ok(dir) = apk::rootfs::RootDir::open(root) else {
            return;
        };
        for d in self.0 {
            let _ = dir.remove(d);
        }
    }
}

impl Bwrap {
    /// [`Sandbox::run`] once the preflight passed.
    fn run_plain(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExitStatus, SandboxError> {
        check_program(root, spec)?;
        if spec.interactive {
            let (mut child, _) = self.spawn(root, spec, None, None)?;
            return child.wait().map_err(|e| self.spawn_err(e));
        }
        let (child, reader) = self.spawn(root, spec, None, None)?;
        let mut reader = reader.expect("a piped command has a reader");
        let mut head = Head::default();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    head.keep(&buf[..n]);
                    output(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.spawn_err(e)),
            }
        }
        self.finish(child, &head)
    }
}

impl Bwrap {
    /// The preflight's verdict, found the first time.
    fn ready(&self) -> Result<(), SandboxError> {
        self.checked
            .get_or_init(|| self.preflight().map_err(|e| e.to_string()))
            .clone()
            .map_err(|message| SandboxError::NotReady { message })
    }

    fn spawn_err(&self, source: io::Error) -> SandboxError {
        SandboxError::Spawn {
            program: self.program.display().to_string(),
            source,
        }
    }

    /// Starts the command; unless interactive, both output streams go to one pipe, which
    /// keeps their interleaving as the command wrote it.
    fn spawn(
        &self,
        root: &Path,
        spec: &RunSpec,
        helper: Option<(&Path, &str)>,
        inherit: Option<BorrowedFd<'_>>,
    ) -> Result<(std::process::Child, Option<io::PipeReader>), SandboxError> {
        let maps = self.maps_image_ids(root, &spec.user);
        // Until the identity pipes' child ends are closed again, too.
        let _only_us = SPAWNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let identity = if maps {
            Some(IdentityFds::new().map_err(|e| self.spawn_err(e))?)
        } else {
            None
        };
        let mut c = self.command(root, spec, identity.as_ref(), helper)?;
        let mut reader = None;
        if !spec.interactive {
            let (r, writer) = io::pipe().map_err(|e| self.spawn_err(e))?;
            c.stdin(Stdio::null())
                .stdout(writer.try_clone().map_err(|e| self.spawn_err(e))?)
                .stderr(writer);
            reader = Some(r);
        }
        let mut fds: Vec<BorrowedFd<'_>> = inherit.into_iter().collect();
        fds.extend(mounts::fds(&spec.mounts));
        let mut child = spawn_inheriting(&mut c, &fds).map_err(|e| self.spawn_err(e))?;
        // Our copies of the pipe's write end go, so its end of file is the command's.
        drop(c);
        if let Some(fds) = identity {
            fds.map_ids(&mut child)?;
        }
        Ok((child, reader))
    }

    /// [`Sandbox::run_serving`] once the mountpoint is settled.
    fn serve(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
        helper: &mut Helper<'_>,
    ) -> Result<ExitStatus, SandboxError> {
        check_program(root, spec)?;
        let spec = RunSpec {
            interactive: false,
            ..spec.clone()
        };
        let program = helper.mounted.as_deref().map(|at| (helper.program, at));
        let (child, reader) = self.spawn(root, &spec, program, Some(helper.socket))?;
        let mut reader = reader.expect("a piped command has a reader");
        let mut head = Head::default();
        let mut out = |b: &[u8]| {
            head.keep(b);
            output(b);
        };
        let mut pump = Pump::new(&mut reader, &mut out);
        helper::serve_until_done(&mut pump, helper).map_err(|e| self.spawn_err(e))?;
        self.finish(child, &head)
    }

    /// Waits for the command; bubblewrap's own failure to start it becomes
    /// [`SandboxError::CannotExec`].
    fn finish(
        &self,
        mut child: std::process::Child,
        head: &Head,
    ) -> Result<ExitStatus, SandboxError> {
        let status = child.wait().map_err(|e| self.spawn_err(e))?;
        if status.code() == Some(1)
            && let Some((program, reason)) = head.execvp_failure()
        {
            return Err(SandboxError::CannotExec { program, reason });
        }
        Ok(status)
    }
}

/// Who the command runs as: with `identity`, in a namespace whose ids we map (bubblewrap
/// itself started as a non-root USER, see the module docs); else bubblewrap's one id.
fn user_namespace(c: &mut Command, identity: Option<&IdentityFds>, (uid, gid): (u32, u32)) {
    match identity {
        Some(fds) => {
            c.args(["--unshare-user", "--userns-block-fd"])
                .arg(fds.block_child.as_raw_fd().to_string())
                .arg("--info-fd")
                .arg(fds.info_child.as_raw_fd().to_string());
            if uid != 0 {
                c.uid(uid).gid(gid);
            }
        }
        None => {
            c.args(["--uid", &uid.to_string(), "--gid", &gid.to_string()]);
        }
    }
}

/// Only `env` (`KEY=value`), with Docker's PATH when it sets none. (bubblewrap's own
/// environment is empty but for the command's hidden variables: no `--clearenv`.)
fn set_env(c: &mut Command, env: &[String]) {
    let mut has_path = false;
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            has_path |= k == "PATH";
            c.args(["--setenv", k, v]);
        }
    }
    if !has_path {
        c.args(["--setenv", "PATH", DEFAULT_PATH]);
    }
}

/// Serialises starting sandboxes: while one starts with descriptors it inherits on purpose
/// (the apk socket, the identity pipes; not close-on-exec for that moment), no other may
/// start, or it would hold them too: its shim could call the wrong socket, a pipe would not
/// see its end (parallel tests, one process).
static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts `c`, with `inherit` open in it; call with [`SPAWNING`] held.
fn spawn_inheriting(
    c: &mut Command,
    inherit: &[BorrowedFd<'_>],
) -> io::Result<std::process::Child> {
    for fd in inherit {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
    }
    let spawned = c.spawn();
    for fd in inherit {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    }
    spawned
}

/// Refuses a command whose program is not in the image, before starting bubblewrap.
fn check_program(root: &Path, spec: &RunSpec) -> Result<(), SandboxError> {
    let workdir = if spec.workdir.is_empty() {
        "/"
    } else {
        &spec.workdir
    };
    match program::missing(root, &spec.argv, &spec.env, workdir) {
        Some(reason) => Err(SandboxError::NoProgram {
            program: spec.argv.first().cloned().unwrap_or_default(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The first bytes of a command's output: where bubblewrap reports that it could not
/// start the program.
#[derive(Default)]
struct Head(Vec<u8>);

impl Head {
    const KEEP: usize = 512;

    fn keep(&mut self, bytes: &[u8]) {
        let room = Self::KEEP.saturating_sub(self.0.len());
        self.0.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    /// `bwrap: execvp PROGRAM: REASON` as the whole output: (program, reason).
    fn execvp_failure(&self) -> Option<(String, String)> {
        let text = std::str::from_utf8(&self.0).ok()?;
        let line = text.strip_prefix("bwrap: execvp ")?.strip_suffix('\n')?;
        if line.contains('\n') {
            return None;
        }
        let (program, reason) = line.rsplit_once(": ")?;
        Some((program.to_owned(), reason.to_owned()))
    }
}

/// The image ids 0–65535 mapped to the same host ids.
const ID_MAP: &str = "0 0 65536\n";

/// The pipes of bubblewrap's `--userns-block-fd` handshake: it writes its sandbox child's
/// pid as JSON to the info pipe and closes it, then waits for a byte on the block pipe
/// while we write that child's id maps.
struct IdentityFds {
    info_child: io::PipeWriter,
    info_parent: io::PipeReader,
    block_child: io::PipeReader,
    block_parent: io::PipeWriter,
}

impl IdentityFds {
    fn new() -> io::Result<Self> {
        let (info_parent, info_child) = io::pipe()?;
        let (block_child, block_parent) = io::pipe()?;
        // Only bubblewrap's ends cross exec; ours stay close-on-exec.
        for fd in [info_child.as_fd(), block_child.as_fd()] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        }
        Ok(Self {
            info_child,
            info_parent,
            block_child,
            block_parent,
        })
    }

    /// Writes the maps of the spawned bubblewrap's namespace and lets it go on; stops it
    /// when that fails (it must never run with ids we did not map).
    fn map_ids(self, child: &mut std::process::Child) -> Result<(), SandboxError> {
        let Self {
            info_child,
            mut info_parent,
            block_child,
            mut block_parent,
        } = self;
        drop((info_child, block_child));
        let mapped = (|| -> Result<(), String> {
            let mut info = String::new();
            info_parent
                .read_to_string(&mut info)
                .map_err(|e| format!("reading bwrap --info-fd: {e}"))?;
            let pid = serde_json::from_str::<serde_json::Value>(&info)
                .ok()
                .and_then(|v| v.get("child-pid")?.as_u64())
                .ok_or_else(|| format!("bwrap reported no child pid (`{}`)", info.trim()))?;
            for (file, map) in [("uid_map", ID_MAP), ("gid_map", ID_MAP)] {
                let path = format!("/proc/{pid}/{file}");
                fs_err::write(&path, map).map_err(|e| e.to_string())?;
            }
            io::Write::write_all(&mut block_parent, b"1")
                .map_err(|e| format!("releasing bwrap: {e}"))
        })();
        match mapped {
            Ok(()) => Ok(()),
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(SandboxError::Unavailable {
                    reason: format!("could not map the image's ids 0-65535: {reason}"),
                    hint: "check that /proc is mounted read-write and user namespaces are enabled \
                           (user.max_user_namespaces > 0)",
                })
            }
        }
    }
}

/// Appended to the status of a RUN or install script run as root but with one id mapped
/// (rootless, or a machine that cannot map more) when it was refused a chown.
pub const ROOTLESS_CHOWN_HINT: &str = "; `chown` to another user needs the sandbox to map the \
     image's ids 0-65535, which it does only when assemble runs as root (\"Invalid argument\": \
     only one id is mapped); run assemble as root (sudo, or a CI job running as root, on a \
     machine whose user namespaces may map 65536 ids) to build images whose steps chown";

/// Whether a command's output shows a refused `chown` (busybox and coreutils wording).
pub fn chown_refused(log: &[u8]) -> bool {
    let text = String::from_utf8_lossy(log);
    text.lines().any(|l| {
        l.contains("chown")
            && (l.contains("Invalid argument") || l.contains("Operation not permitted"))
    })
}

/// USER → numeric ids, through the image's `/etc/passwd` and `/etc/group` for names.
pub fn resolve_user(root: &Path, user: &str) -> Result<(u32, u32), SandboxError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let rootdir = apk::rootfs::RootDir::open(root).ok();
    let read = |name: &str| -> String {
        let mut s = String::new();
        if let Some(f) = rootdir.as_ref().and_then(|r| r.open_file(name).ok()) {
            let _ = io::BufReader::new(f).read_to_string(&mut s);
        }
        s
    };
    let passwd = read("etc/passwd");
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == u)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(n),
        ),
        Err(_) => passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or_else(|| SandboxError::UnknownUser { user: u.into() })?,
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| SandboxError::UnknownUser { user: user.into() })?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_through_the_image() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        fs_err::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        fs_err::write(t.path().join("etc/group"), "wheel:x:10:\n").unwrap();
        assert_eq!(resolve_user(t.path(), "").unwrap(), (0, 0));
        assert_eq!(resolve_user(t.path(), "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(t.path(), "1000").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(t.path(), "app:wheel").unwrap(), (1000, 10));
        assert_eq!(resolve_user(t.path(), "7:8").unwrap(), (7, 8));
        assert!(resolve_user(t.path(), "nobody").is_err());
    }
}
