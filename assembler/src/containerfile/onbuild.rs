//! ONBUILD triggers as an image config holds them (`OnBuild`: the instruction's text, as
//! BuildKit's `OnbuildCommand.Expression`), and parsing one back when the image is used
//! as a base.

use std::path::Path;

use super::error::{ParseError, ParseErrorKind};
use super::{Instruction, Kind, instruction, lexer};

impl Instruction {
    /// For `ONBUILD <trigger>`, the trigger's text as the image config records it
    /// (continuation lines joined, comments dropped, heredoc bodies appended after their
    /// line as BuildKit does); `None` for any other instruction.
    pub fn trigger_text(&self) -> Option<String> {
        let Kind::Onbuild(inner) = &self.kind else {
            return None;
        };
        let mut text = inner.span.logical.clone();
        let heredocs = match &inner.kind {
            Kind::Run { heredocs, .. }
            | Kind::Copy { heredocs, .. }
            | Kind::Add { heredocs, .. } => heredocs.as_slice(),
            _ => &[],
        };
        for h in heredocs {
            text.push('\n');
            text.push_str(&h.content);
            text.push_str(&h.delimiter);
        }
        Some(text)
    }
}

/// Parses a trigger recorded in a base image's config: one instruction, not ONBUILD, FROM
/// or MAINTAINER (Docker's restrictions). `path` names where the text came from in errors.
pub fn parse_trigger(text: &str, path: &Path) -> Result<Instruction, ParseError> {
    let lexed = lexer::lex(text, path)?;
    let mut raws = lexed.instructions.into_iter();
    let (Some(raw), None) = (raws.next(), raws.next()) else {
        return Err(ParseError::new(
            path,
            ParseErrorKind::BadArguments {
                instruction: "ONBUILD".to_owned(),
            },
            1,
            1,
            text.lines().next().unwrap_or("").to_owned(),
            "onbuild trigger should be a single expression".to_owned(),
            Some("the base image's config holds a broken ONBUILD trigger; rebuild it".to_owned()),
        ));
    };
    let upper = raw.keyword.to_ascii_uppercase();
    if matches!(upper.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(raw.error(
            path,
            ParseErrorKind::BadArguments {
                instruction: "ONBUILD".to_owned(),
            },
            0,
            format!("{upper} isn't allowed as an ONBUILD trigger"),
            Some("the base image's config holds a trigger Docker refuses; rebuild it".to_owned()),
        ));
    }
    let mut notes = Vec::new();
    instruction::build(&raw, '\\', path, &mut notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerfile::parse;

    #[test]
    fn triggers_round_trip_through_their_text() {
        let source = "FROM a\nONBUILD RUN --mount=type=tmpfs,target=/t \\\n  echo hi\n";
        let cf = parse(source, Path::new("f")).unwrap();
        let texts: Vec<String> = cf.stages[0]
            .instructions
            .iter()
            .filter_map(Instruction::trigger_text)
            .collect();
        assert!(
            texts[0].starts_with("RUN --mount=type=tmpfs,target=/t "),
            "{}",
            texts[0]
        );
        assert!(
            texts[0].ends_with("echo hi") && !texts[0].contains('\n'),
            "{}",
            texts[0]
        );
        let again = parse_trigger(&texts[0], Path::new("base")).unwrap();
        assert_eq!(
            again.flag_values("mount").collect::<Vec<_>>(),
            ["type=tmpfs,target=/t"]
        );
        // Heredocs: the body follows the trigger's line, as BuildKit records it.
        let cf = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n", Path::new("f")).unwrap();
        let text = cf.stages[0].instructions[0].trigger_text().unwrap();
        assert_eq!(text, "RUN <<EOF\necho hi\nEOF");
        let again = parse_trigger(&text, Path::new("base")).unwrap();
        assert!(
            matches!(again.kind.run_script(), Some(crate::containerfile::RunScript::Body(h)) if h.content == "echo hi\n")
        );
        assert!(parse_trigger("FROM x", Path::new("b")).is_err());
        assert!(parse_trigger("ONBUILD RUN x", Path::new("b")).is_err());
        assert!(parse_trigger("RUN a\nRUN b", Path::new("b")).is_err());
        assert!(parse_trigger("BOGUS a", Path::new("b")).is_err());
    }
}
