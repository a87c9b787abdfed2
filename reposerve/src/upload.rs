//! `POST /upload`: multipart with optional `version` (default `edge`), `repo` (default
//! `main`), `arch` (default: each package's own) and one or more `file` parts.
//!
//! Each file part is streamed to a temporary file under the size limit, then every file is
//! validated before anything moves: one bad file refuses the whole request.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use crate::AppState;
use crate::error::AppError;
use crate::repo::{Accepted, Staged, check_segment};

/// The JSON answer of a successful upload.
#[derive(Serialize)]
pub struct UploadResponse {
    /// What was added to the indexes.
    pub accepted: Vec<Accepted>,
}

struct Part {
    file: tempfile::TempPath,
    name: String,
}

/// The handler.
pub async fn upload(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<UploadResponse>, AppError> {
    let result = match multipart {
        Ok(m) => handle(&state, m).await,
        Err(e) => Err(AppError::new(
            e.status(),
            "bad_multipart",
            "send multipart/form-data (`curl -F file=@pkg.apk`)",
            e.body_text(),
        )),
    };
    match &result {
        Ok(r) => state.metrics.upload(r.accepted.len()),
        Err(e) => state.metrics.reject(e.error),
    }
    result.map(Json)
}

/// What the form held: the target's segments as sent and each file part, streamed to disk.
#[derive(Default)]
struct Form {
    version: Option<String>,
    repo: Option<String>,
    arch: Option<String>,
    parts: Vec<Part>,
}

async fn handle(state: &AppState, multipart: Multipart) -> Result<UploadResponse, AppError> {
    state.repo.upload_ready()?;
    let form = read_form(state, multipart).await?;
    if form.parts.is_empty() {
        return Err(AppError::bad_request(
            "no_file",
            "no `file` part; upload with `curl -F file=@pkg.apk`",
        ));
    }
    let version = form.version.unwrap_or_else(|| "edge".into());
    let repo_name = form.repo.unwrap_or_else(|| "main".into());
    let staged = validate_all(state, form.parts, &version, &repo_name, form.arch).await?;
    let accepted = state.repo.commit(staged).await?;
    for a in &accepted {
        tracing::info!(name = %a.name, version = %a.version, path = %a.path, replaced = a.replaced, unchanged = a.unchanged, "package accepted");
    }
    Ok(UploadResponse { accepted })
}

/// Reads every field; an unknown field, an over-long or non-UTF-8 segment, too many files
/// or an over-sized file refuses the request before anything is validated.
async fn read_form(state: &AppState, mut multipart: Multipart) -> Result<Form, AppError> {
    let limits = &state.config.limits;
    let mut form = Form::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let slot = match name.as_str() {
            "version" => &mut form.version,
            "repo" => &mut form.repo,
            "arch" => &mut form.arch,
            "file" => {
                if form.parts.len() >= limits.max_files {
                    return Err(AppError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_files",
                        format!("at most {} files per request", limits.max_files),
                        "too many file parts",
                    ));
                }
                form.parts.push(stream_file(state, &mut field).await?);
                continue;
            }
            other => {
                return Err(AppError::bad_request(
                    "bad_field",
                    format!("unknown form field `{other}`; expected version, repo, arch or file"),
                ));
            }
        };
        *slot = Some(read_segment(&name, &mut field).await?);
    }
    Ok(form)
}

/// A `version`, `repo` or `arch` field: short, UTF-8 and one safe path segment.
async fn read_segment(
    name: &str,
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, AppError> {
    let mut value = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        value.extend_from_slice(&chunk);
        if value.len() > 256 {
            return Err(AppError::bad_request(
                "bad_field",
                format!("`{name}` is too long"),
            ));
        }
    }
    let value = String::from_utf8(value)
        .map_err(|_| AppError::bad_request("bad_field", format!("`{name}` is not UTF-8")))?;
    check_segment(name, &value)?;
    Ok(value)
}

/// A `file` part streamed to a temporary file in the repository's tmp directory, under the
/// size limit, and synced: durable before it can be renamed into the tree.
async fn stream_file(
    state: &AppState,
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<Part, AppError> {
    let max = state.config.limits.max_file_bytes;
    let file_name = field.file_name().unwrap_or("upload.apk").to_string();
    check_segment("filename", &file_name)?;
    let tmp = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(state.repo.tmp_dir())
        .map_err(AppError::internal)?;
    let (std_file, path) = tmp.into_parts();
    let mut out = tokio::fs::File::from_std(std_file);
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        size += chunk.len() as u64;
        if size > max {
            return Err(AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("`{file_name}` is over the limit of {max} bytes"),
                format!("file part over {max} bytes"),
            ));
        }
        out.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    out.sync_all().await.map_err(AppError::internal)?;
    Ok(Part {
        file: path,
        name: file_name,
    })
}

/// Validates every part in parallel; one refusal refuses the whole request.
async fn validate_all(
    state: &AppState,
    parts: Vec<Part>,
    version: &str,
    repo_name: &str,
    arch: Option<String>,
) -> Result<Vec<Staged>, AppError> {
    let mut tasks = Vec::new();
    for part in parts {
        let repo = Arc::clone(&state.repo);
        let (version, repo_name, arch) = (version.to_string(), repo_name.to_string(), arch.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let r = repo.validate(&part.file, &version, &repo_name, arch.as_deref());
            (part, r)
        }));
    }
    // Every validation ends before the answer: a refusal must not leave another part's
    // staged file behind while it is still being checked (found by fuzzing).
    let mut checked = Vec::new();
    for task in tasks {
        checked.push(task.await.map_err(AppError::internal)?);
    }
    checked
        .into_iter()
        .map(|(part, r)| match r {
            Ok((entry, target)) => Ok(Staged {
                file: part.file,
                entry,
                target,
            }),
            Err(rej) => {
                let status = if rej.reason == "too_large" {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                Err(AppError::new(
                    status,
                    rej.reason,
                    format!("`{}`: {}; nothing was changed", part.name, rej.message),
                    format!("`{}`: {}", part.name, rej.message),
                ))
            }
        })
        .collect()
}

fn multipart_error(e: &MultipartError) -> AppError {
    let status = e.status();
    let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "bad_multipart"
    };
    AppError::new(status, error, e.body_text(), e.body_text())
}
