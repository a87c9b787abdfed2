//! The one atomic-write helper (style rule 5).
//!
//! Indexes (`APKINDEX.tar.gz`, `shared/docs/apk-format.md` §3), packages (§1), the installed
//! database (§4.1–§4.6), caches and snapshots are all written through this module: the bytes go
//! to a temporary file in the *same directory* as the target, which is fsynced and then
//! renamed over the target, and finally the directory itself is fsynced so the rename survives
//! a crash. A reader therefore sees either the old file or the complete new one, never a torn
//! write. Uploads stream into an [`AtomicFile`] and are only [committed](AtomicFile::commit)
//! after validation; dropping an uncommitted [`AtomicFile`] removes the temporary file.
//!
//! The shape follows cargo-util's `paths::write_atomic`. Every error names the path it is
//! about, as fs-err does for plain file operations.

use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync
/// of the directory.
///
/// A new file gets mode `0o666` minus the process umask, like `open(2)`; an existing file keeps
/// its permission bits. Use [`AtomicFile::with_mode`] for an exact mode.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written that replaces its target only when [committed](AtomicFile::commit).
///
/// Writes go straight to the temporary file (no buffering: wrap it in a
/// [`BufWriter`](std::io::BufWriter) for many small writes). Dropping it without committing
/// deletes the temporary file and leaves the target untouched.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: NamedTempFile,
    mode: Option<u32>,
}

impl AtomicFile {
    /// Starts writing a replacement for `path`, in a hidden temporary file
    /// (`.<name>.<random>.tmp`) in the same directory, so the final rename never crosses a
    /// filesystem boundary.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let target = path.as_ref().to_path_buf();
        let Some(name) = target.file_name() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot write `{}` atomically: it has no file name",
                    target.display()
                ),
            ));
        };
        let dir = parent_dir(&target);
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        // 0o666 minus the umask, exactly what a plain create would give; commit() fixes the
        // mode up when the caller asked for one or the target already exists.
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| annotate(&e, "create a temporary file for", &target))?;
        Ok(Self {
            target,
            temp,
            mode: None,
        })
    }

    /// Gives the committed file exactly these permission bits (not subject to the umask).
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The path this file will replace on commit.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file's current path (in the target's directory).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Opens the written bytes again for reading, for example to validate an upload before
    /// committing it. The returned handle has its own file offset.
    pub fn reopen(&self) -> io::Result<std::fs::File> {
        self.temp
            .reopen()
            .map_err(|e| annotate(&e, "reopen the temporary file for", &self.target))
    }

    /// Finishes the write: sets the mode, fsyncs the data, renames the temporary file over the
    /// target and fsyncs the directory so the rename itself is durable.
    pub fn commit(self) -> io::Result<()> {
        let Self { target, temp, mode } = self;
        // An explicit mode wins; otherwise keep the replaced file's bits, so that rewriting
        // e.g. an executable script does not silently drop its x bit.
        let mode = match mode {
            Some(mode) => Some(mode),
            None => match fs_err::metadata(&target) {
                Ok(meta) => Some(meta.permissions().mode() & 0o7777),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
        };
        if let Some(mode) = mode {
            temp.as_file()
                .set_permissions(Permissions::from_mode(mode))
                .map_err(|e| annotate(&e, "set the mode of", &target))?;
        }
        temp.as_file()
            .sync_all()
            .map_err(|e| annotate(&e, "fsync", &target))?;
        temp.persist(&target)
            .map_err(|e| annotate(&e.error, "rename the temporary file onto", &target))?;
        // Without this the rename may be lost on power failure even though the data was synced.
        fs_err::File::open(parent_dir(&target))?.sync_all()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp
            .write(buf)
            .map_err(|e| annotate(&e, "write the temporary file for", &self.target))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp
            .flush()
            .map_err(|e| annotate(&e, "flush the temporary file for", &self.target))
    }
}

/// The directory holding `path`; `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Keeps the error kind (callers match on it) but puts the path into the message.
fn annotate(err: &io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        err.kind(),
        format!("failed to {what} `{}`: {err}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("APKINDEX.tar.gz");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"hello");
        assert_eq!(entries(dir.path()), ["APKINDEX.tar.gz"]);
    }

    #[test]
    fn replaces_content_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installed");
        write_atomic(&path, b"old contents").unwrap();
        let old_ino = fs_err::metadata(&path).unwrap().ino();
        // A reader that opened the old file keeps seeing the old bytes: the new content
        // arrives as a different inode by rename, never by rewriting in place.
        let mut reader = fs_err::File::open(&path).unwrap();

        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new ").unwrap();
        // Until commit, the target is untouched.
        assert_eq!(fs_err::read(&path).unwrap(), b"old contents");
        file.write_all(b"contents").unwrap();
        file.commit().unwrap();

        assert_eq!(fs_err::read(&path).unwrap(), b"new contents");
        assert_ne!(fs_err::metadata(&path).unwrap().ino(), old_ino);
        let mut old = String::new();
        reader.read_to_string(&mut old).unwrap();
        assert_eq!(old, "old contents");
        assert_eq!(entries(dir.path()), ["installed"]);
    }

    #[test]
    fn temp_file_is_in_target_dir_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.apk");
        write_atomic(&path, b"v1").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"partial upload").unwrap();
        let temp = file.temp_path().to_path_buf();
        assert_eq!(temp.parent(), Some(dir.path()));
        assert!(temp.exists());
        let mut check = String::new();
        file.reopen().unwrap().read_to_string(&mut check).unwrap();
        assert_eq!(check, "partial upload");
        drop(file);
        assert!(!temp.exists());
        assert_eq!(entries(dir.path()), ["upload.apk"]);
        assert_eq!(fs_err::read(&path).unwrap(), b"v1");
    }

    #[test]
    fn explicit_mode_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let mut file = AtomicFile::create(&path).unwrap().with_mode(0o600);
        file.write_all(b"").unwrap();
        file.commit().unwrap();
        assert_eq!(fs_err::metadata(&path).unwrap().mode() & 0o7777, 0o600);

        let file = AtomicFile::create(&path).unwrap().with_mode(0o755);
        file.commit().unwrap();
        assert_eq!(fs_err::metadata(&path).unwrap().mode() & 0o7777, 0o755);
    }

    #[test]
    fn existing_mode_is_preserved_and_new_files_are_not_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        write_atomic(&path, b"#!/bin/sh\n").unwrap();
        // tempfile's default is 0600; a plain write must not leave files private.
        assert_ne!(fs_err::metadata(&path).unwrap().mode() & 0o777, 0o600);
        fs_err::set_permissions(&path, Permissions::from_mode(0o750)).unwrap();
        write_atomic(&path, b"#!/bin/sh\nexit 0\n").unwrap();
        assert_eq!(fs_err::metadata(&path).unwrap().mode() & 0o7777, 0o750);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("file");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing-dir"), "{err}");
        let err = AtomicFile::create(Path::new("/")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
