//! Channel membership, cached per node: routing a message or a typing frame needs
//! the member list, and reading it from the store each time would cost a query per
//! frame. Changes invalidate the entry here and, through the bus, on every node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::store::ChatStore;

pub struct MemberCache {
    store: Arc<dyn ChatStore>,
    entries: Mutex<HashMap<Id, Arc<[Id]>>>,
    capacity: usize,
    /// Bumped by every invalidation, so a load that raced one is not cached.
    generation: AtomicU64,
}

impl MemberCache {
    pub fn new(store: Arc<dyn ChatStore>, capacity: usize) -> Self {
        Self {
            store,
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
        }
    }

    pub async fn get(&self, channel: Id) -> StoreResult<Arc<[Id]>> {
        if let Some(hit) = self.entries.lock().get(&channel) {
            return Ok(hit.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let members: Arc<[Id]> = self.store.member_ids(channel).await?.into();
        let mut entries = self.entries.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return Ok(members);
        }
        if entries.len() >= self.capacity {
            // Crude but bounded: a full cache starts over rather than tracking use.
            entries.clear();
        }
        entries.insert(channel, members.clone());
        Ok(members)
    }

    pub fn invalidate(&self, channel: Id) {
        let mut entries = self.entries.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&channel);
    }
}
