//! The dependency policy of `deny.toml` (licences, bans, sources), checked over `cargo
//! metadata` with the `spdx` crate cargo-deny itself evaluates licence expressions with.
//! cargo-deny took a fresh machine 13.5 minutes to compile; this runs in a second on every
//! `ci/test` (ci/test still runs cargo-deny where it is installed). Advisories need the
//! network database and stay with `cargo deny check advisories`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::root;

/// `cargo metadata` of the workspace, as resolved by Cargo.lock, for deny.toml's
/// `[graph] targets` (run once per test process; tests share it).
fn metadata() -> &'static Value {
    static META: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["metadata", "--format-version", "1", "--locked", "--offline"]);
        for t in deny_toml()["graph"]["targets"].as_array().unwrap() {
            cmd.args(["--filter-platform", t.as_str().unwrap()]);
        }
        let out = cmd.current_dir(root()).output().unwrap();
        assert!(
            out.status.success(),
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

fn deny_toml() -> toml::Table {
    let text = fs_err::read_to_string(root().join("deny.toml")).unwrap();
    text.parse().unwrap()
}

/// The packages of the resolved graph (`resolve.nodes`), by id.
fn packages(meta: &Value) -> Vec<&Value> {
    let used: Vec<&str> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| used.contains(&p["id"].as_str().unwrap()))
        .collect()
}

fn name(p: &Value) -> String {
    format!(
        "{} {}",
        p["name"].as_str().unwrap(),
        p["version"].as_str().unwrap()
    )
}

#[test]
fn every_licence_is_on_the_allow_list() {
    let deny = deny_toml();
    let allowed: Vec<spdx::Licensee> = deny["licenses"]["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            spdx::Licensee::parse(l).unwrap_or_else(|e| panic!("deny.toml: `{l}`: {e}"))
        })
        .collect();
    let meta = metadata();
    let mut refused = Vec::new();
    for p in packages(meta) {
        let Some(expr) = p["license"].as_str() else {
            refused.push(format!(
                "{}: no `license` field (only a licence file)",
                name(p)
            ));
            continue;
        };
        let parsed = spdx::Expression::parse_mode(expr, spdx::ParseMode::LAX);
        match parsed {
            Ok(e) if e.evaluate(|req| allowed.iter().any(|a| a.satisfies(req))) => {}
            Ok(_) => refused.push(format!("{}: `{expr}` is not allowed by deny.toml", name(p))),
            Err(e) => refused.push(format!("{}: `{expr}` is not SPDX: {e}", name(p))),
        }
    }
    assert!(
        refused.is_empty(),
        "licences outside deny.toml's [licenses] allow list (allow them there, with why, \
         or drop the dependency):\n{}",
        refused.join("\n")
    );
}

#[test]
fn every_crate_comes_from_crates_io_or_the_workspace() {
    let meta = metadata();
    let mut unknown = Vec::new();
    for p in packages(meta) {
        match p["source"].as_str() {
            None => {}
            Some(
                "registry+https://github.com/rust-lang/crates.io-index"
                | "sparse+https://index.crates.io/",
            ) => {}
            Some(other) => unknown.push(format!("{}: {other}", name(p))),
        }
    }
    assert!(
        unknown.is_empty(),
        "deny.toml [sources] allows crates.io only:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn no_wildcard_version_requirements() {
    let deny = deny_toml();
    assert_eq!(deny["bans"]["wildcards"].as_str(), Some("deny"));
    let paths_ok = deny["bans"]["allow-wildcard-paths"].as_bool() == Some(true);
    let meta = metadata();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut wild = Vec::new();
    for p in packages(meta) {
        if !members.contains(&p["id"].as_str().unwrap()) {
            continue;
        }
        for d in p["dependencies"].as_array().unwrap() {
            let is_path = d["path"].is_string();
            if d["req"].as_str() == Some("*") && !(is_path && paths_ok) {
                wild.push(format!("{} -> {}", name(p), d["name"].as_str().unwrap()));
            }
        }
    }
    assert!(
        wild.is_empty(),
        "wildcard requirements:\n{}",
        wild.join("\n")
    );
    // multiple-versions = "warn": reported, not refused.
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in packages(meta) {
        versions
            .entry(p["name"].as_str().unwrap())
            .or_default()
            .push(p["version"].as_str().unwrap());
    }
    for (n, v) in versions.iter().filter(|(_, v)| v.len() > 1) {
        eprintln!("note: {n} in {} versions: {}", v.len(), v.join(", "));
    }
}
