//! `RUN --mount` (issue 14): cache, bind, tmpfs and secret mounts as BuildKit has them,
//! and RUN's `--network` and `--security`.

use crate::support::{PRELUDE, Ws, text};

/// `assemble run IMAGE sh -c SCRIPT`'s stdout.
fn sh(ws: &Ws, image: &str, script: &str) -> String {
    let out = ws.assemble(&["run", image, "sh", "-c", script]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issue14_cache_mounts_persist_across_builds_outside_the_image() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "FROM scratch AS seed\nCOPY busybox /seed/busybox\n\
         {PRELUDE}RUN --mount=type=cache,target=/var/cache/app,sharing=locked \
         n=$(cat /var/cache/app/n 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/app/n; \
         cp /var/cache/app/n /seen\n\
         RUN --mount=type=cache,id=owned,target=/owned,uid=1000,gid=1001,mode=0750 \
         stat -c '%u:%g %a' /owned > /owned-stat\n\
         RUN --mount=type=cache,target=/seeded,from=seed,source=/seed,sharing=private \
         ls /seeded > /seeded-list\n\
         RUN --mount=type=cache,target=/var/cache/app,ro \
         touch /var/cache/app/x 2>/dev/null || cat /var/cache/app/n > /read-only\n"
    ));
    let out = ws.assemble(&["-t", "cache:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sh(&ws, "cache:1", "cat /seen"), "1\n");
    assert_eq!(sh(&ws, "cache:1", "cat /owned-stat"), "1000:1001 750\n");
    // from= and source= give a new cache its first content.
    assert_eq!(sh(&ws, "cache:1", "cat /seeded-list"), "busybox\n");
    // `ro`: the same cache, read-only.
    assert_eq!(sh(&ws, "cache:1", "cat /read-only"), "1\n");
    // Neither the cache's content nor its mountpoint is part of the image.
    let absent = "test -e /var/cache && echo cache; test -e /owned && echo owned; echo none";
    assert_eq!(sh(&ws, "cache:1", absent), "none\n");

    // The content is not part of the step's key: the step is reused...
    let out = ws.assemble(&["-t", "cache:2", "ctx"]);
    assert!(text(&out).contains("--> Using cache"), "{}", text(&out));
    // ...and when it runs again, it finds what the first build left.
    let out = ws.assemble(&["--no-cache", "-t", "cache:3", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sh(&ws, "cache:3", "cat /seen"), "2\n");
}

#[test]
fn issue14_mount_owners_under_a_non_root_user() {
    let Some(ws) = Ws::new() else { return };
    fs_err::write(ws.path("token.txt"), "t0ken").unwrap();
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir /out && chown 1000:1000 /out\nUSER 1000\n\
         RUN --mount=type=cache,id=user-owned,target=/c,uid=2000,gid=2001 \
         stat -c %u:%g /c > /out/cache\n\
         RUN --mount=type=secret,id=token,uid=1000,gid=1000 \
         test \"$(cat /run/secrets/token)\" = t0ken && echo readable > /out/mine\n\
         RUN --mount=type=secret,id=token,target=/root-s stat -c %u:%g /root-s > /out/secret\n"
    ));
    let secret = format!("id=token,src={}", ws.path("token.txt").display());
    let out = ws.assemble(&["-t", "owners:1", "--secret", &secret, "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // A secret's file is the step's user's: a uid/gid of that user's is honoured, another
    // is said (BuildKit's default uid=0 would leave it unreadable to USER 1000).
    assert_eq!(
        sh(&ws, "owners:1", "cat /out/mine /out/secret"),
        "readable\n1000:1000\n"
    );
    assert!(
        log.contains(
            "note: the secret mount at /root-s is owned by 1000:1000 in the step, not \
             uid=0,gid=0: bubblewrap makes the file as the step's user"
        ) && !log.contains("mount at /run/secrets/token is owned"),
        "{log}"
    );
    let cache = sh(&ws, "owners:1", "cat /out/cache");
    if rustix::process::geteuid().is_root() {
        // As root the sandbox maps the image's ids for a non-root USER too: honoured.
        assert_eq!(cache, "2000:2001\n");
        assert!(!log.contains("mount at /c is owned"), "{log}");
    } else {
        assert_eq!(cache, "1000:1000\n");
        assert!(
            log.contains(
                "the cache mount at /c is owned by 1000:1000 in the step, not \
                 uid=2000,gid=2001: the sandbox maps one id"
            ),
            "{log}"
        );
    }
}

#[test]
fn issue14_bind_mounts_show_the_context_a_stage_or_an_image() {
    let Some(ws) = Ws::new() else { return };
    fs_err::create_dir_all(ws.path("ctx/src/sub")).unwrap();
    fs_err::write(ws.path("ctx/src/sub/a.txt"), "from the context\n").unwrap();
    fs_err::write(ws.path("ctx/src/secret.key"), "ignored\n").unwrap();
    fs_err::write(ws.path("ctx/.dockerignore"), "src/secret.key\n").unwrap();
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir /made && echo from the stage > /made/b.txt\n\
         FROM scratch AS final\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN --mount=target=/src,source=src cat /src/sub/a.txt > /ctx.txt; \
         ls /src > /listing; touch /src/x 2>/dev/null && echo writable > /ro || echo read-only > /ro\n\
         RUN --mount=type=bind,from=0,source=/made,target=/other cat /other/b.txt > /stage.txt\n\
         RUN --mount=type=bind,src=src/sub,dst=/rw,rw echo changed > /rw/a.txt && cat /rw/a.txt > /rw.txt\n"
    ));
    let out = ws.assemble(&["-t", "bind:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sh(&ws, "bind:1", "cat /ctx.txt /stage.txt /ro /rw.txt"),
        "from the context\nfrom the stage\nread-only\nchanged\n"
    );
    // .dockerignore applies to what a bind shows, as to COPY.
    assert_eq!(sh(&ws, "bind:1", "cat /listing"), "sub\n");
    // A read-write bind is a throw-away copy: the context is unchanged, nothing in the image.
    assert_eq!(
        fs_err::read_to_string(ws.path("ctx/src/sub/a.txt")).unwrap(),
        "from the context\n"
    );
    assert_eq!(
        sh(
            &ws,
            "bind:1",
            "ls / | grep -c -e '^src$' -e '^other$' -e '^rw$' || true"
        ),
        "0\n"
    );

    // A bind's content is part of the key: a changed file reruns the step that binds it.
    fs_err::write(ws.path("ctx/src/sub/a.txt"), "changed in the context\n").unwrap();
    let out = ws.assemble(&["-t", "bind:2", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sh(&ws, "bind:2", "cat /ctx.txt"),
        "changed in the context\n"
    );

    // from= an image of the store.
    ws.containerfile(&format!(
        "{PRELUDE}RUN --mount=from=bind:1,source=/stage.txt,target=/img.txt cp /img.txt /copied\n"
    ));
    let out = ws.assemble(&["-t", "bind:3", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sh(
            &ws,
            "bind:3",
            "cat /copied; ls /img.txt 2>&1 | grep -c 'No such'"
        ),
        "from the stage\n1\n"
    );

    // The ignore file and its rules are COPY's: .containerignore wins over .dockerignore,
    // and `*` stops at `/`.
    fs_err::write(ws.path("ctx/src/top.txt"), "top\n").unwrap();
    fs_err::write(ws.path("ctx/.containerignore"), "src/*.txt\n").unwrap();
    ws.containerfile(&format!(
        "{PRELUDE}RUN --mount=target=/src,source=src ls /src /src/sub > /listing\n\
         COPY src /copied\nRUN ls /copied /copied/sub > /copied-listing\n"
    ));
    let out = ws.assemble(&["-t", "bind:4", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let want = "secret.key\nsub\n\n/src/sub:\na.txt\n";
    assert_eq!(sh(&ws, "bind:4", "cat /listing"), format!("/src:\n{want}"));
    assert_eq!(
        sh(&ws, "bind:4", "cat /copied-listing"),
        format!("/copied:\n{}", want.replace("/src/", "/copied/"))
    );
}

#[test]
fn issue14_tmpfs_mounts_are_empty_sized_and_leave_nothing() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}RUN --mount=type=tmpfs,target=/scratch/space,size=1m \
         grep ' /scratch/space ' /proc/mounts > /mounts; echo data > /scratch/space/f; \
         stat -c %a /scratch/space > /mode\n"
    ));
    let out = ws.assemble(&["-t", "tmpfs:1", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let mounts = sh(&ws, "tmpfs:1", "cat /mounts");
    assert!(
        mounts.starts_with("tmpfs /scratch/space tmpfs") && mounts.contains("size=1024k"),
        "{mounts}"
    );
    assert_eq!(
        sh(
            &ws,
            "tmpfs:1",
            "cat /mode; ls /scratch 2>&1 | grep -c 'No such'"
        ),
        "1777\n1\n"
    );
}

#[test]
fn issue14_secrets_reach_the_step_and_nothing_else() {
    let Some(ws) = Ws::new() else { return };
    let value = "s3cr3t-Value-42";
    fs_err::write(ws.path("token.txt"), value).unwrap();
    // The Containerfile holds only the value's digest: its text is in the history.
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(value));
    ws.containerfile(&format!(
        "{PRELUDE}RUN --mount=type=secret,id=token \
         sha256sum /run/secrets/token | grep -q {digest} && stat -c '%a %u' /run/secrets/token > /file-mode \
         && cat /run/secrets/token\n\
         RUN --mount=type=secret,id=token,env=TOKEN,target=/etc/tok,mode=0440 \
         echo -n \"$TOKEN\" | sha256sum | grep -q {digest} && sha256sum /etc/tok | grep -q {digest} \
         && stat -c %a /etc/tok > /env-mode\n\
         RUN --mount=type=secret,id=absent ls /run/secrets 2>&1 | grep -c 'No such' > /absent\n"
    ));
    let secret = format!("id=token,src={}", ws.path("token.txt").display());
    let out = ws.assemble(&["-t", "sec:1", "--secret", &secret, "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        sh(&ws, "sec:1", "cat /file-mode /env-mode /absent"),
        "400 0\n440\n1\n"
    );
    // Printed by the step, it is masked in the output and the log.
    assert!(!log.contains(value) && log.contains("****"), "{log}");
    let logs = text(&ws.assemble(&["logs", "sec:1"]));
    assert!(!logs.contains(value), "{logs}");
    // Nowhere in the store: layers, configs, history, logs, cache keys.
    nowhere_in_the_store(&ws, value);
    // Nor in the image's mountpoint: /run/secrets was made for the step and taken away.
    assert_eq!(
        sh(
            &ws,
            "sec:1",
            "ls /run 2>&1 | grep -c 'No such'; ls /etc/tok 2>&1 | grep -c 'No such'"
        ),
        "1\n1\n"
    );
    // Its value is not part of the key (as in BuildKit): another value reuses the steps.
    fs_err::write(ws.path("token.txt"), "another").unwrap();
    let out = ws.assemble(&["-t", "sec:2", "--secret", &secret, "ctx"]);
    assert_eq!(
        text(&out).matches("--> Using cache").count(),
        5,
        "{}",
        text(&out)
    );

    // From a variable; and a required secret not given fails before the first step.
    ws.containerfile(&format!(
        "{PRELUDE}RUN --mount=type=secret,id=api,env=API test \"$API\" = from-env\n\
         RUN --mount=type=secret,id=missing,required=true true\n"
    ));
    let out = ws.assemble_vars(
        &["-t", "sec:3", "--secret", "id=api,env=API_TOKEN", "ctx"],
        &[("API_TOKEN", "from-env")],
    );
    let log = text(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("Containerfile:5:") && log.contains("secret missing: not found"),
        "{log}"
    );
    assert!(
        !log.contains("Step 1/"),
        "checked before the first step: {log}"
    );
    let out = ws.assemble_vars(
        &[
            "-t",
            "sec:3",
            "--secret",
            "id=api,env=API_TOKEN",
            "--secret",
            "id=missing,env=API_TOKEN",
            "ctx",
        ],
        &[("API_TOKEN", "from-env")],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// Asserts that no file of the store holds `value`.
pub(crate) fn nowhere_in_the_store(ws: &Ws, value: &str) {
    for e in walkdir::WalkDir::new(ws.path("store")) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let bytes = fs_err::read(e.path()).unwrap();
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{}",
                e.path().display()
            );
        }
    }
}

#[test]
fn issue14_unsupported_mounts_and_flags_fail_before_the_first_step() {
    let Some(ws) = Ws::new() else { return };
    let cases = [
        (
            "RUN --mount=type=ssh git clone git@example.com:x",
            "Containerfile:4:5",
            "type=ssh is not supported",
        ),
        (
            "RUN --mount=type=cahce,target=/x true",
            "Containerfile:4:5",
            "did you mean cache?",
        ),
        (
            "RUN --mount=type=bind,target=/x,id=a true",
            "Containerfile:4:5",
            "unexpected key 'id' for mount type 'bind'",
        ),
        (
            "RUN  --network=bogus true",
            "Containerfile:4:6",
            "invalid network mode \"bogus\"",
        ),
        (
            "RUN --security=insecure true",
            "Containerfile:4:5",
            "--security=insecure is not supported",
        ),
        // COPY --parents/--exclude are carried out (see fidelity.rs); what ADD cannot do,
        // and a pattern that is not one, are refused up front.
        (
            "ADD --keep-git-dir https://example.invalid/x.git /g",
            "Containerfile:4:5",
            "ADD of a git repository is not supported",
        ),
        (
            "COPY --parents --exclude=[z busybox /x/",
            "Containerfile:4:16",
            "--exclude=[z: not a valid pattern",
        ),
        (
            "RUN --mount=from=later,target=/x true\nFROM scratch AS later",
            "Containerfile:4:5",
            "stage needs to be defined before",
        ),
    ];
    for (line, at, message) in cases {
        ws.containerfile(&format!("{PRELUDE}{line}\n"));
        // The first stage: the one with the mistake.
        let out = ws.assemble(&["--target", "0", "ctx"]);
        let log = text(&out);
        assert!(!out.status.success(), "{line}: {log}");
        assert!(log.contains(at) && log.contains(message), "{line}: {log}");
        assert!(!log.contains("Step 1/"), "{line}: {log}");
    }
}

#[test]
fn issue14_run_network_none_and_security_sandbox() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}RUN --network=none --security=sandbox grep -c : /proc/net/dev > /interfaces\n\
         RUN --network=none apk add curl\n"
    ));
    let out = ws.assemble(&["-t", "net:1", "--network", "host", "ctx"]);
    let log = text(&out);
    // Only the loopback interface, even with --network host for the build.
    assert!(!out.status.success());
    let id = crate::build::failed_snapshot(&log);
    assert_eq!(
        sh(&ws, &format!("net:failed@{id}"), "cat /interfaces"),
        "1\n"
    );
    // apk served from outside the sandbox cannot honour it: said, not ignored.
    assert!(log.contains("cannot honour RUN --network=none"), "{log}");
    assert!(log.contains("Containerfile:5: step"), "{log}");
}
