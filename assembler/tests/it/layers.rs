//! What the layers hold: owners of what a RUN under USER touched, and `--layers=packages`
//! giving images built from the same packages the same package layers.

use std::io::Read as _;

use testkit::repo::PkgSpec;

use crate::support::{PRELUDE, Ws, local_repo, text};

/// One layer of an OCI layout: its digest, its history line and its entries
/// `(path, uid, gid)`.
pub(crate) struct Layer {
    pub(crate) digest: String,
    pub(crate) created_by: String,
    pub(crate) entries: Vec<(String, u64, u64)>,
}

fn blob(ws: &Ws, dir: &str, digest: &str) -> Vec<u8> {
    fs_err::read(
        ws.path(dir)
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

pub(crate) fn layers(ws: &Ws, dir: &str) -> Vec<Layer> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(ws.path(dir).join("index.json")).unwrap()).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&blob(
        ws,
        dir,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&blob(ws, dir, m["config"]["digest"].as_str().unwrap())).unwrap();
    let history: Vec<String> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    let descs = m["layers"].as_array().unwrap();
    assert_eq!(descs.len(), history.len(), "one history entry per layer");
    descs
        .iter()
        .zip(history)
        .map(|(d, created_by)| {
            let digest = d["digest"].as_str().unwrap().to_string();
            let gz = blob(ws, dir, &digest);
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut tar)
                .unwrap();
            let mut a = tar::Archive::new(&tar[..]);
            let entries = a
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let h = e.header();
                    (
                        e.path().unwrap().display().to_string(),
                        h.uid().unwrap(),
                        h.gid().unwrap(),
                    )
                })
                .collect();
            Layer {
                digest,
                created_by,
                entries,
            }
        })
        .collect()
}

/// Every `(uid, gid)` recorded for `path` across the layers.
pub(crate) fn owners_of(layers: &[Layer], path: &str) -> Vec<(u64, u64)> {
    layers
        .iter()
        .flat_map(|l| &l.entries)
        .filter(|(p, _, _)| p.trim_end_matches('/') == path)
        .map(|(_, u, g)| (*u, *g))
        .collect()
}

#[test]
fn files_a_run_under_user_touches_keep_the_owner_the_step_gave_them() {
    let Some(ws) = Ws::new() else { return };
    fs_err::write(ws.path("ctx/one.conf"), "1\n").unwrap();
    let steps = format!(
        "{PRELUDE}RUN mkdir -m 1777 /tmp\n\
         COPY --chown=1000:1000 one.conf /tmp/copied\n\
         USER 1000:1000\n\
         RUN echo a > /tmp/f && mkdir /tmp/d\n\
         RUN echo b >> /tmp/f && echo c > /tmp/d/g && echo more >> /tmp/copied\n\
         USER 0:0\n\
         RUN echo d >> /tmp/f && echo e > /tmp/byroot && echo root >> /tmp/copied\n"
    );
    ws.containerfile(&steps);
    let out = ws.assemble(&["-t", "own", "--layers", "steps", "-o", "oci:own", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let ls = layers(&ws, "own");
    // Written three times (by 1000, 1000, then root): 1000's file each time, as in Docker.
    assert_eq!(owners_of(&ls, "tmp/f"), vec![(1000, 1000); 3]);
    assert_eq!(owners_of(&ls, "tmp/copied"), vec![(1000, 1000); 3]);
    assert_eq!(owners_of(&ls, "tmp/d/g"), vec![(1000, 1000)]);
    assert!(owners_of(&ls, "tmp/d").iter().all(|o| *o == (1000, 1000)));
    assert_eq!(owners_of(&ls, "tmp/byroot"), vec![(0, 0)]);
    assert!(owners_of(&ls, "tmp").iter().all(|o| *o == (0, 0)));

    // The same after a rebuild whose first steps come from the cache, and in a session
    // committed with `assemble run --commit`.
    ws.containerfile(&format!("{steps}RUN echo z >> /tmp/f\n"));
    let out = ws.assemble(&["-t", "own", "--layers", "steps", "-o", "oci:own2", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--> Using cache"));
    assert_eq!(
        owners_of(&layers(&ws, "own2"), "tmp/f"),
        vec![(1000, 1000); 4]
    );
    let c = ws.assemble(&[
        "run",
        "--commit",
        "own:session",
        "own",
        "sh",
        "-c",
        "echo y >> /tmp/f; echo new > /tmp/d/new",
    ]);
    assert!(c.status.success(), "{}", text(&c));
    let out = ws.assemble(&["export", "--layers", "steps", "own:session", "oci:own3"]);
    assert!(out.status.success(), "{}", text(&out));
    let last = layers(&ws, "own3").pop().unwrap();
    let own = |p: &str| {
        last.entries
            .iter()
            .find(|(n, _, _)| n == p)
            .map(|(_, u, g)| (*u, *g))
    };
    assert_eq!(own("tmp/f"), Some((1000, 1000)));
    // New in a session of USER 0: root's.
    assert_eq!(own("tmp/d/new"), Some((0, 0)));

    // Unprivileged, where nothing on disk can carry these owners: the very same layers.
    ws.containerfile(&steps);
    let Some(out) = ws.assemble_rootless(&[
        "--no-cache",
        "-t",
        "own-rootless",
        "--layers",
        "steps",
        "-o",
        "oci:own-rootless",
        "ctx",
    ]) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out));
    let digests = |ls: Vec<Layer>| ls.into_iter().map(|l| l.digest).collect::<Vec<_>>();
    assert_eq!(
        digests(layers(&ws, "own-rootless")),
        digests(layers(&ws, "own"))
    );
}

/// A repository with two packages (one depending on the other) in `ctx/repo`, and the
/// fixture key in `ctx/keys`.
fn repo(ws: &Ws) {
    let mut tool = PkgSpec::new("tool", "2.0-r0")
        .file("usr/bin/tool", "#!/bin/sh\necho tool\n")
        .node("var/lib/tool", testkit::repo::Node::Dir(0o750))
        .file("var/lib/tool/state", "s\n")
        .depends("liba");
    tool.owners = vec![
        ("var/lib/tool".into(), "nobody".into(), "nogroup".into()),
        (
            "var/lib/tool/state".into(),
            "nobody".into(),
            "nogroup".into(),
        ),
    ];
    local_repo(
        ws,
        &[
            PkgSpec::new("liba", "1.0-r0").file("usr/lib/liba.so.1", "library a\n"),
            tool,
        ],
    );
}

#[test]
fn images_built_from_the_same_packages_share_the_package_layers() {
    let Some(ws) = Ws::new() else { return };
    repo(&ws);
    fs_err::write(ws.path("ctx/a.txt"), "app a\n").unwrap();
    fs_err::write(ws.path("ctx/b.txt"), "app b\n").unwrap();
    let install = "COPY repo /repo\nCOPY keys /keys\n\
                   RUN apk add --no-cache -X /repo --keys-dir /keys tool\n";
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir -p /etc && echo 'nobody:x:65534:65534::/:/bin/sh' > /etc/passwd && echo 'nogroup:x:65534:' > /etc/group\n{install}COPY a.txt /app/\n"
    ));
    let out = ws.assemble(&["-t", "a", "--layers", "packages:10", "-o", "oci:a", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    // A different image: other steps around the same packages.
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir -p /etc && echo 'nobody:x:65534:65534::/:/bin/sh' > /etc/passwd && echo 'nogroup:x:65534:' > /etc/group\nRUN echo other > /other\n{install}COPY b.txt /app/\nRUN echo b > /b\n"
    ));
    let out = ws.assemble(&["-t", "b", "--layers", "packages:10", "-o", "oci:b", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let (a, b) = (layers(&ws, "a"), layers(&ws, "b"));
    let find = |ls: &[Layer], by: &str| -> String {
        ls.iter()
            .find(|l| l.created_by == by)
            .unwrap_or_else(|| {
                panic!(
                    "no layer `{by}` in {:?}",
                    ls.iter().map(|l| &l.created_by).collect::<Vec<_>>()
                )
            })
            .digest
            .clone()
    };
    for pkg in ["apk package liba", "apk package tool"] {
        assert_eq!(find(&a, pkg), find(&b, pkg), "{pkg} differs");
    }
    assert_eq!(
        find(&a, "COPY busybox /bin/busybox"),
        find(&b, "COPY busybox /bin/busybox")
    );
    assert_ne!(find(&a, "COPY a.txt /app/"), find(&b, "COPY b.txt /app/"));
    // A package layer holds exactly its package's files, with the package's owners.
    let tool = a
        .iter()
        .find(|l| l.created_by == "apk package tool")
        .unwrap();
    let mut names: Vec<&str> = tool.entries.iter().map(|(p, _, _)| p.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["usr/bin/tool", "var/lib/tool/state"]);
    assert_eq!(owners_of(&a, "var/lib/tool/state"), vec![(65534, 65534)]);
    assert_eq!(owners_of(&a, "var/lib/tool"), vec![(65534, 65534)]);
    assert_eq!(owners_of(&a, "usr/bin/tool"), vec![(0, 0)]);

    // Under a budget of 3: at most 3 build layers, the same files.
    let out = ws.assemble(&["export", "--layers", "packages:3", "b", "oci:b3"]);
    assert!(out.status.success(), "{}", text(&out));
    let b3 = layers(&ws, "b3");
    let by: Vec<&str> = b3.iter().map(|l| l.created_by.as_str()).collect();
    assert!(b3.len() <= 3, "{by:?}");
    // The two packages share the one package layer left, the larger (tool) named first.
    assert!(by.contains(&"apk package tool, liba"), "{by:?}");
    let all = |ls: &[Layer]| {
        let mut v: Vec<String> = ls
            .iter()
            .flat_map(|l| l.entries.iter().map(|e| e.0.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(all(&b3), all(&b));
    if crate::support::tool("umoci") {
        let img = format!("{}:latest", ws.path("b3").display());
        let bundle = ws.path("b3-bundle").display().to_string();
        let o = crate::support::run(
            "umoci",
            &["unpack", "--rootless", "--image", &img, &bundle],
            &[],
        );
        assert!(o.status.success());
        assert!(ws.path("b3-bundle/rootfs/usr/bin/tool").is_file());
        assert!(ws.path("b3-bundle/rootfs/app/b.txt").is_file());
    }
}
