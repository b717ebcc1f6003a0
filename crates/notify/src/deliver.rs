//! Attempting deliveries: render, hand to the provider, and turn its answer into the
//! delivery's next state (sent, retry later, failed, dead letter, token disabled).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Map, Value};
use tidings_platform::model::{Platform, UserRecord};
use tidings_platform::{Id, Result};

use crate::model::{DeliveryRecord, DeliveryStatus, NotificationRecord, SendPriority};
use crate::policy::backoff_ms;
use crate::provider::{EmailMessage, Outcome, Priority, PushMessage, SmsMessage, WebhookMessage};
use crate::render::Rendered;
use crate::service::Notifier;
use crate::store::{DeliveryUpdate, InboxItemRecord};

/// What became of one attempt, before it is written.
struct Verdict {
    update: DeliveryUpdate,
    outcome_label: &'static str,
    /// The provider said this token is gone for good: (app, platform, token).
    disable_token: Option<(Id, Platform, String)>,
}

fn render_context(n: &NotificationRecord, user: Option<&UserRecord>) -> Value {
    let mut ctx: Map<String, Value> = n.body.data.clone();
    ctx.insert("data".into(), Value::Object(n.body.data.clone()));
    ctx.insert(
        "notification".into(),
        json!({"id": n.id.to_string(), "event_id": n.event_id, "category": n.body.category}),
    );
    if let Some(u) = user {
        ctx.insert(
            "user".into(),
            json!({
                "id": u.id.to_string(),
                "username": u.username,
                "display_name": u.display_name.clone().unwrap_or_else(|| u.username.clone()),
                "locale": u.locale,
                "timezone": u.timezone,
            }),
        );
    }
    Value::Object(ctx)
}

impl Notifier {
    /// Claims, attempts and records a batch of deliveries of one channel.
    pub(crate) async fn deliver_batch(self: &Arc<Self>, ids: &[Id]) -> Result<usize> {
        let now = self.now_ms();
        let lease_until = now.saturating_add(self.config.lease_ms as i64);
        let claimed = self.store.claim(ids, now, lease_until).await?;
        self.deliver_claimed(claimed, HashMap::new()).await
    }

    /// Attempts and records deliveries this worker holds the claim of; `notifications`
    /// are those the caller has at hand already, the rest are read.
    pub(crate) async fn deliver_claimed(
        self: &Arc<Self>,
        claimed: Vec<DeliveryRecord>,
        mut notifications: HashMap<Id, Arc<NotificationRecord>>,
    ) -> Result<usize> {
        if claimed.is_empty() {
            return Ok(0);
        }
        for d in &claimed {
            if !notifications.contains_key(&d.notification_id) {
                if let Some(n) = self.store.notification(d.notification_id).await? {
                    notifications.insert(n.id, Arc::new(n));
                }
            }
        }
        // A recipient's record only matters to a template (its context) or to content
        // with translations the notification did not pick a locale for.
        let needs_user = |n: &NotificationRecord| {
            n.body.template_name.is_some()
                || (n.body.locale.is_none() && !n.body.template.locales.is_empty())
        };
        let mut by_app: HashMap<Id, Vec<Id>> = HashMap::new();
        for d in &claimed {
            if notifications
                .get(&d.notification_id)
                .is_some_and(|n| needs_user(n))
            {
                by_app.entry(d.app_id).or_default().push(d.user_id);
            }
        }
        let mut users: HashMap<Id, Arc<UserRecord>> = HashMap::new();
        for (app, ids) in by_app {
            for u in self.accounts.users_by_ids(app, &ids).await? {
                users.insert(u.id, Arc::new(u));
            }
        }
        let count = claimed.len();
        let concurrency = self.config.concurrency_per_channel.max(1);
        let verdicts: Vec<Verdict> = futures::stream::iter(claimed.into_iter().map(|d| {
            let n = notifications.get(&d.notification_id).cloned();
            let u = users.get(&d.user_id).cloned();
            let this = self.clone();
            async move { this.attempt(d, n, u).await }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
        let updates: Vec<DeliveryUpdate> = verdicts.iter().map(|v| v.update.clone()).collect();
        self.store.complete(&updates).await?;
        for v in verdicts {
            if let Some((app, platform, token)) = v.disable_token {
                self.accounts
                    .disable_device(app, platform, &token, self.now_ms())
                    .await?;
            }
            if v.update.dead {
                if let Some(d) = self.store.delivery(v.update.id).await? {
                    tracing::error!(delivery = %d.id, notification = %d.notification_id, channel = d.channel.as_str(),
                        reason = d.reason.as_deref().unwrap_or(""), "delivery exhausted its attempts: dead letter");
                    self.alerts.dead_letter(&d).await;
                }
            }
        }
        Ok(count)
    }

    async fn attempt(
        &self,
        d: DeliveryRecord,
        n: Option<Arc<NotificationRecord>>,
        user: Option<Arc<UserRecord>>,
    ) -> Verdict {
        let channel = d.channel;
        let due_at = d.due_at_ms;
        let verdict = self.attempt_inner(d, n, user).await;
        if matches!(
            verdict.outcome_label,
            "sent" | "delivered" | "failed" | "target_gone"
        ) {
            self.metrics
                .latency(channel, (self.now_ms() - due_at) as f64 / 1000.0);
        }
        self.metrics.outcome(channel, verdict.outcome_label, 1);
        verdict
    }

    async fn attempt_inner(
        &self,
        d: DeliveryRecord,
        n: Option<Arc<NotificationRecord>>,
        user: Option<Arc<UserRecord>>,
    ) -> Verdict {
        let now = self.now_ms();
        let finish = |status: DeliveryStatus,
                      reason: Option<String>,
                      pmid: Option<String>,
                      label: &'static str| Verdict {
            update: DeliveryUpdate {
                id: d.id,
                status,
                reason,
                provider_message_id: pmid,
                due_at_ms: d.due_at_ms,
                dead: false,
                now_ms: now,
            },
            outcome_label: label,
            disable_token: None,
        };
        let Some(n) = n else {
            return finish(
                DeliveryStatus::Failed,
                Some("notification missing".into()),
                None,
                "failed",
            );
        };
        if n.expires_at_ms.is_some_and(|e| now >= e) {
            return finish(
                DeliveryStatus::Expired,
                Some("expired before it could be sent".into()),
                None,
                "expired",
            );
        }
        let locale = n
            .body
            .locale
            .clone()
            .or_else(|| user.as_ref().and_then(|u| u.locale.clone()));
        let literal = n.body.template_name.is_none();
        // Literal content is sent as written: no template reads the context.
        let ctx = if literal {
            Value::Null
        } else {
            render_context(&n, user.as_deref())
        };
        let rendered = match self.renderer.render(
            &n.body.template,
            literal,
            locale.as_deref(),
            d.channel,
            &ctx,
        ) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return finish(
                    DeliveryStatus::Failed,
                    Some("no content for this channel".into()),
                    None,
                    "failed",
                )
            }
            Err(e) => return finish(DeliveryStatus::Failed, Some(e.to_string()), None, "failed"),
        };
        let mut disable = None;
        let outcome = match rendered {
            Rendered::Push(content) => {
                let Some((platform, token)) = d
                    .target
                    .split_once(':')
                    .and_then(|(p, t)| Some((Platform::parse(p)?, t.to_owned())))
                else {
                    return finish(
                        DeliveryStatus::Failed,
                        Some("malformed push target".into()),
                        None,
                        "failed",
                    );
                };
                match self.providers.push(d.app_id, platform).await {
                    Err(e) => Outcome::Failed { reason: e.0 },
                    Ok(provider) => {
                        let message = PushMessage {
                            id: uuid::Uuid::from_u64_pair(0x7469_6469_6e67_7300, d.id.0 as u64),
                            token: token.clone(),
                            topic: None,
                            title: content.title,
                            body: content.body,
                            data: content.data,
                            priority: match n.body.priority {
                                SendPriority::High => Priority::High,
                                SendPriority::Normal => Priority::Normal,
                            },
                            collapse_key: n.body.collapse_key.clone(),
                            expires_at_ms: n.expires_at_ms,
                            badge: content.badge,
                        };
                        disable = Some((d.app_id, platform, token));
                        provider.send(&message).await
                    }
                }
            }
            Rendered::Sms(content) => match self.providers.sms(d.app_id).await {
                Err(e) => Outcome::Failed { reason: e.0 },
                Ok(provider) => {
                    let callback = self.config.callback_base_url.as_ref().map(|base| {
                        format!("{}/v1/webhooks/twilio/status", base.trim_end_matches('/'))
                    });
                    provider
                        .send(&SmsMessage {
                            to: d.target.clone(),
                            body: content.text,
                            status_callback: callback,
                        })
                        .await
                }
            },
            Rendered::Email(content) => match self.providers.email(d.app_id).await {
                Err(e) => Outcome::Failed { reason: e.0 },
                Ok(provider) => {
                    provider
                        .send(&EmailMessage {
                            to: d.target.clone(),
                            subject: content.subject,
                            text: content.text,
                            html: content.html,
                            reference: d.id.to_string(),
                        })
                        .await
                }
            },
            Rendered::Webhook(content) => match self.providers.webhook(d.app_id).await {
                Err(e) => Outcome::Failed { reason: e.0 },
                Ok(provider) => {
                    let body = json!({
                        "notification_id": n.id.to_string(),
                        "event_id": n.event_id,
                        "user_id": d.user_id.to_string(),
                        "content": content,
                    });
                    provider
                        .send(&WebhookMessage {
                            body: serde_json::to_vec(&body).unwrap_or_default(),
                        })
                        .await
                }
            },
            Rendered::InApp(content) => {
                let item = InboxItemRecord {
                    // The delivery's id: a retried attempt cannot add a second item.
                    id: d.id,
                    app_id: d.app_id,
                    user_id: d.user_id,
                    notification_id: n.id,
                    title: content.title,
                    body: content.body,
                    url: content.url,
                    data: Value::Object(content.data),
                    created_at_ms: now,
                    read_at_ms: None,
                };
                match self.store.insert_inbox(std::slice::from_ref(&item)).await {
                    Ok(()) => {
                        self.live.inbox_item(d.app_id, d.user_id, &item);
                        return finish(DeliveryStatus::Delivered, None, None, "delivered");
                    }
                    Err(e) => Outcome::Retry {
                        reason: e.to_string(),
                        retry_after: None,
                    },
                }
            }
        };
        match outcome {
            Outcome::Sent {
                provider_message_id,
            } => finish(DeliveryStatus::Sent, None, provider_message_id, "sent"),
            Outcome::Failed { reason } => {
                finish(DeliveryStatus::Failed, Some(reason), None, "failed")
            }
            Outcome::TargetGone { reason } => Verdict {
                disable_token: disable,
                ..finish(DeliveryStatus::Failed, Some(reason), None, "target_gone")
            },
            Outcome::Retry {
                reason,
                retry_after,
            } => {
                if d.attempts >= self.config.max_attempts {
                    let mut v = finish(
                        DeliveryStatus::Failed,
                        Some(format!("gave up after {} attempts: {reason}", d.attempts)),
                        None,
                        "dead",
                    );
                    v.update.dead = true;
                    return v;
                }
                let delay = retry_after.map_or_else(
                    || {
                        backoff_ms(
                            d.attempts,
                            self.config.retry_base_ms,
                            self.config.retry_max_ms,
                            rand::random::<f64>(),
                        )
                    },
                    |after| u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                );
                let mut v = finish(DeliveryStatus::Queued, Some(reason), None, "retried");
                v.update.due_at_ms = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                v
            }
        }
    }
}

/// How long a worker waits on an empty queue before looking again.
pub(crate) const IDLE_WAIT: Duration = Duration::from_secs(1);
