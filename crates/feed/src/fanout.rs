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

use tidings_notify::queue::Leased;
use tidings_platform::Id;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::{FeedEntry, PostRecord};
use crate::service::{Feed, FANOUT_QUEUE, UNFANOUT_QUEUE};

const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Posts not fanned out this long after creation are queued again.
const SWEEP_AFTER_MS: i64 = 30_000;
const SWEEP_EVERY: Duration = Duration::from_secs(5);

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
            for message in leased {
                let post = Id(message.item);
                let done = if queue == FANOUT_QUEUE {
                    self.fan_out(post).await
                } else {
                    self.fan_out_removal(post).await
                };
                match done {
                    Ok(()) => {
                        let _ = self.queue.ack(queue, &[message.handle]).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, post = %post, queue, "fan-out failed; retrying");
                        let _ = self
                            .queue
                            .nack(queue, &message.handle, Duration::from_secs(1))
                            .await;
                    }
                }
            }
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
            self.deliver(&p).await?;
        }
        self.store.mark_fanned_out(p.id).await?;
        Ok(())
    }

    async fn deliver(&self, p: &PostRecord) -> tidings_platform::Result<()> {
        let entry = FeedEntry {
            post_id: p.id,
            author_id: p.author_id,
        };
        let inactive_before = self.clock.now_ms() - self.settings.inactive_after_ms;
        let view = self.hydrate(p.author_id, vec![p.clone()]).await?.pop();
        let mut after = None;
        loop {
            let page = self
                .store
                .followers(p.app_id, p.author_id, after, self.settings.fanout_batch)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user_id);
            let ids: Vec<Id> = page.iter().map(|f| f.user_id).collect();
            let muting = self.store.muting(p.author_id, &ids).await?;
            let mut active = Vec::with_capacity(page.len());
            for f in &page {
                if muting.contains(&f.user_id) {
                    continue;
                }
                if f.last_active_ms < inactive_before {
                    // Their feed would go stale while they are away: drop it now and
                    // rebuild it on their next read.
                    self.cache.drop_feed(f.user_id).await?;
                    continue;
                }
                active.push(f.user_id);
            }
            let entries: Vec<(Id, FeedEntry)> = active.iter().map(|u| (*u, entry)).collect();
            self.cache.push(&entries, self.settings.cap).await?;
            if let Some(view) = &view {
                self.live.feed_item(active, view).await;
            }
            if page.len() < self.settings.fanout_batch as usize {
                break;
            }
            tokio::task::yield_now().await;
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
            for f in &page {
                self.cache.remove_posts(f.user_id, &[post]).await?;
            }
            if page.len() < self.settings.fanout_batch as usize {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}
