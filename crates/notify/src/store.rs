//! The notification service's storage seam. The database row of a delivery is the
//! record of truth; queues only carry hints about which rows to look at.

use async_trait::async_trait;
use serde_json::Value;
use tidings_platform::model::Channel;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::model::{DeliveryRecord, DeliveryStatus, NotificationRecord, Template};

/// The result of storing a send request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    New(Id),
    /// The app already sent this `event_id`; the first notification's id.
    Duplicate(Id),
}

/// A worker's verdict on one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub id: Id,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub provider_message_id: Option<String>,
    /// For a retry: when to try again.
    pub due_at_ms: i64,
    /// Exhausted its attempts: a dead letter.
    pub dead: bool,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxItemRecord {
    pub id: Id,
    pub app_id: Id,
    pub user_id: Id,
    pub notification_id: Id,
    pub title: Option<String>,
    pub body: Option<String>,
    pub url: Option<String>,
    pub data: Value,
    pub created_at_ms: i64,
    pub read_at_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingEvent {
    Opened,
    Clicked,
}

/// Per channel, over deliveries created since a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub channel: Option<Channel>,
    /// Deliveries created (the fan-out of accepted notifications).
    pub total: u64,
    pub by_status: Vec<(DeliveryStatus, u64)>,
    pub suppressed_by_reason: Vec<(String, u64)>,
    pub opened: u64,
    pub clicked: u64,
}

/// Per channel, right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub channel: Option<Channel>,
    /// Waiting and due now.
    pub depth: u64,
    /// Claimed by a worker whose lease has not run out.
    pub in_flight: u64,
    /// Age of the oldest due, unsent delivery.
    pub oldest_age_ms: i64,
    /// Waiting after at least one failed attempt.
    pub retrying: u64,
    pub dead: u64,
    /// Waiting for a later time (scheduled sends, quiet hours, backoff).
    pub scheduled: u64,
}

#[async_trait]
pub trait NotifyStore: Send + Sync + 'static {
    /// Stores a notification unless the app already used its `event_id`.
    async fn insert_notification(&self, n: &NotificationRecord) -> StoreResult<Accepted>;
    async fn notification(&self, id: Id) -> StoreResult<Option<NotificationRecord>>;
    async fn deliveries_of(&self, notification: Id) -> StoreResult<Vec<DeliveryRecord>>;

    /// Where the fan-out of `notification` stopped: the last recipient written.
    async fn fanout_cursor(&self, notification: Id) -> StoreResult<Option<Id>>;
    /// Writes one page of a fan-out atomically: the deliveries (a delivery that exists
    /// already, same notification, user, channel and target, is left alone), the
    /// cursor, and whether the fan-out is complete. Deliveries planned `sending` are
    /// written claimed by the caller, who attempts them next: attempts 1, leased
    /// until `lease_until_ms`. Returns the ids of the deliveries written (not of those
    /// that existed already).
    async fn write_fanout(
        &self,
        notification: Id,
        deliveries: &[DeliveryRecord],
        cursor: Option<Id>,
        done: bool,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<Vec<Id>>;

    async fn subscribe(&self, app: Id, user: Id, topic: &str, now_ms: i64) -> StoreResult<()>;
    async fn unsubscribe(&self, app: Id, user: Id, topic: &str) -> StoreResult<bool>;
    /// Subscribers of a topic in id order, after `after`.
    async fn topic_members(
        &self,
        app: Id,
        topic: &str,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Id>>;

    /// Notifications whose fan-out is due (send time reached) and not dispatched since
    /// `stale_before`; marks them dispatched now.
    async fn due_fanouts(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Id>>;
    /// Unfinished deliveries that are due, not held by a live lease and not dispatched
    /// since `stale_before`; marks them dispatched now.
    async fn due_deliveries(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<(Channel, Id)>>;
    /// Takes the unfinished, unleased ones among `ids` for this worker until
    /// `lease_until_ms`: status `sending`, attempts + 1. Others (finished, or held by
    /// another worker) are left out, so a duplicate hint never sends twice.
    async fn claim(
        &self,
        ids: &[Id],
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Records verdicts. A `queued` update releases the lease for a retry at `due_at_ms`.
    async fn complete(&self, updates: &[DeliveryUpdate]) -> StoreResult<()>;
    async fn delivery(&self, id: Id) -> StoreResult<Option<DeliveryRecord>>;
    async fn delivery_by_provider_id(
        &self,
        channel: Channel,
        provider_message_id: &str,
    ) -> StoreResult<Option<DeliveryRecord>>;

    async fn insert_inbox(&self, items: &[InboxItemRecord]) -> StoreResult<()>;
    /// Newest first, before `before` when given.
    async fn inbox(
        &self,
        app: Id,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<InboxItemRecord>>;
    async fn unread_count(&self, app: Id, user: Id) -> StoreResult<u64>;
    async fn mark_read(&self, app: Id, user: Id, item: Id, now_ms: i64) -> StoreResult<bool>;

    async fn put_template(
        &self,
        app: Id,
        name: &str,
        template: &Template,
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn template(&self, app: Id, name: &str) -> StoreResult<Option<Template>>;
    async fn delete_template(&self, app: Id, name: &str) -> StoreResult<bool>;

    /// Provider settings as JSON, per app and channel name (`apns`, `fcm`, `sms`,
    /// `email`, `webhook`), with the time they were last changed.
    async fn put_provider(
        &self,
        app: Id,
        channel: &str,
        settings: &Value,
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn provider(&self, app: Id, channel: &str) -> StoreResult<Option<(Value, i64)>>;
    async fn delete_provider(&self, app: Id, channel: &str) -> StoreResult<bool>;

    /// Marks the user's deliveries of a notification opened or clicked.
    async fn record_event(
        &self,
        app: Id,
        notification: Id,
        user: Id,
        event: TrackingEvent,
        now_ms: i64,
    ) -> StoreResult<bool>;

    async fn channel_counts(&self, app: Id, since_ms: i64) -> StoreResult<Vec<ChannelCounts>>;
    /// `app: None` counts every app (for the metrics endpoint).
    async fn queue_counts(&self, app: Option<Id>, now_ms: i64) -> StoreResult<Vec<QueueCounts>>;
    /// Dead letters, newest first, before `before` when given.
    async fn dead_letters(
        &self,
        app: Id,
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Puts a dead letter back: queued, attempts reset, due now.
    async fn revive(&self, app: Id, delivery: Id, now_ms: i64) -> StoreResult<bool>;
}

/// Folds `(channel, status, reason, count, opened, clicked)` groups into per-channel
/// counts.
pub fn fold_counts(rows: Vec<(String, String, String, u64, u64, u64)>) -> Vec<ChannelCounts> {
    let mut out: Vec<ChannelCounts> = Vec::new();
    for (channel, status, reason, n, opened, clicked) in rows {
        let channel = crate::model::channel_from_str(&channel);
        let idx = match out.iter().position(|c| c.channel == channel) {
            Some(i) => i,
            None => {
                out.push(ChannelCounts {
                    channel,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let entry = &mut out[idx];
        entry.total += n;
        entry.opened += opened;
        entry.clicked += clicked;
        if let Some(status) = DeliveryStatus::parse(&status) {
            match entry.by_status.iter_mut().find(|(s, _)| *s == status) {
                Some((_, count)) => *count += n,
                None => entry.by_status.push((status, n)),
            }
            if status == DeliveryStatus::Suppressed && !reason.is_empty() {
                entry.suppressed_by_reason.push((reason, n));
            }
        }
    }
    out
}
