//! The work queue conformance suite on the embedded default's in-memory queue.

use std::sync::Arc;

use tidings_conformance::queue::SUITE_CONFIG;
use tidings_conformance::{queue_suite, TestQueue};
use tidings_notify::memory_queue::MemoryQueue;

async fn fresh() -> Option<TestQueue> {
    Some(TestQueue {
        queue: Arc::new(MemoryQueue::new(SUITE_CONFIG)),
        guard: Box::new(()),
    })
}

queue_suite!(fresh);
