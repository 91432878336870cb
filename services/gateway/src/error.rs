//! JSON extraction whose failures answer problem+json like every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use chorus_kit::ServiceError;
use serde::de::DeserializeOwned;

/// Like `axum::Json`, with malformed bodies answered as 422 problem+json.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ServiceError::invalid(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    "send the body as JSON (Content-Type: application/json)".to_string()
                }
                other => format!("request body is not valid: {}", other.body_text()),
            })),
        }
    }
}

/// Like `axum::extract::Query`, with malformed query strings answered as 422 problem+json.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ServiceError::invalid(format!(
                "query parameters are not valid: {}",
                rejection
                    .body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
            ))),
        }
    }
}
