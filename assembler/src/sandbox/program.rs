//! Whether the program a command starts with exists in the image, looked up as `execvp`
//! in the sandbox would (a name without `/` through PATH, symlinks followed inside the
//! root), so that a step which cannot start says so instead of bubblewrap's
//! `execvp /bin/sh: No such file or directory`.

use std::path::Path;

use apk::rootfs::RootDir;

/// The PATH a command gets when its environment sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why the program `argv[0]` cannot be started in `root`, if it cannot: `None` when it is
/// there (or cannot be checked, leaving the verdict to the run).
pub fn missing(root: &Path, argv: &[String], env: &[String], workdir: &str) -> Option<String> {
    let program = argv.first()?;
    let dir = RootDir::open(root).ok()?;
    if program.contains('/') {
        let path = if program.starts_with('/') {
            program.clone()
        } else {
            format!("{}/{program}", workdir.trim_end_matches('/'))
        };
        return (!present(&dir, &path)).then(|| format!("`{path}` is not in the image"));
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| present(&dir, &format!("{d}/{program}")));
    (!found).then(|| format!("`{program}` is in none of the image's PATH directories ({path})"))
}

/// Whether `path` names something that is not a directory, symlinks followed.
fn present(dir: &RootDir, path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    match dir.open_file(rel) {
        Ok(_) => true,
        Err(e) if e.is_not_found() || not_a_directory(&e) => false,
        // A directory is no program; anything else that is there but cannot be opened for
        // reading here (mode 0111, …) is left to exec.
        Err(_) => dir.open_dir(rel).is_err(),
    }
}

fn not_a_directory(e: &apk::rootfs::RootfsError) -> bool {
    e.io_error().and_then(std::io::Error::raw_os_error)
        == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("bin")).unwrap();
        fs_err::create_dir_all(t.path().join("opt/app")).unwrap();
        fs_err::write(t.path().join("bin/busybox"), "").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", t.path().join("bin/sh")).unwrap();
        fs_err::write(t.path().join("opt/app/run"), "").unwrap();
        let argv = |p: &str| vec![p.to_owned()];
        let none: &[String] = &[];
        assert_eq!(missing(t.path(), &argv("/bin/sh"), none, "/"), None);
        assert_eq!(missing(t.path(), &argv("sh"), none, "/"), None);
        assert_eq!(missing(t.path(), &argv("./run"), none, "/opt/app"), None);
        assert!(missing(t.path(), &argv("/bin/bash"), none, "/").is_some());
        assert!(missing(t.path(), &argv("/bin"), none, "/").is_some());
        let env = ["PATH=/opt/app".to_owned()];
        assert_eq!(missing(t.path(), &argv("run"), &env, "/"), None);
        let why = missing(t.path(), &argv("sh"), &env, "/").unwrap();
        assert!(why.contains("/opt/app"), "{why}");
    }
}
