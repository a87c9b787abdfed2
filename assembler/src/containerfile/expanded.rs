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
        let word = |w: &str| expand_word(w, vars, escape);
        let pairs = |p: &[(String, String)]| -> Result<Vec<(String, String)>, ExpandError> {
            p.iter().map(|(k, v)| Ok((word(k)?, word(v)?))).collect()
        };
        let heredocs = |h: &[Heredoc]| -> Result<Vec<Heredoc>, ExpandError> {
            h.iter()
                .map(|h| {
                    let mut h = h.clone();
                    if h.expand {
                        h.content = expand_heredoc(&h.content, vars, escape)?;
                    }
                    Ok(h)
                })
                .collect()
        };
        let kind = match &self.kind {
            Kind::From { image, name } => Kind::From {
                image: word(image)?,
                name: name.clone(),
            },
            Kind::Copy {
                sources,
                dest,
                heredocs: h,
            } => Kind::Copy {
                sources: sources.iter().map(|s| word(s)).collect::<Result<_, _>>()?,
                dest: word(dest)?,
                heredocs: heredocs(h)?,
            },
            Kind::Add {
                sources,
                dest,
                heredocs: h,
            } => Kind::Add {
                sources: sources.iter().map(|s| word(s)).collect::<Result<_, _>>()?,
                dest: word(dest)?,
                heredocs: heredocs(h)?,
            },
            Kind::Env(p) => Kind::Env(pairs(p)?),
            Kind::Label(p) => Kind::Label(pairs(p)?),
            Kind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(expand_words(p, vars, escape)?);
                }
                Kind::Expose(out)
            }
            Kind::Volume(v) => Kind::Volume(v.iter().map(|s| word(s)).collect::<Result<_, _>>()?),
            Kind::User(u) => Kind::User(word(u)?),
            Kind::Workdir(w) => Kind::Workdir(word(w)?),
            Kind::StopSignal(s) => Kind::StopSignal(word(s)?),
            other => other.clone(),
        };
        let flags = if self.kind.expands() && !matches!(self.kind, Kind::Onbuild(_)) {
            self.flags
                .iter()
                .map(|f| {
                    Ok(Flag {
                        name: f.name.clone(),
                        value: match &f.value {
                            Some(v) if f.expands() => Some(word(v)?),
                            v => v.clone(),
                        },
                    })
                })
                .collect::<Result<_, ExpandError>>()?
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
