use reqwest::StatusCode;
use serde::Deserialize;

/// An RFC 9457 problem as the server sends it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    pub code: String,
    #[serde(default)]
    pub field: Option<String>,
}

impl Problem {
    pub(crate) fn from_status(status: StatusCode, body: &[u8]) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or_default().into(),
            status: status.as_u16(),
            detail: String::from_utf8_lossy(body).into_owned(),
            code: "unknown".into(),
            field: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{status} {}: {}", problem.code, problem.detail)]
    Api {
        status: u16,
        problem: Box<Problem>,
        retry_after_secs: Option<u64>,
    },
    #[error("http: {0}")]
    Http(#[source] reqwest::Error),
    #[error("unexpected response body: {0}")]
    Decode(String),
}

impl Error {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }
}
