//! HTTPS with rustls: HSTS on answers, the plain redirect listener, certificate reload on
//! SIGHUP. Certificates are made by the real `openssl` (installed by ci/setup).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Env, Server};

/// A CA and a leaf for 127.0.0.1 signed by it (`<name>.crt`, `<name>.key`); returns
/// the CA certificate (what clients trust).
fn make_cert(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let (ca_key, ca_crt) = (format!("{name}-ca.key"), format!("{name}-ca.crt"));
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let ext = format!("{name}.ext");
    fs_err::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={name} test CA"),
        "-keyout",
        &ca_key,
        "-out",
        &ca_crt,
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &crt,
    ]);
    ok.then(|| fs_err::read(dir.join(&ca_crt)).unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn https_client(root_pem: &[u8]) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root_pem).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

#[test]
fn https_hsts_redirect_and_sighup_reload() {
    let env = Env::new("");
    let certs = env.tmp.path().join("certs");
    fs_err::create_dir_all(&certs).unwrap();
    let Some(first) = make_cert(&certs, "first") else {
        eprintln!("SKIP: openssl cannot make a test certificate here");
        return;
    };
    let second = make_cert(&certs, "second").unwrap();
    fs_err::copy(certs.join("first.crt"), certs.join("live.crt")).unwrap();
    fs_err::copy(certs.join("first.key"), certs.join("live.key")).unwrap();
    let redirect_port = free_port();
    env.write_config(&format!(
        "tls:\n  crt: {0}/live.crt\n  key: {0}/live.key\n  redirect: {{port: {redirect_port}, protocols: ipv4}}\n  hsts: {{duration: 600, include_subdomains: true}}\n",
        certs.display()
    ));
    let mut server = Server::start_with(
        &env.config(),
        &["-S", "-L", "127.0.0.1:0"],
        &["https", "redirect"],
    );
    assert!(
        !server.addrs.contains_key("http"),
        "-S must not open plain HTTP"
    );
    let https = server.addrs["https"];
    let url = format!("https://{https}/healthz");
    let resp = https_client(&first).get(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=600; includeSubDomains"
    );

    let resp = https_client(&first)
        .get(format!("http://127.0.0.1:{redirect_port}/edge/main/?x=1"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://127.0.0.1:{}/edge/main/?x=1", https.port()).as_str()
    );

    // The second certificate is not trusted by a client that knows only the first, and
    // vice versa: swap the files, SIGHUP, and new connections get the second.
    assert!(https_client(&second).get(&url).send().is_err());
    fs_err::copy(certs.join("second.crt"), certs.join("live.crt")).unwrap();
    fs_err::copy(certs.join("second.key"), certs.join("live.key")).unwrap();
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    // Wait for the reload's log line (120 s is only a net on a busy machine).
    let mut reloaded = false;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if server.log().contains("TLS certificate reloaded") {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(reloaded, "{}", server.log());
    assert_eq!(
        https_client(&second).get(&url).send().unwrap().status(),
        200
    );
    assert!(server.terminate().success());
}
