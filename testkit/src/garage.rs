//! A real Garage (a production S3 store, `cargo install garage`) for tests: one node on
//! 127.0.0.1 with free ports over a temporary directory, a layout, a key and a bucket made
//! with its own CLI, stopped by PID when dropped.
//!
//! Garage takes about 25 minutes to build on two busy cores, so `ci/setup` does not install
//! it: tests that want it skip with [`INSTALL`] in their message when it is absent.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install the binary the tests look for.
pub const INSTALL: &str = "cargo install garage --version 2.5.0 --locked --no-default-features \
     --features bundled-libs,sqlite,lmdb (about 25 min on 2 busy cores), or set GARAGE=/path/to/garage";
/// Access key id of the test key.
pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
/// Its secret.
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Where `garage` is: `$GARAGE`, `PATH`, or `~/.cargo/bin`.
pub fn binary() -> Option<PathBuf> {
    crate::find_tool("GARAGE", "garage")
}

/// A running single-node Garage with one bucket per [`GarageServer::create_bucket`].
pub struct GarageServer {
    child: Child,
    bin: PathBuf,
    s3_port: u16,
    root: tempfile::TempDir,
}

impl GarageServer {
    /// Starts Garage and gives it a layout and the test key. The error says what is missing
    /// ([`INSTALL`]) or what Garage printed.
    pub fn start() -> Result<Self, String> {
        let bin = binary().ok_or_else(|| format!("garage not found; {INSTALL}"))?;
        let root = tempfile::Builder::new()
            .prefix("garage-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let (s3_port, rpc_port) = (free_port()?, free_port()?);
        let cfg = root.path().join("garage.toml");
        write_config(&cfg, root.path(), s3_port, rpc_port)?;
        let log = fs_err::File::create(root.path().join("server.log"))
            .map_err(|e| e.to_string())?
            .into_file();
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&cfg)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("failed to start `{}`: {e}", bin.display()))?;
        let server = Self {
            child,
            bin,
            s3_port,
            root,
        };
        server.wait_for(rpc_port)?;
        server.init_cluster()?;
        Ok(server)
    }

    fn wait_for(&self, port: u16) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("garage did not listen on {addr}: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// One node with a role, and the test key.
    fn init_cluster(&self) -> Result<(), String> {
        let id = self.cli(&["node", "id", "-q"])?;
        let id = id.get(..16).ok_or("garage printed no node id")?.to_string();
        self.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id])?;
        self.cli(&["layout", "apply", "--version", "1"])?;
        self.cli(&[
            "key", "import", "--yes", "-n", "test", ACCESS_KEY, SECRET_KEY,
        ])?;
        self.wait_for(self.s3_port)
    }

    /// Runs the CLI against this node; its stdout, or an error with its output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.root.path().join("garage.toml"))
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "garage {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates a bucket the test key may read and write.
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        self.cli(&["bucket", "create", name])?;
        self.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", name, "--key", "test",
        ])
        .map(drop)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        fs_err::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for GarageServer {
    fn drop(&mut self) {
        // Our own child, by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(cfg: &Path, dir: &Path, s3_port: u16, rpc_port: u16) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect::<String>();
    let text = format!(
        "metadata_dir = \"{0}/meta\"\ndata_dir = \"{0}/data\"\ndb_engine = \"sqlite\"\n\
         replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
         rpc_public_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{secret}\"\n\
         [s3_api]\ns3_region = \"us-east-1\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\n\
         root_domain = \".s3.garage.localhost\"\n",
        dir.display()
    );
    fs_err::write(cfg, text).map_err(|e| e.to_string())?;
    // Garage refuses a configuration holding a secret that others may read.
    fs_err::set_permissions(cfg, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}
