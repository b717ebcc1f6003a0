//! Push over APNs end to end, against the fake APNs (HTTP/2, TLS, ES256 provider
//! tokens, Apple's status codes).

use std::time::Duration;

use serde_json::json;
use tidings_fakes::apns::{FakeApns, FakeApnsConfig, Reply};
use tidings_platform::config::Config;

use crate::helpers::{eventually, spawn_with, Backend, TestApp};

async fn setup() -> (TestApp, FakeApns) {
    setup_with(|c| {
        c.notify.retry_base_ms = 50;
        c.notify.retry_max_ms = 200;
        c.notify.max_attempts = 4;
    })
    .await
}

async fn setup_with(tweak: impl FnOnce(&mut Config)) -> (TestApp, FakeApns) {
    let fake = FakeApns::start(FakeApnsConfig::for_tests().unwrap())
        .await
        .unwrap();
    let app = spawn_with(Backend::Sqlite, |c| {
        c.notify.dispatch_interval_ms = 50;
        tweak(c);
    })
    .await
    .unwrap();
    app.app
        .put_provider("apns", &fake.provider_settings())
        .await
        .unwrap();
    (app, fake)
}

async fn push(app: &TestApp, event: &str, user: &str, priority: &str) -> String {
    app.app
        .send_notification(&json!({
            "event_id": event, "to": {"user_ids": [user]}, "priority": priority, "collapse_key": "orders",
            "content": {"push": {"title": "Shipped", "body": "Order 8812", "data": {"order": "8812"}}}
        }))
        .await
        .unwrap()
        .id
}

async fn settled(app: &TestApp, id: &str) -> Vec<tidings_client::Delivery> {
    let (c, id) = (app.app.clone(), id.to_owned());
    eventually("push deliveries to settle", || {
        let (c, id) = (c.clone(), id.clone());
        async move {
            let s = c.notification(&id).await.ok()?;
            (s.fanned_out
                && s.deliveries
                    .iter()
                    .all(|d| d.status != "queued" && d.status != "sending"))
            .then_some(s.deliveries)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_push_with_every_header_and_outcome() {
    let (app, fake) = setup().await;
    let (user, phone) = app.user("iphone").await;
    let tokens = ["aa11", "bb22", "cc33", "dd44", "ee55"];
    for t in tokens {
        phone.register_device("apns", t, None).await.unwrap();
    }
    fake.script("bb22", [Reply::status(410, "Unregistered")]);
    fake.script("cc33", [Reply::status(400, "BadDeviceToken")]);
    fake.script(
        "dd44",
        [Reply {
            status: 429,
            reason: "TooManyRequests",
            retry_after_secs: Some(1),
        }],
    );
    fake.script(
        "ee55",
        [
            Reply::status(500, "InternalServerError"),
            Reply::status(503, "ServiceUnavailable"),
        ],
    );
    let id = push(&app, "push-1", &user.id, "high").await;
    let deliveries = settled(&app, &id).await;
    let by_target = |t: &str| {
        deliveries
            .iter()
            .find(|d| d.target.ends_with(t))
            .unwrap()
            .clone()
    };
    let ok = by_target("aa11");
    assert_eq!((ok.status.as_str(), ok.attempts), ("sent", 1));
    let gone = by_target("bb22");
    assert_eq!(gone.status, "failed");
    assert!(gone.reason.unwrap().contains("Unregistered"));
    let bad = by_target("cc33");
    assert_eq!(
        (bad.status.as_str(), bad.attempts),
        ("failed", 1),
        "BadDeviceToken is never retried"
    );
    let throttled = by_target("dd44");
    assert_eq!((throttled.status.as_str(), throttled.attempts), ("sent", 2));
    let flaky = by_target("ee55");
    assert_eq!((flaky.status.as_str(), flaky.attempts), ("sent", 3));
    // The provider's id is APNs' apns-id.
    let received = fake.received();
    let first = received.iter().find(|r| r.token == "aa11").unwrap();
    assert_eq!(ok.provider_message_id.as_deref(), first.apns_id.as_deref());
    assert_eq!(first.topic, "com.example.app");
    assert_eq!(first.push_type, "alert");
    assert_eq!(first.priority, "10");
    assert_eq!(first.collapse_id.as_deref(), Some("orders"));
    assert_eq!(first.payload["aps"]["alert"]["title"], "Shipped");
    assert_eq!(first.payload["order"], "8812");
    // One provider token served every request.
    let tokens_seen: std::collections::HashSet<&str> =
        received.iter().map(|r| r.authorization.as_str()).collect();
    assert_eq!(tokens_seen.len(), 1);
    // The 410 token is gone from the user's devices and is never used again.
    let devices: Vec<String> = phone
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.token)
        .collect();
    assert!(!devices.contains(&"bb22".to_string()), "{devices:?}");
    assert_eq!(devices.len(), 4);
    let before = fake.count();
    let again = push(&app, "push-2", &user.id, "normal").await;
    let deliveries = settled(&app, &again).await;
    assert_eq!(deliveries.len(), 4);
    assert!(
        fake.wait_for_count(before + 4, Duration::from_secs(5))
            .await
    );
    assert!(fake.received().iter().filter(|r| r.token == "bb22").count() == 0);
    let normal = fake
        .received()
        .into_iter()
        .rev()
        .find(|r| r.token == "aa11")
        .unwrap();
    assert_eq!(normal.priority, "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_apns_connections_are_replaced() {
    let (app, fake) = setup().await;
    let (user, phone) = app.user("iphone").await;
    phone.register_device("apns", "aa11", None).await.unwrap();
    // Sends go round the pool's two connections, so three of them open both.
    for i in 0..3 {
        let id = push(&app, &format!("before-{i}"), &user.id, "high").await;
        assert_eq!(settled(&app, &id).await[0].status, "sent");
    }
    assert_eq!(fake.connections(), 2);
    fake.retire_connections();
    assert!(
        fake.wait_for_open_connections(0, Duration::from_secs(5))
            .await
    );
    for i in 0..2 {
        let id = push(&app, &format!("after-{i}"), &user.id, "high").await;
        let delivery = settled(&app, &id).await.remove(0);
        assert_eq!(delivery.status, "sent", "{delivery:?}");
    }
    assert_eq!(
        fake.connections(),
        4,
        "each dead connection was dialled again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_can_share_the_serving_runtime() {
    let (app, _fake) = setup_with(|c| c.notify.pipeline_threads = 0).await;
    let (user, phone) = app.user("iphone").await;
    phone.register_device("apns", "aa11", None).await.unwrap();
    let id = push(&app, "shared-runtime", &user.id, "high").await;
    assert_eq!(settled(&app, &id).await[0].status, "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_apns_key_is_refused_when_saved() {
    let (app, _fake) = setup().await;
    let err = app
        .app
        .put_provider("apns", &json!({"key_pem": "not a key", "key_id": "ABCDE12345", "team_id": "TEAM123456", "topic": "x"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    let shown = app.app.provider("apns").await.unwrap();
    assert_eq!(shown["key_pem"], "<redacted>");
    assert_eq!(shown["key_id"], "ABCDE12345");
}

/// Pages that do not fit the fan-out's hand-off to this node's workers (`local_handoff`
/// of 3: a page of 10 never fits, a page of 2 fits while the lane is free) go through
/// the queue; either way each device gets its push exactly once and every row ends
/// `sent` after one attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_past_the_handoff_take_the_queue() {
    let (app, fake) = setup_with(|c| c.notify.local_handoff = 3).await;
    let mut users = Vec::new();
    for i in 0..10 {
        let (user, phone) = app.user(&format!("handoff{i}")).await;
        phone
            .register_device("apns", &format!("fe{i:02}"), None)
            .await
            .unwrap();
        users.push(user.id);
    }
    let sends = [&users[..2], &users[..], &users[8..], &users[3..5]];
    let mut ids = Vec::new();
    for (n, to) in sends.iter().enumerate() {
        let id = app
            .app
            .send_notification(&json!({
                "event_id": format!("handoff-{n}"), "to": {"user_ids": to},
                "content": {"push": {"title": "Hi", "body": "there"}}
            }))
            .await
            .unwrap()
            .id;
        ids.push(id);
    }
    for id in &ids {
        for d in settled(&app, id).await {
            assert_eq!((d.status.as_str(), d.attempts), ("sent", 1), "{d:?}");
        }
    }
    let expected: usize = sends.iter().map(|s| s.len()).sum();
    assert_eq!(fake.received().len(), expected, "each push exactly once");
}
