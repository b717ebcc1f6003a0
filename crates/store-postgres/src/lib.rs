//! PostgreSQL implementation of the Tidings storage traits. No sqlx type leaves this
//! crate: callers see the platform's traits and `StoreError` only.

mod accounts;
mod chat;
mod error;
mod feed;
mod notify;
mod queue;

pub use queue::PostgresQueue;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use tidings_platform::config::PostgresConfig;
use tidings_platform::StoreError;

use crate::error::map;

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

fn valid_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "schema name {schema:?} must be 1-63 characters of a-z, 0-9 and '_'"
        )))
    }
}

fn options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.log_statements(tracing::log::LevelFilter::Trace))
        .map_err(|e| StoreError::Backend(format!("database_url: {e}")))
}

impl PostgresStore {
    /// Connects, creates `schema` if given and missing (every pooled connection then
    /// uses it), and brings the schema up to date.
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        config: &PostgresConfig,
    ) -> Result<Self, StoreError> {
        let mut opts = options(url)?;
        if let Some(schema) = schema {
            valid_schema(schema)?;
            let mut conn = opts.connect().await.map_err(map)?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await
                .map_err(map)?;
            opts = opts.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .connect_with(opts)
            .await
            .map_err(map)?;
        // sqlx's migrator takes an advisory lock, so nodes starting together migrate once.
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration: {e}")))?;
        Ok(Self { pool })
    }
}

/// Drops a schema and everything in it; for tests that made one of their own.
pub async fn drop_schema(url: &str, schema: &str) {
    if valid_schema(schema).is_err() {
        return;
    }
    if let Ok(opts) = options(url) {
        if let Ok(mut conn) = opts.connect().await {
            let _ = conn
                .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                .await;
        }
    }
}

/// A uniquely named schema that is dropped when this value is dropped: each test on a
/// shared PostgreSQL gets a database of its own.
pub struct ScratchSchema {
    url: String,
    name: String,
}

impl ScratchSchema {
    /// A fresh name with `prefix`; the schema itself is created by
    /// [`PostgresStore::connect`].
    pub fn new(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("{prefix}_{:016x}", rand::random::<u64>()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A fresh runtime on its own thread: the caller's runtime may be shutting
        // down (a test ending), and sqlx pools must not outlive theirs.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_schema(&url, &name));
            }
        })
        .join();
    }
}
