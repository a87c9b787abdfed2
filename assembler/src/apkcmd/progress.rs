//! apk's output while a transaction runs (`commit.c`, `app_del.c`): the `-v` listing of
//! the changes, why a deleted name stays, `(1/3) Installing x (1.0-r0)`, script errors,
//! and the summary line.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::Path;

use apk::install::{Event, PlannedChange, Reporter, ScriptOutcome};
use apk::installed::InstalledState;

use super::Cx;
use super::query::{human_size, name_order};

/// apk's last line: `OK: 5 MiB in 3 packages` (`-v`: packages, dirs, files, MiB), with
/// `N errors;` instead of `OK:` after failures.
pub(super) fn summary(root: &Path, errors: i32, verbosity: i32) -> String {
    let state = InstalledState::load(root).unwrap_or_default();
    let packages = &state.db.packages;
    let bytes: u64 = packages.iter().map(|p| p.entry.installed_size).sum();
    let mib = bytes / (1024 * 1024);
    let prefix = match errors {
        0 => "OK:".to_owned(),
        1 => "1 error;".to_owned(),
        n => format!("{n} errors;"),
    };
    if verbosity > 1 {
        // apk counts every directory it knows, their parents and the root included.
        let mut dirs: BTreeSet<&str> = BTreeSet::from([""]);
        for d in packages.iter().flat_map(|p| &p.dirs) {
            let mut path = d.path.as_str();
            while dirs.insert(path) {
                path = path.rsplit_once('/').map_or("", |(parent, _)| parent);
            }
        }
        let files: usize = packages
            .iter()
            .flat_map(|p| p.dirs.iter().map(|d| d.files.len()))
            .sum();
        format!(
            "{prefix} {} packages, {} dirs, {files} files, {mib} MiB",
            packages.len(),
            dirs.len()
        )
    } else {
        format!("{prefix} {mib} MiB in {} packages", packages.len())
    }
}

/// The installer's events as apk's lines; remembers what the summary needs.
pub(super) struct Lines<'c> {
    cx: &'c Cx<'c>,
    pub committed: Cell<bool>,
    /// Packages whose install or upgrade script failed: an error each, as in apk.
    pub failed_scripts: RefCell<BTreeSet<String>>,
    /// A "not removed" block was started (it ends with an empty line).
    kept: Cell<bool>,
}

impl<'c> Lines<'c> {
    pub fn new(cx: &'c Cx<'c>) -> Self {
        Self {
            cx,
            committed: Cell::new(false),
            failed_scripts: RefCell::new(BTreeSet::new()),
            kept: Cell::new(false),
        }
    }
}

impl Reporter for Lines<'_> {
    fn event(&self, event: Event<'_>) {
        match event {
            // apk says so when it downloads an index; local ones are read in place.
            Event::FetchIndex { url, cached } if !cached && url.contains("://") => {
                self.cx.message(&format!("fetch {url}"));
            }
            Event::Step {
                index,
                total,
                action,
                name,
                version,
                old_version,
            } => {
                let versions = match old_version {
                    Some(old) => format!("{old} -> {version}"),
                    None => version.to_owned(),
                };
                self.cx
                    .message(&format!("({index}/{total}) {action} {name} ({versions})"));
            }
            Event::Script {
                package,
                kind,
                outcome,
            } => self.script(package, kind, outcome),
            Event::Warning(w) => self.cx.warning(w),
            Event::Committed => self.committed.set(true),
            Event::Kept { name, required_by } => self.kept(name, required_by),
            Event::Plan(changes) => {
                if self.kept.get() {
                    self.cx.out.line("");
                }
                if self.cx.verbosity > 1 {
                    self.cx
                        .out
                        .line_raw(&changes_listing(changes, self.cx.verbosity));
                }
            }
            _ => {}
        }
    }
}

impl Lines<'_> {
    fn script(&self, package: &str, kind: &str, outcome: &ScriptOutcome) {
        match outcome {
            ScriptOutcome::Failed(why) => {
                self.cx
                    .out
                    .error(&format!("{package}.{kind}: script {why}"));
                // apk counts a failed install or upgrade script as the change's error;
                // deinstall scripts and triggers only mark the package.
                if matches!(
                    kind,
                    "pre-install" | "post-install" | "pre-upgrade" | "post-upgrade"
                ) {
                    self.failed_scripts.borrow_mut().insert(package.to_owned());
                }
            }
            // `--no-scripts` asked for exactly that.
            ScriptOutcome::NotRun(_) if self.cx.args.has("no-scripts") => {}
            ScriptOutcome::NotRun(why) => self
                .cx
                .warning(&format!("{package}.{kind}: not run: {why}")),
            ScriptOutcome::Succeeded => {}
        }
    }
}

impl Lines<'_> {
    /// apk del's "World updated, but the following packages are not removed due to:".
    fn kept(&self, name: &str, required_by: &[String]) {
        if self.cx.verbosity < 1 {
            return;
        }
        if !self.kept.replace(true) {
            self.cx
                .out
                .line("World updated, but the following packages are not removed due to:");
        }
        let mut indent = Indent::group(&format!("  {name}:"), 0);
        for n in required_by {
            indent.word(n);
        }
        self.cx.out.line_raw(&indent.end());
    }
}

/// What apk lists before it starts with `-v`: removals and downgrades, and with those (or
/// `-vv`) the rest and the size change.
fn changes_listing(changes: &[PlannedChange], verbosity: i32) -> String {
    let mut sorted: Vec<&PlannedChange> = changes.iter().collect();
    sorted.sort_by(|a, b| name_order(&a.name, &b.name));
    let older = |c: &&PlannedChange| match (&c.old, &c.new) {
        (Some((o, _)), Some((n, _))) => apk::version::compare(n, o).is_lt(),
        _ => false,
    };
    let mut out = String::new();
    let serious = dump(
        &mut out,
        &sorted,
        |c| c.new.is_none(),
        "The following packages will be REMOVED",
    ) + dump(
        &mut out,
        &sorted,
        older,
        "The following packages will be DOWNGRADED",
    );
    if serious == 0 && verbosity <= 2 {
        return out;
    }
    dump(
        &mut out,
        &sorted,
        |c| c.old.is_none(),
        "The following NEW packages will be installed",
    );
    dump(
        &mut out,
        &sorted,
        |c| c.old.is_some() && c.new.is_some() && !older(c),
        "The following packages will be upgraded",
    );
    let download: u64 = changes.iter().map(|c| c.download).sum();
    if download > 0 {
        let (n, unit) = human_size(download);
        out.push_str(&format!("Need to download {n} {unit} of packages.\n"));
    }
    let diff: i128 = changes
        .iter()
        .map(|c| {
            i128::from(c.new.as_ref().map_or(0, |n| n.1))
                - i128::from(c.old.as_ref().map_or(0, |o| o.1))
        })
        .sum();
    let (n, unit) = human_size(diff.unsigned_abs() as u64);
    let what = if diff < 0 {
        "disk space will be freed"
    } else {
        "additional disk space will be used"
    };
    out.push_str(&format!("After this operation, {n} {unit} of {what}.\n"));
    out
}

/// apk's `dump_packages`: a heading and the matching names, indented and wrapped.
fn dump(
    out: &mut String,
    changes: &[&PlannedChange],
    matches: impl Fn(&&PlannedChange) -> bool,
    heading: &str,
) -> usize {
    let names: Vec<&str> = changes
        .iter()
        .filter(|c| matches(c))
        .map(|c| c.name.as_str())
        .collect();
    if names.is_empty() {
        return 0;
    }
    let mut indent = Indent::group(&format!("{heading}:\n"), 2);
    for n in &names {
        indent.word(n);
    }
    out.push_str(&indent.end());
    names.len()
}

/// apk's `apk_indent` at the width it uses when not on a terminal (50).
struct Indent {
    text: String,
    x: usize,
    indent: usize,
}

impl Indent {
    const WIDTH: usize = 50;

    /// `apk_print_indented_group`: a heading; the words that follow line up at `indent`
    /// (0: after the heading).
    fn group(heading: &str, indent: usize) -> Self {
        let x = if heading.ends_with('\n') {
            0
        } else {
            heading.len()
        };
        Self {
            text: heading.to_owned(),
            x,
            indent: if indent == 0 {
                heading.len() + 1
            } else {
                indent
            },
        }
    }

    /// `apk_print_indented`.
    fn word(&mut self, w: &str) {
        if self.x <= self.indent {
            self.text.push_str(&" ".repeat(self.indent - self.x));
            self.text.push_str(w);
            self.x = self.indent + w.len();
        } else if self.x + w.len() + 1 >= Self::WIDTH {
            self.text.push('\n');
            self.text.push_str(&" ".repeat(self.indent));
            self.text.push_str(w);
            self.x = self.indent + w.len();
        } else {
            self.text.push(' ');
            self.text.push_str(w);
            self.x += w.len() + 1;
        }
    }

    /// `apk_print_indented_end`.
    fn end(mut self) -> String {
        if self.x > 0 {
            self.text.push('\n');
        }
        self.text
    }
}
