//! The stage loop: a stage's base (FROM), then its instructions one by one; the ones that
//! only change the image config are applied here, RUN/COPY/ADD go to [`super::step`].

use std::path::Path;

use anyhow::Context as _;

use super::{BuildError, Engine, StageState, from};
use crate::config::{Healthcheck, History, ImageConfig};
use crate::containerfile::{self, BuildArgs, CommandForm, Instruction, Kind};
use crate::store::Snapshot;

impl Engine<'_> {
    pub(super) fn build_stage(
        &mut self,
        index: usize,
        bargs: &BuildArgs,
    ) -> Result<(), BuildError> {
        let stage = &self.file.stages[index];
        self.announce(&stage.from, &stage.from.span.logical);
        let mut st = self
            .start_stage(index, bargs)
            .map_err(|e| self.located(e.into()))?;
        self.onbuild_triggers(&mut st, index, bargs)?;
        for inst in &stage.instructions {
            self.announce(inst, &inst.span.logical);
            if let Err(e) = self.instruction(&mut st, inst) {
                return Err(self.error_failed(&mut st, &inst.span.logical, e));
            }
        }
        self.stages.insert(index, st);
        Ok(())
    }

    /// The stage's build root with its base's files, config and owners.
    fn start_stage(&self, index: usize, bargs: &BuildArgs) -> anyhow::Result<StageState> {
        let stage = &self.file.stages[index];
        let image =
            containerfile::expand_word(stage.base(), &bargs.global_vars(), self.file.escape)
                .map_err(|e| anyhow::anyhow!("line {}: {e}", stage.from.span.line))?;
        let top = self.stage_base(index, &image)?;
        let (root, owners) = self.build_root(top.as_ref())?;
        let mut config = top
            .as_ref()
            .map(|t| t.meta.config.clone())
            .unwrap_or_default();
        // BuildKit: "make sure that PATH is always set", so `ENV PATH=/x:$PATH` extends it.
        if config.env_get("PATH").is_none() {
            config.set_env("PATH", crate::sandbox::DEFAULT_PATH);
        }
        let env = env_pairs(&config);
        let manifest = root.scan().context("failed to scan the build root")?;
        Ok(StageState {
            root,
            from: top.as_ref().map(|t| t.id.clone()),
            manifest,
            owners,
            top,
            config,
            args: bargs.stage(&env),
        })
    }

    /// The snapshot stage `index` starts from: an earlier stage named `image`, else the
    /// image itself (`None` for scratch).
    fn stage_base(&self, index: usize, image: &str) -> anyhow::Result<Option<Snapshot>> {
        let earlier = self.file.stages[..index]
            .iter()
            .find(|s| s.name.as_deref() == Some(image.to_ascii_lowercase().as_str()))
            .map(|s| s.index);
        match earlier {
            Some(i) => {
                let st = self.stages.get(&i).context("stage not built")?;
                Ok(Some(self.finish_config(st)?))
            }
            None => from::resolve_base(self.store, image, self.opts, self.reporter),
        }
    }

    /// One instruction: ARG declares, config instructions change the config (an empty
    /// history entry), RUN/COPY/ADD make a snapshot.
    pub(super) fn instruction(
        &mut self,
        st: &mut StageState,
        inst: &Instruction,
    ) -> Result<(), BuildError> {
        let esc = self.file.escape;
        let line = inst.span.line;
        if let Kind::Arg(args) = &inst.kind {
            for a in args {
                st.args
                    .declare(a, esc)
                    .map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
            }
            return Ok(());
        }
        let x = inst
            .expanded(&st.args, esc)
            .map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
        if !st.apply_config(&x)? {
            return self.fs_step(st, &x);
        }
        st.config.history.push(History {
            created: self.created(),
            created_by: x.span.logical.clone(),
            empty_layer: true,
        });
        Ok(())
    }
}

impl StageState {
    /// Applies a config-only instruction; false for one that changes files (RUN/COPY/ADD).
    fn apply_config(&mut self, x: &Instruction) -> anyhow::Result<bool> {
        let c = &mut self.config;
        match &x.kind {
            Kind::Env(pairs) => {
                for (k, v) in pairs {
                    c.set_env(k, v);
                    self.args.set_env(k, v);
                }
            }
            Kind::Label(pairs) => {
                for (k, v) in pairs {
                    c.labels.insert(k.clone(), v.clone());
                }
            }
            Kind::Maintainer(m) => {
                c.labels.insert("maintainer".into(), m.clone());
            }
            Kind::Expose(ports) => c.exposed_ports.extend(ports.iter().map(|p| port(p))),
            Kind::User(u) => c.user = u.clone(),
            Kind::Workdir(w) => c.working_dir = workdir(&c.working_dir, w),
            Kind::Shell(s) => c.shell = Some(s.clone()),
            Kind::Entrypoint(f) => {
                c.entrypoint = Some(command_argv(f, c));
                // Docker: ENTRYPOINT resets an inherited CMD.
                c.cmd = None;
            }
            Kind::Cmd(f) => c.cmd = Some(command_argv(f, c)),
            Kind::Volume(v) => c.volumes.extend(v.iter().cloned()),
            Kind::StopSignal(s) => c.stop_signal = Some(s.clone()),
            Kind::Healthcheck(h) => c.healthcheck = Some(healthcheck(h)),
            Kind::Onbuild(_) => c.on_build.extend(x.trigger_text()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The `KEY=value` entries of a config's environment as pairs.
fn env_pairs(config: &ImageConfig) -> Vec<(String, String)> {
    config
        .env
        .iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// An EXPOSE port with its protocol (`tcp` unless given).
fn port(p: &str) -> String {
    if p.contains('/') {
        p.to_string()
    } else {
        format!("{p}/tcp")
    }
}

/// WORKDIR `w`, relative to the current one `current` unless absolute.
fn workdir(current: &str, w: &str) -> String {
    if w.starts_with('/') {
        return w.to_string();
    }
    Path::new(if current.is_empty() { "/" } else { current })
        .join(w)
        .display()
        .to_string()
}

/// A HEALTHCHECK as the image config holds it.
fn healthcheck(h: &containerfile::Healthcheck) -> Healthcheck {
    match h {
        containerfile::Healthcheck::None => Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        },
        containerfile::Healthcheck::Check(hc) => Healthcheck {
            test: match &hc.command {
                CommandForm::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                CommandForm::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            },
            interval: hc.interval.map(|d| d.as_nanos() as u64),
            timeout: hc.timeout.map(|d| d.as_nanos() as u64),
            start_period: hc.start_period.map(|d| d.as_nanos() as u64),
            retries: hc.retries.map(u64::from),
        },
    }
}

/// Exec form as is; shell form through SHELL.
pub(super) fn command_argv(f: &CommandForm, c: &ImageConfig) -> Vec<String> {
    match f {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut a = c.shell();
            a.push(s.clone());
            a
        }
    }
}
