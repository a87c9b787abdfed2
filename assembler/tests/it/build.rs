//! The build engine end to end: snapshots, the :failed tag, the step cache, refusals.

use crate::support::{PRELUDE, Ws, context_keys, copy_dir, text};

/// The snapshot id after "Most recent snapshot is @".
pub(crate) fn failed_snapshot(log: &str) -> String {
    log.split("Most recent snapshot is @")
        .nth(1)
        .expect("snapshot message")
        .get(..12)
        .unwrap()
        .to_string()
}

#[test]
fn failed_build_hint_works_with_an_entrypoint_and_without_a_shell() {
    let Some(ws) = Ws::new() else { return };
    // An ENTRYPOINT set before the failing step: the printed command still opens a shell.
    ws.containerfile(&format!(
        "{PRELUDE}ENTRYPOINT [\"/bin/false\"]\nRUN echo partial > /partial && exit 3\n"
    ));
    let out = ws.assemble(&["-t", "ep", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    let id = failed_snapshot(&log);
    assert!(
        log.contains(&format!("run -it --entrypoint /bin/sh ep:failed@{id}")),
        "{log}"
    );
    let shown = ws.assemble(&[
        "run",
        "--entrypoint",
        "/bin/sh",
        &format!("ep:failed@{id}"),
        "-c",
        "cat /partial",
    ]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert_eq!(String::from_utf8_lossy(&shown.stdout), "partial\n");

    // No shell in the image: the hint unpacks it instead, and that command works.
    ws.containerfile(
        "FROM scratch\nCOPY busybox /opt/busybox\nRUN [\"/opt/busybox\", \"false\"]\n",
    );
    let out = ws.assemble(&["-t", "nosh", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    let id = failed_snapshot(&log);
    assert!(log.contains("has no /bin/sh"), "{log}");
    assert!(
        log.contains(&format!("export nosh:failed@{id} rootfs:failed-rootfs")),
        "{log}"
    );
    let dir = ws.path("failed-rootfs");
    let out = ws.assemble(&[
        "export",
        &format!("nosh:failed@{id}"),
        &format!("rootfs:{}", dir.display()),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.join("opt/busybox").is_file());
}

#[test]
fn failed_step_keeps_a_snapshot_and_the_rebuild_resumes_from_cache() {
    let Some(ws) = Ws::new() else { return };
    // Step 4 fails after writing a file.
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo partial > /partial && echo failing now && exit 3\nCMD [\"cat\", \"/fixed\"]\n"
    ));
    let out = ws.assemble(&["-t", "app:1", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    assert!(log.contains("Step 4/5 : RUN echo partial"), "{log}");
    assert!(log.contains("failing now"), "live output missing: {log}");
    let id = failed_snapshot(&log);
    assert!(
        log.contains(&format!("run -it --entrypoint /bin/sh app:failed@{id}")),
        "{log}"
    );

    let images = text(&ws.assemble(&["images"]));
    assert!(
        images.contains("app:failed") && images.contains(&id),
        "{images}"
    );
    // The partial state is there to look at.
    let shown = ws.assemble(&["run", &format!("app:failed@{id}"), "cat", "/partial"]);
    assert!(shown.status.success());
    assert_eq!(String::from_utf8_lossy(&shown.stdout), "partial\n");
    // The full output is kept with the snapshot.
    let logs = text(&ws.assemble(&["logs", &format!("app:failed@{id}")]));
    assert!(logs.contains("failing now"), "{logs}");

    // Fix step 4: steps 2 and 3 come from the cache.
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo fixed > /fixed\nCMD [\"cat\", \"/fixed\"]\n"
    ));
    let out = ws.assemble(&["-t", "app:1", "ctx"]);
    assert!(out.status.success());
    let log = text(&out);
    assert_eq!(log.matches("--> Using cache").count(), 2, "{log}");
    // Steps 1-3 (FROM, then the two snapshots) are reused, step 4 runs again.
    let after = |step: &str| {
        log.lines()
            .skip_while(|l| !l.starts_with(step))
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        after("Step 2/5 : COPY").starts_with("--> Using cache @"),
        "{log}"
    );
    assert!(
        after("Step 3/5 : RUN").starts_with("--> Using cache @"),
        "{log}"
    );
    assert!(
        after("Step 4/5 : RUN echo fixed").starts_with("--> Snapshot created: @"),
        "{log}"
    );
    let ran = ws.assemble(&["run", "app:1"]);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "fixed\n");
    // `run --commit` keeps what the session changed.
    let c = ws.assemble(&[
        "run",
        "--commit",
        "app:patched",
        "app:1",
        "sh",
        "-c",
        "echo patched > /fixed",
    ]);
    assert!(c.status.success());
    let ran = ws.assemble(&["run", "app:patched"]);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "patched\n");

    // Any snapshot can be a base.
    ws.containerfile(&format!("FROM app:failed@{id}\nRUN cat /partial\n"));
    let out = ws.assemble(&["-t", "onfailed", "ctx"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("partial"));

    // --no-cache runs everything again.
    ws.containerfile(&format!("{PRELUDE}RUN echo fixed > /fixed\n"));
    let log = text(&ws.assemble(&["--no-cache", "-t", "app:1", "ctx"]));
    assert!(!log.contains("Using cache"), "{log}");

    // snapshots lists the chain; rmi + prune free the orphans.
    let snaps = text(&ws.assemble(&["snapshots", "app:1"]));
    assert_eq!(
        snaps.matches("\n@").count() + usize::from(snaps.starts_with('@')),
        3,
        "{snaps}"
    );
    assert!(
        ws.assemble(&["rmi", "app:failed", "onfailed:latest", "app:patched"])
            .status
            .success()
    );
    let pruned = text(&ws.assemble(&["prune"]));
    assert!(pruned.contains(&format!("Deleted @{id}")), "{pruned}");
}

#[test]
fn copy_of_a_context_symlink_pointing_outside_is_refused() {
    let Some(ws) = Ws::new() else { return };
    let secret = ws.path("outside-secret");
    fs_err::write(&secret, "do not copy").unwrap();
    std::os::unix::fs::symlink(&secret, ws.path("ctx/evil")).unwrap();
    ws.containerfile(&format!("{PRELUDE}COPY evil /stolen\n"));
    let out = ws.assemble(&["-t", "evil", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    assert!(
        log.contains("symlink pointing outside the build context"),
        "{log}"
    );
    assert_eq!(fs_err::read_to_string(&secret).unwrap(), "do not copy");
    // Nothing was built; the failure is kept (issue 14) without the file.
    let images = text(&ws.assemble(&["images"]));
    assert!(!images.contains("evil:latest") && images.contains("evil:failed"));
    let o = ws.assemble(&["run", "evil:failed", "/bin/sh", "-c", "test -e /stolen"]);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn config_instructions_copy_features_and_multi_stage() {
    let Some(ws) = Ws::new() else { return };
    fs_err::create_dir_all(ws.path("ctx/site/sub")).unwrap();
    fs_err::write(ws.path("ctx/site/index.html"), "<h1>hi</h1>").unwrap();
    fs_err::write(ws.path("ctx/site/sub/a.txt"), "a").unwrap();
    fs_err::write(ws.path("ctx/site/secret.key"), "k").unwrap();
    fs_err::write(ws.path("ctx/.dockerignore"), "site/*.key\n").unwrap();
    fs_err::write(ws.path("ctx/one.conf"), "1").unwrap();
    fs_err::write(ws.path("ctx/two.conf"), "2").unwrap();
    // A tar archive that ADD extracts.
    let tarball = ws.path("ctx/files.tar");
    {
        let mut b = tar::Builder::new(fs_err::File::create(&tarball).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "from-tar.txt", &b"tar"[..]).unwrap();
        b.finish().unwrap();
    }
    let prelude = PRELUDE.replace("FROM scratch", "FROM scratch AS base");
    ws.containerfile(&format!(
        "{prelude}\
FROM scratch AS unused\nRUN this stage is never built\n\
FROM builder AS never\n\
FROM scratch AS stage1\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /artifact\"]\n\
FROM base\n\
ARG FLAVOUR=plain\nENV APP_HOME=/srv/app FLAVOUR=$FLAVOUR\nWORKDIR $APP_HOME\n\
COPY site/ ./site/\nCOPY *.conf /etc/app/\nADD files.tar /opt/\n\
COPY --from=stage1 --chmod=0600 /artifact /artifact\n\
RUN id -u > /whoami; pwd > /pwd; echo $FLAVOUR > /flavour\n\
RUN mkdir -m 1777 /tmp\nUSER 1000:1000\nRUN id -u > /tmp/uid\n\
LABEL org.example.a=b\nMAINTAINER me@example.org\nEXPOSE 8080 53/udp\nVOLUME /data\nSTOPSIGNAL SIGTERM\n\
HEALTHCHECK --interval=5s CMD [\"true\"]\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /flavour\"]\n"
    ));
    // Stage `never` refers to a missing image but is not needed, so it is not built.
    let out = ws.assemble(&[
        "--build-arg",
        "FLAVOUR=spicy",
        "-t",
        "cfg",
        "-o",
        "rootfs:rootfs",
        "ctx",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let r = |p: &str| fs_err::read_to_string(ws.path("rootfs").join(p)).unwrap();
    assert_eq!(r("srv/app/site/index.html"), "<h1>hi</h1>");
    assert_eq!(r("srv/app/site/sub/a.txt"), "a");
    assert!(!ws.path("rootfs/srv/app/site/secret.key").exists());
    assert_eq!(r("etc/app/one.conf") + &r("etc/app/two.conf"), "12");
    assert_eq!(r("opt/from-tar.txt"), "tar");
    assert_eq!(r("artifact"), "built\n");
    assert_eq!(r("whoami"), "0\n");
    assert_eq!(r("pwd"), "/srv/app\n");
    assert_eq!(r("flavour"), "spicy\n");
    assert_eq!(r("tmp/uid"), "1000\n");
    // What USER 1000 created is owned by 1000 in the image (visible when we may chown).
    use std::os::unix::fs::MetadataExt;
    let md = fs_err::metadata(ws.path("rootfs/tmp/uid")).unwrap();
    if rustix::process::geteuid().is_root() {
        assert_eq!((md.uid(), md.gid()), (1000, 1000));
        assert_eq!(fs_err::metadata(ws.path("rootfs/whoami")).unwrap().uid(), 0);
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = fs_err::metadata(ws.path("rootfs/artifact"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let ran = ws.assemble(&["run", "cfg"]);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "spicy\n");
}

#[test]
fn apk_add_runs_natively_with_scripts_in_the_sandbox() {
    let Some(ws) = Ws::new() else { return };
    let fx = testkit::fixtures();
    copy_dir(&fx.join("repo"), &ws.path("ctx/repo"));
    context_keys(&ws);
    ws.containerfile(&format!(
        "{PRELUDE}COPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys hello\n\
         RUN apk del hello\n"
    ));
    let out = ws.assemble(&["-t", "pk", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("Installing hello (1.0-r0)"), "{log}");
    assert!(log.contains("native installer"), "{log}");
    // The image has a shell, so the post-install script ran inside the sandbox.
    assert!(
        log.contains(
            "Executing hello-1.0-r0.post-install\ninstalled hello\nOK: 0 MiB in 1 packages\n"
        ),
        "{log}"
    );
    let snaps = text(&ws.assemble(&["snapshots", "pk"]));
    let install = snaps
        .lines()
        .find(|l| l.contains("apk add"))
        .and_then(|l| l.get(1..13))
        .unwrap()
        .to_string();
    let o = ws.assemble(&["run", &format!("pk@{install}"), "cat", "/etc/apk/world"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    // The package list travels with the image as a manifest annotation (SBOM input).
    let o = ws.assemble(&["export", &format!("pk@{install}"), "oci:pk-oci"]);
    assert!(o.status.success());
    let blobs = ws.path("pk-oci/blobs/sha256");
    let found = fs_err::read_dir(&blobs).unwrap().any(|e| {
        fs_err::read(e.unwrap().path())
            .map(|b| {
                String::from_utf8_lossy(&b).contains("\"dev.assemble.packages\":\"hello=1.0-r0\"")
            })
            .unwrap_or(false)
    });
    assert!(found, "no package annotation in the manifest");
    // --layers=packages: hello's files get a layer of their own, the same in any image.
    let o = ws.assemble(&[
        "export",
        "--layers",
        "packages:8",
        &format!("pk@{install}"),
        "oci:pk-pkgs",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let manifests: Vec<serde_json::Value> = fs_err::read_dir(ws.path("pk-pkgs/blobs/sha256"))
        .unwrap()
        .filter_map(|e| serde_json::from_slice(&fs_err::read(e.unwrap().path()).ok()?).ok())
        .filter(|v: &serde_json::Value| v.get("layers").is_some())
        .collect();
    // The rest, hello, and one per COPY (busybox, repo, keys).
    let layers = manifests[0]["layers"].as_array().unwrap().len();
    assert_eq!(layers, 5, "{manifests:?}");
    if crate::support::tool("umoci") {
        let img = format!("{}:latest", ws.path("pk-pkgs").display());
        let bundle = ws.path("pk-bundle").display().to_string();
        let o = crate::support::run(
            "umoci",
            &["unpack", "--rootless", "--image", &img, &bundle],
            &[],
        );
        assert!(o.status.success());
        assert!(ws.path("pk-bundle/rootfs/usr/bin/hello").is_file());
    }
    let o = ws.assemble(&["run", "pk", "ls", "/usr/bin"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("hello"));
}

/// A one-file HTTP server on 127.0.0.1 (a thread of the test, answering until dropped).
fn serve(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}/files/tool.txt")
}

/// A static file server for `dir` on 127.0.0.1 (a thread of the test, answering until the
/// test ends); returns `http://127.0.0.1:PORT`.
pub(crate) fn serve_dir(dir: std::path::PathBuf) -> String {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let _ = std::io::BufReader::new(&s).read_line(&mut line);
            let path = line
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            let _ = match (!path.contains("..")).then(|| fs_err::read(dir.join(path))) {
                Some(Ok(body)) => write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .and_then(|()| s.write_all(&body)),
                _ => write!(
                    s,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            };
        }
    });
    format!("http://{addr}")
}

#[test]
fn packages_fetched_over_http_show_progress() {
    let Some(ws) = Ws::new() else { return };
    let mut repo = testkit::repo::RepoBuilder::new(&ws.path("www/repo"));
    repo.add(&testkit::repo::PkgSpec::new("liba", "1.0-r0").file("usr/lib/liba.so.1", "a\n"));
    repo.write_index(true);
    context_keys(&ws);
    let base = serve_dir(ws.path("www"));
    ws.containerfile(&format!(
        "{PRELUDE}COPY keys /keys\nRUN apk add --no-cache -X {base}/repo --keys-dir /keys liba\n"
    ));
    let out = ws.assemble(&["-t", "http", "ctx"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.lines().any(|l| l
            .starts_with(&format!("Fetching {base}/repo/x86_64/liba-1.0-r0.apk: "))
            && l.contains(" in ")),
        "{log}"
    );
}

#[test]
fn add_url_checks_the_checksum() {
    use sha2::Digest as _;
    let Some(ws) = Ws::new() else { return };
    let body: &'static [u8] = b"downloaded\n";
    let url = serve(body);
    let sum = hex::encode(sha2::Sha256::digest(body));
    ws.containerfile(&format!(
        "{PRELUDE}ADD --checksum=sha256:{sum} {url} /opt/\nRUN cat /opt/tool.txt\n"
    ));
    let out = ws.assemble(&["-t", "dl", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("downloaded"));
    // Progress, as plain lines (stderr is not a terminal here), ends with a summary.
    assert!(
        text(&out).contains(&format!("Downloading {url}: 11 B in ")),
        "{}",
        text(&out)
    );
    let bad = "0".repeat(64);
    ws.containerfile(&format!(
        "{PRELUDE}ADD --checksum=sha256:{bad} {url} /opt/\n"
    ));
    let out = ws.assemble(&["-t", "dl", "ctx"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
}

#[test]
fn the_cache_works_without_source_date_epoch() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(&format!("{PRELUDE}ENV A=1\nRUN echo hi > /x\n"));
    assert!(ws.assemble_env(&["-t", "c", "ctx"], None).status.success());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let log = text(&ws.assemble_env(&["-t", "c", "ctx"], None));
    assert_eq!(log.matches("--> Using cache").count(), 3, "{log}");
}

/// The README's s6 example once lacked the COPY of the keys: the error must say so, naming
/// the image's path rather than the build root's temporary one.
#[test]
fn apk_add_with_a_missing_keys_dir_says_to_copy_the_keys() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile(
        "FROM scratch\nRUN apk add --repository http://127.0.0.1:9/main --keys-dir /etc/apk/keys hello\n",
    );
    let out = ws.assemble(&["-t", "nokeys:1", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    assert!(
        log.contains("--keys-dir `/etc/apk/keys` is not a directory in the image")
            && log.contains("COPY keys/ /etc/apk/keys"),
        "{log}"
    );
    // The installer reads the directory as a host path: nothing may lead it out of the root.
    for (setup, dir, says) in [
        ("", "/../../etc/apk/keys", "`..` is not allowed"),
        (
            "RUN ln -s /etc /hostlink\n",
            "/hostlink/apk/keys",
            "symbolic link",
        ),
    ] {
        ws.containerfile(&format!(
            "{PRELUDE}{setup}RUN apk add --repository http://127.0.0.1:9/main --keys-dir {dir} hello\n"
        ));
        let out = ws.assemble(&["-t", "nokeys:2", "ctx"]);
        assert!(!out.status.success());
        let log = text(&out);
        assert!(log.contains(says), "{log}");
    }
}
