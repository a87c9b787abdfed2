//! `--rootbld`: a build root of its own, as abuild's `rootbld` and melange make one. The
//! root is a fresh copy of a distribution root filesystem (`--build-base`: a `.tar.gz` or
//! a directory, e.g. Alpine's minirootfs), or, with no base, `alpine-base build-base
//! abuild` installed from the configured repositories; then the recipe's build
//! dependencies are installed into it by our own installer ([`apk::install`]) from the
//! root's repositories, `--repository` and `$REPODEST`. The phases then run in it under
//! bubblewrap ([`super::phase::RootBwrap`]): the host's files are not visible, and
//! `/bin/sh` is the root's own.

use std::io::Read;
use std::path::{Path, PathBuf};

use apk::dep::Dependency;
use apk::install::{FetchError, Fetcher, LocalFetcher, ScriptJob, ScriptOutcome, ScriptRunner};
use apk::rootfs::{ApplyOptions, DevicePolicy, EntryKind, EntryMeta, RootDir};
use sha2::{Digest as _, Sha256};

use super::BuildError;
use super::accounts::Accounts;
use crate::Reporter;

/// The packages abuild's rootbld starts a root from.
pub const BASE_PACKAGES: &[&str] = &["alpine-base", "build-base", "abuild"];

/// Where the recipe and the work directories appear inside the root.
pub const HOME: &str = "/home/build";

/// What `--rootbld` builds in.
#[derive(Clone, Debug, Default)]
pub struct RootBuild {
    /// `--build-base`: a root filesystem `.tar.gz` or directory; `None` installs
    /// [`BASE_PACKAGES`] from the repositories.
    pub base: Option<PathBuf>,
    /// `--repository`: more repositories for the base and the build dependencies.
    pub repositories: Vec<String>,
    /// Trusted keys for a base installed from repositories (default: `/etc/apk/keys`).
    pub keys_dir: Option<PathBuf>,
}

/// The root of one build and what it needs from the caller.
pub struct RootSetup<'a> {
    /// The options.
    pub spec: &'a RootBuild,
    /// Where the root goes (created fresh).
    pub dir: PathBuf,
    /// `$CARCH`.
    pub carch: &'a str,
    /// `$REPODEST` repositories holding packages for `carch` (our own packages).
    pub local_repos: Vec<PathBuf>,
    /// The packager's public key (PEM) and its file name, trusted inside the root.
    pub packager_key: (String, String),
    /// SOURCE_DATE_EPOCH (virtual package versions).
    pub source_date: u64,
    /// Progress.
    pub reporter: &'a dyn Reporter,
}

/// The digest naming the base in cache keys: the archive's sha256, a directory's content
/// hash, or the checksums of the base packages the repositories would give.
pub fn base_digest(setup: &RootSetup<'_>) -> Result<String, BuildError> {
    match &setup.spec.base {
        Some(base) if base.is_dir() => Ok(format!("dir-sha256:{}", dir_digest(base)?)),
        Some(base) => {
            let mut h = Sha256::new();
            std::io::copy(&mut fs_err::File::open(base)?, &mut h)?;
            Ok(format!("sha256:{}", hex::encode(h.finalize())))
        }
        None => {
            let scratch = tempfile::tempdir()?;
            trust_keys(setup, scratch.path(), true)?;
            let planned = install(setup, scratch.path(), BASE_PACKAGES, None, true)?.planned;
            let mut h = Sha256::new();
            for (name, version, checksum) in planned {
                h.update(format!("{name}-{version} {checksum}\n"));
            }
            Ok(format!("packages-sha256:{}", hex::encode(h.finalize())))
        }
    }
}

/// Makes the root: the base, our key trusted, the recipe's users and groups, the build
/// dependencies (those the base does not already provide). Returns the root's accounts.
pub fn make_root(
    setup: &RootSetup<'_>,
    deps: &[String],
    users: &[String],
    groups: &[String],
    pkgname: &str,
) -> Result<Accounts, BuildError> {
    let dir = &setup.dir;
    if dir.exists() {
        fs_err::remove_dir_all(dir)?;
    }
    fs_err::create_dir_all(dir)?;
    match &setup.spec.base {
        Some(base) if base.is_dir() => copy_tree(base, dir)?,
        Some(base) => unpack_tar_gz(base, dir)?,
        None => {
            setup.reporter.info(&format!(
                "build root: installing {} from the repositories",
                BASE_PACKAGES.join(" ")
            ));
            trust_keys(setup, dir, true)?;
            install(setup, dir, BASE_PACKAGES, None, false)?;
        }
    }
    trust_keys(setup, dir, false)?;
    let accounts = add_users(dir, users, groups)?;
    let missing = not_installed(dir, deps)?;
    if !missing.is_empty() {
        setup.reporter.info(&format!(
            "build root: installing build dependencies: {}",
            missing.join(" ")
        ));
        let refs: Vec<&str> = missing.iter().map(String::as_str).collect();
        let virtual_name = format!(".makedepends-{pkgname}");
        install(setup, dir, &refs, Some(virtual_name), false)?;
    }
    for d in ["tmp", "var/tmp", &HOME[1..]] {
        fs_err::create_dir_all(dir.join(d))?;
    }
    Ok(accounts)
}

/// Runs our installer on `root`: `apk add [--virtual NAME] atoms`, or only plans it.
fn install(
    setup: &RootSetup<'_>,
    root: &Path,
    atoms: &[&str],
    virtual_name: Option<String>,
    plan_only: bool,
) -> Result<apk::install::InstallReport, BuildError> {
    let fetcher = HttpFetcher::new();
    let scripts = RootScripts;
    let reporter = apk::install::NoReporter;
    let mut opts = apk::install::InstallOptions::new(&fetcher, &scripts, &reporter);
    opts.repositories.extra = setup.spec.repositories.clone();
    opts.repositories
        .extra
        .extend(setup.local_repos.iter().map(|p| p.display().to_string()));
    opts.repositories.arch = Some(setup.carch.to_string());
    opts.source_date = setup.source_date;
    opts.virtual_name = virtual_name;
    opts.apply.devices = DevicePolicy::CreateOrSkip;
    let atoms = atoms
        .iter()
        .map(|a| a.parse::<Dependency>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::Root {
            path: root.to_path_buf(),
            reason: format!("bad dependency atom: {e}"),
        })?;
    let result = if plan_only {
        apk::install::plan_add(root, &atoms, &opts)
    } else {
        apk::install::add(root, &atoms, &opts)
    };
    result.map_err(|e| BuildError::Root {
        path: root.to_path_buf(),
        reason: format!(
            "installing {}: {}",
            atoms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            super::sources::chain(&e)
        ),
    })
}

fn host_keys_dir(spec: &RootBuild) -> PathBuf {
    spec.keys_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/apk/keys"))
}

/// `etc/apk/keys` of the root gets the packager's public key (our repository's packages
/// are signed with it) and, for a base installed from repositories, the host's keys.
fn trust_keys(setup: &RootSetup<'_>, root: &Path, host: bool) -> Result<(), BuildError> {
    let keys = root.join("etc/apk/keys");
    fs_err::create_dir_all(&keys)?;
    if host {
        let dir = host_keys_dir(setup.spec);
        if let Ok(rd) = fs_err::read_dir(&dir) {
            for e in rd.filter_map(Result::ok) {
                let public = e.file_name().to_string_lossy().ends_with(".pub");
                if public && e.file_type().is_ok_and(|t| t.is_file()) {
                    fs_err::copy(e.path(), keys.join(e.file_name()))?;
                }
            }
        }
    }
    let (name, pem) = &setup.packager_key;
    fs_err::write(keys.join(name), pem)?;
    Ok(())
}

/// The atoms no installed package of the root satisfies (by name or `provides`).
fn not_installed(root: &Path, atoms: &[String]) -> Result<Vec<String>, BuildError> {
    let db_path = root.join("lib/apk/db/installed");
    let db = match fs_err::read(&db_path) {
        Ok(bytes) => {
            apk::installed::InstalledDb::from_bytes(&bytes).map_err(|e| BuildError::Root {
                path: db_path.clone(),
                reason: e.to_string(),
            })?
        }
        Err(_) => apk::installed::InstalledDb::default(),
    };
    let satisfied = |atom: &str| {
        let Ok(dep) = atom.parse::<Dependency>() else {
            return false;
        };
        db.packages.iter().any(|p| {
            dep.matches(&p.entry.name, &p.entry.version)
                || p.entry.provides.iter().any(|prov| {
                    let (name, ver) = prov.split_once('=').unwrap_or((prov, ""));
                    dep.matches(name, ver)
                })
        })
    };
    // A conflict (`!name`) names nothing to install.
    Ok(atoms
        .iter()
        .filter(|a| !a.starts_with('!') && !satisfied(a))
        .cloned()
        .collect())
}

/// The recipe's `pkgusers` and `pkggroups` in the root's passwd and group, allocated as
/// abuild's rootbld does ([`Accounts::allocate`]), after the build user the first phases
/// run as (uid 1000, as abuild's rootbld has its `user`).
fn add_users(root: &Path, users: &[String], groups: &[String]) -> Result<Accounts, BuildError> {
    let (passwd_path, group_path) = (root.join("etc/passwd"), root.join("etc/group"));
    let mut group = fs_err::read_to_string(&group_path).unwrap_or_default();
    let mut passwd = fs_err::read_to_string(&passwd_path).unwrap_or_default();
    let has = |text: &str, name: &str| text.lines().any(|l| l.split(':').next() == Some(name));
    if !has(&group, "build") {
        group.push_str("build:x:1000:build\n");
    }
    if !has(&passwd, "build") {
        passwd.push_str("build:x:1000:1000:build:/home/build:/bin/sh\n");
    }
    let accounts = Accounts::allocate(&passwd, &group, users, groups);
    fs_err::create_dir_all(root.join("etc"))?;
    fs_err::write(group_path, &accounts.group)?;
    fs_err::write(passwd_path, &accounts.passwd)?;
    Ok(accounts)
}

/// Unpacks a root filesystem archive (absolute symlinks are normal there; nothing is
/// written outside `dir`, as every entry goes through [`RootDir`]).
fn unpack_tar_gz(archive: &Path, dir: &Path) -> Result<(), BuildError> {
    let root = open_root(dir)?;
    let file = std::io::BufReader::new(fs_err::File::open(archive)?);
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    let bad = |reason: String| BuildError::Root {
        path: archive.to_path_buf(),
        reason,
    };
    for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let h = entry.header().clone();
        let path = entry.path().map_err(|e| bad(e.to_string()))?;
        let name = path
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if name.is_empty() || name == "." {
            continue;
        }
        let link = || {
            entry
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink(link()),
            tar::EntryType::Link => {
                EntryKind::HardLink(link().trim_start_matches("./").to_string())
            }
            tar::EntryType::Fifo => EntryKind::Fifo,
            // Device nodes come from bwrap's /dev.
            _ => continue,
        };
        let meta = EntryMeta {
            path: name.clone(),
            kind,
            mode: h.mode().unwrap_or(0o644),
            uid: 0,
            gid: 0,
            mtime: h.mtime().map_or(0, |m| i64::try_from(m).unwrap_or(0)),
        };
        root.apply(&meta, &mut entry, &apply_options())
            .map_err(|e| bad(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// Copies a root filesystem directory (symlinks as they are).
fn copy_tree(base: &Path, dir: &Path) -> Result<(), BuildError> {
    let root = open_root(dir)?;
    for e in walkdir::WalkDir::new(base)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e?;
        let rel = e.path().strip_prefix(base).unwrap_or(e.path());
        let md = e.path().symlink_metadata()?;
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink(fs_err::read_link(e.path())?.display().to_string())
        } else if ft.is_file() {
            EntryKind::File
        } else {
            continue;
        };
        let meta = EntryMeta {
            path: rel.display().to_string(),
            kind,
            mode: std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777,
            uid: 0,
            gid: 0,
            mtime: std::os::unix::fs::MetadataExt::mtime(&md),
        };
        let mut content: Box<dyn Read> = if ft.is_file() {
            Box::new(fs_err::File::open(e.path())?)
        } else {
            Box::new(std::io::empty())
        };
        root.apply(&meta, &mut content, &apply_options())
            .map_err(|err| BuildError::Root {
                path: e.path().to_path_buf(),
                reason: err.to_string(),
            })?;
    }
    Ok(())
}

fn apply_options() -> ApplyOptions {
    ApplyOptions {
        chown: false,
        devices: DevicePolicy::Skip,
    }
}

fn open_root(dir: &Path) -> Result<RootDir, BuildError> {
    RootDir::open(dir).map_err(|e| BuildError::Root {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A directory's content hash: every path, type, mode, link target and file content.
fn dir_digest(base: &Path) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    for e in walkdir::WalkDir::new(base)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e?;
        let md = e.path().symlink_metadata()?;
        let rel = e.path().strip_prefix(base).unwrap_or(e.path());
        let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions());
        h.update(format!("{}\0{mode:o}\0", rel.display()));
        if md.file_type().is_symlink() {
            h.update(fs_err::read_link(e.path())?.as_os_str().as_encoded_bytes());
        } else if md.is_file() {
            std::io::copy(&mut fs_err::File::open(e.path())?, &mut h)?;
        }
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// Local paths, and `http(s)://` with reqwest.
struct HttpFetcher {
    client: reqwest::blocking::Client,
}

impl HttpFetcher {
    fn new() -> Self {
        Self {
            client: reqwest::blocking::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(15))
                .user_agent(concat!("apkbuild/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Fetcher for HttpFetcher {
    fn open(&self, url: &str) -> Result<Box<dyn Read>, FetchError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return LocalFetcher.open(url);
        }
        let failed = |reason: String| FetchError::Failed {
            url: url.to_owned(),
            reason,
        };
        let resp = self
            .client
            .get(url)
            .send()
            .map_err(|e| failed(super::sources::chain(&e)))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound {
                url: url.to_owned(),
            });
        }
        Ok(Box::new(
            resp.error_for_status().map_err(|e| failed(e.to_string()))?,
        ))
    }
}

/// Runs install scripts inside the root under bubblewrap, as apk runs them chrooted: the
/// script is written to `lib/apk/exec/`, run, then removed.
struct RootScripts;

impl ScriptRunner for RootScripts {
    fn run(&self, job: &ScriptJob<'_>) -> ScriptOutcome {
        if job.root.join("bin/sh").symlink_metadata().is_err() {
            return ScriptOutcome::NotRun("the root has no /bin/sh".into());
        }
        let rel = format!("lib/apk/exec/{}", job.exec_name());
        let path = job.root.join(&rel);
        let written = fs_err::create_dir_all(job.root.join("lib/apk/exec"))
            .and_then(|()| fs_err::write(&path, job.script))
            .and_then(|()| {
                fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            });
        if let Err(e) = written {
            return ScriptOutcome::NotRun(format!("cannot write the script: {e}"));
        }
        let status = std::process::Command::new("bwrap")
            .args(["--unshare-user", "--uid", "0", "--gid", "0"])
            .args(["--unshare-all", "--die-with-parent", "--bind"])
            .arg(job.root)
            .args(["/", "--dev", "/dev", "--proc", "/proc", "--clearenv"])
            .args(["--setenv", "PATH", crate::apkbuild::CLEAN_PATH])
            .arg(format!("/{rel}"))
            .args(job.args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = fs_err::remove_file(&path);
        match status {
            Ok(s) if s.success() => ScriptOutcome::Succeeded,
            Ok(s) => ScriptOutcome::Failed(s.to_string()),
            Err(e) => ScriptOutcome::NotRun(format!("bwrap: {e}")),
        }
    }
}
