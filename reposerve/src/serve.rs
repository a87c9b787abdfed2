//! `GET`/`HEAD` of the tree: files through [`crate::files`] (one write for headers and
//! small bodies, ranges, validators), directories as a listing (HTML when the client
//! accepts it, plain text for curl and scripts).
//!
//! Paths are percent-decoded and checked component by component before anything touches
//! the disk: no `..`, no hidden names (the staging directory is `.tmp`), no control
//! characters. The lookup itself resolves inside the root (`RESOLVE_IN_ROOT`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::error::AppError;

/// Serves files and listings.
pub async fn get(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let raw = req.uri().path().to_string();
    let decoded = percent_decode(&raw).ok_or_else(not_found)?;
    let mut rel = Vec::new();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part.starts_with('.') || part.chars().any(|c| c.is_control() || c == '\\') {
            return Err(not_found());
        }
        rel.push(part);
    }
    if let Some(s3) = state.repo.s3() {
        let (method, headers) = (req.method().clone(), req.headers().clone());
        return serve_s3(s3, &rel, &raw, &decoded, &method, &headers).await;
    }
    let method = req.method().clone();
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return Err(AppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET and HEAD are served here",
            format!("{method} {raw}"),
        ));
    }
    let rel_path: std::path::PathBuf = rel.iter().collect();
    let repo = std::sync::Arc::clone(&state.repo);
    let read_small = method == axum::http::Method::GET;
    if let Some(opened) = repo.files.get(&rel_path) {
        let name = rel.last().copied().unwrap_or_default();
        return crate::files::respond(opened, name, &method, req.headers()).await;
    }
    // Inline, as nginx does: path lookups, fstat and reading a small file from the page
    // cache take microseconds, less than a trip to the blocking pool and back.
    let found = repo
        .root_dir()
        .ok()
        .and_then(|root| crate::files::open(root, &rel_path, read_small))
        .ok_or_else(not_found)?;
    let found = match found {
        crate::files::Found::File(opened) if read_small => {
            let opened = crate::files::fill(opened).await?;
            repo.files.put(&rel_path, &opened);
            crate::files::Found::File(opened)
        }
        other => other,
    };
    match found {
        crate::files::Found::Dir if !raw.ends_with('/') => {
            Ok(Redirect::permanent(&format!("{raw}/")).into_response())
        }
        crate::files::Found::Dir => {
            listing(&state, &rel_path, &decoded, wants_html(req.headers())).await
        }
        crate::files::Found::File(opened) => {
            let name = rel.last().copied().unwrap_or_default();
            crate::files::respond(opened, name, &method, req.headers()).await
        }
    }
}

async fn listing(
    state: &AppState,
    rel: &std::path::Path,
    shown: &str,
    html: bool,
) -> Result<Response, AppError> {
    let dir = state.repo.root().join(rel);
    let mut names = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in fs_err::read_dir(&dir)? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                names.push(format!("{name}/"));
            } else if ft.is_file() {
                names.push(name);
            }
        }
        Ok(names)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    names.sort();
    Ok(render_listing(&names, shown, html))
}

fn render_listing(names: &[String], shown: &str, html: bool) -> Response {
    if !html {
        let mut body = names.join("\n");
        body.push('\n');
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    let title = escape(shown);
    let mut body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    if shown != "/" {
        body.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for n in names {
        let n = escape(n);
        body.push_str(&format!("<li><a href=\"{n}\">{n}</a></li>\n"));
    }
    body.push_str("</ul></body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Serving from S3: listings from `list_with_delimiter`, files streamed with ETag,
/// Last-Modified, single ranges and `If-None-Match`.
async fn serve_s3(
    s3: &crate::store::S3Store,
    rel: &[&str],
    raw: &str,
    shown: &str,
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
) -> Result<Response, AppError> {
    let rel_str = rel.join("/");
    if rel.is_empty() || raw.ends_with('/') {
        let names = s3.list(&rel_str).await.map_err(AppError::internal)?;
        if names.is_empty() && !rel.is_empty() {
            return Err(not_found());
        }
        return Ok(render_listing(&names, shown, wants_html(headers)));
    }
    let range = byte_range(headers);
    let head = method == axum::http::Method::HEAD;
    let result = match s3.get(&rel_str, range.clone(), head).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => {
            let below = s3.list(&rel_str).await.unwrap_or_default();
            if below.is_empty() {
                return Err(not_found());
            }
            return Ok(Redirect::permanent(&format!("{raw}/")).into_response());
        }
        Err(e) => return Err(AppError::internal(e)),
    };
    s3_file_response(result, range.is_some(), head, headers)
}

/// The single range of a `Range: bytes=A-[B]` header, if any.
fn byte_range(headers: &axum::http::HeaderMap) -> Option<object_store::GetRange> {
    use object_store::GetRange;
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let a: u64 = a.parse().ok()?;
            if b.is_empty() {
                Some(GetRange::Offset(a))
            } else {
                Some(GetRange::Bounded(a..b.parse::<u64>().ok()?.checked_add(1)?))
            }
        })
}

/// The response for an object: 304 when `If-None-Match` names its ETag, else its bytes
/// (206 with `Content-Range` when a range was asked for; no body for HEAD).
fn s3_file_response(
    result: object_store::GetResult,
    ranged: bool,
    head: bool,
    headers: &axum::http::HeaderMap,
) -> Result<Response, AppError> {
    let meta = result.meta.clone();
    let etag = meta.e_tag.clone().unwrap_or_default();
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            header::LAST_MODIFIED,
            meta.last_modified
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        );
    if !etag.is_empty() {
        builder = builder.header(header::ETAG, &etag);
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        if matches {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .map_err(AppError::internal);
        }
    }
    let span = result.range.clone();
    let status = if ranged {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                span.start,
                span.end.saturating_sub(1),
                meta.size
            ),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    builder = builder.header(header::CONTENT_LENGTH, span.end - span.start);
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(result.into_stream())
    };
    builder
        .status(status)
        .body(body)
        .map_err(AppError::internal)
}

fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such file; paths are /<version>/<repo>/<arch>/<file>",
        "not found",
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decodes `%XX`; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn decode_never_panics_and_inverts_encoding(s in "\\PC*", raw in "[%0-9a-fA-F/.]{0,12}") {
            let _ = percent_decode(&raw);
            let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            proptest::prop_assert_eq!(percent_decode(&encoded), Some(s));
        }
    }

    #[test]
    fn decode() {
        assert_eq!(percent_decode("/a%2F..%2fb").as_deref(), Some("/a/../b"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%2"), None);
    }
}
