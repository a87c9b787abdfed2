//! The step cache of a native `apk add` keys what the repositories resolve it to: unchanged
//! repositories hit, a re-uploaded package or a new version reruns the step and the next.

use testkit::repo::{PkgSpec, RepoBuilder};

use crate::build::serve_dir;
use crate::support::{PRELUDE, Ws, context_keys, text};

/// (Re)writes the repository served at `<ws>/www/repo` with `pkgs`.
fn publish(ws: &Ws, pkgs: &[PkgSpec]) {
    let dir = ws.path("www/repo");
    let _ = fs_err::remove_dir_all(&dir);
    let mut repo = RepoBuilder::new(&dir);
    for p in pkgs {
        repo.add(p);
    }
    repo.write_index(true);
}

fn liba(content: &str) -> PkgSpec {
    PkgSpec::new("liba", "1.0-r0").file("usr/lib/liba.so.1", content)
}

fn tool(version: &str) -> PkgSpec {
    PkgSpec::new("tool", version)
        .file("usr/share/tool/version", &format!("{version}\n"))
        .depends("liba")
}

fn cache_hits(log: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with("--> Using cache"))
        .count()
}

#[test]
fn an_apk_step_reruns_when_the_repository_changes_what_it_installs() {
    let Some(ws) = Ws::new() else { return };
    context_keys(&ws);
    publish(&ws, &[liba("a1\n"), tool("1.0-r0")]);
    let base = serve_dir(ws.path("www"));
    // Steps: FROM, COPY busybox, RUN --install, COPY keys, RUN apk add, RUN cat.
    ws.containerfile(&format!(
        "{PRELUDE}COPY keys /keys\n\
         RUN apk add --no-cache -X {base}/repo --keys-dir /keys tool\n\
         RUN cat /usr/lib/liba.so.1 /usr/share/tool/version\n"
    ));
    let build = || {
        let out = ws.assemble(&["-t", "t", "ctx"]);
        let log = text(&out);
        assert!(out.status.success(), "{log}");
        log
    };
    let log = build();
    assert!(
        log.contains("--> The repositories resolve this to: liba-1.0-r0, tool-1.0-r0"),
        "{log}"
    );
    assert_eq!(cache_hits(&log), 0, "{log}");

    // Unchanged, and changed only by a package the step does not install: all cached.
    publish(
        &ws,
        &[liba("a1\n"), tool("1.0-r0"), PkgSpec::new("other", "1-r0")],
    );
    let log = build();
    assert_eq!(cache_hits(&log), 5, "{log}");

    // liba re-uploaded with other bytes under the same version: the apk step and the one
    // after it rerun (the three before stay cached).
    publish(&ws, &[liba("a2\n"), tool("1.0-r0")]);
    let log = build();
    assert_eq!(cache_hits(&log), 3, "{log}");
    assert!(log.contains("(1/2) Installing liba (1.0-r0)"), "{log}");
    assert!(log.contains("a2\n1.0-r0"), "{log}");

    // A new version of the unpinned name.
    publish(&ws, &[liba("a2\n"), tool("1.0-r0"), tool("1.1-r0")]);
    let log = build();
    assert_eq!(cache_hits(&log), 3, "{log}");
    assert!(log.contains("tool-1.1-r0"), "{log}");
    assert!(log.contains("a2\n1.1-r0"), "{log}");
    let log = build();
    assert_eq!(cache_hits(&log), 5, "{log}");
}
