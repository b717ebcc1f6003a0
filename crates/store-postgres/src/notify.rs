//! The notification service's tables on PostgreSQL. Queries that hand out work
//! (`due_*`, `claim`) lock with `SKIP LOCKED`, so several nodes share the work
//! without waiting on each other.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
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
use crate::PostgresStore;

const DELIVERY_COLUMNS: &str =
    "id, notification_id, app_id, user_id, channel, target, status, reason, attempts, \
     provider_message_id, due_at, dead, created_at, updated_at";

fn decode_err(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(what.to_owned().into())
}

fn delivery_from_row(r: &PgRow) -> Result<DeliveryRecord, sqlx::Error> {
    let channel: String = r.try_get(4)?;
    let status: String = r.try_get(6)?;
    let attempts: i32 = r.try_get(8)?;
    Ok(DeliveryRecord {
        id: Id(r.try_get(0)?),
        notification_id: Id(r.try_get(1)?),
        app_id: Id(r.try_get(2)?),
        user_id: Id(r.try_get(3)?),
        channel: channel_from_str(&channel).ok_or_else(|| decode_err("unknown channel"))?,
        target: r.try_get(5)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| decode_err("unknown status"))?,
        reason: r.try_get(7)?,
        attempts: attempts.max(0) as u32,
        provider_message_id: r.try_get(9)?,
        due_at_ms: r.try_get(10)?,
        dead: r.try_get(11)?,
        created_at_ms: r.try_get(12)?,
        updated_at_ms: r.try_get(13)?,
    })
}

fn notification_from_row(r: &PgRow) -> Result<NotificationRecord, sqlx::Error> {
    let body: Value = r.try_get(3)?;
    Ok(NotificationRecord {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        event_id: r.try_get(2)?,
        body: serde_json::from_value(body)
            .map_err(|e| decode_err(&format!("notification body: {e}")))?,
        send_at_ms: r.try_get(4)?,
        expires_at_ms: r.try_get(5)?,
        created_at_ms: r.try_get(6)?,
        fanned_out: r.try_get(7)?,
    })
}

fn inbox_from_row(r: &PgRow) -> Result<InboxItemRecord, sqlx::Error> {
    Ok(InboxItemRecord {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        user_id: Id(r.try_get(2)?),
        notification_id: Id(r.try_get(3)?),
        title: r.try_get(4)?,
        body: r.try_get(5)?,
        url: r.try_get(6)?,
        data: r.try_get(7)?,
        created_at_ms: r.try_get(8)?,
        read_at_ms: r.try_get(9)?,
    })
}

fn all<T>(rows: &[PgRow], f: fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
    rows.iter().map(|r| f(r).map_err(map)).collect()
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("json: {e}"))
}

fn count(r: &PgRow, i: usize) -> Result<u64, sqlx::Error> {
    Ok(r.try_get::<Option<i64>, _>(i)?.unwrap_or(0).max(0) as u64)
}

#[async_trait]
impl NotifyStore for PostgresStore {
    async fn insert_notification(&self, n: &NotificationRecord) -> StoreResult<Accepted> {
        let body = serde_json::to_value(&n.body).map_err(json_err)?;
        let inserted = sqlx::query(
            "INSERT INTO notifications (id, app_id, event_id, body, send_at, expires_at, created_at, dispatched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN COALESCE($5, 0) <= $7 THEN $7 END) \
             ON CONFLICT (app_id, event_id) DO NOTHING RETURNING id",
        )
        .bind(n.id.0)
        .bind(n.app_id.0)
        .bind(&n.event_id)
        .bind(body)
        .bind(n.send_at_ms)
        .bind(n.expires_at_ms)
        .bind(n.created_at_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        if inserted.is_some() {
            return Ok(Accepted::New(n.id));
        }
        let first: i64 =
            sqlx::query_scalar("SELECT id FROM notifications WHERE app_id = $1 AND event_id = $2")
                .bind(n.app_id.0)
                .bind(&n.event_id)
                .fetch_one(&self.pool)
                .await
                .map_err(map)?;
        Ok(Accepted::Duplicate(Id(first)))
    }

    async fn notification(&self, id: Id) -> StoreResult<Option<NotificationRecord>> {
        let row = sqlx::query(
            "SELECT id, app_id, event_id, body, send_at, expires_at, created_at, fanned_out FROM notifications WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref()
            .map(notification_from_row)
            .transpose()
            .map_err(map)
    }

    async fn deliveries_of(&self, notification: Id) -> StoreResult<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = $1 ORDER BY user_id, channel, id"
        ))
        .bind(notification.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        all(&rows, delivery_from_row)
    }

    async fn fanout_cursor(&self, notification: Id) -> StoreResult<Option<Id>> {
        let cursor: Option<Option<i64>> =
            sqlx::query_scalar("SELECT fanout_cursor FROM notifications WHERE id = $1")
                .bind(notification.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?;
        Ok(cursor.flatten().map(Id))
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
        let mut tx = self.pool.begin().await.map_err(map)?;
        let mut written = Vec::new();
        if !deliveries.is_empty() {
            let ids: Vec<i64> = deliveries.iter().map(|d| d.id.0).collect();
            let notifications: Vec<i64> = deliveries.iter().map(|d| d.notification_id.0).collect();
            let apps: Vec<i64> = deliveries.iter().map(|d| d.app_id.0).collect();
            let users: Vec<i64> = deliveries.iter().map(|d| d.user_id.0).collect();
            let channels: Vec<&str> = deliveries.iter().map(|d| d.channel.as_str()).collect();
            let targets: Vec<&str> = deliveries.iter().map(|d| d.target.as_str()).collect();
            let statuses: Vec<&str> = deliveries.iter().map(|d| d.status.as_str()).collect();
            let reasons: Vec<Option<&str>> =
                deliveries.iter().map(|d| d.reason.as_deref()).collect();
            let due: Vec<i64> = deliveries.iter().map(|d| d.due_at_ms).collect();
            // Due now: the caller enqueues it (or, claimed, attempts it) right after
            // this commit.
            let dispatched: Vec<Option<i64>> = deliveries
                .iter()
                .map(|d| {
                    (d.status == DeliveryStatus::Sending
                        || (d.status == DeliveryStatus::Queued && d.due_at_ms <= now_ms))
                        .then_some(now_ms)
                })
                .collect();
            let created: Vec<i64> = deliveries.iter().map(|d| d.created_at_ms).collect();
            written = sqlx::query_scalar(
                "INSERT INTO deliveries (id, notification_id, app_id, user_id, channel, target, status, reason, \
                   attempts, due_at, lease_until, dispatched_at, created_at, updated_at) \
                 SELECT u.id, u.nid, u.app, u.usr, u.ch, u.tg, u.st, u.rs, \
                   CASE WHEN u.st = 'sending' THEN 1 ELSE 0 END, u.due, \
                   CASE WHEN u.st = 'sending' THEN $12::bigint END, u.disp, u.cr, u.cr \
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], \
                             $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[]) \
                   AS u(id, nid, app, usr, ch, tg, st, rs, due, disp, cr) \
                 ON CONFLICT (notification_id, user_id, channel, target) DO NOTHING \
                 RETURNING id",
            )
            .bind(&ids)
            .bind(&notifications)
            .bind(&apps)
            .bind(&users)
            .bind(&channels)
            .bind(&targets)
            .bind(&statuses)
            .bind(&reasons)
            .bind(&due)
            .bind(&dispatched)
            .bind(&created)
            .bind(lease_until_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?
            .into_iter()
            .map(Id)
            .collect();
        }
        sqlx::query("UPDATE notifications SET fanout_cursor = $2, fanned_out = $3, dispatched_at = $4 WHERE id = $1")
            .bind(notification.0)
            .bind(cursor.map(|i| i.0))
            .bind(done)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(written)
    }

    async fn subscribe(&self, app: Id, user: Id, topic: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO topic_subscriptions (app_id, topic, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(app.0)
        .bind(topic)
        .bind(user.0)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    async fn unsubscribe(&self, app: Id, user: Id, topic: &str) -> StoreResult<bool> {
        sqlx::query(
            "DELETE FROM topic_subscriptions WHERE app_id = $1 AND topic = $2 AND user_id = $3",
        )
        .bind(app.0)
        .bind(topic)
        .bind(user.0)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(map)
    }

    async fn topic_members(
        &self,
        app: Id,
        topic: &str,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Id>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM topic_subscriptions WHERE app_id = $1 AND topic = $2 AND user_id > $3 ORDER BY user_id LIMIT $4",
        )
        .bind(app.0)
        .bind(topic)
        .bind(after.map_or(-1, |i| i.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids.into_iter().map(Id).collect())
    }

    async fn due_fanouts(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Id>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE notifications SET dispatched_at = $1 WHERE id IN ( \
               SELECT id FROM notifications WHERE NOT fanned_out AND COALESCE(send_at, 0) <= $1 \
                 AND COALESCE(dispatched_at, 0) < $2 LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind(now_ms)
        .bind(stale_before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids.into_iter().map(Id).collect())
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Channel, Id)>> {
        let rows = sqlx::query(
            "UPDATE deliveries SET dispatched_at = $1 WHERE id IN ( \
               SELECT id FROM deliveries WHERE status IN ('queued', 'sending') AND NOT dead \
                 AND COALESCE(dispatched_at, 0) < $2 AND due_at <= $1 AND COALESCE(lease_until, 0) <= $1 \
               ORDER BY COALESCE(dispatched_at, 0), due_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING channel, id, due_at",
        )
        .bind(now_ms)
        .bind(stale_before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let mut out: Vec<(i64, Channel, Id)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let channel: String = r.try_get(0).map_err(map)?;
            let channel = channel_from_str(&channel)
                .ok_or_else(|| StoreError::Backend("unknown channel".into()))?;
            out.push((
                r.try_get(2).map_err(map)?,
                channel,
                Id(r.try_get(1).map_err(map)?),
            ));
        }
        // RETURNING has no order of its own.
        out.sort_by_key(|(due, _, id)| (*due, *id));
        Ok(out.into_iter().map(|(_, c, i)| (c, i)).collect())
    }

    async fn claim(
        &self,
        ids: &[Id],
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
        let rows = sqlx::query(&format!(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $1, updated_at = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE id = ANY($3) AND status IN ('queued', 'sending') AND NOT dead \
                          AND COALESCE(lease_until, 0) <= $2 AND due_at <= $2 FOR UPDATE SKIP LOCKED) \
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        all(&rows, delivery_from_row)
    }

    async fn complete(&self, updates: &[DeliveryUpdate]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = updates.iter().map(|u| u.id.0).collect();
        let statuses: Vec<&str> = updates.iter().map(|u| u.status.as_str()).collect();
        let reasons: Vec<Option<&str>> = updates.iter().map(|u| u.reason.as_deref()).collect();
        let pmids: Vec<Option<&str>> = updates
            .iter()
            .map(|u| u.provider_message_id.as_deref())
            .collect();
        let due: Vec<i64> = updates.iter().map(|u| u.due_at_ms).collect();
        let dead: Vec<bool> = updates.iter().map(|u| u.dead).collect();
        let now: Vec<i64> = updates.iter().map(|u| u.now_ms).collect();
        sqlx::query(
            "UPDATE deliveries d SET status = u.st, reason = u.rs, provider_message_id = COALESCE(u.pm, d.provider_message_id), \
               due_at = u.due, dead = u.dead, lease_until = NULL, dispatched_at = NULL, updated_at = u.now \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bool[], $7::bigint[]) \
               AS u(id, st, rs, pm, due, dead, now) \
             WHERE d.id = u.id",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&reasons)
        .bind(&pmids)
        .bind(&due)
        .bind(&dead)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    async fn delivery(&self, id: Id) -> StoreResult<Option<DeliveryRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(delivery_from_row).transpose().map_err(map)
    }

    async fn delivery_by_provider_id(
        &self,
        channel: Channel,
        provider_message_id: &str,
    ) -> StoreResult<Option<DeliveryRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE channel = $1 AND provider_message_id = $2 \
             AND provider_message_id IS NOT NULL AND channel IN ('sms', 'email') LIMIT 1"
        ))
        .bind(channel.as_str())
        .bind(provider_message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(delivery_from_row).transpose().map_err(map)
    }

    async fn insert_inbox(&self, items: &[InboxItemRecord]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        for i in items {
            sqlx::query(
                "INSERT INTO inbox (id, app_id, user_id, notification_id, title, body, url, data, created_at, read_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL) ON CONFLICT (id) DO NOTHING",
            )
            .bind(i.id.0)
            .bind(i.app_id.0)
            .bind(i.user_id.0)
            .bind(i.notification_id.0)
            .bind(&i.title)
            .bind(&i.body)
            .bind(&i.url)
            .bind(&i.data)
            .bind(i.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)
    }

    async fn inbox(
        &self,
        app: Id,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<InboxItemRecord>> {
        let rows = sqlx::query(
            "SELECT id, app_id, user_id, notification_id, title, body, url, data, created_at, read_at \
             FROM inbox WHERE app_id = $1 AND user_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(app.0)
        .bind(user.0)
        .bind(before.map_or(i64::MAX, |i| i.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        all(&rows, inbox_from_row)
    }

    async fn unread_count(&self, app: Id, user: Id) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM inbox WHERE app_id = $1 AND user_id = $2 AND read_at IS NULL",
        )
        .bind(app.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        Ok(n.max(0) as u64)
    }

    async fn mark_read(&self, app: Id, user: Id, item: Id, now_ms: i64) -> StoreResult<bool> {
        sqlx::query("UPDATE inbox SET read_at = COALESCE(read_at, $4) WHERE app_id = $1 AND user_id = $2 AND id = $3")
            .bind(app.0)
            .bind(user.0)
            .bind(item.0)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map)
    }

    async fn put_template(
        &self,
        app: Id,
        name: &str,
        template: &Template,
        now_ms: i64,
    ) -> StoreResult<()> {
        let body = serde_json::to_value(template).map_err(json_err)?;
        sqlx::query(
            "INSERT INTO templates (app_id, name, body, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (app_id, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(app.0)
        .bind(name)
        .bind(body)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    async fn template(&self, app: Id, name: &str) -> StoreResult<Option<Template>> {
        let body: Option<Value> =
            sqlx::query_scalar("SELECT body FROM templates WHERE app_id = $1 AND name = $2")
                .bind(app.0)
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?;
        body.map(|b| serde_json::from_value(b).map_err(json_err))
            .transpose()
    }

    async fn delete_template(&self, app: Id, name: &str) -> StoreResult<bool> {
        sqlx::query("DELETE FROM templates WHERE app_id = $1 AND name = $2")
            .bind(app.0)
            .bind(name)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map)
    }

    async fn put_provider(
        &self,
        app: Id,
        channel: &str,
        settings: &Value,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO provider_settings (app_id, channel, body, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (app_id, channel) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(app.0)
        .bind(channel)
        .bind(settings)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    async fn provider(&self, app: Id, channel: &str) -> StoreResult<Option<(Value, i64)>> {
        let row = sqlx::query(
            "SELECT body, updated_at FROM provider_settings WHERE app_id = $1 AND channel = $2",
        )
        .bind(app.0)
        .bind(channel)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(|r| Ok((r.try_get(0).map_err(map)?, r.try_get(1).map_err(map)?)))
            .transpose()
    }

    async fn delete_provider(&self, app: Id, channel: &str) -> StoreResult<bool> {
        sqlx::query("DELETE FROM provider_settings WHERE app_id = $1 AND channel = $2")
            .bind(app.0)
            .bind(channel)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map)
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
        sqlx::query(&format!(
            "UPDATE deliveries SET {column} = COALESCE({column}, $4) \
             WHERE app_id = $1 AND notification_id = $2 AND user_id = $3 AND status != 'suppressed'"
        ))
        .bind(app.0)
        .bind(notification.0)
        .bind(user.0)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(map)
    }

    async fn channel_counts(&self, app: Id, since_ms: i64) -> StoreResult<Vec<ChannelCounts>> {
        let rows = sqlx::query(
            "SELECT channel, status, COALESCE(reason, ''), COUNT(*), COUNT(opened_at), COUNT(clicked_at) \
             FROM deliveries WHERE app_id = $1 AND created_at >= $2 GROUP BY channel, status, reason",
        )
        .bind(app.0)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let mut groups = Vec::with_capacity(rows.len());
        for r in &rows {
            groups.push((
                r.try_get::<String, _>(0).map_err(map)?,
                r.try_get::<String, _>(1).map_err(map)?,
                r.try_get::<String, _>(2).map_err(map)?,
                count(r, 3).map_err(map)?,
                count(r, 4).map_err(map)?,
                count(r, 5).map_err(map)?,
            ));
        }
        Ok(tidings_notify::store::fold_counts(groups))
    }

    async fn queue_counts(&self, app: Option<Id>, now_ms: i64) -> StoreResult<Vec<QueueCounts>> {
        let app = app.map(|a| a.0);
        let rows = sqlx::query(
            "SELECT channel, \
               SUM(CASE WHEN due_at <= $2 AND COALESCE(lease_until, 0) <= $2 THEN 1 ELSE 0 END)::BIGINT, \
               SUM(CASE WHEN COALESCE(lease_until, 0) > $2 THEN 1 ELSE 0 END)::BIGINT, \
               MIN(CASE WHEN due_at <= $2 AND COALESCE(lease_until, 0) <= $2 THEN due_at END), \
               SUM(CASE WHEN attempts > 0 AND COALESCE(lease_until, 0) <= $2 THEN 1 ELSE 0 END)::BIGINT, \
               SUM(CASE WHEN due_at > $2 THEN 1 ELSE 0 END)::BIGINT \
             FROM deliveries WHERE status IN ('queued', 'sending') AND NOT dead \
               AND ($1::BIGINT IS NULL OR app_id = $1) GROUP BY channel",
        )
        .bind(app)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let mut out: Vec<QueueCounts> = Vec::new();
        for r in &rows {
            let channel: String = r.try_get(0).map_err(map)?;
            let oldest: Option<i64> = r.try_get(3).map_err(map)?;
            out.push(QueueCounts {
                channel: channel_from_str(&channel),
                depth: count(r, 1).map_err(map)?,
                in_flight: count(r, 2).map_err(map)?,
                oldest_age_ms: oldest.map_or(0, |t| (now_ms - t).max(0)),
                retrying: count(r, 4).map_err(map)?,
                dead: 0,
                scheduled: count(r, 5).map_err(map)?,
            });
        }
        let dead = sqlx::query(
            "SELECT channel, COUNT(*) FROM deliveries WHERE dead AND ($1::BIGINT IS NULL OR app_id = $1) GROUP BY channel",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        for r in &dead {
            let channel: String = r.try_get(0).map_err(map)?;
            let channel = channel_from_str(&channel);
            let n = count(r, 1).map_err(map)?;
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
    }

    async fn dead_letters(
        &self,
        app: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE app_id = $1 AND dead AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(app.0)
        .bind(before.map_or(i64::MAX, |i| i.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        all(&rows, delivery_from_row)
    }

    async fn revive(&self, app: Id, delivery: Id, now_ms: i64) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE deliveries SET dead = FALSE, status = 'queued', attempts = 0, reason = NULL, due_at = $3, \
               lease_until = NULL, dispatched_at = NULL, updated_at = $3 \
             WHERE app_id = $1 AND id = $2 AND dead",
        )
        .bind(app.0)
        .bind(delivery.0)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(map)
    }
}
