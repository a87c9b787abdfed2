//! The ext4 output of a ~500 MB root (about 20 000 files) against the baseline measured in
//! the same run: extracting the same image (`assemble export … rootfs:DIR`) and a plain
//! `mkfs.ext4 -d DIR` of it at the same size. The difference is what reproducibility costs:
//! the debugfs pass that sets owners, modes and time stamps on every inode.
//!
//! Each side is the best of three rounds: extraction is disk-bound and its time varies by a
//! factor of several between rounds on a busy machine (writeback of the previous round).
//!
//! `ASSEMBLE_BENCH_MB=<n>` scales the root (default 500).
//! Run: `cargo bench -p assembler --bench fsimage`.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Files of 1–48 KiB (a rootfs-like mix) in directories of 200, filling `total_mb`.
fn fill(root: &Path, total_mb: u64) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut written, mut n) = (0u64, 0u64);
    while written < total_mb << 20 {
        let dir = root.join(format!("usr/lib/d{:03}", n / 200));
        if n % 200 == 0 {
            fs_err::create_dir_all(&dir).unwrap();
        }
        let size = 1024 + next() % (47 * 1024);
        let mut f =
            std::io::BufWriter::new(fs_err::File::create(dir.join(format!("f{n:05}"))).unwrap());
        let mut left = size;
        while left > 0 {
            let chunk = next().to_le_bytes();
            let k = left.min(8) as usize;
            f.write_all(&chunk[..k]).unwrap();
            left -= k as u64;
        }
        written += size;
        n += 1;
    }
    n
}

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        c,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn sbin(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn main() {
    let Some(mkfs) = sbin("mkfs.ext4") else {
        eprintln!("SKIP: mkfs.ext4 is not installed (ci/setup installs e2fsprogs)");
        return;
    };
    let mb: u64 = std::env::var("ASSEMBLE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let bin = env!("CARGO_BIN_EXE_assemble");
    let tmp = tempfile::Builder::new()
        .prefix("assemble-bench-fs-")
        .tempdir()
        .unwrap();
    let p = |r: &str| tmp.path().join(r);
    let files = fill(&p("ctx/root"), mb);
    fs_err::create_dir_all(p("ctx/root/bin")).unwrap();
    fs_err::copy("/bin/busybox", p("ctx/root/bin/sh")).unwrap();
    fs_err::write(
        p("ctx/Containerfile"),
        "FROM scratch\nCOPY root /\nCMD [\"/bin/sh\"]\n",
    )
    .unwrap();
    let assemble = || {
        let mut c = Command::new(bin);
        c.current_dir(tmp.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["--store", "store"]);
        c
    };
    ok(assemble().args(["-t", "big", "ctx"]));
    println!("root: {mb} MB in {files} files");

    // Best of three rounds each, alternating and after a sync, so that writeback of the
    // previous round's gigabyte does not land on the next measurement.
    let sync = || ok(&mut Command::new("sync"));
    let (mut ours, mut ours_mkfs, mut extract, mut plain, mut debugfs) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for round in 0..3 {
        let _ = fs_err::remove_dir_all(p("plain"));
        sync();
        extract = extract.min(secs(|| {
            ok(assemble().args(["export", "big", "rootfs:plain"]));
        }));
        sync();
        let ext4 = format!("ext4:ours{round}.ext4");
        ours = ours.min(secs(|| {
            let o = assemble()
                .args(["export", "big", ext4.as_str()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            // "--> Wrote FILE (mkfs.ext4 X s, debugfs Y s)"
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            let num = |key: &str| -> f64 {
                err.rsplit_once(key)
                    .and_then(|(_, t)| t.split(' ').next()?.parse().ok())
                    .unwrap_or(0.0)
            };
            let d = num("debugfs ");
            ours_mkfs = ours_mkfs.min(num("(mkfs.ext4 ") + d);
            debugfs = debugfs.min(d);
        }));
        let size = fs_err::metadata(p(&format!("ours{round}.ext4")))
            .unwrap()
            .len();
        sync();
        plain = plain.min(secs(|| {
            ok(Command::new(&mkfs)
                .args(["-F", "-q", "-t", "ext4", "-d"])
                .arg(p("plain"))
                .arg(p("plain.ext4"))
                .arg(format!("{}k", size / 1024)));
        }));
    }
    assert_eq!(
        fs_err::read(p("ours0.ext4")).unwrap(),
        fs_err::read(p("ours1.ext4")).unwrap(),
        "two exports differ"
    );
    println!(
        "ext4 export (extract + mkfs.ext4 -d + debugfs): {ours:.2} s, of which debugfs {debugfs:.2} s"
    );
    println!("baseline: extract {extract:.2} s + plain mkfs.ext4 -d {plain:.2} s");
    println!(
        "filesystem step (mkfs.ext4 -d + debugfs) {ours_mkfs:.2} s vs plain mkfs.ext4 -d: {:.2}x",
        ours_mkfs / plain
    );
    println!(
        "ratio vs extract + mkfs.ext4 -d: {:.2}x; vs mkfs.ext4 -d alone: {:.2}x",
        ours / (extract + plain),
        ours / plain
    );
}
