//! LinkedIn's routes, in its wire format: OAuth (see `oauth`), userinfo, the Posts API and
//! socialActions.

mod oauth;

use crate::SimPost;
use crate::state::{FaultAction, PostRefusal, SimState, TokenRejection, person_urn};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

/// Longest commentary LinkedIn accepts.
const MAX_COMMENTARY_CHARS: usize = 3_000;
const VERSION_HEADER: &str = "linkedin-version";
const RESTLI_HEADER: &str = "x-restli-protocol-version";
const RESTLI_VERSION: &str = "2.0.0";

type AppState = State<Arc<SimState>>;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/oauth/v2/authorization", get(oauth::authorize))
        .route("/oauth/v2/accessToken", post(oauth::access_token))
        .route("/v2/userinfo", get(userinfo))
        .route("/rest/posts", post(create_post))
        .route("/rest/images", post(initialize_upload))
        .route("/upload/images/{id}", axum::routing::put(upload_image))
        .route("/cdn/{name}", get(cdn_image))
        .route("/rest/posts/{urn}", get(read_post))
        .route("/rest/socialActions/{urn}", get(social_actions))
        .route("/rest/memberCreatorPostAnalytics", get(post_analytics))
        .route("/v2/connections", get(connections))
}

/// A LinkedIn error reply: its status and JSON body.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

fn refusal(status: StatusCode, body: Value) -> Refusal {
    Refusal { status, body }
}

fn canonical_reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// The body of a LinkedIn validation failure (422) on one input field.
fn validation_failure(message: String, field_path: &str, description: &str, code: &str) -> Refusal {
    refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "errorDetailType": "com.linkedin.common.error.BadRequest",
            "message": message,
            "errorDetails": {"inputErrors": [{
                "description": description,
                "input": {"inputPath": {"fieldPath": field_path}},
                "code": code,
            }]},
            "status": 422,
        }),
    )
}

fn duplicate_post(existing_urn: &str) -> Refusal {
    refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "errorDetailType": "com.linkedin.common.error.BadRequest",
            "message": format!("Content is a duplicate of {existing_urn}"),
            "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}]},
            "status": 422,
        }),
    )
}

fn invalid_access_token() -> Refusal {
    refusal(
        StatusCode::UNAUTHORIZED,
        json!({"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}),
    )
}

fn empty_access_token() -> Refusal {
    refusal(
        StatusCode::UNAUTHORIZED,
        json!({"status": 401, "serviceErrorCode": 65604, "code": "EMPTY_ACCESS_TOKEN", "message": "Empty oauth2 access token"}),
    )
}

fn expired_access_token() -> Refusal {
    // serviceErrorCode and wording of the expired body are unconfirmed (NETWORKS.md).
    refusal(
        StatusCode::UNAUTHORIZED,
        json!({"status": 401, "serviceErrorCode": 65601, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"}),
    )
}

fn access_denied(message: String) -> Refusal {
    refusal(
        StatusCode::FORBIDDEN,
        json!({"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": message}),
    )
}

fn daily_throttle() -> Refusal {
    // LinkedIn sends no rate-limit headers with it.
    refusal(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"status": 429, "message": "Resource level throttle APPLICATION AND MEMBER DAY limit for calls to this resource is reached."}),
    )
}

fn bad_request(message: &str) -> Refusal {
    refusal(
        StatusCode::BAD_REQUEST,
        json!({"status": 400, "message": message}),
    )
}

fn not_found(urn: &str) -> Refusal {
    refusal(
        StatusCode::NOT_FOUND,
        json!({"status": 404, "code": "NOT_FOUND", "message": format!("Entity {urn} not found")}),
    )
}

/// The body LinkedIn sends with `status`, for injected faults.
fn status_fault(status: StatusCode, requested_version: Option<&str>) -> Refusal {
    match status {
        StatusCode::UNAUTHORIZED => invalid_access_token(),
        StatusCode::FORBIDDEN => access_denied(
            "Not enough permissions to access: partnerApiPostsExternal.CREATE".to_string(),
        ),
        StatusCode::TOO_MANY_REQUESTS => daily_throttle(),
        StatusCode::UPGRADE_REQUIRED => retired_version(requested_version.unwrap_or("")),
        _ => refusal(
            status,
            json!({"status": status.as_u16(), "message": canonical_reason(status)}),
        ),
    }
}

fn retired_version(version: &str) -> Refusal {
    refusal(
        StatusCode::UPGRADE_REQUIRED,
        json!({"status": 426, "code": "NONEXISTENT_VERSION", "message": format!("Requested version {version} is not active")}),
    )
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The member behind the request's bearer token, or LinkedIn's 401.
fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<String, Refusal> {
    let Some(token) = bearer_token(headers) else {
        return Err(empty_access_token());
    };
    state.member_of(token).map_err(|rejection| match rejection {
        TokenRejection::Unknown => invalid_access_token(),
        TokenRejection::Expired => expired_access_token(),
    })
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// `/rest` calls must name an active LinkedIn-Version.
fn check_version(state: &SimState, headers: &HeaderMap) -> Result<(), Refusal> {
    // LinkedIn's reply to a missing header is unconfirmed; a 400 catches adapter bugs.
    let Some(version) = header_text(headers, VERSION_HEADER) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            json!({"status": 400, "code": "VERSION_MISSING", "message": "A version must be present. Please specify a version by adding the LinkedIn-Version header."}),
        ));
    };
    if !state.is_active_version(version) {
        return Err(retired_version(version));
    }
    Ok(())
}

async fn userinfo(State(state): AppState, headers: HeaderMap) -> Result<Response, Refusal> {
    let member_id = authenticate(&state, &headers)?;
    let userinfo = json!({
        "sub": member_id,
        "name": format!("Member {member_id}"),
        "given_name": "Member",
        "family_name": member_id,
        "locale": {"country": "US", "language": "en"},
    });
    Ok(axum::Json(userinfo).into_response())
}

async fn create_post(State(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let fault = state.take_fault("linkedin");
    match fault {
        Some(FaultAction::AnswerStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::info!(
                status = status.as_u16(),
                "netsim fault: post answered without being created"
            );
            return status_fault(status, header_text(&headers, VERSION_HEADER)).into_response();
        }
        Some(FaultAction::DelayBefore(delay)) => {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "netsim fault: slow post"
            );
            tokio::time::sleep(delay).await;
        }
        Some(FaultAction::HoldAfter(_) | FaultAction::StatusAfter(_)) | None => {}
    }

    // Everything up to the reply happens without an await, so a client that gives up
    // during the hold below cannot undo the creation.
    let response = accept_post(&state, &headers, &body).into_response();
    if let Some(FaultAction::StatusAfter(code)) = fault
        && response.status().is_success()
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        tracing::info!(
            status = code,
            "netsim fault: post created, answered as failed"
        );
        return status_fault(status, header_text(&headers, VERSION_HEADER)).into_response();
    }

    if let Some(FaultAction::HoldAfter(hold)) = fault {
        tracing::info!(
            hold_ms = hold.as_millis() as u64,
            status = response.status().as_u16(),
            "netsim fault: holding the reply"
        );
        tokio::time::sleep(hold).await;
    }
    response
}

fn accept_post(state: &SimState, headers: &HeaderMap, body: &[u8]) -> Result<Response, Refusal> {
    check_version(state, headers)?;
    // Without it LinkedIn falls back to Rest.li 1.0; netsim refuses to catch adapter bugs.
    if header_text(headers, RESTLI_HEADER) != Some(RESTLI_VERSION) {
        return Err(bad_request("X-Restli-Protocol-Version: 2.0.0 is required"));
    }
    let member_id = authenticate(state, headers)?;
    let request: Value = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Value::Object(fields),
        Ok(_) | Err(_) => return Err(bad_request("Request body must be a JSON object")),
    };
    let commentary = check_post_body(&request, &member_id)?;
    let image = check_media(state, &request, &member_id)?;

    match state.create_post(&member_id, commentary) {
        Ok(created) => {
            if let Some(image) = &image {
                state.attach_media(&created.urn, image);
            }
            tracing::info!(member_id = %member_id, urn = %created.urn, "netsim post created");
            Ok((StatusCode::CREATED, [("x-restli-id", created.urn)]).into_response())
        }
        Err(PostRefusal::DailyLimitReached) => {
            tracing::info!(member_id = %member_id, "netsim post refused: daily limit");
            Err(daily_throttle())
        }
        Err(PostRefusal::Duplicate { existing_urn }) => {
            tracing::info!(member_id = %member_id, existing_urn = %existing_urn, "netsim post refused: duplicate");
            state.count_duplicate("linkedin");
            Err(duplicate_post(&existing_urn))
        }
    }
}

fn missing_field(field: &str) -> Refusal {
    validation_failure(
        format!("/{field} :: field is required but not found and has no default value"),
        &format!("/{field}"),
        "Field is required",
        "MISSING_REQUIRED_FIELD",
    )
}

fn text_field<'a>(request: &'a Value, field: &str) -> Result<&'a str, Refusal> {
    request
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| missing_field(field))
}

/// Checks the minimal text-post body of NETWORKS.md and returns its commentary.
fn check_post_body<'a>(request: &'a Value, member_id: &str) -> Result<&'a str, Refusal> {
    let author = text_field(request, "author")?;
    let expected_author = person_urn(member_id);
    if author != expected_author {
        return Err(access_denied(format!(
            "Not enough permissions to post as {author}"
        )));
    }
    let commentary = text_field(request, "commentary")?;
    if commentary.trim().is_empty() {
        return Err(missing_field("commentary"));
    }
    let commentary_chars = commentary.chars().count();
    if commentary_chars > MAX_COMMENTARY_CHARS {
        return Err(validation_failure(
            format!(
                "/commentary :: length {commentary_chars} exceeds the maximum allowed length of {MAX_COMMENTARY_CHARS}"
            ),
            "/commentary",
            "Text exceeds the maximum allowed length",
            "FIELD_LENGTH_TOO_LONG",
        ));
    }
    let visibility = text_field(request, "visibility")?;
    if !matches!(visibility, "PUBLIC" | "CONNECTIONS" | "LOGGED_IN") {
        return Err(validation_failure(
            format!("/visibility :: unknown value {visibility}"),
            "/visibility",
            "Invalid value",
            "INVALID_VALUE",
        ));
    }
    let distribution = request
        .get("distribution")
        .filter(|value| value.is_object())
        .ok_or_else(|| missing_field("distribution"))?;
    if distribution
        .get("feedDistribution")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(missing_field("distribution/feedDistribution"));
    }
    // Drafts are not simulated: a post either goes live or is refused.
    let lifecycle_state = text_field(request, "lifecycleState")?;
    if lifecycle_state != "PUBLISHED" {
        return Err(validation_failure(
            format!("/lifecycleState :: netsim only simulates PUBLISHED, got {lifecycle_state}"),
            "/lifecycleState",
            "Invalid value",
            "INVALID_VALUE",
        ));
    }
    Ok(commentary)
}

fn post_json(post: &SimPost) -> Value {
    let created_at_ms = post.created_at.timestamp_millis();
    json!({
        "id": post.urn,
        "author": post.author,
        "commentary": post.commentary,
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
        "createdAt": created_at_ms,
        "publishedAt": created_at_ms,
        "lastModifiedAt": created_at_ms,
    })
}

/// Reads a known post. Lenient for tests: the token and version are checked only when sent.
async fn read_post(
    State(state): AppState,
    Path(urn): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    if headers.contains_key(header::AUTHORIZATION) {
        authenticate(&state, &headers)?;
    }
    if headers.contains_key(VERSION_HEADER) {
        check_version(&state, &headers)?;
    }
    let post = state.post(&urn).ok_or_else(|| not_found(&urn))?;
    Ok(axum::Json(post_json(&post)).into_response())
}

async fn social_actions(
    State(state): AppState,
    Path(urn): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    check_version(&state, &headers)?;
    authenticate(&state, &headers)?;
    let post = state.post(&urn).ok_or_else(|| not_found(&urn))?;
    let actions = json!({
        "likesSummary": {"totalLikes": post.reactions, "aggregatedTotalLikes": post.reactions, "likedByCurrentUser": false},
        "commentsSummary": {"totalFirstLevelComments": post.comments, "aggregatedTotalComments": post.comments},
        "target": post.urn,
    });
    Ok(axum::Json(actions).into_response())
}

#[derive(serde::Deserialize)]
struct AnalyticsQuery {
    q: Option<String>,
    entity: Option<String>,
    #[serde(rename = "queryType")]
    query_type: Option<String>,
}

/// Member post statistics: `?q=entity&entity=(share:urn:li:share:…)&queryType=IMPRESSION&aggregation=TOTAL`.
/// The parameter syntax follows LinkedIn's "Member Post Statistics" page (unconfirmed).
async fn post_analytics(
    State(state): AppState,
    axum::extract::Query(query): axum::extract::Query<AnalyticsQuery>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    check_version(&state, &headers)?;
    authenticate(&state, &headers)?;
    let bad = |message: &str| {
        refusal(
            StatusCode::BAD_REQUEST,
            json!({"status": 400, "code": "ILLEGAL_ARGUMENT", "message": message}),
        )
    };
    if query.q.as_deref() != Some("entity") {
        return Err(bad("q must be entity"));
    }
    let entity = query.entity.unwrap_or_default();
    let urn = entity
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split_once(':')
        .map(|(_, urn)| urn.to_string())
        .ok_or_else(|| bad("entity must be (share:urn) or (ugc:urn)"))?;
    let post = state.post(&urn).ok_or_else(|| not_found(&urn))?;
    let kind = query.query_type.unwrap_or_default();
    let count = match kind.as_str() {
        "IMPRESSION" => post.impressions,
        "REACTION" => post.reactions,
        "COMMENT" => post.comments,
        "RESHARE" => post.reshares,
        "MEMBERS_REACHED" => post.impressions * 7 / 10,
        _ => return Err(bad("unknown queryType")),
    };
    let body = json!({
        "paging": {"start": 0, "count": 10, "links": []},
        "elements": [{"count": count, "metricType": {"com.linkedin.adsexternalapi.memberanalytics.v1.CreatorPostAnalyticsMetricTypeV1": kind}}],
    });
    Ok(axum::Json(body).into_response())
}

/// The member's first-degree connections: `GET /v2/connections?q=viewer&start=0&count=0`
/// answers only `paging.total`, the network size.
async fn connections(State(state): AppState, headers: HeaderMap) -> Result<Response, Refusal> {
    let member = authenticate(&state, &headers)?;
    let total = crate::network_size(&member);
    Ok(
        axum::Json(json!({"elements": [], "paging": {"start": 0, "count": 0, "total": total}}))
            .into_response(),
    )
}

/// An image of the Images API: its owner, and its bytes once uploaded.
#[derive(Debug, Clone)]
pub struct Image {
    owner: String,
    bytes: Option<Vec<u8>>,
}

/// `content.media.id` of a post, when it has one: an image of its author, uploaded.
fn check_media(
    state: &SimState,
    request: &Value,
    member_id: &str,
) -> Result<Option<String>, Refusal> {
    let Some(content) = request.get("content") else {
        return Ok(None);
    };
    let Some(urn) = content.pointer("/media/id").and_then(Value::as_str) else {
        return Err(validation_failure(
            "/content :: only media is supported here".to_string(),
            "/content/media/id",
            "Missing media id",
            "MISSING_FIELD",
        ));
    };
    let images = state
        .linkedin_images
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match images.get(urn) {
        Some(image) if image.owner == person_urn(member_id) && image.bytes.is_some() => {
            Ok(Some(urn.to_string()))
        }
        Some(image) if image.owner != person_urn(member_id) => Err(access_denied(format!(
            "Not enough permissions to use {urn}"
        ))),
        _ => Err(validation_failure(
            format!("/content/media/id :: {urn} is not an uploaded image"),
            "/content/media/id",
            "Image not found or not uploaded",
            "INVALID_VALUE",
        )),
    }
}

/// `POST /rest/images?action=initializeUpload`: an upload URL and the image's URN.
async fn initialize_upload(
    State(state): AppState,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, Refusal> {
    check_version(&state, &headers)?;
    let member_id = authenticate(&state, &headers)?;
    if query.get("action").map(String::as_str) != Some("initializeUpload") {
        return Err(bad_request("action=initializeUpload is required"));
    }
    let request: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("Request body must be JSON"))?;
    let owner = request
        .pointer("/initializeUploadRequest/owner")
        .and_then(Value::as_str)
        .ok_or_else(|| missing_field("initializeUploadRequest.owner"))?;
    if owner != person_urn(&member_id) {
        return Err(access_denied(format!(
            "Not enough permissions to upload as {owner}"
        )));
    }
    let id = format!("D4E{}", uuid::Uuid::new_v4().simple());
    let urn = format!("urn:li:image:{id}");
    state
        .linkedin_images
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            urn.clone(),
            Image {
                owner: owner.to_string(),
                bytes: None,
            },
        );
    let host = header_text(&headers, "host").unwrap_or("127.0.0.1");
    Ok(axum::Json(serde_json::json!({"value": {
        "uploadUrlExpiresAt": (chrono::Utc::now() + chrono::TimeDelta::hours(1)).timestamp_millis(),
        "uploadUrl": format!("http://{host}/upload/images/{id}"),
        "image": urn,
    }}))
    .into_response())
}

/// `PUT` of the image bytes, in one request, with the member's token.
async fn upload_image(
    State(state): AppState,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> Result<StatusCode, Refusal> {
    let member_id = authenticate(&state, &headers)?;
    if body.is_empty() {
        return Err(bad_request("the image is empty"));
    }
    let urn = format!("urn:li:image:{id}");
    let mut images = state
        .linkedin_images
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match images.get_mut(&urn) {
        Some(image) if image.owner == person_urn(&member_id) => {
            image.bytes = Some(body.to_vec());
            Ok(StatusCode::CREATED)
        }
        _ => Err(refusal(
            StatusCode::NOT_FOUND,
            serde_json::json!({"status": 404, "message": "no such upload"}),
        )),
    }
}

/// A company's image host, for tests: a small PNG under any name.
async fn cdn_image(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    if !name.ends_with(".png") {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(axum::http::header::CONTENT_TYPE, "image/png")],
        PNG.to_vec(),
    )
        .into_response()
}

/// A 1x1 transparent PNG.
const PNG: [u8; 67] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

impl SimState {
    /// The bytes of an uploaded LinkedIn image.
    pub(crate) fn linkedin_image(&self, urn: &str) -> Option<Vec<u8>> {
        self.linkedin_images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(urn)
            .and_then(|image| image.bytes.clone())
    }
}
