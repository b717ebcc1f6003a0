//! Fan-out on write, in the background: each new post's id goes into the followers'
//! feed caches a page of followers at a time, skipping those who muted the author and
//! those inactive long enough that their feed is better rebuilt when they return.
//! Celebrities (`celebrity_followers` and up) are not fanned out; readers merge them.
//! Deletes are fanned out the same way, as removals.
//!
//! The post row is the record: a post not marked fanned out is found again by the
//! sweeper, and a repeated fan-out changes nothing (caches ignore an id they hold).
//! Workers yield between pages so a big fan-out never starves requests.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use tidings_notify::queue::Leased;
use tidings_platform::Id;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::{FeedEntry, Follower, PostRecord};
use crate::service::{Feed, FANOUT_QUEUE, UNFANOUT_QUEUE};

const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Posts not fanned out this long after creation are queued again.
const SWEEP_AFTER_MS: i64 = 30_000;
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long an author's cached audience lives. Changes to it delete it, so this only
/// bounds how stale followers' activity can be (which decides who is skipped).
const AUDIENCE_TTL: Duration = Duration::from_secs(60);

pub(crate) fn audience_key(author: Id) -> String {
    format!("audience:{author}")
}

/// The follower count the list was read at, then per follower its id and last
/// activity, little-endian: 16 bytes a follower, read back without parsing text.
fn encode_audience(list: &[Follower], followers: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + list.len() * 16);
    out.extend_from_slice(&followers.to_le_bytes());
    for f in list {
        out.extend_from_slice(&f.user_id.0.to_le_bytes());
        out.extend_from_slice(&f.last_active_ms.to_le_bytes());
    }
    out
}

/// The list, if `bytes` is one read at `followers` followers.
fn decode_audience(bytes: &[u8], followers: i64) -> Option<Vec<Follower>> {
    let (head, body) = bytes.split_at_checked(8)?;
    if i64::from_le_bytes(head.try_into().ok()?) != followers || body.len() % 16 != 0 {
        return None;
    }
    Some(
        body.chunks_exact(16)
            .map(|c| Follower {
                user_id: Id(i64::from_le_bytes(c[..8].try_into().unwrap_or_default())),
                last_active_ms: i64::from_le_bytes(c[8..].try_into().unwrap_or_default()),
            })
            .collect(),
    )
}

impl Feed {
    /// Starts the fan-out workers and the sweeper; they stop when `stop` turns true.
    pub fn start(self: &Arc<Self>, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().worker(FANOUT_QUEUE, stop.clone())),
            tokio::spawn(self.clone().worker(UNFANOUT_QUEUE, stop.clone())),
            tokio::spawn(self.clone().sweeper(stop)),
        ]
    }

    async fn worker(self: Arc<Self>, queue: &'static str, mut stop: watch::Receiver<bool>) {
        loop {
            let leased = tokio::select! {
                r = self.queue.lease(queue, 16, IDLE_WAIT) => r,
                _ = stop.changed() => return,
            };
            let leased: Vec<Leased> = match leased {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, queue, "feed queue unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_WAIT) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            // Several posts at once, so one waiting on the store does not hold up the
            // rest; the "fanned out" marks of posts finishing together share a commit.
            let this = &self;
            futures::stream::iter(leased)
                .for_each_concurrent(self.settings.fanout_concurrency.max(1), |message| async move {
                    let post = Id(message.item);
                    let done = if queue == FANOUT_QUEUE {
                        this.fan_out(post).await
                    } else {
                        this.fan_out_removal(post).await
                    };
                    match done {
                        Ok(()) => {
                            let _ = this.queue.ack(queue, &[message.handle]).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, post = %post, queue, "fan-out failed; retrying");
                            let _ = this
                                .queue
                                .nack(queue, &message.handle, Duration::from_secs(1))
                                .await;
                        }
                    }
                })
                .await;
        }
    }

    async fn sweeper(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = stop.changed() => return,
            }
            let before = self.clock.now_ms() - SWEEP_AFTER_MS;
            match self.store.unfanned_posts(before, 1_000).await {
                Ok(ids) if !ids.is_empty() => {
                    let raw: Vec<i64> = ids.iter().map(|i| i.0).collect();
                    if let Err(e) = self.queue.enqueue(FANOUT_QUEUE, &raw, Duration::ZERO).await {
                        tracing::warn!(error = %e, "cannot requeue fan-out");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot look for unfinished fan-out"),
            }
        }
    }

    /// Puts one post into every eligible follower's feed cache.
    pub async fn fan_out(&self, post: Id) -> tidings_platform::Result<()> {
        let Some(p) = self.store.posts_by_ids(&[post]).await?.pop() else {
            return Ok(());
        };
        if p.deleted || p.fanned_out || p.reply_to.is_some() {
            return Ok(());
        }
        let (followers, _) = self.store.follow_counts(p.app_id, p.author_id).await?;
        if followers < self.settings.celebrity_followers {
            let audience = self.audience(p.app_id, p.author_id, followers).await?;
            self.deliver(&p, &audience).await?;
        }
        self.store.mark_fanned_out(p.id).await?;
        Ok(())
    }

    /// The author's followers who have not muted them, with their last activity:
    /// from the social graph cache when it holds a list of the author's current
    /// follower count, otherwise read from the store a page at a time and cached.
    /// Follows, unfollows and mutes of the author delete the entry; the count check
    /// also catches a follow or unfollow that raced the read that filled it.
    async fn audience(
        &self,
        app: Id,
        author: Id,
        followers: i64,
    ) -> tidings_platform::Result<Vec<Follower>> {
        let key = audience_key(author);
        match self.objects.get_many(std::slice::from_ref(&key)).await {
            Ok(mut hit) => {
                if let Some(list) = hit
                    .pop()
                    .flatten()
                    .and_then(|b| decode_audience(&b, followers))
                {
                    return Ok(list);
                }
            }
            Err(e) => tracing::warn!(error = %e, "feed object cache unavailable"),
        }
        let mut list = Vec::with_capacity(usize::try_from(followers).unwrap_or(0));
        let mut after = None;
        loop {
            let page = self
                .store
                .followers(app, author, after, self.settings.fanout_batch)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user_id);
            let ids: Vec<Id> = page.iter().map(|f| f.user_id).collect();
            let muting = self.store.muting(author, &ids).await?;
            let full = page.len() == self.settings.fanout_batch as usize;
            list.extend(page.into_iter().filter(|f| !muting.contains(&f.user_id)));
            if !full {
                break;
            }
            tokio::task::yield_now().await;
        }
        let bytes = encode_audience(&list, followers);
        if let Err(e) = self.objects.put_many(&[(key, bytes)], AUDIENCE_TTL).await {
            tracing::warn!(error = %e, "cannot fill the feed object cache");
        }
        Ok(list)
    }

    async fn deliver(&self, p: &PostRecord, audience: &[Follower]) -> tidings_platform::Result<()> {
        let entry = FeedEntry {
            post_id: p.id,
            author_id: p.author_id,
        };
        let inactive_before = self.clock.now_ms() - self.settings.inactive_after_ms;
        let view = self.hydrate(p.author_id, vec![p.clone()]).await?.pop();
        let batch = (self.settings.fanout_batch as usize).max(1);
        for (i, page) in audience.chunks(batch).enumerate() {
            if i > 0 {
                tokio::task::yield_now().await;
            }
            // Inactive followers' feeds would go stale while they are away: dropped
            // now, rebuilt on their next read.
            let (active, inactive): (Vec<&Follower>, Vec<&Follower>) = page
                .iter()
                .partition(|f| f.last_active_ms >= inactive_before);
            if !inactive.is_empty() {
                let gone: Vec<Id> = inactive.iter().map(|f| f.user_id).collect();
                self.cache.drop_feeds(&gone).await?;
            }
            let entries: Vec<(Id, FeedEntry)> = active.iter().map(|f| (f.user_id, entry)).collect();
            self.cache.push(&entries, self.settings.cap).await?;
            if let Some(view) = &view {
                self.live
                    .feed_item(active.iter().map(|f| f.user_id).collect(), view)
                    .await;
            }
        }
        Ok(())
    }

    /// Takes a deleted post out of every follower's feed cache.
    pub async fn fan_out_removal(&self, post: Id) -> tidings_platform::Result<()> {
        let Some(p) = self.store.posts_by_ids(&[post]).await?.pop() else {
            return Ok(());
        };
        let mut after = None;
        loop {
            let page = self
                .store
                .followers(p.app_id, p.author_id, after, self.settings.fanout_batch)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user_id);
            let users: Vec<Id> = page.iter().map(|f| f.user_id).collect();
            self.cache.remove_posts_from(&users, &[post]).await?;
            if page.len() < self.settings.fanout_batch as usize {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}
