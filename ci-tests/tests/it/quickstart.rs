//! `./quickstart`, the README's first command, end to end with the workspace's binaries
//! (QUICKSTART_BIN_DIR, so the test does not start a release build): it builds the
//! example recipes, serves them with reposerve on 127.0.0.1, assembles an image FROM
//! scratch from that repository and runs it; a second run reuses everything and gives
//! the same image; reposerve is stopped by the script, also when a later step fails.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{bwrap_works, read, require_tool, root, workspace_bin};

fn quickstart(out: &Path, bin_dir: &Path, home: &Path) -> Output {
    quickstart_env(out, bin_dir, home, &[])
}

fn quickstart_env(out: &Path, bin_dir: &Path, home: &Path, env: &[(&str, &str)]) -> Output {
    let o = Command::new(root().join("quickstart"))
        .envs(env.iter().copied())
        .env("QUICKSTART_DIR", out)
        .env("QUICKSTART_BIN_DIR", bin_dir)
        .env("HOME", home)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// stdout then stderr (assemble and apkbuild report progress on stderr).
fn all(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The pid quickstart printed for reposerve.
fn reposerve_pid(stdout: &str) -> u32 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("reposerve (pid "))
        .unwrap_or_else(|| panic!("no reposerve line in:\n{stdout}"));
    line["reposerve (pid ".len()..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether `pid` is a live reposerve (a reused pid would be another program).
fn reposerve_alive(pid: u32) -> bool {
    fs_err::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "reposerve")
}

fn preconditions() -> Result<std::path::PathBuf, String> {
    let apkbuild = workspace_bin("apkbuild", "builder")?;
    workspace_bin("reposerve", "reposerve")?;
    workspace_bin("assemble", "assembler")?;
    if !bwrap_works() {
        return Err(
            "bubblewrap cannot create namespaces here, and assemble's RUN steps need it".into(),
        );
    }
    for tool in ["curl", "cc", "make", "pkg-config", "patch"] {
        require_tool(tool);
    }
    Ok(apkbuild.parent().unwrap().to_path_buf())
}

#[test]
fn quickstart_builds_serves_assembles_and_runs_the_image() {
    let Ok(bin_dir) = preconditions().inspect_err(|why| println!("skipped: {why}")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let first = quickstart(&out, &bin_dir, tmp.path());
    assert!(first.status.success());
    let stdout = all(&first);
    for step in 1..=6 {
        assert!(stdout.contains(&format!("==> {step}/6 ")), "{stdout}");
    }
    // The image ran: greet, linked against libgreet and the C library, all three
    // installed from reposerve by what they provide.
    assert!(stdout.contains("Hello, world!"), "{stdout}");
    for pkg in [
        "demo-runtime (1.0-r0)",
        "libgreet (1.0.0-r0)",
        "greet (1.0.0-r0)",
    ] {
        assert!(stdout.contains(&format!("Installing {pkg}")), "{stdout}");
    }
    assert!(stdout.contains("uploaded edge/main/x86_64/greet-1.0.0-r0.apk"));
    assert!(out.join("image/rootfs/usr/bin/greet").is_file());
    assert!(out.join("image/rootfs/usr/bin/motd").is_file());
    assert!(
        out.join("reposerve/data/edge/main/x86_64/APKINDEX.tar.gz")
            .is_file()
    );
    assert!(stdout.contains("podman load -i"), "{stdout}");
    assert!(out.join("image/greet.tar").is_file());
    assert!(
        !reposerve_alive(reposerve_pid(&stdout)),
        "reposerve left running"
    );
    // The OCI layout and the docker archive are ones skopeo reads (podman and docker
    // load them the same way; they are not run here, their storage is the machine's).
    require_tool("skopeo");
    for image in [
        format!("oci:{}:latest", out.join("image/oci").display()),
        format!("docker-archive:{}", out.join("image/greet.tar").display()),
    ] {
        let inspect = Command::new("skopeo")
            .args(["inspect", &image])
            .output()
            .unwrap();
        assert!(
            inspect.status.success(),
            "{image}: {}",
            String::from_utf8_lossy(&inspect.stderr)
        );
    }
    let index = read(&out.join("image/oci/index.json"));

    // Again: the key, the packages, the upload and the image steps are all reused, and
    // the image is the same.
    let second = quickstart(&out, &bin_dir, tmp.path());
    assert!(second.status.success());
    let stdout = all(&second);
    assert!(stdout.contains("reusing "), "{stdout}");
    assert!(
        stdout.contains("6 recipes: 0 built, 6 from the cache"),
        "{stdout}"
    );
    // The reproducible rebuild uploads the very same package: a no-op, not a conflict.
    assert!(
        stdout.contains(
            "same     edge/main/x86_64/greet-1.0.0-r0.apk (already published, unchanged)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("--> Using cache"), "{stdout}");
    assert!(stdout.contains("Hello, world!"), "{stdout}");
    assert_eq!(read(&out.join("image/oci/index.json")), index);
    assert!(!reposerve_alive(reposerve_pid(&stdout)));
}

#[test]
fn a_failing_step_stops_reposerve_and_says_what_to_do() {
    let Ok(bin_dir) = preconditions().inspect_err(|why| println!("skipped: {why}")) else {
        return;
    };
    // The real apkbuild and reposerve, and an `assemble` that fails (false(1)), so the
    // script fails after reposerve started. The recipes build without the sandbox, as on
    // machines where bubblewrap cannot work.
    let tmp = tempfile::tempdir().unwrap();
    let bins = tmp.path().join("bin");
    fs_err::create_dir_all(&bins).unwrap();
    for b in ["apkbuild", "reposerve"] {
        std::os::unix::fs::symlink(bin_dir.join(b), bins.join(b)).unwrap();
    }
    let false_bin = ["/bin/false", "/usr/bin/false"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("false(1)");
    std::os::unix::fs::symlink(false_bin, bins.join("assemble")).unwrap();
    let o = quickstart_env(
        &tmp.path().join("demo"),
        &bins,
        tmp.path(),
        &[("QUICKSTART_NO_SANDBOX", "1")],
    );
    assert!(!o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        stdout.contains("building without the bubblewrap sandbox"),
        "{stdout}"
    );
    assert!(
        stdout.contains("uploaded edge/main/x86_64/greet-1.0.0-r0.apk"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("quickstart: assemble could not build the image"),
        "{stderr}"
    );
    assert!(stderr.contains("what to do: "), "{stderr}");
    assert!(
        !reposerve_alive(reposerve_pid(&stdout)),
        "reposerve left running"
    );
}
