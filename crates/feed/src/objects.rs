//! The read-side caches of the feed: posts with their counters (the content cache),
//! authors (the user cache), each reader's mutes and celebrity followees (the social
//! graph cache) and whether a reader liked a post (the action cache), as serialized
//! values under string keys. Memory for the
//! embedded default, Redis when several nodes must see the same entries.
//!
//! They are caches: every value is re-read from the store on a miss, a write that
//! changes a value deletes its key, and values that change elsewhere (profiles,
//! follower counts crossing the celebrity threshold) live only for a short TTL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tidings_platform::store::StoreResult;

#[async_trait]
pub trait ObjectCache: Send + Sync + 'static {
    /// The value of each key, `None` where there is none (or it expired).
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>>;
    /// Stores each value for `ttl`.
    async fn put_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()>;
    async fn delete(&self, keys: &[String]) -> StoreResult<()>;
}

/// At most `capacity` entries in memory; a full cache drops an eighth of its entries
/// (the ones expiring soonest) to make room.
pub struct MemoryObjectCache {
    entries: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
    capacity: usize,
}

impl MemoryObjectCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(8),
        }
    }
}

#[async_trait]
impl ObjectCache for MemoryObjectCache {
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let now = Instant::now();
        let entries = self.entries.lock();
        Ok(keys
            .iter()
            .map(|k| {
                entries
                    .get(k)
                    .filter(|(expires, _)| *expires > now)
                    .map(|(_, v)| v.clone())
            })
            .collect())
    }

    async fn put_many(&self, new: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()> {
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() + new.len() > self.capacity {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() + new.len() > self.capacity {
                let mut by_expiry: Vec<(Instant, String)> =
                    entries.iter().map(|(k, (e, _))| (*e, k.clone())).collect();
                by_expiry.sort_unstable();
                for (_, k) in by_expiry.into_iter().take(self.capacity / 8 + new.len()) {
                    entries.remove(&k);
                }
            }
        }
        for (k, v) in new {
            entries.insert(k.clone(), (now + ttl, v.clone()));
        }
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> StoreResult<()> {
        let mut entries = self.entries.lock();
        for k in keys {
            entries.remove(k);
        }
        Ok(())
    }
}
