//! `assemble inspect IMAGE[@SNAPSHOT] [--json]`: the config, layers, apk packages (from the
//! image's `lib/apk/db/installed`) and s6 services (`/etc/services.d/*`,
//! `/etc/s6-overlay/s6-rc.d/*`) of a stored image, read from its layers without extracting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::build::Reporter;
use crate::config::{Healthcheck, ImageConfig};
use crate::fsimage::tree::{self, Kind, Tree};
use crate::store::{ImageRef, Store};

/// `assemble inspect IMAGE`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// NAME[:TAG][@SNAPSHOT].
    pub image: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The config fields shown.
#[derive(Debug, Serialize)]
pub struct ConfigView {
    /// ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// CMD.
    pub cmd: Option<Vec<String>>,
    /// ENV.
    pub env: Vec<String>,
    /// USER.
    pub user: String,
    /// WORKDIR.
    pub workdir: String,
    /// EXPOSE.
    pub exposed_ports: Vec<String>,
    /// LABEL.
    pub labels: BTreeMap<String, String>,
    /// VOLUME.
    pub volumes: Vec<String>,
    /// STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// HEALTHCHECK.
    pub healthcheck: Option<Healthcheck>,
    /// SHELL.
    pub shell: Option<Vec<String>>,
}

impl From<&ImageConfig> for ConfigView {
    fn from(c: &ImageConfig) -> Self {
        Self {
            entrypoint: c.entrypoint.clone(),
            cmd: c.cmd.clone(),
            env: c.env.clone(),
            user: c.user.clone(),
            workdir: c.working_dir.clone(),
            exposed_ports: c.exposed_ports.iter().cloned().collect(),
            labels: c.labels.clone(),
            volumes: c.volumes.iter().cloned().collect(),
            stop_signal: c.stop_signal.clone(),
            healthcheck: c.healthcheck.clone(),
            shell: c.shell.clone(),
        }
    }
}

/// One layer (a snapshot that changed files).
#[derive(Debug, Serialize)]
pub struct LayerView {
    /// The snapshot.
    pub snapshot: String,
    /// The uncompressed layer digest (OCI diff_id).
    pub digest: String,
    /// Bytes of the layer tar.
    pub size: u64,
    /// The instruction.
    pub created_by: String,
}

/// One installed apk package.
#[derive(Debug, Serialize)]
pub struct PackageView {
    /// `P:`.
    pub name: String,
    /// `V:`.
    pub version: String,
    /// `A:`.
    pub arch: String,
    /// `o:`.
    pub origin: String,
}

/// One s6 service directory.
#[derive(Debug, Serialize)]
pub struct ServiceView {
    /// The directory name.
    pub name: String,
    /// `services.d` (s6-overlay v2 layout, supervised) or `s6-rc` (v3 source definitions).
    pub layout: &'static str,
    /// The s6-rc `type` (longrun, oneshot, bundle); `longrun` for services.d.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path in the image.
    pub path: String,
    /// The files in the directory (run, finish, …).
    pub files: Vec<String>,
}

/// Everything `inspect` shows.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// As given.
    pub image: String,
    /// The snapshot it resolved to.
    pub snapshot: String,
    /// The config.
    pub config: ConfigView,
    /// Bottom first.
    pub layers: Vec<LayerView>,
    /// Sorted by name.
    pub packages: Vec<PackageView>,
    /// Sorted by layout, then name.
    pub services: Vec<ServiceView>,
}

fn services(
    store: &Store,
    top: &crate::store::Snapshot,
    t: &Tree,
) -> anyhow::Result<Vec<ServiceView>> {
    let mut out = Vec::new();
    for (layout, base) in [
        ("services.d", "etc/services.d"),
        ("s6-rc", "etc/s6-overlay/s6-rc.d"),
    ] {
        let prefix = format!("{base}/");
        for (p, m) in t
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let name = &p[prefix.len()..];
            if name.contains('/') || name.starts_with('.') || m.kind != Kind::Dir {
                continue;
            }
            let inner = format!("{p}/");
            let files: Vec<String> = t
                .range(inner.clone()..)
                .take_while(|(k, _)| k.starts_with(&inner))
                .map(|(k, _)| k[inner.len()..].to_string())
                .filter(|f| !f.contains('/'))
                .collect();
            let kind = if layout == "s6-rc" {
                tree::read_file(store, top, &format!("{p}/type"))?
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                    .unwrap_or_default()
            } else {
                "longrun".to_string()
            };
            out.push(ServiceView {
                name: name.to_string(),
                layout,
                kind,
                path: format!("/{p}"),
                files,
            });
        }
    }
    Ok(out)
}

/// Gathers what `inspect` shows.
pub fn inspect(store: &Store, image: &str) -> anyhow::Result<Inspection> {
    let top = store.resolve(&ImageRef::parse(image))?;
    let chain = store.chain(&top)?;
    let layers = chain
        .iter()
        .filter_map(|s| {
            s.meta.diff_id.as_ref().map(|d| LayerView {
                snapshot: s.id.clone(),
                digest: d.clone(),
                size: s.meta.size,
                created_by: s.meta.created_by.clone(),
            })
        })
        .collect();
    let mut packages = Vec::new();
    if let Some(db) = tree::read_file(store, &top, apk::installed::INSTALLED_PATH)? {
        let db = apk::installed::InstalledDb::from_bytes(&db)
            .with_context(|| format!("`/{}` of `{image}`", apk::installed::INSTALLED_PATH))?;
        for p in db.sorted() {
            packages.push(PackageView {
                name: p.entry.name.clone(),
                version: p.entry.version.clone(),
                arch: p.entry.arch.clone(),
                origin: p.entry.origin.clone(),
            });
        }
    }
    let t = tree::merged(store, &top)?;
    Ok(Inspection {
        image: image.to_string(),
        snapshot: top.id.clone(),
        config: ConfigView::from(&top.meta.config),
        layers,
        packages,
        services: services(store, &top, &t)?,
    })
}

fn list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The text form.
pub fn render(i: &Inspection) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Image: {} @{}", i.image, i.snapshot);
    render_config(&mut s, &i.config);
    render_contents(&mut s, i);
    s
}

/// `-` for an empty value.
fn dash(v: &str) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.to_string()
    }
}

/// The `Config:` part.
fn render_config(s: &mut String, c: &ConfigView) {
    let _ = writeln!(s, "Config:");
    let opt = |v: &Option<Vec<String>>| v.as_deref().map_or("-".to_string(), list);
    let mut field = |name: &str, value: String| {
        let _ = writeln!(s, "  {:<14}{value}", format!("{name}:"));
    };
    field("Entrypoint", opt(&c.entrypoint));
    field("Cmd", opt(&c.cmd));
    field("User", dash(&c.user));
    field("WorkingDir", dash(&c.workdir));
    field("ExposedPorts", dash(&c.exposed_ports.join(" ")));
    field("Volumes", dash(&c.volumes.join(" ")));
    field(
        "StopSignal",
        c.stop_signal.as_deref().unwrap_or("-").to_string(),
    );
    field("Shell", opt(&c.shell));
    field(
        "Healthcheck",
        c.healthcheck.as_ref().map_or("-".into(), |h| list(&h.test)),
    );
    let _ = writeln!(s, "  Env:");
    for e in &c.env {
        let _ = writeln!(s, "    {e}");
    }
    let _ = writeln!(s, "  Labels:");
    for (k, v) in &c.labels {
        let _ = writeln!(s, "    {k}={v}");
    }
}

/// The `Layers`, `Packages` and `Services` parts.
fn render_contents(s: &mut String, i: &Inspection) {
    let _ = writeln!(s, "Layers ({}):", i.layers.len());
    for l in &i.layers {
        let _ = writeln!(
            s,
            "  @{}  {}  {:>10}  {}",
            l.snapshot,
            l.digest.get(..19).unwrap_or(&l.digest),
            l.size,
            l.created_by
        );
    }
    let _ = writeln!(s, "Packages ({}):", i.packages.len());
    for p in &i.packages {
        let _ = writeln!(
            s,
            "  {} {} {} (origin {})",
            p.name,
            p.version,
            p.arch,
            dash(&p.origin)
        );
    }
    let _ = writeln!(s, "Services ({}):", i.services.len());
    for v in &i.services {
        let _ = writeln!(
            s,
            "  {} ({}, {}) {} [{}]",
            v.name,
            v.layout,
            dash(&v.kind),
            v.path,
            v.files.join(", ")
        );
    }
}

/// Prints the inspection of `a.image` to stdout.
pub fn run(store: &Store, a: &InspectArgs, r: &dyn Reporter) -> anyhow::Result<ExitCode> {
    let i = inspect(store, &a.image)?;
    let text = if a.json {
        let mut j = serde_json::to_string_pretty(&i)?;
        j.push('\n');
        j
    } else {
        render(&i)
    };
    r.output(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}
