//! What abuild checks in each package tree after the split functions (`postcheck`,
//! `archcheck`) and tidies before writing (`create_apks`): files where Alpine packages
//! must not put them, uncompressed man pages, set-uid executables, text relocations,
//! binaries in a `noarch` package, libtool `.la` files, and the empty directories the main
//! package keeps only with `options="keepdirs"`. Each check is switched off by the option
//! abuild names (`!fhs`, `lib64`, `suid`, `setcap`, `textrels`, `!archcheck`, `libtool`,
//! `charset.alias`), per subpackage with `name::option`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::BuildError;
use super::tracedeps::is_elf;
use crate::apkbuild::Recipe;

/// Directories abuild's FHS check keeps empty (`!fhs` allows them).
const NON_FHS: &[&str] = &[
    "srv",
    "usr/local",
    "opt",
    "tmp",
    "var/tmp",
    "var/lock",
    "var/empty",
    "home",
    "sys",
    "proc",
    "mnt",
    "dev",
];

/// Directories of the main package removed when empty (unless `keepdirs`), children first.
const EMPTY_DIRS: &[&str] = &["usr/lib", "usr/bin", "usr/share", "usr", "etc", "lib"];

/// Checks one package's tree; returns abuild's warnings, or the first error.
pub fn postcheck(
    recipe: &Recipe,
    name: &str,
    dir: &Path,
    arch: &str,
) -> Result<Vec<String>, BuildError> {
    let opt = |o: &str| recipe.has_option_for(name, o);
    let fail = |problem: String| BuildError::Postcheck {
        package: name.to_string(),
        problem,
    };
    if !opt("!fhs") {
        fhs(dir).map_err(fail)?;
    }
    if !opt("lib64") {
        for d in ["lib64", "usr/lib64"] {
            if dir.join(d).symlink_metadata().is_ok() {
                return Err(fail(format!(
                    "Packages must not put anything under /{d}, use /usr/lib instead \
                     (or options=\"lib64\")"
                )));
            }
        }
    }
    if !opt("libtool") {
        remove_la_files(dir)?;
    }
    if dir.join("usr/lib/charset.alias").exists() && !opt("charset.alias") {
        return Err(fail("Found /usr/lib/charset.alias".into()));
    }
    let files = walk(dir)?;
    check_files(&files, dir, &opt).map_err(fail)?;
    if arch == "noarch" && !opt("!archcheck") && has_arch_binaries(&files, dir) {
        return Err(fail(
            "Arch specific binaries found so arch must not be set to \"noarch\"".into(),
        ));
    }
    Ok(warnings(name, dir, !opt("!usrmerge")))
}

/// Removes the main package's empty top directories, as `create_apks` does.
pub fn remove_empty_dirs(recipe: &Recipe, pkgdir: &Path) {
    if recipe.has_option("keepdirs") {
        return;
    }
    for d in EMPTY_DIRS {
        // Fails (and is meant to) when the directory is missing or not empty.
        let _ = fs_err::remove_dir(pkgdir.join(d));
    }
}

fn fhs(dir: &Path) -> Result<(), String> {
    for d in NON_FHS {
        if fs_err::read_dir(dir.join(d)).is_ok_and(|mut rd| rd.next().is_some()) {
            return Err(format!(
                "Packages must not put anything under /{d} (or options=\"!fhs\")"
            ));
        }
    }
    if dir.join("usr/var").is_dir() {
        return Err("Found /usr/var, localstatedir is most likely wrong".into());
    }
    Ok(())
}

fn remove_la_files(dir: &Path) -> Result<(), BuildError> {
    for (rel, md) in walk(dir)? {
        if md.is_file() && rel.extension().is_some_and(|e| e == "la") {
            fs_err::remove_file(dir.join(rel))?;
        }
    }
    Ok(())
}

/// Per-file checks: names, man pages, set-uid, capabilities, text relocations.
fn check_files(
    files: &[(PathBuf, std::fs::Metadata)],
    dir: &Path,
    opt: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    for (rel, md) in files {
        let shown = rel.display();
        if rel.to_string_lossy().contains('\n') {
            return Err(format!("Found filenames with newline: {shown:?}"));
        }
        if !md.is_file() {
            continue;
        }
        let mode = md.permissions().mode();
        if rel.starts_with("usr/share/man") && is_man_page(rel) {
            return Err(format!(
                "Found uncompressed man pages: /{shown} (put them in a -doc subpackage, \
                 which compresses them)"
            ));
        }
        if mode & 0o6000 != 0 && mode & 0o001 != 0 && !opt("suid") {
            return Err(format!(
                "Found executable files with SUID bit set: /{shown} (or options=\"suid\")"
            ));
        }
        if !opt("setcap") && has_capabilities(&dir.join(rel)) {
            return Err(format!(
                "Found binary with extra capabilities: /{shown} (or options=\"setcap\")"
            ));
        }
        if !opt("textrels") && has_textrels(&dir.join(rel)) {
            return Err(format!(
                "Found textrels: /{shown} (or options=\"textrels\")"
            ));
        }
    }
    Ok(())
}

/// `*.[0-8]`, as abuild's `find -name '*.[0-8]'`.
fn is_man_page(rel: &Path) -> bool {
    let name = rel.to_string_lossy();
    let b = name.as_bytes();
    b.len() >= 2 && b[b.len() - 2] == b'.' && (b'0'..=b'8').contains(&b[b.len() - 1])
}

fn has_capabilities(path: &Path) -> bool {
    let mut buf = [0u8; 64];
    rustix::fs::lgetxattr(path, "security.capability", &mut buf[..]).is_ok()
}

fn has_textrels(path: &Path) -> bool {
    let Ok(bytes) = fs_err::read(path).map(|b| if is_elf(path) { b } else { Vec::new() }) else {
        return false;
    };
    goblin::elf::Elf::parse(&bytes).is_ok_and(|elf| {
        elf.dynamic
            .is_some_and(|d| d.info.textrel || d.info.flags & goblin::elf::dynamic::DF_TEXTREL != 0)
    })
}

/// abuild's `dir_has_arch_binaries`: ELF files and static archives.
fn has_arch_binaries(files: &[(PathBuf, std::fs::Metadata)], dir: &Path) -> bool {
    files.iter().any(|(rel, md)| {
        md.is_file() && (rel.extension().is_some_and(|e| e == "a") || is_elf(&dir.join(rel)))
    })
}

/// Every entry under `dir`, relative, with its metadata (symlinks not followed).
fn walk(dir: &Path) -> Result<Vec<(PathBuf, std::fs::Metadata)>, BuildError> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e?;
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_path_buf();
        out.push((rel, e.path().symlink_metadata()?));
    }
    Ok(out)
}

/// abuild's postcheck warnings about where things are.
fn warnings(name: &str, dir: &Path, usrmerge: bool) -> Vec<String> {
    let mut out = Vec::new();
    let ends = |s: &str| name.ends_with(s);
    let mut warn = |cond: bool, what: &str| {
        if cond {
            out.push(format!("{name}: {what}"));
        }
    };
    let has = |p: &str| dir.join(p).symlink_metadata().is_ok();
    warn(
        (has("etc/init.d") || has("etc/conf.d")) && !ends("-openrc"),
        "Found OpenRC directory (/etc/conf.d or /etc/init.d) but name doesn't end with -openrc",
    );
    warn(
        has("usr/share/doc") && !ends("-doc"),
        "Found /usr/share/doc but package name doesn't end with -doc",
    );
    warn(
        has("usr/share/man") && !ends("-doc"),
        "Found /usr/share/man but package name doesn't end with -doc",
    );
    for d in ["bin", "sbin", "lib"] {
        warn(
            usrmerge && has(d),
            &format!(
                "Packages must not put anything under /{d}, use /usr/{} instead",
                d.trim_start_matches('s')
            ),
        );
    }
    out
}
