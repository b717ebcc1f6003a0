//! Twilio Programmable Messaging: a form POST per SMS with Basic auth, and the
//! signature check of Twilio's status callbacks.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;

use crate::provider::{parse_retry_after, ConfigError, Outcome, SmsMessage, SmsProvider};
use crate::providers::tls::client_config;
use crate::settings::TwilioSettings;

pub const DEFAULT_ENDPOINT: &str = "https://api.twilio.com";

pub struct TwilioProvider {
    http: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

/// `X-Twilio-Signature`: base64 HMAC-SHA1, keyed by the auth token, of the full URL
/// followed by every POST parameter's name and value, sorted by name.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac =
        <Hmac<Sha1>>::new_from_slice(auth_token.as_bytes()).expect("hmac takes any key length");
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time check of a callback's signature.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    let Ok(given) = STANDARD.decode(header.trim()) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac =
        <Hmac<Sha1>>::new_from_slice(auth_token.as_bytes()).expect("hmac takes any key length");
    mac.update(data.as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// What a status callback means for the delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackStatus {
    Delivered,
    Failed {
        reason: String,
    },
    /// Still on its way (queued, sending, sent, accepted, scheduled): nothing to record.
    InTransit,
}

pub fn callback_status(message_status: &str, error_code: Option<&str>) -> CallbackStatus {
    match message_status {
        "delivered" | "read" => CallbackStatus::Delivered,
        "failed" | "undelivered" | "canceled" => CallbackStatus::Failed {
            reason: match error_code {
                Some(code) if !code.is_empty() => format!("twilio {message_status}: error {code}"),
                _ => format!("twilio {message_status}"),
            },
        },
        _ => CallbackStatus::InTransit,
    }
}

impl TwilioProvider {
    pub fn new(settings: &TwilioSettings, request_timeout: Duration) -> Result<Self, ConfigError> {
        if settings.provider != "twilio" {
            return Err(ConfigError::new(
                "provider",
                "the sms provider must be \"twilio\"",
            ));
        }
        let sid_ok = settings.account_sid.len() == 34
            && settings.account_sid.starts_with("AC")
            && settings.account_sid[2..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
        if !sid_ok {
            return Err(ConfigError::new(
                "account_sid",
                "account_sid is AC followed by 32 hex digits",
            ));
        }
        if settings.auth_token.trim().is_empty() {
            return Err(ConfigError::new("auth_token", "auth_token is required"));
        }
        if settings.from.trim().is_empty() {
            return Err(ConfigError::new(
                "from",
                "from (a sender number or messaging service) is required",
            ));
        }
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
        Ok(Self {
            http,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                base.trim_end_matches('/'),
                settings.account_sid
            ),
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            from: settings.from.clone(),
        })
    }
}

#[async_trait]
impl SmsProvider for TwilioProvider {
    async fn send(&self, message: &SmsMessage) -> Outcome {
        let mut form = vec![
            ("To", message.to.as_str()),
            ("From", self.from.as_str()),
            ("Body", message.body.as_str()),
        ];
        if let Some(cb) = &message.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let response = match self
            .http
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("twilio unreachable: {e}"),
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
                provider_message_id: body.get("sid").and_then(Value::as_str).map(str::to_owned),
            };
        }
        let reason = format!(
            "twilio {}: {} {}",
            status.as_u16(),
            body.get("code").map(Value::to_string).unwrap_or_default(),
            body.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_order_independent_and_tamper_evident() {
        let params = vec![
            ("To".to_string(), "+14155550100".to_string()),
            ("Body".to_string(), "hi".to_string()),
        ];
        let mut reversed = params.clone();
        reversed.reverse();
        let sig = signature("token", "https://example.com/cb", &params);
        assert_eq!(sig, signature("token", "https://example.com/cb", &reversed));
        assert!(verify_signature(
            "token",
            "https://example.com/cb",
            &reversed,
            &sig
        ));
        let tampered = vec![
            ("To".to_string(), "+14155550101".to_string()),
            ("Body".to_string(), "hi".to_string()),
        ];
        assert!(!verify_signature(
            "token",
            "https://example.com/cb",
            &tampered,
            &sig
        ));
        assert!(!verify_signature(
            "other",
            "https://example.com/cb",
            &params,
            &sig
        ));
        assert!(!verify_signature(
            "token",
            "https://example.com/other",
            &params,
            &sig
        ));
    }

    #[test]
    fn callback_statuses() {
        assert_eq!(
            callback_status("delivered", None),
            CallbackStatus::Delivered
        );
        assert_eq!(
            callback_status("undelivered", Some("30003")),
            CallbackStatus::Failed {
                reason: "twilio undelivered: error 30003".into()
            }
        );
        assert_eq!(callback_status("sent", None), CallbackStatus::InTransit);
    }
}
