//! `apkbuild graph DIR…`: the build order, or with `--gitlab` a child-pipeline YAML.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::apkbuild::Recipe;
use crate::env::Env;

/// Arguments of `apkbuild graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directories holding recipes.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print a GitLab child-pipeline YAML (one job per recipe, `needs:` edges).
    #[arg(long)]
    pub gitlab: bool,
    /// Target architecture ($CARCH).
    #[arg(long, default_value = std::env::consts::ARCH)]
    pub arch: String,
    /// Repository root whose indexes tell which recipe provides `so:`/`cmd:` names.
    #[arg(long, value_name = "DIR")]
    pub repodest: Option<PathBuf>,
}

/// Runs `apkbuild graph`.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<ExitCode> {
    let recipes = crate::tree::find_recipes(&args.dirs)?
        .iter()
        .map(|d| Recipe::load(d, &args.arch))
        .collect::<Result<Vec<_>, _>>()?;
    let built = match args.repodest.clone().or_else(|| env.repodest.clone()) {
        Some(r) => crate::build::repo::all_entries(&r, &args.arch)?,
        None => Vec::new(),
    };
    let ordered = crate::tree::order(recipes, &built)?;
    let mut out = std::io::stdout().lock();
    if args.gitlab {
        let base = std::env::current_dir()?;
        write!(out, "{}", crate::tree::gitlab_yaml(&ordered, &base))?;
        return Ok(ExitCode::SUCCESS);
    }
    for (r, needs) in &ordered {
        let needs: Vec<&str> = needs.iter().map(|&n| ordered[n].0.pkgname()).collect();
        writeln!(
            out,
            "{}/{}{}",
            r.repo(),
            r.pkgname(),
            if needs.is_empty() {
                String::new()
            } else {
                format!(": {}", needs.join(" "))
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
