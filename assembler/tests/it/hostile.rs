//! Hostile input through the real binary: malicious packages installed by `RUN apk add`
//! (names with `..`, absolute names, a symlink out of the root then a write through it,
//! device nodes when unprivileged) are refused or skipped, and the host stays untouched. (The COPY of
//! a context symlink pointing outside is in `build.rs`.)

use testkit::repo::{Node, PkgSpec};

use crate::support::{PRELUDE, Ws, local_repo, text};

/// A workspace with `outside/keep`: a host directory no package may reach.
fn workspace() -> Option<Ws> {
    let ws = Ws::new()?;
    fs_err::create_dir_all(ws.path("outside")).unwrap();
    fs_err::write(ws.path("outside/keep"), "keep\n").unwrap();
    Some(ws)
}

fn containerfile(ws: &Ws, pkg: &str) {
    ws.containerfile(&format!(
        "{PRELUDE}COPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys {pkg}\n"
    ));
}

fn assert_outside_untouched(ws: &Ws) {
    let names: Vec<String> = fs_err::read_dir(ws.path("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep"], "something was written outside the root");
    assert_eq!(
        fs_err::read_to_string(ws.path("outside/keep")).unwrap(),
        "keep\n"
    );
    assert!(!ws.path("pwned").exists() && !ws.path("ctx/pwned").exists());
}

#[test]
fn malicious_packages_are_refused_and_the_host_is_untouched() {
    let Some(ws) = workspace() else { return };
    let outside = ws.path("outside").display().to_string();
    let specs = [
        (
            PkgSpec::new("dotdot", "1-r0")
                .file("usr/bin/before", "x\n")
                .file("usr/../../../../../../outside/pwned", "x\n"),
            "..",
        ),
        (
            PkgSpec::new("through", "1-r0")
                .file("usr/bin/before", "x\n")
                .node("usr/evil", Node::Symlink(outside.clone()))
                .file("usr/evil/pwned", "x\n"),
            "symlink",
        ),
        (
            PkgSpec::new("absolute", "1-r0")
                .file("usr/bin/before", "x\n")
                .file(&format!("{outside}/pwned"), "x\n"),
            "absolute",
        ),
    ];
    local_repo(
        &ws,
        &specs.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
    );
    for (spec, reason) in &specs {
        containerfile(&ws, &spec.name);
        let out = ws.assemble(&["-t", &spec.name, "ctx"]);
        let log = text(&out);
        assert!(!out.status.success(), "{} was installed:\n{log}", spec.name);
        assert!(log.contains(reason), "no `{reason}` in:\n{log}");
        assert_outside_untouched(&ws);
        // The partial state is kept for inspection, without the refused package's files.
        let id = log
            .split("Most recent snapshot is @")
            .nth(1)
            .and_then(|s| s.get(..12))
            .unwrap_or_else(|| panic!("no failed snapshot:\n{log}"));
        let o = ws.assemble(&[
            "run",
            &format!("{}:failed@{id}", spec.name),
            "ls",
            "/usr/bin/before",
        ]);
        assert!(!o.status.success(), "partial files were left");
    }
    // A symlink planted by one package, then a package writing below it: resolution stays
    // inside the root.
    let planted = PkgSpec::new("planted", "1-r0").node("usr/lib/trap", Node::Symlink(outside));
    let user = PkgSpec::new("user", "1-r0").file("usr/lib/trap/pwned", "x\n");
    local_repo(&ws, &[planted, user]);
    ws.containerfile(&format!(
        "{PRELUDE}COPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys planted\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys user\n"
    ));
    let _ = ws.assemble(&["-t", "planted", "ctx"]);
    assert_outside_untouched(&ws);
}

#[test]
fn device_nodes_of_a_package_are_not_created_by_an_unprivileged_build() {
    let dev = PkgSpec::new("devnode", "1-r0")
        .file("usr/bin/before", "x\n")
        .node("usr/dev/mem", Node::CharDevice(1, 1));
    let Some(ws) = workspace() else { return };
    local_repo(&ws, &[dev]);
    containerfile(&ws, "devnode");
    let Some(out) = ws.assemble_rootless(&["-t", "dev", "-o", "oci:dev", "ctx"]) else {
        return;
    };
    let log = text(&out);
    if !out.status.success() {
        // Refused outright is as good as skipped: nothing was made.
        assert!(log.contains("usr/dev/mem"), "{log}");
        return;
    }
    // Installed without the node, and the log says so: no such entry in any layer.
    assert!(
        log.contains("device node /usr/dev/mem was not created"),
        "{log}"
    );
    let layout = ws.path("dev");
    for e in fs_err::read_dir(layout.join("blobs/sha256")).unwrap() {
        let bytes = fs_err::read(e.unwrap().path()).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
            for entry in a.entries().unwrap() {
                let entry = entry.unwrap();
                let name = entry.path().unwrap().display().to_string();
                assert_ne!(name, "usr/dev/mem", "a device node reached the image");
            }
        }
    }
    assert_outside_untouched(&ws);
}
