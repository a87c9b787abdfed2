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
    start_registry_with(ws, "")
}

/// Starts docker-registry with `extra` appended to its configuration.
fn start_registry_with(ws: &Ws, extra: &str) -> Option<RegistryServer> {
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
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra}",
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
    // Readiness, not timing: poll until it accepts connections (a generous net: a busy
    // machine may take long to start it).
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(120) {
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
    // A push to a short name goes to Docker Hub (offline here: it fails, naming it).
    let out = ws.assemble(&["push", "y", "someuser/app:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("docker.io/someuser/app:1"),
        "{}",
        text(&out)
    );
    // Invalid names are refused with the grammar's reason.
    let out = ws.assemble(&["push", "y", "team/Bad:1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("lowercase"), "{}", text(&out));
}

/// libtrust's key ID (what docker-registry matches a token's `kid` against): the SHA-256
/// of the key's DER SubjectPublicKeyInfo, first 240 bits, base32, in groups of four.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    use sha2::Digest as _;
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = sha2::Sha256::digest(spki_der);
    let mut bits = String::new();
    for b in &hash[..30] {
        bits.push_str(&format!("{b:08b}"));
    }
    let b32: Vec<char> = bits
        .as_bytes()
        .chunks(5)
        .map(|c| {
            let v = u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap();
            ALPHABET[v as usize] as char
        })
        .collect();
    b32.chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}

/// A token server on 127.0.0.1 (a thread of the test) that, given `user:secret` as basic
/// auth, grants what each `scope` asks as an RS256 JWT docker-registry trusts; it records
/// the scopes it was asked for.
fn token_server(
    key: testkit::jwks::JwtKey,
    kid: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = seen.clone();
    std::thread::spawn(move || {
        // base64("user:secret")
        let want = "Basic dXNlcjpzZWNyZXQ=";
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut request = String::new();
            let _ = r.read_line(&mut request);
            let mut authorized = false;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                {
                    authorized |= v.trim() == want;
                }
            }
            let target = request.split(' ').nth(1).unwrap_or_default().to_string();
            let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let mut access = Vec::new();
            for kv in query.split('&') {
                if let Some(scope) = kv.strip_prefix("scope=") {
                    let scope = decode(scope);
                    log.lock().unwrap().push(scope.clone());
                    let parts: Vec<&str> = scope.splitn(3, ':').collect();
                    if let [kind, name, actions] = parts[..] {
                        access.push(serde_json::json!({
                            "type": kind, "name": name,
                            "actions": actions.split(',').collect::<Vec<_>>(),
                        }));
                    }
                }
            }
            if !authorized {
                let _ = write!(
                    s,
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                continue;
            }
            let now = testkit::jwks::now();
            let jwt = key.token_with_kid(
                &serde_json::json!({
                    "iss": "test-issuer", "sub": "user", "aud": "test-registry",
                    "exp": now + 600, "nbf": now - 60, "iat": now,
                    "jti": format!("{now}-{}", access.len()), "access": access,
                }),
                &kid,
            );
            let body = serde_json::json!({ "token": jwt }).to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}/token"), seen)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn push_and_pull_with_bearer_token_auth() {
    let Some(ws) = Ws::new() else { return };
    if !tool("openssl") || !tool("docker-registry") {
        return;
    }
    // The registry trusts a self-signed certificate of the fixture key; tokens name the key
    // by its libtrust ID.
    let key_file = testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY));
    let cert = ws.path("token-cert.pem");
    let o = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key_file.display().to_string(),
            "-subj",
            "/CN=assemble-test-token-issuer",
            "-days",
            "2",
            "-out",
            &cert.display().to_string(),
        ],
        &[],
    );
    assert!(o.status.success());
    let spki = run(
        "openssl",
        &[
            "pkey",
            "-in",
            &key_file.display().to_string(),
            "-pubout",
            "-outform",
            "DER",
        ],
        &[],
    );
    assert!(spki.status.success());
    let kid = libtrust_key_id(&spki.stdout);
    let (realm, scopes) = token_server(testkit::jwks::JwtKey::fixture("unused"), kid);
    let Some(reg) = start_registry_with(
        &ws,
        &format!(
            "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            cert.display()
        ),
    ) else {
        return;
    };
    ws.containerfile(&format!(
        "{PRELUDE}RUN echo token > /msg\nCMD [\"cat\", \"/msg\"]\n"
    ));
    assert!(ws.assemble(&["-t", "tok:1", "ctx"]).status.success());
    let dest = format!("{}/team/tok:1", reg.addr);
    // Without credentials the token server refuses, and the message says what to set.
    let out = ws.assemble(&["push", "--tls-verify=false", "tok:1", &dest]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("ASSEMBLE_REGISTRY_USER"),
        "{}",
        text(&out)
    );
    let creds = [
        ("ASSEMBLE_REGISTRY_USER", "user"),
        ("ASSEMBLE_REGISTRY_PASSWORD", "secret"),
    ];
    let out = ws.assemble_vars(&["push", "--tls-verify=false", "tok:1", &dest], &creds);
    assert!(out.status.success(), "{}", text(&out));
    // The push scope arrived whole: `pull,push` holds a comma inside the quoted challenge
    // (docker-registry names the two actions in either order).
    assert!(
        scopes
            .lock()
            .unwrap()
            .iter()
            .any(|s| s == "repository:team/tok:pull,push" || s == "repository:team/tok:push,pull"),
        "{:?}",
        scopes.lock().unwrap()
    );
    ws.containerfile(&format!("FROM {dest}\nRUN cat /msg\n"));
    let out = ws.assemble_vars(&["--tls-verify=false", "-t", "tokpull", "ctx"], &creds);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("token"));
}
