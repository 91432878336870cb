//! Bluesky (AT Protocol) as a PDS answers it (NETWORKS.md, "6. Bluesky"): app-password
//! sessions with JWT-shaped tokens (access 120 min, refresh 90 days, rotated on refresh),
//! `createRecord` of `app.bsky.feed.post` with the lexicon's checks (300 graphemes, 3,000
//! bytes, at most 3 langs, facets in UTF-8 byte offsets), client-chosen record keys with the
//! PDS's generic 500 when the key is taken, `getRecord` and `listRecords` to reconcile, the
//! AppView reads `getPosts` and `getProfile`, and the write-points and createSession rate
//! limits with `RateLimit-*` headers. Errors are XRPC bodies `{"error","message"}`.

use crate::SimPost;
use crate::state::{FaultAction, SimState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use unicode_segmentation::UnicodeSegmentation;

const POST_COLLECTION: &str = "app.bsky.feed.post";
const LINK_FEATURE: &str = "app.bsky.richtext.facet#link";
const MAX_TEXT_GRAPHEMES: usize = 300;
const MAX_TEXT_BYTES: usize = 3_000;
const MAX_LANGS: usize = 3;
const MAX_RECORD_KEY_LEN: usize = 512;
/// Write points a created record costs (update 2, delete 1).
const CREATE_POINTS: u32 = 3;
const MAX_GET_POSTS_URIS: usize = 25;
const DEFAULT_LIST_LIMIT: usize = 50;
const MAX_LIST_LIMIT: usize = 100;
/// base32-sortable, the alphabet of TIDs.
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
/// RFC 4648 base32, lower case: DIDs (did:plc) and CIDs (multibase `b`).
const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// The `aud` of the tokens: the simulated PDS's service DID.
const PDS_DID: &str = "did:web:pds.netsim.test";
const ACCESS_SCOPE: &str = "com.atproto.appPass";
const REFRESH_SCOPE: &str = "com.atproto.refresh";

/// Bluesky's knobs; shrink them in tests.
#[derive(Debug, Clone)]
pub struct BlueskyOptions {
    /// Life of an accessJwt (reference PDS: 120 minutes).
    pub access_token_ttl: Duration,
    /// Life of a refreshJwt (reference PDS: 90 days).
    pub refresh_token_ttl: Duration,
    /// Write points per account (DID) per hour; a created record costs 3 (5,000).
    pub write_points_per_hour: u32,
    /// Write points per account per day (35,000).
    pub write_points_per_day: u32,
    /// createSession calls per identifier per 5 minutes (30).
    pub sessions_per_five_minutes: u32,
    /// createSession calls per identifier per day (300; the entryway is said to allow 100).
    pub sessions_per_day: u32,
}

impl Default for BlueskyOptions {
    fn default() -> BlueskyOptions {
        BlueskyOptions {
            access_token_ttl: Duration::from_secs(120 * 60),
            refresh_token_ttl: Duration::from_secs(90 * 86_400),
            write_points_per_hour: 5_000,
            write_points_per_day: 35_000,
            sessions_per_five_minutes: 30,
            sessions_per_day: 300,
        }
    }
}

type AppState = State<Arc<SimState>>;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/xrpc/com.atproto.server.createSession",
            post(create_session),
        )
        .route(
            "/xrpc/com.atproto.server.refreshSession",
            post(refresh_session),
        )
        .route("/xrpc/com.atproto.server.getSession", get(get_session))
        .route("/xrpc/com.atproto.repo.createRecord", post(create_record))
        .route("/xrpc/com.atproto.repo.getRecord", get(get_record))
        .route("/xrpc/com.atproto.repo.listRecords", get(list_records))
        .route("/xrpc/app.bsky.feed.getPosts", get(get_posts))
        .route("/xrpc/app.bsky.actor.getProfile", get(get_profile))
}

// ---------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------

/// Bluesky's own memory, a field of [`SimState`]: accounts, sessions, repositories and
/// rate-limit windows. Same discipline as `state.rs`: one std mutex, never held across
/// an `.await`.
#[derive(Default)]
pub(crate) struct BlueskyState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// DID -> handle of every account that opened a session.
    handles: HashMap<String, String>,
    access_tokens: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    /// (DID, rkey) -> record of `app.bsky.feed.post`; ordered, as a repository's MST is.
    records: BTreeMap<(String, String), StoredRecord>,
    /// (limit name, key) -> its current fixed window.
    windows: HashMap<(&'static str, String), Window>,
    last_tid_micros: i64,
}

struct Grant {
    did: String,
    expires_at: DateTime<Utc>,
}

struct RefreshGrant {
    did: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Clone)]
struct StoredRecord {
    uri: String,
    cid: String,
    value: Value,
}

/// One limit: `points` per `window`, per key.
struct Limit {
    name: &'static str,
    points: u32,
    window: TimeDelta,
}

struct Window {
    started: DateTime<Utc>,
    consumed: u32,
}

/// What the `RateLimit-*` headers tell: the tightest limit after the call.
#[derive(Debug, Clone, Copy)]
struct Standing {
    limit: u32,
    remaining: u32,
    reset: DateTime<Utc>,
    window: TimeDelta,
}

struct Session {
    did: String,
    handle: String,
    access_jwt: String,
    refresh_jwt: String,
}

/// Why a bearer token was refused.
enum TokenProblem {
    Missing,
    Unknown,
    Expired,
    Revoked,
    WrongScope,
}

fn to_time_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

fn base32(bytes: &[u8], alphabet: &[u8; 32]) -> String {
    let mut text = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(char::from(alphabet[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        text.push(char::from(alphabet[((buffer << (5 - bits)) & 31) as usize]));
    }
    text
}

/// The stable `did:plc` of a handle (24 base32 characters, like the real ones).
fn did_for_handle(handle: &str) -> String {
    let digest = Sha256::digest(handle.as_bytes());
    format!("did:plc:{}", base32(&digest[..15], BASE32_ALPHABET))
}

/// A CIDv1 (dag-cbor, sha2-256) in multibase base32: `bafyrei…`.
fn cid_of(bytes: &[u8]) -> String {
    let mut cid = vec![0x01, 0x71, 0x12, 0x20];
    cid.extend_from_slice(&Sha256::digest(bytes));
    format!("b{}", base32(&cid, BASE32_ALPHABET))
}

/// A TID: 53 bits of microseconds and a 10-bit clock id, 13 base32-sortable characters.
fn tid(micros: i64, clock_id: u16) -> String {
    let value = ((micros as u64) << 10) | u64::from(clock_id & 0x3ff);
    (0..13)
        .map(|index| {
            let shift = 5 * (12 - index);
            char::from(TID_ALPHABET[((value >> shift) & 31) as usize])
        })
        .collect()
}

/// The record-key syntax of the atproto spec (no lexicon key type is enforced, as the
/// reference PDS does).
fn is_valid_record_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_RECORD_KEY_LEN
        && key != "."
        && key != ".."
        && key.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b':' | b'~')
        })
}

/// App passwords look like `abcd-efgh-ijkl-mnop`.
fn is_app_password(password: &str) -> bool {
    let groups: Vec<&str> = password.split('-').collect();
    groups.len() == 4
        && groups.iter().all(|group| {
            group.len() == 4
                && group
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        })
}

fn normalize_handle(identifier: &str) -> Option<String> {
    let handle = identifier
        .trim()
        .trim_start_matches('@')
        .to_ascii_lowercase();
    let labels: Vec<&str> = handle.split('.').collect();
    let valid = labels.len() >= 2
        && handle.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    valid.then_some(handle)
}

fn jwt(typ: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"typ": typ, "alg": "HS256"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(Sha256::digest(uuid::Uuid::new_v4().as_bytes()));
    format!("{header}.{payload}.{signature}")
}

impl BlueskyState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mint_session(
        inner: &mut Inner,
        options: &BlueskyOptions,
        did: &str,
        handle: &str,
        now: DateTime<Utc>,
    ) -> Session {
        let access_expires_at = now + to_time_delta(options.access_token_ttl);
        let refresh_expires_at = now + to_time_delta(options.refresh_token_ttl);
        let access_jwt = jwt(
            "at+jwt",
            &json!({"scope": ACCESS_SCOPE, "sub": did, "iat": now.timestamp(), "exp": access_expires_at.timestamp(), "aud": PDS_DID}),
        );
        let refresh_jwt = jwt(
            "refresh+jwt",
            &json!({"scope": REFRESH_SCOPE, "sub": did, "aud": PDS_DID, "jti": uuid::Uuid::new_v4().simple().to_string(), "iat": now.timestamp(), "exp": refresh_expires_at.timestamp()}),
        );
        inner.access_tokens.insert(
            access_jwt.clone(),
            Grant {
                did: did.to_string(),
                expires_at: access_expires_at,
            },
        );
        inner.refresh_tokens.insert(
            refresh_jwt.clone(),
            RefreshGrant {
                did: did.to_string(),
                expires_at: refresh_expires_at,
                revoked: false,
            },
        );
        Session {
            did: did.to_string(),
            handle: handle.to_string(),
            access_jwt,
            refresh_jwt,
        }
    }

    /// Opens a session for a handle (creating its account on first sight) or a known DID.
    fn open_session(
        &self,
        options: &BlueskyOptions,
        identifier: &str,
        now: DateTime<Utc>,
    ) -> Option<Session> {
        let mut inner = self.lock();
        let (did, handle) = if identifier.starts_with("did:") {
            let handle = inner.handles.get(identifier)?.clone();
            (identifier.to_string(), handle)
        } else {
            let handle = normalize_handle(identifier)?;
            (did_for_handle(&handle), handle)
        };
        inner.handles.insert(did.clone(), handle.clone());
        Some(Self::mint_session(&mut inner, options, &did, &handle, now))
    }

    /// Spends a refresh token for a new pair (the old one is revoked).
    fn rotate_session(
        &self,
        options: &BlueskyOptions,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, TokenProblem> {
        let mut inner = self.lock();
        if inner.access_tokens.contains_key(refresh_token) {
            return Err(TokenProblem::WrongScope);
        }
        let grant = inner
            .refresh_tokens
            .get_mut(refresh_token)
            .ok_or(TokenProblem::Unknown)?;
        if grant.revoked {
            return Err(TokenProblem::Revoked);
        }
        if grant.expires_at <= now {
            return Err(TokenProblem::Expired);
        }
        grant.revoked = true;
        let did = grant.did.clone();
        let handle = inner.handles.get(&did).cloned().unwrap_or_default();
        Ok(Self::mint_session(&mut inner, options, &did, &handle, now))
    }

    /// The DID behind an access token.
    fn did_of(&self, access_token: &str, now: DateTime<Utc>) -> Result<String, TokenProblem> {
        let inner = self.lock();
        if inner.refresh_tokens.contains_key(access_token) {
            return Err(TokenProblem::WrongScope);
        }
        let grant = inner
            .access_tokens
            .get(access_token)
            .ok_or(TokenProblem::Unknown)?;
        if grant.expires_at <= now {
            return Err(TokenProblem::Expired);
        }
        Ok(grant.did.clone())
    }

    fn handle_of(&self, did: &str) -> Option<String> {
        self.lock().handles.get(did).cloned()
    }

    /// A repo or actor named by DID or handle, when the account exists.
    fn resolve(&self, actor: &str) -> Option<(String, String)> {
        let inner = self.lock();
        if let Some(handle) = inner.handles.get(actor) {
            return Some((actor.to_string(), handle.clone()));
        }
        let handle = normalize_handle(actor)?;
        let did = did_for_handle(&handle);
        inner.handles.contains_key(&did).then_some((did, handle))
    }

    /// Expires the access tokens of an account named by DID or handle.
    pub(crate) fn expire_tokens_of(&self, member: &str) -> usize {
        let expired_at = Utc::now() - TimeDelta::seconds(1);
        let did = normalize_handle(member)
            .map(|handle| did_for_handle(&handle))
            .unwrap_or_else(|| member.to_string());
        let mut inner = self.lock();
        let mut expired = 0;
        for grant in inner
            .access_tokens
            .values_mut()
            .filter(|grant| grant.did == did || grant.did == member)
        {
            grant.expires_at = grant.expires_at.min(expired_at);
            expired += 1;
        }
        expired
    }

    /// Spends `cost` points of every limit under `key`, or none when one would overflow.
    /// (The reference limiter counts refused points too; netsim does not.)
    fn consume(
        &self,
        key: &str,
        limits: &[Limit],
        cost: u32,
        now: DateTime<Utc>,
    ) -> Result<Standing, Standing> {
        let mut inner = self.lock();
        for limit in limits {
            let window = inner
                .windows
                .entry((limit.name, key.to_string()))
                .or_insert(Window {
                    started: now,
                    consumed: 0,
                });
            if now >= window.started + limit.window {
                *window = Window {
                    started: now,
                    consumed: 0,
                };
            }
            if window.consumed.saturating_add(cost) > limit.points {
                return Err(Standing {
                    limit: limit.points,
                    remaining: 0,
                    reset: window.started + limit.window,
                    window: limit.window,
                });
            }
        }
        let mut tightest: Option<Standing> = None;
        for limit in limits {
            let Some(window) = inner.windows.get_mut(&(limit.name, key.to_string())) else {
                continue;
            };
            window.consumed += cost;
            let standing = Standing {
                limit: limit.points,
                remaining: limit.points - window.consumed,
                reset: window.started + limit.window,
                window: limit.window,
            };
            if tightest.is_none_or(|tight| standing.remaining < tight.remaining) {
                tightest = Some(standing);
            }
        }
        Ok(tightest.unwrap_or(Standing {
            limit: 0,
            remaining: 0,
            reset: now,
            window: TimeDelta::zero(),
        }))
    }

    /// The standing of the first limit as if it were exhausted (an injected 429).
    fn exhausted(&self, key: &str, limit: &Limit, now: DateTime<Utc>) -> Standing {
        let inner = self.lock();
        let reset = inner
            .windows
            .get(&(limit.name, key.to_string()))
            .map(|window| window.started + limit.window)
            .filter(|reset| *reset > now)
            .unwrap_or(now + limit.window);
        Standing {
            limit: limit.points,
            remaining: 0,
            reset,
            window: limit.window,
        }
    }

    /// A TID from the clock, strictly increasing.
    fn next_tid(&self, now: DateTime<Utc>) -> String {
        let mut inner = self.lock();
        let micros = now.timestamp_micros().max(inner.last_tid_micros + 1);
        inner.last_tid_micros = micros;
        tid(micros, (uuid::Uuid::new_v4().as_u128() & 0x3ff) as u16)
    }

    /// Stores the record unless its key is taken.
    fn insert_record(&self, did: &str, rkey: &str, record: StoredRecord) -> bool {
        let mut inner = self.lock();
        let key = (did.to_string(), rkey.to_string());
        if inner.records.contains_key(&key) {
            return false;
        }
        inner.records.insert(key, record);
        true
    }

    fn record(&self, did: &str, rkey: &str) -> Option<StoredRecord> {
        self.lock()
            .records
            .get(&(did.to_string(), rkey.to_string()))
            .cloned()
    }

    fn record_by_uri(&self, uri: &str) -> Option<StoredRecord> {
        let rest = uri.strip_prefix("at://")?;
        let mut parts = rest.splitn(3, '/');
        let (did, collection, rkey) = (parts.next()?, parts.next()?, parts.next()?);
        if collection != POST_COLLECTION {
            return None;
        }
        let did = self.resolve(did).map(|(did, _)| did)?;
        self.record(&did, rkey)
    }

    /// One page of a repository's posts, newest key first unless `reverse`.
    fn list_records(
        &self,
        did: &str,
        limit: usize,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Vec<(String, StoredRecord)> {
        let inner = self.lock();
        let of_repo = inner
            .records
            .iter()
            .filter(|((owner, _), _)| owner == did)
            .map(|((_, rkey), record)| (rkey.clone(), record.clone()));
        if reverse {
            of_repo
                .filter(|(rkey, _)| cursor.is_none_or(|cursor| rkey.as_str() > cursor))
                .take(limit)
                .collect()
        } else {
            let mut newest_first: Vec<_> = of_repo
                .filter(|(rkey, _)| cursor.is_none_or(|cursor| rkey.as_str() < cursor))
                .collect();
            newest_first.reverse();
            newest_first.truncate(limit);
            newest_first
        }
    }
}

fn write_limits(options: &BlueskyOptions) -> [Limit; 2] {
    [
        Limit {
            name: "repo-write-hour",
            points: options.write_points_per_hour,
            window: TimeDelta::hours(1),
        },
        Limit {
            name: "repo-write-day",
            points: options.write_points_per_day,
            window: TimeDelta::days(1),
        },
    ]
}

fn session_limits(options: &BlueskyOptions) -> [Limit; 2] {
    [
        Limit {
            name: "create-session-5min",
            points: options.sessions_per_five_minutes,
            window: TimeDelta::minutes(5),
        },
        Limit {
            name: "create-session-day",
            points: options.sessions_per_day,
            window: TimeDelta::days(1),
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Errors and headers
// ---------------------------------------------------------------------------------------

/// An XRPC error reply, with the rate-limit standing when the call was counted.
#[derive(Debug)]
struct XrpcError {
    status: StatusCode,
    error: &'static str,
    message: String,
    standing: Option<Standing>,
}

impl XrpcError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> XrpcError {
        XrpcError {
            status,
            error,
            message: message.into(),
            standing: None,
        }
    }

    fn with_standing(mut self, standing: Standing) -> XrpcError {
        self.standing = Some(standing);
        self
    }
}

impl IntoResponse for XrpcError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "message": self.message});
        match self.standing {
            Some(standing) => {
                (self.status, rate_headers(standing), axum::Json(body)).into_response()
            }
            None => (self.status, axum::Json(body)).into_response(),
        }
    }
}

fn invalid_request(message: impl Into<String>) -> XrpcError {
    XrpcError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

fn invalid_record(message: impl std::fmt::Display) -> XrpcError {
    invalid_request(format!("Invalid {POST_COLLECTION} record: {message}"))
}

fn rate_limit_exceeded(standing: Standing) -> XrpcError {
    XrpcError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimitExceeded",
        "Rate Limit Exceeded",
    )
    .with_standing(standing)
}

fn authentication_required() -> XrpcError {
    XrpcError::new(
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
        "Authentication Required",
    )
}

fn token_refusal(problem: TokenProblem) -> XrpcError {
    match problem {
        TokenProblem::Missing => XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AuthMissing",
            "Authentication Required",
        ),
        TokenProblem::Unknown => XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            "Token could not be verified",
        ),
        // Bluesky answers an expired token with 400, not 401.
        TokenProblem::Expired => {
            XrpcError::new(StatusCode::BAD_REQUEST, "ExpiredToken", "Token has expired")
        }
        TokenProblem::Revoked => XrpcError::new(
            StatusCode::BAD_REQUEST,
            "ExpiredToken",
            "Token has been revoked",
        ),
        TokenProblem::WrongScope => {
            XrpcError::new(StatusCode::BAD_REQUEST, "InvalidToken", "Bad token scope")
        }
    }
}

/// The body Bluesky sends with `status`, for injected faults.
fn status_fault(status: StatusCode, standing: Standing) -> XrpcError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => rate_limit_exceeded(standing),
        StatusCode::UNAUTHORIZED => authentication_required(),
        StatusCode::BAD_REQUEST => invalid_request("Invalid request"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            XrpcError::new(status, "PayloadTooLarge", "request entity too large")
        }
        _ if status.is_server_error() => {
            XrpcError::new(status, "UpstreamFailure", "Upstream Failure")
        }
        _ => XrpcError::new(
            status,
            "InternalServerError",
            status.canonical_reason().unwrap_or("Error"),
        ),
    }
}

fn rate_headers(standing: Standing) -> [(HeaderName, HeaderValue); 4] {
    let number = |value: i64| HeaderValue::from(value);
    [
        (
            HeaderName::from_static("ratelimit-limit"),
            number(i64::from(standing.limit)),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            number(i64::from(standing.remaining)),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            number(standing.reset.timestamp()),
        ),
        (
            HeaderName::from_static("ratelimit-policy"),
            HeaderValue::from_str(&format!(
                "{};w={}",
                standing.limit,
                standing.window.num_seconds()
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("0;w=0")),
        ),
    ]
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The DID behind the request's access token, or the PDS's refusal.
fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<String, XrpcError> {
    let token = bearer_token(headers).ok_or_else(|| token_refusal(TokenProblem::Missing))?;
    state
        .bluesky
        .did_of(token, Utc::now())
        .map_err(token_refusal)
}

/// A procedure's JSON input, as xrpc-server checks it.
fn json_input(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, XrpcError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(invalid_request(format!(
            "Wrong request encoding (Content-Type): {content_type}"
        )));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(invalid_request("Input must be an object")),
    }
}

fn required_str<'a>(input: &'a Map<String, Value>, field: &str) -> Result<&'a str, XrpcError> {
    match input.get(field) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(invalid_request(format!("Input/{field} must be a string"))),
        None => Err(invalid_request(format!(
            "Input must have the property \"{field}\""
        ))),
    }
}

/// Query parameters, repeated ones included (`uris=…&uris=…`).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn required_param<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, XrpcError> {
    param(pairs, name)
        .ok_or_else(|| invalid_request(format!("Params must have the property \"{name}\"")))
}

fn session_json(session: &Session) -> Value {
    json!({
        "accessJwt": session.access_jwt,
        "refreshJwt": session.refresh_jwt,
        "handle": session.handle,
        "did": session.did,
        "active": true,
    })
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

async fn create_session(
    State(state): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, XrpcError> {
    let now = Utc::now();
    let input = json_input(&headers, &body)?;
    let identifier = required_str(&input, "identifier")?;
    let password = required_str(&input, "password")?;
    let options = &state.options.bluesky;
    // Counted per identifier before the password is looked at, as the PDS does.
    let key = identifier.trim().to_ascii_lowercase();
    let standing = state
        .bluesky
        .consume(&key, &session_limits(options), 1, now)
        .map_err(rate_limit_exceeded)?;
    let invalid_login = || {
        XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired",
            "Invalid identifier or password",
        )
        .with_standing(standing)
    };
    // Only app passwords are simulated; emails as identifiers are not.
    if !is_app_password(password) || identifier.contains('@') && !identifier.starts_with('@') {
        return Err(invalid_login());
    }
    let session = state
        .bluesky
        .open_session(options, identifier, now)
        .ok_or_else(invalid_login)?;
    tracing::info!(did = %session.did, handle = %session.handle, "netsim bluesky session created");
    Ok((rate_headers(standing), axum::Json(session_json(&session))).into_response())
}

async fn refresh_session(
    State(state): AppState,
    headers: HeaderMap,
) -> Result<Response, XrpcError> {
    let token = bearer_token(&headers).ok_or_else(|| token_refusal(TokenProblem::Missing))?;
    let session = state
        .bluesky
        .rotate_session(&state.options.bluesky, token, Utc::now())
        .map_err(token_refusal)?;
    tracing::info!(did = %session.did, "netsim bluesky session refreshed");
    Ok(axum::Json(session_json(&session)).into_response())
}

async fn get_session(State(state): AppState, headers: HeaderMap) -> Result<Response, XrpcError> {
    let did = authenticate(&state, &headers)?;
    let handle = state.bluesky.handle_of(&did).unwrap_or_default();
    Ok(axum::Json(json!({
        "handle": handle,
        "did": did,
        "active": true,
    }))
    .into_response())
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

/// The caller's standing in the hourly write window (for a fault's rate-limit headers).
fn write_standing(state: &SimState, headers: &HeaderMap) -> Standing {
    let now = Utc::now();
    let key = bearer_token(headers)
        .and_then(|token| state.bluesky.did_of(token, now).ok())
        .unwrap_or_default();
    let [hour, _] = write_limits(&state.options.bluesky);
    state.bluesky.exhausted(&key, &hour, now)
}

async fn create_record(State(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let fault = state.take_fault("bluesky");
    match fault {
        Some(FaultAction::AnswerStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::info!(
                status = status.as_u16(),
                "netsim fault: record answered without being created"
            );
            return status_fault(status, write_standing(&state, &headers)).into_response();
        }
        Some(FaultAction::DelayBefore(delay)) => {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "netsim fault: slow createRecord"
            );
            tokio::time::sleep(delay).await;
        }
        Some(FaultAction::HoldAfter(_) | FaultAction::StatusAfter(_)) | None => {}
    }

    // Everything up to the reply happens without an await, so a client that gives up
    // during the hold below cannot undo the creation.
    let response = accept_record(&state, &headers, &body).into_response();
    if let Some(FaultAction::StatusAfter(code)) = fault
        && response.status().is_success()
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        tracing::info!(
            status = code,
            "netsim fault: record created, answered as failed"
        );
        return status_fault(status, write_standing(&state, &headers)).into_response();
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

fn accept_record(
    state: &SimState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, XrpcError> {
    let now = Utc::now();
    let did = authenticate(state, headers)?;
    let input = json_input(headers, body)?;
    let repo = required_str(&input, "repo")?;
    let collection = required_str(&input, "collection")?;
    let record = input
        .get("record")
        .ok_or_else(|| invalid_request("Input must have the property \"record\""))?;
    let rkey = match input.get("rkey") {
        None | Some(Value::Null) => None,
        Some(Value::String(rkey)) => Some(rkey.as_str()),
        Some(_) => return Err(invalid_request("Input/rkey must be a string")),
    };

    // The write limits are counted before the handler runs, refusals included.
    let standing = state
        .bluesky
        .consume(
            &did,
            &write_limits(&state.options.bluesky),
            CREATE_POINTS,
            now,
        )
        .map_err(rate_limit_exceeded)?;

    let outcome = create_post_record(state, &did, repo, collection, rkey, record, now);
    match outcome {
        Ok(body) => Ok((rate_headers(standing), axum::Json(body)).into_response()),
        Err(refusal) => Err(refusal.with_standing(standing)),
    }
}

fn create_post_record(
    state: &SimState,
    did: &str,
    repo: &str,
    collection: &str,
    rkey: Option<&str>,
    record: &Value,
    now: DateTime<Utc>,
) -> Result<Value, XrpcError> {
    let (repo_did, _) = state
        .bluesky
        .resolve(repo)
        .ok_or_else(|| invalid_request(format!("Could not find repo: {repo}")))?;
    if repo_did != did {
        return Err(authentication_required());
    }
    if collection != POST_COLLECTION {
        return Err(invalid_request(format!(
            "netsim simulates only {POST_COLLECTION} records, not {collection}"
        )));
    }
    let text = check_post_record(record)?;
    let rkey = match rkey {
        Some(rkey) if !is_valid_record_key(rkey) => {
            return Err(invalid_request(format!("Invalid record key: {rkey}")));
        }
        Some(rkey) => rkey.to_string(),
        None => state.bluesky.next_tid(now),
    };

    let mut value = record.clone();
    if let Value::Object(fields) = &mut value {
        fields
            .entry("$type")
            .or_insert_with(|| Value::String(POST_COLLECTION.to_string()));
    }
    let uri = format!("at://{did}/{POST_COLLECTION}/{rkey}");
    let cid = cid_of(value.to_string().as_bytes());
    let stored = StoredRecord {
        uri: uri.clone(),
        cid: cid.clone(),
        value,
    };
    if !state.bluesky.insert_record(did, &rkey, stored) {
        // The reference PDS fails deep in the MST ("already a value at key") and answers
        // a generic 500, not a clean conflict.
        tracing::info!(did, rkey = %rkey, "netsim bluesky record refused: key taken");
        state.count_duplicate("bluesky");
        return Err(XrpcError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal Server Error",
        ));
    }
    state.insert_post(SimPost {
        network: "bluesky".to_string(),
        urn: uri.clone(),
        author: did.to_string(),
        commentary: text.to_string(),
        created_at: now,
        reactions: 0,
        comments: 0,
        reshares: 0,
        impressions: 0,
        media_url: None,
    });
    tracing::info!(did, uri = %uri, "netsim bluesky post created");
    let rev = state.bluesky.next_tid(now);
    Ok(json!({
        "uri": uri,
        "cid": cid,
        "commit": {"cid": cid_of(format!("{did}/{rev}").as_bytes()), "rev": rev},
        "validationStatus": "valid",
    }))
}

/// The lexicon's checks of `app.bsky.feed.post`; returns the text.
fn check_post_record(record: &Value) -> Result<&str, XrpcError> {
    let Value::Object(fields) = record else {
        return Err(invalid_record("Record must be an object"));
    };
    match fields.get("$type") {
        None => {}
        Some(Value::String(kind)) if kind == POST_COLLECTION => {}
        Some(other) => {
            return Err(invalid_request(format!(
                "Invalid $type: expected {POST_COLLECTION}, got {other}"
            )));
        }
    }
    let text = match fields.get("text") {
        Some(Value::String(text)) => text.as_str(),
        Some(_) => return Err(invalid_record("Record/text must be a string")),
        None => return Err(invalid_record("Record must have the property \"text\"")),
    };
    if text.len() > MAX_TEXT_BYTES {
        return Err(invalid_record(format!(
            "Record/text must not be longer than {MAX_TEXT_BYTES} characters"
        )));
    }
    if text.graphemes(true).count() > MAX_TEXT_GRAPHEMES {
        return Err(invalid_record(format!(
            "Record/text must not be longer than {MAX_TEXT_GRAPHEMES} graphemes"
        )));
    }
    if let Some(facets) = fields.get("facets") {
        check_facets(text, facets)?;
    }
    if let Some(langs) = fields.get("langs") {
        let Value::Array(langs) = langs else {
            return Err(invalid_record("Record/langs must be an array"));
        };
        if langs.len() > MAX_LANGS {
            return Err(invalid_record(format!(
                "Record/langs must not have more than {MAX_LANGS} elements"
            )));
        }
    }
    match fields.get("createdAt") {
        Some(Value::String(created_at)) if DateTime::parse_from_rfc3339(created_at).is_ok() => {}
        Some(_) => {
            return Err(invalid_record(
                "Record/createdAt must be an valid atproto datetime (both RFC-3339 and ISO-8601)",
            ));
        }
        None => {
            return Err(invalid_record(
                "Record must have the property \"createdAt\"",
            ));
        }
    }
    Ok(text)
}

/// Facets: byte ranges of the UTF-8 text (end exclusive) with at least one feature. The
/// lexicon only asks for non-negative integers; netsim also refuses a range outside the
/// text or splitting a character, which the AppView would drop, to catch adapter bugs.
fn check_facets(text: &str, facets: &Value) -> Result<(), XrpcError> {
    let Value::Array(facets) = facets else {
        return Err(invalid_record("Record/facets must be an array"));
    };
    for (position, facet) in facets.iter().enumerate() {
        let path = format!("Record/facets/{position}");
        let index = &facet["index"];
        let (Some(start), Some(end)) = (index["byteStart"].as_u64(), index["byteEnd"].as_u64())
        else {
            return Err(invalid_record(format!(
                "{path}/index must have integer byteStart and byteEnd"
            )));
        };
        let (start, end) = (start as usize, end as usize);
        if start >= end
            || end > text.len()
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
        {
            return Err(invalid_record(format!(
                "{path}/index [{start}, {end}) is not a byte range of the text ({} bytes)",
                text.len()
            )));
        }
        let Some(features) = facet["features"].as_array().filter(|list| !list.is_empty()) else {
            return Err(invalid_record(format!(
                "{path}/features must be a non-empty array"
            )));
        };
        for (number, feature) in features.iter().enumerate() {
            let kind = feature["$type"].as_str().unwrap_or("");
            if kind == LINK_FEATURE && feature["uri"].as_str().is_none_or(str::is_empty) {
                return Err(invalid_record(format!(
                    "{path}/features/{number} must have the property \"uri\""
                )));
            }
        }
    }
    Ok(())
}

fn record_json(record: &StoredRecord) -> Value {
    json!({"uri": record.uri, "cid": record.cid, "value": record.value})
}

/// Checks the bearer token only when one is sent (reads are public).
fn authenticate_if_sent(state: &SimState, headers: &HeaderMap) -> Result<(), XrpcError> {
    if headers.contains_key(header::AUTHORIZATION) {
        authenticate(state, headers)?;
    }
    Ok(())
}

async fn get_record(
    State(state): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, XrpcError> {
    authenticate_if_sent(&state, &headers)?;
    let pairs = query_pairs(query.as_deref());
    let repo = required_param(&pairs, "repo")?;
    let collection = required_param(&pairs, "collection")?;
    let rkey = required_param(&pairs, "rkey")?;
    let (did, _) = state
        .bluesky
        .resolve(repo)
        .ok_or_else(|| invalid_request(format!("Could not find repo: {repo}")))?;
    let uri = format!("at://{did}/{collection}/{rkey}");
    let record = (collection == POST_COLLECTION)
        .then(|| state.bluesky.record(&did, rkey))
        .flatten()
        .filter(|record| param(&pairs, "cid").is_none_or(|cid| cid == record.cid))
        .ok_or_else(|| {
            XrpcError::new(
                StatusCode::BAD_REQUEST,
                "RecordNotFound",
                format!("Could not locate record: {uri}"),
            )
        })?;
    Ok(axum::Json(record_json(&record)).into_response())
}

async fn list_records(
    State(state): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, XrpcError> {
    authenticate_if_sent(&state, &headers)?;
    let pairs = query_pairs(query.as_deref());
    let repo = required_param(&pairs, "repo")?;
    let collection = required_param(&pairs, "collection")?;
    let limit = match param(&pairs, "limit") {
        None => DEFAULT_LIST_LIMIT,
        Some(limit) => match limit.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIST_LIMIT).contains(&limit) => limit,
            _ => {
                return Err(invalid_request(format!(
                    "limit must be an integer from 1 to {MAX_LIST_LIMIT}"
                )));
            }
        },
    };
    let reverse = param(&pairs, "reverse") == Some("true");
    let (did, _) = state
        .bluesky
        .resolve(repo)
        .ok_or_else(|| invalid_request(format!("Could not find repo: {repo}")))?;
    let page = if collection == POST_COLLECTION {
        state
            .bluesky
            .list_records(&did, limit, param(&pairs, "cursor"), reverse)
    } else {
        Vec::new()
    };
    // Like the PDS: the cursor is the last key returned, whenever a record was.
    let cursor = page.last().map(|(rkey, _)| rkey.clone());
    let records: Vec<Value> = page.iter().map(|(_, record)| record_json(record)).collect();
    let mut body = json!({"records": records});
    if let Some(cursor) = cursor {
        body["cursor"] = Value::String(cursor);
    }
    Ok(axum::Json(body).into_response())
}

// ---------------------------------------------------------------------------------------
// AppView reads
// ---------------------------------------------------------------------------------------

fn profile_basic(did: &str, handle: &str) -> Value {
    json!({"did": did, "handle": handle, "displayName": handle, "labels": []})
}

async fn get_posts(
    State(state): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, XrpcError> {
    authenticate_if_sent(&state, &headers)?;
    let pairs = query_pairs(query.as_deref());
    let uris: Vec<&str> = pairs
        .iter()
        .filter(|(key, _)| key == "uris")
        .map(|(_, value)| value.as_str())
        .collect();
    if uris.is_empty() {
        return Err(invalid_request("Params must have the property \"uris\""));
    }
    if uris.len() > MAX_GET_POSTS_URIS {
        return Err(invalid_request(format!(
            "Params/uris must not have more than {MAX_GET_POSTS_URIS} elements"
        )));
    }
    // Unknown or deleted posts are left out, as the AppView does.
    let posts: Vec<Value> = uris
        .iter()
        .filter_map(|uri| {
            let record = state.bluesky.record_by_uri(uri)?;
            let post = state.post(&record.uri)?;
            let handle = state.bluesky.handle_of(&post.author).unwrap_or_default();
            Some(json!({
                "uri": record.uri,
                "cid": record.cid,
                "author": profile_basic(&post.author, &handle),
                "record": record.value,
                "replyCount": post.comments,
                "repostCount": post.reshares,
                "likeCount": post.reactions,
                "quoteCount": 0,
                "bookmarkCount": 0,
                "indexedAt": post.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "viewer": {},
                "labels": [],
            }))
        })
        .collect();
    Ok(axum::Json(json!({"posts": posts})).into_response())
}

async fn get_profile(
    State(state): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, XrpcError> {
    authenticate_if_sent(&state, &headers)?;
    let pairs = query_pairs(query.as_deref());
    let actor = required_param(&pairs, "actor")?;
    let (did, handle) = state
        .bluesky
        .resolve(actor)
        .ok_or_else(|| invalid_request("Profile not found"))?;
    let posts_count = state
        .posts_of("bluesky")
        .iter()
        .filter(|post| post.author == did)
        .count();
    let mut profile = profile_basic(&did, &handle);
    profile["followersCount"] = json!(crate::network_size(&did));
    profile["followsCount"] = json!(crate::network_size(&handle) / 3);
    profile["postsCount"] = json!(posts_count);
    profile["indexedAt"] = json!(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    Ok(axum::Json(profile).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Netsim, NetsimOptions};
    use tokio_util::sync::CancellationToken;

    struct Harness {
        netsim: Netsim,
        base_url: String,
        http: reqwest::Client,
        shutdown: CancellationToken,
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    async fn start(options: NetsimOptions) -> Harness {
        let netsim = Netsim::new(options);
        let shutdown = CancellationToken::new();
        let address = netsim
            .serve("127.0.0.1:0", shutdown.clone())
            .await
            .expect("netsim binds");
        Harness {
            netsim,
            base_url: format!("http://{address}/bluesky/xrpc"),
            http: reqwest::Client::new(),
            shutdown,
        }
    }

    impl Harness {
        async fn login(&self, handle: &str) -> Value {
            let response = self
                .http
                .post(format!(
                    "{}/com.atproto.server.createSession",
                    self.base_url
                ))
                .json(&json!({"identifier": handle, "password": "abcd-efgh-ijkl-mnop"}))
                .send()
                .await
                .expect("createSession answers");
            assert_eq!(response.status(), StatusCode::OK);
            response.json().await.expect("session json")
        }

        async fn create(&self, session: &Value, rkey: &str, record: Value) -> reqwest::Response {
            self.http
                .post(format!("{}/com.atproto.repo.createRecord", self.base_url))
                .bearer_auth(session["accessJwt"].as_str().expect("access"))
                .json(&json!({"repo": session["did"], "collection": POST_COLLECTION, "rkey": rkey, "record": record}))
                .send()
                .await
                .expect("createRecord answers")
        }
    }

    fn post_record(text: &str) -> Value {
        json!({"$type": POST_COLLECTION, "text": text, "createdAt": "2026-05-01T10:00:00.000Z"})
    }

    async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
        let status = response.status();
        let body: Value = response.json().await.expect("xrpc error body");
        (
            status,
            body["error"].as_str().unwrap_or("").to_string(),
            body["message"].as_str().unwrap_or("").to_string(),
        )
    }

    #[test]
    fn identifiers_have_the_real_shapes() {
        let did = did_for_handle("alice.bsky.social");
        assert!(did.starts_with("did:plc:"));
        assert_eq!(did.len(), "did:plc:".len() + 24);
        assert_eq!(did, did_for_handle("alice.bsky.social"));
        assert!(cid_of(b"x").starts_with("bafyrei"));
        assert_eq!(cid_of(b"x").len(), 59);
        // The spec's example TID decodes from 2022-ish microseconds.
        let example = tid(1_668_000_000_000_000, 0);
        assert_eq!(example.len(), 13);
        assert!(example.starts_with('3'), "{example}");
        assert!(is_app_password("abcd-efgh-ijkl-mnop"));
        assert!(!is_app_password("hunter2"));
        assert!(is_valid_record_key("3lxyzabc2k22a"));
        assert!(!is_valid_record_key(".."));
        assert!(!is_valid_record_key("a/b"));
    }

    #[tokio::test]
    async fn the_lexicon_limits_are_enforced_with_xrpc_errors() {
        let harness = start(NetsimOptions::default()).await;
        let session = harness.login("limits.bsky.social").await;

        let long = harness
            .create(&session, "3aaaaaaaaaa22", post_record(&"é".repeat(301)))
            .await;
        assert_eq!(
            error_of(long).await,
            (
                StatusCode::BAD_REQUEST,
                "InvalidRequest".to_string(),
                "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes".to_string()
            )
        );
        // 300 family emoji are 300 graphemes but 7,500 bytes.
        let heavy = harness
            .create(&session, "3aaaaaaaaaa23", post_record(&"👨‍👩‍👧".repeat(300)))
            .await;
        assert!(error_of(heavy).await.2.contains("3000 characters"));

        let mut facet = post_record("héllo https://x.y");
        facet["facets"] = json!([{"index": {"byteStart": 7, "byteEnd": 40}, "features": [{"$type": LINK_FEATURE, "uri": "https://x.y"}]}]);
        let outside = harness.create(&session, "3aaaaaaaaaa24", facet).await;
        assert_eq!(outside.status(), StatusCode::BAD_REQUEST);
        assert!(harness.netsim.posts_of("bluesky").is_empty());
    }

    #[tokio::test]
    async fn a_taken_record_key_is_a_generic_500_and_get_record_finds_the_first() {
        let harness = start(NetsimOptions::default()).await;
        let session = harness.login("keys.bsky.social").await;
        let first = harness
            .create(&session, "3kkkkkkkkkk22", post_record("first"))
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()["ratelimit-remaining"], "4997");
        assert_eq!(first.headers()["ratelimit-policy"], "5000;w=3600");
        let created: Value = first.json().await.expect("json");
        let again = harness
            .create(&session, "3kkkkkkkkkk22", post_record("second"))
            .await;
        assert_eq!(
            error_of(again).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError".to_string(),
                "Internal Server Error".to_string()
            )
        );
        assert_eq!(harness.netsim.posts_of("bluesky").len(), 1);

        let did = session["did"].as_str().expect("did");
        let found: Value = harness
            .http
            .get(format!("{}/com.atproto.repo.getRecord", harness.base_url))
            .query(&[
                ("repo", did),
                ("collection", POST_COLLECTION),
                ("rkey", "3kkkkkkkkkk22"),
            ])
            .send()
            .await
            .expect("getRecord")
            .json()
            .await
            .expect("json");
        assert_eq!(found["uri"], created["uri"]);
        assert_eq!(found["value"]["text"], "first");

        let missing = harness
            .http
            .get(format!("{}/com.atproto.repo.getRecord", harness.base_url))
            .query(&[
                ("repo", did),
                ("collection", POST_COLLECTION),
                ("rkey", "3zzzzzzzzzz22"),
            ])
            .send()
            .await
            .expect("getRecord");
        assert_eq!(error_of(missing).await.1, "RecordNotFound");
    }

    #[tokio::test]
    async fn sessions_rotate_and_are_rate_limited_per_identifier() {
        let options = NetsimOptions {
            bluesky: BlueskyOptions {
                sessions_per_five_minutes: 2,
                ..BlueskyOptions::default()
            },
            ..NetsimOptions::default()
        };
        let harness = start(options).await;
        let session = harness.login("Rotate.bsky.social").await;
        assert_eq!(session["handle"], "rotate.bsky.social");
        assert_eq!(session["did"], did_for_handle("rotate.bsky.social"));

        let refresh = |token: &str| {
            harness
                .http
                .post(format!(
                    "{}/com.atproto.server.refreshSession",
                    harness.base_url
                ))
                .bearer_auth(token.to_string())
                .send()
        };
        let refresh_jwt = session["refreshJwt"].as_str().expect("refresh");
        let rotated = refresh(refresh_jwt).await.expect("refresh answers");
        assert_eq!(rotated.status(), StatusCode::OK);
        let reused = refresh(refresh_jwt).await.expect("refresh answers");
        assert_eq!(error_of(reused).await.1, "ExpiredToken");
        let with_access = refresh(session["accessJwt"].as_str().expect("access"))
            .await
            .expect("refresh answers");
        assert_eq!(
            error_of(with_access).await,
            (
                StatusCode::BAD_REQUEST,
                "InvalidToken".to_string(),
                "Bad token scope".to_string()
            )
        );

        harness.login("rotate.bsky.social").await;
        let third = harness
            .http
            .post(format!(
                "{}/com.atproto.server.createSession",
                harness.base_url
            ))
            .json(&json!({"identifier": "rotate.bsky.social", "password": "abcd-efgh-ijkl-mnop"}))
            .send()
            .await
            .expect("answers");
        assert_eq!(third.headers()["ratelimit-policy"], "2;w=300");
        assert_eq!(error_of(third).await.1, "RateLimitExceeded");
    }
}
