//! An instruction with its variables expanded the way the builder does it at dispatch
//! time (buildkit `dockerfile2llb` + `instructions/commands.go` `Expand` methods): the
//! engine calls [`Instruction::expanded`] with the stage's variables, and uses the result
//! both to run the step and as the step's cache key.

use super::expand::{ExpandError, Vars, expand_word, expand_words};
use super::{Flag, Heredoc, Instruction, Kind};

impl Instruction {
    /// A copy of the instruction with every word the builder expands replaced by its
    /// expansion: FROM's image, COPY/ADD sources, destination and heredoc bodies (unless
    /// the delimiter was quoted), ENV and LABEL keys and values, EXPOSE ports (split
    /// again after expansion), VOLUME paths, USER, WORKDIR, STOPSIGNAL, and the values of
    /// expandable flags (`--from`, `--chown`, `--chmod`, `--platform`, `--checksum`…).
    /// RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and MAINTAINER are returned unchanged
    /// (their `$` belong to the shell), as are ARG (see [`super::StageArgs::declare`])
    /// and ONBUILD (expanded when triggered).
    pub fn expanded(&self, vars: &dyn Vars, escape: char) -> Result<Instruction, ExpandError> {
        let x = Expander { vars, escape };
        let kind = x.kind(&self.kind)?;
        let flags = if self.kind.expands() && !matches!(self.kind, Kind::Onbuild(_)) {
            x.flags(&self.flags)?
        } else {
            self.flags.clone()
        };
        Ok(Instruction {
            kind,
            flags,
            span: self.span.clone(),
        })
    }
}

/// The stage's variables and the escape character, expanding the parts of an instruction.
struct Expander<'a> {
    vars: &'a dyn Vars,
    escape: char,
}

impl Expander<'_> {
    fn word(&self, w: &str) -> Result<String, ExpandError> {
        expand_word(w, self.vars, self.escape)
    }

    fn words(&self, w: &[String]) -> Result<Vec<String>, ExpandError> {
        w.iter().map(|s| self.word(s)).collect()
    }

    fn pairs(&self, p: &[(String, String)]) -> Result<Vec<(String, String)>, ExpandError> {
        p.iter()
            .map(|(k, v)| Ok((self.word(k)?, self.word(v)?)))
            .collect()
    }

    /// Heredoc bodies, unless the delimiter was quoted.
    fn heredocs(&self, h: &[Heredoc]) -> Result<Vec<Heredoc>, ExpandError> {
        h.iter()
            .map(|h| {
                let mut h = h.clone();
                if h.expand {
                    h.content = expand_heredoc(&h.content, self.vars, self.escape)?;
                }
                Ok(h)
            })
            .collect()
    }

    /// The instruction's own words, for the kinds the builder expands.
    fn kind(&self, kind: &Kind) -> Result<Kind, ExpandError> {
        Ok(match kind {
            Kind::From { image, name } => Kind::From {
                image: self.word(image)?,
                name: name.clone(),
            },
            Kind::Copy {
                sources,
                dest,
                heredocs,
            } => Kind::Copy {
                sources: self.words(sources)?,
                dest: self.word(dest)?,
                heredocs: self.heredocs(heredocs)?,
            },
            Kind::Add {
                sources,
                dest,
                heredocs,
            } => Kind::Add {
                sources: self.words(sources)?,
                dest: self.word(dest)?,
                heredocs: self.heredocs(heredocs)?,
            },
            Kind::Env(p) => Kind::Env(self.pairs(p)?),
            Kind::Label(p) => Kind::Label(self.pairs(p)?),
            Kind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(expand_words(p, self.vars, self.escape)?);
                }
                Kind::Expose(out)
            }
            Kind::Volume(v) => Kind::Volume(self.words(v)?),
            Kind::User(u) => Kind::User(self.word(u)?),
            Kind::Workdir(w) => Kind::Workdir(self.word(w)?),
            Kind::StopSignal(s) => Kind::StopSignal(self.word(s)?),
            other => other.clone(),
        })
    }

    /// The values of the flags that expand.
    fn flags(&self, flags: &[Flag]) -> Result<Vec<Flag>, ExpandError> {
        flags
            .iter()
            .map(|f| {
                Ok(Flag {
                    name: f.name.clone(),
                    value: match &f.value {
                        Some(v) if f.expands() => Some(self.word(v)?),
                        v => v.clone(),
                    },
                })
            })
            .collect()
    }
}

/// Expand a heredoc body as a shell expands an unquoted here-document: `$VAR` and
/// `${…}` forms are substituted, the escape character protects `$`, itself and the
/// escape-newline pair, and quotes are ordinary characters (buildkit expands heredoc
/// bodies with quote processing off).
pub fn expand_heredoc(content: &str, vars: &dyn Vars, escape: char) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(pos) = rest.find(['$', escape]) {
        out.push_str(&rest[..pos]);
        let c = rest[pos..].chars().next().unwrap_or('$');
        let after = &rest[pos + c.len_utf8()..];
        if c == escape && c != '$' {
            match after.chars().next() {
                Some(n) if n == '$' || n == escape => {
                    out.push(n);
                    rest = &after[n.len_utf8()..];
                }
                _ => {
                    out.push(c);
                    rest = after;
                }
            }
            continue;
        }
        // One `$…` expression: find where it ends and expand just that slice, so quotes
        // around it stay literal.
        let end = dollar_end(after);
        let expr = &rest[pos..pos + 1 + end];
        out.push_str(&expand_word(expr, vars, escape)?);
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the variable reference after a `$`: a name, a digit run, one special
/// parameter, or a balanced `{…}`.
fn dollar_end(after: &str) -> usize {
    let mut chars = after.char_indices();
    match chars.next() {
        Some((_, '{')) => {
            let mut depth = 0usize;
            for (i, c) in after.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
            }
            after.len()
        }
        Some((_, c)) if c.is_ascii_digit() => after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len()),
        Some((_, c)) if "@*#?-$!".contains(c) => c.len_utf8(),
        Some((_, c)) if c.is_alphanumeric() || c == '_' => after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len()),
        _ => 0,
    }
}
