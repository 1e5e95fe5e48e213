//! The one error type of every handler, and its JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `not_found`.
    pub error: &'static str,
    /// A sentence for the person reading it.
    pub message: String,
    /// For an extract refused for its rejected rows: the rejection report (the first
    /// 10,000 rows; the message gives the counts), since no batch keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejections: Option<Vec<RejectedRow>>,
}

/// One row of a rejection report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RejectedRow {
    /// Row number in the file (the header is row 1).
    pub row: i64,
    /// The field at fault, or `row`.
    pub field: String,
    /// Why, without repeating the value.
    pub reason: String,
}

/// The most rows of a rejection report a refusal carries.
pub const REPORTED_REJECTIONS: usize = 10_000;

/// An error a handler returns; each variant has one status and one code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The caller's identity is missing or not accepted (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The change conflicts with the current state (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed (413 `payload_too_large`).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body came too slowly, stalled or took too long (408 `request_timeout`).
    #[error("{0}")]
    RequestTimeout(String),
    /// The body's media type or encoding is not supported (415 `unsupported_media_type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An uploaded extract was refused as a whole (422 `extract_refused`).
    #[error("{0}")]
    ExtractRefused(String),
    /// An uploaded extract was refused for its rejected rows (422 `extract_refused`), with its
    /// rejection report.
    #[error("{0}")]
    RowsRefused(String, std::sync::Arc<Vec<RejectedRow>>),
    /// The thing asked for does not exist (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The caller sent more requests than its rate limit allows (429 `rate_limited`); the
    /// value is the seconds to wait.
    #[error("too many requests: try again in {0} s")]
    TooManyRequests(u64),
    /// A dependency such as the database is down (503 `unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// The request came over plain HTTP where only HTTPS is served (403 `https_required`).
    #[error("this service answers only over HTTPS")]
    HttpsRequired,
    /// A fault of ours (500 `internal`); the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The machine-readable code of the error.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::RequestTimeout(_) => "request_timeout",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::ExtractRefused(_) | Self::RowsRefused(..) => "extract_refused",
            Self::NotFound(_) => "not_found",
            Self::TooManyRequests(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::HttpsRequired => "https_required",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ExtractRefused(_) | Self::RowsRefused(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::HttpsRequired => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "request failed");
        }
        let message = match self {
            Self::Internal(_) => "internal error: the request id in the x-request-id header identifies it in the logs".to_owned(),
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unavailable(_) => {
                response.insert_header(("retry-after", "30"));
            }
            Self::TooManyRequests(seconds) => {
                response.insert_header(("retry-after", seconds.to_string()));
            }
            Self::Unauthorized(_) => {
                response.insert_header(("www-authenticate", "Bearer realm=\"safeguard-atlas\""));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            message,
            rejections: match self {
                Self::RowsRefused(_, rows) => Some(rows.as_ref().clone()),
                _ => None,
            },
        })
    }
}

impl From<atlas_store::StoreError> for ApiError {
    fn from(err: atlas_store::StoreError) -> Self {
        use atlas_store::StoreError;
        match err {
            StoreError::Unreachable { .. } | StoreError::Pool(_) => {
                Self::Unavailable("the database is not reachable; try again shortly".to_owned())
            }
            StoreError::NotFound(message) => Self::NotFound(message),
            StoreError::Invalid(message) => Self::BadRequest(message),
            StoreError::Conflict(message) => Self::Conflict(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<atlas_app::analysis::AnalysisError> for ApiError {
    fn from(err: atlas_app::analysis::AnalysisError) -> Self {
        use atlas_app::analysis::AnalysisError;
        match err {
            AnalysisError::Question(message) | AnalysisError::OverBudget(message) => {
                Self::BadRequest(message)
            }
            AnalysisError::NotFound(message) => Self::NotFound(message),
            AnalysisError::Conflict(message) => Self::Conflict(message),
            AnalysisError::Store(err) => err.into(),
            AnalysisError::Internal(detail) => Self::Internal(detail),
        }
    }
}
