//! FROM: the base of a stage. `scratch`, a local image or snapshot `name[:tag][@id]`, an OCI
//! layout `oci:DIR[:tag]` or a `docker-archive:FILE`, whose layers are imported into the
//! store as base snapshots (kept as separate layers on export).

use std::io::{BufRead as _, Read};
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::config::ImageConfig;
use crate::layer;
use crate::oci::{Index, Manifest, blob};
use crate::store::{ImageRef, Snapshot, SnapshotMeta, Store, StoreError};

/// The snapshot a FROM names (`None` for scratch).
pub fn resolve_base(
    store: &Store,
    image: &str,
    opts: &super::BuildOptions,
    reporter: &dyn super::Reporter,
) -> anyhow::Result<Option<Snapshot>> {
    let context = opts.context.as_path();
    if image == "scratch" {
        return Ok(None);
    }
    if let Some(rest) = image.strip_prefix("oci:") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') => (d, Some(t)),
            _ => (rest, None),
        };
        return import_oci(store, &context.join(dir), tag, image).map(Some);
    }
    if let Some(file) = image.strip_prefix("docker-archive:") {
        return import_docker_archive(store, &context.join(file), image).map(Some);
    }
    // The local store first, then the registry (podman's `missing` pull policy); a short
    // name (`alpine:3.20`, `user/img`) is Docker Hub's.
    match store.resolve(&ImageRef::parse(image)) {
        Ok(s) => return Ok(Some(s)),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let explicit = crate::registry::Reference::names_registry(image);
    let r = match crate::registry::Reference::parse(image) {
        Ok(r) => r,
        Err(e) => bail!(
            "FROM `{image}`: no such image in the local store `{}`, and it is not a registry reference either ({e}); build it, or give `oci:DIR`, `docker-archive:FILE` or `host[:port]/name:tag`",
            store.root().display()
        ),
    };
    let reg =
        crate::registry::Registry::new(&r.host, opts.tls_verify, opts.registry_creds.clone())?
            .reporting(reporter);
    let tmp = store.tempdir("pull-")?;
    let pulled = reg.pull(&r, tmp.path());
    let (config, layers) = match pulled {
        Ok(p) => p,
        Err(e) if explicit => {
            return Err(e.context(format!("FROM `{image}`: pulling `{r}` failed")));
        }
        Err(e) => {
            return Err(e.context(format!(
                "FROM `{image}`: no such image in the local store `{}`, and pulling `{r}` failed; \
                 build it first, or name the registry explicitly (`host[:port]/name:tag`)",
                store.root().display()
            )));
        }
    };
    import_layers(store, &layers, &config, image).map(Some)
}

/// Extracts `top`'s chain into the empty directory `rootfs`.
/// Owners are set on disk when we may (`rootfs:` outputs).
pub fn materialize(store: &Store, top: &Snapshot, rootfs: &Path) -> anyhow::Result<()> {
    let root = apk::rootfs::RootDir::open(rootfs)?;
    for s in store.chain(top)? {
        if let Some(l) = s.layer() {
            layer::apply(&root, &l)?;
        }
    }
    Ok(())
}

/// Extracts `top`'s chain into the empty build root `rootfs`, owned on disk by the user
/// running `assemble`, and returns the image owners of every path (see
/// [`layer::apply_recording`]).
pub fn materialize_recording(
    store: &Store,
    top: &Snapshot,
    rootfs: &Path,
) -> anyhow::Result<layer::Owners> {
    let root = apk::rootfs::RootDir::open(rootfs)?;
    let mut owners = layer::Owners::new();
    for s in store.chain(top)? {
        if let Some(l) = s.layer() {
            layer::apply_recording(&root, &l, &mut owners)?;
        }
    }
    Ok(owners)
}

fn import_oci(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    name: &str,
) -> anyhow::Result<Snapshot> {
    let index: Index = serde_json::from_slice(&fs_err::read(dir.join("index.json"))?)
        .with_context(|| format!("`{}/index.json` is not an OCI index", dir.display()))?;
    let desc = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|m| {
                m.annotations
                    .get("org.opencontainers.image.ref.name")
                    .map(String::as_str)
                    == Some(t)
            })
            .with_context(|| format!("no image tagged `{t}` in `{}`", dir.display()))?,
        None => index
            .manifests
            .first()
            .context("the OCI index lists no image")?,
    };
    let manifest: Manifest = serde_json::from_slice(&fs_err::read(blob(dir, &desc.digest)?)?)
        .context("the image manifest is not valid JSON (an index of indexes is not supported)")?;
    let config = fs_err::read(blob(dir, &manifest.config.digest)?)?;
    let layers = manifest
        .layers
        .iter()
        .map(|l| blob(dir, &l.digest))
        .collect::<anyhow::Result<Vec<_>>>()?;
    import_layers(store, &layers, &config, name)
}

fn import_docker_archive(store: &Store, file: &Path, name: &str) -> anyhow::Result<Snapshot> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        layers: Vec<String>,
    }
    let tmp = store.tempdir("import-")?;
    let mut a = tar::Archive::new(fs_err::File::open(file)?);
    // Unpacked into a fresh directory of ours, by name checks only: no entry may escape.
    for e in a.entries()? {
        let mut e = e?;
        let p = e.path()?.into_owned();
        let rel = p.to_string_lossy().trim_start_matches("./").to_string();
        apk::rootfs::check_entry_name(&rel)?;
        if e.header().entry_type().is_file() {
            let dest = tmp.path().join(&rel);
            if let Some(parent) = dest.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let mut f = fs_err::File::create(&dest)?;
            std::io::copy(&mut e, &mut f)?;
        }
    }
    let entries: Vec<Entry> =
        serde_json::from_slice(&fs_err::read(tmp.path().join("manifest.json"))?)
            .context("docker-archive manifest.json is not valid")?;
    let entry = entries.first().context("docker-archive holds no image")?;
    let config = fs_err::read(tmp.path().join(&entry.config))?;
    let layers: Vec<_> = entry.layers.iter().map(|l| tmp.path().join(l)).collect();
    import_layers(store, &layers, &config, name)
}

/// Stores each (possibly gzip-compressed) layer as a base snapshot.
fn import_layers(
    store: &Store,
    layers: &[std::path::PathBuf],
    config: &[u8],
    name: &str,
) -> anyhow::Result<Snapshot> {
    let config =
        ImageConfig::from_oci_json(config).context("the base image config is not valid")?;
    let mut parent: Option<Snapshot> = None;
    let n = layers.len();
    for (i, l) in layers.iter().enumerate() {
        let tmp = store.tempdir("layer-")?;
        let out = tmp.path().join("layer.tar");
        // Peek at the gzip magic through the buffer instead of opening the file twice.
        let mut f = std::io::BufReader::new(fs_err::File::open(l)?);
        let gzip = f.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut w = layer::HashWriter::new(fs_err::File::create(&out)?);
        std::io::copy(&mut reader, &mut w)?;
        let (_, diff_id, size) = w.finish();
        let meta = SnapshotMeta {
            parent: parent.as_ref().map(|p| p.id.clone()),
            created_by: format!("FROM {name} (layer {}/{n})", i + 1),
            diff_id: Some(diff_id),
            size,
            base: true,
            from: None,
            config: if i + 1 == n {
                config.clone()
            } else {
                ImageConfig::default()
            },
        };
        parent = Some(store.add_snapshot(meta, Some(&out), b"")?);
    }
    match parent {
        Some(p) => Ok(p),
        None => Ok(store.add_snapshot(
            SnapshotMeta {
                parent: None,
                created_by: format!("FROM {name}"),
                diff_id: None,
                size: 0,
                base: true,
                from: None,
                config,
            },
            None,
            b"",
        )?),
    }
}
