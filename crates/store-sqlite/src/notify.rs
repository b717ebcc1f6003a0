//! The notification service's tables on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;
use tidings_notify::model::{
    channel_from_str, DeliveryRecord, DeliveryStatus, NotificationRecord, Template,
};
use tidings_notify::store::{
    Accepted, ChannelCounts, DeliveryUpdate, InboxItemRecord, NotifyStore, QueueCounts,
    TrackingEvent,
};
use tidings_platform::model::Channel;
use tidings_platform::store::StoreResult;
use tidings_platform::{Id, StoreError};

use crate::error::map;
use crate::SqliteStore;

const DELIVERY_COLUMNS: &str =
    "id, notification_id, app_id, user_id, channel, target, status, reason, attempts, \
     provider_message_id, due_at, dead, created_at, updated_at";

fn bad_value(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        what.to_owned().into(),
    )
}

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let channel: String = r.get(4)?;
    let status: String = r.get(6)?;
    Ok(DeliveryRecord {
        id: Id(r.get(0)?),
        notification_id: Id(r.get(1)?),
        app_id: Id(r.get(2)?),
        user_id: Id(r.get(3)?),
        channel: channel_from_str(&channel).ok_or_else(|| bad_value(4, "unknown channel"))?,
        target: r.get(5)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| bad_value(6, "unknown status"))?,
        reason: r.get(7)?,
        attempts: r.get(8)?,
        provider_message_id: r.get(9)?,
        due_at_ms: r.get(10)?,
        dead: r.get::<_, i64>(11)? != 0,
        created_at_ms: r.get(12)?,
        updated_at_ms: r.get(13)?,
    })
}

fn notification_from_row(r: &Row<'_>) -> rusqlite::Result<NotificationRecord> {
    let body: String = r.get(3)?;
    Ok(NotificationRecord {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        event_id: r.get(2)?,
        body: serde_json::from_str(&body).map_err(|_| bad_value(3, "notification body"))?,
        send_at_ms: r.get(4)?,
        expires_at_ms: r.get(5)?,
        created_at_ms: r.get(6)?,
        fanned_out: r.get::<_, i64>(7)? != 0,
    })
}

fn inbox_from_row(r: &Row<'_>) -> rusqlite::Result<InboxItemRecord> {
    let data: String = r.get(7)?;
    Ok(InboxItemRecord {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        user_id: Id(r.get(2)?),
        notification_id: Id(r.get(3)?),
        title: r.get(4)?,
        body: r.get(5)?,
        url: r.get(6)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        created_at_ms: r.get(8)?,
        read_at_ms: r.get(9)?,
    })
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("json: {e}"))
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> StoreResult<Vec<T>> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(map)
}

fn deliveries_where(
    c: &Connection,
    clause: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<DeliveryRecord>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {clause}"
        ))
        .map_err(map)?;
    let rows = stmt.query_map(params, delivery_from_row).map_err(map)?;
    collect(rows)
}

#[async_trait]
impl NotifyStore for SqliteStore {
    async fn insert_notification(&self, n: &NotificationRecord) -> StoreResult<Accepted> {
        let body = serde_json::to_string(&n.body).map_err(json_err)?;
        let n = n.clone();
        self.writer
            .write(move |c| {
                let inserted = c
                    .prepare_cached(
                        "INSERT INTO notifications (id, app_id, event_id, body, send_at, expires_at, created_at, dispatched_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN COALESCE(?5, 0) <= ?7 THEN ?7 END) \
                         ON CONFLICT (app_id, event_id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![n.id.0, n.app_id.0, n.event_id, body, n.send_at_ms, n.expires_at_ms, n.created_at_ms])
                    })
                    .map_err(map)?;
                if inserted == 1 {
                    return Ok(Accepted::New(n.id));
                }
                let first: i64 = c
                    .prepare_cached("SELECT id FROM notifications WHERE app_id = ?1 AND event_id = ?2")
                    .and_then(|mut s| s.query_row(params![n.app_id.0, n.event_id], |r| r.get(0)))
                    .map_err(map)?;
                Ok(Accepted::Duplicate(Id(first)))
            })
            .await
    }

    async fn notification(&self, id: Id) -> StoreResult<Option<NotificationRecord>> {
        self.readers
            .read(move |c| {
                c.prepare_cached(
                    "SELECT id, app_id, event_id, body, send_at, expires_at, created_at, fanned_out \
                     FROM notifications WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id.0], notification_from_row).optional())
                .map_err(map)
            })
            .await
    }

    async fn deliveries_of(&self, notification: Id) -> StoreResult<Vec<DeliveryRecord>> {
        self.readers
            .read(move |c| {
                deliveries_where(
                    c,
                    "notification_id = ?1 ORDER BY user_id, channel, id",
                    [notification.0],
                )
            })
            .await
    }

    async fn fanout_cursor(&self, notification: Id) -> StoreResult<Option<Id>> {
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT fanout_cursor FROM notifications WHERE id = ?1")
                    .and_then(|mut s| {
                        s.query_row([notification.0], |r| r.get::<_, Option<i64>>(0))
                            .optional()
                    })
                    .map(|v| v.flatten().map(Id))
                    .map_err(map)
            })
            .await
    }

    async fn write_fanout(
        &self,
        notification: Id,
        deliveries: &[DeliveryRecord],
        cursor: Option<Id>,
        done: bool,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<Vec<Id>> {
        let deliveries = deliveries.to_vec();
        self.writer
            .write_idempotent(move |c| {
                let mut insert = c
                    .prepare_cached(
                        "INSERT INTO deliveries (id, notification_id, app_id, user_id, channel, target, status, reason, \
                           attempts, due_at, lease_until, dispatched_at, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13) \
                         ON CONFLICT (notification_id, user_id, channel, target) DO NOTHING",
                    )
                    .map_err(map)?;
                let mut written = Vec::with_capacity(deliveries.len());
                for d in &deliveries {
                    let claimed = d.status == DeliveryStatus::Sending;
                    // Due now: the caller enqueues it (or attempts it) right after this
                    // commit.
                    let dispatched = (claimed || (d.status == DeliveryStatus::Queued && d.due_at_ms <= now_ms))
                        .then_some(now_ms);
                    let inserted = insert
                        .execute(params![
                            d.id.0,
                            d.notification_id.0,
                            d.app_id.0,
                            d.user_id.0,
                            d.channel.as_str(),
                            d.target,
                            d.status.as_str(),
                            d.reason,
                            if claimed { 1 } else { 0 },
                            d.due_at_ms,
                            claimed.then_some(lease_until_ms),
                            dispatched,
                            d.created_at_ms
                        ])
                        .map_err(map)?;
                    if inserted == 1 {
                        written.push(d.id);
                    }
                }
                c.prepare_cached("UPDATE notifications SET fanout_cursor = ?2, fanned_out = ?3, dispatched_at = ?4 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![notification.0, cursor.map(|i| i.0), done as i64, now_ms]))
                    .map_err(map)?;
                Ok(written)
            })
            .await
    }

    async fn subscribe(&self, app: Id, user: Id, topic: &str, now_ms: i64) -> StoreResult<()> {
        let topic = topic.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO topic_subscriptions (app_id, topic, user_id, created_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![app.0, topic, user.0, now_ms]))
                .map(drop)
                .map_err(map)
            })
            .await
    }

    async fn unsubscribe(&self, app: Id, user: Id, topic: &str) -> StoreResult<bool> {
        let topic = topic.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM topic_subscriptions WHERE app_id = ?1 AND topic = ?2 AND user_id = ?3")
                    .and_then(|mut s| s.execute(params![app.0, topic, user.0]))
                    .map(|n| n > 0)
                    .map_err(map)
            })
            .await
    }

    async fn topic_members(
        &self,
        app: Id,
        topic: &str,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Id>> {
        let topic = topic.to_owned();
        let after = after.map_or(-1, |i| i.0);
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT user_id FROM topic_subscriptions WHERE app_id = ?1 AND topic = ?2 AND user_id > ?3 \
                         ORDER BY user_id LIMIT ?4",
                    )
                    .map_err(map)?;
                let rows = stmt.query_map(params![app.0, topic, after, limit], |r| r.get(0).map(Id)).map_err(map)?;
                collect(rows)
            })
            .await
    }

    async fn due_fanouts(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Id>> {
        self.writer
            .write_idempotent(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE notifications SET dispatched_at = ?1 WHERE id IN ( \
                           SELECT id FROM notifications WHERE fanned_out = 0 AND COALESCE(send_at, 0) <= ?1 \
                             AND COALESCE(dispatched_at, 0) < ?2 LIMIT ?3) \
                         RETURNING id",
                    )
                    .map_err(map)?;
                let rows = stmt.query_map(params![now_ms, stale_before_ms, limit], |r| r.get(0).map(Id)).map_err(map)?;
                collect(rows)
            })
            .await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Channel, Id)>> {
        self.writer
            .write_idempotent(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE deliveries SET dispatched_at = ?1 WHERE id IN ( \
                           SELECT id FROM deliveries WHERE status IN ('queued', 'sending') AND dead = 0 \
                             AND COALESCE(dispatched_at, 0) < ?2 AND due_at <= ?1 \
                             AND COALESCE(lease_until, 0) <= ?1 \
                           ORDER BY COALESCE(dispatched_at, 0), due_at LIMIT ?3) \
                         RETURNING channel, id",
                    )
                    .map_err(map)?;
                let rows = stmt
                    .query_map(params![now_ms, stale_before_ms, limit], |r| {
                        let channel: String = r.get(0)?;
                        Ok((channel_from_str(&channel).ok_or_else(|| bad_value(0, "unknown channel"))?, Id(r.get(1)?)))
                    })
                    .map_err(map)?;
                collect(rows)
            })
            .await
    }

    async fn claim(
        &self,
        ids: &[Id],
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
        self.writer
            .write_idempotent(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = ?1, updated_at = ?2 \
                         WHERE id IN rarray(?3) AND status IN ('queued', 'sending') AND dead = 0 \
                           AND COALESCE(lease_until, 0) <= ?2 AND due_at <= ?2 \
                         RETURNING {DELIVERY_COLUMNS}"
                    ))
                    .map_err(map)?;
                let rows = stmt
                    .query_map(params![lease_until_ms, now_ms, crate::id_array(ids)], delivery_from_row)
                    .map_err(map)?;
                collect(rows)
            })
            .await
    }

    async fn complete(&self, updates: &[DeliveryUpdate]) -> StoreResult<()> {
        let updates = updates.to_vec();
        self.writer
            .write_idempotent(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE deliveries SET status = ?2, reason = ?3, provider_message_id = COALESCE(?4, provider_message_id), \
                           due_at = ?5, dead = ?6, lease_until = NULL, dispatched_at = NULL, updated_at = ?7 \
                         WHERE id = ?1",
                    )
                    .map_err(map)?;
                for u in updates {
                    stmt.execute(params![
                        u.id.0,
                        u.status.as_str(),
                        u.reason,
                        u.provider_message_id,
                        u.due_at_ms,
                        u.dead as i64,
                        u.now_ms
                    ])
                    .map_err(map)?;
                }
                Ok(())
            })
            .await
    }

    async fn delivery(&self, id: Id) -> StoreResult<Option<DeliveryRecord>> {
        self.readers
            .read(move |c| deliveries_where(c, "id = ?1", [id.0]).map(|mut v| v.pop()))
            .await
    }

    async fn delivery_by_provider_id(
        &self,
        channel: Channel,
        provider_message_id: &str,
    ) -> StoreResult<Option<DeliveryRecord>> {
        let pmid = provider_message_id.to_owned();
        self.readers
            .read(move |c| {
                deliveries_where(
                    c,
                    "channel = ?1 AND provider_message_id = ?2 AND provider_message_id IS NOT NULL \
                     AND channel IN ('sms', 'email') LIMIT 1",
                    params![channel.as_str(), pmid],
                )
                .map(|mut v| v.pop())
            })
            .await
    }

    async fn insert_inbox(&self, items: &[InboxItemRecord]) -> StoreResult<()> {
        let items = items.to_vec();
        self.writer
            .write_idempotent(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "INSERT INTO inbox (id, app_id, user_id, notification_id, title, body, url, data, created_at, read_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL) ON CONFLICT (id) DO NOTHING",
                    )
                    .map_err(map)?;
                for i in items {
                    stmt.execute(params![
                        i.id.0,
                        i.app_id.0,
                        i.user_id.0,
                        i.notification_id.0,
                        i.title,
                        i.body,
                        i.url,
                        i.data.to_string(),
                        i.created_at_ms
                    ])
                    .map_err(map)?;
                }
                Ok(())
            })
            .await
    }

    async fn inbox(
        &self,
        app: Id,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<InboxItemRecord>> {
        let before = before.map_or(i64::MAX, |i| i.0);
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT id, app_id, user_id, notification_id, title, body, url, data, created_at, read_at \
                         FROM inbox WHERE app_id = ?1 AND user_id = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
                    )
                    .map_err(map)?;
                let rows = stmt.query_map(params![app.0, user.0, before, limit], inbox_from_row).map_err(map)?;
                collect(rows)
            })
            .await
    }

    async fn unread_count(&self, app: Id, user: Id) -> StoreResult<u64> {
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT COUNT(*) FROM inbox WHERE app_id = ?1 AND user_id = ?2 AND read_at IS NULL")
                    .and_then(|mut s| s.query_row(params![app.0, user.0], |r| r.get::<_, i64>(0)))
                    .map(|n| n as u64)
                    .map_err(map)
            })
            .await
    }

    async fn mark_read(&self, app: Id, user: Id, item: Id, now_ms: i64) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                // Marking an already-read item again succeeds and keeps the first time.
                c.prepare_cached(
                    "UPDATE inbox SET read_at = COALESCE(read_at, ?4) WHERE app_id = ?1 AND user_id = ?2 AND id = ?3",
                )
                .and_then(|mut s| s.execute(params![app.0, user.0, item.0, now_ms]))
                .map(|n| n > 0)
                .map_err(map)
            })
            .await
    }

    async fn put_template(
        &self,
        app: Id,
        name: &str,
        template: &Template,
        now_ms: i64,
    ) -> StoreResult<()> {
        let body = serde_json::to_string(template).map_err(json_err)?;
        let name = name.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO templates (app_id, name, body, updated_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (app_id, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute(params![app.0, name, body, now_ms]))
                .map(drop)
                .map_err(map)
            })
            .await
    }

    async fn template(&self, app: Id, name: &str) -> StoreResult<Option<Template>> {
        let name = name.to_owned();
        let body: Option<String> = self
            .readers
            .read(move |c| {
                c.prepare_cached("SELECT body FROM templates WHERE app_id = ?1 AND name = ?2")
                    .and_then(|mut s| s.query_row(params![app.0, name], |r| r.get(0)).optional())
                    .map_err(map)
            })
            .await?;
        body.map(|b| serde_json::from_str(&b).map_err(json_err))
            .transpose()
    }

    async fn delete_template(&self, app: Id, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM templates WHERE app_id = ?1 AND name = ?2")
                    .and_then(|mut s| s.execute(params![app.0, name]))
                    .map(|n| n > 0)
                    .map_err(map)
            })
            .await
    }

    async fn put_provider(
        &self,
        app: Id,
        channel: &str,
        settings: &Value,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (channel, body) = (channel.to_owned(), settings.to_string());
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO provider_settings (app_id, channel, body, updated_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (app_id, channel) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute(params![app.0, channel, body, now_ms]))
                .map(drop)
                .map_err(map)
            })
            .await
    }

    async fn provider(&self, app: Id, channel: &str) -> StoreResult<Option<(Value, i64)>> {
        let channel = channel.to_owned();
        let row: Option<(String, i64)> = self
            .readers
            .read(move |c| {
                c.prepare_cached("SELECT body, updated_at FROM provider_settings WHERE app_id = ?1 AND channel = ?2")
                    .and_then(|mut s| s.query_row(params![app.0, channel], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                    .map_err(map)
            })
            .await?;
        row.map(|(b, t)| serde_json::from_str(&b).map(|v| (v, t)).map_err(json_err))
            .transpose()
    }

    async fn delete_provider(&self, app: Id, channel: &str) -> StoreResult<bool> {
        let channel = channel.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM provider_settings WHERE app_id = ?1 AND channel = ?2")
                    .and_then(|mut s| s.execute(params![app.0, channel]))
                    .map(|n| n > 0)
                    .map_err(map)
            })
            .await
    }

    async fn record_event(
        &self,
        app: Id,
        notification: Id,
        user: Id,
        event: TrackingEvent,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let column = match event {
            TrackingEvent::Opened => "opened_at",
            TrackingEvent::Clicked => "clicked_at",
        };
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "UPDATE deliveries SET {column} = COALESCE({column}, ?4) \
                     WHERE app_id = ?1 AND notification_id = ?2 AND user_id = ?3 AND status != 'suppressed'"
                ))
                .and_then(|mut s| s.execute(params![app.0, notification.0, user.0, now_ms]))
                .map(|n| n > 0)
                .map_err(map)
            })
            .await
    }

    async fn channel_counts(&self, app: Id, since_ms: i64) -> StoreResult<Vec<ChannelCounts>> {
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT channel, status, COALESCE(reason, ''), COUNT(*), COUNT(opened_at), COUNT(clicked_at) \
                         FROM deliveries WHERE app_id = ?1 AND created_at >= ?2 GROUP BY channel, status, reason",
                    )
                    .map_err(map)?;
                let rows = stmt
                    .query_map(params![app.0, since_ms], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)? as u64,
                            r.get::<_, i64>(4)? as u64,
                            r.get::<_, i64>(5)? as u64,
                        ))
                    })
                    .map_err(map)?;
                let rows = collect(rows)?;
                Ok(tidings_notify::store::fold_counts(rows))
            })
            .await
    }

    async fn queue_counts(&self, app: Option<Id>, now_ms: i64) -> StoreResult<Vec<QueueCounts>> {
        let app = app.map(|a| a.0);
        self.readers
            .read(move |c| {
                let mut open = c
                    .prepare_cached(
                        "SELECT channel, \
                           SUM(CASE WHEN due_at <= ?2 AND COALESCE(lease_until, 0) <= ?2 THEN 1 ELSE 0 END), \
                           SUM(CASE WHEN COALESCE(lease_until, 0) > ?2 THEN 1 ELSE 0 END), \
                           MIN(CASE WHEN due_at <= ?2 AND COALESCE(lease_until, 0) <= ?2 THEN due_at END), \
                           SUM(CASE WHEN attempts > 0 AND COALESCE(lease_until, 0) <= ?2 THEN 1 ELSE 0 END), \
                           SUM(CASE WHEN due_at > ?2 THEN 1 ELSE 0 END) \
                         FROM deliveries WHERE status IN ('queued', 'sending') AND dead = 0 \
                           AND (?1 IS NULL OR app_id = ?1) GROUP BY channel",
                    )
                    .map_err(map)?;
                let rows = open
                    .query_map(params![app, now_ms], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)? as u64,
                            r.get::<_, i64>(2)? as u64,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, i64>(4)? as u64,
                            r.get::<_, i64>(5)? as u64,
                        ))
                    })
                    .map_err(map)?;
                let mut out: Vec<QueueCounts> = Vec::new();
                for (channel, depth, in_flight, oldest, retrying, scheduled) in collect(rows)? {
                    out.push(QueueCounts {
                        channel: channel_from_str(&channel),
                        depth,
                        in_flight,
                        oldest_age_ms: oldest.map_or(0, |t| (now_ms - t).max(0)),
                        retrying,
                        dead: 0,
                        scheduled,
                    });
                }
                let mut dead = c
                    .prepare_cached(
                        "SELECT channel, COUNT(*) FROM deliveries WHERE dead = 1 AND (?1 IS NULL OR app_id = ?1) GROUP BY channel",
                    )
                    .map_err(map)?;
                let rows = dead
                    .query_map(params![app], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                    .map_err(map)?;
                for (channel, n) in collect(rows)? {
                    let channel = channel_from_str(&channel);
                    match out.iter_mut().find(|q| q.channel == channel) {
                        Some(q) => q.dead = n,
                        None => out.push(QueueCounts {
                            channel,
                            dead: n,
                            ..Default::default()
                        }),
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn dead_letters(
        &self,
        app: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let before = before.map_or(i64::MAX, |i| i.0);
        self.readers
            .read(move |c| {
                deliveries_where(
                    c,
                    "app_id = ?1 AND dead = 1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                    params![app.0, before, limit],
                )
            })
            .await
    }

    async fn revive(&self, app: Id, delivery: Id, now_ms: i64) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE deliveries SET dead = 0, status = 'queued', attempts = 0, reason = NULL, due_at = ?3, \
                       lease_until = NULL, dispatched_at = NULL, updated_at = ?3 \
                     WHERE app_id = ?1 AND id = ?2 AND dead = 1",
                )
                .and_then(|mut s| s.execute(params![app.0, delivery.0, now_ms]))
                .map(|n| n > 0)
                .map_err(map)
            })
            .await
    }
}
