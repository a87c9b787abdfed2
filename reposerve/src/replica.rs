//! Replicas sharing one S3 bucket, on any S3-compatible store.
//!
//! The index is a function of the packages stored. A replica puts an upload's package
//! object first, then its index lane ([`crate::lane`], one writer per index per replica)
//! runs rounds until the upload is in an index it read back:
//!
//! 1. read the index and list the package objects of its directory;
//! 2. answer every waiting upload whose package the index lists with its checksum (this
//!    read is the read-back of the previous round's write, or of another replica's);
//! 3. compute the index the listing calls for: the entries whose object is listed with
//!    their size, the waiting uploads' own entries, and for every other listed object (a
//!    concurrent upload of another replica, or a stray left by a crash) the entry read from
//!    the object itself, verified against the trusted keys;
//! 4. if that differs from what was read, write it (with `If-Match` where the store checks
//!    it) and go to 1.
//!
//! This converges with read-after-write consistent listing alone. On a store whose
//! conditional writes are not atomic, two replicas may both "win" and the later write may
//! drop an entry the earlier one had acknowledged; the later writer then finds in step 3,
//! on its next round, an object its index does not cover, and writes again, so it keeps
//! going after its own uploads are answered until what it reads back covers the listing
//! (bounded by [`REPAIR_ROUNDS`]). Any later write by any replica also restores it, and
//! [`crate::reconcile`] does at start. Where the probe found atomic conditional writes no
//! write can drop an entry, and the repair rounds are skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use apk::index::{ApkIndex, IndexEntry, SignedIndex};
use axum::http::StatusCode;
use futures::FutureExt as _;
use object_store::UpdateVersion;
use tokio::sync::oneshot;

use crate::commit::Reply;
use crate::error::AppError;
use crate::lane::Lanes;
use crate::repo::{Accepted, INDEX_NAME, IndexKey, Outcome, Repo, Staged, conflict};
use crate::store::{Listed, PutIndexError, S3Store, WriteMode};

/// Rounds (reads and writes) an upload waits for before it is answered 503.
const MAX_ROUNDS: usize = 40;
/// Extra rounds after the last upload is answered, to restore entries a non-atomic store
/// let our write drop.
const REPAIR_ROUNDS: usize = 3;

/// The S3 side of a [`Repo`]: the store, how it treats conditional writes, the index
/// lanes, and what this replica learnt of the objects it read.
pub struct Replica {
    store: S3Store,
    mode: WriteMode,
    lanes: Lanes<IndexKey, S3Job>,
    /// Entries of objects seen, by name and size: an object is read at most once.
    known: Mutex<HashMap<Listed, IndexEntry>>,
    /// Objects that are not usable packages (logged once, never indexed).
    unusable: Mutex<HashSet<Listed>>,
}

impl Replica {
    /// A replica on `store`, which behaves as `mode`.
    pub fn new(store: S3Store, mode: WriteMode) -> Self {
        Self {
            store,
            mode,
            lanes: Lanes::default(),
            known: Mutex::new(HashMap::new()),
            unusable: Mutex::new(HashSet::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &S3Store {
        &self.store
    }

    /// How the store treats conditional writes.
    pub fn mode(&self) -> &WriteMode {
        &self.mode
    }
}

/// One request's packages for one index, already stored as objects.
pub(crate) struct S3Job {
    own: Vec<Own>,
    reply: oneshot::Sender<Reply>,
}

/// An uploaded package waiting to be in an index read back.
struct Own {
    entry: IndexEntry,
    outcome: Outcome,
    /// The ETag our PUT got (`None` when the object was already there, identical).
    etag: Option<String>,
}

/// One round's reading of an index directory.
struct Snapshot {
    index: ApkIndex,
    version: Option<UpdateVersion>,
    listed: BTreeMap<String, u64>,
}

fn rel_of(key: &IndexKey, name: &str) -> String {
    format!("{}/{}/{}/{name}", key.version, key.repo, key.arch)
}

impl Repo {
    fn replica(&self) -> &Replica {
        self.s3
            .as_ref()
            .expect("S3 paths run only with storage: s3")
    }

    /// The S3 flavour of [`Repo::commit`]: conflicts checked, objects put, then each
    /// index's lane answers once the packages are in an index read back.
    pub(crate) async fn commit_s3(
        self: &Arc<Self>,
        by_index: BTreeMap<IndexKey, Vec<Staged>>,
    ) -> Reply {
        let mut accepted = Vec::new();
        let mut planned = Vec::new();
        for (key, items) in by_index {
            let (index, _) = self.read_index_s3(&key).await?;
            let outcomes = self.check_conflicts(&key, &index, &items)?;
            let mut to_put = Vec::new();
            for (s, outcome) in items.into_iter().zip(outcomes) {
                if outcome == Outcome::Unchanged {
                    // Already in the index just read: nothing to write or wait for.
                    accepted.push(Accepted::of(&key, s.entry, outcome));
                } else {
                    to_put.push((s, outcome));
                }
            }
            planned.push((key, to_put));
        }
        let mut jobs = Vec::new();
        for (key, to_put) in planned {
            let mut own = Vec::new();
            for (s, outcome) in to_put {
                own.push(self.put_package(&key, s, outcome).await?);
            }
            if !own.is_empty() {
                jobs.push(self.submit_s3(key, own));
            }
        }
        for answer in futures::future::join_all(jobs).await {
            accepted.extend(answer?);
        }
        Ok(accepted)
    }

    /// Puts one package object. An object of that name not in the index (a stray, or
    /// another replica's upload in flight) is judged like an indexed one: the same package
    /// is a no-op, another build a conflict unless replacing is allowed.
    async fn put_package(
        &self,
        key: &IndexKey,
        s: Staged,
        outcome: Outcome,
    ) -> Result<Own, AppError> {
        let replica = self.replica();
        let name = s.entry.file_name();
        let rel = rel_of(key, &name);
        let mut outcome = outcome;
        if outcome == Outcome::New
            && let Some(meta) = replica.store.head(&rel).await.map_err(AppError::internal)?
        {
            outcome = self.judge_existing(key, &s, meta.size).await?;
        }
        // Only a new name is created conditionally: a replacement overwrites.
        let create = outcome == Outcome::New && replica.mode.conditional();
        if outcome == Outcome::Unchanged {
            return Ok(Own {
                entry: s.entry,
                outcome,
                etag: None,
            });
        }
        let etag = match replica.store.put_file(&rel, &s.file, create).await {
            Ok(etag) => etag,
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Created by another replica between our HEAD and PUT.
                let size = replica
                    .store
                    .head(&rel)
                    .await
                    .map_err(AppError::internal)?
                    .map_or(0, |m| m.size);
                outcome = self.judge_existing(key, &s, size).await?;
                if outcome == Outcome::Unchanged {
                    return Ok(Own {
                        entry: s.entry,
                        outcome,
                        etag: None,
                    });
                }
                replica
                    .store
                    .put_file(&rel, &s.file, false)
                    .await
                    .map_err(AppError::internal)?
            }
            Err(e) => return Err(AppError::internal(e)),
        };
        Ok(Own {
            entry: s.entry,
            outcome,
            etag,
        })
    }

    /// What an upload does to an object of its name that is already stored.
    async fn judge_existing(
        &self,
        key: &IndexKey,
        s: &Staged,
        size: u64,
    ) -> Result<Outcome, AppError> {
        let listed = Listed {
            name: s.entry.file_name(),
            size,
        };
        match self.entry_of_object(key, &listed).await {
            Some(e) if e.checksum == s.entry.checksum => Ok(Outcome::Unchanged),
            Some(_) if !self.allow_replace => Err(conflict(key, &s.entry.name, &s.entry.version)),
            Some(_) => Ok(Outcome::Replaces),
            // Not a usable package (or gone again): ours takes its place.
            None => Ok(Outcome::New),
        }
    }

    /// Queues `own` in the index's lane and waits for the answer.
    async fn submit_s3(self: &Arc<Self>, key: IndexKey, own: Vec<Own>) -> Reply {
        let (reply, answer) = oneshot::channel();
        let lane = self.replica().lanes.get(&key);
        if lane.push(S3Job { own, reply }) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                while let Some(batch) = lane.take() {
                    // Errors went to the batch's requests; a panic drops their reply senders.
                    let work = AssertUnwindSafe(this.converge(&key, batch, false));
                    if work.catch_unwind().await.is_err() {
                        tracing::error!(?key, "index convergence panicked");
                    }
                }
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(AppError::internal("the index writer stopped")))
    }

    /// Rounds of read, answer, write until the waiting uploads are in an index read back
    /// (and, after writing on a non-atomic store, until what is read back covers the
    /// listing). `repair`: write even with no upload waiting (start-up, strays).
    pub(crate) async fn converge(
        self: &Arc<Self>,
        key: &IndexKey,
        mut jobs: Vec<S3Job>,
        repair: bool,
    ) -> Result<(), AppError> {
        let atomic = self.replica().mode == WriteMode::Atomic;
        let mut wrote = repair;
        let mut repairs = 0;
        for round in 0.. {
            let snap = match self.snapshot(key).await {
                Ok(s) => s,
                Err(e) => return Err(fail(jobs, e)),
            };
            answer_satisfied(key, &snap, &mut jobs);
            self.refuse_lost(key, &snap, &mut jobs).await;
            let desired = self.desired(key, &snap, &jobs).await;
            let covers = desired.render_text() == snap.index.render_text();
            if jobs.is_empty() {
                if covers || !wrote || (atomic && !repair) || repairs >= REPAIR_ROUNDS {
                    return Ok(());
                }
                repairs += 1;
            }
            if round >= MAX_ROUNDS {
                let e = AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the index is being updated by other servers; retry",
                    format!("{key:?}: not in an index read back after {MAX_ROUNDS} rounds"),
                );
                return Err(fail(jobs, e));
            }
            if covers {
                // Our objects are not listed yet: give the listing time to catch up.
                wrote = false;
                tokio::time::sleep(Duration::from_millis(10 * (round as u64 + 1).min(20))).await;
                continue;
            }
            log_rebuild(key, &snap.index, &desired, repair);
            match self.write_index_s3(key, &desired, snap.version).await {
                Ok(()) => wrote = true,
                Err(PutIndexError::Conflict) => wrote = false,
                Err(PutIndexError::Other(e)) => return Err(fail(jobs, AppError::internal(e))),
            }
        }
        Ok(())
    }

    /// Reads the index and lists the directory, at once.
    async fn snapshot(&self, key: &IndexKey) -> Result<Snapshot, AppError> {
        let store = &self.replica().store;
        let dir = rel_of(key, "");
        let (index, listed) = tokio::join!(self.read_index_s3(key), store.list_packages(&dir));
        let (index, version) = index?;
        let listed = listed
            .map_err(AppError::internal)?
            .into_iter()
            .map(|l| (l.name, l.size))
            .collect();
        Ok(Snapshot {
            index,
            version,
            listed,
        })
    }

    /// The index as stored (empty when there is none) and the version it was read at.
    async fn read_index_s3(
        &self,
        key: &IndexKey,
    ) -> Result<(ApkIndex, Option<UpdateVersion>), AppError> {
        let rel = rel_of(key, INDEX_NAME);
        match self
            .replica()
            .store
            .get_index(&rel)
            .await
            .map_err(AppError::internal)?
        {
            None => Ok((ApkIndex::default(), None)),
            Some(obj) => {
                let bytes = obj.bytes;
                let idx = tokio::task::spawn_blocking(move || SignedIndex::parse(&bytes))
                    .await
                    .map_err(AppError::internal)?
                    .map_err(|e| AppError::internal(format!("`{rel}` in S3: {e}")))?;
                Ok((idx.index, Some(obj.version)))
            }
        }
    }

    /// Answers 409 to jobs whose object was replaced by another build meanwhile (another
    /// replica took the same name at the same time).
    async fn refuse_lost(&self, key: &IndexKey, snap: &Snapshot, jobs: &mut Vec<S3Job>) {
        let mut kept = Vec::new();
        for job in jobs.drain(..) {
            let mut lost = None;
            for own in &job.own {
                if self.object_replaced(key, own, snap).await {
                    lost = Some(conflict(key, &own.entry.name, &own.entry.version));
                    break;
                }
            }
            match lost {
                Some(e) => {
                    let _ = job.reply.send(Err(e));
                }
                None => kept.push(job),
            }
        }
        *jobs = kept;
    }

    async fn object_replaced(&self, key: &IndexKey, own: &Own, snap: &Snapshot) -> bool {
        let file = own.entry.file_name();
        match snap.listed.get(&file) {
            None => false,
            Some(&size) if size != own.entry.file_size => true,
            Some(_) => {
                let indexed = snap.index.get(&own.entry.name, &own.entry.version);
                if indexed.is_none_or(|e| e.checksum == own.entry.checksum) || own.etag.is_none() {
                    return false;
                }
                // Same size, another checksum indexed: is the object still ours?
                let head = self.replica().store.head(&rel_of(key, &file)).await;
                matches!(head, Ok(Some(m)) if m.e_tag.is_some() && m.e_tag != own.etag)
            }
        }
    }

    /// The index the listing calls for (step 3 of the module docs).
    async fn desired(&self, key: &IndexKey, snap: &Snapshot, jobs: &[S3Job]) -> ApkIndex {
        let replica = self.replica();
        let mut by_file: BTreeMap<String, IndexEntry> = BTreeMap::new();
        for e in &snap.index.packages {
            let file = e.file_name();
            if snap.listed.get(&file) == Some(&e.file_size) {
                let listed = Listed {
                    name: file.clone(),
                    size: e.file_size,
                };
                lock(&replica.known)
                    .entry(listed)
                    .or_insert_with(|| e.clone());
                by_file.insert(file, e.clone());
            }
        }
        for own in jobs.iter().flat_map(|j| &j.own) {
            let file = own.entry.file_name();
            if snap.listed.get(&file) == Some(&own.entry.file_size) {
                by_file.insert(file, own.entry.clone());
            }
        }
        for (name, &size) in &snap.listed {
            if by_file.contains_key(name) {
                continue;
            }
            let listed = Listed {
                name: name.clone(),
                size,
            };
            if let Some(e) = self.entry_of_object(key, &listed).await {
                by_file.insert(name.clone(), e);
            }
        }
        let mut index = ApkIndex {
            description: snap.index.description.clone(),
            packages: by_file.into_values().collect(),
        };
        index.sort();
        index
    }

    /// The index entry of a stored object: remembered, or read from the object and
    /// verified against the trusted keys. `None` for what is not a usable package of this
    /// index (logged once).
    pub(crate) async fn entry_of_object(
        &self,
        key: &IndexKey,
        listed: &Listed,
    ) -> Option<IndexEntry> {
        let replica = self.replica();
        if let Some(e) = lock(&replica.known).get(listed) {
            return Some(e.clone());
        }
        if lock(&replica.unusable).contains(listed) {
            return None;
        }
        let rel = rel_of(key, &listed.name);
        let tmp = tempfile::Builder::new()
            .prefix("object-")
            .tempfile_in(self.tmp_dir())
            .ok()?
            .into_temp_path();
        match replica.store.get_to_file(&rel, &tmp).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(e) => {
                tracing::warn!(object = %rel, "cannot read the object to index it: {e}");
                return None;
            }
        }
        let this_key = key.clone();
        let (name, keyring, limits) = (listed.name.clone(), self.keyring(), self.limits());
        let read = tokio::task::spawn_blocking(move || {
            let keyring = keyring.ok_or("no trusted keys are configured")?;
            crate::reconcile::read_entry(&tmp, &this_key, &name, &keyring, limits)
        })
        .await;
        match read {
            Ok(Ok(entry)) => {
                lock(&replica.known).insert(listed.clone(), entry.clone());
                Some(entry)
            }
            Ok(Err(why)) => {
                tracing::warn!(object = %rel, "not indexed: {why}");
                lock(&replica.unusable).insert(listed.clone());
                None
            }
            Err(e) => {
                tracing::error!(object = %rel, "reading the object panicked: {e}");
                None
            }
        }
    }

    /// Renders, signs and writes an index (conditionally where the store checks).
    async fn write_index_s3(
        self: &Arc<Self>,
        key: &IndexKey,
        index: &ApkIndex,
        version: Option<UpdateVersion>,
    ) -> Result<(), PutIndexError> {
        let started = std::time::Instant::now();
        let Some(signer) = self.signer.clone() else {
            return Err(PutIndexError::Other(object_store::Error::NotImplemented {
                operation: "index writes without `signing.key`".into(),
                implementer: "reposerve".into(),
            }));
        };
        let this = Arc::clone(self);
        let index = index.clone();
        let bytes = tokio::task::spawn_blocking(move || this.render(&index, &signer))
            .await
            .map_err(|e| PutIndexError::Other(generic(e)))?
            .map_err(|e| PutIndexError::Other(generic(e)))?;
        let replica = self.replica();
        let r = replica
            .store
            .put_index(
                &rel_of(key, INDEX_NAME),
                bytes,
                version,
                replica.mode.conditional(),
            )
            .await;
        if r.is_ok() {
            self.metrics.index_update(started.elapsed());
        }
        r
    }
}

/// Answers the jobs whose every package the index lists with its checksum.
fn answer_satisfied(key: &IndexKey, snap: &Snapshot, jobs: &mut Vec<S3Job>) {
    let (done, waiting): (Vec<S3Job>, Vec<S3Job>) = jobs.drain(..).partition(|j| {
        j.own.iter().all(|o| {
            snap.index
                .get(&o.entry.name, &o.entry.version)
                .is_some_and(|e| e.checksum == o.entry.checksum)
        })
    });
    *jobs = waiting;
    for job in done {
        let accepted = job
            .own
            .into_iter()
            .map(|o| Accepted::of(key, o.entry, o.outcome))
            .collect();
        let _ = job.reply.send(Ok(accepted));
    }
}

/// Answers every job with `e`, and hands it back.
fn fail(jobs: Vec<S3Job>, e: AppError) -> AppError {
    for job in jobs {
        let _ = job.reply.send(Err(e.clone()));
    }
    e
}

/// Logs entries a write adds for objects no upload of ours brought (strays, concurrent
/// uploads of other replicas) and entries it drops (objects gone): at start at info level,
/// in the normal run of several replicas at debug.
fn log_rebuild(key: &IndexKey, from: &ApkIndex, to: &ApkIndex, startup: bool) {
    let names = |i: &ApkIndex| -> HashSet<String> {
        i.packages.iter().map(IndexEntry::file_name).collect()
    };
    let (before, after) = (names(from), names(to));
    let added = after.difference(&before).count();
    let dropped = before.difference(&after).count();
    if startup && (added > 0 || dropped > 0) {
        tracing::info!(
            ?key,
            added,
            dropped,
            "index rebuilt from the packages stored"
        );
    } else {
        tracing::debug!(
            ?key,
            added,
            dropped,
            "index rebuilt from the packages stored"
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn generic(e: impl std::fmt::Display) -> object_store::Error {
    object_store::Error::Generic {
        store: "reposerve index",
        source: e.to_string().into(),
    }
}
