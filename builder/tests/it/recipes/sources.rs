//! Sources: http downloads, `name::url`, the source cache, zip archives.

use super::*;
use predicates::prelude::*;
use std::path::Path;

/// Serves `body` for `requests` HTTP requests on 127.0.0.1, then closes the port.
fn serve(body: Vec<u8>, requests: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            seen.push(line.trim().to_string());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
        }
        seen
    });
    (port, handle)
}

#[test]
fn http_sources_are_downloaded_renamed_and_served_from_the_source_cache() {
    let home = testkit::tempdir();
    // An upstream tarball `web-1.0/hello.txt`.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("web-1.0/hello.txt").unwrap();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, &b"hello\n"[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    let body = gz.finish().unwrap();
    let (port, server) = serve(body, 2);
    let text = |rel: u32| {
        format!(
            "pkgname=web\npkgver=1.0\npkgrel={rel}\npkgdesc=\"w\"\nurl=\"https://example.org\"\narch=\"noarch\"\nlicense=\"MIT\"\n\
             source=\"web-$pkgver.tar.gz::http://127.0.0.1:{port}/dl/upstream.tar.gz\"\n\
             package() {{ install -Dm644 hello.txt \"$pkgdir\"/usr/share/web/hello.txt; }}\n"
        )
    };
    let dir = bad_recipe(home.path(), &text(0), &[]);
    apkbuild(home.path())
        .arg("checksum")
        .arg(&dir)
        .assert()
        .success();
    let sums = fs_err::read_to_string(dir.join("APKBUILD")).unwrap();
    assert!(sums.contains("  web-1.0.tar.gz\n"), "{sums}");
    let cache = home.path().join("cache");
    let build = || {
        let mut cmd = apkbuild(home.path());
        cmd.arg("build")
            .arg(&dir)
            .arg("--repodest")
            .arg(home.path().join("p"))
            .arg("--cache")
            .arg(&cache)
            .args(sandbox_flag());
        cmd.assert().success()
    };
    build().stdout(predicate::str::contains("web-1.0-r0.apk"));
    assert_eq!(
        server.join().unwrap(),
        ["GET /dl/upstream.tar.gz HTTP/1.1"; 2]
    );
    // The server is gone; a changed recipe still builds from the source cache.
    let block = &sums[sums.find("sha512sums=").unwrap()..];
    fs_err::write(dir.join("APKBUILD"), format!("{}{block}", text(1))).unwrap();
    build()
        .stderr(predicate::str::contains(
            "web-1.0.tar.gz: from the source cache",
        ))
        .stdout(predicate::str::contains("web-1.0-r1.apk"));
}

/// A zip of `files` (relative paths under a temporary root) made by Info-ZIP's `zip -y`.
fn make_zip(home: &Path, files: &[(&str, &str)], link: Option<(&str, &str)>) -> Vec<u8> {
    let root = home.join("zip-src");
    for (p, content) in files {
        let p = root.join(p);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, content).unwrap();
    }
    if let Some((l, t)) = link {
        std::os::unix::fs::symlink(t, root.join(l)).unwrap();
    }
    let out = home.join("made.zip");
    let st = std::process::Command::new("zip")
        .current_dir(&root)
        .args(["-q", "-r", "-y", "-X"])
        .arg(&out)
        .arg(".")
        .status()
        .expect("zip (installed by ci/setup)");
    assert!(st.success());
    fs_err::read(out).unwrap()
}

#[test]
fn zip_sources_unpack_and_escaping_entries_are_refused() {
    let home = testkit::tempdir();
    let big = "deflate me ".repeat(2000);
    let zip = make_zip(
        home.path(),
        &[("bad-1.0/doc/a.txt", "zipped\n"), ("bad-1.0/big.txt", &big)],
        Some(("bad-1.0/link", "doc/a.txt")),
    );
    assert!(zip.len() < big.len() / 4, "big.txt is deflated");
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&zip))
    };
    let dir = bad_recipe(
        home.path(),
        &format!(
            "{HEAD}source=\"src.zip\"\npackage() {{ [ -L link ]; [ $(wc -c < big.txt) = 22000 ]; install -Dm644 link \"$pkgdir\"/usr/share/bad/a.txt; }}\nsha512sums=\"{sum}  src.zip\"\n"
        ),
        &[("src.zip", &zip)],
    );
    let mut cmd = apkbuild(home.path());
    cmd.arg("build")
        .arg(&dir)
        .arg("--repodest")
        .arg(home.path().join("p"))
        .arg("--no-cache")
        .args(sandbox_flag());
    cmd.assert().success();

    // The same archive with the member renamed `../…` (same length, so offsets hold).
    let other = testkit::tempdir();
    let zip = make_zip(other.path(), &[("xx/evil.txt", "x\n")], None);
    let mut evil = zip.clone();
    let needle = b"xx/evil.txt";
    let mut i = 0;
    while let Some(p) = evil[i..].windows(needle.len()).position(|w| w == needle) {
        evil[i + p..i + p + 3].copy_from_slice(b"../");
        i += p + needle.len();
    }
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&evil))
    };
    fails_leaving_repo_unchanged(
        "zip dotdot",
        &format!(
            "{HEAD}source=\"evil.zip\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{sum}  evil.zip\"\n"
        ),
        &[("evil.zip", &evil)],
        "refusing to unpack `evil.zip`: entry `../evil.txt` leaves the source directory",
    );
}
