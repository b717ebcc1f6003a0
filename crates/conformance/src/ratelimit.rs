//! Conformance tests of [`RateLimiter`]. Each test uses keys of its own, so suites
//! may share a Redis.

use std::sync::Arc;

use tidings_notify::ratelimit::RateLimiter;

type Limiter = Arc<dyn RateLimiter>;

fn key(name: &str) -> String {
    format!(
        "{name}-{}",
        std::process::id() as u64 * 1_000_000 + u64::from(rand_suffix())
    )
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

pub async fn admits_up_to_the_limit_per_window(l: Limiter) {
    let k = key("limit");
    let now = 1_700_000_000_000;
    for _ in 0..3 {
        assert!(l.admit(&k, 3, 60_000, now).await);
    }
    assert!(!l.admit(&k, 3, 60_000, now + 1).await);
    assert!(!l.admit(&k, 3, 60_000, now + 2).await);
    // The next window starts fresh.
    assert!(l.admit(&k, 3, 60_000, now + 60_000).await);
}

pub async fn keys_are_counted_apart(l: Limiter) {
    let (a, b) = (key("a"), key("b"));
    let now = 1_700_000_100_000;
    assert!(l.admit(&a, 1, 60_000, now).await);
    assert!(!l.admit(&a, 1, 60_000, now).await);
    assert!(l.admit(&b, 1, 60_000, now).await);
}

pub async fn concurrent_admissions_never_exceed_the_limit(l: Limiter) {
    let k = key("race");
    let now = 1_700_000_200_000;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (l, k) = (l.clone(), k.clone());
            tokio::spawn(async move { l.admit(&k, 10, 60_000, now).await })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
}
