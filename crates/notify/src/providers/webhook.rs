//! Outgoing webhooks: the delivery is POSTed as JSON to the app's URL with an
//! HMAC-SHA256 signature of the exact body, so the receiver can check it came from us.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::provider::{
    parse_retry_after, ConfigError, Outcome, WebhookMessage, WebhookProvider as WebhookSender,
};
use crate::providers::tls::client_config;
use crate::settings::WebhookSettings;

pub const SIGNATURE_HEADER: &str = "X-Tidings-Signature";

#[derive(Clone, Debug)]
pub struct WebhookOptions {
    pub request_timeout: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
        }
    }
}

pub struct WebhookProvider {
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

/// The `X-Tidings-Signature` value for `body`: `sha256=<hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

impl WebhookProvider {
    pub fn new(settings: &WebhookSettings, options: WebhookOptions) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(&settings.url)
            .map_err(|e| ConfigError::new("url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::new("url", "url must be an http(s) URL"));
        }
        if settings.secret.len() < 16 {
            return Err(ConfigError::new(
                "secret",
                "secret must be at least 16 characters",
            ));
        }
        let tls = client_config(settings.ca_pem.as_deref(), &[b"h2", b"http/1.1"])
            .map_err(|e| ConfigError::new("ca_pem", e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| ConfigError::new("url", e.to_string()))?;
        Ok(Self {
            http,
            url: settings.url.clone(),
            secret: settings.secret.as_bytes().to_vec(),
        })
    }
}

#[async_trait]
impl WebhookSender for WebhookProvider {
    async fn send(&self, message: &WebhookMessage) -> Outcome {
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(&self.secret, &message.body))
            .body(message.body.clone())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("webhook unreachable: {e}"),
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
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status.is_success() {
            Outcome::Sent {
                provider_message_id: request_id,
            }
        } else if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            Outcome::Retry {
                reason: format!("webhook answered {status}"),
                retry_after,
            }
        } else {
            Outcome::Failed {
                reason: format!("webhook answered {status}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip() {
        let sig = sign(b"topsecret-topsecret", b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert!(verify(b"topsecret-topsecret", b"{\"a\":1}", &sig));
        assert!(!verify(b"topsecret-topsecret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other-secret-value", b"{\"a\":1}", &sig));
        assert!(!verify(b"topsecret-topsecret", b"{\"a\":1}", "md5=00"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = WebhookSettings {
            url: "https://hooks.example.com/x".into(),
            secret: "0123456789abcdef".into(),
            ca_pem: None,
        };
        assert!(WebhookProvider::new(&ok, WebhookOptions::default()).is_ok());
        let bad_url = WebhookSettings {
            url: "ftp://x".into(),
            ..ok.clone()
        };
        assert_eq!(
            WebhookProvider::new(&bad_url, WebhookOptions::default())
                .err()
                .unwrap()
                .field,
            "url"
        );
        let short = WebhookSettings {
            secret: "short".into(),
            ..ok
        };
        assert_eq!(
            WebhookProvider::new(&short, WebhookOptions::default())
                .err()
                .unwrap()
                .field,
            "secret"
        );
    }
}
