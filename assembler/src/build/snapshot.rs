//! Finishing a step: its layer and snapshot, the `:failed` tag and hint when it failed,
//! the cache entry when it did not, the owners of the build root around a step run with
//! the image's ids, and a stage's final (config-only) snapshot.

use anyhow::Context as _;

use super::step::Step;
use super::{BuildError, Engine, StageState};
use crate::config::History;
use crate::layer;
use crate::store::{Snapshot, SnapshotMeta};

/// What [`BuildError::StepFailed`] says of a failed step besides its snapshot.
struct Failed {
    /// Where: `file:line` (`file:line:col` for an error about one flag).
    at: String,
    /// The exit status, or the error.
    status: String,
    /// The instruction.
    text: String,
}

impl Engine<'_> {
    /// Prints the snapshot; on failure tags it `:failed` and stops the build, else records
    /// the cache entry and moves the stage on.
    pub(super) fn finish_step(
        &self,
        st: &mut StageState,
        snap: Snapshot,
        failure: Option<String>,
        step: Step,
    ) -> Result<(), BuildError> {
        self.reporter
            .line(&format!("--> Snapshot created: @{}", snap.id));
        if let Some(status) = failure {
            let failed = Failed {
                at: self.at.clone(),
                status,
                text: step.text,
            };
            return Err(self.step_failed(st, snap, failed)?);
        }
        self.store
            .cache_put(&step.key, &snap.id)
            .context("failed to record the step cache")?;
        st.top = Some(snap);
        Ok(())
    }

    /// A step that failed with an error rather than an exit status (a COPY source missing,
    /// a bad `--chown`, an expansion error, a mount that cannot be made, the sandbox
    /// refusing to start): what it left in the build root is kept and tagged `:failed` as
    /// for a failed RUN, and the error names the instruction's `file:line` (a
    /// [`ParseError`](crate::containerfile::ParseError)'s own `file:line:col`).
    pub(super) fn error_failed(
        &self,
        st: &mut StageState,
        text: &str,
        error: BuildError,
    ) -> BuildError {
        let BuildError::Other(e) = error else {
            return error;
        };
        let (at, status) = self.place(&e);
        let log = format!("error: {at}: {status}\n");
        match self.snapshot(st, text, log.as_bytes(), false) {
            Ok(snap) => {
                self.reporter
                    .line(&format!("--> Snapshot created: @{}", snap.id));
                let failed = Failed {
                    at,
                    status,
                    text: text.to_string(),
                };
                self.step_failed(st, snap, failed)
                    .unwrap_or_else(BuildError::Other)
            }
            // Nothing could be kept: the step's own error says more than this one.
            Err(_) => self.located(BuildError::Other(e)),
        }
    }

    /// Tags the failed step's snapshot `:failed`; the error says how to look inside.
    fn step_failed(
        &self,
        st: &StageState,
        snap: Snapshot,
        failed: Failed,
    ) -> anyhow::Result<BuildError> {
        let tag = &super::failed_tag(&self.opts.tags, &snap.id);
        self.store
            .set_tag(tag, &snap.id)
            .context("failed to tag the failed build")?;
        let store = self.store.root().display().to_string();
        let id = &snap.id;
        // `--entrypoint`: an ENTRYPOINT set before the failing step would otherwise run
        // with the shell as its argument.
        let has_shell = apk::rootfs::RootDir::open(st.rootfs())
            .and_then(|r| r.exists("bin/sh"))
            .unwrap_or(false);
        let look = if has_shell {
            format!(
                "Open a shell there with: {prog} --store {store} run -it --entrypoint /bin/sh {tag}@{id}",
                prog = crate::program::name()
            )
        } else {
            format!(
                "The image has no /bin/sh to open a shell in; unpack it to look inside with: {prog} --store {store} export {tag}@{id} rootfs:failed-rootfs",
                prog = crate::program::name()
            )
        };
        Ok(BuildError::StepFailed {
            at: failed.at,
            step: self.step,
            instruction: failed.text,
            status: failed.status,
            tag: tag.clone(),
            snapshot: snap.id,
            store,
            look,
        })
    }

    /// Gives the build root the image's owners when the sandbox runs `user` with the
    /// image's ids mapped; true then.
    pub(super) fn image_owners(&self, st: &mut StageState, user: &str) -> anyhow::Result<bool> {
        let rootfs = st.rootfs();
        let image_ids = self.sandbox.maps_image_ids(&rootfs, user);
        if image_ids {
            layer::chown_to_image(&rootfs, &mut st.manifest, &st.owners)
                .and_then(|_| st.root.chowned(&mut st.manifest))
                .context("failed to give the build root the image's owners")?;
        }
        Ok(image_ids)
    }

    /// Back to the caller owning the whole build root (after a step that ran with the image's
    /// ids mapped), which the next step's one-id sandbox and our own writes expect.
    pub(super) fn chown_back(&self, st: &mut StageState) -> anyhow::Result<()> {
        let host = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        layer::chown_to_host(&st.rootfs(), &mut st.manifest, host)
            .and_then(|_| st.root.chowned(&mut st.manifest))
            .context("failed to give the build root back to the build user")?;
        Ok(())
    }

    /// Keeps the step's result. `on_disk`: the step ran with the image's ids mapped, so disk
    /// owners are image owners; else they are translated per [`layer::OwnerMap`].
    pub(super) fn snapshot(
        &self,
        st: &mut StageState,
        text: &str,
        log: &[u8],
        on_disk: bool,
    ) -> anyhow::Result<Snapshot> {
        let run_step = text.starts_with("RUN");
        let rootfs = st.rootfs();
        let after = st.root.scan().context("failed to scan the build root")?;
        st.root
            .settle(&mut st.manifest, &after)
            .context("failed to scan the build root")?;
        let tmp = st.root.path().join("layer.tar");
        let created = if run_step {
            crate::sandbox::resolve_user(&rootfs, &st.config.user).unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        let owners = layer::OwnerMap::for_step(on_disk, created);
        let info = layer::write_diff_tracked(
            &rootfs,
            &st.manifest,
            &after,
            self.opts.source_date,
            owners,
            &mut st.owners,
            &tmp,
        )
        .context("failed to write the step's layer")?;
        st.manifest = after;
        st.config.history.push(History {
            created: self.created(),
            created_by: text.to_string(),
            empty_layer: false,
        });
        let meta = SnapshotMeta {
            parent: st.top.as_ref().map(|t| t.id.clone()),
            created_by: text.to_string(),
            diff_id: Some(info.diff_id),
            size: info.size,
            base: false,
            from: st.from.clone(),
            config: st.config.clone(),
        };
        Ok(self.store.add_snapshot(meta, Some(&tmp), log)?)
    }

    /// `--init`: the init's files as one more snapshot, and the config starting `/init`.
    pub(super) fn init_step(
        &self,
        st: &mut StageState,
        init: crate::init::Init,
    ) -> anyhow::Result<()> {
        let applied = crate::init::apply(&st.rootfs(), &mut st.config, init)?;
        let what = match &applied.main {
            Some(argv) => format!("/etc/services.d/main runs {argv:?}"),
            None => "no main service generated (/etc/services.d/main kept)".into(),
        };
        self.reporter
            .line(&format!("Init s6: ENTRYPOINT [\"/init\"], {what}"));
        let snap = self.snapshot(st, "INIT s6 (assemble --init s6)", b"", false)?;
        self.reporter
            .line(&format!("--> Snapshot created: @{}", snap.id));
        st.top = Some(snap);
        Ok(())
    }

    /// The stage's final snapshot: its top, or a config-only snapshot above it when
    /// instructions after the last RUN/COPY/ADD changed the config.
    pub(super) fn finish_config(&self, st: &StageState) -> anyhow::Result<Snapshot> {
        if let Some(top) = &st.top
            && top.meta.config == st.config
        {
            return Ok(top.clone());
        }
        let meta = SnapshotMeta {
            parent: st.top.as_ref().map(|t| t.id.clone()),
            created_by: "(config)".into(),
            diff_id: None,
            size: 0,
            base: false,
            from: st.from.clone(),
            config: st.config.clone(),
        };
        Ok(self.store.add_snapshot(meta, None, b"")?)
    }
}
