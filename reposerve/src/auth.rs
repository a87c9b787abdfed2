//! Bearer-token authentication: JWTs checked against keys from a JWKS URL (GitLab
//! `id_tokens`, or anything issuing RS256/ES256/EdDSA tokens).
//!
//! The algorithm is never taken from the token: it is pinned by the key's type, so `none`,
//! HMAC with a public key as secret, and key confusion are refused before any signature
//! check. Symmetric (`oct`) keys in the JWKS are dropped. Unknown `kid`s cause a refetch,
//! at most once per `refetch_interval`, so forged kids cannot make us hammer the issuer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{ClaimRule, JwtConfig};
use crate::error::AppError;

/// A verified token's claims.
pub type Claims = serde_json::Map<String, Value>;

struct Cached {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Option<Instant>,
}

/// Checks tokens; holds the cached JWKS.
pub struct Authenticator {
    cfg: JwtConfig,
    client: reqwest::Client,
    cache: Mutex<Cached>,
}

impl Authenticator {
    /// An authenticator for `cfg`; keys are fetched on first use.
    pub fn new(cfg: JwtConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            cfg,
            client,
            cache: Mutex::new(Cached {
                keys: HashMap::new(),
                fetched: None,
            }),
        }
    }

    /// Verifies `Authorization` header value `header`; returns the claims.
    pub async fn check(&self, header: Option<&str>) -> Result<Claims, AppError> {
        let Some(header) = header else {
            return Err(AppError::unauthorized(
                "send `Authorization: Bearer <JWT>` (a GitLab id_token)",
                "no Authorization header",
            ));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                AppError::unauthorized(
                    "the Authorization header must be `Bearer <JWT>`",
                    "Authorization is not a bearer token",
                )
            })?;
        let head = jsonwebtoken::decode_header(token).map_err(|e| {
            AppError::unauthorized("the token is not a valid JWT", format!("header: {e}"))
        })?;
        let kid = head.kid.clone().ok_or_else(|| {
            AppError::unauthorized("the token names no key (`kid`)", "token without kid")
        })?;
        let (alg, key) = self.key(&kid).await?;
        if head.alg != alg {
            return Err(AppError::unauthorized(
                "the token's algorithm does not match its key",
                format!("kid {kid}: token alg {:?}, key requires {alg:?}", head.alg),
            ));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.cfg.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        // aud and iss are configured claims, matched below with the same rules as others.
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let hint = match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::ImmatureSignature => "the token is not valid yet",
                K::InvalidSignature => "the token's signature is invalid",
                K::MissingRequiredClaim(_) => "the token lacks a required claim (exp)",
                _ => "the token was refused",
            };
            AppError::unauthorized(hint, format!("kid {kid}: {e}"))
        })?;
        self.match_claims(&data.claims)?;
        Ok(data.claims)
    }

    fn match_claims(&self, claims: &Claims) -> Result<(), AppError> {
        for (name, rule) in &self.cfg.claims {
            let Some(value) = claims.get(name) else {
                return Err(AppError::unauthorized(
                    format!("the token lacks the required claim `{name}`"),
                    format!("claim {name} missing"),
                ));
            };
            if !claim_matches(name, value, rule) {
                return Err(AppError::unauthorized(
                    format!("the token's claim `{name}` is not allowed here"),
                    format!("claim {name} = {value} does not match {rule:?}"),
                ));
            }
        }
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), AppError> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        let may_fetch = cache
            .fetched
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(self.cfg.refetch_interval));
        if may_fetch {
            cache.fetched = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => cache.keys = keys,
                Err(e) => {
                    return Err(AppError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "jwks_unavailable",
                        "the server cannot fetch its token keys; retry later",
                        e,
                    ));
                }
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            AppError::unauthorized(
                "the token was signed by an unknown key",
                format!("kid {kid} not in the JWKS"),
            )
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
        let url = &self.cfg.jwks;
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("fetching JWKS {url}: {e}"))?;
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| format!("JWKS {url} is not a JWK set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                tracing::warn!("JWKS {url}: key without kid ignored");
                continue;
            };
            let Some(alg) = pinned_algorithm(&jwk.algorithm, jwk.common.key_algorithm) else {
                tracing::warn!(%kid, "JWKS {url}: key type not accepted (symmetric or unknown), ignored");
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(k) => {
                    keys.insert(kid, (alg, k));
                }
                Err(e) => tracing::warn!(%kid, "JWKS {url}: unusable key: {e}"),
            }
        }
        tracing::info!(count = keys.len(), "fetched JWKS {url}");
        Ok(keys)
    }
}

/// The one algorithm a key may verify, from its type (and its `alg` when it names a
/// stronger variant of the same family).
fn pinned_algorithm(params: &AlgorithmParameters, alg: Option<KeyAlgorithm>) -> Option<Algorithm> {
    match params {
        AlgorithmParameters::RSA(_) => Some(match alg {
            Some(KeyAlgorithm::RS384) => Algorithm::RS384,
            Some(KeyAlgorithm::RS512) => Algorithm::RS512,
            Some(KeyAlgorithm::PS256) => Algorithm::PS256,
            Some(KeyAlgorithm::PS384) => Algorithm::PS384,
            Some(KeyAlgorithm::PS512) => Algorithm::PS512,
            None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
            Some(_) => return None,
        }),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => {
            (okp.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

/// Whether claim `name` with `value` passes `rule`.
///
/// Only `aud` may be a list (RFC 7519 §4.1.3: the token is for several audiences, one of
/// which must be us). Any other claim given as a list never matches: `["evil", "alpine/x"]`
/// must not pass `alpine/*` because one element does. Objects and null never match.
fn claim_matches(name: &str, value: &Value, rule: &ClaimRule) -> bool {
    match value {
        Value::Array(items) if name == "aud" => items
            .iter()
            .any(|v| scalar_text(v).is_some_and(|t| rule_matches(rule, &t))),
        v => scalar_text(v).is_some_and(|t| rule_matches(rule, &t)),
    }
}

/// A scalar claim as text (strings as is, booleans and numbers as JSON writes them).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) | Value::Null => None,
    }
}

/// Whether a claim value passes a rule. A value with a newline or any other control
/// character never matches: such a value is forged or broken, and a `*` must not let it
/// through (nor may it reach a log line unescaped).
///
/// Globs use the `glob` crate with `/` as a literal separator: `*` and `?` stay within one
/// path segment (`alpine/*` is a project of the `alpine` group), `**` as a whole segment
/// spans sub-groups (`alpine/**` also matches `alpine/team/project`).
pub fn rule_matches(rule: &ClaimRule, value: &str) -> bool {
    if value.chars().any(char::is_control) {
        return false;
    }
    match rule {
        ClaimRule::Exact(s) => s.as_text() == value,
        ClaimRule::AnyOf(list) => list.iter().any(|s| s.as_text() == value),
        ClaimRule::Glob { glob } => glob::Pattern::new(glob).is_ok_and(|p| {
            p.matches_with(
                value,
                glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: false,
                },
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Scalar;

    fn glob(g: &str) -> ClaimRule {
        ClaimRule::Glob { glob: g.into() }
    }

    #[test]
    fn glob_does_not_cross_slashes() {
        let r = glob("alpine/*");
        assert!(rule_matches(&r, "alpine/main"));
        assert!(!rule_matches(&r, "alpine/main/sub"));
        assert!(!rule_matches(&r, "alpinex/main"));
    }

    #[test]
    fn double_star_spans_gitlab_subgroups() {
        let r = glob("alpine/**");
        for ok in ["alpine/main", "alpine/team/main", "alpine/a/b/c/d"] {
            assert!(rule_matches(&r, ok), "{ok}");
        }
        for bad in ["alpinex/main", "other/alpine/main", "alpine"] {
            assert!(!rule_matches(&r, bad), "{bad}");
        }
        let r = glob("alpine/**/ci");
        assert!(rule_matches(&r, "alpine/a/b/ci"));
        assert!(!rule_matches(&r, "alpine/a/b/cd"));
    }

    #[test]
    fn control_characters_never_match() {
        for rule in [glob("*"), glob("alpine/**"), glob("alpine/*")] {
            for v in [
                "alpine/x\n",
                "alpine/x\nalpine/y",
                "alpine/\tx",
                "alpine/x\u{0}",
            ] {
                assert!(!rule_matches(&rule, v), "{rule:?} {v:?}");
            }
        }
        let exact = ClaimRule::Exact(Scalar::Str("a\nb".into()));
        assert!(!rule_matches(&exact, "a\nb"));
    }

    #[test]
    fn only_aud_may_be_a_list() {
        let r = ClaimRule::Exact(Scalar::Str("reposerve".into()));
        assert!(claim_matches("aud", &json!(["other", "reposerve"]), &r));
        assert!(!claim_matches("aud", &json!(["other"]), &r));
        assert!(claim_matches("aud", &json!("reposerve"), &r));
        let g = glob("alpine/*");
        assert!(!claim_matches(
            "namespace_path",
            &json!(["evil", "alpine/x"]),
            &g
        ));
        assert!(!claim_matches("namespace_path", &json!(["alpine/x"]), &g));
        assert!(!claim_matches(
            "namespace_path",
            &json!({"a": "alpine/x"}),
            &g
        ));
        assert!(!claim_matches("namespace_path", &json!(null), &glob("*")));
    }

    #[test]
    fn scalars_compare_as_text() {
        assert!(rule_matches(&ClaimRule::Exact(Scalar::Bool(true)), "true"));
        assert!(rule_matches(
            &ClaimRule::AnyOf(vec![Scalar::Str("a".into()), Scalar::Int(3)]),
            "3"
        ));
        assert!(!rule_matches(
            &ClaimRule::Exact(Scalar::Str("a".into())),
            "ab"
        ));
        assert!(claim_matches(
            "ref_protected",
            &json!(true),
            &ClaimRule::Exact(Scalar::Str("true".into()))
        ));
    }

    proptest::proptest! {
        /// `*` is one segment: a value with a `/` after the group never matches `group/*`,
        /// and `group/**` matches every path of plain segments under the group.
        #[test]
        fn star_is_one_segment_double_star_any_depth(
            segs in proptest::collection::vec("[a-z0-9_.-]{1,8}", 1..5)
        ) {
            let value = format!("grp/{}", segs.join("/"));
            proptest::prop_assert_eq!(rule_matches(&glob("grp/*"), &value), segs.len() == 1);
            proptest::prop_assert!(rule_matches(&glob("grp/**"), &value));
            proptest::prop_assert!(!rule_matches(&glob("other/**"), &value));
        }

        /// A control character anywhere makes every rule refuse the value.
        #[test]
        fn control_chars_never_match(
            head in "[a-z/]{0,8}", c in proptest::char::range('\u{0}', '\u{1f}'), tail in "[a-z/]{0,8}"
        ) {
            let value = format!("{head}{c}{tail}");
            for rule in [glob("*"), glob("**"), glob("*/**"), glob("**/*"),
                         ClaimRule::Exact(Scalar::Str(value.clone()))] {
                proptest::prop_assert!(!rule_matches(&rule, &value), "{:?} {:?}", rule, value);
            }
        }

        /// A list claim other than `aud` never matches, whatever its elements.
        #[test]
        fn lists_only_for_aud(items in proptest::collection::vec("[a-z/]{0,8}", 0..4)) {
            let v = json!(items);
            proptest::prop_assert!(!claim_matches("project_path", &v, &glob("**")));
            proptest::prop_assert!(!claim_matches("sub", &v, &glob("*")));
            proptest::prop_assert_eq!(
                claim_matches("aud", &v, &glob("*")),
                !items.is_empty() && items.iter().any(|i| !i.contains('/'))
            );
        }
    }
}
