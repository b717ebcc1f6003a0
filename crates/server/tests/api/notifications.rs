//! Notifications through the API: accept, dedup, fan-out, suppression, templates,
//! scheduling, the in-app inbox, tracking, statistics and queue administration.
//! Provider channels are exercised against protocol fakes in `providers.rs`.

use serde_json::{json, Value};
use tidings_client::{NotificationStatus, UpdateMe};

use crate::helpers::{assert_problem, eventually, spawn_with, Backend, TestApp};
use crate::on_both_backends;

async fn settled(app: &TestApp, id: &str) -> NotificationStatus {
    let app_client = app.app.clone();
    let id = id.to_owned();
    eventually("every delivery to settle", || {
        let (c, id) = (app_client.clone(), id.clone());
        async move {
            let s = c.notification(&id).await.ok()?;
            (s.fanned_out
                && s.deliveries
                    .iter()
                    .all(|d| d.status != "queued" && d.status != "sending"))
            .then_some(s)
        }
    })
    .await
}

async fn fanned_out(app: &TestApp, id: &str) -> NotificationStatus {
    let app_client = app.app.clone();
    let id = id.to_owned();
    eventually("the fan-out", || {
        let (c, id) = (app_client.clone(), id.clone());
        async move { c.notification(&id).await.ok().filter(|s| s.fanned_out) }
    })
    .await
}

fn in_app(event: &str, users: &[&str], title: &str) -> Value {
    json!({
        "event_id": event,
        "to": {"user_ids": users},
        "content": {"in_app": {"title": title, "body": "body text", "url": "https://example.com/x", "data": {"k": 1}}}
    })
}

async fn in_app_reaches_the_inbox_and_read_state_counts(app: TestApp) {
    let (alice, alice_client) = app.user("alice").await;
    let accepted = app
        .app
        .send_notification(&in_app("order-1", &[&alice.id], "Shipped"))
        .await
        .unwrap();
    assert!(!accepted.duplicate);
    let status = settled(&app, &accepted.id).await;
    assert_eq!(status.deliveries.len(), 1);
    let d = &status.deliveries[0];
    assert_eq!(
        (d.channel.as_str(), d.status.as_str(), d.user_id.as_str()),
        ("in_app", "delivered", alice.id.as_str())
    );
    let inbox = alice_client.inbox(None, None).await.unwrap();
    assert_eq!(inbox.unread_count, 1);
    let item = &inbox.items[0];
    assert_eq!(item.title.as_deref(), Some("Shipped"));
    assert_eq!(item.notification_id, accepted.id);
    assert_eq!(item.data["k"], 1);
    alice_client.mark_read(&item.id).await.unwrap();
    alice_client.mark_read(&item.id).await.unwrap();
    assert_eq!(
        alice_client.inbox(None, None).await.unwrap().unread_count,
        0
    );
    // Another user can neither see nor mark it.
    let (_, bob) = app.user("bob").await;
    assert!(bob.inbox(None, None).await.unwrap().items.is_empty());
    assert_problem(bob.mark_read(&item.id).await.unwrap_err(), 404, "not_found");
    // Tracking from the client shows in the statistics.
    alice_client.track(&accepted.id, "opened").await.unwrap();
    alice_client.track(&accepted.id, "clicked").await.unwrap();
    assert_problem(
        bob.track(&accepted.id, "opened").await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(
        alice_client.track(&accepted.id, "liked").await.unwrap_err(),
        422,
        "validation_failed",
    );
    let stats = app.app.notification_stats(None).await.unwrap();
    let in_app_stats = &stats["channels"]["in_app"];
    assert_eq!(in_app_stats["accepted"], 1);
    assert_eq!(in_app_stats["delivered"], 1);
    assert_eq!(in_app_stats["opened"], 1);
    assert_eq!(in_app_stats["clicked"], 1);
}

async fn the_same_event_id_never_sends_twice(mut app: TestApp) {
    let (alice, _) = app.user("alice").await;
    let first = app
        .app
        .send_notification(&in_app("evt-9", &[&alice.id], "once"))
        .await
        .unwrap();
    let again = app
        .app
        .send_notification(&in_app("evt-9", &[&alice.id], "twice?"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    settled(&app, &first.id).await;
    // Still a duplicate after a restart.
    app.restart().await;
    let after = app
        .app
        .send_notification(&in_app("evt-9", &[&alice.id], "thrice?"))
        .await
        .unwrap();
    assert!(after.duplicate);
    assert_eq!(after.id, first.id);
    // The restarted server has a new address; the same token works there.
    let token = app.app.mint_token(&alice.id, None).await.unwrap().token;
    assert_eq!(
        app.client
            .as_user(&token)
            .inbox(None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // Another app may use the same event id.
    let other = app.second_app().await;
    let user = other
        .create_user(&tidings_client::CreateUser {
            username: Some("zed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let theirs = other
        .send_notification(&in_app("evt-9", &[&user.id], "theirs"))
        .await
        .unwrap();
    assert!(!theirs.duplicate);
    assert_ne!(theirs.id, first.id);
}

async fn suppression_reasons_are_recorded(app: TestApp) {
    let (alice, alice_client) = app.user("alice").await;
    // Alice has an email (from the helper) but no phone and no devices.
    let mut prefs = alice_client.preferences().await.unwrap();
    prefs.channels.email = false;
    prefs
        .categories
        .insert("promo".into(), [("in_app".to_string(), false)].into());
    alice_client.put_preferences(&prefs).await.unwrap();
    let body = json!({
        "event_id": "sup-1",
        "to": {"user_ids": [alice.id, "123456789"]},
        "category": "promo",
        "content": {
            "push": {"title": "t", "body": "b"},
            "sms": {"text": "t"},
            "email": {"subject": "s", "text": "t"},
            "in_app": {"title": "t"}
        }
    });
    let accepted = app.app.send_notification(&body).await.unwrap();
    let status = settled(&app, &accepted.id).await;
    let reason = |user: &str, channel: &str| {
        status
            .deliveries
            .iter()
            .find(|d| d.user_id == user && d.channel == channel)
            .map(|d| (d.status.clone(), d.reason.clone().unwrap_or_default()))
            .unwrap()
    };
    assert_eq!(
        reason(&alice.id, "push"),
        ("suppressed".into(), "no_contact".into())
    );
    assert_eq!(
        reason(&alice.id, "sms"),
        ("suppressed".into(), "no_contact".into())
    );
    assert_eq!(
        reason(&alice.id, "email"),
        ("suppressed".into(), "channel_opted_out".into())
    );
    assert_eq!(
        reason(&alice.id, "in_app"),
        ("suppressed".into(), "category_opted_out".into())
    );
    assert_eq!(
        reason("123456789", "in_app"),
        ("suppressed".into(), "unknown_user".into())
    );
    let stats = app.app.notification_stats(None).await.unwrap();
    assert_eq!(
        stats["channels"]["email"]["suppressed_by_reason"]["channel_opted_out"],
        1
    );
    assert_eq!(
        stats["channels"]["push"]["suppressed_by_reason"]["no_contact"],
        1
    );
}

async fn templates_render_with_locale_fallback(app: TestApp) {
    let template = json!({
        "channels": {"in_app": {"title": "Order {{ order }} shipped", "body": "Hi {{ user.display_name }}"}},
        "locales": {
            "ko": {"in_app": {"title": "주문 {{ order }} 발송", "body": "{{ user.display_name }}님"}},
            "pt": {"in_app": {"title": "Pedido {{ order }} enviado"}}
        }
    });
    app.app
        .put_template("order_shipped", &template)
        .await
        .unwrap();
    assert_eq!(
        app.app.template("order_shipped").await.unwrap()["locales"]["ko"]["in_app"]["title"],
        "주문 {{ order }} 발송"
    );
    let mut users = Vec::new();
    for (name, locale) in [
        ("kim", Some("ko-KR")),
        ("joao", Some("pt-BR")),
        ("ann", None),
    ] {
        let (user, client) = app.user(name).await;
        client
            .update_me(&UpdateMe {
                display_name: Some(name.to_uppercase()),
                locale: locale.map(Into::into),
                ..Default::default()
            })
            .await
            .unwrap();
        users.push((user, client));
    }
    let ids: Vec<&str> = users.iter().map(|(u, _)| u.id.as_str()).collect();
    let accepted = app
        .app
        .send_notification(&json!({"event_id": "tpl-1", "to": {"user_ids": ids}, "template": "order_shipped", "data": {"order": "8812"}}))
        .await
        .unwrap();
    settled(&app, &accepted.id).await;
    let titles: Vec<(Option<String>, Option<String>)> =
        futures::future::join_all(users.iter().map(|(_, c)| async move {
            let item = c.inbox(None, None).await.unwrap().items.remove(0);
            (item.title, item.body)
        }))
        .await;
    assert_eq!(
        titles[0],
        (Some("주문 8812 발송".into()), Some("KIM님".into()))
    );
    assert_eq!(
        titles[1],
        (Some("Pedido 8812 enviado".into()), Some("Hi JOAO".into())),
        "pt-BR falls back to pt, then default per field"
    );
    assert_eq!(
        titles[2],
        (Some("Order 8812 shipped".into()), Some("Hi ANN".into()))
    );
    // Bad templates are refused when saved.
    let err = app
        .app
        .put_template(
            "broken",
            &json!({"channels": {"sms": {"text": "{% if %}"}}}),
        )
        .await
        .unwrap_err();
    assert_problem(err, 422, "validation_failed");
    app.app.delete_template("order_shipped").await.unwrap();
    assert_problem(
        app.app.template("order_shipped").await.unwrap_err(),
        404,
        "not_found",
    );
}

async fn topics_fan_out_to_subscribers(app: TestApp) {
    let mut clients = Vec::new();
    for name in ["topic1", "topic2", "topic3"] {
        let (user, client) = app.user(name).await;
        app.app.subscribe(&user.id, "deals").await.unwrap();
        app.app.subscribe(&user.id, "deals").await.unwrap();
        clients.push((user, client));
    }
    app.app
        .unsubscribe(&clients[2].0.id, "deals")
        .await
        .unwrap();
    let accepted = app
        .app
        .send_notification(&json!({"event_id": "topic-1", "to": {"topic": "deals"}, "content": {"in_app": {"title": "Sale"}}}))
        .await
        .unwrap();
    let status = settled(&app, &accepted.id).await;
    assert_eq!(status.deliveries.len(), 2);
    assert_eq!(clients[0].1.inbox(None, None).await.unwrap().items.len(), 1);
    assert_eq!(clients[1].1.inbox(None, None).await.unwrap().items.len(), 1);
    assert!(clients[2]
        .1
        .inbox(None, None)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_problem(
        app.app.subscribe("99999", "deals").await.unwrap_err(),
        404,
        "not_found",
    );
}

async fn scheduled_and_expired_sends(app: TestApp) {
    let (alice, alice_client) = app.user("alice").await;
    let now = chrono::Utc::now();
    let later = (now + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let accepted = app
        .app
        .send_notification(
            &json!({"event_id": "sched-1", "to": {"user_ids": [alice.id]}, "send_at": later,
            "content": {"in_app": {"title": "later"}}}),
        )
        .await
        .unwrap();
    let early = app.app.notification(&accepted.id).await.unwrap();
    assert!(
        !early.fanned_out && early.deliveries.is_empty(),
        "nothing happens before send_at"
    );
    let status = settled(&app, &accepted.id).await;
    assert_eq!(status.deliveries[0].status, "delivered");
    let item_time = alice_client.inbox(None, None).await.unwrap().items[0]
        .created_at
        .clone();
    assert!(item_time >= later, "{item_time} < {later}");
    let past = (now - chrono::Duration::seconds(5)).to_rfc3339();
    let expired = app
        .app
        .send_notification(
            &json!({"event_id": "exp-1", "to": {"user_ids": [alice.id]}, "expires_at": past,
            "content": {"in_app": {"title": "too late"}}}),
        )
        .await
        .unwrap();
    let status = settled(&app, &expired.id).await;
    assert_eq!(status.deliveries[0].status, "expired");
}

async fn quiet_hours_hold_intrusive_channels(app: TestApp) {
    let (alice, alice_client) = app.user("alice").await;
    alice_client
        .update_me(&UpdateMe {
            phone: Some("+14155550100".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // A quiet window around the current minute in UTC.
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    let end = (now + chrono::Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let mut prefs = alice_client.preferences().await.unwrap();
    prefs.quiet_hours = Some(tidings_client::QuietHours {
        start,
        end,
        timezone: "UTC".into(),
    });
    alice_client.put_preferences(&prefs).await.unwrap();
    let body = |event: &str, priority: &str| {
        json!({"event_id": event, "to": {"user_ids": [alice.id]}, "priority": priority,
               "content": {"sms": {"text": "hi"}, "in_app": {"title": "hi"}}})
    };
    let normal = app
        .app
        .send_notification(&body("quiet-1", "normal"))
        .await
        .unwrap();
    let status = fanned_out(&app, &normal.id).await;
    let sms = status
        .deliveries
        .iter()
        .find(|d| d.channel == "sms")
        .unwrap();
    assert_eq!(
        (sms.status.as_str(), sms.reason.as_deref()),
        ("queued", Some("quiet_hours"))
    );
    let queues = app.app.queues().await.unwrap();
    assert_eq!(queues["sms"].scheduled, 1);
    // In-app does not interrupt anyone: it goes now.
    let in_app = eventually("the in-app delivery", || {
        let c = app.app.clone();
        let id = normal.id.clone();
        async move {
            let s = c.notification(&id).await.ok()?;
            s.deliveries
                .into_iter()
                .find(|d| d.channel == "in_app" && d.status == "delivered")
        }
    })
    .await;
    assert_eq!(in_app.status, "delivered");
    // High priority goes through quiet hours (and fails here: no SMS provider is set).
    let high = app
        .app
        .send_notification(&body("quiet-2", "high"))
        .await
        .unwrap();
    let status = settled(&app, &high.id).await;
    let sms = status
        .deliveries
        .iter()
        .find(|d| d.channel == "sms")
        .unwrap();
    assert_eq!(sms.status, "failed");
    assert!(
        sms.reason.as_deref().unwrap().contains("no sms provider"),
        "{sms:?}"
    );
}

async fn bad_sends_are_refused(app: TestApp) {
    let (alice, _) = app.user("alice").await;
    let cases = [
        json!({"to": {"user_ids": [alice.id]}, "content": {"in_app": {"title": "x"}}}),
        json!({"event_id": "", "to": {"user_ids": [alice.id]}, "content": {"in_app": {"title": "x"}}}),
        json!({"event_id": "a", "to": {"user_ids": []}, "content": {"in_app": {"title": "x"}}}),
        json!({"event_id": "a", "to": {"user_ids": [alice.id]}}),
        json!({"event_id": "a", "to": {"user_ids": [alice.id]}, "template": "nope"}),
        json!({"event_id": "a", "to": {"user_ids": [alice.id]}, "template": "t", "content": {"in_app": {"title": "x"}}}),
        json!({"event_id": "a", "to": {"user_ids": [alice.id]}, "content": {"in_app": {"title": "x"}}, "channels": ["sms"]}),
        json!({"event_id": "a", "to": {"user_ids": [alice.id]}, "content": {"in_app": {"title": "x"}}, "send_at": "tomorrow"}),
        json!({"event_id": "a", "to": {"topic": "no spaces allowed"}, "content": {"in_app": {"title": "x"}}}),
        json!({"event_id": "a", "to": {"user_ids": ["abc"]}, "content": {"in_app": {"title": "x"}}}),
        json!({"event_id": "a", "to": {"user_ids": [alice.id]}, "content": {"carrier_pigeon": {}}}),
    ];
    for body in cases {
        let err = app.app.send_notification(&body).await.unwrap_err();
        assert_eq!(err.status(), Some(422), "{body}: {err:?}");
    }
    // Users cannot send.
    let (_, bob) = app.user("bob").await;
    assert_problem(
        bob.send_notification(&in_app("x", &[&alice.id], "t"))
            .await
            .unwrap_err(),
        403,
        "forbidden",
    );
    // Another app cannot read the status.
    let accepted = app
        .app
        .send_notification(&in_app("mine", &[&alice.id], "t"))
        .await
        .unwrap();
    let other = app.second_app().await;
    assert_problem(
        other.notification(&accepted.id).await.unwrap_err(),
        404,
        "not_found",
    );
}

async fn queue_admin_shows_every_channel(app: TestApp) {
    let queues = app.app.queues().await.unwrap();
    for channel in ["push", "sms", "email", "in_app", "webhook"] {
        assert_eq!(queues[channel].depth, 0, "{channel}");
    }
    assert!(app
        .app
        .dead_letters(None, None)
        .await
        .unwrap()
        .items
        .is_empty());
    let text = app.client.metrics_text().await.unwrap();
    assert!(
        text.contains("tidings_notification_queue{channel=\"push\",state=\"depth\"} 0"),
        "{text}"
    );
}

on_both_backends!(
    in_app_reaches_the_inbox_and_read_state_counts,
    the_same_event_id_never_sends_twice,
    suppression_reasons_are_recorded,
    templates_render_with_locale_fallback,
    topics_fan_out_to_subscribers,
    scheduled_and_expired_sends,
    quiet_hours_hold_intrusive_channels,
    bad_sends_are_refused,
    queue_admin_shows_every_channel,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_suppresses_the_excess() {
    rate_limit(None).await;
}

/// The same limit held in Redis, as a cluster runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_in_redis_suppresses_the_excess() {
    let Ok(url) = std::env::var("TIDINGS_TEST_REDIS_URL") else {
        eprintln!("skipped: TIDINGS_TEST_REDIS_URL is not set");
        return;
    };
    rate_limit(Some(url)).await;
}

async fn rate_limit(redis_url: Option<String>) {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.notify.rate_limit_max = 2;
        c.redis_url = redis_url;
    })
    .await
    .unwrap();
    let (alice, alice_client) = app.user("alice").await;
    alice_client
        .update_me(&UpdateMe {
            phone: Some("+14155550100".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for i in 0..3 {
        let accepted = app
            .app
            .send_notification(&json!({"event_id": format!("rl-{i}"), "to": {"user_ids": [alice.id]}, "content": {"sms": {"text": "hi"}}}))
            .await
            .unwrap();
        let status = settled(&app, &accepted.id).await;
        reasons.push(status.deliveries[0].reason.clone().unwrap_or_default());
    }
    assert!(
        reasons[0].contains("no sms provider") && reasons[1].contains("no sms provider"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2], "rate_limited");
}
