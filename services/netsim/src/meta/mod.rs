//! Graph API (graph.facebook.com): Facebook Login, Facebook Pages and Instagram
//! professional accounts, as NETWORKS.md sections 3 and 4 describe them.
//!
//! Graph paths are `/{version}/{node}[/{edge}]` with any number of versions (and none), so
//! one handler parses the path and dispatches on its segments: `dialog/oauth` (the consent
//! page of www.facebook.com), `oauth/access_token`, `me`, `me/accounts`, then nodes by id
//! (Page, Page post, Instagram account, container, media) and their edges.
//!
//! Every call authenticated with a Page token counts against the Page's Business Use Case
//! limit (rolling 24 h, `NetsimOptions::graph_page_calls_per_day`) and every call against
//! the app's platform limit (rolling hour); both are reported in `X-Business-Use-Case-Usage`
//! / `X-App-Usage` as percentages, and going over answers HTTP 400 with code 32 (Page) or
//! 4 (app) and `estimated_time_to_regain_access` in minutes.

mod facebook;
mod instagram;
mod oauth;
mod store;
#[cfg(test)]
mod tests;
mod webhooks;

pub(crate) use store::MetaState;
pub(crate) use webhooks::{Subscriptions, post_changed};

use crate::state::{FaultAction, SimState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use store::{Grant, TokenKind, TokenProblem, UsageReading};

/// The platform limit of an app: 200 calls per daily active user per rolling hour; netsim
/// assumes 100 daily active users.
const APP_CALLS_PER_HOUR: u32 = 200 * 100;
const PAGE_WINDOW: TimeDelta = TimeDelta::hours(24);
const APP_WINDOW: TimeDelta = TimeDelta::hours(1);
/// `estimated_time_to_regain_access` of an injected throttle, in minutes.
const INJECTED_THROTTLE_MINUTES: i64 = 5;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new().route("/{*path}", get(dispatch).post(dispatch))
}

/// A Graph error: its HTTP status and the `{"error":{...}}` envelope.
#[derive(Debug, Clone)]
pub(super) struct GraphError {
    pub status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    pub kind: &'static str,
    pub transient: bool,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
}

impl GraphError {
    pub(super) fn new(status: StatusCode, code: i64, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code,
            subcode: None,
            message: message.into(),
            kind: "OAuthException",
            transient: false,
            user_title: None,
            user_msg: None,
        }
    }

    pub(super) fn subcode(mut self, subcode: i64) -> GraphError {
        self.subcode = Some(subcode);
        self
    }

    pub(super) fn transient(mut self) -> GraphError {
        self.transient = true;
        self
    }

    pub(super) fn user(mut self, title: &str, message: &str) -> GraphError {
        self.user_title = Some(title.to_string());
        self.user_msg = Some(message.to_string());
        self
    }

    fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), json!(subcode));
        }
        error.insert("is_transient".into(), json!(self.transient));
        if let Some(title) = &self.user_title {
            error.insert("error_user_title".into(), json!(title));
        }
        if let Some(message) = &self.user_msg {
            error.insert("error_user_msg".into(), json!(message));
        }
        error.insert(
            "fbtrace_id".into(),
            json!(format!(
                "A{}",
                &uuid::Uuid::new_v4().simple().to_string()[..22]
            )),
        );
        json!({ "error": error })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

pub(super) fn invalid_parameter(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, 100, message)
}

pub(super) fn unknown_object(id: &str) -> GraphError {
    let mut error = GraphError::new(
        StatusCode::BAD_REQUEST,
        100,
        format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"),
    )
    .subcode(33);
    error.kind = "GraphMethodException";
    error
}

pub(super) fn permission_error(code: i64, message: &str) -> GraphError {
    GraphError::new(StatusCode::FORBIDDEN, code, message.to_string())
}

fn nonexisting_edge(edge: &str, node_type: &str) -> GraphError {
    invalid_parameter(format!(
        "(#100) Tried accessing nonexisting field ({edge}) on node type ({node_type})"
    ))
}

/// One Graph request: the path after the version, and its parameters (query string and,
/// for POST, the form or JSON body).
pub(super) struct GraphRequest {
    pub method: Method,
    pub segments: Vec<String>,
    pub params: HashMap<String, String>,
    pub headers: HeaderMap,
    /// `/graph/{version}` as the client called it, for `paging.next` links.
    pub base_path: String,
}

impl GraphRequest {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The requested `fields`.
    pub(super) fn fields(&self) -> Vec<Field> {
        self.param("fields").map(parse_fields).unwrap_or_default()
    }

    fn access_token(&self) -> Option<String> {
        let from_header = self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")
            })
            .map(|(_, token)| token.trim().to_string());
        from_header
            .or_else(|| self.param("access_token").map(str::to_string))
            .filter(|token| !token.is_empty())
    }

    /// An absolute `next` link carrying `after`, when the client sent a Host header.
    pub(super) fn next_link(&self, after: &str) -> Option<String> {
        let host = self.headers.get(header::HOST)?.to_str().ok()?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            if name != "after" && name != "access_token" {
                query.append_pair(name, value);
            }
        }
        query.append_pair("after", after);
        Some(format!(
            "http://{host}{}/{}?{}",
            self.base_path,
            self.segments.join("/"),
            query.finish()
        ))
    }
}

/// One entry of `fields=a,b.summary(total_count),c{d,e}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field {
    pub name: String,
    /// The text inside `{...}`: the sub-fields of an expanded edge.
    pub subfields: Option<String>,
    /// The whole entry as written (modifiers such as `.summary(total_count)`).
    pub raw: String,
}

pub(super) fn parse_fields(text: &str) -> Vec<Field> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for character in text.chars() {
        match character {
            '{' | '(' => depth += 1,
            '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|part| part.trim().to_string())
        .filter(|part| !part.is_empty())
        .map(|raw| {
            let name_end = raw.find(['{', '.', '(']).unwrap_or(raw.len());
            let subfields = match (raw.find('{'), raw.rfind('}')) {
                (Some(open), Some(close)) if close > open => Some(raw[open + 1..close].to_string()),
                _ => None,
            };
            Field {
                name: raw[..name_end].to_string(),
                subfields,
                raw,
            }
        })
        .collect()
}

/// Keeps `id` and the requested fields of a node (all of them when none were asked).
pub(super) fn select(node: Map<String, Value>, fields: &[Field]) -> Value {
    if fields.is_empty() {
        return Value::Object(node);
    }
    let mut selected = Map::new();
    if let Some(id) = node.get("id") {
        selected.insert("id".into(), id.clone());
    }
    for field in fields {
        if let Some(value) = node.get(&field.name) {
            selected.insert(field.name.clone(), value.clone());
        }
    }
    Value::Object(selected)
}

/// Graph's timestamp format (`2026-05-01T10:00:00+0000`).
pub(super) fn graph_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

/// Who is calling: the member, the app, and the Page when the token is a Page token.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub member_id: String,
    pub client_id: String,
    pub page_id: Option<String>,
    pub is_user: bool,
}

fn token_error(problem: Option<TokenProblem>) -> GraphError {
    match problem {
        None => GraphError::new(
            StatusCode::BAD_REQUEST,
            104,
            "An access token is required to request this resource.",
        ),
        Some(TokenProblem::Unknown) => GraphError::new(
            StatusCode::BAD_REQUEST,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ),
        Some(TokenProblem::Expired) => GraphError::new(
            StatusCode::BAD_REQUEST,
            190,
            "Error validating access token: Session has expired. The current time is later than the expiry time.",
        )
        .subcode(463),
        Some(TokenProblem::Revoked) => GraphError::new(
            StatusCode::BAD_REQUEST,
            190,
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
        )
        .subcode(460),
    }
}

fn authenticate(state: &SimState, request: &GraphRequest) -> Result<Caller, GraphError> {
    let token = request.access_token().ok_or_else(|| token_error(None))?;
    let grant: Grant = state
        .meta
        .grant(&token)
        .map_err(|problem| token_error(Some(problem)))?;
    let (page_id, is_user) = match grant.kind {
        TokenKind::Page { page_id } => (Some(page_id), false),
        TokenKind::ShortUser | TokenKind::LongUser => (None, true),
    };
    Ok(Caller {
        member_id: grant.member_id,
        client_id: grant.client_id,
        page_id,
        is_user,
    })
}

/// The usage the reply reports (percentages) and the throttle, if the call is refused.
struct Usage {
    app: UsageReading,
    page: Option<(String, UsageReading)>,
}

impl Usage {
    fn headers(&self, kind: &str) -> Vec<(&'static str, String)> {
        let app = self.app.percent();
        let mut headers = vec![(
            "x-app-usage",
            json!({"call_count": app, "total_cputime": app / 2, "total_time": app / 2}).to_string(),
        )];
        if let Some((page_id, page)) = &self.page {
            let percent = page.percent();
            let usage = json!({ page_id.as_str(): [{
                "type": kind,
                "call_count": percent,
                "total_cputime": percent / 2,
                "total_time": percent / 2,
                "estimated_time_to_regain_access": page.regain_minutes(),
            }]});
            headers.push(("x-business-use-case-usage", usage.to_string()));
        }
        headers
    }
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

/// Counts the call on the app and (Page token) on the Page; refuses over either limit.
fn meter(state: &SimState, caller: &Caller) -> (Usage, Option<GraphError>) {
    let (app_allowed, app) = state.meta.count_call(
        &format!("app:{}", caller.client_id),
        APP_CALLS_PER_HOUR,
        APP_WINDOW,
    );
    let mut usage = Usage { app, page: None };
    if !app_allowed {
        let error = GraphError::new(
            StatusCode::BAD_REQUEST,
            4,
            "(#4) Application request limit reached",
        );
        return (usage, Some(error));
    }
    if let Some(page_id) = &caller.page_id {
        let (allowed, reading) = state.meta.count_call(
            &format!("page:{page_id}"),
            state.options.graph_page_calls_per_day,
            PAGE_WINDOW,
        );
        usage.page = Some((page_id.clone(), reading));
        if !allowed {
            let error = GraphError::new(
                StatusCode::BAD_REQUEST,
                32,
                "(#32) Page request limit reached",
            )
            .user(
                "Page request limit reached",
                "This Page has made too many calls; try again later.",
            );
            return (usage, Some(error));
        }
    }
    (usage, None)
}

/// The Graph error an injected status stands for, on `network`'s post endpoint.
fn injected_error(network: &str, status: StatusCode) -> (GraphError, Option<Usage>) {
    let error = match status.as_u16() {
        401 => return (token_error(Some(TokenProblem::Unknown)), None),
        403 => permission_error(
            200,
            "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission",
        ),
        // Graph throttles with HTTP 400, never 429.
        429 => {
            let throttle = GraphError::new(
                StatusCode::BAD_REQUEST,
                32,
                "(#32) Page request limit reached",
            );
            let reading = UsageReading {
                calls: 1,
                limit: 1,
                regain_in: Some(TimeDelta::minutes(INJECTED_THROTTLE_MINUTES)),
            };
            let usage = Usage {
                app: UsageReading {
                    calls: 0,
                    limit: APP_CALLS_PER_HOUR,
                    regain_in: None,
                },
                page: Some(("injected".to_string(), reading)),
            };
            return (throttle, Some(usage));
        }
        502..=504 => GraphError::new(
            status,
            2,
            "An unexpected error has occurred. Please retry your request later.",
        )
        .transient(),
        500..=599 if network == "instagram" => GraphError::new(
            status,
            -1,
            "An unexpected error has occurred. Please retry your request later.",
        )
        .subcode(2_207_001)
        .transient(),
        500..=599 => GraphError::new(status, 1, "An unknown error has occurred.").transient(),
        _ => GraphError::new(
            status,
            100,
            format!(
                "(#100) {}",
                status.canonical_reason().unwrap_or("Invalid parameter")
            ),
        ),
    };
    (error, None)
}

fn split_path(path: &str) -> (Option<String>, Vec<String>) {
    let mut segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(str::to_string)
        .collect();
    let is_version = |segment: &str| {
        segment.strip_prefix('v').is_some_and(|number| {
            !number.is_empty()
                && number
                    .chars()
                    .all(|character| character.is_ascii_digit() || character == '.')
        })
    };
    let version = match segments.first() {
        Some(first) if is_version(first) => Some(segments.remove(0)),
        _ => None,
    };
    (version, segments)
}

fn body_params(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return HashMap::new();
        };
        return fields
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, text)
            })
            .collect();
    }
    url::form_urlencoded::parse(body).into_owned().collect()
}

async fn dispatch(
    State(state): State<Arc<SimState>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (version, segments) = split_path(&path);
    let mut params = query;
    if method == Method::POST {
        params.extend(body_params(&headers, &body));
    }
    let base_path = match &version {
        Some(version) => format!("/graph/{version}"),
        None => "/graph".to_string(),
    };
    let request = GraphRequest {
        method,
        segments,
        params,
        headers,
        base_path,
    };
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    match (request.method.clone(), segments.as_slice()) {
        (Method::GET, ["dialog", "oauth"]) => oauth::dialog(&state, &request),
        (_, ["oauth", "access_token"]) => oauth::access_token(&state, &request),
        (Method::POST, [app_id, "subscriptions"]) => {
            match webhooks::subscribe(&state, &request, app_id).await {
                Ok(body) => axum::Json(body).into_response(),
                Err(error) => error.into_response(),
            }
        }
        _ => graph_call(&state, &request).await,
    }
}

/// The network whose post endpoint this is (faults apply there), if it is one.
fn post_endpoint(request: &GraphRequest) -> Option<&'static str> {
    if request.method != Method::POST {
        return None;
    }
    match request.segments.get(1).map(String::as_str) {
        Some("feed") => Some("facebook"),
        Some("media_publish") => Some("instagram"),
        _ => None,
    }
}

async fn graph_call(state: &SimState, request: &GraphRequest) -> Response {
    let network = post_endpoint(request);
    let fault = network.and_then(|network| state.take_fault(network));
    match fault {
        Some(FaultAction::AnswerStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (error, usage) = injected_error(network.unwrap_or("facebook"), status);
            tracing::info!(
                status = code,
                graph_code = error.code,
                "netsim fault: graph post answered without being created"
            );
            let headers = usage
                .map(|usage| usage.headers("pages"))
                .unwrap_or_default();
            return with_headers(error.into_response(), &headers);
        }
        Some(FaultAction::DelayBefore(delay)) => {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "netsim fault: slow graph post"
            );
            tokio::time::sleep(delay).await;
        }
        Some(FaultAction::HoldAfter(_) | FaultAction::StatusAfter(_)) | None => {}
    }

    // Everything up to the reply happens without an await, so a client that gives up
    // during the hold below cannot undo the creation.
    let response = answer(state, request);
    if let Some(FaultAction::StatusAfter(code)) = fault
        && response.status().is_success()
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (error, usage) = injected_error(network.unwrap_or("facebook"), status);
        tracing::info!(
            status = code,
            "netsim fault: graph post created, answered as failed"
        );
        let headers = usage
            .map(|usage| usage.headers("pages"))
            .unwrap_or_default();
        return with_headers(error.into_response(), &headers);
    }

    if let Some(FaultAction::HoldAfter(hold)) = fault {
        tracing::info!(
            hold_ms = hold.as_millis() as u64,
            status = response.status().as_u16(),
            "netsim fault: holding the graph reply"
        );
        tokio::time::sleep(hold).await;
    }
    response
}

fn answer(state: &SimState, request: &GraphRequest) -> Response {
    let caller = match authenticate(state, request) {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let (usage, throttled) = meter(state, &caller);
    let kind = if request
        .segments
        .first()
        .is_some_and(|node| state.meta.ig_member(node).is_some())
    {
        "instagram"
    } else {
        "pages"
    };
    let headers = usage.headers(kind);
    if let Some(error) = throttled {
        tracing::info!(member_id = %caller.member_id, code = error.code, "netsim graph call throttled");
        return with_headers(error.into_response(), &headers);
    }
    let reply = route(state, &caller, request);
    let response = match reply {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    };
    with_headers(response, &headers)
}

fn route(state: &SimState, caller: &Caller, request: &GraphRequest) -> Result<Value, GraphError> {
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let is_post = request.method == Method::POST;
    match segments.as_slice() {
        ["me"] if !is_post => match &caller.page_id {
            Some(page_id) => facebook::page_node(state, page_id, request),
            None => Ok(oauth::user_node(caller, request)),
        },
        ["me", "accounts"] if !is_post => {
            if caller.is_user {
                Ok(oauth::accounts(state, caller, request))
            } else {
                Err(nonexisting_edge("accounts", "Page"))
            }
        }
        ["me", edge] => match &caller.page_id {
            Some(page_id) => node_edge(state, caller, request, page_id, edge),
            None => Err(nonexisting_edge(edge, "User")),
        },
        [node] if !is_post => read_node(state, request, node),
        [node, edge] => node_edge(state, caller, request, node, edge),
        _ => Err(invalid_parameter("Unknown path components")),
    }
}

fn read_node(state: &SimState, request: &GraphRequest, node: &str) -> Result<Value, GraphError> {
    if state.meta.page_member(node).is_some() {
        return facebook::page_node(state, node, request);
    }
    if state.meta.ig_member(node).is_some() {
        return instagram::account_node(state, node, request);
    }
    if let Some(container) = state.meta.container(node) {
        return Ok(instagram::container_node(&container, request));
    }
    if state.meta.media_container(node).is_some() {
        return instagram::media_node(state, node, request);
    }
    if node.contains('_') {
        return facebook::post_node(state, node, request);
    }
    Err(unknown_object(node))
}

fn node_edge(
    state: &SimState,
    caller: &Caller,
    request: &GraphRequest,
    node: &str,
    edge: &str,
) -> Result<Value, GraphError> {
    let is_post = request.method == Method::POST;
    if state.meta.page_member(node).is_some() {
        return match (edge, is_post) {
            ("feed", true) => facebook::create_post(state, caller, request, node),
            ("published_posts" | "feed" | "posts", false) => {
                facebook::list_posts(state, caller, request, node)
            }
            _ => Err(nonexisting_edge(edge, "Page")),
        };
    }
    if state.meta.ig_member(node).is_some() {
        return match (edge, is_post) {
            ("media", true) => instagram::create_container(state, caller, request, node),
            ("media", false) => instagram::list_media(state, caller, request, node),
            ("media_publish", true) => instagram::publish(state, caller, request, node),
            ("content_publishing_limit", false) => instagram::publishing_limit(state, caller, node),
            _ => Err(nonexisting_edge(edge, "IGUser")),
        };
    }
    if edge == "insights" && !is_post {
        if state.meta.media_container(node).is_some() {
            return instagram::media_insights(state, node, request);
        }
        if node.contains('_') {
            return facebook::post_insights(state, node, request);
        }
    }
    Err(unknown_object(node))
}
