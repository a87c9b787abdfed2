//! `apk add`, `apk del` and `apk update`, with apk 2.14's progress lines and summary
//! (`commit.c`: `(1/3) Installing x (1.0-r0)`, `OK: 5 MiB in 3 packages`).

use std::collections::BTreeSet;

use apk::dep::Dependency;
use apk::install::{InstallError, InstallOptions, InstallReport, NoScripts, ScriptRunner};
use apk::installed::InstalledState;

use super::progress::{Lines, summary};
use super::{Cx, Failure};
use crate::packages::SandboxScripts;

/// `apk add`.
pub(super) fn add(cx: &Cx<'_>) -> i32 {
    if let Err(Failure(code)) = cx.require_root() {
        return code;
    }
    let atoms = match world_atoms(cx) {
        Ok(a) => a,
        Err(Failure(code)) => return code,
    };
    transact(cx, |o| {
        o.virtual_name = cx.args.value("virtual").map(str::to_owned);
        o.upgrade = cx.args.has("upgrade") || cx.args.has("latest");
        apk::install::add(&cx.target, &atoms, o)
    })
}

/// `apk add` planned, not carried out: what the root would then hold.
pub(super) fn plan(cx: &Cx<'_>) -> Result<Vec<(String, String, String)>, Failure> {
    let atoms = world_atoms(cx)?;
    let fetcher = cx.fetcher();
    let mut o = InstallOptions::new(&fetcher, &NoScripts, &apk::install::NoReporter);
    cx.options(&mut o)?;
    o.virtual_name = cx.args.value("virtual").map(str::to_owned);
    o.upgrade = cx.args.has("upgrade") || cx.args.has("latest");
    match apk::install::plan_add(&cx.target, &atoms, &o) {
        Ok(r) => Ok(r.planned),
        Err(e) => Err(cx.fail(&e.to_string())),
    }
}

/// The arguments as world dependencies, refused as apk refuses them.
fn world_atoms(cx: &Cx<'_>) -> Result<Vec<Dependency>, Failure> {
    let kind = if cx.args.has("virtual") {
        "package"
    } else {
        "world"
    };
    let mut atoms = Vec::new();
    for arg in &cx.args.args {
        if arg.ends_with(".apk") {
            return Err(cx.fail(&format!(
                "{arg}: adding a package file is not supported by the apk assemble provides in \
                 images without apk-tools; put it in a repository (`apkbuild index`) and add it \
                 by name with -X"
            )));
        }
        match arg.parse::<Dependency>() {
            Ok(d) => atoms.push(d),
            Err(_) => {
                return Err(cx.fail(&format!(
                    "'{arg}' is not a valid {kind} dependency, format is name(@tag)([<>~=]version)"
                )));
            }
        }
    }
    Ok(atoms)
}

/// `apk del` (`-r`: also what depends on the named packages).
pub(super) fn del(cx: &Cx<'_>) -> i32 {
    if let Err(Failure(code)) = cx.require_root() {
        return code;
    }
    let state = InstalledState::load(&cx.target).unwrap_or_default();
    let mut names = Vec::new();
    let mut errors = 0;
    for name in &cx.args.args {
        let known = state.world.atoms.iter().any(|a| atom_name(a) == name)
            || state.db.packages.iter().any(|p| provides_name(p, name));
        if known {
            names.push(name.clone());
        } else {
            cx.out.error(&format!("No such package: {name}"));
            errors += 1;
        }
    }
    if errors > 0 {
        return errors;
    }
    if cx.args.has("rdepends") {
        names = with_reverse_dependencies(&state, names);
    }
    transact(cx, |o| apk::install::del(&cx.target, &names, o))
}

fn atom_name(atom: &str) -> &str {
    atom.split(|c: char| "@<>=~!".contains(c))
        .find(|s| !s.is_empty())
        .unwrap_or(atom)
}

fn provides_name(p: &apk::installed::InstalledPackage, name: &str) -> bool {
    p.entry.name == name || p.entry.provides.iter().any(|v| atom_name(v) == name)
}

/// `names` and every installed package depending on them, transitively (apk's
/// `delete_pkg` with `--rdepends`).
fn with_reverse_dependencies(state: &InstalledState, mut names: Vec<String>) -> Vec<String> {
    let mut i = 0;
    while i < names.len() {
        let target = names[i].clone();
        for p in &state.db.packages {
            let depends = p.entry.depends.iter().any(|d| {
                !d.starts_with('!')
                    && state
                        .db
                        .packages
                        .iter()
                        .any(|q| provides_name(q, atom_name(d)) && provides_name(q, &target))
            });
            if depends && !names.contains(&p.entry.name) {
                names.push(p.entry.name.clone());
            }
        }
        i += 1;
    }
    names
}

/// `apk update`: the indexes fetched afresh and verified; their descriptions and the
/// number of distinct packages.
pub(super) fn update(cx: &Cx<'_>) -> i32 {
    if let Err(Failure(code)) = cx.require_root() {
        return code;
    }
    let fetcher = cx.fetcher();
    let lines = Lines::new(cx);
    let mut o = InstallOptions::new(&fetcher, &NoScripts, &lines);
    if let Err(Failure(code)) = cx.options(&mut o) {
        return code;
    }
    o.update_cache = true;
    let indexes = match apk::install::indexes(&cx.target, &o) {
        Ok(i) => i,
        Err(e) => {
            cx.out.error(&e.to_string());
            return 1;
        }
    };
    for index in &indexes {
        if let Some(d) = &index.description {
            cx.message(&format!("{d} [{}]", index.repository.url));
        }
    }
    let distinct: BTreeSet<_> = indexes
        .iter()
        .flat_map(|i| i.packages.iter().map(|p| p.checksum))
        .collect();
    cx.message(&format!(
        "OK: {} distinct packages available",
        distinct.len()
    ));
    0
}

/// Runs an add or del with this command's options, prints apk's lines and summary, and
/// gives apk's exit code: the number of errors.
fn transact(
    cx: &Cx<'_>,
    change: impl FnOnce(&mut InstallOptions<'_>) -> Result<InstallReport, InstallError>,
) -> i32 {
    let fetcher = cx.fetcher();
    let lines = Lines::new(cx);
    let output = |b: &[u8]| (cx.out.stdout)(b);
    let sandboxed = SandboxScripts {
        sandbox: cx.host.sandbox,
        output: &output,
        network: cx.host.network,
    };
    let scripts: &dyn ScriptRunner = if cx.args.has("no-scripts") {
        &NoScripts
    } else {
        &sandboxed
    };
    let mut o = InstallOptions::new(&fetcher, scripts, &lines);
    if let Err(Failure(code)) = cx.options(&mut o) {
        return code;
    }
    let result = change(&mut o);
    let mut errors = lines.failed_scripts.borrow().len() as i32;
    if let Err(e) = &result {
        cx.out.error(&e.to_string());
        errors += 1;
        if !lines.committed.get() {
            return 1;
        }
    }
    cx.message(&summary(&cx.target, errors, cx.verbosity));
    errors
}
