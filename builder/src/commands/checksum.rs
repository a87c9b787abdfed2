//! `apkbuild checksum`: fetch the sources and rewrite `sha512sums` like `abuild checksum`
//! (the old block removed, the new one appended at the end of the APKBUILD).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::apkbuild::Recipe;
use crate::build::sources;
use crate::env::Env;

/// Arguments of `apkbuild checksum`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipe directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The APKBUILD text without its `sha512sums="…"` (and legacy `sha256sums`, any
/// `shaNNNsums`) blocks, with `block` appended, as `abuild checksum` rewrites it.
pub fn replace_sums(text: &str, block: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if !inside && let Some(rest) = sums_assignment(line) {
            let closed = rest.len() > 1 && rest.ends_with(['"', '\'']);
            inside = !closed && rest.starts_with(['"', '\'']);
            continue;
        }
        if inside {
            if line.trim_end().ends_with(['"', '\'']) {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let body = out.trim_end_matches('\n');
    if body.is_empty() {
        block.to_string()
    } else {
        format!("{body}\n\n{block}")
    }
}

/// What follows `shaNNNsums=` at the start of `line`.
fn sums_assignment(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("sha")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    (digits > 0).then_some(())?;
    rest[digits..].strip_prefix("sums=")
}

/// Runs `apkbuild checksum`.
pub fn run(args: &Args, _env: &Env, quiet: bool) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::load(&args.dir, std::env::consts::ARCH)?;
    let tmp = tempfile::Builder::new()
        .prefix("apkbuild-checksum-")
        .tempdir()?;
    let reporter = crate::report::Stderr::new(quiet);
    let fetched = sources::fetch(&recipe, tmp.path(), None, &reporter)?;
    let mut block = String::from("sha512sums=\"\n");
    for (src, path) in &fetched {
        block.push_str(&format!(
            "{}  {}\n",
            sources::sha512_file(path)?,
            src.file_name
        ));
    }
    block.push_str("\"\n");
    let text = replace_sums(&recipe.text, &block);
    apk::atomic::write_atomic(&recipe.path, text.as_bytes())?;
    if !quiet {
        eprintln!(
            ">>> {}: updated sha512sums ({} sources)",
            recipe.path.display(),
            fetched.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn replacing_is_idempotent_and_leaves_one_block(
            lines in proptest::collection::vec("(sha512sums=\"|[a-z =\"]{0,12}|\")", 0..12),
        ) {
            let text = lines.join("\n");
            let block = "sha512sums=\"\nab  f\n\"\n";
            let once = replace_sums(&text, block);
            proptest::prop_assert!(once.ends_with(block));
            proptest::prop_assert_eq!(replace_sums(&once, block), once.clone());
        }
    }

    #[test]
    fn replaces_the_block() {
        let t = "pkgname=a\nsha512sums=\"\nabc  x\n\"\nfoo() { :; }\n";
        assert_eq!(
            replace_sums(t, "sha512sums=\"\nnew  x\n\"\n"),
            "pkgname=a\nfoo() { :; }\n\nsha512sums=\"\nnew  x\n\"\n"
        );
        assert_eq!(
            replace_sums("a=1\nsha512sums=\"x  y\"\n", "S\n"),
            "a=1\n\nS\n"
        );
    }
}
