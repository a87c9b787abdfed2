//! `.dockerignore`: which files of the build context COPY and ADD leave out.
//!
//! One pattern per line (`#` comments and blank lines skipped), leading and trailing `/`
//! dropped, `!` re-includes; the last matching pattern wins, and a pattern matching a
//! directory covers what is below it (Docker's rules).

use std::path::{Path, PathBuf};

/// Why a `.dockerignore` cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerIgnoreError {
    /// The file exists but cannot be read (an unreadable file is not an empty one).
    #[error(transparent)]
    Read(std::io::Error),
    /// A line is not a valid pattern.
    #[error("{}:{line}: bad pattern `{pattern}`", path.display())]
    Pattern {
        /// The `.dockerignore`.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The line as written.
        pattern: String,
        /// What is wrong with it.
        source: glob::PatternError,
    },
}

/// The patterns of one `.dockerignore`, in file order: `(negated, pattern)`.
#[derive(Debug, Default, Clone)]
pub struct DockerIgnore(Vec<(bool, glob::Pattern)>);

impl DockerIgnore {
    /// Reads `<context>/.dockerignore`; none is an empty set.
    pub fn read(context: &Path) -> Result<Self, DockerIgnoreError> {
        let path = context.join(".dockerignore");
        match fs_err::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(DockerIgnoreError::Read(e)),
        }
    }

    /// Parses the text of a `.dockerignore`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, DockerIgnoreError> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (neg, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pat = pat.trim_start_matches('/').trim_end_matches('/');
            let pat = glob::Pattern::new(&pat.replace("**/", "*/")).map_err(|source| {
                DockerIgnoreError::Pattern {
                    path: path.to_path_buf(),
                    line: i + 1,
                    pattern: line.to_string(),
                    source,
                }
            })?;
            out.push((neg, pat));
        }
        Ok(Self(out))
    }

    /// Whether `rel` (relative to the context) is left out.
    pub fn is_ignored(&self, rel: &Path) -> bool {
        let mut result = false;
        // A pattern excluding a directory excludes what is below it.
        let ancestors: Vec<&Path> = rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        for (neg, pat) in &self.0 {
            if ancestors.iter().any(|a| pat.matches_path(a)) {
                result = !neg;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_match_wins_and_directories_cover_their_contents() {
        let d = DockerIgnore::parse("# c\n\ntarget/\n*.log\n!keep.log\n", Path::new("x")).unwrap();
        assert!(d.is_ignored(Path::new("target/debug/a")));
        assert!(d.is_ignored(Path::new("a.log")));
        assert!(!d.is_ignored(Path::new("keep.log")));
        assert!(!d.is_ignored(Path::new("src/main.rs")));
    }

    #[test]
    fn bad_pattern_names_file_and_line() {
        let e = DockerIgnore::parse("ok\n[\n", Path::new("ctx/.dockerignore")).unwrap_err();
        assert_eq!(e.to_string(), "ctx/.dockerignore:2: bad pattern `[`");
    }
}
