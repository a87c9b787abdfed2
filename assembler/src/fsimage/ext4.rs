//! `ext4:FILE[:SIZE]`: an ext4 filesystem of the image's root, for Firecracker and other VMs.
//!
//! Made by e2fsprogs' `mkfs.ext4 -d` from the staged root, then corrected with one `debugfs -w`
//! script: `mkfs.ext4 -d` copies owners, modes and times from the staging directory, which
//! unprivileged has the host user as owner, lacks device nodes, and always has "now" as ctime
//! and atime. The script sets every inode to what the layers record ([`super::tree`]).
//!
//! Reproducible: the feature set comes from our own `mke2fs.conf` (not the host's
//! `/etc/mke2fs.conf`), the UUID and directory hash seed are derived from the image digest,
//! every time stamp e2fsprogs makes is `E2FSPROGS_FAKE_TIME` = the export time
//! (SOURCE_DATE_EPOCH), and mkfs adds the staged entries in sorted order. Written to a temp
//! file next to FILE and renamed into place, so a failure leaves nothing behind.

use std::path::Path;

use anyhow::Context as _;
use apk::atomic::AtomicFile;
use std::os::unix::fs::MetadataExt as _;

use super::tree::{Kind, Tree};
use super::{FsImageError, Staged, run_tool};
use crate::build::Reporter;

const BLOCK: u64 = 4096;
const MIB: u64 = 1 << 20;
/// Bytes of filesystem per inode, as in Debian's default `mke2fs.conf`.
const INODE_RATIO: u64 = 16_384;
const INODE_SIZE: u64 = 256;

/// Pinned so the host's `/etc/mke2fs.conf` cannot change the bytes. No `orphan_file` or
/// `metadata_csum_seed`: kernels before 5.15 (Firecracker's 5.10 guests) refuse them.
const MKE2FS_CONF: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 0
\thash_alg = half_md4

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

/// The default free space added to the content (`--ext4-margin`).
pub const DEFAULT_MARGIN: u64 = 64 * MIB;

/// What the files need, in blocks and inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Data and directory blocks.
    pub blocks: u64,
    /// Inodes (reserved ones included).
    pub inodes: u64,
    /// Sum of file sizes (for messages).
    pub content: u64,
    /// Entries (for messages).
    pub entries: u64,
}

/// Blocks and inodes `tree` takes in ext4 with 4 KiB blocks.
pub fn need(tree: &Tree) -> Need {
    let mut blocks = 0;
    let mut dir_bytes: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    dir_bytes.insert("", 24);
    for (p, m) in tree {
        let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
        // A directory entry: 8 bytes of header plus the name, padded to 4.
        *dir_bytes.entry(parent).or_insert(24) += 8 + (name.len() as u64).div_ceil(4) * 4;
        match &m.kind {
            Kind::File(n) => blocks += n.div_ceil(BLOCK),
            Kind::Dir => {
                dir_bytes.entry(p).or_insert(24);
            }
            // Short targets live in the inode itself.
            Kind::Symlink(t) if t.len() >= 60 => blocks += 1,
            _ => {}
        }
    }
    for bytes in dir_bytes.values() {
        // 12 bytes of each block hold the checksum tail; a multi-block directory gets an
        // htree index block.
        let n = bytes.div_ceil(BLOCK - 12).max(1);
        blocks += if n > 1 { n + 1 } else { n };
    }
    // lost+found.
    blocks += 4;
    let u = super::tree::usage(tree);
    Need {
        blocks,
        inodes: u.entries + 12,
        content: u.bytes,
        entries: u.entries,
    }
}

/// mke2fs's default journal size (blocks) for a filesystem of `blocks` blocks.
fn journal_blocks(blocks: u64) -> u64 {
    match blocks {
        0..2048 => 0,
        2048..32_768 => 1024,
        32_768..262_144 => 4096,
        262_144..524_288 => 8192,
        524_288..4_194_304 => 16_384,
        4_194_304..8_388_608 => 32_768,
        8_388_608..16_777_216 => 65_536,
        16_777_216..33_554_432 => 131_072,
        _ => 262_144,
    }
}

/// The inode count we ask for: the usual ratio, or more when the files need more.
fn inode_count(size: u64, need: &Need) -> u64 {
    (size / INODE_RATIO).max(need.inodes + need.inodes / 10 + 64)
}

/// Metadata blocks of a filesystem of `size` bytes: inode tables, journal, bitmaps, group
/// descriptors and superblock backups (an estimate a little above what mke2fs uses).
fn overhead_blocks(size: u64, need: &Need) -> u64 {
    let blocks = size / BLOCK;
    let groups = blocks.div_ceil(32_768).max(1);
    let itable = (inode_count(size, need) * INODE_SIZE).div_ceil(BLOCK);
    let backups = 2 + groups.ilog2() as u64;
    // Descriptors (64 bytes each) plus the resize reserve, per backup.
    let gdt = (groups * 64).div_ceil(BLOCK) + 64.min(blocks / 1024 + 1);
    itable + journal_blocks(blocks) + groups * 2 + backups * (1 + gdt) + 64
}

/// Whether `size` bytes hold `need`.
pub fn fits(size: u64, need: &Need) -> bool {
    size / BLOCK >= need.blocks + overhead_blocks(size, need)
}

/// The smallest size (whole MiB) that holds `need`.
pub fn minimum(need: &Need) -> u64 {
    let mut size = (need.blocks * BLOCK).div_ceil(MIB) * MIB;
    while !fits(size, need) {
        let want = (need.blocks + overhead_blocks(size, need)) * BLOCK;
        size = want.max(size + MIB).div_ceil(MIB) * MIB;
    }
    size
}

/// `"/path"` in debugfs's quoting (`"` doubled), or why it cannot be written.
fn quote(rel: &str) -> Result<String, FsImageError> {
    if rel.contains('\n') || rel.contains('\r') || rel.contains('\u{fffd}') {
        return Err(FsImageError::BadName {
            path: rel.into(),
            format: "ext4",
            reason: "debugfs cannot name files with line breaks or non-UTF-8 bytes",
        });
    }
    Ok(format!("\"/{}\"", rel.replace('"', "\"\"")))
}

fn type_bits(kind: &Kind) -> u32 {
    match kind {
        Kind::File(_) | Kind::HardLink(_) => 0o100_000,
        Kind::Dir => 0o040_000,
        Kind::Symlink(_) => 0o120_000,
        Kind::Char(..) => 0o020_000,
        Kind::Block(..) => 0o060_000,
        Kind::Fifo => 0o010_000,
    }
}

/// The debugfs commands that make every inode what `staged.tree` says.
fn fixups(staged: &Staged) -> Result<String, FsImageError> {
    use std::fmt::Write as _;
    let t = staged.created;
    let mut s = String::new();
    for f in ["uid 0", "gid 0", "mode 040755"] {
        let _ = writeln!(s, "sif / {f}");
    }
    for f in ["atime", "mtime", "ctime"] {
        let _ = writeln!(s, "sif / {f} @{t}");
    }
    for (rel, m) in &staged.tree {
        // A hard link is the same inode as its target, which has its own lines.
        if matches!(m.kind, Kind::HardLink(_)) {
            continue;
        }
        let q = quote(rel)?;
        let host = if staged.absent.contains(rel) {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            let node = match m.kind {
                Kind::Char(a, b) => format!("c {a} {b}"),
                Kind::Block(a, b) => format!("b {a} {b}"),
                _ => "p".into(),
            };
            let _ = writeln!(s, "cd {}", quote(parent)?);
            let name = format!("\"{}\"", name.replace('"', "\"\""));
            let _ = writeln!(s, "mknod {name} {node}");
            let _ = writeln!(s, "cd /");
            None
        } else {
            fs_err::symlink_metadata(staged.dir.join(rel)).ok()
        };
        let mode = type_bits(&m.kind) | m.mode;
        let same = |f: &dyn Fn(&std::fs::Metadata) -> u64, want: u64| {
            host.as_ref().is_some_and(|h| f(h) == want)
        };
        if !same(&|h| u64::from(h.uid()), u64::from(m.uid)) {
            let _ = writeln!(s, "sif {q} uid {}", m.uid);
        }
        if !same(&|h| u64::from(h.gid()), u64::from(m.gid)) {
            let _ = writeln!(s, "sif {q} gid {}", m.gid);
        }
        // A symlink's permission bits are 0777 whatever the layer says.
        let mode = if matches!(m.kind, Kind::Symlink(_)) {
            0o120_777
        } else {
            mode
        };
        if !same(&|h| u64::from(h.mode()), u64::from(mode)) {
            let _ = writeln!(s, "sif {q} mode 0{mode:o}");
        }
        if !same(&|h| h.mtime().max(0) as u64, m.mtime) {
            let _ = writeln!(s, "sif {q} mtime @{}", m.mtime);
        }
        // Never settable on the host, so always set here.
        let _ = writeln!(s, "sif {q} atime @{}", m.mtime);
        let _ = writeln!(s, "sif {q} ctime @{t}");
        if host.is_none() {
            let _ = writeln!(s, "sif {q} crtime @{t}");
        }
    }
    Ok(s)
}

/// Finds an e2fsprogs program: Debian keeps them in /usr/sbin, which a non-root PATH lacks;
/// elsewhere, PATH.
fn program(name: &str) -> std::path::PathBuf {
    for dir in ["/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    name.into()
}

/// Writes the ext4 image of `staged` to `file`: `size` bytes, or the minimum plus `margin`.
pub fn write(
    staged: &Staged,
    file: &Path,
    size: Option<u64>,
    margin: u64,
    work: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let need = need(&staged.tree);
    let size = image_size(size, &need, margin, file)?;
    let conf = work.join("mke2fs.conf");
    fs_err::write(&conf, MKE2FS_CONF)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    let out = AtomicFile::create(file)?;
    let job = Job {
        staged,
        file,
        tmp: out.temp_path(),
        fake_time: staged.created.to_string(),
        need,
        size,
        margin,
    };
    reporter.line(&format!(
        "--> Writing ext4 `{}`: {} MiB, {} entries, {} MiB of files (mkfs.ext4 -d)",
        file.display(),
        size / MIB,
        need.entries,
        need.content.div_ceil(MIB),
    ));
    let mkfs_secs = job.mkfs(&conf)?;
    let debugfs_secs = job.set_metadata(work, reporter)?;
    out.commit()
        .with_context(|| format!("failed to rename the ext4 image into `{}`", file.display()))?;
    reporter.line(&format!(
        "--> Wrote {} (mkfs.ext4 {mkfs_secs:.2} s, debugfs {debugfs_secs:.2} s)",
        file.display()
    ));
    Ok(())
}

/// The image's size in bytes: `size` (whole blocks) when the files fit in it, else the
/// minimum plus `margin` in whole MiB.
fn image_size(size: Option<u64>, need: &Need, margin: u64, file: &Path) -> anyhow::Result<u64> {
    let min = minimum(need);
    Ok(match size {
        Some(s) if !fits(s, need) => {
            let mut fits_from = s.div_ceil(MIB) * MIB;
            while !fits(fits_from, need) {
                fits_from += MIB;
            }
            return Err(FsImageError::TooSmall {
                file: file.to_path_buf(),
                size: s,
                needed: min,
                fits_from,
                content: need.content,
                entries: need.entries,
                suggest: (fits_from.max(min + margin)).div_ceil(MIB),
            }
            .into());
        }
        Some(s) => s / BLOCK * BLOCK,
        None => (min + margin).div_ceil(MIB) * MIB,
    })
}

/// What the steps writing one ext4 image share.
struct Job<'a> {
    staged: &'a Staged,
    /// The image's final path (for messages).
    file: &'a Path,
    /// The temporary file the tools write, renamed to `file` at the end.
    tmp: &'a Path,
    /// `E2FSPROGS_FAKE_TIME`: the image's creation time, for reproducible time stamps.
    fake_time: String,
    need: Need,
    size: u64,
    margin: u64,
}

impl Job<'_> {
    /// `mkfs.ext4 -d` with the files of the staged tree; the seconds it took.
    fn mkfs(&self, conf: &Path) -> anyhow::Result<f64> {
        let (staged, size) = (self.staged, self.size);
        let mut mkfs = std::process::Command::new(program("mkfs.ext4"));
        mkfs.env("E2FSPROGS_FAKE_TIME", &self.fake_time)
            .env("MKE2FS_CONFIG", conf)
            .env_remove("MKE2FS_SYNC")
            .env_remove("MKE2FS_FIRST_META_BG")
            .env_remove("MKE2FS_DEVICE_SECTSIZE")
            .env_remove("MKE2FS_DEVICE_PHYS_SECTSIZE")
            .args([
                "-F", "-q", "-t", "ext4", "-T", "ext4", "-b", "4096", "-I", "256", "-m", "0",
            ])
            .arg("-N")
            .arg(inode_count(size, &self.need).to_string())
            .args(["-L", "rootfs", "-U"])
            .arg(staged.uuid("ext4 uuid"))
            .arg("-E")
            .arg(format!(
                "hash_seed={},root_owner=0:0,nodiscard",
                staged.uuid("ext4 hash seed")
            ))
            .arg("-d")
            .arg(&staged.dir)
            .arg(self.tmp)
            .arg(format!("{}k", size / 1024));
        let started = std::time::Instant::now();
        run_tool(mkfs, "mkfs.ext4", "e2fsprogs", self.file).map_err(|e| self.mkfs_failed(e))?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// mkfs's failure; when it ran out of room, says whether the host disk is full or the
    /// SIZE too small.
    fn mkfs_failed(&self, e: FsImageError) -> anyhow::Error {
        let FsImageError::ToolFailed { output, .. } = &e else {
            return e.into();
        };
        if !(output.contains("No space left")
            || output.contains("Could not allocate")
            || output.contains("inode"))
        {
            return e.into();
        }
        let (file, need, size) = (self.file, &self.need, self.size);
        // mkfs writes a sparse file: a full host disk fails the same way as a too small
        // SIZE, and asking for a larger SIZE would not help.
        let dir = self.tmp.parent().unwrap_or(Path::new("."));
        if let Ok(st) = rustix::fs::statvfs(dir)
            && st.f_bavail.saturating_mul(st.f_frsize) < need.content
        {
            return anyhow::Error::new(e).context(format!(
                "the disk holding `{}` is full ({} MiB free, the image's files need {} MiB): free some space or write the image elsewhere",
                file.display(),
                st.f_bavail.saturating_mul(st.f_frsize) / MIB,
                need.content.div_ceil(MIB)
            ));
        }
        anyhow::Error::new(e).context(format!(
            "the filesystem is too small for the image; give a larger SIZE than {} (ext4:{}:{}M) or none",
            size,
            file.display(),
            (size + size / 4 + self.margin).div_ceil(MIB)
        ))
    }

    /// Sets owners, modes and time stamps with a debugfs script; the seconds debugfs took.
    fn set_metadata(&self, work: &Path, reporter: &dyn Reporter) -> anyhow::Result<f64> {
        let file = self.file;
        let script = work.join("fixups.debugfs");
        let commands = fixups(self.staged)?;
        reporter.line(&format!(
            "--> Setting owners, modes and time stamps: {} debugfs commands",
            commands.lines().count()
        ));
        fs_err::write(&script, commands)?;
        let started = std::time::Instant::now();
        let mut dbg = std::process::Command::new(program("debugfs"));
        dbg.env("E2FSPROGS_FAKE_TIME", &self.fake_time)
            .arg("-w")
            .arg("-f")
            .arg(&script)
            .arg(self.tmp);
        let o = run_tool(dbg, "debugfs", "e2fsprogs", file)?;
        // debugfs exits 0 whatever its commands did: any message besides its banner is an
        // error.
        let errors: Vec<String> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
            .map(str::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(FsImageError::ToolFailed {
                tool: "debugfs",
                status: "command errors".into(),
                file: file.to_path_buf(),
                output: errors.join("\n"),
            })
            .with_context(|| format!("failed to set owners in `{}`", file.display()));
        }
        Ok(started.elapsed().as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsimage::tree::Meta;

    fn tree_of(files: u64, size: u64) -> Tree {
        let mut t = Tree::new();
        t.insert("d".into(), Meta::root_owned(Kind::Dir, 0o755, 0));
        for i in 0..files {
            t.insert(
                format!("d/file-{i}"),
                Meta::root_owned(Kind::File(size), 0o644, 0),
            );
        }
        t
    }

    #[test]
    fn minimum_grows_with_content_and_fits() {
        let small = need(&tree_of(10, 100));
        let big = need(&tree_of(1000, 100_000));
        assert!(minimum(&small) < minimum(&big));
        for n in [small, big] {
            let m = minimum(&n);
            assert!(fits(m, &n));
            assert!(!fits(n.blocks * BLOCK, &n), "metadata needs room too");
            assert_eq!(m % MIB, 0);
        }
        // 1000 files of 25 blocks = 97.7 MiB of data.
        assert!(minimum(&big) > 98 * MIB, "{}", minimum(&big));
    }

    #[test]
    fn names_are_quoted_for_debugfs() {
        assert_eq!(quote("a b").unwrap(), "\"/a b\"");
        assert_eq!(quote("q\"x").unwrap(), "\"/q\"\"x\"");
        assert!(quote("a\nb").is_err());
    }
}
