//! `apkbuild index`: `apk index` + `abuild-sign` in one step. With `--index OLD`, packages
//! whose file name and size match an entry of the old index are not read again.
//!
//! Packages are read and verified on every core (signatures through aws-lc-rs, see
//! `apk::sign`), then indexed in the order given, so the output and the first error
//! reported do not depend on which thread finished first.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use apk::index::{ApkIndex, IndexEntry, SignedIndex};
use apk::package::{Package, ReadLimits};
use apk::sign::SignatureType;

use crate::env::Env;

/// Arguments of `apkbuild index`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packages to index.
    #[arg(required = true)]
    pub packages: Vec<PathBuf>,
    /// Where to write the index.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Sign with this private key (like abuild-sign); unsigned if absent.
    #[arg(long = "sign", value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Signature type.
    #[arg(short = 't', long = "type", default_value = "rsa")]
    pub kind: SignatureType,
    /// DESCRIPTION text (abuild: `"$repo $(git describe)"`).
    #[arg(short, long)]
    pub description: Option<String>,
    /// Reuse entries of this index for unchanged packages.
    #[arg(short = 'x', long = "index", value_name = "FILE")]
    pub old_index: Option<PathBuf>,
    /// Write this arch in `A:` (abuild rewrites `noarch` to the repository's arch).
    #[arg(long, value_name = "ARCH")]
    pub rewrite_arch: Option<String>,
    /// Also verify every package's signature against these keys (repeatable).
    #[arg(long = "keys-dir", value_name = "DIR")]
    pub keys_dirs: Vec<PathBuf>,
}

/// Runs `apkbuild index`.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<ExitCode> {
    let keys = if args.keys_dirs.is_empty() {
        None
    } else {
        Some(super::load_keyring(&args.keys_dirs, env)?)
    };
    let old = match &args.old_index {
        Some(p) if p.exists() => Some(SignedIndex::open(p)?.index),
        _ => None,
    };
    let key = args
        .key
        .as_ref()
        .map(|k| crate::keyconf::load_privkey(Some(k), env))
        .transpose()?;
    let (jobs, reused, read) = plan(&args.packages, old.as_ref(), keys.is_some())?;
    let entries = read_all(&jobs, keys.as_ref());
    let index = collect(args, entries)?;
    let mtime = env.source_date_or(
        index
            .packages
            .iter()
            .map(|p| p.build_time)
            .max()
            .unwrap_or_default(),
    );
    let signers: Vec<(&dyn apk::sign::Signer, SignatureType)> = match &key {
        Some(k) => vec![(k, args.kind)],
        None => Vec::new(),
    };
    let bytes = index.to_bytes(&signers, mtime)?;
    apk::atomic::write_atomic(&args.output, &bytes)
        .with_context(|| format!("failed to write `{}`", args.output.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "{}: {} packages ({read} read, {reused} reused){}",
        args.output.display(),
        index.packages.len(),
        key.as_ref()
            .map(|k| format!(", signed by {}", apk::sign::Signer::key_name(k)))
            .unwrap_or_default()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A package's entry: `Ok` when already known, `Err(path)` when it is to be read.
type Job<'a> = Result<IndexEntry, &'a std::path::Path>;

/// A job per package: `Ok` with the old index's entry when its file name and size match
/// and signatures need no check, else `Err(path)` to read it; and how many of each.
fn plan<'a>(
    packages: &'a [PathBuf],
    old: Option<&'a ApkIndex>,
    verify: bool,
) -> anyhow::Result<(Vec<Job<'a>>, usize, usize)> {
    // (file name, size) → the old entry, first one kept: one lookup per package instead of
    // a scan of the old index (and a file name formatted per entry) for each.
    let mut reusable: HashMap<(String, u64), &IndexEntry> = HashMap::new();
    for e in old.iter().flat_map(|o| &o.packages) {
        reusable.entry((e.file_name(), e.file_size)).or_insert(e);
    }
    let (mut reused, mut read) = (0, 0);
    let mut jobs = Vec::new();
    for path in packages {
        let size = fs_err::metadata(path)?.len();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let cached = reusable.get(&(name.to_owned(), size));
        jobs.push(match (cached, verify) {
            (Some(&e), false) => {
                reused += 1;
                Ok(e.clone())
            }
            _ => {
                read += 1;
                Err(path.as_path())
            }
        });
    }
    Ok((jobs, reused, read))
}

/// The index of `entries` (in the order given, arch rewritten when asked); a package
/// listed twice is an error naming its file.
fn collect(args: &Args, entries: Vec<anyhow::Result<IndexEntry>>) -> anyhow::Result<ApkIndex> {
    let mut index = ApkIndex {
        description: args.description.clone(),
        packages: Vec::new(),
    };
    for (path, entry) in args.packages.iter().zip(entries) {
        let mut entry = entry?;
        if let Some(arch) = &args.rewrite_arch {
            entry.arch.clone_from(arch);
        }
        if let Some(prev) = index.upsert(entry) {
            bail!(
                "`{}`: {}-{} is listed twice",
                path.display(),
                prev.name,
                prev.version
            );
        }
    }
    Ok(index)
}

/// Reads and verifies the packages given as `Err(path)` on every core; entries given as
/// `Ok` are kept. Results come back in the input order.
fn read_all(
    jobs: &[Job<'_>],
    keys: Option<&apk::keys::Keyring>,
) -> Vec<anyhow::Result<IndexEntry>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<anyhow::Result<IndexEntry>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { return };
                    let r = match job {
                        Ok(e) => Ok(e.clone()),
                        Err(path) => read_one(path, keys),
                    };
                    *results[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_else(|| Err(anyhow::anyhow!("a reader thread stopped")))
        })
        .collect()
}

/// One package: read, verified (signature against `keys`, else its contents only).
fn read_one(
    path: &std::path::Path,
    keys: Option<&apk::keys::Keyring>,
) -> anyhow::Result<IndexEntry> {
    let pkg = Package::open(path, ReadLimits::default())?;
    match keys {
        Some(k) => pkg.verify(k).map(|_| ()),
        None => pkg.verify_contents(),
    }
    .with_context(|| format!("refusing to index `{}`", path.display()))?;
    Ok(IndexEntry::from_package(&pkg))
}
