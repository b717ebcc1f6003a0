use serde::Serialize;

use crate::ids::Id;

/// An application: the tenant every other record belongs to.
///
/// The secret itself is never stored, only its SHA-256 (it is 256 bits of randomness,
/// so a slow password hash buys nothing). The signing key MACs this app's user tokens;
/// it lives in the store so that every node of a cluster accepts every token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub id: Id,
    pub name: String,
    pub key: String,
    pub secret_sha256: [u8; 32],
    pub signing_key: Vec<u8>,
    pub created_at_ms: i64,
}

/// What `tidings app create` prints: the only time the secret is shown.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AppCredentials {
    pub app_id: Id,
    pub app_key: String,
    pub app_secret: String,
}
