//! `apkbuild deploy`: upload a package tree to a `reposerve` (`POST /upload`), one request
//! per index. The layout gives version, repo and arch: `DIR/<version>/<repo>/<arch>/*.apk`,
//! or abuild's `REPODEST` layout `DIR/<repo>/<arch>/*.apk` (version from `--version`).
//! Files stream from disk; nothing is held in memory.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::env::Env;

/// Arguments of `apkbuild deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server base URL (`https://repo.example.com`).
    #[arg(long)]
    pub url: String,
    /// Name of the environment variable holding the JWT (a GitLab `id_tokens` variable)
    /// [default: the first set of REPOSERVE_JWT REPOSERVE_ID_TOKEN REPOSERVE_TOKEN
    /// CI_JOB_JWT_V2].
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Version for a `<repo>/<arch>` (REPODEST) layout.
    #[arg(long, default_value = "edge")]
    pub version: String,
    /// The tree to upload.
    pub dir: PathBuf,
}

type Groups = BTreeMap<(String, String, String), Vec<PathBuf>>;

/// Finds the packages of `dir`, grouped by `(version, repo, arch)`.
pub fn scan(dir: &Path, default_version: &str) -> anyhow::Result<Groups> {
    let mut groups = Groups::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("failed to read `{}`", dir.display()))?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "apk") {
            continue;
        }
        let rel = path.strip_prefix(dir).unwrap_or(path);
        let parts: Vec<String> = rel
            .parent()
            .map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let key = match parts.as_slice() {
            [v, r, a] => (v.clone(), r.clone(), a.clone()),
            [r, a] => (default_version.to_string(), r.clone(), a.clone()),
            _ => bail!(
                "`{}`: expected DIR/<repo>/<arch>/*.apk or DIR/<version>/<repo>/<arch>/*.apk",
                path.display()
            ),
        };
        groups.entry(key).or_default().push(path.to_path_buf());
    }
    if groups.is_empty() {
        bail!("no .apk files under `{}`", dir.display());
    }
    Ok(groups)
}

/// Where the JWT is looked for without `--token-env`, in order (`ci/apkdeploy` reads the
/// same list; the README documents it): the templates' `id_tokens` name, two older names,
/// and GitLab's job token of before 17.0.
pub const TOKEN_VARIABLES: [&str; 4] = [
    "REPOSERVE_JWT",
    "REPOSERVE_ID_TOKEN",
    "REPOSERVE_TOKEN",
    "CI_JOB_JWT_V2",
];

/// Runs `apkbuild deploy`.
pub fn run(args: &Args, _env: &Env) -> anyhow::Result<ExitCode> {
    let token = token(args);
    let groups = scan(&args.dir, &args.version)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let url = format!("{}/upload", args.url.trim_end_matches('/'));
    let mut out = std::io::stdout().lock();
    for (key, files) in &groups {
        let (version, repo, arch) = key;
        let (body, len) = multipart_body(
            &[("version", version), ("repo", repo), ("arch", arch)],
            files,
        )?;
        let mut req = client
            .post(&url)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(reqwest::blocking::Body::sized(body, len));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .with_context(|| format!("failed to upload to {url}"))?;
        report(&mut out, key, resp)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The JWT from `--token-env`'s variable or the first of [`TOKEN_VARIABLES`] that is set,
/// with a warning when there is none.
fn token(args: &Args) -> Option<String> {
    // The variable's name is chosen on the command line (GitLab `id_tokens` names are the
    // job's choice), so it cannot be listed in `env.rs`.
    let names: Vec<String> = match &args.token_env {
        Some(v) => vec![v.clone()],
        None => TOKEN_VARIABLES.iter().map(|n| (*n).to_string()).collect(),
    };
    let token = names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
    if token.is_none() {
        tracing::warn!(
            "no token in {}: uploading without authentication (only a server in -d mode accepts that)",
            names.join(" or ")
        );
    }
    token
}

const BOUNDARY: &str = "apkbuild-deploy-7d3f1c9a2b";

/// A `multipart/form-data` body of the `fields` and then the `files`, streamed from disk,
/// and its length.
fn multipart_body(
    fields: &[(&str, &str)],
    files: &[PathBuf],
) -> anyhow::Result<(Box<dyn Read + Send>, u64)> {
    let mut readers: Vec<Box<dyn Read + Send>> = Vec::new();
    let mut len = 0u64;
    for (name, value) in fields {
        let s = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        );
        len += s.len() as u64;
        readers.push(Box::new(std::io::Cursor::new(s.into_bytes())));
    }
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("package.apk");
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let file = fs_err::File::open(f)?;
        let size = file.metadata()?.len();
        len += head.len() as u64 + size + 2;
        readers.push(Box::new(std::io::Cursor::new(head.into_bytes())));
        readers.push(Box::new(file));
        readers.push(Box::new(std::io::Cursor::new(b"\r\n".to_vec())));
    }
    let tail = format!("--{BOUNDARY}--\r\n");
    len += tail.len() as u64;
    readers.push(Box::new(std::io::Cursor::new(tail.into_bytes())));
    let body = readers
        .into_iter()
        .reduce(|a, b| Box::new(a.chain(b)))
        .expect("at least the tail");
    Ok((body, len))
}

/// Prints the paths the server accepted for one group, or fails with its answer.
fn report(
    out: &mut impl Write,
    (version, repo, arch): &(String, String, String),
    resp: reqwest::blocking::Response,
) -> anyhow::Result<()> {
    let status = resp.status();
    let body: serde_json::Value = resp.json().unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{version}/{repo}/{arch}: server answered {status}: {} ({}); nothing in this batch was published",
            body["error"].as_str().unwrap_or("?"),
            body["hint"].as_str().unwrap_or("no details")
        );
    }
    for a in body["accepted"].as_array().into_iter().flatten() {
        let path = a["path"].as_str().unwrap_or_default();
        if a["unchanged"].as_bool() == Some(true) {
            writeln!(out, "{path} (already published, unchanged)")?;
        } else {
            writeln!(out, "{path}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let d = tempfile::tempdir().unwrap();
        for p in [
            "main/x86_64/a-1-r0.apk",
            "v3.20/community/aarch64/b-1-r0.apk",
        ] {
            let p = d.path().join(p);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, b"x").unwrap();
        }
        fs_err::write(d.path().join("main/x86_64/APKINDEX.tar.gz"), b"x").unwrap();
        let g = scan(d.path(), "edge").unwrap();
        let keys: Vec<_> = g.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                ("edge".into(), "main".into(), "x86_64".into()),
                ("v3.20".into(), "community".into(), "aarch64".into())
            ]
        );
    }
}
