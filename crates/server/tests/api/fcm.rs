//! Push over FCM HTTP v1 end to end, against the fake FCM and its OAuth endpoint.

use serde_json::json;
use tidings_fakes::fcm::{FakeFcm, Reply};

use crate::helpers::{eventually, spawn_with, Backend, TestApp};

async fn settled(app: &TestApp, id: &str) -> Vec<tidings_client::Delivery> {
    let (c, id) = (app.app.clone(), id.to_owned());
    eventually("fcm deliveries to settle", || {
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
async fn fcm_push_with_oauth_and_error_codes() {
    let fake = FakeFcm::start().await.unwrap();
    let app = spawn_with(Backend::Sqlite, |c| {
        c.notify.retry_base_ms = 50;
        c.notify.dispatch_interval_ms = 50;
    })
    .await
    .unwrap();
    app.app
        .put_provider("fcm", &json!({"service_account": fake.service_account(), "endpoint": fake.base_url(), "ca_pem": fake.ca_pem()}))
        .await
        .unwrap();
    let shown = app.app.provider("fcm").await.unwrap();
    assert_eq!(shown["service_account"]["private_key"], "<redacted>");
    let (user, phone) = app.user("android").await;
    for t in ["tok-ok", "tok-gone", "tok-bad", "tok-quota"] {
        phone.register_device("fcm", t, None).await.unwrap();
    }
    fake.script(
        "tok-gone",
        [Reply {
            status: 404,
            error_code: "UNREGISTERED",
            retry_after_secs: None,
        }],
    );
    fake.script(
        "tok-bad",
        [Reply {
            status: 400,
            error_code: "INVALID_ARGUMENT",
            retry_after_secs: None,
        }],
    );
    fake.script(
        "tok-quota",
        [Reply {
            status: 429,
            error_code: "QUOTA_EXCEEDED",
            retry_after_secs: Some(1),
        }],
    );
    let id = app
        .app
        .send_notification(&json!({"event_id": "fcm-1", "to": {"user_ids": [user.id]}, "priority": "high",
            "content": {"push": {"title": "Hi", "body": "There", "data": {"order": 8812, "kind": "ship"}}}}))
        .await
        .unwrap()
        .id;
    let deliveries = settled(&app, &id).await;
    // Targets are masked to a token's last six characters.
    let by = |t: &str| {
        deliveries
            .iter()
            .find(|d| d.target.ends_with(&t[t.len() - 6..]))
            .unwrap()
            .clone()
    };
    let ok = by("tok-ok");
    assert_eq!(ok.status, "sent");
    assert!(ok
        .provider_message_id
        .as_deref()
        .unwrap()
        .starts_with("projects/tidings-test/messages/"));
    assert_eq!(by("tok-gone").status, "failed");
    assert_eq!(
        (by("tok-bad").status.as_str(), by("tok-bad").attempts),
        ("failed", 1)
    );
    assert_eq!(
        (by("tok-quota").status.as_str(), by("tok-quota").attempts),
        ("sent", 2)
    );
    let got = fake
        .received()
        .into_iter()
        .find(|m| m.token == "tok-ok")
        .unwrap();
    assert_eq!(got.message["notification"]["title"], "Hi");
    assert_eq!(
        got.message["data"]["order"], "8812",
        "data values are strings for FCM"
    );
    assert_eq!(got.message["android"]["priority"], "HIGH");
    assert_eq!(fake.exchanges(), 1, "one OAuth exchange serves every send");
    let tokens: Vec<String> = phone
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.token)
        .collect();
    assert!(
        !tokens.contains(&"tok-gone".to_string()),
        "UNREGISTERED disables the token: {tokens:?}"
    );
    // An access token FCM stops accepting is replaced, and the send goes through.
    fake.revoke_access_tokens();
    let again = app
        .app
        .send_notification(&json!({"event_id": "fcm-2", "to": {"user_ids": [user.id]}, "content": {"push": {"title": "Again"}}}))
        .await
        .unwrap()
        .id;
    let deliveries = settled(&app, &again).await;
    assert!(
        deliveries.iter().all(|d| d.status == "sent"),
        "{deliveries:?}"
    );
    assert_eq!(fake.exchanges(), 2);
}
