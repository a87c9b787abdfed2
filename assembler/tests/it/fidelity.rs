//! Issue 14, "Fidelity details": what a docker/buildah user porting a Containerfile expects
//! of file lookup, ignore files, the default PATH, COPY's owners and flags, HEALTHCHECK,
//! `:failed` tags, USER permissions and the build command line.

use std::path::Path;

use crate::support::{PRELUDE, Podman, Ws, oci_config, run, text, tool};

/// Runs `cmd` in the image `image` (`assemble run`), returning its stdout.
fn run_in(ws: &Ws, image: &str, cmd: &str) -> String {
    let o = ws.assemble(&["run", image, "/bin/sh", "-c", cmd]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn issue14_containerfile_wins_over_dockerfile_and_a_missing_one_names_both() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile("FROM scratch\nLABEL from=containerfile\n");
    fs_err::write(
        ws.path("ctx/Dockerfile"),
        "FROM scratch\nLABEL from=dockerfile\n",
    )
    .unwrap();
    let o = ws.assemble(&["-t", "which:1", "-o", "oci:which", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    let cfg = oci_config(&ws.path("which"));
    assert_eq!(cfg["config"]["Labels"]["from"], "containerfile", "{cfg}");

    fs_err::create_dir_all(ws.path("empty")).unwrap();
    let o = ws.assemble(&["empty"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("no Containerfile or Dockerfile in") && t.contains("-f FILE"),
        "{t}"
    );
}

#[test]
fn issue14_containerignore_wins_over_dockerignore() {
    let Some(ws) = Ws::new() else { return };
    for f in ["a.txt", "b.txt", "c.txt"] {
        fs_err::write(ws.path("ctx").join(f), f).unwrap();
    }
    fs_err::write(ws.path("ctx/.containerignore"), "a.txt\n").unwrap();
    fs_err::write(ws.path("ctx/.dockerignore"), "b.txt\n").unwrap();
    ws.containerfile(&format!("{PRELUDE}COPY . /ctx/\n"));
    let o = ws.assemble(&["-t", "ign:1", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(run_in(&ws, "ign:1", "ls /ctx | grep txt"), "b.txt\nc.txt\n");

    // Without a .containerignore, .dockerignore applies.
    fs_err::remove_file(ws.path("ctx/.containerignore")).unwrap();
    let o = ws.assemble(&["-t", "ign:2", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(run_in(&ws, "ign:2", "ls /ctx | grep txt"), "a.txt\nc.txt\n");
}

/// A path the ignore file leaves out is not in Docker's context: naming it in COPY, ADD or
/// a bind mount fails ("not found" there), unless an exception (`!pattern`) takes a path below an ignored
/// directory back, when the directory comes with only those paths.
#[test]
fn ignored_paths_cannot_be_copied_by_name() {
    let Some(ws) = Ws::new() else { return };
    fs_err::create_dir_all(ws.path("ctx/docs")).unwrap();
    fs_err::create_dir_all(ws.path("ctx/cache")).unwrap();
    for f in ["b.log", "cache/x", "docs/drop.md", "docs/keep.md"] {
        fs_err::write(ws.path("ctx").join(f), f).unwrap();
    }
    fs_err::write(
        ws.path("ctx/.dockerignore"),
        "*.log\ncache\ndocs\n!docs/keep.md\n",
    )
    .unwrap();
    for (step, line) in [
        ("COPY b.log /", 4),
        ("ADD cache /c/", 4),
        ("RUN --mount=type=bind,source=b.log,target=/x true", 4),
    ] {
        ws.containerfile(&format!("{PRELUDE}{step}\n"));
        let o = ws.assemble(&["-t", "ign:bad", "ctx"]);
        let t = text(&o);
        assert!(!o.status.success(), "{step}: {t}");
        assert!(
            t.contains(&format!(":{line}")) && t.contains("excluded by the context's ignore file"),
            "{step}: {t}"
        );
    }
    ws.containerfile(&format!("{PRELUDE}COPY docs /docs/\n"));
    let o = ws.assemble(&["-t", "ign:docs", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(run_in(&ws, "ign:docs", "ls /docs"), "keep.md\n");
}

#[test]
fn issue14_from_scratch_gets_the_default_path_so_env_path_extends_it() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}ENV PATH=/opt/bin:$PATH\nRUN echo \"$PATH\" > /path.txt\n"
    ));
    let o = ws.assemble(&["-t", "path:1", "-o", "oci:path", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    let want = "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(run_in(&ws, "path:1", "cat /path.txt"), format!("{want}\n"));
    let cfg = oci_config(&ws.path("path"));
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!([format!("PATH={want}")])
    );
    if tool("skopeo") {
        let o = run(
            "skopeo",
            &[
                "inspect",
                "--config",
                &format!("oci:{}", ws.path("path").display()),
            ],
            &[],
        );
        assert!(text(&o).contains(&format!("PATH={want}")), "{}", text(&o));
    }
}

#[test]
fn issue14_build_takes_docker_label_iidfile_quiet_and_warns_of_unused_build_args() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!("{PRELUDE}ARG USED=x\nRUN echo $USED > /used\n"));
    let o = ws.assemble(&[
        "build",
        "--label",
        "org.example.a=1",
        "--label=org.example.b=two words",
        "--iidfile",
        "iid",
        "--progress=plain",
        "--build-arg",
        "USED=y",
        "--build-arg",
        "NOBODY_READS_ME=1",
        "-t",
        "cli:1",
        "-o",
        "oci:cli",
        "ctx",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("[Warning] One or more build-args [NOBODY_READS_ME] were not consumed"),
        "{t}"
    );
    let cfg = oci_config(&ws.path("cli"));
    assert_eq!(cfg["config"]["Labels"]["org.example.a"], "1");
    assert_eq!(cfg["config"]["Labels"]["org.example.b"], "two words");
    let iid = fs_err::read_to_string(ws.path("iid")).unwrap();
    assert!(t.contains(&format!("Built {iid}")), "{iid} / {t}");

    // -q: stdout is the image id alone; the warning still shows on stderr.
    let o = ws.assemble(&["-q", "--build-arg", "UNUSED=1", "-t", "quiet:1", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    let quiet_id = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        quiet_id.len() == 14 && quiet_id.starts_with('@') && quiet_id.ends_with('\n'),
        "{quiet_id:?}"
    );
    assert_eq!(run_in(&ws, quiet_id.trim(), "cat /used"), "x\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("Step 1/"), "{err}");
    assert!(err.contains("build-args [UNUSED]"), "{err}");
}

#[test]
fn issue14_tag_file_from_stdin_and_progress_spell_as_docker() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!("{PRELUDE}RUN echo y > /used\n"));
    let o = ws.assemble(&["--iidfile", "iid", "-t", "cli:1", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    let iid = fs_err::read_to_string(ws.path("iid")).unwrap();

    // `tag SRC DST`, then the new name runs.
    let o = ws.assemble(&["tag", &iid, "other/name:2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(run_in(&ws, "other/name:2", "cat /used"), "y\n");
    let o = ws.assemble(&["tag", "cli:1", "third"]);
    assert!(o.status.success(), "{}", text(&o));
    let images = text(&ws.assemble(&["images"]));
    assert!(images.contains("third:latest"), "{images}");

    // -f -: the Containerfile from standard input.
    let o = assert_cmd::Command::cargo_bin("assemble")
        .unwrap()
        .current_dir(ws.dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("ASSEMBLE_STORE")
        .args(["--store", &ws.path("store").display().to_string()])
        .args(["-t", "stdin:1", "-f", "-", "ctx"])
        .write_stdin(format!("{PRELUDE}RUN echo from-stdin > /s\n"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(run_in(&ws, "stdin:1", "cat /s"), "from-stdin\n");

    let o = ws.assemble(&["--progress=fancy", "ctx"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("auto, plain, tty"), "{}", text(&o));
}

/// The `:failed` tag a failed build printed ("…, tagged NAME:failed").
fn failed_tag(log: &str) -> String {
    log.split(", tagged ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no failed tag in {log}"))
        .to_string()
}

#[test]
fn issue14_a_failing_copy_or_config_step_is_tagged_failed_like_a_run() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo before > /before\nCOPY missing.txt /x\n"
    ));
    let o = ws.assemble(&["-t", "cp:1", "ctx"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("step 5 `COPY missing.txt /x` failed ("), "{t}");
    assert!(t.contains("no such file"), "{t}");
    assert_eq!(failed_tag(&t), "cp:failed");
    assert_eq!(run_in(&ws, "cp:failed", "cat /before"), "before\n");
    let logs = text(&ws.assemble(&["logs", "cp:failed"]));
    assert!(logs.contains("no such file"), "{logs}");

    // Untagged builds: each failure gets a name of its own, printed.
    ws.containerfile(&format!("{PRELUDE}USER nobody-here\nRUN true\n"));
    let first = text(&ws.assemble(&["ctx"]));
    ws.containerfile(&format!("{PRELUDE}ENV A=\"${{UNSET:?must be set}}\"\n"));
    let second = text(&ws.assemble(&["ctx"]));
    let (a, b) = (failed_tag(&first), failed_tag(&second));
    assert!(
        a.starts_with("unnamed-") && a.ends_with(":failed"),
        "{first}"
    );
    assert!(b.starts_with("unnamed-") && b != a, "{second}");
    assert!(first.contains("no such user"), "{first}");
    assert!(second.contains("must be set"), "{second}");
    let images = text(&ws.assemble(&["images"]));
    assert!(images.contains(&a) && images.contains(&b), "{images}");
}

/// Every entry of the OCI image `dir`'s layers, bottom first (a later one wins): path →
/// (uid, gid, mode, is a regular file).
pub(crate) fn layer_entries(
    dir: &Path,
) -> std::collections::BTreeMap<String, (u64, u64, u32, bool)> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs_err::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for l in manifest["layers"].as_array().unwrap() {
        let f = fs_err::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            let path = e.path().unwrap().display().to_string();
            let path = format!("/{}", path.trim_start_matches("./").trim_end_matches('/'));
            out.insert(
                path,
                (
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap() & 0o7777,
                    h.entry_type().is_file(),
                ),
            );
        }
    }
    out
}

/// A tar archive at `path` of `/out` (owned 1000:1001) holding `a` (7:8) and `sub/b`.
fn owned_tree_tar(path: &Path) {
    let mut b = tar::Builder::new(fs_err::File::create(path).unwrap());
    let mut add = |name: &str, uid: u64, gid: u64, body: Option<&[u8]>| {
        let mut h = tar::Header::new_gnu();
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_700_000_000);
        match body {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
        }
    };
    add("out/", 1000, 1001, None);
    add("out/a", 7, 8, Some(b"a\n"));
    add("out/sub/", 1000, 1001, None);
    add("out/sub/b", 1000, 1001, Some(b"b\n"));
    b.finish().unwrap();
}

#[test]
fn issue14_copy_from_keeps_the_source_owners_and_chown_overrides() {
    let Some(ws) = Ws::new() else { return };
    owned_tree_tar(&ws.path("ctx/owned.tar"));
    fs_err::write(ws.path("ctx/ctx.txt"), "c").unwrap();
    ws.containerfile(&format!(
        "FROM scratch AS build\nADD owned.tar /\n\
         FROM scratch AS image-src\nADD owned.tar /\n\
         {}\
         COPY --from=build /out /kept\n\
         COPY --from=build --chown=42:43 /out /over\n\
         COPY --from=build --chmod=0700 /out/sub/b /mode-b\n\
         COPY ctx.txt /ctx.txt\n",
        PRELUDE.replacen("FROM scratch", "FROM scratch AS final", 1)
    ));
    // An image in the store (not a stage of this file) keeps its owners too.
    let o = ws.assemble(&["-t", "owned-src:1", "--target", "image-src", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    fs_err::write(
        ws.path("ctx/Containerfile"),
        format!(
            "{}COPY --from=owned-src:1 /out/sub /from-image\n",
            fs_err::read_to_string(ws.path("ctx/Containerfile")).unwrap()
        ),
    )
    .unwrap();
    let o = ws.assemble(&["-t", "owners:1", "-o", "oci:owners", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    let e = layer_entries(&ws.path("owners"));
    let owner = |p: &str| {
        let (u, g, m, _) = e.get(p).unwrap_or_else(|| panic!("{p} missing: {e:?}"));
        (*u, *g, *m)
    };
    assert_eq!(owner("/kept"), (1000, 1001, 0o755));
    assert_eq!(owner("/kept/a"), (7, 8, 0o644));
    assert_eq!(owner("/kept/sub/b"), (1000, 1001, 0o644));
    assert_eq!(owner("/over/a"), (42, 43, 0o644));
    assert_eq!(owner("/over/sub"), (42, 43, 0o755));
    assert_eq!(owner("/mode-b"), (1000, 1001, 0o700));
    assert_eq!(owner("/from-image/b"), (1000, 1001, 0o644));
    assert_eq!(owner("/ctx.txt"), (0, 0, 0o644));
    // umoci, unpacking as root, gives the files those owners.
    if rustix::process::geteuid().is_root() && tool("umoci") {
        let bundle = ws.path("bundle").display().to_string();
        let img = format!("{}:1", ws.path("owners").display());
        let o = run("umoci", &["unpack", "--image", &img, &bundle], &[]);
        assert!(o.status.success(), "{}", text(&o));
        use std::os::unix::fs::MetadataExt;
        let md = fs_err::metadata(ws.path("bundle/rootfs/kept/a")).unwrap();
        assert_eq!((md.uid(), md.gid()), (7, 8));
        let md = fs_err::metadata(ws.path("bundle/rootfs/over/sub/b")).unwrap();
        assert_eq!((md.uid(), md.gid()), (42, 43));
    }
}

#[test]
fn issue14_copy_parents_exclude_link_and_add_unpack_are_honoured_or_refused_by_line() {
    let Some(ws) = Ws::new() else { return };
    for (p, body) in [
        ("src/a/x.c", "x"),
        ("src/a/y.h", "y"),
        ("src/b/z.c", "z"),
        ("docs/r.txt", "r"),
        ("docs/r.md", "r"),
        ("docs/sub/n.txt", "n"),
        ("hom1.txt", "1"),
        ("hom2.md", "2"),
    ] {
        let p = ws.path("ctx").join(p);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, body).unwrap();
    }
    owned_tree_tar(&ws.path("ctx/files.tar"));
    ws.containerfile(&format!(
        "{PRELUDE}COPY --parents src/*/*.c /p/\n\
         COPY --parents src/./a/x.c /q\n\
         COPY --exclude=*.txt docs hom* /e/\n\
         ADD --unpack=false files.tar /t/\n\
         ADD files.tar /u/\n\
         COPY --link hom2.md /linked/\n\
         RUN find /p /q /e /t /u /linked | sort > /list\n"
    ));
    let o = ws.assemble(&["-t", "flags:1", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        run_in(&ws, "flags:1", "cat /list"),
        "/e\n/e/hom2.md\n/e/r.md\n/e/sub\n/e/sub/n.txt\n\
         /linked\n/linked/hom2.md\n\
         /p\n/p/src\n/p/src/a\n/p/src/a/x.c\n/p/src/b\n/p/src/b/z.c\n\
         /q\n/q/a\n/q/a/x.c\n\
         /t\n/t/files.tar\n\
         /u\n/u/out\n/u/out/a\n/u/out/sub\n/u/out/sub/b\n"
    );

    // What we do not support is refused with the file and line, never ignored: what the
    // file shows before the first step (at its column), what depends on the image when
    // the step runs (at its line).
    let refused = |body: &str, at: &str, words: &str| {
        ws.containerfile(&format!(
            "{PRELUDE}RUN mkdir /real && ln -s /real /sym\n{body}\n"
        ));
        let o = ws.assemble(&["ctx"]);
        assert!(!o.status.success());
        let t = text(&o);
        assert!(
            t.contains(&format!("ctx/Containerfile:{at}")) && t.contains(words),
            "{t}"
        );
        t
    };
    let t = refused(
        "COPY --link hom2.md /sym/",
        "5: step 5 ",
        "symlink in the image",
    );
    assert!(t.contains(", tagged unnamed-"), "{t}");
    for (body, words) in [
        (
            "ADD --keep-git-dir https://example.invalid/x.git /g",
            "git repository is not supported",
        ),
        (
            "ADD --unpack=true https://example.invalid/x.tar.gz /g/",
            "--unpack=true of a URL is not supported",
        ),
    ] {
        let t = refused(body, "5:5", words);
        assert!(!t.contains("Step 1/"), "{t}");
    }
    // A URL a variable gives is refused when the step expands it.
    let t = refused(
        "ARG URL=https://example.invalid/x.tar.gz\nADD --unpack $URL /g/",
        "6: step 6 ",
        "--unpack=true of a URL is not supported",
    );
    assert!(t.contains("Step 1/"), "{t}");
}

#[test]
fn issue14_oci_archive_names_the_image_for_podman_load_and_healthcheck_is_in_the_config() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!(
        "{PRELUDE}HEALTHCHECK --interval=30s --retries=2 CMD [\"/bin/true\"]\n\
         CMD [\"echo\", \"hi\"]\n"
    ));
    let o = ws.assemble(&[
        "-t",
        "demo/app:1",
        "-o",
        "oci-archive:app-oci.tar",
        "-o",
        "docker-archive:app-docker.tar",
        "-o",
        "oci:app-oci",
        "ctx",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The layout is addressed as DIR:TAG, the archive carries the full name.
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(ws.path("app-oci/index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1"
    );
    // BuildKit's choice for OCI: Healthcheck in the config as an extension field (the
    // spec has none; Docker reads it there), as it is in the Docker format.
    let want = serde_json::json!({
        "Test": ["CMD", "/bin/true"], "Interval": 30_000_000_000u64, "Retries": 2
    });
    assert_eq!(
        oci_config(&ws.path("app-oci"))["config"]["Healthcheck"],
        want
    );
    if tool("skopeo") {
        let src = format!("oci-archive:{}", ws.path("app-oci.tar").display());
        let o = run("skopeo", &["inspect", "--raw", &src], &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let Some(podman) = Podman::new(&ws) else {
        return;
    };
    let Some(name) = podman.load(&ws.path("app-oci.tar")) else {
        return;
    };
    assert_eq!(name, "localhost/demo/app:1");
    let o = podman.run(&["run", "--rm", "--network", "none", "localhost/demo/app:1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", text(&o));
    // podman reads a healthcheck from Docker-format images only (libimage's inspect).
    podman.run(&["rmi", "localhost/demo/app:1"]);
    assert_eq!(
        podman.load(&ws.path("app-docker.tar")).as_deref(),
        Some("localhost/demo/app:1")
    );
    let o = podman.run(&[
        "image",
        "inspect",
        "localhost/demo/app:1",
        "--format",
        "{{json .HealthCheck}}",
    ]);
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got, want, "{}", text(&o));
}

#[test]
fn issue14_a_user_1000_step_cannot_write_roots_files_and_its_files_are_its_own() {
    let Some(ws) = Ws::new() else { return };
    if !rustix::process::geteuid().is_root() {
        // Rootless, the sandbox maps one id: the USER, as the caller who owns every file.
        eprintln!("SKIP: permission checks as another uid need assemble to run as root");
        return;
    }
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo root-owned > /root-file && mkdir /app && chown 1000:1000 /app\n\
         USER 1000\n\
         RUN echo x >> /root-file; echo \"append=$?\" > /app/result; \\\n\
             touch /new-at-root; echo \"create=$?\" >> /app/result; \\\n\
             echo \"owner=$(stat -c %u:%g /root-file) me=$(id -u):$(id -g)\" >> /app/result; \\\n\
             echo mine > /app/mine\n"
    ));
    let o = ws.assemble(&["-t", "perm:1", "-o", "oci:perm", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        run_in(
            &ws,
            "perm:1",
            "cat /app/result /root-file; test -e /new-at-root || echo absent"
        ),
        "append=1\ncreate=1\nowner=0:0 me=1000:1000\nroot-owned\nabsent\n"
    );
    let e = layer_entries(&ws.path("perm"));
    for p in ["/app", "/app/mine", "/app/result"] {
        assert_eq!(e[p].0, 1000, "{p}: {e:?}");
        assert_eq!(e[p].1, 1000, "{p}: {e:?}");
    }
    assert_eq!((e["/root-file"].0, e["/root-file"].1), (0, 0));

    // A step that needs root's files fails as in Docker, and is kept as :failed.
    ws.containerfile(&format!("{PRELUDE}USER 1000\nRUN echo x > /etc-file\n"));
    let o = ws.assemble(&["-t", "perm:2", "ctx"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("Permission denied") && t.contains("perm:failed"),
        "{t}"
    );
}

/// BuildKit creates a missing WORKDIR (and its missing parents) owned by the USER of that
/// point, so `USER app` + `WORKDIR /srv/data` + `RUN touch x` works; a directory that exists
/// keeps its owner.
#[test]
fn a_missing_workdir_belongs_to_the_user() {
    let Some(ws) = Ws::new() else { return };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: owners other than the caller need assemble to run as root");
        return;
    }
    ws.containerfile(&format!(
        "{PRELUDE}RUN mkdir /srv\nUSER 1000:1000\nWORKDIR /srv/data/app\nRUN touch made\n"
    ));
    let o = ws.assemble(&["-t", "wd:1", "-o", "oci:wd", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));
    let e = layer_entries(&ws.path("wd"));
    for p in ["/srv/data", "/srv/data/app", "/srv/data/app/made"] {
        assert_eq!((e[p].0, e[p].1), (1000, 1000), "{p}: {e:?}");
    }
    assert_eq!((e["/srv"].0, e["/srv"].1), (0, 0), "{e:?}");
}
