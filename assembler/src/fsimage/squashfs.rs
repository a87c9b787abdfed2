//! `squashfs:FILE`: a read-only squashfs of the image's root (`mksquashfs`, squashfs-tools).
//!
//! Owners, modes and mtimes of everything but directories come from a pseudo file with one
//! `M` (modify) line per entry, as the layers record them, and `C`/`B`/`I` lines create the
//! device nodes and FIFOs the staging could not. Directories are different: mksquashfs 4.5.1
//! turns a directory named in an `M` line into a pseudo entry and then ignores everything
//! below it ("already exists as a non directory"), so directories get their mode, mtime and
//! (as root) owner on disk in the staging tree instead. Unprivileged, mksquashfs runs in a
//! user namespace (`unshare --map-root-user`) so the host user's entries read as root's;
//! a directory owned by another user then cannot be expressed and is refused.
//!
//! Reproducible: gzip at the default block size, no xattrs, `-mkfs-time` and the root's time
//! from the export time (SOURCE_DATE_EPOCH), `-reproducible`; mksquashfs sorts directory
//! entries itself.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use apk::atomic::AtomicFile;

use super::tree::Kind;
use super::{FsImageError, Staged, run_tool};
use crate::build::Reporter;

/// A pseudo-file name: backslash before anything mksquashfs would split or unquote on.
fn escape(rel: &str) -> Result<String, FsImageError> {
    if rel.contains('\n') || rel.contains('\r') || rel.contains('\u{fffd}') {
        return Err(FsImageError::BadName {
            path: rel.into(),
            format: "squashfs",
            reason: "pseudo files cannot name files with line breaks or non-UTF-8 bytes",
        });
    }
    let mut out = String::with_capacity(rel.len());
    for c in rel.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// The pseudo file for `staged`.
fn pseudo(staged: &Staged) -> Result<String, FsImageError> {
    let mut s = String::new();
    for (rel, m) in &staged.tree {
        if matches!(m.kind, Kind::HardLink(_) | Kind::Dir) {
            continue;
        }
        let name = escape(rel)?;
        let (t, mode, uid, gid) = (m.mtime, m.mode, m.uid, m.gid);
        if staged.absent.contains(rel) {
            let _ = match m.kind {
                Kind::Char(a, b) => writeln!(s, "{name} C {t} {mode:o} {uid} {gid} {a} {b}"),
                Kind::Block(a, b) => writeln!(s, "{name} B {t} {mode:o} {uid} {gid} {a} {b}"),
                _ => writeln!(s, "{name} I {t} {mode:o} {uid} {gid} f"),
            };
        } else {
            let mode = if matches!(m.kind, Kind::Symlink(_)) {
                0o777
            } else {
                mode
            };
            let _ = writeln!(s, "{name} M {t} {mode:o} {uid} {gid}");
        }
    }
    Ok(s)
}

/// Gives the staged directories their owner, mode and mtime on disk (deepest first, so
/// setting a child's time does not disturb its parent's).
fn fix_dirs(staged: &Staged, privileged: bool) -> anyhow::Result<()> {
    let root = apk::rootfs::RootDir::open(&staged.dir)?;
    for (rel, m) in staged.tree.iter().rev() {
        if m.kind != Kind::Dir {
            continue;
        }
        if privileged {
            root.set_owner(rel, m.uid, m.gid)?;
        } else if (m.uid, m.gid) != (0, 0) {
            return Err(FsImageError::BadName {
                path: rel.clone(),
                format: "squashfs",
                reason: "a directory owned by a user other than root needs assemble to run as root for squashfs (or use the ext4 output)",
            }
            .into());
        }
        root.set_mode(rel, m.mode)?;
        root.set_mtime(rel, m.mtime as i64)?;
    }
    Ok(())
}

/// Writes the squashfs image of `staged` to `file`.
pub fn write(
    staged: &Staged,
    file: &Path,
    work: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let privileged = rustix::process::geteuid().is_root();
    fix_dirs(staged, privileged)?;
    let pf = work.join("squashfs.pseudo");
    fs_err::write(&pf, pseudo(staged)?)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    let out = AtomicFile::create(file)?;
    let t = staged.created.to_string();
    reporter.line(&format!(
        "--> Writing squashfs `{}`: {} entries (mksquashfs)",
        file.display(),
        staged.tree.len()
    ));
    let mut cmd = if privileged {
        std::process::Command::new("mksquashfs")
    } else {
        let mut c = std::process::Command::new("unshare");
        c.args(["--map-root-user", "mksquashfs"]);
        c
    };
    cmd.arg(&staged.dir)
        .arg(out.temp_path())
        .args([
            "-noappend",
            "-quiet",
            "-no-progress",
            "-reproducible",
            "-comp",
            "gzip",
            "-b",
            "131072",
            "-no-xattrs",
            "-root-mode",
            "755",
            "-root-uid",
            "0",
            "-root-gid",
            "0",
        ])
        .arg("-mkfs-time")
        .arg(&t)
        .arg("-root-time")
        .arg(&t)
        .arg("-pf")
        .arg(&pf);
    run_tool(cmd, "mksquashfs", "squashfs-tools", file)?;
    out.commit()
        .with_context(|| format!("failed to rename the squashfs into `{}`", file.display()))?;
    reporter.line(&format!("--> Wrote {}", file.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("a b").unwrap(), "a\\ b");
        assert_eq!(escape("q\"x\\'").unwrap(), "q\\\"x\\\\\\'");
        assert!(escape("a\nb").is_err());
    }
}
