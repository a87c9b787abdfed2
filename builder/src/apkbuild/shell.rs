//! The shell recipes run under: busybox ash, as abuild (`#!/bin/ash -e`). Recipes use ash's
//! `${var//pat/rep}`, `${var:off:len}` and `local`, which dash (Debian's `/bin/sh`) refuses
//! with "Bad substitution", so we never run them under whatever `/bin/sh` happens to be:
//! the host's `/bin/sh` when it is busybox (Alpine), else `busybox ash` from the standard
//! directories, else an error saying what to install. Inside a build root (`--rootbld`)
//! the root's own `/bin/sh` runs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::CLEAN_PATH;

/// No busybox ash on this machine.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "recipes run under busybox ash (as abuild does), but {reason}: install busybox \
     (Debian/Ubuntu: `apt-get install busybox-static`; on Alpine it is /bin/sh)"
)]
pub struct NoAsh {
    /// What was looked at.
    pub reason: String,
}

/// How to start the shell: a program and the arguments before `-c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shell {
    argv: Vec<OsString>,
}

impl Shell {
    /// The host's busybox ash (found once per process).
    pub fn host() -> Result<&'static Shell, NoAsh> {
        static HOST: OnceLock<Result<Shell, NoAsh>> = OnceLock::new();
        HOST.get_or_init(find_host).as_ref().map_err(Clone::clone)
    }

    /// `/bin/sh` of the root the command runs in (a build root's own shell).
    pub fn root_sh() -> Self {
        Self {
            argv: vec!["/bin/sh".into()],
        }
    }

    /// The program and its leading arguments, for a command line built elsewhere (bwrap).
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// A command running `script` (`$0` is `apkbuild`).
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .arg("-c")
            .arg(script)
            .arg("apkbuild");
        cmd
    }
}

/// `/bin/sh` when it is busybox, else busybox's ash from the standard directories.
fn find_host() -> Result<Shell, NoAsh> {
    let sh = Path::new("/bin/sh");
    let resolved = fs_err::canonicalize(sh).unwrap_or_else(|_| sh.to_path_buf());
    if resolved.file_name().is_some_and(|n| n == "busybox") {
        return Ok(Shell::root_sh());
    }
    let candidates: Vec<PathBuf> = CLEAN_PATH
        .split(':')
        .map(|d| Path::new(d).join("busybox"))
        .filter(|p| p.is_file())
        .collect();
    for busybox in &candidates {
        let shell = Shell {
            argv: vec![busybox.into(), "ash".into()],
        };
        if speaks_ash(&shell) {
            return Ok(shell);
        }
    }
    Err(NoAsh {
        reason: if candidates.is_empty() {
            format!(
                "/bin/sh is {} and there is no busybox in {CLEAN_PATH}",
                resolved.display()
            )
        } else {
            format!(
                "/bin/sh is {} and `busybox ash` of {} does not run",
                resolved.display(),
                candidates[0].display()
            )
        },
    })
}

/// Whether the shell runs ash's pattern substitution (dash does not).
fn speaks_ash(shell: &Shell) -> bool {
    shell
        .command("x=a.b; [ \"${x//./-}\" = a-b ]")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_shell_is_ash() {
        // ci/setup installs busybox-static; Alpine has it as /bin/sh.
        let shell = Shell::host().expect("busybox ash");
        assert!(speaks_ash(shell), "{shell:?}");
    }
}
