//! Choosing the packages to install for a world, as `apk add` does.
//!
//! Semantics from `shared/docs/apk-format.md` §5.4 and apk-tools' `src/solver.c`:
//! - a package owns its own name; a versioned provide (`so:libc.so.6=6`) acts like a package
//!   of that name and version, so it satisfies `so:libc.so.6` and `so:libc.so.6>=6` and no
//!   two selected packages may own the same name;
//! - an unversioned provide is a virtual: it never satisfies a versioned atom, several
//!   packages may provide it at once, and it is only chosen automatically when it has a
//!   single provider, a `provider_priority`, or an installed provider;
//! - `!name` forbids every provider of `name` (in the constraint's range, if any), except
//!   the package that declares it;
//! - `install_if` packages join once all their atoms are satisfied by the selection.
//!
//! Among the packages that can satisfy an atom the installed one is kept, then the highest
//! version wins, then the highest `provider_priority`, then the preferred repository. The
//! search is a plain depth-first one with chronological backtracking, which is more than
//! enough for worlds of a few hundred packages and keeps failures explainable: the error
//! reports the most preferred path that failed, with the chain of atoms that led there,
//! in the words apk uses (`no such package`, `required by: world[hello] -> …`).

use std::fmt;

use crate::dep::{Dependency, Provide};

mod search;

/// One package available for installation (from an APKINDEX or the installed database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Package name (`P:`).
    pub name: String,
    /// Package version (`V:`).
    pub version: String,
    /// Dependencies (`D:`), conflicts (`!name`) included.
    pub depends: Vec<Dependency>,
    /// Provided names (`p:`).
    pub provides: Vec<Provide>,
    /// `k:`: lets an unversioned provide be chosen automatically; higher wins.
    pub provider_priority: Option<u32>,
    /// `i:`: install automatically once all of these are satisfied.
    pub install_if: Vec<Dependency>,
    /// Position of the repository in `etc/apk/repositories`: lower is preferred.
    pub repo_priority: u32,
}

/// A package already installed in the target root.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstalledPackage {
    /// Package name.
    pub name: String,
    /// Installed version.
    pub version: String,
}

/// The packages to have installed, as indexes into the candidate list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// Every selected package, already installed ones included, dependencies before their
    /// dependents (cycles are broken deterministically).
    pub install: Vec<usize>,
}

/// Why no installable set exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// An atom cannot be satisfied.
    #[error("{atom} {problem}; required by: {}", required_by.join(" -> "))]
    Unsatisfiable {
        /// The atom as written (`hello>=2.0`, `so:libfoo.so.1`).
        atom: String,
        /// Why it cannot be satisfied.
        problem: Problem,
        /// The chain from world to the atom: `world[hello]`, `hello-1.0-r0[so:libfoo.so.1]`.
        required_by: Vec<String>,
    },
    /// The search gave up; the world has too many conflicting alternatives.
    #[error(
        "gave up after {steps} steps of dependency search (first dead end: {first_dead_end}); pin versions in world to narrow it"
    )]
    SearchLimit {
        /// The steps taken.
        steps: usize,
        /// The first failure met, as text: usually the root of the trouble.
        first_dead_end: String,
    },
}

/// What is wrong with an atom (see [`ResolveError::Unsatisfiable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No package has or provides the name.
    NoSuchPackage,
    /// No package provides the name (used for provided-only names like `so:` and paths).
    NoProvider,
    /// Providers exist but none with a matching version.
    NoSuchVersion {
        /// Available versions, newest first.
        available: Vec<String>,
    },
    /// A versioned atom on a name that is only provided without a version.
    VirtualOnly {
        /// `name-version` of the providers.
        providers: Vec<String>,
    },
    /// Several packages provide the virtual and nothing says which to take.
    Ambiguous {
        /// Names of the providing packages.
        providers: Vec<String>,
    },
    /// Every match conflicts with something already chosen.
    Conflict {
        /// What it conflicts with, and why that was chosen.
        with: String,
    },
    /// `><Q1…` pins need the package identity, which candidates do not carry.
    ChecksumPin,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoSuchPackage => f.write_str("(no such package)"),
            Problem::NoProvider => f.write_str("(no provider)"),
            Problem::NoSuchVersion { available } => {
                write!(f, "(no such version; available: {})", available.join(", "))
            }
            Problem::VirtualOnly { providers } => write!(
                f,
                "(no such version; only provided without a version by: {})",
                providers.join(", ")
            ),
            Problem::Ambiguous { providers } => write!(
                f,
                "is provided by several packages: {}; name one explicitly",
                providers.join(", ")
            ),
            Problem::Conflict { with } => write!(f, "(conflicts with {with})"),
            Problem::ChecksumPin => {
                f.write_str("(pinned by checksum; install that file directly instead)")
            }
        }
    }
}

/// Upper bound on search steps before [`ResolveError::SearchLimit`].
const STEP_LIMIT: usize = 200_000;

/// Chooses the packages to install for `world` from `candidates`.
///
/// `installed` only expresses preference: an installed version that still satisfies every
/// constraint is kept rather than upgraded, and breaks ties between virtual providers. To
/// keep an installed package it must be among `candidates` (add the installed database's
/// entries) and required through `world`; anything else is simply not in the result.
/// Repository tags (`name@tag`) in world are ignored.
pub fn resolve(
    candidates: &[Candidate],
    installed: &[InstalledPackage],
    world: &[Dependency],
) -> Result<Resolution, ResolveError> {
    resolve_within(candidates, installed, world, STEP_LIMIT)
}

/// [`resolve`] with a given step limit (tests use a small one).
fn resolve_within(
    candidates: &[Candidate],
    installed: &[InstalledPackage],
    world: &[Dependency],
    limit: usize,
) -> Result<Resolution, ResolveError> {
    let install = search::solve(candidates, installed, world, limit)?;
    Ok(Resolution { install })
}

#[cfg(test)]
mod tests {
    use super::search::{entries, satisfies};
    use super::*;

    fn pkg(name: &str, version: &str, depends: &str, provides: &str) -> Candidate {
        Candidate {
            name: name.into(),
            version: version.into(),
            depends: Dependency::parse_list(depends).unwrap(),
            provides: Provide::parse_list(provides).unwrap(),
            provider_priority: None,
            install_if: Vec::new(),
            repo_priority: 0,
        }
    }

    fn world(s: &str) -> Vec<Dependency> {
        Dependency::parse_list(s).unwrap()
    }

    /// Resolves and returns `name-version` in install order.
    fn solve(
        cands: &[Candidate],
        installed: &[(&str, &str)],
        w: &str,
    ) -> Result<Vec<String>, ResolveError> {
        let installed: Vec<InstalledPackage> = installed
            .iter()
            .map(|(n, v)| InstalledPackage {
                name: (*n).into(),
                version: (*v).into(),
            })
            .collect();
        let r = resolve(cands, &installed, &world(w))?;
        Ok(r.install
            .iter()
            .map(|&i| format!("{}-{}", cands[i].name, cands[i].version))
            .collect())
    }

    fn error(cands: &[Candidate], w: &str) -> String {
        solve(cands, &[], w)
            .expect_err("should not resolve")
            .to_string()
    }

    #[test]
    fn so_and_cmd_names_resolve_through_versioned_provides() {
        let cands = [
            pkg("hello", "1.0-r0", "so:libc.so.6 cmd:sh", ""),
            pkg("libcstub", "1.0-r0", "", "so:libc.so.6=6"),
            pkg(
                "busybox",
                "1.36-r0",
                "so:libc.so.6",
                "cmd:sh=1.36-r0 /bin/sh",
            ),
        ];
        assert_eq!(
            solve(&cands, &[], "hello>=1.0").unwrap(),
            ["libcstub-1.0-r0", "busybox-1.36-r0", "hello-1.0-r0"]
        );
        // The fixture world: `hello>=1.0 so:libc.so.6`.
        assert_eq!(
            solve(&cands, &[], "hello>=1.0 so:libc.so.6").unwrap().len(),
            3
        );
        // A versioned provide satisfies versioned atoms on its name.
        assert!(solve(&cands, &[], "so:libc.so.6>=6").is_ok());
        let err = error(&cands, "so:libc.so.6>=7");
        assert_eq!(
            err,
            "so:libc.so.6>=7 (no such version; available: 6); required by: world[so:libc.so.6>=7]"
        );
    }

    #[test]
    fn constraints_pick_the_highest_version_that_fits() {
        let cands = [
            pkg("foo", "1.0-r0", "", ""),
            pkg("foo", "2.0-r0", "", ""),
            pkg("foo", "1.5-r0", "", ""),
            pkg("bar", "1.0-r0", "foo<2", ""),
        ];
        assert_eq!(solve(&cands, &[], "foo").unwrap(), ["foo-2.0-r0"]);
        assert_eq!(
            solve(&cands, &[], "foo bar").unwrap(),
            ["foo-1.5-r0", "bar-1.0-r0"]
        );
        assert_eq!(solve(&cands, &[], "foo~1.0").unwrap(), ["foo-1.0-r0"]);
    }

    #[test]
    fn backtracks_out_of_a_dead_end() {
        let cands = [
            pkg("app", "2.0-r0", "libnew", ""),
            pkg("app", "1.0-r0", "libold", ""),
            pkg("libold", "1.0-r0", "", ""),
        ];
        assert_eq!(
            solve(&cands, &[], "app").unwrap(),
            ["libold-1.0-r0", "app-1.0-r0"]
        );
        // With no way out, the error explains the preferred (newest) path.
        let err = error(&cands[..1], "app");
        assert_eq!(
            err,
            "libnew (no such package); required by: world[app] -> app-2.0-r0[libnew]"
        );
    }

    #[test]
    fn missing_dependency_errors_name_the_atom_and_the_chain() {
        let cands = [pkg("hello", "1.0-r0", "so:libfoo.so.1", "")];
        assert_eq!(
            error(&cands, "hello"),
            "so:libfoo.so.1 (no provider); required by: world[hello] -> hello-1.0-r0[so:libfoo.so.1]"
        );
        assert_eq!(
            error(&cands, "hello>=2.0"),
            "hello>=2.0 (no such version; available: 1.0-r0); required by: world[hello>=2.0]"
        );
        let e = solve(&cands, &[], "nope").unwrap_err();
        assert!(matches!(
            e,
            ResolveError::Unsatisfiable {
                problem: Problem::NoSuchPackage,
                ..
            }
        ));
    }

    #[test]
    fn conflicts() {
        let cands = [
            pkg("foo", "1.0-r0", "bar", ""),
            pkg("bar", "1.0-r0", "", ""),
            pkg("baz", "1.0-r0", "!bar", ""),
            pkg("qux", "1.0-r0", "!bar>=2", ""),
        ];
        assert_eq!(
            error(&cands, "foo !bar"),
            "bar (conflicts with world[!bar]); required by: world[foo] -> foo-1.0-r0[bar]"
        );
        assert_eq!(
            error(&cands, "foo baz"),
            "bar (conflicts with world[baz] -> baz-1.0-r0[!bar]); required by: world[foo] -> foo-1.0-r0[bar]"
        );
        // The other way round: bar is chosen first and baz's own conflict hits it.
        assert_eq!(
            error(&cands, "bar baz"),
            "baz (conflicts with bar-1.0-r0 by baz-1.0-r0[!bar], selected for world[bar]); required by: world[baz]"
        );
        // A versioned conflict only forbids its range.
        assert!(solve(&cands, &[], "foo qux").is_ok());
        // Two versions of one name cannot both be installed.
        let two = [
            pkg("a", "1", "c=1", ""),
            pkg("b", "1", "c=2", ""),
            pkg("c", "1", "", ""),
            pkg("c", "2", "", ""),
        ];
        let err = error(&two, "a b");
        assert!(
            err.starts_with("c=2 (conflicts with c-1, selected for world[a] -> a-1[c=1])"),
            "{err}"
        );
    }

    #[test]
    fn a_package_may_conflict_with_what_it_provides() {
        let cands = [
            pkg("dash-binsh", "1-r0", "!busybox-binsh", "/bin/sh"),
            pkg("busybox-binsh", "1-r0", "!dash-binsh", "/bin/sh"),
        ];
        assert_eq!(
            solve(&cands, &[], "dash-binsh").unwrap(),
            ["dash-binsh-1-r0"]
        );
        assert!(error(&cands, "dash-binsh busybox-binsh").contains("conflicts with"));
    }

    #[test]
    fn virtuals_need_one_provider_a_priority_or_an_installed_one() {
        let mut cands = [
            pkg("mawk", "1.3-r0", "", "awk"),
            pkg("gawk", "5.3-r0", "", "awk"),
            pkg("app", "1-r0", "awk", ""),
        ];
        assert_eq!(
            error(&cands, "app"),
            "awk is provided by several packages: gawk, mawk; name one explicitly; required by: world[app] -> app-1-r0[awk]"
        );
        // Naming one explicitly settles it.
        assert_eq!(
            solve(&cands, &[], "gawk app").unwrap(),
            ["gawk-5.3-r0", "app-1-r0"]
        );
        // An installed provider is kept.
        assert_eq!(
            solve(&cands, &[("mawk", "1.3-r0")], "app").unwrap(),
            ["mawk-1.3-r0", "app-1-r0"]
        );
        // The highest provider_priority wins.
        cands[0].provider_priority = Some(10);
        cands[1].provider_priority = Some(20);
        assert_eq!(
            solve(&cands, &[], "app").unwrap(),
            ["gawk-5.3-r0", "app-1-r0"]
        );
        // A single provider is chosen without a priority.
        assert_eq!(
            solve(&cands[1..], &[], "app").unwrap(),
            ["gawk-5.3-r0", "app-1-r0"]
        );
    }

    #[test]
    fn unversioned_provides_never_satisfy_versioned_atoms() {
        let cands = [pkg("mawk", "1.3-r0", "", "awk")];
        assert_eq!(
            error(&cands, "awk>=1"),
            "awk>=1 (no such version; only provided without a version by: mawk-1.3-r0); required by: world[awk>=1]"
        );
    }

    #[test]
    fn install_if_pulls_in_doc_packages() {
        let mut doc = pkg("foo-doc", "1.0-r0", "", "");
        doc.install_if = Dependency::parse_list("docs foo=1.0-r0").unwrap();
        let cands = [
            pkg("foo", "1.0-r0", "", ""),
            pkg("docs", "1-r0", "", ""),
            doc,
            pkg("bar", "1-r0", "", ""),
        ];
        assert_eq!(
            solve(&cands, &[], "foo docs").unwrap(),
            ["docs-1-r0", "foo-1.0-r0", "foo-doc-1.0-r0"]
        );
        assert_eq!(
            solve(&cands, &[], "foo bar").unwrap(),
            ["bar-1-r0", "foo-1.0-r0"]
        );
        // An install_if package whose own dependencies fail is left out, not an error.
        let mut broken = cands.clone();
        broken[2].depends = Dependency::parse_list("missing").unwrap();
        assert_eq!(
            solve(&broken, &[], "foo docs").unwrap(),
            ["docs-1-r0", "foo-1.0-r0"]
        );
    }

    #[test]
    fn install_if_reaches_a_fixpoint() {
        let mut a = pkg("a-extra", "1", "", "");
        a.install_if = world("a trigger");
        let mut b = pkg("b-extra", "1", "", "");
        b.install_if = world("a-extra b");
        let cands = [
            pkg("a", "1", "", ""),
            pkg("b", "1", "", ""),
            pkg("trigger", "1", "", ""),
            a,
            b,
        ];
        let got = solve(&cands, &[], "a b trigger").unwrap();
        assert!(got.contains(&"b-extra-1".to_string()), "{got:?}");
    }

    #[test]
    fn cycles_are_broken_deterministically() {
        let cands = [
            pkg("a", "1", "b", ""),
            pkg("b", "1", "c", ""),
            pkg("c", "1", "a", ""),
        ];
        let first = solve(&cands, &[], "b").unwrap();
        assert_eq!(first, ["c-1", "b-1", "a-1"]);
        assert_eq!(solve(&cands, &[], "b").unwrap(), first);
        assert_eq!(solve(&cands, &[], "a c b").unwrap(), first);
    }

    #[test]
    fn installed_versions_are_kept_unless_ruled_out() {
        let cands = [pkg("foo", "1.0-r0", "", ""), pkg("foo", "2.0-r0", "", "")];
        assert_eq!(
            solve(&cands, &[("foo", "1.0-r0")], "foo").unwrap(),
            ["foo-1.0-r0"]
        );
        assert_eq!(
            solve(&cands, &[("foo", "1.0-r0")], "foo>=2").unwrap(),
            ["foo-2.0-r0"]
        );
    }

    #[test]
    fn repository_order_breaks_ties() {
        let mut a = pkg("foo", "1.0-r0", "", "");
        a.repo_priority = 1;
        let b = pkg("foo", "1.0-r0", "", "");
        let r = resolve(&[a, b], &[], &world("foo")).unwrap();
        assert_eq!(r.install, [1]);
    }

    #[test]
    fn checksum_pins_are_reported() {
        let cands = [pkg("foo", "1.0-r0", "", "")];
        let err = error(&cands, "foo><Q1eVpkBa8EBwLEy0/TMxCt2vw1uVo=");
        assert!(err.contains("pinned by checksum"), "{err}");
    }

    #[test]
    fn a_virtual_waits_for_a_later_explicit_choice() {
        let cands = [
            pkg("mawk", "1.3-r0", "", "awk"),
            pkg("gawk", "5.3-r0", "", "awk"),
            pkg("app", "1-r0", "awk", ""),
            pkg("tool", "1-r0", "helper", ""),
            pkg("helper", "1-r0", "gawk", ""),
        ];
        // `awk` comes up before anything has chosen gawk; it must not fail yet.
        assert_eq!(
            solve(&cands, &[], "app tool").unwrap(),
            ["gawk-5.3-r0", "app-1-r0", "helper-1-r0", "tool-1-r0"]
        );
    }

    #[test]
    fn a_missing_library_deep_down_does_not_explode_the_search() {
        // Twenty levels of two versions each, all ending in a missing library: 2^20 paths
        // for a naive search, none for one that rules out uninstallable packages first.
        let mut cands = Vec::new();
        for i in 0..20 {
            let next = format!("l{}", i + 1);
            cands.push(pkg(&format!("l{i}"), "2", &next, ""));
            cands.push(pkg(&format!("l{i}"), "1", &next, ""));
        }
        cands.push(pkg("l20", "1", "so:libgone.so.1", ""));
        let err = error(&cands, "l0");
        assert!(
            err.starts_with(
                "so:libgone.so.1 (no provider); required by: world[l0] -> l0-2[l1] -> l1-2[l2]"
            ),
            "{err}"
        );
        assert!(err.ends_with("-> l20-1[so:libgone.so.1]"), "{err}");
    }

    /// Reads the package blocks of an installed database (or APKINDEX) into candidates:
    /// just the fields the resolver needs.
    fn candidates_from_db(path: &str) -> Vec<Candidate> {
        let text = fs_err::read_to_string(path)
            .unwrap_or_else(|e| panic!("fixture missing from testkit/fixtures: {e}"));
        let mut out = Vec::new();
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let mut c = pkg("", "", "", "");
            for line in block.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                match key {
                    "P" => c.name = value.into(),
                    "V" => c.version = value.into(),
                    "D" => c.depends = Dependency::parse_list(value).unwrap(),
                    "p" => c.provides = Provide::parse_list(value).unwrap(),
                    "i" => c.install_if = Dependency::parse_list(value).unwrap(),
                    "k" => c.provider_priority = Some(value.parse().unwrap()),
                    _ => {}
                }
            }
            out.push(c);
        }
        out
    }

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/apk-reference"
    );

    #[test]
    fn reproduces_the_real_alpine_3_20_root() {
        let cands = candidates_from_db(&format!("{FIXTURES}/alpine-3.20.3-db/installed"));
        let world_text =
            fs_err::read_to_string(format!("{FIXTURES}/alpine-3.20.3-db/world")).unwrap();
        let got = solve(&cands, &[], &world_text).unwrap();
        // apk chose exactly these 14 packages, ssl_client through its install_if.
        let mut names = got.clone();
        names.sort();
        let mut want: Vec<String> = cands
            .iter()
            .map(|c| format!("{}-{}", c.name, c.version))
            .collect();
        want.sort();
        assert_eq!(names, want);
        // Dependencies come first (this set has no cycles).
        let position = |i: usize| {
            got.iter()
                .position(|p| *p == format!("{}-{}", cands[i].name, cands[i].version))
        };
        let r = resolve(&cands, &[], &world(&world_text)).unwrap();
        for &i in &r.install {
            for dep in &cands[i].depends {
                let provider =
                    r.install.iter().copied().find(|&p| {
                        entries(&cands[p]).any(|(n, v)| n == dep.name && satisfies(dep, v))
                    });
                let provider = provider.unwrap_or_else(|| panic!("nothing provides {dep}"));
                assert!(
                    position(provider) < position(i),
                    "{dep} after {}",
                    cands[i].name
                );
            }
        }
    }

    #[test]
    fn reproduces_the_fixture_world() {
        let cands = candidates_from_db(&format!("{FIXTURES}/installed-db/installed"));
        let world_text = fs_err::read_to_string(format!("{FIXTURES}/installed-db/world")).unwrap();
        assert_eq!(
            solve(&cands, &[], &world_text).unwrap(),
            ["hello-1.0-r0", "libcstub-1.2.3-r0", "world-2.1_rc1-r3"]
        );
    }

    #[test]
    fn a_world_conflict_deep_down_is_found_at_once() {
        let mut cands = Vec::new();
        for i in 0..30 {
            let next = format!("l{}", i + 1);
            cands.push(pkg(&format!("l{i}"), "2", &next, ""));
            cands.push(pkg(&format!("l{i}"), "1", &next, ""));
        }
        cands.push(pkg("l30", "1", "", ""));
        let err = error(&cands, "l0 !l30");
        assert!(
            err.starts_with("l30 (conflicts with world[!l30]); required by: world[l0] -> l0-2[l1]"),
            "{err}"
        );
        assert!(err.ends_with("-> l29-2[l30]"), "{err}");
    }

    #[test]
    fn the_search_gives_up_with_a_hint() {
        // A package's own conflict is not known in advance, so this one is exponential.
        let mut cands = Vec::new();
        for i in 0..40 {
            let next = format!("l{}", i + 1);
            cands.push(pkg(&format!("l{i}"), "2", &next, ""));
            cands.push(pkg(&format!("l{i}"), "1", &next, ""));
        }
        cands.push(pkg("l40", "1", "", ""));
        cands.push(pkg("a", "1", "!l40", ""));
        let err = resolve_within(&cands, &[], &world("a l0"), 5_000).unwrap_err();
        let ResolveError::SearchLimit { first_dead_end, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            first_dead_end.starts_with("l40 (conflicts with world[a] -> a-1[!l40])"),
            "{err}"
        );
    }

    #[test]
    fn many_packages_resolve_quickly() {
        // A chain of 300 packages, each with an older version that cannot be installed.
        let mut cands = Vec::new();
        for i in 0..300 {
            let next = if i + 1 < 300 {
                format!("p{}", i + 1)
            } else {
                String::new()
            };
            cands.push(pkg(&format!("p{i}"), "2", &next, "so:shared=1"));
            cands.push(pkg(&format!("p{i}"), "1", "missing", ""));
        }
        // Every package provides the same versioned name: only one may be installed.
        let err = error(&cands, "p0");
        assert!(err.contains("so:shared"), "{err}");
        for c in &mut cands {
            c.provides.clear();
        }
        assert_eq!(solve(&cands, &[], "p0").unwrap().len(), 300);
    }
}
