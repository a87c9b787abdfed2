//! `apk search` and `apk version` as apk 2.14's `app_search.c` and `app_version.c` print
//! them.

use apk::version::compare;

use super::Cx;
use super::query::{Db, Pkg, glob_casefold, name_order, reverse_dependencies};

/// `apk search`: the repositories' packages matching `*ARG*` (`-x`: exactly), the latest
/// of each name unless `-a`; `-d` searches descriptions, `-o` prints origins, `-r`
/// reverse dependencies.
pub(in crate::apkcmd) fn search(cx: &Cx<'_>) -> i32 {
    let a = cx.args;
    let description = a.has("description");
    let has_origin = a.has("has-origin");
    let exact = a.has("exact") || has_origin;
    let show_all = a.has("all") || description || has_origin;
    let filter: Vec<String> = a
        .args
        .iter()
        .map(|w| if exact { w.clone() } else { format!("*{w}*") })
        .collect();
    let db = Db::load(cx, false, true);
    let pkgs = db.packages();
    let matched: Vec<&Pkg<'_>> = pkgs
        .iter()
        .filter(|p| selected(p, &filter, description, has_origin))
        .collect();
    let shown: Vec<&Pkg<'_>> = if show_all {
        matched
    } else {
        latest_of_each_name(matched)
    };
    for p in shown {
        if a.has("rdepends") {
            if cx.verbosity > 0 {
                cx.out.line(&format!("{} is required by:", p.pv()));
            }
            for q in reverse_dependencies(&pkgs, p, false) {
                cx.out.line(&search_line(cx, q));
            }
        } else {
            cx.out.line(&search_line(cx, p));
        }
    }
    0
}

fn selected(p: &Pkg<'_>, filter: &[String], description: bool, has_origin: bool) -> bool {
    if filter.is_empty() {
        return true;
    }
    if description {
        return filter
            .iter()
            .any(|f| glob_casefold(f, &p.entry.description) || glob_casefold(f, &p.entry.name));
    }
    if has_origin {
        return filter.contains(&p.entry.origin);
    }
    let names = std::iter::once(p.entry.name.as_str()).chain(
        p.entry
            .provides
            .iter()
            .map(|v| v.split('=').next().unwrap_or(v)),
    );
    names
        .into_iter()
        .any(|n| filter.iter().any(|f| glob_casefold(f, n)))
}

/// The highest version of each name, in name order.
fn latest_of_each_name<'a, 'd>(sorted: Vec<&'a Pkg<'d>>) -> Vec<&'a Pkg<'d>> {
    let mut out: Vec<&Pkg<'d>> = Vec::new();
    for p in sorted {
        match out.last_mut() {
            Some(last) if last.entry.name == p.entry.name => {
                if compare(&p.entry.version, &last.entry.version).is_gt() {
                    *last = p;
                }
            }
            _ => out.push(p),
        }
    }
    out
}

fn search_line(cx: &Cx<'_>, p: &Pkg<'_>) -> String {
    let e = p.entry;
    if cx.args.has("origin") {
        let origin = if e.origin.is_empty() {
            &e.name
        } else {
            &e.origin
        };
        return match cx.verbosity > 0 {
            true => format!("{origin}-{}", e.version),
            false => origin.clone(),
        };
    }
    let mut s = e.name.clone();
    if cx.verbosity > 0 {
        s = format!("{s}-{}", e.version);
    }
    if cx.verbosity > 1 {
        s = format!("{s} - {}", e.description);
    }
    s
}

/// `apk version`: installed packages against the repositories' latest (`-t A B` compares
/// two versions, `-c` checks them, `-I` lists the indexes, `-l` limits by result).
pub(in crate::apkcmd) fn version(cx: &Cx<'_>) -> i32 {
    let a = cx.args;
    let action = a
        .options
        .iter()
        .rev()
        .find(|(l, _)| matches!(*l, "test" | "check" | "indexes"))
        .map(|(l, _)| *l);
    match action {
        Some("test") => return test(cx),
        Some("check") => return check(cx),
        Some("indexes") => return indexes(cx),
        _ => {}
    }
    let limit = match a.value("limit") {
        Some("") => None,
        Some(l) => Some(l.to_owned()),
        None if a.args.is_empty() && cx.verbosity == 1 => Some("<".to_owned()),
        None => None,
    };
    let db = Db::load(cx, true, true);
    let pkgs = db.packages();
    let rows = version_rows(cx, &pkgs, limit.as_deref());
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(39);
    if cx.verbosity > 0 {
        cx.out
            .line(&format!("{:<width$}   Available:", "Installed:"));
    }
    for (pv, name, op, latest, tag) in rows {
        if cx.verbosity <= 0 {
            cx.out.line(&name);
        } else {
            cx.out.line(&format!("{pv:<width$} {op} {latest} {tag}"));
        }
    }
    0
}

type Row = (String, String, &'static str, String, String);

/// Per installed name (matching the arguments): installed `name-version`, name, the
/// comparison, the latest version its repositories have, and that repository's tag.
fn version_rows(cx: &Cx<'_>, pkgs: &[Pkg<'_>], limit: Option<&str>) -> Vec<Row> {
    let all_tags = cx.args.has("all");
    let mut rows = Vec::new();
    for inst in pkgs.iter().filter(|p| p.installed.is_some()) {
        let name = &inst.entry.name;
        if !cx.args.args.is_empty() && !cx.args.args.iter().any(|f| glob_casefold(f, name)) {
            continue;
        }
        let pinned = inst
            .installed
            .and_then(|i| i.repo_tag.as_deref())
            .unwrap_or("");
        let mut latest = inst;
        for p in pkgs.iter().filter(|p| &p.entry.name == name) {
            let Some(tag) = p.repo_tag else { continue };
            if (all_tags || tag == pinned)
                && compare(&p.entry.version, &latest.entry.version).is_gt()
            {
                latest = p;
            }
        }
        let op = match compare(&inst.entry.version, &latest.entry.version) {
            std::cmp::Ordering::Less => "<",
            std::cmp::Ordering::Equal => "=",
            std::cmp::Ordering::Greater => ">",
        };
        if limit.is_some_and(|l| !l.contains(op)) {
            continue;
        }
        let tag = latest
            .repo_tag
            .filter(|t| !t.is_empty())
            .map(|t| format!("@{t}"))
            .unwrap_or_default();
        rows.push((
            inst.pv(),
            name.clone(),
            op,
            latest.entry.version.clone(),
            tag,
        ));
    }
    rows.sort_by(|a, b| name_order(&a.1, &b.1));
    rows
}

/// `-t A B`: `<`, `=` or `>`.
fn test(cx: &Cx<'_>) -> i32 {
    let [a, b] = cx.args.args.as_slice() else {
        return 1;
    };
    let op = match compare(a, b) {
        std::cmp::Ordering::Less => "<",
        std::cmp::Ordering::Equal => "=",
        std::cmp::Ordering::Greater => ">",
    };
    cx.out.line(op);
    0
}

/// `-c`: each invalid version is printed and counts as an error.
fn check(cx: &Cx<'_>) -> i32 {
    let mut errors = 0;
    for v in &cx.args.args {
        if !apk::version::is_valid(v) {
            if cx.verbosity > 0 {
                cx.out.line(v);
            }
            errors += 1;
        }
    }
    errors
}

/// `-I`: the repositories' descriptions.
fn indexes(cx: &Cx<'_>) -> i32 {
    let db = Db::load(cx, false, true);
    for index in &db.indexes {
        if let Some(d) = &index.description {
            cx.out.line(&format!("{d} [{}]", index.repository.url));
        }
    }
    0
}
