//! The platform's error vocabulary. Every error that reaches a client carries one of
//! the stable [`ErrorCode`]s; the HTTP layer maps them to statuses and problem+json.

use serde::Serialize;

/// Stable machine codes, part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// A failure of a platform operation, phrased for the caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed; `field` names the offending field when there is one.
    #[error("{detail}")]
    Validation {
        field: Option<&'static str>,
        detail: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u64,
    },
    /// A fault of ours, not the caller's; the detail is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn validation(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Validation {
            field: Some(field),
            detail: detail.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::ValidationFailed,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// What a storage backend can report, free of any driver's types.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A uniqueness rule was broken; the payload names what was duplicated
    /// (`"username"`, `"external_id"`, ...).
    #[error("{0} already exists")]
    Conflict(String),
    /// The backend cannot be reached or is shutting down; worth retrying later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reported.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Error::Conflict(format!("{what} is already taken")),
            StoreError::Unavailable(detail) => Error::Unavailable {
                detail,
                retry_after_secs: 1,
            },
            StoreError::Backend(detail) => Error::Internal(detail),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
