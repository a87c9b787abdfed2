//! S3 storage against a real S3 server (s3s-fs, installed by ci/setup): two replicas share
//! one bucket and no index update is lost; a write based on a stale index is refused.
//!
//! s3s-fs checks `If-Match` before streaming the body and writes without a lock, so two
//! *simultaneous* conditional puts can both pass there (AWS S3 checks atomically). The
//! test therefore sends concurrent uploads to one replica at a time, alternates replicas,
//! and proves the compare-and-swap itself with an explicit stale write.

use apk::index::SignedIndex;
use testkit::s3::S3Server;

use crate::support::{Env, Form, Pkg, client, upload};

#[test]
fn two_replicas_share_a_bucket_without_losing_updates() {
    let s3 = match S3Server::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP: no S3 test server: {e}");
            return;
        }
    };
    s3.create_bucket("pkgs");
    let storage = format!(
        "storage:\n  s3:\n    bucket: pkgs\n    prefix: alpine\n    endpoint: {}\n    access_key_id: {}\n    secret_access_key: {}\n    allow_http: true\n",
        s3.endpoint(),
        s3.access_key,
        s3.secret_key
    );
    let (env_a, env_b) = (Env::new(&storage), Env::new(&storage));
    let (a, b) = (env_a.start(&["-d"]), env_b.start(&["-d"]));
    let n = 40;
    let pkgs: Vec<Vec<u8>> = (0..n)
        .map(|i| Pkg::new(&format!("s3pkg{i:02}"), "1.0-r0").build())
        .collect();
    // Concurrent bursts, each to one replica, the replicas taking turns: each must see
    // the other's updates (nothing cached across requests).
    for (round, chunk) in pkgs.chunks(10).enumerate() {
        let server = if round % 2 == 0 { &a } else { &b };
        std::thread::scope(|s| {
            for (i, p) in chunk.iter().enumerate() {
                s.spawn(move || {
                    let (st, body) = upload(server, None, Form::new().file("p.apk", p));
                    assert_eq!(st, 200, "round {round} upload {i}: {body}");
                });
            }
        });
    }
    let c = client();
    let bytes = c
        .get(a.url("/edge/main/x86_64/APKINDEX.tar.gz"))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .unwrap();
    let idx = SignedIndex::parse(&bytes).unwrap();
    idx.verify(&testkit::fixture_keyring()).unwrap();
    assert_eq!(idx.index.packages.len(), n, "an index update was lost");

    // Served by the other replica, from the bucket: bytes, range, ETag, listing.
    let url = b.url("/edge/main/x86_64/s3pkg07-1.0-r0.apk");
    let resp = c.get(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(resp.bytes().unwrap().as_ref(), pkgs[7].as_slice());
    let resp = c.get(&url).header("range", "bytes=10-19").send().unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().unwrap().as_ref(), &pkgs[7][10..20]);
    let resp = c.get(&url).header("if-none-match", &etag).send().unwrap();
    assert_eq!(resp.status(), 304);
    let list = c.get(b.url("/edge/main/")).send().unwrap().text().unwrap();
    assert_eq!(list, "x86_64/\n");
    assert_eq!(
        c.get(b.url("/edge/main/x86_64/nope.apk"))
            .send()
            .unwrap()
            .status(),
        404
    );
    // Nothing was written under the local directories but staging.
    assert!(!env_a.root().join("edge").exists());

    // The same package again is a no-op; a different build of it is refused.
    let (st, body) = upload(&b, None, Form::new().file("p.apk", &pkgs[0]));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["accepted"][0]["unchanged"], true, "{body}");
    let first = body["accepted"][0]["name"].as_str().unwrap().to_string();
    let mut other = Pkg::new(&first, "1.0-r0");
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

    // The compare-and-swap: an index read before another replica's update cannot be
    // written back, and an index cannot be "created" twice.
    let cfg = reposerve::config::S3Config {
        bucket: "pkgs".into(),
        prefix: "alpine".into(),
        region: "us-east-1".into(),
        endpoint: Some(s3.endpoint()),
        access_key_id: s3.access_key.into(),
        secret_access_key: s3.secret_key.into(),
        allow_http: true,
    };
    let store = reposerve::store::S3Store::new(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rel = "edge/main/x86_64/APKINDEX.tar.gz";
    let stale = rt.block_on(store.get_index(rel)).unwrap().unwrap();
    let extra = Pkg::new("after", "1.0-r0").build();
    let (st, body) = upload(&a, None, Form::new().file("p.apk", &extra));
    assert_eq!(st, 200, "{body}");
    let r = rt.block_on(store.put_index(rel, stale.bytes.to_vec(), Some(stale.version), true));
    assert!(
        matches!(r, Err(reposerve::store::PutIndexError::Conflict)),
        "stale write accepted"
    );
    let r = rt.block_on(store.put_index(rel, stale.bytes.to_vec(), None, true));
    assert!(
        matches!(r, Err(reposerve::store::PutIndexError::Conflict)),
        "second create accepted"
    );
    let idx =
        SignedIndex::parse(&rt.block_on(store.get_index(rel)).unwrap().unwrap().bytes).unwrap();
    assert_eq!(idx.index.packages.len(), n + 2);
}
