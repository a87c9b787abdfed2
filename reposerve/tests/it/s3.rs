//! S3 storage against real S3 servers: replicas sharing one bucket lose no acknowledged
//! upload, on s3s-fs (installed by ci/setup; its conditional writes are not atomic) and on
//! Garage when installed (skipped with the install command otherwise: it takes ~25 min to
//! build). Uploads are spread over 2 or 3 replicas by 50 clients at once, one replica is
//! killed with SIGKILL mid-run in the third test; afterwards the index verifies, lists
//! every package answered 2xx, lists each package once, and a restarted replica indexes
//! what no index listed.
//!
//! Serving from the bucket (ranges, ETag, listings, multipart uploads) has its own test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use apk::index::SignedIndex;
use testkit::garage::GarageServer;
use testkit::s3::S3Server;

use crate::support::{Env, Form, Pkg, Server, client, upload};

/// A running S3 server of either kind.
enum Store {
    S3sFs(S3Server),
    Garage(GarageServer),
}

impl Store {
    fn s3s_fs() -> Option<Self> {
        match S3Server::start() {
            Ok(s) => {
                s.create_bucket("pkgs");
                Some(Self::S3sFs(s))
            }
            Err(e) => {
                eprintln!("SKIP: no S3 test server: {e}");
                None
            }
        }
    }

    fn garage() -> Option<Self> {
        match GarageServer::start() {
            Ok(g) => {
                g.create_bucket("pkgs").expect("garage bucket");
                Some(Self::Garage(g))
            }
            Err(e) => {
                eprintln!("SKIP: Garage: {e}");
                None
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::S3sFs(_) => "s3s-fs",
            Self::Garage(_) => "garage",
        }
    }

    /// The `storage:` section for bucket `pkgs`.
    fn storage(&self) -> String {
        let (endpoint, key, secret) = match self {
            Self::S3sFs(s) => (s.endpoint(), s.access_key, s.secret_key),
            Self::Garage(g) => (
                g.endpoint(),
                testkit::garage::ACCESS_KEY,
                testkit::garage::SECRET_KEY,
            ),
        };
        format!(
            "storage:\n  s3:\n    bucket: pkgs\n    prefix: alpine\n    endpoint: {endpoint}\n    access_key_id: {key}\n    secret_access_key: {secret}\n    allow_http: true\n"
        )
    }
}

/// What the clients were told.
#[derive(Default)]
struct Outcomes {
    /// Answered 2xx (by any replica): must be indexed.
    ok: BTreeSet<String>,
    /// Answered with an error status.
    refused: BTreeMap<String, String>,
    /// Cut off by the kill (then retried on another replica).
    cut: BTreeSet<String>,
}

/// `replicas` replicas on one bucket take `count` uploads from 50 clients at once,
/// round-robin; with `kill`, replica 0 gets SIGKILL once a third are answered, and its
/// clients retry elsewhere, as a CI job would. Then every acknowledged package is in the
/// index, each once, and a restarted replica indexes whatever no index listed.
fn replicas_lose_nothing(store: &Store, replicas: usize, count: usize, kill: bool) {
    let envs: Vec<Env> = (0..replicas).map(|_| Env::new(&store.storage())).collect();
    let servers: Vec<Mutex<Option<Server>>> = envs
        .iter()
        .map(|e| Mutex::new(Some(e.start(&["-d"]))))
        .collect();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| s.lock().unwrap().as_ref().unwrap().url("/upload"))
        .collect();
    let mode = probed_mode(servers[0].lock().unwrap().as_ref().unwrap());
    eprintln!("{}: conditional writes probed as {mode}", store.name());
    let pkgs = build_packages(count);
    let alive: Vec<AtomicBool> = (0..replicas).map(|_| AtomicBool::new(true)).collect();
    let outcomes = Mutex::new(Outcomes::default());
    let (next, answered) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..50 {
            s.spawn(|| {
                let c = client();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((id, bytes)) = pkgs.get(i) else {
                        return;
                    };
                    let (ct, body) = Form::new().file("p.apk", bytes).finish();
                    for attempt in 0..replicas {
                        let r = (i + attempt) % replicas;
                        if !alive[r].load(Ordering::SeqCst) {
                            continue;
                        }
                        let resp = c
                            .post(&urls[r])
                            .header("content-type", &ct)
                            .body(body.clone())
                            .send();
                        let mut o = outcomes.lock().unwrap();
                        match resp {
                            Ok(resp) if resp.status().is_success() => {
                                o.ok.insert(id.clone());
                            }
                            Ok(resp) => {
                                let status = resp.status();
                                o.refused
                                    .insert(id.clone(), format!("{status} {:?}", resp.text()));
                            }
                            Err(_) => {
                                o.cut.insert(id.clone());
                                continue;
                            }
                        }
                        break;
                    }
                    let done = answered.fetch_add(1, Ordering::SeqCst) + 1;
                    if kill && done == count / 3 {
                        alive[0].store(false, Ordering::SeqCst);
                        if let Some(mut victim) = servers[0].lock().unwrap().take() {
                            victim.kill9();
                        }
                    }
                }
            });
        }
    });
    let o = outcomes.into_inner().unwrap();
    assert!(
        o.refused.is_empty(),
        "{}: refused: {:?}",
        store.name(),
        o.refused
    );
    let live = servers
        .iter()
        .position(|s| s.lock().unwrap().is_some())
        .unwrap();
    let guard = servers[live].lock().unwrap();
    let server = guard.as_ref().unwrap();
    check_index(server, &o, store.name());
    eprintln!(
        "{}: {replicas} replicas, {} acknowledged, {} cut off by the kill and retried",
        store.name(),
        o.ok.len(),
        o.cut.len()
    );
    if kill {
        // The killed replica starts again; its start-up pass indexes what nothing listed.
        let restarted = envs[0].start(&["-d"]);
        let listed = check_index(&restarted, &o, store.name());
        let stored: BTreeSet<String> = client()
            .get(restarted.url("/edge/main/x86_64/"))
            .send()
            .unwrap()
            .text()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_suffix(".apk").map(str::to_string))
            .collect();
        let strays: Vec<_> = stored.difference(&listed).collect();
        assert!(strays.is_empty(), "stored but never indexed: {strays:?}");
    }
}

/// The index served by `server`: signature valid, each package once, every acknowledged
/// one there. Returns its `name-version`s.
fn check_index(server: &Server, o: &Outcomes, store: &str) -> BTreeSet<String> {
    let bytes = client()
        .get(server.url("/edge/main/x86_64/APKINDEX.tar.gz"))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .unwrap();
    let idx = SignedIndex::parse(&bytes).unwrap();
    idx.verify(&testkit::fixture_keyring())
        .expect("index signature");
    let names: Vec<String> = idx
        .index
        .packages
        .iter()
        .map(|p| format!("{}-{}", p.name, p.version))
        .collect();
    let listed: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        names.len(),
        "{store}: a package is listed twice"
    );
    let missing: Vec<_> = o.ok.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "{store}: {} acknowledged uploads missing from the index: {missing:?}",
        missing.len()
    );
    listed
}

/// `count` distinct packages, built on two threads.
fn build_packages(count: usize) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::thread::scope(|s| {
        let halves: Vec<_> = (0..2)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(2)
                        .map(|i| {
                            let name = format!("rep{i:04}");
                            let bytes = Pkg::new(&name, "1.0-r0").build();
                            (format!("{name}-1.0-r0"), bytes)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    out.sort();
    out
}

/// The mode the start-up probe logged (`fields.mode`).
fn probed_mode(server: &Server) -> String {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("conditional writes"))
        .unwrap_or_else(|| panic!("the probe's result is not logged:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["fields"]["mode"].as_str().unwrap_or_default().to_string()
}

#[test]
fn issue13_two_replicas_on_s3s_fs_lose_nothing() {
    let Some(store) = Store::s3s_fs() else { return };
    replicas_lose_nothing(&store, 2, 200, false);
}

#[test]
fn issue13_three_replicas_on_s3s_fs_lose_nothing() {
    let Some(store) = Store::s3s_fs() else { return };
    replicas_lose_nothing(&store, 3, 210, false);
}

#[test]
fn issue13_replica_killed_mid_run_on_s3s_fs_loses_nothing() {
    let Some(store) = Store::s3s_fs() else { return };
    replicas_lose_nothing(&store, 3, 240, true);
}

#[test]
fn issue13_replicas_on_garage_lose_nothing() {
    let Some(store) = Store::garage() else { return };
    replicas_lose_nothing(&store, 2, 200, false);
    replicas_lose_nothing(&store, 3, 240, true);
}

#[test]
fn served_from_the_bucket() {
    let Some(store) = Store::s3s_fs() else { return };
    let (env_a, env_b) = (Env::new(&store.storage()), Env::new(&store.storage()));
    let (a, b) = (env_a.start(&["-d"]), env_b.start(&["-d"]));
    let pkgs: Vec<Vec<u8>> = (0..3)
        .map(|i| Pkg::new(&format!("s3pkg{i:02}"), "1.0-r0").build())
        .collect();
    for p in &pkgs {
        let (st, body) = upload(&a, None, Form::new().file("p.apk", p));
        assert_eq!(st, 200, "{body}");
    }
    // Served by the other replica, from the bucket: bytes, range, ETag, listing.
    let c = client();
    let url = b.url("/edge/main/x86_64/s3pkg01-1.0-r0.apk");
    let resp = c.get(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(resp.bytes().unwrap().as_ref(), pkgs[1].as_slice());
    let resp = c.get(&url).header("range", "bytes=10-19").send().unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().unwrap().as_ref(), &pkgs[1][10..20]);
    let resp = c.get(&url).header("if-none-match", &etag).send().unwrap();
    assert_eq!(resp.status(), 304);
    let list = c.get(b.url("/edge/main/")).send().unwrap().text().unwrap();
    assert_eq!(list, "x86_64/\n");
    let missing = c.get(b.url("/edge/main/x86_64/nope.apk")).send().unwrap();
    assert_eq!(missing.status(), 404);
    // Nothing was written under the local directories but staging.
    assert!(!env_a.root().join("edge").exists());

    // The same package again is a no-op; a different build of it is refused.
    let (st, body) = upload(&b, None, Form::new().file("p.apk", &pkgs[0]));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["accepted"][0]["unchanged"], true, "{body}");
    let mut other = Pkg::new("s3pkg00", "1.0-r0");
    other.extra_bytes = 64;
    let (st, body) = upload(&b, None, Form::new().file("p.apk", &other.build()));
    assert_eq!(st, 409, "{body}");

    // A package over the multipart threshold goes up in parts and comes back whole.
    let mut big = Pkg::new("bigpkg", "1.0-r0");
    big.extra_bytes = 20 << 20;
    let big = big.build();
    assert!(big.len() as u64 > reposerve::store::MULTIPART_THRESHOLD);
    let (st, body) = upload(&b, None, Form::new().file("big.apk", &big));
    assert_eq!(st, 200, "{body}");
    let got = c
        .get(a.url("/edge/main/x86_64/bigpkg-1.0-r0.apk"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(
        got.as_ref() == big.as_slice(),
        "large package differs after the round trip"
    );
}
