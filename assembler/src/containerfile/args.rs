//! Build-argument scoping, Docker's rules:
//! - ARGs before the first FROM are global: usable in FROM lines only, unless a stage
//!   declares them again with `ARG NAME` (which then takes the global value);
//! - `--build-arg NAME=value` overrides the default of any ARG named NAME;
//! - the platform args (TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM
//!   BUILDOS BUILDARCH BUILDVARIANT) are set in the global scope automatically and inside a
//!   stage once declared with `ARG TARGETARCH`;
//! - the proxy args (HTTP_PROXY…, either case) reach RUN's environment from
//!   `--build-arg` without being declared;
//! - ENV shadows an ARG of the same name within a stage.

use std::collections::BTreeMap;
use std::fmt;

use super::expand::{ExpandError, Vars, expand_word};
use super::{Arg, Containerfile, Kind};

/// Args that are usable in RUN without an ARG declaration when given as `--build-arg`.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OCI platform `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `linux/amd64` or `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_owned();
        let arch = parts.next().filter(|p| !p.is_empty())?.to_owned();
        let variant = parts.next().map(str::to_owned);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform { os, arch, variant })
    }

    /// `linux/amd64` on x86_64 builds, and so on (Go/OCI names for Rust's arch names).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform {
            os: "linux".to_owned(),
            arch: arch.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The build's arguments: `--build-arg` values, platform args and global ARGs.
#[derive(Debug, Clone)]
pub struct BuildArgs {
    overrides: BTreeMap<String, String>,
    predefined: BTreeMap<String, String>,
    /// Global ARGs in declaration order, with their values (`None`: declared, unset).
    globals: Vec<(String, Option<String>)>,
}

impl BuildArgs {
    /// `overrides` are the `--build-arg` values.
    pub fn new(overrides: BTreeMap<String, String>, target: &Platform, build: &Platform) -> Self {
        let mut predefined = BTreeMap::new();
        for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
            predefined.insert(format!("{prefix}PLATFORM"), p.to_string());
            predefined.insert(format!("{prefix}OS"), p.os.clone());
            predefined.insert(format!("{prefix}ARCH"), p.arch.clone());
            predefined.insert(
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            );
        }
        Self {
            overrides,
            predefined,
            globals: Vec::new(),
        }
    }

    /// Declare a global ARG (before the first FROM): its value is the `--build-arg`, else
    /// its default expanded with the globals declared so far.
    pub fn declare_global(&mut self, arg: &Arg, escape: char) -> Result<(), ExpandError> {
        let value = match (self.overrides.get(&arg.name), &arg.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(expand_word(d, &self.global_vars(), escape)?),
            (None, None) => self.predefined.get(&arg.name).cloned(),
        };
        self.globals.retain(|(n, _)| *n != arg.name);
        self.globals.push((arg.name.clone(), value));
        Ok(())
    }

    /// Declare every global ARG of the file, in order.
    pub fn declare_globals(&mut self, file: &Containerfile) -> Result<(), ExpandError> {
        for arg in &file.global_args {
            self.declare_global(arg, file.escape)?;
        }
        Ok(())
    }

    /// The variables for expanding FROM lines: platform args and global ARGs.
    pub fn global_vars(&self) -> BTreeMap<String, String> {
        let mut vars = self.predefined.clone();
        for (n, v) in &self.globals {
            match v {
                Some(v) => vars.insert(n.clone(), v.clone()),
                None => vars.remove(n),
            };
        }
        vars
    }

    /// A fresh scope for one stage. `image_env` is the base image's `Env`, which is
    /// visible to expansion and shadows ARGs like ENV does.
    pub fn stage(&self, image_env: &[(String, String)]) -> StageArgs {
        StageArgs {
            build: self.clone(),
            args: Vec::new(),
            env: image_env.to_vec(),
        }
    }

    /// `--build-arg` names that no ARG in the file declares (Docker warns "were not
    /// consumed"); proxy and platform args are never reported.
    pub fn unused(&self, file: &Containerfile) -> Vec<String> {
        let mut declared: Vec<&str> = file.global_args.iter().map(|a| a.name.as_str()).collect();
        for stage in &file.stages {
            for inst in &stage.instructions {
                if let Kind::Arg(args) = &inst.kind {
                    declared.extend(args.iter().map(|a| a.name.as_str()));
                }
            }
        }
        self.overrides
            .keys()
            .filter(|k| {
                !declared.contains(&k.as_str())
                    && !PROXY_ARGS.contains(&k.as_str())
                    && !self.predefined.contains_key(*k)
            })
            .cloned()
            .collect()
    }
}

/// The variables of one stage while it is being built.
#[derive(Debug, Clone)]
pub struct StageArgs {
    build: BuildArgs,
    /// ARGs declared in this stage, in order (`None`: declared without a value).
    args: Vec<(String, Option<String>)>,
    /// ENV in effect (base image's, then ENV instructions), in order; later wins.
    env: Vec<(String, String)>,
}

impl StageArgs {
    /// Declare `ARG name[=default]` in this stage.
    pub fn declare(&mut self, arg: &Arg, escape: char) -> Result<(), ExpandError> {
        let b = &self.build;
        let global = b.globals.iter().find(|(n, _)| *n == arg.name);
        let value = match (b.overrides.get(&arg.name), &arg.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(expand_word(d, &*self, escape)?),
            (None, None) => match global {
                Some((_, v)) => v.clone(),
                None => b.predefined.get(&arg.name).cloned(),
            },
        };
        self.args.retain(|(n, _)| *n != arg.name);
        self.args.push((arg.name.clone(), value));
        Ok(())
    }

    /// Record `ENV name=value` (value already expanded).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// The ENV in effect, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The ARGs declared in this stage that have a value, in order.
    pub fn args(&self) -> impl Iterator<Item = (&str, &str)> {
        self.args
            .iter()
            .filter_map(|(n, v)| v.as_deref().map(|v| (n.as_str(), v)))
    }

    /// The environment of a RUN: declared ARGs with values, undeclared proxy args given
    /// with `--build-arg`, then ENV (which wins over an ARG of the same name).
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for p in PROXY_ARGS {
            if let Some(v) = self.build.overrides.get(*p) {
                out.insert((*p).to_owned(), v.clone());
            }
        }
        for (n, v) in self.args() {
            out.insert(n.to_owned(), v.to_owned());
        }
        for (n, v) in &self.env {
            out.insert(n.clone(), v.clone());
        }
        out.into_iter().collect()
    }
}

impl Vars for StageArgs {
    fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.env.iter().rev().find(|(n, _)| n == name) {
            return Some(v);
        }
        self.args
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}
