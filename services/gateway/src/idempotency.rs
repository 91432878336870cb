//! `Idempotency-Key` on every `POST` under `/v1`: a client that retries a request it did
//! not hear back from gets the first response again instead of a second effect.
//!
//! - The key is scoped to the caller as authenticated (tenant, user and credential, whatever
//!   the credential: OpenID Connect, API key or development token) and kept in
//!   the `chorus_idempotency` key-value bucket for 24 hours, so every gateway replica sees
//!   it and a restart forgets nothing.
//! - Same key, same request (method, path, query and body): the stored status, body and
//!   `Content-Type`/`Location`/`ETag` headers are replayed with `Idempotent-Replayed: true`.
//! - Same key, another request: 422 and nothing is executed.
//! - Same key while the first request is still running: 409 with `Retry-After`; a
//!   reservation left by a gateway that stopped mid-request is taken over after
//!   [`ABANDONED_AFTER`].
//! - Server errors (5xx) are not kept: the reservation is released so the retry runs again,
//!   unless the request may have taken effect (a service reached but whose answer was lost):
//!   the key then stays reserved as "outcome unknown" and a retry answers 409 with
//!   `Retry-After` until [`ABANDONED_AFTER`]; share creation also de-duplicates by the key
//!   in scheduling, so a retry after that never creates a second share.

use crate::AppState;
use async_nats::jetstream::kv;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chorus_kit::ServiceError;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::sync::LazyLock;
use std::time::Duration;
use tracing::Instrument;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest accepted key (a UUID is 36 characters).
pub const MAX_KEY_LENGTH: usize = 255;
/// How long a key is remembered (the bucket's `max_age`).
pub const KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// A reservation older than this belongs to a request that will never finish (its gateway
/// stopped): a retry takes it over.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Requests and responses larger than this are not kept (the bucket's values are NATS
/// messages); such a request runs without the guarantee and says so in the log.
const MAX_KEPT_BYTES: usize = 512 * 1024;
const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// Response headers replayed with the body.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

static OUTCOMES: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_gateway_idempotency_total",
        "POST requests with an Idempotency-Key, by outcome (executed, replayed, mismatch, in_flight, unknown, released, invalid, unavailable)",
        &["outcome"],
    )
});

/// What the bucket holds for a key.
#[derive(Serialize, Deserialize)]
struct Record {
    /// Digest of method, path, query and body.
    fingerprint: String,
    started_at_ms: i64,
    response: Option<Kept>,
    /// The request reached a service whose answer was lost: it may have taken effect.
    #[serde(default)]
    outcome_unknown: bool,
}

#[derive(Serialize, Deserialize)]
struct Kept {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Kept {
    fn into_response(self) -> Response {
        let body = base64::engine::general_purpose::STANDARD
            .decode(self.body)
            .unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
        response
    }
}

fn count(outcome: &str) {
    OUTCOMES.with_label_values(&[outcome]).inc();
    tracing::Span::current().record("outcome", outcome);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A key is 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The bucket key: the caller and their key, hashed (bucket keys allow few characters, and
/// the client's key is not written anywhere in clear).
pub fn bucket_key(tenant: &str, user: &str, key: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    for piece in [tenant, "\n", user, "\n", key] {
        hasher.update(piece.as_bytes());
    }
    format!("k{}", hex(&hasher.finalize()))
}

/// The bucket key of a caller's key: scoped to the tenant, the user and the credential they
/// authenticated with (`token`, `api_key:<id>`).
pub fn scoped_key(tenant: &str, user: &str, via: &str, key: &str) -> String {
    bucket_key(tenant, &format!("{user}\n{via}"), key)
}

fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> String {
    request_fingerprint(
        method.as_str(),
        uri.path_and_query()
            .map(|path| path.as_str())
            .unwrap_or("/"),
        body,
    )
}

/// Digest of what makes two requests the same: method, path with query, body.
pub fn request_fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = sha2::Sha256::new();
    for piece in [
        method.as_bytes(),
        b"\n",
        path_and_query.as_bytes(),
        b"\n",
        body,
    ] {
        hasher.update(piece);
    }
    hex(&hasher.finalize())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    count("unavailable");
    tracing::warn!(%error, "idempotency store unavailable");
    ServiceError::unavailable("the idempotency store is unavailable; retry with the same key")
        .into_response()
}

/// The middleware. Requests other than `POST /v1/...` with the header pass through.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let span = tracing::info_span!("idempotency", outcome = tracing::field::Empty);
    let key = key
        .to_str()
        .ok()
        .filter(|key| valid_key(key))
        .map(str::to_string);
    async move {
        let Some(key) = key else {
            count("invalid");
            return ServiceError::invalid(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"
            ))
            .into_response();
        };
        // The scope is the caller as the handler will see them; a request that does not
        // authenticate is refused by its handler, so it runs unguarded.
        let (mut parts, body) = request.into_parts();
        let Ok((caller, via)) = crate::auth::authenticate(&parts, &state).await else {
            return next.run(Request::from_parts(parts, body)).await;
        };
        parts
            .extensions
            .insert(crate::auth::ResolvedCaller(caller.clone(), via.clone()));
        let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                count("invalid");
                return ServiceError::invalid(format!(
                    "the request body is over {MAX_REQUEST_BYTES} bytes"
                ))
                .into_response();
            }
        };
        let fingerprint = fingerprint(&parts.method, &parts.uri, &body);
        let stored_key = scoped_key(&caller.tenant_id, &caller.user_id, &via, &key);
        let request = Request::from_parts(parts, Body::from(body));
        guarded(&state.idempotency, &stored_key, fingerprint, request, next).await
    }
    .instrument(span)
    .await
}

async fn guarded(
    bucket: &kv::Store,
    key: &str,
    fingerprint: String,
    request: Request,
    next: Next,
) -> Response {
    let started_at_ms = now_ms();
    let reservation = Record {
        fingerprint: fingerprint.clone(),
        started_at_ms,
        response: None,
        outcome_unknown: false,
    };
    let reservation = Bytes::from(serde_json::to_vec(&reservation).unwrap_or_default());
    let revision = match bucket.create(key, reservation.clone()).await {
        Ok(revision) => revision,
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
            let entry = match bucket.entry(key).await {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    return ServiceError::conflict(
                        "a request with this Idempotency-Key is being recorded; retry",
                    )
                    .into_response();
                }
                Err(error) => return unavailable(error),
            };
            let Ok(record) = serde_json::from_slice::<Record>(&entry.value) else {
                return unavailable("unreadable record");
            };
            if record.fingerprint != fingerprint {
                count("mismatch");
                return ServiceError::invalid(
                    "this Idempotency-Key was used for a different request (method, path or body); use a new key",
                )
                .into_response();
            }
            if let Some(kept) = record.response {
                count("replayed");
                return kept.into_response();
            }
            let age = now_ms() - record.started_at_ms;
            if record.outcome_unknown && age < ABANDONED_AFTER.as_millis() as i64 {
                count("unknown");
                let wait_secs = (ABANDONED_AFTER.as_millis() as i64 - age).div_euclid(1000) + 1;
                let mut response = ServiceError::conflict(
                    "the first request with this Idempotency-Key may have taken effect and its outcome is not known yet; retry after the time in Retry-After",
                )
                .into_response();
                if let Ok(value) = HeaderValue::try_from(wait_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
            if age < ABANDONED_AFTER.as_millis() as i64 {
                count("in_flight");
                let mut response = ServiceError::conflict(
                    "a request with this Idempotency-Key is still in progress; retry later",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            // Left by a request that will never finish: take it over (only one retry can).
            match bucket.update(key, reservation, entry.revision).await {
                Ok(revision) => revision,
                Err(_) => {
                    count("in_flight");
                    return ServiceError::conflict(
                        "a request with this Idempotency-Key is still in progress; retry later",
                    )
                    .into_response();
                }
            }
        }
        Err(error) => return unavailable(error),
    };

    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    if parts
        .extensions
        .get::<chorus_kit::error::OutcomeUnknown>()
        .is_some()
    {
        // Neither replayed nor released: a retry waits until the first is known or abandoned.
        count("unknown");
        let record = Record {
            fingerprint,
            started_at_ms,
            response: None,
            outcome_unknown: true,
        };
        let record = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
        if let Err(error) = bucket.update(key, record, revision).await {
            tracing::warn!(%error, "the unknown outcome of an Idempotency-Key could not be kept");
        }
        return Response::from_parts(parts, body);
    }
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            let _ = bucket.delete_expect_revision(key, Some(revision)).await;
            return unavailable(error);
        }
    };
    if parts.status.is_server_error() || body.len() > MAX_KEPT_BYTES {
        // Not kept: the retry runs again.
        count("released");
        if body.len() > MAX_KEPT_BYTES {
            tracing::warn!(
                bytes = body.len(),
                "response too large to keep for its Idempotency-Key"
            );
        }
        let _ = bucket.delete_expect_revision(key, Some(revision)).await;
        return Response::from_parts(parts, Body::from(body));
    }
    let kept = Kept {
        status: parts.status.as_u16(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_string(), value.to_string()))
            })
            .collect(),
        body: base64::engine::general_purpose::STANDARD.encode(&body),
    };
    let record = Record {
        fingerprint,
        started_at_ms: now_ms(),
        response: Some(kept),
        outcome_unknown: false,
    };
    let record = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
    if let Err(error) = bucket.update(key, record, revision).await {
        // The effect happened; the client has its answer now. A retry would find the
        // reservation and, after ABANDONED_AFTER, run again: say so.
        tracing::warn!(%error, "the response for an Idempotency-Key could not be kept");
    }
    count("executed");
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(valid_key("0b9c1f5e-5d4e-4c59-8a57-0a3b2d1e6f70"));
        assert!(!valid_key(""));
        assert!(!valid_key("with space"));
        assert!(!valid_key(&"k".repeat(MAX_KEY_LENGTH + 1)));
        assert!(valid_key(&"k".repeat(MAX_KEY_LENGTH)));
    }

    #[test]
    fn the_bucket_key_depends_on_tenant_user_and_key() {
        let one = bucket_key("acme", "alice", "k1");
        assert_eq!(one.len(), 65);
        assert!(one.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(one, bucket_key("acme", "bob", "k1"));
        assert_ne!(one, bucket_key("globex", "alice", "k1"));
        assert_ne!(one, bucket_key("acme", "alice", "k2"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(bucket_key("ab", "c", "k"), bucket_key("a", "bc", "k"));
    }

    #[test]
    fn the_fingerprint_covers_path_query_and_body() {
        let uri: axum::http::Uri = "/v1/shares".parse().unwrap();
        let other: axum::http::Uri = "/v1/shares?x=1".parse().unwrap();
        let base = fingerprint(&Method::POST, &uri, b"{}");
        assert_eq!(base, fingerprint(&Method::POST, &uri, b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, &other, b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, &uri, b"{ }"));
    }
}
