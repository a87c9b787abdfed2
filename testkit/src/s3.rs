//! A real S3-compatible server for tests: `s3s-fs` 0.14.1 (installed by `ci/setup`)
//! started on 127.0.0.1 with a free port over a temporary directory, stopped by PID when
//! dropped. Buckets are directories under the server's root, so creating one needs no
//! S3 call.
//!
//! ```no_run
//! let s3 = testkit::s3::S3Server::start().expect("s3s-fs");
//! s3.create_bucket("cache");
//! // endpoint: s3.endpoint(), credentials: s3.access_key / s3.secret_key
//! ```

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key the server accepts.
pub const ACCESS_KEY: &str = "AKTESTKITS3S";
/// Secret key the server accepts.
pub const SECRET_KEY: &str = "SKTESTKITS3SSECRET";
/// The region clients should sign for (s3s-fs accepts any).
pub const REGION: &str = "us-east-1";

/// A running `s3s-fs`, killed (by its PID) and its data removed on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
    /// Access key id.
    pub access_key: &'static str,
    /// Secret access key.
    pub secret_key: &'static str,
}

/// Where `s3s-fs` is: `$S3S_FS`, `PATH`, or `~/.cargo/bin`.
pub fn binary() -> Option<PathBuf> {
    crate::find_tool("S3S_FS", "s3s-fs")
}

impl S3Server {
    /// Starts the server and waits until it accepts connections. The error says what is
    /// missing (run `ci/setup`) or what the server printed.
    pub fn start() -> Result<Self, String> {
        let bin = binary().ok_or_else(|| {
            "s3s-fs not found (PATH, ~/.cargo/bin, $S3S_FS): run ci/setup, which does \
             `cargo install s3s-fs --version 0.14.1 --locked --features binary`"
                .to_string()
        })?;
        let mut last_err = String::new();
        // A free port can be taken between probing and binding: retry a few times.
        for _ in 0..5 {
            match Self::try_start(&bin) {
                Ok(s) => return Ok(s),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn try_start(bin: &Path) -> Result<Self, String> {
        let port = free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        let root = tempfile::Builder::new()
            .prefix("s3s-fs-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let log = root.path().join(".server.log");
        let log_file = fs_err::File::create(&log)
            .map_err(|e| format!("{e}"))?
            .into_file();
        let log_err = log_file.try_clone().map_err(|e| format!("{e}"))?;
        let data = root.path().join("data");
        fs_err::create_dir(&data).map_err(|e| format!("{e}"))?;
        let mut child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("failed to start `{}`: {e}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // A net, not a timing check: a busy machine may take long to start it.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut out = String::new();
                let _ = fs_err::File::open(&log).and_then(|mut f| f.read_to_string(&mut out));
                return Err(format!("s3s-fs exited ({status}) before answering: {out}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("s3s-fs did not answer on {addr} within 120 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            port,
            root,
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PID of the server process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding the buckets (one directory each, objects as files).
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Creates a bucket (a directory under the data root).
    pub fn create_bucket(&self, name: &str) {
        fs_err::create_dir_all(self.data_dir().join(name)).expect("create bucket directory");
    }

    /// The environment an AWS client needs: credentials, region and endpoint.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Our own child, by PID: never anything found by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
