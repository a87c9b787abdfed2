//! The seams `apk::install` needs from a program, for apk commands carried out natively on
//! a build step's root (`crate::apkcmd`): an HTTP [`Fetcher`] and a [`ScriptRunner`] that
//! runs install scripts and triggers in the build sandbox.
//!
//! Local repository paths (in `/etc/apk/repositories` or `-X /path`) name paths *inside the
//! image*, as they would for a real apk running there, so they are read through the image
//! root, never from the host.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use apk::install::{FetchError, Fetcher, ScriptJob, ScriptOutcome, ScriptRunner};
use apk::rootfs::RootDir;

use crate::sandbox::{RunSpec, Sandbox};

/// Fetches `http(s)://` with reqwest and local paths from inside the image root.
pub struct ImageFetcher<'a> {
    /// The image root.
    pub root: &'a Path,
    /// HTTP client.
    pub client: reqwest::blocking::Client,
    /// Shows the progress of HTTP downloads.
    pub reporter: Option<&'a dyn crate::build::Reporter>,
    /// Indexes already fetched for this step.
    pub indexes: Option<&'a IndexMemo>,
}

/// The indexes a step's `apk add` was planned from (its cache key), kept for its install:
/// each index is fetched once per step, and the step installs from what it was keyed on.
#[derive(Debug, Default)]
pub struct IndexMemo(RefCell<HashMap<String, Rc<[u8]>>>);

impl<'a> ImageFetcher<'a> {
    /// A fetcher for `root`.
    pub fn new(root: &'a Path) -> Self {
        Self {
            root,
            client: reqwest::blocking::Client::new(),
            reporter: None,
            indexes: None,
        }
    }

    /// The same fetcher, answering index URLs from `memo` (filled on first use).
    pub fn remembering(mut self, memo: &'a IndexMemo) -> Self {
        self.indexes = Some(memo);
        self
    }

    /// The same fetcher, showing download progress through `reporter`.
    pub fn reporting(mut self, reporter: &'a dyn crate::build::Reporter) -> Self {
        self.reporter = Some(reporter);
        self
    }
}

impl Fetcher for ImageFetcher<'_> {
    fn open(&self, url: &str) -> Result<Box<dyn Read>, FetchError> {
        let Some(memo) = self.indexes.filter(|_| url.ends_with("/APKINDEX.tar.gz")) else {
            return self.fetch(url);
        };
        if let Some(bytes) = memo.0.borrow().get(url) {
            return Ok(Box::new(std::io::Cursor::new(Rc::clone(bytes))));
        }
        let mut bytes = Vec::new();
        self.fetch(url)?
            .take(apk::index::MAX_INDEX_SIZE)
            .read_to_end(&mut bytes)
            .map_err(|source| FetchError::Io {
                url: url.to_owned(),
                source,
            })?;
        let bytes: Rc<[u8]> = bytes.into();
        memo.0
            .borrow_mut()
            .insert(url.to_owned(), Rc::clone(&bytes));
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }
}

impl ImageFetcher<'_> {
    fn fetch(&self, url: &str) -> Result<Box<dyn Read>, FetchError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            let failed = |reason: String| FetchError::Failed {
                url: url.to_owned(),
                reason,
            };
            let resp = self
                .client
                .get(url)
                .send()
                .map_err(|e| failed(e.to_string()))?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(FetchError::NotFound {
                    url: url.to_owned(),
                });
            }
            let resp = resp.error_for_status().map_err(|e| failed(e.to_string()))?;
            if let Some(r) = self.reporter {
                let p = r.progress(&format!("Fetching {url}"), resp.content_length());
                return Ok(Box::new(crate::progress::ProgressRead::new(resp, p)));
            }
            return Ok(Box::new(resp));
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.contains("://") {
            return Err(FetchError::Unsupported {
                url: url.to_owned(),
                supported: "http(s):// URLs and paths inside the image",
            });
        }
        let root = RootDir::open(self.root).map_err(|e| FetchError::Failed {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        match root.open_file(path) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.is_not_found() => Err(FetchError::NotFound {
                url: url.to_owned(),
            }),
            Err(e) => Err(FetchError::Failed {
                url: url.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Runs scripts inside the image with the sandbox, as apk does in its chroot: the script is
/// written to `lib/apk/exec/`, run with its arguments, then removed.
pub struct SandboxScripts<'a> {
    /// The sandbox.
    pub sandbox: &'a dyn Sandbox,
    /// Where script output goes.
    pub output: &'a dyn Fn(&[u8]),
    /// Network for scripts (`--network host`).
    pub network: bool,
}

impl ScriptRunner for SandboxScripts<'_> {
    fn run(&self, job: &ScriptJob<'_>) -> ScriptOutcome {
        let Ok(root) = RootDir::open(job.root) else {
            return ScriptOutcome::NotRun("the image root cannot be opened".into());
        };
        if let Some(why) = missing_interpreter(job.root, job.script) {
            return ScriptOutcome::NotRun(why);
        }
        let rel = format!("lib/apk/exec/{}", job.exec_name());
        let written = root.create_dir_all("lib/apk/exec", 0o755).and_then(|()| {
            let mut f = root.create_file(&rel, 0o755)?;
            std::io::Write::write_all(&mut f, job.script).map_err(|e| {
                apk::rootfs::RootfsError::EntryName {
                    name: format!("{rel}: {e}"),
                    reason: "could not be written",
                }
            })
        });
        if let Err(e) = written {
            return ScriptOutcome::NotRun(format!("cannot write the script: {e}"));
        }
        let mut argv = vec![format!("/{rel}")];
        argv.extend(job.args.iter().cloned());
        let spec = RunSpec {
            argv,
            // apk's `apk_db_run_script` environment.
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            workdir: "/".into(),
            user: String::new(),
            network: self.network,
            interactive: false,
            ..RunSpec::default()
        };
        (self.output)(format!("Executing {}\n", job.exec_name()).as_bytes());
        let mut log = Vec::new();
        let result = self.sandbox.run(job.root, &spec, &mut |b| {
            (self.output)(b);
            log.extend_from_slice(b);
        });
        let _ = root.remove(&rel);
        match result {
            Ok(s) if s.success() => ScriptOutcome::Succeeded,
            Ok(s)
                if !self.sandbox.maps_image_ids(job.root, "")
                    && crate::sandbox::chown_refused(&log) =>
            {
                ScriptOutcome::Failed(format!(
                    "{}{}",
                    exit_text(s),
                    crate::sandbox::ROOTLESS_CHOWN_HINT
                ))
            }
            Ok(s) => ScriptOutcome::Failed(exit_text(s)),
            Err(e) => ScriptOutcome::NotRun(e.to_string()),
        }
    }
}

/// apk's `apk_exit_status_str`: `exited with error 1`, `killed by signal 9`.
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with error {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => status.to_string(),
    }
}

/// Why the script cannot start: no `#!` line, or its interpreter is not in the image
/// (a FROM scratch image before its shell package is in).
fn missing_interpreter(root: &Path, script: &[u8]) -> Option<String> {
    let first = script.split(|&b| b == b'\n').next().unwrap_or_default();
    let Some(line) = first.strip_prefix(b"#!") else {
        return Some("it has no #! line".into());
    };
    let line = String::from_utf8_lossy(line);
    let interpreter = line.split_whitespace().next()?.to_owned();
    crate::sandbox::missing_program(root, std::slice::from_ref(&interpreter), &[], "/")
        .map(|_| format!("the image has no {interpreter} to run it"))
}

/// Records in `owners` the image owners of every path the installed packages own, from the
/// `M:`/`a:` lines of the installed database of `root/sub` (`sub` is a `--root` inside the
/// image, empty for the image itself; `0:0` when absent): the installer
/// writes files as the user running `assemble`, so the database is where a package's
/// `nginx:nginx` directory keeps its owner. No database, nothing recorded.
pub fn record_package_owners(
    root: &Path,
    sub: &Path,
    owners: &mut crate::layer::Owners,
) -> Result<(), apk::installed::InstalledError> {
    let Ok(dir) = RootDir::open(root.join(sub)) else {
        return Ok(());
    };
    let Ok(mut f) = dir.open_file("lib/apk/db/installed") else {
        return Ok(());
    };
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return Ok(());
    }
    let db = apk::installed::InstalledDb::from_bytes(&bytes)?;
    let id = |acl: Option<apk::installed::Acl>| acl.map_or((0, 0), |a| (a.uid, a.gid));
    for pkg in &db.packages {
        for d in &pkg.dirs {
            let base = std::path::PathBuf::from(&d.path);
            if !d.path.is_empty() && dir.metadata(&base).is_ok() {
                owners.insert(sub.join(&base), id(d.acl));
            }
            for f in &d.files {
                let p = base.join(&f.name);
                if dir.metadata(&p).is_ok() {
                    owners.insert(sub.join(p), id(f.acl));
                }
            }
        }
    }
    Ok(())
}
