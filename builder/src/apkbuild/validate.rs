//! What abuild's `validate` refuses before it builds anything: missing or malformed
//! metadata, install scripts and triggers that match no package, sources without
//! checksums, misspelled variables, invalid dependency atoms. `info` reads such recipes
//! (as `abuild listpkg` does); `build` stops at the first problem, naming the APKBUILD line.

use super::{Recipe, RecipeError};

/// Install script suffixes abuild knows.
const SCRIPT_SUFFIXES: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-upgrade",
    "post-upgrade",
    "pre-deinstall",
    "post-deinstall",
];

/// Checks `recipe` as abuild's `validate` does; returns its warnings.
pub fn validate(recipe: &Recipe) -> Result<Vec<String>, RecipeError> {
    let v = Validator { recipe };
    v.metadata()?;
    v.names()?;
    v.atoms()?;
    v.install_scripts()?;
    v.triggers()?;
    v.sources()?;
    v.spelling()?;
    v.maintainer()?;
    Ok(v.warnings())
}

struct Validator<'a> {
    recipe: &'a Recipe,
}

impl Validator<'_> {
    /// An error at the line assigning `field` (or the first line).
    fn fail(&self, field: &str, problem: String) -> RecipeError {
        RecipeError::Invalid {
            path: self.recipe.path.clone(),
            line: line_of(&self.recipe.text, field),
            problem,
        }
    }

    fn metadata(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        for field in ["pkgdesc", "url", "license"] {
            if r.var(field).trim().is_empty() {
                return Err(self.fail(field, format!("missing {field}: set {field}=\"…\"")));
            }
        }
        let desc = r.var("pkgdesc");
        if desc.contains('\n') {
            return Err(self.fail("pkgdesc", "pkgdesc is not a single line".into()));
        }
        if desc.len() + 1 > 128 {
            return Err(self.fail(
                "pkgdesc",
                format!("pkgdesc is too long ({} bytes, at most 127)", desc.len()),
            ));
        }
        if !r.functions.contains("package") {
            return Err(self.fail(
                "package",
                "no package() function: define one that installs into \"$pkgdir\"".into(),
            ));
        }
        for field in ["replaces_priority", "provider_priority"] {
            if r.var(field).chars().any(|c| !c.is_ascii_digit()) {
                return Err(self.fail(field, format!("{field} must be a number")));
            }
        }
        Ok(())
    }

    /// Package names are valid and unique; every subpackage has its split function.
    fn names(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        let mut seen = Vec::new();
        let subs = r.subpackages();
        for name in std::iter::once(r.pkgname()).chain(subs.iter().map(|s| s.name.as_str())) {
            if !valid_name(name) {
                return Err(self.fail(
                    "subpackages",
                    format!("`{name}` is not a valid package name"),
                ));
            }
            if seen.contains(&name) {
                return Err(self.fail(
                    "subpackages",
                    format!("duplicate (sub-)package named {name}"),
                ));
            }
            seen.push(name);
        }
        for s in &subs {
            if !r.functions.contains(&s.func) {
                return Err(self.fail(
                    "subpackages",
                    format!(
                        "subpackage {}: split function {}() is not defined",
                        s.name, s.func
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `depends`, `makedepends` and `provides` atoms have valid versions and operators;
    /// `provides` does not name the package itself.
    fn atoms(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        for field in ["depends", "makedepends", "provides"] {
            for atom in r.list(field) {
                if let Err(problem) = check_depver(&atom) {
                    return Err(self.fail(field, format!("{field}: `{atom}`: {problem}")));
                }
                if field == "provides" && apk::installed::atom_name(&atom) == r.pkgname() {
                    return Err(
                        self.fail(field, format!("provides must not contain {}", r.pkgname()))
                    );
                }
            }
        }
        Ok(())
    }

    fn install_scripts(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        for file in r.list("install") {
            let (name, suffix) = file.rsplit_once('.').unwrap_or((&file, ""));
            if !SCRIPT_SUFFIXES.contains(&suffix) {
                return Err(self.fail(
                    "install",
                    format!(
                        "{file}: unknown install script suffix (one of {})",
                        SCRIPT_SUFFIXES.join(", ")
                    ),
                ));
            }
            if !self.is_package(name) {
                return Err(self.fail(
                    "install",
                    format!("{file}: install script does not match pkgname or any subpackage"),
                ));
            }
            if !r.dir.join(&file).exists() {
                return Err(self.fail("install", format!("install script {file} is missing")));
            }
        }
        Ok(())
    }

    fn triggers(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        for t in r.list("triggers") {
            let Some((file, _)) = t.rsplit_once('=') else {
                return Err(self.fail("triggers", format!("{t}: triggers must contain '='")));
            };
            let Some(name) = file.strip_suffix(".trigger") else {
                return Err(self.fail(
                    "triggers",
                    format!("{file}: triggers scripts must have .trigger suffix"),
                ));
            };
            if !self.is_package(name) {
                return Err(self.fail(
                    "triggers",
                    format!("{name}: trigger script does not match pkgname or any subpackage"),
                ));
            }
            if !r.dir.join(file).exists() {
                return Err(self.fail("triggers", format!("trigger script {file} is missing")));
            }
        }
        Ok(())
    }

    /// Every source has a checksum and every checksum a source; remote tarballs named
    /// only by their version are renamed.
    fn sources(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        let (algo, sums) = r.checksums();
        let field = format!("{algo}sums");
        let sources = r.sources();
        for s in &sources {
            let named = s.spec.split_once("::").map_or(s.spec.as_str(), |(n, _)| n);
            let base = named.rsplit('/').next().unwrap_or(named);
            if !sums.iter().any(|(f, _)| f == base) {
                return Err(self.fail(
                    &field,
                    format!(
                        "{base} is missing in checksums: run `apkbuild checksum {}`",
                        r.dir.display()
                    ),
                ));
            }
            let pkgver = r.pkgver();
            if s.url.is_some()
                && !s.spec.contains("::")
                && (base.starts_with(&format!("v{pkgver}.tar."))
                    || base.starts_with(&format!("{pkgver}.tar.")))
            {
                return Err(self.fail(
                    "source",
                    format!(
                        "source {base} needs to be renamed to avoid possible collisions \
                         (source=\"$pkgname-$pkgver.tar.gz::URL\")"
                    ),
                ));
            }
        }
        let words = r.list(&field).len();
        if words != sources.len() * 2 {
            return Err(self.fail(
                &field,
                format!(
                    "Number of checksums({}) does not correspond to number of sources({})",
                    words / 2,
                    sources.len()
                ),
            ));
        }
        if let Some((file, _)) = sums
            .iter()
            .find(|(f, _)| !sources.iter().any(|s| &s.file_name == f || s.spec == *f))
        {
            return Err(self.fail(
                &field,
                format!("{file} exists in checksums but is missing in $source"),
            ));
        }
        Ok(())
    }

    /// abuild refuses common misspellings rather than ignoring them.
    fn spelling(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        for (wrong, right) in [
            ("depend", "depends"),
            ("makedepend", "makedepends"),
            ("pkguser", "pkgusers"),
            ("pkggroup", "pkggroups"),
            ("subpackage", "subpackages"),
            ("checkdepend", "checkdepends"),
        ] {
            if !r.var(wrong).is_empty() {
                return Err(self.fail(
                    wrong,
                    format!("APKBUILD contains '{wrong}'. It should be '{right}'"),
                ));
            }
        }
        if !r.var("conflicts").is_empty() {
            return Err(self.fail(
                "conflicts",
                "APKBUILD contains $conflicts. Explicit conflicts should be added as \
                 '!pkgname' to depends"
                    .into(),
            ));
        }
        Ok(())
    }

    /// One maintainer, an RFC 822 `Name <address>`.
    fn maintainer(&self) -> Result<(), RecipeError> {
        let r = self.recipe;
        if super::maintainer_comments(&r.text).len() > 1 {
            return Err(self.fail("# Maintainer", "More than one maintainer".into()));
        }
        let m = r.maintainer();
        if m.is_empty() {
            return Ok(());
        }
        let problem = if m.starts_with(' ') || m.ends_with(' ') {
            Some("has leading or trailing space")
        } else if m.starts_with('"') || m.ends_with('"') {
            Some("has leading or trailing quote")
        } else if !is_rfc822(&m) {
            Some("is not a valid rfc822 address")
        } else {
            None
        };
        match problem {
            Some(p) => Err(self.fail(
                "maintainer",
                format!("'{m}' {p}: Provide a valid RFC822 maintainer address"),
            )),
            None => Ok(()),
        }
    }

    fn warnings(&self) -> Vec<String> {
        let r = self.recipe;
        let mut out = Vec::new();
        let path = r.path.display();
        if r.maintainer().is_empty() {
            out.push(format!("{path}: No maintainer"));
        }
        if !r.var("depends_dev").is_empty()
            && !std::iter::once(r.pkgname().to_string())
                .chain(r.subpackages().into_iter().map(|s| s.name))
                .any(|n| n.ends_with("-dev"))
        {
            out.push(format!(
                "{path}: depends_dev found but no development subpackage found"
            ));
        }
        if r.list("makedepends").iter().any(|d| d == "g++") && !r.has_option("toolchain") {
            out.push(format!("{path}: g++ should not be in makedepends"));
        }
        out
    }

    fn is_package(&self, name: &str) -> bool {
        name == self.recipe.pkgname() || self.recipe.subpackages().iter().any(|s| s.name == name)
    }
}

/// abuild's `verify_pkgname`: letters, digits and `._+-`, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// abuild's `check_depver`: an atom's version, when it has one, is valid and follows one
/// of `< > = ~ >= <= >~ <~`.
fn check_depver(atom: &str) -> Result<(), String> {
    let Some(op_at) = atom.find(['<', '>', '=', '~']) else {
        return Ok(());
    };
    let rest = &atom[op_at..];
    let ver_at = rest
        .find(|c: char| !"<>=~".contains(c))
        .unwrap_or(rest.len());
    let (op, ver) = rest.split_at(ver_at);
    if !apk::version::is_valid(ver) {
        return Err(format!("Invalid version: {ver}"));
    }
    if !["<", ">", "=", "~", ">=", "<=", ">~", "<~"].contains(&op) {
        return Err(format!("Invalid version separator '{op}'"));
    }
    Ok(())
}

/// `Name <user@host.domain>`, as abuild's `check_maintainer` accepts.
fn is_rfc822(m: &str) -> bool {
    let Some((name, addr)) = m.split_once(" <") else {
        return false;
    };
    !name.is_empty()
        && addr
            .strip_suffix('>')
            .and_then(|a| a.split_once('@'))
            .is_some_and(|(_, host)| host.contains('.'))
}

/// The 1-based line assigning `field` (`field=` at a line start, or a `# Maintainer`
/// comment), if any.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let (needle, trim_hash) = match field.strip_prefix("# ") {
        Some(word) => (word.to_string(), true),
        None => (format!("{field}="), false),
    };
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            if trim_hash {
                l.starts_with('#') && l.contains(&needle)
            } else {
                l.starts_with(&needle) || l.starts_with(&format!("{field}()"))
            }
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depvers_follow_abuild() {
        assert!(check_depver("foo").is_ok());
        assert!(check_depver("foo>=1.2").is_ok());
        assert!(check_depver("so:libc.musl-x86_64.so.1").is_ok());
        assert!(check_depver("foo=bar").is_err());
        assert!(check_depver("foo=~1.0").is_err());
        assert!(check_depver("foo>1.0_invalid").is_err());
    }

    #[test]
    fn names_and_maintainers() {
        assert!(valid_name("py3-foo.bar+x"));
        assert!(!valid_name("-foo") && !valid_name("foo bar") && !valid_name(""));
        assert!(is_rfc822("Jane Doe <jane@example.org>"));
        assert!(!is_rfc822("jane@example.org") && !is_rfc822("Jane <jane@localhost>"));
    }
}
