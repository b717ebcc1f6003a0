//! Chooses the storage and queue implementations the configuration asks for.

use std::sync::Arc;

use tidings_chat::store::ChatStore;
use tidings_feed::store::FeedStore;
use tidings_notify::memory_queue::MemoryQueue;
use tidings_notify::queue::{QueueConfig, WorkQueue};
use tidings_notify::store::NotifyStore;
use tidings_platform::clock::Clock;
use tidings_platform::config::Config;
use tidings_platform::store::AccountStore;
use tidings_platform::StoreError;
use tidings_queue_nats::NatsQueue;
use tidings_store_postgres::{PostgresQueue, PostgresStore};
use tidings_store_sqlite::{SqliteQueue, SqliteStore};

/// The stores and queues one node runs on.
pub struct Backends {
    pub accounts: Arc<dyn AccountStore>,
    pub notify: Arc<dyn NotifyStore>,
    pub chat: Arc<dyn ChatStore>,
    pub feed: Arc<dyn FeedStore>,
    pub queue: Arc<dyn WorkQueue>,
    /// Human-readable, for the start-up log line.
    pub description: String,
}

pub fn queue_config(config: &Config) -> QueueConfig {
    QueueConfig {
        // A queue message outlives a worker's claim on its rows only briefly: the
        // row's lease, not the message, is what protects a delivery.
        visibility: std::time::Duration::from_millis(config.notify.lease_ms.max(1_000)),
        max_deliveries: 20,
    }
}

/// A `postgres://` database URL selects PostgreSQL; otherwise the embedded SQLite
/// file under the data dir. A NATS URL moves the work queues to JetStream.
pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Backends, StoreError> {
    let mut backends = open_store(config, clock).await?;
    if let Some(url) = &config.nats_url {
        let queue = NatsQueue::connect(url, &config.nats_stream_prefix, queue_config(config))
            .await
            .map_err(|e| StoreError::Unavailable(format!("nats: {e}")))?;
        backends.queue = Arc::new(queue);
        backends.description.push_str(" with NATS JetStream queues");
    }
    Ok(backends)
}

async fn open_store(config: &Config, clock: Arc<dyn Clock>) -> Result<Backends, StoreError> {
    match &config.database_url {
        Some(url) => {
            let store = Arc::new(
                PostgresStore::connect(url, config.database_schema.as_deref(), &config.postgres)
                    .await?,
            );
            let queue = Arc::new(PostgresQueue::new(
                store.clone(),
                clock,
                queue_config(config),
            ));
            Ok(Backends {
                accounts: store.clone(),
                notify: store.clone(),
                chat: store.clone(),
                feed: store,
                queue,
                description: "postgres".into(),
            })
        }
        None => {
            let path = config.sqlite_path();
            let sqlite = config.sqlite.clone();
            // Opening runs migrations and may wait on another process's lock.
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, &sqlite))
                .await
                .map_err(|e| StoreError::Backend(format!("open task: {e}")))??;
            let store = Arc::new(store);
            let queue: Arc<dyn WorkQueue> = match config.notify.embedded_queue.as_str() {
                "sqlite" => Arc::new(SqliteQueue::new(store.clone(), clock, queue_config(config))),
                _ => Arc::new(MemoryQueue::new(queue_config(config))),
            };
            Ok(Backends {
                accounts: store.clone(),
                notify: store.clone(),
                chat: store.clone(),
                feed: store,
                queue,
                description: format!("sqlite at {}", config.sqlite_path().display()),
            })
        }
    }
}
