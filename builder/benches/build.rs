//! Build benchmarks, printed as ratios against baselines measured in the same run (never
//! asserted: speed is reported, not tested).
//!
//! 1. Packaging overhead: a recipe whose package() writes a generated 10,000-file tree.
//!    Baseline: the same shell commands run alone, plus `tar -c | gzip -9` of the tree
//!    (abuild's own packaging pipeline). Reported: apkbuild's time beyond the recipe's own
//!    commands.
//! 2. The example tree: a cold build (empty cache, entries stored) against a warm rebuild
//!    into an empty repository from the same cache.
//!
//! `cargo bench -p builder --bench build` (`BENCH_FILES` changes the tree size).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn apkbuild(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apkbuild"));
    cmd.env_clear()
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env(
            "PACKAGER_PRIVKEY",
            testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY)),
        );
    cmd
}

fn timed(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn sandbox_args() -> Vec<&'static str> {
    let ok = Command::new("bwrap")
        .args([
            "--unshare-user",
            "--uid",
            "0",
            "--ro-bind",
            "/",
            "/",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok { Vec::new() } else { vec!["--no-sandbox"] }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Shell code writing `n` files of ~1-4 KiB under "$1".
fn generator(n: usize) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do d=\"$1/usr/share/gen/d$((i % 100))\"; \
         [ -d \"$d\" ] || mkdir -p \"$d\"; \
         printf 'file %d %0*d\\n' $i $((1000 + (i % 7) * 500)) $i > \"$d/f$i.txt\"; \
         i=$((i + 1)); done"
    )
}

fn packaging_overhead(tmp: &Path, n: usize) {
    let script = generator(n);
    let recipe = bigtree_recipe(tmp, &script);
    let (commands, tar_gzip) = baselines(tmp, &script, n);
    let (best, packaging_best) = best_build(tmp, &recipe);
    let overhead = best.saturating_sub(commands);
    println!("packaging a generated {n}-file tree (best of 3):");
    println!("  recipe's own commands (sh alone)      {}", secs(commands));
    println!("  tar | gzip -9 of the tree (abuild)    {}", secs(tar_gzip));
    println!("  apkbuild build, total                 {}", secs(best));
    println!("  apkbuild total - commands (noisy)     {}", secs(overhead));
    println!(
        "  apkbuild strip+trace+package+sign+index {:.3} s = {:.2}x tar|gzip -9",
        packaging_best,
        packaging_best / tar_gzip.as_secs_f64()
    );
}

/// The recipe `bigtree` whose package() runs `script` into `$pkgdir`.
fn bigtree_recipe(tmp: &Path, script: &str) -> std::path::PathBuf {
    let recipe = tmp.join("bench/main/bigtree");
    fs_err::create_dir_all(&recipe).unwrap();
    fs_err::write(
        recipe.join("APKBUILD"),
        format!(
            "pkgname=bigtree\npkgver=1.0\npkgrel=0\npkgdesc=\"generated tree\"\nurl=\"https://example.org\"\n\
             arch=\"noarch\"\nlicense=\"MIT\"\noptions=\"!check\"\nbuilddir=\"$srcdir\"\n\
             gen() {{ {script}; }}\npackage() {{ gen \"$pkgdir\"; }}\n"
        ),
    )
    .unwrap();
    recipe
}

/// The baselines: the recipe's own commands alone (best of 3), and abuild's
/// `tar | gzip -9` over the tree they wrote.
fn baselines(tmp: &Path, script: &str, n: usize) -> (Duration, Duration) {
    let out = tmp.join("baseline-tree");
    let mut commands = Duration::MAX;
    for _ in 0..3 {
        let _ = fs_err::remove_dir_all(&out);
        let mut sh = Command::new("/bin/sh");
        sh.args(["-c", script, "sh"]).arg(&out);
        commands = commands.min(timed(sh));
    }
    let mut tar = Command::new("sh");
    tar.arg("-c").arg(format!(
        "tar --format=posix -C '{}' -cf - . | gzip -9 > '{}'",
        out.display(),
        tmp.join("baseline.tar.gz").display()
    ));
    let tar_gzip = timed(tar);
    let files = walkdir::WalkDir::new(&out)
        .into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
        .count();
    assert_eq!(files, n);
    (commands, tar_gzip)
}

/// The best of 3 `apkbuild build`s of `recipe`: total time, and the packaging time
/// apkbuild logs (everything after the recipe's functions) in seconds.
fn best_build(tmp: &Path, recipe: &Path) -> (Duration, f64) {
    let mut best = Duration::MAX;
    let mut packaging_best = f64::MAX;
    for i in 0..3 {
        let mut cmd = apkbuild(tmp);
        cmd.arg("build")
            .arg(recipe)
            .arg("--no-cache")
            .arg("--repodest")
            .arg(tmp.join(format!("repo{i}")))
            .args(sandbox_args());
        let t = Instant::now();
        let o = cmd.output().expect("run apkbuild");
        let d = t.elapsed();
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{log}");
        let packaging = log
            .lines()
            .find_map(|l| {
                l.split(" packages in ")
                    .nth(1)?
                    .strip_suffix(" s")?
                    .parse::<f64>()
                    .ok()
            })
            .expect("packaging time in the log");
        best = best.min(d);
        packaging_best = packaging_best.min(packaging);
    }
    (best, packaging_best)
}

fn copy_tree(src: &Path, dst: &Path) {
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let to = dst.join(e.path().strip_prefix(src).unwrap());
        if e.file_type().is_dir() {
            fs_err::create_dir_all(&to).unwrap();
        } else {
            fs_err::copy(e.path(), &to).unwrap();
        }
    }
}

fn warm_vs_cold(tmp: &Path) {
    let tree: PathBuf = tmp.join("recipes");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/recipes"),
        &tree,
    );
    let run = |repo: &str, cache: &str| {
        let mut cmd = apkbuild(tmp);
        cmd.arg("build-all")
            .arg(&tree)
            .arg("--repodest")
            .arg(tmp.join(repo))
            .arg("--cache")
            .arg(tmp.join(cache))
            .args(sandbox_args());
        timed(cmd)
    };
    let cold = run("cold", "cache");
    let warm = run("warm", "cache");
    println!("example tree (4 recipes, 6 packages):");
    println!("  cold build (empty cache)              {}", secs(cold));
    println!(
        "  warm rebuild (same cache, empty repo) {}  = {:.3}x cold",
        secs(warm),
        warm.as_secs_f64() / cold.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = std::env::var("BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200 } else { 10_000 });
    let tmp = testkit::tempdir();
    packaging_overhead(tmp.path(), n);
    warm_vs_cold(tmp.path());
}
