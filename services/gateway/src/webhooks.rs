//! Network webhooks. Facebook Pages (Meta's Webhooks product, `feed` field of the `page`
//! object) tells us when a post gets reactions, comments or reshares. Meta signs each
//! delivery with the app secret (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
//! body>`) and verifies the callback once with a GET handshake (`hub.mode=subscribe`,
//! `hub.verify_token`, `hub.challenge` echoed back).
//!
//! A delivery carries no counts, only that something changed, so it does not become a
//! delta itself: the engagement service reads the post's metrics again now (outside the
//! decaying schedule), and the usual idempotent deltas follow. A delivery is checked whole
//! before anything is asked of engagement: a bad signature is refused (401) and a malformed
//! body (400) changes nothing.

use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chorus_api::engagement::{NetworkActivity, NetworkActivityAccepted};
use chorus_kit::{Caller, ServiceError};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;
use tracing::Instrument;

static DELIVERIES: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_webhook_deliveries_total",
        "Network webhook deliveries received, by network and outcome",
        &["network", "outcome"],
    )
});

/// What verifies deliveries: Meta's app secret and the subscription's verify token.
pub struct WebhookSecrets {
    facebook_app_secret: SecretString,
    facebook_verify_token: SecretString,
}

impl WebhookSecrets {
    pub fn from_config(config: &chorus_kit::Config) -> WebhookSecrets {
        WebhookSecrets {
            facebook_app_secret: config.publishing.facebook.client_secret.clone(),
            facebook_verify_token: config.engagement.facebook_webhook_verify_token.clone(),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/webhooks/facebook",
        get(facebook_handshake).post(facebook_delivery),
    )
}

fn refuse(status: StatusCode, outcome: &str, message: &str) -> Response {
    DELIVERIES.with_label_values(&["facebook", outcome]).inc();
    tracing::warn!(network = "facebook", outcome, message, "webhook refused");
    let error = match status {
        StatusCode::UNAUTHORIZED => ServiceError::unauthorized(message),
        StatusCode::FORBIDDEN => ServiceError::forbidden(message),
        _ => {
            // A malformed delivery is a bad request (400), not an invalid resource (422).
            let problem = serde_json::json!({
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "detail": message,
                "code": "invalid",
            });
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/problem+json")],
                problem.to_string(),
            )
                .into_response();
        }
    };
    error.into_response()
}

/// Meta's subscription handshake: echo `hub.challenge` when the verify token matches.
async fn facebook_handshake(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = state.webhooks.facebook_verify_token.expose_secret();
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_str);
    let challenge = query.get("hub.challenge");
    match (mode, token, challenge) {
        (Some("subscribe"), Some(token), Some(challenge))
            if !expected.is_empty() && constant_time_eq(token.as_bytes(), expected.as_bytes()) =>
        {
            DELIVERIES
                .with_label_values(&["facebook", "handshake"])
                .inc();
            tracing::info!(network = "facebook", "webhook subscription verified");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                challenge.clone(),
            )
                .into_response()
        }
        (Some("subscribe"), _, Some(_)) => refuse(
            StatusCode::FORBIDDEN,
            "handshake_refused",
            "the verify token does not match",
        ),
        _ => refuse(
            StatusCode::BAD_REQUEST,
            "malformed",
            "expected hub.mode=subscribe, hub.verify_token and hub.challenge",
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `X-Hub-Signature-256` against the raw body.
fn signature_valid(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(value) = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let Some(hex) = value.strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Deserialize)]
struct Delivery {
    object: String,
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    value: serde_json::Value,
}

/// The posts a delivery says changed (reactions, comments, reshares), or why it is malformed.
fn changed_posts(body: &[u8]) -> Result<BTreeSet<String>, String> {
    let delivery: Delivery =
        serde_json::from_slice(body).map_err(|error| format!("not a webhook delivery: {error}"))?;
    if delivery.object != "page" {
        return Err(format!(
            "object {:?} is not handled, only page",
            delivery.object
        ));
    }
    let mut posts = BTreeSet::new();
    for entry in delivery.entry {
        for change in entry.changes {
            if change.field != "feed" {
                continue;
            }
            let item = change
                .value
                .get("item")
                .and_then(|v| v.as_str())
                .ok_or("a feed change without item")?;
            if !matches!(item, "reaction" | "comment" | "share" | "like") {
                continue;
            }
            let post_id = change
                .value
                .get("post_id")
                .and_then(|v| v.as_str())
                .filter(|id| {
                    !id.is_empty()
                        && id.len() <= 128
                        && id.bytes().all(|b| b.is_ascii_digit() || b == b'_')
                })
                .ok_or("a feed change without a valid post_id")?;
            posts.insert(post_id.to_string());
        }
    }
    Ok(posts)
}

/// A delivery of Page feed changes: verified, parsed whole, then handed to engagement.
async fn facebook_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let span = tracing::info_span!(
        "webhook.facebook",
        otel.kind = "server",
        network = "facebook",
        bytes = body.len(),
        posts = tracing::field::Empty,
        matched = tracing::field::Empty,
    );
    let _entered = span.enter();
    let secret = state.webhooks.facebook_app_secret.expose_secret();
    if secret.is_empty() || !signature_valid(secret, &headers, &body) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "X-Hub-Signature-256 is missing or does not match the body",
        );
    }
    let posts = match changed_posts(&body) {
        Ok(posts) => posts,
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, "malformed", &reason),
    };
    span.record("posts", posts.len());
    drop(_entered);
    if posts.is_empty() {
        DELIVERIES.with_label_values(&["facebook", "ignored"]).inc();
        return StatusCode::OK.into_response();
    }
    let request = NetworkActivity {
        network: "facebook".into(),
        external_ids: posts.into_iter().collect(),
    };
    let accepted: Result<NetworkActivityAccepted, ServiceError> = crate::routes::call(
        &state,
        "engagement",
        "network_activity",
        &Caller::system("system"),
        &request,
    )
    .instrument(span.clone())
    .await;
    match accepted {
        Ok(accepted) => {
            span.record("matched", accepted.matched);
            DELIVERIES
                .with_label_values(&["facebook", "accepted"])
                .inc();
            StatusCode::OK.into_response()
        }
        Err(error) => {
            // Meta retries a delivery that failed.
            DELIVERIES.with_label_values(&["facebook", "failed"]).inc();
            tracing::warn!(%error, "webhook could not be handed to engagement");
            error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            format!("sha256={hex}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn signatures_are_checked_against_the_raw_body() {
        let body = br#"{"object":"page","entry":[]}"#;
        let headers = sign("s3cret", body);
        assert!(signature_valid("s3cret", &headers, body));
        assert!(!signature_valid("other", &headers, body));
        assert!(!signature_valid(
            "s3cret",
            &headers,
            br#"{"object":"page","entry":[] }"#
        ));
        assert!(!signature_valid("s3cret", &HeaderMap::new(), body));
        let mut bad = HeaderMap::new();
        bad.insert("x-hub-signature-256", "sha256=zz".parse().unwrap());
        assert!(!signature_valid("s3cret", &bad, body));
    }

    #[test]
    fn a_delivery_is_read_whole_or_refused() {
        let body = br#"{"object":"page","entry":[{"id":"1","time":1,"changes":[
            {"field":"feed","value":{"item":"reaction","verb":"add","post_id":"1_2","reaction_type":"like"}},
            {"field":"feed","value":{"item":"comment","verb":"add","post_id":"1_3","comment_id":"3_9"}},
            {"field":"feed","value":{"item":"status","verb":"add","post_id":"1_4"}},
            {"field":"feed","value":{"item":"reaction","verb":"remove","post_id":"1_2"}}]}]}"#;
        let posts = changed_posts(body).unwrap();
        assert_eq!(posts.into_iter().collect::<Vec<_>>(), vec!["1_2", "1_3"]);
        assert!(changed_posts(b"not json").is_err());
        assert!(changed_posts(br#"{"object":"user","entry":[]}"#).is_err());
        // One bad change refuses the whole delivery.
        let half = br#"{"object":"page","entry":[{"id":"1","changes":[
            {"field":"feed","value":{"item":"reaction","post_id":"1_2"}},
            {"field":"feed","value":{"item":"comment","post_id":"../x"}}]}]}"#;
        assert!(changed_posts(half).is_err());
    }
}
