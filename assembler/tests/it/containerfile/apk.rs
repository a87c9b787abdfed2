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

    let c = run("apk add --no-cache -U --virtual .build-deps pkg=1.2-r0 'pkg2>=1.2' \"pkg3<2\"")
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
    let Kind::Run { command, .. } = one("RUN apk add --no-cache \\\n    curl \\\n    jq") else {
        panic!()
    };
    assert_eq!(
        detect_apk(&command).unwrap().packages,
        strings(&["curl", "jq"])
    );
}
