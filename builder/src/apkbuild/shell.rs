//! The shell recipes run under: busybox ash, as abuild (`#!/bin/ash -e`). Recipes use ash's
//! `${var//pat/rep}`, `${var:off:len}` and `local`, which dash (Debian's `/bin/sh`) refuses
//! with "Bad substitution", so we never run them under whatever `/bin/sh` happens to be:
//! the host's `/bin/sh` when it is busybox (Alpine), else `busybox ash` from the standard
//! directories, else an error saying what to install. Inside a build root (`--rootbld`)
//! the root's own `/bin/sh` runs them.
//!
//! Debian's busybox-static is built "standalone": its ash runs its own applets before
//! looking at PATH, so a recipe's `ar rcs` got busybox's `ar` (which only extracts) where
//! abuild's ash on Alpine runs binutils'. For such a shell the script starts with one
//! function per applet that abuild's build environment replaces with a real program
//! ([`REPLACED`]), running the program PATH finds. The other applets stay, as on Alpine,
//! where `sed`, `find`, `gzip` and the rest are busybox's unless a recipe installs more.

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
    /// Shell code every script starts with: the PATH-first functions of a standalone
    /// busybox (empty for any other shell).
    prologue: String,
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
            prologue: String::new(),
        }
    }

    /// Shell code to run before anything else in a script for this shell.
    pub fn prologue(&self) -> &str {
        &self.prologue
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
        let mut shell = Shell::root_sh();
        shell.prologue = path_first(&shell);
        return Ok(shell);
    }
    let candidates: Vec<PathBuf> = CLEAN_PATH
        .split(':')
        .map(|d| Path::new(d).join("busybox"))
        .filter(|p| p.is_file())
        .collect();
    for busybox in &candidates {
        let mut shell = Shell {
            argv: vec![busybox.into(), "ash".into()],
            prologue: String::new(),
        };
        if speaks_ash(&shell) {
            shell.prologue = path_first(&shell);
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

/// Busybox applets that abuild's build environment on Alpine replaces with real programs:
/// binutils' `ar` and `strings` (build-base) and GNU `tar` and `patch` (abuild's own
/// dependencies).
const REPLACED: &[&str] = &["ar", "patch", "strings", "tar"];

/// One function per [`REPLACED`] applet the shell runs before PATH (`type ar` says "ar is
/// ar" in a standalone busybox, "ar is /usr/bin/ar" otherwise) when PATH holds a program
/// of that name that is not busybox itself.
fn path_first(shell: &Shell) -> String {
    let Ok(out) = shell
        .command("for n in $(busybox --list); do type \"$n\"; done")
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return String::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, what) = line.split_once(" is ")?;
            let shadowed = what == name && REPLACED.contains(&name);
            let program = host_program(name).filter(|_| shadowed)?;
            Some(format!("{name}() {{ {} \"$@\"; }}\n", program.display()))
        })
        .collect()
}

/// The program PATH finds first for `name`, unless that is busybox (then the applet is
/// what PATH lookup would run anyway).
fn host_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let found = CLEAN_PATH
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            fs_err::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })?;
    let real = fs_err::canonicalize(&found).ok()?;
    (real.file_name()? != "busybox").then_some(found)
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

    /// With the prologue, binutils' `ar` runs as PATH finds it, whether or not the
    /// busybox is standalone (Debian's busybox-static is).
    #[test]
    fn replaced_applets_run_the_path_program() {
        let shell = Shell::host().expect("busybox ash");
        let Some(ar) = host_program("ar") else {
            eprintln!("SKIP: no ar outside busybox in {CLEAN_PATH}");
            return;
        };
        let run = |script: &str| {
            let out = shell
                .command(&format!("{}{script}", shell.prologue()))
                .env_clear()
                .env("PATH", CLEAN_PATH)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let said = run("type ar");
        // A function wrapping the program, or the program found through PATH.
        assert!(
            said.contains("function") || said.contains(&ar.display().to_string()),
            "{said}"
        );
        // busybox's ar has no --version (it prints its usage to stderr).
        let version = run("ar --version");
        assert!(version.contains("GNU ar"), "{version}");
    }
}
