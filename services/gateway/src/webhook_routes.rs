//! Integrator webhook endpoints under `/v1/webhooks`: subscribe, rotate secrets, inspect
//! deliveries, replay, and the tenant's destination policy.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use crate::routes::call;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chorus_api::Empty;
use chorus_api::notifications::{
    CreateWebhookEndpoint, WebhookDeliveries, WebhookDelivery, WebhookDeliveryRef,
    WebhookDeliveryStatus, WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointRef,
    WebhookEndpointStatus, WebhookEndpoints, WebhookEventTypes, WebhookSecretRotated,
    WebhookSettings,
};
use chorus_kit::ServiceResult;
use utoipa::OpenApi;

type Problem = chorus_kit::error::Problem;

const SERVICE: &str = "notifications";

#[derive(OpenApi)]
#[openapi(
    paths(
        event_types,
        create_endpoint,
        list_endpoints,
        get_endpoint,
        delete_endpoint,
        enable_endpoint,
        rotate_secret,
        list_deliveries,
        replay,
        replay_failed,
        get_settings,
        set_settings
    ),
    components(schemas(
        CreateWebhookEndpoint,
        WebhookEndpointStatus,
        WebhookEndpoint,
        WebhookEndpointCreated,
        WebhookEndpoints,
        WebhookSecretRotated,
        WebhookDeliveryStatus,
        WebhookDelivery,
        WebhookDeliveries,
        WebhookSettings,
        WebhookEventTypes
    ))
)]
pub struct WebhookApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/event-types", get(event_types))
        .route(
            "/v1/webhooks/endpoints",
            post(create_endpoint).get(list_endpoints),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}",
            get(get_endpoint).delete(delete_endpoint),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/enable",
            post(enable_endpoint),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret",
            post(rotate_secret),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/deliveries",
            get(list_deliveries),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/deliveries/{message_id}/replay",
            post(replay),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/replay-failed",
            post(replay_failed),
        )
        .route("/v1/webhooks/settings", get(get_settings).put(set_settings))
}

/// Every event type an endpoint can subscribe to (`share.published.v1`, …), the same
/// names as the NATS subjects after `chorus.<tenant>.` (admins and integrators).
#[utoipa::path(get, path = "/v1/webhooks/event-types", tag = "webhooks",
    responses((status = 200, body = WebhookEventTypes), (status = 403, body = Problem)))]
pub async fn event_types(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<WebhookEventTypes>> {
    Ok(Json(
        call(&state, SERVICE, "webhook_event_types", &caller, &Empty {}).await?,
    ))
}

/// Subscribe an endpoint to the tenant's events (admins and integrators). Each event is
/// POSTed as `{"type", "timestamp", "data"}` with the Standard Webhooks headers
/// `webhook-id`, `webhook-timestamp` and `webhook-signature`; verify the signature with the
/// returned secret (shown only now). Failed attempts are retried after 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h and 10 h (±20%); an endpoint failing for 5 days, or answering 410 Gone, is
/// disabled and the tenant's admins are told. URLs resolving to private, loopback or
/// link-local addresses are refused (422) unless an admin allows private destinations.
#[utoipa::path(post, path = "/v1/webhooks/endpoints", tag = "webhooks", request_body = CreateWebhookEndpoint,
    responses((status = 201, body = WebhookEndpointCreated), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<CreateWebhookEndpoint>,
) -> ServiceResult<(StatusCode, Json<WebhookEndpointCreated>)> {
    let created: WebhookEndpointCreated =
        call(&state, SERVICE, "webhook_endpoint_create", &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The tenant's endpoints (secrets are never shown again).
#[utoipa::path(get, path = "/v1/webhooks/endpoints", tag = "webhooks",
    responses((status = 200, body = WebhookEndpoints), (status = 403, body = Problem)))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<WebhookEndpoints>> {
    Ok(Json(
        call(&state, SERVICE, "webhook_endpoint_list", &caller, &Empty {}).await?,
    ))
}

/// One endpoint, with its status and, when disabled, why.
#[utoipa::path(get, path = "/v1/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(endpoint_id): Path<String>,
) -> ServiceResult<Json<WebhookEndpoint>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "webhook_endpoint_get",
            &caller,
            &WebhookEndpointRef { endpoint_id },
        )
        .await?,
    ))
}

/// Unsubscribe: the endpoint and its pending deliveries are deleted.
#[utoipa::path(delete, path = "/v1/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(endpoint_id): Path<String>,
) -> ServiceResult<StatusCode> {
    let _: Empty = call(
        &state,
        SERVICE,
        "webhook_endpoint_delete",
        &caller,
        &WebhookEndpointRef { endpoint_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled endpoint again; replay its failed messages afterwards.
#[utoipa::path(post, path = "/v1/webhooks/endpoints/{endpoint_id}/enable", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn enable_endpoint(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(endpoint_id): Path<String>,
) -> ServiceResult<Json<WebhookEndpoint>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "webhook_endpoint_enable",
            &caller,
            &WebhookEndpointRef { endpoint_id },
        )
        .await?,
    ))
}

/// A new signing secret. For 24 hours every message carries two signatures (new and old)
/// in `webhook-signature`, so receivers can switch without losing a message.
#[utoipa::path(post, path = "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookSecretRotated), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(endpoint_id): Path<String>,
) -> ServiceResult<Json<WebhookSecretRotated>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "webhook_secret_rotate",
            &caller,
            &WebhookEndpointRef { endpoint_id },
        )
        .await?,
    ))
}

/// The endpoint's latest deliveries (newest first): status, attempts, last HTTP status
/// and error, next attempt.
#[utoipa::path(get, path = "/v1/webhooks/endpoints/{endpoint_id}/deliveries", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookDeliveries), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(endpoint_id): Path<String>,
) -> ServiceResult<Json<WebhookDeliveries>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "webhook_deliveries",
            &caller,
            &WebhookEndpointRef { endpoint_id },
        )
        .await?,
    ))
}

/// Send one message again, from a first attempt, with the same `webhook-id` (409 while it
/// is still being delivered or while the endpoint is disabled).
#[utoipa::path(post, path = "/v1/webhooks/endpoints/{endpoint_id}/deliveries/{message_id}/replay", tag = "webhooks",
    params(("endpoint_id" = String, Path), ("message_id" = String, Path)),
    responses((status = 200, body = WebhookDelivery), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn replay(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((endpoint_id, message_id)): Path<(String, String)>,
) -> ServiceResult<Json<WebhookDelivery>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "webhook_replay",
            &caller,
            &WebhookDeliveryRef {
                endpoint_id,
                message_id,
            },
        )
        .await?,
    ))
}

/// Send every failed message of the endpoint again (after an outage is fixed).
#[utoipa::path(post, path = "/v1/webhooks/endpoints/{endpoint_id}/replay-failed", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookDeliveries), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn replay_failed(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(endpoint_id): Path<String>,
) -> ServiceResult<Json<WebhookDeliveries>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "webhook_replay_failed",
            &caller,
            &WebhookEndpointRef { endpoint_id },
        )
        .await?,
    ))
}

/// Where the tenant's webhooks may go.
#[utoipa::path(get, path = "/v1/webhooks/settings", operation_id = "get_webhook_settings", tag = "webhooks",
    responses((status = 200, body = WebhookSettings), (status = 403, body = Problem)))]
pub async fn get_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<WebhookSettings>> {
    Ok(Json(
        call(&state, SERVICE, "webhook_settings_get", &caller, &Empty {}).await?,
    ))
}

/// Allow or forbid private destinations (admins only): with it, endpoints may resolve to
/// private, loopback or link-local addresses and use plain http.
#[utoipa::path(put, path = "/v1/webhooks/settings", tag = "webhooks", request_body = WebhookSettings,
    responses((status = 200, body = WebhookSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<WebhookSettings>,
) -> ServiceResult<Json<WebhookSettings>> {
    Ok(Json(
        call(&state, SERVICE, "webhook_settings_set", &caller, &input).await?,
    ))
}
