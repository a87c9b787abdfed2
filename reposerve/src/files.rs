//! Files of the local tree as HTTP responses, built for what apk clients fetch: a small
//! `APKINDEX.tar.gz` and packages from a few KB to hundreds of MB.
//!
//! Everything a request needs from the disk happens in one trip to the blocking pool:
//! resolve the path inside the root (`RESOLVE_IN_ROOT`), `fstat`, and, for a file of up to
//! [`INLINE_MAX`] bytes, read it whole. The response then carries the body as one buffer,
//! so hyper writes headers and body with one `writev`: nothing waits on a second segment
//! (with Nagle, on the client's delayed ACK). Larger files are streamed by one blocking
//! reader per response into a small channel of [`CHUNK`]-sized buffers that hyper writes
//! as they are, without copying them again.
//!
//! Small files just served are kept in a [`FileCache`] for [`CACHE_VALID`]: a hot index
//! or package is then sent without a system call for the file (with `RESOLVE_IN_ROOT`, the
//! open alone costs as much as the rest of the request). reposerve drops a directory's
//! entries whenever it writes there; a file changed by hand is served as it was for at
//! most [`CACHE_VALID`] (nginx's `open_file_cache_valid` is the same idea, at 60 s).
//!
//! Validators and ranges as nginx does them: a strong `ETag` of mtime and size,
//! `Last-Modified`, `If-None-Match`/`If-Modified-Since` (304), one `Range` (206, or 416 when
//! unsatisfiable; several ranges get the whole file), `If-Range`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};

use crate::error::AppError;

/// Files up to this size are sent as one buffer, with their headers in one write.
pub const INLINE_MAX: u64 = 1 << 20;
/// Files up to this size are read right where they are opened (a page-cache copy of a few
/// microseconds); larger ones are read on the blocking pool.
const READ_AT_OPEN: u64 = 64 << 10;
/// Read size when streaming larger files.
const CHUNK: usize = 256 << 10;
/// Chunks read ahead of the socket per streamed response.
const READ_AHEAD: usize = 4;

/// What a path names.
pub enum Found {
    /// A directory: answered with a listing.
    Dir,
    /// A regular file, opened.
    File(Opened),
}

/// How long a cached file is served without looking at the disk.
pub const CACHE_VALID: Duration = Duration::from_secs(1);
/// Most bytes cached (then the cache starts over).
const CACHE_BYTES: usize = 64 << 20;

/// An open file with what the headers need, and its bytes when small.
pub struct Opened {
    /// `None` when served from the cache (the bytes are then in `inline`).
    file: Option<File>,
    size: u64,
    mtime: SystemTime,
    /// The whole file, read at open time (files up to [`INLINE_MAX`], GET only).
    inline: Option<Bytes>,
}

/// Resolves `rel` inside `root` and opens it. `None` for what does not exist or is neither
/// a directory nor a regular file.
///
/// With the kernel resolver this is one `openat2(RESOLVE_IN_ROOT)` and one `fstat`: the
/// served tree holds only what reposerve wrote (no device nodes), and `O_NONBLOCK` keeps a
/// FIFO from blocking the open. Elsewhere [`apk::rootfs::RootDir`]'s own walk is used.
pub fn open(root: &apk::rootfs::RootDir, rel: &Path, read_small: bool) -> Option<Found> {
    if rel.as_os_str().is_empty() {
        return Some(Found::Dir);
    }
    let mut file = match root.resolver() {
        apk::rootfs::Resolver::Kernel => open_in_root(root, rel)?,
        _ => {
            if root.metadata(rel).ok()?.is_dir() {
                return Some(Found::Dir);
            }
            root.open_file(rel).ok()?
        }
    };
    let meta = file.metadata().ok()?;
    if meta.is_dir() {
        return Some(Found::Dir);
    }
    if !meta.is_file() {
        return None;
    }
    let size = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let inline = (read_small && size <= READ_AT_OPEN)
        .then(|| read_whole(&mut file, size))
        .flatten();
    Some(Found::File(Opened {
        file: Some(file),
        size,
        mtime,
        inline,
    }))
}

fn open_in_root(root: &apk::rootfs::RootDir, rel: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    Some(File::from(fd))
}

fn read_whole(file: &mut File, size: u64) -> Option<Bytes> {
    let mut buf = BytesMut::zeroed(usize::try_from(size).ok()?);
    file.read_exact(&mut buf).ok()?;
    // A file that grew since fstat is still a consistent snapshot of its first `size`
    // bytes; the validators describe that size.
    Some(buf.freeze())
}

/// Reads a file of up to [`INLINE_MAX`] bytes whole on the blocking pool, so it goes out
/// as one buffer (and can be cached).
pub async fn fill(mut opened: Opened) -> Result<Opened, AppError> {
    if opened.inline.is_some() || opened.size > INLINE_MAX {
        return Ok(opened);
    }
    let Some(mut file) = opened.file.take() else {
        return Ok(opened);
    };
    let size = opened.size;
    let (file, bytes) = tokio::task::spawn_blocking(move || {
        let bytes = read_whole(&mut file, size);
        (file, bytes)
    })
    .await
    .map_err(AppError::internal)?;
    opened.file = Some(file);
    opened.inline = bytes;
    Ok(opened)
}

/// The response for an opened file, honouring validators and a single range.
pub async fn respond(
    opened: Opened,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let etag = format!(
        "\"{:x}-{:x}\"",
        opened
            .mtime
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        opened.size
    );
    let last_modified = httpdate::fmt_http_date(opened.mtime);
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type(name))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified);
    if not_modified(headers, &etag, opened.mtime) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(AppError::internal);
    }
    let range = requested_range(headers, &etag, &last_modified, opened.size);
    let (status, start, len, builder) = match range {
        Range::Whole => (StatusCode::OK, 0, opened.size, builder),
        Range::Part(start, end) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end - start + 1,
            builder.header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", opened.size),
            ),
        ),
        Range::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{}", opened.size))
                .body(Body::empty())
                .map_err(AppError::internal);
        }
    };
    let builder = builder.status(status).header(header::CONTENT_LENGTH, len);
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        body(opened, start, len).await?
    };
    builder.body(body).map_err(AppError::internal)
}

/// The bytes `start..start+len`: from the buffer read at open, one read for small
/// ranges, or a stream.
async fn body(opened: Opened, start: u64, len: u64) -> Result<Body, AppError> {
    if let Some(all) = opened.inline {
        let (s, l) = (usize::try_from(start), usize::try_from(len));
        return match (s, l) {
            (Ok(s), Ok(l)) if s + l <= all.len() => Ok(Body::from(all.slice(s..s + l))),
            _ => Err(AppError::internal("range outside the file read")),
        };
    }
    let Some(file) = opened.file else {
        return Err(AppError::internal("no file and no bytes to send"));
    };
    if len <= INLINE_MAX {
        let bytes = tokio::task::spawn_blocking(move || {
            let mut buf = BytesMut::zeroed(usize::try_from(len).unwrap_or(0));
            file.read_exact_at(&mut buf, start).map(|()| buf.freeze())
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
        return Ok(Body::from(bytes));
    }
    Ok(stream(file, start, len))
}

/// One blocking reader feeds chunks to the response; it stops when the client goes away
/// (the channel closes).
fn stream(mut file: File, start: u64, len: u64) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = BytesMut::zeroed(want);
            let chunk = match file.read(&mut buf) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file shrank while being sent",
                )),
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    Ok(buf.freeze())
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Small files recently read, by path under the root (see the module docs).
#[derive(Default)]
pub struct FileCache {
    map: Mutex<(HashMap<PathBuf, Cached>, usize)>,
}

#[derive(Clone)]
struct Cached {
    bytes: Bytes,
    mtime: SystemTime,
    read_at: Instant,
}

impl FileCache {
    /// The file at `rel`, if read less than [`CACHE_VALID`] ago.
    pub fn get(&self, rel: &Path) -> Option<Opened> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let c = map.0.get(rel)?;
        (c.read_at.elapsed() < CACHE_VALID).then(|| Opened {
            file: None,
            size: c.bytes.len() as u64,
            mtime: c.mtime,
            inline: Some(c.bytes.clone()),
        })
    }

    /// Remembers a file read whole at open.
    pub fn put(&self, rel: &Path, opened: &Opened) {
        let Some(bytes) = &opened.inline else {
            return;
        };
        let mut guard = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, total) = &mut *guard;
        if *total + bytes.len() > CACHE_BYTES {
            map.clear();
            *total = 0;
        }
        *total += bytes.len();
        if let Some(old) = map.insert(
            rel.to_path_buf(),
            Cached {
                bytes: bytes.clone(),
                mtime: opened.mtime,
                read_at: Instant::now(),
            },
        ) {
            *total -= old.bytes.len();
        }
    }

    /// Forgets every file under `dir` (reposerve just wrote there).
    pub fn forget_dir(&self, dir: &Path) {
        let mut guard = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, total) = &mut *guard;
        map.retain(|k, c| {
            let keep = !k.starts_with(dir);
            if !keep {
                *total -= c.bytes.len();
            }
            keep
        });
    }
}

fn content_type(name: &str) -> HeaderValue {
    if name.ends_with(".apk") || name.ends_with(".tar.gz") {
        return HeaderValue::from_static("application/octet-stream");
    }
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    HeaderValue::from_str(mime.as_ref())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// `If-None-Match` (weak comparison, `*`), else `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, etag: &str, mtime: SystemTime) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        return inm.to_str().is_ok_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            secs(mtime) <= secs(since)
        })
}

/// What part of the file to send.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Whole,
    /// Inclusive bounds.
    Part(u64, u64),
    Unsatisfiable,
}

fn requested_range(headers: &HeaderMap, etag: &str, last_modified: &str, size: u64) -> Range {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Range::Whole;
    };
    if let Some(cond) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && cond != etag
        && cond != last_modified
    {
        return Range::Whole;
    }
    parse_range(value, size)
}

/// One `bytes=` range; anything else (other units, several ranges, garbage) is ignored
/// and the whole file sent, as RFC 9110 §14.2 allows.
fn parse_range(value: &str, size: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => Some((start, end.min(size.saturating_sub(1)))),
        (Ok(_), Ok(_)) => return Range::Whole,
        (Ok(start), Err(_)) if b.is_empty() => Some((start, size.saturating_sub(1))),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                return Range::Unsatisfiable;
            }
            Some((size.saturating_sub(n), size.saturating_sub(1)))
        }
        _ => return Range::Whole,
    };
    match parsed {
        Some((start, end)) if start < size && start <= end => Range::Part(start, end),
        _ => Range::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_nginx() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), Range::Part(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), Range::Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Range::Whole);
        assert_eq!(parse_range("bytes=9-1", 100), Range::Whole);
        assert_eq!(parse_range("items=0-1", 100), Range::Whole);
        assert_eq!(parse_range("bytes=x-1", 100), Range::Whole);
    }

    proptest::proptest! {
        /// A satisfiable range always lies inside the file.
        #[test]
        fn ranges_stay_inside(value in "(bytes=)?[0-9]{0,4}-[0-9]{0,4}", size in 0u64..5000) {
            if let Range::Part(start, end) = parse_range(&value, size) {
                proptest::prop_assert!(start <= end && end < size);
            }
        }
    }
}
