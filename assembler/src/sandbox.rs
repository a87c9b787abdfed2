//! Running commands inside an image root: the [`Sandbox`] seam and its bubblewrap backend.
//!
//! bubblewrap gives us the user namespace (uid 0 inside, mapped to the caller), a private
//! mount namespace whose `/` is the image root (nothing of the host is visible: no `--bind`
//! of host paths besides the root itself), fresh `/proc` and `/dev`, and `--die-with-parent`.
//! The network is unshared unless the build asked for `--network host`.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

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
}

/// A place to run commands in an image root.
pub trait Sandbox {
    /// Checks that commands can run; explains what is missing otherwise.
    fn preflight(&self) -> Result<(), SandboxError>;
    /// Runs `spec` in `root`, passing each chunk of combined stdout/stderr to `output` (unless
    /// interactive). Returns the exit status.
    fn run(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExitStatus, SandboxError>;
}

/// The bubblewrap sandbox.
#[derive(Debug, Clone)]
pub struct Bwrap {
    /// The `bwrap` binary.
    pub program: PathBuf,
}

impl Default for Bwrap {
    fn default() -> Self {
        Self {
            program: PathBuf::from("bwrap"),
        }
    }
}

impl Bwrap {
    fn command(&self, root: &Path, spec: &RunSpec) -> Result<Command, SandboxError> {
        let (uid, gid) = resolve_user(root, &spec.user)?;
        let mut c = Command::new(&self.program);
        c.env_clear();
        c.arg("--unshare-all");
        if spec.network {
            c.arg("--share-net");
        }
        c.args(["--die-with-parent", "--cap-add", "ALL"]);
        if !spec.interactive {
            c.arg("--new-session");
        }
        c.arg("--bind").arg(root).arg("/");
        c.args(["--proc", "/proc", "--dev", "/dev"]);
        c.args(["--uid", &uid.to_string(), "--gid", &gid.to_string()]);
        if spec.network && root.join("etc/resolv.conf").is_file() {
            c.args(["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]);
        }
        let workdir = if spec.workdir.is_empty() {
            "/"
        } else {
            &spec.workdir
        };
        // bwrap refuses a missing --chdir target; Docker creates WORKDIR.
        let wd = apk::rootfs::RootDir::open(root)
            .and_then(|r| r.create_dir_all(workdir, 0o755))
            .is_ok();
        c.args(["--chdir", if wd { workdir } else { "/" }]);
        c.args(["--clearenv"]);
        let mut has_path = false;
        for kv in &spec.env {
            if let Some((k, v)) = kv.split_once('=') {
                has_path |= k == "PATH";
                c.args(["--setenv", k, v]);
            }
        }
        if !has_path {
            c.args([
                "--setenv",
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ]);
        }
        c.arg("--");
        c.args(&spec.argv);
        Ok(c)
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
                hint: "install bubblewrap (`apt-get install bubblewrap`, `apk add bubblewrap`)",
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

    fn run(
        &self,
        root: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExitStatus, SandboxError> {
        let mut c = self.command(root, spec)?;
        let spawn_err = |source| SandboxError::Spawn {
            program: self.program.display().to_string(),
            source,
        };
        if spec.interactive {
            return c.status().map_err(spawn_err);
        }
        // One pipe for both streams keeps their interleaving as the command wrote it.
        let (mut reader, writer) = io::pipe().map_err(spawn_err)?;
        c.stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(spawn_err)?)
            .stderr(writer);
        let mut child = c.spawn().map_err(spawn_err)?;
        drop(c);
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => output(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(spawn_err(e)),
            }
        }
        child.wait().map_err(spawn_err)
    }
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
