//! The embedded store: a SQLite file in WAL mode behind one group-committing writer
//! thread and a pool of reader threads. It implements the platform's storage traits;
//! no SQLite type escapes this crate.

mod accounts;
mod chat;
mod checkpointer;
mod error;
mod feed;
mod migrate;
mod notify;
mod queue;
mod readers;
mod writer;

pub use queue::SqliteQueue;

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use tidings_platform::config::SqliteConfig;
use tidings_platform::StoreError;

use crate::checkpointer::{Checkpointer, WalRestart};
use crate::error::map;
use crate::readers::Readers;
use crate::writer::{Writer, WriterOptions};

pub struct SqliteStore {
    // Declared first, so it is closed first and the writer's close (the last
    // connection) checkpoints what is left.
    _checkpointer: Checkpointer,
    writer: Writer,
    readers: Readers,
}

/// A list of ids as one parameter for `IN rarray(?)`: the statement text stays the
/// same for any number of ids, so it is parsed once and kept in the statement cache
/// (ids inlined or one `?` per id made a new statement for every list).
pub(crate) fn id_array<I: IntoIterator<Item = i64>>(ids: I) -> rusqlite::vtab::array::Array {
    std::rc::Rc::new(
        ids.into_iter()
            .map(rusqlite::types::Value::Integer)
            .collect(),
    )
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path, config: &SqliteConfig) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path).map_err(map)?;
        configure(&conn, config, false).map_err(map)?;
        migrate::run(&mut conn).map_err(map)?;
        let mut read_conns = Vec::with_capacity(config.readers);
        for _ in 0..config.readers {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(map)?;
            configure(&c, config, true).map_err(map)?;
            read_conns.push(c);
        }
        let spawn_err =
            |e: std::io::Error| StoreError::Backend(format!("cannot start sqlite thread: {e}"));
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(map)?;
        let wal_limit_bytes =
            i64::try_from(config.wal_restart_mib.saturating_mul(1 << 20)).unwrap_or(i64::MAX);
        // After a restart the first commit cuts a log that grew past this back to it.
        conn.pragma_update(None, "journal_size_limit", wal_limit_bytes)
            .map_err(map)?;
        let wal_restart = WalRestart::default();
        let busy_timeout = std::time::Duration::from_millis(config.busy_timeout_ms);
        let writer = Writer::start(
            conn,
            WriterOptions {
                group_commit: config.group_commit,
                max_batch: config.max_batch,
                queue_capacity: config.queue_capacity,
                wal_restart: wal_restart.clone(),
                busy_timeout,
            },
        )
        .map_err(spawn_err)?;
        let readers = Readers::start(read_conns, config.queue_capacity).map_err(spawn_err)?;
        let checkpoint_conn = Connection::open(path).map_err(map)?;
        checkpoint_conn.busy_timeout(busy_timeout).map_err(map)?;
        // A frame is a page plus its 24-byte header.
        let restart_over_frames = wal_limit_bytes / (page_size.max(512) + 24);
        let _checkpointer = Checkpointer::start(
            checkpoint_conn,
            std::time::Duration::from_millis(config.checkpoint_interval_ms.max(1)),
            restart_over_frames,
            wal_restart,
        )
        .map_err(spawn_err)?;
        Ok(Self {
            writer,
            readers,
            _checkpointer,
        })
    }

    /// Runs `work` on the writer connection inside the next group commit. Exposed for
    /// the write-path benchmark, which measures the commit machinery itself.
    pub async fn write_raw<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// [`SqliteStore::write_raw`] without a savepoint, for idempotent work that cannot
    /// break a constraint.
    pub(crate) async fn write_idempotent_raw<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write_idempotent(work).await
    }

    /// Runs `work` on one of the read connections.
    pub(crate) async fn read_raw<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.readers.read(work).await
    }
}

fn configure(conn: &Connection, config: &SqliteConfig, read_only: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms))?;
    conn.set_prepared_statement_cache_capacity(64);
    // `x IN rarray(?)` binds a list of ids as one parameter, so one prepared
    // statement serves every list length (see `id_array`).
    rusqlite::vtab::array::load_module(conn)?;
    if !read_only {
        // WAL: readers never block the writer nor the other way round.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", config.synchronous.to_ascii_uppercase())?;
        // The checkpointer thread does this, off the write path.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Readers get a large page cache. The writer keeps SQLite's default ~2 MiB: at the
    // end of every transaction SQLite walks the writer's whole page-cache hash when the
    // file has grown, which at thousands of commits a second cost more than the cache
    // saved.
    let cache_kib = if read_only { 16_384 } else { 2_048 };
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(())
}
