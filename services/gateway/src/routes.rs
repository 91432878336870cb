//! The REST API under `/v1`. Doc comments on handlers are the OpenAPI descriptions.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chorus_api::content::Topics;
use chorus_api::content::{CaptionChecked, CheckCaption, FeedQuery};
use chorus_api::engagement::ShareStats;
use chorus_api::identity::{
    CreateTenant, CreateUser, GetUser, Onboarding, Tenant, User, UserUpdate,
};
use chorus_api::notifications::{Inbox, NotificationRef};
use chorus_api::publishing::{
    Account, AccountRef, AccountStatus, CompleteConnect, ConnectStarted, ResolveShare,
    ShareResolution, ShareResolved, StartConnect,
};
use chorus_api::scheduling::{
    CreateShare, EditShare, PostingSlots, Share, ShareEdit, ShareRef, ShareRequest,
};
use chorus_api::{Empty, Page};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/tenants", post(create_tenant))
        .route("/v1/users", post(create_user))
        .route(
            "/v1/users/{user_id}",
            axum::routing::delete(erase_user).patch(update_user),
        )
        .route("/v1/me/guidelines/accept", post(accept_guidelines))
        .route("/v1/me/onboarding", get(my_onboarding))
        .route("/v1/me", get(me))
        .route("/v1/accounts", get(list_accounts))
        .route("/v1/accounts/connect", post(start_connect))
        .route("/v1/accounts/callback", post(complete_connect))
        .route(
            "/v1/accounts/{account_id}",
            axum::routing::delete(disconnect_account),
        )
        .route("/v1/accounts/app-password", post(connect_with_app_password))
        .route("/v1/shares", post(create_share).get(list_shares))
        .route("/v1/me/slots", get(my_slots).put(set_my_slots))
        .route("/v1/shares/{share_id}", get(get_share).patch(edit_share))
        .route("/v1/shares/{share_id}/cancel", post(cancel_share))
        .route("/v1/shares/{share_id}/resolve", post(resolve_share))
        .route("/v1/shares/{share_id}/stats", get(share_stats))
        .route("/v1/me/notifications", get(my_notifications))
        .route("/v1/me/notifications/stream", get(crate::live::stream))
        .route(
            "/v1/me/notifications/{notification_id}/read",
            post(mark_read),
        )
        .route("/l/{code}", get(crate::links::redirect))
        .merge(crate::content_routes::router())
        .merge(crate::gamification_routes::router())
        .merge(crate::analytics_routes::router())
        .merge(crate::webhooks::router())
        .merge(crate::webhook_routes::router())
        .merge(crate::channel_routes::router())
        .merge(crate::key_routes::router())
        .merge(crate::scim_routes::router())
        .merge(crate::privacy_routes::router())
        .fallback(|| async { ServiceError::not_found("no such endpoint") })
        // A path that exists for other methods (or an id that reads as another route, such
        // as an empty one): nothing answers this method there.
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ServiceError::not_found(format!("no such endpoint for {method}"))
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::layer,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(on_response),
        )
        .with_state(state)
}

fn make_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server",
        service = "gateway",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
    );
    let mut carrier = std::collections::HashMap::new();
    for name in ["traceparent", "tracestate"] {
        if let Some(value) = request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
        {
            carrier.insert(name.to_string(), value.to_string());
        }
    }
    chorus_bus::trace::set_parent_from_traceparent(
        &span,
        carrier.get("traceparent").map(String::as_str),
        carrier.get("tracestate").map(String::as_str),
    );
    span
}

fn on_response(
    response: &axum::http::Response<axum::body::Body>,
    latency: std::time::Duration,
    span: &tracing::Span,
) {
    span.record("http.response.status_code", response.status().as_u16());
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_millis() as u64,
        "request served"
    );
}

pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    state: &AppState,
    service: &str,
    endpoint: &str,
    caller: &Caller,
    request: &Req,
) -> ServiceResult<Resp> {
    let subject = chorus_bus::rpc::subject(service, endpoint);
    chorus_bus::rpc::call(&state.nats, &subject, caller, request, state.rpc_timeout).await
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi_json(),
    )
}

/// Change a person (admins): profile, roles, manager, `active`. Absent fields stay; the other
/// services follow through `user.updated` (and `user.deactivated`). An administrator cannot
/// deactivate themselves or give up their own admin role.
#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "identity", params(("user_id" = String, Path)),
    request_body = UserUpdate, responses((status = 200, body = User)))]
pub async fn update_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(user_id): Path<String>,
    ApiJson(mut update): ApiJson<UserUpdate>,
) -> ServiceResult<Json<User>> {
    update.user_id = user_id;
    Ok(Json(
        call(&state, "identity", "user_update", &caller, &update).await?,
    ))
}

/// Accept the tenant's social media guidelines (the first acceptance is kept).
#[utoipa::path(post, path = "/v1/me/guidelines/accept", tag = "identity", responses((status = 200, body = User)))]
pub async fn accept_guidelines(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<User>> {
    Ok(Json(
        call(&state, "identity", "guidelines_accept", &caller, &Empty {}).await?,
    ))
}

/// Where the caller stands in getting started: guidelines accepted, social accounts
/// connected, topics followed.
#[utoipa::path(get, path = "/v1/me/onboarding", tag = "identity", responses((status = 200, body = Onboarding)))]
pub async fn my_onboarding(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Onboarding>> {
    let (me, accounts, topics) = tokio::try_join!(
        call::<_, User>(&state, "identity", "caller_resolve", &caller, &Empty {}),
        call::<_, Vec<Account>>(&state, "publishing", "account_list", &caller, &Empty {}),
        call::<_, Topics>(&state, "content", "topic_list", &caller, &Empty {}),
    )?;
    let accounts_connected = accounts
        .iter()
        .filter(|account| account.status == AccountStatus::Connected)
        .count();
    let topics_chosen = topics.topics.len();
    Ok(Json(Onboarding {
        complete: me.guidelines_accepted_at.is_some()
            && accounts_connected > 0
            && topics_chosen > 0,
        guidelines_accepted_at: me.guidelines_accepted_at,
        accounts_connected,
        topics_chosen,
    }))
}

/// Erase a user (admins, GDPR): identity forgets them and every service erases their
/// personal data on `user.erased` (content, points, notifications, accounts and tokens; the
/// shares they made stay counted, anonymously). Their posts on social networks are their own
/// and are not touched. The same happens when the identity provider deletes the user over SCIM.
#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = "identity", params(("user_id" = String, Path)),
    responses((status = 204, description = "Erased"), (status = 403, body = chorus_kit::error::Problem),
        (status = 404, body = chorus_kit::error::Problem), (status = 409, description = "An administrator cannot erase themselves", body = chorus_kit::error::Problem)))]
pub async fn erase_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(user_id): Path<String>,
) -> ServiceResult<StatusCode> {
    let _: Empty = call(
        &state,
        "identity",
        "user_erase",
        &caller,
        &chorus_api::identity::ScimRef { id: user_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a tenant (operators only).
#[utoipa::path(post, path = "/v1/tenants", tag = "identity", request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 409, body = chorus_kit::error::Problem), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<CreateTenant>,
) -> ServiceResult<(StatusCode, Json<Tenant>)> {
    let tenant: Tenant = call(&state, "identity", "tenant_create", &caller, &request).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Add a user to the caller's tenant (admins).
#[utoipa::path(post, path = "/v1/users", tag = "identity", request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = chorus_kit::error::Problem), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<CreateUser>,
) -> ServiceResult<(StatusCode, Json<User>)> {
    let user: User = call(&state, "identity", "user_create", &caller, &request).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The caller's profile.
#[utoipa::path(get, path = "/v1/me", tag = "identity", responses((status = 200, body = User), (status = 401, body = chorus_kit::error::Problem)))]
pub async fn me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<User>> {
    let request = GetUser {
        user_id: caller.user_id.clone(),
    };
    Ok(Json(
        call(&state, "identity", "user_get", &caller, &request).await?,
    ))
}

/// The caller's connected social accounts.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", responses((status = 200, body = Vec<Account>)))]
pub async fn list_accounts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Vec<Account>>> {
    Ok(Json(
        call(&state, "publishing", "account_list", &caller, &Empty {}).await?,
    ))
}

/// Disconnect one of your social accounts: its tokens are deleted at once and its scheduled
/// shares are cancelled with the reason "the account was disconnected".
#[utoipa::path(delete, path = "/v1/accounts/{account_id}", tag = "accounts", params(("account_id" = String, Path)),
    responses((status = 200, body = Account), (status = 404, body = chorus_kit::error::Problem)))]
pub async fn disconnect_account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(account_id): Path<String>,
) -> ServiceResult<Json<Account>> {
    Ok(Json(
        call(
            &state,
            "publishing",
            "account_disconnect",
            &caller,
            &chorus_api::publishing::AccountRef { account_id },
        )
        .await?,
    ))
}

/// Connect an account of a network that signs in with an app password (Bluesky): the
/// password opens a session once and is never stored.
#[utoipa::path(post, path = "/v1/accounts/app-password", tag = "accounts", request_body = chorus_api::publishing::AppPasswordConnect,
    responses((status = 201, body = Account), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn connect_with_app_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<chorus_api::publishing::AppPasswordConnect>,
) -> ServiceResult<(axum::http::StatusCode, Json<Account>)> {
    let account: Account = call(
        &state,
        "publishing",
        "account_connect_app_password",
        &caller,
        &request,
    )
    .await?;
    Ok((axum::http::StatusCode::CREATED, Json(account)))
}

/// Start connecting a social account: open `authorize_url` in the advocate's browser.
#[utoipa::path(post, path = "/v1/accounts/connect", tag = "accounts", request_body = StartConnect,
    responses((status = 200, body = ConnectStarted), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn start_connect(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<StartConnect>,
) -> ServiceResult<Json<ConnectStarted>> {
    Ok(Json(
        call(
            &state,
            "publishing",
            "account_connect_start",
            &caller,
            &request,
        )
        .await?,
    ))
}

/// Finish connecting: the `state` and `code` the network sent back to the redirect URL.
#[utoipa::path(post, path = "/v1/accounts/callback", tag = "accounts", request_body = CompleteConnect,
    responses((status = 201, body = Account), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn complete_connect(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<CompleteConnect>,
) -> ServiceResult<(StatusCode, Json<Account>)> {
    let account: Account = call(
        &state,
        "publishing",
        "account_connect_complete",
        &caller,
        &request,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// Share a post on one of the caller's own accounts, now or at `scheduled_at`.
///
/// Only the advocate who owns the account can share on it. The caption is the advocate's
/// own text; the share's tracked link is appended and counts toward the network's limit.
#[utoipa::path(post, path = "/v1/shares", tag = "shares", request_body = ShareRequest,
    responses((status = 201, body = Share), (status = 404, body = chorus_kit::error::Problem), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn create_share(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<ShareRequest>,
) -> ServiceResult<(StatusCode, Json<Share>)> {
    caller.require_any(&[Role::Advocate])?;
    let account: Account = call(
        &state,
        "publishing",
        "account_get",
        &caller,
        &AccountRef {
            account_id: request.account_id.clone(),
        },
    )
    .await?;
    if account.status != AccountStatus::Connected {
        return Err(ServiceError::invalid(format!(
            "the {} account must be reconnected first",
            account.network
        )));
    }
    let check = CheckCaption {
        post_id: request.post_id.clone(),
        network: account.network.clone(),
        caption: request.caption,
    };
    let checked: CaptionChecked = call(&state, "content", "caption_check", &caller, &check).await?;
    let create = CreateShare {
        post_id: request.post_id,
        account_id: account.id,
        network: account.network,
        caption: checked.caption,
        scheduled_at: request.scheduled_at,
        next_slot: request.next_slot,
        link_url: checked.link_url,
        image_url: checked.image_url,
        image_alt: checked.image_alt,
        // Scheduling de-duplicates by it: a retry after an answer was lost never creates a
        // second share, even once the gateway's record of the key is gone.
        request_key: headers
            .get(crate::idempotency::HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|key| crate::idempotency::valid_key(key))
            .map(|key| crate::idempotency::bucket_key(&caller.tenant_id, &caller.user_id, key)),
    };
    let share: Share = call(&state, "scheduling", "share_create", &caller, &create).await?;
    Ok((StatusCode::CREATED, Json(share)))
}

/// The caller's weekly posting slots, in their time zone, and the next free ones. A share
/// created with `"next_slot": true` takes the first slot no share of theirs holds.
#[utoipa::path(get, path = "/v1/me/slots", tag = "shares",
    responses((status = 200, body = PostingSlots), (status = 403, body = chorus_kit::error::Problem)))]
pub async fn my_slots(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<PostingSlots>> {
    Ok(Json(
        call(&state, "scheduling", "slots_get", &caller, &Empty {}).await?,
    ))
}

/// Set the caller's weekly posting slots (up to 28; days `monday` … `sunday`, times `HH:MM`
/// in `time_zone`). Shares already placed keep their time.
#[utoipa::path(put, path = "/v1/me/slots", tag = "shares", request_body = PostingSlots,
    responses((status = 200, body = PostingSlots), (status = 403, body = chorus_kit::error::Problem), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn set_my_slots(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(slots): ApiJson<PostingSlots>,
) -> ServiceResult<Json<PostingSlots>> {
    Ok(Json(
        call(&state, "scheduling", "slots_set", &caller, &slots).await?,
    ))
}

/// The caller's shares, newest first.
#[utoipa::path(get, path = "/v1/shares", tag = "shares", params(FeedQuery), responses((status = 200, body = Page<Share>)))]
pub async fn list_shares(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<FeedQuery>,
) -> ServiceResult<Json<Page<Share>>> {
    Ok(Json(
        call(&state, "scheduling", "share_list", &caller, &query).await?,
    ))
}

/// One of the caller's shares, with its state and, when it failed, the network's reason.
#[utoipa::path(get, path = "/v1/shares/{share_id}", tag = "shares", params(("share_id" = String, Path)),
    responses((status = 200, body = Share), (status = 404, body = chorus_kit::error::Problem)))]
pub async fn get_share(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(share_id): Path<String>,
) -> ServiceResult<Json<Share>> {
    Ok(Json(
        call(
            &state,
            "scheduling",
            "share_get",
            &caller,
            &ShareRef { share_id },
        )
        .await?,
    ))
}

/// Change the caption or the time of one of the caller's shares while it is not yet due.
///
/// A new caption passes the same checks as at creation (the network's limit with the tracked
/// link, the tenant's compliance rules); a new time must not be in the past. A share that is
/// already due, published, failed or cancelled answers 409.
#[utoipa::path(patch, path = "/v1/shares/{share_id}", tag = "shares", params(("share_id" = String, Path)), request_body = ShareEdit,
    responses((status = 200, body = Share), (status = 404, body = chorus_kit::error::Problem),
        (status = 409, body = chorus_kit::error::Problem), (status = 422, body = chorus_kit::error::Problem)))]
pub async fn edit_share(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(share_id): Path<String>,
    ApiJson(request): ApiJson<ShareEdit>,
) -> ServiceResult<Json<Share>> {
    caller.require_any(&[Role::Advocate])?;
    let caption = match request.caption {
        Some(caption) => {
            let share: Share = call(
                &state,
                "scheduling",
                "share_get",
                &caller,
                &ShareRef {
                    share_id: share_id.clone(),
                },
            )
            .await?;
            let check = CheckCaption {
                post_id: share.post_id,
                network: share.network,
                caption,
            };
            let checked: CaptionChecked =
                call(&state, "content", "caption_check", &caller, &check).await?;
            Some(checked.caption)
        }
        None => None,
    };
    let edit = EditShare {
        share_id,
        caption,
        scheduled_at: request.scheduled_at,
    };
    Ok(Json(
        call(&state, "scheduling", "share_edit", &caller, &edit).await?,
    ))
}

/// Cancel a share that is not yet due.
#[utoipa::path(post, path = "/v1/shares/{share_id}/cancel", tag = "shares", params(("share_id" = String, Path)),
    responses((status = 200, body = Share), (status = 409, body = chorus_kit::error::Problem)))]
pub async fn cancel_share(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(share_id): Path<String>,
) -> ServiceResult<Json<Share>> {
    Ok(Json(
        call(
            &state,
            "scheduling",
            "share_cancel",
            &caller,
            &ShareRef { share_id },
        )
        .await?,
    ))
}

/// Settle a share left `unconfirmed` (administrators): publishing gave up without knowing
/// whether the post exists. `published` records the post found on the network, `retry`
/// looks for it again and posts it only if the network confirms it is absent, `failed` ends
/// the share without posting. The share's status follows within moments.
#[utoipa::path(post, path = "/v1/shares/{share_id}/resolve", tag = "shares", params(("share_id" = String, Path)),
    request_body = ShareResolution,
    responses((status = 202, description = "Resolution taken", body = ShareResolved),
        (status = 401, body = chorus_kit::error::Problem), (status = 403, body = chorus_kit::error::Problem),
        (status = 404, body = chorus_kit::error::Problem),
        (status = 409, description = "The share is not unconfirmed", body = chorus_kit::error::Problem),
        (status = 422, body = chorus_kit::error::Problem), (status = 503, body = chorus_kit::error::Problem)))]
pub async fn resolve_share(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(share_id): Path<String>,
    ApiJson(resolution): ApiJson<ShareResolution>,
) -> ServiceResult<(StatusCode, Json<ShareResolved>)> {
    let request = ResolveShare {
        share_id,
        resolution,
    };
    let resolved: ShareResolved =
        call(&state, "publishing", "share_resolve", &caller, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(resolved)))
}

/// Engagement totals of one share.
#[utoipa::path(get, path = "/v1/shares/{share_id}/stats", tag = "analytics", params(("share_id" = String, Path)),
    responses((status = 200, body = ShareStats), (status = 404, body = chorus_kit::error::Problem)))]
pub async fn share_stats(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(share_id): Path<String>,
) -> ServiceResult<Json<ShareStats>> {
    Ok(Json(
        call(
            &state,
            "engagement",
            "share_stats",
            &caller,
            &ShareRef { share_id },
        )
        .await?,
    ))
}

/// The caller's in-app notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "notifications", responses((status = 200, body = Inbox)))]
pub async fn my_notifications(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Inbox>> {
    Ok(Json(
        call(&state, "notifications", "inbox_list", &caller, &Empty {}).await?,
    ))
}

/// Mark one notification as read.
#[utoipa::path(post, path = "/v1/me/notifications/{notification_id}/read", tag = "notifications",
    params(("notification_id" = String, Path)), responses((status = 204), (status = 404, body = chorus_kit::error::Problem)))]
pub async fn mark_read(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(notification_id): Path<String>,
) -> ServiceResult<StatusCode> {
    let _: Empty = call(
        &state,
        "notifications",
        "inbox_mark_read",
        &caller,
        &NotificationRef { notification_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
