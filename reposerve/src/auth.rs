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
            // `aud` (and any claim) may be an array: one matching element is enough.
            let values: Vec<String> = match value {
                Value::Array(items) => items.iter().map(text).collect(),
                v => vec![text(v)],
            };
            if !values.iter().any(|v| rule_matches(rule, v)) {
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

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rule_matches(rule: &ClaimRule, value: &str) -> bool {
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
    use super::*;
    use crate::config::Scalar;

    #[test]
    fn glob_does_not_cross_slashes() {
        let r = ClaimRule::Glob {
            glob: "alpine/*".into(),
        };
        assert!(rule_matches(&r, "alpine/main"));
        assert!(!rule_matches(&r, "alpine/main/sub"));
        assert!(!rule_matches(&r, "alpinex/main"));
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
    }
}
