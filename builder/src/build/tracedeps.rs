//! After package(): what to strip, and the dependencies abuild traces and how it names
//! them: DT_NEEDED → `so:` depends, sonames of the shared objects in `lib`, `usr/lib`,
//! `$ldpath` and the rpaths → `so:NAME=VER` provides (VER from the file name;
//! `$sonameprefix`, `$somask`, `ldpath-recursive`, `sover-namecheck` as abuild reads
//! them), executables in bin directories → `cmd:NAME=PKGVER`, `.pc` files → `pc:`
//! provides and depends ([`super::pkgconf`]), Python modules → `pyX.Y:` provides and a
//! `python3~X.Y` depend, `.debug` files → conflicts pinning the `-dbg` package to its
//! binaries' version, and symlinks into another subpackage → a dependency on it.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::BuildError;
use super::pkgconf;

/// Directories whose executables become `cmd:` provides (abuild's list).
const BIN_DIRS: &[&str] = &["bin", "sbin", "usr/bin", "usr/sbin"];

/// How the recipe asks sonames to be traced.
#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    /// The package is `noarch`: no shared objects are scanned (abuild's
    /// `scan_shared_objects` skips them).
    pub noarch: bool,
    /// `$sonameprefix`: prepended to provided sonames.
    pub sonameprefix: String,
    /// `$pcprefix`: prepended to provided and required pkg-config names.
    pub pcprefix: String,
    /// `$somask`: sonames neither provided nor depended on.
    pub somask: Vec<String>,
    /// `$ldpath`: more directories (colon-separated) whose shared objects are provided.
    pub ldpath: String,
    /// `options="ldpath-recursive"`: scan those directories recursively.
    pub ldpath_recursive: bool,
    /// `options="sover-namecheck"`: an unversioned file does not provide a versioned soname.
    pub sover_namecheck: bool,
}

/// What one package's tree provides and needs.
#[derive(Clone, Debug, Default)]
pub struct Traced {
    /// `so:`, `cmd:`, `pc:`, `py` provides.
    pub provides: BTreeSet<String>,
    /// sonames needed (without `so:` or prefix), self-provided ones left out.
    pub needed: BTreeSet<String>,
    /// sonames provided (with the prefix, without `so:`).
    pub sonames: BTreeSet<String>,
    /// pkg-config requirements (with constraint, without `pc:` or prefix).
    pub pc_requires: BTreeSet<String>,
    /// pkg-config modules provided (with the prefix).
    pub pc_provides: BTreeSet<String>,
    /// Targets of symlinks (absolute inside the package root) that are not in this tree.
    pub dangling_links: BTreeSet<PathBuf>,
    /// Has `usr/lib/pkgconfig` or `usr/share/pkgconfig` (abuild then depends on pkgconfig).
    pub has_pkgconfig_dir: bool,
    /// `python3~X.Y` when it ships site-packages.
    pub python: Option<String>,
    /// Files under `usr/lib/debug` named `*.debug`, as the paths of their binaries.
    pub debug_targets: BTreeSet<PathBuf>,
}

/// Whether `path` starts with the ELF magic.
pub(crate) fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs_err::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Every entry under `root`, relative, sorted.
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

/// An ELF file parsed, if `path` is one.
fn elf_bytes(path: &Path) -> Result<Option<Vec<u8>>, BuildError> {
    if !is_elf(path) {
        return Ok(None);
    }
    Ok(Some(fs_err::read(path)?))
}

/// The files abuild's `stripbin` strips: ELF executables and shared objects (not those
/// of the standalone OS ABI, nor what is under `usr/lib/debug`), relative to `root`.
pub fn strip_targets(root: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let mut out = Vec::new();
    for (rel, md) in files(root) {
        if !md.is_file() || rel.starts_with("usr/lib/debug") {
            continue;
        }
        let Some(bytes) = elf_bytes(&root.join(&rel))? else {
            continue;
        };
        let Ok(elf) = goblin::elf::Elf::parse(&bytes) else {
            continue;
        };
        let t = elf.header.e_type;
        let standalone = elf.header.e_ident[goblin::elf::header::EI_OSABI] == 255;
        if (t == goblin::elf::header::ET_DYN || t == goblin::elf::header::ET_EXEC) && !standalone {
            out.push(rel);
        }
    }
    Ok(out)
}

/// Traces `root`, the tree of package `name` of version `fullver`.
pub fn trace(
    root: &Path,
    name: &str,
    fullver: &str,
    opts: &TraceOptions,
) -> Result<Traced, BuildError> {
    let mut t = Traced {
        has_pkgconfig_dir: root.join("usr/lib/pkgconfig").is_dir()
            || root.join("usr/share/pkgconfig").is_dir(),
        ..Traced::default()
    };
    let entries = files(root);
    for (rel, md) in &entries {
        links_and_commands(root, rel, md, fullver, &mut t)?;
        if let Ok(target) = rel.strip_prefix("usr/lib/debug")
            && md.is_file()
            && let Some(bin) = target.to_string_lossy().strip_suffix(".debug")
        {
            t.debug_targets.insert(PathBuf::from(bin));
        }
    }
    if !opts.noarch {
        shared_objects(root, &entries, opts, &mut t)?;
    }
    let pc = pkgconf::scan(root);
    for (module, ver) in &pc.provides {
        let module = format!("{}{module}", opts.pcprefix);
        t.provides.insert(format!("pc:{module}={ver}"));
        t.pc_provides.insert(module);
    }
    t.pc_requires = pc.requires;
    for py in pkgconf::python_provides(root) {
        t.provides.insert(format!("{py}={fullver}"));
    }
    t.python = pkgconf::python_depends(root, name).map_err(|problem| BuildError::Postcheck {
        package: name.to_string(),
        problem,
    })?;
    Ok(t)
}

/// A symlink whose target is not in the tree, and `cmd:` for executables in bin dirs.
fn links_and_commands(
    root: &Path,
    rel: &Path,
    md: &std::fs::Metadata,
    fullver: &str,
    t: &mut Traced,
) -> Result<(), BuildError> {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if md.file_type().is_symlink() {
        let target = fs_err::read_link(root.join(rel))?;
        let abs = if target.is_absolute() {
            normalize(&target)
        } else {
            normalize(&rel.parent().unwrap_or(Path::new("")).join(&target))
        };
        if root.join(&abs).symlink_metadata().is_err() {
            t.dangling_links.insert(abs);
        }
    }
    let parent = rel.parent().map(|p| p.to_string_lossy().into_owned());
    if parent.as_deref().is_some_and(|p| BIN_DIRS.contains(&p))
        && !name.contains('@')
        && (md.file_type().is_symlink() || (md.is_file() && md.permissions().mode() & 0o111 != 0))
    {
        t.provides.insert(format!("cmd:{name}={fullver}"));
    }
    Ok(())
}

/// abuild's `scan_shared_objects`: sonames provided by the shared objects of the library
/// directories, and the sonames every ELF file needs that the package does not provide.
fn shared_objects(
    root: &Path,
    entries: &[(PathBuf, std::fs::Metadata)],
    opts: &TraceOptions,
    t: &mut Traced,
) -> Result<(), BuildError> {
    let mut elves = Vec::new();
    for (rel, md) in entries {
        if !md.is_file() {
            continue;
        }
        if let Some(bytes) = elf_bytes(&root.join(rel))? {
            elves.push((rel.clone(), bytes));
        }
    }
    let dirs = library_dirs(root, &elves, opts);
    let mut provided: BTreeMap<String, String> = BTreeMap::new();
    let mut needed = BTreeSet::new();
    for (rel, bytes) in &elves {
        let Ok(elf) = goblin::elf::Elf::parse(bytes) else {
            continue;
        };
        let et = elf.header.e_type;
        if et == goblin::elf::header::ET_DYN || et == goblin::elf::header::ET_EXEC {
            needed.extend(elf.libraries.iter().map(|l| (*l).to_string()));
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let in_dir = dirs
            .iter()
            .any(|d| parent == d || (opts.ldpath_recursive && parent.starts_with(d)));
        if in_dir && let Some((soname, sover)) = provided_soname(rel, elf.soname, opts) {
            // abuild keeps the first non-zero version seen for a soname.
            let slot = provided.entry(soname).or_insert_with(|| "0".into());
            if slot == "0" {
                *slot = sover;
            }
        }
    }
    for (soname, sover) in provided {
        let soname = format!("{}{soname}", opts.sonameprefix);
        t.provides.insert(format!("so:{soname}={sover}"));
        t.sonames.insert(soname);
    }
    t.needed = needed
        .into_iter()
        .filter(|n| !t.sonames.contains(&format!("{}{n}", opts.sonameprefix)))
        .filter(|n| !opts.somask.contains(n))
        .collect();
    Ok(())
}

/// The soname and version a shared object provides: its SONAME (else its file name),
/// when that names a shared object; the version from the file name.
fn provided_soname(
    rel: &Path,
    soname: Option<&str>,
    opts: &TraceOptions,
) -> Option<(String, String)> {
    let file = rel.file_name()?.to_string_lossy().into_owned();
    let soname = soname.map_or_else(|| file.clone(), str::to_string);
    let shared = soname.ends_with(".so") || soname.contains(".so.") || soname.ends_with(".c32");
    let versioned = |n: &str| {
        n.split_once(".so.")
            .is_some_and(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()))
    };
    if soname.ends_with(".o") || !shared || opts.somask.contains(&soname) {
        return None;
    }
    let sover = match file.split_once(".so.") {
        Some((_, v)) if versioned(&file) => v.to_string(),
        _ if file.ends_with(".so") && versioned(&soname) && opts.sover_namecheck => return None,
        _ => "0".to_string(),
    };
    Some((soname, sover))
}

/// `lib`, `usr/lib`, the `$ldpath` directories and the rpaths of the package's ELF files
/// (`$ORIGIN` resolved), those that exist in the tree, relative.
fn library_dirs(root: &Path, elves: &[(PathBuf, Vec<u8>)], opts: &TraceOptions) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = vec!["lib".into(), "usr/lib".into()];
    let mut add = |d: PathBuf| {
        if !d.as_os_str().is_empty() && root.join(&d).is_dir() && !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    for d in opts.ldpath.split(':').filter(|d| !d.is_empty()) {
        add(normalize(Path::new(d)));
    }
    for (rel, bytes) in elves {
        let Ok(elf) = goblin::elf::Elf::parse(bytes) else {
            continue;
        };
        let origin = format!("/{}", rel.parent().unwrap_or(Path::new("")).display());
        for path in elf.rpaths.iter().chain(&elf.runpaths) {
            for p in path.split(':') {
                let p = p.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin);
                if p.starts_with('/') {
                    add(normalize(Path::new(&p)));
                }
            }
        }
    }
    dirs
}

/// A path made relative to the package root, `.` and `..` resolved.
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

/// What the build root has installed, for naming dependencies as abuild does inside it:
/// the names its packages provide, and which package owns each library file.
#[derive(Clone, Debug, Default)]
pub struct Installed {
    /// Package names and provided names (versions dropped).
    pub provides: BTreeSet<String>,
    /// `usr/lib/NAME` and `lib/NAME` → the owning package.
    pub libraries: BTreeMap<String, String>,
}

impl Installed {
    /// Reads a root's `lib/apk/db/installed` (empty when it has none).
    pub fn read(root: &Path) -> Result<Self, BuildError> {
        let path = root.join("lib/apk/db/installed");
        let Ok(bytes) = fs_err::read(&path) else {
            return Ok(Self::default());
        };
        let db = apk::installed::InstalledDb::from_bytes(&bytes).map_err(|e| BuildError::Root {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut out = Self::default();
        for p in &db.packages {
            out.provides.insert(p.entry.name.clone());
            out.provides.extend(
                p.entry
                    .provides
                    .iter()
                    .map(|pr| pr.split('=').next().unwrap_or(pr).to_string()),
            );
            for d in p
                .dirs
                .iter()
                .filter(|d| d.path == "usr/lib" || d.path == "lib")
            {
                for f in &d.files {
                    out.libraries
                        .insert(format!("{}/{}", d.path, f.name), p.entry.name.clone());
                }
            }
        }
        Ok(out)
    }
}

/// Automatic dependencies, and abuild's warnings about them.
pub type AutoDepends = (BTreeMap<String, Vec<String>>, Vec<String>);

/// The automatic dependencies of each package of one build, named as abuild names them
/// and in its order: first `SIBLING=VERSION` for a symlink into a sibling's files,
/// `python3~X.Y`, and the `!BIN<VER !BIN>VER` conflicts of a debug package; then
/// `pkgconfig` for a package shipping a pkgconfig directory, `so:NAME` and `pc:NAME` for
/// what its ELF and `.pc` files need (prefixed when a sibling provides it prefixed). In a
/// build root (`installed`), a soname nothing installed provides names the package
/// owning the library file, and one no package has fails; a pkg-config module nothing
/// provides is left out with a warning (abuild's `trace_apk_deps`).
pub fn auto_depends(
    traced: &BTreeMap<String, (PathBuf, Traced)>,
    fullver: &str,
    prefixes: (&str, &str),
    installed: Option<&Installed>,
) -> Result<AutoDepends, BuildError> {
    let (soprefix, pcprefix) = prefixes;
    let sibling_so: BTreeSet<&String> = traced.values().flat_map(|(_, t)| &t.sonames).collect();
    let sibling_pc: BTreeSet<&String> = traced.values().flat_map(|(_, t)| &t.pc_provides).collect();
    let (mut out, mut warnings) = (BTreeMap::new(), Vec::new());
    for (name, (_, t)) in traced {
        let mut first = links(traced, name, t, fullver);
        first.extend(t.python.iter().cloned());
        first.extend(debug_conflicts(traced, t, fullver));
        let mut auto = BTreeSet::new();
        if t.has_pkgconfig_dir {
            auto.insert("pkgconfig".to_string());
        }
        for so in &t.needed {
            let prefixed = format!("{soprefix}{so}");
            if sibling_so.contains(&prefixed) {
                auto.insert(format!("so:{prefixed}"));
            } else {
                auto.insert(so_depend(name, so, installed)?);
            }
        }
        for pc in &t.pc_requires {
            let module = pc.split(['<', '>', '=', '~']).next().unwrap_or(pc);
            if sibling_pc.contains(&format!("{pcprefix}{module}")) {
                auto.insert(format!("pc:{pcprefix}{pc}"));
            } else if installed.is_none_or(|i| i.provides.contains(&format!("pc:{module}"))) {
                auto.insert(format!("pc:{pc}"));
            } else {
                warnings.push(format!("{name}: Could not find any provider for pc:{pc}"));
            }
        }
        out.insert(name.clone(), first.into_iter().chain(auto).collect());
    }
    Ok((out, warnings))
}

/// `so:NAME`, or in a build root where nothing provides it, the package owning the file.
fn so_depend(name: &str, so: &str, installed: Option<&Installed>) -> Result<String, BuildError> {
    let Some(installed) = installed else {
        return Ok(format!("so:{so}"));
    };
    if installed.provides.contains(&format!("so:{so}")) {
        return Ok(format!("so:{so}"));
    }
    ["usr/lib", "lib"]
        .iter()
        .find_map(|d| installed.libraries.get(&format!("{d}/{so}")).cloned())
        .ok_or_else(|| BuildError::Postcheck {
            package: name.to_string(),
            problem: format!(
                "{so}: path not found: no package of the build root provides so:{so}; add \
                 the package providing it to makedepends"
            ),
        })
}

/// `SIBLING=VERSION` for each symlink whose target only one sibling holds.
fn links(
    traced: &BTreeMap<String, (PathBuf, Traced)>,
    name: &str,
    t: &Traced,
    fullver: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
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
            out.insert(format!("{sib}={fullver}"));
        }
    }
    out
}

/// A debug package conflicts with any other version of the packages its `.debug` files
/// belong to (abuild's `scan_debuginfo_targets`).
fn debug_conflicts(
    traced: &BTreeMap<String, (PathBuf, Traced)>,
    t: &Traced,
    fullver: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for bin in &t.debug_targets {
        for (other, (root, _)) in traced {
            let path = root.join(bin);
            let executable = path
                .metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
            if executable {
                out.insert(format!("!{other}<{fullver}"));
                out.insert(format!("!{other}>{fullver}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sonames_and_versions_follow_scan_shared_objects() {
        let o = TraceOptions::default();
        let p = |f: &str, s: Option<&str>| provided_soname(Path::new(f), s, &o);
        assert_eq!(
            p("usr/lib/libfoo.so.1.2.3", Some("libfoo.so.1")),
            Some(("libfoo.so.1".into(), "1.2.3".into()))
        );
        assert_eq!(
            p("usr/lib/libbar.so", None),
            Some(("libbar.so".into(), "0".into()))
        );
        assert_eq!(p("usr/lib/plugin.bin", None), None);
        let check = TraceOptions {
            sover_namecheck: true,
            ..TraceOptions::default()
        };
        assert_eq!(
            provided_soname(Path::new("usr/lib/libx.so"), Some("libx.so.2"), &check),
            None
        );
    }
}
