//! The provider clients this server can build, by settings channel name. Each builder
//! reads the app's stored settings (operator defaults fill what the app left out) and
//! returns a ready client or the field that is wrong.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tidings_notify::provider::ConfigError;
use tidings_notify::providers::apns::{ApnsOptions, ApnsProvider};
use tidings_notify::providers::fcm::FcmProvider;
use tidings_notify::providers::sendgrid::SendgridProvider;
use tidings_notify::providers::smtp::SmtpProvider;
use tidings_notify::providers::twilio::TwilioProvider;
use tidings_notify::providers::webhook::{WebhookOptions, WebhookProvider};
use tidings_notify::settings::{
    ApnsSettings, EmailSettings, FcmSettings, TwilioSettings, WebhookSettings,
};

use crate::notify::directory::{Builder, Built};

pub fn provider_builders() -> HashMap<&'static str, Builder> {
    let mut builders: HashMap<&'static str, Builder> = HashMap::new();
    builders.insert("apns", apns);
    builders.insert("fcm", fcm);
    builders.insert("sms", sms);
    builders.insert("email", email);
    builders.insert("webhook", webhook);
    builders
}

/// The app's settings with the operator's defaults under them.
fn settings<T: DeserializeOwned>(
    app: &Value,
    defaults: &Map<String, Value>,
) -> Result<T, ConfigError> {
    let mut merged = defaults.clone();
    if let Value::Object(own) = app {
        for (k, v) in own {
            merged.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| ConfigError::new("settings", e.to_string()))
}

fn webhook(app: &Value, defaults: &Map<String, Value>) -> Result<Built, ConfigError> {
    let s: WebhookSettings = settings(app, &strip_endpoint(defaults))?;
    Ok(Built::Webhook(Arc::new(WebhookProvider::new(
        &s,
        WebhookOptions::default(),
    )?)))
}

/// A webhook's URL is always the app's own; operator defaults may only add `ca_pem`.
fn strip_endpoint(defaults: &Map<String, Value>) -> Map<String, Value> {
    defaults
        .iter()
        .filter(|(k, _)| k.as_str() == "ca_pem")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn apns(app: &Value, defaults: &Map<String, Value>) -> Result<Built, ConfigError> {
    let s: ApnsSettings = settings(app, defaults)?;
    Ok(Built::Push(Arc::new(ApnsProvider::new(
        &s,
        ApnsOptions::default(),
    )?)))
}

/// The operator's `[providers.twilio]` defaults apply to the `sms` channel.
fn sms(app: &Value, defaults: &Map<String, Value>) -> Result<Built, ConfigError> {
    let s: TwilioSettings = settings(app, defaults)?;
    Ok(Built::Sms(Arc::new(TwilioProvider::new(
        &s,
        std::time::Duration::from_secs(10),
    )?)))
}

fn email(app: &Value, defaults: &Map<String, Value>) -> Result<Built, ConfigError> {
    let provider = app
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Operator defaults are per provider: `[providers.sendgrid]`, `[providers.smtp]`.
    let defaults = defaults
        .get(provider)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match settings::<EmailSettings>(app, &defaults)? {
        EmailSettings::Sendgrid {
            api_key,
            from,
            endpoint,
            ..
        } => Ok(Built::Email(Arc::new(SendgridProvider::new(
            &api_key,
            &from,
            &endpoint,
            std::time::Duration::from_secs(10),
        )?))),
        EmailSettings::Smtp { url, from, ca_pem } => Ok(Built::Email(Arc::new(SmtpProvider::new(
            &url,
            &from,
            ca_pem.as_deref(),
            std::time::Duration::from_secs(20),
        )?))),
    }
}

fn fcm(app: &Value, defaults: &Map<String, Value>) -> Result<Built, ConfigError> {
    let mut s: FcmSettings = settings(app, &strip_token_uri(defaults))?;
    // `[providers.fcm_token_uri] endpoint` points the OAuth exchange elsewhere (tests).
    if let Some(uri) = defaults.get("token_uri").and_then(Value::as_str) {
        s.service_account.token_uri = uri.to_owned();
    }
    Ok(Built::Push(Arc::new(FcmProvider::new(
        &s,
        std::time::Duration::from_secs(10),
    )?)))
}

fn strip_token_uri(defaults: &Map<String, Value>) -> Map<String, Value> {
    defaults
        .iter()
        .filter(|(k, _)| k.as_str() != "token_uri")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
