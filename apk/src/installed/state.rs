//! Loading, writing and creating the installed state of a root (apk-format.md §4, §4.8).
//!
//! apk reads `etc/apk/world` (required), then `installed`, `triggers` and `scripts.tar`
//! (each optional) from `lib/apk/db` (`apk_db_read_layer`), and rewrites all four after every
//! change, each through a temporary file renamed into place. [`init_db`] lays out what
//! `apk --initdb` and go-apk's `InitDB` create, except the device nodes, which need
//! privileges: [`device_nodes`] lists them for an installer that has them.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::db::{InstalledDb, InstalledPackage};
use super::scripts::{Script, ScriptsDb};
use super::triggers::TriggersDb;
use super::world::World;
use super::{
    ARCH_PATH, INSTALLED_PATH, InstalledError, LOCK_PATH, REPOSITORIES_PATH, SCRIPTS_GZ_PATH,
    SCRIPTS_PATH, TRIGGERS_PATH, WORLD_PATH,
};

/// The four files of an apk root, loaded together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstalledState {
    /// `lib/apk/db/installed`.
    pub db: InstalledDb,
    /// `lib/apk/db/scripts.tar`.
    pub scripts: ScriptsDb,
    /// `lib/apk/db/triggers`.
    pub triggers: TriggersDb,
    /// `etc/apk/world`.
    pub world: World,
}

/// The bytes [`InstalledState::write`] puts in each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedState {
    /// `lib/apk/db/installed`.
    pub installed: Vec<u8>,
    /// `lib/apk/db/scripts.tar`.
    pub scripts: Vec<u8>,
    /// `lib/apk/db/triggers`.
    pub triggers: Vec<u8>,
    /// `etc/apk/world`.
    pub world: Vec<u8>,
}

impl InstalledState {
    /// Reads the state of the root at `root`. `etc/apk/world` must exist (apk refuses a root
    /// without it); the three database files may be missing, as on a fresh `--initdb` root.
    pub fn load(root: &Path) -> Result<Self, InstalledError> {
        let read = |rel: &str| -> Result<Option<Vec<u8>>, InstalledError> {
            match fs_err::read(root.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let world = read(WORLD_PATH)?.ok_or_else(|| InstalledError::NotInitialized {
            root: root.to_path_buf(),
        })?;
        Ok(Self {
            world: World::from_bytes(&world)?,
            db: match read(INSTALLED_PATH)? {
                Some(b) => InstalledDb::from_bytes(&b)?,
                None => InstalledDb::default(),
            },
            triggers: match read(TRIGGERS_PATH)? {
                Some(b) => TriggersDb::from_bytes(&b)?,
                None => TriggersDb::default(),
            },
            // Newer 3.x keep using `scripts.tar` when it exists and otherwise write
            // `scripts.tar.gz`; our writer always writes `scripts.tar`, which 3.x then prefers.
            scripts: match (read(SCRIPTS_PATH)?, read(SCRIPTS_GZ_PATH)?) {
                (Some(b), _) => ScriptsDb::parse(&b)?,
                (None, Some(gz)) => ScriptsDb::parse(&gunzip(&gz)?)?,
                (None, None) => ScriptsDb::default(),
            },
        })
    }

    /// The bytes of the four files as apk would write this state: packages sorted, scripts
    /// and triggers of installed packages only, in the packages' order.
    pub fn render(&self) -> Result<RenderedState, InstalledError> {
        Ok(RenderedState {
            installed: self.db.render().into_bytes(),
            scripts: self.scripts.canonical(&self.db).to_bytes()?,
            triggers: self.triggers.canonical(&self.db).render().into_bytes(),
            world: self.world.render().into_bytes(),
        })
    }

    /// Writes the four files under `root` (mode 0644), each atomically, world first as apk
    /// does. Missing `etc/apk` and `lib/apk/db` directories are created (0755).
    pub fn write(&self, root: &Path) -> Result<(), InstalledError> {
        let r = self.render()?;
        for (rel, bytes) in [
            (WORLD_PATH, &r.world),
            (INSTALLED_PATH, &r.installed),
            (SCRIPTS_PATH, &r.scripts),
            (TRIGGERS_PATH, &r.triggers),
        ] {
            let path = root.join(rel);
            prepare_dir(root, path.parent().unwrap_or(root))?;
            write_atomic(&path, bytes, 0o644)?;
        }
        Ok(())
    }

    /// Records `pkg` as installed with its `scripts` and trigger `globs`, replacing an
    /// installed package of the same name with everything that belonged to it. Returns the
    /// replaced package.
    pub fn install(
        &mut self,
        pkg: InstalledPackage,
        scripts: Vec<Script>,
        globs: Vec<String>,
    ) -> Option<InstalledPackage> {
        let old = self.remove(&pkg.entry.name);
        self.scripts.remove(&pkg.entry.checksum);
        self.scripts.scripts.extend(scripts);
        self.triggers.set(pkg.entry.checksum, globs);
        self.db.upsert(pkg);
        old
    }

    /// Forgets the installed package `name` with its scripts and triggers.
    pub fn remove(&mut self, name: &str) -> Option<InstalledPackage> {
        let old = self.db.remove(name)?;
        self.scripts.remove(&old.entry.checksum);
        self.triggers.set(old.entry.checksum, Vec::new());
        Some(old)
    }
}

/// The largest `scripts.tar.gz` content we inflate.
const MAX_SCRIPTS_TAR: u64 = 256 << 20;

fn gunzip(gz: &[u8]) -> Result<Vec<u8>, InstalledError> {
    let members = crate::gzip::inflate_members(gz, MAX_SCRIPTS_TAR)
        .map_err(|e| std::io::Error::new(e.kind(), format!("`{SCRIPTS_GZ_PATH}`: {e}")))?;
    Ok(members.into_iter().flat_map(|m| m.data).collect())
}

/// A device node apk's `--initdb` creates in `dev/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// Path relative to the root.
    pub path: &'static str,
    /// Character device major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
}

/// The character devices `apk --initdb` makes when `dev/` did not exist
/// (`make_device_tree`): null, zero, random, urandom (0666) and console (0600). [`init_db`]
/// does not create them, since `mknod` needs privileges; an installer running as root (or
/// in a user namespace with a bind-mounted `/dev`) creates these.
pub fn device_nodes() -> &'static [DeviceNode] {
    const NODES: [DeviceNode; 5] = [
        DeviceNode {
            path: "dev/null",
            major: 1,
            minor: 3,
            mode: 0o666,
        },
        DeviceNode {
            path: "dev/zero",
            major: 1,
            minor: 5,
            mode: 0o666,
        },
        DeviceNode {
            path: "dev/random",
            major: 1,
            minor: 8,
            mode: 0o666,
        },
        DeviceNode {
            path: "dev/urandom",
            major: 1,
            minor: 9,
            mode: 0o666,
        },
        DeviceNode {
            path: "dev/console",
            major: 5,
            minor: 1,
            mode: 0o600,
        },
    ];
    &NODES
}

/// Directories of the skeleton with their modes, parents first (apk-format.md §4.8).
const SKELETON_DIRS: &[(&str, u32)] = &[
    ("etc", 0o755),
    ("etc/apk", 0o755),
    ("etc/apk/keys", 0o755),
    ("lib", 0o755),
    ("lib/apk", 0o755),
    ("lib/apk/db", 0o755),
    ("var", 0o755),
    ("var/cache", 0o755),
    ("var/cache/apk", 0o755),
    ("var/cache/misc", 0o755),
    ("tmp", 0o1777),
    ("dev", 0o755),
    ("proc", 0o555),
];

/// Creates the skeleton of an empty apk root at `root` for architecture `arch`, as
/// `apk --initdb` and go-apk's `InitDB` do (apk-format.md §4.8): the directories with their
/// modes (`tmp` 1777, `proc` 0555), `etc/apk/world` and `etc/apk/repositories` (`\n`),
/// `etc/apk/arch` (`<arch>\n`), an empty `installed` and `triggers`, an empty `scripts.tar`
/// (1024 zero bytes) and `lib/apk/db/lock` (0600). Nothing that exists is changed, so it is
/// safe on a root that is already initialised. Device nodes are not made: see
/// [`device_nodes`].
pub fn init_db(root: &Path, arch: &str) -> Result<(), InstalledError> {
    if arch.is_empty() || arch.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(InstalledError::InvalidArch {
            arch: arch.to_string(),
        });
    }
    fs_err::create_dir_all(root)?;
    for &(rel, mode) in SKELETON_DIRS {
        let path = root.join(rel);
        match fs_err::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            // A symlink here (merged /usr: `lib -> usr/lib`) is fine when it stays inside.
            Ok(m) if m.file_type().is_symlink() => ensure_inside(root, &path)?,
            Ok(_) => {
                return Err(InstalledError::UnsafePath {
                    path,
                    reason: "exists but is not a directory".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs_err::create_dir(&path)?;
                // Set after creation: the mode given to mkdir is filtered by the umask.
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let scripts = ScriptsDb::default().to_bytes()?;
    let arch_line = format!("{arch}\n");
    for (rel, content, mode) in [
        (WORLD_PATH, b"\n".as_slice(), 0o644),
        (REPOSITORIES_PATH, b"\n", 0o644),
        (ARCH_PATH, arch_line.as_bytes(), 0o644),
        (INSTALLED_PATH, b"", 0o644),
        (TRIGGERS_PATH, b"", 0o644),
        (SCRIPTS_PATH, &scripts, 0o644),
        (LOCK_PATH, b"", 0o600),
    ] {
        let path = root.join(rel);
        if fs_err::symlink_metadata(&path).is_ok() {
            continue;
        }
        ensure_inside(root, path.parent().unwrap_or(root))?;
        write_atomic(&path, content, mode)?;
    }
    Ok(())
}

/// Creates `dir` (0755, with parents) unless it exists, after checking that its nearest
/// existing ancestor is inside `root`, so a symlinked ancestor cannot make us create
/// directories elsewhere; then checks `dir` itself.
fn prepare_dir(root: &Path, dir: &Path) -> Result<(), InstalledError> {
    if !dir.is_dir() {
        let existing = dir
            .ancestors()
            .find(|a| fs_err::symlink_metadata(a).is_ok())
            .unwrap_or(root);
        ensure_inside(root, existing)?;
        fs_err::create_dir_all(dir)?;
    }
    ensure_inside(root, dir)
}

/// Refuses `path` (which must exist) when it resolves outside `root`.
///
/// It catches a symlink such as `etc/apk -> /etc/apk` left by a package. It is not proof
/// against a concurrent attacker swapping links between the check and the write; the
/// database lives in a root we own while we write it, so that is outside the threat model.
fn ensure_inside(root: &Path, path: &Path) -> Result<(), InstalledError> {
    let root = fs_err::canonicalize(root)?;
    let resolved = fs_err::canonicalize(path)?;
    if resolved.starts_with(&root) {
        Ok(())
    } else {
        Err(InstalledError::UnsafePath {
            path: path.to_path_buf(),
            reason: format!(
                "resolves to `{}`, outside the root `{}`",
                resolved.display(),
                root.display()
            ),
        })
    }
}

/// Writes `bytes` to `path` with exactly `mode` (apk's files are 0644, the lock 0600,
/// whatever the umask) through the crate's one atomic writer.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), InstalledError> {
    let mut file = crate::atomic::AtomicFile::create(path)?.with_mode(mode);
    file.write_all(bytes)?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs_err::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn init_db_lays_out_the_skeleton_and_keeps_what_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        init_db(&root, "x86_64").unwrap();
        assert_eq!(mode(&root.join("tmp")), 0o1777);
        assert_eq!(mode(&root.join("proc")), 0o555);
        assert_eq!(mode(&root.join("etc/apk/keys")), 0o755);
        assert_eq!(mode(&root.join(LOCK_PATH)), 0o600);
        assert_eq!(mode(&root.join(WORLD_PATH)), 0o644);
        assert_eq!(fs_err::read(root.join(ARCH_PATH)).unwrap(), b"x86_64\n");
        assert_eq!(fs_err::read(root.join(WORLD_PATH)).unwrap(), b"\n");
        assert_eq!(
            fs_err::read(root.join(SCRIPTS_PATH)).unwrap(),
            vec![0; 1024]
        );
        assert!(fs_err::read(root.join(INSTALLED_PATH)).unwrap().is_empty());
        assert!(!root.join("dev/null").exists());
        let state = InstalledState::load(&root).unwrap();
        assert_eq!(state, InstalledState::default());

        fs_err::write(root.join(WORLD_PATH), "busybox\n").unwrap();
        init_db(&root, "aarch64").unwrap();
        assert_eq!(fs_err::read(root.join(WORLD_PATH)).unwrap(), b"busybox\n");
        assert_eq!(fs_err::read(root.join(ARCH_PATH)).unwrap(), b"x86_64\n");
        assert!(matches!(
            init_db(&root, "x86 64"),
            Err(InstalledError::InvalidArch { .. })
        ));
    }

    #[test]
    fn load_needs_a_world_and_write_refuses_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs_err::create_dir_all(&root).unwrap();
        let err = InstalledState::load(&root).unwrap_err();
        assert!(err.to_string().contains("init_db"), "{err}");

        let outside = tmp.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/apk")).unwrap();
        let err = InstalledState::default().write(&root).unwrap_err();
        assert!(matches!(err, InstalledError::UnsafePath { .. }), "{err}");
        assert!(fs_err::read_dir(&outside).unwrap().next().is_none());
    }

    #[test]
    fn scripts_tar_gz_is_read_when_scripts_tar_is_missing() {
        use crate::checksum::Checksum;
        use crate::installed::{Script, ScriptType};
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        init_db(root, "x86_64").unwrap();
        let db = ScriptsDb {
            scripts: vec![Script {
                package: "a-1-r0".into(),
                checksum: Checksum([3; 20]),
                kind: ScriptType::PreInstall,
                mtime: 1,
                content: b"#!/bin/sh\n".to_vec(),
            }],
        };
        fs_err::remove_file(root.join(SCRIPTS_PATH)).unwrap();
        let gz = crate::gzip::compress(&db.to_bytes().unwrap(), 6);
        fs_err::write(root.join(SCRIPTS_GZ_PATH), gz).unwrap();
        assert_eq!(InstalledState::load(root).unwrap().scripts, db);
    }

    #[test]
    fn device_nodes_match_apk_initdb() {
        let names: Vec<_> = device_nodes().iter().map(|d| d.path).collect();
        assert_eq!(
            names,
            [
                "dev/null",
                "dev/zero",
                "dev/random",
                "dev/urandom",
                "dev/console"
            ]
        );
        assert_eq!(device_nodes()[4].mode, 0o600);
    }
}
