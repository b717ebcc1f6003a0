use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// A delivery channel, as named in preferences and send requests.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Push,
    Sms,
    Email,
    InApp,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Self::Push,
        Self::Sms,
        Self::Email,
        Self::InApp,
        Self::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::InApp => "in_app",
            Self::Webhook => "webhook",
        }
    }
}

fn on() -> bool {
    true
}

/// Channel-wide switches. A channel left out of a PUT is on: opting out is explicit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSwitches {
    #[serde(default = "on")]
    pub push: bool,
    #[serde(default = "on")]
    pub sms: bool,
    #[serde(default = "on")]
    pub email: bool,
    #[serde(default = "on")]
    pub in_app: bool,
}

impl Default for ChannelSwitches {
    fn default() -> Self {
        Self {
            push: true,
            sms: true,
            email: true,
            in_app: true,
        }
    }
}

/// Hours during which deliveries wait, in the named IANA timezone. `start` may be later
/// than `end` (22:00–07:00 spans midnight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, 24-hour clock.
    pub start: String,
    /// `HH:MM`, 24-hour clock.
    pub end: String,
    pub timezone: String,
}

/// A user's notification preferences.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    #[serde(default)]
    pub channels: ChannelSwitches,
    /// Per category, per channel: `false` turns that channel off for the category.
    #[serde(default)]
    pub categories: BTreeMap<String, BTreeMap<Channel, bool>>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

pub const MAX_CATEGORIES: usize = 200;
pub const MAX_CATEGORY_NAME: usize = 64;

impl Preferences {
    pub fn validate(&self) -> Result<()> {
        if self.categories.len() > MAX_CATEGORIES {
            return Err(Error::validation(
                "categories",
                format!("at most {MAX_CATEGORIES} categories"),
            ));
        }
        for name in self.categories.keys() {
            let ok = !name.is_empty()
                && name.len() <= MAX_CATEGORY_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok {
                return Err(Error::validation(
                    "categories",
                    format!(
                        "category {name:?} must be 1-{MAX_CATEGORY_NAME} characters of a-z, 0-9, '_', '-' or '.'"
                    ),
                ));
            }
        }
        if let Some(q) = &self.quiet_hours {
            parse_hh_mm(&q.start).ok_or_else(|| {
                Error::validation(
                    "quiet_hours.start",
                    "start must be HH:MM on a 24-hour clock",
                )
            })?;
            parse_hh_mm(&q.end).ok_or_else(|| {
                Error::validation("quiet_hours.end", "end must be HH:MM on a 24-hour clock")
            })?;
            if q.start == q.end {
                return Err(Error::validation(
                    "quiet_hours",
                    "start and end must differ",
                ));
            }
            super::validate::timezone(&q.timezone)
                .map_err(|_| Error::validation("quiet_hours.timezone", "unknown IANA timezone"))?;
        }
        Ok(())
    }

    /// Whether `channel` may carry a notification of `category`.
    pub fn allows(&self, channel: Channel, category: Option<&str>) -> bool {
        let channel_on = match channel {
            Channel::Push => self.channels.push,
            Channel::Sms => self.channels.sms,
            Channel::Email => self.channels.email,
            Channel::InApp => self.channels.in_app,
            Channel::Webhook => true,
        };
        let category_on = category
            .and_then(|c| self.categories.get(c))
            .and_then(|per_channel| per_channel.get(&channel).copied())
            .unwrap_or(true);
        channel_on && category_on
    }
}

/// Minutes since midnight of an `HH:MM` string.
pub fn parse_hh_mm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_everything() {
        let p = Preferences::default();
        for c in Channel::ALL {
            assert!(p.allows(c, Some("orders")));
        }
    }

    #[test]
    fn category_switch_overrides_only_its_channel() {
        let p: Preferences = serde_json::from_value(serde_json::json!({
            "channels": {"sms": false},
            "categories": {"marketing": {"email": false}}
        }))
        .unwrap();
        assert!(!p.allows(Channel::Sms, None));
        assert!(!p.allows(Channel::Email, Some("marketing")));
        assert!(p.allows(Channel::Email, Some("orders")));
        assert!(p.allows(Channel::Push, Some("marketing")));
    }

    #[test]
    fn unknown_channel_is_rejected() {
        let r: std::result::Result<Preferences, _> =
            serde_json::from_value(serde_json::json!({"channels": {"emial": false}}));
        assert!(r.is_err());
    }

    #[test]
    fn quiet_hours_validation() {
        let mut p = Preferences {
            quiet_hours: Some(QuietHours {
                start: "22:00".into(),
                end: "07:30".into(),
                timezone: "Asia/Seoul".into(),
            }),
            ..Default::default()
        };
        assert!(p.validate().is_ok());
        p.quiet_hours.as_mut().unwrap().start = "24:00".into();
        assert!(p.validate().is_err());
        p.quiet_hours.as_mut().unwrap().start = "22:00".into();
        p.quiet_hours.as_mut().unwrap().timezone = "Mars/Olympus".into();
        assert!(p.validate().is_err());
    }
}
