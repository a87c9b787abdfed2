//! Every environment variable `apkbuild` reads, in one place (read once at start-up and
//! passed down; library code never calls `std::env::var`).

use std::path::PathBuf;

/// The environment as `apkbuild` sees it.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `SOURCE_DATE_EPOCH`: time stamp of everything written (reproducible builds).
    pub source_date_epoch: Option<u64>,
    /// `PACKAGER`: `Name <email>`, used for key names and `.PKGINFO packager`.
    pub packager: Option<String>,
    /// `PACKAGER_PRIVKEY`: the signing key (as in abuild.conf).
    pub packager_privkey: Option<PathBuf>,
    /// `ABUILD_USERDIR`: where abuild keeps keys and abuild.conf.
    pub abuild_userdir: Option<PathBuf>,
    /// `XDG_CONFIG_HOME`, for the default `ABUILD_USERDIR`.
    pub xdg_config_home: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `USER`: last resort for the key e-mail, as abuild-keygen does.
    pub user: Option<String>,
    /// `REPODEST`: where built packages go (abuild's default `~/packages`).
    pub repodest: Option<PathBuf>,
    /// `XDG_CACHE_HOME`, for the default cache directory.
    pub xdg_cache_home: Option<PathBuf>,
    /// `APKBUILD_CACHE`: the cache location (`s3://bucket/prefix` or a directory).
    pub cache: Option<String>,
    /// `APKBUILD_CACHE_KEY`: Ed25519 private key signing cache entries.
    pub cache_key: Option<PathBuf>,
    /// `APKBUILD_CACHE_PUBKEY`: Ed25519 public key cache entries must verify against.
    pub cache_pubkey: Option<PathBuf>,
    /// `AWS_*`: S3 credentials, region and endpoint for the S3 cache (name, value).
    pub aws: Vec<(String, String)>,
    /// `SCCACHE_*` and `RUSTC_WRAPPER`: exported into build phases when set.
    pub sccache: Vec<(String, String)>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            source_date_epoch: var("SOURCE_DATE_EPOCH").and_then(|v| v.trim().parse().ok()),
            packager: var("PACKAGER"),
            packager_privkey: var("PACKAGER_PRIVKEY").map(PathBuf::from),
            abuild_userdir: var("ABUILD_USERDIR").map(PathBuf::from),
            xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            user: var("USER"),
            repodest: var("REPODEST").map(PathBuf::from),
            xdg_cache_home: var("XDG_CACHE_HOME").map(PathBuf::from),
            cache: var("APKBUILD_CACHE"),
            cache_key: var("APKBUILD_CACHE_KEY").map(PathBuf::from),
            cache_pubkey: var("APKBUILD_CACHE_PUBKEY").map(PathBuf::from),
            aws: std::env::vars()
                .filter(|(k, v)| k.starts_with("AWS_") && !v.is_empty())
                .collect(),
            sccache: std::env::vars()
                .filter(|(k, v)| {
                    (k.starts_with("SCCACHE_") || k == "RUSTC_WRAPPER" || k == "CC_WRAPPER")
                        && !v.is_empty()
                })
                .collect(),
        }
    }

    /// abuild's user directory: `$ABUILD_USERDIR`, else `~/.abuild` if it exists, else
    /// `${XDG_CONFIG_HOME:-~/.config}/abuild`.
    pub fn abuild_userdir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.abuild_userdir {
            return Some(dir.clone());
        }
        let home = self.home.as_ref()?;
        let legacy = home.join(".abuild");
        if legacy.is_dir() {
            return Some(legacy);
        }
        Some(
            self.xdg_config_home
                .clone()
                .unwrap_or_else(|| home.join(".config"))
                .join("abuild"),
        )
    }

    /// The user's cache directory for apkbuild: `${XDG_CACHE_HOME:-~/.cache}/apkbuild`.
    pub fn cache_dir(&self) -> PathBuf {
        self.xdg_cache_home
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("apkbuild")
    }

    /// `SOURCE_DATE_EPOCH` or `fallback`.
    pub fn source_date_or(&self, fallback: u64) -> u64 {
        self.source_date_epoch.unwrap_or(fallback)
    }
}

/// `NO_COLOR` (any non-empty value) turns colour off; without it, log lines are coloured
/// only when stderr is a terminal, so job logs and files get plain text.
pub fn use_colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
