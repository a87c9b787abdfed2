//! The Containerfile checked whole before the first step runs, so that a mistake in a late
//! instruction does not cost the steps before it (BuildKit converts the whole file before
//! solving): the stages the build needs, each flag we accept in the syntax but cannot
//! honour (an error naming `file:line:col`, never ignored: ADD `--keep-git-dir`, ADD
//! `--unpack=true` of a URL, a mount type or option we lack), the mount specs as written,
//! COPY/ADD `--exclude` patterns, RUN's `--network` and `--security`, FROM's `--platform`.
//!
//! What depends on a stage's variables (a mount field holding `$VAR`) is checked again
//! when the step expands it.

use std::collections::BTreeMap;
use std::path::Path;

use super::copy_flags::{self, KEEP_GIT_DIR, UNPACK_URL};
use super::secret::Secret;
use crate::containerfile::{
    BuildArgs, Containerfile, Instruction, Kind, MountSpec, MountType, ParseError, Platform,
    expand_word,
};

/// What the checks need besides the file.
pub(super) struct Check<'a> {
    pub file: &'a Containerfile,
    pub path: &'a Path,
    pub bargs: &'a BuildArgs,
    pub secrets: &'a BTreeMap<String, Secret>,
}

/// A flag error: (message, hint).
type Refusal = (String, Option<String>);

impl Check<'_> {
    /// Checks the stages `needed`.
    pub fn run(&self, needed: &[usize]) -> Result<(), ParseError> {
        for &i in needed {
            let stage = &self.file.stages[i];
            self.flags(&stage.from, i)?;
            for inst in &stage.instructions {
                self.flags(inst, i)?;
            }
        }
        Ok(())
    }

    /// Each flag of `inst` (in stage `stage`).
    pub fn flags(&self, inst: &Instruction, stage: usize) -> Result<(), ParseError> {
        for (i, flag) in inst.flags.iter().enumerate() {
            let value = flag.value.as_deref().unwrap_or("");
            let refused = match (inst.name(), flag.name.as_str()) {
                ("FROM", "platform") => self.platform(value),
                ("RUN", "mount") => self.mount(value, stage),
                ("RUN", "network") => network(value),
                ("RUN", "security") => security(value),
                ("COPY" | "ADD", "exclude") => exclude(value),
                ("ADD", "keep-git-dir") if value != "false" => Err(refusal(KEEP_GIT_DIR)),
                ("ADD", "unpack") if value != "false" && adds_a_url(inst) => {
                    Err(refusal(UNPACK_URL))
                }
                _ => Ok(()),
            };
            if let Err((message, hint)) = refused {
                return Err(ParseError::at_flag(self.path, inst, i, message, hint));
            }
        }
        Ok(())
    }

    /// FROM `--platform`, expanded with the global ARGs (the automatic platform ARGs
    /// among them): only the machine's own platform can be built.
    fn platform(&self, raw: &str) -> Result<(), Refusal> {
        let value = expand_word(raw, &self.bargs.global_vars(), self.file.escape)
            .map_err(|e| (format!("--platform={raw}: {e}"), None))?;
        if value.is_empty() {
            return Err((
                format!("empty platform value from expression {raw}"),
                Some("declare the ARG it uses before the first FROM, or use $BUILDPLATFORM".into()),
            ));
        }
        let host = Platform::host();
        let Some(p) = Platform::parse(&value.to_ascii_lowercase()) else {
            return Err((
                format!("failed to parse platform {value}"),
                Some(format!("write os/arch[/variant], such as {host}")),
            ));
        };
        if same_platform(&p, &host) {
            return Ok(());
        }
        Err((
            format!(
                "--platform={value}: this build makes images for {host}, the machine's own \
                 platform, and cannot run {p} programs"
            ),
            Some(format!(
                "drop --platform, write --platform=$BUILDPLATFORM, or build on a {p} machine"
            )),
        ))
    }

    /// A `--mount` as written: its syntax, and what we refuse whatever its variables.
    fn mount(&self, text: &str, stage: usize) -> Result<(), Refusal> {
        let spec = MountSpec::check_static(text).map_err(|e| (e.message, e.hint))?;
        if spec.kind == MountType::Ssh {
            return Err((
                "--mount=type=ssh is not supported: assemble has no SSH agent forwarding".into(),
                Some(
                    "pass a token as a secret (`--mount=type=secret,id=token,env=TOKEN` and \
                     `--secret id=token,env=TOKEN`), or fetch before the build and COPY the \
                     result"
                        .into(),
                ),
            ));
        }
        if let Some(from) = &spec.from {
            self.earlier_stage(from, stage)?;
        }
        match Some(super::mounts::secret_id(&spec)).filter(|id| !id.is_empty()) {
            Some(id)
                if spec.kind == MountType::Secret
                    && spec.required
                    && !text.contains('$')
                    && !self.secrets.contains_key(&id) =>
            {
                Err((
                    format!("secret {id}: not found"),
                    Some(format!(
                        "give it to the build: `--secret id={id},src=FILE` or `--secret \
                         id={id},env=VARIABLE`"
                    )),
                ))
            }
            _ => Ok(()),
        }
    }

    /// `from=` naming a stage of the file: it must come before `stage`.
    fn earlier_stage(&self, from: &str, stage: usize) -> Result<(), Refusal> {
        let lower = from.to_ascii_lowercase();
        let named =
            self.file.stages.iter().find(|s| {
                s.name.as_deref() == Some(lower.as_str()) || s.index.to_string() == lower
            });
        match named {
            Some(s) if s.index >= stage => Err((
                format!(
                    "cannot mount from stage \"{from}\": stage needs to be defined before the \
                     current command"
                ),
                Some("move the stage above this one".into()),
            )),
            _ => Ok(()),
        }
    }
}

/// Whether `p` is `host` (aliases and arm64's `v8` variant normalised, as containerd's
/// `platforms.Normalize`).
fn same_platform(p: &Platform, host: &Platform) -> bool {
    let arch = match p.arch.as_str() {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    };
    let variant = match (arch, p.variant.as_deref()) {
        ("arm64", Some("v8")) | (_, None) => None,
        (_, v) => v,
    };
    // A variant matters where the machine has one (arm's v6/v7); amd64's levels
    // (v2, v3…) are CPU features the kernel runs whatever the machine supports.
    p.os == host.os
        && arch == host.arch
        && (variant.is_none() || host.variant.is_none() || variant == host.variant.as_deref())
}

/// RUN `--network`: BuildKit's modes (`default` is the build's own: `--network` given to
/// `assemble`, else none).
fn network(value: &str) -> Result<(), Refusal> {
    match value {
        "default" | "none" | "host" => Ok(()),
        _ => Err((
            format!("invalid network mode \"{value}\""),
            Some("write --network=default, none or host".into()),
        )),
    }
}

/// RUN `--security`: every step already runs sandboxed; `insecure` (privileged) is refused.
fn security(value: &str) -> Result<(), Refusal> {
    match value {
        "sandbox" => Ok(()),
        "insecure" => Err((
            "RUN --security=insecure is not supported: every step runs unprivileged in a \
             bubblewrap sandbox"
                .into(),
            Some(
                "drop the flag; what needs privileges (mounting, loading modules) has to \
                 happen outside the image build"
                    .into(),
            ),
        )),
        _ => Err((
            format!("security \"{value}\" is not valid"),
            Some("write --security=sandbox (or drop the flag)".into()),
        )),
    }
}

/// COPY/ADD `--exclude`: a pattern (one with a variable is checked when the step expands
/// it).
fn exclude(value: &str) -> Result<(), Refusal> {
    if value.contains('$') {
        return Ok(());
    }
    crate::dockerignore::DockerIgnore::default().push(value).map_err(|e| {
        (
            format!("--exclude={value}: not a valid pattern ({e})"),
            Some("write a pattern as in .dockerignore: `*` and `?` within a name, `**` across directories".into()),
        )
    })
}

/// ADD of a URL as written (one a variable gives is checked when the step expands it).
fn adds_a_url(inst: &Instruction) -> bool {
    matches!(&inst.kind, Kind::Add { sources, .. } if sources.iter().any(|s| copy_flags::is_url(s)))
}

fn refusal((message, hint): (&str, &str)) -> Refusal {
    (message.to_owned(), Some(hint.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_compare_normalised() {
        let host = Platform::parse("linux/arm64").unwrap();
        let p = |s| Platform::parse(s).unwrap();
        assert!(same_platform(&p("linux/arm64"), &host));
        assert!(same_platform(&p("linux/aarch64"), &host));
        assert!(same_platform(&p("linux/arm64/v8"), &host));
        assert!(!same_platform(&p("linux/amd64"), &host));
        assert!(!same_platform(&p("windows/arm64"), &host));
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(same_platform(&p("linux/x86_64"), &amd));
        assert!(same_platform(&p("linux/amd64/v3"), &amd));
        let arm = Platform::parse("linux/arm/v7").unwrap();
        assert!(!same_platform(&p("linux/arm/v6"), &arm));
    }
}
