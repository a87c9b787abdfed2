//! A RUN, COPY or ADD step: its cache key, reusing a cached snapshot, and otherwise
//! carrying it out (in the sandbox, with our installer, or by copying).

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::mounts::StepMounts;
use super::{BuildError, Engine, StageState, copy};
use crate::containerfile::{self, ApkCommand, CommandForm, Instruction, Kind};
use crate::layer;
use crate::packages::IndexMemo;

/// What the last parts of a step need to know about it.
pub(super) struct Step {
    /// The instruction as written (the snapshot's `created_by`).
    pub text: String,
    /// The cache key (hex).
    pub key: String,
}

impl Engine<'_> {
    /// RUN, COPY or ADD: cache lookup, execution, snapshot.
    pub(super) fn fs_step(
        &mut self,
        st: &mut StageState,
        x: &Instruction,
    ) -> Result<(), BuildError> {
        let indexes = IndexMemo::default();
        let mounts = match &x.kind {
            Kind::Run { .. } => self.step_mounts(st, x)?,
            _ => StepMounts::default(),
        };
        // A RUN that is only apk commands is carried out natively, without the sandbox,
        // unless its mounts would change what apk sees.
        let native_apk = native_apk(st, x).filter(|apk| mounts.allow_native(apk, &st.config));
        let mut key = step_key(st, x)?;
        let copy_plan = match &x.kind {
            Kind::Copy { .. } | Kind::Add { .. } => {
                let plan = copy::plan(self, st, x)?;
                key.update(plan.content_hash.as_bytes());
                Some(plan)
            }
            _ => {
                self.key_run(&mut key, st, native_apk.as_ref(), &indexes);
                mounts.key(&mut key);
                None
            }
        };
        let step = Step {
            text: x.span.logical.clone(),
            key: hex::encode(key.finalize()),
        };
        if self.reuse_cached(st, &step.key)? {
            return Ok(());
        }
        match (&x.kind, copy_plan) {
            (Kind::Run { command, .. }, _) => {
                let spec = self.run_spec(st, x, command);
                let shell =
                    x.kind.run_script().is_some() || matches!(command, CommandForm::Shell(_));
                match &native_apk {
                    Some(apk) => self.apk_step(st, apk, spec.network, &indexes, step),
                    None => self.run_step(st, &spec, &mounts, shell, &indexes, step),
                }
            }
            (_, Some(plan)) => {
                let mut log = Vec::new();
                copy::execute(self, st, &plan, &mut log)?;
                let snap = self.snapshot(st, &step.text, &log, false)?;
                self.finish_step(st, snap, None, step)
            }
            _ => {
                let snap = self.snapshot(st, &step.text, b"", false)?;
                self.finish_step(st, snap, None, step)
            }
        }
    }

    /// The RUN parts of the key: the environment, and what a native `apk add` would
    /// install now from the repositories (so a re-uploaded package or a new version reruns
    /// it).
    fn key_run(
        &self,
        key: &mut Sha256,
        st: &StageState,
        native_apk: Option<&ApkCommand>,
        indexes: &IndexMemo,
    ) {
        key.update(
            st.args
                .run_env()
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>(),
        );
        if let Some(apk) = native_apk
            && apk.action == containerfile::ApkAction::Add
        {
            key.update([0]);
            key.update(self.apk_plan(st, apk, indexes));
        }
    }

    /// Applies the cached snapshot of `key` when there is one above the stage's top.
    fn reuse_cached(&self, st: &mut StageState, key: &str) -> anyhow::Result<bool> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let Some(hit) = self.store.cache_get(key) else {
            return Ok(false);
        };
        if hit.meta.parent.as_deref() != st.top.as_ref().map(|t| t.id.as_str()) {
            return Ok(false);
        }
        let rootfs = st.rootfs();
        if let Some(l) = hit.layer() {
            let root = apk::rootfs::RootDir::open(&rootfs)?;
            layer::apply_recording(&root, &l, &mut st.owners)?;
        }
        st.manifest = st.root.scan().context("failed to scan the build root")?;
        st.config = hit.meta.config.clone();
        self.reporter.line(&format!("--> Using cache @{}", hit.id));
        st.top = Some(hit);
        Ok(true)
    }
}

/// The step's key so far: its parent, the config it starts from and the instruction.
fn step_key(st: &StageState, x: &Instruction) -> anyhow::Result<Sha256> {
    let mut key = Sha256::new();
    key.update(st.top.as_ref().map_or("scratch", |t| t.id.as_str()));
    key.update([0]);
    // The config without its history: history carries creation times, which must not
    // defeat the cache when SOURCE_DATE_EPOCH is unset.
    let mut keyed = st.config.clone();
    keyed.history.clear();
    key.update(serde_json::to_vec(&keyed)?);
    key.update([0]);
    key.update(format!("{:?}{:?}", x.kind, x.flags));
    Ok(key)
}

/// The `apk add`/`apk del` of a plain RUN (no script), with the step's ARG and ENV.
fn native_apk(st: &StageState, x: &Instruction) -> Option<ApkCommand> {
    match &x.kind {
        Kind::Run { command, .. } if x.kind.run_script().is_none() => {
            let env = st.args.run_env();
            let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            containerfile::detect_apk_with(command, &lookup)
        }
        _ => None,
    }
}
