//! The engine behind `reposerve`: an apk repository server that serves
//! `/<version>/<repo>/<arch>/…`, takes authenticated `POST /upload`s, validates every
//! package with the `apk` crate and keeps each `APKINDEX.tar.gz` updated and signed.
//!
//! [`router`] is the unit of test; [`server`] binds listeners (plain, TLS, redirect) and
//! handles signals. Environment variables read by the binary are listed in [`env`].

pub mod auth;
pub mod commit;
pub mod config;
pub mod env;
pub mod error;
pub mod files;
pub mod lane;
pub mod metrics;
pub mod reconcile;
pub mod replica;
pub mod repo;
pub mod serve;
pub mod server;
pub mod store;
pub mod upload;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::error::AppError;

/// Serve an apk repository and accept authenticated package uploads.
#[derive(Debug, Parser)]
#[command(name = "reposerve", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        short = 'c',
        value_name = "CONFIG",
        default_value = "/etc/reposerve.yaml"
    )]
    pub config: PathBuf,
    /// Development mode: uploads without a token (never on a reachable address).
    #[arg(short = 'd')]
    pub dev: bool,
    /// Verbose logs.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Plain HTTP listen address.
    #[arg(short = 'l', value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// TLS listen addresses, comma-separated (used when `tls` is configured).
    #[arg(
        short = 'L',
        value_name = "ADDRS",
        default_value = "0.0.0.0:8443",
        value_delimiter = ','
    )]
    pub listen_tls: Vec<SocketAddr>,
    /// TLS only: no plain HTTP listener (besides the configured redirect).
    #[arg(short = 'S')]
    pub tls_only: bool,
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The configuration file as loaded.
    pub config: Arc<Config>,
    /// The package tree.
    pub repo: Arc<repo::Repo>,
    /// Token checking; `None` when no `jwt` is configured.
    pub auth: Option<Arc<auth::Authenticator>>,
    /// Development mode: uploads need no token.
    pub dev: bool,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// Builds the state from a configuration: loads the signing key and trusted keys and,
    /// with `storage: s3`, probes how the store treats conditional writes (logged).
    pub async fn from_config(config: Config, dev: bool) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let keyring = match &config.trusted_keys {
            Some(dir) => Some(repo::load_keyring(dir)?),
            None => None,
        };
        let signer = match &config.signing {
            Some(s) => Some(apk::keys::PrivateKey::load(&s.key).with_context(|| {
                format!("failed to load the signing key `{}`", s.key.display())
            })?),
            None => None,
        };
        if keyring.is_none() || signer.is_none() {
            tracing::warn!(
                "uploads are disabled: set both `trusted_keys` and `signing.key` in the configuration"
            );
        }
        let metrics = Arc::new(metrics::Metrics::default());
        let mut repo = repo::Repo::new(
            config.dir.clone(),
            keyring,
            signer,
            config.signing.as_ref().is_some_and(|s| s.rsa256),
            config.allow_replace,
            config.limits.max_unpacked_bytes,
        )
        .with_metrics(Arc::clone(&metrics));
        if let Some(dir) = &config.trusted_keys {
            repo = repo.with_keys_dir(dir.clone());
        }
        if let config::Storage::S3(s3) = &config.storage {
            repo = repo.with_s3(connect_s3(s3).await?);
        }
        repo.prepare()
            .with_context(|| format!("failed to prepare `{}`", config.dir.display()))?;
        let auth = config
            .jwt
            .clone()
            .map(|j| Arc::new(auth::Authenticator::new(j)));
        if dev {
            tracing::warn!(
                "DEVELOPMENT MODE: uploads and webhooks are accepted WITHOUT authentication; never expose this server"
            );
        } else if auth.is_none() {
            tracing::warn!(
                "no `jwt` configured: uploads and webhooks are refused (use -d for development)"
            );
        }
        Ok(Self {
            config: Arc::new(config),
            repo: Arc::new(repo),
            auth,
            dev,
            metrics,
        })
    }
}

/// Connects to the bucket and probes its conditional writes (see [`store::WriteMode`]).
async fn connect_s3(s3: &config::S3Config) -> anyhow::Result<replica::Replica> {
    use anyhow::Context as _;
    let store = store::S3Store::new(s3)
        .with_context(|| format!("failed to set up S3 bucket `{}`", s3.bucket))?;
    let mode = store.probe().await.with_context(|| {
        format!(
            "cannot use S3 bucket `{}` at {}: check the endpoint, the credentials and that the bucket exists",
            s3.bucket,
            s3.endpoint.as_deref().unwrap_or("AWS")
        )
    })?;
    let endpoint = s3.endpoint.as_deref().unwrap_or("AWS");
    match mode {
        store::WriteMode::Atomic => {
            tracing::info!(bucket = %s3.bucket, %endpoint, mode = "atomic", "{}", mode.describe());
        }
        _ => tracing::warn!(bucket = %s3.bucket, %endpoint, mode = ?mode, "{}", mode.describe()),
    }
    Ok(replica::Replica::new(store, mode))
}

/// The application.
///
/// Layers, outermost first: request id (so every log line of the request carries it),
/// trace (one span per request), request-id propagation to the response, then per route:
/// timeout, body limit (uploads only) and authentication (uploads and webhooks). GETs have
/// no timeout: a large package on a slow link may take longer than any upload should.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    let timeout = Duration::from_secs(limits.request_timeout);
    let authed = Router::new()
        .route(
            "/upload",
            post(upload::upload).layer(DefaultBodyLimit::max(
                usize::try_from(limits.max_request_bytes).unwrap_or(usize::MAX),
            )),
        )
        .route("/webhooks/{name}", post(webhooks::run))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .route_layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .merge(authed)
        .fallback(serve::get)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id = %id)
                })
                // One access-log line per request, inside the span (so with its id).
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// Request ids unique to this process run: a random prefix drawn once and a counter. (A
/// UUID per request asks the kernel for randomness on every GET.)
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let prefix = MakeRequestUuid
            .make_request_id(&Request::new(axum::body::Body::empty()))
            .and_then(|id| id.header_value().to_str().ok().map(|s| s[..8].to_string()))
            .unwrap_or_default();
        Self {
            prefix: prefix.into(),
            next: Arc::default(),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Adds `Strict-Transport-Security` (HTTPS listeners only).
pub fn with_hsts(app: Router, value: &str) -> Router {
    let value =
        HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("max-age=31536000"));
    app.layer(middleware::map_response(move |mut resp: Response| {
        let value = value.clone();
        async move {
            resp.headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, value);
            resp
        }
    }))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn require_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.dev {
        tracing::warn!("development mode: request accepted without authentication");
        return next.run(req).await;
    }
    let Some(auth) = &state.auth else {
        state.metrics.reject("unauthorized");
        return AppError::unauthorized(
            "this server has no token issuer configured; uploads are disabled",
            "no jwt section in the configuration",
        )
        .into_response();
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.check(header).await {
        Ok(claims) => {
            let who = ["project_path", "sub"]
                .iter()
                .find_map(|k| claims.get(*k).and_then(|v| v.as_str()))
                .unwrap_or("?")
                .to_string();
            tracing::info!(%who, "authenticated");
            next.run(req).await
        }
        Err(e) => {
            state.metrics.reject(e.error);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;

    async fn app(dir: &std::path::Path) -> Router {
        app_mode(dir, false).await
    }

    async fn app_mode(dir: &std::path::Path, dev: bool) -> Router {
        let cfg = Config::parse(&format!("dir: {}\n", dir.display()), "t.yaml".as_ref()).unwrap();
        router(AppState::from_config(cfg, dev).await.unwrap())
    }

    #[tokio::test]
    async fn not_multipart_is_json_400() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, b) = call(
            app_mode(dir.path(), true).await,
            Request::post("/upload")
                .header("content-type", "application/octet-stream")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"], "bad_multipart");
    }

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = app.oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn health_request_id_and_hidden_staging() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path()).await;
        let (s, h, b) = call(
            app.clone(),
            Request::get("/healthz").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!((s, b.as_str()), (StatusCode::OK, "ok\n"));
        assert!(h.contains_key("x-request-id"));
        let (s, _, b) = call(app, Request::get("/.tmp/").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"], "not_found");
    }

    #[tokio::test]
    async fn upload_without_issuer_is_401_json() {
        let dir = tempfile::tempdir().unwrap();
        let (s, h, b) = call(
            app(dir.path()).await,
            Request::post("/upload").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(h["www-authenticate"], "Bearer");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"], "unauthorized");
        assert!(v["hint"].is_string());
    }
}
