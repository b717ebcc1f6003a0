//! The work queue on NATS JetStream: one work-queue stream per queue name, one durable
//! pull consumer on it with explicit acks, `ack_wait` as the visibility timeout and
//! `max_deliver` as the limit before a message is parked.
//!
//! JetStream (2.9) has no scheduled delivery, so a delayed message carries a
//! `Tidings-Not-Before` header and is nak'ed with the remaining delay when it comes
//! early. Acks are sent as requests (JetStream's "ack sync"), so an ack has taken
//! effect when `ack` returns. A message that reaches `max_deliver` and is nak'ed again
//! is terminated and counted as dead by the node that saw it; the count is per
//! process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy};
use async_nats::jetstream::{self, Context};
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use tidings_notify::queue::{LeaseHandle, Leased, QueueConfig, QueueError, QueueStats, WorkQueue};

const NOT_BEFORE: &str = "Tidings-Not-Before";

pub struct NatsQueue {
    client: async_nats::Client,
    js: Context,
    prefix: String,
    config: QueueConfig,
    consumers: tokio::sync::Mutex<HashMap<String, jetstream::consumer::Consumer<pull::Config>>>,
    dead: Mutex<HashMap<String, u64>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

fn backend(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl NatsQueue {
    /// Connects to `url`; stream names start with `prefix` (letters, digits, `_`).
    pub async fn connect(url: &str, prefix: &str, config: QueueConfig) -> Result<Self, QueueError> {
        let client = async_nats::connect(url).await.map_err(unavailable)?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            prefix: prefix.to_ascii_uppercase(),
            config: QueueConfig {
                max_deliveries: config.max_deliveries.max(1),
                ..config
            },
            consumers: tokio::sync::Mutex::new(HashMap::new()),
            dead: Mutex::new(HashMap::new()),
        })
    }

    fn stream_name(&self, queue: &str) -> String {
        let q: String = queue
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}_{q}", self.prefix)
    }

    fn subject(&self, queue: &str) -> String {
        format!("{}.queue.{}", self.prefix.to_ascii_lowercase(), queue)
    }

    /// The queue's pull consumer, creating its stream and consumer on first use.
    async fn consumer(
        &self,
        queue: &str,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, QueueError> {
        let mut consumers = self.consumers.lock().await;
        if let Some(c) = consumers.get(queue) {
            return Ok(c.clone());
        }
        let stream = self
            .js
            .get_or_create_stream(StreamConfig {
                name: self.stream_name(queue),
                subjects: vec![self.subject(queue)],
                retention: RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await
            .map_err(backend)?;
        let consumer = stream
            .get_or_create_consumer(
                "workers",
                pull::Config {
                    durable_name: Some("workers".into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.config.visibility,
                    max_deliver: i64::from(self.config.max_deliveries),
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(backend)?;
        consumers.insert(queue.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// Deletes the streams of every queue this handle used (for tests).
    pub async fn delete_streams(&self) {
        let queues: Vec<String> = self.consumers.lock().await.keys().cloned().collect();
        for q in queues {
            let _ = self.js.delete_stream(self.stream_name(&q)).await;
        }
    }

    /// Pulls up to `max` messages (waiting up to `wait` when given, else only what is
    /// ready) into `out`, skipping early delayed ones (nak'ed until due).
    async fn take(
        &self,
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        max: usize,
        wait: Option<Duration>,
        out: &mut Vec<Leased>,
    ) -> Result<(), QueueError> {
        if max == 0 {
            return Ok(());
        }
        let mut batch = match wait {
            None => consumer
                .fetch()
                .max_messages(max)
                .messages()
                .await
                .map_err(backend)?,
            Some(w) => consumer
                .batch()
                .max_messages(max)
                .expires(w)
                .messages()
                .await
                .map_err(backend)?,
        };
        let now = now_ms();
        while let Some(message) = batch.next().await {
            let Ok(message) = message else { break };
            let Ok(info) = message.info() else { continue };
            let deliveries = u32::try_from(info.delivered).unwrap_or(u32::MAX);
            let stream_seq = info.stream_sequence;
            let Some(reply) = message.reply.as_ref().map(|r| r.to_string()) else {
                continue;
            };
            let not_before = message
                .headers
                .as_ref()
                .and_then(|h| h.get(NOT_BEFORE))
                .and_then(|v| v.as_str().parse::<i64>().ok());
            if let Some(t) = not_before.filter(|t| *t > now) {
                let delay = Duration::from_millis((t - now) as u64);
                self.ack_kind(&reply, &format!("-NAK {{\"delay\": {}}}", delay.as_nanos()))
                    .await?;
                continue;
            }
            let Some(item) = std::str::from_utf8(&message.payload)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            else {
                // Not ours to understand: drop it rather than loop on it.
                self.ack_kind(&reply, "+TERM").await?;
                continue;
            };
            if out.iter().any(|l| l.handle.id == stream_seq) {
                continue;
            }
            out.push(Leased {
                item,
                deliveries,
                handle: LeaseHandle {
                    id: stream_seq,
                    token: token(&reply, deliveries),
                },
            });
        }
        Ok(())
    }

    async fn ack_kind(&self, reply: &str, kind: &str) -> Result<(), QueueError> {
        self.client
            .request(reply.to_owned(), kind.to_owned().into())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

/// `reply|deliveries`: what ack and nack need to know later.
fn token(reply: &str, deliveries: u32) -> String {
    format!("{reply}|{deliveries}")
}

fn parse_token(token: &str) -> Option<(&str, u32)> {
    let (reply, n) = token.rsplit_once('|')?;
    Some((reply, n.parse().ok()?))
}

#[async_trait]
impl WorkQueue for NatsQueue {
    async fn enqueue(&self, queue: &str, items: &[i64], delay: Duration) -> Result<(), QueueError> {
        self.consumer(queue).await?;
        let subject = self.subject(queue);
        let mut acks = Vec::with_capacity(items.len());
        for item in items {
            let payload = item.to_string().into();
            let ack = if delay.is_zero() {
                self.js.publish(subject.clone(), payload).await
            } else {
                let mut headers = async_nats::HeaderMap::new();
                let not_before = now_ms() + delay.as_millis() as i64;
                headers.insert(NOT_BEFORE, not_before.to_string().as_str());
                self.js
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await
            };
            acks.push(ack.map_err(unavailable)?);
        }
        // The server has each message once its publish ack arrives.
        for ack in acks {
            ack.await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn lease(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Leased>, QueueError> {
        let consumer = self.consumer(queue).await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut out: Vec<Leased> = Vec::new();
        loop {
            // What is there now; if nothing, wait for one message, then take what else
            // is there. A pull request never outlives this call, so no message is
            // delivered to a consumer that stopped listening.
            self.take(&consumer, max - out.len(), None, &mut out)
                .await?;
            if !out.is_empty() {
                return Ok(out);
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Ok(out);
            }
            self.take(
                &consumer,
                1,
                Some(remaining.max(Duration::from_millis(10))),
                &mut out,
            )
            .await?;
            if !out.is_empty() && out.len() < max {
                self.take(&consumer, max - out.len(), None, &mut out)
                    .await?;
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    async fn ack(&self, _queue: &str, handles: &[LeaseHandle]) -> Result<(), QueueError> {
        for h in handles {
            if let Some((reply, _)) = parse_token(&h.token) {
                self.ack_kind(reply, "+ACK").await?;
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
        let Some((reply, deliveries)) = parse_token(&handle.token) else {
            return Ok(());
        };
        if deliveries >= self.config.max_deliveries {
            // JetStream would not hand it out again anyway; end it and count it.
            self.ack_kind(reply, "+TERM").await?;
            *self.dead.lock().entry(queue.to_owned()).or_default() += 1;
            return Ok(());
        }
        let body = if delay.is_zero() {
            "-NAK".to_owned()
        } else {
            format!("-NAK {{\"delay\": {}}}", delay.as_nanos())
        };
        self.ack_kind(reply, &body).await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let mut consumer = self.consumer(queue).await?;
        let info = consumer.info().await.map_err(backend)?;
        Ok(QueueStats {
            pending: info.num_pending,
            in_flight: info.num_ack_pending as u64,
            dead: self.dead.lock().get(queue).copied().unwrap_or(0),
        })
    }
}

/// Keeps `Arc` in the public surface for callers that share one connection.
pub type SharedNatsQueue = Arc<NatsQueue>;
