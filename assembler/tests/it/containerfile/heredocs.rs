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

#[test]
fn run_scripts() {
    use assembler::containerfile::RunScript;
    let k = one("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF");
    let Some(RunScript::Body(h)) = k.run_script() else {
        panic!("{k:?}")
    };
    assert_eq!(h.content, "#!/usr/bin/env python3\nprint(1)\n");
    assert!(matches!(
        one("RUN <<- 'E F'\nx\nE F").run_script(),
        Some(RunScript::Body(_))
    ));
    let k = one("RUN python3 - <<'PY' && cat <<-EOF\nprint($HOME)\nPY\n\tdone\n\tEOF");
    assert_eq!(
        k.run_script(),
        Some(RunScript::Shell(
            "python3 - <<'PY' && cat <<-EOF\nprint($HOME)\nPY\ndone\nEOF\n".to_owned()
        ))
    );
    assert!(matches!(
        one("RUN <<A <<B\na\nA\nb\nB").run_script(),
        Some(RunScript::Shell(_))
    ));
    assert_eq!(one("RUN echo hi").run_script(), None);
    assert_eq!(one("COPY <<EOF /x\nEOF").run_script(), None);
}
