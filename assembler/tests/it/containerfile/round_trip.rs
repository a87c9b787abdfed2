use super::*;

pub(crate) const CORPUS: &str = "# syntax=docker/dockerfile:1\nARG BASE=alpine:3.20\nFROM $BASE AS build\nRUN apk add --no-cache \\\n    build-base \\\n    # the compiler\n    gcc\nCOPY --chown=1:1 <<EOF /etc/app.conf\nkey=value\nEOF\nWORKDIR /src\nENV A=1 B=\"2 3\"\nLABEL x=y\nFROM scratch\nCOPY --from=build /src/app /app\nEXPOSE 8080/tcp\nUSER 1000\nVOLUME [\"/data\"]\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=30s CMD [\"/app\", \"health\"]\nONBUILD RUN echo triggered\nSHELL [\"/bin/sh\", \"-c\"]\nENTRYPOINT [\"/app\"]\nCMD [\"--serve\"]\n";

/// Every instruction's `span.text` re-parses to the same instruction: spans carry
/// the complete source of their instruction.
#[test]
fn span_text_reparses_to_the_same_instruction() {
    let cf = p(CORPUS);
    let all = cf.global_arg_instructions.iter().chain(
        cf.stages
            .iter()
            .flat_map(|s| std::iter::once(&s.from).chain(&s.instructions)),
    );
    let mut n = 0;
    for inst in all {
        let src = if matches!(inst.kind, Kind::From { .. }) {
            inst.span.text.clone()
        } else if cf.global_arg_instructions.contains(inst) {
            format!("{}\nFROM x", inst.span.text)
        } else {
            format!("FROM x\n{}", inst.span.text)
        };
        let again = p(&src);
        let got = if matches!(inst.kind, Kind::From { .. }) {
            &again.stages[0].from
        } else if let Some(g) = again.global_arg_instructions.first() {
            g
        } else {
            &again.stages[0].instructions[0]
        };
        match (&got.kind, &inst.kind) {
            // The trigger's span differs (its line moved): compare what it does.
            (Kind::Onbuild(a), Kind::Onbuild(b)) => {
                assert_eq!((&a.kind, &a.flags), (&b.kind, &b.flags));
            }
            (a, b) => assert_eq!(a, b, "{}", inst.span.text),
        }
        assert_eq!(got.flags, inst.flags, "{}", inst.span.text);
        n += 1;
    }
    assert_eq!(n, 18);
}

#[test]
fn spans_cover_every_non_blank_line() {
    let cf = p(CORPUS);
    let lines: Vec<&str> = CORPUS.lines().collect();
    let mut covered = vec![false; lines.len()];
    let all = cf.global_arg_instructions.iter().chain(
        cf.stages
            .iter()
            .flat_map(|s| std::iter::once(&s.from).chain(&s.instructions)),
    );
    for inst in all {
        for l in inst.span.line..=inst.span.end_line {
            covered[l - 1] = true;
        }
    }
    for (i, l) in lines.iter().enumerate() {
        assert!(
            covered[i] || l.trim().is_empty() || l.starts_with('#'),
            "line {}: {l}",
            i + 1
        );
    }
}
