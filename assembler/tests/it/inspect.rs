//! `assemble inspect`: config, layers, packages from the installed database, s6 services.

use crate::support::{PRELUDE, Ws, context_keys, copy_dir, text};

#[test]
fn inspect_lists_config_layers_packages_and_services() {
    let Some(ws) = Ws::new() else { return };
    let fx = testkit::fixtures();
    copy_dir(&fx.join("repo"), &ws.path("ctx/repo"));
    context_keys(&ws);
    for (p, body) in [
        ("ctx/etc/services.d/web/run", "#!/bin/sh\nexec httpd -f\n"),
        ("ctx/etc/services.d/web/finish", "#!/bin/sh\n"),
        (
            "ctx/etc/services.d/worker/run",
            "#!/bin/sh\nexec sleep 1000\n",
        ),
        ("ctx/etc/s6-overlay/s6-rc.d/db/type", "longrun\n"),
        ("ctx/etc/s6-overlay/s6-rc.d/db/run", "#!/bin/sh\n"),
        ("ctx/etc/s6-overlay/s6-rc.d/init-once/type", "oneshot\n"),
    ] {
        let p = ws.path(p);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, body).unwrap();
    }
    ws.containerfile(&format!(
        "{PRELUDE}COPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys hello\n\
         ADD etc /etc\n\
         ENV MODE=prod\nUSER 65534\nWORKDIR /srv\nEXPOSE 80 443/udp\nVOLUME /data\n\
         LABEL org.example.team=infra\nSTOPSIGNAL SIGQUIT\n\
         HEALTHCHECK CMD [\"true\"]\nENTRYPOINT [\"/init\"]\nCMD [\"serve\"]\n"
    ));
    let o = ws.assemble(&["-t", "svc:1", "ctx"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = ws.assemble(&["inspect", "svc:1"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(t.starts_with("Image: svc:1 @"), "{t}");
    assert!(t.contains("  Entrypoint:   [\"/init\"]\n"), "{t}");
    assert!(t.contains("  Cmd:          [\"serve\"]\n"), "{t}");
    assert!(t.contains("    MODE=prod\n"), "{t}");
    assert!(t.contains("  User:         65534\n"), "{t}");
    assert!(t.contains("  ExposedPorts: 443/udp 80/tcp\n"), "{t}");
    assert!(t.contains("    org.example.team=infra\n"), "{t}");
    assert!(t.contains("Packages (1):\n  hello 1.0-r0 "), "{t}");
    assert!(t.contains("Services (4):"), "{t}");
    assert!(
        t.contains("  web (services.d, longrun) /etc/services.d/web [finish, run]"),
        "{t}"
    );
    assert!(t.contains("  db (s6-rc, longrun)"), "{t}");
    assert!(t.contains("  init-once (s6-rc, oneshot)"), "{t}");

    let o = ws.assemble(&["inspect", "--json", "svc:1"]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["packages"][0]["name"], "hello");
    assert_eq!(j["packages"][0]["version"], "1.0-r0");
    assert!(j["packages"][0]["arch"].is_string());
    assert!(j["packages"][0]["origin"].is_string());
    assert_eq!(j["config"]["stop_signal"], "SIGQUIT");
    assert_eq!(j["config"]["volumes"], serde_json::json!(["/data"]));
    assert_eq!(
        j["config"]["healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(j["config"]["workdir"], "/srv");
    let layers = j["layers"].as_array().unwrap();
    // COPY busybox, the applet links, COPY repo, COPY keys, apk add, ADD etc.
    assert_eq!(layers.len(), 6, "{layers:?}");
    assert!(
        layers[4]["created_by"]
            .as_str()
            .unwrap()
            .contains("apk add")
    );
    assert!(layers[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    let names: Vec<&str> = j["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "worker", "db", "init-once"]);

    // A snapshot before the install has no packages; a deleted package disappears.
    let snaps = text(&ws.assemble(&["snapshots", "svc:1"]));
    let before = snaps
        .lines()
        .find(|l| l.contains("COPY keys"))
        .and_then(|l| l.get(1..13))
        .unwrap()
        .to_string();
    let o = ws.assemble(&["inspect", "--json", &format!("svc:1@{before}")]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["packages"], serde_json::json!([]));
    assert_eq!(j["services"], serde_json::json!([]));
    let o = ws.assemble(&["inspect", "nope:1"]);
    assert!(!o.status.success());
}
