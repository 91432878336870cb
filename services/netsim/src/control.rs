//! Test controls under `/_netsim`: not part of any network.

use crate::state::SimState;
use crate::{Fault, SimPost};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_netsim/posts", get(list_posts))
        .route("/_netsim/stats", get(stats))
        .route("/_netsim/faults", post(inject_fault))
        .route("/_netsim/posts/{urn}/engagement", post(add_engagement))
        .route("/_netsim/posts/{urn}/metrics", post(add_metrics))
        .route(
            "/_netsim/members/{member_id}/expire-tokens",
            post(expire_tokens),
        )
}

/// Counts every answer of a simulated network by the network its path names (the test
/// controls are not counted).
pub(crate) async fn count_answers(
    State(state): State<Arc<SimState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let network = match path.split('/').nth(1).unwrap_or_default() {
        "_netsim" => None,
        "x" => Some("x"),
        "graph" => Some("graph"),
        "mastodon" => Some("mastodon"),
        "bluesky" => Some("bluesky"),
        _ => Some("linkedin"),
    };
    let response = next.run(request).await;
    if let Some(network) = network {
        let rate_limited = response.status() == StatusCode::TOO_MANY_REQUESTS;
        if rate_limited {
            tracing::debug!(network, "netsim answered 429");
        }
        state.count_answer(network, rate_limited);
    }
    response
}

/// Requests and 429s per network since start.
async fn stats(State(state): State<Arc<SimState>>) -> Json<crate::Stats> {
    Json(state.stats())
}

async fn list_posts(State(state): State<Arc<SimState>>) -> Json<Vec<SimPost>> {
    Json(state.posts())
}

#[derive(Debug, serde::Deserialize)]
struct FaultTarget {
    /// The network whose post endpoint takes the fault; LinkedIn when absent.
    network: Option<String>,
}

async fn inject_fault(
    State(state): State<Arc<SimState>>,
    Query(target): Query<FaultTarget>,
    Json(fault): Json<Fault>,
) -> StatusCode {
    let network = target.network.unwrap_or_else(|| "linkedin".to_string());
    tracing::info!(fault = ?fault, network = %network, "netsim fault injected");
    state.push_fault(&network, fault);
    StatusCode::NO_CONTENT
}

#[derive(Debug, serde::Deserialize)]
struct Engagement {
    #[serde(default)]
    reactions: i64,
    #[serde(default)]
    comments: i64,
}

async fn add_engagement(
    State(state): State<Arc<SimState>>,
    Path(urn): Path<String>,
    Json(engagement): Json<Engagement>,
) -> StatusCode {
    if state.add_engagement(&urn, engagement.reactions, engagement.comments) {
        crate::meta::post_changed(&state, &urn, engagement.reactions, engagement.comments, 0);
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn expire_tokens(
    State(state): State<Arc<SimState>>,
    Path(member_id): Path<String>,
) -> StatusCode {
    let expired = state.expire_tokens_of(&member_id);
    tracing::info!(member_id = %member_id, expired, "netsim access tokens expired");
    StatusCode::NO_CONTENT
}

/// Adds exact amounts to a post's counters (reactions, comments, reshares, impressions).
async fn add_metrics(
    State(state): State<Arc<SimState>>,
    Path(urn): Path<String>,
    Json(metrics): Json<crate::MetricsDelta>,
) -> StatusCode {
    if state.add_metrics(&urn, &metrics) {
        crate::meta::post_changed(
            &state,
            &urn,
            metrics.reactions,
            metrics.comments,
            metrics.reshares,
        );
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
