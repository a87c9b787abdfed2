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
