//! The write-ahead log stays near its configured size under a writer that never
//! pauses and readers that never stop, the load under which SQLite on its own never
//! starts the log over.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tidings_notify::store::NotifyStore;
use tidings_platform::config::SqliteConfig;
use tidings_platform::Id;
use tidings_store_sqlite::SqliteStore;

const BLOB: usize = 16 * 1024;
const WRITERS: usize = 16;
const WRITES_EACH: usize = 512;

fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Writes `WRITERS * WRITES_EACH` 64 KiB rows (128 MiB) with readers running
/// throughout; returns the largest log seen after any write.
async fn largest_log(wal_restart_mib: u64) -> u64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("wal.db");
    let config = SqliteConfig {
        synchronous: "normal".into(),
        checkpoint_interval_ms: 20,
        wal_restart_mib,
        ..SqliteConfig::default()
    };
    let store = Arc::new(SqliteStore::open(&db, &config).expect("open sqlite"));
    store
        .write_raw(|c| {
            c.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
                .map_err(|e| tidings_platform::StoreError::Backend(e.to_string()))
        })
        .await
        .expect("create table");
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    store.notification(Id(1)).await.expect("read");
                }
            })
        })
        .collect();
    let largest = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (store, largest, db) = (store.clone(), largest.clone(), db.clone());
            tokio::spawn(async move {
                for _ in 0..WRITES_EACH {
                    store
                        .write_raw(|c| {
                            c.execute("INSERT INTO blobs (data) VALUES (zeroblob(?1))", [BLOB])
                                .map(drop)
                                .map_err(|e| tidings_platform::StoreError::Backend(e.to_string()))
                        })
                        .await
                        .expect("write");
                    largest.fetch_max(wal_len(&db), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("reader");
    }
    largest.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_restarts_past_its_limit_under_constant_writes() {
    let written = (WRITERS * WRITES_EACH * BLOB) as u64;
    let largest = largest_log(2).await;
    // The limit is 2 MiB; what is written between a checkpoint seeing the log too
    // long and the writer's next pause comes on top. A log that never restarts ends
    // near the 128 MiB written.
    assert!(
        largest < written / 3,
        "the log reached {largest} bytes of {written} written"
    );
}
