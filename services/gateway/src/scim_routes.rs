//! SCIM 2.0 provisioning under `/scim/v2` for identity providers (Okta, Entra ID): Users and
//! Groups. The client authenticates with an administrator's API key
//! (`Authorization: Bearer chk_…`); bodies and errors are `application/scim+json`.

use crate::AppState;
use crate::auth::Authenticated;
use crate::routes::call;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chorus_api::Empty;
use chorus_api::identity::{ScimPatch, ScimQuery, ScimRef, ScimWrite};
use chorus_kit::{ErrorCode, ServiceError};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::OpenApi;

const SERVICE: &str = "identity";
const SCIM_JSON: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(OpenApi)]
#[openapi(paths(
    list_users,
    create_user,
    get_user,
    replace_user,
    patch_user,
    delete_user,
    list_groups,
    create_group,
    get_group,
    replace_group,
    patch_group,
    delete_group,
    service_provider_config,
    resource_types
))]
pub struct ScimApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scim/v2/Users", get(list_users).post(create_user))
        .route(
            "/scim/v2/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/scim/v2/Groups", get(list_groups).post(create_group))
        .route(
            "/scim/v2/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(resource_types))
}

/// A SCIM error response (RFC 7644 §3.12).
pub struct ScimError(ServiceError);

impl From<ServiceError> for ScimError {
    fn from(error: ServiceError) -> Self {
        ScimError(error)
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let ServiceError { code, message, .. } = self.0;
        let status = match code {
            // SCIM answers malformed or invalid input with 400.
            ErrorCode::Invalid => 400,
            other => other.http_status(),
        };
        let mut body =
            json!({"schemas": [ERROR_SCHEMA], "status": status.to_string(), "detail": message});
        let scim_type = match code {
            ErrorCode::Invalid if message.starts_with("filter") => Some("invalidFilter"),
            ErrorCode::Invalid if message.starts_with("path") => Some("invalidPath"),
            ErrorCode::Invalid if message.contains("not valid JSON") => Some("invalidSyntax"),
            ErrorCode::Invalid => Some("invalidValue"),
            ErrorCode::Conflict => Some("uniqueness"),
            _ => None,
        };
        if let Some(scim_type) = scim_type {
            body["scimType"] = json!(scim_type);
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, SCIM_JSON)],
            body.to_string(),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        response
    }
}

type ScimResult = Result<Response, ScimError>;

/// The caller, answered with a SCIM error when the key or token is missing or refused.
fn caller(
    authenticated: Result<Authenticated, ServiceError>,
) -> Result<chorus_kit::Caller, ScimError> {
    Ok(authenticated?.0)
}

fn body_json(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|error| {
        ScimError(ServiceError::invalid(format!(
            "the body is not valid JSON: {error}"
        )))
    })
}

/// A resource answered with its location and version.
fn resource(state: &AppState, status: StatusCode, kind: &str, mut value: Value) -> Response {
    let id = value["id"].as_str().unwrap_or_default().to_string();
    let location = format!(
        "{}/scim/v2/{kind}/{id}",
        state.public_url.trim_end_matches('/')
    );
    value["meta"]["location"] = json!(location);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(version) = value["meta"]["version"]
        .as_str()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(header::ETAG, version);
    }
    (status, headers, value.to_string()).into_response()
}

fn list(state: &AppState, kind: &str, mut value: Value) -> Response {
    let base = state.public_url.trim_end_matches('/').to_string();
    if let Some(resources) = value["Resources"].as_array_mut() {
        for item in resources {
            let id = item["id"].as_str().unwrap_or_default().to_string();
            item["meta"]["location"] = json!(format!("{base}/scim/v2/{kind}/{id}"));
        }
    }
    ([(header::CONTENT_TYPE, SCIM_JSON)], value.to_string()).into_response()
}

/// Asks identity (`endpoint`) with the caller checked first, and answers the resource
/// (`kind`: `Users` or `Groups`) with `status`.
async fn answer<R: serde::Serialize>(
    state: &AppState,
    authenticated: Result<Authenticated, ServiceError>,
    endpoint: &str,
    request: Result<R, ScimError>,
    kind: &str,
    status: StatusCode,
) -> ScimResult {
    let caller = caller(authenticated)?;
    let request = request?;
    let value: Value = call(state, SERVICE, endpoint, &caller, &request).await?;
    Ok(resource(state, status, kind, value))
}

/// A list of `kind` from identity (`endpoint`).
async fn listed(
    state: &AppState,
    authenticated: Result<Authenticated, ServiceError>,
    endpoint: &str,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    kind: &str,
) -> ScimResult {
    let caller = caller(authenticated)?;
    let Query(params) = params.map_err(|e| {
        ScimError(ServiceError::invalid(format!(
            "filter or paging parameters are not valid: {}",
            e.body_text()
        )))
    })?;
    let value: Value = call(state, SERVICE, endpoint, &caller, &ScimQuery::from(params)).await?;
    Ok(list(state, kind, value))
}

/// Deletes through identity (`endpoint`): 204.
async fn deleted(
    state: &AppState,
    authenticated: Result<Authenticated, ServiceError>,
    endpoint: &str,
    id: String,
) -> ScimResult {
    let caller = caller(authenticated)?;
    let _: Empty = call(state, SERVICE, endpoint, &caller, &ScimRef { id }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn write(id: Option<String>, body: &Bytes) -> Result<ScimWrite, ScimError> {
    Ok(ScimWrite {
        id,
        resource: body_json(body)?,
    })
}

fn patch(id: String, body: &Bytes) -> Result<ScimPatch, ScimError> {
    Ok(ScimPatch {
        id,
        patch: body_json(body)?,
    })
}

/// SCIM list parameters (RFC 7644 §3.4.2).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `<attribute> eq "<value>"`, e.g. `userName eq "alice@acme.example"`.
    pub filter: Option<String>,
    /// 1-based index of the first resource (default 1).
    #[param(minimum = 1)]
    pub start_index: Option<u64>,
    /// Resources per page (default 100, at most 200).
    #[param(minimum = 0)]
    pub count: Option<u64>,
    /// `members` leaves the members out of groups.
    pub excluded_attributes: Option<String>,
}

impl From<ListParams> for ScimQuery {
    fn from(params: ListParams) -> Self {
        ScimQuery {
            filter: params.filter,
            start_index: params.start_index,
            count: params.count,
            excluded_attributes: params.excluded_attributes,
        }
    }
}

/// Lists users (SCIM), filtered by `userName`, `externalId`, `id` or `emails.value`.
#[utoipa::path(get, path = "/scim/v2/Users", tag = "scim", operation_id = "scim_list_users", params(ListParams),
    responses((status = 200, description = "A SCIM ListResponse of users", content_type = "application/scim+json", body = Object),
        (status = 400, description = "Invalid filter", content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 403, content_type = "application/scim+json", body = Object)))]
pub async fn list_users(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult {
    listed(&state, authenticated, "scim_user_list", params, "Users").await
}

/// Provisions a user (SCIM). `userName` becomes the user id when it is one (letters,
/// digits, `- _ . @ +`), so that OIDC tokens carrying it name the same person.
#[utoipa::path(post, path = "/scim/v2/Users", tag = "scim", operation_id = "scim_create_user",
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM User",
        example = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.example",
            "name": {"givenName": "Alice", "familyName": "Martin"}, "emails": [{"value": "alice@acme.example", "primary": true}],
            "active": true, "preferredLanguage": "fr-FR", "timezone": "Europe/Paris"})),
    responses((status = 201, description = "The user", content_type = "application/scim+json", body = Object),
        (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 403, content_type = "application/scim+json", body = Object), (status = 409, description = "userName taken", content_type = "application/scim+json", body = Object)))]
pub async fn create_user(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    body: Bytes,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_user_create",
        write(None, &body),
        "Users",
        StatusCode::CREATED,
    )
    .await
}

/// A user (SCIM).
#[utoipa::path(get, path = "/scim/v2/Users/{id}", tag = "scim", operation_id = "scim_get_user", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn get_user(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_user_get",
        Ok(ScimRef { id }),
        "Users",
        StatusCode::OK,
    )
    .await
}

/// Replaces a user (SCIM). `active: false` deactivates: the person can no longer sign in,
/// their pending shares are cancelled and they leave the leaderboards.
#[utoipa::path(put, path = "/scim/v2/Users/{id}", tag = "scim", operation_id = "scim_replace_user", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM User"),
    responses((status = 200, content_type = "application/scim+json", body = Object), (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object), (status = 409, content_type = "application/scim+json", body = Object)))]
pub async fn replace_user(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_user_replace",
        write(Some(id), &body),
        "Users",
        StatusCode::OK,
    )
    .await
}

/// Patches a user (SCIM `PatchOp`: add, replace, remove; paths such as `active`,
/// `emails[type eq "work"].value` or the enterprise extension's `department`).
#[utoipa::path(patch, path = "/scim/v2/Users/{id}", tag = "scim", operation_id = "scim_patch_user", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM PatchOp",
        example = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]})),
    responses((status = 200, content_type = "application/scim+json", body = Object), (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn patch_user(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_user_patch",
        patch(id, &body),
        "Users",
        StatusCode::OK,
    )
    .await
}

/// Deletes a user (SCIM): the user is erased in every service (`user.erased`); their posts
/// on social networks are their own and stay.
#[utoipa::path(delete, path = "/scim/v2/Users/{id}", tag = "scim", operation_id = "scim_delete_user", params(("id" = String, Path)),
    responses((status = 204, description = "Erased"), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn delete_user(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
) -> ScimResult {
    deleted(&state, authenticated, "user_erase", id).await
}

/// Lists groups (SCIM), filtered by `displayName`, `externalId` or `id`.
#[utoipa::path(get, path = "/scim/v2/Groups", tag = "scim", operation_id = "scim_list_groups", params(ListParams),
    responses((status = 200, description = "A SCIM ListResponse of groups", content_type = "application/scim+json", body = Object),
        (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 403, content_type = "application/scim+json", body = Object)))]
pub async fn list_groups(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ScimResult {
    listed(&state, authenticated, "scim_group_list", params, "Groups").await
}

/// Creates a group (SCIM) with its members (user ids).
#[utoipa::path(post, path = "/scim/v2/Groups", tag = "scim", operation_id = "scim_create_group",
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM Group",
        example = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales EMEA", "members": [{"value": "alice@acme.example"}]})),
    responses((status = 201, content_type = "application/scim+json", body = Object), (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 409, content_type = "application/scim+json", body = Object)))]
pub async fn create_group(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    body: Bytes,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_group_create",
        write(None, &body),
        "Groups",
        StatusCode::CREATED,
    )
    .await
}

/// A group (SCIM) with its members.
#[utoipa::path(get, path = "/scim/v2/Groups/{id}", tag = "scim", operation_id = "scim_get_group", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn get_group(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_group_get",
        Ok(ScimRef { id }),
        "Groups",
        StatusCode::OK,
    )
    .await
}

/// Replaces a group (SCIM): name and members.
#[utoipa::path(put, path = "/scim/v2/Groups/{id}", tag = "scim", operation_id = "scim_replace_group", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM Group"),
    responses((status = 200, content_type = "application/scim+json", body = Object), (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn replace_group(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_group_replace",
        write(Some(id), &body),
        "Groups",
        StatusCode::OK,
    )
    .await
}

/// Patches a group (SCIM `PatchOp`): rename, add or remove members
/// (`members[value eq "<id>"]`, or `members` with the ids to remove).
#[utoipa::path(patch, path = "/scim/v2/Groups/{id}", tag = "scim", operation_id = "scim_patch_group", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM PatchOp",
        example = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": "bob@acme.example"}]}]})),
    responses((status = 200, content_type = "application/scim+json", body = Object), (status = 400, content_type = "application/scim+json", body = Object), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn patch_group(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    answer(
        &state,
        authenticated,
        "scim_group_patch",
        patch(id, &body),
        "Groups",
        StatusCode::OK,
    )
    .await
}

/// Deletes a group (SCIM); its members stay.
#[utoipa::path(delete, path = "/scim/v2/Groups/{id}", tag = "scim", operation_id = "scim_delete_group", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, content_type = "application/scim+json", body = Object), (status = 404, content_type = "application/scim+json", body = Object)))]
pub async fn delete_group(
    State(state): State<AppState>,
    authenticated: Result<Authenticated, ServiceError>,
    Path(id): Path<String>,
) -> ScimResult {
    deleted(&state, authenticated, "scim_group_delete", id).await
}

/// What this SCIM service supports (RFC 7643 §5).
#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", tag = "scim", operation_id = "scim_service_provider_config",
    responses((status = 200, content_type = "application/scim+json", body = Object)))]
pub async fn service_provider_config() -> Response {
    let config = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 200},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "API key",
            "description": "An administrator's Chorus API key as a bearer token",
            "primary": true,
        }],
    });
    ([(header::CONTENT_TYPE, SCIM_JSON)], config.to_string()).into_response()
}

/// The resource types served (RFC 7643 §6).
#[utoipa::path(get, path = "/scim/v2/ResourceTypes", tag = "scim", operation_id = "scim_resource_types",
    responses((status = 200, content_type = "application/scim+json", body = Object)))]
pub async fn resource_types() -> Response {
    let types = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 2,
        "Resources": [
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
             "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
             "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false}]},
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "Group", "name": "Group",
             "endpoint": "/Groups", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"},
        ],
    });
    ([(header::CONTENT_TYPE, SCIM_JSON)], types.to_string()).into_response()
}
