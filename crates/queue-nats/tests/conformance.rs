//! The work queue conformance suite on NATS JetStream, when `TIDINGS_TEST_NATS_URL`
//! is set (CI sets it); each test uses streams of its own, deleted afterwards.

use std::sync::Arc;

use tidings_conformance::queue::SUITE_CONFIG;
use tidings_conformance::{queue_suite, TestQueue};
use tidings_queue_nats::NatsQueue;

struct Cleanup(Arc<NatsQueue>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let queue = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(queue.delete_streams());
            }
        })
        .join();
    }
}

async fn fresh() -> Option<TestQueue> {
    let url = std::env::var("TIDINGS_TEST_NATS_URL").ok()?;
    let prefix = format!("T{:012x}", rand::random::<u64>() >> 16);
    let queue = Arc::new(
        NatsQueue::connect(&url, &prefix, SUITE_CONFIG)
            .await
            .unwrap_or_else(|e| panic!("TIDINGS_TEST_NATS_URL is set but NATS is unusable: {e}")),
    );
    Some(TestQueue {
        queue: queue.clone(),
        guard: Box::new(Cleanup(queue)),
    })
}

queue_suite!(fresh);
