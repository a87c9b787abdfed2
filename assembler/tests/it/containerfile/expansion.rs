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
    let w =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
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
