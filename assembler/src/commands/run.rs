//! `assemble run [-it] [--commit NAME[:TAG]] IMAGE[@SNAPSHOT] [CMD…]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::build::Reporter;
use crate::cli::Env;
use crate::config::{History, rfc3339};
use crate::layer;
use crate::sandbox::{Bwrap, RunSpec, Sandbox};
use crate::store::{ImageRef, Snapshot, SnapshotMeta, Store};

/// Arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Attach the terminal (interactive shell).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a terminal (accepted with -i, as `-it`).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep what the session changed as a new snapshot tagged NAME[:TAG].
    #[arg(long)]
    pub commit: Option<String>,
    /// Share the host network.
    #[arg(long)]
    pub network: Option<String>,
    /// Run this program instead of the image's ENTRYPOINT (its CMD is then not used, as
    /// with `docker run --entrypoint`); `--entrypoint ''` clears it.
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// NAME[:TAG][@SNAPSHOT] or @SNAPSHOT.
    pub image: String,
    /// The command (default: the image's ENTRYPOINT/CMD, else /bin/sh).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// What runs: ENTRYPOINT (or `--entrypoint`) followed by the given command, else by CMD
/// when the entrypoint is the image's own; `/bin/sh` when that is all empty.
fn command_line(a: &RunArgs, entrypoint: Option<&[String]>, cmd: Option<&[String]>) -> Vec<String> {
    let mut argv = match a.entrypoint.as_deref() {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => entrypoint.unwrap_or_default().to_vec(),
    };
    if !a.command.is_empty() {
        argv.extend(a.command.iter().cloned());
    } else if a.entrypoint.is_none() {
        argv.extend(cmd.unwrap_or_default().iter().cloned());
    }
    if argv.is_empty() {
        argv.push("/bin/sh".into());
    }
    argv
}

/// Runs.
pub fn run(store: &Store, a: &RunArgs, env: &Env, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let top = store.resolve(&ImageRef::parse(&a.image))?;
    let sandbox = Bwrap::default();
    sandbox.preflight()?;
    let session = Session::prepare(store, &top, &sandbox, a.commit.is_some())?;
    let c = &top.meta.config;
    let argv = command_line(a, c.entrypoint.as_deref(), c.cmd.as_deref());
    let spec = RunSpec {
        argv,
        env: c.env.clone(),
        workdir: c.working_dir.clone(),
        user: c.user.clone(),
        network: a.network.as_deref() == Some("host"),
        interactive: a.interactive || a.tty,
        ..RunSpec::default()
    };
    let status = sandbox.run(&session.rootfs, &spec, &mut |b| r.output(b))?;
    if let Some(tag) = &a.commit {
        session.commit(store, &top, tag, &spec, env, r)?;
    }
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(n) => ExitCode::from(u8::try_from(n).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The session's root, the image owners of its paths, and (when it is to be committed or
/// chowned) its scan before the session.
struct Session {
    work: tempfile::TempDir,
    rootfs: PathBuf,
    owners: layer::Owners,
    /// The sandbox maps the image's ids, so the files on disk carry the image's owners.
    on_disk: bool,
    before: Option<layer::Manifest>,
}

impl Session {
    fn prepare(
        store: &Store,
        top: &Snapshot,
        sandbox: &Bwrap,
        commit: bool,
    ) -> anyhow::Result<Session> {
        let work = store.tempdir("run-")?;
        let rootfs = work.path().join("rootfs");
        fs_err::create_dir_all(&rootfs)?;
        let owners = crate::build::materialize_recording(store, top, &rootfs)?;
        // A root session with the image's ids mapped sees (and may chown) the image's owners.
        let on_disk = sandbox.maps_image_ids(&rootfs, &top.meta.config.user);
        let before = if commit || on_disk {
            let mut m = layer::scan(&rootfs)?;
            if on_disk {
                layer::chown_to_image(&rootfs, &mut m, &owners)?;
            }
            Some(m)
        } else {
            None
        };
        Ok(Session {
            work,
            rootfs,
            owners,
            on_disk,
            before,
        })
    }

    /// Keeps what the session changed as a snapshot above `top`, tagged `tag`.
    fn commit(
        mut self,
        store: &Store,
        top: &Snapshot,
        tag: &str,
        spec: &RunSpec,
        env: &Env,
        r: &dyn Reporter,
    ) -> anyhow::Result<()> {
        let Some(before) = self.before.take() else {
            return Ok(());
        };
        let after = layer::scan(&self.rootfs)?;
        let tmp = self.work.path().join("layer.tar");
        // What the session made is owned by its USER in the image, not by the host user.
        let created = if self.on_disk {
            (0, 0)
        } else {
            crate::sandbox::resolve_user(&self.rootfs, &spec.user)?
        };
        let map = layer::OwnerMap::for_step(self.on_disk, created);
        let info = layer::write_diff_tracked(
            &self.rootfs,
            &before,
            &after,
            env.source_date,
            map,
            &mut self.owners,
            &tmp,
        )?;
        let mut config = top.meta.config.clone();
        let by = format!("assemble run {}", spec.argv.join(" "));
        config.history.push(History {
            created: rfc3339(env.source_date.unwrap_or(env.now)),
            created_by: by.clone(),
            empty_layer: false,
        });
        let snap = store.add_snapshot(
            SnapshotMeta {
                parent: Some(top.id.clone()),
                created_by: by,
                diff_id: Some(info.diff_id),
                size: info.size,
                base: false,
                from: top.meta.from.clone(),
                config,
            },
            Some(&tmp),
            b"",
        )?;
        store
            .set_tag(tag, &snap.id)
            .context("failed to tag the commit")?;
        r.line(&format!("--> Snapshot created: @{}", snap.id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(entrypoint: Option<&str>, command: &[&str]) -> RunArgs {
        RunArgs {
            interactive: true,
            tty: true,
            commit: None,
            network: None,
            entrypoint: entrypoint.map(str::to_string),
            image: "x".into(),
            command: command.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn entrypoint_and_cmd_as_docker_run_combines_them() {
        let ep = ["/init".to_string()];
        let cmd = ["/usr/bin/app".to_string(), "-v".to_string()];
        let line = |e, c: &[&str]| command_line(&args(e, c), Some(&ep), Some(&cmd));
        assert_eq!(line(None, &[]), ["/init", "/usr/bin/app", "-v"]);
        assert_eq!(line(None, &["/bin/sh"]), ["/init", "/bin/sh"]);
        assert_eq!(line(Some("/bin/sh"), &[]), ["/bin/sh"]);
        assert_eq!(
            line(Some("/bin/sh"), &["-c", "ls"]),
            ["/bin/sh", "-c", "ls"]
        );
        assert_eq!(line(Some(""), &["ls"]), ["ls"]);
        assert_eq!(line(Some(""), &[]), ["/bin/sh"]);
        assert_eq!(command_line(&args(None, &[]), None, None), ["/bin/sh"]);
    }
}
