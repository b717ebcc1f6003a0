//! WAL checkpoints on a thread of their own. Left to SQLite, a checkpoint runs inside
//! whichever commit crosses the threshold, on the writer thread, and its fsync of the
//! database file stalls every write queued behind it (tens of milliseconds: the tail
//! of chat acks). Here the writer never checkpoints; this thread copies the WAL back
//! every interval in PASSIVE mode, which never blocks the writer or readers.
//!
//! A passive checkpoint never shortens the log, though: SQLite starts writing at the
//! log's beginning again only when, at the moment a write transaction begins, every
//! frame has been copied back — never true while the writer commits back to back. So
//! when the log has grown past its limit this thread catches up with the commits made
//! during its last pass, then asks the writer (through [`WalRestart`]) to restart it
//! between two batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// The checkpointer's request that the writer restart the log at its next pause.
#[derive(Clone, Default)]
pub(crate) struct WalRestart(Arc<AtomicBool>);

impl WalRestart {
    fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a restart was asked for since the last call.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// One passive checkpoint; the log's length in frames.
fn passive(conn: &Connection) -> rusqlite::Result<i64> {
    // Columns: busy, frames in the log, frames copied back.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
}

/// A pass this short left next to nothing behind it.
const CAUGHT_UP: Duration = Duration::from_millis(2);
/// Most extra passes before a restart is asked for.
const CATCH_UP_PASSES: usize = 4;

/// Copies back what was committed while the last pass ran, and again, until a pass
/// finds little to do. The writer's restart copies whatever is still left and syncs
/// the database file while every write waits: one pass behind, that was up to 30 ms
/// of copying (the commits of the whole previous pass); caught up, it is about one
/// fsync. Each pass copies what arrived during the one before, so they shrink fast.
fn catch_up(conn: &Connection) {
    for _ in 0..CATCH_UP_PASSES {
        let started = Instant::now();
        if let Err(e) = passive(conn) {
            tracing::warn!(error = %e, "sqlite checkpoint failed");
            return;
        }
        if started.elapsed() < CAUGHT_UP {
            return;
        }
    }
}

pub(crate) struct Checkpointer {
    stop: Option<flume::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `restart_over_frames`: log length (in frames) past which a restart is asked for.
    pub(crate) fn start(
        conn: Connection,
        every: Duration,
        restart_over_frames: i64,
        restart: WalRestart,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = flume::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || loop {
                match stopped.recv_timeout(every) {
                    Err(flume::RecvTimeoutError::Timeout) => match passive(&conn) {
                        Ok(frames) if frames > restart_over_frames => {
                            catch_up(&conn);
                            restart.request();
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
                    },
                    _ => return,
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
