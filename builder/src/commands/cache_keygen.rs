//! `apkbuild cache-keygen DIR`: an Ed25519 key pair for signing cache entries (`cache.key`,
//! kept by the runners that may write the cache; `cache.pub`, given to every runner).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::env::Env;

/// Arguments of `apkbuild cache-keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `cache.key` and `cache.pub` into.
    pub dir: PathBuf,
}

/// Runs `apkbuild cache-keygen`.
pub fn run(args: &Args, _env: &Env) -> anyhow::Result<ExitCode> {
    let (k, p) = (args.dir.join("cache.key"), args.dir.join("cache.pub"));
    if k.exists() || p.exists() {
        bail!(
            "`{}` already holds a cache key: remove it first to make a new one",
            args.dir.display()
        );
    }
    let (private, public) = crate::cache::generate_keypair()?;
    fs_err::create_dir_all(&args.dir)?;
    let mut f = apk::atomic::AtomicFile::create(&k)?.with_mode(0o600);
    f.write_all(private.as_bytes())?;
    f.commit()?;
    apk::atomic::write_atomic(&p, public.as_bytes())?;
    writeln!(std::io::stdout().lock(), "{}\n{}", k.display(), p.display())?;
    Ok(ExitCode::SUCCESS)
}
