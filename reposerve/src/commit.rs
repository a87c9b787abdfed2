//! Committing validated uploads to the local tree, grouped per index.
//!
//! A request whose packages all go to one index (the usual case) queues a [`Job`] in that
//! index's lane ([`crate::lane`]) and waits for its answer. The lane's worker takes every
//! job queued so far, checks each against the index as the earlier jobs of the batch leave
//! it (a conflict refuses that job alone), moves the accepted files into place and writes
//! the index once. At concurrency 100 that is one index write per batch instead of one per
//! upload (`cargo bench -p reposerve --bench upload`).
//!
//! A request spanning several indexes takes their locks in key order instead and commits
//! all or nothing, as far as the checks go.

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use apk::index::ApkIndex;
use futures::FutureExt as _;
use tokio::sync::oneshot;

use crate::error::AppError;
use crate::repo::{Accepted, CachedIndex, INDEX_NAME, IndexKey, Outcome, Repo, Staged, stamp};

/// The answer a request waits for.
pub type Reply = Result<Vec<Accepted>, AppError>;

/// One request's packages for one index.
pub struct Job {
    items: Vec<Staged>,
    reply: oneshot::Sender<Reply>,
}

/// A job that passed its checks: what it answers once the batch is written.
struct Planned {
    reply: oneshot::Sender<Reply>,
    /// Packages already indexed as they are (no write needed).
    unchanged: Vec<Accepted>,
    /// Packages this batch writes.
    written: Vec<Accepted>,
}

impl Repo {
    /// Moves `staged` packages into place and updates their indexes (S3: see
    /// [`crate::replica`]). Answers only once every index listing them is written.
    pub async fn commit(self: &Arc<Self>, staged: Vec<Staged>) -> Reply {
        if self.signer.is_none() {
            return Err(self.upload_ready().unwrap_err());
        }
        let mut by_index: BTreeMap<IndexKey, Vec<Staged>> = BTreeMap::new();
        for s in staged {
            by_index.entry(s.target.clone()).or_default().push(s);
        }
        if self.s3.is_some() {
            return self.commit_s3(by_index).await;
        }
        if by_index.len() > 1 {
            return self.commit_locked(by_index).await;
        }
        let Some((key, items)) = by_index.pop_first() else {
            return Ok(Vec::new());
        };
        let (reply, answer) = oneshot::channel();
        let lane = self.lanes.get(&key);
        if lane.push(Job { items, reply }) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                while let Some(batch) = lane.take() {
                    // A panic drops the batch's reply senders: those requests get a 500,
                    // and the lane goes on with the next batch.
                    let work = AssertUnwindSafe(this.write_batch(&key, batch));
                    if work.catch_unwind().await.is_err() {
                        tracing::error!(?key, "index write panicked");
                    }
                }
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(AppError::internal("the index writer stopped")))
    }

    /// One batch: check each job against the index as the jobs before it leave it, move
    /// the accepted files in, write the index once, answer everyone.
    async fn write_batch(self: &Arc<Self>, key: &IndexKey, jobs: Vec<Job>) {
        let mut guard = self.slot(key).lock_owned().await;
        let mut index = match self.cached_index(key, guard.take()).await {
            Ok(index) => index,
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        let (planned, to_write) = self.plan(key, &mut index, jobs);
        let result = if to_write.is_empty() {
            Ok(())
        } else {
            let started = std::time::Instant::now();
            let r = self.write_blocking(key, &mut index, to_write).await;
            self.metrics.index_update(started.elapsed());
            r
        };
        if result.is_ok() {
            *guard = Some(CachedIndex {
                stamp: stamp(&self.index_path(key)),
                index,
            });
        }
        // On error the cache stays empty: the next batch reloads the index from disk.
        for p in planned {
            let answer = match &result {
                Ok(()) => Ok(p.unchanged.into_iter().chain(p.written).collect()),
                Err(_) if p.written.is_empty() => Ok(p.unchanged),
                Err(e) => Err(e.clone()),
            };
            let _ = p.reply.send(answer);
        }
    }

    /// Checks the jobs in order against `index` plus the jobs before them, adding the
    /// entries of those that pass. Refused jobs are answered here; the rest come back with
    /// the files to write. (If the write then fails, `index` is dropped, not cached.)
    fn plan(
        &self,
        key: &IndexKey,
        index: &mut ApkIndex,
        jobs: Vec<Job>,
    ) -> (Vec<Planned>, Vec<Staged>) {
        let dir = self.root().join(key.rel_dir());
        let mut writing = HashSet::new();
        let mut planned = Vec::new();
        let mut to_write = Vec::new();
        for job in jobs {
            let outcomes = match self.check_conflicts(key, index, &job.items) {
                Ok(o) => o,
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                    continue;
                }
            };
            let mut p = Planned {
                reply: job.reply,
                unchanged: Vec::new(),
                written: Vec::new(),
            };
            for (s, outcome) in job.items.into_iter().zip(outcomes) {
                let file = s.entry.file_name();
                // An indexed package whose file went missing is written again.
                let present = writing.contains(&file) || dir.join(&file).is_file();
                if outcome == Outcome::Unchanged && present {
                    p.unchanged.push(Accepted::of(key, s.entry, outcome));
                    continue;
                }
                index.upsert(s.entry.clone());
                writing.insert(file);
                p.written.push(Accepted::of(key, s.entry.clone(), outcome));
                to_write.push(s);
            }
            planned.push(p);
        }
        (planned, to_write)
    }

    /// The parsed index, from the cache when the file is unchanged since.
    async fn cached_index(
        &self,
        key: &IndexKey,
        cached: Option<CachedIndex>,
    ) -> Result<ApkIndex, AppError> {
        let current = stamp(&self.index_path(key));
        match cached {
            Some(c) if c.stamp == current => Ok(c.index),
            _ => self.load_index(key).await,
        }
    }

    /// [`Repo::write_index`] on the blocking pool.
    async fn write_blocking(
        self: &Arc<Self>,
        key: &IndexKey,
        index: &mut ApkIndex,
        items: Vec<Staged>,
    ) -> Result<(), AppError> {
        let signer = self
            .signer
            .clone()
            .ok_or_else(|| self.upload_ready().unwrap_err())?;
        let this = Arc::clone(self);
        let (key, owned) = (key.clone(), std::mem::take(index));
        let (owned, r) = tokio::task::spawn_blocking(move || {
            let r = this.write_index(&key, &owned, items, &signer);
            (owned, r)
        })
        .await
        .map_err(AppError::internal)?;
        *index = owned;
        r
    }

    /// A request for several indexes: every lock taken in key order (two such requests
    /// cannot deadlock), every index checked before anything moves, then each written.
    async fn commit_locked(self: &Arc<Self>, by_index: BTreeMap<IndexKey, Vec<Staged>>) -> Reply {
        let mut guards = Vec::new();
        let mut indexes = Vec::new();
        for key in by_index.keys() {
            let mut guard = self.slot(key).lock_owned().await;
            indexes.push(self.cached_index(key, guard.take()).await?);
            guards.push(guard);
        }
        for ((key, items), index) in by_index.iter().zip(&indexes) {
            self.check_conflicts(key, index, items)?;
        }
        let mut accepted = Vec::new();
        for (((key, items), mut index), mut guard) in by_index.into_iter().zip(indexes).zip(guards)
        {
            let (reply, answer) = oneshot::channel();
            let (planned, to_write) = self.plan(&key, &mut index, vec![Job { items, reply }]);
            if !to_write.is_empty() {
                let started = std::time::Instant::now();
                self.write_blocking(&key, &mut index, to_write).await?;
                self.metrics.index_update(started.elapsed());
            }
            for p in planned {
                accepted.extend(p.unchanged);
                accepted.extend(p.written);
            }
            drop(answer);
            *guard = Some(CachedIndex {
                stamp: stamp(&self.index_path(&key)),
                index,
            });
        }
        Ok(accepted)
    }

    /// `<root>/<version>/<repo>/<arch>/APKINDEX.tar.gz`.
    pub(crate) fn index_path(&self, key: &IndexKey) -> std::path::PathBuf {
        self.root().join(key.rel_dir()).join(INDEX_NAME)
    }
}
