//! Authentication: bearer tokens become a caller context, checked against identity.

use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chorus_api::Empty;
use chorus_api::identity::User;
use chorus_kit::{Caller, Role, ServiceError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Resolved callers, kept briefly so that each request does not ask identity again.
#[derive(Default)]
pub struct CallerCache {
    entries: Mutex<HashMap<CallerKey, (Instant, Vec<Role>)>>,
}

/// (tenant id, user id)
type CallerKey = (String, String);

const CACHE_TTL: Duration = Duration::from_secs(30);

impl CallerCache {
    fn get(&self, tenant: &str, user: &str) -> Option<Vec<Role>> {
        let entries = self.entries.lock().expect("caller cache lock");
        entries
            .get(&(tenant.to_string(), user.to_string()))
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, roles)| roles.clone())
    }

    fn forget(&self, tenant: &str, user: &str) {
        let mut entries = self.entries.lock().expect("caller cache lock");
        entries.remove(&(tenant.to_string(), user.to_string()));
    }

    fn put(&self, tenant: &str, user: &str, roles: Vec<Role>) {
        let mut entries = self.entries.lock().expect("caller cache lock");
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(
            (tenant.to_string(), user.to_string()),
            (Instant::now(), roles),
        );
    }
}

/// The tenant and user every `user.*` event starts with.
#[derive(Clone, PartialEq, prost::Message)]
struct UserRef {
    #[prost(string, tag = "1")]
    tenant_id: String,
    #[prost(string, tag = "2")]
    user_id: String,
}

/// Forgets a cached caller as soon as identity announces a change of their roles, their
/// deactivation or their erasure, so that these take effect on the next request.
pub async fn follow_user_changes(
    nats: &async_nats::Client,
    state: std::sync::Weak<crate::Gateway>,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let subject = format!(
        "{}.*.{}.*.v1",
        chorus_events::SUBJECT_ROOT,
        chorus_events::USER.token
    );
    let mut subscription = nats.subscribe(subject).await?;
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            let Some(state) = state.upgrade() else { break };
            match <UserRef as prost::Message>::decode(message.payload.as_ref()) {
                Ok(user) => state.callers.forget(&user.tenant_id, &user.user_id),
                Err(error) => tracing::warn!(%error, "undecodable user event"),
            }
        }
    });
    Ok(())
}

/// An authenticated caller whose tenant and user exist (operators are not tenant members).
pub struct Authenticated(pub Caller);

/// A caller already authenticated by a layer before the handler (the idempotency layer scopes
/// keys to it), with how they authenticated: the extractor takes it instead of asking again.
#[derive(Clone)]
pub struct ResolvedCaller(pub Caller, pub String);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (caller, via) = match parts.extensions.get::<ResolvedCaller>() {
            Some(ResolvedCaller(caller, via)) => (caller.clone(), via.clone()),
            None => authenticate(parts, state).await?,
        };
        if let Some(slot) = parts.extensions.get::<crate::audit::CallerSlot>() {
            slot.fill(&caller, via);
        }
        Ok(Authenticated(caller))
    }
}

/// The caller of a request and how they authenticated (`token`, `api_key:<id>`).
pub(crate) async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<(Caller, String), ServiceError> {
    {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                ServiceError::unauthorized("send a bearer token in the Authorization header")
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ServiceError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
        if token.starts_with("chk_") {
            let via = format!("api_key:{}", token.split('_').nth(2).unwrap_or_default());
            return api_key_caller(state, token)
                .await
                .map(|caller| (caller, via));
        }
        // Tokens of the OpenID Connect issuer are asymmetric; development tokens are HS256.
        let asymmetric = jsonwebtoken::decode_header(token)
            .is_ok_and(|header| header.alg != jsonwebtoken::Algorithm::HS256);
        let claimed = match &state.oidc {
            Some(oidc) if asymmetric => oidc.verify(token).await?,
            _ => chorus_kit::auth::verify(&state.dev_signing_key, token)
                .map_err(|error| ServiceError::unauthorized(error.to_string()))?,
        };
        tracing::Span::current().record("tenant_id", claimed.tenant_id.as_str());
        if claimed.has(Role::Operator) {
            return Ok((claimed, "token".to_string()));
        }
        if !chorus_events::is_valid_tenant_token(&claimed.tenant_id) {
            return Err(ServiceError::unauthorized(format!(
                "unknown tenant {}",
                claimed.tenant_id
            )));
        }
        // Roles come from identity (the source of truth), not only from the token.
        let roles = match state.callers.get(&claimed.tenant_id, &claimed.user_id) {
            Some(roles) => roles,
            None => {
                let subject = chorus_bus::rpc::subject("identity", "caller_resolve");
                let user: User = chorus_bus::rpc::call(
                    &state.nats,
                    &subject,
                    &claimed,
                    &Empty {},
                    state.rpc_timeout,
                )
                .await?;
                state
                    .callers
                    .put(&claimed.tenant_id, &claimed.user_id, user.roles.clone());
                user.roles
            }
        };
        Ok((Caller { roles, ..claimed }, "token".to_string()))
    }
}

/// The caller an integrator's API key stands for, asked of identity on every request so
/// that a revoked key stops at once.
async fn api_key_caller(state: &AppState, key: &str) -> Result<Caller, ServiceError> {
    let tenant = key
        .strip_prefix("chk_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(tenant, _)| tenant)
        .filter(|tenant| chorus_events::is_valid_tenant_token(tenant))
        .ok_or_else(|| ServiceError::unauthorized("this API key is not valid"))?;
    let subject = chorus_bus::rpc::subject("identity", "api_key_resolve");
    let user: User = chorus_bus::rpc::call(
        &state.nats,
        &subject,
        &Caller::system(tenant),
        &chorus_api::identity::ResolveApiKey {
            key: key.to_string(),
        },
        state.rpc_timeout,
    )
    .await?;
    let caller = Caller {
        tenant_id: user.tenant_id,
        user_id: user.id,
        roles: user.roles,
    };
    tracing::Span::current().record("tenant_id", caller.tenant_id.as_str());
    Ok(caller)
}
