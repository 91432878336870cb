//! API keys for integrators under `/v1/api-keys` (admins).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use crate::routes::call;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chorus_api::Empty;
use chorus_api::identity::{ApiKey, ApiKeyCreated, ApiKeyRef, ApiKeys, CreateApiKey};
use chorus_kit::ServiceResult;
use utoipa::OpenApi;

type Problem = chorus_kit::error::Problem;

const SERVICE: &str = "identity";

#[derive(OpenApi)]
#[openapi(
    paths(create_key, list_keys, revoke_key),
    components(schemas(CreateApiKey, ApiKey, ApiKeyCreated, ApiKeys))
)]
pub struct KeyApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list_keys).post(create_key))
        .route("/v1/api-keys/{key_id}", delete(revoke_key))
}

/// Create an API key for an integrator (admins). The key (`chk_<tenant>_<id>_<secret>`) is
/// returned now and never again; send it as `Authorization: Bearer <key>`. It acts as its
/// user with the roles it names, a subset of the user's roles and never `advocate`: a key
/// never shares on anyone's accounts.
#[utoipa::path(post, path = "/v1/api-keys", tag = "identity", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyCreated), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<CreateApiKey>,
) -> ServiceResult<(StatusCode, Json<ApiKeyCreated>)> {
    let created: ApiKeyCreated = call(&state, SERVICE, "api_key_create", &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The tenant's API keys with their last use (admins; keys themselves are never shown).
#[utoipa::path(get, path = "/v1/api-keys", tag = "identity",
    responses((status = 200, body = ApiKeys), (status = 403, body = Problem)))]
pub async fn list_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<ApiKeys>> {
    Ok(Json(
        call(&state, SERVICE, "api_key_list", &caller, &Empty {}).await?,
    ))
}

/// Revoke an API key (admins); requests with it are refused from now on.
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "identity",
    params(("key_id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(key_id): Path<String>,
) -> ServiceResult<Json<ApiKey>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "api_key_revoke",
            &caller,
            &ApiKeyRef { key_id },
        )
        .await?,
    ))
}
