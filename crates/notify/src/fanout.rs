//! Fan-out: turning one accepted notification into one delivery row per (recipient,
//! channel, target), deciding for each whether it is suppressed and when it is due.
//! Pages of recipients are written atomically with the fan-out cursor, so a fan-out
//! interrupted by a crash resumes where it stopped and never writes a row twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tidings_platform::model::{Channel, Device, Preferences, UserRecord};
use tidings_platform::{Id, Result};

use crate::handoff::{Claimed, ROOM_WAIT};
use crate::model::{Audience, DeliveryRecord, DeliveryStatus, NotificationRecord, SendPriority};
use crate::policy::quiet_until;
use crate::service::Notifier;

/// Recipients resolved per page (and per store transaction).
pub const PAGE: usize = 500;

/// Channels that interrupt a person, and so honour quiet hours and rate limits.
fn intrusive(channel: Channel) -> bool {
    matches!(channel, Channel::Push | Channel::Sms | Channel::Email)
}

impl Notifier {
    /// Fans out `id` completely (or up to the first failure, keeping progress).
    pub async fn fan_out(&self, id: Id) -> Result<()> {
        let Some(n) = self.store.notification(id).await?.map(Arc::new) else {
            return Ok(());
        };
        let now = self.now_ms();
        if n.fanned_out || n.send_at_ms.is_some_and(|t| t > now) {
            return Ok(());
        }
        let sorted_users = match &n.body.to {
            Audience::Users { user_ids } => {
                let mut ids = user_ids.clone();
                ids.sort_unstable();
                ids.dedup();
                Some(ids)
            }
            Audience::Topic { .. } => None,
        };
        let mut cursor = self.store.fanout_cursor(id).await?;
        loop {
            let page: Vec<Id> = match (&sorted_users, &n.body.to) {
                (Some(ids), _) => ids
                    .iter()
                    .copied()
                    .filter(|u| cursor.is_none_or(|c| *u > c))
                    .take(PAGE)
                    .collect(),
                (None, Audience::Topic { topic }) => {
                    self.store
                        .topic_members(n.app_id, topic, cursor, PAGE as u32)
                        .await?
                }
                (None, Audience::Users { .. }) => Vec::new(),
            };
            let done = page.len() < PAGE;
            let mut rows = self.plan(&n, &page).await?;
            let last = page.last().copied().or(cursor);
            let reserved = self.claim_for_handoff(&mut rows).await;
            let now = self.now_ms();
            let lease_until = now.saturating_add(self.config.lease_ms as i64);
            let written = match self
                .store
                .write_fanout(id, &rows, last, done, now, lease_until)
                .await
            {
                Ok(w) => w,
                Err(e) => {
                    if let Some(h) = &self.handoff {
                        for (channel, n) in reserved {
                            h.release(channel, n);
                        }
                    }
                    return Err(e.into());
                }
            };
            let written: HashSet<Id> = written.into_iter().collect();
            let mut unused: HashMap<Channel, usize> = reserved.into_iter().collect();
            let mut due: HashMap<Channel, Vec<i64>> = HashMap::new();
            for r in rows {
                match r.status {
                    DeliveryStatus::Queued if r.due_at_ms <= now => {
                        due.entry(r.channel).or_default().push(r.id.0)
                    }
                    DeliveryStatus::Sending if written.contains(&r.id) => {
                        if let Some(h) = &self.handoff {
                            *unused.entry(r.channel).or_default() -= 1;
                            h.send(Claimed {
                                record: r,
                                lease_until_ms: lease_until,
                                notification: n.clone(),
                            });
                        }
                    }
                    DeliveryStatus::Suppressed => {
                        self.metrics.outcome(r.channel, "suppressed", 1);
                    }
                    _ => {}
                }
            }
            if let Some(h) = &self.handoff {
                // Rows that existed already (a page written again) are someone else's.
                for (channel, n) in unused {
                    h.release(channel, n);
                }
            }
            for (channel, ids) in due {
                // Best effort: the dispatcher re-sends hints for rows it finds waiting.
                if let Err(e) = self
                    .queue
                    .enqueue(channel.as_str(), &ids, Duration::ZERO)
                    .await
                {
                    tracing::warn!(error = %e, channel = channel.as_str(), "delivery hints not enqueued");
                }
            }
            if done {
                return Ok(());
            }
            cursor = last;
        }
    }

    /// Marks the rows due now `sending` (claimed by this node, attempts 1) for each
    /// channel whose hand-off has room for all of them; returns the room taken.
    async fn claim_for_handoff(&self, rows: &mut [DeliveryRecord]) -> Vec<(Channel, usize)> {
        let Some(h) = &self.handoff else {
            return Vec::new();
        };
        let now = self.now_ms();
        let due_now = |r: &DeliveryRecord| r.status == DeliveryStatus::Queued && r.due_at_ms <= now;
        let mut wanted: Vec<(Channel, usize)> = Vec::new();
        for r in rows.iter().filter(|r| due_now(r)) {
            match wanted.iter_mut().find(|(c, _)| *c == r.channel) {
                Some((_, n)) => *n += 1,
                None => wanted.push((r.channel, 1)),
            }
        }
        let mut reserved = Vec::with_capacity(wanted.len());
        for (channel, n) in wanted {
            if h.reserve(channel, n, ROOM_WAIT).await {
                reserved.push((channel, n));
            }
        }
        for r in rows.iter_mut() {
            if due_now(r) && reserved.iter().any(|(c, _)| *c == r.channel) {
                r.status = DeliveryStatus::Sending;
                r.attempts = 1;
            }
        }
        reserved
    }

    /// The delivery rows for one page of recipients.
    async fn plan(&self, n: &NotificationRecord, page: &[Id]) -> Result<Vec<DeliveryRecord>> {
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let app = n.app_id;
        let users: HashMap<Id, UserRecord> = self
            .accounts
            .users_by_ids(app, page)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut devices: HashMap<Id, Vec<Device>> = HashMap::new();
        if n.body.channels.contains(&Channel::Push) {
            for d in self.accounts.active_devices_of(app, page).await? {
                devices.entry(d.user_id).or_default().push(d);
            }
        }
        let prefs: HashMap<Id, Preferences> = self
            .accounts
            .preferences_of(app, page)
            .await?
            .into_iter()
            .collect();
        let default_prefs = Preferences::default();
        let now = self.now_ms();
        let window_ms = (self.config.rate_limit_window_secs as i64).saturating_mul(1000);
        let mut rows = Vec::new();
        for user_id in page {
            let row = |channel: Channel,
                       target: String,
                       status: DeliveryStatus,
                       reason: Option<&str>,
                       due: i64| DeliveryRecord {
                id: self.ids.next_id(),
                notification_id: n.id,
                app_id: app,
                user_id: *user_id,
                channel,
                target,
                status,
                reason: reason.map(str::to_owned),
                attempts: 0,
                provider_message_id: None,
                due_at_ms: due,
                dead: false,
                created_at_ms: now,
                updated_at_ms: now,
            };
            let Some(user) = users.get(user_id) else {
                for channel in &n.body.channels {
                    rows.push(row(
                        *channel,
                        String::new(),
                        DeliveryStatus::Suppressed,
                        Some("unknown_user"),
                        now,
                    ));
                }
                continue;
            };
            let prefs = prefs.get(user_id).unwrap_or(&default_prefs);
            for &channel in &n.body.channels {
                let targets: Vec<String> = match channel {
                    Channel::Push => devices
                        .get(user_id)
                        .map(|ds| {
                            ds.iter()
                                .map(|d| format!("{}:{}", d.platform.as_str(), d.token))
                                .collect()
                        })
                        .unwrap_or_default(),
                    Channel::Sms => user.phone.iter().cloned().collect(),
                    Channel::Email => user.email.iter().cloned().collect(),
                    Channel::InApp => vec!["inbox".into()],
                    Channel::Webhook => vec!["webhook".into()],
                };
                if targets.is_empty() {
                    rows.push(row(
                        channel,
                        String::new(),
                        DeliveryStatus::Suppressed,
                        Some("no_contact"),
                        now,
                    ));
                    continue;
                }
                let suppressed = if !prefs.allows(channel, None) {
                    Some("channel_opted_out")
                } else if !prefs.allows(channel, n.body.category.as_deref()) {
                    Some("category_opted_out")
                } else if intrusive(channel) && self.config.rate_limit_max > 0 {
                    let key = format!("{app}:{user_id}:{}", channel.as_str());
                    let admitted = self
                        .limiter
                        .admit(&key, self.config.rate_limit_max, window_ms, now)
                        .await;
                    (!admitted).then_some("rate_limited")
                } else {
                    None
                };
                if let Some(reason) = suppressed {
                    for target in targets {
                        rows.push(row(
                            channel,
                            target,
                            DeliveryStatus::Suppressed,
                            Some(reason),
                            now,
                        ));
                    }
                    continue;
                }
                let bypass = n.body.priority == SendPriority::High
                    && self.config.high_priority_ignores_quiet_hours;
                let due = match (&prefs.quiet_hours, intrusive(channel) && !bypass) {
                    (Some(q), true) => quiet_until(q, now).unwrap_or(now),
                    _ => now,
                };
                // A wait for quiet hours is visible as the reason until it goes out.
                let reason = (due > now).then_some("quiet_hours");
                for target in targets {
                    rows.push(row(channel, target, DeliveryStatus::Queued, reason, due));
                }
            }
        }
        Ok(rows)
    }
}
