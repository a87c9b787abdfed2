//! Bigger bases (issue 14): a stage's base is extracted once into the store and each build
//! on it gets an overlay over it; the snapshots are those of a build that extracts the base
//! into its root (`ASSEMBLE_NO_OVERLAY=1`), byte for byte, as root and rootless.

use std::path::Path;
use std::process::Output;

use crate::build::failed_snapshot;
use crate::layers::{layers, owners_of};
use crate::support::{PRELUDE, Ws, text};

/// A base with deep directories, a hard link, a symlink and files owned by a user, built
/// and tagged `base`: its snapshot id.
fn built_base(ws: &Ws) -> String {
    base(ws);
    let out = ws.assemble(&["-t", "base", "ctx"]);
    succeeded(&out);
    snapshots(&out).pop().unwrap()
}

/// The context of [`built_base`].
fn base(ws: &Ws) {
    fs_err::write(ws.path("ctx/owned"), "owned by 1000\n").unwrap();
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir -p /etc/a/b /srv/tree/x /srv/old /var/lib/app && \
         echo deep > /etc/a/b/f && echo keep > /etc/keep && echo gone > /etc/gone && \
         echo t > /srv/tree/x/t && echo o > /srv/old/o && echo l > /etc/linked && \
         ln /etc/linked /etc/linked2 && ln -s a/b/f /etc/sym && echo f > /srv/file\n\
         COPY --chown=1000:1000 owned /var/lib/app/owned\n"
    ));
}

/// A step changing the base every way overlayfs has to account for.
const CHANGES: &str = "FROM base\n\
     RUN echo more >> /etc/a/b/f && rm /etc/gone && rm -rf /srv/tree && mkdir -p /srv/tree && \
     echo new > /srv/tree/n && rm /srv/file && mkdir /srv/file && echo inner > /srv/file/i && \
     rm -rf /srv/old && echo was-a-dir > /srv/old && chmod 600 /etc/keep && \
     ln /etc/keep /etc/keep2 && mv /etc/a /etc/moved && \
     echo app >> /var/lib/app/owned && chmod 755 /etc && cat /etc/linked > /dev/null\n\
     COPY owned /etc/copied\n";

/// The snapshot ids a build printed, in order, and the id it built.
fn snapshots(out: &Output) -> Vec<String> {
    text(out)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("--> Snapshot created: @")
                .or_else(|| l.strip_prefix("Built @"))
        })
        .map(str::to_string)
        .collect()
}

fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    text(out)
}

fn extracted_bases(ws: &Ws) -> Vec<String> {
    let Ok(dir) = fs_err::read_dir(ws.path("store/bases")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = dir
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn issue14_a_base_is_extracted_once_and_builds_on_it_match_extracting_builds() {
    let Some(ws) = Ws::new() else { return };
    let base_id = built_base(&ws);
    fs_err::write(ws.path("ctx/Changes"), CHANGES).unwrap();
    let args = [
        "-t",
        "top",
        "-f",
        "ctx/Changes",
        "--layers",
        "steps",
        "-o",
        "oci:top",
        "ctx",
    ];
    let first = ws.assemble(&args);
    let log = succeeded(&first);
    if log.contains("note: overlayfs is unavailable") {
        eprintln!("SKIP: overlayfs cannot be mounted here:\n{log}");
        return;
    }
    assert!(
        log.contains(&format!("--> Extracting base @{base_id} into the store")),
        "{log}"
    );
    assert_eq!(extracted_bases(&ws), std::slice::from_ref(&base_id));

    // A second build on the base shares it; a build extracting the base into its root gives
    // the same snapshots, so the same layers.
    let again = ws.assemble(&["--no-cache", "-t", "top2", "-f", "ctx/Changes", "ctx"]);
    assert!(!succeeded(&again).contains("Extracting base"));
    let extracting = ws.assemble_vars(
        &["--no-cache", "-t", "top3", "-f", "ctx/Changes", "ctx"],
        &[("ASSEMBLE_NO_OVERLAY", "1")],
    );
    let note = "note: overlayfs is unavailable (ASSEMBLE_NO_OVERLAY is set); extracting the \
                base into the build root instead";
    assert_eq!(succeeded(&extracting).matches(note).count(), 1);
    assert_eq!(snapshots(&first), snapshots(&again));
    assert_eq!(snapshots(&first), snapshots(&extracting));

    // What the step's layer holds: its changes, not the directories overlayfs copied up
    // (`/etc/a/b`, `/var/lib/app`), and the owner the base gave the file it appended to.
    let step = layers(&ws, "top").into_iter().rev().nth(1).unwrap();
    let paths: Vec<&str> = step.entries.iter().map(|(p, _, _)| p.as_str()).collect();
    for p in [
        "etc/moved/b/f",
        "etc/.wh.gone",
        "srv/tree/n",
        "srv/file/i",
        "etc/keep2",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    for p in ["var/lib/app/", "etc/linked", "srv/"] {
        assert!(!paths.contains(&p), "{p} in {paths:?}");
    }
    assert_eq!(
        owners_of(&[step], "var/lib/app/owned"),
        [(1000, 1000)],
        "the base's owner"
    );
}

#[test]
fn issue14_rootless_builds_on_a_kept_base_match_extracting_builds() {
    let Some(ws) = Ws::new() else { return };
    base(&ws);
    fs_err::write(ws.path("ctx/Changes"), CHANGES).unwrap();
    let Some(out) = ws.assemble_rootless(&["-t", "base", "ctx"]) else {
        return;
    };
    succeeded(&out);
    let Some(kept) = ws.assemble_rootless(&["-t", "top", "-f", "ctx/Changes", "ctx"]) else {
        return;
    };
    let log = succeeded(&kept);
    if log.contains("note: overlayfs is unavailable") {
        eprintln!("SKIP: overlayfs cannot be mounted rootless here:\n{log}");
        return;
    }
    assert!(log.contains("--> Extracting base @"), "{log}");
    let extracting = ws
        .assemble_rootless_vars(
            &["--no-cache", "-t", "top2", "-f", "ctx/Changes", "ctx"],
            &[("ASSEMBLE_NO_OVERLAY", "1")],
        )
        .unwrap();
    assert!(succeeded(&extracting).contains("note: overlayfs is unavailable"));
    assert_eq!(snapshots(&kept), snapshots(&extracting));
    // The overlay's work directory (mode 0) went with the build root.
    let tmp: Vec<_> = fs_err::read_dir(ws.path("store/tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn issue14_a_failed_step_on_a_kept_base_keeps_its_snapshot_and_the_rebuild_resumes() {
    let Some(ws) = Ws::new() else { return };
    built_base(&ws);
    let failing = "FROM base\nRUN echo one > /one\nRUN echo partial >> /etc/keep && exit 3\n";
    fs_err::write(ws.path("ctx/Fails"), failing).unwrap();
    let out = ws.assemble(&["-t", "app", "-f", "ctx/Fails", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    if log.contains("note: overlayfs is unavailable") {
        eprintln!("SKIP: overlayfs cannot be mounted here:\n{log}");
        return;
    }
    let id = failed_snapshot(&log);
    let shown = ws.assemble(&["run", &format!("app:failed@{id}"), "cat", "/etc/keep"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout), "keep\npartial\n");
    // The extracting build fails with the same snapshot.
    let out = ws.assemble_vars(
        &["--no-cache", "-t", "app", "-f", "ctx/Fails", "ctx"],
        &[("ASSEMBLE_NO_OVERLAY", "1")],
    );
    assert_eq!(failed_snapshot(&text(&out)), id);

    fs_err::write(
        ws.path("ctx/Fails"),
        failing.replace(" && exit 3", "").as_bytes(),
    )
    .unwrap();
    let out = ws.assemble(&["-t", "app", "-f", "ctx/Fails", "ctx"]);
    assert!(succeeded(&out).contains("--> Using cache"));
}

#[test]
fn issue14_prune_removes_the_bases_no_image_uses_and_half_extracted_ones_are_redone() {
    let Some(ws) = Ws::new() else { return };
    let base_id = built_base(&ws);
    fs_err::write(ws.path("ctx/Step"), "FROM base\nRUN echo s > /s\n").unwrap();
    let first = snapshots(&ws.assemble(&["-t", "top", "-f", "ctx/Step", "ctx"]));
    let kept = ws.path("store/bases").join(&base_id);
    if !kept.is_dir() {
        eprintln!("SKIP: overlayfs cannot be mounted here (no base was kept)");
        return;
    }

    // A base without its owner table is not trusted: extracted again.
    fs_err::remove_file(kept.join("owners.json")).unwrap();
    fs_err::remove_file(kept.join("rootfs/etc/keep")).unwrap();
    let out = ws.assemble(&["--no-cache", "-t", "top", "-f", "ctx/Step", "ctx"]);
    assert!(succeeded(&out).contains("--> Extracting base"));
    assert_eq!(snapshots(&out), first);
    assert!(kept.join("rootfs/etc/keep").is_file());

    // Still used by `top` and `base`: kept; then no tag reaches it: removed.
    assert!(!text(&ws.assemble(&["prune"])).contains("Deleted extracted base"));
    assert!(kept.is_dir());
    succeeded(&ws.assemble(&["rmi", "top", "base"]));
    let out = ws.assemble(&["prune"]);
    assert!(
        succeeded(&out).contains(&format!("Deleted extracted base @{base_id}")),
        "{}",
        text(&out)
    );
    assert!(extracted_bases(&ws).is_empty());
    assert!(!Path::new(&kept).exists());
}

#[test]
fn issue14_a_root_chown_on_a_kept_base_is_recorded_as_on_an_extracted_one() {
    let Some(ws) = Ws::new() else { return };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: the sandbox maps the image's ids only as root");
        return;
    }
    built_base(&ws);
    fs_err::write(
        ws.path("ctx/Chown"),
        "FROM base\nRUN chown 1234:1234 /etc/keep && echo app >> /var/lib/app/owned\n",
    )
    .unwrap();
    let out = ws.assemble(&["-t", "ch", "-f", "ctx/Chown", "-o", "oci:ch", "ctx"]);
    succeeded(&out);
    let ls = layers(&ws, "ch");
    assert_eq!(owners_of(&ls, "etc/keep").pop(), Some((1234, 1234)));
    assert_eq!(
        owners_of(&ls, "var/lib/app/owned").pop(),
        Some((1000, 1000))
    );
    let extracting = ws.assemble_vars(
        &["--no-cache", "-t", "ch2", "-f", "ctx/Chown", "ctx"],
        &[("ASSEMBLE_NO_OVERLAY", "1")],
    );
    assert_eq!(snapshots(&out), snapshots(&extracting));
}

/// Steps with every kind of mount, their mountpoints below the base's directories (made in
/// the upper directory for the step and taken away after it), a secret, and apk through the
/// shim (its `/bin/apk` placeholder, and the installs it carries out from outside the
/// sandbox, through the overlay) and the fast path.
const MOUNTS: &str = "FROM mbase\n\
     RUN --mount=type=bind,source=src,target=/srv/data/ctx cat /srv/data/ctx/a > /bound\n\
     RUN --mount=type=cache,target=/srv/cache/c echo x > /srv/cache/c/n\n\
     RUN --mount=type=tmpfs,target=/etc/tmp echo t > /etc/tmp/x\n\
     RUN --mount=type=secret,id=tok,target=/etc/tok --mount=type=secret,id=tok \
     cat /etc/tok /run/secrets/tok > /dev/null\n\
     RUN apk add hello | cat\n\
     RUN apk add tool\n";

const SECRET: &str = "s3cr3t-on-the-overlay";

/// Runs `assemble ARGS` with more variables, as some user; `None` when it cannot.
type Assemble<'a> = &'a dyn Fn(&[&str], &[(&str, &str)]) -> Option<Output>;

/// Builds [`MOUNTS`] on a kept base with `assemble` (as root or rootless), then again
/// extracting the base; checks what the layers hold and returns the log.
fn mounts_on_a_kept_base(ws: &Ws, assemble: Assemble<'_>) -> Option<String> {
    fs_err::write(ws.path("token.txt"), SECRET).unwrap();
    fs_err::create_dir_all(ws.path("ctx/src")).unwrap();
    fs_err::write(ws.path("ctx/src/a"), "bound\n").unwrap();
    fs_err::write(ws.path("ctx/Mounts"), MOUNTS).unwrap();
    ws.containerfile(&format!(
        "{}RUN mkdir -p /srv/data /run && echo d > /srv/data/f\n",
        crate::apkshim::BASE
    ));
    succeeded(&assemble(&["-t", "mbase", "ctx"], &[])?);
    let secret = format!("id=tok,src={}", ws.path("token.txt").display());
    let args = [
        "--secret",
        &secret,
        "-t",
        "m",
        "--layers",
        "steps",
        "-o",
        "oci:m",
        "-f",
        "ctx/Mounts",
        "ctx",
    ];
    let kept = assemble(&args, &[])?;
    let log = succeeded(&kept);
    if log.contains("note: overlayfs is unavailable") {
        eprintln!("SKIP: overlayfs cannot be mounted here:\n{log}");
        return None;
    }
    assert!(log.contains("--> Extracting base @"), "{log}");
    let extracting = assemble(
        &[
            "--no-cache",
            "--secret",
            &secret,
            "-t",
            "m2",
            "-f",
            "ctx/Mounts",
            "ctx",
        ],
        &[("ASSEMBLE_NO_OVERLAY", "1")],
    )?;
    assert!(succeeded(&extracting).contains("note: overlayfs is unavailable"));
    assert_eq!(snapshots(&kept), snapshots(&extracting));

    no_mountpoint_in_layers(ws, "m");
    // The secret's bytes are nowhere in the store (layers, bases, logs) once built.
    crate::mounts::nowhere_in_the_store(ws, SECRET);
    Some(log)
}

/// The mount steps' layers of the image in the OCI layout `dir` hold what the commands
/// wrote outside their mounts, and no mountpoint, no directory overlayfs copied up to hold
/// one, no whiteout.
fn no_mountpoint_in_layers(ws: &Ws, dir: &str) {
    let all = layers(ws, dir);
    let steps: Vec<_> = all
        .iter()
        .filter(|l| MOUNTS.contains(&l.created_by) && l.created_by.starts_with("RUN"))
        .collect();
    assert!(
        steps.len() >= 3,
        "{:?}",
        all.iter().map(|l| &l.created_by).collect::<Vec<_>>()
    );
    for l in &steps {
        let paths: Vec<&str> = l.entries.iter().map(|(p, _, _)| p.as_str()).collect();
        let stray = paths.iter().find(|p| {
            p.contains(".wh.")
                || [
                    "srv",
                    "etc",
                    "run",
                    "bin",
                    "sbin",
                    "bin/apk",
                    "etc/tok",
                    "run/secrets",
                ]
                .contains(&p.trim_end_matches('/'))
                || p.starts_with("srv/")
                || p.starts_with("etc/tmp")
        });
        assert!(stray.is_none(), "{}: {paths:?}", l.created_by);
        if l.created_by.contains("type=bind") {
            assert_eq!(paths, ["bound"]);
        }
        if l.created_by.contains("add hello") {
            assert!(paths.contains(&"usr/bin/hello"), "{paths:?}");
        }
    }
}

#[test]
fn issue14_mounts_and_the_apk_shim_on_a_kept_base_leave_what_an_extracting_build_leaves() {
    let Some(ws) = crate::apkshim::workspace() else {
        return;
    };
    mounts_on_a_kept_base(&ws, &|args, vars| Some(ws.assemble_vars(args, vars)));
}

#[test]
fn issue14_rootless_mounts_and_the_apk_shim_on_a_kept_base() {
    let Some(ws) = crate::apkshim::workspace() else {
        return;
    };
    mounts_on_a_kept_base(&ws, &|args, vars| ws.assemble_rootless_vars(args, vars));
}
