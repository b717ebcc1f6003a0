//! The pipeline's long-running tasks: the dispatcher (due work into queues), fan-out
//! workers, and per-channel delivery workers with their own concurrency, so a slow
//! SMS provider never holds up push.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tidings_platform::model::Channel;
use tidings_platform::Id;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::deliver::IDLE_WAIT;
use crate::model::{DeliveryRecord, DeliveryStatus};
use crate::policy::backoff_ms;
use crate::service::{Notifier, FANOUT_QUEUE};
use crate::store::DeliveryUpdate;

/// Rows looked at per dispatcher query.
const DISPATCH_PAGE: u32 = 5_000;

async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

impl Notifier {
    /// Starts every worker on `runtime`; they stop after their current batch once
    /// `shutdown` turns true.
    pub fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
        runtime: &tokio::runtime::Handle,
    ) -> Vec<JoinHandle<()>> {
        let mut handles = vec![runtime.spawn(self.clone().dispatcher(shutdown.clone()))];
        for _ in 0..self.config.workers_per_channel.max(1) {
            handles.push(runtime.spawn(self.clone().fanout_worker(shutdown.clone())));
            for channel in Channel::ALL {
                handles.push(runtime.spawn(self.clone().channel_worker(channel, shutdown.clone())));
                if self.handoff.is_some() {
                    handles.push(
                        runtime.spawn(self.clone().handoff_worker(channel, shutdown.clone())),
                    );
                }
            }
        }
        handles
    }

    /// Finds work whose time has come or whose queue message was lost: scheduled
    /// sends, retries after backoff, deliveries waiting out quiet hours, and rows a
    /// crashed worker had claimed.
    async fn dispatcher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.config.dispatch_interval_ms.max(10));
        loop {
            if let Err(e) = self.dispatch_once().await {
                tracing::warn!(error = %e, "dispatcher pass failed");
            }
            if *shutdown.borrow() || pause(&mut shutdown, interval).await {
                return;
            }
        }
    }

    /// One dispatcher pass; returns how many hints it sent.
    pub async fn dispatch_once(&self) -> tidings_platform::Result<usize> {
        let now = self.now_ms();
        let stale_before = now - self.config.lease_ms as i64;
        let mut sent = 0;
        let fanouts = self
            .store
            .due_fanouts(now, stale_before, DISPATCH_PAGE)
            .await?;
        if !fanouts.is_empty() {
            let ids: Vec<i64> = fanouts.iter().map(|i| i.0).collect();
            self.queue
                .enqueue(FANOUT_QUEUE, &ids, Duration::ZERO)
                .await
                .map_err(|e| tidings_platform::Error::Internal(e.to_string()))?;
            sent += ids.len();
        }
        loop {
            let due = self
                .store
                .due_deliveries(now, stale_before, DISPATCH_PAGE)
                .await?;
            let mut by_channel: HashMap<Channel, Vec<i64>> = HashMap::new();
            for (channel, id) in &due {
                by_channel.entry(*channel).or_default().push(id.0);
            }
            for (channel, ids) in by_channel {
                self.queue
                    .enqueue(channel.as_str(), &ids, Duration::ZERO)
                    .await
                    .map_err(|e| tidings_platform::Error::Internal(e.to_string()))?;
                sent += ids.len();
            }
            if due.len() < DISPATCH_PAGE as usize {
                return Ok(sent);
            }
        }
    }

    async fn fanout_worker(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let leased = tokio::select! {
                r = self.queue.lease(FANOUT_QUEUE, 8, IDLE_WAIT) => r,
                _ = shutdown.changed() => return,
            };
            let leased = match leased {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "fan-out queue unavailable");
                    if pause(&mut shutdown, IDLE_WAIT).await {
                        return;
                    }
                    continue;
                }
            };
            for message in leased {
                let id = Id(message.item);
                match self.fan_out(id).await {
                    Ok(()) => {
                        let _ = self.queue.ack(FANOUT_QUEUE, &[message.handle]).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, notification = %id, "fan-out failed; will retry");
                        let delay = backoff_ms(
                            message.deliveries,
                            self.config.retry_base_ms,
                            self.config.retry_max_ms,
                            0.5,
                        );
                        let _ = self
                            .queue
                            .nack(FANOUT_QUEUE, &message.handle, Duration::from_millis(delay))
                            .await;
                    }
                }
            }
        }
    }

    /// Works the deliveries this node's fan-out handed over already claimed.
    async fn handoff_worker(
        self: Arc<Self>,
        channel: Channel,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(handoff) = &self.handoff else {
            return;
        };
        loop {
            if *shutdown.borrow() {
                self.give_back_handoff(channel).await;
                return;
            }
            let batch = tokio::select! {
                b = handoff.recv_batch(channel, self.config.batch_size.max(1)) => b,
                _ = shutdown.changed() => {
                    self.give_back_handoff(channel).await;
                    return;
                }
            };
            let taken = batch.len();
            // A claim that waited out most of its lease is left to run out: by then
            // the dispatcher may be handing the row to another worker.
            let margin = (self.config.lease_ms / 2) as i64;
            let now = self.now_ms();
            let mut notifications = HashMap::new();
            let live: Vec<DeliveryRecord> = batch
                .into_iter()
                .filter(|c| c.lease_until_ms.saturating_sub(margin) > now)
                .map(|c| {
                    notifications
                        .entry(c.notification.id)
                        .or_insert(c.notification);
                    c.record
                })
                .collect();
            if let Err(e) = self.deliver_claimed(live, notifications).await {
                tracing::warn!(error = %e, channel = channel.as_str(), "handed-over batch failed; its rows will be dispatched again once their lease runs out");
            }
            handoff.release(channel, taken);
        }
    }

    /// On shutdown, returns the claims still waiting in the hand-off to the store as
    /// due now, so the next start sends them at once instead of after their lease.
    async fn give_back_handoff(&self, channel: Channel) {
        let Some(handoff) = &self.handoff else {
            return;
        };
        let waiting = handoff.drain(channel);
        if waiting.is_empty() {
            return;
        }
        let now = self.now_ms();
        let updates: Vec<DeliveryUpdate> = waiting
            .iter()
            .map(|c| DeliveryUpdate {
                id: c.record.id,
                status: DeliveryStatus::Queued,
                reason: None,
                provider_message_id: None,
                due_at_ms: now,
                dead: false,
                now_ms: now,
            })
            .collect();
        if let Err(e) = self.store.complete(&updates).await {
            tracing::warn!(error = %e, channel = channel.as_str(), "handed-over deliveries not given back; they go out once their lease runs out");
        }
        handoff.release(channel, waiting.len());
    }

    async fn channel_worker(
        self: Arc<Self>,
        channel: Channel,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let queue = channel.as_str();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let leased = tokio::select! {
                r = self.queue.lease(queue, self.config.batch_size.max(1), IDLE_WAIT) => r,
                _ = shutdown.changed() => return,
            };
            let leased = match leased {
                Ok(l) if l.is_empty() => continue,
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, queue, "delivery queue unavailable");
                    if pause(&mut shutdown, IDLE_WAIT).await {
                        return;
                    }
                    continue;
                }
            };
            let ids: Vec<Id> = leased.iter().map(|l| Id(l.item)).collect();
            // The claim in the store is what owns a delivery from here on, so the
            // queue messages can go whatever happens next; if this process dies, the
            // claim's lease runs out and the dispatcher hands the row out again.
            match self.deliver_batch(&ids).await {
                Ok(_) => {
                    let handles: Vec<_> = leased.into_iter().map(|l| l.handle).collect();
                    let _ = self.queue.ack(queue, &handles).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, queue, "delivery batch failed; its rows will be dispatched again");
                    for l in leased {
                        let _ = self.queue.nack(queue, &l.handle, IDLE_WAIT).await;
                    }
                }
            }
        }
    }
}
