//! After package(): strip ELF files and trace dependencies the way abuild names them:
//! DT_NEEDED → `so:` depends, SONAME → `so:NAME=VER` provides (VER from the file name),
//! executables in bin directories → `cmd:NAME=PKGVER` provides, `.pc` files → `pc:` provides
//! and depends, and symlinks into another subpackage → a dependency on it.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::BuildError;

/// Directories whose executables become `cmd:` provides (abuild's list).
const BIN_DIRS: &[&str] = &["bin", "sbin", "usr/bin", "usr/sbin"];
/// Directories whose shared objects become `so:` provides (abuild's scanelf paths).
const LIB_DIRS: &[&str] = &["lib", "usr/lib"];

/// What one package's tree provides and needs.
#[derive(Clone, Debug, Default)]
pub struct Traced {
    /// `so:`, `cmd:`, `pc:` provides.
    pub provides: BTreeSet<String>,
    /// sonames needed (without `so:`).
    pub needed: BTreeSet<String>,
    /// sonames provided (without `so:`).
    pub sonames: BTreeSet<String>,
    /// pkg-config modules required.
    pub pc_requires: BTreeSet<String>,
    /// pkg-config modules provided.
    pub pc_provides: BTreeSet<String>,
    /// Targets of symlinks (absolute inside the package root) that are not in this tree.
    pub dangling_links: BTreeSet<PathBuf>,
    /// Has `usr/lib/pkgconfig` or `usr/share/pkgconfig` (abuild then depends on pkgconfig).
    pub has_pkgconfig_dir: bool,
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs_err::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Every regular file under `root`, relative, sorted.
fn files(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let md = e.path().symlink_metadata().ok()?;
            Some((e.path().strip_prefix(root).ok()?.to_path_buf(), md))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Strips ELF executables and shared objects under `root` with binutils' `strip`, as
/// abuild's `stripbin` does (`--strip-unneeded` for shared objects).
pub fn strip(root: &Path) -> Result<usize, BuildError> {
    let mut n = 0;
    for (rel, md) in files(root) {
        if !md.is_file() {
            continue;
        }
        let path = root.join(&rel);
        let name = rel.to_string_lossy();
        if name.ends_with(".o") || name.ends_with(".a") || name.ends_with(".ko") || !is_elf(&path) {
            continue;
        }
        let bytes = fs_err::read(&path)?;
        let Ok(elf) = goblin::elf::Elf::parse(&bytes) else {
            continue;
        };
        // PIE executables are ET_DYN too; abuild strips them like shared objects.
        let opts: &[&str] = if elf.header.e_type == goblin::elf::header::ET_DYN {
            &["--strip-unneeded"]
        } else if elf.header.e_type == goblin::elf::header::ET_EXEC {
            &[]
        } else {
            continue;
        };
        // strip needs write permission; restore the mode after.
        let mode = md.permissions().mode();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o200))?;
        let status = Command::new("strip")
            .args(opts)
            .arg(&path)
            .status()
            .map_err(|e| BuildError::Strip {
                path: path.clone(),
                reason: format!(
                    "failed to run `strip` ({e}): install binutils or set options=\"!strip\""
                ),
            })?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        if !status.success() {
            return Err(BuildError::Strip {
                path,
                reason: format!("strip exited with {status}"),
            });
        }
        n += 1;
    }
    Ok(n)
}

/// Traces `root` (one package's tree) for a package of version `fullver`. Like abuild,
/// shared objects are not scanned in `noarch` packages.
pub fn trace(root: &Path, fullver: &str, noarch: bool) -> Result<Traced, BuildError> {
    let mut t = Traced {
        has_pkgconfig_dir: root.join("usr/lib/pkgconfig").is_dir()
            || root.join("usr/share/pkgconfig").is_dir(),
        ..Traced::default()
    };
    for (rel, md) in files(root) {
        let path = root.join(&rel);
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = rel.parent().map(|p| p.to_string_lossy().into_owned());
        if md.file_type().is_symlink() {
            let target = fs_err::read_link(&path)?;
            let abs = if target.is_absolute() {
                target.strip_prefix("/").unwrap_or(&target).to_path_buf()
            } else {
                normalize(&rel.parent().unwrap_or(Path::new("")).join(&target))
            };
            if root.join(&abs).symlink_metadata().is_err() {
                t.dangling_links.insert(abs);
            }
        }
        // cmd: any executable (file or symlink) directly in a bin directory.
        if parent.as_deref().is_some_and(|p| BIN_DIRS.contains(&p))
            && !name.contains('@')
            && (md.file_type().is_symlink()
                || (md.is_file() && md.permissions().mode() & 0o111 != 0))
        {
            t.provides.insert(format!("cmd:{name}={fullver}"));
        }
        if !md.is_file() {
            continue;
        }
        if name.ends_with(".pc") && parent.as_deref().is_some_and(|p| p.ends_with("pkgconfig")) {
            let text = fs_err::read_to_string(&path).unwrap_or_default();
            let module = name.trim_end_matches(".pc").to_string();
            let ver = pc_field(&text, "Version").unwrap_or_else(|| "0".into());
            t.provides.insert(format!("pc:{module}={ver}"));
            t.pc_provides.insert(module);
            for field in ["Requires", "Requires.private"] {
                if let Some(req) = pc_field(&text, field) {
                    for m in pc_modules(&req) {
                        t.pc_requires.insert(m);
                    }
                }
            }
            continue;
        }
        if noarch || !is_elf(&path) {
            continue;
        }
        let bytes = fs_err::read(&path)?;
        let Ok(elf) = goblin::elf::Elf::parse(&bytes) else {
            continue;
        };
        let etype = elf.header.e_type;
        if etype == goblin::elf::header::ET_DYN || etype == goblin::elf::header::ET_EXEC {
            for lib in &elf.libraries {
                t.needed.insert((*lib).to_string());
            }
        }
        let in_lib_dir = parent.as_deref().is_some_and(|p| LIB_DIRS.contains(&p));
        let shared_name = name.ends_with(".so") || name.contains(".so.");
        if in_lib_dir
            && shared_name
            && let Some(soname) = elf.soname
        {
            // abuild: the version is what follows `.so.` in the file name, else 0.
            let sover = name.split_once(".so.").map_or("0", |(_, v)| v).to_string();
            t.provides.insert(format!("so:{soname}={sover}"));
            t.sonames.insert(soname.to_string());
        }
    }
    // A package never depends on what it provides itself.
    let Traced {
        needed,
        sonames,
        pc_requires,
        pc_provides,
        ..
    } = &mut t;
    needed.retain(|n| !sonames.contains(n));
    pc_requires.retain(|m| !pc_provides.contains(m));
    Ok(t)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn pc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Module names of a pkg-config `Requires:` value (versions dropped).
fn pc_modules(req: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for w in req.split([',', ' ']).filter(|w| !w.is_empty()) {
        if skip {
            skip = false;
            continue;
        }
        if matches!(w, "=" | "<" | ">" | "<=" | ">=" | "!=") {
            skip = true;
            continue;
        }
        out.push(w.to_string());
    }
    out
}

/// The automatic dependencies of each package of one build, named as abuild names them:
/// `so:NAME` and `pc:NAME` for what the ELF files and `.pc` files need (whether a sibling or
/// another package provides it), `SIBLING=VERSION` for a symlink into a sibling's files,
/// and `pkgconfig` for a package shipping a pkgconfig directory.
pub fn auto_depends(
    traced: &BTreeMap<String, (PathBuf, Traced)>,
    fullver: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, (_, t)) in traced {
        let mut links = BTreeSet::new();
        for target in &t.dangling_links {
            let owners: Vec<&String> = traced
                .iter()
                .filter(|(_, (root, _))| root.join(target).symlink_metadata().is_ok())
                .map(|(n, _)| n)
                .collect();
            // abuild ignores a target found in several packages: it cannot tell which.
            if let [sib] = owners.as_slice()
                && *sib != name
            {
                links.insert(format!("{sib}={fullver}"));
            }
        }
        let mut auto = BTreeSet::new();
        if t.has_pkgconfig_dir {
            auto.insert("pkgconfig".to_string());
        }
        auto.extend(t.needed.iter().map(|so| format!("so:{so}")));
        auto.extend(t.pc_requires.iter().map(|m| format!("pc:{m}")));
        out.insert(name.clone(), links.into_iter().chain(auto).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pc_requires_drop_versions() {
        assert_eq!(
            pc_modules("glib-2.0 >= 2.50, zlib"),
            vec!["glib-2.0", "zlib"]
        );
    }
}
