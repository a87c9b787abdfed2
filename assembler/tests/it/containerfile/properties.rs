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

    /// With variables (some values blank or globs), detection never panics and an accepted
    /// add/del still names a package.
    #[test]
    fn detect_apk_with_vars_is_total(
        s in "apk (add|del) [-a-zA-Z0-9 =.${}'\"_]{0,40}",
        v in "[-a-z0-9.* ]{0,6}",
    ) {
        let lookup = |n: &str| (n == "V" || n == "V_2").then(|| v.clone());
        if let Some(c) = detect_apk_with(&CommandForm::Shell(s.clone()), &lookup) {
            prop_assert!(!c.packages.is_empty(), "{}", s);
        }
    }
}
