//! `reposerve.yaml`. The keys `dir`, `tls`, `jwt` and `webhooks` are those of the server
//! users run today, so an existing file keeps working; everything else is ours and
//! optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Root of the served tree: `<dir>/<version>/<repo>/<arch>/`.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// HTTPS listener, redirect and HSTS.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Who may upload.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// `POST /webhooks/<name>` runs `command` through `/bin/sh -c`.
    #[serde(default)]
    pub webhooks: BTreeMap<String, String>,
    /// The repository key that signs every index.
    #[serde(default)]
    pub signing: Option<SigningConfig>,
    /// Directory of packager public keys (`*.rsa.pub`); uploads signed by any other key are
    /// refused.
    #[serde(default)]
    pub trusted_keys: Option<PathBuf>,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Uploading a different build of an indexed name-version replaces it instead of
    /// answering 409. (The very same package again is always accepted, as a no-op.)
    #[serde(default)]
    pub allow_replace: bool,
    /// Where packages and indexes live.
    #[serde(default)]
    pub storage: Storage,
}

fn default_dir() -> PathBuf {
    PathBuf::from("/var/lib/reposerve")
}

/// `tls:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub crt: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// Plain-HTTP listener answering with a redirect to HTTPS.
    #[serde(default)]
    pub redirect: Option<Redirect>,
    /// `Strict-Transport-Security` on HTTPS answers.
    #[serde(default)]
    pub hsts: Option<Hsts>,
}

/// `tls.redirect:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Port of the redirecting listener.
    #[serde(default = "default_redirect_port")]
    pub port: u16,
    /// Which address families listen.
    #[serde(default)]
    pub protocols: Protocols,
}

fn default_redirect_port() -> u16 {
    80
}

/// `tls.redirect.protocols`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocols {
    /// IPv4 and IPv6.
    #[default]
    Both,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
    /// No redirect listener.
    None,
}

/// `tls.hsts:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    /// `max-age` in seconds.
    #[serde(default = "default_hsts_duration")]
    pub duration: u64,
    /// `includeSubDomains`.
    #[serde(default)]
    pub include_subdomains: bool,
    /// `preload`.
    #[serde(default)]
    pub preload: bool,
}

fn default_hsts_duration() -> u64 {
    31_536_000
}

impl Hsts {
    /// The header value.
    pub fn header_value(&self) -> String {
        let mut v = format!("max-age={}", self.duration);
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v
    }
}

/// `jwt:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// JWKS URL (GitLab: `https://gitlab.example.com/oauth/discovery/keys`).
    pub jwks: String,
    /// Claims every token must carry, each matching its rule.
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimRule>,
    /// Clock skew allowed on `exp`/`nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway: u64,
    /// Least time between two JWKS fetches caused by unknown `kid`s, in seconds.
    #[serde(default = "default_refetch")]
    pub refetch_interval: u64,
}

fn default_leeway() -> u64 {
    30
}

fn default_refetch() -> u64 {
    30
}

/// How one configured claim is matched: a plain value is exact, a list allows any of its
/// values, `{glob: "alpine/*"}` a shell-style pattern (`*` within one path segment, `**`
/// across GitLab sub-groups). The token's claim must be a single value, except `aud`,
/// which may list several audiences; a value with a control character never matches.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ClaimRule {
    /// Exact value (strings, booleans and numbers compared as text).
    Exact(Scalar),
    /// Any of these values.
    AnyOf(Vec<Scalar>),
    /// A glob pattern.
    Glob {
        /// The pattern (`*`, `?`, `[…]`).
        glob: String,
    },
}

/// A YAML scalar; GitLab's claims mix strings (`"true"`) and booleans.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Text.
    Str(String),
}

impl Scalar {
    /// The value as text.
    pub fn as_text(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Str(s) => s.clone(),
        }
    }
}

/// `signing:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// RSA private key (PEM); its file name plus `.pub` is the name clients trust.
    pub key: PathBuf,
    /// Also add a `.SIGN.RSA256.` signature (apk-tools ≥ 2.14 prefers it).
    #[serde(default)]
    pub rsa256: bool,
}

/// `limits:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_request_bytes: u64,
    /// Largest single uploaded file, in bytes.
    pub max_file_bytes: u64,
    /// Largest uncompressed data inside one package, in bytes (gzip bombs stop here).
    pub max_unpacked_bytes: u64,
    /// Most files in one upload request.
    pub max_files: usize,
    /// Seconds a request may take.
    pub request_timeout: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 1 << 30,
            max_file_bytes: 512 << 20,
            max_unpacked_bytes: 4 << 30,
            max_files: 100,
            request_timeout: 600,
        }
    }
}

/// `storage:` — `local` (files under `dir`, the default) or `{s3: {...}}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Files under `dir`.
    #[default]
    Local,
    /// An S3 bucket (`dir` then only holds the staging directory). Index updates are
    /// conditional writes, so several replicas may share the bucket.
    S3(S3Config),
}

/// `storage.s3:`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (`alpine/` → `alpine/edge/main/x86_64/…`).
    #[serde(default)]
    pub prefix: String,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`); AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Allow a plain-HTTP endpoint.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("failed to read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// YAML or schema error.
    #[error("`{path}`: {message}; see the README's reposerve section for the keys")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is wrong.
    #[error("`{path}`: `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            Config {
                dir: default_dir(),
                ..Config::default()
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        };
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        if let Some(jwt) = &cfg.jwt {
            if !(jwt.jwks.starts_with("http://") || jwt.jwks.starts_with("https://")) {
                return Err(invalid(
                    "jwt.jwks",
                    format!("`{}` is not an http(s) URL", jwt.jwks),
                ));
            }
            for (name, rule) in &jwt.claims {
                if let ClaimRule::Glob { glob } = rule {
                    glob::Pattern::new(glob).map_err(|e| {
                        invalid(&format!("jwt.claims.{name}"), format!("bad glob: {e}"))
                    })?;
                }
            }
        }
        for name in cfg.webhooks.keys() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(invalid(
                    "webhooks",
                    format!("hook name `{name}` must be letters, digits, `-`, `_` or `.`"),
                ));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_keys_parse() {
        let text = r#"
dir: /srv/packages
tls:
  crt: /etc/ssl/a.crt
  key: /etc/ssl/a.key
  redirect: {port: 8081, protocols: ipv4}
  hsts: {duration: 600, include_subdomains: true, preload: false}
jwt:
  jwks: https://gitlab.example.com/oauth/discovery/keys
  claims:
    iss: https://gitlab.example.com
    aud: [https://repo.example.com, other]
    namespace_path: {glob: "alpine/*"}
    ref_protected: true
webhooks:
  sync: /usr/local/bin/sync-mirror
"#;
        let cfg = Config::parse(text, Path::new("t.yaml")).unwrap();
        assert_eq!(cfg.dir, Path::new("/srv/packages"));
        let tls = cfg.tls.unwrap();
        assert_eq!(tls.redirect.unwrap().protocols, Protocols::Ipv4);
        assert_eq!(
            tls.hsts.unwrap().header_value(),
            "max-age=600; includeSubDomains"
        );
        let jwt = cfg.jwt.unwrap();
        assert!(matches!(jwt.claims["aud"], ClaimRule::AnyOf(_)));
        assert!(matches!(
            jwt.claims["namespace_path"],
            ClaimRule::Glob { .. }
        ));
        assert!(matches!(
            jwt.claims["ref_protected"],
            ClaimRule::Exact(Scalar::Bool(true))
        ));
        assert_eq!(cfg.webhooks["sync"], "/usr/local/bin/sync-mirror");
        assert_eq!(cfg.storage, Storage::Local);
    }

    #[test]
    fn s3_storage_parses() {
        let text = "storage:\n  s3:\n    bucket: pkgs\n    endpoint: http://127.0.0.1:9000\n    access_key_id: a\n    secret_access_key: b\n    allow_http: true\n";
        let cfg = Config::parse(text, Path::new("t.yaml")).unwrap();
        let Storage::S3(s3) = cfg.storage else {
            panic!("not s3")
        };
        assert_eq!(s3.bucket, "pkgs");
        assert_eq!(s3.region, "us-east-1");
        let cfg = Config::parse("storage: local\n", Path::new("t.yaml")).unwrap();
        assert_eq!(cfg.storage, Storage::Local);
    }

    #[test]
    fn unknown_key_is_an_error_with_position() {
        let err = Config::parse("dri: /x\n", Path::new("t.yaml")).unwrap_err();
        assert!(err.to_string().contains("dri"), "{err}");
    }

    #[test]
    fn bad_jwks_url_refused() {
        let err =
            Config::parse("jwt: {jwks: file:///etc/passwd}\n", Path::new("t.yaml")).unwrap_err();
        assert!(err.to_string().contains("jwt.jwks"), "{err}");
    }
}
