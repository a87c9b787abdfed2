//! `assemble push IMAGE REGISTRY/NAME:TAG`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::build::Reporter;
use crate::cli::Env;
use crate::export::{ExportOptions, LayerMode, Output};
use crate::store::{ImageRef, Store};

/// Arguments.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// NAME[:TAG][@SNAPSHOT] in the store.
    pub image: String,
    /// [host[:port]/]name[:tag]; `user/img` and `img` are Docker Hub's (docker.io).
    pub destination: String,
    /// `false`: plain HTTP (local registries).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// default, squash, steps or packages[:BUDGET].
    #[arg(long, default_value = "default")]
    pub layers: LayerMode,
}

/// Pushes.
pub fn run(store: &Store, a: &PushArgs, env: &Env, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let dest = crate::registry::Reference::parse(&a.destination).with_context(|| {
        format!(
            "`{}`: expected [host[:port]/]name[:tag] (a name without a host is Docker Hub's)",
            a.destination
        )
    })?;
    let snap = store.resolve(&ImageRef::parse(&a.image))?;
    let work = store.tempdir("push-")?;
    let dir = work.path().join("oci");
    let opts = ExportOptions {
        layers: a.layers,
        created: env.source_date.unwrap_or(env.now),
        tags: vec![format!("{}:{}", dest.name, dest.reference)],
        ext4_margin: 0,
    };
    crate::export::export(store, &snap, &Output::Oci(dir.clone()), &opts, r)?;
    let digest =
        crate::registry::push_layout(&dir, &dest, a.tls_verify, env.registry_creds.clone(), r)
            .with_context(|| format!("failed to push to `{dest}`"))?;
    r.line(&format!("Pushed {} ({digest})", a.destination));
    Ok(ExitCode::SUCCESS)
}
