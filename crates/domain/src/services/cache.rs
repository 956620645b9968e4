//! A small in-memory cache with a lifetime, for what every request reads and
//! an administrator rarely changes (consumers, mailboxes, departments).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use crate::model::Timestamp;

/// Most keys kept; past it the cache starts over (keys may come from clients).
const CAPACITY: usize = 1024;

pub(crate) struct TtlCache<K, V> {
    ttl: chrono::Duration,
    entries: Mutex<HashMap<K, (V, Timestamp)>>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A zero `ttl` keeps nothing.
    pub(crate) fn new(ttl: std::time::Duration) -> Self {
        Self { ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX), entries: Mutex::default() }
    }

    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q, now: Timestamp) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let entries = self.entries.lock().ok()?;
        let (v, at) = entries.get(key)?;
        (now - *at < self.ttl).then(|| v.clone())
    }

    fn put(&self, key: K, value: V, now: Timestamp) {
        if self.ttl <= chrono::Duration::zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (value, now));
        }
    }

    pub(crate) fn forget<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
    {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// The value under `key` if younger than the lifetime, else `load`'s;
    /// kept only when `keep` says so.
    pub(crate) async fn get_or_load<E, F: Future<Output = Result<V, E>>>(
        &self,
        key: K,
        now: Timestamp,
        load: impl FnOnce() -> F,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<V, E> {
        if let Some(v) = self.get(&key, now) {
            return Ok(v);
        }
        let v = load().await?;
        if keep(&v) {
            self.put(key, v.clone(), now);
        }
        Ok(v)
    }
}
