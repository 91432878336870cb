//! Bluesky adapter (AT Protocol), in the wire format of NETWORKS.md, "6. Bluesky":
//! app-password sessions (`com.atproto.server.createSession`, `refreshSession`,
//! `getSession`), posts as `app.bsky.feed.post` records through
//! `com.atproto.repo.createRecord` with a link facet in UTF-8 byte offsets and a record key
//! (a TID) derived from the share's idempotency key, reconciled through `getRecord` (then
//! `listRecords`), engagement from `app.bsky.feed.getPosts` and the audience from
//! `app.bsky.actor.getProfile`.

use crate::transport::{self, CallEffect};
use crate::{
    AppCredentials, Network, NetworkAdapter, NetworkError, PostMetrics, PostRequest, PostedRef,
    Profile, RateBudget, TokenSet,
};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tracing::Instrument;
use unicode_segmentation::UnicodeSegmentation;

const NETWORK: Network = Network::Bluesky;
const POST_COLLECTION: &str = "app.bsky.feed.post";
const LINK_FEATURE: &str = "app.bsky.richtext.facet#link";
/// The lexicon's limits of a post's text.
const MAX_TEXT_GRAPHEMES: usize = 300;
const MAX_TEXT_BYTES: usize = 3_000;
/// Lifetimes of the reference PDS, used when a token does not carry its `exp`.
const ACCESS_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(120);
const REFRESH_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(90);
/// listRecords pages read when reconciling without the record key (newest first).
const LIST_PAGE_SIZE: &str = "100";
const LIST_PAGES: usize = 2;
/// base32-sortable, the alphabet of TIDs.
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
/// Longest piece of an unparsable error body quoted in an error message.
const QUOTED_BODY_CHARS: usize = 300;

pub struct Bluesky {
    credentials: AppCredentials,
    http: reqwest::Client,
}

impl Bluesky {
    pub fn new(credentials: AppCredentials) -> Bluesky {
        let http = reqwest::Client::builder()
            .timeout(credentials.request_timeout)
            .build()
            .expect("a reqwest client with a timeout always builds");
        Bluesky { credentials, http }
    }

    /// `{pds}/xrpc/{nsid}`.
    fn xrpc_url(&self, nsid: &str) -> String {
        format!(
            "{}/xrpc/{nsid}",
            self.credentials.api_base_url.trim_end_matches('/')
        )
    }

    /// Sends a session call (createSession, refreshSession) and reads the session reply.
    async fn session_call(
        &self,
        request: RequestBuilder,
        effect: CallEffect,
    ) -> Result<TokenSet, NetworkError> {
        let response = transport::send(NETWORK, request, effect).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(failure_of(response).await);
        }
        let session: SessionReply =
            transport::read_json(NETWORK, response, effect, "session reply").await?;
        tracing::info!(did = %session.did, "bluesky session opened");
        Ok(session.into_token_set(chrono::Utc::now()))
    }

    /// `com.atproto.server.getSession`: the account behind an access token.
    async fn session(&self, access_token: &str) -> Result<SessionInfo, NetworkError> {
        let request = self
            .http
            .get(self.xrpc_url("com.atproto.server.getSession"))
            .bearer_auth(access_token);
        let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
        if !response.status().is_success() {
            return Err(failure_of(response).await);
        }
        transport::read_json(
            NETWORK,
            response,
            CallEffect::Repeatable,
            "getSession reply",
        )
        .await
    }

    /// Creates the record at `rkey`. A server error may hide a record that was written
    /// (UpstreamFailure after the commit, or the PDS's generic 500 on a key that is already
    /// taken, i.e. a resend): the key is then looked up before anything is concluded.
    async fn create_record(
        &self,
        access_token: &str,
        post: &PostRequest,
        rkey: &str,
        record: Value,
    ) -> Result<PostedRef, NetworkError> {
        let body = json!({
            "repo": post.author_id,
            "collection": POST_COLLECTION,
            "rkey": rkey,
            "record": record,
        });
        let request = self
            .http
            .post(self.xrpc_url("com.atproto.repo.createRecord"))
            .bearer_auth(access_token)
            .json(&body);
        let response = transport::send(NETWORK, request, CallEffect::SideEffect).await?;
        let status = response.status();
        let budget = budget_of(response.headers());
        if status.is_success() {
            let created: CreatedRecord = transport::read_json(
                NETWORK,
                response,
                CallEffect::SideEffect,
                "createRecord reply",
            )
            .await?;
            tracing::info!(external_id = %created.uri, cid = %created.cid, "bluesky post created");
            return Ok(posted_ref(created.uri, false, budget));
        }
        let error = failure_of(response).await;
        if !status.is_server_error() {
            return Err(error);
        }
        match self.get_record(access_token, &post.author_id, rkey).await {
            Ok(Some(found)) => {
                tracing::info!(external_id = %found.external_id, status = status.as_u16(), "bluesky post already existed at its record key");
                Ok(PostedRef { budget, ..found })
            }
            Ok(None) => Err(error),
            Err(lookup) => {
                tracing::warn!(error.code = lookup.code(), error = %lookup, "bluesky record lookup after a server error failed");
                Err(error)
            }
        }
    }

    /// `com.atproto.repo.getRecord`: the post at `rkey`, or `None` on `RecordNotFound`.
    async fn get_record(
        &self,
        access_token: &str,
        repo: &str,
        rkey: &str,
    ) -> Result<Option<PostedRef>, NetworkError> {
        let request = self
            .http
            .get(self.xrpc_url("com.atproto.repo.getRecord"))
            .bearer_auth(access_token)
            .query(&[
                ("repo", repo),
                ("collection", POST_COLLECTION),
                ("rkey", rkey),
            ]);
        let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
        let status = response.status();
        if status.is_success() {
            let record: RecordView =
                transport::read_json(NETWORK, response, CallEffect::Repeatable, "getRecord reply")
                    .await?;
            return Ok(Some(posted_ref(record.uri, true, None)));
        }
        let body = response.text().await.unwrap_or_default();
        let error_body = parse_error_body(&body);
        if status == StatusCode::BAD_REQUEST && error_body.is("RecordNotFound") {
            return Ok(None);
        }
        Err(classify_failure(
            status,
            &HeaderMap::new(),
            &error_body,
            &body,
        ))
    }

    /// Looks through the newest posts of the repository for this share's text (its tracked
    /// link is unique), for a post not created at its derived key.
    async fn search_recent_posts(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        let mut cursor: Option<String> = None;
        for _ in 0..LIST_PAGES {
            let mut query = vec![
                ("repo", post.author_id.as_str()),
                ("collection", POST_COLLECTION),
                ("limit", LIST_PAGE_SIZE),
            ];
            if let Some(cursor) = cursor.as_deref() {
                query.push(("cursor", cursor));
            }
            let request = self
                .http
                .get(self.xrpc_url("com.atproto.repo.listRecords"))
                .bearer_auth(access_token)
                .query(&query);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            if !response.status().is_success() {
                return Err(failure_of(response).await);
            }
            let page: RecordPage = transport::read_json(
                NETWORK,
                response,
                CallEffect::Repeatable,
                "listRecords reply",
            )
            .await?;
            if let Some(found) = page
                .records
                .iter()
                .find(|record| is_this_share(post, &record.value))
            {
                return Ok(Some(posted_ref(found.uri.clone(), true, None)));
            }
            match page.cursor {
                Some(next) if !page.records.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        Ok(None)
    }
}

/// An XRPC error body: `{"error":"<Name>","message":"…"}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
}

fn parse_error_body(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_default()
}

impl ErrorBody {
    fn is(&self, name: &str) -> bool {
        self.error.as_deref() == Some(name)
    }

    /// The network's own words, for the error shown to the advocate.
    fn describe(&self, status: StatusCode, raw_body: &str) -> String {
        match (self.message.as_deref(), self.error.as_deref()) {
            (Some(message), _) if !message.trim().is_empty() => message.to_string(),
            (_, Some(error)) if !error.is_empty() => error.to_string(),
            _ if !raw_body.trim().is_empty() => {
                raw_body.trim().chars().take(QUOTED_BODY_CHARS).collect()
            }
            _ => status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string(),
        }
    }
}

async fn failure_of(response: Response) -> NetworkError {
    let status = response.status();
    let headers = response.headers().clone();
    // The status is known, so a body that cannot be read only costs the message.
    let body = response.text().await.unwrap_or_default();
    classify_failure(status, &headers, &parse_error_body(&body), &body)
}

/// Maps an XRPC error to the publisher's classes.
fn classify_failure(
    status: StatusCode,
    headers: &HeaderMap,
    error_body: &ErrorBody,
    raw_body: &str,
) -> NetworkError {
    let message = error_body.describe(status, raw_body);
    let named = |message: String| match error_body.error.as_deref() {
        Some(name) if !message.starts_with(name) => format!("{name}: {message}"),
        _ => message,
    };
    if status == StatusCode::TOO_MANY_REQUESTS || error_body.is("RateLimitExceeded") {
        return NetworkError::RateLimited {
            retry_after: retry_after_of(headers, chrono::Utc::now()),
            message,
        };
    }
    if status.is_server_error() {
        return NetworkError::Unavailable(named(message));
    }
    let error_name = error_body.error.as_deref().unwrap_or("");
    match (status, error_name) {
        // An expired access token is a 400 on Bluesky, not a 401.
        (_, "ExpiredToken" | "InvalidToken" | "AuthMissing" | "AuthenticationRequired") => {
            NetworkError::Unauthorized(named(message))
        }
        (StatusCode::UNAUTHORIZED, _) => NetworkError::Unauthorized(named(message)),
        (_, "AccountTakedown" | "AccountDeactivated" | "AccountSuspended") => {
            NetworkError::Forbidden(named(message))
        }
        (StatusCode::FORBIDDEN, _) => NetworkError::Forbidden(named(message)),
        _ => NetworkError::Invalid(message),
    }
}

/// `Retry-After` when sent, else the distance to `RateLimit-Reset` (Unix seconds).
fn retry_after_of(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    if let Some(seconds) = header_number(headers, "retry-after") {
        return Some(Duration::from_secs(seconds.max(0) as u64));
    }
    let reset = header_number(headers, "ratelimit-reset")?;
    let wait = (reset - now.timestamp()).max(0);
    Some(Duration::from_secs(wait as u64))
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The tightest write window the PDS reported (`RateLimit-*` headers).
fn budget_of(headers: &HeaderMap) -> Option<RateBudget> {
    let limit = u32::try_from(header_number(headers, "ratelimit-limit")?).ok()?;
    let remaining = u32::try_from(header_number(headers, "ratelimit-remaining")?.max(0)).ok()?;
    let resets_at =
        chrono::DateTime::from_timestamp(header_number(headers, "ratelimit-reset")?, 0)?;
    Some(RateBudget {
        limit,
        remaining,
        resets_at,
        reset_precision: std::time::Duration::ZERO,
    })
}

/// `https://bsky.app/profile/{did}/post/{rkey}` from `at://{did}/app.bsky.feed.post/{rkey}`.
fn public_url(uri: &str) -> String {
    let parts: Vec<&str> = uri.trim_start_matches("at://").splitn(3, '/').collect();
    match parts.as_slice() {
        [did, _, rkey] => format!("https://bsky.app/profile/{did}/post/{rkey}"),
        _ => format!("https://bsky.app/search?q={uri}"),
    }
}

fn posted_ref(uri: String, already_existed: bool, budget: Option<RateBudget>) -> PostedRef {
    PostedRef {
        url: public_url(&uri),
        external_id: uri,
        already_existed,
        budget,
    }
}

/// A record of this share: its unique tracked link, or its exact text when it has none.
fn is_this_share(post: &PostRequest, value: &Value) -> bool {
    let Some(text) = value["text"].as_str() else {
        return false;
    };
    match post.link_url.as_deref().filter(|link| !link.is_empty()) {
        Some(link) => text.contains(link),
        None => text == post.text,
    }
}

/// A TID (53 bits of microseconds, a 10-bit clock id, 13 base32-sortable characters).
fn tid(micros: u64, clock_id: u16) -> String {
    let value = ((micros & ((1 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff);
    (0..13)
        .map(|index| {
            let shift = 5 * (12 - index);
            char::from(TID_ALPHABET[((value >> shift) & 31) as usize])
        })
        .collect()
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The record key of a share, the same for every attempt: a TID, so the post sorts like
/// any other. A UUIDv7 key (Chorus share ids) gives its millisecond as the time; the
/// sub-millisecond part and the clock id come from a hash of the key. Any other key is
/// hashed whole.
fn record_key(idempotency_key: &str) -> String {
    let hash = fnv1a(idempotency_key);
    let clock_id = (hash & 0x3ff) as u16;
    let micros = match uuid::Uuid::parse_str(idempotency_key) {
        Ok(uuid) if uuid.get_version_num() == 7 => {
            let bytes = uuid.as_bytes();
            let millis = bytes[..6]
                .iter()
                .fold(0u64, |millis, byte| (millis << 8) | u64::from(*byte));
            millis * 1_000 + (hash >> 10) % 1_000
        }
        _ => hash >> 11,
    };
    tid(micros, clock_id)
}

/// The text checks of the `app.bsky.feed.post` lexicon, worded as the PDS words them.
fn check_text(text: &str) -> Result<(), NetworkError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(NetworkError::Invalid(format!(
            "Invalid {POST_COLLECTION} record: Record/text must not be longer than {MAX_TEXT_BYTES} characters"
        )));
    }
    if text.graphemes(true).count() > MAX_TEXT_GRAPHEMES {
        return Err(NetworkError::Invalid(format!(
            "Invalid {POST_COLLECTION} record: Record/text must not be longer than {MAX_TEXT_GRAPHEMES} graphemes"
        )));
    }
    Ok(())
}

/// The link facet of the tracked link: nothing is auto-linked on Bluesky, and a facet's
/// range is in UTF-8 bytes, end exclusive.
fn link_facet(text: &str, link: &str) -> Result<Value, NetworkError> {
    let byte_start = text.find(link).ok_or_else(|| {
        NetworkError::Invalid(format!("the tracked link {link} is not in the post's text"))
    })?;
    Ok(json!({
        "index": {"byteStart": byte_start, "byteEnd": byte_start + link.len()},
        "features": [{"$type": LINK_FEATURE, "uri": link}],
    }))
}

/// The `app.bsky.feed.post` record of a share.
fn post_record(
    post: &PostRequest,
    created_at: chrono::DateTime<chrono::Utc>,
) -> Result<Value, NetworkError> {
    check_text(&post.text)?;
    let mut record = json!({
        "$type": POST_COLLECTION,
        "text": post.text,
        "createdAt": created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(link) = post.link_url.as_deref().filter(|link| !link.is_empty()) {
        record["facets"] = json!([link_facet(&post.text, link)?]);
    }
    Ok(record)
}

/// Decodes unpadded base64url (a JWT segment).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for character in text.trim_end_matches('=').bytes() {
        let value = match character {
            b'A'..=b'Z' => character - b'A',
            b'a'..=b'z' => character - b'a' + 26,
            b'0'..=b'9' => character - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    Some(bytes)
}

/// The claims of a JWT, read without verification (only the PDS can verify them).
fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&base64url_decode(payload)?).ok()
}

fn jwt_expiry(token: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(jwt_claims(token)?["exp"].as_i64()?, 0)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionReply {
    access_jwt: String,
    refresh_jwt: String,
    did: String,
}

impl SessionReply {
    fn into_token_set(self, now: chrono::DateTime<chrono::Utc>) -> TokenSet {
        let scope = jwt_claims(&self.access_jwt)
            .and_then(|claims| claims["scope"].as_str().map(str::to_string));
        TokenSet {
            access_expires_at: Some(jwt_expiry(&self.access_jwt).unwrap_or(now + ACCESS_LIFETIME)),
            refresh_expires_at: Some(
                jwt_expiry(&self.refresh_jwt).unwrap_or(now + REFRESH_LIFETIME),
            ),
            access_token: self.access_jwt,
            refresh_token: Some(self.refresh_jwt),
            scope,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SessionInfo {
    did: String,
    handle: String,
}

#[derive(Debug, Deserialize)]
struct CreatedRecord {
    uri: String,
    cid: String,
}

#[derive(Debug, Deserialize)]
struct RecordView {
    uri: String,
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Deserialize)]
struct RecordPage {
    #[serde(default)]
    records: Vec<RecordView>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PostsReply {
    #[serde(default)]
    posts: Vec<PostView>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostView {
    uri: String,
    #[serde(default)]
    like_count: i64,
    #[serde(default)]
    reply_count: i64,
    #[serde(default)]
    repost_count: i64,
    #[serde(default)]
    quote_count: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileView {
    followers_count: Option<i64>,
}

#[async_trait::async_trait]
impl NetworkAdapter for Bluesky {
    fn network(&self) -> Network {
        Network::Bluesky
    }

    /// Bluesky accounts connect with an app password: there is no consent page.
    fn authorize_url(&self, _state: &str, _code_challenge: &str) -> String {
        String::new()
    }

    async fn create_session(
        &self,
        identifier: &str,
        app_password: &str,
    ) -> Result<TokenSet, NetworkError> {
        let request = self
            .http
            .post(self.xrpc_url("com.atproto.server.createSession"))
            .json(&json!({"identifier": identifier.trim(), "password": app_password}));
        // Opening a session again only costs one of the 30 per 5 minutes.
        self.session_call(request, CallEffect::Repeatable)
            .instrument(transport::call_span(NETWORK, "create_session"))
            .await
    }

    async fn exchange_code(
        &self,
        _code: &str,
        _code_verifier: &str,
    ) -> Result<TokenSet, NetworkError> {
        Err(NetworkError::Configuration(
            "bluesky accounts connect with an app password, not an OAuth code".to_string(),
        ))
    }

    /// The refresh token is spent by the call (a new pair comes back). A lost reply is
    /// still reported as `Unavailable`: the publisher retries, and a spent token then
    /// answers ExpiredToken, which asks the advocate to reconnect.
    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, NetworkError> {
        let request = self
            .http
            .post(self.xrpc_url("com.atproto.server.refreshSession"))
            .bearer_auth(refresh_token);
        self.session_call(request, CallEffect::Repeatable)
            .instrument(transport::call_span(NETWORK, "refresh"))
            .await
    }

    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError> {
        async {
            let session = self.session(access_token).await?;
            Ok(Profile {
                id: session.did,
                display_name: session.handle,
            })
        }
        .instrument(transport::call_span(NETWORK, "profile"))
        .await
    }

    async fn publish(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        async {
            let record = post_record(post, chrono::Utc::now())?;
            if post.image_url.is_some() {
                tracing::debug!("the image is not attached on Bluesky (blob upload not supported): text and link only");
            }
            let rkey = record_key(&post.idempotency_key);
            self.create_record(access_token, post, &rkey, record).await
        }
        .instrument(transport::call_span(NETWORK, "publish"))
        .await
    }

    /// `getRecord` at the share's record key answers for every attempt of this adapter;
    /// `RecordNotFound` is then checked against the newest posts of the repository
    /// (`listRecords`) before the post is declared absent.
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        async {
            let rkey = record_key(&post.idempotency_key);
            if let Some(found) = self
                .get_record(access_token, &post.author_id, &rkey)
                .await?
            {
                tracing::info!(external_id = %found.external_id, "bluesky post found at its record key");
                return Ok(Some(found));
            }
            let found = self.search_recent_posts(access_token, post).await?;
            match &found {
                Some(found) => {
                    tracing::info!(external_id = %found.external_id, "bluesky post found in the repository listing");
                }
                None => tracing::info!(rkey = %rkey, "bluesky post absent"),
            }
            Ok(found)
        }
        .instrument(transport::call_span(NETWORK, "find_post"))
        .await
    }

    /// Likes, replies, reposts and quotes from `app.bsky.feed.getPosts` (reshares are
    /// reposts plus quotes); Bluesky reports no impressions.
    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError> {
        async {
            let request = self
                .http
                .get(self.xrpc_url("app.bsky.feed.getPosts"))
                .bearer_auth(access_token)
                .query(&[("uris", external_id)]);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            if !response.status().is_success() {
                return Err(failure_of(response).await);
            }
            let reply: PostsReply =
                transport::read_json(NETWORK, response, CallEffect::Repeatable, "getPosts reply")
                    .await?;
            let post = reply
                .posts
                .into_iter()
                .find(|post| post.uri == external_id)
                .ok_or_else(|| {
                    NetworkError::Invalid(format!("post {external_id} not found (deleted?)"))
                })?;
            Ok(PostMetrics {
                reactions: post.like_count,
                comments: post.reply_count,
                reshares: post.repost_count + post.quote_count,
                impressions: 0,
            })
        }
        .instrument(transport::call_span(NETWORK, "metrics"))
        .await
    }

    /// Followers of the account (`app.bsky.actor.getProfile`).
    async fn audience_size(&self, access_token: &str) -> Result<Option<i64>, NetworkError> {
        async {
            let session = self.session(access_token).await?;
            let request = self
                .http
                .get(self.xrpc_url("app.bsky.actor.getProfile"))
                .bearer_auth(access_token)
                .query(&[("actor", session.did.as_str())]);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            if !response.status().is_success() {
                return Err(failure_of(response).await);
            }
            let profile: ProfileView = transport::read_json(
                NETWORK,
                response,
                CallEffect::Repeatable,
                "getProfile reply",
            )
            .await?;
            Ok(profile.followers_count)
        }
        .instrument(transport::call_span(NETWORK, "audience_size"))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_netsim::{BlueskyOptions, Fault, Netsim, NetsimOptions};
    use tokio_util::sync::CancellationToken;

    const APP_PASSWORD: &str = "abcd-efgh-ijkl-mnop";

    struct Harness {
        netsim: Netsim,
        base_url: String,
        shutdown: CancellationToken,
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    async fn start_netsim(options: NetsimOptions) -> Harness {
        let netsim = Netsim::new(options);
        let shutdown = CancellationToken::new();
        let address = netsim
            .serve("127.0.0.1:0", shutdown.clone())
            .await
            .expect("netsim binds");
        Harness {
            netsim,
            base_url: format!("http://{address}"),
            shutdown,
        }
    }

    impl Harness {
        fn adapter(&self, request_timeout: Duration) -> Bluesky {
            Bluesky::new(AppCredentials {
                api_base_url: format!("{}/bluesky", self.base_url),
                auth_base_url: format!("{}/bluesky", self.base_url),
                client_id: String::new(),
                client_secret: String::new(),
                redirect_url: String::new(),
                api_version: String::new(),
                request_timeout,
            })
        }

        /// Logs `handle` in; returns the tokens and the DID.
        async fn connect(&self, adapter: &Bluesky, handle: &str) -> (TokenSet, String) {
            let tokens = adapter
                .create_session(handle, APP_PASSWORD)
                .await
                .expect("createSession");
            let did = adapter
                .profile(&tokens.access_token)
                .await
                .expect("getSession")
                .id;
            (tokens, did)
        }

        /// The stored record at `uri`, read over the wire.
        async fn record(&self, uri: &str) -> Value {
            let parts: Vec<&str> = uri.trim_start_matches("at://").split('/').collect();
            reqwest::Client::new()
                .get(format!(
                    "{}/bluesky/xrpc/com.atproto.repo.getRecord",
                    self.base_url
                ))
                .query(&[
                    ("repo", parts[0]),
                    ("collection", parts[1]),
                    ("rkey", parts[2]),
                ])
                .send()
                .await
                .expect("getRecord answers")
                .json()
                .await
                .expect("record json")
        }
    }

    fn share(did: &str, key: &str, text: &str, link: Option<&str>) -> PostRequest {
        PostRequest {
            author_id: did.to_string(),
            text: text.to_string(),
            link_url: link.map(str::to_string),
            image_url: None,
            image_alt: None,
            idempotency_key: key.to_string(),
        }
    }

    const SHARE_KEY: &str = "0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[tokio::test]
    async fn create_session_gives_tokens_and_the_profile_then_refresh_rotates() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));

        let tokens = adapter
            .create_session("Alice.bsky.social", APP_PASSWORD)
            .await
            .expect("createSession");
        let now = chrono::Utc::now();
        let access_expires_at = tokens.access_expires_at.expect("access expiry");
        assert!(access_expires_at > now + chrono::TimeDelta::minutes(119));
        assert!(access_expires_at <= now + chrono::TimeDelta::minutes(121));
        let refresh_expires_at = tokens.refresh_expires_at.expect("refresh expiry");
        assert!(refresh_expires_at > now + chrono::TimeDelta::days(89));
        assert_eq!(tokens.scope.as_deref(), Some("com.atproto.appPass"));

        let profile = adapter
            .profile(&tokens.access_token)
            .await
            .expect("profile");
        assert!(profile.id.starts_with("did:plc:"), "{profile:?}");
        assert_eq!(profile.display_name, "alice.bsky.social");
        let again = adapter
            .create_session("alice.bsky.social", APP_PASSWORD)
            .await
            .expect("second session");
        assert_eq!(
            adapter
                .profile(&again.access_token)
                .await
                .expect("profile")
                .id,
            profile.id,
            "a stable DID per handle"
        );

        let wrong = adapter.create_session("alice.bsky.social", "hunter2").await;
        assert!(
            matches!(&wrong, Err(NetworkError::Unauthorized(message)) if message.contains("Invalid identifier or password")),
            "{wrong:?}"
        );

        let refresh_token = tokens.refresh_token.clone().expect("refresh token");
        let refreshed = adapter.refresh(&refresh_token).await.expect("refresh");
        assert_ne!(refreshed.access_token, tokens.access_token);
        assert_ne!(
            refreshed.refresh_token.as_deref(),
            Some(refresh_token.as_str())
        );
        assert_eq!(
            adapter
                .profile(&refreshed.access_token)
                .await
                .expect("profile")
                .id,
            profile.id
        );
        let spent = adapter.refresh(&refresh_token).await;
        assert!(
            matches!(&spent, Err(NetworkError::Unauthorized(message)) if message.contains("ExpiredToken")),
            "{spent:?}"
        );

        assert_eq!(
            adapter.exchange_code("code", "verifier").await,
            Err(NetworkError::Configuration(
                "bluesky accounts connect with an app password, not an OAuth code".to_string()
            ))
        );
        assert_eq!(adapter.authorize_url("state", "challenge"), "");
    }

    #[tokio::test]
    async fn create_session_is_limited_per_identifier() {
        let options = NetsimOptions {
            bluesky: BlueskyOptions {
                sessions_per_five_minutes: 2,
                ..BlueskyOptions::default()
            },
            ..NetsimOptions::default()
        };
        let harness = start_netsim(options).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        for _ in 0..2 {
            adapter
                .create_session("busy.bsky.social", APP_PASSWORD)
                .await
                .expect("within the limit");
        }
        let third = adapter
            .create_session("busy.bsky.social", APP_PASSWORD)
            .await;
        match third {
            Err(NetworkError::RateLimited {
                retry_after: Some(wait),
                ..
            }) => assert!(wait <= Duration::from_secs(300), "{wait:?}"),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        adapter
            .create_session("other.bsky.social", APP_PASSWORD)
            .await
            .expect("another identifier has its own window");
    }

    #[tokio::test]
    async fn publish_creates_one_post_with_a_byte_range_link_facet_and_a_resend_finds_it() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "bob.bsky.social").await;
        let link = "https://chr.us/s/abc";
        let text = format!("Ça marche 🎉👨‍👩‍👧 déjà! {link} #rust");
        let post = share(&did, SHARE_KEY, &text, Some(link));

        let published = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("publish");
        let rkey = record_key(SHARE_KEY);
        assert_eq!(
            published.external_id,
            format!("at://{did}/app.bsky.feed.post/{rkey}")
        );
        assert_eq!(
            published.url,
            format!("https://bsky.app/profile/{did}/post/{rkey}")
        );
        assert!(!published.already_existed);

        let posts = harness.netsim.posts_of("bluesky");
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].urn, published.external_id);
        assert_eq!(posts[0].author, did);
        assert_eq!(posts[0].commentary, text);

        let stored = harness.record(&published.external_id).await;
        let facet = &stored["value"]["facets"][0];
        let start = facet["index"]["byteStart"].as_u64().expect("start") as usize;
        let end = facet["index"]["byteEnd"].as_u64().expect("end") as usize;
        assert!(
            text[..start].chars().count() < start,
            "multi-byte characters precede"
        );
        assert_eq!(&text.as_bytes()[start..end], link.as_bytes());
        assert_eq!(facet["features"][0]["$type"], LINK_FEATURE);
        assert_eq!(facet["features"][0]["uri"], link);

        let resent = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("a resend is a success");
        assert!(resent.already_existed, "{resent:?}");
        assert_eq!(resent.external_id, published.external_id);
        assert_eq!(harness.netsim.posts_of("bluesky").len(), 1);
    }

    #[tokio::test]
    async fn a_reply_lost_after_accept_is_unknown_and_find_post_reconciles_it() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_millis(300));
        let (tokens, did) = harness.connect(&adapter, "dave.bsky.social").await;
        let post = share(
            &did,
            SHARE_KEY,
            "Held reply https://chr.us/s/held",
            Some("https://chr.us/s/held"),
        );
        assert_eq!(
            adapter
                .find_post(&tokens.access_token, &post)
                .await
                .expect("reconcile"),
            None,
            "absent before any attempt"
        );
        harness.netsim.inject_on(
            "bluesky",
            Fault::HoldAfterAccept {
                hold_ms: 5_000,
                count: 1,
            },
        );

        let attempt = adapter.publish(&tokens.access_token, &post).await;
        assert!(
            matches!(attempt, Err(NetworkError::OutcomeUnknown(_))),
            "{attempt:?}"
        );
        let found = adapter
            .find_post(&tokens.access_token, &post)
            .await
            .expect("reconcile")
            .expect("post found");
        let posts = harness.netsim.posts_of("bluesky");
        assert_eq!(posts.len(), 1, "exactly one post on the network");
        assert_eq!(found.external_id, posts[0].urn);
        assert!(found.already_existed);
    }

    #[tokio::test]
    async fn find_post_falls_back_to_the_repository_listing() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "erin.bsky.social").await;
        let link = "https://chr.us/s/older";
        let published = adapter
            .publish(
                &tokens.access_token,
                &share(&did, "older-key", &format!("Older {link}"), Some(link)),
            )
            .await
            .expect("publish");
        // The same share looked up under another key (an older key scheme): listRecords.
        let found = adapter
            .find_post(
                &tokens.access_token,
                &share(&did, SHARE_KEY, &format!("Older {link}"), Some(link)),
            )
            .await
            .expect("reconcile")
            .expect("found by its link");
        assert_eq!(found.external_id, published.external_id);
    }

    #[tokio::test]
    async fn a_5xx_is_unavailable_and_creates_nothing() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "frank.bsky.social").await;
        harness.netsim.inject_on(
            "bluesky",
            Fault::Status {
                status: 502,
                count: 1,
            },
        );
        let post = share(&did, SHARE_KEY, "Try later", None);
        let attempt = adapter.publish(&tokens.access_token, &post).await;
        assert!(
            matches!(&attempt, Err(NetworkError::Unavailable(message)) if message.contains("UpstreamFailure")),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts_of("bluesky").is_empty());

        let retried = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("the retry with the same key creates it");
        assert!(!retried.already_existed);
        assert_eq!(harness.netsim.posts_of("bluesky").len(), 1);
    }

    #[tokio::test]
    async fn the_write_budget_comes_from_the_headers_and_a_429_says_when_to_retry() {
        let options = NetsimOptions {
            bluesky: BlueskyOptions {
                write_points_per_hour: 7,
                ..BlueskyOptions::default()
            },
            ..NetsimOptions::default()
        };
        let harness = start_netsim(options).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "grace.bsky.social").await;

        let first = adapter
            .publish(&tokens.access_token, &share(&did, "share-a", "One", None))
            .await
            .expect("first");
        let budget = first.budget.expect("budget from RateLimit-* headers");
        assert_eq!((budget.limit, budget.remaining), (7, 4));
        let in_an_hour = chrono::Utc::now() + chrono::TimeDelta::hours(1);
        assert!(budget.resets_at <= in_an_hour);
        assert!(budget.resets_at > in_an_hour - chrono::TimeDelta::minutes(1));
        let second = adapter
            .publish(&tokens.access_token, &share(&did, "share-b", "Two", None))
            .await
            .expect("second");
        assert_eq!(second.budget.expect("budget").remaining, 1);

        let third = adapter
            .publish(&tokens.access_token, &share(&did, "share-c", "Three", None))
            .await;
        match &third {
            Err(NetworkError::RateLimited {
                retry_after: Some(wait),
                message,
            }) => {
                assert!(*wait > Duration::from_secs(3_500), "{wait:?}");
                assert!(*wait <= Duration::from_secs(3_600), "{wait:?}");
                assert_eq!(message, "Rate Limit Exceeded");
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert_eq!(harness.netsim.posts_of("bluesky").len(), 2);
    }

    #[tokio::test]
    async fn an_injected_429_is_rate_limited_with_retry_after() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "heidi.bsky.social").await;
        harness.netsim.inject_on(
            "bluesky",
            Fault::Status {
                status: 429,
                count: 1,
            },
        );
        let attempt = adapter
            .publish(&tokens.access_token, &share(&did, SHARE_KEY, "Burst", None))
            .await;
        assert!(
            matches!(
                attempt,
                Err(NetworkError::RateLimited {
                    retry_after: Some(_),
                    ..
                })
            ),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts_of("bluesky").is_empty());
    }

    #[tokio::test]
    async fn an_expired_or_unknown_token_is_unauthorized() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "ivan.bsky.social").await;
        harness.netsim.expire_tokens_of(&did);

        let published = adapter
            .publish(
                &tokens.access_token,
                &share(&did, SHARE_KEY, "Expired", None),
            )
            .await;
        assert!(
            matches!(&published, Err(NetworkError::Unauthorized(message)) if message.contains("ExpiredToken")),
            "{published:?}"
        );
        let profile = adapter.profile(&tokens.access_token).await;
        assert!(
            matches!(profile, Err(NetworkError::Unauthorized(_))),
            "{profile:?}"
        );
        let unknown = adapter.profile("not-a-token").await;
        assert!(
            matches!(&unknown, Err(NetworkError::Unauthorized(message)) if message.contains("InvalidToken")),
            "{unknown:?}"
        );
        assert!(harness.netsim.posts_of("bluesky").is_empty());

        let refreshed = adapter
            .refresh(tokens.refresh_token.as_deref().expect("refresh"))
            .await
            .expect("the refresh token still works");
        adapter
            .publish(
                &refreshed.access_token,
                &share(&did, SHARE_KEY, "Fresh", None),
            )
            .await
            .expect("published after the refresh");
    }

    #[tokio::test]
    async fn over_300_graphemes_is_invalid_with_the_networks_message() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "judy.bsky.social").await;
        let network_message =
            "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes";

        // 300 graphemes of several code points each pass.
        let fits = "👍🏽".repeat(300);
        adapter
            .publish(
                &tokens.access_token,
                &share(&did, "share-fits", &fits, None),
            )
            .await
            .expect("300 graphemes fit");

        let too_long = adapter
            .publish(
                &tokens.access_token,
                &share(&did, SHARE_KEY, &"e\u{301}".repeat(301), None),
            )
            .await;
        assert_eq!(
            too_long,
            Err(NetworkError::Invalid(network_message.to_string()))
        );

        // The network's own refusal maps to the same class and words.
        let body = format!(r#"{{"error":"InvalidRequest","message":"{network_message}"}}"#);
        assert_eq!(
            classify_failure(
                StatusCode::BAD_REQUEST,
                &HeaderMap::new(),
                &parse_error_body(&body),
                &body
            ),
            NetworkError::Invalid(network_message.to_string())
        );
        assert_eq!(harness.netsim.posts_of("bluesky").len(), 1);
    }

    #[tokio::test]
    async fn metrics_and_audience_come_from_the_app_view() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let (tokens, did) = harness.connect(&adapter, "kim.bsky.social").await;
        let published = adapter
            .publish(
                &tokens.access_token,
                &share(&did, SHARE_KEY, "Counted", None),
            )
            .await
            .expect("publish");
        assert_eq!(
            adapter
                .metrics(&tokens.access_token, &published.external_id)
                .await
                .expect("metrics"),
            PostMetrics::default()
        );

        let encoded: String =
            url::form_urlencoded::byte_serialize(published.external_id.as_bytes()).collect();
        let response = reqwest::Client::new()
            .post(format!(
                "{}/_netsim/posts/{encoded}/metrics",
                harness.base_url
            ))
            .json(&json!({"reactions": 5, "comments": 2, "reshares": 3, "impressions": 40}))
            .send()
            .await
            .expect("control answers");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);

        let metrics = adapter
            .metrics(&tokens.access_token, &published.external_id)
            .await
            .expect("metrics");
        assert_eq!(
            metrics,
            PostMetrics {
                reactions: 5,
                comments: 2,
                reshares: 3,
                impressions: 0,
            }
        );

        let audience = adapter
            .audience_size(&tokens.access_token)
            .await
            .expect("audience");
        assert_eq!(audience, Some(chorus_netsim::network_size(&did)));
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let harness = Harness {
            netsim: Netsim::new(NetsimOptions::default()),
            base_url: format!("http://{address}"),
            shutdown: CancellationToken::new(),
        };
        let adapter = harness.adapter(Duration::from_secs(2));
        let attempt = adapter
            .publish("token", &share("did:plc:x", SHARE_KEY, "Nobody home", None))
            .await;
        assert!(
            matches!(attempt, Err(NetworkError::Unavailable(_))),
            "{attempt:?}"
        );
    }

    #[test]
    fn record_keys_are_stable_tids() {
        let key = record_key(SHARE_KEY);
        assert_eq!(key, record_key(SHARE_KEY));
        assert_eq!(key.len(), 13);
        assert!(key.bytes().all(|byte| TID_ALPHABET.contains(&byte)));
        assert!(matches!(key.as_bytes()[0], b'2'..=b'7' | b'a'..=b'j'));
        assert_ne!(key, record_key("0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"));
        // A UUIDv7 gives its time: a later share sorts after an earlier one.
        assert!(record_key("0196a1b2-c3d5-7000-8000-000000000000") > key);
        let other = record_key("share-1");
        assert_eq!(other.len(), 13);
        assert!(matches!(other.as_bytes()[0], b'2'..=b'7' | b'a'..=b'j'));
    }

    #[test]
    fn the_link_facet_counts_utf8_bytes() {
        let text = "né 🎉 https://l.ink/x";
        let facet = link_facet(text, "https://l.ink/x").expect("facet");
        // "né " is 4 bytes, "🎉 " is 5.
        assert_eq!(facet["index"]["byteStart"], 9);
        assert_eq!(facet["index"]["byteEnd"], 9 + "https://l.ink/x".len());
        assert!(matches!(
            link_facet(text, "https://missing"),
            Err(NetworkError::Invalid(_))
        ));
    }

    #[test]
    fn jwt_claims_are_read_without_padding() {
        assert_eq!(
            base64url_decode("eyJhIjoxfQ").as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(
            jwt_claims("x.eyJleHAiOjE3MDAwMDAwMDB9.y").expect("claims")["exp"],
            1_700_000_000
        );
        assert_eq!(jwt_expiry("opaque"), None);
    }
}
