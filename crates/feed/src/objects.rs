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
use std::hash::BuildHasher;
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

/// At most `capacity` entries in memory, spread over shards that each lock alone; a
/// full shard drops an eighth of its entries (the ones expiring soonest) to make room.
pub struct MemoryObjectCache {
    /// Chosen by the key's hash. One lock was contended by every request's dozens of
    /// look-ups, and waiters went to sleep in the kernel.
    shards: Vec<Mutex<Shard>>,
    pick: foldhash::fast::RandomState,
    per_shard: usize,
}

// foldhash rather than SipHash: a feed page hashes dozens of keys; it is still seeded
// per process.
type Shard = HashMap<String, (Instant, Vec<u8>), foldhash::fast::RandomState>;

/// Caches smaller than this keep one shard, so their capacity stays exact.
const SHARDED_FROM: usize = 1_024;
const SHARDS: usize = 16;

impl MemoryObjectCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(8);
        let shards = if capacity >= SHARDED_FROM { SHARDS } else { 1 };
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            pick: foldhash::fast::RandomState::default(),
            per_shard: capacity / shards,
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let i = self.pick.hash_one(key) as usize % self.shards.len();
        &self.shards[i]
    }
}

#[async_trait]
impl ObjectCache for MemoryObjectCache {
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let now = Instant::now();
        Ok(keys
            .iter()
            .map(|k| {
                self.shard(k)
                    .lock()
                    .get(k)
                    .filter(|(expires, _)| *expires > now)
                    .map(|(_, v)| v.clone())
            })
            .collect())
    }

    async fn put_many(&self, new: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()> {
        let now = Instant::now();
        for (k, v) in new {
            let mut shard = self.shard(k).lock();
            if shard.len() >= self.per_shard && !shard.contains_key(k) {
                shard.retain(|_, (expires, _)| *expires > now);
                if shard.len() >= self.per_shard {
                    let mut by_expiry: Vec<(Instant, String)> =
                        shard.iter().map(|(k, (e, _))| (*e, k.clone())).collect();
                    by_expiry.sort_unstable();
                    for (_, old) in by_expiry.into_iter().take(self.per_shard / 8 + 1) {
                        shard.remove(&old);
                    }
                }
            }
            shard.insert(k.clone(), (now + ttl, v.clone()));
        }
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> StoreResult<()> {
        for k in keys {
            self.shard(k).lock().remove(k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_cache_stays_within_its_capacity_and_keeps_the_newest() {
        for capacity in [100, 4_096] {
            let cache = MemoryObjectCache::new(capacity);
            for i in 0..capacity * 3 {
                let key = format!("k{i}");
                cache
                    .put_many(&[(key.clone(), vec![1])], Duration::from_secs(60))
                    .await
                    .unwrap();
                let got = cache.get_many(&[key]).await.unwrap();
                assert_eq!(got, vec![Some(vec![1])], "just stored");
            }
            let held: usize = cache.shards.iter().map(|s| s.lock().len()).sum();
            assert!(held <= capacity, "{held} held, capacity {capacity}");
            assert!(held >= capacity / 2, "evicts an eighth at a time: {held}");
        }
    }
}
