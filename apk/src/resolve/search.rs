//! The search behind [`resolve`](super::resolve): a depth-first walk over the atoms still
//! to satisfy, branching where several candidates fit and backtracking chronologically.
//!
//! Semantics are those of `shared/docs/apk-format.md` §5.4 as listed in the parent module.
//! Candidates that can never be installed (world forbids them, or a dependency has no
//! usable provider) are found once up front, so a missing library deep down costs nothing;
//! what is left to backtrack over are choices that clash with each other.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use super::{Candidate, InstalledPackage, Problem, ResolveError};
use crate::dep::{Dependency, Op};
use crate::version;

/// Runs the search: the selected candidates in install order.
pub(super) fn solve(
    candidates: &[Candidate],
    installed: &[InstalledPackage],
    world: &[Dependency],
    limit: usize,
) -> Result<Vec<usize>, ResolveError> {
    let solver = Solver::new(candidates, installed, world);
    let mut state = State::default();
    let mut world: Vec<&Dependency> = world.iter().collect();
    // apk sorts world by name too; it makes the search order independent of file order.
    world.sort_by(|a, b| a.name.cmp(&b.name));
    for dep in world {
        let chain = Rc::new(Chain {
            requirer: Requirer::World,
            dep,
            parent: None,
        });
        if dep.conflict {
            state.conflicts.push(Active {
                dep,
                declarer: None,
                chain,
            });
        } else {
            state.goals.push_back(Goal {
                dep,
                chain,
                deferred_at: None,
            });
        }
    }
    let mut budget = Budget {
        limit,
        ..Budget::default()
    };
    let state = solver.run(state, &mut budget)?;
    let state = solver.add_install_if(state, &mut budget)?;
    Ok(solver.order(&state))
}

/// Who asked for an atom: the first link of an error's `required by:` chain.
#[derive(Clone, Copy)]
enum Requirer {
    World,
    Package(usize),
    /// A package pulled in by its `install_if`; `dep` is then its first `install_if` atom.
    InstallIf(usize),
}

/// A linked list from an atom back to world, shared between search branches.
struct Chain<'a> {
    requirer: Requirer,
    dep: &'a Dependency,
    parent: Option<Rc<Chain<'a>>>,
}

/// An atom still to satisfy.
#[derive(Clone)]
struct Goal<'a> {
    dep: &'a Dependency,
    chain: Rc<Chain<'a>>,
    /// Set when an ambiguous virtual was put back in the queue: the number of selected
    /// packages then. It is retried only after the selection has grown.
    deferred_at: Option<usize>,
}

/// A `!name` atom in force.
#[derive(Clone)]
struct Active<'a> {
    dep: &'a Dependency,
    declarer: Option<usize>,
    chain: Rc<Chain<'a>>,
}

/// One branch of the search.
#[derive(Clone, Default)]
struct State<'a> {
    /// Selected candidates and the chain that selected each.
    selected: BTreeMap<usize, Rc<Chain<'a>>>,
    /// Name → selected (candidate, provided version) pairs; `None` = unversioned.
    owners: BTreeMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    conflicts: Vec<Active<'a>>,
    goals: VecDeque<Goal<'a>>,
}

/// What to do with a goal.
enum Step {
    Satisfied,
    Choose(Vec<usize>),
    /// Several unversioned providers and nothing to prefer one: these package names.
    Ambiguous(Vec<String>),
}

struct Solver<'a> {
    candidates: &'a [Candidate],
    /// Name → every (candidate, provided version) pair offering it.
    providers: BTreeMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    installed: BTreeSet<(&'a str, &'a str)>,
    /// Candidates that can never be installed, and why.
    broken: BTreeMap<usize, Unusable<'a>>,
}

/// Why a candidate can never be installed.
#[derive(Clone, Copy)]
enum Unusable<'a> {
    /// World forbids it with this `!name` atom.
    Forbidden(&'a Dependency),
    /// Nothing installable satisfies this dependency of it.
    Missing(&'a Dependency),
}

/// Search effort so far, and what to say if it runs out.
#[derive(Default)]
struct Budget {
    steps: usize,
    limit: usize,
    first_dead_end: Option<String>,
}

impl Budget {
    fn tick(&mut self) -> Result<(), ResolveError> {
        self.steps += 1;
        if self.steps <= self.limit {
            return Ok(());
        }
        Err(ResolveError::SearchLimit {
            steps: self.steps,
            first_dead_end: self
                .first_dead_end
                .clone()
                .unwrap_or_else(|| "none yet".to_owned()),
        })
    }
}

impl<'a> Solver<'a> {
    fn new(
        candidates: &'a [Candidate],
        installed: &'a [InstalledPackage],
        world: &'a [Dependency],
    ) -> Self {
        let mut providers: BTreeMap<&str, Vec<(usize, Option<&str>)>> = BTreeMap::new();
        for (i, c) in candidates.iter().enumerate() {
            for (name, version) in entries(c) {
                providers.entry(name).or_default().push((i, version));
            }
        }
        let installed = installed
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        let mut solver = Solver {
            candidates,
            providers,
            installed,
            broken: BTreeMap::new(),
        };
        solver.find_broken(world);
        solver
    }

    /// Marks candidates that can never be installed, whatever else is chosen: those world
    /// forbids, and those with a dependency that has no provider or only such unusable
    /// providers. Like apk's `dependency_satisfiable`, this keeps one missing library deep
    /// down from making the search try every combination of versions above it.
    fn find_broken(&mut self, world: &'a [Dependency]) {
        for conflict in world.iter().filter(|d| d.conflict) {
            for c in 0..self.candidates.len() {
                if self.hits(conflict, c) {
                    self.broken
                        .entry(c)
                        .or_insert(Unusable::Forbidden(conflict));
                }
            }
        }
        loop {
            let mut newly = Vec::new();
            for (c, cand) in self.candidates.iter().enumerate() {
                if self.broken.contains_key(&c) {
                    continue;
                }
                let unsatisfiable = cand.depends.iter().find(|d| {
                    !d.conflict
                        && !self
                            .all_providers(&d.name)
                            .iter()
                            .any(|&(p, v)| satisfies(d, v) && !self.broken.contains_key(&p))
                });
                if let Some(dep) = unsatisfiable {
                    newly.push((c, Unusable::Missing(dep)));
                }
            }
            if newly.is_empty() {
                return;
            }
            self.broken.extend(newly);
        }
    }

    /// The error explaining why unusable candidate `c` cannot satisfy `goal`: follows the
    /// missing dependencies down to one nothing provides, or to a package world forbids.
    fn broken_error(&self, goal: &Goal<'a>, c: usize) -> ResolveError {
        let (mut dep, mut chain, mut c) = (goal.dep, Rc::clone(&goal.chain), c);
        loop {
            let missing = match self.broken.get(&c) {
                Some(Unusable::Missing(missing)) => *missing,
                Some(Unusable::Forbidden(conflict)) => {
                    let with = format!("world[{conflict}]");
                    return self.error_at(dep, &chain, Problem::Conflict { with });
                }
                // Not reached: every provider followed here is itself unusable.
                None => return self.error_at(dep, &chain, self.no_match(dep, &[])),
            };
            chain = Rc::new(Chain {
                requirer: Requirer::Package(c),
                dep: missing,
                parent: Some(chain),
            });
            dep = missing;
            let all = self.all_providers(&dep.name);
            let next = all
                .iter()
                .copied()
                .filter(|&(_, v)| satisfies(dep, v))
                .min_by(|&a, &b| self.prefer(a, b));
            // A provider of a missing dependency was marked in an earlier round, so the
            // walk ends.
            match next {
                Some((p, _)) if p != c => c = p,
                _ => return self.error_at(dep, &chain, self.no_match(dep, all)),
            }
        }
    }

    fn all_providers(&self, name: &str) -> &[(usize, Option<&'a str>)] {
        self.providers.get(name).map_or(&[][..], Vec::as_slice)
    }

    fn is_installed(&self, c: usize) -> bool {
        let c = &self.candidates[c];
        self.installed
            .contains(&(c.name.as_str(), c.version.as_str()))
    }

    /// Processes goals until none are left, branching where several candidates fit.
    fn run(&self, mut state: State<'a>, budget: &mut Budget) -> Result<State<'a>, ResolveError> {
        while let Some(goal) = state.goals.pop_front() {
            budget.tick()?;
            let options = match self.step(&state, &goal)? {
                Step::Satisfied => continue,
                Step::Choose(options) => options,
                Step::Ambiguous(providers) => {
                    // Something still queued may pick one of the providers; wait for it.
                    let progress = state.selected.len();
                    if !state.goals.is_empty() && goal.deferred_at.is_none_or(|at| at < progress) {
                        state.goals.push_back(Goal {
                            deferred_at: Some(progress),
                            ..goal
                        });
                        continue;
                    }
                    return Err(self.unsatisfiable(&goal, Problem::Ambiguous { providers }));
                }
            };
            // Options that cannot work fail right away; the rest are tried in order of
            // preference. The error reported is that of the most preferred option: it tells
            // best why the obvious choice did not work.
            let mut failures: Vec<(usize, ResolveError)> = Vec::new();
            let mut viable = Vec::with_capacity(options.len());
            for (rank, &c) in options.iter().enumerate() {
                if self.broken.contains_key(&c) {
                    failures.push((rank, self.broken_error(&goal, c)));
                } else if let Some(with) = self.clash(&state, c) {
                    let e = self.unsatisfiable(&goal, Problem::Conflict { with });
                    failures.push((rank, e));
                } else {
                    viable.push((rank, c));
                }
            }
            if let [(0, only)] = viable[..] {
                // Nothing better to fall back on: carry on in place without a copy.
                self.select(&mut state, only, &goal.chain);
                continue;
            }
            for (rank, c) in viable {
                let mut branch = state.clone();
                self.select(&mut branch, c, &goal.chain);
                match self.run(branch, budget) {
                    Ok(done) => return Ok(done),
                    Err(e @ ResolveError::SearchLimit { .. }) => return Err(e),
                    Err(e) => {
                        budget.first_dead_end.get_or_insert_with(|| e.to_string());
                        failures.push((rank, e));
                    }
                }
            }
            // `step` never offers an empty choice, so there is at least one failure.
            let best = failures.into_iter().min_by_key(|(rank, _)| *rank);
            return Err(match best {
                Some((_, e)) => e,
                None => self.unsatisfiable(
                    &goal,
                    Problem::Conflict {
                        with: String::new(),
                    },
                ),
            });
        }
        Ok(state)
    }

    /// Decides how to satisfy one goal: already satisfied, or which candidates to try.
    fn step(&self, state: &State<'a>, goal: &Goal<'a>) -> Result<Step, ResolveError> {
        let dep = goal.dep;
        let fail = |problem| Err(self.unsatisfiable(goal, problem));
        if dep
            .constraint
            .as_ref()
            .is_some_and(|c| c.op == Op::Checksum)
        {
            return fail(Problem::ChecksumPin);
        }
        if let Some(owners) = state.owners.get(dep.name.as_str()) {
            if owners.iter().any(|&(_, v)| satisfies(dep, v)) {
                return Ok(Step::Satisfied);
            }
            // A name has one owner, or only unversioned providers: no second provider fits.
            let (c, _) = owners[0];
            let with = format!(
                "{}, selected for {}",
                self.pkgver(c),
                self.render(&state.selected[&c]).join(" -> ")
            );
            return fail(Problem::Conflict { with });
        }
        let all = self.all_providers(&dep.name);
        let matching: Vec<(usize, Option<&str>)> = all
            .iter()
            .copied()
            .filter(|&(_, v)| satisfies(dep, v))
            .collect();
        if matching.is_empty() {
            return fail(self.no_match(dep, all));
        }
        // Skip options a pending atom on this name would reject anyway: once one provider
        // owns the name no other can join, so the pending atom would fail.
        let pending: Vec<&Dependency> = state
            .goals
            .iter()
            .map(|g| g.dep)
            .filter(|d| d.name == dep.name)
            .collect();
        let viable: Vec<(usize, Option<&str>)> = matching
            .iter()
            .copied()
            .filter(|&(_, v)| pending.iter().all(|d| satisfies(d, v)))
            .collect();
        let viable = if viable.is_empty() { matching } else { viable };
        let (concrete, virtuals): (Vec<_>, Vec<_>) =
            viable.into_iter().partition(|e| e.1.is_some());
        let mut concrete = concrete;
        concrete.sort_by(|a, b| self.prefer(*a, *b));
        let mut options: Vec<usize> = concrete.iter().map(|e| e.0).collect();
        options.extend(self.virtual_options(virtuals.iter().map(|e| e.0).collect()));
        if options.is_empty() {
            let providers: BTreeSet<&str> = virtuals
                .iter()
                .map(|e| self.candidates[e.0].name.as_str())
                .collect();
            return Ok(Step::Ambiguous(
                providers.into_iter().map(str::to_owned).collect(),
            ));
        }
        Ok(Step::Choose(options))
    }

    /// Which unversioned providers may be chosen automatically, best first: installed ones,
    /// ones with a `provider_priority`, or all of them when a single package name provides.
    fn virtual_options(&self, mut virtuals: Vec<usize>) -> Vec<usize> {
        let names: BTreeSet<&str> = virtuals
            .iter()
            .map(|&c| self.candidates[c].name.as_str())
            .collect();
        if names.len() > 1 {
            virtuals.retain(|&c| {
                self.is_installed(c) || self.candidates[c].provider_priority.is_some()
            });
        }
        virtuals.sort_by(|&a, &b| {
            let (ca, cb) = (&self.candidates[a], &self.candidates[b]);
            self.is_installed(b)
                .cmp(&self.is_installed(a))
                .then(cb.provider_priority.cmp(&ca.provider_priority))
                .then_with(|| self.prefer((a, None), (b, None)))
        });
        virtuals
    }

    /// Orders two providers of one name, best first.
    fn prefer(&self, a: (usize, Option<&str>), b: (usize, Option<&str>)) -> std::cmp::Ordering {
        let (ca, cb) = (&self.candidates[a.0], &self.candidates[b.0]);
        let provided = match (a.1, b.1) {
            (Some(va), Some(vb)) => version::compare(vb, va),
            _ => std::cmp::Ordering::Equal,
        };
        self.is_installed(b.0)
            .cmp(&self.is_installed(a.0))
            .then(provided)
            .then_with(|| version::compare(&cb.version, &ca.version))
            .then(cb.provider_priority.cmp(&ca.provider_priority))
            .then(ca.repo_priority.cmp(&cb.repo_priority))
            .then_with(|| ca.name.cmp(&cb.name))
            .then(a.0.cmp(&b.0))
    }

    /// Why candidate `c` cannot join the selection, if it cannot.
    fn clash(&self, state: &State<'a>, c: usize) -> Option<String> {
        let cand = &self.candidates[c];
        for (name, version) in entries(cand) {
            let Some(owners) = state.owners.get(name) else {
                continue;
            };
            // Only unversioned provides of one name may coexist (apk's `assign_name`).
            if let Some(&(o, _)) = owners
                .iter()
                .find(|&&(o, ov)| o != c && !(version.is_none() && ov.is_none()))
            {
                return Some(format!(
                    "{} (both provide {name}), selected for {}",
                    self.pkgver(o),
                    self.render(&state.selected[&o]).join(" -> ")
                ));
            }
        }
        for active in &state.conflicts {
            if active.declarer != Some(c) && self.hits(active.dep, c) {
                return Some(self.render(&active.chain).join(" -> "));
            }
        }
        for conflict in cand.depends.iter().filter(|d| d.conflict) {
            if let Some(&s) = state
                .selected
                .keys()
                .find(|&&s| s != c && self.hits(conflict, s))
            {
                return Some(format!(
                    "{} by {}[{conflict}], selected for {}",
                    self.pkgver(s),
                    self.pkgver(c),
                    self.render(&state.selected[&s]).join(" -> ")
                ));
            }
        }
        None
    }

    /// Whether the conflict atom `conflict` forbids candidate `c`. An unversioned `!name`
    /// forbids every provider; a versioned one only versioned providers in range.
    fn hits(&self, conflict: &Dependency, c: usize) -> bool {
        entries(&self.candidates[c]).any(|(name, version)| {
            name == conflict.name
                && match (&conflict.constraint, version) {
                    (None, _) => true,
                    (Some(k), Some(v)) => k.matches(v),
                    (Some(_), None) => false,
                }
        })
    }

    fn select(&self, state: &mut State<'a>, c: usize, chain: &Rc<Chain<'a>>) {
        let cand = &self.candidates[c];
        state.selected.insert(c, Rc::clone(chain));
        for (name, version) in entries(cand) {
            state.owners.entry(name).or_default().push((c, version));
        }
        for dep in &cand.depends {
            let link = Rc::new(Chain {
                requirer: Requirer::Package(c),
                dep,
                parent: Some(Rc::clone(chain)),
            });
            if dep.conflict {
                state.conflicts.push(Active {
                    dep,
                    declarer: Some(c),
                    chain: link,
                });
            } else {
                state.goals.push_back(Goal {
                    dep,
                    chain: link,
                    deferred_at: None,
                });
            }
        }
    }

    /// Adds `install_if` packages until none is left to trigger (§5.4). One whose own
    /// dependencies fail is left out, as apk leaves it out.
    fn add_install_if(
        &self,
        mut state: State<'a>,
        budget: &mut Budget,
    ) -> Result<State<'a>, ResolveError> {
        let mut rejected = BTreeSet::new();
        while let Some(c) = self.next_triggered(&state, &rejected) {
            let Some(first) = self.candidates[c].install_if.first() else {
                break;
            };
            let chain = Rc::new(Chain {
                requirer: Requirer::InstallIf(c),
                dep: first,
                parent: None,
            });
            let mut branch = state.clone();
            self.select(&mut branch, c, &chain);
            match self.run(branch, budget) {
                Ok(done) => state = done,
                Err(e @ ResolveError::SearchLimit { .. }) => return Err(e),
                Err(_) => {
                    rejected.insert(c);
                }
            }
        }
        Ok(state)
    }

    /// The best candidate whose `install_if` atoms the selection satisfies, by name order.
    fn next_triggered(&self, state: &State<'a>, rejected: &BTreeSet<usize>) -> Option<usize> {
        let mut triggered: Vec<usize> = (0..self.candidates.len())
            .filter(|c| {
                !rejected.contains(c)
                    && !self.broken.contains_key(c)
                    && !state.selected.contains_key(c)
            })
            .filter(|&c| {
                let cand = &self.candidates[c];
                !cand.install_if.is_empty()
                    && !state.owners.contains_key(cand.name.as_str())
                    && cand.install_if.iter().all(|d| self.holds(state, d))
                    && self.clash(state, c).is_none()
            })
            .collect();
        triggered.sort_by(|&a, &b| {
            let name = |c: usize| self.candidates[c].name.as_str();
            name(a)
                .cmp(name(b))
                .then_with(|| self.prefer((a, None), (b, None)))
        });
        triggered.first().copied()
    }

    /// Whether the selection satisfies an atom (for `!name`: avoids it).
    fn holds(&self, state: &State<'a>, dep: &Dependency) -> bool {
        if dep.conflict {
            return !state.selected.keys().any(|&s| self.hits(dep, s));
        }
        state
            .owners
            .get(dep.name.as_str())
            .is_some_and(|o| o.iter().any(|&(_, v)| satisfies(dep, v)))
    }

    /// Install order: depth-first post-order from each package in name order, following
    /// `depends` then `install_if` in their written order; back edges of cycles are skipped.
    fn order(&self, state: &State<'a>) -> Vec<usize> {
        let mut roots: Vec<usize> = state.selected.keys().copied().collect();
        roots.sort_by(|&a, &b| {
            self.candidates[a]
                .name
                .cmp(&self.candidates[b].name)
                .then(a.cmp(&b))
        });
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(roots.len());
        for root in roots {
            self.visit(state, root, &mut seen, &mut out);
        }
        out
    }

    fn visit(&self, state: &State<'a>, c: usize, seen: &mut BTreeSet<usize>, out: &mut Vec<usize>) {
        if !seen.insert(c) {
            return;
        }
        let cand = &self.candidates[c];
        for dep in cand.depends.iter().chain(&cand.install_if) {
            if dep.conflict {
                continue;
            }
            let provider = state
                .owners
                .get(dep.name.as_str())
                .and_then(|o| o.iter().find(|&&(_, v)| satisfies(dep, v)));
            if let Some(&(p, _)) = provider {
                self.visit(state, p, seen, out);
            }
        }
        out.push(c);
    }

    /// Why no provider matches `dep` at all.
    fn no_match(&self, dep: &Dependency, all: &[(usize, Option<&str>)]) -> Problem {
        if dep
            .constraint
            .as_ref()
            .is_some_and(|c| c.op == Op::Checksum)
        {
            return Problem::ChecksumPin;
        }
        if all.is_empty() {
            // Namespaced and path names are only ever provided, never package names.
            return if dep.name.contains([':', '/']) {
                Problem::NoProvider
            } else {
                Problem::NoSuchPackage
            };
        }
        let mut available: Vec<&str> = all.iter().filter_map(|e| e.1).collect();
        available.sort_by(|a, b| version::compare(b, a));
        available.dedup();
        if available.is_empty() {
            let providers = all.iter().map(|e| self.pkgver(e.0)).collect();
            return Problem::VirtualOnly { providers };
        }
        Problem::NoSuchVersion {
            available: available.into_iter().map(str::to_owned).collect(),
        }
    }

    fn unsatisfiable(&self, goal: &Goal<'a>, problem: Problem) -> ResolveError {
        self.error_at(goal.dep, &goal.chain, problem)
    }

    fn error_at(&self, dep: &Dependency, chain: &Rc<Chain<'a>>, problem: Problem) -> ResolveError {
        ResolveError::Unsatisfiable {
            atom: dep.to_string(),
            problem,
            required_by: self.render(chain),
        }
    }

    fn pkgver(&self, c: usize) -> String {
        let c = &self.candidates[c];
        format!("{}-{}", c.name, c.version)
    }

    /// Renders a chain world-first, in apk's `pkg-ver[atom]` words.
    fn render(&self, chain: &Rc<Chain<'a>>) -> Vec<String> {
        let mut links = Vec::new();
        let mut next = Some(chain);
        while let Some(link) = next {
            links.push(match link.requirer {
                Requirer::World => format!("world[{}]", link.dep),
                Requirer::Package(c) => format!("{}[{}]", self.pkgver(c), link.dep),
                Requirer::InstallIf(c) => {
                    let atoms = crate::dep::format_list(&self.candidates[c].install_if);
                    format!("install_if[{atoms}] of {}", self.pkgver(c))
                }
            });
            next = link.parent.as_ref();
        }
        links.reverse();
        links
    }
}

/// Every name a candidate offers: its own (versioned) and its provides. A provide of its
/// own name is dropped: the package's own name and version are what count.
pub(super) fn entries(c: &Candidate) -> impl Iterator<Item = (&str, Option<&str>)> {
    std::iter::once((c.name.as_str(), Some(c.version.as_str()))).chain(
        c.provides
            .iter()
            .filter(move |p| p.name != c.name)
            .map(|p| (p.name.as_str(), p.version.as_deref())),
    )
}

/// Whether an offered (name already equal, version or `None` for a virtual) satisfies a
/// positive atom: unversioned provides never satisfy a versioned atom.
pub(super) fn satisfies(dep: &Dependency, offered: Option<&str>) -> bool {
    match (&dep.constraint, offered) {
        (None, _) => true,
        (Some(c), Some(v)) => c.matches(v),
        (Some(_), None) => false,
    }
}
