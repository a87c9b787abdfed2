//! Outputs: an OCI layout (`oci:DIR`), an OCI archive, a Docker archive, a root directory
//! or a root tarball, from a snapshot chain.
//!
//! Layers: by default the base image's layers plus one squashed layer for everything the
//! Containerfile did; `squash` gives one layer, `steps` one per snapshot. Layers are
//! compressed with `apk::gzip` (deterministic, parallel), and the config and manifest are
//! serialised once and hashed as written: same snapshots + SOURCE_DATE_EPOCH, same digest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use apk::atomic::write_atomic;
use apk::gzip::{GzipOptions, GzipWriter};
use apk::installed::{INSTALLED_PATH, InstalledDb};
use sha2::{Digest, Sha256};

use crate::build::Reporter;
use crate::config::{History, rfc3339};
use crate::layer;
use crate::progress::{ProgressRead, human_bytes};
use crate::store::{Snapshot, Store};

/// How the image's layers are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerMode {
    /// Base layers + one for the build.
    #[default]
    Default,
    /// One layer.
    Squash,
    /// One layer per snapshot.
    Steps,
    /// Base layers, then one layer per installed apk package (at most BUDGET build layers;
    /// the packages past the budget share the last one) and one for everything else.
    Packages(usize),
}

impl std::str::FromStr for LayerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Self::Default),
            "squash" => Ok(Self::Squash),
            "steps" => Ok(Self::Steps),
            "packages" => Ok(Self::Packages(50)),
            other => match other.strip_prefix("packages:").map(str::parse::<usize>) {
                Some(Ok(n)) if n >= 2 => Ok(Self::Packages(n)),
                _ => Err(format!(
                    "unknown layer mode `{other}`; use default, squash, steps or packages[:BUDGET] (BUDGET >= 2)"
                )),
            },
        }
    }
}

/// An output destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `oci:DIR`
    Oci(PathBuf),
    /// `oci-archive:FILE`
    OciArchive(PathBuf),
    /// `docker-archive:FILE`
    DockerArchive(PathBuf),
    /// `rootfs:DIR`
    Rootfs(PathBuf),
    /// `rootfs-tar:FILE`
    RootfsTar(PathBuf),
    /// `ext4:FILE[:SIZE]` (see [`crate::fsimage::ext4`]).
    Ext4(PathBuf, Option<u64>),
    /// `squashfs:FILE` (see [`crate::fsimage::squashfs`]).
    Squashfs(PathBuf),
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, path) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected TYPE:PATH, e.g. oci:out/"))?;
        let p = PathBuf::from(path);
        Ok(match kind {
            "oci" => Self::Oci(p),
            "oci-archive" => Self::OciArchive(p),
            "docker-archive" => Self::DockerArchive(p),
            "rootfs" => Self::Rootfs(p),
            "rootfs-tar" => Self::RootfsTar(p),
            "ext4" => match path.rsplit_once(':') {
                Some((file, size)) if size.starts_with(|c: char| c.is_ascii_digit()) => {
                    let size = crate::fsimage::parse_size(size).map_err(|e| e.to_string())?;
                    Self::Ext4(file.into(), Some(size))
                }
                _ => Self::Ext4(p, None),
            },
            "squashfs" => Self::Squashfs(p),
            _ => {
                return Err(format!(
                    "unknown output type `{kind}`; use oci, oci-archive, docker-archive, rootfs, rootfs-tar, ext4 or squashfs"
                ));
            }
        })
    }
}

/// The `TYPE:PATH` the user wrote (sizes in bytes), for messages.
impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, path) = match self {
            Self::Oci(p) => ("oci", p),
            Self::OciArchive(p) => ("oci-archive", p),
            Self::DockerArchive(p) => ("docker-archive", p),
            Self::Rootfs(p) => ("rootfs", p),
            Self::RootfsTar(p) => ("rootfs-tar", p),
            Self::Ext4(p, _) => ("ext4", p),
            Self::Squashfs(p) => ("squashfs", p),
        };
        write!(f, "{kind}:{}", path.display())?;
        if let Self::Ext4(_, Some(size)) = self {
            write!(f, ":{size}")?;
        }
        Ok(())
    }
}

/// A blob written into the output.
struct Blob {
    digest: String,
    size: u64,
}

/// Settings shared by all exports.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Layer cutting.
    pub layers: LayerMode,
    /// `created` time (SOURCE_DATE_EPOCH or now).
    pub created: u64,
    /// Tag names recorded in the output (`name:tag`).
    pub tags: Vec<String>,
    /// Free space added to an `ext4:` output sized automatically.
    pub ext4_margin: u64,
}

/// The layers (uncompressed tars) and their history for `top`.
fn cut(
    store: &Store,
    top: &Snapshot,
    mode: LayerMode,
    work: &Path,
) -> anyhow::Result<Vec<(PathBuf, String, String)>> {
    let chain = store.chain(top)?;
    let with_layer: Vec<&Snapshot> = chain.iter().filter(|s| s.layer().is_some()).collect();
    let mut out = Vec::new();
    let squash = |group: &[&Snapshot], name: &str| -> anyhow::Result<(PathBuf, String, String)> {
        if let [one] = group {
            return Ok((
                one.layer().expect("has a layer"),
                one.meta.diff_id.clone().unwrap_or_default(),
                one.meta.created_by.clone(),
            ));
        }
        let path = work.join(name);
        let paths: Vec<PathBuf> = group.iter().filter_map(|s| s.layer()).collect();
        let info = layer::squash(&paths, &path)?;
        let by = group
            .iter()
            .map(|s| s.meta.created_by.as_str())
            .collect::<Vec<_>>()
            .join(" && ");
        Ok((path, info.diff_id, by))
    };
    match mode {
        LayerMode::Steps => {
            for s in &with_layer {
                out.push(squash(std::slice::from_ref(s), "")?);
            }
        }
        LayerMode::Squash => {
            if !with_layer.is_empty() {
                out.push(squash(&with_layer, "squashed.tar")?);
            }
        }
        LayerMode::Packages(budget) => {
            let (base, build): (Vec<&Snapshot>, Vec<&Snapshot>) =
                with_layer.iter().partition(|s| s.meta.base);
            for s in base {
                out.push(squash(&[s], "")?);
            }
            if !build.is_empty() {
                let merged = work.join("build.tar");
                let paths: Vec<PathBuf> = build.iter().filter_map(|s| s.layer()).collect();
                layer::squash(&paths, &merged)?;
                let db = installed_db(store, top)?.unwrap_or_default();
                out.extend(package_layers(&build, &db, &merged, budget, work)?);
            }
        }
        LayerMode::Default => {
            for (i, group) in default_groups(&chain, chain.len()).iter().enumerate() {
                out.push(squash(group, &format!("build-{i}.tar"))?);
            }
        }
    }
    Ok(out)
}

fn write_blob(dir: &Path, bytes: &[u8]) -> anyhow::Result<Blob> {
    let hex = hex::encode(Sha256::digest(bytes));
    fs_err::create_dir_all(dir.join("blobs/sha256"))?;
    write_atomic(&dir.join("blobs/sha256").join(&hex), bytes)?;
    Ok(Blob {
        digest: format!("sha256:{hex}"),
        size: bytes.len() as u64,
    })
}

fn gzip_blob(dir: &Path, tar: &Path, what: &str, reporter: &dyn Reporter) -> anyhow::Result<Blob> {
    fs_err::create_dir_all(dir.join("blobs/sha256"))?;
    let tmp = dir.join("blobs/sha256/.layer.tmp");
    let file = fs_err::File::create(&tmp)?;
    let hw = layer::HashWriter::new(std::io::BufWriter::new(file));
    let mut gz = GzipWriter::new(
        hw,
        GzipOptions {
            level: 6,
            ..GzipOptions::parallel()
        },
    );
    let f = fs_err::File::open(tar)?;
    let len = f.metadata()?.len();
    let p = reporter.progress(&format!("{what} ({})", human_bytes(len)), Some(len));
    std::io::copy(
        &mut ProgressRead::new(std::io::BufReader::new(f), p),
        &mut gz,
    )?;
    let (_, digest, size) = gz.finish()?.finish();
    let hex = digest.trim_start_matches("sha256:").to_string();
    fs_err::rename(&tmp, dir.join("blobs/sha256").join(&hex))?;
    Ok(Blob { digest, size })
}

/// Writes `top` to `output`, showing the compression of each layer through `reporter`.
pub fn export(
    store: &Store,
    top: &Snapshot,
    output: &Output,
    opts: &ExportOptions,
    reporter: &dyn crate::build::Reporter,
) -> anyhow::Result<()> {
    let work = store.tempdir("export-")?;
    match output {
        Output::Ext4(file, size) => {
            let staged = crate::fsimage::stage(store, top, work.path(), opts.created, reporter)?;
            crate::fsimage::ext4::write(
                &staged,
                file,
                *size,
                opts.ext4_margin,
                work.path(),
                reporter,
            )
        }
        Output::Squashfs(file) => {
            let staged = crate::fsimage::stage(store, top, work.path(), opts.created, reporter)?;
            crate::fsimage::squashfs::write(&staged, file, work.path(), reporter)
        }
        Output::Rootfs(dir) => {
            fs_err::create_dir_all(dir)?;
            crate::build::materialize(store, top, dir)
        }
        Output::RootfsTar(file) => {
            let root = work.path().join("rootfs");
            fs_err::create_dir_all(&root)?;
            crate::build::materialize(store, top, &root)?;
            let all = layer::scan(&root)?;
            let tmp = work.path().join("rootfs.tar");
            layer::write_diff(&root, &layer::Manifest::new(), &all, None, &tmp)?;
            fs_err::copy(&tmp, file)?;
            Ok(())
        }
        Output::Oci(dir) => {
            // A layout is addressed as DIR:TAG (skopeo, umoci): its ref.name is the tag.
            let tag = opts
                .tags
                .first()
                .and_then(|t| t.rsplit_once(':').map(|(_, t)| t.to_string()))
                .unwrap_or_else(|| "latest".into());
            write_oci(store, top, dir, Some(&tag), opts, work.path(), reporter)
        }
        Output::OciArchive(file) => {
            // An archive is loaded by name (`podman load` names the image after ref.name,
            // as `podman save` writes it): the full name, or none for an untagged image.
            let dir = work.path().join("oci");
            let name = opts.tags.first().map(String::as_str);
            write_oci(store, top, &dir, name, opts, work.path(), reporter)?;
            tar_dir(&dir, file)
        }
        Output::DockerArchive(file) => write_docker(store, top, file, opts, work.path(), reporter),
    }
}

fn config_bytes(top: &Snapshot, layers: &[(PathBuf, String, String)], created: &str) -> Vec<u8> {
    let mut cfg = top.meta.config.clone();
    // One history entry per layer (what Docker and podman check), then config-only steps.
    cfg.history = layers
        .iter()
        .map(|(_, _, by)| History {
            created: created.to_string(),
            created_by: by.clone(),
            empty_layer: false,
        })
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|(_, d, _)| d.clone()).collect();
    cfg.to_oci_json(
        &diff_ids,
        created,
        &crate::containerfile::Platform::host().arch,
    )
}

/// Writes an OCI layout into `dir`, its manifest named `ref_name` in the index.
fn write_oci(
    store: &Store,
    top: &Snapshot,
    dir: &Path,
    ref_name: Option<&str>,
    opts: &ExportOptions,
    work: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let created = rfc3339(opts.created);
    let layers = cut(store, top, opts.layers, work)?;
    fs_err::create_dir_all(dir)?;
    let mut descs = Vec::new();
    let n = layers.len();
    for (i, (tar, _, _)) in layers.iter().enumerate() {
        let b = gzip_blob(
            dir,
            tar,
            &format!("Compressing layer {}/{n}", i + 1),
            reporter,
        )?;
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": b.digest,
            "size": b.size,
        }));
    }
    let config = write_blob(dir, &config_bytes(top, &layers, &created))?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.digest,
            "size": config.size,
        },
        "layers": descs,
        "annotations": annotations(store, top)?,
    });
    let m = write_blob(dir, &serde_json::to_vec(&manifest)?)?;
    let mut desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": m.digest,
        "size": m.size,
    });
    if let Some(name) = ref_name {
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc],
    });
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_atomic(&dir.join("index.json"), &serde_json::to_vec(&index)?)?;
    Ok(())
}

fn write_docker(
    store: &Store,
    top: &Snapshot,
    file: &Path,
    opts: &ExportOptions,
    work: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let created = rfc3339(opts.created);
    let layers = cut(store, top, opts.layers, work)?;
    let cfg = config_bytes(top, &layers, &created);
    let cfg_hex = hex::encode(Sha256::digest(&cfg));
    let out = std::io::BufWriter::new(fs_err::File::create(file)?);
    let mut tar = tar::Builder::new(out);
    let put = |tar: &mut tar::Builder<_>,
               name: &str,
               bytes: &mut dyn std::io::Read,
               size: u64|
     -> anyhow::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(opts.created);
        tar.append_data(&mut h, name, bytes)?;
        Ok(())
    };
    put(
        &mut tar,
        &format!("{cfg_hex}.json"),
        &mut &cfg[..],
        cfg.len() as u64,
    )?;
    let mut names = Vec::new();
    let n = layers.len();
    for (i, (path, diff_id, _)) in layers.iter().enumerate() {
        let name = format!("{}.tar", diff_id.trim_start_matches("sha256:"));
        let f = fs_err::File::open(path)?;
        let size = f.metadata()?.len();
        let what = format!("Writing layer {}/{n} ({})", i + 1, human_bytes(size));
        let p = reporter.progress(&what, Some(size));
        put(
            &mut tar,
            &name,
            &mut ProgressRead::new(std::io::BufReader::new(f), p),
            size,
        )?;
        names.push(name);
    }
    let manifest = serde_json::json!([{
        "Config": format!("{cfg_hex}.json"),
        "RepoTags": opts.tags,
        "Layers": names,
    }]);
    let m = serde_json::to_vec(&manifest)?;
    put(&mut tar, "manifest.json", &mut &m[..], m.len() as u64)?;
    tar.into_inner()?
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(())
}

fn tar_dir(dir: &Path, file: &Path) -> anyhow::Result<()> {
    let out = std::io::BufWriter::new(fs_err::File::create(file)?);
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.map(|e| e.path().to_path_buf()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    for p in paths {
        let rel = p.strip_prefix(dir)?;
        if p.is_dir() {
            tar.append_dir(rel, &p)?;
        } else if p.is_file() {
            tar.append_path_with_name(&p, rel)?;
        } else {
            bail!("unexpected file type at `{}`", p.display());
        }
    }
    tar.into_inner()?
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()
        .context("failed to sync the archive")?;
    Ok(())
}

/// The SBOM-friendly package list: `dev.assemble.packages` = `name=version` per installed
/// apk package (from the newest `lib/apk/db/installed` in the chain), comma-separated.
fn annotations(
    store: &Store,
    top: &Snapshot,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(db) = installed_db(store, top)? {
        let mut pkgs: Vec<String> = db
            .packages
            .iter()
            .map(|p| format!("{}={}", p.entry.name, p.entry.version))
            .collect();
        pkgs.sort();
        out.insert("dev.assemble.packages".to_string(), pkgs.join(","));
    }
    Ok(out)
}

/// The newest `lib/apk/db/installed` in the chain, read from the layers (whiteouts of it or
/// of a parent directory hide it, as [`crate::fsimage::tree::read_file`] decides for any
/// path) and parsed by the `apk` crate, as `assemble inspect` and the build read it.
pub fn installed_db(store: &Store, top: &Snapshot) -> anyhow::Result<Option<InstalledDb>> {
    let Some(bytes) = crate::fsimage::tree::read_file(store, top, INSTALLED_PATH)? else {
        return Ok(None);
    };
    let db = InstalledDb::from_bytes(&bytes)
        .with_context(|| format!("`/{INSTALLED_PATH}` of the image"))?;
    Ok(Some(db))
}

/// Package name → installed size (`I:`).
fn installed_sizes(db: &InstalledDb) -> HashMap<String, u64> {
    db.packages
        .iter()
        .map(|p| (p.entry.name.clone(), p.entry.installed_size))
        .collect()
}

/// File path (no leading `/`) → owning package.
fn package_owners(db: &InstalledDb) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for p in &db.packages {
        for d in &p.dirs {
            for f in &d.files {
                let path = if d.path.is_empty() {
                    f.name.clone()
                } else {
                    format!("{}/{}", d.path, f.name)
                };
                out.insert(path, p.entry.name.clone());
            }
        }
    }
    out
}

/// `--layers=packages:BUDGET` for the build's layers (merged into `merged`): one layer per
/// installed package and one per COPY/ADD step, at most `budget` in all. Group 0 holds
/// directories, whiteouts and files of no package or COPY (so parents come first). When
/// there are more groups than the budget allows, COPY/ADD steps get at most half of it
/// and the last package (or COPY) layer takes the rest of its kind. A package's layer
/// depends only on its files, so images built from the same packages share it.
fn package_layers(
    build: &[&Snapshot],
    db: &InstalledDb,
    merged: &Path,
    budget: usize,
    work: &Path,
) -> anyhow::Result<Vec<(PathBuf, String, String)>> {
    let owners = package_owners(db);
    let names = packages_by_size(&owners, db);
    let (copies, copied) = copy_steps(build, &owners)?;
    let (pkg_slots, copy_slots) = slots(budget, names.len(), copies.len());
    let pkg_index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i.min(pkg_slots.saturating_sub(1))))
        .collect();
    let assign = |p: &str| -> Option<usize> {
        if let Some(n) = owners.get(p) {
            return pkg_index.get(n.as_str()).copied();
        }
        let c = *copied.get(p)?;
        (copy_slots > 0).then(|| pkg_slots + c.min(copy_slots - 1))
    };
    let groups = (pkg_slots + copy_slots).max(1);
    let label = group_labels(&names, &pkg_index, pkg_slots, &copies, copy_slots);
    Ok(layer::split_labelled(merged, groups, &assign, work)?
        .into_iter()
        .map(|(g, path, info)| (path, info.diff_id, label[g].clone()))
        .collect())
}

/// The packages that own files, largest first (installed size, `I:`), so a tight budget
/// still gives the packages that weigh most a layer of their own; ties by name, for a
/// stable cut.
fn packages_by_size(owners: &HashMap<String, String>, db: &InstalledDb) -> Vec<String> {
    let mut names: Vec<String> = owners.values().cloned().collect();
    names.sort();
    names.dedup();
    let sizes = installed_sizes(db);
    names.sort_by(|a, b| {
        let size = |n: &String| sizes.get(n).copied().unwrap_or(0);
        size(b).cmp(&size(a)).then_with(|| a.cmp(b))
    });
    names
}

/// The COPY/ADD steps that wrote files of no package, and each such file's step (its
/// index among them; a later step's version of a path wins).
fn copy_steps<'a>(
    build: &[&'a Snapshot],
    owners: &HashMap<String, String>,
) -> anyhow::Result<(Vec<&'a Snapshot>, HashMap<String, usize>)> {
    let mut copies: Vec<&Snapshot> = Vec::new();
    let mut copied: HashMap<String, usize> = HashMap::new();
    for s in build {
        let by = s.meta.created_by.as_str();
        if !(by.starts_with("COPY") || by.starts_with("ADD")) {
            continue;
        }
        let Some(l) = s.layer() else { continue };
        let mut a = tar::Archive::new(std::io::BufReader::new(fs_err::File::open(&l)?));
        let mut any = false;
        for e in a.entries()? {
            let e = e?;
            if e.header().entry_type() == tar::EntryType::Directory {
                continue;
            }
            let name = String::from_utf8_lossy(&e.path_bytes())
                .trim_start_matches("./")
                .to_string();
            if !owners.contains_key(&name) {
                copied.insert(name, copies.len());
                any = true;
            }
        }
        if any {
            copies.push(s);
        }
    }
    Ok((copies, copied))
}

/// How many package and COPY/ADD groups fit in `budget` layers (one goes to group 0):
/// all when they fit, else COPY/ADD steps get at most half and packages the rest.
fn slots(budget: usize, n_pkg: usize, n_copy: usize) -> (usize, usize) {
    let available = budget.saturating_sub(1).max(1);
    let copy_slots = if n_pkg + n_copy <= available {
        n_copy
    } else {
        n_copy.min(available / 2)
    };
    let pkg_slots = n_pkg.min(available - copy_slots);
    let copy_slots = n_copy.min(available - pkg_slots);
    (pkg_slots, copy_slots)
}

/// Names of what each group holds, for the history.
fn group_labels(
    names: &[String],
    pkg_index: &HashMap<&str, usize>,
    pkg_slots: usize,
    copies: &[&Snapshot],
    copy_slots: usize,
) -> Vec<String> {
    let mut label = vec!["directories and files of no package".to_string()];
    for k in 0..pkg_slots {
        let mine: Vec<&str> = names
            .iter()
            .filter(|n| pkg_index[n.as_str()] == k)
            .map(String::as_str)
            .collect();
        label.push(format!("apk package {}", mine.join(", ")));
    }
    for k in 0..copy_slots {
        let mine: Vec<&str> = copies
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i).min(copy_slots - 1) == k)
            .map(|(_, s)| s.meta.created_by.as_str())
            .collect();
        label.push(mine.join(" && "));
    }
    label
}

/// The default cut of `chain[..end]`: the base image's layers, cut the way that image
/// exports them (recursively, so an image built FROM ours shares our layers), then one
/// layer for the steps above it. Imported base layers stay one layer each.
fn default_groups(chain: &[Snapshot], end: usize) -> Vec<Vec<&Snapshot>> {
    let Some(top) = end.checked_sub(1).map(|i| &chain[i]) else {
        return Vec::new();
    };
    let from = top
        .meta
        .from
        .as_ref()
        .and_then(|f| chain[..end].iter().position(|s| &s.id == f));
    let (mut groups, start) = match from {
        Some(f) => (default_groups(chain, f + 1), f + 1),
        None => {
            let base: Vec<Vec<&Snapshot>> = chain[..end]
                .iter()
                .filter(|s| s.meta.base && s.layer().is_some())
                .map(|s| vec![s])
                .collect();
            let n = chain[..end].iter().take_while(|s| s.meta.base).count();
            (base, n)
        }
    };
    let rest: Vec<&Snapshot> = chain[start..end]
        .iter()
        .filter(|s| s.layer().is_some())
        .collect();
    if !rest.is_empty() {
        groups.push(rest);
    }
    groups
}
