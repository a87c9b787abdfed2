//! Containerfile parser, expansion, build args and apk detection. Many cases are ported
//! from moby/buildkit's parser tests (`parser_heredoc_test.go`, `testfiles/`) and shell
//! lexer tests (`envVarTest`, `wordsTest`, `lex_test.go`).

use std::collections::BTreeMap;
use std::path::Path;

use assembler::containerfile::{
    ApkAction, Arg, BuildArgs, CommandForm, Containerfile, ExpandError, Healthcheck, Kind,
    ParseError, ParseErrorKind, Platform, detect_apk, detect_apk_with, expand_word, expand_words,
    parse,
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

mod parser;

mod heredocs;

mod errors;

mod expansion;

mod build_args;

mod apk;

pub(crate) mod round_trip;

mod properties;

mod oracle;

mod expanded_instructions;
