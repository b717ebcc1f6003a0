//! The feed cache: per user, a capped list of post ids, newest first. It is a cache:
//! losing it loses nothing, since a feed is rebuilt from the store on its next read.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use parking_lot::Mutex;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::model::FeedEntry;

#[async_trait]
pub trait FeedCache: Send + Sync + 'static {
    /// Adds each entry to its user's feed if that feed is materialized, keeping the
    /// newest `cap`. Adding an entry that is there already changes nothing.
    async fn push(&self, entries: &[(Id, FeedEntry)], cap: usize) -> StoreResult<()>;
    /// Replaces a user's feed (a rebuild), newest `cap` kept; materializes it.
    async fn replace(&self, user: Id, entries: &[FeedEntry], cap: usize) -> StoreResult<()>;
    /// Up to `limit` entries with a post id below `before`, newest first; `None` when
    /// the user's feed is not materialized (never built, dropped, or evicted).
    async fn page(
        &self,
        user: Id,
        before: Option<Id>,
        limit: usize,
    ) -> StoreResult<Option<Vec<FeedEntry>>>;
    /// Removes these posts from a user's feed.
    async fn remove_posts(&self, user: Id, posts: &[Id]) -> StoreResult<()>;
    /// Removes every entry by `author` from a user's feed.
    async fn remove_author(&self, user: Id, author: Id) -> StoreResult<()>;
    /// Forgets a user's feed: it is rebuilt on the next read.
    async fn drop_feed(&self, user: Id) -> StoreResult<()>;

    /// [`FeedCache::remove_posts`] for many users at once.
    async fn remove_posts_from(&self, users: &[Id], posts: &[Id]) -> StoreResult<()> {
        for u in users {
            self.remove_posts(*u, posts).await?;
        }
        Ok(())
    }

    /// [`FeedCache::drop_feed`] for many users at once.
    async fn drop_feeds(&self, users: &[Id]) -> StoreResult<()> {
        for u in users {
            self.drop_feed(*u).await?;
        }
        Ok(())
    }
}

/// The embedded default: every materialized feed in memory, as a vector sorted
/// newest first. At most `max_feeds` feeds are held; past that, the feed read least
/// recently is dropped (and rebuilt from the store when its user comes back).
pub struct MemoryFeedCache {
    inner: Mutex<Feeds>,
    max_feeds: usize,
}

struct Feeds {
    map: HashMap<Id, Feed>,
    tick: u64,
}

struct Feed {
    // Newest first. A deque, because nearly every insert is a new post going to the
    // front, which a vector would pay for by moving the whole feed.
    entries: VecDeque<FeedEntry>,
    used: u64,
}

impl MemoryFeedCache {
    pub fn new(max_feeds: usize) -> Self {
        Self {
            inner: Mutex::new(Feeds {
                map: HashMap::new(),
                tick: 0,
            }),
            max_feeds: max_feeds.max(1),
        }
    }

    /// Entries held across all feeds (for memory accounting).
    pub fn entries(&self) -> usize {
        self.inner
            .lock()
            .map
            .values()
            .map(|f| f.entries.len())
            .sum()
    }
}

fn insert_sorted(entries: &mut VecDeque<FeedEntry>, entry: FeedEntry, cap: usize) {
    if entries
        .front()
        .is_none_or(|newest| entry.post_id > newest.post_id)
    {
        entries.push_front(entry);
    } else {
        // Newest first: find the first entry older than the new one.
        match entries.binary_search_by(|e| entry.post_id.cmp(&e.post_id)) {
            Ok(_) => return,
            Err(at) if at >= cap => return,
            Err(at) => entries.insert(at, entry),
        }
    }
    entries.truncate(cap);
}

impl Feeds {
    fn evict_if_full(&mut self, max: usize) {
        if self.map.len() < max {
            return;
        }
        // Evicting one at a time would make a full cache scan on every insert; drop
        // the least recently used eighth at once instead.
        let mut used: Vec<(u64, Id)> = self.map.iter().map(|(k, f)| (f.used, *k)).collect();
        used.sort_unstable();
        for (_, k) in used.iter().take((max / 8).max(1)) {
            self.map.remove(k);
        }
    }
}

#[async_trait]
impl FeedCache for MemoryFeedCache {
    async fn push(&self, entries: &[(Id, FeedEntry)], cap: usize) -> StoreResult<()> {
        let mut feeds = self.inner.lock();
        for (user, entry) in entries {
            if let Some(feed) = feeds.map.get_mut(user) {
                insert_sorted(&mut feed.entries, *entry, cap);
            }
        }
        Ok(())
    }

    async fn replace(&self, user: Id, entries: &[FeedEntry], cap: usize) -> StoreResult<()> {
        let mut sorted: Vec<FeedEntry> = entries.to_vec();
        sorted.sort_unstable_by_key(|e| std::cmp::Reverse(e.post_id));
        sorted.dedup_by_key(|e| e.post_id);
        sorted.truncate(cap);
        let mut feeds = self.inner.lock();
        if !feeds.map.contains_key(&user) {
            let max = self.max_feeds;
            feeds.evict_if_full(max);
        }
        feeds.tick += 1;
        let used = feeds.tick;
        feeds.map.insert(
            user,
            Feed {
                entries: sorted.into(),
                used,
            },
        );
        Ok(())
    }

    async fn page(
        &self,
        user: Id,
        before: Option<Id>,
        limit: usize,
    ) -> StoreResult<Option<Vec<FeedEntry>>> {
        let mut feeds = self.inner.lock();
        feeds.tick += 1;
        let tick = feeds.tick;
        let Some(feed) = feeds.map.get_mut(&user) else {
            return Ok(None);
        };
        feed.used = tick;
        let start = match before {
            Some(b) => feed.entries.partition_point(|e| e.post_id >= b),
            None => 0,
        };
        Ok(Some(
            feed.entries
                .iter()
                .skip(start)
                .take(limit)
                .copied()
                .collect(),
        ))
    }

    async fn remove_posts(&self, user: Id, posts: &[Id]) -> StoreResult<()> {
        if let Some(feed) = self.inner.lock().map.get_mut(&user) {
            feed.entries.retain(|e| !posts.contains(&e.post_id));
        }
        Ok(())
    }

    async fn remove_author(&self, user: Id, author: Id) -> StoreResult<()> {
        if let Some(feed) = self.inner.lock().map.get_mut(&user) {
            feed.entries.retain(|e| e.author_id != author);
        }
        Ok(())
    }

    async fn drop_feed(&self, user: Id) -> StoreResult<()> {
        self.inner.lock().map.remove(&user);
        Ok(())
    }

    async fn remove_posts_from(&self, users: &[Id], posts: &[Id]) -> StoreResult<()> {
        let mut feeds = self.inner.lock();
        for u in users {
            if let Some(feed) = feeds.map.get_mut(u) {
                feed.entries.retain(|e| !posts.contains(&e.post_id));
            }
        }
        Ok(())
    }

    async fn drop_feeds(&self, users: &[Id]) -> StoreResult<()> {
        let mut feeds = self.inner.lock();
        for u in users {
            feeds.map.remove(u);
        }
        Ok(())
    }
}
