//! SendGrid v3 Mail Send, and the checks and parsing of its signed Event Webhook.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::provider::{parse_retry_after, ConfigError, EmailMessage, EmailProvider, Outcome};
use crate::providers::tls::client_config;
use crate::settings::Endpoint;

pub const DEFAULT_ENDPOINT: &str = "https://api.sendgrid.com";
/// The custom argument that carries our delivery id into SendGrid's events.
pub const DELIVERY_ARG: &str = "tidings_delivery";

pub struct SendgridProvider {
    http: reqwest::Client,
    url: String,
    api_key: String,
    from: String,
}

impl SendgridProvider {
    pub fn new(
        api_key: &str,
        from: &str,
        endpoint: &Endpoint,
        request_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        if api_key.trim().is_empty() {
            return Err(ConfigError::new("api_key", "api_key is required"));
        }
        if tidings_platform::model::validate::email(from).is_err() {
            return Err(ConfigError::new("from", "from must be an email address"));
        }
        let base = endpoint
            .endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let parsed =
            reqwest::Url::parse(&base).map_err(|e| ConfigError::new("endpoint", e.to_string()))?;
        if parsed.scheme() != "https" || parsed.path().len() > 1 {
            return Err(ConfigError::new(
                "endpoint",
                "endpoint must be https://host[:port] with no path",
            ));
        }
        let tls = client_config(endpoint.ca_pem.as_deref(), &[b"h2", b"http/1.1"])
            .map_err(|e| ConfigError::new("ca_pem", e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(request_timeout)
            .build()
            .map_err(|e| ConfigError::new("endpoint", e.to_string()))?;
        Ok(Self {
            http,
            url: format!("{}/v3/mail/send", base.trim_end_matches('/')),
            api_key: api_key.to_owned(),
            from: from.to_owned(),
        })
    }
}

#[async_trait]
impl EmailProvider for SendgridProvider {
    async fn send(&self, message: &EmailMessage) -> Outcome {
        let mut content = Vec::new();
        if let Some(text) = &message.text {
            content.push(json!({"type": "text/plain", "value": text}));
        }
        if let Some(html) = &message.html {
            content.push(json!({"type": "text/html", "value": html}));
        }
        if content.is_empty() {
            return Outcome::Failed {
                reason: "an email needs a text or an html body".into(),
            };
        }
        let body = json!({
            "personalizations": [{"to": [{"email": message.to}], "custom_args": {DELIVERY_ARG: message.reference}}],
            "from": {"email": self.from},
            "subject": message.subject,
            "content": content,
        });
        let response = match self
            .http
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("sendgrid unreachable: {e}"),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let message_id = header("x-message-id");
        let now = SystemTime::now();
        let retry_after = header("retry-after")
            .and_then(|v| parse_retry_after(&v, now))
            .or_else(|| {
                let reset: u64 = header("x-ratelimit-reset")?.parse().ok()?;
                let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
                Some(Duration::from_secs(reset.saturating_sub(now_secs)))
            });
        if status.is_success() {
            return Outcome::Sent {
                provider_message_id: message_id,
            };
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let messages: Vec<&str> = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .filter_map(|e| e.get("message").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let reason = format!("sendgrid {}: {}", status.as_u16(), messages.join("; "));
        if status.as_u16() == 429 || status.is_server_error() {
            Outcome::Retry {
                reason,
                retry_after,
            }
        } else {
            Outcome::Failed { reason }
        }
    }
}

/// One event of SendGrid's Event Webhook, as far as deliveries care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Delivered,
    Failed(String),
    Opened,
    Clicked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Our delivery id, from the custom argument.
    pub delivery: Option<String>,
    pub kind: EventKind,
}

/// Parses the webhook body (a JSON array). Events we do not track are left out.
pub fn parse_events(body: &[u8]) -> Result<Vec<Event>, String> {
    let events: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON array of events: {e}"))?;
    Ok(events
        .iter()
        .filter_map(|e| {
            let kind = match e.get("event").and_then(Value::as_str)? {
                "delivered" => EventKind::Delivered,
                "bounce" | "dropped" => EventKind::Failed(format!(
                    "sendgrid {}: {}",
                    e.get("event").and_then(Value::as_str).unwrap_or_default(),
                    e.get("reason").and_then(Value::as_str).unwrap_or_default()
                )),
                "open" => EventKind::Opened,
                "click" => EventKind::Clicked,
                _ => return None,
            };
            Some(Event {
                delivery: e
                    .get(DELIVERY_ARG)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                kind,
            })
        })
        .collect())
}

/// The DER header of a P-256 SubjectPublicKeyInfo; the point follows it.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Checks SendGrid's signed webhook: an ECDSA P-256 / SHA-256 signature (base64 DER)
/// over the timestamp header followed by the raw body, against the public key
/// SendGrid shows (base64 DER SubjectPublicKeyInfo).
pub fn verify_event_signature(
    public_key_b64: &str,
    timestamp: &str,
    body: &[u8],
    signature_b64: &str,
) -> bool {
    let (Ok(key), Ok(sig)) = (
        STANDARD.decode(public_key_b64.trim()),
        STANDARD.decode(signature_b64.trim()),
    ) else {
        return false;
    };
    let point = match key.len() {
        91 if key[..26] == P256_SPKI_PREFIX => &key[26..],
        65 => &key[..],
        _ => return false,
    };
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &sig)
        .is_ok()
}

/// A P-256 point as the base64 SubjectPublicKeyInfo SendGrid would show.
pub fn spki_b64(point: &[u8]) -> String {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    STANDARD.encode(der)
}
