//! RFC 9457 problem details: the one shape every error of the API takes.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use tidings_platform::{Error, ErrorCode};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `application/problem+json` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the kind of problem: `urn:tidings:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code: `validation_failed`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `rate_limited`, ...
    pub code: String,
    /// The offending field, for validation failures that concern one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<&'static str>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
}

/// The code a bare HTTP status stands for, when no handler chose one.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "validation_failed",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "unavailable",
        504 => "timeout",
        _ if status.is_server_error() => "internal",
        _ => "bad_request",
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = match err.code() {
            ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut api = ApiError::new(status, err.code().as_str(), err.to_string());
        match err {
            Error::Validation { field, .. } => api.field = field,
            Error::RateLimited {
                retry_after_secs, ..
            }
            | Error::Unavailable {
                retry_after_secs, ..
            } => api.retry_after_secs = Some(retry_after_secs),
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                api.detail = "an internal error occurred; it has been logged".into();
            }
            _ => {}
        }
        api
    }
}

impl From<tidings_platform::StoreError> for ApiError {
    fn from(err: tidings_platform::StoreError) -> Self {
        Error::from(err).into()
    }
}

pub fn title_for(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let problem = Problem {
            kind: format!("urn:tidings:problem:{}", self.code),
            title: title_for(self.status),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
            field: self.field.map(str::to_string),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after_secs.or_else(|| {
            matches!(
                self.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
            .then_some(1)
        }) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="tidings", Basic realm="tidings""#),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
