//! Helpers: a running `reposerve` (the real binary on 127.0.0.1, stopped by PID), test
//! packages signed with the fixture key, hand-made multipart bodies (hostile ones
//! included) and index checks.

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apk::index::{ApkIndex, SignedIndex};
use apk::package::{PackageWriter, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;

/// A test environment: a served root, trusted keys, the signing key, a config file.
pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    /// A fresh environment; `extra` is appended to the YAML configuration.
    pub fn new(extra: &str) -> Self {
        let tmp = testkit::tempdir();
        let keys = tmp.path().join("trusted");
        fs_err::create_dir_all(&keys).unwrap();
        let name = testkit::FIXTURE_KEY;
        fs_err::copy(
            testkit::fixture(&format!("keys/{name}.pub")),
            keys.join(format!("{name}.pub")),
        )
        .unwrap();
        let env = Self { tmp };
        env.write_config(extra);
        env
    }

    pub fn write_config(&self, extra: &str) {
        let p = self.tmp.path();
        let cfg = format!(
            "dir: {}\ntrusted_keys: {}\nsigning:\n  key: {}\n{extra}",
            p.join("repo").display(),
            p.join("trusted").display(),
            testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY)).display(),
        );
        fs_err::write(p.join("reposerve.yaml"), cfg).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.tmp.path().join("reposerve.yaml")
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    pub fn index_path(&self, version: &str, repo: &str, arch: &str) -> PathBuf {
        self.root()
            .join(version)
            .join(repo)
            .join(arch)
            .join("APKINDEX.tar.gz")
    }

    /// The index's packages as `name-version`, after checking its signature.
    pub fn index_names(&self, version: &str, repo: &str, arch: &str) -> Vec<String> {
        let p = self.index_path(version, repo, arch);
        if !p.exists() {
            return Vec::new();
        }
        let idx = SignedIndex::open(&p).unwrap();
        idx.verify(&testkit::fixture_keyring())
            .expect("index signature");
        names(&idx.index)
    }

    /// Every file under the root except the staging directory, with its bytes: what
    /// "nothing changed" compares.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        if !self.root().exists() {
            return out;
        }
        for e in walkdir(&self.root()) {
            if e.starts_with(self.root().join(".tmp")) {
                continue;
            }
            if e.is_file() {
                out.push((e.clone(), fs_err::read(&e).unwrap()));
            } else {
                out.push((e.clone(), Vec::new()));
            }
        }
        out.sort();
        out
    }

    pub fn start(&self, args: &[&str]) -> Server {
        Server::start(&self.config(), args)
    }
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs_err::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            out.extend(walkdir(&p));
        }
    }
    out
}

pub fn names(idx: &ApkIndex) -> Vec<String> {
    let mut v: Vec<String> = idx
        .packages
        .iter()
        .map(|p| format!("{}-{}", p.name, p.version))
        .collect();
    v.sort();
    v
}

/// The real binary, killed by PID on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Listener kind → address.
    pub addrs: std::collections::HashMap<String, SocketAddr>,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(config: &Path, args: &[&str]) -> Self {
        Self::start_with(config, args, &["http"])
    }

    /// Starts and waits until the listeners `kinds` (`http`, `https`, `redirect`) are up.
    pub fn start_with(config: &Path, args: &[&str], kinds: &[&str]) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("reposerve"))
            .arg("-c")
            .arg(config)
            .args(["-l", "127.0.0.1:0"])
            .args(args)
            .env("REPOSERVE_LOG_FORMAT", "json")
            .env("REPOSERVE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start reposerve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        let f = &v["fields"];
                        if let Some(kind) = f["message"]
                            .as_str()
                            .and_then(|m| m.strip_prefix("listening ("))
                            .and_then(|m| m.strip_suffix(')'))
                        {
                            let addr = f["addr"].as_str().unwrap_or_default().to_string();
                            let _ = tx.send((kind.to_string(), addr));
                        }
                    }
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                }
            });
        }
        let mut addrs = std::collections::HashMap::new();
        while !kinds.iter().all(|k| addrs.contains_key(*k)) {
            let Ok((kind, addr)) = rx.recv_timeout(Duration::from_secs(120)) else {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("reposerve did not start:\n{}", log.lock().unwrap());
            };
            addrs.insert(kind, addr.parse::<SocketAddr>().unwrap());
        }
        let addr = addrs
            .get("http")
            .or_else(|| addrs.get("https"))
            .copied()
            .unwrap();
        Self {
            child,
            addr,
            addrs,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, no chance to finish anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Options for a test package.
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub arch: &'a str,
    pub depends: Vec<String>,
    pub signer: Option<apk::keys::PrivateKey>,
    /// Size of an extra incompressible file, to make a large package.
    pub extra_bytes: usize,
}

impl<'a> Pkg<'a> {
    pub fn new(name: &'a str, version: &'a str) -> Self {
        Self {
            name,
            version,
            arch: "x86_64",
            depends: Vec::new(),
            signer: Some(testkit::fixture_key()),
            extra_bytes: 0,
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let tree = testkit::tempdir();
        testkit::write_fixture_like_tree(tree.path(), self.name);
        if self.extra_bytes > 0 {
            use rand::RngCore as _;
            let mut data = vec![0u8; self.extra_bytes];
            rand::thread_rng().fill_bytes(&mut data);
            fs_err::write(
                tree.path()
                    .join("usr/share/doc")
                    .join(self.name)
                    .join("blob"),
                data,
            )
            .unwrap();
        }
        let entries = scan_tree(tree.path(), &TreeOptions::new(1_700_000_000)).unwrap();
        let info = PkgInfo {
            pkgname: self.name.into(),
            pkgver: self.version.into(),
            pkgdesc: format!("test package {}", self.name),
            url: "https://example.invalid".into(),
            arch: self.arch.into(),
            origin: self.name.into(),
            license: "MIT".into(),
            depends: self.depends.clone(),
            ..PkgInfo::default()
        };
        let mut w = PackageWriter::new(info, 1_700_000_000);
        w.gzip.threads = 1;
        if let Some(k) = &self.signer {
            w.signers.push((k, SignatureType::Rsa));
        }
        let mut out = Vec::new();
        w.write(&entries, &mut out).unwrap();
        out
    }
}

/// A multipart/form-data body built by hand, so hostile parts can be sent as-is.
pub struct Form {
    pub boundary: String,
    body: Vec<u8>,
}

impl Form {
    pub fn new() -> Self {
        Self {
            boundary: "XtestBoundary7MA4YWxkTrZu0gW".into(),
            body: Vec::new(),
        }
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    pub fn file(mut self, file_name: &str, bytes: &[u8]) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// POSTs a form to /upload; returns (status, JSON body).
pub fn upload(server: &Server, token: Option<&str>, form: Form) -> (u16, serde_json::Value) {
    let (ct, body) = form.finish();
    let mut req = client()
        .post(server.url("/upload"))
        .header("content-type", ct)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("upload request");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A reader of `len` zero bytes after `head`, produced on demand (a huge body without
/// allocating it).
pub struct ZeroBody {
    pub head: std::io::Cursor<Vec<u8>>,
    pub left: u64,
}

impl Read for ZeroBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        self.left -= n as u64;
        Ok(n)
    }
}
