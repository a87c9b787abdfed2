//! Paths an apk command names, which are paths in the image (as for apk running there),
//! turned into host paths the installer reads. The installer takes them as host paths, so
//! `..` and symlinks along them are refused rather than followed out of the build root;
//! messages name the image's path, not the build root's temporary one.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use apk::rootfs::RootDir;

/// `path` made absolute from the caller's working directory.
fn absolute(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", cwd.trim_end_matches('/'))
    }
}

/// A repository URL: remote ones as they are, local paths from the working directory.
pub fn repository_url(cwd: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        absolute(cwd, url)
    }
}

/// The host path of the directory `path` of the image rooted at `base`; `create` makes its
/// last component when missing (`--root` with `--initdb`, `--cache-dir`).
pub fn image_dir(
    base: &Path,
    cwd: &str,
    path: &str,
    what: &str,
    create: bool,
) -> Result<PathBuf, String> {
    let image_path = absolute(cwd, path);
    let mut host = base.to_path_buf();
    let mut components = Path::new(&image_path).components().peekable();
    while let Some(c) = components.next() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                host.push(name);
                let last = components.peek().is_none();
                match fs_err::symlink_metadata(&host) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(format!(
                            "{what} `{path}` goes through a symbolic link in the image; name the \
                             directory it points to"
                        ));
                    }
                    Ok(m) if m.is_dir() => {}
                    Err(_) if create && last => {
                        fs_err::create_dir(&host).map_err(|e| format!("{what} `{path}`: {e}"))?;
                    }
                    _ => return Err(not_a_directory(what, path)),
                }
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!(
                    "{what} `{path}`: `..` is not allowed; name the directory from /"
                ));
            }
        }
    }
    Ok(host)
}

fn not_a_directory(what: &str, path: &str) -> String {
    if what == "--keys-dir" {
        return format!(
            "--keys-dir `{path}` is not a directory in the image; COPY the repository's public \
             keys there in an earlier step (e.g. `COPY keys/ {path}`)"
        );
    }
    format!("{what} `{path}` is not a directory in the image")
}

/// The text of the image's file `path` (symlinks followed inside the image).
pub fn read_image_file(rootfs: &Path, cwd: &str, path: &str) -> Result<String, String> {
    let image_path = absolute(cwd, path);
    let failed = |e: &dyn std::fmt::Display| format!("failed to read repositories: {path}: {e}");
    let root = RootDir::open(rootfs).map_err(|e| failed(&e))?;
    let mut text = String::new();
    root.open_file(image_path.trim_start_matches('/'))
        .map_err(|e| failed(&e))?
        .read_to_string(&mut text)
        .map_err(|e| failed(&e))?;
    Ok(text)
}
