//! The shim's wire format (it must match `assembler/shim/apk.rs`).
//!
//! Request: `APKSHIM1`, a u32 count, then that many u32-length-prefixed byte strings: the
//! user id, the working directory, then the arguments after `argv[0]`. Answer: frames of a
//! tag byte and a u32-length-prefixed payload, `1` stdout, `2` stderr, `0` the exit code as
//! an i32 (last). Integers are little-endian.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::sandbox::Pump;

const MAGIC: &[u8] = b"APKSHIM1";
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 0;
/// Bounds what a confused or hostile caller can make us allocate.
const MAX_FIELDS: u32 = 4096;
const MAX_FIELD: u32 = 1 << 20;
/// The shim writes its request as soon as it connects; a connection that stays silent
/// this long is dropped rather than stall the step.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One `apk` invocation inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller's uid inside the sandbox (0 for root).
    pub uid: u32,
    /// Its working directory, a path inside the image.
    pub cwd: String,
    /// The arguments after `apk`.
    pub args: Vec<String>,
}

pub(super) fn read_request(mut conn: &UnixStream) -> io::Result<Request> {
    conn.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut magic = [0u8; MAGIC.len()];
    conn.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(invalid("not an apk shim request"));
    }
    let count = read_u32(conn)?;
    if !(2..=MAX_FIELDS).contains(&count) {
        return Err(invalid("bad field count"));
    }
    let mut fields = Vec::new();
    for _ in 0..count {
        let len = read_u32(conn)?;
        if len > MAX_FIELD {
            return Err(invalid("field too long"));
        }
        let mut f = vec![0u8; len as usize];
        conn.read_exact(&mut f)?;
        fields.push(String::from_utf8(f).map_err(|_| invalid("not UTF-8"))?);
    }
    let mut fields = fields.into_iter();
    let uid = fields
        .next()
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| invalid("bad uid"))?;
    let cwd = fields.next().unwrap_or_default();
    Ok(Request {
        uid,
        cwd,
        args: fields.collect(),
    })
}

fn read_u32(mut conn: &UnixStream) -> io::Result<u32> {
    let mut b = [0u8; 4];
    conn.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// The answering side of a connection: frames written without blocking the command's
/// output (see [`Pump`]). A caller that went away (`apk … | head -1`) is no reason to stop
/// what was asked: writes then go nowhere.
pub struct Conn<'p, 'q> {
    state: RefCell<State<'p, 'q>>,
}

struct State<'p, 'q> {
    stream: UnixStream,
    pump: &'p mut Pump<'q>,
    gone: bool,
}

impl<'p, 'q> Conn<'p, 'q> {
    pub(super) fn new(stream: UnixStream, pump: &'p mut Pump<'q>) -> Self {
        let gone = stream.set_nonblocking(true).is_err();
        Self {
            state: RefCell::new(State { stream, pump, gone }),
        }
    }

    /// Passes `bytes` to the caller's standard output.
    pub fn stdout(&self, bytes: &[u8]) {
        self.frame(STDOUT, bytes);
    }

    /// Passes `bytes` to the caller's standard error.
    pub fn stderr(&self, bytes: &[u8]) {
        self.frame(STDERR, bytes);
    }

    pub(super) fn exit(self, code: i32) {
        self.frame(EXIT, &code.to_le_bytes());
    }

    fn frame(&self, tag: u8, payload: &[u8]) {
        if payload.is_empty() && tag != EXIT {
            return;
        }
        let mut frame = Vec::with_capacity(5 + payload.len());
        frame.push(tag);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(payload);
        let mut state = self.state.borrow_mut();
        if !state.gone && state.write_all(&frame).is_err() {
            state.gone = true;
        }
    }
}

impl State<'_, '_> {
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.stream.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pump.wait_writable(self.stream.as_fd())?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
