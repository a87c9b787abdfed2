//! Physical lines → logical instructions: parser directives, comments, line
//! continuations and heredoc bodies, keeping a map back to source positions.
//!
//! Follows buildkit's `parser.go`: directives only at the very top; a line whose last
//! non-blank character is the escape character continues on the next line (the escape
//! and trailing blanks are removed, lines are joined with nothing in between); blank
//! and comment lines inside a continuation are dropped; heredoc bodies (RUN/COPY/ADD)
//! start on the line after the whole logical line.

use std::path::Path;

use super::Heredoc;
use super::error::{ParseError, ParseErrorKind};

pub(crate) struct Lexed {
    pub escape: char,
    pub notes: Vec<String>,
    pub instructions: Vec<RawInstruction>,
}

/// A logical line: keyword, arguments, heredocs, and how to find source positions.
pub(crate) struct RawInstruction {
    /// Keyword as written.
    pub keyword: String,
    /// The whole logical line (keyword included), continuations joined.
    pub logical: String,
    /// Byte offset in `logical` where the arguments start (after the keyword's blanks).
    pub args_start: usize,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    /// Original source lines `line..=end_line`.
    pub text: String,
    pub heredocs: Vec<Heredoc>,
    /// (offset in `logical`, source line, source column) of each joined piece.
    segments: Vec<(usize, usize, usize)>,
    /// Source lines of the logical line (first is `line`), to quote in errors.
    source_lines: Vec<(usize, String)>,
}

impl RawInstruction {
    pub fn args(&self) -> &str {
        &self.logical[self.args_start..]
    }

    /// Source (line, column) of byte `offset` in `logical`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.logical.len());
        let (start, line, col) = self
            .segments
            .iter()
            .rev()
            .find(|(s, _, _)| *s <= offset)
            .copied()
            .unwrap_or((0, self.line, self.column));
        let chars = self.logical[start..offset].chars().count();
        (line, col + chars)
    }

    /// An error pointing at byte `offset` of the logical line.
    pub fn error(
        &self,
        path: &Path,
        kind: ParseErrorKind,
        offset: usize,
        message: String,
        hint: Option<String>,
    ) -> ParseError {
        let (line, column) = self.position(offset);
        let source_line = self
            .source_lines
            .iter()
            .find(|(n, _)| *n == line)
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        ParseError::new(path, kind, line, column, source_line, message, hint)
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `# name=value` at the top of the file, as buildkit's directive regex
/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[name_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_owned()))
}

pub(crate) fn lex(source: &str, path: &Path) -> Result<Lexed, ParseError> {
    let mut lexer = Lexer::new(source, path);
    lexer.directives()?;
    let mut instructions = Vec::new();
    while let Some(raw) = lexer.instruction()? {
        instructions.push(raw);
    }
    Ok(Lexed {
        escape: lexer.escape,
        notes: lexer.notes,
        instructions,
    })
}

/// The state the lexing steps share: the source lines, the cursor over them, and what the
/// directives decided.
struct Lexer<'a> {
    path: &'a Path,
    lines: Vec<&'a str>,
    /// The number of real lines (`lines` may end with an empty non-line).
    n_lines: usize,
    /// The current line (0-based).
    i: usize,
    escape: char,
    notes: Vec<String>,
}

/// A logical line's text, continuations joined, with its map back to the source.
struct Joined {
    logical: String,
    segments: Vec<(usize, usize, usize)>,
    source_lines: Vec<(usize, String)>,
}

impl<'a> Lexer<'a> {
    fn new(source: &'a str, path: &'a Path) -> Self {
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let lines: Vec<&str> = source
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        // A trailing newline makes an empty last element that is not a line.
        let n_lines = if source.ends_with('\n') {
            lines.len() - 1
        } else {
            lines.len()
        };
        Lexer {
            path,
            lines,
            n_lines,
            i: 0,
            escape: '\\',
            notes: Vec::new(),
        }
    }

    /// Parser directives: only before anything else, stop at the first other line.
    fn directives(&mut self) -> Result<(), ParseError> {
        let mut seen: Vec<String> = Vec::new();
        while self.i < self.n_lines {
            let Some((name, value)) = directive(self.lines[self.i]) else {
                break;
            };
            if !matches!(name.as_str(), "escape" | "syntax" | "check") {
                // Unknown directives are plain comments (buildkit); they end the header.
                break;
            }
            if seen.contains(&name) {
                return Err(self.bad_directive(
                    &name,
                    format!("only one `{name}` parser directive can be used"),
                    "remove the repeated directive",
                ));
            }
            seen.push(name.clone());
            self.apply_directive(&name, &value)?;
            self.i += 1;
        }
        Ok(())
    }

    /// Applies the known directive `name` on the current line.
    fn apply_directive(&mut self, name: &str, value: &str) -> Result<(), ParseError> {
        let at = format!("{}:{}", self.path.display(), self.i + 1);
        match name {
            "escape" => {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(self.bad_directive(
                            name,
                            format!("invalid escape character `{value}`"),
                            "the escape directive takes `\\` or `` ` ``",
                        ));
                    }
                }
            }
            "syntax" => self.notes.push(format!(
                "{at}: `# syntax={value}` ignored: assemble uses its own Containerfile parser"
            )),
            _ => self.notes.push(format!(
                "{at}: `# check={value}` ignored: assemble has no build checks"
            )),
        }
        Ok(())
    }

    fn bad_directive(&self, name: &str, message: String, hint: &str) -> ParseError {
        ParseError::new(
            self.path,
            ParseErrorKind::BadDirective {
                name: name.to_owned(),
            },
            self.i + 1,
            1,
            self.lines[self.i].to_owned(),
            message,
            Some(hint.to_owned()),
        )
    }

    /// The next instruction, with its heredoc bodies; `None` at the end of the file.
    fn instruction(&mut self) -> Result<Option<RawInstruction>, ParseError> {
        if !self.skip_blank_and_comments() {
            return Ok(None);
        }
        let start_line = self.i;
        let first = self.lines[start_line];
        let lead = first.chars().count() - first.trim_start().chars().count();
        let joined = self.join_continuations(lead);
        let mut raw = RawInstruction::new(joined, start_line + 1, lead + 1, self.i + 1);
        self.i += 1;
        let mut upper = raw.keyword.to_ascii_uppercase();
        if upper == "ONBUILD" {
            // `ONBUILD RUN <<EOF` has its trigger's heredocs (BuildKit's compound directive).
            upper = raw
                .args()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
        }
        if matches!(upper.as_str(), "RUN" | "COPY" | "ADD") {
            self.heredocs(&mut raw, &upper)?;
        }
        raw.text = self.lines[start_line..raw.end_line].join("\n");
        Ok(Some(raw))
    }

    /// Moves to the next line holding an instruction; false at the end of the file.
    fn skip_blank_and_comments(&mut self) -> bool {
        while self.i < self.n_lines {
            let trimmed = self.lines[self.i].trim_start();
            if !(trimmed.is_empty() || trimmed.starts_with('#')) {
                return true;
            }
            self.i += 1;
        }
        false
    }

    /// The logical line starting at the current line (its first `lead` characters blank),
    /// continuations joined; leaves the cursor on its last line.
    fn join_continuations(&mut self, lead: usize) -> Joined {
        let first = self.lines[self.i];
        let mut logical = String::new();
        let mut segments = vec![(0, self.i + 1, lead + 1)];
        let mut source_lines = vec![(self.i + 1, first.to_owned())];
        let mut piece = first.trim_start();
        let mut empty_continuation_noted = false;
        loop {
            let body = piece.trim_end_matches(is_blank);
            let Some(stripped) = body.strip_suffix(self.escape) else {
                logical.push_str(piece);
                break;
            };
            logical.push_str(stripped);
            self.i += 1;
            self.skip_continuation_gap(&mut empty_continuation_noted);
            if self.i >= self.n_lines {
                // EOF inside a continuation ends the instruction (as Docker).
                self.i = self.n_lines - 1;
                break;
            }
            segments.push((logical.len(), self.i + 1, 1));
            source_lines.push((self.i + 1, self.lines[self.i].to_owned()));
            piece = self.lines[self.i];
        }
        Joined {
            logical,
            segments,
            source_lines,
        }
    }

    /// Skips the blank and comment lines inside a continuation, noting the first blank one.
    fn skip_continuation_gap(&mut self, noted: &mut bool) {
        while self.i < self.n_lines {
            let t = self.lines[self.i].trim_start();
            if !t.is_empty() && !t.starts_with('#') {
                break;
            }
            if t.is_empty() && !*noted {
                // buildkit warns that these will become errors.
                *noted = true;
                self.notes.push(format!(
                    "{}:{}: empty continuation line (Docker warns these will become \
                     errors; remove it or the escape before it)",
                    self.path.display(),
                    self.i + 1
                ));
            }
            self.i += 1;
        }
    }

    /// Reads the bodies of `raw`'s heredocs (RUN/COPY/ADD `upper`) from the lines after it.
    fn heredocs(&mut self, raw: &mut RawInstruction, upper: &str) -> Result<(), ParseError> {
        let words = heredoc_words(raw.args(), self.escape).map_err(|offset| {
            raw.error(
                self.path,
                ParseErrorKind::BadArguments {
                    instruction: upper.to_owned(),
                },
                raw.args_start + offset,
                "unterminated quote in a heredoc delimiter".to_owned(),
                Some("close the quote: `<<'EOF'` or `<<\"EOF\"`".to_owned()),
            )
        })?;
        for (offset, spec) in words {
            let Some(content) = self.heredoc_body(&spec) else {
                return Err(unterminated_heredoc(
                    raw,
                    self.path,
                    raw.args_start + offset,
                    &spec,
                ));
            };
            raw.heredocs.push(Heredoc { content, ..spec });
        }
        raw.end_line = raw.end_line.max(self.i);
        Ok(())
    }

    /// The lines up to `spec`'s delimiter, each ending with `\n`; `None` at the end of the
    /// file without one.
    fn heredoc_body(&mut self, spec: &Heredoc) -> Option<String> {
        let mut content = String::new();
        while self.i < self.n_lines {
            let line = self.lines[self.i];
            self.i += 1;
            let line = if spec.strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == spec.delimiter {
                return Some(content);
            }
            content.push_str(line);
            content.push('\n');
        }
        None
    }
}

impl RawInstruction {
    /// The instruction of `joined`, from source line `line` column `column` to `end_line`
    /// (text and heredocs are filled in afterwards).
    fn new(joined: Joined, line: usize, column: usize, end_line: usize) -> Self {
        let logical = joined.logical.trim_end().to_owned();
        let kw_len = logical.find(char::is_whitespace).unwrap_or(logical.len());
        let keyword = logical[..kw_len].to_owned();
        let args_start = logical[kw_len..]
            .find(|c: char| !c.is_whitespace())
            .map_or(logical.len(), |n| kw_len + n);
        RawInstruction {
            keyword,
            logical,
            args_start,
            line,
            column,
            end_line,
            text: String::new(),
            heredocs: Vec::new(),
            segments: joined.segments,
            source_lines: joined.source_lines,
        }
    }
}

fn unterminated_heredoc(
    raw: &RawInstruction,
    path: &Path,
    offset: usize,
    spec: &Heredoc,
) -> ParseError {
    let tabs = if spec.strip_tabs {
        " (leading tabs allowed)"
    } else {
        " (no leading blanks: use `<<-` to allow tabs)"
    };
    raw.error(
        path,
        ParseErrorKind::UnterminatedHeredoc {
            delimiter: spec.delimiter.clone(),
        },
        offset,
        format!(
            "heredoc `{}` is not terminated before the end of the file",
            spec.delimiter
        ),
        Some(format!(
            "end the heredoc with a line containing only `{}`{tabs}",
            spec.delimiter
        )),
    )
}

/// Byte ranges of the words of `s`, split on blanks outside quotes; quotes and escapes
/// stay in the words (buildkit's `parseWords`).
pub(crate) fn raw_words(s: &str, escape: char) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if start.is_none() {
            if c.is_whitespace() {
                continue;
            }
            start = Some(i);
        }
        if c == escape && quote != Some('\'') {
            escaped = true;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c.is_whitespace()
            && let Some(st) = start.take()
        {
            words.push((st, i));
        }
    }
    if let Some(st) = start {
        words.push((st, s.len()));
    }
    words
}

/// Remove quotes and escapes from a word without expanding anything.
pub(crate) fn dequote(word: &str, escape: char) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('\'') => out.push(c),
            Some(_) if c == '"' => quote = None,
            _ if c == escape => {
                if let Some(n) = chars.next() {
                    if quote.is_some() && !matches!(n, '"' | '$') && n != escape {
                        out.push(c);
                    }
                    out.push(n);
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            _ => out.push(c),
        }
    }
    out
}

/// Heredoc words (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`, `<< EOF`) in the arguments,
/// with their byte offsets; bodies are filled in by the caller. A word with an
/// unterminated quote (`<<'EOF`) is an error, as in buildkit.
pub(crate) fn heredoc_words(args: &str, escape: char) -> Result<Vec<(usize, Heredoc)>, usize> {
    let mut out = Vec::new();
    let words = raw_words(args, escape);
    let mut i = 0;
    while i < words.len() {
        let (start, end) = words[i];
        i += 1;
        let word = &args[start..end];
        let digits = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        let Some(rest) = word[digits..].strip_prefix("<<") else {
            continue;
        };
        let (strip_tabs, mut rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        // `<< EOF`: the delimiter is the next word.
        if rest.is_empty() && i < words.len() {
            rest = &args[words[i].0..words[i].1];
            i += 1;
        }
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let (delimiter, expand) = dequote_delimiter(rest, escape).ok_or(start)?;
        if delimiter.is_empty() {
            continue;
        }
        out.push((
            start,
            Heredoc {
                delimiter,
                content: String::new(),
                expand,
                strip_tabs,
                fd: word[..digits].parse().ok(),
            },
        ));
    }
    Ok(out)
}

/// Remove quotes and escapes from a heredoc delimiter; the body is expanded only when
/// no (unescaped) quote appears. `None` for an unterminated quote.
fn dequote_delimiter(word: &str, escape: char) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut expand = true;
    let mut quote: Option<char> = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == escape => out.push(chars.next()?),
            Some(_) => out.push(c),
            None if c == escape => out.push(chars.next()?),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                expand = false;
            }
            None => out.push(c),
        }
    }
    quote.is_none().then_some((out, expand))
}

impl RawInstruction {
    /// The instruction written after ONBUILD, as its own logical line.
    pub(crate) fn sub(&self, start: usize) -> Option<RawInstruction> {
        let logical = &self.logical[start..];
        if logical.is_empty() {
            return None;
        }
        let kw_len = logical.find(char::is_whitespace).unwrap_or(logical.len());
        let args_start = logical[kw_len..]
            .find(|c: char| !c.is_whitespace())
            .map_or(logical.len(), |n| kw_len + n);
        let (line, column) = self.position(start);
        let mut segments = vec![(0, line, column)];
        segments.extend(
            self.segments
                .iter()
                .filter(|(s, _, _)| *s > start)
                .map(|&(s, l, c)| (s - start, l, c)),
        );
        Some(RawInstruction {
            keyword: logical[..kw_len].to_owned(),
            logical: logical.to_owned(),
            args_start,
            line: self.line,
            column,
            end_line: self.end_line,
            text: self.text.clone(),
            heredocs: self.heredocs.clone(),
            segments,
            source_lines: self.source_lines.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str, esc: char) -> Vec<&str> {
        raw_words(s, esc)
            .into_iter()
            .map(|(a, b)| &s[a..b])
            .collect()
    }

    #[test]
    fn raw_words_keep_quotes_and_escapes() {
        assert_eq!(words("a  b\tc", '\\'), ["a", "b", "c"]);
        assert_eq!(
            words("a=\"x y\" b='p q' c=d\\ e", '\\'),
            ["a=\"x y\"", "b='p q'", "c=d\\ e"]
        );
        assert_eq!(words("'a\\' b", '\\'), ["'a\\'", "b"]);
        assert_eq!(words("a` b", '`'), ["a` b"]);
        assert_eq!(words("", '\\'), Vec::<&str>::new());
        assert_eq!(words("é ü", '\\'), ["é", "ü"]);
    }

    #[test]
    fn dequote_removes_quotes_only() {
        assert_eq!(dequote("--mount=\"a b\"", '\\'), "--mount=a b");
        assert_eq!(dequote("'$x'\\ y", '\\'), "$x y");
        assert_eq!(dequote("\"a\\tb\\\"\"", '\\'), "a\\tb\"");
    }

    #[test]
    fn directives() {
        assert_eq!(directive("# escape=`"), Some(("escape".into(), "`".into())));
        assert_eq!(
            directive("#Syntax = x/y:1  "),
            Some(("syntax".into(), "x/y:1".into()))
        );
        assert_eq!(directive("# not a directive"), None);
        assert_eq!(directive("# 1x=y"), None);
        assert_eq!(directive("# a="), None);
        assert_eq!(directive("FROM a"), None);
    }

    #[test]
    fn positions_map_back_through_continuations() {
        let lexed = lex("FROM a\n  RUN x \\\n# c\n   yy\n", Path::new("f")).unwrap();
        let run = &lexed.instructions[1];
        assert_eq!(run.logical, "RUN x    yy");
        assert_eq!(run.position(0), (2, 3));
        let y = run.logical.find('y').unwrap();
        assert_eq!(run.position(y), (4, 4));
    }
}
