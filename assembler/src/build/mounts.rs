//! `RUN --mount`: a step's mount specs, expanded and resolved to what they show (the
//! context, a stage, an image, a cache directory, a tmpfs, a secret), their part of the
//! step's cache key, and what the sandbox mounts while the step runs.
//!
//! As BuildKit: a bind mount's content is part of the key (a changed source file reruns
//! the step), a cache mount's content is not, a secret's value never is; a read-write bind
//! is a throw-away copy; an optional secret that was not given is no mount at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::cachemount;
use super::secret::Secret;
use super::tree::{copy_tree, real_path, tree_digest};
use super::{BuildError, Engine, StageState};
use crate::apkcmd::Applet;
use crate::config::ImageConfig;
use crate::containerfile::{ApkCommand, Instruction, MountSpec, MountType, ParseError, Sharing};
use crate::dockerignore::DockerIgnore;
use crate::sandbox::{Mount, MountData, RunSpec};
use crate::store::Snapshot;

/// A RUN's mounts, resolved (nothing made yet).
#[derive(Default)]
pub(super) struct StepMounts {
    items: Vec<Item>,
    /// `--network=none`.
    offline: bool,
}

struct Item {
    spec: MountSpec,
    /// Where the command sees it (absolute, clean); `None` for a secret given only as a
    /// variable.
    target: Option<String>,
    what: What,
    /// The mount's part of the cache key besides its spec (a bind's content).
    key: String,
}

enum What {
    /// `rel` (symlinks resolved inside the tree) of a tree.
    Bind {
        tree: Tree,
        rel: PathBuf,
    },
    Cache {
        id: String,
        /// What the cache starts as, for its directory's key.
        base_key: String,
        /// `from`/`source`: a tree to copy in when new.
        base: Option<(Tree, PathBuf)>,
    },
    Tmpfs,
    /// `None`: an optional secret the build was not given.
    Secret(Option<Secret>),
}

enum Tree {
    /// The build context, and whether some of what the mount shows is ignored
    /// (`.containerignore`, else `.dockerignore`, as for COPY): then it is shown through a
    /// filtered copy.
    Context { root: PathBuf, filtered: bool },
    /// An earlier stage's build root.
    Stage(PathBuf),
    /// An image, extracted when the step runs.
    Image(Box<Snapshot>),
}

/// What the sandbox gets for a step, held until it ran.
pub(super) struct Prepared {
    pub mounts: Vec<Mount>,
    pub hidden_env: Vec<(String, String)>,
    /// The secrets' values, to mask in the output.
    pub secrets: Vec<Vec<u8>>,
    _caches: Vec<cachemount::Held>,
    _temps: Vec<tempfile::TempDir>,
}

impl StepMounts {
    /// Adds the mounts to a step's cache key.
    pub fn key(&self, key: &mut Sha256) {
        for it in &self.items {
            key.update(format!("mount {} at {:?} {}\0", it.spec, it.target, it.key));
        }
    }

    /// Whether the native fast path may carry out `apk`: its mounts (and network) change
    /// nothing apk sees (else the step runs in the sandbox, where apk sees them).
    pub fn allow_native(&self, apk: &ApkCommand, config: &ImageConfig) -> bool {
        let cwd = if config.working_dir.is_empty() {
            "/"
        } else {
            &config.working_dir
        };
        apk.commands
            .iter()
            .all(|argv| self.hides_from_apk(argv, cwd).is_none())
    }

    /// Why apk served by assemble (from outside the sandbox: the native fast path or the
    /// shim) would not see what the command sees with `args` run in `cwd`: a mount over a
    /// path apk reads its configuration or database from, or installs into.
    pub fn hides_from_apk(&self, args: &[String], cwd: &str) -> Option<String> {
        let fetches = crate::apkcmd::parse(args)
            .is_ok_and(|a| matches!(a.applet, Applet::Add | Applet::Update));
        if self.offline && fetches {
            return Some(
                "apk here is run by assemble, which fetches packages from outside the sandbox                  and so cannot honour RUN --network=none; install apk-tools in the image (an                  earlier `RUN apk add apk-tools`) so apk runs inside the sandbox, or drop                  --network=none"
                    .to_owned(),
            );
        }
        let paths = apk_paths(args, cwd);
        for it in &self.items {
            let Some(target) = &it.target else { continue };
            let hit = paths
                .iter()
                .find(|(p, below)| within(p, target) || (*below && within(target, p)));
            if let Some((p, _)) = hit {
                return Some(format!(
                    "apk here is run by assemble from outside the sandbox and cannot see the \
                     RUN --mount at {target}, which covers {p}; install apk-tools in the image \
                     (an earlier `RUN apk add apk-tools`) so apk runs inside the sandbox, or \
                     mount elsewhere"
                ));
            }
        }
        None
    }
}

/// The image paths apk uses for `args` (after `apk`) in `cwd`, each with whether what is
/// below it is apk's too (its database and configuration directories).
fn apk_paths(args: &[String], cwd: &str) -> Vec<(String, bool)> {
    let Ok(a) = crate::apkcmd::parse(args) else {
        return Vec::new();
    };
    let abs = |p: &str| clean_abs(cwd, p);
    let root = abs(a.value("root").unwrap_or("/"));
    let mut paths = vec![
        (root.clone(), false),
        (join(&root, "etc/apk"), true),
        (join(&root, "lib/apk"), true),
    ];
    for opt in ["keys-dir", "repositories-file", "cache-dir"] {
        paths.extend(a.value(opt).map(|p| (abs(p), true)));
    }
    let local = |p: &&String| !p.contains("://");
    paths.extend(
        a.values("repository")
            .iter()
            .filter(local)
            .map(|p| (abs(p), true)),
    );
    paths.extend(
        a.args
            .iter()
            .filter(|p| p.contains('/') || p.ends_with(".apk"))
            .map(|p| (abs(p), false)),
    );
    paths
}

/// Whether `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn join(dir: &str, rel: &str) -> String {
    format!("{}/{rel}", dir.trim_end_matches('/'))
}

/// `p` made absolute against `cwd` and cleaned lexically (Go's `path.Join("/", cwd, p)`).
pub(super) fn clean_abs(cwd: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("{cwd}/{p}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Engine<'_> {
    /// The mounts of RUN `x` (its `--mount` flags, expanded with the step's variables).
    pub(super) fn step_mounts(
        &self,
        st: &StageState,
        x: &Instruction,
    ) -> Result<StepMounts, BuildError> {
        let mut items = Vec::new();
        for (i, flag) in x.flags.iter().enumerate() {
            if flag.name != "mount" {
                continue;
            }
            let text = flag.value.as_deref().unwrap_or("");
            let err = |message: String, hint: Option<String>| -> BuildError {
                anyhow::Error::new(ParseError::at_flag(&self.opts.file, x, i, message, hint)).into()
            };
            let spec = MountSpec::parse(text, &st.args, self.file.escape)
                .map_err(|e| err(e.message, e.hint))?;
            items.push(
                self.resolve(st, spec)
                    .map_err(|e| err(format!("{e:#}"), None))?,
            );
        }
        // Parents before what is mounted inside them.
        items.sort_by_key(|it| it.target.as_deref().map_or(0, |t| t.matches('/').count()));
        Ok(StepMounts {
            items,
            offline: x.flag("network") == Some("none"),
        })
    }

    /// What `spec` shows, and its part of the key.
    fn resolve(&self, st: &StageState, spec: MountSpec) -> anyhow::Result<Item> {
        let workdir = if st.config.working_dir.is_empty() {
            "/"
        } else {
            &st.config.working_dir
        };
        let target = match (&spec.target, spec.kind, &spec.env) {
            (Some(t), ..) => Some(clean_abs(workdir, t)),
            (None, MountType::Secret, None) => Some(format!("/run/secrets/{}", secret_id(&spec))),
            _ => None,
        };
        if target.as_deref() == Some("/") {
            anyhow::bail!("invalid mount target \"/\": a mount cannot cover the image's root");
        }
        let (what, key) = match spec.kind {
            MountType::Bind => self.resolve_bind(&spec)?,
            MountType::Cache => (self.resolve_cache(&spec, target.as_deref())?, String::new()),
            MountType::Tmpfs => (What::Tmpfs, String::new()),
            MountType::Secret => (self.resolve_secret(&spec)?, String::new()),
            MountType::Ssh => anyhow::bail!(
                "--mount=type=ssh is not supported: assemble has no SSH agent forwarding; fetch \
                 with a token given as a secret (`--mount=type=secret,id=token,env=TOKEN`), or \
                 fetch before the build and COPY the result"
            ),
        };
        Ok(Item {
            spec,
            target,
            what,
            key,
        })
    }

    fn resolve_bind(&self, spec: &MountSpec) -> anyhow::Result<(What, String)> {
        let source = spec.source.as_deref().unwrap_or("/");
        let (tree, host_root, mut key) = self.tree(spec.from.as_deref())?;
        let Some(host_root) = host_root else {
            // An image: its id names its content.
            let rel = PathBuf::from(clean_abs("/", source).trim_start_matches('/'));
            return Ok((What::Bind { tree, rel }, key));
        };
        let rel = real_path(&host_root, source)?;
        let tree = match tree {
            Tree::Context { root, .. } => {
                let ignore = DockerIgnore::read(&root)?;
                if ignore.leaves_out(&root, &rel)? {
                    anyhow::bail!("bind source `{source}`: {}", super::copy::IGNORED);
                }
                let (digest, filtered) = tree_digest(&root, &rel, &|p| ignore.is_ignored(p))?;
                key = digest;
                Tree::Context { root, filtered }
            }
            other => other,
        };
        Ok((What::Bind { tree, rel }, key))
    }

    fn resolve_cache(&self, spec: &MountSpec, target: Option<&str>) -> anyhow::Result<What> {
        let id = spec
            .id
            .clone()
            .unwrap_or_else(|| target.unwrap_or_default().to_owned());
        let (base, base_key) = match (&spec.from, &spec.source) {
            (Some(from), source) => {
                let source = source.as_deref().unwrap_or("/");
                let (tree, host_root, key) = self.tree(Some(from))?;
                let rel = match host_root {
                    Some(r) => real_path(&r, source)?,
                    None => PathBuf::from(clean_abs("/", source).trim_start_matches('/')),
                };
                let base_key = format!("from {key} {}", rel.display());
                (Some((tree, rel)), base_key)
            }
            (None, Some(_)) => anyhow::bail!(
                "source= of a cache mount is a path in its from=; give from=STAGE, or drop \
                 source="
            ),
            (None, None) if spec.mode.is_some() || spec.uid.is_some() || spec.gid.is_some() => {
                let key = format!(
                    "mode={:o} uid={} gid={}",
                    spec.mode.unwrap_or(0o755),
                    spec.uid.unwrap_or(0),
                    spec.gid.unwrap_or(0)
                );
                (None, key)
            }
            (None, None) => (None, String::new()),
        };
        Ok(What::Cache { id, base_key, base })
    }

    fn resolve_secret(&self, spec: &MountSpec) -> anyhow::Result<What> {
        let id = secret_id(spec);
        match self.opts.secrets.get(&id) {
            Some(s) => Ok(What::Secret(Some(s.clone()))),
            None if spec.required => anyhow::bail!(
                "secret {id}: not found; give it to the build with `--secret id={id},src=FILE` \
                 (or `env=VARIABLE`)"
            ),
            None => Ok(What::Secret(None)),
        }
    }

    /// The tree `from` names (the context without it), where it is on the host (`None` for
    /// an image, extracted only when the step runs) and what names its content.
    fn tree(&self, from: Option<&str>) -> anyhow::Result<(Tree, Option<PathBuf>, String)> {
        let Some(from) = from else {
            let root = self.opts.context.clone();
            return Ok((
                Tree::Context {
                    root: root.clone(),
                    filtered: false,
                },
                Some(root),
                String::new(),
            ));
        };
        let lower = from.to_ascii_lowercase();
        let stage =
            self.file.stages.iter().find(|s| {
                s.name.as_deref() == Some(lower.as_str()) || s.index.to_string() == lower
            });
        if let Some(s) = stage {
            let built = self.stages.get(&s.index).with_context(|| {
                format!(
                    "cannot mount from stage \"{from}\": the stage needs to be defined before \
                     the current one"
                )
            })?;
            let id = built.top.as_ref().map_or("scratch", |t| t.id.as_str());
            return Ok((
                Tree::Stage(built.rootfs()),
                Some(built.rootfs()),
                format!("stage {id}"),
            ));
        }
        let snap = super::from::resolve_base(self.store, from, self.opts, self.reporter)?
            .with_context(|| format!("from={from}: scratch has no files to mount"))?;
        let key = format!("image {}", snap.id);
        Ok((Tree::Image(Box::new(snap)), None, key))
    }
}

/// A secret mount's id: `id`, else `source`, else the target's file name.
pub(super) fn secret_id(spec: &MountSpec) -> String {
    spec.id
        .clone()
        .or_else(|| spec.source.clone())
        .or_else(|| {
            let t = spec.target.as_deref()?;
            Some(t.trim_end_matches('/').rsplit('/').next()?.to_owned())
        })
        .unwrap_or_default()
}

impl StepMounts {
    /// Makes what the sandbox mounts for a step running `spec` in `st`'s root: copies,
    /// extracted images, held cache directories, secrets in memory.
    pub fn prepare(
        &self,
        e: &Engine<'_>,
        st: &StageState,
        spec: &RunSpec,
    ) -> anyhow::Result<Prepared> {
        let rootfs = st.rootfs();
        let identity = e.sandbox.maps_image_ids(&rootfs, &spec.user);
        let step_ids = crate::sandbox::resolve_user(&rootfs, &spec.user)?;
        let mut p = Prepared {
            mounts: Vec::new(),
            hidden_env: Vec::new(),
            secrets: Vec::new(),
            _caches: Vec::new(),
            _temps: Vec::new(),
        };
        for it in &self.items {
            match &it.what {
                What::Bind { tree, rel } => {
                    let src = tree_path(e, tree, rel, !it.spec.readonly, &mut p._temps)?;
                    let dest = it.target.clone().unwrap_or_default();
                    p.mounts.push(Mount::Bind {
                        src,
                        dest,
                        rw: !it.spec.readonly,
                    });
                }
                What::Cache { id, base_key, base } => {
                    let held = hold_cache(e, it, id, base_key, base.as_ref(), identity)?;
                    if !identity {
                        note_owner(e, it, step_ids, "the sandbox maps one id for this step");
                    }
                    p.mounts.push(Mount::Bind {
                        src: held.path.clone(),
                        dest: it.target.clone().unwrap_or_default(),
                        rw: !it.spec.readonly,
                    });
                    p._caches.push(held);
                }
                What::Tmpfs => p.mounts.push(Mount::Tmpfs {
                    dest: it.target.clone().unwrap_or_default(),
                    size: it.spec.size,
                    ro: it.spec.readonly,
                }),
                What::Secret(None) => {}
                What::Secret(Some(s)) => {
                    // bubblewrap writes the file as the id it runs as: the step's user.
                    note_owner(
                        e,
                        it,
                        step_ids,
                        "bubblewrap makes the file as the step's user",
                    );
                    p.add_secret(it, s)?;
                }
            }
        }
        Ok(p)
    }
}

impl Prepared {
    /// `spec` with the mounts and hidden variables (which replace variables of the same
    /// names, as a secret's `env` does in BuildKit).
    pub fn spec(&self, spec: &RunSpec) -> RunSpec {
        let hidden = |kv: &&String| {
            let name = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            !self.hidden_env.iter().any(|(k, _)| k == name)
        };
        RunSpec {
            env: spec.env.iter().filter(hidden).cloned().collect(),
            mounts: self.mounts.clone(),
            hidden_env: self.hidden_env.clone(),
            ..spec.clone()
        }
    }

    fn add_secret(&mut self, it: &Item, s: &Secret) -> anyhow::Result<()> {
        self.secrets.push(s.bytes().to_vec());
        if let Some(dest) = &it.target {
            let data = MountData::new(s.bytes()).context("failed to hold a secret in memory")?;
            self.mounts.push(Mount::Data {
                dest: dest.clone(),
                data: Arc::new(data),
                mode: it.spec.mode.unwrap_or(0o400),
            });
        }
        if let Some(name) = &it.spec.env {
            let value = String::from_utf8(s.bytes().to_vec()).with_context(|| {
                format!(
                    "secret {}: env={name} needs a UTF-8 value",
                    secret_id(&it.spec)
                )
            })?;
            self.hidden_env.push((name.clone(), value));
        }
        Ok(())
    }
}

/// What a copy leaves out, given a path relative to what is copied.
type Skip = Box<dyn Fn(&Path) -> bool>;

/// The host path a bind shows: the tree's own, or a copy when the mount is read-write (a
/// throw-away copy, as BuildKit) or shows a filtered context.
fn tree_path(
    e: &Engine<'_>,
    tree: &Tree,
    rel: &Path,
    rw: bool,
    temps: &mut Vec<tempfile::TempDir>,
) -> anyhow::Result<PathBuf> {
    let (root, skip): (PathBuf, Skip) = match tree {
        Tree::Context { root, filtered } => {
            let ignore = DockerIgnore::read(root)?;
            let base = rel.to_path_buf();
            if !rw && !filtered {
                return Ok(root.join(rel));
            }
            (
                root.clone(),
                Box::new(move |p: &Path| ignore.is_ignored(&base.join(p))),
            )
        }
        Tree::Stage(root) if !rw => return Ok(root.join(rel)),
        Tree::Stage(root) => (root.clone(), Box::new(|_: &Path| false)),
        Tree::Image(snap) => {
            let tmp = e.store.tempdir("mount-")?;
            super::from::materialize(e.store, snap, tmp.path())?;
            let real = real_path(tmp.path(), &rel.display().to_string())?;
            let path = tmp.path().join(real);
            temps.push(tmp);
            return Ok(path);
        }
    };
    let tmp = e.store.tempdir("mount-")?;
    let copy = tmp.path().join("m");
    copy_tree(&root.join(rel), &copy, &*skip)?;
    temps.push(tmp);
    Ok(copy)
}

/// The cache directory of `it`, held, owned as the command should see it: by the mount's
/// `uid`/`gid` where the image's ids are mapped, else by us (seen as the step's user).
fn hold_cache(
    e: &Engine<'_>,
    it: &Item,
    id: &str,
    base_key: &str,
    base: Option<&(Tree, PathBuf)>,
    identity: bool,
) -> anyhow::Result<cachemount::Held> {
    let sharing = it.spec.sharing.unwrap_or(Sharing::Shared);
    let make = |new: &Path| -> anyhow::Result<()> {
        let Some((tree, rel)) = base else {
            fs_err::create_dir(new)?;
            let mode = it.spec.mode.unwrap_or(0o755);
            rustix::fs::chmod(new, rustix::fs::Mode::from_raw_mode(mode))?;
            return Ok(());
        };
        // `temps` (an extracted image) lives until the copy is made.
        let mut temps = Vec::new();
        let src = tree_path(e, tree, rel, false, &mut temps)?;
        copy_tree(&src, new, &|_| false)
    };
    let held = cachemount::hold(e.store.root(), id, base_key, sharing, &make)?;
    let (uid, gid) = if identity {
        (it.spec.uid.unwrap_or(0), it.spec.gid.unwrap_or(0))
    } else {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    };
    std::os::unix::fs::lchown(&held.path, Some(uid), Some(gid))
        .context("failed to set the owner of a cache mount")?;
    Ok(held)
}

/// Says so (and `why`) when the sandbox shows `it` owned by `seen_as` rather than its
/// `uid`/`gid`.
fn note_owner(e: &Engine<'_>, it: &Item, seen_as: (u32, u32), why: &str) {
    let wanted = (it.spec.uid.unwrap_or(0), it.spec.gid.unwrap_or(0));
    if wanted != seen_as {
        e.reporter.line(&format!(
            "note: the {} mount at {} is owned by {}:{} in the step, not uid={},gid={}: {why}",
            it.spec.kind.name(),
            it.target.as_deref().unwrap_or("(env)"),
            seen_as.0,
            seen_as.1,
            wanted.0,
            wanted.1
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_made_absolute_against_the_workdir() {
        assert_eq!(clean_abs("/app", "cache"), "/app/cache");
        assert_eq!(clean_abs("/app", "/x/../y/"), "/y");
        assert_eq!(clean_abs("/", "../.."), "/");
    }

    #[test]
    fn apk_paths_cover_its_state_and_named_files() {
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let m = StepMounts {
            items: vec![Item {
                spec: MountSpec::check_static("type=tmpfs,target=/etc/apk").unwrap(),
                target: Some("/etc/apk".into()),
                what: What::Tmpfs,
                key: String::new(),
            }],
            offline: false,
        };
        assert!(m.hides_from_apk(&args("add curl"), "/").is_some());
        assert!(
            m.hides_from_apk(&args("--root /sys add curl"), "/")
                .is_none()
        );
        let at = |t: &str| StepMounts {
            items: vec![Item {
                spec: MountSpec::check_static("type=tmpfs,target=/x").unwrap(),
                target: Some(t.into()),
                what: What::Tmpfs,
                key: String::new(),
            }],
            offline: false,
        };
        assert!(
            at("/var/cache/apk")
                .hides_from_apk(&args("add curl"), "/")
                .is_none()
        );
        assert!(
            at("/etc/apk/keys")
                .hides_from_apk(&args("add curl"), "/")
                .is_some()
        );
        assert!(
            at("/pkgs")
                .hides_from_apk(&args("add --allow-untrusted /pkgs/a.apk"), "/")
                .is_some()
        );
        assert!(
            at("/repo")
                .hides_from_apk(&args("add -X /repo/main a"), "/")
                .is_some()
        );
        assert!(
            at("/repo")
                .hides_from_apk(&args("add -X https://x/repo a"), "/")
                .is_none()
        );
        assert!(
            at("/sysroot")
                .hides_from_apk(&args("add --root sysroot a"), "/")
                .is_some()
        );
        assert!(at("/tmp").hides_from_apk(&args("add a"), "/").is_none());
        let offline = StepMounts {
            offline: true,
            ..StepMounts::default()
        };
        assert!(offline.hides_from_apk(&args("add a"), "/").is_some());
        assert!(offline.hides_from_apk(&args("info a"), "/").is_none());
    }
}
