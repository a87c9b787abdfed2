//! The shell scripts we run: abuild's variables, the prelude, the APKBUILD, then a body (a
//! phase function or a dump of variables), all under `/bin/sh` in an empty environment.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CLEAN_PATH, PRELUDE, RecipeError, VARIABLES, shell_message};

/// abuild's variables for one build.
#[derive(Clone, Debug)]
pub struct Context {
    /// `$startdir`: the recipe's directory.
    pub startdir: PathBuf,
    /// The work directory: `$srcdir` is `work/src`, `$pkgbasedir` `work/pkg`.
    pub work: PathBuf,
    /// `$CARCH`.
    pub carch: String,
    /// `$JOBS`.
    pub jobs: usize,
    /// More exported variables (SOURCE_DATE_EPOCH, CFLAGS, sysroot paths, sccache…).
    pub exports: Vec<(String, String)>,
}

impl Context {
    /// A context with abuild's defaults.
    pub fn new(startdir: &Path, work: &Path, carch: &str) -> Self {
        Self {
            startdir: startdir.to_path_buf(),
            work: work.to_path_buf(),
            carch: carch.to_string(),
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            exports: Vec::new(),
        }
    }

    /// `$srcdir`.
    pub fn srcdir(&self) -> PathBuf {
        self.work.join("src")
    }

    /// `$pkgbasedir`.
    pub fn pkgbasedir(&self) -> PathBuf {
        self.work.join("pkg")
    }

    /// The environment the shell starts with (nothing inherited).
    pub fn env(&self) -> Vec<(String, String)> {
        let chost = format!("{}-alpine-linux-musl", self.carch);
        let tmp = self.work.join("tmp");
        let mut env = vec![
            ("PATH".to_string(), CLEAN_PATH.to_string()),
            ("LANG".into(), "C".into()),
            ("LC_ALL".into(), "C".into()),
            ("HOME".into(), tmp.display().to_string()),
            ("TMPDIR".into(), tmp.display().to_string()),
            ("startdir".into(), self.startdir.display().to_string()),
            ("srcdir".into(), self.srcdir().display().to_string()),
            ("pkgbasedir".into(), self.pkgbasedir().display().to_string()),
            ("CARCH".into(), self.carch.clone()),
            ("CBUILD".into(), chost.clone()),
            ("CHOST".into(), chost.clone()),
            ("CTARGET".into(), chost),
            ("JOBS".into(), self.jobs.to_string()),
            ("MAKEFLAGS".into(), format!("-j{}", self.jobs)),
        ];
        env.extend(self.exports.iter().cloned());
        env
    }

    /// The whole script: prelude, the APKBUILD sourced, abuild's derived defaults, `body`.
    pub fn script(&self, apkbuild: &Path, body: &str) -> String {
        let quoted = shell_quote(&apkbuild.display().to_string());
        format!(
            "{PRELUDE}\n. {quoted} || exit 1\n\
             : \"${{builddir:=$srcdir/$pkgname-$pkgver}}\"\n\
             pkgdir=\"$pkgbasedir/$pkgname\"\n\
             {body}\n"
        )
    }

    /// A `Command` running `script` under `/bin/sh` in the clean environment.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.env_clear()
            .envs(self.env())
            .arg("-c")
            .arg(script)
            .arg("apkbuild")
            .current_dir(&self.startdir);
        cmd
    }

    /// Runs `body` after sourcing the APKBUILD and returns its standard output.
    pub fn eval(&self, apkbuild: &Path, body: &str) -> Result<String, RecipeError> {
        let out = self
            .command(&self.script(apkbuild, body))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| RecipeError::Shell {
                message: format!("failed to run /bin/sh: {e}"),
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let msg = shell_message(stderr.trim());
            return Err(RecipeError::Shell {
                message: if msg.is_empty() {
                    format!("{}: sourcing failed ({})", apkbuild.display(), out.status)
                } else {
                    msg
                },
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Shell code printing every metadata variable as `name 0x1F value 0x1E`.
pub fn dump_vars_fn() -> String {
    format!(
        "for __v in {}; do eval \"__x=\\${{$__v-}}\"; printf '%s\\037%s\\036' \"$__v\" \"$__x\"; done",
        VARIABLES.join(" ")
    )
}

/// Shell code printing `fn:NAME 0x1E` for each defined function among `names`.
pub fn probe_functions(names: &[&str]) -> String {
    format!(
        "for __f in {}; do case \"$(type \"$__f\" 2>/dev/null)\" in *function*) printf 'fn:%s\\036' \"$__f\";; esac; done",
        names.join(" ")
    )
}

/// Single-quotes a string for the shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
