//! Paths of the repository and ways to run its scripts and tools.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ci-tests sits in the repository root")
        .to_path_buf()
}

/// `ci/` of the repository.
pub fn ci_dir() -> PathBuf {
    root().join("ci")
}

/// A `ci/` script, ready to get arguments, run in `dir`.
pub fn script(name: &str, dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(ci_dir().join(name));
    c.current_dir(dir);
    c
}

/// PATH with `ci/` first, so scripts and templates find each other by name.
pub fn path_with_ci() -> String {
    format!(
        "{}:{}",
        ci_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Panics, naming ci/setup, when a tool the tests need is missing: ci/setup installs
/// every one of them, so a missing tool is a broken setup, not a reason to skip.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{name}` is not on PATH; run ci/setup, which installs it"
    );
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs_err::create_dir_all(parent).unwrap();
    }
    fs_err::write(&p, text).unwrap();
    p
}

/// Makes `p` executable (a stand-in tool written with [`write`]).
pub fn executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The file's text.
pub fn read(p: &Path) -> String {
    fs_err::read_to_string(p).unwrap()
}

/// The names of the entries of `dir`, sorted (to see that no temporary file is left).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A binary of the workspace built beside this test binary (`cargo test --workspace`
/// builds them all); `Err` says how to build it. `krate` names the package for the hint.
pub fn workspace_bin(name: &str, krate: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .ok_or("no target directory")?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is not built (cargo build -p {krate})",
            bin.display()
        ))
    }
}

/// Whether bubblewrap can make the namespaces assemble's RUN steps need here.
pub fn bwrap_works() -> bool {
    Command::new("bwrap")
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}
