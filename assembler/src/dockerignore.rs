//! Ignore patterns: the build context's ignore file (`.containerignore`, else
//! `.dockerignore`), which COPY, ADD and context bind mounts leave out, and COPY/ADD's
//! `--exclude` patterns.
//!
//! Docker's rules: one pattern per line (`#` comments and blank lines skipped), leading and
//! trailing `/` dropped, `!` re-includes; `*` and `?` stop at `/`, `**` spans directories;
//! the last matching pattern wins, and a pattern matching a directory covers what is below
//! it.

use std::path::{Path, PathBuf};

/// The ignore files a build context may have, in the order they are looked for: buildah
/// reads `.containerignore` when both exist.
pub const FILES: [&str; 2] = [".containerignore", ".dockerignore"];

/// Why an ignore file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerIgnoreError {
    /// The file exists but cannot be read (an unreadable file is not an empty one).
    #[error(transparent)]
    Read(std::io::Error),
    /// A line is not a valid pattern.
    #[error("{}:{line}: bad pattern `{pattern}`", path.display())]
    Pattern {
        /// The ignore file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The line as written.
        pattern: String,
        /// What is wrong with it.
        source: glob::PatternError,
    },
}

/// Ignore patterns in file order: `(negated, pattern)`.
#[derive(Debug, Default, Clone)]
pub struct DockerIgnore(Vec<(bool, glob::Pattern)>);

/// Docker's pattern rules: `*` and `?` stop at `/`, `**` spans directories.
const PATTERN_RULES: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl DockerIgnore {
    /// Reads the ignore file of `context` (the first of [`FILES`] there); none is an empty
    /// set.
    pub fn read(context: &Path) -> Result<Self, DockerIgnoreError> {
        for name in FILES {
            let path = context.join(name);
            match fs_err::read_to_string(&path) {
                Ok(text) => return Self::parse(&text, &path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DockerIgnoreError::Read(e)),
            }
        }
        Ok(Self::default())
    }

    /// Parses the text of an ignore file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, DockerIgnoreError> {
        let mut out = Self::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(line)
                .map_err(|source| DockerIgnoreError::Pattern {
                    path: path.to_path_buf(),
                    line: i + 1,
                    pattern: line.to_string(),
                    source,
                })?;
        }
        Ok(out)
    }

    /// Adds one pattern (a line of an ignore file that is neither blank nor a comment, or
    /// an `--exclude` value); it wins over the earlier ones where both match.
    pub fn push(&mut self, line: &str) -> Result<(), glob::PatternError> {
        let (neg, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pat = pat.trim_start_matches('/').trim_end_matches('/');
        self.0.push((neg, glob::Pattern::new(pat)?));
        Ok(())
    }

    /// Whether there is no pattern.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `rel` (relative to the tree the patterns are for) is left out.
    pub fn is_ignored(&self, rel: &Path) -> bool {
        let mut result = false;
        // A pattern excluding a directory excludes what is below it.
        let ancestors: Vec<&Path> = rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        for (neg, pat) in &self.0 {
            if ancestors
                .iter()
                .any(|a| pat.matches_path_with(a, PATTERN_RULES))
            {
                result = !neg;
            }
        }
        result
    }

    /// Whether `rel` (below `root`) is wholly left out of the context: ignored and, for a
    /// directory, with no path below it taken back by an exception (`!pattern`); Docker
    /// keeps such a directory with those paths only.
    pub fn leaves_out(&self, root: &Path, rel: &Path) -> std::io::Result<bool> {
        if rel.as_os_str().is_empty() || rel == Path::new(".") || !self.is_ignored(rel) {
            return Ok(false);
        }
        let top = root.join(rel);
        if !fs_err::symlink_metadata(&top)?.is_dir() {
            return Ok(true);
        }
        for entry in walkdir::WalkDir::new(&top).min_depth(1) {
            let entry = entry.map_err(std::io::Error::from)?;
            let below = entry.path().strip_prefix(root).unwrap_or(entry.path());
            if !self.is_ignored(below) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text, Path::new("x")).unwrap()
    }

    #[test]
    fn last_match_wins_and_directories_cover_their_contents() {
        let d = parse("# c\n\ntarget/\n*.log\n!keep.log\n");
        assert!(d.is_ignored(Path::new("target/debug/a")));
        assert!(d.is_ignored(Path::new("a.log")));
        assert!(!d.is_ignored(Path::new("keep.log")));
        assert!(!d.is_ignored(Path::new("src/main.rs")));
    }

    #[test]
    fn a_star_stops_at_a_slash_and_two_span_directories() {
        let d = parse("*.txt\n!keep.txt\ntmp\n");
        assert!(d.is_ignored(Path::new("a.txt")));
        assert!(!d.is_ignored(Path::new("keep.txt")));
        assert!(d.is_ignored(Path::new("tmp/x/y")));
        assert!(!d.is_ignored(Path::new("sub/a.txt")));
        let deep = parse("**/*.txt\n");
        assert!(deep.is_ignored(Path::new("sub/a.txt")) && deep.is_ignored(Path::new("a.txt")));
        assert!(parse("src/*.txt").is_ignored(Path::new("src/a.txt")));
        assert!(!parse("src/*.txt").is_ignored(Path::new("src/sub/a.txt")));
    }

    #[test]
    fn an_ignored_directory_is_left_out_unless_an_exception_takes_a_path_back() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "b.log",
            "cache/x",
            "docs/drop.md",
            "docs/keep.md",
            "src/a.rs",
        ] {
            let p = t.path().join(f);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(p, f).unwrap();
        }
        let d = parse("*.log\ncache\ndocs\n!docs/keep.md\n");
        let out = |rel: &str| d.leaves_out(t.path(), Path::new(rel)).unwrap();
        assert!(out("b.log") && out("cache") && out("cache/x") && out("docs/drop.md"));
        assert!(!out("docs") && !out("docs/keep.md") && !out("src") && !out("."));
    }

    #[test]
    fn containerignore_is_read_before_dockerignore() {
        let t = tempfile::tempdir().unwrap();
        assert!(DockerIgnore::read(t.path()).unwrap().is_empty());
        fs_err::write(t.path().join(".dockerignore"), "d\n").unwrap();
        assert!(
            DockerIgnore::read(t.path())
                .unwrap()
                .is_ignored(Path::new("d"))
        );
        fs_err::write(t.path().join(".containerignore"), "c\n").unwrap();
        let both = DockerIgnore::read(t.path()).unwrap();
        assert!(both.is_ignored(Path::new("c")) && !both.is_ignored(Path::new("d")));
    }

    #[test]
    fn bad_pattern_names_file_and_line() {
        let e = DockerIgnore::parse("ok\n[\n", Path::new("ctx/.dockerignore")).unwrap_err();
        assert_eq!(e.to_string(), "ctx/.dockerignore:2: bad pattern `[`");
    }
}
