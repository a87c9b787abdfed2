//! `apkbuild info`: a recipe's evaluated metadata, for people and for scripts (`--json`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::apkbuild::Recipe;
use crate::env::Env;

/// Arguments of `apkbuild info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe directory (holding APKBUILD).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Target architecture ($CARCH).
    #[arg(long, default_value = std::env::consts::ARCH)]
    pub arch: String,
}

/// Which checksums a recipe's sources are verified against.
#[derive(Debug, serde::Serialize)]
pub struct Checksums {
    /// `sha512` or `sha256` (abuild's `sumalgo`).
    pub algorithm: &'static str,
    /// (file name, hex digest).
    pub files: Vec<(String, String)>,
}

/// The JSON shape of `apkbuild info --json`.
#[derive(Debug, serde::Serialize)]
pub struct Info {
    /// Every variable read back from the shell.
    pub variables: std::collections::BTreeMap<String, String>,
    /// `pkgver-rpkgrel`.
    pub version: String,
    /// Arch of the main package.
    pub arch: String,
    /// The maintainer (`maintainer=`, else the `# Maintainer:` comment).
    pub maintainer: String,
    /// The checksums sources are verified against: `sha512`, or legacy `sha256`.
    pub checksums: Checksums,
    /// Repository (directory above the recipe).
    pub repo: String,
    /// Subpackages with their split function and arch.
    pub subpackages: Vec<crate::apkbuild::Subpackage>,
    /// Source entries.
    pub sources: Vec<crate::apkbuild::Source>,
    /// Files the build will produce (like `abuild listpkg`).
    pub packages: Vec<String>,
    /// Phase and split functions the recipe defines (prelude defaults included).
    pub functions: Vec<String>,
}

impl Info {
    /// Collects the info of a recipe.
    pub fn of(recipe: &Recipe) -> Self {
        Self {
            variables: recipe.vars.clone(),
            version: recipe.full_version(),
            arch: recipe.pkgarch(),
            maintainer: recipe.maintainer(),
            checksums: {
                let (algorithm, files) = recipe.checksums();
                Checksums { algorithm, files }
            },
            repo: recipe.repo(),
            subpackages: recipe.subpackages(),
            sources: recipe.sources(),
            packages: recipe.file_names(),
            functions: recipe.functions.iter().cloned().collect(),
        }
    }
}

/// Runs `apkbuild info`.
pub fn run(args: &Args, _env: &Env) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::load(&args.dir, &args.arch)?;
    for w in &recipe.warnings {
        tracing::warn!("{w}");
    }
    let info = Info::of(&recipe);
    let mut out = std::io::stdout().lock();
    if args.json {
        // Rendered first, so a closed pipe surfaces as the io::Error it is.
        let mut json = serde_json::to_vec_pretty(&info)?;
        json.push(b'\n');
        out.write_all(&json)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (k, v) in &info.variables {
        if !v.is_empty() {
            writeln!(out, "{k}=\"{}\"", v.trim())?;
        }
    }
    writeln!(out, "# repo: {}  arch: {}", info.repo, info.arch)?;
    if !info.maintainer.is_empty() {
        writeln!(out, "# maintainer: {}", info.maintainer)?;
    }
    for s in &info.subpackages {
        writeln!(
            out,
            "# subpackage: {} (split: {}, arch: {})",
            s.name, s.func, s.arch
        )?;
    }
    for p in &info.packages {
        writeln!(out, "{p}")?;
    }
    Ok(ExitCode::SUCCESS)
}
