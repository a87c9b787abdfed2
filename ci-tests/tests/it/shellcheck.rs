//! Every shell script under `ci/`, and `./quickstart`, passes shellcheck (installed by ci/setup: a missing
//! shellcheck fails this test rather than skipping it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{ci_dir, require_tool, root};

/// Files under `dir` that are shell scripts: a `sh`/`bash` shebang or a `.sh` name.
fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs_err::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            shell_scripts(&p, out);
            continue;
        }
        let head = fs_err::read(&p).unwrap_or_default();
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        let shebang = first.starts_with("#!")
            && (first.ends_with("/sh") || first.ends_with("bash") || first.ends_with(" sh"));
        if shebang || p.extension().is_some_and(|x| x == "sh") {
            out.push(p);
        }
    }
}

#[test]
fn every_ci_script_passes_shellcheck() {
    require_tool("shellcheck");
    let mut scripts = Vec::new();
    shell_scripts(&ci_dir(), &mut scripts);
    scripts.sort();
    scripts.push(root().join("quickstart"));
    let names: Vec<String> = scripts
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    for must in [
        "ci/bump-apkbuild",
        "ci/bump-containerfile",
        "ci/bump-manifest",
        "ci/gitlab-downstream",
        "ci/lib/common.sh",
        "ci/setup",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} not found in {names:?}"
        );
    }
    // -x follows `. lib/common.sh`; run from the root so paths in messages are short.
    let out = Command::new("shellcheck")
        .arg("-x")
        .args(&names)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck found problems in {names:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
