//! SMS over Twilio end to end, against the fake Twilio, and Twilio's signed status
//! callbacks moving deliveries to delivered or failed.

use serde_json::json;
use tidings_client::UpdateMe;
use tidings_fakes::twilio::{FakeTwilio, Reply};
use tidings_notify::providers::twilio::signature;

use crate::helpers::{eventually, spawn_with, Backend, TestApp};

async fn setup() -> (TestApp, FakeTwilio) {
    let fake = FakeTwilio::start().await.unwrap();
    let app = spawn_with(Backend::Sqlite, |c| {
        c.notify.retry_base_ms = 50;
        c.notify.retry_max_ms = 200;
        c.notify.dispatch_interval_ms = 50;
    })
    .await
    .unwrap();
    app.app
        .put_provider(
            "sms",
            &json!({"provider": "twilio", "account_sid": fake.account_sid(), "auth_token": fake.auth_token(),
                    "from": "+15005550006", "endpoint": fake.base_url(), "ca_pem": fake.ca_pem()}),
        )
        .await
        .unwrap();
    (app, fake)
}

async fn final_status(app: &TestApp, id: &str, phone: &str) -> tidings_client::Delivery {
    let (c, id, phone) = (app.app.clone(), id.to_owned(), phone.to_owned());
    eventually("the sms delivery to settle", || {
        let (c, id, phone) = (c.clone(), id.clone(), phone.clone());
        async move {
            let s = c.notification(&id).await.ok()?;
            s.deliveries.into_iter().find(|d| {
                d.target.ends_with(&phone[phone.len() - 4..])
                    && d.status != "queued"
                    && d.status != "sending"
            })
        }
    })
    .await
}

async fn user_with_phone(app: &TestApp, name: &str, phone: &str) -> String {
    let (user, client) = app.user(name).await;
    client
        .update_me(&UpdateMe {
            phone: Some(phone.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    user.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_is_sent_retried_and_confirmed_by_signed_callbacks() {
    let (app, fake) = setup().await;
    let ok = user_with_phone(&app, "sms_ok", "+14155550101").await;
    let busy = user_with_phone(&app, "sms_busy", "+14155550102").await;
    let bad = user_with_phone(&app, "sms_bad", "+14155550103").await;
    fake.script(
        "+14155550102",
        [Reply {
            status: 429,
            code: 20429,
            retry_after_secs: Some(1),
        }],
    );
    fake.script(
        "+14155550103",
        [Reply {
            status: 400,
            code: 21211,
            retry_after_secs: None,
        }],
    );
    let id = app
        .app
        .send_notification(
            &json!({"event_id": "sms-1", "to": {"user_ids": [ok, busy, bad]},
                                   "content": {"sms": {"text": "Your code is 1234"}}}),
        )
        .await
        .unwrap()
        .id;
    let sent = final_status(&app, &id, "+14155550101").await;
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.target, "+1415****0101");
    let retried = final_status(&app, &id, "+14155550102").await;
    assert_eq!((retried.status.as_str(), retried.attempts), ("sent", 2));
    let failed = final_status(&app, &id, "+14155550103").await;
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 1));
    assert!(failed.reason.unwrap().contains("21211"));

    let got = fake.received();
    let msg = got.iter().find(|m| m.to == "+14155550101").unwrap();
    assert_eq!(msg.body, "Your code is 1234");
    assert_eq!(msg.from, "+15005550006");
    assert_eq!(sent.provider_message_id.as_deref(), Some(msg.sid.as_str()));
    let callback = msg
        .status_callback
        .clone()
        .expect("a StatusCallback is given to Twilio");
    assert!(
        callback.ends_with("/v1/webhooks/twilio/status"),
        "{callback}"
    );

    // Twilio calls back: a forged signature is refused, a signed one records delivery.
    let params = vec![
        ("MessageSid".to_string(), msg.sid.clone()),
        ("MessageStatus".to_string(), "delivered".to_string()),
        ("AccountSid".to_string(), fake.account_sid().to_string()),
        ("To".to_string(), msg.to.clone()),
    ];
    let http = reqwest::Client::new();
    let forged = http
        .post(app.url("/v1/webhooks/twilio/status"))
        .header(
            "x-twilio-signature",
            signature("wrong-token", &callback, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let good = http
        .post(app.url("/v1/webhooks/twilio/status"))
        .header(
            "x-twilio-signature",
            signature(fake.auth_token(), &callback, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 204);
    let status = app.app.notification(&id).await.unwrap();
    let d = status
        .deliveries
        .iter()
        .find(|d| d.provider_message_id.as_deref() == Some(msg.sid.as_str()))
        .unwrap();
    assert_eq!(d.status, "delivered");
    // An undelivered report for the other message marks it failed with Twilio's code.
    let other = got.iter().find(|m| m.to == "+14155550102").unwrap();
    let params = vec![
        ("MessageSid".to_string(), other.sid.clone()),
        ("MessageStatus".to_string(), "undelivered".to_string()),
        ("ErrorCode".to_string(), "30003".to_string()),
    ];
    let r = http
        .post(app.url("/v1/webhooks/twilio/status"))
        .header(
            "x-twilio-signature",
            signature(fake.auth_token(), &callback, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let status = app.app.notification(&id).await.unwrap();
    let d = status
        .deliveries
        .iter()
        .find(|d| d.provider_message_id.as_deref() == Some(other.sid.as_str()))
        .unwrap();
    assert_eq!(
        (d.status.as_str(), d.reason.as_deref()),
        ("failed", Some("twilio undelivered: error 30003"))
    );
    let stats = app.app.notification_stats(None).await.unwrap();
    assert_eq!(stats["channels"]["sms"]["delivered"], 1);
    // Unknown messages are a 404, unsigned callbacks a 401.
    let unknown = http
        .post(app.url("/v1/webhooks/twilio/status"))
        .header("x-twilio-signature", "x")
        .form(&[("MessageSid", "SMnope"), ("MessageStatus", "delivered")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let unsigned = http
        .post(app.url("/v1/webhooks/twilio/status"))
        .form(&[("MessageSid", "SMnope"), ("MessageStatus", "delivered")])
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_twilio_settings_are_refused() {
    let (app, _fake) = setup().await;
    let err = app
        .app
        .put_provider(
            "sms",
            &json!({"provider": "twilio", "account_sid": "nope", "auth_token": "t", "from": "+1"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    let shown = app.app.provider("sms").await.unwrap();
    assert_eq!(shown["auth_token"], "<redacted>");
}
