//! Push to Debian's docker-registry on 127.0.0.1, pull back with skopeo and with FROM.

use std::process::{Child, Command, Stdio};

use crate::support::{PRELUDE, Ws, run, text, tool};

/// A docker-registry process, stopped by PID on drop.
struct RegistryServer {
    child: Child,
    addr: String,
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(ws: &Ws) -> Option<RegistryServer> {
    if !tool("docker-registry") {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let conf = ws.path("registry.yml");
    fs_err::write(
        &conf,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            ws.path("registry-data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = RegistryServer { child, addr };
    // Readiness, not timing: poll until it accepts connections.
    for _ in 0..200 {
        if std::net::TcpStream::connect(&server.addr).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!(
        "SKIP: docker-registry did not start listening on {}",
        server.addr
    );
    None
}

#[test]
fn push_to_a_local_registry_and_pull_back() {
    let Some(ws) = Ws::new() else { return };
    let Some(reg) = start_registry(&ws) else {
        return;
    };
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo pushed > /msg\nCMD [\"cat\", \"/msg\"]\n"
    ));
    assert!(ws.assemble(&["-t", "pushme:1", "ctx"]).status.success());
    let dest = format!("{}/team/pushme:1", reg.addr);
    let out = ws.assemble(&["push", "--tls-verify=false", "pushme:1", &dest]);
    assert!(out.status.success(), "{}", text(&out));
    // Not a terminal: progress comes as plain lines, each transfer ending with a summary.
    let log = text(&out);
    assert!(log.contains("Compressing layer 1/1 ("), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("Pushing sha256:") && l.contains(" in ")),
        "{log}"
    );
    if tool("skopeo") {
        let o = run(
            "skopeo",
            &["inspect", "--tls-verify=false", &format!("docker://{dest}")],
            &[],
        );
        assert!(o.status.success());
        assert!(
            text(&o).contains("\"Architecture\": \"amd64\"") || text(&o).contains("Architecture")
        );
        let oci = format!("oci:{}:1", ws.path("pulled").display());
        assert!(
            run(
                "skopeo",
                &[
                    "copy",
                    "--src-tls-verify=false",
                    &format!("docker://{dest}"),
                    &oci
                ],
                &[]
            )
            .status
            .success()
        );
    }
    // A second push is a no-op for blobs the registry has.
    assert!(
        ws.assemble(&["push", "--tls-verify=false", "pushme:1", &dest])
            .status
            .success()
    );
    // FROM a registry reference pulls over the distribution API.
    ws.containerfile(&format!("FROM {dest}\nRUN cat /msg\n"));
    let out = ws.assemble(&["--tls-verify=false", "-t", "frompull", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pushed"));
    let log = text(&out);
    assert!(
        log.contains(&format!("Pulling {dest} layer 1/1: ")),
        "{log}"
    );
}

#[test]
fn short_names_are_docker_hub_names() {
    let Some(ws) = Ws::new() else { return };
    // No such local image: the name is Docker Hub's, and the error says which it tried
    // (offline here, so the pull fails; with a network Docker Hub refuses the name).
    ws.containerfile("FROM assemble-test-no-such-image:0.1\n");
    let out = ws.assemble(&["-t", "x", "ctx"]);
    assert!(!out.status.success());
    let log = text(&out);
    assert!(
        log.contains("docker.io/library/assemble-test-no-such-image:0.1"),
        "{log}"
    );
    assert!(log.contains("no such image in the local store"), "{log}");
    // A local image of that short name wins over Docker Hub.
    ws.containerfile(&format!("{PRELUDE}RUN echo local > /where\n"));
    assert!(
        ws.assemble(&["-t", "someuser/tool:2", "ctx"])
            .status
            .success()
    );
    ws.containerfile("FROM someuser/tool:2\nRUN cat /where\n");
    let out = ws.assemble(&["-t", "y", "ctx"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("local"));
    // Invalid names are refused with the grammar's reason.
    let out = ws.assemble(&["push", "y", "team/Bad:1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("lowercase"), "{}", text(&out));
}
