//! Deliveries this node fanned out, passed straight to its own channel workers.
//!
//! With a node-local queue the usual path of a delivery that is due at once costs
//! three row writes: the fan-out inserts it, a worker claims it (status, lease,
//! attempts) after a queue hint, and the worker records the outcome. Here the
//! fan-out writes such rows already claimed for this node and hands them to the
//! channel's workers in memory, so the claim write, the hint and the queue round trip
//! are gone. The row in the store stays the record: if this process dies with
//! deliveries in the hand-off, their lease runs out and the dispatcher hands them out
//! again like any claim a crashed worker held.
//!
//! The hand-off is bounded per channel. A page of the fan-out waits a moment for room
//! (so a burst of sends is fanned out at the pace the channel delivers, not all at
//! once) and past that takes the queue path, so a slow provider on one channel holds
//! up neither the fan-out nor the other channels.

use std::sync::Arc;
use std::time::Duration;

use tidings_platform::model::Channel;
use tokio::sync::Semaphore;

use crate::model::{DeliveryRecord, NotificationRecord};

/// How long a page of the fan-out waits for room before taking the queue path.
pub(crate) const ROOM_WAIT: Duration = Duration::from_millis(20);

/// A delivery written claimed by this node's fan-out.
pub(crate) struct Claimed {
    pub record: DeliveryRecord,
    pub lease_until_ms: i64,
    /// Its notification, which the worker would otherwise read again.
    pub notification: Arc<NotificationRecord>,
}

struct Lane {
    room: Arc<Semaphore>,
    tx: flume::Sender<Claimed>,
    rx: flume::Receiver<Claimed>,
    capacity: usize,
}

pub(crate) struct Handoff {
    lanes: Vec<Lane>,
}

fn lane_index(channel: Channel) -> usize {
    Channel::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or_default()
}

impl Handoff {
    /// `capacity`: deliveries waiting or in progress per channel; 0 turns it off.
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| Self {
            lanes: Channel::ALL
                .iter()
                .map(|_| {
                    // Unbounded as a channel: the semaphore is the bound.
                    let (tx, rx) = flume::unbounded();
                    Lane {
                        room: Arc::new(Semaphore::new(capacity)),
                        tx,
                        rx,
                        capacity,
                    }
                })
                .collect(),
        })
    }

    fn lane(&self, channel: Channel) -> &Lane {
        &self.lanes[lane_index(channel)]
    }

    /// Room for `n` deliveries on `channel`, waiting up to `wait` for workers to free
    /// it. On `true` the caller owns that room until it [`Handoff::release`]s it (a
    /// delivery handed over carries its share to the worker).
    pub(crate) async fn reserve(&self, channel: Channel, n: usize, wait: Duration) -> bool {
        let lane = self.lane(channel);
        let Ok(permits) = u32::try_from(n) else {
            return false;
        };
        if n == 0 || n > lane.capacity {
            return n == 0;
        }
        if let Ok(p) = lane.room.try_acquire_many(permits) {
            p.forget();
            return true;
        }
        match tokio::time::timeout(wait, lane.room.acquire_many(permits)).await {
            Ok(Ok(p)) => {
                p.forget();
                true
            }
            _ => false,
        }
    }

    pub(crate) fn release(&self, channel: Channel, n: usize) {
        if n > 0 {
            self.lane(channel).room.add_permits(n);
        }
    }

    /// Hands over a delivery whose room was reserved.
    pub(crate) fn send(&self, claimed: Claimed) {
        let lane = self.lane(claimed.record.channel);
        // The receiver lives in `self`, so the channel is never closed.
        let _ = lane.tx.send(claimed);
    }

    /// Everything waiting on `channel` now.
    pub(crate) fn drain(&self, channel: Channel) -> Vec<Claimed> {
        self.lane(channel).rx.try_iter().collect()
    }

    /// Waits for the next delivery on `channel`, then takes up to `max` at once.
    pub(crate) async fn recv_batch(&self, channel: Channel, max: usize) -> Vec<Claimed> {
        let lane = self.lane(channel);
        let Ok(first) = lane.rx.recv_async().await else {
            return Vec::new();
        };
        let mut batch = Vec::with_capacity(max.clamp(1, 1024));
        batch.push(first);
        while batch.len() < max {
            match lane.rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_is_bounded_and_comes_back_on_release() {
        let h = Handoff::new(10).expect("on");
        assert!(h.reserve(Channel::Push, 6, Duration::ZERO).await);
        assert!(
            !h.reserve(Channel::Push, 6, Duration::from_millis(1)).await,
            "4 left"
        );
        assert!(
            h.reserve(Channel::Sms, 10, Duration::ZERO).await,
            "lanes are separate"
        );
        assert!(
            !h.reserve(Channel::Push, 11, Duration::ZERO).await,
            "more than the lane holds never fits"
        );
        h.release(Channel::Push, 6);
        assert!(h.reserve(Channel::Push, 10, Duration::ZERO).await);
        assert!(Handoff::new(0).is_none());
    }
}
