//! Group commit: one lane per index. Uploads that arrive while that index is being written
//! queue in its lane, and the next write takes them all at once, so the index is rendered,
//! signed and written once per batch instead of once per upload.
//!
//! A lane has at most one worker. [`Lane::push`] tells the caller when it must start one
//! (the queue was idle); the worker calls [`Lane::take`] until it returns `None`, which it
//! does atomically with marking the lane idle, so a job pushed at that moment either is
//! taken by the running worker or starts a new one, never neither.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// The queue of one index.
pub struct Lane<J> {
    state: Mutex<State<J>>,
}

struct State<J> {
    jobs: Vec<J>,
    running: bool,
}

impl<J> Default for Lane<J> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                jobs: Vec::new(),
                running: false,
            }),
        }
    }
}

impl<J> Lane<J> {
    /// Queues `job`. Returns true when no worker is running: the caller must start one.
    pub fn push(&self, job: J) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.jobs.push(job);
        !std::mem::replace(&mut s.running, true)
    }

    /// Everything queued, or `None` (and the lane marked idle) when nothing is.
    pub fn take(&self) -> Option<Vec<J>> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.jobs.is_empty() {
            s.running = false;
            return None;
        }
        Some(std::mem::take(&mut s.jobs))
    }
}

/// Lanes by index key, created on first use.
pub struct Lanes<K, J> {
    map: Mutex<HashMap<K, Arc<Lane<J>>>>,
}

impl<K, J> Default for Lanes<K, J> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, J> Lanes<K, J> {
    /// The lane of `key`.
    pub fn get(&self, key: &K) -> Arc<Lane<J>> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key.clone()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_at_a_time_and_nothing_left_behind() {
        let lane = Lane::default();
        assert!(lane.push(1), "idle lane: the caller starts a worker");
        assert!(!lane.push(2), "a worker is running: just queued");
        assert_eq!(lane.take(), Some(vec![1, 2]));
        assert!(!lane.push(3), "still running until take() says so");
        assert_eq!(lane.take(), Some(vec![3]));
        assert_eq!(lane.take(), None);
        assert!(lane.push(4), "idle again");
    }
}
