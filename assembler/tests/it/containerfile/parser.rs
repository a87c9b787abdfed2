use super::*;

#[test]
fn from_forms() {
    let cf = p(
        "from alpine:3.20\nFROM --platform=linux/arm64 reg.example/x:1 AS Build\nFROM build as final\nFROM scratch\n",
    );
    let bases: Vec<&str> = cf
        .stages
        .iter()
        .map(assembler::containerfile::Stage::base)
        .collect();
    assert_eq!(
        bases,
        ["alpine:3.20", "reg.example/x:1", "build", "scratch"]
    );
    assert_eq!(cf.stages[1].name.as_deref(), Some("build"));
    assert_eq!(cf.stages[1].from.flag("platform"), Some("linux/arm64"));
    assert_eq!(cf.stages[2].name.as_deref(), Some("final"));
    assert_eq!(cf.stages[2].index, 2);
    assert_eq!(cf.stage("BUILD").map(|s| s.index), Some(1));
    assert_eq!(cf.stage("3").map(|s| s.index), Some(3));
    assert!(cf.stage("nope").is_none());
}

#[test]
fn global_args_before_from() {
    let cf = p("# a comment\nARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG:-3.20}\nARG TAG\n");
    assert_eq!(
        cf.global_args,
        vec![
            Arg::new("BASE", Some("alpine".into())),
            Arg::new("TAG", None)
        ]
    );
    assert_eq!(cf.global_arg_instructions.len(), 2);
    assert_eq!(cf.stages[0].base(), "${BASE}:${TAG:-3.20}");
    assert_eq!(
        cf.stages[0].instructions[0].kind,
        Kind::Arg(vec![Arg::new("TAG", None)])
    );
}

#[test]
fn run_shell_and_exec() {
    assert_eq!(
        one("RUN apk add curl"),
        Kind::Run {
            command: shell("apk add curl"),
            heredocs: vec![]
        }
    );
    assert_eq!(
        one(r#"RUN ["sh", "-c", "echo hi"]"#),
        Kind::Run {
            command: exec(&["sh", "-c", "echo hi"]),
            heredocs: vec![]
        }
    );
    // Not JSON: a shell command that happens to start with `[`.
    assert_eq!(
        one("RUN [ -f /etc/os-release ] && cat /etc/os-release"),
        Kind::Run {
            command: shell("[ -f /etc/os-release ] && cat /etc/os-release"),
            heredocs: vec![]
        }
    );
    // Invalid JSON falls back to the shell form, as Docker.
    assert_eq!(one("CMD [a, b]"), Kind::Cmd(shell("[a, b]")));
    assert_eq!(one("CMD ['a']"), Kind::Cmd(shell("['a']")));
    // A JSON array of non-strings is an error, as in Docker.
    let e = err("FROM a\nCMD [\"sleep\", 10]\n");
    assert!(e.message.contains("strings only"), "{e}");
    assert_eq!(one("CMD []"), Kind::Cmd(exec(&[])));
    assert_eq!(
        one("ENTRYPOINT [\"/bin/app\"]"),
        Kind::Entrypoint(exec(&["/bin/app"]))
    );
}

#[test]
fn keywords_are_case_insensitive() {
    assert_eq!(
        insts("FROM a\nrun true\nWorkDir /x\n"),
        vec![
            Kind::Run {
                command: shell("true"),
                heredocs: vec![]
            },
            Kind::Workdir("/x".into())
        ]
    );
}

#[test]
fn continuation_joins_lines_and_drops_comments_and_blanks() {
    let cf = p("FROM a\nRUN apk add \\\n# a comment\n  curl \\\n\n    \\\n  jq\nUSER x\n");
    let run = &cf.stages[0].instructions[0];
    // Docker joins with nothing in between and keeps the next line's indentation.
    assert_eq!(
        run.kind,
        Kind::Run {
            command: shell("apk add   curl       jq"),
            heredocs: vec![]
        }
    );
    assert_eq!((run.span.line, run.span.end_line), (2, 7));
    assert_eq!(
        run.span.text,
        "RUN apk add \\\n# a comment\n  curl \\\n\n    \\\n  jq"
    );
    assert_eq!(cf.notes.len(), 1, "{:?}", cf.notes);
    assert!(cf.notes[0].starts_with("Containerfile:5: empty continuation line"));
    let user = &cf.stages[0].instructions[1];
    assert_eq!((user.span.line, user.span.end_line), (8, 8));
}

#[test]
fn continuation_at_end_of_file() {
    // buildkit testfiles/continue-at-eof.
    assert_eq!(
        insts("FROM alpine:3.5\n\nRUN something \\"),
        vec![Kind::Run {
            command: shell("something"),
            heredocs: vec![]
        }]
    );
}

#[test]
fn continuation_with_trailing_blanks_after_escape() {
    assert_eq!(
        one("RUN a \\  \t\n b"),
        Kind::Run {
            command: shell("a  b"),
            heredocs: vec![]
        }
    );
}

#[test]
fn crlf_and_bom() {
    assert_eq!(
        insts("\u{feff}FROM a\r\nRUN a \\\r\n  b\r\nUSER x\r\n"),
        vec![
            Kind::Run {
                command: shell("a   b"),
                heredocs: vec![]
            },
            Kind::User("x".into())
        ]
    );
}

#[test]
fn escape_directive_backtick() {
    // buildkit testfiles/escape-after-comment and Windows-style files.
    let cf = p(
        "# escape=`\nFROM windowsservercore\nRUN dir c:\\ `\n  && echo hi\nCOPY c:\\src d:\\dst\n",
    );
    assert_eq!(cf.escape, '`');
    assert_eq!(
        cf.stages[0].instructions[0].kind,
        Kind::Run {
            command: shell("dir c:\\   && echo hi"),
            heredocs: vec![]
        }
    );
    assert_eq!(
        cf.stages[0].instructions[1].kind,
        Kind::Copy {
            sources: strings(&["c:\\src"]),
            dest: "d:\\dst".into(),
            heredocs: vec![]
        }
    );
}

#[test]
fn directives_only_at_the_top() {
    // After a comment that is not a directive, `# escape=` is a plain comment.
    let cf = p("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
    assert_eq!(cf.escape, '\\');
    let cf = p("FROM a\n# escape=`\nRUN a `\n");
    assert_eq!(cf.escape, '\\');
    // Blank line ends the directive header too.
    let cf = p("\n# escape=`\nFROM a\n");
    assert_eq!(cf.escape, '\\');
    // Directive names and spacing are lenient.
    let cf = p("#  ESCAPE = `\nFROM a\n");
    assert_eq!(cf.escape, '`');
}

#[test]
fn syntax_directive_is_a_note() {
    let cf = p("# syntax=docker/dockerfile:1.7\n# escape=\\\nFROM a\n");
    assert_eq!(cf.notes.len(), 1);
    assert!(cf.notes[0].contains("Containerfile:1"), "{:?}", cf.notes);
    assert!(cf.notes[0].contains("docker/dockerfile:1.7"));
}

#[test]
fn bad_directives() {
    let e = err("# escape=x\nFROM a\n");
    assert!(matches!(e.kind, ParseErrorKind::BadDirective { ref name } if name == "escape"));
    let e = err("# escape=`\n# escape=\\\nFROM a\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("only one"), "{e}");
}

#[test]
fn env_forms() {
    assert_eq!(
        one("ENV A=1 B=\"two words\" C=three\\ words D="),
        Kind::Env(pairs(&[
            ("A", "1"),
            ("B", "\"two words\""),
            ("C", "three\\ words"),
            ("D", "")
        ]))
    );
    // Legacy form: everything after the name is the value.
    assert_eq!(
        one("ENV PATH   /usr/local/bin:$PATH  more"),
        Kind::Env(pairs(&[("PATH", "/usr/local/bin:$PATH  more")]))
    );
    assert_eq!(
        one("LABEL org.opencontainers.image.title=\"My app\" version=1"),
        Kind::Label(pairs(&[
            ("org.opencontainers.image.title", "\"My app\""),
            ("version", "1")
        ]))
    );
    assert_eq!(
        one("LABEL maintainer Jane Doe"),
        Kind::Label(pairs(&[("maintainer", "Jane Doe")]))
    );
}

#[test]
fn env_errors() {
    let e = err("FROM a\nENV A=1 B\n");
    assert!(e.message.contains("can't find ="), "{e}");
    assert_eq!((e.line, e.column), (2, 9));
    let e = err("FROM a\nENV A\n");
    assert!(e.message.contains("no value"), "{e}");
    let e = err("FROM a\nENV =x\n");
    assert!(e.message.contains("blank"), "{e}");
}

#[test]
fn arg_forms() {
    assert_eq!(
        one("ARG A B=2 C=\"x y\""),
        Kind::Arg(vec![
            Arg::new("A", None),
            Arg::new("B", Some("2".into())),
            Arg::new("C", Some("\"x y\"".into()))
        ])
    );
}

#[test]
fn simple_instructions() {
    assert_eq!(
        one("MAINTAINER Jane <jane@example.com>"),
        Kind::Maintainer("Jane <jane@example.com>".into())
    );
    assert_eq!(
        one("EXPOSE 80 443/tcp 53/udp ${PORT}"),
        Kind::Expose(strings(&["80", "443/tcp", "53/udp", "${PORT}"]))
    );
    assert_eq!(one("USER app:app"), Kind::User("app:app".into()));
    assert_eq!(
        one("WORKDIR /srv/my app"),
        Kind::Workdir("/srv/my app".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGQUIT"),
        Kind::StopSignal("SIGQUIT".into())
    );
    assert_eq!(
        one("SHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]"),
        Kind::Shell(strings(&["/bin/ash", "-eo", "pipefail", "-c"]))
    );
    assert_eq!(
        one("VOLUME /var/lib/data /tmp"),
        Kind::Volume(strings(&["/var/lib/data", "/tmp"]))
    );
    assert_eq!(
        one("VOLUME [\"/a\", \"/b c\"]"),
        Kind::Volume(strings(&["/a", "/b c"]))
    );
}

#[test]
fn copy_and_add() {
    let cf = p(
        "FROM a AS b\nFROM c\nCOPY --from=b --chown=1:1 --chmod=0644 --link /x /y /dest/\nADD --checksum=sha256:abc --keep-git-dir https://example.com/a.tar.gz /\nCOPY [\"a b\", \"/c d/\"]\n",
    );
    let i = &cf.stages[1].instructions;
    assert_eq!(
        i[0].kind,
        Kind::Copy {
            sources: strings(&["/x", "/y"]),
            dest: "/dest/".into(),
            heredocs: vec![]
        }
    );
    assert_eq!(i[0].flag("from"), Some("b"));
    assert_eq!(i[0].flag("chown"), Some("1:1"));
    assert_eq!(i[0].flag("chmod"), Some("0644"));
    assert_eq!(i[0].flag("link"), Some(""));
    assert_eq!(i[0].flag("checksum"), None);
    assert_eq!(i[1].flag("checksum"), Some("sha256:abc"));
    assert_eq!(i[1].flag("keep-git-dir"), Some(""));
    assert!(
        matches!(&i[1].kind, Kind::Add { sources, dest, .. } if sources == &strings(&["https://example.com/a.tar.gz"]) && dest == "/")
    );
    assert!(
        matches!(&i[2].kind, Kind::Copy { sources, dest, .. } if sources == &strings(&["a b"]) && dest == "/c d/")
    );
}

#[test]
fn flags_quotes_and_double_dash() {
    let cf = p(
        "FROM a\nRUN --mount=type=cache,target=/root/.cache --mount=\"type=bind,source=a b\" --network=none -- --not-a-flag\n",
    );
    let run = &cf.stages[0].instructions[0];
    assert_eq!(
        run.flag_values("mount").collect::<Vec<_>>(),
        ["type=cache,target=/root/.cache", "type=bind,source=a b"]
    );
    assert_eq!(run.flag("network"), Some("none"));
    assert_eq!(
        run.kind,
        Kind::Run {
            command: shell("--not-a-flag"),
            heredocs: vec![]
        }
    );
}

#[test]
fn flag_errors() {
    let e = err("FROM a\nCOPY --checksum=sha256:x a b\n");
    assert_eq!(
        e.kind,
        ParseErrorKind::BadFlag {
            instruction: "COPY".into(),
            flag: "checksum".into()
        }
    );
    assert_eq!(e.message, "COPY does not take --checksum");
    let e = err("FROM a\nCOPY --form=x a b\n");
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean --from?"),
        "{e}"
    );
    let e = err("FROM a\nCOPY --from a b\n");
    assert!(e.message.contains("missing a value"), "{e}");
    let e = err("FROM a\nCOPY --link=yes a b\n");
    assert!(e.message.contains("takes no value"), "{e}");
    let e = err("FROM a\nCOPY --from=a --from=b a b\n");
    assert!(e.message.contains("duplicate flag"), "{e}");
    let e = err("FROM a\nUSER --x=1 me\n");
    assert_eq!(e.hint.as_deref(), Some("USER takes no flags; remove `--x`"));
}

#[test]
fn healthcheck_buildkit_testfile() {
    // buildkit testfiles/health, the lines that build (the others are errors below).
    let cf = p(
        "FROM debian\nADD check.sh main.sh /app/\nCMD /app/main.sh\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\nHEALTHCHECK   CMD   a b\nHEALTHCHECK --timeout=3s CMD [\"foo\"]\nHEALTHCHECK --start-period=0s --interval=5s --timeout=0s --retries=0 CMD [\"foo\"]\nHEALTHCHECK NONE\n",
    );
    let hc: Vec<&Kind> = cf.stages[0]
        .instructions
        .iter()
        .map(|i| &i.kind)
        .filter(|k| matches!(k, Kind::Healthcheck(_)))
        .collect();
    let Kind::Healthcheck(Healthcheck::Check(c)) = hc[0] else {
        panic!("{hc:?}")
    };
    assert_eq!(c.command, shell("/app/check.sh --quiet"));
    assert_eq!(c.interval, Some(std::time::Duration::from_secs(5)));
    assert_eq!(c.timeout, Some(std::time::Duration::from_secs(3)));
    assert_eq!(c.retries, Some(3));
    assert_eq!(c.start_period, None);
    let Kind::Healthcheck(Healthcheck::Check(c)) = hc[1] else {
        panic!()
    };
    assert_eq!(c.command, shell("a b"));
    let Kind::Healthcheck(Healthcheck::Check(c)) = hc[3] else {
        panic!()
    };
    assert_eq!(c.command, exec(&["foo"]));
    assert_eq!(c.start_period, Some(std::time::Duration::ZERO));
    assert_eq!(c.retries, Some(0));
    assert_eq!(hc[4], &Kind::Healthcheck(Healthcheck::None));

    for (bad, needle) in [
        ("HEALTHCHECK", "needs arguments"),
        ("HEALTHCHECK CMD", "needs arguments"),
        ("HEALTHCHECK CONNECT TCP 7000", "unknown type `CONNECT`"),
        ("HEALTHCHECK --interval=5 CMD x", "invalid duration"),
        ("HEALTHCHECK --interval=1us CMD x", "less than 1ms"),
        ("HEALTHCHECK --retries=x CMD x", "invalid number"),
        ("HEALTHCHECK --interval=1s NONE", "takes no arguments"),
    ] {
        let e = err(&format!("FROM a\n{bad}\n"));
        assert!(e.message.contains(needle), "{bad}: {e}");
    }
    let Kind::Healthcheck(Healthcheck::Check(c)) =
        one("HEALTHCHECK --interval=1m30s --start-interval=500ms CMD x")
    else {
        panic!()
    };
    assert_eq!(c.interval, Some(std::time::Duration::from_secs(90)));
    assert_eq!(
        c.start_interval,
        Some(std::time::Duration::from_millis(500))
    );
}

#[test]
fn onbuild() {
    let Kind::Onbuild(inner) = one("ONBUILD RUN --mount=type=cache,target=/x make") else {
        panic!()
    };
    assert_eq!(
        inner.kind,
        Kind::Run {
            command: shell("make"),
            heredocs: vec![]
        }
    );
    assert_eq!(inner.flag("mount"), Some("type=cache,target=/x"));
    assert_eq!(inner.span.column, 9);
    let e = err("FROM a\nONBUILD ONBUILD RUN x\n");
    assert!(e.message.contains("isn't allowed"), "{e}");
    let e = err("FROM a\nONBUILD RUNN x\n");
    assert_eq!((e.line, e.column), (2, 9));
    assert_eq!(e.hint.as_deref(), Some("did you mean RUN?"));
}

#[test]
fn expansion_flags_per_instruction() {
    let cf = p("FROM a\nRUN x\nCOPY a b\nENV a=b\nCMD x\nUSER u\n");
    let e: Vec<bool> = cf.stages[0]
        .instructions
        .iter()
        .map(assembler::containerfile::Instruction::expands)
        .collect();
    assert_eq!(e, [false, true, true, false, true]);
    assert!(cf.stages[0].from.expands());
}

#[test]
fn spans_and_columns() {
    let cf = p("FROM a\n\n   RUN   echo \\\n  hi\n");
    let run = &cf.stages[0].instructions[0];
    assert_eq!(run.span.line, 3);
    assert_eq!(run.span.column, 4);
    assert_eq!(run.span.end_line, 4);
    assert_eq!(run.span.text, "   RUN   echo \\\n  hi");
    // An error on a continuation line points at that line.
    let e = err("FROM a\nCOPY \\\n   --form=x a b\n");
    assert_eq!((e.line, e.column), (3, 4), "{e}");
    let e = err("FROM a\nENV A=1 \\\n   B\n");
    assert_eq!((e.line, e.column), (3, 4), "{e}");
    assert_eq!(e.source_line, "   B");
}

#[test]
fn structure_errors() {
    let e = err("RUN x\nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::NoStage);
    assert!(e.message.contains("before the first FROM"), "{e}");
    let e = err("# only a comment\nARG X=1\n");
    assert_eq!(e.kind, ParseErrorKind::NoStage);
    let e = err("");
    assert_eq!(e.kind, ParseErrorKind::NoStage);
    let e = err("FROM a AS x\nFROM b AS X\n");
    assert!(
        matches!(e.kind, ParseErrorKind::DuplicateStageName { ref name } if name == "x"),
        "{e}"
    );
    let e = err("FROM a AS 1x\n");
    assert!(e.message.contains("invalid stage name"), "{e}");
    let e = err("FROM a b\n");
    assert!(e.message.contains("image [AS name]"), "{e}");
    let e = err("FROM a\nSHELL /bin/sh -c\n");
    assert!(matches!(e.kind, ParseErrorKind::BadJson { .. }), "{e}");
    let e = err("FROM a\nCOPY onlyone\n");
    assert!(
        matches!(e.kind, ParseErrorKind::MissingArguments { .. }),
        "{e}"
    );
    let e = err("FROM a\nVOLUME [\"\"]\n");
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn needed_stages_follow_from_copy_and_mounts() {
    let cf = p(
        "ARG S=tools\nFROM alpine AS base\nFROM base AS tools\nFROM alpine AS broken\nRUN false\nFROM scratch AS mounts\nFROM alpine AS final\nCOPY --from=${S} /x /x\nRUN --mount=type=bind,from=mounts,target=/m true\nCOPY --from=docker.io/library/busybox /bin/busybox /bin/\nFROM final\nCOPY --from=0 /a /a\n",
    );
    let resolve = |s: &str| s.replace("${S}", "tools");
    assert_eq!(cf.needed_stages(4, &resolve), [0, 1, 3, 4]);
    assert_eq!(cf.needed_stages(5, &resolve), [0, 1, 3, 4, 5]);
    assert_eq!(cf.needed_stages(2, &resolve), [2]);
    // FROM only sees earlier stages: a later stage of the same name is not a dependency.
    let cf = p("FROM b AS a\nFROM alpine AS b\n");
    assert_eq!(cf.needed_stages(0, &|s: &str| s.to_owned()), [0]);
}

#[test]
fn logical_line_for_step_messages() {
    let cf = p("FROM a\nRUN apk add \\\n  # c\n  curl\nCOPY <<EOF /x\nbody\nEOF\n");
    let i = &cf.stages[0].instructions;
    assert_eq!(i[0].span.logical, "RUN apk add   curl");
    assert_eq!(i[1].span.logical, "COPY <<EOF /x");
    assert_eq!(cf.stages[0].from.span.logical, "FROM a");
}
