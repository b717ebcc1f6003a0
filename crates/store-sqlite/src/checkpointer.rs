//! WAL checkpoints on a thread of their own. Left to SQLite, a checkpoint runs inside
//! whichever commit crosses the threshold, on the writer thread, and its fsync of the
//! database file stalls every write queued behind it (tens of milliseconds: the tail
//! of chat acks). Here the writer never checkpoints; this thread copies the WAL back
//! every interval in PASSIVE mode, which never blocks the writer or readers.

use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

pub(crate) struct Checkpointer {
    stop: Option<flume::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(conn: Connection, every: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = flume::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || loop {
                match stopped.recv_timeout(every) {
                    Err(flume::RecvTimeoutError::Timeout) => {
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::warn!(error = %e, "sqlite checkpoint failed");
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
