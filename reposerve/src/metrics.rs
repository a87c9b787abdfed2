//! `/metrics` in the Prometheus text format, hand-written: a few counters and one
//! histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket bounds for index update latency, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counters shared by all requests.
#[derive(Default)]
pub struct Metrics {
    uploads: AtomicU64,
    packages: AtomicU64,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
    latency: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// A successful upload request of `n` packages.
    pub fn upload(&self, n: usize) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.packages.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A refused request.
    pub fn reject(&self, reason: &'static str) {
        let mut r = self
            .rejects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *r.entry(reason).or_default() += 1;
    }

    /// Time taken by one index update (render, sign, write).
    pub fn index_update(&self, took: Duration) {
        let s = took.as_secs_f64();
        let mut h = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP reposerve_uploads_total Upload requests accepted."
        );
        let _ = writeln!(out, "# TYPE reposerve_uploads_total counter");
        let _ = writeln!(
            out,
            "reposerve_uploads_total {}",
            self.uploads.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP reposerve_packages_total Packages accepted.");
        let _ = writeln!(out, "# TYPE reposerve_packages_total counter");
        let _ = writeln!(
            out,
            "reposerve_packages_total {}",
            self.packages.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP reposerve_rejects_total Requests refused, by reason."
        );
        let _ = writeln!(out, "# TYPE reposerve_rejects_total counter");
        for (reason, n) in self
            .rejects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "reposerve_rejects_total{{reason=\"{reason}\"}} {n}");
        }
        let h = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP reposerve_index_update_seconds Time to update and sign one index."
        );
        let _ = writeln!(out, "# TYPE reposerve_index_update_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "reposerve_index_update_seconds_bucket{{le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "reposerve_index_update_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "reposerve_index_update_seconds_sum {}", h.sum);
        let _ = writeln!(out, "reposerve_index_update_seconds_count {}", h.count);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.index_update(Duration::from_millis(7));
        m.index_update(Duration::from_millis(300));
        m.reject("unsigned");
        let text = m.render();
        assert!(
            text.contains("reposerve_index_update_seconds_bucket{le=\"0.01\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("reposerve_index_update_seconds_bucket{le=\"0.5\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("reposerve_rejects_total{reason=\"unsigned\"} 1"),
            "{text}"
        );
    }
}
