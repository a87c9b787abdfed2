//! `/sbin/apk` inside a build step's sandbox, for images that have no apk of their own.
//!
//! A build step's sandbox has no network and the image may have no C library, so this is a
//! small static program (std only, built by `assembler/build.rs` with `+crt-static`) that
//! does no package work itself: it forwards its arguments, working directory and user to
//! the `assemble` running the build, which carries out the apk command natively on the
//! step's root (`assembler/src/apkcmd`), and it relays the output and exit code back.
//!
//! The way back to `assemble` is a listening Unix socket outside the image: the sandbox
//! inherits an `O_PATH` descriptor of the socket file (which grants no access to any
//! directory of the host), found here by its name in `/proc/self/fd`, and each invocation
//! connects through `/proc/self/fd/N` to a connection of its own.
//!
//! Wire format (see `assembler/src/apkshim/protocol.rs`, which must match): the request is
//! `APKSHIM1`, then a u32 count and that many u32-length-prefixed byte strings (uid, cwd,
//! then the arguments after argv[0]), integers little-endian. The answer is frames of a tag
//! byte and a u32-length-prefixed payload: 1 stdout, 2 stderr, 0 the exit code (i32).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// The file name of the socket `assemble` listens on.
const SOCKET_NAME: &str = "assemble-apk.sock";
const MAGIC: &[u8] = b"APKSHIM1";
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 0;

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "ERROR: apk: cannot reach the assemble build that provides apk in this step ({e}); \
                 apk works only inside `assemble` build steps, or install apk-tools in the image"
            );
            1
        }
    };
    std::process::exit(code);
}

fn run() -> io::Result<i32> {
    let path = find_socket()?;
    let mut conn = UnixStream::connect(&path)?;
    send_request(&mut conn)?;
    relay(&mut conn)
}

/// `/proc/self/fd/N` of the inherited descriptor naming the socket.
fn find_socket() -> io::Result<PathBuf> {
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let path = entry?.path();
        if let Ok(target) = std::fs::read_link(&path)
            && target
                .file_name()
                .is_some_and(|n| n.as_bytes() == SOCKET_NAME.as_bytes())
        {
            return Ok(path);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "no inherited apk socket",
    ))
}

fn send_request(conn: &mut UnixStream) -> io::Result<()> {
    // The owner of /proc/self is this process's user in the sandbox's namespace.
    let uid = std::fs::metadata("/proc/self")?.uid().to_string();
    let cwd = std::env::current_dir()
        .map(PathBuf::into_os_string)
        .unwrap_or_else(|_| OsString::from("/"));
    let mut fields: Vec<Vec<u8>> = vec![uid.into_bytes(), cwd.into_vec()];
    fields.extend(std::env::args_os().skip(1).map(OsString::into_vec));
    let mut buf = MAGIC.to_vec();
    buf.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for f in &fields {
        buf.extend_from_slice(&(f.len() as u32).to_le_bytes());
        buf.extend_from_slice(f);
    }
    conn.write_all(&buf)?;
    conn.flush()
}

/// Writes stdout and stderr frames where they belong until the exit frame. A closed
/// stdout (`apk info | head -1`) stops the copying, not the command, which `assemble`
/// finishes: an install is never cut short half-way.
fn relay(conn: &mut UnixStream) -> io::Result<i32> {
    let mut open = [true, true];
    loop {
        let mut head = [0u8; 5];
        conn.read_exact(&mut head)?;
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload)?;
        let (slot, result) = match head[0] {
            EXIT if len == 4 => {
                let code = i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let _ = io::stdout().flush();
                return Ok(code);
            }
            STDOUT if open[0] => (0, io::stdout().write_all(&payload)),
            STDERR if open[1] => (1, io::stderr().write_all(&payload)),
            STDOUT | STDERR => continue,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown frame {other}"),
                ));
            }
        };
        if result.is_err() {
            open[slot] = false;
        }
    }
}
