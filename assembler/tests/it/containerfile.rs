//! Containerfile parser, expansion, build args and apk detection.

use std::path::Path;

use assembler::containerfile::{CommandForm, Kind, parse};

fn p(src: &str) -> assembler::containerfile::Containerfile {
    parse(src, Path::new("Containerfile")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn smoke() {
    let cf = p(
        "# syntax=docker/dockerfile:1\nFROM alpine:3.20 AS base\nRUN apk add \\\n  # comment\n  curl\nCOPY <<EOF /etc/x\nhello\nEOF\nCMD [\"sh\"]\n",
    );
    assert_eq!(cf.stages.len(), 1);
    assert_eq!(cf.notes.len(), 1);
    let s = &cf.stages[0];
    assert_eq!(s.name.as_deref(), Some("base"));
    assert!(
        matches!(&s.instructions[0].kind, Kind::Run { command: CommandForm::Shell(c), .. } if c == "apk add   curl"),
        "{:?}",
        s.instructions[0]
    );
    println!("{cf:#?}");
    let e = parse("FROM a\nRUNN x\n", Path::new("Containerfile")).unwrap_err();
    println!("{e}");
    let e = parse(
        "FROM a\nCOPY --checksum=sha256:x a b\n",
        Path::new("Containerfile"),
    )
    .unwrap_err();
    println!("{e}");
    let e = parse("FROM a\nCMD [\"a\", \"b\"\n", Path::new("Containerfile")).unwrap_err();
    println!("{e}");
    let e = parse("FROM\n", Path::new("Containerfile")).unwrap_err();
    println!("{e}");
    let e = parse("FROM a\nRUN <<EOF\nabc\n", Path::new("Containerfile")).unwrap_err();
    println!("{e}");
}
