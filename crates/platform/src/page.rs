//! Cursor pagination shared by every list of the API.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// `{ "items": [...], "next_cursor": "..." | null }`
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` (or `before`, for lists that page backwards) to get the next
    /// page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The `limit` of a list request, clamped to the configured bounds.
#[derive(Clone, Copy, Debug)]
pub struct PageLimits {
    pub default: u32,
    pub max: u32,
}

impl PageLimits {
    pub fn resolve(&self, requested: Option<u32>) -> Result<u32> {
        match requested {
            None => Ok(self.default),
            Some(0) => Err(Error::validation("limit", "limit must be at least 1")),
            Some(n) if n > self.max => Err(Error::validation(
                "limit",
                format!("limit must be at most {}", self.max),
            )),
            Some(n) => Ok(n),
        }
    }
}

/// Cursors are opaque to clients: today the position's key, base64url-encoded.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

pub fn decode_cursor(field: &'static str, cursor: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.len() <= 256)
        .ok_or_else(|| Error::validation(field, "not a cursor this server issued"))
}
