//! The audit trail of the API: every change made by an administrator, curator, approver,
//! integrator or operator is announced as `content.action_audited.v1`, which content keeps in
//! the tenant's audit log (`GET /v1/audit`, `GET /v1/audit/export`).

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use chorus_events::content::v1::ActionAudited;
use chorus_kit::{Caller, Role};
use chorus_telemetry::metrics;
use std::sync::{Arc, LazyLock, Mutex};

/// Where the authentication extractor leaves who called and how, for the audit layer.
#[derive(Clone, Default)]
pub struct CallerSlot(Arc<Mutex<Option<(Caller, String)>>>);

impl CallerSlot {
    pub fn fill(&self, caller: &Caller, via: String) {
        *self.0.lock().expect("caller slot") = Some((caller.clone(), via));
    }

    fn take(&self) -> Option<(Caller, String)> {
        self.0.lock().expect("caller slot").take()
    }
}

/// Roles whose changes are audited.
const AUDITED: &[Role] = &[
    Role::Admin,
    Role::Curator,
    Role::Approver,
    Role::Integrator,
    Role::Operator,
];

/// Routes whose service writes a richer entry of its own (content's curation and
/// compliance actions, with titles and reasons).
const DETAILED: &[(&str, &str)] = &[
    ("POST", "/v1/posts"),
    ("PUT", "/v1/posts/{post_id}"),
    ("POST", "/v1/posts/{post_id}/submit"),
    ("POST", "/v1/posts/{post_id}/approve"),
    ("POST", "/v1/posts/{post_id}/request-changes"),
    ("POST", "/v1/posts/{post_id}/publish"),
    ("POST", "/v1/posts/{post_id}/archive"),
    ("POST", "/v1/compliance/rules"),
    ("DELETE", "/v1/compliance/rules/{rule_id}"),
    ("POST", "/v1/submissions/{submission_id}/approve"),
    ("POST", "/v1/submissions/{submission_id}/reject"),
    ("POST", "/v1/surveys"),
];

static AUDIT_EVENTS: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_gateway_audit_events_total",
        "Changes announced for the audit log, by outcome (recorded, failed)",
        &["outcome"],
    )
});

/// Announces each successful change by an audited caller once it is answered.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let path = request.uri().path().to_string();
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let (Some(route), true) = (route, response.status().is_success()) else {
        return response;
    };
    let Some((caller, via)) = slot.take() else {
        return response;
    };
    if !AUDITED.iter().any(|role| caller.has(*role))
        || DETAILED.contains(&(method.as_str(), route.as_str()))
        || !chorus_events::is_valid_tenant_token(&caller.tenant_id)
    {
        return response;
    }
    let event = ActionAudited {
        tenant_id: caller.tenant_id.clone(),
        actor: caller.user_id.clone(),
        roles: caller
            .roles
            .iter()
            .map(|role| role.as_str().to_string())
            .collect(),
        method: method.to_string(),
        route,
        path,
        status: response.status().as_u16() as u32,
        via,
        trace_id: chorus_bus::trace::current_trace_id().unwrap_or_default(),
        at: Some(chorus_events::to_timestamp(chrono::Utc::now())),
    };
    // The change is made; the answer waits for JetStream to hold the audit event, so that
    // an acknowledged change is an audited one.
    match state.bus.publish_event(&event, crate::NAME).await {
        Ok(_) => AUDIT_EVENTS.with_label_values(&["recorded"]).inc(),
        Err(error) => {
            AUDIT_EVENTS.with_label_values(&["failed"]).inc();
            tracing::error!(%error, route = %event.route, "audit event not recorded");
        }
    }
    response
}
