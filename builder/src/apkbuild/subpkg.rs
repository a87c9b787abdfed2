//! Subpackage entries (`name[:split[:arch]]`) as abuild's `subpkg_set` reads them: the
//! split function defaults from the name's last `-` part (or the completion kind), and
//! the arch defaults to `noarch` for the kinds abuild knows hold no binaries (`-doc`,
//! `-openrc`, `-lang`, shell completions, `-pyc`, `-nftrules`, `-systemd`, `-udev`),
//! else to the main package's; `all` means `$CARCH`.

/// One entry of `subpackages`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Subpackage {
    /// Package name.
    pub name: String,
    /// The split function that fills `$subpkgdir`.
    pub func: String,
    /// Its arch.
    pub arch: String,
}

impl Subpackage {
    /// Reads one entry for a main package of arch `pkgarch`, building for `carch`.
    pub fn parse(spec: &str, pkgarch: &str, carch: &str) -> Self {
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default().to_string();
        let func = parts
            .next()
            .filter(|f| !f.is_empty())
            .map_or_else(|| default_split(&name), str::to_string);
        let arch = match parts.next().filter(|a| !a.is_empty()) {
            Some("all") => carch.to_string(),
            Some(a) => a.to_string(),
            None if holds_no_binaries(&name) => "noarch".to_string(),
            None => pkgarch.to_string(),
        };
        Self { name, func, arch }
    }
}

/// abuild's default split function for a subpackage name.
fn default_split(name: &str) -> String {
    for (suffix, func) in [
        ("-bash-completion", "bashcomp"),
        ("-zsh-completion", "zshcomp"),
        ("-fish-completion", "fishcomp"),
    ] {
        if name.ends_with(suffix) {
            return func.to_string();
        }
    }
    name.rsplit('-').next().unwrap_or(name).to_string()
}

/// The subpackage kinds abuild makes `noarch` when the entry names no arch.
fn holds_no_binaries(name: &str) -> bool {
    [
        "-doc",
        "-openrc",
        "-lang",
        "sh-completion",
        "-pyc",
        "-nftrules",
        "-systemd",
        "-udev",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(spec: &str) -> (String, String, String) {
        let s = Subpackage::parse(spec, "x86_64", "x86_64");
        (s.name, s.func, s.arch)
    }

    #[test]
    fn entries_follow_subpkg_set() {
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(sub("foo-dev"), t("foo-dev", "dev", "x86_64"));
        assert_eq!(sub("foo-doc"), t("foo-doc", "doc", "noarch"));
        assert_eq!(
            sub("foo-bash-completion"),
            t("foo-bash-completion", "bashcomp", "noarch")
        );
        assert_eq!(sub("foo-lang-de"), t("foo-lang-de", "de", "x86_64"));
        assert_eq!(sub("foo-data::noarch"), t("foo-data", "data", "noarch"));
        assert_eq!(sub("foo-x:_split:all"), t("foo-x", "_split", "x86_64"));
        assert_eq!(sub("foo-doc:_doc:x86_64"), t("foo-doc", "_doc", "x86_64"));
        assert_eq!(sub("foo"), t("foo", "foo", "x86_64"));
    }
}
