//! Provider channels end to end, against local servers that speak the providers'
//! protocols: retries with backoff and `Retry-After`, permanent failures, dead letters
//! with an operator alert, and putting a dead letter back.

use std::time::Duration;

use serde_json::{json, Value};
use tidings_fakes::webhook::{FakeWebhookReceiver, Reply};
use tidings_notify::providers::webhook::verify;

use crate::helpers::{assert_problem, eventually, spawn_with, Backend, TestApp};

const SECRET: &str = "whsec-0123456789abcdef";

async fn fast_retries(backend: Backend, alert_url: Option<String>) -> TestApp {
    spawn_with(backend, move |c| {
        c.notify.retry_base_ms = 50;
        c.notify.retry_max_ms = 200;
        c.notify.max_attempts = 3;
        c.notify.dispatch_interval_ms = 50;
        c.notify.alert_webhook_url = alert_url;
    })
    .await
    .expect("backend")
}

async fn send_webhook(app: &TestApp, event: &str, user: &str) -> String {
    app.app
        .send_notification(&json!({
            "event_id": event,
            "to": {"user_ids": [user]},
            "content": {"webhook": {"order": "8812", "greeting": "hi"}}
        }))
        .await
        .unwrap()
        .id
}

async fn delivery(app: &TestApp, id: &str, want: &str) -> tidings_client::Delivery {
    let c = app.app.clone();
    let (id, want) = (id.to_owned(), want.to_owned());
    eventually(&format!("delivery {want}"), || {
        let (c, id, want) = (c.clone(), id.clone(), want.clone());
        async move {
            let s = c.notification(&id).await.ok()?;
            s.deliveries.into_iter().find(|d| d.status == want)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed_and_retried_after_5xx_and_429() {
    let receiver = FakeWebhookReceiver::start().await.unwrap();
    receiver.script([
        Reply {
            status: 500,
            retry_after_secs: None,
        },
        Reply {
            status: 429,
            retry_after_secs: Some(1),
        },
    ]);
    let app = fast_retries(Backend::Sqlite, None).await;
    // Bad settings are refused at PUT, and GET hides the secret.
    let err = app
        .app
        .put_provider("webhook", &json!({"url": "not a url", "secret": SECRET}))
        .await
        .unwrap_err();
    assert_problem(err, 422, "validation_failed");
    let shown = app
        .app
        .put_provider("webhook", &json!({"url": receiver.url(), "secret": SECRET}))
        .await
        .unwrap();
    assert_eq!(shown["secret"], "<redacted>");
    assert_eq!(
        app.app.provider("webhook").await.unwrap()["url"],
        receiver.url()
    );
    let (user, _) = app.user("hooked").await;
    let id = send_webhook(&app, "wh-1", &user.id).await;
    let sent = delivery(&app, &id, "sent").await;
    assert_eq!(sent.attempts, 3);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert!(
            verify(
                SECRET.as_bytes(),
                &r.body,
                r.header("x-tidings-signature").unwrap()
            ),
            "signature checks out"
        );
    }
    let body: Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(body["notification_id"], id);
    assert_eq!(body["event_id"], "wh-1");
    assert_eq!(body["user_id"], user.id);
    assert_eq!(body["content"]["order"], "8812");
    // Retry-After: 1 was honoured between the second and third attempts.
    assert!(
        got[2].at.duration_since(got[1].at) >= Duration::from_millis(950),
        "{:?}",
        got[2].at - got[1].at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_not_retried() {
    let receiver = FakeWebhookReceiver::start().await.unwrap();
    receiver.script([Reply {
        status: 400,
        retry_after_secs: None,
    }]);
    let app = fast_retries(Backend::Sqlite, None).await;
    app.app
        .put_provider("webhook", &json!({"url": receiver.url(), "secret": SECRET}))
        .await
        .unwrap();
    let (user, _) = app.user("hooked").await;
    let id = send_webhook(&app, "wh-2", &user.id).await;
    let failed = delivery(&app, &id, "failed").await;
    assert_eq!(failed.attempts, 1);
    assert!(!failed.dead);
    assert!(failed.reason.unwrap().contains("400"));
    assert_eq!(receiver.received().len(), 1);
}

async fn exhausted_retries_become_a_dead_letter_with_an_alert(backend: Backend) {
    let receiver = FakeWebhookReceiver::start().await.unwrap();
    let alerts = FakeWebhookReceiver::start().await.unwrap();
    receiver.script(
        [Reply {
            status: 503,
            retry_after_secs: None,
        }; 3],
    );
    let Some(app) = (match backend {
        Backend::Postgres if std::env::var("TIDINGS_TEST_DATABASE_URL").is_err() => None,
        _ => Some(fast_retries(backend, Some(alerts.url())).await),
    }) else {
        return;
    };
    app.app
        .put_provider("webhook", &json!({"url": receiver.url(), "secret": SECRET}))
        .await
        .unwrap();
    let (user, _) = app.user("hooked").await;
    let id = send_webhook(&app, "wh-3", &user.id).await;
    let failed = delivery(&app, &id, "failed").await;
    assert!(failed.dead);
    assert_eq!(failed.attempts, 3);
    assert!(
        alerts.wait_for_count(1, Duration::from_secs(10)).await,
        "the operator is alerted"
    );
    let alert: Value = serde_json::from_slice(&alerts.received()[0].body).unwrap();
    assert_eq!(alert["alert"], "dead_letter");
    assert_eq!(alert["delivery_id"], failed.id);
    let dead = app.app.dead_letters(None, None).await.unwrap();
    assert_eq!(dead.items.len(), 1);
    assert_eq!(app.app.queues().await.unwrap()["webhook"].dead, 1);
    let metrics = app.client.metrics_text().await.unwrap();
    assert!(
        metrics.contains(
            "tidings_notification_deliveries_total{channel=\"webhook\",outcome=\"dead\"} 1"
        ),
        "{metrics}"
    );
    // Put back: the receiver now answers 200 and the delivery goes out.
    app.app.retry_dead_letter(&failed.id).await.unwrap();
    let sent = delivery(&app, &id, "sent").await;
    assert!(!sent.dead);
    assert!(app
        .app
        .dead_letters(None, None)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_problem(
        app.app.retry_dead_letter(&failed.id).await.unwrap_err(),
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_on_sqlite() {
    exhausted_retries_become_a_dead_letter_with_an_alert(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_on_postgres() {
    exhausted_retries_become_a_dead_letter_with_an_alert(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_settings_are_per_app_and_checked() {
    let app = fast_retries(Backend::Sqlite, None).await;
    assert_problem(
        app.app.provider("webhook").await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(
        app.app
            .put_provider("pigeon", &json!({}))
            .await
            .unwrap_err(),
        404,
        "not_found",
    );
    app.app
        .put_provider(
            "webhook",
            &json!({"url": "https://hooks.example.com/a", "secret": SECRET}),
        )
        .await
        .unwrap();
    let other = app.second_app().await;
    assert_problem(
        other.provider("webhook").await.unwrap_err(),
        404,
        "not_found",
    );
    app.app.delete_provider("webhook").await.unwrap();
    assert_problem(
        app.app.provider("webhook").await.unwrap_err(),
        404,
        "not_found",
    );
}
