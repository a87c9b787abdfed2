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

async fn handle(state: &AppState, mut multipart: Multipart) -> Result<UploadResponse, AppError> {
    state.repo.upload_ready()?;
    let limits = &state.config.limits;
    let (mut version, mut repo, mut arch) = (None, None, None);
    let mut parts: Vec<Part> = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "version" | "repo" | "arch" => {
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
                let value = String::from_utf8(value).map_err(|_| {
                    AppError::bad_request("bad_field", format!("`{name}` is not UTF-8"))
                })?;
                check_segment(&name, &value)?;
                match name.as_str() {
                    "version" => version = Some(value),
                    "repo" => repo = Some(value),
                    _ => arch = Some(value),
                }
            }
            "file" => {
                if parts.len() >= limits.max_files {
                    return Err(AppError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_files",
                        format!("at most {} files per request", limits.max_files),
                        "too many file parts",
                    ));
                }
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
                    if size > limits.max_file_bytes {
                        return Err(AppError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too_large",
                            format!(
                                "`{file_name}` is over the limit of {} bytes",
                                limits.max_file_bytes
                            ),
                            format!("file part over {} bytes", limits.max_file_bytes),
                        ));
                    }
                    out.write_all(&chunk).await.map_err(AppError::internal)?;
                }
                // Durable before it can be renamed into the tree.
                out.sync_all().await.map_err(AppError::internal)?;
                parts.push(Part {
                    file: path,
                    name: file_name,
                });
            }
            other => {
                return Err(AppError::bad_request(
                    "bad_field",
                    format!("unknown form field `{other}`; expected version, repo, arch or file"),
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err(AppError::bad_request(
            "no_file",
            "no `file` part; upload with `curl -F file=@pkg.apk`",
        ));
    }
    let version = version.unwrap_or_else(|| "edge".into());
    let repo_name = repo.unwrap_or_else(|| "main".into());
    let mut tasks = Vec::new();
    for part in parts {
        let repo = Arc::clone(&state.repo);
        let (version, repo_name, arch) = (version.clone(), repo_name.clone(), arch.clone());
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
    let mut staged = Vec::new();
    for (part, r) in checked {
        match r {
            Ok((entry, target)) => staged.push(Staged {
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
                return Err(AppError::new(
                    status,
                    rej.reason,
                    format!("`{}`: {}; nothing was changed", part.name, rej.message),
                    format!("`{}`: {}", part.name, rej.message),
                ));
            }
        }
    }
    let accepted = state.repo.commit(staged).await?;
    for a in &accepted {
        tracing::info!(name = %a.name, version = %a.version, path = %a.path, replaced = a.replaced, unchanged = a.unchanged, "package accepted");
    }
    Ok(UploadResponse { accepted })
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
