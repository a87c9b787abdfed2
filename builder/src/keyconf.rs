//! Finding the packager key the way abuild does: `--key`, else `PACKAGER_PRIVKEY`, else the
//! `PACKAGER_PRIVKEY=` line of `$ABUILD_USERDIR/abuild.conf`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use apk::keys::PrivateKey;

use crate::env::Env;

/// The private key path to sign with.
pub fn privkey_path(explicit: Option<&PathBuf>, env: &Env) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    if let Some(p) = &env.packager_privkey {
        return Ok(p.clone());
    }
    if let Some(dir) = env.abuild_userdir() {
        let conf = dir.join("abuild.conf");
        if let Ok(text) = fs_err::read_to_string(&conf)
            && let Some(p) = conf_privkey(&text)
        {
            return Ok(PathBuf::from(p));
        }
    }
    bail!(
        "no signing key: pass --key FILE, set PACKAGER_PRIVKEY, or run `apkbuild keygen -a` \
         to create one and record it in abuild.conf"
    )
}

/// Loads the packager key.
pub fn load_privkey(explicit: Option<&PathBuf>, env: &Env) -> anyhow::Result<PrivateKey> {
    let path = privkey_path(explicit, env)?;
    PrivateKey::load(&path)
        .with_context(|| format!("failed to load signing key `{}`", path.display()))
}

/// The value of the last `PACKAGER_PRIVKEY=` assignment in abuild.conf text.
fn conf_privkey(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("PACKAGER_PRIVKEY="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_assignment() {
        let text = "# x\nPACKAGER_PRIVKEY=\"/a.rsa\"\nPACKAGER_PRIVKEY='/b.rsa'\n";
        assert_eq!(conf_privkey(text).as_deref(), Some("/b.rsa"));
        assert_eq!(conf_privkey("JOBS=2\n"), None);
    }
}
