//! Mastodon, as netsim simulates one instance (NETWORKS.md, "5. Mastodon"): app
//! registration, OAuth code with PKCE and tokens that never expire (revoke only),
//! `verify_credentials`, `POST /api/v1/statuses` honouring `Idempotency-Key` for an hour,
//! the 500-character limit with URLs at 23 and domain-free mentions, epoch-aligned rate
//! windows reported through `X-RateLimit-*` (ISO-8601 reset, tightest limit), the account's
//! statuses with `Link` pagination, and statuses with their counters.

use crate::SimPost;
use crate::state::{CodeExchange, Consent, FaultAction, SimState, random_member_id};
use crate::x::url_spans;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use unicode_segmentation::UnicodeSegmentation;

/// `characters_reserved_per_url`.
const CHARACTERS_PER_URL: usize = 23;
/// Mastodon tokens live until revoked; netsim gives them a century.
const TOKEN_LIFETIME: Duration = Duration::from_secs(100 * 365 * 86_400);
const ACCESS_TOKEN_PREFIX: &str = "MTD";
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 40;
const INVALID_TOKEN: &str = "The access token is invalid";
const UNAVAILABLE: &str = "There was a temporary problem serving your request, please try again";

/// Mastodon's behaviour knobs (one instance).
#[derive(Debug, Clone)]
pub struct MastodonOptions {
    /// `configuration.statuses.max_characters` (default 500).
    pub max_characters: usize,
    /// Requests per account per window on every endpoint (300 per 5 min).
    pub requests_per_window: u32,
    pub request_window: Duration,
    /// Statuses created per account per window (family limit: 300 per 3 h).
    pub statuses_per_window: u32,
    pub statuses_window: Duration,
    /// How long an `Idempotency-Key` returns the first status (1 h).
    pub idempotency_window: Duration,
}

impl Default for MastodonOptions {
    fn default() -> MastodonOptions {
        MastodonOptions {
            max_characters: 500,
            requests_per_window: 300,
            request_window: Duration::from_secs(5 * 60),
            statuses_per_window: 300,
            statuses_window: Duration::from_secs(3 * 3_600),
            idempotency_window: Duration::from_secs(3_600),
        }
    }
}

/// Mastodon's own memory, beside the shared codes, access tokens and posts of `SimState`.
#[derive(Default)]
pub(crate) struct MastodonState {
    inner: Mutex<MastodonInner>,
}

#[derive(Default)]
struct MastodonInner {
    /// (account, Idempotency-Key) -> (status id, first use).
    idempotency: HashMap<(String, String), (String, DateTime<Utc>)>,
    /// Epoch-aligned windows: (family, account) -> (window index, count).
    windows: HashMap<(&'static str, String), (i64, u32)>,
    revoked: HashSet<String>,
    code_scopes: HashMap<String, String>,
    statuses: HashMap<String, StatusExtra>,
    last_id: u64,
}

#[derive(Clone)]
struct StatusExtra {
    visibility: String,
    language: Option<String>,
    spoiler_text: String,
    sensitive: bool,
}

/// One window as the `X-RateLimit-*` headers tell it.
#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u32,
    remaining: u32,
    reset: DateTime<Utc>,
}

impl MastodonState {
    fn lock(&self) -> MutexGuard<'_, MastodonInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MastodonInner {
    /// Counts one hit in the epoch-aligned window (`period - now % period` to its reset).
    fn spend(
        &mut self,
        family: &'static str,
        account: &str,
        limit: u32,
        period: Duration,
        now: DateTime<Utc>,
    ) -> (Quota, bool) {
        let period_secs = (period.as_secs() as i64).max(1);
        let index = now.timestamp().div_euclid(period_secs);
        let entry = self
            .windows
            .entry((family, account.to_string()))
            .or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        let reset = DateTime::from_timestamp((index + 1) * period_secs, 0).unwrap_or(now);
        (
            Quota {
                limit,
                remaining: limit.saturating_sub(entry.1),
                reset,
            },
            allowed,
        )
    }

    /// A snowflake-like id: milliseconds shifted by 16 bits, increasing.
    fn next_id(&mut self, now: DateTime<Utc>) -> String {
        let candidate = (now.timestamp_millis().max(0) as u64) << 16;
        self.last_id = candidate.max(self.last_id + 1);
        self.last_id.to_string()
    }
}

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/v1/apps", post(register_app))
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route(
            "/api/v1/accounts/verify_credentials",
            get(verify_credentials),
        )
        .route("/api/v1/accounts/{id}/statuses", get(account_statuses))
        .route("/api/v1/statuses", post(create_status))
        .route("/api/v1/statuses/{id}", get(read_status))
}

// ---------------------------------------------------------------------------------------
// Bodies and headers

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

fn invalid_token() -> Response {
    error(StatusCode::UNAUTHORIZED, INVALID_TOKEN)
}

fn too_many_requests() -> Response {
    error(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Record not found")
}

fn status_fault(status: StatusCode) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => invalid_token(),
        StatusCode::FORBIDDEN => error(status, "This action is not allowed"),
        StatusCode::NOT_FOUND => not_found(),
        StatusCode::UNPROCESSABLE_ENTITY => error(status, "Validation failed: Text can't be blank"),
        StatusCode::TOO_MANY_REQUESTS => too_many_requests(),
        StatusCode::SERVICE_UNAVAILABLE => error(status, UNAVAILABLE),
        _ => error(status, status.canonical_reason().unwrap_or("Error")),
    }
}

/// `X-RateLimit-*` of the tightest (least remaining) of `quotas`; the reset is ISO-8601
/// with microseconds.
fn with_limits(mut response: Response, quotas: &[Quota]) -> Response {
    let Some(tightest) = quotas
        .iter()
        .min_by_key(|quota| (quota.remaining, std::cmp::Reverse(quota.reset)))
    else {
        return response;
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", tightest.limit.to_string()),
        ("x-ratelimit-remaining", tightest.remaining.to_string()),
        (
            "x-ratelimit-reset",
            tightest.reset.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        ),
    ] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The instance's public base URL as the client reached it (netsim nests it under a prefix).
fn instance_base(headers: &HeaderMap, original: &Uri, nested: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let prefix = original
        .path()
        .strip_suffix(nested.path())
        .unwrap_or_default();
    format!("http://{host}{prefix}")
}

// ---------------------------------------------------------------------------------------
// Text

/// Mastodon's countable length: grapheme clusters, every URL as 23, and `@user@domain`
/// counted as `@user`.
pub(crate) fn countable_length(text: &str) -> usize {
    let mut length = 0;
    let mut last = 0;
    for span in url_spans(text) {
        length += plain_length(&text[last..span.start]) + CHARACTERS_PER_URL;
        last = span.end;
    }
    length + plain_length(&text[last..])
}

fn plain_length(text: &str) -> usize {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let trimmed = word.trim_end();
            let counted = match mention_domain_start(trimmed) {
                Some(domain_at) => &word[..domain_at],
                None => word,
            };
            let trailing = if counted.len() < word.len() {
                word.len() - trimmed.len()
            } else {
                0
            };
            counted.graphemes(true).count() + trailing
        })
        .sum()
}

/// In `@user@domain`, the byte offset of the second `@`.
fn mention_domain_start(word: &str) -> Option<usize> {
    let rest = word.strip_prefix('@')?;
    let at = rest.find('@')?;
    let (user, domain) = (&rest[..at], &rest[at + 1..]);
    let user_ok = !user.is_empty()
        && user
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_');
    let domain_ok = domain.contains('.')
        && domain
            .chars()
            .all(|character| character.is_alphanumeric() || matches!(character, '.' | '-'));
    (user_ok && domain_ok).then_some(at + 1)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A link as Mastodon renders it: scheme and overflow hidden, the first 30 characters shown.
fn render_link(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let (shown, hidden): (String, String) = (
        rest.chars().take(30).collect(),
        rest.chars().skip(30).collect(),
    );
    let class = if hidden.is_empty() { "" } else { "ellipsis" };
    format!(
        "<a href=\"{href}\" target=\"_blank\" rel=\"nofollow noopener\" translate=\"no\"><span class=\"invisible\">{scheme}</span><span class=\"{class}\">{shown}</span><span class=\"invisible\">{hidden}</span></a>",
        href = escape_html(url),
        scheme = escape_html(scheme),
        shown = escape_html(&shown),
        hidden = escape_html(&hidden),
    )
}

/// The status text as Mastodon's `content` HTML: paragraphs, `<br />`, linked URLs.
fn render_content(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|paragraph| !paragraph.trim().is_empty())
        .map(|paragraph| {
            let mut html = String::new();
            let mut last = 0;
            for span in url_spans(paragraph) {
                html.push_str(&escape_html(&paragraph[last..span.start]));
                html.push_str(&render_link(&paragraph[span.clone()]));
                last = span.end;
            }
            html.push_str(&escape_html(&paragraph[last..]));
            format!("<p>{}</p>", html.replace('\n', "<br />"))
        })
        .collect();
    paragraphs.concat()
}

// ---------------------------------------------------------------------------------------
// Apps and OAuth

fn present<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// Form or JSON body fields (Mastodon accepts both).
fn body_fields(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, Value>> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => Some(fields.into_iter().collect()),
            _ => None,
        }
    } else {
        Some(
            url::form_urlencoded::parse(body)
                .into_owned()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        )
    }
}

fn form_of(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    body_fields(headers, body)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, value)| match value {
            Value::String(text) => Some((name, text)),
            Value::Bool(flag) => Some((name, flag.to_string())),
            _ => None,
        })
        .collect()
}

/// `POST /api/v1/apps`: any application is registered (netsim accepts any client).
async fn register_app(headers: HeaderMap, body: Bytes) -> Response {
    let form = form_of(&headers, &body);
    let (Some(name), Some(redirect_uris)) = (
        present(&form, "client_name"),
        present(&form, "redirect_uris"),
    ) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: Application name can't be blank, Redirect URI can't be blank",
        );
    };
    let client_id = uuid::Uuid::new_v4().simple().to_string();
    axum::Json(json!({
        "id": "1",
        "name": name,
        "website": form.get("website"),
        "scopes": form.get("scopes").cloned().unwrap_or_else(|| "read".to_string()).split(' ').collect::<Vec<_>>(),
        "redirect_uri": redirect_uris,
        "redirect_uris": redirect_uris.split_whitespace().collect::<Vec<_>>(),
        "client_id": client_id,
        "client_secret": uuid::Uuid::new_v4().simple().to_string(),
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `GET /oauth/authorize`: consents at once; `member` picks the simulated account.
async fn authorize(
    State(state): State<Arc<SimState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let bad =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    if present(&query, "response_type") != Some("code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "The authorization server does not support this response type.",
        );
    }
    let (Some(client_id), Some(redirect_uri)) = (
        present(&query, "client_id"),
        present(&query, "redirect_uri"),
    ) else {
        return bad("client_id and redirect_uri are required");
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return bad("redirect_uri must be an absolute URL");
    };
    let challenge = present(&query, "code_challenge");
    // Mastodon supports S256 only.
    if challenge.is_some() && present(&query, "code_challenge_method") != Some("S256") {
        return bad("code_challenge_method must be S256");
    }
    let member_id = present(&query, "member")
        .map(str::to_string)
        .unwrap_or_else(random_member_id);
    let code = state.grant_code(Consent {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        member_id: member_id.clone(),
        code_challenge: challenge.map(str::to_string),
    });
    state.mastodon.lock().code_scopes.insert(
        code.clone(),
        present(&query, "scope").unwrap_or("read").to_string(),
    );
    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(client_state) = present(&query, "state") {
            pairs.append_pair("state", client_state);
        }
    }
    tracing::info!(member_id = %member_id, client_id, "netsim mastodon consent granted");
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// `POST /oauth/token`: `authorization_code` only (no refresh tokens, no `expires_in`).
async fn token(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form_of(&headers, &body);
    let (Some(client_id), Some(_secret)) =
        (present(&form, "client_id"), present(&form, "client_secret"))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        );
    };
    if present(&form, "grant_type") != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    let invalid_grant = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        )
    };
    let (Some(code), Some(redirect_uri)) = (present(&form, "code"), present(&form, "redirect_uri"))
    else {
        return invalid_grant();
    };
    let scope = state.mastodon.lock().code_scopes.remove(code);
    let member_id = match state.redeem_code(CodeExchange {
        code,
        redirect_uri,
        client_id,
        code_verifier: present(&form, "code_verifier"),
    }) {
        Ok(member_id) => member_id,
        Err(refused) => {
            tracing::info!(
                client_id,
                reason = refused.0,
                "netsim mastodon code refused"
            );
            return invalid_grant();
        }
    };
    let (access_token, _) =
        state.issue_access_token(&member_id, ACCESS_TOKEN_PREFIX, TOKEN_LIFETIME);
    tracing::info!(member_id = %member_id, client_id, "netsim mastodon token issued");
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "scope": scope.unwrap_or_else(|| "read".to_string()),
        "created_at": Utc::now().timestamp(),
    }))
    .into_response()
}

/// `POST /oauth/revoke`: the token stops working at once; always `{}`.
async fn revoke(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form_of(&headers, &body);
    if let Some(token) = present(&form, "token") {
        state.mastodon.lock().revoked.insert(token.to_string());
    }
    axum::Json(json!({})).into_response()
}

// ---------------------------------------------------------------------------------------
// API

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The account behind the token; revoked, expired (`expire_tokens_of` revokes) and unknown
/// tokens all get Mastodon's 401.
fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = bearer_token(headers).ok_or_else(|| Box::new(invalid_token()))?;
    if state.mastodon.lock().revoked.contains(token) {
        return Err(Box::new(invalid_token()));
    }
    state
        .member_of(token)
        .map_err(|_| Box::new(invalid_token()))
}

/// Counts the request in the account's 5-minute window (per IP when anonymous).
fn spend_request(state: &SimState, account: &str) -> Result<Quota, Box<Response>> {
    let options = &state.options.mastodon;
    let (quota, allowed) = state.mastodon.lock().spend(
        "requests",
        account,
        options.requests_per_window,
        options.request_window,
        Utc::now(),
    );
    if allowed {
        Ok(quota)
    } else {
        Err(Box::new(with_limits(too_many_requests(), &[quota])))
    }
}

fn account_json(state: &SimState, base: &str, account: &str) -> Value {
    let statuses_count = state
        .posts_of("mastodon")
        .iter()
        .filter(|post| post.author == account)
        .count();
    json!({
        "id": account,
        "username": account,
        "acct": account,
        "display_name": format!("Member {account}"),
        "locked": false,
        "bot": false,
        "discoverable": true,
        "group": false,
        "created_at": "2024-01-01T00:00:00.000Z",
        "note": "",
        "url": format!("{base}/@{account}"),
        "uri": format!("{base}/users/{account}"),
        "avatar": format!("{base}/avatars/original/missing.png"),
        "avatar_static": format!("{base}/avatars/original/missing.png"),
        "header": format!("{base}/headers/original/missing.png"),
        "header_static": format!("{base}/headers/original/missing.png"),
        "followers_count": crate::network_size(account),
        "following_count": 120,
        "statuses_count": statuses_count,
        "last_status_at": null,
        "emojis": [],
        "fields": [],
    })
}

async fn verify_credentials(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> Response {
    let account = match authenticate(&state, &headers) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let quota = match spend_request(&state, &account) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let base = instance_base(&headers, &original, &uri);
    let mut body = account_json(&state, &base, &account);
    body["source"] = json!({"privacy": "public", "sensitive": false, "language": "en", "note": "", "fields": []});
    with_limits(axum::Json(body).into_response(), &[quota])
}

fn status_json(state: &SimState, base: &str, post: &SimPost) -> Value {
    let extra = state
        .mastodon
        .lock()
        .statuses
        .get(&post.urn)
        .cloned()
        .unwrap_or(StatusExtra {
            visibility: "public".to_string(),
            language: None,
            spoiler_text: String::new(),
            sensitive: false,
        });
    let account = &post.author;
    json!({
        "id": post.urn,
        "created_at": post.created_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "in_reply_to_id": null,
        "in_reply_to_account_id": null,
        "sensitive": extra.sensitive,
        "spoiler_text": extra.spoiler_text,
        "visibility": extra.visibility,
        "language": extra.language,
        "uri": format!("{base}/users/{account}/statuses/{}", post.urn),
        "url": format!("{base}/@{account}/{}", post.urn),
        "replies_count": post.comments,
        "reblogs_count": post.reshares,
        "favourites_count": post.reactions,
        "quotes_count": 0,
        "edited_at": null,
        "favourited": false,
        "reblogged": false,
        "muted": false,
        "bookmarked": false,
        "pinned": false,
        "content": render_content(&post.commentary),
        "filtered": [],
        "reblog": null,
        "application": {"name": "Chorus", "website": null},
        "account": account_json(state, base, account),
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": null,
        "poll": null,
    })
}

fn mastodon_post(state: &SimState, id: &str) -> Option<SimPost> {
    state.post(id).filter(|post| post.network == "mastodon")
}

async fn create_status(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    body: Bytes,
) -> Response {
    let fault = state.take_fault("mastodon");
    match fault {
        Some(FaultAction::AnswerStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::info!(
                status = code,
                "netsim mastodon fault: status answered without being created"
            );
            let response = status_fault(status);
            if status == StatusCode::TOO_MANY_REQUESTS {
                // A burst: the 5-minute window reported spent until its reset.
                let options = &state.options.mastodon;
                let period = (options.request_window.as_secs() as i64).max(1);
                let now = Utc::now().timestamp();
                let reset = DateTime::from_timestamp((now.div_euclid(period) + 1) * period, 0)
                    .unwrap_or_else(Utc::now);
                return with_limits(
                    response,
                    &[Quota {
                        limit: options.requests_per_window,
                        remaining: 0,
                        reset,
                    }],
                );
            }
            return response;
        }
        Some(FaultAction::DelayBefore(delay)) => {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "netsim mastodon fault: slow status"
            );
            tokio::time::sleep(delay).await;
        }
        Some(FaultAction::HoldAfter(_) | FaultAction::StatusAfter(_)) | None => {}
    }

    let base = instance_base(&headers, &original, &uri);
    // No await until the reply: a client giving up during the hold cannot undo it.
    let response = accept_status(&state, &headers, &body, &base);
    if let Some(FaultAction::StatusAfter(code)) = fault
        && response.status().is_success()
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        tracing::info!(
            status = code,
            "netsim mastodon fault: status created, answered as failed"
        );
        return status_fault(status);
    }

    if let Some(FaultAction::HoldAfter(hold)) = fault {
        tracing::info!(
            hold_ms = hold.as_millis() as u64,
            status = response.status().as_u16(),
            "netsim mastodon fault: holding the reply"
        );
        tokio::time::sleep(hold).await;
    }
    response
}

fn accept_status(state: &SimState, headers: &HeaderMap, body: &[u8], base: &str) -> Response {
    let account = match authenticate(state, headers) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let request_quota = match spend_request(state, &account) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let Some(fields) = body_fields(headers, body) else {
        return with_limits(
            error(
                StatusCode::BAD_REQUEST,
                "Error while parsing the request body",
            ),
            &[request_quota],
        );
    };
    let text_of = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let text = text_of("status");
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string);
    let options = &state.options.mastodon;
    let now = Utc::now();
    let mut mastodon = state.mastodon.lock();

    // A key seen within the hour returns the first status, before any validation or limit.
    if let Some(key) = &idempotency_key {
        let horizon =
            now - TimeDelta::from_std(options.idempotency_window).unwrap_or(TimeDelta::MAX);
        mastodon
            .idempotency
            .retain(|_, (_, first_used)| *first_used > horizon);
        if let Some((status_id, _)) = mastodon
            .idempotency
            .get(&(account.clone(), key.clone()))
            .cloned()
        {
            drop(mastodon);
            if let Some(post) = mastodon_post(state, &status_id) {
                tracing::info!(account = %account, status_id = %status_id, "netsim mastodon idempotent repeat");
                state.count_duplicate("mastodon");
                return with_limits(
                    axum::Json(status_json(state, base, &post)).into_response(),
                    &[request_quota],
                );
            }
            mastodon = state.mastodon.lock();
        }
    }

    let has_media = fields
        .get("media_ids")
        .or_else(|| fields.get("media_ids[]"))
        .is_some();
    if has_media {
        return with_limits(
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "netsim does not simulate media uploads yet",
            ),
            &[request_quota],
        );
    }
    if text.trim().is_empty() {
        return with_limits(
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation failed: Text can't be blank",
            ),
            &[request_quota],
        );
    }
    let length = countable_length(&text);
    if length > options.max_characters {
        tracing::info!(account = %account, length, "netsim mastodon status refused: too long");
        return with_limits(
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!(
                    "Validation failed: Text character limit of {} exceeded",
                    options.max_characters
                ),
            ),
            &[request_quota],
        );
    }
    let visibility = match text_of("visibility").as_str() {
        "" => "public".to_string(),
        value @ ("public" | "unlisted" | "private" | "direct") => value.to_string(),
        _ => {
            return with_limits(
                error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation failed: Visibility is not included in the list",
                ),
                &[request_quota],
            );
        }
    };
    // The statuses family limit is recorded when the status is created.
    let (statuses_quota, allowed) = mastodon.spend(
        "statuses",
        &account,
        options.statuses_per_window,
        options.statuses_window,
        now,
    );
    let quotas = [request_quota, statuses_quota];
    if !allowed {
        tracing::info!(account = %account, "netsim mastodon status refused: statuses limit");
        return with_limits(too_many_requests(), &quotas);
    }

    let id = mastodon.next_id(now);
    mastodon.statuses.insert(
        id.clone(),
        StatusExtra {
            visibility,
            language: Some(text_of("language")).filter(|language| !language.is_empty()),
            spoiler_text: text_of("spoiler_text"),
            sensitive: matches!(fields.get("sensitive"), Some(Value::Bool(true)))
                || text_of("sensitive") == "true",
        },
    );
    if let Some(key) = idempotency_key {
        mastodon
            .idempotency
            .insert((account.clone(), key), (id.clone(), now));
    }
    let post = SimPost {
        network: "mastodon".to_string(),
        urn: id.clone(),
        author: account.clone(),
        commentary: text,
        created_at: now,
        reactions: 0,
        comments: 0,
        reshares: 0,
        impressions: 0,
        media_url: None,
    };
    state.insert_post(post.clone());
    drop(mastodon);
    tracing::info!(account = %account, status_id = %id, "netsim mastodon status created");
    with_limits(
        axum::Json(status_json(state, base, &post)).into_response(),
        &quotas,
    )
}

/// The caller's account when a token is sent (a bad token is a 401), else anonymous.
fn optional_account(state: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if headers.contains_key(header::AUTHORIZATION) {
        authenticate(state, headers)
    } else {
        Ok("anonymous".to_string())
    }
}

async fn read_status(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> Response {
    let caller = match optional_account(&state, &headers) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let quota = match spend_request(&state, &caller) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let base = instance_base(&headers, &original, &uri);
    let response = match mastodon_post(&state, &id) {
        Some(post) => axum::Json(status_json(&state, &base, &post)).into_response(),
        None => not_found(),
    };
    with_limits(response, &[quota])
}

/// `GET /api/v1/accounts/:id/statuses`: newest first; `limit` (20, at most 40), `max_id`,
/// `since_id`, `min_id`; `Link` with `next` (older, `max_id`) and `prev` (newer, `min_id`).
async fn account_statuses(
    State(state): State<Arc<SimState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> Response {
    let caller = match optional_account(&state, &headers) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let quota = match spend_request(&state, &caller) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE);
    let bound = |name: &str| query.get(name).and_then(|id| id.parse::<u64>().ok());
    let (max_id, since_id, min_id) = (bound("max_id"), bound("since_id"), bound("min_id"));
    let mut statuses: Vec<(u64, SimPost)> = state
        .posts_of("mastodon")
        .into_iter()
        .filter(|post| post.author == account)
        .filter_map(|post| post.urn.parse::<u64>().ok().map(|id| (id, post)))
        .filter(|(id, _)| max_id.is_none_or(|max| *id < max))
        .filter(|(id, _)| since_id.is_none_or(|since| *id > since))
        .filter(|(id, _)| min_id.is_none_or(|min| *id > min))
        .collect();
    if min_id.is_some() {
        // The page right after min_id, still returned newest first.
        statuses.sort_by_key(|(id, _)| *id);
        statuses.truncate(limit);
        statuses.reverse();
    } else {
        statuses.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
        statuses.truncate(limit);
    }
    let base = instance_base(&headers, &original, &uri);
    let body: Vec<Value> = statuses
        .iter()
        .map(|(_, post)| status_json(&state, &base, post))
        .collect();
    let mut response = axum::Json(body).into_response();
    if let (Some((newest, _)), Some((oldest, _))) = (statuses.first(), statuses.last()) {
        let kept: Vec<(String, String)> = query
            .iter()
            .filter(|(name, _)| {
                !matches!(name.as_str(), "max_id" | "since_id" | "min_id" | "limit")
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let page_url = |bound: &str, id: u64| {
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            serializer.append_pair("limit", &limit.to_string());
            for (name, value) in &kept {
                serializer.append_pair(name, value);
            }
            serializer.append_pair(bound, &id.to_string());
            format!(
                "{base}/api/v1/accounts/{account}/statuses?{}",
                serializer.finish()
            )
        };
        let link = format!(
            "<{}>; rel=\"next\", <{}>; rel=\"prev\"",
            page_url("max_id", *oldest),
            page_url("min_id", *newest)
        );
        if let Ok(value) = HeaderValue::try_from(link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    with_limits(response, &[quota])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_urls_as_23_and_mentions_without_domain() {
        assert_eq!(countable_length("hello"), 5);
        let url = format!("https://chr.us/s/{}", "a".repeat(80));
        assert_eq!(countable_length(&format!("see {url}")), 4 + 23);
        assert_eq!(
            countable_length("hi @alice@example.social"),
            "hi @alice".len()
        );
        assert_eq!(
            countable_length("cc @bob and @carol@x.y z"),
            "cc @bob and @carol z".len()
        );
        assert_eq!(countable_length("👨‍👩‍👧 ok"), 4);
    }

    #[test]
    fn content_is_html_with_linked_urls() {
        let content = render_content("Launch & more\nsee https://chr.us/s/abc?x=1&y=2\n\nbye");
        assert!(
            content.starts_with(
                "<p>Launch &amp; more<br />see <a href=\"https://chr.us/s/abc?x=1&amp;y=2\""
            ),
            "{content}"
        );
        assert!(content.ends_with("</a></p><p>bye</p>"), "{content}");
    }

    #[test]
    fn windows_are_epoch_aligned() {
        let mut inner = MastodonInner::default();
        let now = DateTime::from_timestamp(1_000_000_123, 0).expect("time");
        let (quota, allowed) = inner.spend("requests", "a", 2, Duration::from_secs(300), now);
        assert!(allowed);
        assert_eq!(quota.remaining, 1);
        assert_eq!(quota.reset.timestamp() % 300, 0);
        assert_eq!(quota.reset.timestamp(), 1_000_000_200);
        inner.spend("requests", "a", 2, Duration::from_secs(300), now);
        let (quota, allowed) = inner.spend("requests", "a", 2, Duration::from_secs(300), now);
        assert!(!allowed);
        assert_eq!(quota.remaining, 0);
    }
}
