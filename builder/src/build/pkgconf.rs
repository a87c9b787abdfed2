//! pkg-config and Python names the tracer gives a package, as abuild's
//! `prepare_pkgconfig_provides`, `scan_pkgconfig_depends`, `prepare_py_provides` and
//! `scan_python3_dependency` do: `pc:MODULE=VERSION` for each `.pc` file in
//! `usr/{lib,share}/pkgconfig` (and what its `Provides:` line names), `pc:` requirements
//! with their version constraints, `pyX.Y:module` for the modules in `site-packages`, and
//! `python3~X.Y` for a package that ships them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The directories whose `.pc` files a package provides.
const PC_DIRS: &[&str] = &["usr/lib/pkgconfig", "usr/share/pkgconfig"];

/// What a package's `.pc` files provide and require.
#[derive(Clone, Debug, Default)]
pub struct PkgConfig {
    /// Module → version (`pc:` provides, without the prefix).
    pub provides: BTreeMap<String, String>,
    /// Required modules with their constraint (`glib-2.0>=2.50`), self-provided ones left out.
    pub requires: BTreeSet<String>,
}

/// Reads the `.pc` files of `root`.
pub fn scan(root: &Path) -> PkgConfig {
    let mut out = PkgConfig::default();
    let mut texts = Vec::new();
    for dir in PC_DIRS {
        let Ok(rd) = fs_err::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Some(module) = f
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pc"))
            else {
                continue;
            };
            let text = fs_err::read_to_string(&f).unwrap_or_default();
            let version = field(&text, "Version").unwrap_or_default();
            out.provides
                .insert(module.to_string(), apk_version(&version));
            for (name, ver) in atoms(&field(&text, "Provides").unwrap_or_default()) {
                out.provides.insert(
                    name,
                    ver.map_or_else(|| "0".into(), |(_, v)| apk_version(&v)),
                );
            }
            texts.push(text);
        }
    }
    for text in texts {
        for key in ["Requires", "Requires.private"] {
            for (name, constraint) in atoms(&field(&text, key).unwrap_or_default()) {
                if out.provides.contains_key(&name) {
                    continue;
                }
                out.requires.insert(match constraint {
                    Some((op, v)) => format!("{name}{op}{}", apk_version(&v)),
                    None => name,
                });
            }
        }
    }
    out
}

/// A `.pc` field's value (`Key: value`), with `${var}` references left as they are.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// `a, b >= 1.2, c = 3` → `[(a, None), (b, Some((">=", "1.2"))), (c, Some(("=", "3")))]`.
fn atoms(list: &str) -> Vec<(String, Option<(String, String)>)> {
    let words: Vec<&str> = list
        .split([',', ' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let name = words[i].to_string();
        let is_op = |w: &str| matches!(w, "=" | "<" | ">" | "<=" | ">=" | "!=");
        if words.get(i + 1).is_some_and(|w| is_op(w)) {
            let ver = words.get(i + 2).unwrap_or(&"").to_string();
            out.push((name, Some((words[i + 1].to_string(), ver))));
            i += 3;
        } else {
            out.push((name, None));
            i += 1;
        }
    }
    out
}

/// abuild's `pc_to_apk_ver`: `.alpha`/`-beta`/`.rc`/`.pre` become `_alpha`…, a leading
/// `v` goes, an empty version is `0`.
pub fn apk_version(v: &str) -> String {
    let mut v = v.to_string();
    for tag in ["alpha", "beta", "rc", "pre"] {
        for sep in ['.', '-'] {
            let from = format!("{sep}{tag}");
            if let Some(at) = v.find(&from) {
                v.replace_range(at..at + 1, "_");
                break;
            }
        }
    }
    let v = v.strip_prefix('v').unwrap_or(&v);
    if v.is_empty() {
        "0".into()
    } else {
        v.to_string()
    }
}

/// `pyX.Y:module` for the packages and modules in `usr/lib/pythonX.Y/site-packages`
/// (directories with an `__init__.py`, or `.py` files).
pub fn python_provides(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (ver, site) in site_packages(root) {
        let Ok(rd) = fs_err::read_dir(&site) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let module = if path.is_dir() {
                if !path.join("__init__.py").is_file() {
                    continue;
                }
                name
            } else if let Some(stem) = name
                .strip_suffix(".py")
                .filter(|_| name.to_ascii_lowercase().ends_with(".py"))
            {
                stem.to_string()
            } else {
                continue;
            };
            out.insert(format!("py{ver}:{module}"));
        }
    }
    out
}

/// `python3~X.Y` for a package with `usr/lib/python3.Y/site-packages` (unless it is that
/// python itself); more than one python version is an error.
pub fn python_depends(root: &Path, name: &str) -> Result<Option<String>, String> {
    let found: Vec<String> = site_packages(root)
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| v.starts_with('3'))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [ver] if name == "python3" || name == format!("python{ver}") => Ok(None),
        [ver] => Ok(Some(format!("python3~{ver}"))),
        _ => Err("package contains python3 modules for conflicting python3 versions".into()),
    }
}

/// (X.Y, dir) of each `usr/lib/pythonX.Y/site-packages`.
fn site_packages(root: &Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(rd) = fs_err::read_dir(root.join("usr/lib")) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ver = name.strip_prefix("python")?.to_string();
            let site = e.path().join("site-packages");
            site.is_dir().then_some((ver, site))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_pc_to_apk_ver() {
        assert_eq!(apk_version("1.0.rc1"), "1.0_rc1");
        assert_eq!(apk_version("1.2.3.rc5"), "1.2.3_rc5");
        assert_eq!(apk_version("v2.0"), "2.0");
        assert_eq!(apk_version(""), "0");
        assert_eq!(apk_version("3.1-beta2"), "3.1_beta2");
    }

    #[test]
    fn atom_lists_keep_constraints() {
        assert_eq!(
            atoms("unver, fixed = 0.1, bound >= 1.2.3.rc5"),
            [
                ("unver".to_string(), None),
                (
                    "fixed".to_string(),
                    Some(("=".to_string(), "0.1".to_string()))
                ),
                (
                    "bound".to_string(),
                    Some((">=".to_string(), "1.2.3.rc5".to_string()))
                ),
            ]
        );
    }
}
