//! Images read by real tools: skopeo, umoci, podman; reproducible digests.

use crate::support::{PRELUDE, Podman, Ws, run, text, tool};

fn demo(ws: &Ws) {
    ws.containerfile(&format!(
        "{PRELUDE}ENV GREETING=hello\nWORKDIR /app\nRUN echo \"$GREETING from assemble\" > /app/out.txt\n\
         RUN rm /bin/vi\nCMD [\"cat\", \"/app/out.txt\"]\n"
    ));
}

#[test]
fn oci_and_docker_archive_outputs_are_read_by_skopeo_umoci_and_podman() {
    let Some(ws) = Ws::new() else { return };
    demo(&ws);
    let out = ws.assemble(&[
        "-t",
        "demo:1",
        "-o",
        "oci:oci",
        "-o",
        "docker-archive:demo.tar",
        "-o",
        "oci-archive:demo-oci.tar",
        "-o",
        "rootfs-tar:rootfs.tar",
        "ctx",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let p = |r: &str| ws.path(r).display().to_string();
    if tool("skopeo") {
        for src in [
            format!("oci:{}:1", p("oci")),
            format!("docker-archive:{}", p("demo.tar")),
            format!("oci-archive:{}", p("demo-oci.tar")),
        ] {
            let o = run("skopeo", &["inspect", &src], &[]);
            assert!(o.status.success());
            let s = text(&o);
            assert!(
                s.contains("GREETING=hello") && s.contains("\"Architecture\""),
                "{s}"
            );
            let dest = format!("dir:{}", p(&format!("copy-{}", src.len())));
            assert!(run("skopeo", &["copy", &src, &dest], &[]).status.success());
        }
        let cfg = text(&run(
            "skopeo",
            &["inspect", "--config", &format!("oci:{}:1", p("oci"))],
            &[],
        ));
        assert!(cfg.contains("\"WorkingDir\": \"/app\""), "{cfg}");
    }
    if tool("umoci") {
        let o = run(
            "umoci",
            &[
                "unpack",
                "--rootless",
                "--image",
                &format!("{}:1", p("oci")),
                &p("bundle"),
            ],
            &[],
        );
        assert!(o.status.success());
        assert_eq!(
            fs_err::read_to_string(ws.path("bundle/rootfs/app/out.txt")).unwrap(),
            "hello from assemble\n"
        );
        // The whiteout of the deleted file was applied.
        assert!(!ws.path("bundle/rootfs/bin/vi").exists());
        assert!(ws.path("bundle/rootfs/bin/ls").symlink_metadata().is_ok());
    }
    // rootfs-tar holds the files, not whiteouts.
    let mut a = tar::Archive::new(fs_err::File::open(ws.path("rootfs.tar")).unwrap());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"app/out.txt".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");

    podman_runs(&ws);
}

fn podman_runs(ws: &Ws) {
    let Some(podman) = Podman::new(ws) else {
        return;
    };
    let Some(name) = podman.load(&ws.path("demo.tar")) else {
        return;
    };
    assert_eq!(name, "localhost/demo:1");
    let o = podman.run(&["run", "--rm", "--network", "none", "localhost/demo:1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from assemble\n");
}

#[test]
fn same_inputs_and_source_date_give_the_same_digest() {
    let Some(ws) = Ws::new() else { return };
    demo(&ws);
    let a = ws.assemble(&["-t", "r:1", "-o", "oci:a", "ctx"]);
    assert!(a.status.success());
    let b = ws.assemble(&[
        "--no-cache",
        "-t",
        "r:1",
        "-o",
        "oci:b",
        "-o",
        "docker-archive:b.tar",
        "ctx",
    ]);
    assert!(b.status.success());
    let index = |d: &str| fs_err::read(ws.path(d).join("index.json")).unwrap();
    assert_eq!(index("a"), index("b"));
    // The other layer modes are valid images too.
    for mode in ["squash", "steps"] {
        let dir = format!("oci-{mode}");
        let o = ws.assemble(&["export", "--layers", mode, "r:1", &format!("oci:{dir}")]);
        assert!(o.status.success());
        if tool("umoci") {
            let bundle = ws.path(&format!("bundle-{mode}")).display().to_string();
            let img = format!("{}:1", ws.path(&dir).display());
            assert!(
                run(
                    "umoci",
                    &["unpack", "--rootless", "--image", &img, &bundle],
                    &[]
                )
                .status
                .success()
            );
            assert!(
                ws.path(&format!("bundle-{mode}/rootfs/app/out.txt"))
                    .is_file()
            );
        }
    }
}

#[test]
fn an_image_built_from_ours_shares_its_layers() {
    let Some(ws) = Ws::new() else { return };
    let layers = |dir: &str| -> Vec<String> {
        let index: serde_json::Value =
            serde_json::from_slice(&fs_err::read(ws.path(dir).join("index.json")).unwrap())
                .unwrap();
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let m: serde_json::Value = serde_json::from_slice(
            &fs_err::read(ws.path(dir).join("blobs/sha256").join(digest)).unwrap(),
        )
        .unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    ws.containerfile(&format!("{PRELUDE}RUN echo base > /base\n"));
    assert!(
        ws.assemble(&["-t", "base:1", "-o", "oci:base", "ctx"])
            .status
            .success()
    );
    ws.containerfile("FROM base:1\nRUN echo app > /app\nRUN echo more > /more\n");
    assert!(
        ws.assemble(&["-t", "app:1", "-o", "oci:app", "ctx"])
            .status
            .success()
    );
    let (b, a) = (layers("base"), layers("app"));
    assert_eq!(b.len(), 1);
    assert_eq!(a.len(), 2, "base layer + one for the build");
    assert_eq!(a[0], b[0]);
}

#[test]
fn export_progress_draws_a_bar_on_a_terminal() {
    let Some(ws) = Ws::new() else { return };
    if !tool("script") {
        return;
    }
    demo(&ws);
    assert!(ws.assemble(&["-t", "tty:1", "ctx"]).status.success());
    // `script` gives the command a pseudo-terminal, so the binary takes its indicatif path.
    let cmd = format!(
        "SOURCE_DATE_EPOCH=1700000000 {} --store {} export --layers squash tty:1 oci:{}",
        env!("CARGO_BIN_EXE_assemble"),
        ws.path("store").display(),
        ws.path("tty-oci").display()
    );
    let o = run("script", &["-qec", &cmd, "/dev/null"], &[]);
    assert!(o.status.success());
    let out = text(&o);
    // The bar is cleared when done, and the summary line stays.
    assert!(out.contains("Compressing layer 1/1 ("), "{out}");
    assert!(out.contains(" in "), "{out}");
    assert!(ws.path("tty-oci/index.json").is_file());
}
