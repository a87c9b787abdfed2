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
