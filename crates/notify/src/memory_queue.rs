//! The embedded default's work queue: in memory. It can be, because a queue here
//! only dispatches: every delivery and fan-out is a row in the store, and the
//! dispatcher re-sends a hint for any row that is due and not held by a live lease.
//! A restart that empties this queue therefore delays work by one dispatcher pass and
//! loses nothing, while each delivery saves the three writes (enqueue, lease, ack) a
//! queue kept in the SQLite file costs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::queue::{LeaseHandle, Leased, QueueConfig, QueueError, QueueStats, WorkQueue};

#[derive(Clone, Copy)]
struct Message {
    item: i64,
    deliveries: u32,
}

#[derive(Default)]
struct Queue {
    /// By (visible from, arrival): FIFO among messages visible at the same time.
    waiting: BTreeMap<(Instant, u64), Message>,
    leased: HashMap<u64, Message>,
    /// Lease expiries, to hand expired leases out again in order.
    expiries: BTreeMap<(Instant, u64), ()>,
    dead: u64,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
    next: u64,
}

pub struct MemoryQueue {
    state: Mutex<State>,
    wake: Arc<Notify>,
    config: QueueConfig,
}

impl MemoryQueue {
    pub fn new(config: QueueConfig) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Arc::new(Notify::new()),
            config: QueueConfig {
                max_deliveries: config.max_deliveries.max(1),
                ..config
            },
        }
    }

    /// Takes what is visible now; otherwise the next instant something may be.
    fn take(&self, queue: &str, max: usize) -> Result<Vec<Leased>, Option<Instant>> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let state = &mut *state;
        let q = state.queues.entry(queue.to_owned()).or_default();
        while let Some((&(at, lease), _)) = q.expiries.iter().next() {
            if at > now {
                break;
            }
            q.expiries.remove(&(at, lease));
            if let Some(m) = q.leased.remove(&lease) {
                state.next += 1;
                q.waiting.insert((at, state.next), m);
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some((&key, _)) = q.waiting.iter().next() else {
                break;
            };
            if key.0 > now {
                break;
            }
            let Some(mut m) = q.waiting.remove(&key) else {
                break;
            };
            m.deliveries += 1;
            if m.deliveries > self.config.max_deliveries {
                q.dead += 1;
                continue;
            }
            state.next += 1;
            let lease = state.next;
            q.leased.insert(lease, m);
            q.expiries.insert((now + self.config.visibility, lease), ());
            out.push(Leased {
                item: m.item,
                deliveries: m.deliveries,
                handle: LeaseHandle {
                    id: lease,
                    token: String::new(),
                },
            });
        }
        if !out.is_empty() {
            return Ok(out);
        }
        let next_visible = q.waiting.keys().next().map(|k| k.0);
        let next_expiry = q.expiries.keys().next().map(|k| k.0);
        Err(match (next_visible, next_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn enqueue(&self, queue: &str, items: &[i64], delay: Duration) -> Result<(), QueueError> {
        let at = Instant::now() + delay;
        {
            let mut state = self.state.lock();
            let state = &mut *state;
            let q = state.queues.entry(queue.to_owned()).or_default();
            for &item in items {
                state.next += 1;
                q.waiting.insert(
                    (at, state.next),
                    Message {
                        item,
                        deliveries: 0,
                    },
                );
            }
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn lease(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Leased>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            // Register for a wake-up before looking, so an enqueue in between is not
            // missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next = match self.take(queue, max.max(1)) {
                Ok(leased) => return Ok(leased),
                Err(next) => next,
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = next.map_or(deadline, |n| n.min(deadline));
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn ack(&self, queue: &str, handles: &[LeaseHandle]) -> Result<(), QueueError> {
        let mut state = self.state.lock();
        if let Some(q) = state.queues.get_mut(queue) {
            for h in handles {
                // An expired lease was handed out again under a new id: its ack is moot.
                q.leased.remove(&h.id);
            }
        }
        Ok(())
    }

    async fn nack(
        &self,
        queue: &str,
        handle: &LeaseHandle,
        delay: Duration,
    ) -> Result<(), QueueError> {
        {
            let mut state = self.state.lock();
            let state = &mut *state;
            let Some(q) = state.queues.get_mut(queue) else {
                return Ok(());
            };
            if let Some(m) = q.leased.remove(&handle.id) {
                state.next += 1;
                q.waiting.insert((Instant::now() + delay, state.next), m);
            }
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let state = self.state.lock();
        Ok(state
            .queues
            .get(queue)
            .map_or_else(QueueStats::default, |q| QueueStats {
                pending: q.waiting.len() as u64,
                in_flight: q.leased.len() as u64,
                dead: q.dead,
            }))
    }
}
