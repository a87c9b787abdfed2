//! Recipe trees: find every APKBUILD under some directories, and order them so that each
//! recipe comes after the recipes providing its build dependencies (names, subpackages,
//! `provides`, and the `so:`/`cmd:`/`pc:` names their packages already in the repository
//! provide).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use apk::index::IndexEntry;

use crate::apkbuild::Recipe;

/// Why a tree cannot be ordered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// An argument is not a directory.
    #[error("`{}` is not a directory: pass directories holding recipes", path.display())]
    NotADirectory {
        /// The argument.
        path: PathBuf,
    },
    /// Recipes need each other.
    #[error(
        "dependency cycle among {}: break it (e.g. a bootstrap recipe without the makedepends)",
        names.join(", ")
    )]
    Cycle {
        /// The recipes left unordered.
        names: Vec<String>,
    },
    /// Walking a directory.
    #[error(transparent)]
    Walk(#[from] walkdir::Error),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Finds recipe directories: `dir` itself if it holds an APKBUILD, else every directory
/// below it (up to three levels, hidden ones skipped) that does. Sorted, deduplicated.
pub fn find_recipes(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, TreeError> {
    let mut out = BTreeSet::new();
    for dir in dirs {
        if dir.join("APKBUILD").is_file() {
            out.insert(std::path::absolute(dir)?);
            continue;
        }
        if !dir.is_dir() {
            return Err(TreeError::NotADirectory { path: dir.clone() });
        }
        for e in walkdir::WalkDir::new(dir)
            .min_depth(1)
            .max_depth(3)
            .into_iter()
            .filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'))
        {
            let e = e?;
            if e.file_type().is_dir() && e.path().join("APKBUILD").is_file() {
                out.insert(std::path::absolute(e.path())?);
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn atom_name(atom: &str) -> &str {
    atom.split(['<', '>', '=', '~']).next().unwrap_or(atom)
}

/// The recipes in build order, each with the indexes (into the result) of the recipes it
/// needs.
pub fn order(
    recipes: Vec<Recipe>,
    built: &[(PathBuf, IndexEntry)],
) -> Result<Vec<(Recipe, Vec<usize>)>, TreeError> {
    // name → recipe index
    let mut provider: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in recipes.iter().enumerate() {
        for (name, _) in r.packages() {
            provider.entry(name).or_insert(i);
        }
        for p in r.list("provides") {
            provider.entry(atom_name(&p).to_string()).or_insert(i);
        }
    }
    for (_, e) in built {
        if let Some(&i) = provider.get(&e.origin) {
            for p in &e.provides {
                provider.entry(atom_name(p).to_string()).or_insert(i);
            }
        }
    }
    let deps: Vec<BTreeSet<usize>> = recipes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.build_dependencies(!r.has_option("!check"))
                .iter()
                .filter_map(|d| provider.get(d).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    // Kahn's algorithm; ties broken by path so the order is stable.
    let mut done: Vec<usize> = Vec::new();
    let mut placed = vec![false; recipes.len()];
    while done.len() < recipes.len() {
        let ready: Vec<usize> = (0..recipes.len())
            .filter(|&i| !placed[i] && deps[i].iter().all(|&d| placed[d]))
            .collect();
        if ready.is_empty() {
            let stuck: Vec<String> = (0..recipes.len())
                .filter(|&i| !placed[i])
                .map(|i| recipes[i].pkgname().to_string())
                .collect();
            return Err(TreeError::Cycle { names: stuck });
        }
        let next = *ready
            .iter()
            .min_by(|&&a, &&b| recipes[a].dir.cmp(&recipes[b].dir))
            .unwrap_or(&ready[0]);
        placed[next] = true;
        done.push(next);
    }
    let pos: BTreeMap<usize, usize> = done.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let mut recipes: Vec<Option<Recipe>> = recipes.into_iter().map(Some).collect();
    Ok(done
        .iter()
        .map(|&i| {
            let needs = deps[i].iter().map(|d| pos[d]).collect();
            (recipes[i].take().unwrap_or_else(|| unreachable!()), needs)
        })
        .collect())
}

/// A job name for a recipe: `build:<repo>/<pkgname>`.
pub fn job_name(r: &Recipe) -> String {
    format!("build:{}/{}", r.repo(), r.pkgname())
}

/// A GitLab child-pipeline: one job per recipe, `needs:` edges carrying the packages.
pub fn gitlab_yaml(ordered: &[(Recipe, Vec<usize>)], base: &Path) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut y = String::from(
        "# Generated by `apkbuild graph --gitlab`: one job per recipe; `needs:` passes the\n\
         # packages each recipe builds against. Include it as a child pipeline.\n\
         stages: [build]\n\
         variables:\n  REPODEST: \"$CI_PROJECT_DIR/packages\"\n",
    );
    for (r, needs) in ordered {
        let dir = r
            .dir
            .strip_prefix(base)
            .unwrap_or(&r.dir)
            .display()
            .to_string();
        y.push_str(&format!("\n{}:\n  stage: build\n", q(&job_name(r))));
        if needs.is_empty() {
            y.push_str("  needs: []\n");
        } else {
            y.push_str("  needs:\n");
            for &n in needs {
                y.push_str(&format!(
                    "    - job: {}\n      artifacts: true\n",
                    q(&job_name(&ordered[n].0))
                ));
            }
        }
        y.push_str(&format!(
            "  script:\n    - apkbuild build {}\n  artifacts:\n    paths:\n      - packages/\n",
            q(&dir)
        ));
    }
    y
}
