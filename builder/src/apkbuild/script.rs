//! The shell scripts we run: abuild's variables, the prelude, the APKBUILD sourced under
//! `set -e` (as abuild's `#!/bin/ash -e` does), the variables abuild derives after sourcing,
//! then a body (a phase function or a dump of variables), all under busybox ash in an
//! empty environment.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::arch;
use super::shell::Shell;
use super::{CLEAN_PATH, PRELUDE, RecipeError, VARIABLES, shell_message};

/// abuild's variables for one build.
#[derive(Clone, Debug)]
pub struct Context {
    /// `$startdir`: the recipe's directory, as the shell sees it.
    pub startdir: PathBuf,
    /// The work directory as the shell sees it: `$srcdir` is `work/src`, `$pkgbasedir`
    /// `work/pkg`, `$tmpdir` `work/tmp`.
    pub work: PathBuf,
    /// `$CARCH`: the arch packages are built for.
    pub carch: String,
    /// `$CBUILD_ARCH`: the arch of the machine running the build.
    pub cbuild_arch: String,
    /// `$repo`: the directory above the recipe's.
    pub repo: String,
    /// `$JOBS`.
    pub jobs: usize,
    /// More exported variables (SOURCE_DATE_EPOCH, sysroot paths, sccache…), after
    /// abuild's defaults, which they override.
    pub exports: Vec<(String, String)>,
    /// Shell variables of this run set before the APKBUILD is sourced, as abuild passes
    /// `subpkgname`, `subpkgdir` and `subpkgarch` to the run of a split function.
    pub vars: Vec<(String, String)>,
    /// The shell (busybox ash).
    pub shell: Shell,
    /// Run as root (uid 0 in the sandbox's user namespace), as abuild runs `package()` and
    /// the split functions under fakeroot; otherwise as an unprivileged build user (uid
    /// 1000), as abuild runs `prepare()`, `build()` and `check()`.
    pub as_root: bool,
}

impl Context {
    /// A context with abuild's defaults, run by `shell`.
    pub fn new(startdir: &Path, work: &Path, carch: &str, shell: Shell) -> Self {
        let repo = startdir
            .parent()
            .and_then(Path::file_name)
            .map_or_else(|| "main".to_string(), |n| n.to_string_lossy().into_owned());
        Self {
            startdir: startdir.to_path_buf(),
            work: work.to_path_buf(),
            carch: carch.to_string(),
            cbuild_arch: apk::install::host_arch().to_string(),
            repo,
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            exports: Vec::new(),
            vars: Vec::new(),
            shell,
            as_root: true,
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

    /// `$tmpdir` (also `$HOME`).
    pub fn tmpdir(&self) -> PathBuf {
        self.work.join("tmp")
    }

    /// The environment the shell starts with (nothing inherited): abuild's directories,
    /// the variables its `readconfig` derives, its `default.conf` flags, then `exports`.
    pub fn env(&self) -> Vec<(String, String)> {
        let s = |v: &str| v.to_string();
        let path = |p: PathBuf| p.display().to_string();
        let mut env = vec![
            (s("PATH"), s(CLEAN_PATH)),
            (s("LANG"), s("C")),
            (s("LC_ALL"), s("C")),
            (s("HOME"), path(self.tmpdir())),
            (s("TMPDIR"), path(self.tmpdir())),
            (s("startdir"), path(self.startdir.clone())),
            (s("srcdir"), path(self.srcdir())),
            (s("pkgbasedir"), path(self.pkgbasedir())),
            (s("tmpdir"), path(self.tmpdir())),
            (s("repo"), self.repo.clone()),
        ];
        env.extend(arch::variables(&self.carch, &self.cbuild_arch));
        env.extend(default_conf(self.jobs));
        env.extend(self.exports.iter().cloned());
        env
    }

    /// The whole script: prelude, this run's variables, `$startdir/APKBUILD` sourced under
    /// `set -e`, abuild's derived variables, `body`.
    pub fn script(&self, body: &str) -> String {
        let quoted = shell_quote(&self.startdir.join("APKBUILD").display().to_string());
        let vars: String = self
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={}\n", shell_quote(v)))
            .collect();
        let prologue = self.shell.prologue();
        format!("{prologue}{PRELUDE}\n{vars}set -e\n. {quoted}\nset +e\n{DERIVED}\n{body}\n")
    }

    /// A `Command` running `script` in the clean environment, from `$startdir`.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = self.shell.command(script);
        cmd.env_clear().envs(self.env()).current_dir(&self.startdir);
        cmd
    }

    /// Runs `body` after sourcing the APKBUILD and returns its standard output.
    pub fn eval(&self, apkbuild: &Path, body: &str) -> Result<String, RecipeError> {
        let out = self
            .command(&self.script(body))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| RecipeError::Shell {
                message: format!("failed to run {:?}: {e}", self.shell.argv()),
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let msg = shell_message(stderr.trim());
            return Err(RecipeError::Shell {
                message: if msg.is_empty() {
                    format!(
                        "{}: a command failed while the APKBUILD was sourced ({}): abuild \
                         sources recipes under `set -e`, so every top-level command must succeed",
                        apkbuild.display(),
                        out.status
                    )
                } else {
                    msg
                },
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// What abuild sets after sourcing the APKBUILD: `$builddir`, `$pkgarch`, `$pkgdir`,
/// debug flags for a `-dbg` subpackage, private Go/Cargo caches, and the lists its
/// functions read.
const DERIVED: &str = r#"builddir=${builddir:-"$srcdir/$pkgname-$pkgver"}
if [ -z "$pkgarch" ]; then
	pkgarch=$CARCH
	list_has noarch $arch && pkgarch=noarch
fi
if subpackage_types_has dbg; then
	CFLAGS="$CFLAGS -g"
	CXXFLAGS="$CXXFLAGS -g"
	DFLAGS="$DFLAGS -g"
	export CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=none
fi
export GOCACHE="${GOCACHE:-"$tmpdir/go"}"
# abuild 3.17 derives GOMODCACHE from the GOCACHE it just set: the same directory.
export GOMODCACHE="${GOCACHE:-"$tmpdir/gomod"}"
export GOTMPDIR="${GOTMPDIR:-"$tmpdir"}"
export CARGO_HOME="${CARGO_HOME:-"$tmpdir/cargo"}"
export HARECACHE="${HARECACHE:-"$tmpdir/hare-cache"}"
allpackages="$pkgname $subpackages"
apkbuild_arch="$arch"
pkgdir="$pkgbasedir/$pkgname"
controldir="$pkgbasedir/.control.${subpkgname:-$pkgname}"
sumalgo=sha512
[ -z "$sha512sums" ] && [ -n "$sha256sums" ] && sumalgo=sha256"#;

/// abuild's `default.conf`: compiler flags and parallelism every build gets.
fn default_conf(jobs: usize) -> Vec<(String, String)> {
    let flags = "-Os -fstack-clash-protection -Wformat -Werror=format-security";
    [
        ("CC", "cc".to_string()),
        ("CXX", "c++".to_string()),
        ("CFLAGS", flags.to_string()),
        (
            "CXXFLAGS",
            format!(
                "{flags} -D_GLIBCXX_ASSERTIONS=1 -D_LIBCPP_ENABLE_THREAD_SAFETY_ANNOTATIONS=1 \
                 -D_LIBCPP_HARDENING_MODE=_LIBCPP_HARDENING_MODE_FAST"
            ),
        ),
        ("LDFLAGS", DEFAULT_LDFLAGS.to_string()),
        (
            "GOFLAGS",
            "-buildmode=pie -modcacherw -trimpath -buildvcs=false".to_string(),
        ),
        ("DFLAGS", "-Os".to_string()),
        ("JOBS", jobs.to_string()),
        ("MAKEFLAGS", format!("-j{jobs}")),
        ("SAMUFLAGS", format!("-j{jobs}")),
        ("CARGO_BUILD_JOBS", jobs.to_string()),
        ("CMAKE_BUILD_PARALLEL_LEVEL", jobs.to_string()),
        ("CTEST_PARALLEL_LEVEL", jobs.to_string()),
        ("CMAKE_GENERATOR", "Ninja".to_string()),
        ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s".to_string()),
        ("CARGO_PROFILE_RELEASE_PANIC", "abort".to_string()),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1".to_string()),
        ("CARGO_PROFILE_RELEASE_LTO", "true".to_string()),
        ("CTEST_OUTPUT_ON_FAILURE", "ON".to_string()),
        ("CTEST_NO_TESTS_ACTION", "error".to_string()),
        ("PERL_MM_USE_DEFAULT", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The `LDFLAGS` of abuild's default.conf, for callers that add to it.
pub const DEFAULT_LDFLAGS: &str = "-Wl,--as-needed,-O1,--sort-common";

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
        "for __f in {}; do is_function \"$__f\" && printf 'fn:%s\\036' \"$__f\"; done; :",
        names.join(" ")
    )
}

/// Single-quotes a string for the shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
