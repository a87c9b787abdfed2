//! `apkbuild pack`: package a ready directory tree (what abuild's `create_apks` does after
//! `package()`), signed with the packager key.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use apk::package::{PackageWriter, Script, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;

use crate::env::Env;

/// Arguments of `apkbuild pack`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package root (`$pkgdir`): its contents become the package's files.
    pub dir: PathBuf,
    /// Output file, or a directory to write `<name>-<version>.apk` into (created when
    /// the name ends with `/`).
    #[arg(short, long, default_value = ".")]
    pub output: PathBuf,
    /// Start from this .PKGINFO (size and datahash are recomputed); flags below override it.
    #[arg(long, value_name = "FILE")]
    pub pkginfo: Option<PathBuf>,
    /// Package name.
    #[arg(long)]
    pub name: Option<String>,
    /// Full version with release, e.g. `1.2.3-r0`.
    #[arg(long)]
    pub version: Option<String>,
    /// Architecture (`x86_64`, `noarch`, …).
    #[arg(long)]
    pub arch: Option<String>,
    /// One-line description.
    #[arg(long)]
    pub description: Option<String>,
    /// Upstream URL.
    #[arg(long)]
    pub url: Option<String>,
    /// SPDX license expression.
    #[arg(long)]
    pub license: Option<String>,
    /// Origin (the APKBUILD's main package) [default: name].
    #[arg(long)]
    pub origin: Option<String>,
    /// Maintainer, `Name <email>`.
    #[arg(long)]
    pub maintainer: Option<String>,
    /// Dependency atom (repeatable): `busybox`, `so:libc.musl-x86_64.so.1`, `foo>=1.2`.
    #[arg(long = "depends", value_name = "ATOM")]
    pub depends: Vec<String>,
    /// Provided name (repeatable): `cmd:hello=1.0-r0`, `so:libhello.so.1=1.0`.
    #[arg(long = "provides", value_name = "ATOM")]
    pub provides: Vec<String>,
    /// install_if atom (repeatable).
    #[arg(long = "install-if", value_name = "ATOM")]
    pub install_if: Vec<String>,
    /// Replaced package (repeatable).
    #[arg(long = "replaces", value_name = "NAME")]
    pub replaces: Vec<String>,
    /// provider_priority.
    #[arg(long)]
    pub provider_priority: Option<u32>,
    /// Install script `.TYPE=FILE` (repeatable), e.g. `.post-install=hello.post-install`.
    #[arg(long = "script", value_name = ".TYPE=FILE")]
    pub scripts: Vec<String>,
    /// Trigger directory glob (repeatable; needs a `.trigger` script).
    #[arg(long = "trigger", value_name = "GLOB")]
    pub triggers: Vec<String>,
    /// Private key to sign with [default: $PACKAGER_PRIVKEY or abuild.conf].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Signature type.
    #[arg(long = "type", default_value = "rsa")]
    pub kind: SignatureType,
    /// Write an unsigned package (installable only with --allow-untrusted).
    #[arg(long, conflicts_with = "key")]
    pub unsigned: bool,
}

/// Runs `apkbuild pack`.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<ExitCode> {
    let source_date = env.source_date_or(super::now());
    let info = pkginfo(args, env, source_date)?;
    let scripts = read_scripts(&args.scripts)?;
    let key = if args.unsigned {
        None
    } else {
        Some(crate::keyconf::load_privkey(args.key.as_ref(), env)?)
    };
    let entries = scan_tree(&args.dir, &TreeOptions::new(source_date))
        .with_context(|| format!("failed to read package tree `{}`", args.dir.display()))?;
    let mut writer = PackageWriter::new(info.clone(), source_date);
    writer.scripts = scripts;
    if let Some(key) = &key {
        writer.signers.push((key, args.kind));
    }
    let out_path = output_path(&args.output, &info)?;
    tracing::info!(
        "packaging {} entries from {}",
        entries.len(),
        args.dir.display()
    );
    let mut file = apk::atomic::AtomicFile::create(&out_path)?.with_mode(0o644);
    let written = {
        let mut buf = BufWriter::with_capacity(1 << 20, &mut file);
        let written = writer.write(&entries, &mut buf)?;
        buf.flush()?;
        written
    };
    file.commit()?;
    writeln!(
        std::io::stdout().lock(),
        "{} ({} bytes, C:{})",
        out_path.display(),
        written.file_size,
        written.identity
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The `.PKGINFO`: the `--pkginfo` file, if any, with the flags applied over it.
fn pkginfo(args: &Args, env: &Env, source_date: u64) -> anyhow::Result<PkgInfo> {
    let mut info = match &args.pkginfo {
        Some(p) => PkgInfo::parse(&fs_err::read(p)?)
            .with_context(|| format!("failed to read `{}`", p.display()))?,
        None => PkgInfo::default(),
    };
    info.datahash.clear();
    let set = |field: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            field.clone_from(v);
        }
    };
    set(&mut info.pkgname, &args.name);
    set(&mut info.pkgver, &args.version);
    set(&mut info.arch, &args.arch);
    set(&mut info.pkgdesc, &args.description);
    set(&mut info.url, &args.url);
    set(&mut info.license, &args.license);
    set(&mut info.origin, &args.origin);
    set(&mut info.maintainer, &args.maintainer);
    info.depends.extend(args.depends.iter().cloned());
    info.provides.extend(args.provides.iter().cloned());
    info.install_if.extend(args.install_if.iter().cloned());
    info.replaces.extend(args.replaces.iter().cloned());
    if args.provider_priority.is_some() {
        info.provider_priority = args.provider_priority;
    }
    if !args.triggers.is_empty() {
        info.triggers.clone_from(&args.triggers);
    }
    if info.pkgname.is_empty() || info.pkgver.is_empty() {
        bail!("--name and --version are required (or a --pkginfo that has them)");
    }
    if !apk::version::is_valid(&info.pkgver) {
        bail!(
            "version `{}` is not a valid apk version (expected e.g. `1.2.3-r0`)",
            info.pkgver
        );
    }
    if info.arch.is_empty() {
        info.arch = std::env::consts::ARCH.to_string();
    }
    if info.origin.is_empty() {
        info.origin.clone_from(&info.pkgname);
    }
    if let Some(p) = &env.packager
        && info.packager.is_empty()
    {
        info.packager.clone_from(p);
    }
    info.builddate = source_date;
    Ok(info)
}

/// The `--script .TYPE=FILE` scripts, read.
fn read_scripts(specs: &[String]) -> anyhow::Result<Vec<Script>> {
    specs
        .iter()
        .map(|spec| {
            let (name, file) = spec
                .split_once('=')
                .with_context(|| format!("--script `{spec}`: expected `.TYPE=FILE`"))?;
            Ok(Script {
                name: name.to_string(),
                content: fs_err::read(file)?,
            })
        })
        .collect()
}

/// Where the package goes: `-o FILE`, or `<name>-<version>.apk` in `-o DIR`. `-o out/` names
/// a directory even before it exists, as `cp` and `tar -C` users expect.
fn output_path(output: &Path, info: &PkgInfo) -> anyhow::Result<PathBuf> {
    let names_dir = output.as_os_str().as_encoded_bytes().ends_with(b"/");
    if names_dir {
        fs_err::create_dir_all(output)?;
    }
    Ok(if names_dir || output.is_dir() {
        output.join(info.file_name())
    } else {
        output.to_path_buf()
    })
}
