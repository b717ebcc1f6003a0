//! Per-app provider settings, as `PUT /v1/providers/{channel}` takes them. Secrets are
//! kept; `redacted()` is what `GET` answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Fields every provider accepts: where to reach it and what else to trust.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    /// Base URL (scheme, host, port; no path). The provider's own paths are appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// PEM certificates trusted in addition to the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApnsEnvironment {
    #[default]
    Production,
    Sandbox,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApnsSettings {
    /// The PKCS#8 EC P-256 `.p8` key Apple issues (secret).
    pub key_pem: String,
    /// 10-character key id.
    pub key_id: String,
    /// 10-character team id.
    pub team_id: String,
    /// Default `apns-topic` (bundle id).
    pub topic: String,
    #[serde(default)]
    pub environment: ApnsEnvironment,
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    /// PKCS#8 RSA key (secret).
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FcmSettings {
    pub service_account: ServiceAccount,
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// Always `twilio`.
    pub provider: String,
    pub account_sid: String,
    /// Secret; also the key of `X-Twilio-Signature` on status callbacks.
    pub auth_token: String,
    /// Sender number (E.164) or messaging service.
    pub from: String,
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum EmailSettings {
    Sendgrid {
        /// Secret.
        api_key: String,
        from: String,
        /// Key that verifies SendGrid's signed event webhook (base64 ECDSA public key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook_public_key: Option<String>,
        #[serde(flatten)]
        endpoint: Endpoint,
    },
    Smtp {
        /// `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://...`
        /// (implicit TLS). Secret when it carries a password.
        url: String,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    /// HMAC-SHA256 key of `X-Tidings-Signature` (secret).
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}
