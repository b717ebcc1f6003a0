//! Firebase Cloud Messaging HTTP v1: one request per device token, authorised by an
//! OAuth2 access token obtained with the app's service account (an RS256 JWT
//! assertion exchanged at the account's `token_uri`) and cached until shortly before
//! it expires.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

use crate::provider::{
    parse_retry_after, ConfigError, Outcome, Priority, PushMessage, PushProvider,
};
use crate::providers::tls::client_config;
use crate::settings::FcmSettings;

pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Refresh this long before the token's own expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Google asks for at least a minute before retrying a quota error.
const QUOTA_BACKOFF: Duration = Duration::from_secs(60);

pub struct FcmProvider {
    http: reqwest::Client,
    send_url: String,
    token_uri: String,
    client_email: String,
    key_id: Option<String>,
    key: EncodingKey,
    access: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl FcmProvider {
    pub fn new(settings: &FcmSettings, request_timeout: Duration) -> Result<Self, ConfigError> {
        let sa = &settings.service_account;
        let key = EncodingKey::from_rsa_pem(sa.private_key.as_bytes()).map_err(|_| {
            ConfigError::new(
                "service_account.private_key",
                "private_key must be the PEM RSA key of the service account",
            )
        })?;
        if sa.project_id.trim().is_empty()
            || !sa
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ConfigError::new(
                "service_account.project_id",
                "project_id is required",
            ));
        }
        if !sa.client_email.contains('@') {
            return Err(ConfigError::new(
                "service_account.client_email",
                "client_email is the service account's address",
            ));
        }
        let token_uri = reqwest::Url::parse(&sa.token_uri)
            .ok()
            .filter(|u| u.scheme() == "https")
            .ok_or_else(|| {
                ConfigError::new(
                    "service_account.token_uri",
                    "token_uri must be an https URL",
                )
            })?;
        let base = settings
            .endpoint
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
        let tls = client_config(settings.endpoint.ca_pem.as_deref(), &[b"h2", b"http/1.1"])
            .map_err(|e| ConfigError::new("ca_pem", e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(request_timeout)
            .build()
            .map_err(|e| ConfigError::new("endpoint", e.to_string()))?;
        let provider = Self {
            http,
            send_url: format!(
                "{}/v1/projects/{}/messages:send",
                base.trim_end_matches('/'),
                sa.project_id
            ),
            token_uri: token_uri.to_string(),
            client_email: sa.client_email.clone(),
            key_id: sa.private_key_id.clone(),
            key,
            access: tokio::sync::Mutex::new(None),
        };
        // A key that parses but cannot sign is a settings error, found now.
        provider
            .assertion()
            .map_err(|e| ConfigError::new("service_account.private_key", e.to_string()))?;
        Ok(provider)
    }

    fn assertion(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        jsonwebtoken::encode(
            &header,
            &json!({"iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": iat, "exp": iat + 3600}),
            &self.key,
        )
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    /// The lock makes concurrent sends share one exchange.
    async fn access_token(&self) -> Result<String, String> {
        let mut cached = self.access.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let assertion = self.assertion().map_err(|e| format!("assertion: {e}"))?;
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|_| status.is_success());
        let Some(token) = token else {
            return Err(format!("token endpoint answered {status}: {body}"));
        };
        let lifetime = Duration::from_secs(
            body.get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(3600),
        );
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        *cached = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }

    async fn forget(&self, token: &str) {
        let mut cached = self.access.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t == token) {
            *cached = None;
        }
    }

    fn body(message: &PushMessage) -> Value {
        // FCM data values must be strings.
        let data: Map<String, Value> = message
            .data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                )
            })
            .collect();
        let mut msg = Map::new();
        msg.insert("token".into(), Value::String(message.token.clone()));
        if message.title.is_some() || message.body.is_some() {
            msg.insert(
                "notification".into(),
                json!({"title": message.title, "body": message.body}),
            );
        }
        if !data.is_empty() {
            msg.insert("data".into(), Value::Object(data));
        }
        let mut android = Map::new();
        android.insert(
            "priority".into(),
            Value::String(
                if message.priority == Priority::High {
                    "HIGH"
                } else {
                    "NORMAL"
                }
                .into(),
            ),
        );
        if let Some(key) = &message.collapse_key {
            android.insert("collapse_key".into(), Value::String(key.clone()));
        }
        if let Some(expires) = message.expires_at_ms {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            android.insert(
                "ttl".into(),
                Value::String(format!("{}s", ((expires - now) / 1000).max(0))),
            );
        }
        msg.insert("android".into(), Value::Object(android));
        json!({ "message": msg })
    }
}

#[async_trait]
impl PushProvider for FcmProvider {
    async fn send(&self, message: &PushMessage) -> Outcome {
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(reason) => {
                return Outcome::Retry {
                    reason,
                    retry_after: None,
                }
            }
        };
        let response = match self
            .http
            .post(&self.send_url)
            .bearer_auth(&token)
            .json(&Self::body(message))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("fcm unreachable: {e}"),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Outcome::Sent {
                provider_message_id: body.get("name").and_then(Value::as_str).map(str::to_owned),
            };
        }
        let error = &body["error"];
        let code = error["details"]
            .as_array()
            .and_then(|d| {
                d.iter()
                    .find_map(|x| x.get("errorCode").and_then(Value::as_str))
            })
            .or_else(|| error["status"].as_str())
            .unwrap_or_default()
            .to_owned();
        let reason = format!(
            "FCM {} {code}: {}",
            status.as_u16(),
            error["message"].as_str().unwrap_or_default()
        );
        match (status.as_u16(), code.as_str()) {
            (_, "UNREGISTERED") => Outcome::TargetGone { reason },
            (401, _) => {
                self.forget(&token).await;
                Outcome::Retry {
                    reason,
                    retry_after: None,
                }
            }
            (429, _) | (_, "QUOTA_EXCEEDED") => Outcome::Retry {
                reason,
                retry_after: Some(retry_after.unwrap_or(QUOTA_BACKOFF)),
            },
            (500..=599, _) => Outcome::Retry {
                reason,
                retry_after,
            },
            _ => Outcome::Failed { reason },
        }
    }
}
