//! One small set of error codes for RPC and HTTP, each mapped once to an HTTP status.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    Conflict,
    Invalid,
    Unauthorized,
    Forbidden,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Invalid => 422,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            400 | 422 => ErrorCode::Invalid,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            429 => ErrorCode::RateLimited,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "Not found",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::Invalid => "Invalid request",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::Unavailable => "Service unavailable",
            ErrorCode::Internal => "Internal error",
        }
    }
}

/// An error a caller may see: a code and a message meant for them. Internal causes are
/// logged where they happen and never carried here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code:?}: {message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    /// The request may have taken effect: it reached the service, whose answer was lost
    /// (a timeout). A retry must not assume it did nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outcome_unknown: bool,
}

/// Marks a response whose request may have taken effect (`ServiceError::outcome_unknown`),
/// for the layers that decide what a retry may do (idempotency keys).
#[derive(Debug, Clone, Copy)]
pub struct OutcomeUnknown;

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            outcome_unknown: false,
        }
    }

    /// The service may have acted, but its answer never came (503).
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        ServiceError {
            outcome_unknown: true,
            ..Self::new(ErrorCode::Unavailable, message)
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// Logs the cause chain and returns a bare internal error.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            chain.push_str(": ");
            chain.push_str(&next.to_string());
            source = next.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(error: sea_orm::DbErr) -> Self {
        match error {
            // The row was read, then removed by another request before this one wrote it
            // (an erasure during an update): it no longer exists for the caller.
            sea_orm::DbErr::RecordNotUpdated => {
                ServiceError::not_found("it no longer exists (removed meanwhile)")
            }
            error => ServiceError::internal(&error),
        }
    }
}

impl From<sea_orm::TransactionError<ServiceError>> for ServiceError {
    fn from(error: sea_orm::TransactionError<ServiceError>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(db) => ServiceError::internal(&db),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

/// RFC 9457 problem details, the body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[schema(example = "https://chorus.dev/problems/invalid")]
    pub r#type: String,
    #[schema(example = "Invalid request")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong, for a person.
    #[schema(example = "caption is 3120 characters; linkedin allows 3000")]
    pub detail: String,
    /// The machine-readable error code.
    pub code: ErrorCode,
    /// The request id, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl From<&ServiceError> for Problem {
    fn from(error: &ServiceError) -> Self {
        Problem {
            r#type: format!("https://chorus.dev/problems/{}", error.code.as_str()),
            title: error.code.title().to_string(),
            status: error.code.http_status(),
            detail: error.message.clone(),
            code: error.code,
            request_id: None,
        }
    }
}

impl axum::response::IntoResponse for ServiceError {
    fn into_response(self) -> axum::response::Response {
        let problem = Problem::from(&self);
        let status = axum::http::StatusCode::from_u16(problem.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        if self.outcome_unknown {
            response.extensions_mut().insert(OutcomeUnknown);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_removed_before_its_update_is_not_found_other_database_errors_are_internal() {
        let gone = ServiceError::from(sea_orm::DbErr::RecordNotUpdated);
        assert_eq!(gone.code, ErrorCode::NotFound);
        let broken = ServiceError::from(sea_orm::DbErr::Custom("disk full".into()));
        assert_eq!(broken.code, ErrorCode::Internal);
        assert_eq!(broken.message, "internal error");
    }
}
