//! Reading an APKBUILD the way abuild does: a real `/bin/sh` sources it (after our prelude of
//! abuild's helpers) in an empty environment and prints the variables back, separated by
//! ASCII record (0x1E) and unit (0x1F) separators. We never parse shell ourselves.

pub mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// abuild's shell helpers and default phase functions.
pub const PRELUDE: &str = include_str!("prelude.sh");

/// The variables read back from a recipe (abuild's metadata variables).
pub const VARIABLES: &[&str] = &[
    "pkgname",
    "pkgver",
    "pkgrel",
    "pkgdesc",
    "url",
    "arch",
    "license",
    "depends",
    "depends_dev",
    "depends_doc",
    "makedepends",
    "makedepends_build",
    "makedepends_host",
    "checkdepends",
    "install",
    "triggers",
    "subpackages",
    "source",
    "sha512sums",
    "options",
    "provides",
    "replaces",
    "replaces_priority",
    "provider_priority",
    "install_if",
    "pkgusers",
    "pkggroups",
    "maintainer",
    "builddir",
    "pkgbasedir",
];

/// Why a recipe cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    /// No APKBUILD in the directory.
    #[error("no APKBUILD in `{}`: pass the directory holding the recipe", dir.display())]
    Missing {
        /// The directory.
        dir: PathBuf,
    },
    /// The shell could not run or source the file.
    #[error("{message}")]
    Shell {
        /// The shell's message, as `file:line: …` when it gave a line.
        message: String,
    },
    /// A required variable is empty or wrong.
    #[error("{}: {field}: {problem}", path.display())]
    Field {
        /// The APKBUILD.
        path: PathBuf,
        /// The variable.
        field: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One entry of `subpackages`: `name[:split[:arch]]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Subpackage {
    /// Package name.
    pub name: String,
    /// The split function that fills `$subpkgdir`.
    pub func: String,
    /// Its arch (the main package's unless given).
    pub arch: String,
}

/// One `source` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// What the recipe wrote.
    pub spec: String,
    /// The file name under `$srcdir` (the `name::` part, else the URL's last component).
    pub file_name: String,
    /// `http(s)://…` for a download, `None` for a file beside the APKBUILD.
    pub url: Option<String>,
}

/// An evaluated APKBUILD.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The directory holding the APKBUILD (`$startdir`).
    pub dir: PathBuf,
    /// The APKBUILD file.
    pub path: PathBuf,
    /// Its text (part of the cache key).
    pub text: String,
    /// Every variable in [`VARIABLES`], as the shell left it.
    pub vars: BTreeMap<String, String>,
    /// Shell functions the recipe (or prelude) defines among the phases and split functions.
    pub functions: BTreeSet<String>,
    /// The architecture we build for.
    pub carch: String,
}

/// Where the shell finds programs in the clean environment.
pub const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Recipe {
    /// Sources `dir/APKBUILD` for `carch`.
    pub fn load(dir: &Path, carch: &str) -> Result<Self, RecipeError> {
        let dir = std::path::absolute(dir)?;
        let path = dir.join("APKBUILD");
        if !path.is_file() {
            return Err(RecipeError::Missing { dir });
        }
        let text = fs_err::read_to_string(&path)?;
        // abuild's defaults ($srcdir = $startdir/src, $pkgbasedir = $startdir/pkg), so that
        // `info` shows what abuild would; builds use their own work directory.
        let work = dir.clone();
        let ctx = script::Context::new(&dir, &work, carch);
        let probe: Vec<&str> = [
            "prepare", "build", "check", "package", "dev", "doc", "openrc",
        ]
        .to_vec();
        let body = format!(
            "{}\n{}",
            script::dump_vars_fn(),
            script::probe_functions(&probe)
        );
        let out = ctx.eval(&path, &body).map_err(|e| match e {
            RecipeError::Shell { message } => RecipeError::Shell {
                message: with_snippet(&message, &path, &text),
            },
            other => other,
        })?;
        let mut vars = BTreeMap::new();
        let mut functions = BTreeSet::new();
        for record in out.split('\x1e').filter(|r| !r.is_empty()) {
            let (k, v) = record.split_once('\x1f').unwrap_or((record, ""));
            let k = k.trim_start_matches('\n');
            if let Some(f) = k.strip_prefix("fn:") {
                functions.insert(f.to_string());
            } else {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        let mut recipe = Self {
            dir,
            path,
            text,
            vars,
            functions,
            carch: carch.to_string(),
        };
        recipe.validate()?;
        // Split functions named by the subpackages (not known before evaluation).
        let extra: Vec<String> = recipe
            .subpackages()
            .into_iter()
            .map(|s| s.func)
            .filter(|f| !recipe.functions.contains(f))
            .collect();
        if !extra.is_empty() {
            let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
            let out = ctx.eval(&recipe.path, &script::probe_functions(&refs))?;
            for record in out.split('\x1e') {
                if let Some(f) = record.trim_start_matches('\n').strip_prefix("fn:") {
                    recipe
                        .functions
                        .insert(f.split('\x1f').next().unwrap_or(f).to_string());
                }
            }
        }
        Ok(recipe)
    }

    fn validate(&self) -> Result<(), RecipeError> {
        let field = |field: &'static str, problem: String| RecipeError::Field {
            path: self.path.clone(),
            field,
            problem,
        };
        let name = self.pkgname();
        if name.is_empty() || name.contains(['/', ' ']) || name.starts_with(['-', '.']) {
            return Err(field(
                "pkgname",
                format!("`{name}` is not a valid package name"),
            ));
        }
        if !apk::version::is_valid(self.pkgver()) || self.pkgver().contains("-r") {
            return Err(field(
                "pkgver",
                format!("`{}` is not a valid version (e.g. 1.2.3)", self.pkgver()),
            ));
        }
        if self.var("pkgrel").parse::<u32>().is_err() {
            return Err(field(
                "pkgrel",
                format!("`{}` must be a number (e.g. 0)", self.var("pkgrel")),
            ));
        }
        if self.list("arch").is_empty() {
            return Err(field(
                "arch",
                "empty: set arch=\"all\" or arch=\"noarch\"".into(),
            ));
        }
        Ok(())
    }

    /// A variable's value (empty if unset).
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).map_or("", String::as_str)
    }

    /// A whitespace-separated list variable.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.var(name)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// `pkgname`.
    pub fn pkgname(&self) -> &str {
        self.var("pkgname")
    }

    /// `pkgver`.
    pub fn pkgver(&self) -> &str {
        self.var("pkgver")
    }

    /// `pkgver-rpkgrel`.
    pub fn full_version(&self) -> String {
        format!("{}-r{}", self.pkgver(), self.var("pkgrel"))
    }

    /// Whether `options` has `opt` (e.g. `!check`, `net`).
    pub fn has_option(&self, opt: &str) -> bool {
        self.list("options").iter().any(|o| o == opt)
    }

    /// The arch of the main package: `noarch` when the recipe says so, else `carch`.
    pub fn pkgarch(&self) -> String {
        if self.list("arch").iter().any(|a| a == "noarch") {
            "noarch".into()
        } else {
            self.carch.clone()
        }
    }

    /// Whether the recipe builds for `carch` at all (`all`, `noarch`, the arch, minus `!arch`).
    pub fn builds_for(&self, carch: &str) -> bool {
        let arch = self.list("arch");
        if arch.iter().any(|a| a == &format!("!{carch}")) {
            return false;
        }
        arch.iter()
            .any(|a| a == "all" || a == "noarch" || a == carch)
    }

    /// The subpackages with their split function and arch (abuild's `subpkg_set`).
    pub fn subpackages(&self) -> Vec<Subpackage> {
        let pkgarch = self.pkgarch();
        self.list("subpackages")
            .into_iter()
            .map(|spec| {
                let mut parts = spec.splitn(3, ':');
                let name = parts.next().unwrap_or_default().to_string();
                let func = parts
                    .next()
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| default_split(&name));
                let arch = parts
                    .next()
                    .filter(|a| !a.is_empty())
                    .map_or_else(|| pkgarch.clone(), str::to_string);
                Subpackage { name, func, arch }
            })
            .collect()
    }

    /// Every package this recipe produces: the main one first, then the subpackages.
    pub fn packages(&self) -> Vec<(String, String)> {
        let mut out = vec![(self.pkgname().to_string(), self.pkgarch())];
        out.extend(self.subpackages().into_iter().map(|s| (s.name, s.arch)));
        out
    }

    /// The package file names, like `abuild listpkg`.
    pub fn file_names(&self) -> Vec<String> {
        let ver = self.full_version();
        self.packages()
            .into_iter()
            .map(|(n, _)| format!("{n}-{ver}.apk"))
            .collect()
    }

    /// The `source` entries.
    pub fn sources(&self) -> Vec<Source> {
        self.list("source")
            .into_iter()
            .map(|spec| {
                let (rename, uri) = match spec.split_once("::") {
                    Some((n, u)) => (Some(n.to_string()), u.to_string()),
                    None => (None, spec.clone()),
                };
                let remote = uri.contains("://");
                let last = uri.rsplit('/').next().unwrap_or(&uri).to_string();
                Source {
                    file_name: rename.unwrap_or(last),
                    url: remote.then_some(uri),
                    spec,
                }
            })
            .collect()
    }

    /// `sha512sums` as (file name, hex digest).
    pub fn sha512sums(&self) -> Vec<(String, String)> {
        let words = self.list("sha512sums");
        words
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[1].clone(), c[0].to_ascii_lowercase()))
            .collect()
    }

    /// The repository name: the directory above the recipe's (abuild's `$repo`).
    pub fn repo(&self) -> String {
        self.dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("main")
            .to_string()
    }

    /// Names from `depends`, `makedepends*` and `checkdepends` (when checks run), atoms
    /// stripped of versions and conflicts dropped: what must exist to build.
    pub fn build_dependencies(&self, with_check: bool) -> Vec<String> {
        let mut vars = vec![
            "depends",
            "makedepends",
            "makedepends_build",
            "makedepends_host",
        ];
        if with_check {
            vars.push("checkdepends");
        }
        let mut out = Vec::new();
        for v in vars {
            for atom in self.list(v) {
                if atom.starts_with('!') {
                    continue;
                }
                let name = apk::installed::atom_name(&atom).to_string();
                if !name.is_empty() && !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }
}

/// abuild's default split function for a subpackage name.
fn default_split(name: &str) -> String {
    if name.ends_with("-bash-completion") {
        "bashcomp".into()
    } else if name.ends_with("-zsh-completion") {
        "zshcomp".into()
    } else if name.ends_with("-fish-completion") {
        "fishcomp".into()
    } else {
        name.rsplit('-').next().unwrap_or(name).to_string()
    }
}

/// Turns dash's `sh: 3: /x/APKBUILD: Syntax error: …` into `/x/APKBUILD:3: Syntax error: …`.
pub fn shell_message(stderr: &str) -> String {
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let parts: Vec<&str> = line.splitn(4, ": ").collect();
        if parts.len() == 4 && parts[1].chars().all(|c| c.is_ascii_digit()) {
            lines.push(format!("{}:{}: {}", parts[2], parts[1], parts[3]));
        } else if let Some((file_line, msg)) = line.split_once(": ")
            && file_line.contains(':')
        {
            lines.push(format!("{file_line}: {msg}"));
        } else {
            lines.push(line.to_string());
        }
    }
    lines.join("\n")
}

/// Adds the offending APKBUILD line under a `FILE:LINE: message` from the shell.
fn with_snippet(message: &str, path: &Path, text: &str) -> String {
    let prefix = format!("{}:", path.display());
    let line_no = message.lines().find_map(|l| {
        l.strip_prefix(&prefix)?
            .split(':')
            .next()?
            .parse::<usize>()
            .ok()
    });
    match line_no.and_then(|n| Some((n, text.lines().nth(n.checked_sub(1)?)?))) {
        Some((n, line)) => {
            let w = n.to_string().len();
            format!("{message}\n{:w$} |\n{n} | {line}\n{:w$} |", "", "")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_show_the_line() {
        let text = "a=1\nif x; then\n";
        assert_eq!(
            with_snippet(
                "/r/APKBUILD:2: Syntax error",
                Path::new("/r/APKBUILD"),
                text
            ),
            "/r/APKBUILD:2: Syntax error\n  |\n2 | if x; then\n  |"
        );
    }

    #[test]
    fn split_defaults_follow_abuild() {
        assert_eq!(default_split("foo-dev"), "dev");
        assert_eq!(default_split("foo-bash-completion"), "bashcomp");
        assert_eq!(default_split("foo"), "foo");
    }

    #[test]
    fn dash_errors_become_file_line() {
        assert_eq!(
            shell_message("sh: 3: /r/APKBUILD: Syntax error: end of file unexpected"),
            "/r/APKBUILD:3: Syntax error: end of file unexpected"
        );
    }
}
