//! The embedded store's durable write path: concurrent `insert_user` calls (one row
//! each, each acknowledged only after its commit reached the disk) with group commit
//! on, then off (one commit and fsync per write), in the same run on the same disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tidings_platform::auth::generate_app;
use tidings_platform::config::SqliteConfig;
use tidings_platform::model::UserRecord;
use tidings_platform::store::AccountStore;
use tidings_platform::Id;
use tidings_store_sqlite::SqliteStore;

use crate::measure::{closed_loop, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per mode.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// SQLite `synchronous` setting: full (fsync per commit) or normal.
    #[arg(long, default_value = "full")]
    synchronous: String,
}

async fn measure(args: &Args, group_commit: bool) -> anyhow::Result<Summary> {
    let dir = tempfile::tempdir()?;
    let config = SqliteConfig {
        group_commit,
        synchronous: args.synchronous.clone(),
        ..SqliteConfig::default()
    };
    let store: Arc<dyn AccountStore> =
        Arc::new(SqliteStore::open(&dir.path().join("bench.db"), &config)?);
    let (app, _) = generate_app(Id(1), "bench", 0);
    store.insert_app(&app).await?;
    let next = Arc::new(AtomicU64::new(10));
    let op = {
        let store = store.clone();
        move |_i: usize| {
            let store = store.clone();
            let id = next.fetch_add(1, Ordering::Relaxed) as i64;
            async move {
                let user = UserRecord {
                    id: Id(id),
                    app_id: Id(1),
                    username: format!("w{id}"),
                    display_name: Some("Bench User".into()),
                    email: Some(format!("w{id}@example.com")),
                    phone: None,
                    locale: None,
                    timezone: None,
                    avatar_url: None,
                    external_id: None,
                    password_hash: None,
                    created_at_ms: 1,
                    updated_at_ms: 1,
                };
                store.insert_user(&user).await.is_ok()
            }
        }
    };
    Ok(closed_loop(args.writers, Duration::from_secs(args.seconds), op).await)
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let grouped = measure(&args, true).await?;
    let single = measure(&args, false).await?;
    let ratio = grouped.per_second / single.per_second.max(f64::MIN_POSITIVE);
    Ok(json!({
        "scenario": "durable inserts into the embedded SQLite store",
        "machine": super::machine(),
        "writers": args.writers,
        "synchronous": args.synchronous,
        "group_commit": grouped,
        "commit_per_write": single,
        "group_over_single": ratio,
    }))
}
