//! Filesystem images of an image's root for VMs such as Firecracker: `ext4:FILE[:SIZE]`
//! ([`ext4`], e2fsprogs' `mkfs.ext4 -d`) and `squashfs:FILE` ([`squashfs`], `mksquashfs`).
//!
//! Both start from the same staging tree ([`stage`]):
//! - the image's layers extracted into a directory in the store's temp area;
//! - the owners, modes, mtimes and device nodes the layers record ([`tree::merged`]), which
//!   the tools then write over what the extraction could do (unprivileged it cannot chown or
//!   mknod, and every ctime is "now"): the image's owners, never the host's;
//! - `/etc/assemble/config.json`: the image config (OCI names: `Entrypoint`, `Cmd`, `Env`,
//!   `User`, `WorkingDir`, `ExposedPorts`, `Labels`, `StopSignal`, `Volumes`, `Healthcheck`,
//!   plus `Shell` and `Init`);
//! - `/sbin/init` per [`init::plan`], and the mount points `/dev /proc /sys /run /tmp` and the
//!   nodes `/dev/console` and `/dev/null` when the image lacks them (the kernel opens
//!   `/dev/console` for PID 1 before anything is mounted).
//!
//! Every time stamp the export adds is `created` (SOURCE_DATE_EPOCH when set), so the same
//! image and SOURCE_DATE_EPOCH give the same bytes.

pub mod ext4;
pub mod init;
pub mod squashfs;
pub mod tree;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use apk::rootfs::RootDir;
use sha2::{Digest, Sha256};

use crate::build::Reporter;
use crate::config::ImageConfig;
use crate::store::{Snapshot, Store};
use init::Init;
use tree::{Kind, Meta, Tree};

/// Where the image config is written inside the filesystem.
pub const CONFIG_PATH: &str = "etc/assemble/config.json";

/// Errors of the filesystem-image outputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsImageError {
    /// A required program is not installed.
    #[error("`{tool}` is not installed; install the Debian package `{package}` (ci/setup does)")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// A program failed.
    #[error("`{tool}` failed ({status}) writing `{file}`:\n{output}")]
    ToolFailed {
        /// The program.
        tool: &'static str,
        /// Exit status.
        status: String,
        /// The output file.
        file: PathBuf,
        /// What it printed.
        output: String,
    },
    /// The explicit SIZE cannot hold the image.
    #[error(
        "ext4 size {size} bytes is too small for `{file}`: its {entries} entries ({content} bytes of files) and the filesystem's metadata need {fits_from} bytes at this size (the journal and inode tables grow with the size; the smallest size that fits is {needed}); give a larger SIZE (e.g. ext4:{file}:{suggest}M) or none to size it automatically"
    )]
    TooSmall {
        /// The output.
        file: PathBuf,
        /// What was asked.
        size: u64,
        /// The smallest size that fits.
        needed: u64,
        /// The smallest size at or above `size` that fits.
        fits_from: u64,
        /// Sum of file sizes.
        content: u64,
        /// Entries.
        entries: u64,
        /// A size that fits, in MiB.
        suggest: u64,
    },
    /// A size could not be parsed.
    #[error("`{text}` is not a size; use bytes or a number with K, M or G (e.g. 512M)")]
    BadSize {
        /// The text.
        text: String,
    },
    /// A name no tool can express.
    #[error("`{path}` cannot be written to a {format} image: {reason}")]
    BadName {
        /// The path.
        path: String,
        /// ext4 or squashfs.
        format: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// No `/sbin/init` could be made.
    #[error(transparent)]
    Init(#[from] init::InitError),
}

/// `512M`, `2G`, `100K`, `4096`: bytes (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, FsImageError> {
    let bad = || FsImageError::BadSize { text: text.into() };
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(bad)
}

/// The staged root a filesystem image is made from.
#[derive(Debug)]
pub struct Staged {
    /// The extracted root.
    pub dir: PathBuf,
    /// What every path must be in the image (the root directory itself excluded).
    pub tree: Tree,
    /// Paths of `tree` the extraction could not create (device nodes when unprivileged, the
    /// added `/dev` nodes): the tools create them.
    pub absent: BTreeSet<String>,
    /// A digest of the image (layer diff_ids and config): seeds UUIDs.
    pub digest: [u8; 32],
    /// Time stamp of everything the export adds.
    pub created: u64,
    /// What `/sbin/init` is.
    pub init: Init,
}

impl Staged {
    /// 16 bytes derived from the image digest and `purpose`, formatted as a version 4 UUID
    /// (random-looking, but the same for the same image).
    pub fn uuid(&self, purpose: &str) -> String {
        let mut h = Sha256::new();
        h.update(purpose.as_bytes());
        h.update([0]);
        h.update(self.digest);
        let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let x = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &x[..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..]
        )
    }
}

/// The image config as written to [`CONFIG_PATH`]: the OCI config object, plus `Shell` when
/// SHELL was set and `Init` (what `/sbin/init` is: `image`, `s6` or `generated`).
pub fn config_json(cfg: &ImageConfig, init: &Init) -> Vec<u8> {
    let oci: serde_json::Value =
        serde_json::from_slice(&cfg.to_oci_json(&[], "", "")).expect("our own JSON");
    let mut c = oci["config"].clone();
    if let Some(sh) = &cfg.shell {
        c["Shell"] = serde_json::json!(sh);
    }
    c["Init"] = serde_json::json!(init.describe());
    let mut out = serde_json::to_vec_pretty(&c).expect("serialises");
    out.push(b'\n');
    out
}

/// Follows symlinked directories of `rel` through `tree` (inside the root), so an addition
/// under `sbin` lands in `usr/sbin` on a merged-/usr image and is recorded there.
fn physical(tree: &Tree, rel: &str) -> String {
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    let mut i = 0;
    let mut hops = 0;
    while i + 1 < parts.len() && hops < 40 {
        let prefix = parts[..=i].join("/");
        if let Some(Meta {
            kind: Kind::Symlink(t),
            ..
        }) = tree.get(&prefix)
        {
            hops += 1;
            let base: Vec<String> = if t.starts_with('/') {
                Vec::new()
            } else {
                parts[..i].to_vec()
            };
            let mut resolved = base;
            for c in t.split('/') {
                match c {
                    "" | "." => {}
                    ".." => {
                        resolved.pop();
                    }
                    c => resolved.push(c.to_string()),
                }
            }
            resolved.extend(parts[i + 1..].iter().cloned());
            parts = resolved;
            i = 0;
            continue;
        }
        i += 1;
    }
    parts.join("/")
}

fn ensure_dir(root: &RootDir, tree: &mut Tree, rel: &str, created: u64) -> anyhow::Result<()> {
    let mut cur = String::new();
    for part in rel.split('/') {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(part);
        if tree.contains_key(&cur) {
            continue;
        }
        root.create_dir_all(&cur, 0o755)?;
        root.set_mode(&cur, 0o755)?;
        tree.insert(cur.clone(), Meta::root_owned(Kind::Dir, 0o755, created));
    }
    Ok(())
}

fn add_file(
    root: &RootDir,
    tree: &mut Tree,
    rel: &str,
    bytes: &[u8],
    mode: u32,
    created: u64,
) -> anyhow::Result<()> {
    let rel = physical(tree, rel);
    if let Some((dir, _)) = rel.rsplit_once('/') {
        ensure_dir(root, tree, dir, created)?;
    }
    let mut f = root.create_file(&rel, mode)?;
    f.write_all(bytes)
        .with_context(|| format!("failed to write `{rel}` in the staging root"))?;
    root.set_mode(&rel, mode)?;
    tree.insert(
        rel,
        Meta::root_owned(Kind::File(bytes.len() as u64), mode, created),
    );
    Ok(())
}

/// A digest of what the image is: its layers' diff_ids and its config.
fn image_digest(store: &Store, top: &Snapshot) -> anyhow::Result<[u8; 32]> {
    let mut h = Sha256::new();
    for s in store.chain(top)? {
        if let Some(d) = &s.meta.diff_id {
            h.update(d.as_bytes());
            h.update(b"\n");
        }
    }
    h.update(top.meta.config.to_oci_json(&[], "", ""));
    Ok(h.finalize().into())
}

/// Extracts `top` under `work` and adds what a VM needs (see the module docs).
pub fn stage(
    store: &Store,
    top: &Snapshot,
    work: &Path,
    created: u64,
    reporter: &dyn Reporter,
) -> anyhow::Result<Staged> {
    let dir = extract(store, top, work, reporter)?;
    let mut tree = tree::merged(store, top)?;
    let root = RootDir::open(&dir)?;
    add_extracted_parents(&dir, &mut tree, created)?;
    add_vm_dirs(&root, &mut tree, created)?;
    let cfg = &top.meta.config;
    let ids = crate::sandbox::resolve_user(&dir, &cfg.user)
        .with_context(|| format!("USER `{}` of the image", cfg.user))?;
    let init = init::plan(cfg, &tree, ids).map_err(FsImageError::from)?;
    add_init(&root, &mut tree, &init, created)?;
    add_file(
        &root,
        &mut tree,
        CONFIG_PATH,
        &config_json(cfg, &init),
        0o644,
        created,
    )?;
    let absent = absent_nodes(&root, &tree)?;
    Ok(Staged {
        dir,
        tree,
        absent,
        digest: image_digest(store, top)?,
        created,
        init,
    })
}

/// Extracts `top` into `work/root`.
fn extract(
    store: &Store,
    top: &Snapshot,
    work: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<PathBuf> {
    reporter.line("--> Extracting the image root");
    let started = std::time::Instant::now();
    let dir = work.join("root");
    fs_err::create_dir_all(&dir)?;
    crate::build::materialize(store, top, &dir)?;
    reporter.line(&format!(
        "--> Extracted in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(dir)
}

/// Parents the layers never listed were made by the extraction: root's, as Docker does.
fn add_extracted_parents(dir: &Path, tree: &mut Tree, created: u64) -> anyhow::Result<()> {
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e?;
        let rel = e.path().strip_prefix(dir)?.to_string_lossy().into_owned();
        if tree.contains_key(&rel) {
            continue;
        }
        let md = e.path().symlink_metadata()?;
        let kind = if md.is_dir() {
            Kind::Dir
        } else if md.file_type().is_symlink() {
            Kind::Symlink(fs_err::read_link(e.path())?.to_string_lossy().into_owned())
        } else if md.file_type().is_fifo() {
            Kind::Fifo
        } else {
            Kind::File(md.len())
        };
        tree.insert(rel, Meta::root_owned(kind, md.mode() & 0o7777, created));
    }
    Ok(())
}

/// The mount points a booted VM needs, and `/dev/console` and `/dev/null`.
fn add_vm_dirs(root: &RootDir, tree: &mut Tree, created: u64) -> anyhow::Result<()> {
    for (d, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("run", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        if !tree.contains_key(d) {
            root.create_dir_all(d, 0o755)?;
            root.set_mode(d, mode)?;
            tree.insert(d.into(), Meta::root_owned(Kind::Dir, mode, created));
        }
    }
    if tree.get("dev").is_some_and(|m| m.kind == Kind::Dir) {
        for (p, major, minor, mode) in [("dev/console", 5, 1, 0o600), ("dev/null", 1, 3, 0o666)] {
            tree.entry(p.into())
                .or_insert_with(|| Meta::root_owned(Kind::Char(major, minor), mode, created));
        }
    }
    Ok(())
}

/// `/sbin/init` per `init`: the image's own, a link to its program, or our script.
fn add_init(root: &RootDir, tree: &mut Tree, init: &Init, created: u64) -> anyhow::Result<()> {
    match init {
        Init::Own => {}
        Init::Link(target) => {
            let rel = physical(tree, "sbin/init");
            if let Some((d, _)) = rel.rsplit_once('/') {
                ensure_dir(root, tree, d, created)?;
            }
            root.symlink(&rel, target)?;
            tree.insert(
                rel,
                Meta::root_owned(Kind::Symlink(target.clone()), 0o777, created),
            );
        }
        Init::Script(s) | Init::S6Script(s) => {
            add_file(root, tree, "sbin/init", s.as_bytes(), 0o755, created)?;
        }
    }
    Ok(())
}

/// The device nodes and fifos of `tree` the extraction could not make (the tools make
/// them); any other entry missing on disk, or a name that is not UTF-8, is an error.
fn absent_nodes(root: &RootDir, tree: &Tree) -> anyhow::Result<BTreeSet<String>> {
    let mut absent = BTreeSet::new();
    for (p, m) in tree {
        if p.contains('\u{fffd}') {
            return Err(FsImageError::BadName {
                path: p.clone(),
                format: "filesystem",
                reason: "file names that are not UTF-8 are not supported by the VM outputs",
            }
            .into());
        }
        if root.exists(p)? {
            continue;
        }
        match m.kind {
            Kind::Char(..) | Kind::Block(..) | Kind::Fifo => {
                absent.insert(p.clone());
            }
            _ => anyhow::bail!(
                "`{p}` is in the image but was not extracted; report this as a bug of assemble"
            ),
        }
    }
    Ok(absent)
}

/// Runs `cmd`, mapping "not installed" and failures to [`FsImageError`].
fn run_tool(
    mut cmd: std::process::Command,
    tool: &'static str,
    package: &'static str,
    file: &Path,
) -> Result<std::process::Output, FsImageError> {
    // A tool reading SOURCE_DATE_EPOCH on its own would override what we pass explicitly.
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            FsImageError::ToolMissing { tool, package }
        } else {
            FsImageError::ToolFailed {
                tool,
                status: e.to_string(),
                file: file.to_path_buf(),
                output: String::new(),
            }
        }
    })?;
    if !out.status.success() {
        return Err(FsImageError::ToolFailed {
            tool,
            status: out.status.to_string(),
            file: file.to_path_buf(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("100K").unwrap(), 102_400);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "M", "0", "-1M", "1T", "1.5G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn sizes_round_trip_and_never_panic(n in 1u64..1 << 20, unit in 0usize..4, junk in ".{0,12}") {
            let (suffix, mult) = [("", 1u64), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)][unit];
            proptest::prop_assert_eq!(parse_size(&format!("{n}{suffix}")).unwrap(), n * mult);
            let _ = parse_size(&junk);
        }

        #[test]
        fn ext4_outputs_parse_file_and_size(name in "[a-z/._-]{1,20}", mb in 1u64..4096) {
            let o: crate::export::Output = format!("ext4:{name}:{mb}M").parse().unwrap();
            proptest::prop_assert_eq!(
                &o,
                &crate::export::Output::Ext4(name.clone().into(), Some(mb << 20))
            );
            // Messages name the output as written, so it must read back the same.
            proptest::prop_assert_eq!(o.to_string().parse::<crate::export::Output>().unwrap(), o);
            for kind in ["oci", "oci-archive", "docker-archive", "rootfs", "rootfs-tar", "squashfs"] {
                let text = format!("{kind}:{name}");
                let o: crate::export::Output = text.parse().unwrap();
                proptest::prop_assert_eq!(o.to_string(), text);
            }
            let o: crate::export::Output = format!("ext4:{name}").parse().unwrap();
            proptest::prop_assert_eq!(o, crate::export::Output::Ext4(name.into(), None));
        }
    }

    #[test]
    fn additions_follow_symlinked_directories() {
        let mut t = Tree::new();
        t.insert(
            "sbin".into(),
            Meta::root_owned(Kind::Symlink("usr/sbin".into()), 0o777, 0),
        );
        t.insert(
            "lib".into(),
            Meta::root_owned(Kind::Symlink("/usr/lib".into()), 0o777, 0),
        );
        assert_eq!(physical(&t, "sbin/init"), "usr/sbin/init");
        assert_eq!(physical(&t, "lib/x/y"), "usr/lib/x/y");
        assert_eq!(physical(&t, "etc/a"), "etc/a");
    }
}
