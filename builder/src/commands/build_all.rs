//! `apkbuild build-all DIR…`: every recipe under the directories, in dependency order.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Reporter as _;
use crate::apkbuild::Recipe;
use crate::build::{self, Outcome};
use crate::env::Env;

/// Arguments of `apkbuild build-all`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directories holding recipes (searched three levels deep).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Go on after a failure (recipes depending on a failed one are skipped).
    #[arg(short, long)]
    pub keep_going: bool,
    /// Build options.
    #[command(flatten)]
    pub build: super::build::BuildArgs,
}

/// Runs `apkbuild build-all`.
pub fn run(args: &Args, env: &Env, quiet: bool) -> anyhow::Result<ExitCode> {
    let opts = args.build.options(env)?;
    let reporter = crate::report::Stderr::new(quiet);
    let recipes = crate::tree::find_recipes(&args.dirs)?
        .iter()
        .map(|d| Recipe::load(d, &opts.carch))
        .collect::<Result<Vec<_>, _>>()?;
    let built = build::repo::all_entries(&opts.repodest, &opts.carch)?;
    let ordered = crate::tree::order(recipes, &built)?;
    let (mut n_built, mut n_cached, mut failed) = (0, 0, Vec::new());
    let mut ok = vec![true; ordered.len()];
    for (i, (recipe, needs)) in ordered.iter().enumerate() {
        if let Some(&bad) = needs.iter().find(|&&n| !ok[n]) {
            reporter.info(&format!(
                "{}: skipped: it needs {}, which failed",
                recipe.pkgname(),
                ordered[bad].0.pkgname()
            ));
            ok[i] = false;
            failed.push(recipe.pkgname().to_string());
            continue;
        }
        match build::build(recipe, &opts, &reporter) {
            Ok(outcome) => {
                match &outcome {
                    Outcome::Built(_) => n_built += 1,
                    Outcome::Cached(_) => n_cached += 1,
                    Outcome::Skipped => {}
                }
                super::build::print_outcome(recipe.pkgname(), &outcome)?;
            }
            Err(e) if args.keep_going => {
                eprintln!("error: {}: {}", recipe.pkgname(), apk::cause::of(&e));
                ok[i] = false;
                failed.push(recipe.pkgname().to_string());
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("building {} failed", recipe.pkgname()))
                );
            }
        }
    }
    reporter.info(&format!(
        "{} recipes: {n_built} built, {n_cached} from the cache, {} failed{}",
        ordered.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join(", "))
        }
    ));
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
