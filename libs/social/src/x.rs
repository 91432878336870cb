//! X adapter: OAuth 2.0 authorization code with PKCE (S256) and rotating refresh tokens,
//! `GET /2/users/me`, `POST /2/tweets`, the user timeline to reconcile and tweet lookup for
//! public metrics, in the wire format of NETWORKS.md, "2. X (API v2)".
//!
//! X has no idempotency key. A post whose reply was lost is looked for in the author's
//! timeline, where X shows links as t.co: the tracked link is matched through
//! `entities.urls[].expanded_url` (or, without a link, the texts are compared with URLs
//! masked). A resend that X refuses as duplicate content is the earlier attempt: it is
//! looked up the same way and returned with `already_existed`.

use crate::transport::{self, CallEffect};
use crate::{
    AppCredentials, Network, NetworkAdapter, NetworkError, PostMetrics, PostRequest, PostedRef,
    Profile, RateBudget, TokenSet,
};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use std::time::Duration;
use tracing::Instrument;

const NETWORK: Network = Network::X;
const SCOPES: &str = "tweet.read tweet.write users.read offline.access";
/// How far back the timeline is searched for a post whose outcome is unknown.
const RECONCILE_HORIZON: chrono::TimeDelta = chrono::TimeDelta::hours(72);
/// Timeline page size (X allows 5 to 100) and how many pages are read at most.
const RECONCILE_PAGE_SIZE: &str = "100";
const RECONCILE_MAX_PAGES: usize = 5;
/// The rate windows X reports, tightest first when equal.
const WINDOW_PREFIXES: &[&str] = &["x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"];
const QUOTED_BODY_CHARS: usize = 300;

pub struct X {
    credentials: AppCredentials,
    http: reqwest::Client,
}

impl X {
    pub fn new(credentials: AppCredentials) -> X {
        let http = reqwest::Client::builder()
            .timeout(credentials.request_timeout)
            .build()
            .expect("a reqwest client with a timeout always builds");
        X { credentials, http }
    }

    fn auth_url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.credentials.auth_base_url.trim_end_matches('/')
        )
    }

    fn api_url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.credentials.api_base_url.trim_end_matches('/')
        )
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenSet, NetworkError> {
        let mut request = self.http.post(self.api_url("/2/oauth2/token")).form(form);
        // Confidential clients authenticate with HTTP Basic; public ones send client_id only.
        if !self.credentials.client_secret.is_empty() {
            request = request.basic_auth(
                &self.credentials.client_id,
                Some(&self.credentials.client_secret),
            );
        }
        // Codes and (rotating) refresh tokens are spent by the first request X sees.
        let response = transport::send(NETWORK, request, CallEffect::SideEffect).await?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            return Err(classify_token_failure(status, &headers, &body));
        }
        let reply: TokenReply =
            transport::read_json(NETWORK, response, CallEffect::SideEffect, "token reply").await?;
        Ok(reply.into_token_set(chrono::Utc::now()))
    }

    async fn me(&self, access_token: &str, fields: Option<&str>) -> Result<User, NetworkError> {
        let mut request = self
            .http
            .get(self.api_url("/2/users/me"))
            .bearer_auth(access_token);
        if let Some(fields) = fields {
            request = request.query(&[("user.fields", fields)]);
        }
        let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
        let reply: DataReply<User> = read_success(response, "users/me").await?;
        let problems = reply.describe_errors();
        reply.data.ok_or_else(|| {
            NetworkError::Unavailable(format!("x answered users/me without data: {problems}"))
        })
    }

    async fn send_tweet(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        // Images need the v2 media upload first; not implemented, the text goes alone.
        let request = self
            .http
            .post(self.api_url("/2/tweets"))
            .bearer_auth(access_token)
            .json(&serde_json::json!({"text": post.text}));
        let response = transport::send(NETWORK, request, CallEffect::SideEffect).await?;
        let status = response.status();
        let budget = tightest_window(response.headers());
        if status.is_success() {
            let bytes = response.bytes().await.map_err(|error| {
                NetworkError::OutcomeUnknown(format!(
                    "x accepted the post but its reply was lost: {}",
                    transport::error_chain(&error)
                ))
            })?;
            let created: DataReply<CreatedTweet> =
                serde_json::from_slice(&bytes).map_err(|error| {
                    NetworkError::OutcomeUnknown(format!(
                        "x answered {status} with an unreadable body: {error}"
                    ))
                })?;
            let Some(tweet) = created.data else {
                return Err(NetworkError::OutcomeUnknown(format!(
                    "x answered {status} without data.id"
                )));
            };
            tracing::info!(external_id = %tweet.id, "x post created");
            return Ok(PostedRef {
                url: status_url(&tweet.id),
                external_id: tweet.id,
                already_existed: false,
                budget,
            });
        }
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        let problem = parse_problem(&body);
        if status == StatusCode::FORBIDDEN && problem.is_duplicate() {
            // Each Chorus text carries a unique tracked link: the duplicate is this share's
            // earlier attempt. X names no id, so the timeline tells which post it is.
            tracing::info!("x refused a duplicate, looking for the earlier post");
            return match self.search_timeline(access_token, post).await? {
                Some(found) => {
                    tracing::info!(external_id = %found.external_id, "x post already existed");
                    Ok(PostedRef { budget, ..found })
                }
                None => Err(NetworkError::OutcomeUnknown(
                    "x reports duplicate content that the author's timeline does not show yet"
                        .to_string(),
                )),
            };
        }
        Err(classify_failure(status, &headers, &problem, &body).after_creation())
    }

    /// Looks for the post in the author's timeline, newest first, back to the horizon.
    async fn search_timeline(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        let start_time = (chrono::Utc::now() - RECONCILE_HORIZON)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let path = format!("/2/users/{}/tweets", encode_path_segment(&post.author_id));
        let mut pagination_token: Option<String> = None;
        for _ in 0..RECONCILE_MAX_PAGES {
            let mut query = vec![
                ("max_results", RECONCILE_PAGE_SIZE.to_string()),
                ("start_time", start_time.clone()),
                ("tweet.fields", "created_at,text,entities".to_string()),
            ];
            if let Some(token) = pagination_token.take() {
                query.push(("pagination_token", token));
            }
            let request = self
                .http
                .get(self.api_url(&path))
                .bearer_auth(access_token)
                .query(&query);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let page: TimelinePage = read_success(response, "user timeline").await?;
            if let Some(tweet) = page.data.iter().find(|tweet| tweet.is_post(post)) {
                return Ok(Some(PostedRef {
                    url: status_url(&tweet.id),
                    external_id: tweet.id.clone(),
                    already_existed: true,
                    budget: None,
                }));
            }
            match page.meta.and_then(|meta| meta.next_token) {
                Some(next) => pagination_token = Some(next),
                None => return Ok(None),
            }
        }
        Err(NetworkError::OutcomeUnknown(format!(
            "x: the post is not among the author's newest {} posts; older ones were not read",
            RECONCILE_MAX_PAGES * 100
        )))
    }
}

fn status_url(id: &str) -> String {
    // The username is not known here; this form of the URL needs none.
    format!("https://x.com/i/web/status/{id}")
}

/// A read's body when the status is a success, else its classified failure.
async fn read_success<T: serde::de::DeserializeOwned>(
    response: Response,
    what: &str,
) -> Result<T, NetworkError> {
    let status = response.status();
    if !status.is_success() {
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        return Err(classify_failure(
            status,
            &headers,
            &parse_problem(&body),
            &body,
        ));
    }
    transport::read_json(NETWORK, response, CallEffect::Repeatable, what).await
}

/// X's error bodies: the API's problem (`title`, `detail`, `type`, `status`), the
/// validation shape (`errors[].message`) and OAuth's `{error, error_description}`.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    errors: Vec<ProblemError>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ProblemError {
    message: Option<String>,
    detail: Option<String>,
}

fn parse_problem(body: &str) -> Problem {
    serde_json::from_str(body).unwrap_or_default()
}

impl Problem {
    fn is_duplicate(&self) -> bool {
        self.detail
            .as_deref()
            .is_some_and(|detail| detail.to_ascii_lowercase().contains("duplicate content"))
    }

    /// X's own words, for the error shown to the advocate.
    fn describe(&self, status: StatusCode, raw_body: &str) -> String {
        let messages: Vec<&str> = self
            .errors
            .iter()
            .filter_map(|error| error.message.as_deref().or(error.detail.as_deref()))
            .filter(|message| !message.is_empty())
            .collect();
        if !messages.is_empty() {
            return messages.join("; ");
        }
        let words = self
            .detail
            .as_deref()
            .or(self.error_description.as_deref())
            .or(self.title.as_deref())
            .or(self.error.as_deref())
            .filter(|words| !words.is_empty());
        match words {
            Some(words) => words.to_string(),
            None if !raw_body.trim().is_empty() => {
                raw_body.trim().chars().take(QUOTED_BODY_CHARS).collect()
            }
            None => status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string(),
        }
    }
}

/// The windows X reported (`x-rate-limit-*`, `x-user-limit-24hour-*`,
/// `x-app-limit-24hour-*`), each with its reset in Unix seconds.
fn reported_windows(headers: &HeaderMap) -> Vec<RateBudget> {
    let number = |name: String| -> Option<i64> {
        headers
            .get(name.as_str())?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    WINDOW_PREFIXES
        .iter()
        .filter_map(|prefix| {
            let limit = u32::try_from(number(format!("{prefix}-limit"))?).ok()?;
            let remaining = u32::try_from(number(format!("{prefix}-remaining"))?.max(0)).ok()?;
            // Whole seconds, rounded down by X: the window is over by the next second.
            let resets_at =
                chrono::DateTime::from_timestamp(number(format!("{prefix}-reset"))? + 1, 0)?;
            Some(RateBudget {
                limit,
                remaining,
                resets_at,
                reset_precision: std::time::Duration::from_secs(1),
            })
        })
        .collect()
}

/// The window that will refuse first: least remaining, the later reset on a tie.
fn tightest_window(headers: &HeaderMap) -> Option<RateBudget> {
    reported_windows(headers)
        .into_iter()
        .min_by_key(|window| (window.remaining, std::cmp::Reverse(window.resets_at)))
}

/// How long to wait after a 429. X sends no Retry-After: the wait runs to the reset of
/// the spent window (the latest one when several are spent), else of `x-rate-limit`.
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    if let Some(seconds) = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(seconds));
    }
    let windows = reported_windows(headers);
    let reset = windows
        .iter()
        .filter(|window| window.remaining == 0)
        .map(|window| window.resets_at)
        .max()
        .or_else(|| windows.first().map(|window| window.resets_at))?;
    let wait = (reset - now).num_milliseconds().max(0) as u64;
    // Resets are whole seconds: round up so the retry lands after the reset.
    Some(Duration::from_secs(wait.div_ceil(1_000)))
}

/// Maps an API error status to the publisher's classes.
fn classify_failure(
    status: StatusCode,
    headers: &HeaderMap,
    problem: &Problem,
    raw_body: &str,
) -> NetworkError {
    let message = problem.describe(status, raw_body);
    if status.is_server_error() {
        return NetworkError::Unavailable(message);
    }
    match status {
        StatusCode::UNAUTHORIZED => NetworkError::Unauthorized(message),
        StatusCode::FORBIDDEN => NetworkError::Forbidden(message),
        StatusCode::TOO_MANY_REQUESTS => {
            let message = match problem.kind.as_deref() {
                Some(kind) if kind.ends_with("/usage-capped") => {
                    format!("{message} (monthly usage cap)")
                }
                _ => message,
            };
            NetworkError::RateLimited {
                retry_after: retry_after(headers, chrono::Utc::now()),
                message,
            }
        }
        _ => NetworkError::Invalid(message),
    }
}

/// Maps a token endpoint refusal: a bad code or refresh token (X answers `invalid_request`
/// "Value passed for the token was invalid.") means the member must consent again; a
/// refused client is our configuration.
fn classify_token_failure(status: StatusCode, headers: &HeaderMap, raw_body: &str) -> NetworkError {
    let problem = parse_problem(raw_body);
    let message = problem.describe(status, raw_body);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return classify_failure(status, headers, &problem, raw_body);
    }
    match problem.error.as_deref() {
        Some("invalid_request" | "invalid_grant") => NetworkError::Unauthorized(message),
        Some("invalid_client" | "unauthorized_client") => NetworkError::Configuration(message),
        _ => classify_failure(status, headers, &problem, raw_body),
    }
}

/// Percent-encodes one path segment.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn same_url(left: &str, right: &str) -> bool {
    left.trim_end_matches('/') == right.trim_end_matches('/')
}

/// The text with every `http(s)://` URL replaced by one placeholder and whitespace
/// collapsed, so a t.co form and the original compare equal.
fn masked(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let Some(start) = lower.find("https://").or_else(|| lower.find("http://")) else {
                return word.to_string();
            };
            let trailing_start = word
                .trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"', ')'])
                .len()
                .max(start);
            format!("{}\u{1}{}", &word[..start], &word[trailing_start..])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

impl TokenReply {
    fn into_token_set(self, now: chrono::DateTime<chrono::Utc>) -> TokenSet {
        TokenSet {
            access_expires_at: self
                .expires_in
                .map(|seconds| now + chrono::TimeDelta::seconds(seconds)),
            // X does not say how long refresh tokens live; each is spent by its use.
            refresh_expires_at: None,
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            scope: self.scope,
        }
    }
}

/// `{"data": …, "errors": […]}`: lookups answer 200 with `errors` for missing items.
#[derive(Debug, Deserialize)]
struct DataReply<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<ProblemError>,
}

impl<T> DataReply<T> {
    fn describe_errors(&self) -> String {
        let details: Vec<&str> = self
            .errors
            .iter()
            .filter_map(|error| error.detail.as_deref().or(error.message.as_deref()))
            .collect();
        if details.is_empty() {
            "no error given".to_string()
        } else {
            details.join("; ")
        }
    }
}

#[derive(Debug, Deserialize)]
struct CreatedTweet {
    id: String,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    name: Option<String>,
    username: Option<String>,
    public_metrics: Option<UserMetrics>,
}

#[derive(Debug, Deserialize)]
struct UserMetrics {
    followers_count: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct TimelinePage {
    #[serde(default)]
    data: Vec<Tweet>,
    meta: Option<TimelineMeta>,
}

#[derive(Debug, Default, Deserialize)]
struct TimelineMeta {
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tweet {
    id: String,
    #[serde(default)]
    text: String,
    entities: Option<Entities>,
    public_metrics: Option<TweetMetrics>,
}

#[derive(Debug, Default, Deserialize)]
struct Entities {
    #[serde(default)]
    urls: Vec<UrlEntity>,
}

#[derive(Debug, Deserialize)]
struct UrlEntity {
    url: String,
    expanded_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TweetMetrics {
    #[serde(default)]
    like_count: i64,
    #[serde(default)]
    reply_count: i64,
    #[serde(default)]
    retweet_count: i64,
    #[serde(default)]
    quote_count: i64,
    #[serde(default)]
    impression_count: i64,
}

impl Tweet {
    fn urls(&self) -> &[UrlEntity] {
        self.entities
            .as_ref()
            .map(|entities| entities.urls.as_slice())
            .unwrap_or_default()
    }

    /// The text with t.co links mapped back to the URLs they stand for.
    fn expanded_text(&self) -> String {
        let mut text = self.text.clone();
        for url in self.urls() {
            if let Some(expanded) = &url.expanded_url {
                text = text.replace(&url.url, expanded);
            }
        }
        unescape_html(&text)
    }

    /// Whether this tweet is the share's post: it links to the share's tracked link
    /// (unique per share), or, for a post without one, its text matches with URLs masked.
    fn is_post(&self, post: &PostRequest) -> bool {
        let expanded = self.expanded_text();
        match post.link_url.as_deref().filter(|link| !link.is_empty()) {
            Some(link) => {
                self.urls().iter().any(|url| {
                    url.expanded_url
                        .as_deref()
                        .is_some_and(|expanded| same_url(expanded, link))
                }) || expanded.contains(link)
            }
            None => masked(&expanded) == masked(&post.text),
        }
    }
}

#[async_trait::async_trait]
impl NetworkAdapter for X {
    fn network(&self) -> Network {
        Network::X
    }

    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("redirect_uri", &self.credentials.redirect_url)
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}?{query}", self.auth_url("/i/oauth2/authorize"))
    }

    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, NetworkError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.credentials.redirect_url.as_str()),
            ("code_verifier", code_verifier),
            ("client_id", self.credentials.client_id.as_str()),
        ];
        self.token_call(&form)
            .instrument(transport::call_span(NETWORK, "exchange_code"))
            .await
    }

    /// Refresh tokens rotate: the returned set carries the new one, which must replace the
    /// old (refused from now on).
    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, NetworkError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", self.credentials.client_id.as_str()),
        ];
        self.token_call(&form)
            .instrument(transport::call_span(NETWORK, "refresh"))
            .await
    }

    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError> {
        async {
            let user = self.me(access_token, None).await?;
            let display_name = user
                .name
                .filter(|name| !name.trim().is_empty())
                .or(user.username.map(|username| format!("@{username}")))
                .unwrap_or_else(|| user.id.clone());
            Ok(Profile {
                id: user.id,
                display_name,
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
        self.send_tweet(access_token, post)
            .instrument(transport::call_span(NETWORK, "publish"))
            .await
    }

    /// Reads the author's timeline (`GET /2/users/{id}/tweets`, newest first, from
    /// `start_time` 72 h back): `None` when the timeline confirms the post is absent.
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        self.search_timeline(access_token, post)
            .instrument(transport::call_span(NETWORK, "find_post"))
            .await
    }

    /// `public_metrics`: likes, replies, retweets plus quotes, impressions.
    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError> {
        async {
            let path = format!("/2/tweets/{}", encode_path_segment(external_id));
            let request = self
                .http
                .get(self.api_url(&path))
                .bearer_auth(access_token)
                .query(&[("tweet.fields", "public_metrics")]);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let reply: DataReply<Tweet> = read_success(response, "tweet lookup").await?;
            let Some(tweet) = reply.data else {
                // Deleted, or never existed: X answers 200 with a "Not Found Error".
                return Err(NetworkError::Invalid(reply.describe_errors()));
            };
            let counters = tweet.public_metrics.unwrap_or_default();
            Ok(PostMetrics {
                reactions: counters.like_count,
                comments: counters.reply_count,
                reshares: counters.retweet_count + counters.quote_count,
                impressions: counters.impression_count,
            })
        }
        .instrument(transport::call_span(NETWORK, "metrics"))
        .await
    }

    /// Followers, from `GET /2/users/me?user.fields=public_metrics`.
    async fn audience_size(&self, access_token: &str) -> Result<Option<i64>, NetworkError> {
        async {
            let user = self.me(access_token, Some("public_metrics")).await?;
            Ok(user
                .public_metrics
                .and_then(|metrics| metrics.followers_count))
        }
        .instrument(transport::call_span(NETWORK, "audience_size"))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chorus_netsim::{Fault, Netsim, NetsimOptions, XOptions};
    use sha2::{Digest, Sha256};
    use tokio_util::sync::CancellationToken;

    const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefghij";

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
        fn adapter(&self, request_timeout: Duration) -> X {
            X::new(AppCredentials {
                api_base_url: format!("{}/x", self.base_url),
                auth_base_url: format!("{}/x/", self.base_url),
                client_id: "chorus-test".to_string(),
                client_secret: "test-secret".to_string(),
                redirect_url: "http://127.0.0.1:9/oauth/callback".to_string(),
                api_version: String::new(),
                request_timeout,
            })
        }

        async fn consent(&self, adapter: &X, member_id: &str) -> String {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
            let url = format!(
                "{}&member={member_id}",
                adapter.authorize_url("state-7", &challenge)
            );
            let browser = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let response = browser.get(url).send().await.expect("authorize answers");
            assert_eq!(response.status(), StatusCode::FOUND);
            let location = url::Url::parse(response.headers()["location"].to_str().expect("ascii"))
                .expect("absolute");
            let pairs: std::collections::HashMap<_, _> =
                location.query_pairs().into_owned().collect();
            assert_eq!(pairs["state"], "state-7");
            pairs["code"].clone()
        }

        async fn connect(&self, adapter: &X, member_id: &str) -> TokenSet {
            let code = self.consent(adapter, member_id).await;
            adapter
                .exchange_code(&code, VERIFIER)
                .await
                .expect("code exchange")
        }

        /// Adds engagement through netsim's HTTP control, as a test operator would.
        async fn add_metrics(&self, id: &str, metrics: serde_json::Value) {
            let response = reqwest::Client::new()
                .post(format!("{}/_netsim/posts/{id}/metrics", self.base_url))
                .json(&metrics)
                .send()
                .await
                .expect("control answers");
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    }

    fn share(author_id: &str, text: &str, link: &str) -> PostRequest {
        PostRequest {
            author_id: author_id.to_string(),
            text: text.to_string(),
            link_url: Some(link.to_string()),
            image_url: None,
            image_alt: None,
            idempotency_key: format!("share-{link}"),
        }
    }

    #[tokio::test]
    async fn x_oauth_code_with_pkce_then_profile_and_rotating_refresh() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let code = harness.consent(&adapter, "alice").await;

        let tokens = adapter
            .exchange_code(&code, VERIFIER)
            .await
            .expect("exchange");
        assert_eq!(tokens.scope.as_deref(), Some(SCOPES));
        let expires_at = tokens.access_expires_at.expect("2 h access token");
        let lifetime = expires_at - chrono::Utc::now();
        assert!(
            lifetime > chrono::TimeDelta::minutes(119) && lifetime <= chrono::TimeDelta::hours(2),
            "{lifetime}"
        );
        let first_refresh = tokens.refresh_token.clone().expect("offline.access");

        let reused = adapter.exchange_code(&code, VERIFIER).await;
        assert!(
            matches!(reused, Err(NetworkError::Unauthorized(_))),
            "{reused:?}"
        );
        let wrong_verifier = adapter
            .exchange_code(
                &harness.consent(&adapter, "alice").await,
                "another-verifier",
            )
            .await;
        assert!(
            matches!(wrong_verifier, Err(NetworkError::Unauthorized(_))),
            "{wrong_verifier:?}"
        );

        let profile = adapter
            .profile(&tokens.access_token)
            .await
            .expect("profile");
        assert_eq!(
            profile,
            Profile {
                id: "alice".to_string(),
                display_name: "Member alice".to_string(),
            }
        );
        let audience = adapter
            .audience_size(&tokens.access_token)
            .await
            .expect("users/me public_metrics");
        assert_eq!(audience, Some(chorus_netsim::network_size("alice")));

        let refreshed = adapter.refresh(&first_refresh).await.expect("refresh");
        let second_refresh = refreshed.refresh_token.clone().expect("rotated");
        assert_ne!(second_refresh, first_refresh);
        assert_ne!(refreshed.access_token, tokens.access_token);
        assert_eq!(
            adapter
                .profile(&refreshed.access_token)
                .await
                .expect("profile")
                .id,
            "alice"
        );
        // The spent refresh token is refused; the new one works once.
        let replayed = adapter.refresh(&first_refresh).await;
        assert!(
            matches!(&replayed, Err(NetworkError::Unauthorized(message)) if message.contains("token was invalid")),
            "{replayed:?}"
        );
        adapter
            .refresh(&second_refresh)
            .await
            .expect("rotated token works");
    }

    #[tokio::test]
    async fn x_publish_creates_one_post_and_a_resend_is_the_same_post() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "bob").await;
        let post = share(
            "bob",
            "Our launch & more: https://chr.us/s/bob1 #rust",
            "https://chr.us/s/bob1",
        );

        let published = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("publish");
        assert!(!published.already_existed);
        assert_eq!(
            published.url,
            format!("https://x.com/i/web/status/{}", published.external_id)
        );
        let budget = published.budget.expect("x-rate-limit headers");
        // The 15-minute window and the user's 24 h cap both stand at 100: one is spent.
        assert_eq!((budget.limit, budget.remaining), (100, 99));
        assert!(budget.resets_at > chrono::Utc::now() + chrono::TimeDelta::minutes(14));

        let posts = harness.netsim.posts_of("x");
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].urn, published.external_id);
        assert_eq!(posts[0].commentary, post.text);

        // X refuses the resend as duplicate content; the adapter finds the first post.
        let resent = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("a duplicate is the earlier post");
        assert!(resent.already_existed);
        assert_eq!(resent.external_id, published.external_id);
        assert_eq!(resent.budget.expect("headers").remaining, 98);
        assert_eq!(harness.netsim.posts_of("x").len(), 1);
    }

    #[tokio::test]
    async fn x_reply_lost_after_accept_is_unknown_and_find_post_reconciles_it() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_millis(300));
        let tokens = harness.connect(&adapter, "dave").await;
        // Other posts of the author, one with a similar text, must not be taken for it.
        for number in 0..3 {
            let other = share(
                "dave",
                &format!("Held reply https://chr.us/s/other{number}"),
                &format!("https://chr.us/s/other{number}"),
            );
            adapter
                .publish(&tokens.access_token, &other)
                .await
                .expect("other post");
        }
        let post = share(
            "dave",
            "Held reply https://chr.us/s/held",
            "https://chr.us/s/held",
        );
        assert_eq!(
            adapter
                .find_post(&tokens.access_token, &post)
                .await
                .expect("timeline"),
            None,
            "the timeline confirms the post is absent before it exists"
        );
        harness.netsim.inject_on(
            "x",
            Fault::HoldAfterAccept {
                hold_ms: 3_000,
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
        let posts = harness.netsim.posts_of("x");
        assert_eq!(posts.len(), 4, "exactly one post for the share");
        assert_eq!(found.external_id, posts[3].urn);
        assert!(found.already_existed);

        // Without a tracked link the texts are compared with URLs masked.
        let unlinked = PostRequest {
            link_url: None,
            ..post.clone()
        };
        let by_text = adapter
            .find_post(&tokens.access_token, &unlinked)
            .await
            .expect("reconcile")
            .expect("found by masked text");
        assert!(
            [posts[3].urn.clone(), posts[2].urn.clone()].contains(&by_text.external_id),
            "masked texts match a post of the same shape"
        );
    }

    #[tokio::test]
    async fn x_503_to_a_post_is_an_unknown_outcome() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "frank").await;
        harness.netsim.inject_on(
            "x",
            Fault::Status {
                status: 503,
                count: 1,
            },
        );
        let attempt = adapter
            .publish(
                &tokens.access_token,
                &share(
                    "frank",
                    "Try later https://chr.us/s/f",
                    "https://chr.us/s/f",
                ),
            )
            .await;
        assert!(
            matches!(&attempt, Err(NetworkError::OutcomeUnknown(message)) if message == "Service Unavailable"),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts_of("x").is_empty());
    }

    #[tokio::test]
    async fn x_429_is_rate_limited_until_the_reset_header() {
        let options = NetsimOptions {
            x: XOptions {
                tweets_per_window: 2,
                ..XOptions::default()
            },
            ..NetsimOptions::default()
        };
        let harness = start_netsim(options).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "grace").await;
        let post = |number: u32| {
            share(
                "grace",
                &format!("Post {number} https://chr.us/s/g{number}"),
                &format!("https://chr.us/s/g{number}"),
            )
        };

        adapter
            .publish(&tokens.access_token, &post(1))
            .await
            .expect("first");
        let second = adapter
            .publish(&tokens.access_token, &post(2))
            .await
            .expect("second");
        let budget = second.budget.expect("budget");
        assert_eq!(
            (budget.limit, budget.remaining),
            (2, 0),
            "the window is the tightest"
        );

        let third = adapter.publish(&tokens.access_token, &post(3)).await;
        let Err(NetworkError::RateLimited {
            retry_after: Some(wait),
            message,
        }) = third
        else {
            panic!("expected a rate limit with a wait: {third:?}");
        };
        assert_eq!(message, "Too Many Requests");
        assert!(
            wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60 + 1),
            "{wait:?}"
        );
        assert_eq!(harness.netsim.posts_of("x").len(), 2);

        // An injected burst answers 429 with the window spent, and no Retry-After.
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "heidi").await;
        harness.netsim.inject_on(
            "x",
            Fault::Status {
                status: 429,
                count: 1,
            },
        );
        let burst = adapter.publish(&tokens.access_token, &post(4)).await;
        assert!(
            matches!(burst, Err(NetworkError::RateLimited { retry_after: Some(wait), .. }) if wait > Duration::from_secs(14 * 60)),
            "{burst:?}"
        );
        assert!(harness.netsim.posts_of("x").is_empty());
    }

    #[tokio::test]
    async fn x_expired_token_is_unauthorized() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "carol").await;
        harness.netsim.expire_tokens_of("carol");

        let published = adapter
            .publish(
                &tokens.access_token,
                &share("carol", "Expired https://chr.us/s/c", "https://chr.us/s/c"),
            )
            .await;
        assert!(
            matches!(&published, Err(NetworkError::Unauthorized(message)) if message == "Unauthorized"),
            "{published:?}"
        );
        let profile = adapter.profile(&tokens.access_token).await;
        assert!(
            matches!(profile, Err(NetworkError::Unauthorized(_))),
            "{profile:?}"
        );
        assert!(harness.netsim.posts_of("x").is_empty());
    }

    #[tokio::test]
    async fn x_over_length_text_is_invalid_with_x_message() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "ivan").await;
        let link = format!("https://chr.us/s/{}", "l".repeat(60));

        // 256 characters, a space and a URL counted as 23: exactly 280.
        let fits = share("ivan", &format!("{} {link}", "a".repeat(256)), &link);
        adapter
            .publish(&tokens.access_token, &fits)
            .await
            .expect("280 weighted characters fit");

        let too_long = share("ivan", &format!("{} {link}", "b".repeat(257)), &link);
        let refused = adapter.publish(&tokens.access_token, &too_long).await;
        assert!(
            matches!(&refused, Err(NetworkError::Invalid(message)) if message.starts_with("Your Tweet text is too long")),
            "{refused:?}"
        );
        // CJK weighs 2: 141 characters are 282.
        let cjk = share("ivan", &"字".repeat(141), &link);
        let refused = adapter.publish(&tokens.access_token, &cjk).await;
        assert!(
            matches!(refused, Err(NetworkError::Invalid(_))),
            "{refused:?}"
        );
        assert_eq!(harness.netsim.posts_of("x").len(), 1);
    }

    #[tokio::test]
    async fn x_metrics_reflect_engagement_added_in_netsim() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "judy").await;
        let published = adapter
            .publish(
                &tokens.access_token,
                &share("judy", "Counting https://chr.us/s/j", "https://chr.us/s/j"),
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

        harness
            .add_metrics(
                &published.external_id,
                serde_json::json!({"reactions": 7, "comments": 3, "reshares": 2, "impressions": 450}),
            )
            .await;
        let metrics = adapter
            .metrics(&tokens.access_token, &published.external_id)
            .await
            .expect("metrics");
        assert_eq!(
            metrics,
            PostMetrics {
                reactions: 7,
                comments: 3,
                reshares: 2,
                impressions: 450,
            }
        );

        let missing = adapter.metrics(&tokens.access_token, "12345").await;
        assert!(
            matches!(&missing, Err(NetworkError::Invalid(message)) if message.contains("Could not find tweet")),
            "{missing:?}"
        );
    }

    #[test]
    fn retry_after_runs_to_the_reset_of_the_spent_window() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-limit", "100".parse().expect("value"));
        headers.insert("x-rate-limit-remaining", "40".parse().expect("value"));
        headers.insert("x-rate-limit-reset", "1800000600".parse().expect("value"));
        headers.insert("x-user-limit-24hour-limit", "100".parse().expect("value"));
        headers.insert("x-user-limit-24hour-remaining", "0".parse().expect("value"));
        headers.insert(
            "x-user-limit-24hour-reset",
            "1800030000".parse().expect("value"),
        );
        // The reset second is over one second after the second it names.
        assert_eq!(
            retry_after(&headers, now),
            Some(Duration::from_secs(30_001))
        );
        let tightest = tightest_window(&headers).expect("window");
        assert_eq!((tightest.limit, tightest.remaining), (100, 0));

        headers.insert(
            "x-user-limit-24hour-remaining",
            "60".parse().expect("value"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(601)));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn masking_ignores_url_forms_and_whitespace() {
        assert_eq!(
            masked("Look https://t.co/abc123XYZ0!  now"),
            masked("Look https://chr.us/s/abc!\nnow")
        );
        assert_ne!(masked("Look https://t.co/a"), masked("See https://t.co/a"));
    }

    #[test]
    fn the_authorize_url_asks_for_a_code_with_pkce_and_offline_access() {
        let adapter = X::new(AppCredentials {
            api_base_url: "https://api.x.com".to_string(),
            auth_base_url: "https://x.com".to_string(),
            client_id: "client".to_string(),
            client_secret: "secret".to_string(),
            redirect_url: "https://chorus.example/oauth/callback".to_string(),
            api_version: String::new(),
            request_timeout: Duration::from_secs(5),
        });
        let url = url::Url::parse(&adapter.authorize_url("s1", "challenge")).expect("absolute");
        assert_eq!(url.host_str(), Some("x.com"));
        assert_eq!(url.path(), "/i/oauth2/authorize");
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["scope"], SCOPES);
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert_eq!(pairs["state"], "s1");
    }
}
