//! RUN steps and install scripts that chown: as root the sandbox maps the image's ids, so
//! `adduser`, `chown -R app /app` and a `.post-install` chown work and their owners reach
//! the layers; rootless, a chown to another id fails with a message saying what to do.

use testkit::repo::PkgSpec;

use crate::layers::{layers, owners_of};
use crate::support::{PRELUDE, Ws, local_repo, text};

/// What busybox `adduser -D app` does (Debian's static busybox has no adduser applet).
const ADDUSER: &str = "RUN mkdir -p /etc /home/app \
     && printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000::/home/app:/bin/sh\\n' > /etc/passwd \
     && printf 'root:x:0:\\napp:x:1000:\\n' > /etc/group && chown app:app /home/app\n";

fn as_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: mapping the image's ids needs assemble to run as root");
    false
}

#[test]
fn a_run_may_chown_and_the_owners_reach_the_layers() {
    let Some(ws) = Ws::new() else { return };
    if !as_root() {
        return;
    }
    ws.containerfile(&format!(
        "{PRELUDE}{ADDUSER}\
         RUN mkdir -p /app/sub && echo data > /app/sub/f && echo keep > /app/f \
             && chown -R app:app /app && chmod 750 /app\n\
         USER app\n\
         RUN echo hi > /app/written && id -u\n\
         USER root\n\
         RUN chown root /app/f && ls -ln / /app /home\n"
    ));
    let out = ws.assemble(&["-t", "own", "--layers", "steps", "-o", "oci:own", "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("Invalid argument"), "{log}");
    // Root inside sees the image's owners and modes (ls -ln columns squeezed).
    let squeezed: Vec<String> = log
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let has = |prefix: &str, name: &str| {
        squeezed
            .iter()
            .any(|l| l.starts_with(prefix) && l.ends_with(&format!(" {name}")))
    };
    assert!(has("drwxr-x--- 3 1000 1000", "app"), "{log}");
    assert!(has("-rw-r--r-- 1 0 1000", "f"), "{log}");
    assert!(has("-rw-r--r-- 1 1000 1000", "written"), "{log}");

    let ls = layers(&ws, "own");
    // adduser's home, made and chowned inside the sandbox.
    assert_eq!(owners_of(&ls, "home/app"), vec![(1000, 1000)]);
    // The chown -R step, then the root step giving f back to root (group kept).
    assert!(owners_of(&ls, "app").iter().all(|o| *o == (1000, 1000)));
    assert_eq!(owners_of(&ls, "app/sub/f"), vec![(1000, 1000)]);
    assert_eq!(owners_of(&ls, "app/f"), vec![(1000, 1000), (0, 1000)]);
    assert_eq!(owners_of(&ls, "app/written"), vec![(1000, 1000)]);
    assert_eq!(owners_of(&ls, "etc/passwd"), vec![(0, 0)]);

    // A rebuild from the cache, then one more step that writes as app into /app.
    ws.containerfile(&format!(
        "{PRELUDE}{ADDUSER}\
         RUN mkdir -p /app/sub && echo data > /app/sub/f && echo keep > /app/f \
             && chown -R app:app /app && chmod 750 /app\n\
         USER app\n\
         RUN echo hi > /app/written && id -u\n\
         USER root\n\
         RUN chown root /app/f && ls -ln / /app /home\n\
         USER app\n\
         RUN echo more >> /app/written && echo new > /app/sub/new\n"
    ));
    let out = ws.assemble(&["-t", "own", "--layers", "steps", "-o", "oci:own2", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--> Using cache"));
    let ls = layers(&ws, "own2");
    assert_eq!(owners_of(&ls, "app/written"), vec![(1000, 1000); 2]);
    assert_eq!(owners_of(&ls, "app/sub/new"), vec![(1000, 1000)]);

    // `assemble run` as the image's USER (app) writes into /app.
    let out = ws.assemble(&["run", "own", "sh", "-c", "echo s > /app/s && id -u"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1000"));
}

#[test]
fn a_root_session_of_assemble_run_sees_and_commits_owners() {
    let Some(ws) = Ws::new() else { return };
    if !as_root() {
        return;
    }
    ws.containerfile(&format!(
        "{PRELUDE}{ADDUSER}RUN mkdir /app && chown app:app /app\n"
    ));
    let out = ws.assemble(&["-t", "r", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ws.assemble(&[
        "run",
        "--commit",
        "r:session",
        "r",
        "sh",
        "-c",
        "ls -ldn /app && echo x > /app/new && chown app /app/new",
    ]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("1000"),
        "root session sees /app as app's: {log}"
    );
    let out = ws.assemble(&["export", "--layers", "steps", "r:session", "oci:r"]);
    assert!(out.status.success(), "{}", text(&out));
    let last = layers(&ws, "r").pop().unwrap();
    let own = |p: &str| {
        last.entries
            .iter()
            .find(|(n, _, _)| n == p)
            .map(|e| (e.1, e.2))
    };
    assert_eq!(own("app/new"), Some((1000, 0)));
    assert_eq!(own("app"), Some((1000, 1000)));
}

#[test]
fn a_post_install_script_may_chown() {
    let Some(ws) = Ws::new() else { return };
    if !as_root() {
        return;
    }
    local_repo(
        &ws,
        &[PkgSpec::new("svc", "1.0-r0")
            .file("var/lib/svc/data", "d\n")
            .file("usr/bin/svc", "#!/bin/sh\n")
            .script(
                ".post-install",
                "#!/bin/sh\nchown -R 1000:1000 /var/lib/svc && chmod 700 /var/lib/svc\n",
            )],
    );
    ws.containerfile(&format!(
        "{PRELUDE}COPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys svc\n\
         RUN ls -ldn /var/lib/svc\n"
    ));
    let out = ws.assemble(&["-t", "svc", "--layers", "steps", "-o", "oci:svc", "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Executing svc-1.0-r0.post-install\nOK: "),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.starts_with("drwx------")
            && l.contains("1000")
            && l.ends_with("/var/lib/svc")),
        "{log}"
    );
    let ls = layers(&ws, "svc");
    assert_eq!(owners_of(&ls, "var/lib/svc/data"), vec![(1000, 1000)]);
    assert_eq!(owners_of(&ls, "var/lib/svc"), vec![(1000, 1000)]);
    assert_eq!(owners_of(&ls, "usr/bin/svc"), vec![(0, 0)]);
}

#[test]
fn a_rootless_chown_says_what_to_do() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir /app && chown 1000:1000 /app\n"
    ));
    let Some(out) = ws.assemble_rootless(&["-t", "rl", "ctx"]) else {
        return;
    };
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("run assemble as root"), "{log}");
}

#[test]
fn a_rootless_post_install_chown_says_what_to_do() {
    let Some(ws) = Ws::new() else { return };
    local_repo(
        &ws,
        &[PkgSpec::new("svc", "1.0-r0")
            .file("var/lib/svc/data", "d\n")
            .script(
                ".post-install",
                "#!/bin/sh\nchown -R 1000:1000 /var/lib/svc\n",
            )],
    );
    ws.containerfile(&format!(
        "{PRELUDE}COPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys svc\n"
    ));
    let Some(out) = ws.assemble_rootless(&["-t", "rl", "ctx"]) else {
        return;
    };
    let log = text(&out);
    assert!(log.contains("run assemble as root"), "{log}");
}
