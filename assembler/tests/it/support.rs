//! Shared helpers: a context with a static busybox, the real `assemble` binary, tool checks.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// Where ci/setup's busybox-static puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// A test workspace: a store and a build context holding busybox.
pub struct Ws {
    pub dir: tempfile::TempDir,
}

impl Ws {
    /// `None` (after printing why) when bubblewrap or busybox is missing.
    pub fn new() -> Option<Self> {
        if !Path::new(BUSYBOX).is_file() {
            eprintln!("SKIP: {BUSYBOX} missing (ci/setup installs busybox-static)");
            return None;
        }
        if !tool("bwrap") {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("assemble-it-")
            .tempdir()
            .unwrap();
        fs_err::create_dir_all(dir.path().join("ctx")).unwrap();
        fs_err::copy(BUSYBOX, dir.path().join("ctx/busybox")).unwrap();
        Some(Self { dir })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn containerfile(&self, text: &str) {
        fs_err::write(self.path("ctx/Containerfile"), text).unwrap();
    }

    /// Runs `assemble --store <ws>/store ARGS` with SOURCE_DATE_EPOCH set.
    pub fn assemble(&self, args: &[&str]) -> Output {
        self.assemble_env(args, Some("1700000000"))
    }

    /// As [`Ws::assemble`], with SOURCE_DATE_EPOCH set to `sde` or unset.
    pub fn assemble_env(&self, args: &[&str], sde: Option<&str>) -> Output {
        self.assemble_with(args, sde, &[])
    }

    /// As [`Ws::assemble`], with more environment variables.
    pub fn assemble_vars(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.assemble_with(args, Some("1700000000"), vars)
    }

    fn assemble_with(&self, args: &[&str], sde: Option<&str>, vars: &[(&str, &str)]) -> Output {
        let mut cmd = Command::cargo_bin("assemble").unwrap();
        for (k, v) in vars {
            cmd.env(k, v);
        }
        match sde {
            Some(v) => cmd.env("SOURCE_DATE_EPOCH", v),
            None => cmd.env_remove("SOURCE_DATE_EPOCH"),
        };
        let out = cmd
            .current_dir(self.dir.path())
            .env_remove("ASSEMBLE_STORE")
            .arg("--store")
            .arg(self.path("store"))
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "$ assemble {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Ws {
    /// Runs `assemble` unprivileged: as the current user when that is not root, else as
    /// `nobody` through `setpriv` (the workspace is handed to nobody first). `None` (after
    /// printing why) when that cannot be done here.
    pub fn assemble_rootless(&self, args: &[&str]) -> Option<Output> {
        self.assemble_rootless_vars(args, &[])
    }

    /// As [`Ws::assemble_rootless`], with more environment variables.
    pub fn assemble_rootless_vars(&self, args: &[&str], vars: &[(&str, &str)]) -> Option<Output> {
        if !rustix::process::geteuid().is_root() {
            return Some(self.assemble_vars(args, vars));
        }
        if !tool("setpriv") {
            return None;
        }
        const NOBODY: u32 = 65534;
        for e in walkdir::WalkDir::new(self.dir.path()) {
            let e = e.unwrap();
            std::os::unix::fs::lchown(e.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_assemble"))
            .arg("--store")
            .arg(self.path("store"))
            .args(args)
            .current_dir(self.dir.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("HOME", self.dir.path())
            .env_remove("ASSEMBLE_STORE")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        eprintln!(
            "$ (as nobody) assemble {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out)
    }
}

/// The first lines every test image starts with: busybox and its applet links.
pub const PRELUDE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether `name` is on PATH; prints a SKIP line when not.
pub fn tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!("SKIP: `{name}` is not installed (ci/setup installs it)");
    }
    found
}

/// Runs a real tool, returning its output.
pub fn run(cmd: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut c = std::process::Command::new(cmd);
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    eprintln!("$ {cmd} {}\n{}", args.join(" "), text(&out));
    out
}

/// The fixture public key in `<ws>/ctx/keys` (COPY it into an image for `--keys-dir`).
pub fn context_keys(ws: &Ws) {
    fs_err::create_dir_all(ws.path("ctx/keys")).unwrap();
    let key = format!("{}.pub", testkit::FIXTURE_KEY);
    fs_err::copy(
        testkit::fixtures().join("keys").join(&key),
        ws.path("ctx/keys").join(&key),
    )
    .unwrap();
}

/// Copies the tree `from` into `to` (files and directories).
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs_err::create_dir_all(&dest).unwrap();
        } else {
            fs_err::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Writes a signed repository of `pkgs` (only: an earlier one is replaced) into
/// `<ws>/ctx/repo` and the fixture public key into `<ws>/ctx/keys` (COPY them into an image,
/// then `apk add -X /repo --keys-dir /keys …`).
pub fn local_repo(ws: &Ws, pkgs: &[testkit::repo::PkgSpec]) {
    let _ = fs_err::remove_dir_all(ws.path("ctx/repo"));
    let mut repo = testkit::repo::RepoBuilder::new(&ws.path("ctx/repo"));
    for p in pkgs {
        repo.add(p);
    }
    repo.write_index(true);
    context_keys(ws);
}

/// podman with its storage in the workspace (vfs), runc and the ulimits this machine
/// allows, as `containers.conf` says; `None` (after printing why) without podman and runc.
pub struct Podman {
    conf: PathBuf,
    root: String,
    runroot: String,
}

impl Podman {
    pub fn new(ws: &Ws) -> Option<Self> {
        if !(tool("podman") && tool("runc")) {
            return None;
        }
        let conf = ws.path("containers.conf");
        fs_err::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        Some(Self {
            conf,
            root: ws.path("podman-root").display().to_string(),
            runroot: ws.path("podman-run").display().to_string(),
        })
    }

    /// Runs `podman ARGS` on this storage.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--root",
            &self.root,
            "--runroot",
            &self.runroot,
            "--storage-driver",
            "vfs",
        ];
        all.extend_from_slice(args);
        run("podman", &all, &[("CONTAINERS_CONF", &self.conf)])
    }

    /// `podman load -i ARCHIVE`: the name it loaded, or `None` (after printing why) where
    /// podman cannot load images here.
    pub fn load(&self, archive: &Path) -> Option<String> {
        let o = self.run(&["load", "-i", &archive.display().to_string()]);
        if !o.status.success() {
            eprintln!("SKIP: podman cannot load images here: {}", text(&o));
            return None;
        }
        let out = text(&o);
        let name = out
            .lines()
            .find_map(|l| l.strip_prefix("Loaded image: "))
            .map(|n| n.split(',').next().unwrap_or(n).trim().to_string());
        Some(name.unwrap_or_default())
    }
}

/// The image config (JSON) of the OCI layout `dir` (its first manifest).
pub fn oci_config(dir: &Path) -> serde_json::Value {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&fs_err::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    read(manifest["config"]["digest"].as_str().unwrap())
}
