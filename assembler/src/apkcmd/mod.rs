//! `apk` as apk-tools 2.14 runs it, carried out natively on a build step's root: the
//! options, verbs and output of `add`, `del`, `update`, `info`, `search` and `version`.
//!
//! One implementation serves both ways a RUN reaches apk: the exact-line fast path (a RUN
//! that is only apk commands, run here with the output going to the step's log) and the
//! shim (`crate::apkshim`, any other RUN of an image without apk, the output relayed to the
//! caller's stdout and stderr). Both use the step's [`Host`]: its root, index memo,
//! sandbox for install scripts and owner handling, so the fast path is an optimisation
//! with the same result.
//!
//! Paths behave as for apk run inside the image: `-X`, `--keys-dir`, `--repositories-file`,
//! `--cache-dir` and `--root` name paths in the image (relative ones from the caller's
//! working directory), resolved without following a symlink or `..` out of it.

mod args;
mod change;
mod info;
mod listing;
mod paths;
mod progress;
mod query;

use std::path::{Path, PathBuf};

pub use args::{Applet, Args, ArgsError, parse};

use crate::packages::{ImageFetcher, IndexMemo};
use crate::sandbox::Sandbox;

/// What a step lends the apk commands it runs.
pub struct Host<'a> {
    /// The step's root filesystem.
    pub rootfs: &'a Path,
    /// Runs install scripts and triggers.
    pub sandbox: &'a dyn Sandbox,
    /// Scripts get the network (`--network host`).
    pub network: bool,
    /// Indexes fetched in this step, shared by its apk commands.
    pub indexes: &'a IndexMemo,
    /// Build time of `--virtual` packages.
    pub source_date: u64,
    /// Set owners on disk (the sandbox maps the image's ids and we are root); otherwise
    /// owners live in the installed database and the layer's owner table.
    pub chown: bool,
    /// Shows download progress (the fast path; the shim's caller has no terminal of ours).
    pub reporter: Option<&'a dyn crate::build::Reporter>,
}

/// Where an apk command's output goes.
pub struct Out<'a> {
    /// Its standard output.
    pub stdout: &'a dyn Fn(&[u8]),
    /// Its standard error.
    pub stderr: &'a dyn Fn(&[u8]),
}

impl Out<'_> {
    fn line(&self, text: &str) {
        (self.stdout)(format!("{text}\n").as_bytes());
    }

    /// Text that carries its own line ends.
    fn line_raw(&self, text: &str) {
        (self.stdout)(text.as_bytes());
    }

    fn error(&self, text: &str) {
        (self.stderr)(format!("ERROR: {text}\n").as_bytes());
    }
}

/// One apk invocation: the arguments after `apk`, the caller's working directory in the
/// image, and its uid there.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub args: &'a [String],
    pub cwd: &'a str,
    pub uid: u32,
}

/// Runs one apk command; returns its exit code (apk's: the number of errors, 1 for usage
/// errors, 99 at most).
pub fn run(host: &Host<'_>, inv: Invocation<'_>, out: &Out<'_>) -> i32 {
    let args = match parse(inv.args) {
        Ok(a) => a,
        Err(ArgsError::Print(text)) => {
            (out.stdout)(text.as_bytes());
            return 0;
        }
        Err(ArgsError::Usage(text)) => {
            (out.stderr)(text.as_bytes());
            return 1;
        }
    };
    let cx = match Cx::new(host, &args, inv, out) {
        Ok(cx) => cx,
        Err(Failure(code)) => return code,
    };
    let code = match args.applet {
        Applet::Add => change::add(&cx),
        Applet::Del => change::del(&cx),
        Applet::Update => change::update(&cx),
        Applet::Info => query::info(&cx),
        Applet::Search => query::search(&cx),
        Applet::Version => query::version(&cx),
    };
    code.clamp(0, 99)
}

/// What the `apk add` of `inv` would install from the current indexes, changing nothing
/// (a step's cache key): `(name, version, C:)` of every package the root would hold. The
/// error is what the command would print.
pub fn plan_add(
    host: &Host<'_>,
    inv: Invocation<'_>,
) -> Result<Vec<(String, String, String)>, String> {
    let args = parse(inv.args).map_err(|e| e.to_string())?;
    if args.applet != Applet::Add {
        return Err("not an apk add".into());
    }
    let said = std::cell::RefCell::new(Vec::new());
    let keep = |b: &[u8]| said.borrow_mut().extend_from_slice(b);
    let out = Out {
        stdout: &|_| {},
        stderr: &keep,
    };
    let text = || String::from_utf8_lossy(&said.borrow()).trim().to_owned();
    let cx = Cx::new(host, &args, inv, &out).map_err(|_| text())?;
    change::plan(&cx).map_err(|Failure(_)| text())
}

/// A command that stopped with this exit code (its error already printed).
struct Failure(i32);

/// One command's context: the host, its parsed line, and where it acts.
struct Cx<'a> {
    host: &'a Host<'a>,
    args: &'a Args,
    inv: Invocation<'a>,
    out: &'a Out<'a>,
    /// The root it acts on (`--root`, else the step's), on the host.
    target: PathBuf,
    verbosity: i32,
}

impl<'a> Cx<'a> {
    fn new(
        host: &'a Host<'a>,
        args: &'a Args,
        inv: Invocation<'a>,
        out: &'a Out<'a>,
    ) -> Result<Self, Failure> {
        let mut cx = Self {
            host,
            args,
            inv,
            out,
            target: host.rootfs.to_path_buf(),
            verbosity: args.verbosity(),
        };
        if let Some(root) = args.value("root") {
            let create = args.has("initdb");
            cx.target = paths::image_dir(host.rootfs, inv.cwd, root, "--root", create)
                .map_err(|msg| cx.fail(&msg))?;
        }
        Ok(cx)
    }

    /// Prints `msg` as apk's `ERROR:` and gives exit code 1.
    fn fail(&self, msg: &str) -> Failure {
        self.out.error(msg);
        Failure(1)
    }

    /// apk's `apk_message`: shown unless `-q`.
    fn message(&self, text: &str) {
        if self.verbosity > 0 {
            self.out.line(text);
        }
    }

    /// apk's `apk_warning`: shown unless `-q`, on stderr.
    fn warning(&self, text: &str) {
        if self.verbosity > 0 {
            (self.out.stderr)(format!("WARNING: {text}\n").as_bytes());
        }
    }

    /// Writers need the root's user: apk opens its database for writing only as root.
    fn require_root(&self) -> Result<(), Failure> {
        if self.inv.uid == 0 {
            return Ok(());
        }
        self.out.error("Unable to lock database: Permission denied");
        self.out
            .error("Failed to open apk database: Permission denied");
        Err(Failure(99))
    }

    fn fetcher(&self) -> ImageFetcher<'a> {
        let f = ImageFetcher::new(self.host.rootfs).remembering(self.host.indexes);
        match self.host.reporter {
            Some(r) => f.reporting(r),
            None => f,
        }
    }

    /// The installer's options for this command line (repositories, keys, cache, flags).
    fn options<'o>(&self, o: &mut apk::install::InstallOptions<'o>) -> Result<(), Failure> {
        let a = self.args;
        let cwd = self.inv.cwd;
        o.repositories.extra = a
            .values("repository")
            .iter()
            .map(|r| paths::repository_url(cwd, r))
            .collect();
        if let Some(file) = a.value("repositories-file") {
            let text = paths::read_image_file(self.host.rootfs, cwd, file)
                .map_err(|msg| self.fail(&msg))?;
            o.repositories.ignore_root_repositories = true;
            let mut from_file: Vec<String> = text
                .lines()
                .filter_map(apk::install::Repository::parse_line)
                .map(|r| match r.tag {
                    Some(t) => format!("@{t} {}", paths::repository_url(cwd, &r.url)),
                    None => paths::repository_url(cwd, &r.url),
                })
                .collect();
            from_file.append(&mut o.repositories.extra);
            o.repositories.extra = from_file;
        }
        if let Some(k) = a.value("keys-dir") {
            o.repositories.keys_dir = Some(self.keys_dir(k)?);
        }
        o.repositories.arch = a.value("arch").map(str::to_owned);
        o.allow_untrusted = a.has("allow-untrusted");
        if let (Some(dir), false) = (a.value("cache-dir"), a.has("no-cache")) {
            let dir = paths::image_dir(self.host.rootfs, cwd, dir, "--cache-dir", true)
                .map_err(|msg| self.fail(&msg))?;
            o.cache_dir = Some(dir);
        }
        o.update_cache = a.has("update-cache") || a.has("force-refresh");
        o.source_date = self.host.source_date;
        o.apply.devices = apk::rootfs::DevicePolicy::CreateOrSkip;
        o.apply.chown = self.host.chown && !a.has("no-chown");
        Ok(())
    }

    /// `--keys-dir`: an absolute path is in the image, a relative one in `--root` (apk
    /// opens it from the root's descriptor).
    fn keys_dir(&self, k: &str) -> Result<PathBuf, Failure> {
        let (base, cwd) = if k.starts_with('/') || self.args.value("root").is_none() {
            (self.host.rootfs, self.inv.cwd)
        } else {
            (self.target.as_path(), "/")
        };
        paths::image_dir(base, cwd, k, "--keys-dir", false).map_err(|msg| self.fail(&msg))
    }
}
