//! Reading an APKBUILD the way abuild does: busybox ash sources it (after our prelude of
//! abuild's helpers) in an empty environment and prints the variables back, separated by
//! ASCII record (0x1E) and unit (0x1F) separators. We never parse shell ourselves.

pub mod arch;
pub mod script;
pub mod shell;
pub mod subpkg;
pub mod validate;

pub use subpkg::Subpackage;

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
    "sha256sums",
    "md5sums",
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
    "pkgarch",
    "depends_libs",
    "depends_static",
    "depends_openrc",
    "depends_lang",
    "langdir",
    "sonameprefix",
    "pcprefix",
    "somask",
    "ldpath",
    // Misspellings abuild refuses.
    "depend",
    "makedepend",
    "pkguser",
    "pkggroup",
    "subpackage",
    "checkdepend",
    "conflicts",
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
    /// What abuild's `validate` refuses.
    #[error("{}{}: {problem}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The APKBUILD.
        path: PathBuf,
        /// The line assigning the variable, when found.
        line: Option<usize>,
        /// What is wrong and what to do.
        problem: String,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
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
    /// What abuild would warn about while reading it (e.g. no `arch`).
    pub warnings: Vec<String>,
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
        let shell = shell::Shell::host().map_err(|e| RecipeError::Shell {
            message: e.to_string(),
        })?;
        // abuild's defaults ($srcdir = $startdir/src, $pkgbasedir = $startdir/pkg), so that
        // `info` shows what abuild would; builds use their own work directory.
        let ctx = script::Context::new(&dir, &dir, carch, shell.clone());
        let probe = [
            "prepare", "build", "check", "package", "unpack", "dev", "doc", "openrc",
        ];
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
        let (vars, functions) = records(&out);
        let mut recipe = Self {
            dir,
            path,
            text,
            vars,
            functions,
            carch: carch.to_string(),
            warnings: Vec::new(),
        };
        recipe.validate()?;
        recipe.warn();
        recipe.probe_split_functions(&ctx)?;
        Ok(recipe)
    }

    /// Adds the split functions the subpackages name (not known before evaluation).
    fn probe_split_functions(&mut self, ctx: &script::Context) -> Result<(), RecipeError> {
        let extra: Vec<String> = self
            .subpackages()
            .into_iter()
            .map(|s| s.func)
            .filter(|f| !self.functions.contains(f))
            .collect();
        if extra.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = ctx.eval(&self.path, &script::probe_functions(&refs))?;
        self.functions.extend(records(&out).1);
        Ok(())
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
        Ok(())
    }

    /// abuild's warnings about a recipe it still reads.
    fn warn(&mut self) {
        if self.list("arch").is_empty() {
            self.warnings.push(format!(
                "{}: arch is empty: abuild reads the recipe but builds it for no arch; \
                 set arch=\"all\" (or \"noarch\", or the arches it builds on)",
                self.path.display()
            ));
        }
        if self.var("sha512sums").is_empty() && !self.var("sha256sums").is_empty() {
            self.warnings.push(format!(
                "{}: found old (sha256) checksums: run `apkbuild checksum {}` to write sha512sums",
                self.path.display(),
                self.dir.display()
            ));
        }
        if !self.sources().is_empty()
            && self.var("sha512sums").is_empty()
            && self.var("sha256sums").is_empty()
            && !self.var("md5sums").is_empty()
        {
            self.warnings.push(format!(
                "{}: md5sums are not checked (abuild dropped them): run `apkbuild checksum {}` \
                 to write sha512sums",
                self.path.display(),
                self.dir.display()
            ));
        }
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

    /// Whether `options` has `opt` (e.g. `!check`, `net`), as abuild's `list_has`: a
    /// `!opt` word met first says no.
    pub fn has_option(&self, opt: &str) -> bool {
        list_has(opt, &self.list("options"))
    }

    /// Whether `options` has `opt` for package `name`: `name::opt`, or `opt` (abuild's
    /// `options_has` while it makes that package).
    pub fn has_option_for(&self, name: &str, opt: &str) -> bool {
        let options = self.list("options");
        list_has(&format!("{name}::{opt}"), &options) || list_has(opt, &options)
    }

    /// The arch of the main package (abuild's `$pkgarch`): `noarch` when `arch` lists it,
    /// else `$CARCH`.
    pub fn pkgarch(&self) -> String {
        match self.var("pkgarch") {
            "" => self.carch.clone(),
            a => a.to_string(),
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
            .iter()
            .map(|spec| Subpackage::parse(spec, &pkgarch, &self.carch))
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

    /// The checksums sources are verified against, as (algorithm, [(file name, hex
    /// digest)]): `sha512sums`, or the legacy `sha256sums` when there are none (abuild's
    /// `sumalgo`). abuild no longer reads `md5sums`.
    pub fn checksums(&self) -> (&'static str, Vec<(String, String)>) {
        if self.var("sha512sums").is_empty() && !self.var("sha256sums").is_empty() {
            return ("sha256", pairs(&self.list("sha256sums")));
        }
        ("sha512", pairs(&self.list("sha512sums")))
    }

    /// The maintainer as abuild reads it: `maintainer=`, else the `# Maintainer:` comment.
    pub fn maintainer(&self) -> String {
        let var = self.var("maintainer");
        if !var.is_empty() {
            return var.to_string();
        }
        maintainer_comments(&self.text).join("\n")
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

    /// The atoms abuild installs to build (its `calcdeps`): `depends`, `makedepends` (or,
    /// when empty, `makedepends_build makedepends_host`) and `checkdepends` when checks
    /// run, without the recipe's own packages.
    pub fn build_dependency_atoms(&self, with_check: bool) -> Vec<String> {
        let mut make = self.list("makedepends");
        if make.is_empty() {
            make = self.list("makedepends_build");
            make.extend(self.list("makedepends_host"));
        }
        if with_check {
            make.extend(self.list("checkdepends"));
        }
        let own: Vec<String> = self.packages().into_iter().map(|(n, _)| n).collect();
        let mut out: Vec<String> = Vec::new();
        for atom in self.list("depends").into_iter().chain(make) {
            let name = apk::installed::atom_name(&atom);
            if !own.iter().any(|o| o == name) && !out.contains(&atom) {
                out.push(atom);
            }
        }
        out
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

/// The `name 0x1F value 0x1E` records and `fn:NAME 0x1E` markers the shell printed.
fn records(out: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
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
    (vars, functions)
}

/// abuild's `list_has`: `needle` is one of `words`; a `!needle` word before it says no.
pub fn list_has(needle: &str, words: &[String]) -> bool {
    for w in words {
        if w == needle {
            return true;
        }
        if needle.strip_prefix('!') == Some(w.as_str()) {
            return false;
        }
    }
    false
}

/// (file name, hex digest) of a `HEX  FILE` checksum list.
fn pairs(words: &[String]) -> Vec<(String, String)> {
    words
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[1].clone(), c[0].to_ascii_lowercase()))
        .collect()
}

/// What follows `: ` on each `# Maintainer:` line (abuild's `awk -F': ' '/# *Maintainer/'`).
pub fn maintainer_comments(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.find('#')
                .is_some_and(|i| l[i + 1..].trim_start_matches(' ').starts_with("Maintainer"))
        })
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect()
}

/// Turns ash's `apkbuild: /x/APKBUILD: line 3: syntax error: …` (and dash's
/// `sh: 3: /x/APKBUILD: Syntax error: …`) into `/x/APKBUILD:3: syntax error: …`.
pub fn shell_message(stderr: &str) -> String {
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let parts: Vec<&str> = line.splitn(4, ": ").collect();
        let ash_line = parts.get(2).and_then(|p| p.strip_prefix("line "));
        if parts.len() == 4
            && let Some(n) = ash_line.filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        {
            lines.push(format!("{}:{n}: {}", parts[1], parts[3]));
        } else if parts.len() == 4 && parts[1].chars().all(|c| c.is_ascii_digit()) {
            lines.push(format!("{}:{}: {}", parts[2], parts[1], parts[3]));
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
    fn maintainer_comments_are_read_like_abuild() {
        assert_eq!(
            maintainer_comments("# Contributor: A <a@x>\n# Maintainer: B <b@x>\npkgname=x\n"),
            ["B <b@x>"]
        );
        assert_eq!(maintainer_comments("#Maintainer: C <c@x>\n"), ["C <c@x>"]);
    }

    #[test]
    fn ash_errors_become_file_line() {
        assert_eq!(
            shell_message(
                "apkbuild: /r/APKBUILD: line 3: syntax error: unexpected end of file (expecting \"fi\")"
            ),
            "/r/APKBUILD:3: syntax error: unexpected end of file (expecting \"fi\")"
        );
    }

    #[test]
    fn dash_errors_become_file_line() {
        assert_eq!(
            shell_message("sh: 3: /r/APKBUILD: Syntax error: end of file unexpected"),
            "/r/APKBUILD:3: Syntax error: end of file unexpected"
        );
    }
}
