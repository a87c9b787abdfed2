//! The build engine: runs a Containerfile's stages step by step, keeping a snapshot after
//! every RUN, COPY and ADD, reusing cached steps, and keeping a failed RUN's partial state.

// A build stops at its first error, which is moved once: keep its fields flat.
#![allow(clippy::result_large_err)]

mod copy;
mod from;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{Healthcheck, History, ImageConfig, rfc3339};
use crate::containerfile::{
    self, BuildArgs, CommandForm, Containerfile, Kind, Platform, StageArgs,
};
use crate::layer::{self, Manifest};
use crate::sandbox::{RunSpec, Sandbox};
use crate::store::{Snapshot, SnapshotMeta, Store};

pub use from::{materialize, materialize_recording};

/// Progress and command output (the binary prints; the library never does).
pub trait Reporter {
    /// A status line (`Step 1/4 : …`, `--> Snapshot created: @…`).
    fn line(&self, line: &str);
    /// Live output of a command.
    fn output(&self, bytes: &[u8]);
    /// A handle showing the progress of a transfer of `total` bytes (when known) described
    /// by `what` (`Pulling …`, `Pushing …`, `Compressing layer …`); silent by default.
    fn progress(&self, what: &str, total: Option<u64>) -> Box<dyn crate::progress::Progress> {
        let _ = (what, total);
        Box::new(crate::progress::Silent)
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Containerfile.
    pub file: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// `-t` names.
    pub tags: Vec<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--network host`.
    pub network: bool,
    /// SOURCE_DATE_EPOCH: clamps layer mtimes and sets `created`.
    pub source_date: Option<u64>,
    /// The current time (for `created` without SOURCE_DATE_EPOCH).
    pub now: u64,
    /// Verify TLS when pulling (false: plain HTTP, for local registries).
    pub tls_verify: bool,
    /// Registry user and password.
    pub registry_creds: Option<(String, String)>,
    /// `--init`: make the image's program a supervised service of this init.
    pub init: Option<crate::init::Init>,
}

/// Build errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A step failed; its partial state is a snapshot.
    #[error(
        "step {step} `{instruction}` failed ({status})\nMost recent snapshot is @{snapshot}\n{look}"
    )]
    StepFailed {
        /// Step number.
        step: usize,
        /// The instruction.
        instruction: String,
        /// Exit status text.
        status: String,
        /// The snapshot with the partial state.
        snapshot: String,
        /// The `:failed` tag.
        tag: String,
        /// The store root.
        store: String,
        /// How to look inside: the command opening a shell there, or, when the image has
        /// no shell, unpacking it.
        look: String,
    },
    /// Anything else, with its context.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The final snapshot (tagged with every `-t`).
    pub snapshot: Snapshot,
}

struct StageState {
    root: tempfile::TempDir,
    from: Option<String>,
    manifest: Manifest,
    /// Image owners of the root's paths (see [`layer::Owners`]).
    owners: layer::Owners,
    top: Option<Snapshot>,
    config: ImageConfig,
    args: StageArgs,
}

impl StageState {
    fn rootfs(&self) -> PathBuf {
        self.root.path().join("rootfs")
    }
}

/// Builds per `opts`.
pub fn build(
    store: &Store,
    sandbox: &dyn Sandbox,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Built, BuildError> {
    use anyhow::Context as _;
    let file = containerfile::parse_file(&opts.file)
        .with_context(|| format!("failed to read `{}`", opts.file.display()))?;
    for n in &file.notes {
        reporter.line(&format!("note: {n}"));
    }
    let mut bargs = BuildArgs::new(
        opts.build_args.clone(),
        &Platform::host(),
        &Platform::host(),
    );
    bargs
        .declare_globals(&file)
        .map_err(|e| anyhow::anyhow!("{}: global ARG: {e}", opts.file.display()))?;
    let target = match &opts.target {
        Some(t) => {
            file.stage(t)
                .with_context(|| {
                    format!("--target `{t}`: no such stage in `{}`", opts.file.display())
                })?
                .index
        }
        None => file.stages.len() - 1,
    };
    let gv = bargs.global_vars();
    let needed = file.needed_stages(target, &|s| {
        containerfile::expand_word(s, &gv, file.escape).unwrap_or_else(|_| s.to_string())
    });
    let total: usize = needed
        .iter()
        .map(|&i| file.stages[i].instructions.len() + 1)
        .sum();
    let mut engine = Engine {
        store,
        sandbox,
        opts,
        reporter,
        file: &file,
        step: 0,
        total,
        stages: BTreeMap::new(),
        failed_tag: format!(
            "{}:failed",
            opts.tags
                .first()
                .map(|t| crate::store::normalize_tag(t))
                .and_then(|t| t.rsplit_once(':').map(|(n, _)| n.to_string()))
                .unwrap_or_else(|| "unnamed".into())
        ),
    };
    for &i in &needed {
        engine.build_stage(i, &bargs)?;
    }
    let mut state = engine
        .stages
        .remove(&target)
        .context("target stage was not built")?;
    if let Some(init) =
        crate::init::requested(opts.init, &state.config).map_err(anyhow::Error::from)?
    {
        engine.init_step(&mut state, init)?;
    }
    let top = engine.finish_config(&state)?;
    for t in &opts.tags {
        store
            .set_tag(t, &top.id)
            .context("failed to tag the image")?;
    }
    Ok(Built { snapshot: top })
}

struct Engine<'a> {
    store: &'a Store,
    sandbox: &'a dyn Sandbox,
    opts: &'a BuildOptions,
    reporter: &'a dyn Reporter,
    file: &'a Containerfile,
    step: usize,
    total: usize,
    stages: BTreeMap<usize, StageState>,
    failed_tag: String,
}

impl Engine<'_> {
    fn created(&self) -> String {
        rfc3339(self.opts.source_date.unwrap_or(self.opts.now))
    }

    fn announce(&mut self, text: &str) {
        self.step += 1;
        self.reporter
            .line(&format!("Step {}/{} : {text}", self.step, self.total));
    }

    fn build_stage(&mut self, index: usize, bargs: &BuildArgs) -> anyhow::Result<(), BuildError> {
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

    /// RUN, COPY or ADD: cache lookup, execution, snapshot.
    fn fs_step(
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

    /// Prints the snapshot; on failure tags it `:failed` and stops the build, else records
    /// the cache entry and moves the stage on.
    fn finish_step(
        &self,
        st: &mut StageState,
        snap: Snapshot,
        failure: Option<String>,
        key: &str,
        text: String,
    ) -> Result<(), BuildError> {
        use anyhow::Context as _;
        self.reporter
            .line(&format!("--> Snapshot created: @{}", snap.id));
        if let Some(status) = failure {
            self.store
                .set_tag(&self.failed_tag, &snap.id)
                .context("failed to tag the failed build")?;
            let store = self.store.root().display().to_string();
            let (tag, id) = (&self.failed_tag, &snap.id);
            // `--entrypoint`: an ENTRYPOINT set before the failing step would otherwise run
            // with the shell as its argument.
            let has_shell = apk::rootfs::RootDir::open(st.rootfs())
                .and_then(|r| r.exists("bin/sh"))
                .unwrap_or(false);
            let look = if has_shell {
                format!(
                    "Open a shell there with: assemble --store {store} run -it --entrypoint /bin/sh {tag}@{id}"
                )
            } else {
                format!(
                    "The image has no /bin/sh to open a shell in; unpack it to look inside with: assemble --store {store} export {tag}@{id} rootfs:failed-rootfs"
                )
            };
            return Err(BuildError::StepFailed {
                step: self.step,
                instruction: text,
                status,
                snapshot: snap.id,
                tag: self.failed_tag.clone(),
                store,
                look,
            });
        }
        self.store
            .cache_put(key, &snap.id)
            .context("failed to record the step cache")?;
        st.top = Some(snap);
        Ok(())
    }

    /// What `apk add` would install from the current indexes, as cache key bytes; the
    /// reporter says what it found. A failure is keyed too (the step then runs and reports
    /// it for real).
    fn apk_plan(
        &self,
        rootfs: &Path,
        cmd: &containerfile::ApkCommand,
        indexes: &crate::packages::IndexMemo,
    ) -> Vec<u8> {
        let fetcher = crate::packages::ImageFetcher::new(rootfs)
            .reporting(self.reporter)
            .remembering(indexes);
        let mut o = apk::install::InstallOptions::new(
            &fetcher,
            &apk::install::NoScripts,
            &apk::install::NoReporter,
        );
        let planned = image_keys_dir(rootfs, cmd).and_then(|keys| {
            self.apk_options(&mut o, keys, cmd);
            let atoms = apk::dep::Dependency::parse_list(&cmd.packages.join(" "))
                .map_err(|e| e.to_string())?;
            apk::install::plan_add(rootfs, &atoms, &o).map_err(|e| e.to_string())
        });
        match planned {
            Ok(r) => {
                let names: Vec<String> = r
                    .planned
                    .iter()
                    .map(|(n, v, _)| format!("{n}-{v}"))
                    .collect();
                let shown = if names.len() > 8 {
                    format!("{}, … ({} in all)", names[..8].join(", "), names.len())
                } else {
                    names.join(", ")
                };
                self.reporter
                    .line(&format!("--> The repositories resolve this to: {shown}"));
                r.planned
                    .iter()
                    // A `--virtual` package (no checksum) is versioned by the build time:
                    // keyed by name only, or every build without SOURCE_DATE_EPOCH misses.
                    .map(|(n, v, c)| match c.is_empty() {
                        true => format!("{n}\n"),
                        false => format!("{n} {v} {c}\n"),
                    })
                    .collect::<String>()
                    .into_bytes()
            }
            Err(e) => {
                self.reporter
                    .line(&format!("--> Could not resolve ahead ({e}); the step runs"));
                format!("unresolved: {e}").into_bytes()
            }
        }
    }

    /// The installer options of `cmd` (repositories, keys, flags) for `rootfs`.
    fn apk_options(
        &self,
        o: &mut apk::install::InstallOptions<'_>,
        keys_dir: Option<PathBuf>,
        cmd: &containerfile::ApkCommand,
    ) {
        o.repositories.extra = cmd.repositories.clone();
        o.repositories.keys_dir = keys_dir;
        o.allow_untrusted = cmd.allow_untrusted;
        o.virtual_name = cmd.virtual_name.clone();
        o.update_cache = cmd.update;
        o.source_date = self.opts.source_date.unwrap_or(self.opts.now);
    }

    /// `apk add`/`apk del` with our installer; `Some(reason)` when it failed.
    fn run_apk(
        &self,
        rootfs: &Path,
        cmd: &containerfile::ApkCommand,
        network: bool,
        indexes: &crate::packages::IndexMemo,
        log: &mut Vec<u8>,
    ) -> anyhow::Result<Option<String>> {
        use crate::packages::{EventLines, ImageFetcher, SandboxScripts};
        let buf = std::cell::RefCell::new(std::mem::take(log));
        let reporter = self.reporter;
        let out = |b: &[u8]| {
            reporter.output(b);
            buf.borrow_mut().extend_from_slice(b);
        };
        let fetcher = ImageFetcher::new(rootfs)
            .reporting(self.reporter)
            .remembering(indexes);
        let scripts = SandboxScripts {
            sandbox: self.sandbox,
            output: &out,
            network,
        };
        let keys = match image_keys_dir(rootfs, cmd) {
            Ok(keys) => keys,
            Err(msg) => {
                out(format!("ERROR: {msg}\n").as_bytes());
                *log = buf.into_inner();
                return Ok(Some(format!("apk: {msg}")));
            }
        };
        let events = EventLines(&out);
        let mut o = apk::install::InstallOptions::new(&fetcher, &scripts, &events);
        self.apk_options(&mut o, keys, cmd);
        o.apply.devices = apk::rootfs::DevicePolicy::CreateOrSkip;
        // Owners are kept in the owner table (from the database below), not on disk.
        o.apply.chown = false;
        let result = match cmd.action {
            containerfile::ApkAction::Add => {
                let atoms = apk::dep::Dependency::parse_list(&cmd.packages.join(" "))?;
                apk::install::add(rootfs, &atoms, &o)
            }
            containerfile::ApkAction::Del => apk::install::del(rootfs, &cmd.packages, &o),
            _ => Ok(apk::install::InstallReport::default()),
        };
        let failure = match result {
            Ok(r) => {
                out(format!(
                    "OK: {} installed, {} upgraded, {} removed (native installer)\n",
                    r.installed.len(),
                    r.upgraded.len(),
                    r.removed.len()
                )
                .as_bytes());
                None
            }
            Err(e) => {
                out(format!("ERROR: {e}\n").as_bytes());
                Some(format!("apk: {e}"))
            }
        };
        *log = buf.into_inner();
        Ok(failure)
    }

    /// Back to the caller owning the whole build root (after a step that ran with the image's
    /// ids mapped), which the next step's one-id sandbox and our own writes expect.
    fn chown_back(&self, st: &mut StageState) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let host = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        layer::chown_to_host(&st.rootfs(), &mut st.manifest, host)
            .context("failed to give the build root back to the build user")?;
        Ok(())
    }

    /// Keeps the step's result. `on_disk`: the step ran with the image's ids mapped, so disk
    /// owners are image owners; else they are translated per [`layer::OwnerMap`].
    fn snapshot(
        &self,
        st: &mut StageState,
        text: &str,
        log: &[u8],
        on_disk: bool,
    ) -> anyhow::Result<Snapshot> {
        let run_step = text.starts_with("RUN");
        use anyhow::Context as _;
        let rootfs = st.rootfs();
        let after = layer::scan(&rootfs).context("failed to scan the build root")?;
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
    fn init_step(&self, st: &mut StageState, init: crate::init::Init) -> anyhow::Result<()> {
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
    fn finish_config(&self, st: &StageState) -> anyhow::Result<Snapshot> {
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

/// Exec form as is; shell form through SHELL.
fn command_argv(f: &CommandForm, c: &ImageConfig) -> Vec<String> {
    match f {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut a = c.shell();
            a.push(s.clone());
            a
        }
    }
}

/// `--keys-dir DIR` of an `apk add`, which names a directory inside the image (as a real apk
/// run there), as the host path the installer reads. The installer reads it as a host path,
/// so `..` and symlinks along it are refused rather than followed out of the build root.
/// The message names the image's path, not the build root's temporary one, and the usual
/// cause: a FROM scratch image has no keys until a COPY puts them there.
fn image_keys_dir(
    rootfs: &Path,
    cmd: &containerfile::ApkCommand,
) -> Result<Option<PathBuf>, String> {
    use std::path::Component;
    let Some(k) = cmd.keys_dir.as_ref() else {
        return Ok(None);
    };
    let mut path = rootfs.to_path_buf();
    for c in Path::new(k).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                path.push(name);
                match fs_err::symlink_metadata(&path) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(format!(
                            "--keys-dir `{k}` goes through a symbolic link in the image; \
                             name the directory it points to"
                        ));
                    }
                    Ok(m) if m.is_dir() => {}
                    _ => {
                        return Err(format!(
                            "--keys-dir `{k}` is not a directory in the image; COPY the \
                             repository's public keys there in an earlier step (e.g. \
                             `COPY keys/ {k}`)"
                        ));
                    }
                }
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!(
                    "--keys-dir `{k}`: `..` is not allowed; name the directory from /"
                ));
            }
        }
    }
    Ok(Some(path))
}
