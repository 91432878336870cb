//! X API v2, as netsim simulates it (NETWORKS.md, "2. X (API v2)"): OAuth 2.0 with PKCE
//! and rotating refresh tokens, `/2/users/me`, `POST /2/tweets` with the twitter-text v3
//! weighted length, duplicate refusal, 15-minute and 24-hour quotas with X's headers (and
//! no Retry-After), the user timeline with links rewritten to t.co, and tweet lookup with
//! public metrics.

use crate::SimPost;
use crate::state::{CodeExchange, Consent, FaultAction, GrantRefused, SimState, random_member_id};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use unicode_segmentation::UnicodeSegmentation;

/// twitter-text v3 `maxWeightedTweetLength`.
pub(crate) const MAX_WEIGHTED_LENGTH: usize = 280;
/// twitter-text v3 `scale`: a weight of 100 is one character.
const SCALE: usize = 100;
const DEFAULT_WEIGHT: usize = 200;
/// `transformedURLLength`: every URL counts as 23 characters.
pub(crate) const URL_LENGTH: usize = 23;
/// Code point ranges that weigh 100 (twitter-text v3 `ranges`).
const LIGHT_RANGES: &[(u32, u32)] = &[(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];
/// First tweet id handed out, in the range of real snowflake ids.
const FIRST_TWEET_ID: u64 = 1_445_880_548_472_328_192;
/// Read windows per user (X docs "Rate limits"): `GET /2/users/me` 75, timeline 900 and
/// tweet lookup 900 per 15 minutes.
const USERS_ME_PER_WINDOW: u32 = 75;
const TIMELINE_PER_WINDOW: u32 = 900;
const LOOKUP_PER_WINDOW: u32 = 900;
const READ_WINDOW: Duration = Duration::from_secs(15 * 60);
const DAY: Duration = Duration::from_secs(86_400);
const ACCESS_TOKEN_PREFIX: &str = "XAT";
const INVALID_REQUEST_TYPE: &str = "https://api.twitter.com/2/problems/invalid-request";
const TOO_LONG: &str = "Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text.";

/// X's behaviour knobs.
#[derive(Debug, Clone)]
pub struct XOptions {
    /// Lifetime of access tokens (X: 2 h, `expires_in: 7200`).
    pub access_token_ttl: Duration,
    /// `POST /2/tweets` per user per window (X: 100 per 15 min).
    pub tweets_per_window: u32,
    pub tweet_window: Duration,
    /// `POST /2/tweets` per user per 24 h (`x-user-limit-24hour-*`; the Basic tier's 100,
    /// unconfirmed for current tiers).
    pub user_tweets_per_day: u32,
    /// `POST /2/tweets` per app per 24 h (`x-app-limit-24hour-*`; X: 10,000).
    pub app_tweets_per_day: u32,
}

impl Default for XOptions {
    fn default() -> XOptions {
        XOptions {
            access_token_ttl: Duration::from_secs(7_200),
            tweets_per_window: 100,
            tweet_window: Duration::from_secs(15 * 60),
            user_tweets_per_day: 100,
            app_tweets_per_day: 10_000,
        }
    }
}

/// X's own memory, beside the shared codes, access tokens and posts of `SimState`.
#[derive(Default)]
pub(crate) struct XState {
    inner: Mutex<XInner>,
}

#[derive(Default)]
struct XInner {
    /// Scope granted with each pending authorisation code.
    code_scopes: HashMap<String, String>,
    /// Refresh tokens: each is spent by its first use (rotation).
    refresh_tokens: HashMap<String, RefreshGrant>,
    /// Tweets as X shows them (t.co links), by id.
    tweets: HashMap<String, Rendered>,
    /// Fixed rate windows per (endpoint, user or app).
    windows: HashMap<(&'static str, String), Window>,
    tweets_created: u64,
}

struct RefreshGrant {
    member_id: String,
    client_id: String,
    scope: String,
}

struct Window {
    started: DateTime<Utc>,
    used: u32,
}

/// What is left of one window, as X's headers tell it.
#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u32,
    remaining: u32,
    reset: DateTime<Utc>,
}

/// A tweet's text as X returns it: URLs replaced by t.co links, `&<>` escaped.
#[derive(Debug, Clone)]
struct Rendered {
    text: String,
    urls: Vec<Value>,
}

impl XState {
    fn lock(&self) -> MutexGuard<'_, XInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl XInner {
    /// Counts one request in the window (unless `peek`); `None` in the flag when refused.
    fn spend(
        &mut self,
        key: (&'static str, String),
        limit: u32,
        period: Duration,
        now: DateTime<Utc>,
        peek: bool,
    ) -> (Quota, bool) {
        let period = TimeDelta::from_std(period).unwrap_or(TimeDelta::MAX);
        let window = self.windows.entry(key).or_insert(Window {
            started: now,
            used: 0,
        });
        if now - window.started >= period {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let allowed = window.used < limit;
        if allowed && !peek {
            window.used += 1;
        }
        let quota = Quota {
            limit,
            remaining: limit.saturating_sub(window.used),
            reset: window.started + period,
        };
        (quota, allowed)
    }
}

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/i/oauth2/authorize", get(authorize))
        .route("/2/oauth2/token", post(token))
        .route("/2/users/me", get(users_me))
        .route("/2/users/{id}/tweets", get(user_tweets))
        .route("/2/tweets", post(create_tweet).get(lookup_tweets))
        .route("/2/tweets/{id}", get(lookup_tweet))
}

// ---------------------------------------------------------------------------------------
// Bodies

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"title": title, "detail": detail, "type": "about:blank", "status": status.as_u16()})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

fn too_many_requests() -> Response {
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Too Many Requests",
    )
}

fn duplicate_content() -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "You are not allowed to create a Tweet with duplicate content.",
    )
}

fn invalid_request(message: &str, parameters: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "errors": [{"parameters": parameters, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID_REQUEST_TYPE,
        })),
    )
        .into_response()
}

/// The body X sends with `status`, for injected faults.
fn status_fault(status: StatusCode) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => unauthorized(),
        StatusCode::FORBIDDEN => problem(
            status,
            "Forbidden",
            "You are not permitted to perform this action.",
        ),
        StatusCode::TOO_MANY_REQUESTS => too_many_requests(),
        StatusCode::BAD_REQUEST => invalid_request("Invalid Request", json!({})),
        _ => {
            let reason = status.canonical_reason().unwrap_or("Error");
            problem(status, reason, reason)
        }
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn set_quota_headers(response: &mut Response, prefix: &str, quota: Quota) {
    let headers = response.headers_mut();
    for (suffix, value) in [
        ("limit", quota.limit.to_string()),
        ("remaining", quota.remaining.to_string()),
        ("reset", quota.reset.timestamp().to_string()),
    ] {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(format!("{prefix}-{suffix}")),
            HeaderValue::try_from(value),
        ) {
            headers.insert(name, value);
        }
    }
}

fn with_window(mut response: Response, quota: Quota) -> Response {
    set_quota_headers(&mut response, "x-rate-limit", quota);
    response
}

// ---------------------------------------------------------------------------------------
// Text: URLs, weighted length, t.co rendering

/// Byte ranges of the `http(s)://` URLs of `text`, trailing punctuation excluded (the
/// scheme-less URLs twitter-text also recognises are not detected).
pub(crate) fn url_spans(text: &str) -> Vec<Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let mut spans = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let next = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| {
                lower[from..]
                    .find(scheme)
                    .map(|at| (from + at, scheme.len()))
            })
            .min();
        let Some((start, scheme_len)) = next else {
            break;
        };
        let preceded_by_word = text[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric);
        let rest = &text[start..];
        let mut end = start
            + rest
                .find(|character: char| character.is_whitespace())
                .unwrap_or(rest.len());
        while let Some(last) = text[..end].chars().next_back() {
            let unbalanced_paren = last == ')'
                && text[start..end].matches('(').count() < text[start..end].matches(')').count();
            if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"') || unbalanced_paren {
                end -= last.len_utf8();
            } else {
                break;
            }
        }
        if !preceded_by_word && end > start + scheme_len {
            spans.push(start..end);
        }
        from = end.max(start + scheme_len);
    }
    spans
}

fn is_emoji_sequence(grapheme: &str) -> bool {
    grapheme.chars().any(|character| {
        let code = u32::from(character);
        (0x1F000..=0x1FAFF).contains(&code) || (0x2600..=0x27BF).contains(&code) || code == 0xFE0F
    })
}

fn char_weight(character: char) -> usize {
    let code = u32::from(character);
    if LIGHT_RANGES
        .iter()
        .any(|(low, high)| (*low..=*high).contains(&code))
    {
        SCALE
    } else {
        DEFAULT_WEIGHT
    }
}

fn plain_weight(text: &str) -> usize {
    text.graphemes(true)
        .map(|grapheme| {
            if is_emoji_sequence(grapheme) {
                DEFAULT_WEIGHT
            } else {
                grapheme.chars().map(char_weight).sum()
            }
        })
        .sum()
}

/// twitter-text v3 weighted length: code points in the light ranges weigh 1, others 2, an
/// emoji sequence 2 and every URL 23.
pub(crate) fn weighted_length(text: &str) -> usize {
    let mut weight = 0;
    let mut last = 0;
    for span in url_spans(text) {
        weight += plain_weight(&text[last..span.start]) + URL_LENGTH * SCALE;
        last = span.end;
    }
    weight += plain_weight(&text[last..]);
    weight / SCALE
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn display_url(url: &str) -> String {
    let bare = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(url)
        .trim_start_matches("www.");
    if bare.chars().count() > 26 {
        format!("{}…", bare.chars().take(25).collect::<String>())
    } else {
        bare.to_string()
    }
}

/// The text as X returns it: every URL becomes a new `https://t.co/…` link (23 characters)
/// with an `entities.urls` entry naming the original, and `&`, `<`, `>` are escaped.
fn render(text: &str) -> Rendered {
    let mut rendered = String::with_capacity(text.len());
    let mut urls = Vec::new();
    let mut last = 0;
    for span in url_spans(text) {
        rendered.push_str(&escape_html(&text[last..span.start]));
        let short = format!(
            "https://t.co/{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let start = rendered.chars().count();
        rendered.push_str(&short);
        let expanded = &text[span.clone()];
        urls.push(json!({
            "start": start,
            "end": start + short.chars().count(),
            "url": short,
            "expanded_url": expanded,
            "display_url": display_url(expanded),
        }));
        last = span.end;
    }
    rendered.push_str(&escape_html(&text[last..]));
    Rendered {
        text: rendered,
        urls,
    }
}

// ---------------------------------------------------------------------------------------
// OAuth 2.0 with PKCE

fn present<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// `GET /i/oauth2/authorize` (x.com): consents at once; `member` picks the simulated user.
async fn authorize(
    State(state): State<Arc<SimState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let bad =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    if present(&query, "response_type") != Some("code") {
        return bad("response_type must be code");
    }
    let (Some(client_id), Some(redirect_uri), Some(scope)) = (
        present(&query, "client_id"),
        present(&query, "redirect_uri"),
        present(&query, "scope"),
    ) else {
        return bad("client_id, redirect_uri and scope are required");
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return bad("redirect_uri must be an absolute URL");
    };
    // X requires PKCE and a state; it also allows `plain`, which netsim refuses.
    let (Some(challenge), Some(client_state)) =
        (present(&query, "code_challenge"), present(&query, "state"))
    else {
        return bad("code_challenge and state are required");
    };
    if present(&query, "code_challenge_method") != Some("S256") {
        return bad("code_challenge_method must be S256");
    }
    let member_id = present(&query, "member")
        .map(str::to_string)
        .unwrap_or_else(random_member_id);
    let code = state.grant_code(Consent {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        member_id: member_id.clone(),
        code_challenge: Some(challenge.to_string()),
    });
    state
        .x
        .lock()
        .code_scopes
        .insert(code.clone(), scope.to_string());
    location
        .query_pairs_mut()
        .append_pair("state", client_state)
        .append_pair("code", &code);
    tracing::info!(member_id = %member_id, client_id, "netsim x consent granted");
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// The client id of HTTP Basic client authentication (any non-empty secret is accepted).
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (client_id, secret) = decoded.split_once(':')?;
    (!client_id.is_empty() && !secret.is_empty()).then(|| client_id.to_string())
}

fn random_refresh_token() -> String {
    let raw = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// `POST /2/oauth2/token` (api.x.com), form-encoded; confidential clients authenticate
/// with HTTP Basic, public clients send `client_id` only.
async fn token(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let form_client = present(&form, "client_id");
    let client_id = match (basic_client_id(&headers), form_client) {
        (Some(basic), Some(form)) if basic != form => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "Missing valid authorization header",
            );
        }
        (Some(basic), _) => basic,
        (None, Some(form)) => form.to_string(),
        (None, None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "Missing valid authorization header",
            );
        }
    };
    let grant_type = present(&form, "grant_type").unwrap_or_default();
    let (member_id, scope) = match grant_type {
        "authorization_code" => {
            let invalid_code = || {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                )
            };
            let (Some(code), Some(redirect_uri)) =
                (present(&form, "code"), present(&form, "redirect_uri"))
            else {
                return invalid_code();
            };
            let scope = state.x.lock().code_scopes.remove(code);
            let redeemed = state.redeem_code(CodeExchange {
                code,
                redirect_uri,
                client_id: &client_id,
                code_verifier: present(&form, "code_verifier"),
            });
            match (redeemed, scope) {
                (Ok(member_id), Some(scope)) => (member_id, scope),
                (Err(GrantRefused(reason)), _) => {
                    tracing::info!(client_id = %client_id, reason, "netsim x code refused");
                    return invalid_code();
                }
                (Ok(_), None) => return invalid_code(),
            }
        }
        "refresh_token" => {
            let refused = || {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Value passed for the token was invalid.",
                )
            };
            let Some(refresh_token) = present(&form, "refresh_token") else {
                return refused();
            };
            // Rotation: the refresh token is spent by this request, whatever follows.
            let Some(grant) = state.x.lock().refresh_tokens.remove(refresh_token) else {
                tracing::info!(client_id = %client_id, "netsim x refresh token refused");
                return refused();
            };
            if grant.client_id != client_id {
                return refused();
            }
            (grant.member_id, grant.scope)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    let (access_token, expires_in) = state.issue_access_token(
        &member_id,
        ACCESS_TOKEN_PREFIX,
        state.options.x.access_token_ttl,
    );
    let mut reply = json!({
        "token_type": "bearer",
        "expires_in": expires_in,
        "access_token": access_token,
        "scope": scope,
    });
    // A refresh token only with `offline.access`.
    if scope.split(' ').any(|granted| granted == "offline.access") {
        let refresh_token = random_refresh_token();
        state.x.lock().refresh_tokens.insert(
            refresh_token.clone(),
            RefreshGrant {
                member_id: member_id.clone(),
                client_id: client_id.clone(),
                scope: scope.clone(),
            },
        );
        reply["refresh_token"] = json!(refresh_token);
    }
    tracing::info!(member_id = %member_id, client_id = %client_id, grant_type, "netsim x tokens issued");
    axum::Json(reply).into_response()
}

// ---------------------------------------------------------------------------------------
// API

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user behind the bearer token, or X's 401 (the same body for unknown and expired).
fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = bearer_token(headers).ok_or_else(|| Box::new(unauthorized()))?;
    state.member_of(token).map_err(|_| Box::new(unauthorized()))
}

/// Counts a read in its per-user window; the 429 carries the window's headers.
fn spend_read(
    state: &SimState,
    endpoint: &'static str,
    member_id: &str,
    limit: u32,
) -> Result<Quota, Box<Response>> {
    let (quota, allowed) = state.x.lock().spend(
        (endpoint, member_id.to_string()),
        limit,
        READ_WINDOW,
        Utc::now(),
        false,
    );
    if allowed {
        Ok(quota)
    } else {
        Err(Box::new(with_window(too_many_requests(), quota)))
    }
}

fn fields_of(query: &HashMap<String, String>, name: &str) -> Vec<String> {
    query
        .get(name)
        .map(|fields| {
            fields
                .split(',')
                .map(|field| field.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn users_me(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let member_id = match authenticate(&state, &headers) {
        Ok(member_id) => member_id,
        Err(response) => return *response,
    };
    let quota = match spend_read(&state, "users_me", &member_id, USERS_ME_PER_WINDOW) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let mut user = json!({
        "id": member_id,
        "name": format!("Member {member_id}"),
        "username": member_id,
    });
    if fields_of(&query, "user.fields")
        .iter()
        .any(|field| field == "public_metrics")
    {
        let tweet_count = state
            .posts_of("x")
            .iter()
            .filter(|post| post.author == member_id)
            .count();
        user["public_metrics"] = json!({
            "followers_count": crate::network_size(&member_id),
            "following_count": 180,
            "tweet_count": tweet_count,
            "listed_count": 3,
            "like_count": 0,
        });
    }
    with_window(axum::Json(json!({"data": user})).into_response(), quota)
}

async fn create_tweet(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = state.take_fault("x");
    match fault {
        Some(FaultAction::AnswerStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::info!(
                status = code,
                "netsim x fault: tweet answered without being created"
            );
            let mut response = status_fault(status);
            // A burst: the window's headers say it is spent until its reset.
            if let Ok(member_id) = authenticate(&state, &headers) {
                let (mut quota, _) = state.x.lock().spend(
                    ("tweets", member_id),
                    state.options.x.tweets_per_window,
                    state.options.x.tweet_window,
                    Utc::now(),
                    true,
                );
                if status == StatusCode::TOO_MANY_REQUESTS {
                    quota.remaining = 0;
                }
                set_quota_headers(&mut response, "x-rate-limit", quota);
            }
            return response;
        }
        Some(FaultAction::DelayBefore(delay)) => {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "netsim x fault: slow tweet"
            );
            tokio::time::sleep(delay).await;
        }
        Some(FaultAction::HoldAfter(_) | FaultAction::StatusAfter(_)) | None => {}
    }

    // No await until the reply: a client giving up during the hold cannot undo it.
    let response = accept_tweet(&state, &headers, &body);
    if let Some(FaultAction::StatusAfter(code)) = fault
        && response.status().is_success()
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        tracing::info!(
            status = code,
            "netsim x fault: tweet created, answered as failed"
        );
        return status_fault(status);
    }

    if let Some(FaultAction::HoldAfter(hold)) = fault {
        tracing::info!(
            hold_ms = hold.as_millis() as u64,
            status = response.status().as_u16(),
            "netsim x fault: holding the reply"
        );
        tokio::time::sleep(hold).await;
    }
    response
}

fn accept_tweet(state: &SimState, headers: &HeaderMap, body: &[u8]) -> Response {
    let member_id = match authenticate(state, headers) {
        Ok(member_id) => member_id,
        Err(response) => return *response,
    };
    let options = &state.options.x;
    let now = Utc::now();
    let mut x = state.x.lock();
    // Every request counts, whatever its outcome; the tightest refusal answers.
    let (window, window_ok) = x.spend(
        ("tweets", member_id.clone()),
        options.tweets_per_window,
        options.tweet_window,
        now,
        false,
    );
    let (user_day, user_ok) = x.spend(
        ("tweets_user_day", member_id.clone()),
        options.user_tweets_per_day,
        DAY,
        now,
        false,
    );
    let (app_day, app_ok) = x.spend(
        ("tweets_app_day", String::new()),
        options.app_tweets_per_day,
        DAY,
        now,
        false,
    );
    let headed = |mut response: Response| {
        set_quota_headers(&mut response, "x-rate-limit", window);
        set_quota_headers(&mut response, "x-user-limit-24hour", user_day);
        set_quota_headers(&mut response, "x-app-limit-24hour", app_day);
        response
    };
    if !(window_ok && user_ok && app_ok) {
        tracing::info!(member_id = %member_id, "netsim x tweet refused: rate limit");
        return headed(too_many_requests());
    }

    let request: Value = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Value::Object(fields),
        _ => {
            return headed(invalid_request(
                "Request body must be a JSON object with a `text` field",
                json!({}),
            ));
        }
    };
    if request.get("media").is_some() {
        return headed(invalid_request(
            "netsim does not simulate media uploads yet",
            json!({"media": [request["media"].to_string()]}),
        ));
    }
    let text = request.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        // Wording unconfirmed.
        return headed(invalid_request(
            "Your Tweet text is empty.",
            json!({"text": [text]}),
        ));
    }
    if weighted_length(text) > MAX_WEIGHTED_LENGTH {
        tracing::info!(member_id = %member_id, length = weighted_length(text), "netsim x tweet refused: too long");
        return headed(invalid_request(TOO_LONG, json!({"text": [text]})));
    }
    let horizon =
        now - TimeDelta::from_std(state.options.duplicate_window).unwrap_or(TimeDelta::MAX);
    let duplicate = state.posts_of("x").into_iter().any(|post| {
        post.author == member_id && post.commentary == text && post.created_at > horizon
    });
    if duplicate {
        tracing::info!(member_id = %member_id, "netsim x tweet refused: duplicate");
        state.count_duplicate("x");
        return headed(duplicate_content());
    }

    let id = (FIRST_TWEET_ID + (x.tweets_created << 12)).to_string();
    x.tweets_created += 1;
    let rendered = render(text);
    x.tweets.insert(id.clone(), rendered.clone());
    state.insert_post(SimPost {
        network: "x".to_string(),
        urn: id.clone(),
        author: member_id.clone(),
        commentary: text.to_string(),
        created_at: now,
        reactions: 0,
        comments: 0,
        reshares: 0,
        impressions: 0,
        media_url: None,
    });
    drop(x);
    tracing::info!(member_id = %member_id, tweet_id = %id, "netsim x tweet created");
    headed(
        (
            StatusCode::CREATED,
            axum::Json(
                json!({"data": {"id": id, "text": rendered.text, "edit_history_tweet_ids": [id]}}),
            ),
        )
            .into_response(),
    )
}

/// A tweet object with the requested `tweet.fields`.
fn tweet_json(state: &SimState, post: &SimPost, fields: &[String]) -> Value {
    let rendered = state
        .x
        .lock()
        .tweets
        .get(&post.urn)
        .cloned()
        .unwrap_or_else(|| render(&post.commentary));
    let mut tweet = json!({
        "id": post.urn,
        "text": rendered.text,
        "edit_history_tweet_ids": [post.urn],
    });
    for field in fields {
        match field.as_str() {
            "created_at" => {
                tweet["created_at"] =
                    json!(post.created_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            }
            "author_id" => tweet["author_id"] = json!(post.author),
            "entities" if !rendered.urls.is_empty() => {
                tweet["entities"] = json!({"urls": rendered.urls});
            }
            "public_metrics" => {
                tweet["public_metrics"] = json!({
                    "retweet_count": post.reshares,
                    "reply_count": post.comments,
                    "like_count": post.reactions,
                    "quote_count": 0,
                    "bookmark_count": 0,
                    "impression_count": post.impressions,
                });
            }
            _ => {}
        }
    }
    tweet
}

fn not_found_error(id: &str) -> Value {
    json!({
        "value": id,
        "detail": format!("Could not find tweet with id: [{id}]."),
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "id",
        "resource_id": id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    })
}

fn x_post(state: &SimState, id: &str) -> Option<SimPost> {
    state.post(id).filter(|post| post.network == "x")
}

/// `GET /2/tweets/{id}`: a missing tweet is a 200 with `errors`, as X answers.
async fn lookup_tweet(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let member_id = match authenticate(&state, &headers) {
        Ok(member_id) => member_id,
        Err(response) => return *response,
    };
    let quota = match spend_read(&state, "tweet_lookup", &member_id, LOOKUP_PER_WINDOW) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let fields = fields_of(&query, "tweet.fields");
    let body = match x_post(&state, &id) {
        Some(post) => json!({"data": tweet_json(&state, &post, &fields)}),
        None => json!({"errors": [not_found_error(&id)]}),
    };
    with_window(axum::Json(body).into_response(), quota)
}

/// `GET /2/tweets?ids=…`.
async fn lookup_tweets(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let member_id = match authenticate(&state, &headers) {
        Ok(member_id) => member_id,
        Err(response) => return *response,
    };
    let quota = match spend_read(&state, "tweet_lookup", &member_id, LOOKUP_PER_WINDOW) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let ids = fields_of(&query, "ids");
    if ids.is_empty() || ids.len() > 100 || ids.iter().any(String::is_empty) {
        return with_window(
            invalid_request(
                "The `ids` query parameter must name 1 to 100 tweet ids",
                json!({"ids": [query.get("ids").cloned().unwrap_or_default()]}),
            ),
            quota,
        );
    }
    let fields = fields_of(&query, "tweet.fields");
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for id in &ids {
        match x_post(&state, id) {
            Some(post) => data.push(tweet_json(&state, &post, &fields)),
            None => errors.push(not_found_error(id)),
        }
    }
    let mut body = json!({});
    if !data.is_empty() {
        body["data"] = json!(data);
    }
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    with_window(axum::Json(body).into_response(), quota)
}

fn parse_time(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, Box<Response>> {
    match query.get(name) {
        None => Ok(None),
        Some(value) => DateTime::parse_from_rfc3339(value)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|_| {
                Box::new(invalid_request(
                    &format!("Invalid '{name}':'{value}'. '{name}' must be a RFC 3339 date-time"),
                    json!({name: [value]}),
                ))
            }),
    }
}

const PAGINATION_PREFIX: &str = "7140dibdnow9c7btw4";

/// `GET /2/users/{id}/tweets`: newest first, `max_results` 5–100, `start_time`/`end_time`,
/// `since_id`/`until_id`, and `pagination_token` from `meta.next_token`.
async fn user_tweets(
    State(state): State<Arc<SimState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let member_id = match authenticate(&state, &headers) {
        Ok(member_id) => member_id,
        Err(response) => return *response,
    };
    let quota = match spend_read(&state, "user_tweets", &member_id, TIMELINE_PER_WINDOW) {
        Ok(quota) => quota,
        Err(response) => return *response,
    };
    let answer = |response: Response| with_window(response, quota);
    let max_results = match query.get("max_results") {
        None => 10,
        Some(value) => match value.parse::<usize>() {
            Ok(count) if (5..=100).contains(&count) => count,
            _ => {
                return answer(invalid_request(
                    &format!(
                        "The `max_results` query parameter value [{value}] is not between 5 and 100"
                    ),
                    json!({"max_results": [value]}),
                ));
            }
        },
    };
    let (start_time, end_time) = match (
        parse_time(&query, "start_time"),
        parse_time(&query, "end_time"),
    ) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(response), _) | (_, Err(response)) => return answer(*response),
    };
    let id_bound = |name: &str| query.get(name).and_then(|id| id.parse::<u64>().ok());
    let (since_id, until_id) = (id_bound("since_id"), id_bound("until_id"));
    let page_start = match query.get("pagination_token") {
        None => None,
        Some(token) => match token
            .strip_prefix(PAGINATION_PREFIX)
            .and_then(|id| u64::from_str_radix(id, 36).ok())
        {
            Some(id) => Some(id),
            None => {
                return answer(invalid_request(
                    &format!("The `pagination_token` query parameter value [{token}] is not valid"),
                    json!({"pagination_token": [token]}),
                ));
            }
        },
    };
    let mut tweets: Vec<(u64, SimPost)> = state
        .posts_of("x")
        .into_iter()
        .filter(|post| post.author == user_id)
        .filter(|post| start_time.is_none_or(|start| post.created_at >= start))
        .filter(|post| end_time.is_none_or(|end| post.created_at <= end))
        .filter_map(|post| post.urn.parse::<u64>().ok().map(|id| (id, post)))
        .filter(|(id, _)| since_id.is_none_or(|since| *id > since))
        .filter(|(id, _)| until_id.is_none_or(|until| *id < until))
        .filter(|(id, _)| page_start.is_none_or(|first| *id <= first))
        .collect();
    tweets.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    let next_token = tweets
        .get(max_results)
        .map(|(id, _)| format!("{PAGINATION_PREFIX}{}", radix36(*id)));
    tweets.truncate(max_results);
    if tweets.is_empty() {
        return answer(axum::Json(json!({"meta": {"result_count": 0}})).into_response());
    }
    let fields = fields_of(&query, "tweet.fields");
    let data: Vec<Value> = tweets
        .iter()
        .map(|(_, post)| tweet_json(&state, post, &fields))
        .collect();
    let mut meta = json!({
        "result_count": data.len(),
        "newest_id": tweets[0].1.urn,
        "oldest_id": tweets[tweets.len() - 1].1.urn,
    });
    if let Some(next_token) = next_token {
        meta["next_token"] = json!(next_token);
    }
    answer(axum::Json(json!({"data": data, "meta": meta})).into_response())
}

fn radix36(mut value: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_length_follows_twitter_text_v3() {
        assert_eq!(weighted_length("hello"), 5);
        // CJK weighs 2.
        assert_eq!(weighted_length("日本語"), 6);
        // Every URL is 23, however long.
        let long_url = format!("https://chr.us/s/{}", "a".repeat(100));
        assert_eq!(weighted_length(&format!("see {long_url}")), 4 + 23);
        assert_eq!(weighted_length("https://a.co"), 23);
        // An emoji sequence (here a ZWJ family) weighs 2 as a whole.
        assert_eq!(weighted_length("👨‍👩‍👧"), 2);
        assert_eq!(weighted_length("ok 👍🏽"), 5);
        // The em dash (U+2014) is in a light range, the ellipsis (U+2026) is not.
        assert_eq!(weighted_length("a—b…"), 5);
        assert_eq!(weighted_length(&"a".repeat(280)), 280);
    }

    #[test]
    fn urls_exclude_trailing_punctuation() {
        let text = "Read https://chr.us/s/abc. And (https://x.y/z) plus xhttps://no";
        let urls: Vec<&str> = url_spans(text)
            .into_iter()
            .map(|span| &text[span])
            .collect();
        assert_eq!(urls, vec!["https://chr.us/s/abc", "https://x.y/z"]);
    }

    #[test]
    fn rendering_rewrites_links_to_tco_and_escapes() {
        let rendered = render("A & B <3 https://chr.us/s/abc!");
        assert!(
            rendered.text.starts_with("A &amp; B &lt;3 https://t.co/"),
            "{}",
            rendered.text
        );
        assert!(rendered.text.ends_with('!'));
        assert_eq!(rendered.urls.len(), 1);
        let entity = &rendered.urls[0];
        assert_eq!(entity["expanded_url"], "https://chr.us/s/abc");
        let start = entity["start"].as_u64().unwrap() as usize;
        let end = entity["end"].as_u64().unwrap() as usize;
        let shown: String = rendered
            .text
            .chars()
            .skip(start)
            .take(end - start)
            .collect();
        assert_eq!(shown, entity["url"].as_str().unwrap());
        assert_eq!(end - start, URL_LENGTH);
    }

    #[test]
    fn pagination_ids_round_trip() {
        assert_eq!(
            u64::from_str_radix(&radix36(FIRST_TWEET_ID), 36).unwrap(),
            FIRST_TWEET_ID
        );
        assert_eq!(radix36(0), "0");
    }
}
