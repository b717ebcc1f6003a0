//! The embedded work queue: a table in the same SQLite file. A lease is a conditional
//! UPDATE that pushes `visible_at` forward by the visibility timeout and stamps a
//! fresh lease token; ack deletes, nack moves `visible_at`; a message handed out
//! `max_deliveries` times without an ack is parked as dead. Consumers in this process
//! are woken by enqueues; delayed messages are found by the next lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::params;
use tidings_notify::queue::{LeaseHandle, Leased, QueueConfig, QueueError, QueueStats, WorkQueue};
use tidings_platform::clock::Clock;
use tidings_platform::StoreError;
use tokio::sync::Notify;

use crate::error::map;
use crate::SqliteStore;

const RECHECK: Duration = Duration::from_millis(50);

pub struct SqliteQueue {
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl SqliteQueue {
    pub fn new(store: Arc<SqliteStore>, clock: Arc<dyn Clock>, config: QueueConfig) -> Self {
        Self {
            store,
            clock,
            config: QueueConfig {
                max_deliveries: config.max_deliveries.max(1),
                ..config
            },
            wakers: Mutex::new(HashMap::new()),
        }
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        self.wakers
            .lock()
            .entry(queue.to_owned())
            .or_default()
            .clone()
    }
}

fn to_queue_error(e: StoreError) -> QueueError {
    match e {
        StoreError::Unavailable(m) => QueueError::Unavailable(m),
        other => QueueError::Backend(other.to_string()),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl WorkQueue for SqliteQueue {
    async fn enqueue(&self, queue: &str, items: &[i64], delay: Duration) -> Result<(), QueueError> {
        if items.is_empty() {
            return Ok(());
        }
        let visible_at = self.clock.now_ms().saturating_add(millis(delay));
        let (queue_name, items) = (queue.to_owned(), items.to_vec());
        self.store
            .write_idempotent_raw(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "INSERT INTO queue_messages (queue, item, visible_at) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(map)?;
                for item in items {
                    stmt.execute(params![queue_name, item, visible_at])
                        .map_err(map)?;
                }
                Ok(())
            })
            .await
            .map_err(to_queue_error)?;
        if delay.is_zero() {
            self.waker(queue).notify_waiters();
        }
        Ok(())
    }

    async fn lease(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Leased>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        let waker = self.waker(queue);
        loop {
            // Register interest before looking, so an enqueue between the look and
            // the wait is not missed.
            let notified = waker.notified();
            let now = self.clock.now_ms();
            let hidden_until = now.saturating_add(millis(self.config.visibility));
            let token: i64 = rand::random::<i64>() & i64::MAX;
            let (queue_name, max_deliveries) = (queue.to_owned(), self.config.max_deliveries);
            let leased = self
                .store
                .write_idempotent_raw(move |c| {
                    c.prepare_cached(
                        "UPDATE queue_messages SET dead = 1 \
                         WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 AND deliveries >= ?3",
                    )
                    .and_then(|mut s| s.execute(params![queue_name, now, max_deliveries]))
                    .map_err(map)?;
                    let mut stmt = c
                        .prepare_cached(
                            "UPDATE queue_messages SET visible_at = ?3, deliveries = deliveries + 1, lease_token = ?4 \
                             WHERE id IN (SELECT id FROM queue_messages \
                                          WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 \
                                          ORDER BY visible_at, id LIMIT ?5) \
                             RETURNING id, item, deliveries",
                        )
                        .map_err(map)?;
                    let rows = stmt
                        .query_map(params![queue_name, now, hidden_until, token, max as i64], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?))
                        })
                        .map_err(map)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(map)
                })
                .await
                .map_err(to_queue_error)?;
            if !leased.is_empty() {
                let mut out: Vec<Leased> = leased
                    .into_iter()
                    .map(|(id, item, deliveries)| Leased {
                        item,
                        deliveries,
                        handle: LeaseHandle {
                            id: id as u64,
                            token: token.to_string(),
                        },
                    })
                    .collect();
                out.sort_by_key(|l| l.handle.id);
                return Ok(out);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Enqueues in this process wake us at once; delayed messages and expired
            // leases become visible without any event, so look again at least this
            // often.
            let recheck = now + RECHECK.min(deadline - now);
            let _ = tokio::time::timeout_at(recheck, notified).await;
        }
    }

    async fn ack(&self, _queue: &str, handles: &[LeaseHandle]) -> Result<(), QueueError> {
        let handles: Vec<(i64, i64)> = handles
            .iter()
            .filter_map(|h| Some((h.id as i64, h.token.parse().ok()?)))
            .collect();
        if handles.is_empty() {
            return Ok(());
        }
        self.store
            .write_idempotent_raw(move |c| {
                // Only the current lease may ack: a message that timed out and was
                // leased again belongs to its new holder.
                let mut stmt = c
                    .prepare_cached("DELETE FROM queue_messages WHERE id = ?1 AND lease_token = ?2")
                    .map_err(map)?;
                for (id, token) in handles {
                    stmt.execute(params![id, token]).map_err(map)?;
                }
                Ok(())
            })
            .await
            .map_err(to_queue_error)
    }

    async fn nack(
        &self,
        queue: &str,
        handle: &LeaseHandle,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let Ok(token) = handle.token.parse::<i64>() else {
            return Ok(());
        };
        let id = handle.id as i64;
        let visible_at = self.clock.now_ms().saturating_add(millis(delay));
        self.store
            .write_idempotent_raw(move |c| {
                c.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3 WHERE id = ?1 AND lease_token = ?2",
                )
                .and_then(|mut s| s.execute(params![id, token, visible_at]))
                .map(drop)
                .map_err(map)
            })
            .await
            .map_err(to_queue_error)?;
        if delay.is_zero() {
            self.waker(queue).notify_waiters();
        }
        Ok(())
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let now = self.clock.now_ms();
        let queue_name = queue.to_owned();
        self.store
            .read_raw(move |c| {
                c.prepare_cached(
                    "SELECT \
                       COALESCE(SUM(CASE WHEN dead = 0 AND (deliveries = 0 OR visible_at <= ?2) THEN 1 ELSE 0 END), 0), \
                       COALESCE(SUM(CASE WHEN dead = 0 AND deliveries > 0 AND visible_at > ?2 THEN 1 ELSE 0 END), 0), \
                       COALESCE(SUM(dead), 0) \
                     FROM queue_messages WHERE queue = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![queue_name, now], |r| {
                        Ok(QueueStats {
                            pending: r.get::<_, i64>(0)? as u64,
                            in_flight: r.get::<_, i64>(1)? as u64,
                            dead: r.get::<_, i64>(2)? as u64,
                        })
                    })
                })
                .map_err(map)
            })
            .await
            .map_err(to_queue_error)
    }
}
