//! The stage loop: a stage's base (FROM), then its instructions one by one; the ones that
//! only change the image config are applied here, RUN/COPY/ADD go to [`super::step`].

use std::path::Path;

use super::{BuildError, Engine, StageState, from};
use crate::config::{Healthcheck, History, ImageConfig};
use crate::containerfile::{self, BuildArgs, CommandForm, Kind};
use crate::layer;

impl Engine<'_> {
    pub(super) fn build_stage(
        &mut self,
        index: usize,
        bargs: &BuildArgs,
    ) -> anyhow::Result<(), BuildError> {
        use anyhow::Context as _;
        let stage = &self.file.stages[index];
        self.announce(&stage.from.span.logical);
        let image =
            containerfile::expand_word(stage.base(), &bargs.global_vars(), self.file.escape)
                .map_err(|e| anyhow::anyhow!("line {}: {e}", stage.from.span.line))?;
        let root = self
            .store
            .tempdir("build-")
            .context("failed to create a build root")?;
        let rootfs = root.path().join("rootfs");
        fs_err::create_dir_all(&rootfs).map_err(anyhow::Error::from)?;
        // An earlier stage by name: start from its result.
        let earlier = self.file.stages[..index]
            .iter()
            .find(|s| s.name.as_deref() == Some(image.to_ascii_lowercase().as_str()))
            .map(|s| s.index);
        let top = match earlier {
            Some(i) => {
                let st = self.stages.get(&i).context("stage not built")?;
                Some(self.finish_config(st)?)
            }
            None => from::resolve_base(self.store, &image, self.opts, self.reporter)?,
        };
        let owners = match &top {
            Some(top) => from::materialize_recording(self.store, top, &rootfs)?,
            None => layer::Owners::new(),
        };
        let config = top
            .as_ref()
            .map(|t| t.meta.config.clone())
            .unwrap_or_default();
        let env: Vec<(String, String)> = config
            .env
            .iter()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let manifest = layer::scan(&rootfs).context("failed to scan the build root")?;
        let mut st = StageState {
            root,
            from: top.as_ref().map(|t| t.id.clone()),
            manifest,
            owners,
            top,
            config,
            args: bargs.stage(&env),
        };
        for inst in &stage.instructions {
            self.announce(&inst.span.logical);
            let esc = self.file.escape;
            if let Kind::Arg(args) = &inst.kind {
                for a in args {
                    st.args
                        .declare(a, esc)
                        .map_err(|e| anyhow::anyhow!("line {}: {e}", inst.span.line))?;
                }
                continue;
            }
            let x = inst
                .expanded(&st.args, esc)
                .map_err(|e| anyhow::anyhow!("line {}: {e}", inst.span.line))?;
            let c = &mut st.config;
            let mut meta_only = true;
            match &x.kind {
                Kind::Env(pairs) => {
                    for (k, v) in pairs {
                        c.set_env(k, v);
                        st.args.set_env(k, v);
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
                Kind::Expose(ports) => {
                    for p in ports {
                        let p = if p.contains('/') {
                            p.clone()
                        } else {
                            format!("{p}/tcp")
                        };
                        c.exposed_ports.insert(p);
                    }
                }
                Kind::User(u) => c.user = u.clone(),
                Kind::Workdir(w) => {
                    c.working_dir = if w.starts_with('/') {
                        w.clone()
                    } else {
                        Path::new(if c.working_dir.is_empty() {
                            "/"
                        } else {
                            &c.working_dir
                        })
                        .join(w)
                        .display()
                        .to_string()
                    };
                }
                Kind::Shell(s) => c.shell = Some(s.clone()),
                Kind::Entrypoint(f) => {
                    c.entrypoint = Some(command_argv(f, c));
                    // Docker: ENTRYPOINT resets an inherited CMD.
                    c.cmd = None;
                }
                Kind::Cmd(f) => c.cmd = Some(command_argv(f, c)),
                Kind::Volume(v) => c.volumes.extend(v.iter().cloned()),
                Kind::StopSignal(s) => c.stop_signal = Some(s.clone()),
                Kind::Healthcheck(h) => {
                    c.healthcheck = Some(match h {
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
                    });
                }
                Kind::Onbuild(_) => {
                    return Err(anyhow::anyhow!(
                        "line {}: ONBUILD is not supported; move the instruction into the stage that needs it",
                        inst.span.line
                    )
                    .into());
                }
                _ => meta_only = false,
            }
            if meta_only {
                c.history.push(History {
                    created: self.created(),
                    created_by: x.span.logical.clone(),
                    empty_layer: true,
                });
                continue;
            }
            self.fs_step(&mut st, &x)?;
        }
        self.stages.insert(index, st);
        Ok(())
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
