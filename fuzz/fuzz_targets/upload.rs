//! reposerve's `POST /upload` reader: any multipart body gets an answer, never a panic and
//! never a 500 (bad input is a 4xx naming what is wrong), and a refused request leaves no
//! file behind.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

struct Server {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // Uploads need a packager keyring and the repository key: the fixture pair.
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../testkit/fixtures/apk-reference/keys");
        let yaml = format!(
            "dir: {}\ntrusted_keys: {keys}\nsigning:\n  key: {keys}/fixture-test-65a1b2c3.rsa\n",
            dir.path().join("repo").display()
        );
        let cfg = reposerve::config::Config::parse(&yaml, "fuzz.yaml".as_ref()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let state = runtime
            .block_on(reposerve::AppState::from_config(cfg, true))
            .unwrap();
        Server { runtime, app: reposerve::router(state), dir }
    })
}

/// Every path under the served tree (to see that a refused upload changed nothing).
fn tree(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    let before = tree(&s.dir.path().join("repo"));
    let req = Request::post("/upload")
        .header("content-type", "multipart/form-data; boundary=X")
        .body(Body::from(data.to_vec()))
        .unwrap();
    let status = s.runtime.block_on(async { s.app.clone().oneshot(req).await.unwrap().status() });
    assert_ne!(status.as_u16(), 500, "upload answered 500");
    if !status.is_success() {
        assert_eq!(tree(&s.dir.path().join("repo")), before, "a refused upload changed the tree");
    }
});
