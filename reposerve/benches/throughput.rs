//! Upload throughput (issue 13): 1,000 uploads of distinct packages into one index by 100
//! clients at once, against the release `reposerve` on 127.0.0.1. Uploads that arrive while
//! the index is being written go into its next write, so the rate is not capped by one
//! index write per upload. Printed beside the goals (>= 300 uploads/s, p99 < 1 s) and as a
//! ratio to the same server taking uploads one at a time (the baseline, same run).
//!
//! `cargo bench -p reposerve --bench throughput` (`BENCH_UPLOADS`, `BENCH_CONCURRENCY`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apk::sign::SignatureType;
use common::{env_num, multipart, start_reposerve};

/// `count` distinct packages named `prefix…`, made on every core.
fn packages(tree: &std::path::Path, prefix: &str, count: usize) -> Vec<Vec<u8>> {
    let key = testkit::fixture_key();
    common::packages(tree, prefix, count, &key, SignatureType::Rsa)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// Sends every package with `concurrency` requests in flight; returns the wall time and
/// each upload's latency, sorted.
async fn run(addr: &str, pkgs: Vec<Vec<u8>>, concurrency: usize) -> (Duration, Vec<Duration>) {
    let client = reqwest::Client::new();
    let queue = Arc::new(std::sync::Mutex::new(pkgs));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, queue, url) = (
            client.clone(),
            Arc::clone(&queue),
            format!("http://{addr}/upload"),
        );
        tasks.spawn(async move {
            let mut times = Vec::new();
            loop {
                let Some(pkg) = queue.lock().unwrap().pop() else {
                    return times;
                };
                let (ct, body) = multipart(&pkg);
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("content-type", ct)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
                times.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::new();
    while let Some(t) = tasks.join_next().await {
        all.extend(t.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    (wall, all)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let uploads = env_num("BENCH_UPLOADS", 1000);
    let concurrency = env_num("BENCH_CONCURRENCY", 100);
    let baseline_uploads = (uploads / 10).max(20);
    let tmp = tempfile::Builder::new()
        .prefix("reposerve-throughput-")
        .tempdir()
        .unwrap();
    let tree = tmp.path().join("tree");
    testkit::write_fixture_like_tree(&tree, "bench");
    eprintln!("generating {} packages…", uploads + baseline_uploads);
    let concurrent = packages(&tree, "con", uploads);
    let sequential = packages(&tree, "seq", baseline_uploads);

    let (mut child, addr) = start_reposerve(tmp.path(), &tmp.path().join("repo"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (seq_wall, seq) = rt.block_on(run(&addr, sequential, 1));
    let (wall, times) = rt.block_on(run(&addr, concurrent, concurrency));
    let _ = child.kill();
    let _ = child.wait();

    let seq_rate = seq.len() as f64 / seq_wall.as_secs_f64();
    let rate = times.len() as f64 / wall.as_secs_f64();
    let p99 = pct(&times, 0.99);
    println!("uploads of distinct packages into one index (release reposerve, 127.0.0.1):");
    println!(
        "  baseline   one at a time, {:>4} uploads: {seq_rate:>7.0} uploads/s  p50 {:>8.1?}",
        seq.len(),
        pct(&seq, 0.5)
    );
    println!(
        "  concurrent {concurrency:>3} at once, {:>4} uploads: {rate:>7.0} uploads/s  p50 {:>8.1?}  p99 {p99:>8.1?}  ({:.1}x the baseline)",
        times.len(),
        pct(&times, 0.5),
        rate / seq_rate
    );
    println!(
        "  goal: >= 300 uploads/s ({}), p99 < 1 s ({})",
        if rate >= 300.0 { "met" } else { "NOT met" },
        if p99 < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
