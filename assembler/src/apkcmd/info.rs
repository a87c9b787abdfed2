//! `apk info` as apk 2.14's `app_info.c` prints it: the installed list, `-e`, `-W`, and
//! the fields of named packages (`-d -w -s -R -P -r -L -t --install-if --rinstall-if
//! --replaces --license -a`), each followed by an empty line.

use std::fmt::Write as _;

use super::Cx;
use super::query::{Db, Pkg, human_size, reverse_dependencies};

/// The fields in apk's order (its `subactions` table).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Description,
    Webpage,
    Size,
    Depends,
    Provides,
    Rdepends,
    Contents,
    Triggers,
    InstallIf,
    RinstallIf,
    Replaces,
    License,
}

const FIELDS: [(Field, &str); 12] = [
    (Field::Description, "description"),
    (Field::Webpage, "webpage"),
    (Field::Size, "size"),
    (Field::Depends, "depends"),
    (Field::Provides, "provides"),
    (Field::Rdepends, "rdepends"),
    (Field::Contents, "contents"),
    (Field::Triggers, "triggers"),
    (Field::InstallIf, "install-if"),
    (Field::RinstallIf, "rinstall-if"),
    (Field::Replaces, "replaces"),
    (Field::License, "license"),
];

/// Fields that exist only for installed packages.
fn needs_installed(f: Field) -> bool {
    matches!(
        f,
        Field::Contents | Field::Triggers | Field::Rdepends | Field::RinstallIf | Field::Replaces
    )
}

/// `apk info`.
pub(in crate::apkcmd) fn info(cx: &Cx<'_>) -> i32 {
    // As apk: every option of `info` resets the action, so the last of -e/-W counts only
    // when no field option follows it.
    let action = cx
        .args
        .options
        .iter()
        .rev()
        .find(|(l, _)| {
            *l == "installed" || *l == "who-owns" || FIELDS.iter().any(|f| f.1 == *l) || *l == "all"
        })
        .map(|(l, _)| *l);
    match action {
        Some("installed") => return exists(cx),
        Some("who-owns") => return who_owns(cx),
        _ => {}
    }
    if cx.args.args.is_empty() {
        return list_installed(cx);
    }
    let fields: Vec<Field> = if cx.args.has("all") {
        FIELDS.iter().map(|f| f.0).collect()
    } else {
        FIELDS
            .iter()
            .filter(|(_, long)| cx.args.has(long))
            .map(|f| f.0)
            .collect()
    };
    let fields = if fields.is_empty() {
        vec![Field::Description, Field::Webpage, Field::Size]
    } else {
        fields
    };
    let db = Db::load(cx, true, true);
    let pkgs = db.packages();
    let mut errors = 0;
    for arg in &cx.args.args {
        let matching: Vec<&Pkg<'_>> = pkgs.iter().filter(|p| p.provides(arg)).collect();
        if matching.is_empty() {
            errors += 1;
        }
        for p in matching {
            for &f in &fields {
                if p.installed.is_none() && needs_installed(f) {
                    continue;
                }
                let mut text = field(cx.verbosity, &pkgs, p, f);
                text.push('\n');
                (cx.out.stdout)(text.as_bytes());
            }
        }
    }
    errors
}

/// No arguments: the installed packages (names; `-v` with versions; `-vv` descriptions).
fn list_installed(cx: &Cx<'_>) -> i32 {
    let db = Db::load(cx, true, false);
    for p in db.packages() {
        cx.out.line(&brief(cx.verbosity, &p));
    }
    0
}

/// apk's `verbose_print_pkg` (the caller decides whether it is shown at all).
fn brief(verbosity: i32, p: &Pkg<'_>) -> String {
    let mut s = p.entry.name.clone();
    if verbosity > 1 {
        let _ = write!(s, "-{}", p.entry.version);
    }
    if verbosity > 2 {
        let _ = write!(s, " - {}", p.entry.description);
    }
    s
}

/// `-e`: which of the atoms an installed package satisfies; the others are errors.
fn exists(cx: &Cx<'_>) -> i32 {
    let db = Db::load(cx, true, false);
    let pkgs = db.packages();
    let mut errors = 0;
    for arg in &cx.args.args {
        let Ok(atom) = arg.parse::<apk::dep::Dependency>() else {
            continue;
        };
        let provider = pkgs.iter().find(|p| p.provides(&atom.name));
        let ok = match provider {
            Some(p) => p.satisfies(&atom) != atom.conflict,
            None => atom.conflict,
        };
        match provider {
            Some(p) if ok && cx.verbosity >= 1 => cx.out.line(&brief(cx.verbosity, p)),
            _ => {}
        }
        if !ok {
            errors += 1;
        }
    }
    errors
}

/// `-W`: the package owning each path (or, for a symlink, its absolute target).
fn who_owns(cx: &Cx<'_>) -> i32 {
    let db = Db::load(cx, true, false);
    let pkgs = db.packages();
    let mut errors = 0;
    let mut names: Vec<String> = Vec::new();
    for arg in &cx.args.args {
        let path = if arg.starts_with('/') {
            arg.clone()
        } else {
            normalize(&format!("{}/{arg}", cx.inv.cwd))
        };
        let mut via = "";
        let mut owner = owner_of(&pkgs, &path);
        if owner.is_none()
            && let Some(target) = link_target(cx, arg)
        {
            owner = owner_of(&pkgs, &target);
            via = "symlink target ";
        }
        let Some(p) = owner else {
            cx.out
                .error(&format!("{path}: Could not find owner package"));
            errors += 1;
            continue;
        };
        if cx.verbosity < 1 {
            if !names.contains(&p.entry.name) {
                names.push(p.entry.name.clone());
            }
        } else {
            cx.out.line(&format!("{path} {via}is owned by {}", p.pv()));
        }
    }
    if cx.verbosity < 1 && !names.is_empty() {
        cx.out.line(&names.join(" "));
    }
    errors
}

fn owner_of<'d>(pkgs: &'d [Pkg<'d>], path: &str) -> Option<&'d Pkg<'d>> {
    let rel = path.trim_start_matches('/');
    let (dir, base) = rel.rsplit_once('/').unwrap_or(("", rel));
    pkgs.iter().find(|p| {
        p.installed.is_some_and(|i| {
            i.dirs
                .iter()
                .any(|d| d.path == dir && d.files.iter().any(|f| f.name == base))
        })
    })
}

/// An absolute symlink target, as apk reads it with `readlinkat` in the root.
fn link_target(cx: &Cx<'_>, arg: &str) -> Option<String> {
    let root = apk::rootfs::RootDir::open(&cx.target).ok()?;
    let target = root.read_link(arg.trim_start_matches('/')).ok()?;
    let target = target.to_str()?;
    target.starts_with('/').then(|| target.to_owned())
}

/// `.` and `..` taken out of an absolute path (apk uses `realpath`).
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// One field of one package, as apk prints it (the caller adds the empty line).
fn field(v: i32, pkgs: &[Pkg<'_>], p: &Pkg<'_>, f: Field) -> String {
    let e = p.entry;
    let (name, pv) = (&e.name, p.pv());
    let text = |label: &str, value: &str| match v > 1 {
        true => format!("{name}: {value}"),
        false => format!("{pv} {label}:\n{value}\n"),
    };
    let installed = p.installed;
    match f {
        Field::Description => text("description", &e.description),
        Field::Webpage => text("webpage", &e.url),
        Field::License => text("license", &e.license),
        Field::Size => {
            let (n, unit) = human_size(e.installed_size);
            text("installed size", &format!("{n} {unit}"))
        }
        Field::Depends => list(v, name, &pv, "depends on", &e.depends),
        Field::Provides => list(v, name, &pv, "provides", &e.provides),
        Field::InstallIf => list(v, name, &pv, "has auto-install rule", &e.install_if),
        Field::Replaces => list(
            v,
            name,
            &pv,
            "replaces",
            &installed.map(|i| i.replaces.clone()).unwrap_or_default(),
        ),
        Field::Rdepends => {
            let users: Vec<String> = reverse_dependencies(pkgs, p, true)
                .iter()
                .map(|q| q.pv())
                .collect();
            packages(v, name, &pv, "is required by", &users)
        }
        Field::RinstallIf => {
            let affected: Vec<String> = pkgs
                .iter()
                .filter(|q| q.installed.is_some())
                .filter(|q| {
                    q.entry
                        .install_if
                        .iter()
                        .any(|d| d.split(|c: char| "<>=~".contains(c)).next() == Some(name))
                })
                .map(Pkg::pv)
                .collect();
            packages(v, name, &pv, "affects auto-installation of", &affected)
        }
        Field::Contents => contents(v, name, &pv, installed),
        Field::Triggers => triggers(v, name, &pv, p),
    }
}

/// apk's `info_print_dep_array`.
fn list(v: i32, name: &str, pv: &str, label: &str, deps: &[String]) -> String {
    let mut s = header(v, name, pv, label);
    let sep = if v > 1 { " " } else { "\n" };
    for d in deps {
        s.push_str(d);
        s.push_str(sep);
    }
    s
}

/// `is required by` and `affects auto-installation of`: package-versions.
fn packages(v: i32, name: &str, pv: &str, label: &str, pvs: &[String]) -> String {
    list(v, name, pv, label, pvs)
}

fn header(v: i32, name: &str, pv: &str, label: &str) -> String {
    match v {
        1 => format!("{pv} {label}:\n"),
        v if v > 1 => format!("{name}: "),
        _ => String::new(),
    }
}

fn contents(
    v: i32,
    name: &str,
    pv: &str,
    installed: Option<&apk::installed::InstalledPackage>,
) -> String {
    let mut s = if v == 1 {
        format!("{pv} contains:\n")
    } else {
        String::new()
    };
    for d in installed.map(|i| i.dirs.as_slice()).unwrap_or_default() {
        for f in &d.files {
            if v > 1 {
                let _ = write!(s, "{name}: ");
            }
            let _ = writeln!(s, "{}/{}", d.path, f.name);
        }
    }
    s
}

fn triggers(v: i32, name: &str, pv: &str, p: &Pkg<'_>) -> String {
    let mut s = if v == 1 {
        format!("{pv} triggers:\n")
    } else {
        String::new()
    };
    for t in p.triggers {
        if v > 1 {
            let _ = write!(s, "{name}: trigger ");
        }
        let _ = writeln!(s, "{t}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_owns_paths_are_normalized() {
        assert_eq!(normalize("/usr/./bin/../bin/x"), "/usr/bin/x");
        assert_eq!(normalize("/"), "/");
    }
}
