//! Conformance tests of [`WorkQueue`]. Factories build queues with
//! [`SUITE_CONFIG`]: a short visibility timeout so expiry can be observed, and three
//! deliveries before a message is parked.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings_notify::queue::{QueueConfig, WorkQueue};

type Queue = Arc<dyn WorkQueue>;

pub const SUITE_CONFIG: QueueConfig = QueueConfig {
    visibility: Duration::from_millis(400),
    max_deliveries: 3,
};

const NO_WAIT: Duration = Duration::ZERO;
/// Long enough for anything the suite waits for; a passing test returns much sooner
/// because the wait ends at the first message.
const PATIENCE: Duration = Duration::from_secs(10);

fn items(leased: &[tidings_notify::queue::Leased]) -> Vec<i64> {
    leased.iter().map(|l| l.item).collect()
}

pub async fn enqueued_items_are_leased_once_in_order(q: Queue) {
    q.enqueue("push", &[1, 2, 3], NO_WAIT).await.unwrap();
    q.enqueue("push", &[4], NO_WAIT).await.unwrap();
    let first = q.lease("push", 3, PATIENCE).await.unwrap();
    assert_eq!(items(&first), [1, 2, 3]);
    assert!(first.iter().all(|l| l.deliveries == 1));
    let second = q.lease("push", 10, PATIENCE).await.unwrap();
    assert_eq!(items(&second), [4]);
    // Everything is leased: nothing more to hand out.
    assert!(q.lease("push", 10, NO_WAIT).await.unwrap().is_empty());
    q.ack(
        "push",
        &first
            .iter()
            .chain(&second)
            .map(|l| l.handle.clone())
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(
        q.stats("push").await.unwrap().pending + q.stats("push").await.unwrap().in_flight,
        0
    );
}

pub async fn queues_are_independent(q: Queue) {
    q.enqueue("sms", &[10], NO_WAIT).await.unwrap();
    q.enqueue("email", &[20], NO_WAIT).await.unwrap();
    assert_eq!(items(&q.lease("email", 10, PATIENCE).await.unwrap()), [20]);
    assert_eq!(items(&q.lease("sms", 10, PATIENCE).await.unwrap()), [10]);
}

pub async fn unacked_lease_expires_and_is_handed_out_again(q: Queue) {
    q.enqueue("push", &[7], NO_WAIT).await.unwrap();
    let first = q.lease("push", 1, PATIENCE).await.unwrap();
    assert_eq!(items(&first), [7]);
    let started = Instant::now();
    let again = q.lease("push", 1, PATIENCE).await.unwrap();
    assert_eq!(items(&again), [7]);
    assert_eq!(again[0].deliveries, 2);
    assert!(
        started.elapsed() >= SUITE_CONFIG.visibility / 2,
        "handed out again too early"
    );
    // The old lease no longer owns the message: its ack changes nothing.
    q.ack("push", &[first[0].handle.clone()]).await.unwrap();
    q.ack("push", &[again[0].handle.clone()]).await.unwrap();
    assert!(q
        .lease("push", 1, SUITE_CONFIG.visibility * 2)
        .await
        .unwrap()
        .is_empty());
}

pub async fn nack_returns_the_message_after_its_delay(q: Queue) {
    q.enqueue("webhook", &[5], NO_WAIT).await.unwrap();
    let leased = q.lease("webhook", 1, PATIENCE).await.unwrap();
    q.nack("webhook", &leased[0].handle, NO_WAIT).await.unwrap();
    let again = q.lease("webhook", 1, PATIENCE).await.unwrap();
    assert_eq!(items(&again), [5]);
    q.nack("webhook", &again[0].handle, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        q.lease("webhook", 1, NO_WAIT).await.unwrap().is_empty(),
        "hidden during the delay"
    );
    let third = q.lease("webhook", 1, PATIENCE).await.unwrap();
    assert_eq!(items(&third), [5]);
    assert_eq!(third[0].deliveries, 3);
    q.ack("webhook", &[third[0].handle.clone()]).await.unwrap();
}

pub async fn delayed_enqueue_waits(q: Queue) {
    let started = Instant::now();
    q.enqueue("email", &[9], Duration::from_millis(300))
        .await
        .unwrap();
    assert!(q.lease("email", 1, NO_WAIT).await.unwrap().is_empty());
    let leased = q.lease("email", 1, PATIENCE).await.unwrap();
    assert_eq!(items(&leased), [9]);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

pub async fn too_many_deliveries_park_the_message(q: Queue) {
    q.enqueue("fanout", &[99], NO_WAIT).await.unwrap();
    for n in 1..=SUITE_CONFIG.max_deliveries {
        let leased = q.lease("fanout", 1, PATIENCE).await.unwrap();
        assert_eq!(items(&leased), [99]);
        assert_eq!(leased[0].deliveries, n);
        q.nack("fanout", &leased[0].handle, NO_WAIT).await.unwrap();
    }
    assert!(q
        .lease("fanout", 1, SUITE_CONFIG.visibility)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(q.stats("fanout").await.unwrap().dead, 1);
}

pub async fn stats_count_pending_and_in_flight(q: Queue) {
    q.enqueue("sms", &[1, 2, 3, 4], NO_WAIT).await.unwrap();
    let stats = q.stats("sms").await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.dead), (4, 0, 0));
    let leased = q.lease("sms", 3, PATIENCE).await.unwrap();
    assert_eq!(leased.len(), 3);
    let stats = q.stats("sms").await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (1, 3));
    q.ack("sms", &[leased[0].handle.clone()]).await.unwrap();
    let stats = q.stats("sms").await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (1, 2));
}

pub async fn concurrent_consumers_share_without_duplicates(q: Queue) {
    let all: Vec<i64> = (1..=600).collect();
    for chunk in all.chunks(100) {
        q.enqueue("push", chunk, NO_WAIT).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let leased = q
                    .lease("push", 50, Duration::from_millis(200))
                    .await
                    .unwrap();
                if leased.is_empty() {
                    return got;
                }
                got.extend(items(&leased));
                q.ack(
                    "push",
                    &leased.iter().map(|l| l.handle.clone()).collect::<Vec<_>>(),
                )
                .await
                .unwrap();
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for item in t.await.unwrap() {
            assert!(seen.insert(item), "{item} handed out twice");
        }
    }
    assert_eq!(seen.len(), all.len());
}
