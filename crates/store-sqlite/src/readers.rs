//! A fixed set of read-only connections, each on its own thread, fed from one shared
//! queue. WAL lets them read while the writer writes; each statement sees the latest
//! committed state, so a reply from the writer is visible to the next read.

use std::thread::JoinHandle;

use rusqlite::Connection;
use tidings_platform::StoreError;
use tokio::sync::oneshot;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

pub(crate) struct Readers {
    tx: Option<flume::Sender<ReadJob>>,
    threads: Vec<JoinHandle<()>>,
}

impl Readers {
    pub(crate) fn start(conns: Vec<Connection>, queue_capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = flume::bounded::<ReadJob>(queue_capacity);
        let mut threads = Vec::with_capacity(conns.len());
        for (i, conn) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sqlite-reader-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job(&conn);
                        }
                    })?,
            );
        }
        Ok(Self {
            tx: Some(tx),
            threads,
        })
    }

    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(work(conn));
        });
        let tx = self.tx.as_ref().ok_or_else(closed)?;
        tx.send_async(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is shut down".into())
}
