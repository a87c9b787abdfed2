//! Issue 14, `apk` in any RUN: in a FROM scratch image that got its shell from a package,
//! apk works in pipelines, `&&` and `;` chains, scripts and the exec form, through the
//! shim, and does what the exact-line fast path does; the real apk-tools reads what it
//! wrote and prints what ours printed. A step that cannot start says why; a failed
//! `apk add` leaves a `:failed` snapshot whose database the real apk audits clean.

use std::path::{Path, PathBuf};
use std::process::Output;

use testkit::repo::{Node, PkgSpec};

use crate::build::failed_snapshot;
use crate::layers::layers;
use crate::support::{BUSYBOX, PRELUDE, Ws, local_repo, text};

/// busybox as Alpine packages it: the binary and `/bin/sh`, its applets linked by its
/// post-install script, which runs before the image has any shell.
fn busybox() -> PkgSpec {
    PkgSpec::new("busybox", "1.36.1-r0")
        .node(
            "bin/busybox",
            Node::File(fs_err::read(BUSYBOX).unwrap(), 0o755),
        )
        .node("bin/sh", Node::Symlink("busybox".into()))
        .script(
            ".post-install",
            "#!/bin/busybox sh\n/bin/busybox --install -s /bin\n",
        )
}

fn hello() -> PkgSpec {
    PkgSpec::new("hello", "1.0-r0")
        .file("usr/bin/hello", "#!/bin/sh\necho hello\n")
        .file("usr/share/doc/hello/README", "hello\n")
        .script(".post-install", "#!/bin/sh\necho hello installed\n")
}

fn packages() -> Vec<PkgSpec> {
    vec![
        busybox(),
        hello(),
        PkgSpec::new("extra", "1.0-r0")
            .depends("hello")
            .file("usr/share/extra/data", "x\n"),
        PkgSpec::new("tool", "2.0-r1").file("usr/bin/tool", "#!/bin/sh\necho tool\n"),
    ]
}

/// The repository and key in the context, and an `etc/apk/repositories` naming it.
pub(crate) fn workspace() -> Option<Ws> {
    let ws = Ws::new()?;
    local_repo(&ws, &packages());
    fs_err::write(ws.path("ctx/repositories"), "/repo\n").unwrap();
    Some(ws)
}

/// The first lines of a FROM scratch image configured for the repository, with busybox
/// installed by the fast path (no shell yet).
pub(crate) const BASE: &str = "FROM scratch\nCOPY repo /repo\nCOPY keys /etc/apk/keys\n\
                    COPY repositories /etc/apk/repositories\nRUN apk add busybox\n";

/// The real apk-tools 2.14 on an exported root, reading the repository from the context.
fn real_apk(ws: &Ws, root: &Path, args: &[&str]) -> Option<Output> {
    let apk = testkit::reference_client("apk")?;
    let out = std::process::Command::new(apk)
        .arg("--root")
        .arg(root)
        .args(["--repositories-file", "/dev/null", "-X"])
        .arg(ws.path("ctx/repo"))
        .args(args)
        .output()
        .unwrap();
    eprintln!("$ apk {}\n{}", args.join(" "), text(&out));
    Some(out)
}

fn export(ws: &Ws, image: &str, dir: &str) -> PathBuf {
    let out = ws.assemble(&[
        "export",
        image,
        &format!("rootfs:{}", ws.path(dir).display()),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    ws.path(dir)
}

#[test]
fn issue14_apk_works_in_pipelines_chains_scripts_and_exec_form() {
    let Some(ws) = workspace() else { return };
    ws.containerfile(&format!(
        "{BASE}\
         RUN apk add hello && rm -rf /var/cache/apk\n\
         RUN apk info -v | cat > /info.txt\n\
         RUN apk add extra; echo after-$?\n\
         RUN printf '#!/bin/sh\\nset -e\\napk add tool\\napk info -e tool\\n' > /s.sh && sh /s.sh && rm /s.sh\n\
         RUN [\"apk\", \"info\", \"-vv\"]\n\
         RUN mkdir /q && apk info -vv > /q/info-vv && apk search -v > /q/search \
             && apk version -v > /q/version && apk info -L hello > /q/contents \
             && apk info -a extra > /q/all && apk search -x hello > /q/exact\n"
    ));
    let out = ws.assemble(&["-t", "any", "--layers", "steps", "-o", "oci:any-oci", "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // busybox's post-install ran in the fast path through its own #! interpreter.
    assert!(
        log.contains("Executing busybox-1.36.1-r0.post-install"),
        "{log}"
    );
    assert!(log.contains("(1/1) Installing hello (1.0-r0)\nExecuting hello-1.0-r0.post-install\nhello installed\nOK: 1 MiB in 2 packages\n"), "{log}");
    assert!(log.contains("after-0"), "{log}");
    assert!(log.contains("(1/1) Installing tool (2.0-r1)"), "{log}");
    assert!(
        log.contains("hello-1.0-r0 - generated package hello\n"),
        "{log}"
    );
    let root = export(&ws, "any", "any-root");
    assert_eq!(
        fs_err::read_to_string(root.join("info.txt")).unwrap(),
        "busybox-1.36.1-r0\nhello-1.0-r0\n"
    );
    assert_eq!(
        fs_err::read_to_string(root.join("etc/apk/world")).unwrap(),
        "busybox\nextra\nhello\ntool\n"
    );
    assert!(!root.join("sbin").exists(), "no /sbin was left behind");
    assert!(
        !root.join("bin/apk").exists(),
        "no mountpoint was left behind"
    );
    // The mountpoints (apk's, and the /proc and /dev bubblewrap makes in a root without
    // them; `--initdb` makes its own in the first step) are in no layer; the pipeline's
    // layer holds its output only.
    let all = layers(&ws, "any-oci");
    for l in all.iter().filter(|l| l.created_by != "RUN apk add busybox") {
        assert!(
            !l.entries.iter().any(|(p, _, _)| p.ends_with("bin/apk")
                || p.trim_end_matches('/') == "proc"
                || p.trim_end_matches('/') == "dev"),
            "{}: {:?}",
            l.created_by,
            l.entries
        );
    }
    let piped = all
        .iter()
        .find(|l| l.created_by.contains("apk info -v | cat"))
        .unwrap();
    let paths: Vec<&str> = piped.entries.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(paths, ["info.txt"]);
    compare_with_real_apk(&ws, &root);
    compare_changes_with_real_apk(&ws);
}

/// apk's lines for changes (`-v` listings, the summary with dirs and files, a deleted name
/// that stays) are the real apk's, run on a copy of the same root.
fn compare_changes_with_real_apk(ws: &Ws) {
    let steps: [&[&str]; 3] = [
        &["del", "-v", "tool"],
        &["del", "hello"],
        &["add", "-v", "tool"],
    ];
    let run: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, args)| format!("apk {} > /q2/{i}", args.join(" ")))
        .collect();
    ws.containerfile(&format!(
        "FROM any\nRUN mkdir /q2 && {}\n",
        run.join(" && ")
    ));
    let out = ws.assemble(&["-t", "changes", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let ours = export(ws, "changes", "changes-root");
    // The real apk writes into its copy: as root only (it chroots for scripts too).
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: comparing changes with the real apk needs root");
        return;
    }
    let copy = export(ws, "any", "real-changes-root");
    for (i, args) in steps.iter().enumerate() {
        let Some(real) = real_apk(ws, &copy, args) else {
            return;
        };
        assert!(real.status.success(), "{}", text(&real));
        let mine = fs_err::read_to_string(ours.join("q2").join(i.to_string())).unwrap();
        assert_eq!(mine, String::from_utf8_lossy(&real.stdout), "apk {args:?}");
    }
}

/// What our apk printed inside the build is what the real apk prints for the same root and
/// repository, and the database it wrote is one the real apk audits clean.
fn compare_with_real_apk(ws: &Ws, root: &Path) {
    let Some(audit) = real_apk(ws, root, &["audit", "--system"]) else {
        return;
    };
    assert!(
        audit.status.success() && audit.stdout.is_empty(),
        "{}",
        text(&audit)
    );
    for (file, args) in [
        ("info-vv", &["info", "-vv"][..]),
        ("search", &["search", "-v"]),
        ("version", &["version", "-v"]),
        ("contents", &["info", "-L", "hello"]),
        ("all", &["info", "-a", "extra"]),
        ("exact", &["search", "-x", "hello"]),
    ] {
        let real = real_apk(ws, root, args).unwrap();
        assert!(real.status.success(), "{}", text(&real));
        let ours = fs_err::read_to_string(root.join("q").join(file)).unwrap();
        assert_eq!(ours, String::from_utf8_lossy(&real.stdout), "apk {args:?}");
    }
}

/// The same `apk add` through the fast path and through the shim: the same database, the
/// same output.
#[test]
fn issue14_the_fast_path_and_the_shim_give_the_same_result() {
    let Some(ws) = workspace() else { return };
    let mut results = Vec::new();
    for (tag, run) in [
        ("fast", "RUN apk add extra\n"),
        ("shim", "RUN apk add extra && true\n"),
    ] {
        ws.containerfile(&format!("{BASE}{run}"));
        let out = ws.assemble(&["-t", tag, "ctx"]);
        let log = text(&out);
        assert!(out.status.success(), "{log}");
        let root = export(&ws, tag, &format!("{tag}-root"));
        let db: Vec<Vec<u8>> = [
            "lib/apk/db/installed",
            "lib/apk/db/scripts.tar",
            "lib/apk/db/triggers",
            "etc/apk/world",
        ]
        .iter()
        .map(|f| fs_err::read(root.join(f)).unwrap())
        .collect();
        results.push((log, db));
    }
    assert_eq!(results[0].1, results[1].1, "the databases differ");
    // The output of the step itself (the busybox step is cached in the second build).
    let lines = |log: &str| -> Vec<String> {
        let from = log.find("Installing hello").unwrap();
        log[from - 6..]
            .lines()
            .filter(|l| l.starts_with('(') || l.starts_with("OK:") || l.starts_with("Executing"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(lines(&results[0].0), lines(&results[1].0));
}

/// A step whose program is not in the image says so and what to do, not bubblewrap's
/// `execvp` message.
#[test]
fn issue14_a_step_that_cannot_start_says_why() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile("FROM scratch\nCOPY busybox /opt/busybox\nRUN echo hi\n");
    let out = ws.assemble(&["-t", "nosh", "ctx"]);
    let log = text(&out);
    assert!(!out.status.success());
    assert!(!log.contains("execvp"), "{log}");
    assert!(
        log.contains("cannot start: the image has no /bin/sh to run the shell form"),
        "{log}"
    );
    assert!(log.contains("exec form"), "{log}");
    ws.containerfile("FROM scratch\nCOPY busybox /opt/busybox\nRUN [\"busybox\", \"true\"]\n");
    let out = ws.assemble(&["-t", "noprog", "ctx"]);
    let log = text(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("`busybox` is in none of the image's PATH directories"),
        "{log}"
    );
    assert!(log.contains("full path"), "{log}");
}

/// A failed `apk add`, through the shim or the fast path, leaves a `:failed` snapshot
/// whose database records what was installed and nothing of the failed package, which
/// the real apk audits clean; a failing install script is apk's error, its package
/// recorded with the broken-script flag.
#[test]
fn issue14_a_failed_apk_add_leaves_a_consistent_database() {
    let Some(ws) = workspace() else { return };
    let mut pkgs = packages();
    pkgs.push(PkgSpec::new("good", "1-r0").file("usr/share/good/a", "a\n"));
    pkgs.push(
        PkgSpec::new("bad", "1-r0")
            .depends("good")
            .file("usr/bin/bad", "#!/bin/sh\n")
            .file("usr/share/bad/data", &"z".repeat(100_000)),
    );
    pkgs.push(
        PkgSpec::new("broken", "1-r0")
            .file("usr/bin/broken", "#!/bin/sh\n")
            .script(".post-install", "#!/bin/sh\nexit 3\n"),
    );
    local_repo(&ws, &pkgs);
    // `bad`'s data stream breaks near its end, once files were written.
    let apk = ws.path("ctx/repo/x86_64/bad-1-r0.apk");
    let mut bytes = fs_err::read(&apk).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0xff;
    fs_err::write(&apk, bytes).unwrap();
    for (tag, run) in [
        ("viashim", "RUN apk add bad && echo unreachable\n"),
        ("viafast", "RUN apk add bad\n"),
    ] {
        ws.containerfile(&format!("{BASE}{run}"));
        let out = ws.assemble(&["-t", tag, "ctx"]);
        let log = text(&out);
        assert!(!out.status.success(), "{log}");
        assert!(!log.contains("\nunreachable\n"), "{log}");
        assert!(log.contains("1 error; 1 MiB in 2 packages"), "{log}");
        let id = failed_snapshot(&log);
        let root = export(&ws, &format!("{tag}:failed@{id}"), &format!("{tag}-failed"));
        assert!(root.join("usr/share/good/a").is_file());
        assert!(!root.join("usr/bin/bad").exists() && !root.join("usr/share/bad").exists());
        let installed = fs_err::read_to_string(root.join("lib/apk/db/installed")).unwrap();
        assert!(installed.contains("P:good\n") && !installed.contains("P:bad\n"));
        if let Some(audit) = real_apk(&ws, &root, &["audit", "--system"]) {
            assert!(
                audit.status.success() && audit.stdout.is_empty(),
                "{}",
                text(&audit)
            );
        }
    }
    ws.containerfile(&format!("{BASE}RUN apk add broken\n"));
    let out = ws.assemble(&["-t", "broken", "ctx"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("ERROR: broken-1-r0.post-install: script exited with error 3\n1 error; 1 MiB in 2 packages"),
        "{log}"
    );
    let id = failed_snapshot(&log);
    let root = export(&ws, &format!("broken:failed@{id}"), "broken-failed");
    if let Some(info) = real_apk(&ws, &root, &["info", "-e", "broken"]) {
        assert_eq!(String::from_utf8_lossy(&info.stdout), "broken\n");
    }
}

/// An option we do not carry out is an error naming it; an image with an apk of its own
/// keeps using it.
#[test]
fn issue14_unsupported_options_are_named_and_an_own_apk_is_kept() {
    let Some(ws) = workspace() else { return };
    ws.containerfile(&format!(
        "{BASE}RUN apk add --force-overwrite hello | cat; exit 0\nRUN apk add --simulate hello\n"
    ));
    let out = ws.assemble(&["-t", "unsup", "ctx"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("option --force-overwrite is not supported"),
        "{log}"
    );
    assert!(log.contains("option --simulate is not supported"), "{log}");
    fs_err::create_dir_all(ws.path("ctx/own")).unwrap();
    fs_err::write(ws.path("ctx/own/apk"), "#!/bin/sh\necho own apk \"$@\"\n").unwrap();
    ws.containerfile(&format!(
        "{BASE}COPY own/apk /sbin/apk\nRUN chmod 755 /sbin/apk && apk info | cat\n"
    ));
    let out = ws.assemble(&["-t", "own", "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("own apk info"), "{log}");
}

/// bubblewrap's /proc and /dev mountpoints in a root without them, and apk's, are in no
/// layer.
#[test]
fn issue14_sandbox_mountpoints_stay_out_of_layers() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!("{PRELUDE}RUN touch /made\n"));
    let out = ws.assemble(&["-t", "mp", "--layers", "steps", "-o", "oci:mp-oci", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = layers(&ws, "mp-oci");
    let paths = |l: &crate::layers::Layer| -> Vec<String> {
        l.entries.iter().map(|(p, _, _)| p.clone()).collect()
    };
    let last = all.last().unwrap();
    assert_eq!(paths(last), ["made"]);
    for l in &all {
        assert!(
            !paths(l)
                .iter()
                .any(|p| ["proc", "dev", "sbin", "bin/apk"].contains(&p.trim_end_matches('/'))),
            "{}: {:?}",
            l.created_by,
            paths(l)
        );
    }
}

/// Rootless, apk through the shim works too (the sandbox maps one id; owners go to the
/// layer's owner table).
#[test]
fn issue14_apk_in_a_pipeline_works_rootless() {
    let Some(ws) = workspace() else { return };
    ws.containerfile(&format!("{BASE}RUN apk add hello | cat\n"));
    let Some(out) = ws.assemble_rootless(&["-t", "rl", "ctx"]) else {
        return;
    };
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("(1/1) Installing hello (1.0-r0)\nExecuting hello-1.0-r0.post-install\nhello installed\n"), "{log}");
}
