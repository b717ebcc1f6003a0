//! Provider clients per app, built from the settings the app stored with
//! `PUT /v1/providers/{channel}` and the operator's defaults (`[providers.*]` in the
//! configuration). Built clients are kept (they hold connection pools and cached
//! tokens) and rebuilt when the stored settings change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::RwLock;
use serde_json::{Map, Value};
use tidings_notify::directory::{ProviderDirectory, Unconfigured};
use tidings_notify::provider::{
    ConfigError, EmailProvider, PushProvider, SmsProvider, WebhookProvider,
};
use tidings_notify::store::NotifyStore;
use tidings_platform::model::Platform;
use tidings_platform::Id;

/// A built provider client.
#[derive(Clone)]
pub enum Built {
    Push(Arc<dyn PushProvider>),
    Sms(Arc<dyn SmsProvider>),
    Email(Arc<dyn EmailProvider>),
    Webhook(Arc<dyn WebhookProvider>),
}

/// Builds a client from an app's settings and the operator's defaults for that
/// provider (`endpoint`, `ca_pem`, ...).
pub type Builder =
    fn(settings: &Value, defaults: &Map<String, Value>) -> Result<Built, ConfigError>;

/// Field names whose values never leave the server.
const SECRET_FIELDS: [&str; 5] = ["key_pem", "private_key", "auth_token", "api_key", "secret"];

/// How long a built client is trusted before the stored settings are checked again
/// (another node may have changed them).
const RECHECK: Duration = Duration::from_secs(5);

struct Entry {
    updated_at: i64,
    checked: Instant,
    built: Built,
}

pub struct StoredProviders {
    store: Arc<dyn NotifyStore>,
    builders: HashMap<&'static str, Builder>,
    defaults: Map<String, Value>,
    cache: RwLock<HashMap<(Id, &'static str), Entry>>,
}

impl StoredProviders {
    /// `defaults` is the configuration's `[providers]` table.
    pub fn new(
        store: Arc<dyn NotifyStore>,
        builders: HashMap<&'static str, Builder>,
        defaults: Map<String, Value>,
    ) -> Self {
        Self {
            store,
            builders,
            defaults,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn defaults_for(&self, channel: &str) -> Map<String, Value> {
        // Operator defaults are named by provider; two channels are named otherwise.
        // (`email` picks its provider's table itself, by the settings' `provider`.)
        let provider = match channel {
            "sms" => "twilio",
            "email" => return self.defaults.clone(),
            other => other,
        };
        let mut own = self
            .defaults
            .get(provider)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // The contract names FCM's OAuth endpoint as a provider of its own.
        if channel == "fcm" {
            if let Some(uri) = self
                .defaults
                .get("fcm_token_uri")
                .and_then(|t| t.get("endpoint"))
            {
                own.insert("token_uri".into(), uri.clone());
            }
        }
        own
    }

    async fn get(&self, app: Id, channel: &'static str) -> Result<Built, Unconfigured> {
        if let Some(e) = self.cache.read().get(&(app, channel)) {
            if e.checked.elapsed() < RECHECK {
                return Ok(e.built.clone());
            }
        }
        let builder = self
            .builders
            .get(channel)
            .ok_or_else(|| Unconfigured(format!("this server has no {channel} provider")))?;
        let stored = self
            .store
            .provider(app, channel)
            .await
            .map_err(|e| Unconfigured(format!("provider settings unavailable: {e}")))?;
        let Some((settings, updated_at)) = stored else {
            self.cache.write().remove(&(app, channel));
            return Err(Unconfigured(format!(
                "no {channel} provider configured for this app"
            )));
        };
        if let Some(built) = fresh(&mut self.cache.write(), app, channel, updated_at) {
            return Ok(built);
        }
        let built = builder(&settings, &self.defaults_for(channel))
            .map_err(|e| Unconfigured(format!("{channel} settings are unusable: {e}")))?;
        // Sends that missed the cache together each built a client; the first one in
        // is the one every send uses, so the app keeps one connection pool and one
        // provider token (or OAuth exchange), not one per racing send. A client that
        // loses has dialled nothing yet: clients connect on their first send.
        let mut cache = self.cache.write();
        if let Some(built) = fresh(&mut cache, app, channel, updated_at) {
            return Ok(built);
        }
        cache.insert(
            (app, channel),
            Entry {
                updated_at,
                checked: Instant::now(),
                built: built.clone(),
            },
        );
        Ok(built)
    }
}

/// The entry's client if it is still that of the settings saved at `updated_at`,
/// marked as checked now.
fn fresh(
    cache: &mut HashMap<(Id, &'static str), Entry>,
    app: Id,
    channel: &'static str,
    updated_at: i64,
) -> Option<Built> {
    let e = cache.get_mut(&(app, channel))?;
    if e.updated_at != updated_at {
        return None;
    }
    e.checked = Instant::now();
    Some(e.built.clone())
}

fn wrong_kind(channel: &str) -> Unconfigured {
    Unconfigured(format!(
        "the {channel} builder made the wrong kind of client"
    ))
}

#[async_trait]
impl ProviderDirectory for StoredProviders {
    async fn push(
        &self,
        app: Id,
        platform: Platform,
    ) -> Result<Arc<dyn PushProvider>, Unconfigured> {
        let channel = match platform {
            Platform::Apns => "apns",
            Platform::Fcm => "fcm",
        };
        match self.get(app, channel).await? {
            Built::Push(p) => Ok(p),
            _ => Err(wrong_kind(channel)),
        }
    }

    async fn sms(&self, app: Id) -> Result<Arc<dyn SmsProvider>, Unconfigured> {
        match self.get(app, "sms").await? {
            Built::Sms(p) => Ok(p),
            _ => Err(wrong_kind("sms")),
        }
    }

    async fn email(&self, app: Id) -> Result<Arc<dyn EmailProvider>, Unconfigured> {
        match self.get(app, "email").await? {
            Built::Email(p) => Ok(p),
            _ => Err(wrong_kind("email")),
        }
    }

    async fn webhook(&self, app: Id) -> Result<Arc<dyn WebhookProvider>, Unconfigured> {
        match self.get(app, "webhook").await? {
            Built::Webhook(p) => Ok(p),
            _ => Err(wrong_kind("webhook")),
        }
    }

    fn validate(&self, channel: &str, settings: &Value) -> Result<(), ConfigError> {
        if !settings.is_object() {
            return Err(ConfigError::new(
                "settings",
                "provider settings are a JSON object",
            ));
        }
        let builder = self.builders.get(channel).ok_or_else(|| {
            ConfigError::new("channel", format!("this server has no {channel} provider"))
        })?;
        // Building the client is the validation: keys parse, URLs are sane.
        builder(settings, &self.defaults_for(channel)).map(drop)
    }

    fn redact(&self, _channel: &str, settings: &Value) -> Value {
        redact(settings)
    }
}

/// Replaces secret values (and passwords inside URLs) with `"<redacted>"`.
pub fn redact(settings: &Value) -> Value {
    match settings {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_FIELDS.contains(&k.as_str()) {
                        Value::String("<redacted>".into())
                    } else if k == "url" {
                        v.as_str()
                            .map_or_else(|| v.clone(), |u| Value::String(redact_url_password(u)))
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted() {
        let v = json!({"service_account": {"private_key": "-----BEGIN", "client_email": "a@b"}, "api_key": "SG.x",
                       "url": "smtp://me:hunter2@mail:587", "from": "x@y"});
        let r = redact(&v);
        assert_eq!(r["service_account"]["private_key"], "<redacted>");
        assert_eq!(r["service_account"]["client_email"], "a@b");
        assert_eq!(r["api_key"], "<redacted>");
        assert_eq!(r["url"], "smtp://me:<redacted>@mail:587");
        assert_eq!(r["from"], "x@y");
    }
}
