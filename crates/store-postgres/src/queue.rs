//! The database work queue on PostgreSQL, for clusters without NATS: a lease is an
//! `UPDATE ... SKIP LOCKED` that moves `visible_at` forward and stamps a lease token,
//! so nodes share a queue without blocking each other. Consumers in this process are
//! woken by its own enqueues; others find new messages on their next look, at most
//! `RECHECK` later.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use sqlx::Row;
use tidings_notify::queue::{LeaseHandle, Leased, QueueConfig, QueueError, QueueStats, WorkQueue};
use tidings_platform::clock::Clock;
use tokio::sync::Notify;

use crate::PostgresStore;

const RECHECK: Duration = Duration::from_millis(100);

pub struct PostgresQueue {
    store: Arc<PostgresStore>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl PostgresQueue {
    pub fn new(store: Arc<PostgresStore>, clock: Arc<dyn Clock>, config: QueueConfig) -> Self {
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

fn queue_error(e: sqlx::Error) -> QueueError {
    match crate::error::map(e) {
        tidings_platform::StoreError::Unavailable(m) => QueueError::Unavailable(m),
        other => QueueError::Backend(other.to_string()),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl WorkQueue for PostgresQueue {
    async fn enqueue(&self, queue: &str, items: &[i64], delay: Duration) -> Result<(), QueueError> {
        if items.is_empty() {
            return Ok(());
        }
        let visible_at = self.clock.now_ms().saturating_add(millis(delay));
        sqlx::query(
            "INSERT INTO queue_messages (queue, item, visible_at) SELECT $1, u.item, $3 FROM UNNEST($2::bigint[]) AS u(item)",
        )
        .bind(queue)
        .bind(items)
        .bind(visible_at)
        .execute(&self.store.pool)
        .await
        .map_err(queue_error)?;
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
            let notified = waker.notified();
            let now = self.clock.now_ms();
            sqlx::query(
                "UPDATE queue_messages SET dead = TRUE \
                 WHERE queue = $1 AND NOT dead AND visible_at <= $2 AND deliveries >= $3",
            )
            .bind(queue)
            .bind(now)
            .bind(self.config.max_deliveries as i32)
            .execute(&self.store.pool)
            .await
            .map_err(queue_error)?;
            let token: i64 = rand::random::<i64>() & i64::MAX;
            let rows = sqlx::query(
                "UPDATE queue_messages SET visible_at = $3, deliveries = deliveries + 1, lease_token = $4 \
                 WHERE id IN (SELECT id FROM queue_messages WHERE queue = $1 AND NOT dead AND visible_at <= $2 \
                              ORDER BY visible_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, item, deliveries",
            )
            .bind(queue)
            .bind(now)
            .bind(now.saturating_add(millis(self.config.visibility)))
            .bind(token)
            .bind(max as i64)
            .fetch_all(&self.store.pool)
            .await
            .map_err(queue_error)?;
            if !rows.is_empty() {
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let id: i64 = r.try_get(0).map_err(queue_error)?;
                    let deliveries: i32 = r.try_get(2).map_err(queue_error)?;
                    out.push(Leased {
                        item: r.try_get(1).map_err(queue_error)?,
                        deliveries: deliveries.max(0) as u32,
                        handle: LeaseHandle {
                            id: id as u64,
                            token: token.to_string(),
                        },
                    });
                }
                out.sort_by_key(|l| l.handle.id);
                return Ok(out);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let recheck = now + RECHECK.min(deadline - now);
            let _ = tokio::time::timeout_at(recheck, notified).await;
        }
    }

    async fn ack(&self, _queue: &str, handles: &[LeaseHandle]) -> Result<(), QueueError> {
        let (ids, tokens): (Vec<i64>, Vec<i64>) = handles
            .iter()
            .filter_map(|h| Some((h.id as i64, h.token.parse::<i64>().ok()?)))
            .unzip();
        if ids.is_empty() {
            return Ok(());
        }
        // Only the current lease may ack: a message that timed out and was leased
        // again belongs to its new holder.
        sqlx::query(
            "DELETE FROM queue_messages q USING UNNEST($1::bigint[], $2::bigint[]) AS u(id, token) \
             WHERE q.id = u.id AND q.lease_token = u.token",
        )
        .bind(&ids)
        .bind(&tokens)
        .execute(&self.store.pool)
        .await
        .map(drop)
        .map_err(queue_error)
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
        let visible_at = self.clock.now_ms().saturating_add(millis(delay));
        sqlx::query("UPDATE queue_messages SET visible_at = $3 WHERE id = $1 AND lease_token = $2")
            .bind(handle.id as i64)
            .bind(token)
            .bind(visible_at)
            .execute(&self.store.pool)
            .await
            .map_err(queue_error)?;
        if delay.is_zero() {
            self.waker(queue).notify_waiters();
        }
        Ok(())
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let now = self.clock.now_ms();
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(CASE WHEN NOT dead AND (deliveries = 0 OR visible_at <= $2) THEN 1 ELSE 0 END), 0)::BIGINT, \
               COALESCE(SUM(CASE WHEN NOT dead AND deliveries > 0 AND visible_at > $2 THEN 1 ELSE 0 END), 0)::BIGINT, \
               COALESCE(SUM(CASE WHEN dead THEN 1 ELSE 0 END), 0)::BIGINT \
             FROM queue_messages WHERE queue = $1",
        )
        .bind(queue)
        .bind(now)
        .fetch_one(&self.store.pool)
        .await
        .map_err(queue_error)?;
        let get = |i: usize| -> Result<u64, QueueError> {
            Ok(row.try_get::<i64, _>(i).map_err(queue_error)?.max(0) as u64)
        };
        Ok(QueueStats {
            pending: get(0)?,
            in_flight: get(1)?,
            dead: get(2)?,
        })
    }
}
