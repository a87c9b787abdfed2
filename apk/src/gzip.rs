//! Deterministic gzip members, compressed on several cores (apk-format.md §1.2).
//!
//! apk hashes and signs *compressed* bytes, so the compressed output must depend only on
//! the input: the header is abuild's (`gzip -n`: no name, MTIME 0, XFL 2 at level 9,
//! OS 3), the backend is pinned to zlib-rs, and the stream is cut into fixed-size blocks
//! that are deflated independently (each primed with the previous 32 KiB as a dictionary,
//! ended with a sync flush) and concatenated, as pigz does. The bytes are the same whether
//! one thread or eight did the work; only the block size and level matter.
//!
//! Written by hand rather than with `gzp` because we need exactly this framing, a pinned
//! backend and a bounded number of blocks in flight, in about 200 lines.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Input bytes per independently compressed block (pigz's default).
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Deflate's window: how much of the previous block primes the next one.
const DICT_SIZE: usize = 32 * 1024;
/// abuild's `gzip -9`.
pub const DEFAULT_LEVEL: u32 = 9;

/// How to compress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GzipOptions {
    /// zlib level 0–9. Changing it changes the bytes.
    pub level: u32,
    /// Worker threads; 0 or 1 compresses on the calling thread. Does not change the bytes.
    pub threads: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        Self {
            level: DEFAULT_LEVEL,
            threads: 1,
        }
    }
}

impl GzipOptions {
    /// Level 9 on every available core.
    pub fn parallel() -> Self {
        Self {
            level: DEFAULT_LEVEL,
            threads: thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// Compresses `data` into one gzip member on the calling thread.
pub fn compress(data: &[u8], level: u32) -> Vec<u8> {
    let mut w = GzipWriter::new(
        Vec::with_capacity(data.len() / 2 + 64),
        GzipOptions { level, threads: 1 },
    );
    // Writing to a Vec cannot fail.
    w.write_all(data).expect("write to Vec");
    w.finish().expect("write to Vec")
}

/// One gzip member of a multi-member file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Offset of the member's first byte in the input.
    pub offset: usize,
    /// Compressed length, header and trailer included.
    pub len: usize,
    /// Decompressed content.
    pub data: Vec<u8>,
}

/// Splits concatenated gzip members, inflating each, with at most `max_out` bytes of
/// output in total (a decompression bomb stops there with `InvalidData`).
pub fn inflate_members(input: &[u8], max_out: u64) -> io::Result<Vec<Member>> {
    use std::io::Read as _;
    let mut members = Vec::new();
    let mut rest = input;
    let mut budget = max_out;
    while !rest.is_empty() {
        let offset = input.len() - rest.len();
        let mut data = Vec::new();
        let mut decoder = flate2::bufread::GzDecoder::new(&mut rest).take(budget + 1);
        decoder
            .read_to_end(&mut data)
            .map_err(|e| io::Error::new(e.kind(), format!("gzip member at byte {offset}: {e}")))?;
        if data.len() as u64 > budget {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {max_out} bytes after decompression (a decompression bomb?)"),
            ));
        }
        budget -= data.len() as u64;
        let len = input.len() - rest.len() - offset;
        members.push(Member { offset, len, data });
    }
    Ok(members)
}

struct Job {
    seq: u64,
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
}

struct Pool {
    jobs: Option<mpsc::SyncSender<Job>>,
    results: mpsc::Receiver<(u64, Vec<u8>)>,
    workers: Vec<thread::JoinHandle<()>>,
}

/// A `Write` that produces exactly one gzip member on `inner`.
pub struct GzipWriter<W: Write> {
    inner: W,
    level: u32,
    pool: Option<Pool>,
    buf: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    next_seq: u64,
    next_out: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    header_written: bool,
}

impl<W: Write> GzipWriter<W> {
    /// Starts a member.
    pub fn new(inner: W, opts: GzipOptions) -> Self {
        let pool = (opts.threads > 1).then(|| spawn_pool(opts.threads, opts.level));
        Self {
            inner,
            level: opts.level,
            pool,
            buf: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            next_seq: 0,
            next_out: 0,
            pending: BTreeMap::new(),
            header_written: false,
        }
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_header()?;
        let data = std::mem::take(&mut self.buf);
        self.dispatch(data, true)?;
        if let Some(mut pool) = self.pool.take() {
            pool.jobs.take();
            while self.next_out < self.next_seq {
                let (seq, out) = pool.results.recv().map_err(|_| worker_died())?;
                self.pending.insert(seq, out);
                self.drain_ready()?;
            }
            for w in pool.workers {
                w.join().map_err(|_| worker_died())?;
            }
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE is the input length modulo 2^32 by definition.
        self.inner.write_all(&(self.len as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3])?;
            self.header_written = true;
        }
        Ok(())
    }

    fn dispatch(&mut self, data: Vec<u8>, last: bool) -> io::Result<()> {
        let dict = std::mem::take(&mut self.dict);
        if !last {
            self.dict = data[data.len().saturating_sub(DICT_SIZE)..].to_vec();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        match &self.pool {
            None => {
                let out = compress_block(self.level, &dict, &data, last);
                self.inner.write_all(&out)?;
                self.next_out += 1;
            }
            Some(pool) => {
                let jobs = pool.jobs.as_ref().ok_or_else(worker_died)?;
                jobs.send(Job {
                    seq,
                    dict,
                    data,
                    last,
                })
                .map_err(|_| worker_died())?;
                // Collect whatever is done, without waiting, to keep memory bounded by the
                // channel capacity plus finished-but-unwritten blocks.
                while let Ok((seq, out)) = pool.results.try_recv() {
                    self.pending.insert(seq, out);
                }
                self.drain_ready()?;
            }
        }
        Ok(())
    }

    fn drain_ready(&mut self) -> io::Result<()> {
        while let Some(out) = self.pending.remove(&self.next_out) {
            self.inner.write_all(&out)?;
            self.next_out += 1;
        }
        Ok(())
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        self.write_header()?;
        self.crc.update(data);
        self.len += n as u64;
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == BLOCK_SIZE {
                let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK_SIZE));
                self.dispatch(block, false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-member would change the bytes; data is flushed by `finish`.
        Ok(())
    }
}

fn worker_died() -> io::Error {
    io::Error::other("a gzip worker thread stopped unexpectedly")
}

fn spawn_pool(threads: usize, level: u32) -> Pool {
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads * 2);
    let (res_tx, res_rx) = mpsc::channel();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let workers = (0..threads)
        .map(|_| {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            thread::spawn(move || {
                loop {
                    // Hold the lock only while receiving, not while compressing.
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let out = compress_block(level, &job.dict, &job.data, job.last);
                    if res_tx.send((job.seq, out)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    Pool {
        jobs: Some(job_tx),
        results: res_rx,
        workers,
    }
}

/// Raw deflate of one block: primed with `dict`, ended with a sync flush (byte aligned, so
/// blocks concatenate) or, for the last block, with the final block bit.
fn compress_block(level: u32, dict: &[u8], data: &[u8], last: bool) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        // Cannot fail on a fresh raw-deflate stream.
        c.set_dictionary(dict).expect("set deflate dictionary");
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .expect("deflate on a valid stream");
        let done_input = c.total_in() as usize == data.len();
        let room_left = out.len() < out.capacity();
        match (status, last) {
            (Status::StreamEnd, _) => break,
            (_, false) if done_input && room_left => break,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 3] % 17 + b'a')
            .collect()
    }

    #[test]
    fn round_trips_and_has_abuild_header() {
        for len in [0, 1, 1000, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 77] {
            let data = sample(len);
            let gz = compress(&data, 9);
            assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
            assert_eq!(inflate(&gz), data, "len {len}");
        }
    }

    /// Guards the pinned backend: if any dependency switches flate2 to C zlib (or zlib-rs
    /// changes its output), package and index bytes change, and this digest with them.
    #[test]
    fn golden_digest_of_a_fixed_input() {
        use sha2::Digest as _;
        let data = sample(3 * BLOCK_SIZE + 4321);
        let digest = hex::encode(sha2::Sha256::digest(compress(&data, 9)));
        assert_eq!(
            digest, GOLDEN,
            "gzip output changed: check `cargo tree -e features -i flate2`"
        );
    }

    const GOLDEN: &str = "9dbed96e92403ae3056c75af889ac6be0d99b188438ef045239fe179dbd97abf";

    #[test]
    fn threads_do_not_change_bytes() {
        let data = sample(5 * BLOCK_SIZE + 12345);
        let one = compress(&data, 9);
        for threads in [2, 3, 8] {
            let mut w = GzipWriter::new(Vec::new(), GzipOptions { level: 9, threads });
            for chunk in data.chunks(7777) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.finish().unwrap(), one, "threads {threads}");
        }
    }
}
