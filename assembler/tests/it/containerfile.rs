//! Containerfile parser, expansion, build args and apk detection. Many cases are ported
//! from moby/buildkit's parser tests (`parser_heredoc_test.go`, `testfiles/`) and shell
//! lexer tests (`envVarTest`, `wordsTest`, `lex_test.go`).

use std::collections::BTreeMap;
use std::path::Path;

use assembler::containerfile::{
    ApkAction, Arg, BuildArgs, CommandForm, Containerfile, ExpandError, Healthcheck, Kind,
    ParseError, ParseErrorKind, Platform, detect_apk, expand_word, expand_words, parse,
};
use proptest::prelude::*;

fn p(src: &str) -> Containerfile {
    parse(src, Path::new("Containerfile")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(src: &str) -> ParseError {
    match parse(src, Path::new("Containerfile")) {
        Ok(cf) => panic!("expected an error, got {cf:#?}"),
        Err(e) => e,
    }
}

/// The instructions of the only stage, FROM excluded.
fn insts(src: &str) -> Vec<Kind> {
    let cf = p(src);
    assert_eq!(cf.stages.len(), 1, "{cf:#?}");
    cf.stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect()
}

fn one(src: &str) -> Kind {
    let mut k = insts(&format!("FROM a\n{src}"));
    assert_eq!(k.len(), 1, "{k:#?}");
    k.remove(0)
}

fn shell(s: &str) -> CommandForm {
    CommandForm::Shell(s.to_owned())
}

fn exec(v: &[&str]) -> CommandForm {
    CommandForm::Exec(v.iter().map(|s| (*s).to_owned()).collect())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

mod parser {
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
}

mod heredocs {
    use super::*;

    fn heredocs_of(k: &Kind) -> Vec<(String, String, bool, Option<u32>)> {
        let (Kind::Run { heredocs: h, .. }
        | Kind::Copy { heredocs: h, .. }
        | Kind::Add { heredocs: h, .. }) = k
        else {
            return vec![];
        };
        h.iter()
            .map(|h| (h.delimiter.clone(), h.content.clone(), h.expand, h.fd))
            .collect()
    }

    fn h(name: &str, content: &str, expand: bool) -> (String, String, bool, Option<u32>) {
        (name.to_owned(), content.to_owned(), expand, None)
    }

    /// buildkit `TestParseExtractsHeredoc`, with our `content` already chomped for `<<-`.
    #[test]
    fn buildkit_extracts_heredoc() {
        let src = "FROM alpine:3.6\n\nENV NAME=me\n\nRUN ls\n\nRUN <<EMPTY\nEMPTY\n\nRUN 3<<EMPTY2\nEMPTY2\n\nRUN \"<<NOHEREDOC\"\n\nRUN <<INDENT\n\tfoo\n\tbar\nINDENT\n\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\nRUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n\nRUN <<-EXPAND\n\texpand $NAME\nEXPAND\n\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\nRUN <<COPY\necho hello world\necho foo bar\nCOPY\n\nRUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\nCOMMENT\n\nRUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\nCOPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n\nCOPY <<EOF /quotes\n\"foo\"\n'bar'\nEOF\n\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n\nRUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n\nCOPY <<file.txt /dest\nhello world\nfile.txt\n\nRUN <<eo'f'\necho foo\neof\n\nRUN <<eo\\'f\necho foo\neo'f\n\nRUN <<'e'o\\'f\necho foo\neo'f\n\nRUN <<'one two'\necho bar\none two\n\nRUN <<$EOF\n$EOF\n\nRUN <<  EOF\nEOF\n\nRUN <<  EOF  > foo\nEOF\n\t";
        let got: Vec<_> = insts(src).iter().map(heredocs_of).collect();
        let want = vec![
            vec![],
            vec![],
            vec![h("EMPTY", "", true)],
            vec![("EMPTY2".into(), String::new(), true, Some(3))],
            vec![],
            vec![h("INDENT", "\tfoo\n\tbar\n", true)],
            vec![h("UNINDENT", "baz\nquux\n", true)],
            vec![h("UNINDENT2", "baz\nquux\n", true)],
            vec![h("EXPAND", "expand $NAME\n", true)],
            vec![h("NOEXPAND", "don't expand $NAME\n", false)],
            vec![h("COPY", "echo hello world\necho foo bar\n", true)],
            vec![h(
                "COMMENT",
                "# internal comment\necho hello world\necho foo bar # trailing comment\n",
                true,
            )],
            vec![h("MOUNT", "echo hello\n", true)],
            vec![
                h("FILE1", "content 1\n", true),
                h("FILE2", "content 2\n", true),
            ],
            vec![h("EOF", "\"foo\"\n'bar'\n", true)],
            vec![h("X", "Y\n", true), h("Y", "X\n", true)],
            vec![h("COMPLEX", "print('hello world')\n", true)],
            vec![h("file.txt", "hello world\n", true)],
            vec![h("eof", "echo foo\n", false)],
            vec![h("eo'f", "echo foo\n", true)],
            vec![h("eo'f", "echo foo\n", false)],
            vec![h("one two", "echo bar\n", false)],
            vec![h("$EOF", "", true)],
            vec![h("EOF", "", true)],
            vec![h("EOF", "", true)],
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn heredoc_payloads() {
        let k = insts(
            "FROM a\nCOPY --chmod=0755 <<EOF /usr/local/bin/hello\n#!/bin/sh\necho hi\nEOF\nCOPY <<A <<B /etc/\na\nA\nb\nB\nRUN <<EOF python3 - <<'PY'\nshell\nEOF\nprint(1)\nPY\n",
        );
        assert!(
            matches!(&k[0], Kind::Copy { sources, dest, heredocs } if sources.is_empty() && dest == "/usr/local/bin/hello" && heredocs[0].content == "#!/bin/sh\necho hi\n")
        );
        assert!(
            matches!(&k[1], Kind::Copy { sources, dest, heredocs } if sources.is_empty() && dest == "/etc/" && heredocs.len() == 2)
        );
        let Kind::Run { command, heredocs } = &k[2] else {
            panic!()
        };
        assert_eq!(command, &shell("<<EOF python3 - <<'PY'"));
        assert_eq!(heredocs.len(), 2);
        assert!(heredocs[0].expand && !heredocs[1].expand);
        // Sources mixed with heredocs; `<< EOF` with a space is a heredoc too.
        assert!(
            matches!(one("COPY a << EOF /d/\nx\nEOF"), Kind::Copy { sources, heredocs, .. } if sources == strings(&["a"]) && heredocs[0].delimiter == "EOF")
        );
    }

    #[test]
    fn json_form_has_no_heredocs() {
        // buildkit TestParseJSONHeredoc
        let k = insts("FROM alpine:3.6\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n");
        assert!(k.iter().all(|k| heredocs_of(k).is_empty()));
    }

    #[test]
    fn heredocs_only_on_run_copy_add() {
        // buildkit: `USER <<INVALID` is not a heredoc, the next line is an instruction.
        let e = err("FROM a\nUSER <<INVALID\nINVALID\n");
        assert!(
            matches!(e.kind, ParseErrorKind::UnknownInstruction { .. }),
            "{e}"
        );
        assert_eq!(e.line, 3);
    }

    #[test]
    fn heredoc_delimiters_buildkit_helpers() {
        // TestParseHeredocHelpers / TestHeredocsFromLine
        for d in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
            "4<<EOF",
        ] {
            let k = one(&format!("RUN {d}\nEOF"));
            assert_eq!(heredocs_of(&k)[0].0, "EOF", "{d}");
        }
        assert_eq!(heredocs_of(&one("RUN << -EOF\n-EOF"))[0].0, "-EOF");
        for not in [
            "RUN <<",
            "RUN <<-",
            "RUN <EOF",
            "RUN <<<EOF",
            "RUN '<<EOF'",
            "RUN \"<<EOF\"",
        ] {
            assert!(heredocs_of(&one(not)).is_empty(), "{not}");
        }
        for bad in ["RUN <<'EOF", "RUN <<\"EOF", "RUN <<EOF'", "RUN <<EOF\""] {
            let e = err(&format!("FROM a\n{bad}\nEOF\n"));
            assert!(e.message.contains("unterminated quote"), "{bad}: {e}");
        }
    }

    #[test]
    fn unterminated_heredoc() {
        let e = err("FROM a\nRUN <<EOF\necho\n  EOF\n");
        assert_eq!(
            e.kind,
            ParseErrorKind::UnterminatedHeredoc {
                delimiter: "EOF".into()
            }
        );
        assert_eq!((e.line, e.column), (2, 5));
    }
}

mod errors {
    use super::*;

    #[test]
    fn unknown_instruction_snippet() {
        let e = err("FROM alpine\nRUNN apk add curl\n");
        assert_eq!(
            e.kind,
            ParseErrorKind::UnknownInstruction {
                name: "RUNN".into(),
                suggestion: Some("RUN".into())
            }
        );
        assert_eq!(
            e.to_string(),
            "error: unknown instruction `RUNN`
 --> Containerfile:2:1
  |
2 | RUNN apk add curl
  | ^^^^
  |
help: did you mean RUN?"
        );
    }

    #[test]
    fn bad_flag_snippet() {
        let e = err("FROM alpine\nCOPY --checksum=sha256:00 a /b\n");
        assert_eq!(
            e.to_string(),
            "error: COPY does not take --checksum
 --> Containerfile:2:6
  |
2 | COPY --checksum=sha256:00 a /b
  |      ^^^^^^^^^^^^^^^^^^^^
  |
help: COPY takes --from, --chown, --chmod, --link, --parents, --exclude"
        );
    }

    #[test]
    fn missing_json_bracket_snippet() {
        let e = err("FROM alpine\nCMD [\"/bin/app\", \"--serve\"\n");
        assert_eq!(
            e.hint.as_deref(),
            Some("missing `]` at the end of the JSON array: [\"executable\", \"arg\"]")
        );
        assert_eq!((e.line, e.column), (2, 5));
        assert!(e.to_string().contains(" --> Containerfile:2:5"), "{e}");
        assert!(e.message.starts_with("invalid JSON array: "), "{e}");
    }

    #[test]
    fn from_without_image_snippet() {
        let e = err("FROM\n");
        assert_eq!(
            e.kind,
            ParseErrorKind::MissingArguments {
                instruction: "FROM".into()
            }
        );
        let text = e.to_string();
        assert!(
            text.starts_with("error: FROM needs arguments\n --> Containerfile:1:5\n"),
            "{text}"
        );
        assert!(text.contains("help: name the base image"), "{text}");
    }

    #[test]
    fn unterminated_heredoc_snippet() {
        let e = err("FROM alpine\nRUN <<EOF\necho hi\n");
        assert_eq!(
            e.to_string(),
            "error: heredoc `EOF` is not terminated before the end of the file
 --> Containerfile:2:5
  |
2 | RUN <<EOF
  |     ^^^^^
  |
help: end the heredoc with a line containing only `EOF` (no leading blanks: use `<<-` to allow tabs)"
        );
    }

    #[test]
    fn styled_rendering_has_colours() {
        let e = err("FROM a\nRUNN x\n");
        assert!(e.render_styled().contains('\u{1b}'));
        assert!(!e.render().contains('\u{1b}'));
    }

    #[test]
    fn path_is_shown_as_given() {
        let e = parse("FROM\n", Path::new("sub/dir/Dockerfile")).unwrap_err();
        assert!(e.to_string().contains("sub/dir/Dockerfile:1:5"), "{e}");
        assert_eq!(e.path, Path::new("sub/dir/Dockerfile"));
    }

    #[test]
    fn parse_file_reads_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Containerfile");
        fs_err::write(&path, "FROM scratch\nCOPY a /\n").unwrap();
        let cf = assembler::containerfile::parse_file(&path).unwrap();
        assert_eq!(cf.stages[0].instructions.len(), 1);
        let missing = assembler::containerfile::parse_file(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}

mod expansion {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("NULL", ""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// buildkit `shell/envVarTest` (the Unix and All rows): input → output or error.
    const ENV_VAR_TEST: &[(&str, Option<&str>)] = &[
        ("hello", Some("hello")),
        ("he'll'o", Some("hello")),
        ("he'llo", None),
        ("he\\'llo", Some("he'llo")),
        ("he\\\\'llo", None),
        ("abc\\tdef", Some("abctdef")),
        ("\"abc\\tdef\"", Some("abc\\tdef")),
        ("\"abc\\\\tdef\"", Some("abc\\tdef")),
        ("'abc\\tdef'", Some("abc\\tdef")),
        ("hello\\", Some("hello")),
        ("hello\\\\", Some("hello\\")),
        ("\"hello", None),
        ("\"hello\\\"", None),
        ("\"hel'lo\"", Some("hel'lo")),
        ("'hello", None),
        ("'hello\\'", Some("hello\\")),
        ("'hello\\there'", Some("hello\\there")),
        ("'hello\\\\there'", Some("hello\\\\there")),
        ("\"''\"", Some("''")),
        ("$.", Some("$.")),
        ("he$1x", Some("hex")),
        ("he$.x", Some("he$.x")),
        ("he$pwd.", Some("he.")),
        ("he$PWD", Some("he/home")),
        ("he\\$PWD", Some("he$PWD")),
        ("he\\\\$PWD", Some("he\\/home")),
        ("\"he\\$PWD\"", Some("he$PWD")),
        ("\"he\\\\$PWD\"", Some("he\\/home")),
        ("\\${}", Some("${}")),
        ("\\${}aaa", Some("${}aaa")),
        ("he\\${}", Some("he${}")),
        ("he\\${}xx", Some("he${}xx")),
        ("${}", None),
        ("${}aaa", None),
        ("he${}", None),
        ("he${}xx", None),
        ("he${hi}", Some("he")),
        ("he${hi}xx", Some("hexx")),
        ("he${PWD}", Some("he/home")),
        ("he${.}", None),
        ("he${XXX:-000}xx", Some("he000xx")),
        ("he${PWD:-000}xx", Some("he/homexx")),
        ("he${XXX:-$PWD}xx", Some("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
        ("he${XXX:YYY}", None),
        ("he${XXX?}", None),
        ("he${XXX:?}", None),
        ("he${PWD?}", Some("he/home")),
        ("he${PWD:?}", Some("he/home")),
        ("he${NULL?}", Some("he")),
        ("he${NULL:?}", None),
        ("he${XXX:+${PWD}}xx", Some("hexx")),
        ("he${PWD:+${XXX}}xx", Some("hexx")),
        ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
        ("he${XXX:+000}xx", Some("hexx")),
        ("he${PWD:+000}xx", Some("he000xx")),
        ("'he${XX}'", Some("he${XX}")),
        ("\"he${PWD}\"", Some("he/home")),
        ("\"he'$PWD'\"", Some("he'/home'")),
        ("\"$PWD\"", Some("/home")),
        ("'$PWD'", Some("$PWD")),
        ("'\\$PWD'", Some("\\$PWD")),
        ("'\"hello\"'", Some("\"hello\"")),
        ("he\\$PWD", Some("he$PWD")),
        ("\"he\\$PWD\"", Some("he$PWD")),
        ("'he\\$PWD'", Some("he\\$PWD")),
        ("he${PWD", None),
        ("he${PWD=000}xx", None),
        ("he${PWD+${PWD}:}xx", Some("he/home:xx")),
        ("he${PWD+${SHELL}:}xx", Some("hebash:xx")),
        ("he${PWD+${XXX:-000}}xx", Some("he000xx")),
        ("he${XXX+${PWD:-000}}xx", Some("hexx")),
        ("${KOREAN}", Some("한국어")),
        ("한국어${KOREAN}", Some("한국어한국어")),
    ];

    #[test]
    fn buildkit_env_var_test() {
        let env = env();
        for (input, want) in ENV_VAR_TEST {
            let got = expand_word(input, &env, '\\');
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
                None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    fn m(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// buildkit `TestProcessWithMatches`.
    #[test]
    fn buildkit_process_with_matches() {
        let fb = m(&[("FOO", "xxx"), ("BAR", "")]);
        let cases: &[(&str, BTreeMap<String, String>, Option<&str>)] = &[
            ("x", m(&[("DUMMY", "dummy")]), Some("x")),
            ("x ${UNUSED}", m(&[]), Some("x ")),
            ("x ${FOO}", m(&[("FOO", "y")]), Some("x y")),
            (
                "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
                fb.clone(),
                Some("xxx  ccc"),
            ),
            (
                "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
                fb.clone(),
                Some("xxx bbb ccc"),
            ),
            ("${FOO:-}", fb.clone(), Some("xxx")),
            ("${FOO:-}", m(&[]), Some("")),
            (
                "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
                fb.clone(),
                Some("aaa bbb "),
            ),
            (
                "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
                fb.clone(),
                Some("aaa  "),
            ),
            ("${FOO?aaa}", fb.clone(), Some("xxx")),
            ("${BAR?bbb}", fb.clone(), Some("")),
            ("${BAZ?ccc}", fb.clone(), None),
            ("${FOO:?aaa}", fb.clone(), Some("xxx")),
            ("${BAR:?bbb}", fb.clone(), None),
            ("${BAZ:?ccc}", fb.clone(), None),
            ("${BAZ:?}", fb.clone(), None),
            ("${FOO=aaa}", fb.clone(), None),
            ("${FOO=:aaa}", fb.clone(), None),
            ("${FOO=}", m(&[]), None),
            (
                "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
                m(&[("FOO", "()[]{}^$.*?|\\x")]),
                Some("x"),
            ),
            ("${FOO%%\\**}", m(&[("FOO", "xx**")]), Some("xx")),
            ("${FOO#*x*y}", m(&[("FOO", "xxyy")]), Some("y")),
            ("${FOO#*}", m(&[("FOO", "xxyy")]), Some("xxyy")),
            (
                "${FOO#$BAR}",
                m(&[("FOO", "xxyy"), ("BAR", "x")]),
                Some("xyy"),
            ),
            (
                "${FOO#$BAR}",
                m(&[("FOO", "xxyy"), ("BAR", "")]),
                Some("xxyy"),
            ),
            ("${FOO#}", m(&[("FOO", "xxyy")]), Some("xxyy")),
            ("${FOO##*x}", m(&[("FOO", "xxyy")]), Some("yy")),
            ("${FOO##}", m(&[("FOO", "xxyy")]), Some("xxyy")),
            ("${FOO#?\\?}", m(&[("FOO", "???y")]), Some("?y")),
            (
                "${ABC:-.}${FOO%x}${ABC:-.}",
                m(&[("FOO", "xxyy")]),
                Some(".xxyy."),
            ),
            ("${FOO%%\\**\\*}", m(&[("FOO", "a***yy*")]), Some("a")),
            ("${FOO%}", m(&[("FOO", "xxyy")]), Some("xxyy")),
            (
                "${FOO%%$BAR}",
                m(&[("FOO", "xxyy"), ("BAR", "")]),
                Some("xxyy"),
            ),
            (
                "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                m(&[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")]),
                Some("/foo.*/*.txt - /foo..*.txt"),
            ),
            (
                "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                m(&[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")]),
                Some("/tmp/bar.txt - /bar.txt"),
            ),
            (
                "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
                m(&[
                    ("FOO", "/a/foo/b/c.txt"),
                    ("NEEDLE", "/?/"),
                    ("REPLACEMENT", "/"),
                ]),
                Some("/foo/b/c.txt - /foo/c.txt"),
            ),
            (
                "${FOO/$NEEDLE/$REPLACEMENT}",
                m(&[
                    ("FOO", "http://google.de"),
                    ("NEEDLE", "http://"),
                    ("REPLACEMENT", "https://"),
                ]),
                Some("https://google.de"),
            ),
            (
                "${FOO//\\//\\/}",
                m(&[("FOO", "/tmp/foo.txt")]),
                Some("\\/tmp\\/foo.txt"),
            ),
            (
                "${FOO/$BAR/ww}",
                m(&[("FOO", "xxyy"), ("BAR", "")]),
                Some("wwxxyy"),
            ),
            ("${FOO//ww}", m(&[("FOO", "xxyy")]), None),
            ("${FOO//}", m(&[("FOO", "xxyy")]), None),
            ("${FOO///}", m(&[("FOO", "xxyy")]), Some("xxyy")),
            ("${FOO///}", m(&[]), Some("")),
        ];
        for (input, vars, want) in cases {
            let got = expand_word(input, vars, '\\');
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
                None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn buildkit_mandatory_env_vars() {
        let set = m(&[("VAR", "plain"), ("ARG", "x")]);
        let empty = m(&[("VAR", ""), ("ARG", "x")]);
        let unset = m(&[("ARG", "x")]);
        let no_empty = "${VAR:?message here$ARG}";
        let no_unset = "${VAR?message here$ARG}";
        assert_eq!(expand_word(no_empty, &set, '\\').unwrap(), "plain");
        for vars in [&empty, &unset] {
            let e = expand_word(no_empty, vars, '\\').unwrap_err();
            assert_eq!(
                e,
                ExpandError::Required {
                    name: "VAR".into(),
                    message: "message herex".into()
                }
            );
            assert_eq!(e.to_string(), "VAR: message herex");
        }
        assert_eq!(expand_word(no_unset, &set, '\\').unwrap(), "plain");
        assert_eq!(expand_word(no_unset, &empty, '\\').unwrap(), "");
        assert!(expand_word(no_unset, &unset, '\\').is_err());
    }

    #[test]
    fn buildkit_platform_release_name() {
        let vars = m(&[
            ("VERSION", "v1.2.3"),
            ("TARGETOS", "linux"),
            ("TARGETARCH", "arm"),
            ("TARGETVARIANT", "v7"),
        ]);
        let w = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
        assert_eq!(
            expand_word(w, &vars, '\\').unwrap(),
            "something-v1.2.3.linux-arm-v7.tar.gz"
        );
        let mut vars = vars;
        vars.insert("TARGETVARIANT".into(), String::new());
        vars.insert("TARGETARCH".into(), "amd64".into());
        assert_eq!(
            expand_word(w, &vars, '\\').unwrap(),
            "something-v1.2.3.linux-amd64.tar.gz"
        );
    }

    /// buildkit `shell/wordsTest`: expand then split.
    #[test]
    fn buildkit_words_test() {
        let mut env: Vec<(String, String)> = Vec::new();
        let cases: &[(&str, &str)] = &[
            ("hello", "hello"),
            ("hello${hi}bye", "hellobye"),
            ("ENV hi=hi", ""),
            ("hello${hi}bye", "hellohibye"),
            ("ENV space=abc  def", ""),
            ("hello${space}bye", "helloabc,defbye"),
            ("hello\"${space}\"bye", "helloabc  defbye"),
            ("hello \"${space}\"bye", "hello,abc  defbye"),
            ("ENV leading=  ab c", ""),
            ("hello${leading}def", "hello,ab,cdef"),
            ("hello\"${leading}\" def", "hello  ab c,def"),
            ("hello\"${leading}\"", "hello  ab c"),
            ("hello${leading}", "hello,ab,c"),
            ("ENV trailing=ab c   ", ""),
            ("hello${trailing}", "helloab,c"),
            ("hello${trailing}d", "helloab,c,d"),
            ("hello\"${trailing}\"d", "helloab c   d"),
            ("hel\"lo${trailing}\"", "helloab c   "),
            ("hello\" there  \"", "hello there  "),
            ("hello there", "hello,there"),
            ("hello\\ there", "hello there"),
            ("hello\" there", "error"),
            ("hello\\\" there", "hello\",there"),
            ("hello\"\\\\there\"", "hello\\there"),
            ("hello\"\\there\"", "hello\\there"),
            ("hello'\\\\there'", "hello\\\\there"),
            ("hello'\\there'", "hello\\there"),
            ("hello'$there'", "hello$there"),
        ];
        for (input, want) in cases {
            if let Some(kv) = input.strip_prefix("ENV ") {
                let (k, v) = kv.split_once('=').unwrap();
                env.push((k.to_owned(), v.to_owned()));
                continue;
            }
            let got = match expand_words(input, &env, '\\') {
                Ok(w) => w.join(","),
                Err(_) => "error".to_owned(),
            };
            assert_eq!(&got, want, "input {input:?}");
        }
    }

    #[test]
    fn backtick_escape() {
        let env = m(&[("A", "x")]);
        assert_eq!(expand_word("c:\\dir`$A", &env, '`').unwrap(), "c:\\dir$A");
        assert_eq!(expand_word("c:\\dir\\$A", &env, '`').unwrap(), "c:\\dir\\x");
        assert_eq!(expand_word("\"a`\"b\"", &env, '`').unwrap(), "a\"b");
    }

    #[test]
    fn special_parameters_and_digits() {
        let env = m(&[]);
        assert_eq!(
            expand_word("a$@b$*c$#d$?e$$f$!g$0h", &env, '\\').unwrap(),
            "abcdefgh"
        );
        assert_eq!(expand_word("$12x", &env, '\\').unwrap(), "x");
        assert_eq!(expand_word("cost $", &env, '\\').unwrap(), "cost $");
    }
}

mod build_args {
    use super::*;

    fn platform(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    fn args(overrides: &[(&str, &str)]) -> BuildArgs {
        BuildArgs::new(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            &platform("linux/arm64/v8"),
            &platform("linux/amd64"),
        )
    }

    #[test]
    fn platform_parse_and_display() {
        assert_eq!(platform("linux/arm/v7").to_string(), "linux/arm/v7");
        assert_eq!(platform("linux/amd64").variant, None);
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("a/b/c/d").is_none());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn globals_only_in_from_unless_redeclared() {
        let cf = p(
            "ARG VERSION=3.20\nARG REG\nFROM ${REG:-docker.io}/alpine:${VERSION}\nRUN echo $VERSION\nARG VERSION\nARG OTHER=${VERSION}-x\n",
        );
        let mut b = args(&[]);
        b.declare_globals(&cf).unwrap();
        let from = expand_word(cf.stages[0].base(), &b.global_vars(), cf.escape).unwrap();
        assert_eq!(from, "docker.io/alpine:3.20");
        let mut s = b.stage(&[]);
        // Not declared in the stage yet: not visible.
        assert_eq!(expand_word("[$VERSION]", &s, '\\').unwrap(), "[]");
        for inst in &cf.stages[0].instructions {
            if let Kind::Arg(a) = &inst.kind {
                for a in a {
                    s.declare(a, cf.escape).unwrap();
                }
            }
        }
        assert_eq!(
            expand_word("$VERSION/$OTHER", &s, '\\').unwrap(),
            "3.20/3.20-x"
        );
        assert_eq!(
            s.run_env(),
            pairs(&[("OTHER", "3.20-x"), ("VERSION", "3.20")])
        );
    }

    #[test]
    fn build_arg_overrides_defaults_everywhere() {
        let cf = p("ARG V=1\nFROM a:$V\nARG V\nARG W=2\n");
        let mut b = args(&[
            ("V", "9"),
            ("W", "8"),
            ("UNUSED", "x"),
            ("HTTP_PROXY", "http://p"),
        ]);
        b.declare_globals(&cf).unwrap();
        assert_eq!(
            expand_word(cf.stages[0].base(), &b.global_vars(), '\\').unwrap(),
            "a:9"
        );
        let mut s = b.stage(&[]);
        s.declare(&Arg::new("V", None), '\\').unwrap();
        s.declare(&Arg::new("W", Some("2".into())), '\\').unwrap();
        assert_eq!(expand_word("$V$W", &s, '\\').unwrap(), "98");
        // Proxies reach RUN without ARG; they are not "unused".
        assert_eq!(
            s.run_env(),
            pairs(&[("HTTP_PROXY", "http://p"), ("V", "9"), ("W", "8")])
        );
        assert_eq!(b.unused(&cf), ["UNUSED"]);
        assert_eq!(expand_word("[$HTTP_PROXY]", &s, '\\').unwrap(), "[]");
    }

    #[test]
    fn platform_args() {
        let b = args(&[]);
        let g = b.global_vars();
        assert_eq!(g["TARGETPLATFORM"], "linux/arm64/v8");
        assert_eq!(g["TARGETARCH"], "arm64");
        assert_eq!(g["TARGETVARIANT"], "v8");
        assert_eq!(g["BUILDPLATFORM"], "linux/amd64");
        assert_eq!(g["BUILDOS"], "linux");
        assert_eq!(g["BUILDVARIANT"], "");
        let mut s = b.stage(&[]);
        assert_eq!(expand_word("[$TARGETARCH]", &s, '\\').unwrap(), "[]");
        s.declare(&Arg::new("TARGETARCH", None), '\\').unwrap();
        assert_eq!(expand_word("[$TARGETARCH]", &s, '\\').unwrap(), "[arm64]");
    }

    #[test]
    fn env_shadows_arg() {
        let b = args(&[("A", "from-cli")]);
        let mut s = b.stage(&pairs(&[("PATH", "/usr/bin")]));
        s.declare(&Arg::new("A", Some("default".into())), '\\')
            .unwrap();
        assert_eq!(
            expand_word("$A:$PATH", &s, '\\').unwrap(),
            "from-cli:/usr/bin"
        );
        s.set_env("A", "from-env");
        assert_eq!(expand_word("$A", &s, '\\').unwrap(), "from-env");
        assert_eq!(
            s.run_env(),
            pairs(&[("A", "from-env"), ("PATH", "/usr/bin")])
        );
        // An ARG default sees ENV.
        s.declare(&Arg::new("B", Some("${PATH}:/x".into())), '\\')
            .unwrap();
        assert_eq!(
            s.args().find(|(n, _)| *n == "B"),
            Some(("B", "/usr/bin:/x"))
        );
    }

    #[test]
    fn declared_without_value_is_unset() {
        let b = args(&[]);
        let mut s = b.stage(&[]);
        s.declare(&Arg::new("X", None), '\\').unwrap();
        assert_eq!(expand_word("${X-unset}", &s, '\\').unwrap(), "unset");
        assert!(s.run_env().is_empty());
    }

    #[test]
    fn global_default_refers_to_earlier_global() {
        let cf = p("ARG A=1\nARG B=${A}2\nFROM x:$B\n");
        let mut b = args(&[]);
        b.declare_globals(&cf).unwrap();
        assert_eq!(b.global_vars()["B"], "12");
        let cf = p("ARG A=\"${MISSING:?set MISSING}\"\nFROM x\n");
        let e = args(&[]).declare_globals(&cf).unwrap_err();
        assert_eq!(e.to_string(), "MISSING: set MISSING");
    }
}

mod apk {
    use super::*;

    fn run(s: &str) -> Option<assembler::containerfile::ApkCommand> {
        detect_apk(&shell(s))
    }

    #[test]
    fn plain_add() {
        let c = run("apk add curl").unwrap();
        assert_eq!(c.action, ApkAction::Add);
        assert_eq!(c.packages, strings(&["curl"]));
        assert!(!c.no_cache && !c.update && c.virtual_name.is_none());
    }

    #[test]
    fn the_issue_examples() {
        let c = run("apk add --no-cache meilisearch=0.25.2-r0").unwrap();
        assert!(c.no_cache);
        assert_eq!(c.packages, strings(&["meilisearch=0.25.2-r0"]));

        let c = run("apk --no-cache add curl").unwrap();
        assert!(c.no_cache);

        let c =
            run("apk add --no-cache -U --virtual .build-deps pkg=1.2-r0 'pkg2>=1.2' \"pkg3<2\"")
                .unwrap();
        assert!(c.no_cache && c.update);
        assert_eq!(c.virtual_name.as_deref(), Some(".build-deps"));
        assert_eq!(c.packages, strings(&["pkg=1.2-r0", "pkg2>=1.2", "pkg3<2"]));

        let c = run("apk update && apk add --no-cache alpine-baselayout busybox").unwrap();
        assert!(c.update && c.no_cache);
        assert_eq!(c.packages, strings(&["alpine-baselayout", "busybox"]));

        let c = run("apk del --no-cache .build-deps").unwrap();
        assert_eq!(c.action, ApkAction::Del);
    }

    #[test]
    fn repositories_keys_and_flags() {
        let c = run("apk add -X https://r.example/main --repository=https://r.example/community --allow-untrusted --keys-dir /k --no-scripts -u -l -q --no-progress -- x").unwrap();
        assert_eq!(
            c.repositories,
            strings(&["https://r.example/main", "https://r.example/community"])
        );
        assert!(c.allow_untrusted && c.no_scripts && c.upgrade && c.latest && c.quiet);
        assert_eq!(c.keys_dir.as_deref(), Some("/k"));
        assert_eq!(c.packages, strings(&["x"]));
        let c = run("apk add -Uq -t .v a").unwrap();
        assert!(c.update && c.quiet);
        assert_eq!(c.virtual_name.as_deref(), Some(".v"));
    }

    #[test]
    fn exec_form_and_lone_update() {
        let c = detect_apk(&exec(&["/sbin/apk", "add", "--no-cache", "a"])).unwrap();
        assert_eq!(c.packages, strings(&["a"]));
        let c = run("apk update").unwrap();
        assert_eq!(c.action, ApkAction::Update);
        assert!(c.update);
    }

    #[test]
    fn anything_else_goes_to_the_shell() {
        for s in [
            "apk add curl | tee log",
            "apk add curl; echo done",
            "apk add curl && rm -rf /var/cache/apk/*",
            "apk add pkg>=1.2",
            "apk add $PKGS",
            "apk add `cat list`",
            "apk add \"$PKG\"",
            "apk add curl &",
            "apk add curl || true",
            "apk add",
            "apk del",
            "apk upgrade",
            "apk add --unknown-flag x",
            "apk fix",
            "apt-get install curl",
            "FOO=1 apk add x",
            "apk add a && apk add b",
            "apk add a && apk del b",
            "apk update x",
            "apk del --virtual v x",
            "sh -c 'apk add x'",
            "apk add x # comment",
            "apk add (x)",
            "apk add 'unterminated",
            "&& apk add x",
            "apk add x &&",
            "",
        ] {
            assert_eq!(run(s), None, "{s}");
        }
        assert_eq!(detect_apk(&exec(&["sh", "-c", "apk add x"])), None);
        assert_eq!(detect_apk(&exec(&[])), None);
    }

    #[test]
    fn from_a_parsed_run() {
        let Kind::Run { command, .. } = one("RUN apk add --no-cache \\\n    curl \\\n    jq")
        else {
            panic!()
        };
        assert_eq!(
            detect_apk(&command).unwrap().packages,
            strings(&["curl", "jq"])
        );
    }
}

pub(crate) mod round_trip {
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
}

mod properties {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary text never panics the parser.
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s, Path::new("f"));
        }

        /// Instruction-shaped text with every special character never panics either,
        /// and errors point inside the source.
        #[test]
        fn parse_instruction_soup_never_panics(
            lines in proptest::collection::vec(
                "(FROM|RUN|COPY|ADD|ENV|ARG|LABEL|EXPOSE|HEALTHCHECK|ONBUILD|SHELL|CMD|VOLUME|run|XX)?[ \\t]?[-a-z=<>'\"\\\\`$\\[\\]{}#: \\t,]{0,20}",
                0..8,
            )
        ) {
            let src = format!("FROM a\n{}", lines.join("\n"));
            if let Err(e) = parse(&src, Path::new("f")) {
                prop_assert!(e.line >= 1 && e.line <= src.lines().count().max(1) + 1);
                let _ = e.to_string();
            }
        }

        /// Arbitrary words never panic the expander.
        #[test]
        fn expand_never_panics(s in "\\PC*", esc in prop_oneof![Just('\\'), Just('`')]) {
            let vars: BTreeMap<String, String> = [("A".to_owned(), "x y".to_owned())].into();
            let _ = expand_word(&s, &vars, esc);
            let _ = expand_words(&s, &vars, esc);
        }

        /// Text without `$`, quotes or the escape character expands to itself.
        #[test]
        fn expansion_without_specials_is_identity(s in "[^$'\"\\\\]*") {
            let vars: BTreeMap<String, String> = [("A".to_owned(), "x".to_owned())].into();
            prop_assert_eq!(expand_word(&s, &vars, '\\').unwrap(), s);
        }

        /// detect_apk never panics and, when it accepts, names at least one package for
        /// add/del.
        #[test]
        fn detect_apk_is_total(s in "(apk )?[-a-zA-Z0-9 =<>'\"&|;.$]{0,40}") {
            if let Some(c) = detect_apk(&CommandForm::Shell(s.clone())) {
                prop_assert!(c.action == ApkAction::Update || !c.packages.is_empty(), "{}", s);
            }
        }
    }
}

/// parse-dockerfile (taiki-e) as an independent oracle: over a corpus of valid files,
/// both parsers see the same instructions on the same lines.
mod oracle {
    use super::*;
    use parse_dockerfile::Instruction as O;

    fn oracle(src: &str) -> Vec<(String, usize)> {
        let file = parse_dockerfile::parse(src).unwrap_or_else(|e| panic!("oracle: {e}\n{src}"));
        let line = |offset: usize| src[..offset].matches('\n').count() + 1;
        file.instructions
            .iter()
            .map(|i| {
                let (name, span) = match i {
                    O::Add(x) => ("ADD", &x.add.span),
                    O::Arg(x) => ("ARG", &x.arg.span),
                    O::Cmd(x) => ("CMD", &x.cmd.span),
                    O::Copy(x) => ("COPY", &x.copy.span),
                    O::Entrypoint(x) => ("ENTRYPOINT", &x.entrypoint.span),
                    O::Env(x) => ("ENV", &x.env.span),
                    O::Expose(x) => ("EXPOSE", &x.expose.span),
                    O::From(x) => ("FROM", &x.from.span),
                    O::Healthcheck(x) => ("HEALTHCHECK", &x.healthcheck.span),
                    O::Label(x) => ("LABEL", &x.label.span),
                    O::Maintainer(x) => ("MAINTAINER", &x.maintainer.span),
                    O::Onbuild(x) => ("ONBUILD", &x.onbuild.span),
                    O::Run(x) => ("RUN", &x.run.span),
                    O::Shell(x) => ("SHELL", &x.shell.span),
                    O::Stopsignal(x) => ("STOPSIGNAL", &x.stopsignal.span),
                    O::User(x) => ("USER", &x.user.span),
                    O::Volume(x) => ("VOLUME", &x.volume.span),
                    O::Workdir(x) => ("WORKDIR", &x.workdir.span),
                    other => panic!("instruction unknown to this test: {other:?}"),
                };
                (name.to_owned(), line(span.start))
            })
            .collect()
    }

    fn ours(src: &str) -> Vec<(String, usize)> {
        let cf = p(src);
        cf.global_arg_instructions
            .iter()
            .chain(
                cf.stages
                    .iter()
                    .flat_map(|s| std::iter::once(&s.from).chain(&s.instructions)),
            )
            .map(|i| (i.name().to_owned(), i.span.line))
            .collect()
    }

    const CORPUS: &[&str] = &[
        super::round_trip::CORPUS,
        "FROM alpine:3.20\nRUN apk add --no-cache meilisearch=0.25.2-r0\nADD etc /etc\nEXPOSE 7700\n",
        "# escape=`\nFROM mcr.example/windows\nRUN dir `\n  c:\\\nCOPY a b\n",
        "\n\n  # indented comment\n\tFROM a\n\n\nRUN x \\\n  \\\n  y\n# trailing\n",
        "FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nCOPY <<A <<B /d/\n1\nA\n2\nB\nRUN <<-T cat\n\tx\n\tT\nUSER u\n",
        "ARG V=1\nARG R=docker.io\nFROM $R/alpine:$V AS one\nFROM one AS two\nARG V\nRUN echo $V\nFROM scratch\nCOPY --from=two / /\n",
        "FROM a\nENV A=1 \\\n    B=2\nLABEL a=b \\\n      c=\"d e\"\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\nSTOPSIGNAL 9\nWORKDIR /a/b\nVOLUME [\"/x\", \"/y\"]\nVOLUME /z\nONBUILD ADD . /src\nMAINTAINER me\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT [\"/bin/sh\"]\nCMD echo hi\n",
        "from a\nrun true\ncopy --chown=1:1 a b\nadd --checksum=sha256:00 https://x/y /z\n",
    ];

    #[test]
    fn same_instructions_on_the_same_lines() {
        for src in CORPUS {
            assert_eq!(ours(src), oracle(src), "corpus file:\n{src}");
        }
    }
}
