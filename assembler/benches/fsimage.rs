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
    let b = Bench {
        tmp: tempfile::Builder::new()
            .prefix("assemble-bench-fs-")
            .tempdir()
            .unwrap(),
    };
    let files = b.build_image(mb);
    println!("root: {mb} MB in {files} files");

    // Best of three rounds each, alternating and after a sync, so that writeback of the
    // previous round's gigabyte does not land on the next measurement.
    let mut best = Best {
        ours: f64::MAX,
        ours_mkfs: f64::MAX,
        extract: f64::MAX,
        plain: f64::MAX,
        debugfs: f64::MAX,
    };
    for round in 0..3 {
        best.round(&b, &mkfs, round);
    }
    assert_eq!(
        fs_err::read(b.p("ours0.ext4")).unwrap(),
        fs_err::read(b.p("ours1.ext4")).unwrap(),
        "two exports differ"
    );
    best.print();
}

/// The bench's temp dir (context, store, outputs).
struct Bench {
    tmp: tempfile::TempDir,
}

impl Bench {
    fn p(&self, r: &str) -> std::path::PathBuf {
        self.tmp.path().join(r)
    }

    /// `assemble` in the temp dir, with its store there and a fixed SOURCE_DATE_EPOCH.
    fn assemble(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_assemble"));
        c.current_dir(self.tmp.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["--store", "store"]);
        c
    }

    /// Builds the image `big` of `mb` MB of files (and a shell); returns the file count.
    fn build_image(&self, mb: u64) -> u64 {
        let files = fill(&self.p("ctx/root"), mb);
        fs_err::create_dir_all(self.p("ctx/root/bin")).unwrap();
        fs_err::copy("/bin/busybox", self.p("ctx/root/bin/sh")).unwrap();
        fs_err::write(
            self.p("ctx/Containerfile"),
            "FROM scratch\nCOPY root /\nCMD [\"/bin/sh\"]\n",
        )
        .unwrap();
        ok(self.assemble().args(["-t", "big", "ctx"]));
        files
    }
}

/// The best time of each side so far, in seconds.
struct Best {
    ours: f64,
    /// Our filesystem step (mkfs.ext4 -d + debugfs) as `assemble` reports it.
    ours_mkfs: f64,
    extract: f64,
    plain: f64,
    debugfs: f64,
}

impl Best {
    /// One round: extract, our ext4 export, and a plain mkfs.ext4 -d of the extracted root
    /// at the same size, each after a sync.
    fn round(&mut self, b: &Bench, mkfs: &Path, round: usize) {
        let sync = || ok(&mut Command::new("sync"));
        let _ = fs_err::remove_dir_all(b.p("plain"));
        sync();
        self.extract = self.extract.min(secs(|| {
            ok(b.assemble().args(["export", "big", "rootfs:plain"]));
        }));
        sync();
        let ext4 = format!("ext4:ours{round}.ext4");
        self.ours = self.ours.min(secs(|| {
            let o = b
                .assemble()
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
            self.ours_mkfs = self.ours_mkfs.min(num("(mkfs.ext4 ") + d);
            self.debugfs = self.debugfs.min(d);
        }));
        let size = fs_err::metadata(b.p(&format!("ours{round}.ext4")))
            .unwrap()
            .len();
        sync();
        self.plain = self.plain.min(secs(|| {
            ok(Command::new(mkfs)
                .args(["-F", "-q", "-t", "ext4", "-d"])
                .arg(b.p("plain"))
                .arg(b.p("plain.ext4"))
                .arg(format!("{}k", size / 1024)));
        }));
    }

    fn print(&self) {
        let Best {
            ours,
            ours_mkfs,
            extract,
            plain,
            debugfs,
        } = *self;
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
}
