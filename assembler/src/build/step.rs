//! A RUN, COPY or ADD step: its cache key, reusing a cached snapshot, and otherwise
//! carrying it out (in the sandbox, with our installer, or by copying).

use sha2::{Digest, Sha256};

use super::stage::command_argv;
use super::{BuildError, Engine, StageState, copy};
use crate::containerfile::{self, Kind};
use crate::layer;
use crate::sandbox::RunSpec;

impl Engine<'_> {
    /// RUN, COPY or ADD: cache lookup, execution, snapshot.
    pub(super) fn fs_step(
        &mut self,
        st: &mut StageState,
        x: &containerfile::Instruction,
    ) -> Result<(), BuildError> {
        use anyhow::Context as _;
        let text = x.span.logical.clone();
        let mut key = Sha256::new();
        key.update(st.top.as_ref().map_or("scratch", |t| t.id.as_str()));
        key.update([0]);
        // The config without its history: history carries creation times, which must not
        // defeat the cache when SOURCE_DATE_EPOCH is unset.
        let mut keyed = st.config.clone();
        keyed.history.clear();
        key.update(serde_json::to_vec(&keyed).map_err(anyhow::Error::from)?);
        key.update([0]);
        key.update(format!("{:?}{:?}", x.kind, x.flags));
        let indexes = crate::packages::IndexMemo::default();
        // A plain `apk add`/`apk del` RUN is carried out by our installer, not the sandbox.
        let native_apk = match &x.kind {
            Kind::Run { command, .. } if x.kind.run_script().is_none() => {
                let env = st.args.run_env();
                let lookup =
                    |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                containerfile::detect_apk_with(command, &lookup)
            }
            _ => None,
        };
        let copy_plan = match &x.kind {
            Kind::Copy { .. } | Kind::Add { .. } => {
                let plan = copy::plan(self, st, x)?;
                key.update(plan.content_hash.as_bytes());
                Some(plan)
            }
            _ => {
                key.update(
                    st.args
                        .run_env()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}\n"))
                        .collect::<String>(),
                );
                // A native `apk add`'s result depends on the repositories too: key what it
                // would install now, so a re-uploaded package or a new version reruns it.
                if let Some(apk) = &native_apk
                    && apk.action == containerfile::ApkAction::Add
                {
                    key.update([0]);
                    key.update(self.apk_plan(&st.rootfs(), apk, &indexes));
                }
                None
            }
        };
        let key = hex::encode(key.finalize());
        let rootfs = st.rootfs();
        if !self.opts.no_cache
            && let Some(hit) = self.store.cache_get(&key)
            && hit.meta.parent.as_deref() == st.top.as_ref().map(|t| t.id.as_str())
        {
            if let Some(l) = hit.layer() {
                let root = apk::rootfs::RootDir::open(&rootfs).map_err(anyhow::Error::from)?;
                layer::apply_recording(&root, &l, &mut st.owners).map_err(anyhow::Error::from)?;
            }
            st.manifest = layer::scan(&rootfs).context("failed to scan the build root")?;
            st.config = hit.meta.config.clone();
            self.reporter.line(&format!("--> Using cache @{}", hit.id));
            st.top = Some(hit);
            return Ok(());
        }
        let mut log = Vec::new();
        let failure = match (&x.kind, copy_plan) {
            (Kind::Run { command, .. }, _) => {
                let argv = match x.kind.run_script() {
                    Some(containerfile::RunScript::Body(h)) => {
                        let mut a = st.config.shell();
                        a.push(h.content.clone());
                        a
                    }
                    Some(containerfile::RunScript::Shell(s)) => {
                        let mut a = st.config.shell();
                        a.push(s);
                        a
                    }
                    None => command_argv(command, &st.config),
                };
                let spec = RunSpec {
                    argv,
                    env: st
                        .args
                        .run_env()
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                    workdir: st.config.working_dir.clone(),
                    user: st.config.user.clone(),
                    network: self.opts.network || x.flag("network") == Some("host"),
                    interactive: false,
                };
                if let Some(apk) = &native_apk {
                    // Install scripts run as root: with the image's ids mapped they must
                    // see the image's owners. The installer itself writes with the caller's
                    // owner, so the layer still translates (OwnerMap) for its files.
                    let image_ids = self.sandbox.maps_image_ids(&rootfs, "");
                    if image_ids {
                        layer::chown_to_image(&rootfs, &mut st.manifest, &st.owners)
                            .context("failed to give the build root the image's owners")?;
                    }
                    let failure = self.run_apk(&rootfs, apk, spec.network, &indexes, &mut log)?;
                    crate::packages::record_package_owners(&rootfs, &mut st.owners)
                        .map_err(anyhow::Error::from)?;
                    let snap = self.snapshot(st, &text, &log, false)?;
                    if image_ids {
                        self.chown_back(st)?;
                    }
                    return self.finish_step(st, snap, failure, &key, text);
                }
                let image_ids = self.sandbox.maps_image_ids(&rootfs, &spec.user);
                if image_ids {
                    layer::chown_to_image(&rootfs, &mut st.manifest, &st.owners)
                        .context("failed to give the build root the image's owners")?;
                }
                let reporter = self.reporter;
                let status = self
                    .sandbox
                    .run(&rootfs, &spec, &mut |b| {
                        reporter.output(b);
                        log.extend_from_slice(b);
                    })
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "step {} `{text}` runs in the bubblewrap sandbox (every RUN but a \
                             plain `apk add`/`apk del` does)",
                            self.step
                        )
                    })?;
                let failure = (!status.success()).then(|| {
                    let mut f = status.to_string();
                    let as_root = crate::sandbox::resolve_user(&rootfs, &spec.user).ok();
                    if !image_ids && as_root == Some((0, 0)) && crate::sandbox::chown_refused(&log)
                    {
                        f.push_str(crate::sandbox::ROOTLESS_CHOWN_HINT);
                    }
                    f
                });
                let snap = self.snapshot(st, &text, &log, image_ids)?;
                if image_ids {
                    self.chown_back(st)?;
                }
                return self.finish_step(st, snap, failure, &key, text);
            }
            (_, Some(plan)) => {
                copy::execute(self, st, &plan, &mut log)?;
                None
            }
            _ => None,
        };
        let snap = self.snapshot(st, &text, &log, false)?;
        self.finish_step(st, snap, failure, &key, text)
    }
}
