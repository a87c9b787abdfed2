//! Every template and example `.gitlab-ci.yml` is well-formed YAML whose keys GitLab
//! accepts: global keywords, job keywords and the keys inside `rules`, `needs`,
//! `artifacts`, `id_tokens`, `trigger` and `spec: inputs`. Templates' inputs are
//! checked both ways (every `$[[ inputs.x ]]` declared, every declared input used), the
//! examples' `include: inputs` against the template's spec, and every job script is
//! checked by `sh -n` and shellcheck.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{read, require_tool, root};

/// Top-level keys of a pipeline that are not jobs (GitLab CI/CD YAML reference).
const GLOBAL: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    // Deprecated globally but still accepted.
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
];

/// Job keywords (GitLab CI/CD YAML reference, 17.x).
const JOB: &[&str] = &[
    "after_script",
    "allow_failure",
    "artifacts",
    "before_script",
    "cache",
    "coverage",
    "dast_configuration",
    "dependencies",
    "environment",
    "except",
    "extends",
    "hooks",
    "identity",
    "id_tokens",
    "image",
    "inherit",
    "interruptible",
    "manual_confirmation",
    "needs",
    "only",
    "pages",
    "parallel",
    "release",
    "resource_group",
    "retry",
    "rules",
    "run",
    "script",
    "secrets",
    "services",
    "stage",
    "tags",
    "timeout",
    "trigger",
    "variables",
    "when",
];
const RULE: &[&str] = &[
    "if",
    "changes",
    "exists",
    "when",
    "allow_failure",
    "variables",
    "needs",
    "interruptible",
];
const NEED: &[&str] = &[
    "job",
    "artifacts",
    "optional",
    "pipeline",
    "project",
    "ref",
    "parallel",
];
const ARTIFACTS: &[&str] = &[
    "paths",
    "exclude",
    "expire_in",
    "expose_as",
    "name",
    "public",
    "access",
    "reports",
    "untracked",
    "when",
];
const TRIGGER: &[&str] = &["include", "project", "branch", "strategy", "forward"];
const INPUT: &[&str] = &["default", "description", "options", "regex", "type"];
const INCLUDE: &[&str] = &[
    "local",
    "project",
    "ref",
    "file",
    "remote",
    "template",
    "component",
    "inputs",
    "rules",
    "artifact",
    "job",
];
const WHEN: &[&str] = &[
    "on_success",
    "on_failure",
    "always",
    "manual",
    "delayed",
    "never",
];

fn templates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs_err::read_dir(root().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

fn examples() -> Vec<PathBuf> {
    ["source", "package", "image", "manifest"]
        .iter()
        .map(|p| {
            root()
                .join("examples/gitlab")
                .join(p)
                .join(".gitlab-ci.yml")
        })
        .collect()
}

fn keys(v: &Value, what: &str) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn allowed(v: &Value, list: &[&str], what: &str, errors: &mut Vec<String>) {
    for k in keys(v, what) {
        if !list.contains(&k.as_str()) {
            errors.push(format!("{what}: `{k}` is not a GitLab keyword here"));
        }
    }
}

/// A template split into its `spec: inputs` (name → declaration) and its body text.
fn split_spec(path: &Path, text: &str) -> (BTreeMap<String, Value>, String) {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
    if docs.len() == 1 {
        return (BTreeMap::new(), text.to_string());
    }
    assert_eq!(
        docs.len(),
        2,
        "{}: a spec header and one body expected",
        path.display()
    );
    assert_eq!(keys(&docs[0], "header"), ["spec"], "{}", path.display());
    assert_eq!(
        keys(&docs[0]["spec"], "spec"),
        ["inputs"],
        "{}",
        path.display()
    );
    let inputs = docs[0]["spec"]["inputs"]
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    let body = text
        .split_once("\n---\n")
        .expect("--- separator")
        .1
        .to_string();
    (inputs, body)
}

/// `$[[ inputs.NAME ]]` names used in `text`.
fn used_inputs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("$[[") {
        let end = rest[i..].find("]]").expect("unclosed $[[") + i;
        let inner = rest[i + 3..end].trim();
        let name = inner.strip_prefix("inputs.").expect("$[[ inputs.x ]] only");
        out.insert(name.split('|').next().unwrap().trim().to_string());
        rest = &rest[end + 2..];
    }
    out
}

/// The body with every input replaced by `values` (the defaults unless given), as
/// GitLab interpolates before parsing.
fn interpolate(body: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = body.to_string();
    for (k, v) in values {
        out = out.replace(&format!("$[[ inputs.{k} ]]"), v);
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Checks one pipeline body; returns the job scripts (job name → script text).
pub fn check_pipeline(
    what: &str,
    doc: &Value,
    errors: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut scripts = BTreeMap::new();
    let mut stages: BTreeSet<String> = [".pre", "build", "test", "deploy", ".post"]
        .map(String::from)
        .into();
    if let Some(s) = doc.get("stages").and_then(Value::as_array) {
        stages.extend(s.iter().map(scalar));
    }
    for (name, job) in doc
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not a mapping"))
    {
        if GLOBAL.contains(&name.as_str()) {
            if name == "include" {
                for inc in job.as_array().cloned().unwrap_or_else(|| vec![job.clone()]) {
                    if inc.is_object() {
                        allowed(&inc, INCLUDE, &format!("{what}: include"), errors);
                    }
                }
            }
            continue;
        }
        let w = format!("{what}: job `{name}`");
        allowed(job, JOB, &w, errors);
        let hidden = name.starts_with('.');
        if !hidden
            && job.get("script").is_none()
            && job.get("trigger").is_none()
            && job.get("extends").is_none()
        {
            errors.push(format!("{w}: needs `script` or `trigger`"));
        }
        if let Some(st) = job.get("stage")
            && !stages.contains(&scalar(st))
        {
            errors.push(format!("{w}: stage `{}` is not declared", scalar(st)));
        }
        for key in ["before_script", "script", "after_script"] {
            if let Some(s) = job.get(key) {
                let lines = s.as_array().cloned().unwrap_or_else(|| vec![s.clone()]);
                let mut text = String::new();
                for l in lines {
                    match l {
                        Value::String(s) => {
                            text.push_str(&s);
                            text.push('\n');
                        }
                        other => errors.push(format!(
                            "{w}: {key} line is not a string (quote lines with `: `): {other}"
                        )),
                    }
                }
                scripts.insert(format!("{name}.{key}"), text);
            }
        }
        for r in job
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            allowed(r, RULE, &format!("{w}: rules"), errors);
            if let Some(when) = r.get("when")
                && !WHEN.contains(&scalar(when).as_str())
            {
                errors.push(format!("{w}: rules: when `{}`", scalar(when)));
            }
        }
        for n in job
            .get("needs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if n.is_object() {
                allowed(n, NEED, &format!("{w}: needs"), errors);
            }
        }
        if let Some(a) = job.get("artifacts") {
            allowed(a, ARTIFACTS, &format!("{w}: artifacts"), errors);
        }
        if let Some(t) = job.get("trigger").filter(|t| t.is_object()) {
            allowed(t, TRIGGER, &format!("{w}: trigger"), errors);
        }
        if let Some(ids) = job.get("id_tokens") {
            for (tok, v) in ids.as_object().into_iter().flatten() {
                if keys(v, "id_token") != ["aud"] {
                    errors.push(format!("{w}: id_tokens.{tok} must have exactly `aud`"));
                }
            }
        }
    }
    scripts
}

/// Syntax-checks a job script with `sh -n` and lints it with shellcheck (as sh; SC2086
/// off because option strings from inputs are split on purpose).
fn check_script(what: &str, text: &str, errors: &mut Vec<String>) {
    let t = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(t.path(), format!("#!/bin/sh\n{text}")).unwrap();
    let n = Command::new("sh").arg("-n").arg(t.path()).output().unwrap();
    if !n.status.success() {
        errors.push(format!(
            "{what}: sh -n: {}",
            String::from_utf8_lossy(&n.stderr)
        ));
    }
    let sc = Command::new("shellcheck")
        .args(["-s", "sh", "-e", "SC2086"])
        .arg(t.path())
        .output()
        .unwrap();
    if !sc.status.success() {
        errors.push(format!(
            "{what}: shellcheck:\n{}",
            String::from_utf8_lossy(&sc.stdout)
        ));
    }
}

#[test]
fn templates_are_documented_valid_and_use_their_inputs() {
    require_tool("shellcheck");
    let mut errors = Vec::new();
    let names: Vec<String> = templates()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "build_apk.yml",
            "build_image.yml",
            "commit_downstream_apkbuild.yml",
            "commit_downstream_container.yml",
            "commit_downstream_manifest.yml",
            "deploy_apk.yml",
            "pipeline.yml",
        ]
    );
    for path in templates() {
        let what = path.strip_prefix(root()).unwrap().display().to_string();
        let text = read(&path);
        // Documented at the top: what it does, what it needs, an include example.
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for must in ["Needs", "nputs", "Example", "include:"] {
            if !header.contains(must) {
                errors.push(format!("{what}: the header comment lacks `{must}`"));
            }
        }
        let (inputs, body) = split_spec(&path, &text);
        for (name, decl) in &inputs {
            if decl.is_object() {
                allowed(decl, INPUT, &format!("{what}: input `{name}`"), &mut errors);
            }
            if let Some(opts) = decl.get("options").and_then(Value::as_array)
                && let Some(d) = decl.get("default")
                && !opts.contains(d)
            {
                errors.push(format!("{what}: input `{name}`: default not among options"));
            }
            if !header.contains(name.as_str()) {
                errors.push(format!(
                    "{what}: input `{name}` is not documented in the header"
                ));
            }
        }
        let used = used_inputs(&body);
        let declared: BTreeSet<String> = inputs.keys().cloned().collect();
        for u in used.difference(&declared) {
            errors.push(format!("{what}: uses undeclared input `{u}`"));
        }
        for d in declared.difference(&used) {
            errors.push(format!("{what}: declares unused input `{d}`"));
        }
        // Required inputs get a placeholder, as an including project would give.
        let values = inputs
            .iter()
            .map(|(k, d)| {
                (
                    k.clone(),
                    d.get("default").map_or_else(|| format!("test-{k}"), scalar),
                )
            })
            .collect();
        let doc: Value = serde_saphyr::from_str(&interpolate(&body, &values))
            .unwrap_or_else(|e| panic!("{what}: body after interpolation is not YAML: {e}"));
        for (job, script) in check_pipeline(&what, &doc, &mut errors) {
            check_script(&format!("{what}: {job}"), &script, &mut errors);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn examples_are_valid_and_their_includes_match_the_templates() {
    require_tool("shellcheck");
    let mut errors = Vec::new();
    for path in examples() {
        let what = path.strip_prefix(root()).unwrap().display().to_string();
        let doc: Value = serde_saphyr::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
        for (job, script) in check_pipeline(&what, &doc, &mut errors) {
            check_script(&format!("{what}: {job}"), &script, &mut errors);
        }
        for inc in doc
            .get("include")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let local = scalar(&inc["local"]);
            let Some(name) = local.strip_prefix("templates/") else {
                errors.push(format!(
                    "{what}: include `{local}` is not one of templates/"
                ));
                continue;
            };
            let tpath = root().join("templates").join(name);
            if !tpath.is_file() {
                errors.push(format!("{what}: include `{local}` does not exist"));
                continue;
            }
            let (spec, _) = split_spec(&tpath, &read(&tpath));
            let given: BTreeSet<String> = inc
                .get("inputs")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for g in &given {
                if !spec.contains_key(g) {
                    errors.push(format!("{what}: {name} has no input `{g}`"));
                }
            }
            for (k, decl) in &spec {
                if decl.get("default").is_none() && !given.contains(k) {
                    errors.push(format!("{what}: {name} needs input `{k}`"));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_checker_catches_what_gitlab_refuses() {
    let doc: Value = serde_saphyr::from_str(
        "stages: [build]\njob:\n  stage: tset\n  scirpt: [x]\n  rules:\n    - iff: $X\n  id_tokens:\n    T: {audience: x}\nother:\n  script:\n    - echo a: b\n",
    )
    .unwrap();
    let mut errors = Vec::new();
    check_pipeline("t", &doc, &mut errors);
    let all = errors.join("\n");
    for must in [
        "`scirpt` is not a GitLab keyword",
        "needs `script` or `trigger`",
        "stage `tset` is not declared",
        "rules: `iff`",
        "id_tokens.T must have exactly `aud`",
        "script line is not a string",
    ] {
        assert!(all.contains(must), "missing `{must}` in:\n{all}");
    }
}
