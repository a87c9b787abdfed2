//! `POST /webhooks/<name>`: runs the configured command (through `/bin/sh -c`, as the
//! server users run today does). Nothing from the request reaches the command: the only
//! input is the hook name, which selects a configured command.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use crate::AppState;
use crate::error::AppError;

/// The JSON answer.
#[derive(Serialize)]
pub struct HookResponse {
    /// Hook name.
    pub hook: String,
    /// The command's exit code.
    pub exit_code: i32,
}

/// The handler.
pub async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<HookResponse>, AppError> {
    let Some(command) = state.config.webhooks.get(&name) else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "no_such_hook",
            format!("no webhook named `{name}` is configured"),
            format!("webhook {name} not configured"),
        ));
    };
    let status = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("REPOSERVE_HOOK", &name)
        .env("REPOSERVE_DIR", state.repo.root())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(AppError::internal)?;
    let exit_code = status.code().unwrap_or(-1);
    if !status.success() {
        return Err(AppError::new(
            StatusCode::BAD_GATEWAY,
            "hook_failed",
            format!("webhook `{name}` failed (exit {exit_code}); see the server log"),
            format!("webhook {name}: `{command}` exited with {status}"),
        ));
    }
    tracing::info!(hook = %name, "webhook ran");
    Ok(Json(HookResponse {
        hook: name,
        exit_code,
    }))
}
