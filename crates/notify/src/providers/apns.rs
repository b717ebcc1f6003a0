//! Apple Push Notification service: HTTP/2 over TLS with token (JWT) authentication.
//!
//! A few long-lived connections ([`Http2Pool`]) are shared by every send, each
//! carrying many concurrent streams. The provider token is an ES256 JWT re-signed
//! every 50 minutes: Apple refuses tokens older than an hour and signing more often
//! than every 20 minutes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode, Uri};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

use crate::provider::{
    parse_retry_after, ConfigError, Outcome, Priority, PushMessage, PushProvider,
};
use crate::providers::http2::Http2Pool;
use crate::providers::tls::client_config;
use crate::settings::{ApnsEnvironment, ApnsSettings};

pub const PRODUCTION: &str = "https://api.push.apple.com";
pub const SANDBOX: &str = "https://api.sandbox.push.apple.com";
/// Apple's limit on a notification payload.
pub const MAX_PAYLOAD: usize = 4096;
const TOKEN_REFRESH: Duration = Duration::from_secs(50 * 60);

const APNS_TOPIC: HeaderName = HeaderName::from_static("apns-topic");
const APNS_PUSH_TYPE: HeaderName = HeaderName::from_static("apns-push-type");
const APNS_PRIORITY: HeaderName = HeaderName::from_static("apns-priority");
const APNS_ID: HeaderName = HeaderName::from_static("apns-id");
const APNS_EXPIRATION: HeaderName = HeaderName::from_static("apns-expiration");
const APNS_COLLAPSE_ID: HeaderName = HeaderName::from_static("apns-collapse-id");

#[derive(Clone, Debug)]
pub struct ApnsOptions {
    /// Long-lived HTTP/2 connections shared by all sends.
    pub connections: usize,
    pub request_timeout: Duration,
}

impl Default for ApnsOptions {
    fn default() -> Self {
        Self {
            connections: 2,
            request_timeout: Duration::from_secs(10),
        }
    }
}

struct ProviderToken {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    /// The token, its `authorization` header (checked once, not per request), and
    /// when it was signed.
    current: Mutex<Option<(String, HeaderValue, Instant)>>,
}

impl ProviderToken {
    fn sign(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        jsonwebtoken::encode(
            &header,
            &json!({"iss": self.team_id, "iat": iat}),
            &self.key,
        )
    }

    /// The cached token and its header, re-signed when older than the refresh period.
    fn get(&self) -> Result<(String, HeaderValue), String> {
        let mut current = self.current.lock();
        if let Some((token, header, at)) = current.as_ref() {
            if at.elapsed() < TOKEN_REFRESH {
                return Ok((token.clone(), header.clone()));
            }
        }
        let token = self.sign().map_err(|e| e.to_string())?;
        let header = HeaderValue::try_from(format!("bearer {token}")).map_err(|e| e.to_string())?;
        *current = Some((token.clone(), header.clone(), Instant::now()));
        Ok((token, header))
    }

    /// Forgets the token if it is still `stale`, so the next send signs a new one.
    fn discard(&self, stale: &str) {
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|(t, _, _)| t == stale) {
            *current = None;
        }
    }
}

struct Payload<'a>(&'a PushMessage);

struct Aps<'a>(&'a PushMessage);

struct Alert<'a>(&'a PushMessage);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0.data.iter().filter(|(k, _)| k.as_str() != "aps") {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("aps", &Aps(self.0))?;
        map.end()
    }
}

impl Serialize for Aps<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        if m.title.is_some() || m.body.is_some() {
            map.serialize_entry("alert", &Alert(m))?;
            map.serialize_entry("sound", "default")?;
        } else {
            map.serialize_entry("content-available", &1)?;
        }
        if let Some(badge) = m.badge {
            map.serialize_entry("badge", &badge)?;
        }
        map.end()
    }
}

impl Serialize for Alert<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(t) = &self.0.title {
            map.serialize_entry("title", t)?;
        }
        if let Some(b) = &self.0.body {
            map.serialize_entry("body", b)?;
        }
        map.end()
    }
}

pub struct ApnsProvider {
    pool: Http2Pool,
    topic: HeaderValue,
    token: ProviderToken,
    timeout: Duration,
}

fn alnum10(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() == 10 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("{field} is the 10-character id Apple shows"),
        ))
    }
}

impl ApnsProvider {
    pub fn new(settings: &ApnsSettings, options: ApnsOptions) -> Result<Self, ConfigError> {
        let key = EncodingKey::from_ec_pem(settings.key_pem.as_bytes()).map_err(|_| {
            ConfigError::new(
                "key_pem",
                "key_pem must be the PKCS#8 EC P-256 .p8 key Apple issues",
            )
        })?;
        alnum10("key_id", &settings.key_id)?;
        alnum10("team_id", &settings.team_id)?;
        if settings.topic.trim().is_empty() {
            return Err(ConfigError::new(
                "topic",
                "topic (the bundle id) is required",
            ));
        }
        let topic = HeaderValue::from_str(&settings.topic)
            .map_err(|_| ConfigError::new("topic", "topic must be a bundle id"))?;
        let base = settings.endpoint.endpoint.clone().unwrap_or_else(|| {
            match settings.environment {
                ApnsEnvironment::Production => PRODUCTION,
                ApnsEnvironment::Sandbox => SANDBOX,
            }
            .to_owned()
        });
        let uri: Uri = base
            .parse()
            .map_err(|_| ConfigError::new("endpoint", "endpoint must be an https URL"))?;
        if uri.scheme_str() != Some("https") || uri.path().len() > 1 || uri.host().is_none() {
            return Err(ConfigError::new(
                "endpoint",
                "endpoint must be https://host[:port] with no path",
            ));
        }
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let tls = client_config(settings.endpoint.ca_pem.as_deref(), &[b"h2"])
            .map_err(|e| ConfigError::new("ca_pem", e.to_string()))?;
        let token = ProviderToken {
            key,
            key_id: settings.key_id.clone(),
            team_id: settings.team_id.clone(),
            current: Mutex::new(None),
        };
        // Sign once now: a key that parses but cannot sign is a settings error.
        token
            .sign()
            .map_err(|e| ConfigError::new("key_pem", e.to_string()))?;
        Ok(Self {
            pool: Http2Pool::new(&host, port, tls, options.connections),
            topic,
            token,
            timeout: options.request_timeout,
        })
    }

    /// The JSON body: the custom data at the top level (an `aps` key in it is
    /// replaced) and Apple's `aps` dictionary. Written straight to bytes rather than
    /// through a `Value` tree built for every delivery.
    fn payload(message: &PushMessage) -> Vec<u8> {
        serde_json::to_vec(&Payload(message)).unwrap_or_default()
    }

    fn request(
        &self,
        message: &PushMessage,
        authorization: HeaderValue,
    ) -> Result<(Request<()>, Bytes), Outcome> {
        let body = Self::payload(message);
        if body.len() > MAX_PAYLOAD {
            return Err(Outcome::Failed {
                reason: format!(
                    "payload is {} bytes; APNs takes at most {MAX_PAYLOAD}",
                    body.len()
                ),
            });
        }
        if message.collapse_key.as_ref().is_some_and(|k| k.len() > 64) {
            return Err(Outcome::Failed {
                reason: "collapse key longer than APNs' 64 bytes".into(),
            });
        }
        if !message.token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Outcome::Failed {
                reason: "BadDeviceToken: not a hex device token".into(),
            });
        }
        let alert = message.title.is_some() || message.body.is_some();
        let priority = match (alert, message.priority) {
            (true, Priority::High) => "10",
            _ => "5",
        };
        let failed = |what: &str| Outcome::Failed {
            reason: format!("request: {what}"),
        };
        let topic = match &message.topic {
            Some(t) => {
                HeaderValue::from_str(t).map_err(|_| failed("topic is not a header value"))?
            }
            None => self.topic.clone(),
        };
        let mut request = Request::post(format!(
            "https://{}/3/device/{}",
            self.pool.authority(),
            message.token
        ))
        .body(())
        .map_err(|e| failed(&e.to_string()))?;
        // Values built here are known to be valid header text; static ones are not
        // checked again on every request.
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(APNS_TOPIC, topic);
        headers.insert(
            APNS_PUSH_TYPE,
            HeaderValue::from_static(if alert { "alert" } else { "background" }),
        );
        headers.insert(APNS_PRIORITY, HeaderValue::from_static(priority));
        let mut id = uuid::Uuid::encode_buffer();
        headers.insert(
            APNS_ID,
            HeaderValue::from_str(message.id.hyphenated().encode_lower(&mut id))
                .map_err(|_| failed("apns-id"))?,
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(expires) = message.expires_at_ms {
            headers.insert(APNS_EXPIRATION, HeaderValue::from((expires / 1000).max(0)));
        }
        if let Some(key) = &message.collapse_key {
            headers.insert(
                APNS_COLLAPSE_ID,
                HeaderValue::from_str(key)
                    .map_err(|_| failed("collapse key is not header text"))?,
            );
        }
        Ok((request, Bytes::from(body)))
    }
}

#[async_trait]
impl PushProvider for ApnsProvider {
    async fn send(&self, message: &PushMessage) -> Outcome {
        let (jwt, authorization) = match self.token.get() {
            Ok(t) => t,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("provider token: {e}"),
                }
            }
        };
        let (request, body) = match self.request(message, authorization) {
            Ok(r) => r,
            Err(outcome) => return outcome,
        };
        // Boxed: the timeout is built around the exchange, and moving the exchange's
        // whole state into it on every send showed up as memmove.
        let exchange = Box::pin(self.pool.send(request, body));
        let response = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Outcome::Retry {
                    reason: "APNs did not answer in time".into(),
                    retry_after: None,
                }
            }
            Ok(Err(reason)) => {
                return Outcome::Retry {
                    reason,
                    retry_after: None,
                }
            }
            Ok(Ok(r)) => r,
        };
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if response.status == StatusCode::OK {
            return Outcome::Sent {
                provider_message_id: header("apns-id"),
            };
        }
        let reason = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let text = format!("APNs {}: {reason}", response.status.as_u16());
        let retry_after =
            header("retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
        match response.status.as_u16() {
            410 => Outcome::TargetGone { reason: text },
            403 if reason == "ExpiredProviderToken" => {
                self.token.discard(&jwt);
                Outcome::Retry {
                    reason: text,
                    retry_after: None,
                }
            }
            429 | 500 | 502 | 503 | 504 => Outcome::Retry {
                reason: text,
                retry_after,
            },
            _ => Outcome::Failed { reason: text },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(title: Option<&str>, data: Value, badge: Option<u32>) -> PushMessage {
        PushMessage {
            id: uuid::Uuid::nil(),
            token: "aa".into(),
            topic: None,
            title: title.map(str::to_owned),
            body: Some("Order 8812".into()).filter(|_| title.is_some()),
            data: data.as_object().cloned().unwrap_or_default(),
            priority: Priority::High,
            collapse_key: None,
            expires_at_ms: None,
            badge,
        }
    }

    fn payload(m: &PushMessage) -> Value {
        serde_json::from_slice(&ApnsProvider::payload(m)).expect("json")
    }

    #[test]
    fn payload_puts_data_beside_aps_and_replaces_an_aps_in_it() {
        let m = message(
            Some("Shipped"),
            json!({"order": "8812", "n": 3, "aps": {"evil": true}}),
            Some(2),
        );
        assert_eq!(
            payload(&m),
            json!({"order": "8812", "n": 3, "aps": {
                "alert": {"title": "Shipped", "body": "Order 8812"}, "sound": "default", "badge": 2
            }})
        );
    }

    #[test]
    fn payload_without_text_is_a_background_push() {
        assert_eq!(
            payload(&message(None, json!({}), None)),
            json!({"aps": {"content-available": 1}})
        );
    }
}
