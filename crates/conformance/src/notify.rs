//! Conformance tests of [`NotifyStore`]: the rules the pipeline relies on, checked
//! against every implementation.

use std::sync::Arc;

use serde_json::{json, Map};
use tidings_notify::model::{
    Audience, DeliveryRecord, DeliveryStatus, Frozen, NotificationRecord, SendPriority, Template,
};
use tidings_notify::store::{
    Accepted, DeliveryUpdate, InboxItemRecord, NotifyStore, TrackingEvent,
};
use tidings_platform::model::Channel;
use tidings_platform::Id;

type Store = Arc<dyn NotifyStore>;

static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_000_000);

fn id() -> Id {
    Id(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

const T0: i64 = 1_800_000_000_000;
/// Where a test does not care, fan-out rows planned `sending` are leased until then.
const LEASE: i64 = T0 + 60_000;

fn notification(app: Id, event: &str, send_at: Option<i64>) -> NotificationRecord {
    NotificationRecord {
        id: id(),
        app_id: app,
        event_id: event.into(),
        body: Frozen {
            to: Audience::Users {
                user_ids: vec![Id(1), Id(2)],
            },
            category: Some("orders".into()),
            channels: vec![Channel::Push, Channel::InApp],
            template: Template::default(),
            template_name: None,
            data: Map::new(),
            locale: Some("ko".into()),
            priority: SendPriority::High,
            collapse_key: Some("c".into()),
        },
        send_at_ms: send_at,
        expires_at_ms: None,
        created_at_ms: T0,
        fanned_out: false,
    }
}

fn delivery(
    n: &NotificationRecord,
    user: i64,
    channel: Channel,
    target: &str,
    due: i64,
) -> DeliveryRecord {
    DeliveryRecord {
        id: id(),
        notification_id: n.id,
        app_id: n.app_id,
        user_id: Id(user),
        channel,
        target: target.into(),
        status: DeliveryStatus::Queued,
        reason: None,
        attempts: 0,
        provider_message_id: None,
        due_at_ms: due,
        dead: false,
        created_at_ms: T0,
        updated_at_ms: T0,
    }
}

fn update(d: &DeliveryRecord, status: DeliveryStatus, now: i64) -> DeliveryUpdate {
    DeliveryUpdate {
        id: d.id,
        status,
        reason: None,
        provider_message_id: None,
        due_at_ms: d.due_at_ms,
        dead: false,
        now_ms: now,
    }
}

pub async fn event_ids_dedup_per_app(s: Store) {
    let (a, b) = (id(), id());
    let first = notification(a, "evt", None);
    assert_eq!(
        s.insert_notification(&first).await.unwrap(),
        Accepted::New(first.id)
    );
    let again = notification(a, "evt", None);
    assert_eq!(
        s.insert_notification(&again).await.unwrap(),
        Accepted::Duplicate(first.id)
    );
    let other_app = notification(b, "evt", None);
    assert_eq!(
        s.insert_notification(&other_app).await.unwrap(),
        Accepted::New(other_app.id)
    );
    let stored = s.notification(first.id).await.unwrap().unwrap();
    assert_eq!(stored, first, "the frozen body round-trips");
    assert!(s.notification(again.id).await.unwrap().is_none());
}

pub async fn fan_out_is_idempotent_and_keeps_its_cursor(s: Store) {
    let n = notification(id(), "fan", None);
    s.insert_notification(&n).await.unwrap();
    assert_eq!(s.fanout_cursor(n.id).await.unwrap(), None);
    let rows = vec![
        delivery(&n, 1, Channel::Push, "apns:aa", T0),
        delivery(&n, 1, Channel::InApp, "inbox", T0),
    ];
    s.write_fanout(n.id, &rows, Some(Id(1)), false, T0, LEASE)
        .await
        .unwrap();
    // A retried page (new ids, same targets) adds nothing.
    let retried = vec![delivery(&n, 1, Channel::Push, "apns:aa", T0)];
    s.write_fanout(n.id, &retried, Some(Id(1)), false, T0, LEASE)
        .await
        .unwrap();
    let stored = s.deliveries_of(n.id).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().any(|d| d.id == rows[0].id));
    assert_eq!(s.fanout_cursor(n.id).await.unwrap(), Some(Id(1)));
    s.write_fanout(n.id, &[], Some(Id(2)), true, T0, LEASE)
        .await
        .unwrap();
    assert!(s.notification(n.id).await.unwrap().unwrap().fanned_out);
}

pub async fn fan_out_writes_planned_sending_rows_claimed(s: Store) {
    let n = notification(id(), "handoff", None);
    s.insert_notification(&n).await.unwrap();
    let mut mine = delivery(&n, 1, Channel::Push, "apns:dd", T0);
    mine.status = DeliveryStatus::Sending;
    let queued = delivery(&n, 2, Channel::Push, "apns:ee", T0);
    let written = s
        .write_fanout(
            n.id,
            &[mine.clone(), queued.clone()],
            None,
            false,
            T0,
            T0 + 1_000,
        )
        .await
        .unwrap();
    assert_eq!(written, vec![mine.id, queued.id], "both new");
    let stored = s.delivery(mine.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts),
        (DeliveryStatus::Sending, 1)
    );
    assert!(
        s.claim(&[mine.id], T0 + 1, T0 + 2_000)
            .await
            .unwrap()
            .is_empty(),
        "the fan-out's caller holds it"
    );
    assert_eq!(
        s.due_deliveries(T0 + 500, T0 + 500, 100).await.unwrap(),
        vec![(Channel::Push, queued.id)],
        "a leased row is not dispatched"
    );
    // The caller died: once the lease runs out the row is dispatched and claimed.
    // (The other row was dispatched at T0 + 500, so is not stale before T0 + 400.)
    assert_eq!(
        s.due_deliveries(T0 + 1_001, T0 + 400, 100).await.unwrap(),
        vec![(Channel::Push, mine.id)]
    );
    let again = s.claim(&[mine.id], T0 + 1_002, T0 + 3_000).await.unwrap();
    assert_eq!(again[0].attempts, 2);
    // A page written again (new ids, same targets) writes nothing.
    let mut retried = delivery(&n, 1, Channel::Push, "apns:dd", T0);
    retried.status = DeliveryStatus::Sending;
    let written = s
        .write_fanout(n.id, &[retried], None, true, T0 + 5, T0 + 1_005)
        .await
        .unwrap();
    assert!(written.is_empty(), "{written:?}");
    assert_eq!(s.delivery(mine.id).await.unwrap().unwrap().attempts, 2);
}

pub async fn due_work_respects_send_at_and_redispatch(s: Store) {
    let later = notification(id(), "later", Some(T0 + 10_000));
    let now_n = notification(id(), "now", None);
    s.insert_notification(&later).await.unwrap();
    s.insert_notification(&now_n).await.unwrap();
    // A new immediate notification counts as dispatched at creation: only after
    // `stale_before` passes it is handed out again.
    assert!(!s
        .due_fanouts(T0 + 1, T0 - 1, 100)
        .await
        .unwrap()
        .contains(&now_n.id));
    let due = s.due_fanouts(T0 + 20_000, T0 + 1, 100).await.unwrap();
    assert!(
        due.contains(&later.id) && due.contains(&now_n.id),
        "{due:?}"
    );
    assert!(
        s.due_fanouts(T0 + 20_001, T0 + 1, 100)
            .await
            .unwrap()
            .is_empty(),
        "marked dispatched"
    );

    let n = notification(id(), "deliveries", None);
    s.insert_notification(&n).await.unwrap();
    let soon = delivery(&n, 1, Channel::Sms, "+15550001", T0 + 100);
    let now_d = delivery(&n, 2, Channel::Sms, "+15550002", T0);
    let mut done = delivery(&n, 3, Channel::Sms, "+15550003", T0);
    done.status = DeliveryStatus::Suppressed;
    // Written later than "now", so not dispatched at write time.
    s.write_fanout(
        n.id,
        &[soon.clone(), now_d.clone(), done.clone()],
        None,
        true,
        T0 - 1,
        LEASE,
    )
    .await
    .unwrap();
    let due = s.due_deliveries(T0 + 50, T0 + 50, 100).await.unwrap();
    assert_eq!(
        due,
        vec![(Channel::Sms, now_d.id)],
        "only due, unfinished rows"
    );
    // Dispatched at T0 + 50, so not stale before T0 + 40: only the newly due one.
    let due = s.due_deliveries(T0 + 200, T0 + 40, 100).await.unwrap();
    assert_eq!(
        due,
        vec![(Channel::Sms, soon.id)],
        "the other was dispatched since"
    );
    // Once its dispatch is stale it is handed out again (a lost queue message).
    let due = s.due_deliveries(T0 + 300, T0 + 60, 100).await.unwrap();
    assert_eq!(due, vec![(Channel::Sms, now_d.id)]);
}

pub async fn claims_are_exclusive_and_leases_expire(s: Store) {
    let n = notification(id(), "claim", None);
    s.insert_notification(&n).await.unwrap();
    let d = delivery(&n, 1, Channel::Push, "apns:bb", T0);
    let future = delivery(&n, 2, Channel::Push, "apns:cc", T0 + 60_000);
    s.write_fanout(n.id, &[d.clone(), future.clone()], None, true, T0, LEASE)
        .await
        .unwrap();
    let claimed = s
        .claim(&[d.id, future.id], T0 + 1, T0 + 1_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "not before it is due");
    assert_eq!(
        (claimed[0].status, claimed[0].attempts),
        (DeliveryStatus::Sending, 1)
    );
    assert!(
        s.claim(&[d.id], T0 + 2, T0 + 1_000)
            .await
            .unwrap()
            .is_empty(),
        "held by a live lease"
    );
    let again = s.claim(&[d.id], T0 + 1_001, T0 + 2_000).await.unwrap();
    assert_eq!(again.len(), 1, "an expired lease can be taken over");
    assert_eq!(again[0].attempts, 2);
    // A retry releases the lease and waits for its time.
    let mut retry = update(&again[0], DeliveryStatus::Queued, T0 + 1_002);
    retry.due_at_ms = T0 + 5_000;
    retry.reason = Some("503".into());
    s.complete(&[retry]).await.unwrap();
    assert!(s
        .claim(&[d.id], T0 + 1_003, T0 + 9_000)
        .await
        .unwrap()
        .is_empty());
    let third = s.claim(&[d.id], T0 + 5_000, T0 + 9_000).await.unwrap();
    assert_eq!(third[0].attempts, 3);
    let mut sent = update(&third[0], DeliveryStatus::Sent, T0 + 5_001);
    sent.provider_message_id = Some("apns-1".into());
    s.complete(&[sent]).await.unwrap();
    // A final row is never claimed again, and a later update keeps the provider id.
    assert!(s
        .claim(&[d.id], T0 + 99_000, T0 + 100_000)
        .await
        .unwrap()
        .is_empty());
    s.complete(&[update(&third[0], DeliveryStatus::Delivered, T0 + 6_000)])
        .await
        .unwrap();
    let stored = s.delivery(d.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.provider_message_id.as_deref()),
        (DeliveryStatus::Delivered, Some("apns-1"))
    );
}

pub async fn provider_ids_find_sms_and_email(s: Store) {
    let n = notification(id(), "pmid", None);
    s.insert_notification(&n).await.unwrap();
    let d = delivery(&n, 1, Channel::Sms, "+15550009", T0);
    s.write_fanout(n.id, std::slice::from_ref(&d), None, true, T0, LEASE)
        .await
        .unwrap();
    let mut u = update(&d, DeliveryStatus::Sent, T0);
    u.provider_message_id = Some("SM123".into());
    s.complete(&[u]).await.unwrap();
    assert_eq!(
        s.delivery_by_provider_id(Channel::Sms, "SM123")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(d.id)
    );
    assert!(s
        .delivery_by_provider_id(Channel::Email, "SM123")
        .await
        .unwrap()
        .is_none());
}

pub async fn inbox_pages_counts_and_reads(s: Store) {
    let (app, user) = (id(), id());
    let mut items = Vec::new();
    for i in 0..5 {
        items.push(InboxItemRecord {
            id: id(),
            app_id: app,
            user_id: user,
            notification_id: id(),
            title: Some(format!("t{i}")),
            body: None,
            url: None,
            data: json!({"i": i}),
            created_at_ms: T0 + i,
            read_at_ms: None,
        });
    }
    s.insert_inbox(&items).await.unwrap();
    s.insert_inbox(&items[..1]).await.unwrap();
    let first = s.inbox(app, user, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![items[4].id, items[3].id]
    );
    let next = s.inbox(app, user, Some(items[3].id), 10).await.unwrap();
    assert_eq!(next.len(), 3);
    assert_eq!(next[0].data, json!({"i": 2}));
    assert_eq!(s.unread_count(app, user).await.unwrap(), 5);
    assert!(s.mark_read(app, user, items[0].id, T0 + 100).await.unwrap());
    assert!(s.mark_read(app, user, items[0].id, T0 + 200).await.unwrap());
    assert_eq!(
        s.inbox(app, user, None, 10)
            .await
            .unwrap()
            .last()
            .unwrap()
            .read_at_ms,
        Some(T0 + 100)
    );
    assert_eq!(s.unread_count(app, user).await.unwrap(), 4);
    assert!(
        !s.mark_read(id(), user, items[1].id, T0).await.unwrap(),
        "another app"
    );
    assert!(
        s.inbox(app, id(), None, 10).await.unwrap().is_empty(),
        "another user"
    );
}

pub async fn templates_topics_and_provider_settings(s: Store) {
    let (a, b) = (id(), id());
    let t: Template =
        serde_json::from_value(json!({"channels": {"sms": {"text": "hi {{ x }}"}}})).unwrap();
    s.put_template(a, "welcome", &t, T0).await.unwrap();
    assert_eq!(s.template(a, "welcome").await.unwrap(), Some(t));
    assert_eq!(s.template(b, "welcome").await.unwrap(), None);
    assert!(s.delete_template(a, "welcome").await.unwrap());
    assert!(!s.delete_template(a, "welcome").await.unwrap());

    for u in [5, 3, 9] {
        s.subscribe(a, Id(u), "deals", T0).await.unwrap();
    }
    s.subscribe(a, Id(3), "deals", T0).await.unwrap();
    s.subscribe(b, Id(4), "deals", T0).await.unwrap();
    assert_eq!(
        s.topic_members(a, "deals", None, 2).await.unwrap(),
        vec![Id(3), Id(5)]
    );
    assert_eq!(
        s.topic_members(a, "deals", Some(Id(5)), 10).await.unwrap(),
        vec![Id(9)]
    );
    assert!(s.unsubscribe(a, Id(5), "deals").await.unwrap());
    assert_eq!(
        s.topic_members(a, "deals", None, 10).await.unwrap(),
        vec![Id(3), Id(9)]
    );

    let settings = json!({"url": "https://x.example/hook", "secret": "s3cret-s3cret-s3cret"});
    s.put_provider(a, "webhook", &settings, T0).await.unwrap();
    assert_eq!(
        s.provider(a, "webhook").await.unwrap(),
        Some((settings.clone(), T0))
    );
    s.put_provider(a, "webhook", &settings, T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        s.provider(a, "webhook").await.unwrap().map(|x| x.1),
        Some(T0 + 1)
    );
    assert_eq!(s.provider(b, "webhook").await.unwrap(), None);
    assert!(s.delete_provider(a, "webhook").await.unwrap());
    assert_eq!(s.provider(a, "webhook").await.unwrap(), None);
}

pub async fn tracking_stats_queues_and_dead_letters(s: Store) {
    let n = notification(id(), "stats", None);
    let app = n.app_id;
    s.insert_notification(&n).await.unwrap();
    let sent = delivery(&n, 1, Channel::Email, "a@x.io", T0);
    let dead = delivery(&n, 2, Channel::Email, "b@x.io", T0);
    let waiting = delivery(&n, 3, Channel::Email, "c@x.io", T0 + 100_000);
    let mut suppressed = delivery(&n, 4, Channel::Email, "", T0);
    suppressed.status = DeliveryStatus::Suppressed;
    suppressed.reason = Some("no_contact".into());
    let rows = [
        sent.clone(),
        dead.clone(),
        waiting.clone(),
        suppressed.clone(),
    ];
    s.write_fanout(n.id, &rows, None, true, T0, LEASE)
        .await
        .unwrap();
    s.claim(&[sent.id, dead.id], T0, T0 + 1_000).await.unwrap();
    s.complete(&[update(&sent, DeliveryStatus::Sent, T0 + 1)])
        .await
        .unwrap();
    let mut gave_up = update(&dead, DeliveryStatus::Failed, T0 + 2);
    gave_up.dead = true;
    s.complete(&[gave_up]).await.unwrap();
    assert!(s
        .record_event(app, n.id, Id(1), TrackingEvent::Opened, T0 + 3)
        .await
        .unwrap());
    assert!(
        !s.record_event(app, n.id, Id(4), TrackingEvent::Opened, T0 + 3)
            .await
            .unwrap(),
        "suppressed rows are not opened"
    );
    let counts = s.channel_counts(app, T0 - 1).await.unwrap();
    let email = counts
        .iter()
        .find(|c| c.channel == Some(Channel::Email))
        .unwrap();
    assert_eq!(email.total, 4);
    assert_eq!(email.opened, 1);
    assert_eq!(
        email.suppressed_by_reason,
        vec![("no_contact".to_string(), 1)]
    );
    let count_of = |st: DeliveryStatus| {
        email
            .by_status
            .iter()
            .find(|(x, _)| *x == st)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        (
            count_of(DeliveryStatus::Sent),
            count_of(DeliveryStatus::Failed)
        ),
        (1, 1)
    );
    assert!(
        s.channel_counts(app, T0 + 1).await.unwrap().is_empty(),
        "since filters by creation"
    );
    let queues = s.queue_counts(Some(app), T0 + 10).await.unwrap();
    let q = queues
        .iter()
        .find(|q| q.channel == Some(Channel::Email))
        .unwrap();
    assert_eq!((q.depth, q.scheduled, q.dead, q.in_flight), (0, 1, 1, 0));
    let letters = s.dead_letters(app, None, 10).await.unwrap();
    assert_eq!(
        letters.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![dead.id]
    );
    assert!(s.revive(app, dead.id, T0 + 20).await.unwrap());
    assert!(!s.revive(app, dead.id, T0 + 21).await.unwrap());
    let revived = s.delivery(dead.id).await.unwrap().unwrap();
    assert_eq!(
        (revived.status, revived.attempts, revived.dead),
        (DeliveryStatus::Queued, 0, false)
    );
    let q = s.queue_counts(None, T0 + 20).await.unwrap();
    assert!(q
        .iter()
        .any(|q| q.channel == Some(Channel::Email) && q.depth >= 1));
}
