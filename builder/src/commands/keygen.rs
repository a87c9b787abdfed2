//! `apkbuild keygen`: abuild-keygen's job. Keys are named `<email>-<hex time>.rsa`, the
//! private key mode 0600, the public key beside it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::env::Env;

/// Arguments of `apkbuild keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Append `PACKAGER_PRIVKEY="<key>"` to abuild.conf in the abuild user directory.
    #[arg(short = 'a', long)]
    pub append: bool,
    /// Also copy the public key to this keys directory (abuild-keygen -i uses /etc/apk/keys).
    #[arg(short = 'i', long, value_name = "DIR", num_args = 0..=1, default_missing_value = "/etc/apk/keys")]
    pub install: Option<PathBuf>,
    /// Non-interactive (accepted for abuild-keygen compatibility; apkbuild never asks).
    #[arg(short = 'n', long)]
    pub non_interactive: bool,
    /// Key size in bits.
    #[arg(short = 'b', long, default_value_t = apk::keys::DEFAULT_KEY_BITS)]
    pub bits: usize,
    /// Where to write the key pair [default: the abuild user directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// `Name <email>` to take the e-mail from [default: $PACKAGER, git's user.email, $USER].
    #[arg(long)]
    pub packager: Option<String>,
}

/// Runs `apkbuild keygen`.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<ExitCode> {
    let email = key_email(args.packager.as_deref().or(env.packager.as_deref()), env);
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => env
            .abuild_userdir()
            .context("cannot find a home directory for keys; pass --dir DIR")?,
    };
    tracing::info!("generating a {}-bit RSA key for {email}…", args.bits);
    let (key, _base) = apk::keys::generate(&email, args.bits, super::now())?;
    let (private, public) = apk::keys::write_key_pair(&dir, &key)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "private key: {}", private.display())?;
    writeln!(out, "public key:  {}", public.display())?;
    if let Some(keys_dir) = &args.install {
        fs_err::create_dir_all(keys_dir)?;
        let dest = keys_dir.join(public.file_name().context("public key has a file name")?);
        fs_err::copy(&public, &dest).with_context(|| {
            format!(
                "failed to install the public key into `{}` (run as root?)",
                keys_dir.display()
            )
        })?;
        writeln!(out, "installed:   {}", dest.display())?;
    }
    if args.append {
        let conf = dir.join("abuild.conf");
        let mut text = fs_err::read_to_string(&conf).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("PACKAGER_PRIVKEY=\"{}\"\n", private.display()));
        apk::atomic::write_atomic(&conf, text.as_bytes())?;
        writeln!(out, "recorded in: {}", conf.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// abuild-keygen's choice: the address in `$PACKAGER`, else `git config user.email`, else
/// `$USER`.
fn key_email(packager: Option<&str>, env: &Env) -> String {
    if let Some(email) = packager.and_then(apk::keys::packager_email) {
        return email.to_string();
    }
    let git = std::process::Command::new("git")
        .args(["config", "--get", "user.email"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    git.or_else(|| env.user.clone())
        .unwrap_or_else(|| "apkbuild".to_string())
}
