//! `assemble images`, `snapshots`, `rmi`, `prune`, `logs`.

use std::process::ExitCode;

use clap::Args;

use crate::build::Reporter;
use crate::store::{ImageRef, Store};

/// `assemble snapshots IMAGE`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// NAME[:TAG][@SNAPSHOT].
    pub image: String,
}

/// `assemble tag SOURCE TARGET`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// NAME[:TAG][@SNAPSHOT] or @SNAPSHOT.
    pub source: String,
    /// NAME[:TAG] (`latest` unless given).
    pub target: String,
}

/// `assemble rmi NAME[:TAG]…`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Tags to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `assemble logs IMAGE[@SNAPSHOT]`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// NAME[:TAG][@SNAPSHOT].
    pub image: String,
}

/// Listings go to stdout (scriptable); progress and errors go through `line` (stderr).
fn say(r: &dyn Reporter, s: &str) {
    r.output(format!("{s}\n").as_bytes());
}

fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Tags the image `source` names as `target` too (`docker tag`).
pub fn tag(store: &Store, a: &TagArgs, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    if a.target.contains('@') {
        anyhow::bail!(
            "`{}`: a tag names an image, not a snapshot; give NAME[:TAG]",
            a.target
        );
    }
    let snap = store.resolve(&ImageRef::parse(&a.source))?;
    store.set_tag(&a.target, &snap.id)?;
    r.line(&format!(
        "Tagged {} (@{})",
        crate::store::normalize_tag(&a.target),
        snap.id
    ));
    Ok(ExitCode::SUCCESS)
}

/// Lists tags.
pub fn images(store: &Store, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    say(
        r,
        &format!("{:<40} {:<14} {:>10}", "IMAGE", "SNAPSHOT", "SIZE"),
    );
    for (tag, id) in store.tags()? {
        let total: u64 = match store.snapshot(&id) {
            Ok(s) => store.chain(&s)?.iter().map(|s| s.meta.size).sum(),
            Err(_) => 0,
        };
        say(r, &format!("{tag:<40} @{id:<13} {:>10}", size(total)));
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists an image's snapshots, newest first.
pub fn snapshots(store: &Store, a: &SnapshotsArgs, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let top = store.resolve(&ImageRef::parse(&a.image))?;
    for s in store.chain(&top)?.iter().rev() {
        say(
            r,
            &format!("@{} {:>10}  {}", s.id, size(s.meta.size), s.meta.created_by),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes tags.
pub fn rmi(store: &Store, a: &RmiArgs, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for i in &a.images {
        if store.remove_tag(i)? {
            say(r, &format!("Untagged {}", crate::store::normalize_tag(i)));
        } else {
            r.line(&format!(
                "error: no image `{i}`; see `{} images`",
                crate::program::name()
            ));
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Garbage-collects.
pub fn prune(store: &Store, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let removed = store.prune()?;
    for id in &removed {
        say(r, &format!("Deleted @{id}"));
    }
    say(r, &format!("{} snapshot(s) removed", removed.len()));
    let bases = crate::bases::prune(store)?;
    for id in &bases {
        say(r, &format!("Deleted extracted base @{id}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints logs: one snapshot's with `@id`, else every step of the image, oldest first.
pub fn logs(store: &Store, a: &LogsArgs, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let re = ImageRef::parse(&a.image);
    let top = store.resolve(&re)?;
    let list = if re.snapshot.is_some() {
        vec![top]
    } else {
        store.chain(&top)?
    };
    for s in list {
        let log = fs_err::read(s.log_path()).unwrap_or_default();
        if log.is_empty() && s.meta.base {
            continue;
        }
        say(r, &format!("==> @{} {}", s.id, s.meta.created_by));
        r.output(&log);
    }
    Ok(ExitCode::SUCCESS)
}
