//! What an operator relies on (issue 13): trusted packager keys reload on SIGHUP (logged);
//! packages are stored 0644 like the index; at start, strays are indexed, entries whose
//! file is gone are dropped, and packages an older reposerve stored 0600 become 0644.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use crate::support::{Env, Form, Pkg, Server, upload};

fn mode(path: &std::path::Path) -> u32 {
    fs_err::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits (bounded) until the server's log holds `needle`: the event the test waits for.
fn wait_for_log(server: &Server, needle: &str) -> bool {
    for _ in 0..400 {
        if server.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[test]
fn issue13_trusted_keys_reload_on_sighup() {
    let env = Env::new("");
    let server = env.start(&["-d"]);
    let (packager, _) =
        apk::keys::generate("new-packager@test.invalid", 1024, 1_700_000_000).unwrap();
    let mut pkg = Pkg::new("newkeyed", "1.0-r0");
    pkg.signer = Some(packager.clone());
    let pkg = pkg.build();
    let (st, body) = upload(&server, None, Form::new().file("p.apk", &pkg));
    assert_eq!(st, 422, "untrusted before the reload: {body}");
    assert_eq!(body["error"], "untrusted_key", "{body}");

    let trusted = env.tmp.path().join("trusted");
    fs_err::write(
        trusted.join(packager.name()),
        packager.public_key().to_pem().unwrap(),
    )
    .unwrap();
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(
        wait_for_log(&server, "trusted packager keys reloaded"),
        "{}",
        server.log()
    );
    let (st, body) = upload(&server, None, Form::new().file("p.apk", &pkg));
    assert_eq!(st, 200, "trusted after the reload: {body}");

    // A directory left without keys is refused; the keys loaded before stay.
    for e in fs_err::read_dir(&trusted).unwrap() {
        fs_err::remove_file(e.unwrap().path()).unwrap();
    }
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(
        wait_for_log(&server, "reload failed, keeping the old ones"),
        "{}",
        server.log()
    );
    let again = Pkg::new("stillok", "1.0-r0").build();
    let (st, body) = upload(&server, None, Form::new().file("p.apk", &again));
    assert_eq!(st, 200, "{body}");
}

#[test]
fn issue13_packages_0644_and_strays_indexed_at_start() {
    let env = Env::new("");
    let mut server = env.start(&["-d"]);
    for name in ["kept", "gone"] {
        let (st, body) = upload(
            &server,
            None,
            Form::new().file("p.apk", &Pkg::new(name, "1.0-r0").build()),
        );
        assert_eq!(st, 200, "{body}");
    }
    let dir = env.root().join("edge/main/x86_64");
    assert_eq!(mode(&dir.join("kept-1.0-r0.apk")), 0o644);
    assert_eq!(mode(&dir.join("APKINDEX.tar.gz")), 0o644);
    server.kill9();

    // What a crash (or a hand) leaves: a stored package no index lists, an indexed one
    // whose file is gone, a package stored 0600, and a file that is not a package.
    fs_err::write(
        dir.join("stray-1.0-r0.apk"),
        Pkg::new("stray", "1.0-r0").build(),
    )
    .unwrap();
    fs_err::set_permissions(
        dir.join("stray-1.0-r0.apk"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs_err::remove_file(dir.join("gone-1.0-r0.apk")).unwrap();
    fs_err::write(dir.join("junk-1.0-r0.apk"), b"not a package").unwrap();
    let server = env.start(&["-d"]);
    assert_eq!(
        env.index_names("edge", "main", "x86_64"),
        ["kept-1.0-r0", "stray-1.0-r0"],
        "{}",
        server.log()
    );
    assert_eq!(mode(&dir.join("stray-1.0-r0.apk")), 0o644);
    assert!(
        dir.join("junk-1.0-r0.apk").exists(),
        "what does not verify is left alone"
    );
    let log = server.log();
    assert!(log.contains("stray package indexed"), "{log}");
    assert!(log.contains("stray file not indexed"), "{log}");
    assert!(log.contains("dropped from the index"), "{log}");
}
