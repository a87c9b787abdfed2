//! Parse errors: structured fields for programs, a rustc-like snippet (annotate-snippets)
//! for people: `file:line:column`, the source line, a caret and a hint.

use std::fmt;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// What went wrong, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A keyword that is not an instruction; `suggestion` is the closest known one.
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    /// A flag the instruction does not take, or a bad flag value.
    BadFlag { instruction: String, flag: String },
    /// The instruction needs arguments it did not get (e.g. `FROM` alone).
    MissingArguments { instruction: String },
    /// Arguments that do not fit the instruction's syntax.
    BadArguments { instruction: String },
    /// A JSON array that does not parse where one is required or clearly intended.
    BadJson { instruction: String },
    /// A heredoc whose terminator never came.
    UnterminatedHeredoc { delimiter: String },
    /// A bad or repeated parser directive.
    BadDirective { name: String },
    /// An instruction other than ARG before the first FROM, or no FROM at all.
    NoStage,
    /// Two stages with the same name.
    DuplicateStageName { name: String },
}

/// A Containerfile syntax error. `Display` renders the full snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseError {
    pub path: PathBuf,
    /// Line of the error, from 1.
    pub line: usize,
    /// Column of the error on that line, from 1, in characters.
    pub column: usize,
    /// The source line `line`, without its newline.
    pub source_line: String,
    /// One-line description.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(
        path: &Path,
        kind: ParseErrorKind,
        line: usize,
        column: usize,
        source_line: String,
        message: String,
        hint: Option<String>,
    ) -> Self {
        Self {
            path: path.to_owned(),
            line,
            column,
            source_line,
            message,
            hint,
            kind,
        }
    }

    /// An error about flag number `index` of `inst` (read from `path`), pointing at the
    /// flag; at the instruction when its position is unknown.
    pub fn at_flag(
        path: &Path,
        inst: &super::Instruction,
        index: usize,
        message: String,
        hint: Option<String>,
    ) -> Self {
        let span = &inst.span;
        let (below, column) = span.flag_at.get(index).copied().unwrap_or((0, span.column));
        let flag = inst
            .flags
            .get(index)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        Self::new(
            path,
            ParseErrorKind::BadFlag {
                instruction: inst.name().to_owned(),
                flag,
            },
            span.line + below,
            column,
            span.text.lines().nth(below).unwrap_or("").to_owned(),
            message,
            hint,
        )
    }

    /// An error about `inst` as a whole (read from `path`), pointing at its keyword.
    pub fn at_instruction(
        path: &Path,
        inst: &super::Instruction,
        message: String,
        hint: Option<String>,
    ) -> Self {
        let span = &inst.span;
        Self::new(
            path,
            ParseErrorKind::BadArguments {
                instruction: inst.name().to_owned(),
            },
            span.line,
            span.column,
            span.text.lines().next().unwrap_or("").to_owned(),
            message,
            hint,
        )
    }

    /// The snippet, plain (no colours): what `Display` prints.
    pub fn render(&self) -> String {
        self.render_with(&Renderer::plain())
    }

    /// The snippet with ANSI colours, for terminals.
    pub fn render_styled(&self) -> String {
        self.render_with(&Renderer::styled())
    }

    fn render_with(&self, renderer: &Renderer) -> String {
        let path = self.path.display().to_string();
        let start = byte_offset(&self.source_line, self.column);
        // Underline the word at the column (at least one character, even at end of line).
        let end = self.source_line[start..]
            .find(char::is_whitespace)
            .map_or(self.source_line.len(), |n| start + n)
            .max(start + 1);
        // annotate-snippets needs the span inside the source: pad one space for an
        // error at the very end of the line (e.g. "missing argument").
        let mut source = self.source_line.clone();
        while source.len() < end {
            source.push(' ');
        }
        let mut groups = vec![
            Level::ERROR.primary_title(self.message.as_str()).element(
                Snippet::source(source.as_str())
                    .line_start(self.line)
                    .path(path.as_str())
                    .annotation(AnnotationKind::Primary.span(start..end)),
            ),
        ];
        if let Some(hint) = &self.hint {
            groups.push(Group::with_title(
                Level::HELP.secondary_title(hint.as_str()),
            ));
        }
        renderer.render(&groups).to_string()
    }
}

/// Byte offset of 1-based character column `column` in `line` (clamped to the end).
fn byte_offset(line: &str, column: usize) -> usize {
    line.char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i)
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for ParseError {}

/// Edit distance counting a swap of two neighbours as one edit (optimal string
/// alignment), for "did you mean" hints: `FORM` is one edit from `FROM`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The closest of `candidates` to `word` if it is close enough to be a typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let upper = word.to_ascii_uppercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&upper, &c.to_ascii_uppercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("RUNN", "RUN"), 1);
        assert_eq!(edit_distance("FORM", "FROM"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("cpoy", &["COPY", "CMD"]), Some("COPY"));
        assert_eq!(suggest("workdri", &["WORKDIR"]), Some("WORKDIR"));
        assert_eq!(suggest("banana", &["RUN", "COPY"]), None);
    }

    #[test]
    fn snippet_at_end_of_line_and_after_unicode() {
        let e = ParseError::new(
            Path::new("f"),
            ParseErrorKind::NoStage,
            1,
            4,
            "ÉÉÉ".to_owned(),
            "m".to_owned(),
            None,
        );
        assert!(e.render().contains("1 | ÉÉÉ"), "{}", e.render());
        assert_eq!(byte_offset("ÉÉÉ", 2), 2);
        assert_eq!(byte_offset("ab", 9), 2);
    }
}
