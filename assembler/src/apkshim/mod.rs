//! `apk` in every RUN step of an image that has no apk of its own.
//!
//! A RUN step is any shell command (`apk add x && rm -rf /y`, `apk add x | cat`, a script
//! calling apk), so apk must be a program the command can find at `/sbin/apk`. It cannot be
//! our own binary: the sandbox has no network, the image may have no C library for a
//! dynamically linked program, and the installer needs the build's state (index memo,
//! fetcher, sandbox for scripts). So `/sbin/apk` is a tiny static program
//! (`assembler/shim/apk.rs`, built by `build.rs` with `+crt-static` and embedded here) that
//! forwards its arguments, working directory and user to this process over a Unix socket
//! and relays the output and exit code back; [`Service`] owns that socket, and each request
//! is carried out by [`crate::apkcmd`] natively on the step's root, exactly as the
//! exact-line fast path does it (same options, index memo, database, signature checks,
//! scripts and triggers).
//!
//! The socket file lives in the build's temporary directory, outside the image; the sandbox
//! inherits an `O_PATH` descriptor of it only (no directory of the host becomes reachable),
//! and the shim connects through `/proc/self/fd/N`. Each invocation gets its own
//! connection, so pipelines and concurrent calls work; requests are carried out one at a
//! time, as apk's database lock would have them.

mod protocol;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

pub use protocol::{Conn, Request};

use crate::sandbox::{Helper, Pump};

/// The static shim, built by `build.rs` (empty where it could not be built).
static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/apk-shim"));

/// The socket's file name, which the shim looks for in `/proc/self/fd`.
const SOCKET_NAME: &str = "assemble-apk.sock";

/// A step's apk service: the shim on the host and the socket it calls.
pub struct Service {
    dir: PathBuf,
    program: PathBuf,
    listener: UnixListener,
    socket: OwnedFd,
}

impl Service {
    /// Writes the shim and binds its socket in `dir` (created; outside the image). `None`
    /// when this build of `assemble` has no shim (see `build.rs`).
    pub fn start(dir: &Path) -> io::Result<Option<Self>> {
        if SHIM.is_empty() {
            return Ok(None);
        }
        fs_err::create_dir_all(dir)?;
        let program = dir.join("apk");
        write_program(&program)?;
        let dir_fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let _ = fs_err::remove_file(dir.join(SOCKET_NAME));
        // Through the directory's descriptor: a socket path may hold only 107 bytes, and the
        // store's may be longer.
        let short = format!(
            "/proc/self/fd/{}/{SOCKET_NAME}",
            std::os::fd::AsRawFd::as_raw_fd(&dir_fd)
        );
        let listener = UnixListener::bind(&short)?;
        listener.set_nonblocking(true)?;
        let socket = rustix::fs::openat(
            &dir_fd,
            SOCKET_NAME,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            program,
            listener,
            socket,
        }))
    }

    /// The sandbox's side of the service, each connection handled by `handle`.
    pub fn helper<'s>(&'s self, serve: &'s mut dyn FnMut(UnixStream, &mut Pump<'_>)) -> Helper<'s> {
        Helper {
            program: &self.program,
            listener: &self.listener,
            socket: self.socket.as_fd(),
            serve,
            touched: None,
            mounted: None,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.dir);
    }
}

fn write_program(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs_err::write(path, SHIM)?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Reads one request from `conn` and answers it with `run` (its exit code), relaying what
/// it writes; a connection that sends no valid request gets an error and code 1.
pub fn serve(
    conn: UnixStream,
    pump: &mut Pump<'_>,
    run: &mut dyn FnMut(&Request, &Conn<'_, '_>) -> i32,
) {
    let request = protocol::read_request(&conn);
    let conn = Conn::new(conn, pump);
    let code = match request {
        Ok(request) => run(&request, &conn),
        Err(e) => {
            conn.stderr(format!("ERROR: apk: bad request from the shim: {e}\n").as_bytes());
            1
        }
    };
    conn.exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Bwrap, RunSpec, Sandbox};

    /// The shim reaches the service from an empty image (no libc, no shell), its arguments,
    /// directory and user arrive, and output and exit code come back; the mountpoint is
    /// gone afterwards.
    #[test]
    fn the_shim_forwards_a_call_and_relays_the_answer() {
        let bwrap = Bwrap::default();
        if SHIM.is_empty() || bwrap.preflight().is_err() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIP: no shim in this build, or bubblewrap cannot run here");
            }
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs_err::create_dir_all(root.join("work")).unwrap();
        let service = Service::start(&t.path().join("svc")).unwrap().unwrap();
        let mut seen = Vec::new();
        let mut handle = |conn: UnixStream, pump: &mut Pump<'_>| {
            serve(conn, pump, &mut |req, out| {
                seen.push(req.clone());
                out.stdout(b"to stdout\n");
                out.stderr(b"to stderr\n");
                7
            });
        };
        let mut helper = service.helper(&mut handle);
        let spec = RunSpec {
            argv: vec!["apk".into(), "info".into(), "-v".into()],
            workdir: "/work".into(),
            ..RunSpec::default()
        };
        let mut log = Vec::new();
        let status = bwrap
            .run_serving(&root, &spec, &mut |b| log.extend_from_slice(b), &mut helper)
            .unwrap();
        let (mounted, touched) = (helper.mounted.clone(), helper.touched.clone());
        drop(helper);
        assert_eq!(status.code(), Some(7), "{}", String::from_utf8_lossy(&log));
        assert_eq!(String::from_utf8_lossy(&log), "to stdout\nto stderr\n");
        assert_eq!(mounted.as_deref(), Some("sbin/apk"));
        assert_eq!(touched, None, "no /sbin before: made and removed");
        assert!(!root.join("sbin").exists());
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].args, ["info", "-v"]);
        assert_eq!(seen[0].cwd, "/work");
        assert_eq!(seen[0].uid, 0);
    }

    /// An answer far larger than the pipe and socket buffers arrives whole: while it is
    /// written, the command's output (which the shim is filling with it) keeps flowing.
    #[test]
    fn a_large_answer_does_not_stall_the_step() {
        let bwrap = Bwrap::default();
        if SHIM.is_empty() || bwrap.preflight().is_err() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs_err::create_dir_all(&root).unwrap();
        let service = Service::start(&t.path().join("svc")).unwrap().unwrap();
        let chunk = vec![b'x'; 64 << 10];
        let mut handle = |conn: UnixStream, pump: &mut Pump<'_>| {
            serve(conn, pump, &mut |_, out| {
                for _ in 0..64 {
                    out.stdout(&chunk);
                }
                0
            });
        };
        let mut helper = service.helper(&mut handle);
        let spec = RunSpec {
            argv: vec!["/sbin/apk".into(), "search".into()],
            ..RunSpec::default()
        };
        let mut seen = 0;
        let status = bwrap
            .run_serving(&root, &spec, &mut |b| seen += b.len(), &mut helper)
            .unwrap();
        assert!(status.success());
        assert_eq!(seen, 64 * chunk.len());
    }
}
