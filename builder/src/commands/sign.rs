//! `apkbuild sign`: abuild-sign for indexes, and (re-)signing of packages. Existing
//! signatures are replaced: the new signature member is the only one.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use apk::sign::SignatureType;

use super::ApkFile;
use crate::env::Env;

/// Arguments of `apkbuild sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packages (`.apk`) or indexes (`APKINDEX.tar.gz`) to sign in place.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Private key [default: $PACKAGER_PRIVKEY or abuild.conf].
    #[arg(short, long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Signature type: `rsa` (SHA-1, what every apk accepts) or `rsa256`.
    #[arg(short = 't', long = "type", default_value = "rsa")]
    pub kind: SignatureType,
}

/// Runs `apkbuild sign`.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<ExitCode> {
    let key = crate::keyconf::load_privkey(args.key.as_ref(), env)?;
    let mut out = std::io::stdout().lock();
    for path in &args.files {
        let bytes = fs_err::read(path)?;
        // What follows the signature member, what the signature covers, and the time
        // stamp of the signature entry (SOURCE_DATE_EPOCH, else the package's build date
        // or now, so re-signing a package is reproducible).
        let (rest, message, mtime) = match super::open_apk_file(path)
            .with_context(|| format!("cannot sign `{}`", path.display()))?
        {
            ApkFile::Package(pkg) => {
                let start = usize::try_from(pkg.offsets.0)?;
                (
                    bytes[start..].to_vec(),
                    pkg.control,
                    env.source_date_or(pkg.info.builddate),
                )
            }
            ApkFile::Index(idx) => (
                idx.signed.clone(),
                idx.signed,
                env.source_date_or(super::now()),
            ),
        };
        let mut new = apk::signed::signature_member(&[(&key, args.kind)], &message, mtime)?;
        new.extend_from_slice(&rest);
        apk::atomic::write_atomic(path, &new)?;
        writeln!(
            out,
            "{}: signed by {} ({})",
            path.display(),
            key.name(),
            args.kind
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
