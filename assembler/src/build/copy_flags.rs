//! COPY/ADD flags beyond sources and destination: `--parents` (the sources' directories are
//! kept below an optional `/./` pivot), `--exclude` (ignore-file patterns, matched against
//! each source's path and the paths below a source directory), `--link` (checked, see
//! [`check_link`]) and ADD's `--unpack`. ADD's `--keep-git-dir` (ADD of a git repository
//! is not supported) and `--unpack=true` of a URL are refused: before the first step by
//! `validate` where the file says so ([`KEEP_GIT_DIR`], [`UNPACK_URL`]), the latter again
//! here for a URL a variable gives. `--from`, `--chown` and `--chmod` are in `copy`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use apk::rootfs::RootDir;

use crate::containerfile::Instruction;
use crate::dockerignore::DockerIgnore;

/// The flags of one COPY/ADD that shape what it copies.
pub(super) struct CopyFlags {
    /// `--parents`.
    pub parents: bool,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns, as an ignore file's.
    pub exclude: DockerIgnore,
    /// Extract local archives: ADD, unless `--unpack=false`.
    pub unpack: bool,
    /// `--unpack` as written.
    unpack_flag: Option<bool>,
    /// The instruction's name, for messages.
    pub keyword: &'static str,
}

impl CopyFlags {
    /// The flags of `x`, an ADD when `add`; `at` is its `file:line` for errors.
    pub fn read(x: &Instruction, add: bool, at: &str) -> anyhow::Result<Self> {
        let mut exclude = DockerIgnore::default();
        for p in x.flag_values("exclude") {
            exclude
                .push(p)
                .map_err(|e| anyhow::anyhow!("{at}: --exclude={p}: not a valid pattern ({e})"))?;
        }
        let unpack_flag = bool_flag(x.flag("unpack"));
        Ok(Self {
            parents: bool_flag(x.flag("parents")).unwrap_or(false),
            link: bool_flag(x.flag("link")).unwrap_or(false),
            exclude,
            unpack: add && unpack_flag.unwrap_or(true),
            keyword: if add { "ADD" } else { "COPY" },
            unpack_flag,
        })
    }

    /// ADD of a URL: `--unpack=true` (extract a downloaded archive) is not supported.
    pub fn check_url(&self, at: &str) -> anyhow::Result<()> {
        if self.unpack_flag == Some(true) {
            let (message, hint) = UNPACK_URL;
            bail!("{at}: {message}; {hint}");
        }
        Ok(())
    }

    /// Whether `rel` (a source as matched, relative to the source tree) is excluded.
    pub fn excluded(&self, rel: &Path) -> bool {
        self.exclude.is_ignored(rel)
    }
}

/// ADD `--keep-git-dir`, refused: (message, hint).
pub(super) const KEEP_GIT_DIR: (&str, &str) = (
    "ADD --keep-git-dir: ADD of a git repository is not supported",
    "clone it in a RUN step of a build stage and COPY --from that stage",
);

/// ADD `--unpack=true` of a URL, refused: (message, hint).
pub(super) const UNPACK_URL: (&str, &str) = (
    "ADD --unpack=true of a URL is not supported",
    "ADD the archive without --unpack and extract it with `tar` in a RUN step",
);

/// Whether ADD source `src` is a URL (downloaded, not read from the context).
pub(super) fn is_url(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// A boolean flag: `--name` or `--name=true` is true, `--name=false` false.
fn bool_flag(value: Option<&str>) -> Option<bool> {
    value.map(|v| v != "false")
}

/// `--parents`: the directory of the source tree whose contents keep their path (the part
/// before `/./`, else the tree's root) and the source to match (without the `/./`).
pub(super) fn parents_pivot(src: &str, parents: bool) -> (PathBuf, String) {
    match src.split_once("/./") {
        Some((base, rest)) if parents => {
            let base = base.trim_start_matches('/').trim_start_matches("./");
            (PathBuf::from(base), format!("{base}/{rest}"))
        }
        _ => (PathBuf::new(), src.to_string()),
    }
}

/// `--link`: BuildKit copies into an empty layer merged on top, so a destination below a
/// symlink of the image gets a directory there instead of following the symlink. We copy
/// into the image and would follow it: refused, rather than giving another result.
pub(super) fn check_link<'a>(
    rootfs: &Path,
    dests: impl Iterator<Item = &'a str>,
    at: &str,
) -> anyhow::Result<()> {
    let root = RootDir::open(rootfs)?;
    for dest in dests {
        let rel = Path::new(dest.trim_start_matches('/').trim_end_matches('/'));
        for dir in rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            if root.metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!(
                    "{at}: COPY --link to `{dest}`: `/{}` is a symlink in the image, \
                     which --link would replace by a directory; copy to the symlink's target, \
                     or drop --link",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pivot_splits_where_paths_are_kept() {
        assert_eq!(
            parents_pivot("src/./a/*.c", true),
            (PathBuf::from("src"), "src/a/*.c".to_string())
        );
        assert_eq!(
            parents_pivot("a/b.c", true),
            (PathBuf::new(), "a/b.c".to_string())
        );
        assert_eq!(
            parents_pivot("src/./a", false),
            (PathBuf::new(), "src/./a".to_string())
        );
    }
}
