//! Benchmarks with baselines measured in the same run:
//! 1. snapshot after a step that changes one file in a 1 GB root, vs `cp -a` of that root;
//! 2. base reuse: the whole `assemble build` of `FROM <that 1 GB root as an image>` plus a
//!    one-file RUN (COPY without bubblewrap), warm store, vs `cp -a` of the root; the same
//!    build extracting the base (`ASSEMBLE_NO_OVERLAY=1`, as before bases were kept) beside;
//! 3. export of a 500 MB root as a gzip layer, vs `tar c | gzip -6`.
//!
//! The root: three quarters in 4 MiB files, a quarter in 16 KiB files (about 16 500 files).
//! Timed sides of 2 are the best of three rounds: `cp -a` is disk-bound and varies by a
//! factor of several between rounds on a busy machine (writeback of the previous round).
//!
//! `ASSEMBLE_BENCH_MB=<n>` scales the root (default 1024; the export uses half).
//! Run: `cargo bench -p assembler --bench snapshot`.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use apk::gzip::{GzipOptions, GzipWriter};
use assembler::layer;

#[path = "snapshot/base_reuse.rs"]
mod base_reuse;

/// Compressible, non-repeating content (text-like), so gzip does real work.
fn fill(root: &Path, total_mb: usize) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let words: Vec<&[u8]> = [
        &b"alpine "[..],
        b"package ",
        b"layer ",
        b"snapshot ",
        b"musl ",
        b"busybox ",
        b"\n",
        b"0123 ",
        b"config ",
        b"image ",
        b"lib ",
        b"so.1 ",
    ]
    .to_vec();
    let file_mb = 4;
    for i in 0..total_mb * 3 / 4 / file_mb {
        let dir = root.join(format!("usr/lib/d{:03}", i / 32));
        fs_err::create_dir_all(&dir).unwrap();
        let mut f = std::io::BufWriter::new(
            fs_err::File::create(dir.join(format!("f{i:04}.bin"))).unwrap(),
        );
        let mut written = 0;
        while written < file_mb << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let w = words[(state % words.len() as u64) as usize];
            f.write_all(w).unwrap();
            f.write_all(&state.to_le_bytes()[..2]).unwrap();
            written += w.len() + 2;
        }
    }
    // The rest in 16 KiB files, 256 to a directory.
    for i in 0..(total_mb - total_mb * 3 / 4) * 64 {
        let dir = root.join(format!("usr/share/s{:03}", i / 256));
        if i % 256 == 0 {
            fs_err::create_dir_all(&dir).unwrap();
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let line = format!(
            "{state:016x} {}",
            words[(state % 12) as usize].escape_ascii()
        );
        let text = line.repeat((16 << 10) / line.len() + 1);
        fs_err::write(dir.join(format!("t{i:05}")), &text.as_bytes()[..16 << 10]).unwrap();
    }
}

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let mb: usize = std::env::var("ASSEMBLE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::Builder::new()
        .prefix("assemble-bench-")
        .tempdir()
        .unwrap();
    // In a build context: the base image of 2 is built from it.
    let root = tmp.path().join("ctx/root");
    fill(&root, mb);
    // Warm the page cache the same way for both sides.
    let _ = layer::scan(&root).unwrap();
    bench_snapshot(tmp.path(), &root, mb);
    base_reuse::run(tmp.path(), &root, mb);
    bench_export(tmp.path(), &root, mb);
}

/// Snapshot (1.): the scan of the step's result plus the layer of what changed, against
/// `cp -a` of the root.
fn bench_snapshot(tmp: &Path, root: &Path, mb: usize) {
    let before = layer::scan(root).unwrap();
    fs_err::write(
        root.join("usr/lib/d000/f0000.bin"),
        b"changed by the step\n",
    )
    .unwrap();
    let mut info = None;
    let snap = secs(|| {
        let after = layer::scan(root).unwrap();
        info =
            Some(layer::write_diff(root, &before, &after, Some(0), &tmp.join("step.tar")).unwrap());
    });
    let cp = secs(|| {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(root)
            .arg(tmp.join("copy"))
            .status()
            .unwrap();
        assert!(ok.success());
    });
    fs_err::remove_dir_all(tmp.join("copy")).unwrap();
    let info = info.unwrap();
    println!(
        "snapshot of a one-file step in a {mb} MB root: {snap:.3}s (layer {} bytes, {} entries) vs cp -a {cp:.3}s: {:.1}x faster",
        info.size,
        info.entries,
        cp / snap
    );
}

/// Export (3.) of half the root (moved out of it) as a gzip layer, against `tar c | gzip -6`.
fn bench_export(tmp: &Path, root: &Path, mb: usize) {
    let half = tmp.join("half");
    fs_err::create_dir_all(half.join("usr/lib")).unwrap();
    let mut moved = 0;
    for e in fs_err::read_dir(root.join("usr/lib")).unwrap() {
        let e = e.unwrap();
        if moved * 2 >= mb / 4 / 32 {
            break;
        }
        fs_err::rename(e.path(), half.join("usr/lib").join(e.file_name())).unwrap();
        moved += 1;
    }
    let size_mb = {
        let m = layer::scan(&half).unwrap();
        m.len()
    };
    let ours = secs(|| {
        let all = layer::scan(&half).unwrap();
        let tar = tmp.join("export.tar");
        layer::write_diff(&half, &layer::Manifest::new(), &all, Some(0), &tar).unwrap();
        let out = std::io::BufWriter::new(fs_err::File::create(tmp.join("export.tar.gz")).unwrap());
        let mut gz = GzipWriter::new(
            out,
            GzipOptions {
                level: 6,
                ..GzipOptions::parallel()
            },
        );
        std::io::copy(&mut fs_err::File::open(&tar).unwrap(), &mut gz).unwrap();
        gz.finish().unwrap().flush().unwrap();
    });
    let base = secs(|| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar c -C {} . | gzip -6 > {}",
                half.display(),
                tmp.join("base.tar.gz").display()
            ))
            .status()
            .unwrap();
        assert!(ok.success());
    });
    let sz = |p: &str| fs_err::metadata(tmp.join(p)).unwrap().len();
    println!(
        "export of a ~{} MB root ({size_mb} paths) as a gzip layer: {ours:.3}s ({} bytes) vs tar c | gzip -6 {base:.3}s ({} bytes): {:.2}x the baseline's speed",
        moved * 32 * 4,
        sz("export.tar.gz"),
        sz("base.tar.gz"),
        base / ours
    );
}
