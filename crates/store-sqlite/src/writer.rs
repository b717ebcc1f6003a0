//! The single writer: one thread owns the only read-write connection and applies
//! write jobs in batches. Each batch is one transaction (one fsync) holding every job
//! that queued up while the previous batch was being committed, so under load many
//! concurrent writers share a commit ("group commit"). Each job runs inside its own
//! savepoint: a job that fails rolls back alone and the rest of its batch commits.
//! A job's caller hears back only after the batch's COMMIT returned, so an `Ok` means
//! the write is on disk.

use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tidings_platform::StoreError;
use tokio::sync::oneshot;

use crate::checkpointer::WalRestart;
use crate::error::map;

trait WriteJob: Send {
    /// Whether the job needs a savepoint of its own to roll back alone.
    fn guarded(&self) -> bool;
    fn run(&mut self, conn: &Connection, savepoint: bool);
    fn complete(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Job<T, F> {
    guarded: bool,
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn guarded(&self) -> bool {
        self.guarded
    }

    fn run(&mut self, conn: &Connection, savepoint: bool) {
        let Some(work) = self.work.take() else { return };
        if savepoint {
            if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                self.outcome = Some(Err(map(e)));
                return;
            }
        }
        let outcome = work(conn);
        if savepoint {
            let end = if outcome.is_ok() {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            if let Err(e) = conn.execute_batch(end) {
                self.outcome = Some(Err(map(e)));
                return;
            }
        }
        self.outcome = Some(outcome);
    }

    fn complete(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = match (self.outcome, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(e)) | (None, Err(e)) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(StoreError::Backend("write job did not run".into())),
        };
        // The caller may have gone away (request cancelled); the write stands anyway.
        let _ = self.reply.send(result);
    }
}

pub(crate) struct Writer {
    tx: Option<flume::Sender<Box<dyn WriteJob>>>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) struct WriterOptions {
    pub group_commit: bool,
    pub max_batch: usize,
    pub queue_capacity: usize,
    /// The checkpointer's requests to restart the log.
    pub wal_restart: WalRestart,
    /// The connection's usual busy timeout, put back after a restart.
    pub busy_timeout: Duration,
}

impl Writer {
    pub(crate) fn start(conn: Connection, options: WriterOptions) -> std::io::Result<Self> {
        let (tx, rx) = flume::bounded::<Box<dyn WriteJob>>(options.queue_capacity);
        let max_batch = if options.group_commit {
            options.max_batch.max(1)
        } else {
            1
        };
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer_loop(
                    conn,
                    rx,
                    max_batch,
                    &options.wal_restart,
                    options.busy_timeout,
                )
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `work` in the next batch and resolves once its batch is committed. If
    /// `work` fails, its changes are rolled back and the rest of the batch stands.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(true, work).await
    }

    /// Like [`Writer::write`] without the job's own savepoint, for idempotent work
    /// whose statements cannot break a constraint (queue operations, claims, status
    /// updates, `INSERT ... ON CONFLICT DO NOTHING`). A savepoint makes SQLite copy
    /// every page the job touches into a sub-journal, a large share of the hot path;
    /// such a job can only fail on I/O, which fails the whole batch anyway.
    pub(crate) async fn write_idempotent<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(false, work).await
    }

    async fn submit<T, F>(&self, guarded: bool, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job {
            guarded,
            work: Some(work),
            outcome: None,
            reply,
        });
        let tx = self.tx.as_ref().ok_or_else(closed)?;
        tx.send_async(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Drop for Writer {
    /// Lets the thread finish the jobs already queued, then waits for it so the last
    /// commit and the connection's close (WAL checkpoint) happen before exit.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is shut down".into())
}

/// How a log restart waits for readers still on the old log: in steps of this much…
const RESTART_STEP: Duration = Duration::from_micros(200);
/// …at most this many times (5 ms in all) before giving up until the checkpointer asks
/// again. The writer waits that long, so every write queued behind it does too.
const RESTART_STEPS: i32 = 25;

/// The busy handler during a restart. SQLite's own (`busy_timeout`) backs off in
/// sleeps of 1, 2, 5 and 10 ms, so a reader that finishes in 100 µs still costs the
/// writer a millisecond or more; readers here hold a snapshot for well under a
/// millisecond, so short steps find the gap.
fn restart_busy(attempts: i32) -> bool {
    if attempts >= RESTART_STEPS {
        return false;
    }
    std::thread::sleep(RESTART_STEP);
    true
}

/// Starts the log over from its beginning. The RESTART checkpoint copies back the
/// frames committed since the checkpointer's last pass, syncs the database file, then
/// waits for readers of the old log to finish; from then on new frames overwrite the
/// old ones instead of growing the file.
fn restart_log(conn: &Connection, busy_timeout: Duration) {
    if let Err(e) = conn.busy_handler(Some(restart_busy)) {
        tracing::warn!(error = %e, "sqlite log restart not attempted");
        return;
    }
    // Columns: busy, frames in the log, frames copied back.
    match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => {}
        // Readers stayed on the old log: the checkpointer asks again next time.
        Ok(_) => tracing::debug!("sqlite log restart put off: readers on the old log"),
        Err(e) => tracing::warn!(error = %e, "sqlite log restart failed"),
    }
    // Puts SQLite's own handler back in place of the one above.
    if let Err(e) = conn.busy_timeout(busy_timeout) {
        tracing::warn!(error = %e, "sqlite busy timeout not restored");
    }
}

fn writer_loop(
    conn: Connection,
    rx: flume::Receiver<Box<dyn WriteJob>>,
    max_batch: usize,
    wal_restart: &WalRestart,
    busy_timeout: Duration,
) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = map(e);
            for job in batch.drain(..) {
                job.complete(Err(err.clone()));
            }
            continue;
        }
        let shared = batch.len() > 1;
        for job in batch.iter_mut() {
            let savepoint = shared && job.guarded();
            job.run(&conn, savepoint);
        }
        let commit = conn.execute_batch("COMMIT").map_err(map);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in batch.drain(..) {
            job.complete(commit.clone());
        }
        if wal_restart.take() {
            restart_log(&conn, busy_timeout);
        }
    }
}
