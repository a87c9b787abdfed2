//! `apkbuild verify`: like `apk verify`, and stricter: the signature (first usable one,
//! no fallback, as apk), `datahash`, every file checksum, entry names, gzip headers.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::ApkFile;
use crate::env::Env;

/// Arguments of `apkbuild verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packages and indexes to verify.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Directory of trusted `.rsa.pub` keys (repeatable) [default: /etc/apk/keys and the
    /// abuild user directory].
    #[arg(long = "keys-dir", value_name = "DIR")]
    pub keys_dirs: Vec<PathBuf>,
}

/// Runs `apkbuild verify`; exit 1 if any file fails.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<ExitCode> {
    let keys = super::load_keyring(&args.keys_dirs, env)?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for path in &args.files {
        let result = super::open_apk_file(path).and_then(|file| match file {
            ApkFile::Package(pkg) => {
                let sig = pkg.verify(&keys)?;
                Ok(format!(
                    "package {}-{}, {} files, signed by {}",
                    pkg.info.pkgname,
                    pkg.info.pkgver,
                    pkg.files.len(),
                    sig.key_name
                ))
            }
            ApkFile::Index(idx) => {
                let sig = idx.verify(&keys)?;
                Ok(format!(
                    "index of {} packages, signed by {}",
                    idx.index.packages.len(),
                    sig.key_name
                ))
            }
        });
        match result {
            Ok(what) => writeln!(out, "{}: OK ({what})", path.display())?,
            Err(err) => {
                failed += 1;
                writeln!(
                    out,
                    "{}: FAILED: {}",
                    path.display(),
                    apk::cause::chain(err.chain())
                )?;
            }
        }
    }
    if failed > 0 {
        tracing::error!("{failed} of {} files failed verification", args.files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
