//! Progress of long transfers (pulls, `ADD URL`, package fetches, layer export, push).
//!
//! The library never prints: it asks its [`crate::build::Reporter`] for a [`Progress`]
//! handle per transfer and feeds it byte counts. The handle is owned (`Send + 'static`) so it
//! can travel inside a reader handed to reqwest or to the apk installer. The binary draws an
//! indicatif bar on a terminal and prints periodic plain lines otherwise (GitLab job logs).

use std::io::{self, Read, Write};

/// One transfer's progress, created by [`crate::build::Reporter::progress`].
pub trait Progress: Send {
    /// `n` more bytes are done.
    fn advance(&mut self, n: u64);
    /// The transfer completed (a summary may be shown). Not called when it failed.
    fn finish(&mut self);
}

/// Shows nothing (the default for reporters that do not draw progress).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn advance(&mut self, _n: u64) {}
    fn finish(&mut self) {}
}

/// A reporter that shows nothing (library callers that want no output).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl crate::build::Reporter for NoReporter {
    fn line(&self, _line: &str) {}
    fn output(&self, _bytes: &[u8]) {}
}

/// A reader that reports what passes through, finishing at end of input.
pub struct ProgressRead<R> {
    inner: R,
    progress: Box<dyn Progress>,
    done: bool,
    count: u64,
    len: Option<u64>,
}

impl<R: Read> ProgressRead<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: Box<dyn Progress>) -> Self {
        Self {
            inner,
            progress,
            done: false,
            count: 0,
            len: None,
        }
    }

    /// Wraps `inner` of `len` bytes, finishing after the last one (for consumers such as an
    /// HTTP body that stop reading at the length, never seeing the end of input).
    pub fn sized(inner: R, progress: Box<dyn Progress>, len: u64) -> Self {
        Self {
            len: Some(len),
            ..Self::new(inner, progress)
        }
    }
}

impl<R: Read> Read for ProgressRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        self.count += n as u64;
        let end = (n == 0 && !buf.is_empty()) || self.len.is_some_and(|l| self.count >= l);
        if end && !self.done {
            self.done = true;
            self.progress.finish();
        }
        Ok(n)
    }
}

/// A writer that reports what passes through; call [`ProgressWrite::finish`] at the end.
pub struct ProgressWrite<W> {
    inner: W,
    progress: Box<dyn Progress>,
}

impl<W: Write> ProgressWrite<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, progress: Box<dyn Progress>) -> Self {
        Self { inner, progress }
    }

    /// Marks the transfer complete and returns the inner writer.
    pub fn finish(mut self) -> W {
        self.progress.finish();
        self.inner
    }
}

impl<W: Write> Write for ProgressWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Clone)]
    struct Seen(Arc<Mutex<(u64, u32)>>);

    impl Progress for Seen {
        fn advance(&mut self, n: u64) {
            self.0.lock().unwrap().0 += n;
        }
        fn finish(&mut self) {
            self.0.lock().unwrap().1 += 1;
        }
    }

    #[test]
    fn readers_and_writers_count_every_byte_and_finish_once() {
        let seen = Seen::default();
        let mut r = ProgressRead::new(&[7u8; 10_000][..], Box::new(seen.clone()));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let _ = r.read(&mut [0u8; 8]).unwrap();
        assert_eq!(*seen.0.lock().unwrap(), (10_000, 1));
        let seen = Seen::default();
        let mut r = ProgressRead::sized(&[7u8; 100][..], Box::new(seen.clone()), 100);
        r.read_exact(&mut [0u8; 100]).unwrap();
        assert_eq!(*seen.0.lock().unwrap(), (100, 1));

        let seen = Seen::default();
        let mut w = ProgressWrite::new(Vec::new(), Box::new(seen.clone()));
        w.write_all(&[1u8; 300]).unwrap();
        assert_eq!(w.finish().len(), 300);
        assert_eq!(*seen.0.lock().unwrap(), (300, 1));
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
