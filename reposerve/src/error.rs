//! The one error type handlers return. Clients get a stable JSON `{error, hint}` (the
//! `error` strings are a public contract, used by `ci/apkdeploy` and `/metrics`); the
//! details, which may name server paths or key ids, go only to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request.
#[derive(Clone, Debug)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable reason (`unauthorized`, `bad_package`, …).
    pub error: &'static str,
    /// What the client can do about it (safe to show).
    pub hint: String,
    /// What happened, for the log only.
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    hint: &'a str,
}

impl AppError {
    /// A new error.
    pub fn new(
        status: StatusCode,
        error: &'static str,
        hint: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            hint: hint.into(),
            detail: detail.into(),
        }
    }

    /// 401 with a reason the client may see.
    pub fn unauthorized(hint: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", hint, detail)
    }

    /// 400.
    pub fn bad_request(error: &'static str, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        Self::new(StatusCode::BAD_REQUEST, error, hint.clone(), hint)
    }

    /// 500: the client learns only that it is our fault.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; nothing was changed, retry later or ask its operator",
            format!("{detail:#}"),
        )
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.detail
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error = self.error, detail = %self.detail, "request failed");
        } else {
            tracing::warn!(status = self.status.as_u16(), error = self.error, detail = %self.detail, "request refused");
        }
        let mut resp = (
            self.status,
            Json(Body {
                error: self.error,
                hint: &self.hint,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
