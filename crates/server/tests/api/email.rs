//! Email over SendGrid end to end, against the fake SendGrid, and SendGrid's signed
//! Event Webhook moving deliveries and recording opens and clicks.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::json;
use tidings_fakes::sendgrid::{FakeSendgrid, Reply};
use tidings_notify::providers::sendgrid::spki_b64;

use crate::helpers::{eventually, spawn_with, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_is_sent_retried_and_tracked_by_signed_events() {
    let fake = FakeSendgrid::start().await.unwrap();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let app = spawn_with(Backend::Sqlite, |c| {
        c.notify.retry_base_ms = 50;
        c.notify.dispatch_interval_ms = 50;
    })
    .await
    .unwrap();
    app.app
        .put_provider(
            "email",
            &json!({"provider": "sendgrid", "api_key": fake.api_key(), "from": "shop@example.com",
                    "webhook_public_key": spki_b64(key.public_key().as_ref()),
                    "endpoint": fake.base_url(), "ca_pem": fake.ca_pem()}),
        )
        .await
        .unwrap();
    assert_eq!(
        app.app.provider("email").await.unwrap()["api_key"],
        "<redacted>"
    );
    let (alice, _) = app.user("alice").await; // alice@example.com
    let (bob, _) = app.user("bob").await;
    fake.script(
        "bob@example.com",
        [Reply {
            status: 503,
            retry_after_secs: None,
        }],
    );
    let id = app
        .app
        .send_notification(&json!({"event_id": "mail-1", "to": {"user_ids": [alice.id, bob.id]},
            "content": {"email": {"subject": "Your order", "text": "Shipped.", "html": "<p>Shipped.</p>"}}}))
        .await
        .unwrap()
        .id;
    let deliveries = {
        let (c, id) = (app.app.clone(), id.clone());
        eventually("both emails sent", || {
            let (c, id) = (c.clone(), id.clone());
            async move {
                let s = c.notification(&id).await.ok()?;
                (s.deliveries.len() == 2 && s.deliveries.iter().all(|d| d.status == "sent"))
                    .then_some(s.deliveries)
            }
        })
        .await
    };
    let to_alice = deliveries.iter().find(|d| d.user_id == alice.id).unwrap();
    let to_bob = deliveries.iter().find(|d| d.user_id == bob.id).unwrap();
    assert_eq!(to_bob.attempts, 2, "503 is retried");
    assert_eq!(to_alice.target, "a***@example.com");
    let mail = fake
        .received()
        .into_iter()
        .find(|m| m.to == "alice@example.com")
        .unwrap();
    assert_eq!(
        to_alice.provider_message_id.as_deref(),
        Some(mail.message_id.as_str())
    );
    assert_eq!(mail.body["from"]["email"], "shop@example.com");
    assert_eq!(mail.body["subject"], "Your order");
    assert_eq!(mail.body["content"][0]["type"], "text/plain");
    assert_eq!(
        mail.body["personalizations"][0]["custom_args"]["tidings_delivery"],
        to_alice.id
    );

    // SendGrid's events: alice's mail delivered, opened and clicked; bob's bounced.
    let events = json!([
        {"event": "delivered", "email": "alice@example.com", "tidings_delivery": to_alice.id, "sg_event_id": "e1"},
        {"event": "open", "email": "alice@example.com", "tidings_delivery": to_alice.id, "sg_event_id": "e2"},
        {"event": "click", "email": "alice@example.com", "tidings_delivery": to_alice.id, "sg_event_id": "e3"},
        {"event": "bounce", "email": "bob@example.com", "reason": "550 no such user", "tidings_delivery": to_bob.id},
        {"event": "processed", "email": "bob@example.com", "tidings_delivery": to_bob.id}
    ])
    .to_string();
    let timestamp = "1795580000";
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(events.as_bytes());
    let signature = base64_encode(key.sign(&rng, &signed).unwrap().as_ref());
    let http = reqwest::Client::new();
    let post = |sig: String| {
        http.post(app.url("/v1/webhooks/sendgrid/events"))
            .header("content-type", "application/json")
            .header("x-twilio-email-event-webhook-signature", sig)
            .header("x-twilio-email-event-webhook-timestamp", timestamp)
            .body(events.clone())
            .send()
    };
    let forged = post(base64_encode(b"not a signature")).await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        app.app
            .notification(&id)
            .await
            .unwrap()
            .deliveries
            .iter()
            .filter(|d| d.status == "sent")
            .count(),
        2
    );
    assert_eq!(post(signature).await.unwrap().status(), 204);
    let status = app.app.notification(&id).await.unwrap();
    let alice_d = status
        .deliveries
        .iter()
        .find(|d| d.user_id == alice.id)
        .unwrap();
    let bob_d = status
        .deliveries
        .iter()
        .find(|d| d.user_id == bob.id)
        .unwrap();
    assert_eq!(alice_d.status, "delivered");
    assert_eq!(
        (bob_d.status.as_str(), bob_d.reason.as_deref()),
        ("failed", Some("sendgrid bounce: 550 no such user"))
    );
    let stats = app.app.notification_stats(None).await.unwrap();
    let email = &stats["channels"]["email"];
    assert_eq!(
        (email["delivered"].as_u64(), email["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (email["opened"].as_u64(), email["clicked"].as_u64()),
        (Some(1), Some(1))
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
