//! Installer benchmark, printed as a ratio against a baseline measured in the same run
//! (never asserted: speed is reported, not tested).
//!
//! Installs 40 generated packages (signed, indexed) into an empty root with
//! `apk::install::add`, against the time our own package reader takes merely to
//! decompress the same 40 files (every member inflated, data entries drained). Target:
//! within 1.5x.
//!
//! `cargo bench -p apk --bench install`

use std::io::{self, Read};
use std::time::{Duration, Instant};

use apk::dep::Dependency;
use apk::install::{self, InstallOptions};
use apk::package::PackageError;
use apk::package::read::{DataVisitor, ReadLimits, read_with};
use apk::tar::Entry;
use testkit::repo::{PkgSpec, RepoBuilder};

const PACKAGES: usize = 40;
const FILES_PER_PACKAGE: usize = 60;
const FILE_SIZE: usize = 16 << 10;
const RUNS: usize = 3;

/// Compressible, not trivially so: words from a small vocabulary picked by an LCG.
fn text(seed: u64, len: usize) -> String {
    const WORDS: &[&str] = &[
        "alpine",
        "musl",
        "busybox",
        "package",
        "index",
        "signature",
        "version",
        "depends",
        "provides",
        "install",
        "trigger",
        "0",
        "1",
        "42",
        "{",
        "}",
        "\n",
        "fn",
        "let",
        "root",
    ];
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s.push_str(WORDS[(x >> 33) as usize % WORDS.len()]);
        s.push(' ');
    }
    s.truncate(len);
    s
}

struct Drain;

impl DataVisitor for Drain {
    fn entry(&mut self, _entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        io::copy(content, &mut io::sink())?;
        Ok(())
    }
}

/// The floor for any installer: decompress and write each entry with plain `std::fs`
/// calls, no checks, no database.
struct NaiveWrite<'a>(&'a std::path::Path);

impl DataVisitor for NaiveWrite<'_> {
    fn entry(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), PackageError> {
        let path = self.0.join(&entry.path);
        match entry.kind {
            apk::tar::EntryType::Dir => fs_err::create_dir_all(&path)?,
            _ => {
                let mut f = fs_err::File::create(&path)?;
                io::copy(content, &mut f)?;
            }
        }
        Ok(())
    }
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[allow(clippy::print_stdout)]
fn main() {
    let tmp = testkit::tempdir();
    let (repo, names) = build_repo(&tmp.path().join("repo"));
    let files: Vec<_> = names
        .iter()
        .map(|n| repo.dir.join("x86_64").join(format!("{n}-1.0-r0.apk")))
        .collect();
    let compressed: u64 = files
        .iter()
        .map(|f| fs_err::metadata(f).unwrap().len())
        .sum();

    let decompress = best(|| {
        for f in &files {
            let input = io::BufReader::with_capacity(256 << 10, fs_err::File::open(f).unwrap());
            read_with(input, ReadLimits::default(), &mut Drain).unwrap();
        }
    });

    let world = Dependency::parse_list(&names.join(" ")).unwrap();
    let opts = install_options(&repo);
    // Creating files costs what the filesystem makes it cost (ext4's inode allocator
    // dominates on disk), so the roots go both beside the repository and, when the machine
    // has one, on tmpfs, where what remains is our own work.
    let shm = std::path::Path::new("/dev/shm");
    let shm_tmp = shm.is_dir().then(|| tempfile::tempdir_in(shm).unwrap());
    let mut targets = vec![("roots in the temp dir", tmp.path().to_path_buf())];
    if let Some(t) = &shm_tmp {
        targets.push(("roots on tmpfs (/dev/shm)", t.path().to_path_buf()));
    }
    let results: Vec<_> = targets
        .into_iter()
        .map(|(label, base)| {
            let (naive, installing) = time_installs(&base, &files, &world, &opts);
            (label, naive, installing)
        })
        .collect();
    print_results(compressed, decompress, &results);
}

/// The signed, indexed repository of [`PACKAGES`] packages (each depending on the one
/// before), and their names.
fn build_repo(dir: &std::path::Path) -> (RepoBuilder, Vec<String>) {
    let mut repo = RepoBuilder::new(dir);
    let mut names = Vec::new();
    for p in 0..PACKAGES {
        let name = format!("pkg{p:02}");
        let mut spec = PkgSpec::new(&name, "1.0-r0");
        for f in 0..FILES_PER_PACKAGE {
            let dir = if f % 3 == 0 { "usr/bin" } else { "usr/share" };
            spec = spec.file(
                &format!("{dir}/{name}/file{f:03}"),
                &text((p * 1000 + f) as u64, FILE_SIZE),
            );
        }
        if p > 0 {
            spec = spec.depends(&format!("pkg{:02}", p - 1));
        }
        repo.add(&spec);
        names.push(name);
    }
    repo.write_index(true);
    (repo, names)
}

fn install_options(repo: &RepoBuilder) -> InstallOptions<'_> {
    let mut opts = InstallOptions::local();
    opts.repositories.extra = vec![repo.dir.display().to_string()];
    opts.repositories.keys_dir = Some(testkit::fixture("keys"));
    opts.repositories.arch = Some("x86_64".into());
    opts
}

/// The best times of the floor (plain writes) and of `install::add`, each run in a fresh
/// root below `base`.
fn time_installs(
    base: &std::path::Path,
    files: &[std::path::PathBuf],
    world: &[Dependency],
    opts: &InstallOptions,
) -> (Duration, Duration) {
    let mut run = 0;
    let naive = best(|| {
        run += 1;
        let root = base.join(format!("naive{run}"));
        fs_err::create_dir_all(&root).unwrap();
        for f in files {
            let input = io::BufReader::with_capacity(256 << 10, fs_err::File::open(f).unwrap());
            read_with(input, ReadLimits::default(), &mut NaiveWrite(&root)).unwrap();
        }
    });
    let installing = best(|| {
        run += 1;
        let root = base.join(format!("root{run}"));
        fs_err::create_dir_all(&root).unwrap();
        let report = install::add(&root, world, opts).unwrap();
        assert_eq!(report.installed.len(), PACKAGES);
    });
    (naive, installing)
}

#[allow(clippy::print_stdout)]
fn print_results(compressed: u64, decompress: Duration, results: &[(&str, Duration, Duration)]) {
    let mb = (PACKAGES * FILES_PER_PACKAGE * FILE_SIZE) as f64 / (1 << 20) as f64;
    println!(
        "install: {PACKAGES} packages, {} files, {mb:.1} MB ({:.1} MB compressed)",
        PACKAGES * FILES_PER_PACKAGE,
        compressed as f64 / (1 << 20) as f64
    );
    println!("  decompress only (baseline): {decompress:>10.3?}");
    let ratio = |d: Duration| d.as_secs_f64() / decompress.as_secs_f64();
    for &(label, naive, installing) in results {
        println!("  {label}:");
        println!(
            "    decompress + plain std::fs writes (floor): {naive:>10.3?} = {:.2}x",
            ratio(naive)
        );
        println!(
            "    apk::install::add:                         {installing:>10.3?} = {:.2}x the baseline (target <= 1.5x), {:.2}x the floor",
            ratio(installing),
            installing.as_secs_f64() / naive.as_secs_f64()
        );
    }
}
