//! Uploads (in development mode; authentication has its own tests): accepted packages
//! are served and resolvable, hostile uploads change nothing, concurrency keeps every
//! package.

use apk::dep::{Dependency, Provide};
use apk::index::SignedIndex;
use apk::resolve::{Candidate, resolve};

use crate::support::{Env, Form, Pkg, ZeroBody, client, upload};

#[test]
fn upload_then_resolve_over_http() {
    let env = Env::new("");
    let server = env.start(&["-d"]);
    let lib = Pkg::new("libfoo", "1.0-r0").build();
    let mut hello = Pkg::new("hello", "2.0-r1");
    hello.depends = vec!["libfoo>=1.0".into()];
    let hello = hello.build();
    let (status, body) = upload(
        &server,
        None,
        Form::new()
            .text("repo", "main")
            .file("whatever-name.apk", &hello)
            .file("libfoo.apk", &lib),
    );
    assert_eq!(status, 200, "{body}");
    let accepted = body["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0]["path"], "edge/main/x86_64/hello-2.0-r1.apk");

    // The index, fetched over HTTP, verifies and resolves.
    let c = client();
    let bytes = c
        .get(server.url("/edge/main/x86_64/APKINDEX.tar.gz"))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .unwrap();
    let idx = SignedIndex::parse(&bytes).unwrap();
    idx.verify(&testkit::fixture_keyring()).unwrap();
    let cands: Vec<Candidate> = idx
        .index
        .packages
        .iter()
        .map(|e| Candidate {
            name: e.name.clone(),
            version: e.version.clone(),
            depends: Dependency::parse_list(&e.depends.join(" ")).unwrap(),
            provides: Provide::parse_list(&e.provides.join(" ")).unwrap(),
            provider_priority: e.provider_priority,
            install_if: Vec::new(),
            repo_priority: 0,
        })
        .collect();
    let res = resolve(&cands, &[], &Dependency::parse_list("hello").unwrap()).unwrap();
    let mut chosen: Vec<_> = res
        .install
        .iter()
        .map(|&i| cands[i].name.as_str())
        .collect();
    chosen.sort_unstable();
    assert_eq!(chosen, ["hello", "libfoo"]);

    // The package bytes come back identical, with ETag, Last-Modified, Range and HEAD.
    let url = server.url("/edge/main/x86_64/hello-2.0-r1.apk");
    let resp = c.get(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(resp.headers().contains_key("last-modified"));
    assert_eq!(resp.bytes().unwrap().as_ref(), hello.as_slice());
    let resp = c.get(&url).header("range", "bytes=0-9").send().unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().unwrap().as_ref(), &hello[..10]);
    let resp = c.get(&url).header("if-none-match", &etag).send().unwrap();
    assert_eq!(resp.status(), 304);
    let resp = c.head(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"].to_str().unwrap(),
        hello.len().to_string()
    );

    // Listings: plain for curl, HTML for browsers, hidden staging directory.
    let plain = c
        .get(server.url("/edge/main/x86_64/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        plain,
        "APKINDEX.tar.gz\nhello-2.0-r1.apk\nlibfoo-1.0-r0.apk\n"
    );
    let html = c
        .get(server.url("/edge/"))
        .header("accept", "text/html")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("<a href=\"main/\">main/</a>"), "{html}");
    let root = c.get(server.url("/")).send().unwrap().text().unwrap();
    assert_eq!(root, "edge/\n");
    for bad in [
        "/.tmp/",
        "/edge/../../etc/passwd",
        "/edge/%2e%2e/%2e%2e/etc/passwd",
        "/nope",
    ] {
        let s = c.get(server.url(bad)).send().unwrap().status();
        assert_eq!(s, 404, "{bad}");
    }
    let s = c.get(server.url("/edge")).send();
    assert!(s.is_ok());

    // Metrics count it.
    let m = c
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(m.contains("reposerve_packages_total 2"), "{m}");
    assert_eq!(c.get(server.url("/healthz")).send().unwrap().status(), 200);
}

#[test]
fn reupload_same_is_noop_different_conflicts_unless_replace_allowed() {
    let env = Env::new("");
    let pkg = Pkg::new("dup", "1.0-r0").build();
    let mut other = Pkg::new("dup", "1.0-r0");
    other.extra_bytes = 64;
    let other = other.build();
    {
        let server = env.start(&["-d"]);
        let (s, b) = upload(&server, None, Form::new().file("dup.apk", &pkg));
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["accepted"][0]["unchanged"], false);
        let before = env.snapshot();
        // A retried job uploads the same package again: accepted, nothing written.
        let (s, b) = upload(&server, None, Form::new().file("dup.apk", &pkg));
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["accepted"][0]["unchanged"], true, "{b}");
        assert_eq!(b["accepted"][0]["replaced"], false, "{b}");
        assert!(env.snapshot() == before);
        // A different build of the same version is refused, and changes nothing.
        let (s, b) = upload(&server, None, Form::new().file("dup.apk", &other));
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "conflict");
        assert!(b["hint"].as_str().unwrap().contains("bump pkgrel"), "{b}");
        assert!(env.snapshot() == before);
        // A request mixing the same package with a new one writes only the new one.
        let fresh = Pkg::new("fresh", "1.0-r0").build();
        let (s, b) = upload(
            &server,
            None,
            Form::new().file("dup.apk", &pkg).file("fresh.apk", &fresh),
        );
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            env.index_names("edge", "main", "x86_64"),
            ["dup-1.0-r0", "fresh-1.0-r0"]
        );
    }
    env.write_config("allow_replace: true\n");
    let server = env.start(&["-d"]);
    let (s, b) = upload(&server, None, Form::new().file("dup.apk", &other));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["accepted"][0]["replaced"], true);
    assert_eq!(
        env.index_names("edge", "main", "x86_64"),
        ["dup-1.0-r0", "fresh-1.0-r0"]
    );
    let served = reqwest::blocking::get(server.url("/edge/main/x86_64/dup-1.0-r0.apk"))
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(served.as_ref(), other.as_slice());
}

#[test]
fn hostile_uploads_change_nothing() {
    let env = Env::new(
        "limits:\n  max_request_bytes: 8388608\n  max_file_bytes: 4194304\n  max_unpacked_bytes: 33554432\n",
    );
    let server = env.start(&["-d"]);
    let good = Pkg::new("good", "1.0-r0").build();
    let (s, b) = upload(&server, None, Form::new().file("good.apk", &good));
    assert_eq!(s, 200, "{b}");
    let before = env.snapshot();

    let fine = Pkg::new("fine", "1.0-r0").build();
    let mut unsigned = Pkg::new("unsigned", "1.0-r0");
    unsigned.signer = None;
    let unsigned = unsigned.build();
    let mut unknown = Pkg::new("unknown", "1.0-r0");
    unknown.signer = Some(
        apk::keys::generate("stranger@test.invalid", 2048, 1_700_000_000)
            .unwrap()
            .0,
    );
    let unknown = unknown.build();
    // Flip a byte near the end: inside the data member (datahash / gzip CRC).
    let mut tampered = fine.clone();
    let n = tampered.len();
    tampered[n - 30] ^= 0x55;
    let truncated = fine[..fine.len() / 2].to_vec();
    let bomb = gzip_bomb(&fine);
    let mut noarch = Pkg::new("noarchpkg", "1.0-r0");
    noarch.arch = "noarch";
    let noarch = noarch.build();

    let cases: Vec<(&str, Form, &[u16])> = vec![
        (
            "not gzip",
            Form::new().file("x.apk", b"hello, not a package"),
            &[422],
        ),
        ("truncated", Form::new().file("t.apk", &truncated), &[422]),
        ("unsigned", Form::new().file("u.apk", &unsigned), &[422]),
        ("unknown key", Form::new().file("k.apk", &unknown), &[422]),
        (
            "datahash mismatch",
            Form::new().file("d.apk", &tampered),
            &[422],
        ),
        ("gzip bomb", Form::new().file("b.apk", &bomb), &[413, 422]),
        (
            "one bad among good",
            Form::new().file("f.apk", &fine).file("u.apk", &unsigned),
            &[422],
        ),
        (
            "../ in version",
            Form::new().text("version", "../x").file("f.apk", &fine),
            &[400],
        ),
        (
            "../ in repo",
            Form::new().text("repo", "..").file("f.apk", &fine),
            &[400],
        ),
        (
            "/ in arch",
            Form::new()
                .text("arch", "x86_64/../../")
                .file("f.apk", &fine),
            &[400],
        ),
        (
            "control char",
            Form::new().text("repo", "ma\u{1}in").file("f.apk", &fine),
            &[400],
        ),
        (
            "../ in filename",
            Form::new().file("../../evil.apk", &fine),
            &[400],
        ),
        (
            "arch mismatch",
            Form::new().text("arch", "aarch64").file("f.apk", &fine),
            &[422],
        ),
        (
            "noarch without arch",
            Form::new().file("n.apk", &noarch),
            &[422],
        ),
        ("no file", Form::new().text("repo", "main"), &[400]),
        (
            "unknown field",
            Form::new().text("sneaky", "1").file("f.apk", &fine),
            &[400],
        ),
        (
            "file over the limit",
            Form::new().file("big.apk", &vec![0u8; 5 << 20]),
            &[413],
        ),
    ];
    for (what, form, expected) in cases {
        let (s, b) = upload(&server, None, form);
        assert!(expected.contains(&s), "{what}: status {s}, body {b}");
        assert!(
            b["error"].is_string() && b["hint"].is_string(),
            "{what}: {b}"
        );
        assert!(env.snapshot() == before, "{what}: the tree changed");
    }

    // A 2 GiB body, streamed: refused early, nothing allocated, nothing changed.
    let head =
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.apk\"\r\n\r\n"
            .to_string();
    let len = 2u64 << 30;
    let body = ZeroBody {
        head: std::io::Cursor::new(head.into_bytes()),
        left: len,
    };
    let r = client()
        .post(server.url("/upload"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(reqwest::blocking::Body::sized(body, len + 80))
        .send();
    match r {
        Ok(resp) => assert_eq!(resp.status(), 413),
        // The server may close the connection while we are still sending.
        Err(e) => eprintln!("2 GiB upload cut off by the server: {e}"),
    }
    assert!(env.snapshot() == before, "2 GiB: the tree changed");
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(env.index_names("edge", "main", "x86_64"), ["good-1.0-r0"]);
    let m = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        m.contains("reposerve_rejects_total{reason=\"unsigned\"}"),
        "{m}"
    );
}

/// `pkg`'s signature and control members followed by a data member that inflates to
/// 512 MiB of zeros (about 500 kB compressed).
fn gzip_bomb(pkg: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let parsed = apk::package::Package::read(pkg, apk::package::ReadLimits::default()).unwrap();
    let mut out = pkg[..usize::try_from(parsed.offsets.1).unwrap()].to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        gz.write_all(&zeros).unwrap();
    }
    out.extend(gz.finish().unwrap());
    out
}

#[test]
fn concurrent_uploads_all_indexed() {
    let env = Env::new("");
    let server = env.start(&["-d"]);
    let n = 200;
    let pkgs: Vec<Vec<u8>> = (0..n)
        .map(|i| Pkg::new(&format!("conc{i:03}"), "1.0-r0").build())
        .collect();
    let server = &server;
    std::thread::scope(|s| {
        let handles: Vec<_> = pkgs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Two arches so two indexes are updated in parallel.
                s.spawn(move || {
                    let (st, b) = upload(server, None, Form::new().file("p.apk", p));
                    assert_eq!(st, 200, "upload {i}: {b}");
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let names = env.index_names("edge", "main", "x86_64");
    assert_eq!(names.len(), n);
}

/// Regression (issue 15, found by fuzzing the upload reader): a request whose first file is
/// refused was answered while the other files were still being checked, so their staged
/// copies were still in the staging area after "nothing was changed". Every check now ends
/// before the answer.
#[test]
fn issue15_a_refused_upload_leaves_no_staged_file() {
    let env = Env::new("limits:\n  max_file_bytes: 33554432\n  max_unpacked_bytes: 67108864\n");
    let server = env.start(&["-d"]);
    let mut big = Pkg::new("big", "1.0-r0");
    // Incompressible, so checking it takes a while after the bad part is refused.
    big.extra_bytes = 8 << 20;
    let big = big.build();
    let form = Form::new()
        .file("bad.apk", b"not a package")
        .file("big.apk", &big);
    let (s, b) = upload(&server, None, form);
    assert_eq!(s, 422, "{b}");
    let staging = env.root().join(".tmp");
    let left: Vec<_> = fs_err::read_dir(&staging)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "staged files left after a refusal: {left:?}"
    );
}
