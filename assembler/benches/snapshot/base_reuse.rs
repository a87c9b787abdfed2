//! Part 2 of the snapshot bench: a one-file step on a 1 GB base, the whole `assemble build`
//! through the real binary, against `cp -a` of the base's root in the same run.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Builds the base image from `root` (in `work/ctx`), then times the step builds.
pub fn run(work: &Path, root: &Path, mb: usize) {
    let ctx = work.join("ctx");
    let store = work.join("store");
    let busybox = Path::new("/bin/busybox");
    let with_run = busybox.is_file() && sandbox_works();
    if with_run {
        fs_err::copy(busybox, ctx.join("busybox")).unwrap();
    }
    fs_err::write(ctx.join("small"), "one small file\n").unwrap();
    let base = if with_run {
        "FROM scratch\nCOPY root/ /\nCOPY busybox /bin/busybox\n"
    } else {
        "FROM scratch\nCOPY root/ /\n"
    };
    fs_err::write(ctx.join("Base"), base).unwrap();
    let (made, _) = timed(|| build(&store, &ctx, "Base", "big", &[]));
    // A RUN through bubblewrap where it can run, else a COPY: one new file either way.
    let step = if with_run {
        "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo step > /usr/step\"]"
    } else {
        "COPY small /usr/step"
    };
    let file = "Step";
    fs_err::write(ctx.join(file), format!("FROM big\n{step}\n")).unwrap();
    let (first, out) = timed(|| build(&store, &ctx, file, "step", &["--no-cache"]));
    assert!(
        out.contains("Extracting base"),
        "the first build extracts the base into the store:\n{out}"
    );
    let warm = best_of(3, || build(&store, &ctx, file, "step", &["--no-cache"]));
    let cp = best_of(3, || {
        let copy = work.join("copy");
        let ok = Command::new("cp").arg("-a").arg(root).arg(&copy).status();
        assert!(ok.unwrap().success());
        fs_err::remove_dir_all(&copy).unwrap();
    });
    let extracting = best_of(1, || {
        let out = build_env(&store, &ctx, file, "step", &["--no-cache"], true);
        assert!(out.contains("note: overlayfs is unavailable"), "{out}");
    });
    println!(
        "base reuse, `{step}` FROM a {mb} MB base (built into the store in {made:.1}s; the \
         first build on it extracts it: {first:.1}s): whole `assemble build`, warm store, \
         {warm:.3}s vs cp -a of the root {cp:.3}s: {:.3}x cp -a (target <= 0.05x); \
         extracting the base instead (ASSEMBLE_NO_OVERLAY=1) {extracting:.2}s: {:.2}x cp -a",
        warm / cp,
        extracting / cp
    );
}

/// Whether bubblewrap can run a command here.
fn sandbox_works() -> bool {
    Command::new("bwrap")
        .args(["--unshare-all", "--ro-bind", "/", "/", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn build(store: &Path, ctx: &Path, file: &str, tag: &str, args: &[&str]) -> String {
    build_env(store, ctx, file, tag, args, false)
}

/// Runs `assemble build` and returns its output; panics when it fails.
fn build_env(
    store: &Path,
    ctx: &Path,
    file: &str,
    tag: &str,
    args: &[&str],
    no_overlay: bool,
) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_assemble"));
    c.arg("--store")
        .arg(store)
        .args(["build", "-t", tag, "-f"])
        .arg(ctx.join(file))
        .args(args)
        .arg(ctx)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    if no_overlay {
        c.env("ASSEMBLE_NO_OVERLAY", "1");
    } else {
        c.env_remove("ASSEMBLE_NO_OVERLAY");
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "assemble build failed:\n{text}");
    text
}

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

/// The shortest of `n` runs of `f`, in seconds, each started with nothing left to write
/// back (what the previous round or the base's build wrote would otherwise slow it).
fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..n)
        .map(|_| {
            let _ = Command::new("sync").status();
            timed(&mut f).0
        })
        .fold(f64::INFINITY, f64::min)
}
