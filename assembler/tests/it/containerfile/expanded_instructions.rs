use super::*;
use assembler::containerfile::expand_heredoc;

fn vars() -> BTreeMap<String, String> {
    [
        ("V", "3.20"),
        ("APP", "my app"),
        ("PORTS", "80 443/tcp"),
        ("U", "1000"),
        ("STAGE", "build"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn exp(src: &str) -> assembler::containerfile::Instruction {
    let cf = p(&format!("FROM a\n{src}"));
    cf.stages[0].instructions[0]
        .expanded(&vars(), '\\')
        .unwrap()
}

#[test]
fn expanding_instructions() {
    let cf = p("FROM alpine:$V\n");
    let from = cf.stages[0].from.expanded(&vars(), '\\').unwrap();
    assert_eq!(
        from.kind,
        Kind::From {
            image: "alpine:3.20".into(),
            name: None
        }
    );

    let c = exp("COPY --from=$STAGE --chown=$U:$U \"/src/$APP\" /opt/${APP%%\\ *}/");
    assert_eq!(
        c.kind,
        Kind::Copy {
            sources: strings(&["/src/my app"]),
            dest: "/opt/my/".into(),
            heredocs: vec![]
        }
    );
    assert_eq!(c.flag("from"), Some("build"));
    assert_eq!(c.flag("chown"), Some("1000:1000"));

    assert_eq!(
        exp("ENV NAME=\"$APP\" V_$V=x").kind,
        Kind::Env(pairs(&[("NAME", "my app"), ("V_3.20", "x")]))
    );
    assert_eq!(
        exp("EXPOSE $PORTS 53/udp").kind,
        Kind::Expose(strings(&["80", "443/tcp", "53/udp"]))
    );
    assert_eq!(
        exp("WORKDIR /srv/$APP").kind,
        Kind::Workdir("/srv/my app".into())
    );
    assert_eq!(
        exp("USER ${U}:${G:-$U}").kind,
        Kind::User("1000:1000".into())
    );
    assert_eq!(
        exp("VOLUME /data/$V").kind,
        Kind::Volume(strings(&["/data/3.20"]))
    );
    assert_eq!(
        exp("STOPSIGNAL ${SIG:-SIGTERM}").kind,
        Kind::StopSignal("SIGTERM".into())
    );
    // The shell's business: untouched.
    for src in [
        "RUN echo $V",
        "CMD echo $V",
        "ENTRYPOINT [\"$V\"]",
        "HEALTHCHECK CMD $V",
        "ONBUILD RUN $V",
    ] {
        let cf = p(&format!("FROM a\n{src}"));
        let i = &cf.stages[0].instructions[0];
        assert_eq!(&i.expanded(&vars(), '\\').unwrap(), i, "{src}");
    }
    // RUN flags are not expanded by us either.
    let cf = p("FROM a\nRUN --network=$NET x\n");
    let i = &cf.stages[0].instructions[0];
    assert_eq!(
        i.expanded(&vars(), '\\').unwrap().flag("network"),
        Some("$NET")
    );
    // Errors surface.
    let cf = p("FROM a\nWORKDIR ${MISSING:?set it}\n");
    assert!(
        cf.stages[0].instructions[0]
            .expanded(&vars(), '\\')
            .is_err()
    );
}

#[test]
fn heredoc_bodies() {
    let c = exp("COPY <<EOF <<'RAW' /etc/\nv=$V \"$APP\" '${APP}' \\$V \\\\ \\n\nEOF\nv=$V\nRAW");
    let Kind::Copy { heredocs, .. } = c.kind else {
        panic!()
    };
    assert_eq!(
        heredocs[0].content,
        "v=3.20 \"my app\" 'my app' $V \\ \\n\n"
    );
    assert_eq!(heredocs[1].content, "v=$V\n");
    assert_eq!(
        expand_heredoc("a $ b $1 ${V}x $V.", &vars(), '\\').unwrap(),
        "a $ b  3.20x 3.20."
    );
    assert_eq!(expand_heredoc("`$V ``", &vars(), '`').unwrap(), "$V `");
}
