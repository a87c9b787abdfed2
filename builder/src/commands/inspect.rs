//! `apkbuild inspect`: what is inside a package (.PKGINFO, scripts, files with modes and
//! checksums, signatures) or an index (description, signatures, entries). `--json` for
//! scripts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use apk::index::SignedIndex;
use apk::package::Package;
use apk::tar::EntryType;
use serde_json::json;

use super::ApkFile;
use crate::env::Env;

/// Arguments of `apkbuild inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A package or an index.
    pub file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `apkbuild inspect`.
pub fn run(args: &Args, _env: &Env) -> anyhow::Result<ExitCode> {
    let file = super::open_apk_file(&args.file)?;
    let mut out = std::io::stdout().lock();
    match file {
        ApkFile::Package(pkg) if args.json => package_json(&pkg, &mut out)?,
        ApkFile::Package(pkg) => package_text(&pkg, &args.file, &mut out)?,
        ApkFile::Index(idx) if args.json => index_json(&idx, &mut out)?,
        ApkFile::Index(idx) => index_text(&idx, &args.file, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A package as JSON: identity, .PKGINFO, signatures, scripts, files.
fn package_json(pkg: &Package, out: &mut impl Write) -> anyhow::Result<()> {
    let signatures: Vec<_> = pkg
        .signatures
        .iter()
        .map(|s| json!({"entry": s.name, "key": s.key_name, "type": s.kind.map(|k| k.to_string())}))
        .collect();
    let files: Vec<_> = pkg
        .files
        .iter()
        .map(|f| {
            let e = &f.entry;
            json!({
                "path": e.path, "type": kind_name(e.kind), "mode": format!("{:04o}", e.mode),
                "uid": e.uid, "gid": e.gid, "uname": e.uname, "gname": e.gname,
                "size": e.size, "link": (!e.link.is_empty()).then_some(&e.link),
                "sha1": e.checksum_sha1.map(hex::encode),
            })
        })
        .collect();
    let scripts: Vec<_> = pkg
        .scripts
        .iter()
        .map(|(n, c)| json!({"name": n, "size": c.len()}))
        .collect();
    let doc = json!({
        "kind": "package",
        "identity": pkg.identity().to_string(),
        "file_size": pkg.file_size,
        "pkginfo": String::from_utf8_lossy(&pkg.pkginfo_raw),
        "signatures": signatures,
        "scripts": scripts,
        "files": files,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

/// A package for people: signatures, .PKGINFO, scripts, one line per file.
fn package_text(pkg: &Package, path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "# {} ({} bytes, C:{})",
        path.display(),
        pkg.file_size,
        pkg.identity()
    )?;
    writeln!(out, "## signatures")?;
    for s in &pkg.signatures {
        writeln!(out, "{}", s.name)?;
    }
    writeln!(out, "## .PKGINFO")?;
    out.write_all(&pkg.pkginfo_raw)?;
    if !pkg.scripts.is_empty() {
        writeln!(out, "## scripts")?;
        for (name, content) in &pkg.scripts {
            writeln!(out, "{name} ({} bytes)", content.len())?;
        }
    }
    writeln!(out, "## files")?;
    for f in &pkg.files {
        let e = &f.entry;
        let link = if e.link.is_empty() {
            String::new()
        } else {
            format!(" -> {}", e.link)
        };
        writeln!(
            out,
            "{} {:04o} {}:{} {:>9} {} {}{link}",
            kind_char(e.kind),
            e.mode,
            e.uid,
            e.gid,
            e.size,
            e.checksum_sha1.map_or_else(|| "-".repeat(40), hex::encode),
            e.path
        )?;
    }
    Ok(())
}

/// An index as JSON: description, signatures, entries.
fn index_json(idx: &SignedIndex, out: &mut impl Write) -> anyhow::Result<()> {
    let packages: Vec<_> = idx
        .index
        .packages
        .iter()
        .map(|p| json!({"name": p.name, "version": p.version, "arch": p.arch, "checksum": p.checksum.to_string(),
            "size": p.file_size, "depends": p.depends, "provides": p.provides}))
        .collect();
    let doc = json!({
        "kind": "index",
        "description": idx.index.description,
        "signatures": idx.signatures.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "packages": packages,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

/// An index for people: description, signatures, the APKINDEX text.
fn index_text(idx: &SignedIndex, path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "# {} ({} packages)",
        path.display(),
        idx.index.packages.len()
    )?;
    if let Some(d) = &idx.index.description {
        writeln!(out, "description: {d}")?;
    }
    for s in &idx.signatures {
        writeln!(out, "signature: {}", s.name)?;
    }
    write!(out, "\n{}", idx.index.render_text())?;
    Ok(())
}

fn kind_char(kind: EntryType) -> char {
    match kind {
        EntryType::File => '-',
        EntryType::HardLink => 'h',
        EntryType::Symlink => 'l',
        EntryType::CharDevice => 'c',
        EntryType::BlockDevice => 'b',
        EntryType::Dir => 'd',
        EntryType::Fifo => 'p',
    }
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::File => "file",
        EntryType::HardLink => "hardlink",
        EntryType::Symlink => "symlink",
        EntryType::CharDevice => "char",
        EntryType::BlockDevice => "block",
        EntryType::Dir => "dir",
        EntryType::Fifo => "fifo",
    }
}
