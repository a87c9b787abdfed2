//! The whole Containerfile checked before the first step, ONBUILD, FROM `--platform`, and
//! errors naming where they are (issue 14).

use crate::support::{PRELUDE, Ws, text};

fn sh(ws: &Ws, image: &str, script: &str) -> String {
    let out = ws.assemble(&["run", image, "sh", "-c", script]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image config `assemble inspect` shows, as JSON text.
fn oci_config(ws: &Ws, image: &str) -> serde_json::Value {
    let dir = ws.path(&format!("oci-{}", image.replace(':', "-")));
    let out = ws.assemble(&["export", image, &format!("oci:{}", dir.display())]);
    assert!(out.status.success(), "{}", text(&out));
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&fs_err::read(p).unwrap()).unwrap()
    };
    let blob = |digest: &str| {
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index = read(&dir.join("index.json"));
    let manifest = read(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    read(&blob(manifest["config"]["digest"].as_str().unwrap()))
}

#[test]
fn issue14_onbuild_is_recorded_and_triggered_in_the_child() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}ONBUILD RUN echo triggered in $(cat /name) > /onbuild\n\
         ONBUILD ENV FROM_TRIGGER=yes\n\
         ONBUILD COPY <<EOF /heredoc\nfrom a heredoc\nEOF\n\
         RUN echo base > /name\n"
    ));
    let out = ws.assemble(&["-t", "ob-base:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    // Nothing ran in the image that declares them; the config records them.
    assert_eq!(
        sh(&ws, "ob-base:1", "ls /onbuild 2>&1 | grep -c 'No such'"),
        "1\n"
    );
    let config = oci_config(&ws, "ob-base:1");
    assert_eq!(
        config["config"]["OnBuild"],
        serde_json::json!([
            "RUN echo triggered in $(cat /name) > /onbuild",
            "ENV FROM_TRIGGER=yes",
            "COPY <<EOF /heredoc\nfrom a heredoc\nEOF"
        ])
    );

    // A child: the triggers run right after FROM, in order, then its own steps.
    fs_err::create_dir_all(ws.path("child")).unwrap();
    fs_err::write(
        ws.path("child/Containerfile"),
        "FROM ob-base:1\nRUN echo $FROM_TRIGGER > /child\n",
    )
    .unwrap();
    let out = ws.assemble(&["-t", "ob-child:1", "child"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Executing 3 build triggers"), "{log}");
    assert!(
        log.contains("Step 2/5 : ONBUILD RUN echo triggered"),
        "{log}"
    );
    assert_eq!(
        sh(&ws, "ob-child:1", "cat /onbuild /child /heredoc"),
        "triggered in base\nyes\nfrom a heredoc\n"
    );
    // The child's config keeps none of them; its history says where the steps came from.
    let config = oci_config(&ws, "ob-child:1");
    assert!(config["config"].get("OnBuild").is_none(), "{config}");
    let history = config["history"].to_string();
    assert!(history.contains("ONBUILD RUN echo triggered"), "{history}");

    // A grandchild does not run them again.
    fs_err::write(
        ws.path("child/Containerfile"),
        "FROM ob-child:1\nRUN test ! -e /again\n",
    )
    .unwrap();
    let out = ws.assemble(&["-t", "ob-grandchild:1", "child"]);
    assert!(
        out.status.success() && !text(&out).contains("build trigger"),
        "{}",
        text(&out)
    );

    // Within one file: a stage FROM a stage with ONBUILD runs them too.
    ws.containerfile(
        "FROM ob-base:1 AS b\nONBUILD RUN touch /grand\nFROM b\nRUN ls /grand > /seen\n",
    );
    let out = ws.assemble(&["-t", "ob-stages:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sh(&ws, "ob-stages:1", "cat /seen; cat /onbuild"),
        "/grand\ntriggered in base\n"
    );
}

#[test]
fn issue14_the_whole_file_is_checked_before_the_first_step() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo slow first step\nENV A=1\nRUN --mount=type=ssh true\n"
    ));
    let out = ws.assemble(&["ctx"]);
    let log = text(&out);
    assert!(!out.status.success());
    assert!(log.contains("Containerfile:6:5"), "{log}");
    assert!(
        !log.contains("Step 1/") && !log.contains("slow first step"),
        "{log}"
    );
    // Docker's restrictions on triggers, and a broken trigger in a late stage.
    for (line, message) in [
        (
            "ONBUILD ONBUILD RUN x",
            "ONBUILD isn't allowed as an ONBUILD trigger",
        ),
        (
            "ONBUILD FROM alpine",
            "FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "ONBUILD MAINTAINER me",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("ONBUILD RUN --bogus x", "RUN does not take --bogus"),
    ] {
        ws.containerfile(&format!("{PRELUDE}RUN echo slow first step\n{line}\n"));
        let out = ws.assemble(&["ctx"]);
        let log = text(&out);
        assert!(!out.status.success(), "{line}: {log}");
        assert!(
            log.contains("Containerfile:5") && log.contains(message),
            "{line}: {log}"
        );
        assert!(!log.contains("slow first step"), "{line}: {log}");
    }
}

#[test]
fn issue14_from_platform_is_the_machines_or_an_error() {
    let Some(ws) = Ws::new() else { return };
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other = if host == "s390x" { "ppc64le" } else { "s390x" };
    ws.containerfile(&format!(
        "FROM --platform=$BUILDPLATFORM scratch AS build\nCOPY busybox /bin/busybox\n\
         FROM --platform=linux/{host} scratch\nARG TARGETARCH\nARG BUILDPLATFORM\n\
         COPY --from=build /bin/busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $TARGETARCH $BUILDPLATFORM > /platform\"]\n"
    ));
    let out = ws.assemble(&["-t", "plat:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = ws.assemble(&["run", "plat:1", "/bin/busybox", "cat", "/platform"]);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        format!("{host} linux/{host}\n")
    );

    ws.containerfile(&format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nFROM --platform=linux/{other} scratch\n"
    ));
    let out = ws.assemble(&["ctx"]);
    let log = text(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("Containerfile:3:6") && log.contains(&format!("linux/{other}")),
        "{log}"
    );
    assert!(!log.contains("Step 1/"), "{log}");
}

#[test]
fn issue14_step_errors_name_the_file_and_line() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!("{PRELUDE}\nRUN exit 3\n"));
    let log = text(&ws.assemble(&["ctx"]));
    assert!(
        log.contains("Containerfile:5: step 4 `RUN exit 3` failed"),
        "{log}"
    );
    // A step failing with an error rather than a status: named where it is, and kept as
    // :failed as a failed RUN is.
    ws.containerfile(&format!("{PRELUDE}COPY missing /x\n"));
    let log = text(&ws.assemble(&["-t", "where:1", "ctx"]));
    assert!(
        log.contains("Containerfile:4: step 4 `COPY missing /x` failed (COPY source `missing`")
            && log.contains("tagged where:failed"),
        "{log}"
    );
    ws.containerfile(&format!(
        "{PRELUDE}RUN --mount=type=cache,target=${{NOPE:?is-required}} true\n"
    ));
    let log = text(&ws.assemble(&["-t", "where:1", "ctx"]));
    assert!(
        log.contains("Containerfile:4:5: step 4 ")
            && log.contains("NOPE: is-required")
            && log.contains("tagged where:failed"),
        "{log}"
    );
    // A trigger of the base image failing in the child: at the child's FROM.
    ws.containerfile(&format!("{PRELUDE}ONBUILD COPY missing.txt /x\n"));
    let out = ws.assemble(&["-t", "ob-broken:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    fs_err::create_dir_all(ws.path("child")).unwrap();
    fs_err::write(ws.path("child/Containerfile"), "\nFROM ob-broken:1\n").unwrap();
    let log = text(&ws.assemble(&["-t", "ob-child:1", "child"]));
    assert!(
        log.contains("child/Containerfile:2: step 2 `ONBUILD COPY missing.txt /x` failed (")
            && log.contains("tagged ob-child:failed"),
        "{log}"
    );
}
