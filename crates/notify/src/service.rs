//! The notification service as the API sees it: accept a send, read its status, and
//! manage templates, topics, inboxes, provider settings and dead letters.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tidings_platform::accounts::Ids;
use tidings_platform::clock::{rfc3339, Clock};
use tidings_platform::config::NotifyConfig;
use tidings_platform::model::Channel;
use tidings_platform::page::{decode_cursor, encode_cursor, Page};
use tidings_platform::store::AccountStore;
use tidings_platform::{Error, Id, Result};

use crate::directory::{AlertSink, LiveSink, ProviderDirectory};
use crate::handoff::Handoff;
use crate::metrics::NotifyMetrics;
use crate::model::{Audience, Frozen, NotificationRecord, SendRequest, Template};
use crate::queue::WorkQueue;
use crate::ratelimit::RateLimiter;
use crate::render::Renderer;
use crate::store::{Accepted, ChannelCounts, NotifyStore, QueueCounts, TrackingEvent};
use crate::views::{DeliveryView, InboxItem, InboxPage, NotificationView, SendAccepted};

pub const FANOUT_QUEUE: &str = "fanout";

/// Everything the service is built from.
pub struct NotifierParts {
    pub store: Arc<dyn NotifyStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub providers: Arc<dyn ProviderDirectory>,
    pub limiter: Arc<dyn RateLimiter>,
    pub alerts: Arc<dyn AlertSink>,
    pub live: Arc<dyn LiveSink>,
    pub ids: Arc<Ids>,
    pub clock: Arc<dyn Clock>,
    pub config: NotifyConfig,
    pub metrics: Arc<NotifyMetrics>,
}

pub struct Notifier {
    pub(crate) store: Arc<dyn NotifyStore>,
    pub(crate) accounts: Arc<dyn AccountStore>,
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) providers: Arc<dyn ProviderDirectory>,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) alerts: Arc<dyn AlertSink>,
    pub(crate) live: Arc<dyn LiveSink>,
    pub(crate) ids: Arc<Ids>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: NotifyConfig,
    pub(crate) renderer: Renderer,
    pub(crate) metrics: Arc<NotifyMetrics>,
    /// When the queue gauges were last read from the store.
    gauges_read_at_ms: AtomicI64,
    /// Fan-out to this node's workers without the queue (see `handoff.rs`).
    pub(crate) handoff: Option<Handoff>,
}

const EVENT_ID_MAX: usize = 255;
const NAME_MAX: usize = 64;
const COLLAPSE_KEY_MAX: usize = 64;

/// Template, topic and category names: short, URL-safe.
fn valid_name(field: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            format!("{field} must be 1-{NAME_MAX} characters of a-z, A-Z, 0-9, '_', '-' or '.'"),
        ))
    }
}

fn parse_time(field: &'static str, value: &Option<String>) -> Result<Option<i64>> {
    value
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|_| Error::validation(field, format!("{field} must be an RFC 3339 time")))
        })
        .transpose()
}

impl Notifier {
    pub fn new(parts: NotifierParts) -> Self {
        Self {
            store: parts.store,
            accounts: parts.accounts,
            queue: parts.queue,
            providers: parts.providers,
            limiter: parts.limiter,
            alerts: parts.alerts,
            live: parts.live,
            ids: parts.ids,
            clock: parts.clock,
            config: parts.config.clone(),
            renderer: Renderer::default(),
            metrics: parts.metrics,
            gauges_read_at_ms: AtomicI64::new(i64::MIN),
            handoff: Handoff::new(parts.config.local_handoff),
        }
    }

    /// Re-reads the queue gauges for `/metrics`, at most every
    /// `queue_gauges_every_ms`; a scrape in between (or one racing a refresh) keeps
    /// the last reading.
    pub async fn refresh_queue_gauges(&self) {
        let now = self.now_ms();
        let last = self.gauges_read_at_ms.load(Ordering::Relaxed);
        let every = i64::try_from(self.config.queue_gauges_every_ms).unwrap_or(i64::MAX);
        if now.saturating_sub(last) < every
            || self
                .gauges_read_at_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.store.queue_counts(None, now).await {
            Ok(counts) => self.metrics.set_queues(&counts),
            Err(e) => {
                tracing::warn!(error = %e, "queue gauges not refreshed");
                // Try again at the next scrape rather than after a full interval.
                self.gauges_read_at_ms.store(i64::MIN, Ordering::Relaxed);
            }
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Validates and durably stores a send; the 202 may go out as soon as this returns.
    pub async fn accept(&self, app: Id, req: SendRequest) -> Result<SendAccepted> {
        let event_id = req.event_id.trim().to_owned();
        if event_id.is_empty() || event_id.len() > EVENT_ID_MAX {
            return Err(Error::validation(
                "event_id",
                format!("event_id must be 1-{EVENT_ID_MAX} characters"),
            ));
        }
        match &req.to {
            Audience::Users { user_ids } => {
                if user_ids.is_empty() || user_ids.len() > self.config.max_recipients {
                    return Err(Error::validation(
                        "to.user_ids",
                        format!(
                            "to.user_ids must name 1-{} users",
                            self.config.max_recipients
                        ),
                    ));
                }
            }
            Audience::Topic { topic } => valid_name("to.topic", topic)?,
        }
        if let Some(category) = &req.category {
            valid_name("category", category)?;
        }
        if req
            .collapse_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > COLLAPSE_KEY_MAX)
        {
            return Err(Error::validation(
                "collapse_key",
                format!("collapse_key must be 1-{COLLAPSE_KEY_MAX} bytes"),
            ));
        }
        let (template, template_name) = match (&req.template, &req.content) {
            (Some(name), None) => {
                valid_name("template", name)?;
                let t = self.store.template(app, name).await?.ok_or_else(|| {
                    Error::validation("template", format!("no template named {name:?}"))
                })?;
                (t, Some(name.clone()))
            }
            (None, Some(content)) => (
                Template {
                    channels: content.clone(),
                    ..Default::default()
                },
                None,
            ),
            _ => {
                return Err(Error::validation(
                    "content",
                    "give either template (with data) or literal content, not both",
                ))
            }
        };
        let defined = template.channels.channels();
        let channels = match &req.channels {
            Some(list) => {
                if list.is_empty() {
                    return Err(Error::validation("channels", "channels must not be empty"));
                }
                let mut seen = Vec::new();
                for c in list {
                    let in_any_locale = defined.contains(c)
                        || template.locales.values().any(|l| l.channels().contains(c));
                    if !in_any_locale {
                        return Err(Error::validation(
                            "channels",
                            format!(
                                "channel {} has no content in this template or request",
                                c.as_str()
                            ),
                        ));
                    }
                    if !seen.contains(c) {
                        seen.push(*c);
                    }
                }
                seen
            }
            None if defined.is_empty() => {
                return Err(Error::validation(
                    "content",
                    "the template or content defines no channel",
                ))
            }
            None => defined,
        };
        if let Some(webhook) = template.channels.webhook.as_ref() {
            if serde_json::to_vec(webhook).map_or(0, |v| v.len()) > 64 * 1024 {
                return Err(Error::validation(
                    "content.webhook",
                    "webhook content must be at most 64 KiB",
                ));
            }
        }
        let send_at_ms = parse_time("send_at", &req.send_at)?;
        let expires_at_ms = parse_time("expires_at", &req.expires_at)?;
        let now = self.now_ms();
        if let (Some(s), Some(e)) = (send_at_ms, expires_at_ms) {
            if e <= s {
                return Err(Error::validation(
                    "expires_at",
                    "expires_at must be after send_at",
                ));
            }
        }
        if template_name.is_some() {
            self.renderer
                .check(&template)
                .map_err(|e| Error::validation("template", e.to_string()))?;
        }
        let locale = req
            .locale
            .as_deref()
            .map(tidings_platform::model::validate::locale)
            .transpose()?;
        let record = NotificationRecord {
            id: self.ids.next_id(),
            app_id: app,
            event_id: event_id.clone(),
            body: Frozen {
                to: req.to,
                category: req.category,
                channels,
                template,
                template_name,
                data: req.data,
                locale,
                priority: req.priority,
                collapse_key: req.collapse_key,
            },
            send_at_ms,
            expires_at_ms,
            created_at_ms: now,
            fanned_out: false,
        };
        match self.store.insert_notification(&record).await? {
            Accepted::Duplicate(first) => Ok(SendAccepted {
                id: first,
                event_id,
                duplicate: true,
            }),
            Accepted::New(id) => {
                self.metrics.accepted();
                if send_at_ms.is_none_or(|t| t <= now) {
                    // Best effort: if this hint is lost the dispatcher finds the row.
                    if let Err(e) = self
                        .queue
                        .enqueue(FANOUT_QUEUE, &[id.0], std::time::Duration::ZERO)
                        .await
                    {
                        tracing::warn!(error = %e, notification = %id, "fan-out hint not enqueued; the dispatcher will pick it up");
                    }
                }
                Ok(SendAccepted {
                    id,
                    event_id,
                    duplicate: false,
                })
            }
        }
    }

    pub async fn status(&self, app: Id, id: Id) -> Result<NotificationView> {
        let n = self
            .store
            .notification(id)
            .await?
            .filter(|n| n.app_id == app)
            .ok_or_else(|| Error::not_found("notification"))?;
        let deliveries = self.store.deliveries_of(id).await?;
        Ok(NotificationView {
            id: n.id,
            event_id: n.event_id,
            created_at: rfc3339(n.created_at_ms),
            fanned_out: n.fanned_out,
            deliveries: deliveries.iter().map(DeliveryView::from).collect(),
        })
    }

    pub async fn put_template(&self, app: Id, name: &str, template: Template) -> Result<Template> {
        valid_name("name", name)?;
        if template.channels.channels().is_empty() && template.locales.is_empty() {
            return Err(Error::validation(
                "channels",
                "a template needs content for at least one channel",
            ));
        }
        for locale in template.locales.keys() {
            let canonical = tidings_platform::model::validate::locale(locale)?;
            if &canonical != locale {
                return Err(Error::validation(
                    "locales",
                    format!("write locale {locale:?} as {canonical:?}"),
                ));
            }
        }
        self.renderer
            .check(&template)
            .map_err(|e| Error::validation("template", e.to_string()))?;
        self.store
            .put_template(app, name, &template, self.now_ms())
            .await?;
        Ok(template)
    }

    pub async fn template(&self, app: Id, name: &str) -> Result<Template> {
        valid_name("name", name)?;
        self.store
            .template(app, name)
            .await?
            .ok_or_else(|| Error::not_found("template"))
    }

    pub async fn delete_template(&self, app: Id, name: &str) -> Result<()> {
        valid_name("name", name)?;
        if self.store.delete_template(app, name).await? {
            Ok(())
        } else {
            Err(Error::not_found("template"))
        }
    }

    async fn require_user(&self, app: Id, user: Id) -> Result<()> {
        self.accounts
            .user_by_id(app, user)
            .await?
            .map(drop)
            .ok_or_else(|| Error::not_found("user"))
    }

    pub async fn subscribe(&self, app: Id, user: Id, topic: &str) -> Result<()> {
        valid_name("topic", topic)?;
        self.require_user(app, user).await?;
        Ok(self
            .store
            .subscribe(app, user, topic, self.now_ms())
            .await?)
    }

    pub async fn unsubscribe(&self, app: Id, user: Id, topic: &str) -> Result<()> {
        valid_name("topic", topic)?;
        self.require_user(app, user).await?;
        self.store.unsubscribe(app, user, topic).await?;
        Ok(())
    }

    pub async fn inbox(
        &self,
        app: Id,
        user: Id,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<InboxPage> {
        let before = cursor
            .map(|c| {
                decode_cursor("before", c).and_then(|s| {
                    s.parse::<Id>()
                        .map_err(|_| Error::validation("before", "not a cursor this server issued"))
                })
            })
            .transpose()?;
        let mut rows = self.store.inbox(app, user, before, limit + 1).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| encode_cursor(&r.id.to_string()))
        } else {
            None
        };
        let unread_count = self.store.unread_count(app, user).await?;
        Ok(InboxPage {
            items: rows.iter().map(InboxItem::from).collect(),
            next_cursor,
            unread_count,
        })
    }

    pub async fn mark_read(&self, app: Id, user: Id, item: Id) -> Result<()> {
        if self.store.mark_read(app, user, item, self.now_ms()).await? {
            Ok(())
        } else {
            Err(Error::not_found("inbox item"))
        }
    }

    pub async fn track(
        &self,
        app: Id,
        user: Id,
        notification: Id,
        event: TrackingEvent,
    ) -> Result<()> {
        if self
            .store
            .record_event(app, notification, user, event, self.now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found("notification"))
        }
    }

    pub async fn stats(&self, app: Id, since_ms: i64) -> Result<Vec<ChannelCounts>> {
        Ok(self.store.channel_counts(app, since_ms).await?)
    }

    pub async fn queues(&self, app: Option<Id>) -> Result<Vec<QueueCounts>> {
        Ok(self.store.queue_counts(app, self.now_ms()).await?)
    }

    pub async fn dead_letters(
        &self,
        app: Id,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<DeliveryView>> {
        let before = cursor
            .map(|c| {
                decode_cursor("before", c).and_then(|s| {
                    s.parse::<Id>()
                        .map_err(|_| Error::validation("before", "not a cursor this server issued"))
                })
            })
            .transpose()?;
        let mut rows = self.store.dead_letters(app, before, limit + 1).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| encode_cursor(&r.id.to_string()))
        } else {
            None
        };
        Ok(Page {
            items: rows.iter().map(DeliveryView::from).collect(),
            next_cursor,
        })
    }

    pub async fn retry_dead_letter(&self, app: Id, delivery: Id) -> Result<()> {
        if !self.store.revive(app, delivery, self.now_ms()).await? {
            return Err(Error::not_found("dead letter"));
        }
        if let Some(d) = self.store.delivery(delivery).await? {
            let _ = self
                .queue
                .enqueue(d.channel.as_str(), &[delivery.0], std::time::Duration::ZERO)
                .await;
        }
        Ok(())
    }

    pub async fn put_provider(&self, app: Id, channel: &str, settings: Value) -> Result<Value> {
        provider_channel(channel)?;
        if !self.config.allow_endpoint_override
            && settings.get("endpoint").is_some_and(|v| !v.is_null())
        {
            return Err(Error::Forbidden(
                "this server does not allow provider endpoint overrides".into(),
            ));
        }
        self.providers
            .validate(channel, &settings)
            .map_err(|e| Error::Validation {
                field: Some(e.field),
                detail: e.to_string(),
            })?;
        self.store
            .put_provider(app, channel, &settings, self.now_ms())
            .await?;
        Ok(self.providers.redact(channel, &settings))
    }

    pub async fn provider(&self, app: Id, channel: &str) -> Result<Value> {
        provider_channel(channel)?;
        let (settings, _) = self
            .store
            .provider(app, channel)
            .await?
            .ok_or_else(|| Error::not_found("provider settings"))?;
        Ok(self.providers.redact(channel, &settings))
    }

    pub async fn delete_provider(&self, app: Id, channel: &str) -> Result<()> {
        provider_channel(channel)?;
        if self.store.delete_provider(app, channel).await? {
            Ok(())
        } else {
            Err(Error::not_found("provider settings"))
        }
    }

    /// Where providers call back, as given to them (Twilio's `StatusCallback`).
    pub fn callback_base_url(&self) -> Option<&str> {
        self.config.callback_base_url.as_deref()
    }

    /// Records what a provider reported later about a delivery it accepted (a Twilio
    /// status callback, a SendGrid event). Only `sent` deliveries move, and only
    /// forward: a late or repeated report changes nothing.
    pub async fn provider_report(
        &self,
        delivery: &crate::model::DeliveryRecord,
        report: ProviderReport,
    ) -> Result<()> {
        if delivery.status != crate::model::DeliveryStatus::Sent {
            return Ok(());
        }
        let (status, reason, label) = match report {
            ProviderReport::Delivered => {
                (crate::model::DeliveryStatus::Delivered, None, "delivered")
            }
            ProviderReport::Failed(reason) => {
                (crate::model::DeliveryStatus::Failed, Some(reason), "failed")
            }
        };
        self.store
            .complete(&[crate::store::DeliveryUpdate {
                id: delivery.id,
                status,
                reason,
                provider_message_id: None,
                due_at_ms: delivery.due_at_ms,
                dead: false,
                now_ms: self.now_ms(),
            }])
            .await?;
        self.metrics.outcome(delivery.channel, label, 1);
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn NotifyStore> {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<NotifyMetrics> {
        &self.metrics
    }
}

/// A provider's later word on a delivery it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderReport {
    Delivered,
    Failed(String),
}

/// The provider settings a `PUT /v1/providers/{channel}` may name.
pub fn provider_channel(channel: &str) -> Result<()> {
    match channel {
        "apns" | "fcm" | "sms" | "email" | "webhook" => Ok(()),
        _ => Err(Error::NotFound(format!(
            "no provider channel {channel:?}: use apns, fcm, sms, email or webhook"
        ))),
    }
}

/// Channels with their own delivery queue.
pub const DELIVERY_CHANNELS: [Channel; 5] = Channel::ALL;
