//! Build secrets (`--secret`): their values, kept out of every `Debug`, and the masking of
//! them in a step's output, so that a command printing one writes `****` to the terminal
//! and to the snapshot's log instead.

use std::fmt;

/// A secret's bytes. `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Holds `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(**** {} bytes)", self.0.len())
    }
}

/// What replaces a secret in output.
const MASK: &[u8] = b"****";

/// Values shorter than this are not masked: masking `1` or `ab` everywhere would garble
/// the output and say which short string the secret is.
const MIN_MASKED: usize = 4;

/// Replaces the secrets' values in a stream of output chunks; a chunk's end that could be
/// the start of a value is held back until the next chunk (or [`Redactor::finish`]).
#[derive(Default)]
pub(super) struct Redactor {
    values: Vec<Vec<u8>>,
    held: Vec<u8>,
}

impl Redactor {
    /// Masks each of `secrets` (and each without its trailing newline or blanks).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut values: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            let trimmed = s.trim_ascii_end();
            for v in [s, trimmed] {
                if v.len() >= MIN_MASKED && !values.iter().any(|x| x == v) {
                    values.push(v.to_vec());
                }
            }
        }
        // The longest first, so a value containing another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Self {
            values,
            held: Vec::new(),
        }
    }

    /// Whether there is anything to mask.
    pub fn is_active(&self) -> bool {
        !self.values.is_empty()
    }

    /// Passes `chunk` on to `out`, masked.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn FnMut(&[u8])) {
        if !self.is_active() {
            out(chunk);
            return;
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let mut shown = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            let rest = &buf[i..];
            if let Some(v) = self.values.iter().find(|v| rest.starts_with(v)) {
                shown.extend_from_slice(MASK);
                i += v.len();
            } else if self.values.iter().any(|v| v.starts_with(rest)) {
                self.held = rest.to_vec();
                break;
            } else {
                shown.push(buf[i]);
                i += 1;
            }
        }
        if !shown.is_empty() {
            out(&shown);
        }
    }

    /// Passes on what was held back.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            out(&held);
        }
    }
}

/// A step's output shown and kept in its log, secrets masked; what is held back at the
/// end goes out when it is dropped.
pub(super) struct MaskedOutput<'a> {
    reporter: &'a dyn super::Reporter,
    log: &'a mut Vec<u8>,
    redactor: Redactor,
}

impl<'a> MaskedOutput<'a> {
    pub fn new(
        reporter: &'a dyn super::Reporter,
        log: &'a mut Vec<u8>,
        secrets: &[Vec<u8>],
    ) -> Self {
        Self {
            reporter,
            log,
            redactor: Redactor::new(secrets.iter().map(Vec::as_slice)),
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let (reporter, log) = (self.reporter, &mut *self.log);
        self.redactor.feed(bytes, &mut |b| {
            reporter.output(b);
            log.extend_from_slice(b);
        });
    }
}

impl Drop for MaskedOutput<'_> {
    fn drop(&mut self) {
        let (reporter, log) = (self.reporter, &mut *self.log);
        self.redactor.finish(&mut |b| {
            reporter.output(b);
            log.extend_from_slice(b);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secrets: &[&[u8]], chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = Redactor::new(secrets.iter().copied());
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c, &mut |b| out.extend_from_slice(b));
        }
        r.finish(&mut |b| out.extend_from_slice(b));
        out
    }

    #[test]
    fn values_are_masked_across_chunks() {
        assert_eq!(
            run(&[b"hunter2\n"], &[b"pw=hunt", b"er2 ok\n"]),
            b"pw=**** ok\n"
        );
        assert_eq!(run(&[b"hunter2"], &[b"hunter2\nhunter2"]), b"****\n****");
        assert_eq!(run(&[b"hunter2"], &[b"hunt"]), b"hunt");
        assert_eq!(run(&[b"abc"], &[b"abc"]), b"abc", "too short to mask");
        assert_eq!(
            run(&[b"long-secret", b"long"], &[b"long-secret long"]),
            b"**** ****"
        );
        assert_eq!(run(&[], &[b"plain"]), b"plain");
    }

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(
            format!("{:?}", Secret::new(b"hunter2".to_vec())),
            "Secret(**** 7 bytes)"
        );
    }
}
