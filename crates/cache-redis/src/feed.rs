//! Feed caches in Redis, so every node reads and fans out into the same feeds.
//!
//! One sorted set per user, `{prefix}feed:{user}`, every member scored 0 and ordered
//! by its bytes alone. Scores are doubles, exact only up to 2^53, while Snowflake post
//! ids are around 2^58: neighbouring posts would share a score, and a `before` cursor
//! could skip or repeat them. So the order lives in the member instead: the post id
//! zero-padded to 19 digits (every positive `i64` fits), a `:`, then the author. Byte
//! order is then post id order, `ZREVRANGEBYLEX` pages newest first with an exact
//! cursor, one post's member is found by its `{post}:` prefix without knowing the
//! author, and an author's members by their `:{author}` suffix.
//!
//! A materialized feed always holds [`SENTINEL`], which sorts below every entry: an
//! emptied or empty-rebuilt feed is still there (empty, not unknown), and since it is
//! one key, "materialized" cannot disagree with the entries the way a companion key
//! could after an eviction or an expiry.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{ErrorKind, Script};
use tidings_feed::cache::FeedCache;
use tidings_feed::model::FeedEntry;
use tidings_platform::store::StoreResult;
use tidings_platform::{Id, StoreError};

use crate::store_err;

/// Below every digit, so it is always rank 0 and outside every page's range.
const SENTINEL: &str = "!";

/// The lowest bound of a page: everything above the sentinel.
const ABOVE_SENTINEL: &str = "(!";

/// A feed nobody has read for this long is dropped, and rebuilt from the store if its
/// user ever comes back. Only reads and rebuilds extend it: pushes from fan-out must
/// not keep an abandoned feed alive forever.
const FEED_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// How many feeds one pipelined round trip pushes into: large enough that a fan-out
/// to thousands of followers takes a handful of round trips, small enough not to hold
/// up everyone else sharing the multiplexed connection.
const PUSH_BATCH: usize = 1_000;

/// Feeds per script call. A fan-out delivers the same entry to every follower, so
/// feeds that take the same entries share one call: the per-call cost (argument
/// parsing, script lookup, entering Lua) is paid once per this many feeds instead of
/// once per feed.
const KEYS_PER_CALL: usize = 250;

/// KEYS: feeds. ARGV: the cap, the rank to trim to (see [`trim_stop`]), then
/// members. Adds the members to each materialized feed and keeps the sentinel plus
/// the newest `cap`; feeds nobody built are skipped. A member is a post id and its
/// author, and a post's author never changes, so a post already in the feed is the
/// same member and `ZADD` leaves it as it is. Trimming is only paid for by a feed
/// past its cap.
///
/// Several keys in one script assume one Redis server (or, on a cluster, keys that
/// share a slot), which is how `tidings` uses Redis.
const PUSH: &str = r"
local cap = tonumber(ARGV[1])
-- ZADD arguments in chunks: Lua's unpack takes a few thousand values at most.
local chunks = {}
for i = 3, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    args[#args + 1] = 0
    args[#args + 1] = ARGV[j]
  end
  chunks[#chunks + 1] = args
end
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    for _, args in ipairs(chunks) do
      redis.call('ZADD', key, unpack(args))
    end
    if redis.call('ZCARD', key) > cap + 1 then
      redis.call('ZREMRANGEBYRANK', key, 1, ARGV[2])
    end
  end
end
return 0
";

/// KEYS: feed. ARGV: `:{author}`. Removes the author's entries in one step, so a
/// fan-out racing an unfollow or a mute cannot slip one in between a read and the
/// removal.
const REMOVE_AUTHOR: &str = r"
local suffix = ARGV[1]
local gone = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, -#suffix) == suffix then
    gone[#gone + 1] = m
    if #gone == 1000 then
      redis.call('ZREM', KEYS[1], unpack(gone))
      gone = {}
    end
  end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
return 0
";

/// The last rank `ZREMRANGEBYRANK` removes, from 1 (just above the sentinel), so the
/// newest `cap` entries stay. Computed here rather than in Lua, whose numbers are
/// doubles that Redis would get back as `9.2233720368548e+18` for a huge cap.
fn trim_stop(cap: usize) -> i64 {
    -(i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1))
}

fn member(e: &FeedEntry) -> String {
    format!("{:019}:{}", e.post_id.0, e.author_id.0)
}

/// The `[from, to)` lexical range holding one post's member, whoever wrote it.
fn post_range(post: Id) -> (String, String) {
    (format!("[{:019}:", post.0), format!("({:019};", post.0))
}

fn decode(m: &str) -> StoreResult<FeedEntry> {
    let bad = || StoreError::Backend(format!("redis: malformed feed entry {m:?}"));
    let (post, author) = m.split_once(':').ok_or_else(bad)?;
    Ok(FeedEntry {
        post_id: Id(post.parse().map_err(|_| bad())?),
        author_id: Id(author.parse().map_err(|_| bad())?),
    })
}

#[derive(Clone)]
pub struct RedisFeedCache {
    conn: ConnectionManager,
    prefix: String,
    push: Script,
    remove_author: Script,
}

impl RedisFeedCache {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        Ok(Self {
            conn: crate::connect(url).await?,
            prefix: prefix.to_owned(),
            push: Script::new(PUSH),
            remove_author: Script::new(REMOVE_AUTHOR),
        })
    }

    fn key(&self, user: Id) -> String {
        format!("{}feed:{user}", self.prefix)
    }

    /// One `EVALSHA` per group of feeds taking the same members, pipelined. Loads the
    /// script and sends the batch again when Redis has lost it (a restart, a
    /// failover, `SCRIPT FLUSH`); sending twice is harmless because pushing an entry
    /// that is there changes nothing.
    async fn push_batch(&self, calls: &[(&[String], Vec<String>)], cap: usize) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        for (members, keys) in calls {
            pipe.cmd("EVALSHA")
                .arg(self.push.get_hash())
                .arg(keys.len())
                .arg(keys)
                .arg(cap.min(1 << 52))
                .arg(trim_stop(cap))
                .arg(*members)
                .ignore();
        }
        let mut c = self.conn.clone();
        match pipe.query_async::<()>(&mut c).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.push
                    .prepare_invoke()
                    .load_async(&mut c)
                    .await
                    .map_err(store_err)?;
                pipe.query_async::<()>(&mut c).await.map_err(store_err)
            }
            other => other.map_err(store_err),
        }
    }
}

#[async_trait]
impl FeedCache for RedisFeedCache {
    async fn push(&self, entries: &[(Id, FeedEntry)], cap: usize) -> StoreResult<()> {
        // Each feed's members, then feeds grouped by identical members (a fan-out
        // gives every follower the same post), so a group is one script call.
        let mut per_feed: HashMap<Id, Vec<String>> = HashMap::new();
        for (user, entry) in entries {
            per_feed.entry(*user).or_default().push(member(entry));
        }
        let mut groups: HashMap<Vec<String>, Vec<String>> = HashMap::new();
        for (user, mut members) in per_feed {
            members.sort_unstable();
            members.dedup();
            groups.entry(members).or_default().push(self.key(user));
        }
        let mut calls: Vec<(&[String], Vec<String>)> = Vec::new();
        for (members, keys) in &groups {
            for chunk in keys.chunks(KEYS_PER_CALL) {
                calls.push((members.as_slice(), chunk.to_vec()));
            }
        }
        // A pipeline per PUSH_BATCH feeds, counting feeds rather than calls.
        let mut start = 0;
        while start < calls.len() {
            let mut feeds = 0;
            let mut end = start;
            while end < calls.len() && (end == start || feeds + calls[end].1.len() <= PUSH_BATCH) {
                feeds += calls[end].1.len();
                end += 1;
            }
            self.push_batch(&calls[start..end], cap).await?;
            start = end;
        }
        Ok(())
    }

    async fn replace(&self, user: Id, entries: &[FeedEntry], cap: usize) -> StoreResult<()> {
        let mut sorted = entries.to_vec();
        sorted.sort_unstable_by_key(|e| std::cmp::Reverse(e.post_id));
        sorted.dedup_by_key(|e| e.post_id);
        sorted.truncate(cap);
        let key = self.key(user);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&key).arg(0).arg(SENTINEL);
        for e in &sorted {
            zadd.arg(0).arg(member(e));
        }
        pipe.add_command(zadd)
            .ignore()
            .pexpire(&key, FEED_TTL_MS)
            .ignore();
        let mut c = self.conn.clone();
        pipe.query_async::<()>(&mut c).await.map_err(store_err)
    }

    async fn page(
        &self,
        user: Id,
        before: Option<Id>,
        limit: usize,
    ) -> StoreResult<Option<Vec<FeedEntry>>> {
        let key = self.key(user);
        // Every member of a post below `before` sorts below the bare padded id.
        let max = match before {
            Some(b) => format!("({:019}", b.0),
            None => "+".to_owned(),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut c = self.conn.clone();
        let (exists, members, _): (bool, Vec<String>, i64) = redis::pipe()
            .atomic()
            .exists(&key)
            .cmd("ZREVRANGEBYLEX")
            .arg(&key)
            .arg(max)
            .arg(ABOVE_SENTINEL)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .pexpire(&key, FEED_TTL_MS)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        if !exists {
            return Ok(None);
        }
        members
            .iter()
            .map(|m| decode(m))
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }

    async fn remove_posts(&self, user: Id, posts: &[Id]) -> StoreResult<()> {
        self.remove_posts_from(&[user], posts).await
    }

    async fn remove_author(&self, user: Id, author: Id) -> StoreResult<()> {
        let mut c = self.conn.clone();
        self.remove_author
            .key(self.key(user))
            .arg(format!(":{author}"))
            .invoke_async::<()>(&mut c)
            .await
            .map_err(store_err)
    }

    async fn drop_feed(&self, user: Id) -> StoreResult<()> {
        self.drop_feeds(&[user]).await
    }

    async fn remove_posts_from(&self, users: &[Id], posts: &[Id]) -> StoreResult<()> {
        let mut c = self.conn.clone();
        for chunk in users.chunks(PUSH_BATCH) {
            let mut pipe = redis::pipe();
            for user in chunk {
                let key = self.key(*user);
                for post in posts {
                    let (from, to) = post_range(*post);
                    pipe.cmd("ZREMRANGEBYLEX")
                        .arg(&key)
                        .arg(from)
                        .arg(to)
                        .ignore();
                }
            }
            pipe.query_async::<()>(&mut c).await.map_err(store_err)?;
        }
        Ok(())
    }

    async fn drop_feeds(&self, users: &[Id]) -> StoreResult<()> {
        let mut c = self.conn.clone();
        for chunk in users.chunks(PUSH_BATCH) {
            let keys: Vec<String> = chunk.iter().map(|u| self.key(*u)).collect();
            if keys.is_empty() {
                continue;
            }
            redis::cmd("UNLINK")
                .arg(keys)
                .query_async::<()>(&mut c)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }
}

/// What the conformance suite cannot see: real Snowflake-sized ids, authors whose ids
/// end alike, a script Redis has never seen, and the TTL. Skipped without
/// `TIDINGS_TEST_REDIS_URL`.
#[cfg(test)]
mod tests {
    use super::*;

    async fn cache() -> Option<RedisFeedCache> {
        let url = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
        let prefix = format!("test:{:016x}:", rand::random::<u64>());
        Some(RedisFeedCache::connect(&url, &prefix).await.expect("redis"))
    }

    fn entry(post: i64, author: i64) -> FeedEntry {
        FeedEntry {
            post_id: Id(post),
            author_id: Id(author),
        }
    }

    #[tokio::test]
    async fn snowflake_ids_page_exactly() {
        let Some(cache) = cache().await else { return };
        let user = Id(1);
        // Neighbours around 2^58 share one f64; only exact ordering tells them apart.
        let base = (1_i64 << 58) + 1;
        let all: Vec<FeedEntry> = (0..6).map(|i| entry(base + i, 100 + i)).collect();
        cache.replace(user, &all[..3], 10).await.unwrap();
        cache
            .push(&[(user, all[4]), (user, all[3]), (user, all[5])], 5)
            .await
            .unwrap();
        let page = cache
            .page(user, Some(Id(base + 4)), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page, vec![all[3], all[2]]);
        let newest = cache.page(user, None, 1).await.unwrap().unwrap();
        assert_eq!(newest, vec![all[5]]);
        assert_eq!(cache.page(user, None, 10).await.unwrap().unwrap().len(), 5);
        cache.remove_posts(user, &[Id(base + 5)]).await.unwrap();
        let newest = cache.page(user, None, 1).await.unwrap().unwrap();
        assert_eq!(newest, vec![all[4]]);
        cache
            .push(&[(user, entry(i64::MAX, 1))], usize::MAX)
            .await
            .unwrap();
        let newest = cache.page(user, None, 1).await.unwrap().unwrap();
        assert_eq!(newest, vec![entry(i64::MAX, 1)]);
    }

    #[tokio::test]
    async fn authors_are_matched_whole_and_posts_once() {
        let Some(cache) = cache().await else { return };
        let user = Id(2);
        cache
            .replace(user, &[entry(1, 7), entry(2, 17), entry(3, 77)], 10)
            .await
            .unwrap();
        cache.remove_author(user, Id(7)).await.unwrap();
        let left = cache.page(user, None, 10).await.unwrap().unwrap();
        assert_eq!(left, vec![entry(3, 77), entry(2, 17)]);
        // A post pushed again (a repeated fan-out) is still there once.
        cache.push(&[(user, entry(2, 17))], 10).await.unwrap();
        let left = cache.page(user, None, 10).await.unwrap().unwrap();
        assert_eq!(left, vec![entry(3, 77), entry(2, 17)]);
    }

    #[tokio::test]
    async fn one_push_may_carry_more_entries_than_lua_can_unpack() {
        let Some(cache) = cache().await else { return };
        let user = Id(5);
        cache.replace(user, &[], 10_000).await.unwrap();
        // A backfill of this size (`feed.follow_backfill` is configurable) is past
        // what one `unpack` of ZADD arguments can take.
        let entries: Vec<(Id, FeedEntry)> = (1..=6_000).map(|p| (user, entry(p, 1))).collect();
        cache.push(&entries, 10_000).await.unwrap();
        let page = cache.page(user, None, 10_000).await.unwrap().unwrap();
        assert_eq!(page.len(), 6_000);
        assert_eq!(page[0], entry(6_000, 1));
    }

    #[tokio::test]
    async fn a_script_redis_lost_is_loaded_again() {
        let Some(mut cache) = cache().await else {
            return;
        };
        // A variant no Redis has seen, as after a restart or a failover.
        cache.push = Script::new(&format!("{PUSH}-- {}\n", rand::random::<u64>()));
        let user = Id(3);
        cache.replace(user, &[], 10).await.unwrap();
        cache.push(&[(user, entry(5, 1))], 10).await.unwrap();
        assert_eq!(
            cache.page(user, None, 10).await.unwrap(),
            Some(vec![entry(5, 1)])
        );
    }

    #[tokio::test]
    async fn feeds_expire_unless_read() {
        let Some(cache) = cache().await else { return };
        let user = Id(4);
        cache.replace(user, &[entry(1, 1)], 10).await.unwrap();
        let mut c = cache.conn.clone();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(cache.key(user))
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(ttl > FEED_TTL_MS - 60_000 && ttl <= FEED_TTL_MS, "{ttl}");
    }
}
