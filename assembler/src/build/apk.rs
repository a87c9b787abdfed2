//! A plain `RUN apk add`/`apk del` carried out by our installer instead of the sandbox:
//! what it would install (part of the cache key), the installer's options, the run, and
//! the image's `--keys-dir`.

use std::path::{Path, PathBuf};

use super::step::Step;
use super::{BuildError, Engine, StageState};
use crate::containerfile::{ApkAction, ApkCommand};
use crate::packages::IndexMemo;

impl Engine<'_> {
    /// Runs `cmd` with our installer and keeps the result, failed or not.
    pub(super) fn apk_step(
        &self,
        st: &mut StageState,
        cmd: &ApkCommand,
        network: bool,
        indexes: &IndexMemo,
        step: Step,
    ) -> Result<(), BuildError> {
        let rootfs = st.rootfs();
        // Install scripts run as root: with the image's ids mapped they must see the
        // image's owners. The installer itself writes with the caller's owner, so the
        // layer still translates (OwnerMap) for its files.
        let image_ids = self.image_owners(st, "")?;
        let mut log = Vec::new();
        let failure = self.run_apk(&rootfs, cmd, network, indexes, &mut log)?;
        crate::packages::record_package_owners(&rootfs, &mut st.owners)
            .map_err(anyhow::Error::from)?;
        let snap = self.snapshot(st, &step.text, &log, false)?;
        if image_ids {
            self.chown_back(st)?;
        }
        self.finish_step(st, snap, failure, step)
    }

    /// What `apk add` would install from the current indexes, as cache key bytes; the
    /// reporter says what it found. A failure is keyed too (the step then runs and reports
    /// it for real).
    pub(super) fn apk_plan(&self, rootfs: &Path, cmd: &ApkCommand, indexes: &IndexMemo) -> Vec<u8> {
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
                self.reporter.line(&format!(
                    "--> The repositories resolve this to: {}",
                    shown(&r.planned)
                ));
                planned_key(&r.planned)
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
        cmd: &ApkCommand,
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
        cmd: &ApkCommand,
        network: bool,
        indexes: &IndexMemo,
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
        let failure = match image_keys_dir(rootfs, cmd) {
            Ok(keys) => {
                let events = EventLines(&out);
                let mut o = apk::install::InstallOptions::new(&fetcher, &scripts, &events);
                self.apk_options(&mut o, keys, cmd);
                o.apply.devices = apk::rootfs::DevicePolicy::CreateOrSkip;
                // Owners are kept in the owner table (from the database below), not on disk.
                o.apply.chown = false;
                outcome(install(rootfs, cmd, &o)?, &out)
            }
            Err(msg) => {
                out(format!("ERROR: {msg}\n").as_bytes());
                Some(format!("apk: {msg}"))
            }
        };
        *log = buf.into_inner();
        Ok(failure)
    }
}

/// Runs the installer for `cmd`; the outer error is a bad package list, the inner one the
/// installer's.
fn install(
    rootfs: &Path,
    cmd: &ApkCommand,
    o: &apk::install::InstallOptions<'_>,
) -> anyhow::Result<Result<apk::install::InstallReport, apk::install::InstallError>> {
    Ok(match cmd.action {
        ApkAction::Add => {
            let atoms = apk::dep::Dependency::parse_list(&cmd.packages.join(" "))?;
            apk::install::add(rootfs, &atoms, o)
        }
        ApkAction::Del => apk::install::del(rootfs, &cmd.packages, o),
        _ => Ok(apk::install::InstallReport::default()),
    })
}

/// Says how the installer did (to `out`); `Some(reason)` when it failed.
fn outcome(
    result: Result<apk::install::InstallReport, apk::install::InstallError>,
    out: &dyn Fn(&[u8]),
) -> Option<String> {
    match result {
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
    }
}

/// The planned packages for a person: the first eight and how many in all.
fn shown(planned: &[(String, String, String)]) -> String {
    let names: Vec<String> = planned.iter().map(|(n, v, _)| format!("{n}-{v}")).collect();
    if names.len() > 8 {
        format!("{}, … ({} in all)", names[..8].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

/// The planned packages as cache key bytes.
fn planned_key(planned: &[(String, String, String)]) -> Vec<u8> {
    planned
        .iter()
        // A `--virtual` package (no checksum) is versioned by the build time: keyed by
        // name only, or every build without SOURCE_DATE_EPOCH misses.
        .map(|(n, v, c)| match c.is_empty() {
            true => format!("{n}\n"),
            false => format!("{n} {v} {c}\n"),
        })
        .collect::<String>()
        .into_bytes()
}

/// `--keys-dir DIR` of an `apk add`, which names a directory inside the image (as a real apk
/// run there), as the host path the installer reads. The installer reads it as a host path,
/// so `..` and symlinks along it are refused rather than followed out of the build root.
/// The message names the image's path, not the build root's temporary one, and the usual
/// cause: a FROM scratch image has no keys until a COPY puts them there.
fn image_keys_dir(rootfs: &Path, cmd: &ApkCommand) -> Result<Option<PathBuf>, String> {
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
