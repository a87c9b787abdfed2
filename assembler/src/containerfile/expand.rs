//! Docker's variable expansion (moby/buildkit `frontend/dockerfile/shell/lex.go`):
//! `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`,
//! `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/repl}`, `${VAR//pat/repl}`; quotes are removed (single quotes keep `$`
//! literal, double quotes expand), the escape character escapes the next character.
//!
//! The builder expands ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR
//! ARG (and ONBUILD's trigger when it runs); RUN CMD ENTRYPOINT are left to the shell.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A source of variable values for expansion.
pub trait Vars {
    /// The value of `name`, `None` when unset (set-but-empty is `Some("")`).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Vars for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Vars for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// Later entries win, like an environment built up in order.
impl Vars for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Vars::get(self.as_slice(), name)
    }
}

/// Expansion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpandError {
    /// `${VAR:?message}` / `${VAR?message}` with VAR unset (or empty for `:?`).
    Required { name: String, message: String },
    /// Malformed substitution such as `${}`, `${a`, `${a:x}`.
    Syntax { word: String, message: String },
    /// A quote without its closing partner.
    UnterminatedQuote { word: String, quote: char },
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Required { name, message } => write!(f, "{name}: {message}"),
            ExpandError::Syntax { word, message } => {
                write!(f, "failed to process `{word}`: {message}")
            }
            ExpandError::UnterminatedQuote { word, quote } => write!(
                f,
                "failed to process `{word}`: unexpected end of statement while looking for \
                 matching {}",
                if *quote == '"' {
                    "double-quote"
                } else {
                    "single-quote"
                }
            ),
        }
    }
}

impl std::error::Error for ExpandError {}

/// Expand one word: variables substituted, quotes and escapes removed, blanks kept.
pub fn expand_word(word: &str, vars: &dyn Vars, escape: char) -> Result<String, ExpandError> {
    Ok(Lexer::new(word, vars, escape).run()?.0)
}

/// Expand and split on blanks outside quotes (EXPOSE, VOLUME, ARG/ENV word lists).
/// Blanks produced by a variable's value split words too, as in Docker.
pub fn expand_words(word: &str, vars: &dyn Vars, escape: char) -> Result<Vec<String>, ExpandError> {
    Ok(Lexer::new(word, vars, escape).run()?.1)
}

/// Builds the word list the way buildkit's `wordsStruct` does: blanks end words unless
/// they came from quotes or escapes.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    source: &'a str,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
    escape: char,
}

impl<'a> Lexer<'a> {
    fn new(source: &'a str, vars: &'a dyn Vars, escape: char) -> Self {
        Self {
            source,
            chars: source.chars().collect(),
            pos: 0,
            vars,
            escape,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn syntax(&self, message: &str) -> ExpandError {
        ExpandError::Syntax {
            word: self.source.to_owned(),
            message: message.to_owned(),
        }
    }

    fn run(mut self) -> Result<(String, Vec<String>), ExpandError> {
        let (s, w) = self.until(None, false)?;
        Ok((s, w))
    }

    /// buildkit's `processStopOn`: read to `stop` (consumed) or the end. `raw_escapes`
    /// keeps escape characters (inside `${a#pat}` patterns, where they matter later).
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if stop == Some(c) {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                    words.add_str(&v);
                }
                '\'' => {
                    let v = self.single_quote()?;
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                '"' => {
                    let v = self.double_quote(raw_escapes)?;
                    result.push_str(&v);
                    words.add_raw_str(&v);
                }
                _ => {
                    self.next();
                    if c == self.escape {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(n) = self.next() else { break };
                        words.add_raw_char(n);
                        result.push(n);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        if let Some(s) = stop {
            return Err(self.syntax(&format!(
                "unexpected end of statement while looking for matching {s}"
            )));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError::UnterminatedQuote {
                        word: self.source.to_owned(),
                        quote: '\'',
                    });
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self, raw_escapes: bool) -> Result<String, ExpandError> {
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::UnterminatedQuote {
                        word: self.source.to_owned(),
                        quote: '"',
                    });
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.next();
                    let mut c = c;
                    if c == self.escape {
                        if raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.next();
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// Letters, digits and `_`; a leading digit run or one special parameter
    /// (`$@ $* $# $? $- $$ $! $0`) is a name of its own (buildkit's `processName`).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(c) {
                self.next();
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.vars.get(&name).unwrap_or("").to_owned());
        }
        self.next();
        match self.peek() {
            None => return Err(self.syntax("missing '}'")),
            Some('{' | '}' | ':') => return Err(self.syntax("bad substitution")),
            _ => {}
        }
        let name = self.name();
        let Some(op) = self.next() else {
            return Err(self.syntax("missing '}'"));
        };
        let value = self.vars.get(&name).map(str::to_owned);
        match op {
            '}' => Ok(value.unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => self.modifier(name, value, op),
            '/' => self.replacement(value),
            _ => Err(self.syntax(&format!("unsupported modifier ({op}) in substitution"))),
        }
    }

    /// `${name<op>word}` (after `op`): `-`, `+`, `?` (each also with `:`), `#`, `##`, `%`
    /// and `%%`.
    fn modifier(
        &mut self,
        name: String,
        value: Option<String>,
        mut op: char,
    ) -> Result<String, ExpandError> {
        let null_is_unset = op == ':';
        if null_is_unset {
            op = self.next().ok_or_else(|| self.syntax("missing '}'"))?;
        }
        let raw = op == '#' || op == '%';
        let word = self.until(Some('}'), raw).map_err(|e| {
            if self.peek().is_none() {
                self.syntax("missing '}'")
            } else {
                e
            }
        })?;
        let word = word.0;
        let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
        match op {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => required(name, value, unset, &word),
            '#' | '%' if !null_is_unset => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(p) => (true, p),
                    None => (false, word.as_str()),
                };
                let pattern = parse_pattern(pattern, self.escape);
                Ok(if op == '#' {
                    trim_prefix(&value, &pattern, greedy)
                } else {
                    trim_suffix(&value, &pattern, greedy)
                })
            }
            _ => Err(self.syntax(&format!("unsupported modifier (:{op}) in substitution"))),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}` (after the first `/`).
    fn replacement(&mut self, value: Option<String>) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = self.until(Some('/'), true).map_err(|e| {
            if self.peek().is_none() {
                self.syntax("missing '/' in ${}")
            } else {
                e
            }
        })?;
        let replacement = self.until(Some('}'), true).map_err(|e| {
            if self.peek().is_none() {
                self.syntax("missing '}'")
            } else {
                e
            }
        })?;
        let value = value.unwrap_or_default();
        let pattern = parse_pattern(&pattern.0, self.escape);
        Ok(replace(&value, &pattern, &replacement.0, all))
    }
}

/// `${name?word}` / `${name:?word}`: the value, or an error with `word` (or the usual
/// message) when it is unset (or empty).
fn required(
    name: String,
    value: Option<String>,
    unset: bool,
    word: &str,
) -> Result<String, ExpandError> {
    let message = |default: &str| {
        if word.is_empty() {
            default.to_owned()
        } else {
            word.to_owned()
        }
    };
    if value.is_none() {
        Err(ExpandError::Required {
            message: message("is not allowed to be unset"),
            name,
        })
    } else if unset {
        Err(ExpandError::Required {
            message: message("is not allowed to be empty"),
            name,
        })
    } else {
        Ok(value.unwrap_or_default())
    }
}

/// A shell pattern element: `*`, `?` or a literal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pat {
    Star,
    Any,
    Lit(char),
}

fn parse_pattern(pattern: &str, escape: char) -> Vec<Pat> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push(Pat::Star),
            '?' => out.push(Pat::Any),
            c if c == escape => {
                if let Some(n) = chars.next() {
                    out.push(Pat::Lit(n));
                }
            }
            c => out.push(Pat::Lit(c)),
        }
    }
    out
}

/// Whether `pat` matches all of `text`.
fn matches(pat: &[Pat], text: &[char]) -> bool {
    match pat.split_first() {
        None => text.is_empty(),
        Some((Pat::Star, rest)) => (0..=text.len()).any(|i| matches(rest, &text[i..])),
        Some((Pat::Any, rest)) => !text.is_empty() && matches(rest, &text[1..]),
        Some((Pat::Lit(c), rest)) => text.first() == Some(c) && matches(rest, &text[1..]),
    }
}

fn trim_prefix(value: &str, pat: &[Pat], greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut lens: Vec<usize> = (0..=chars.len()).collect();
    if greedy {
        lens.reverse();
    }
    for n in lens {
        if matches(pat, &chars[..n]) {
            return chars[n..].iter().collect();
        }
    }
    value.to_owned()
}

fn trim_suffix(value: &str, pat: &[Pat], greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut starts: Vec<usize> = (0..=chars.len()).collect();
    if !greedy {
        starts.reverse();
    }
    for s in starts {
        if matches(pat, &chars[s..]) {
            return chars[..s].iter().collect();
        }
    }
    value.to_owned()
}

/// `${v/pat/repl}`: leftmost match, longest (buildkit uses a greedy regex); an empty
/// pattern matches the empty string, as an empty Go regexp does.
fn replace(value: &str, pat: &[Pat], replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i <= chars.len() {
        let found = (i..=chars.len())
            .rev()
            .find(|&e| matches(pat, &chars[i..e]));
        match found {
            Some(e) => {
                out.push_str(replacement);
                if !all {
                    out.extend(&chars[e..]);
                    return out;
                }
                if e == i {
                    // An empty match: keep the next character and move on.
                    if let Some(c) = chars.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                } else {
                    i = e;
                }
            }
            None => {
                if let Some(c) = chars.get(i) {
                    out.push(*c);
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = |s| parse_pattern(s, '\\');
        assert!(matches(&p("a*c"), &['a', 'b', 'b', 'c']));
        assert!(matches(&p("a?c"), &['a', 'b', 'c']));
        assert!(!matches(&p("a\\*c"), &['a', 'b', 'c']));
        assert_eq!(trim_prefix("aXbXc", &p("*X"), false), "bXc");
        assert_eq!(trim_prefix("aXbXc", &p("*X"), true), "c");
        assert_eq!(trim_suffix("aXbXc", &p("X*"), false), "aXb");
        assert_eq!(trim_suffix("aXbXc", &p("X*"), true), "a");
        assert_eq!(replace("abab", &p("b"), "_", true), "a_a_");
        assert_eq!(replace("ab", &p(""), "_", true), "_a_b_");
    }
}
