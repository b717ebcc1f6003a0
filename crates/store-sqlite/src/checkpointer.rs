//! WAL checkpoints on a thread of their own. Left to SQLite, a checkpoint runs inside
//! whichever commit crosses the threshold, on the writer thread, and its fsync of the
//! database file stalls every write queued behind it (tens of milliseconds: the tail
//! of chat acks). Here the writer never checkpoints; this thread copies the WAL back
//! every interval in PASSIVE mode, which never blocks the writer or readers.
//!
//! A passive checkpoint never shortens the log, though: SQLite starts writing at the
//! log's beginning again only when, at the moment a write transaction begins, every
//! frame has been copied back — never true while the writer commits back to back. So
//! when the log has grown past its limit this thread asks the writer (through
//! [`WalRestart`]) to restart it between two batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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
                    Err(flume::RecvTimeoutError::Timeout) => {
                        // Columns: busy, frames in the log, frames copied back.
                        match conn
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
                        {
                            Ok(frames) if frames > restart_over_frames => restart.request(),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
                        }
                    }
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
