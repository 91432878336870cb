//! Mastodon adapter: OAuth code with PKCE (S256) on the member's instance, tokens that
//! never expire (revoked only, so there is no refresh), `verify_credentials`,
//! `POST /api/v1/statuses` with `Idempotency-Key`, the account's statuses to reconcile and
//! the Status counters for metrics, in the wire format of NETWORKS.md, "5. Mastodon".
//!
//! Two guards keep a share from being posted twice:
//! - every publish sends the share's stable `idempotency_key` as `Idempotency-Key`, which
//!   the instance honours for an hour: a resend within the hour returns the first status
//!   instead of creating another (reported with `already_existed` when that status is
//!   older than the request);
//! - `find_post` reads the account's statuses (`Link`-paginated, 72 h back) and finds the
//!   one linking to the share's tracked link, which works at any age. When it confirms the
//!   post is absent, the publisher's resend still carries the key, so a post that landed
//!   between the listing and the resend is returned, not duplicated.

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

const NETWORK: Network = Network::Mastodon;
const SCOPES: &str = "write:statuses write:media read:statuses profile";
/// How far back the account's statuses are searched for a post whose outcome is unknown.
const RECONCILE_HORIZON: chrono::TimeDelta = chrono::TimeDelta::hours(72);
/// Statuses per page (Mastodon's maximum) and how many pages are read at most.
const RECONCILE_PAGE_SIZE: &str = "40";
const RECONCILE_MAX_PAGES: usize = 10;
/// A returned status older than the request by more than this came from the
/// idempotency memory: it already existed.
const CLOCK_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::seconds(1);
const QUOTED_BODY_CHARS: usize = 300;

pub struct Mastodon {
    credentials: AppCredentials,
    http: reqwest::Client,
}

impl Mastodon {
    pub fn new(credentials: AppCredentials) -> Mastodon {
        let http = reqwest::Client::builder()
            .timeout(credentials.request_timeout)
            .build()
            .expect("a reqwest client with a timeout always builds");
        Mastodon { credentials, http }
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

    async fn verify_credentials(&self, access_token: &str) -> Result<Account, NetworkError> {
        let request = self
            .http
            .get(self.api_url("/api/v1/accounts/verify_credentials"))
            .bearer_auth(access_token);
        let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
        read_success(response, "account").await
    }

    async fn send_status(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        let sent_at = chrono::Utc::now();
        // Images need `POST /api/v2/media` first; not implemented, the text goes alone.
        let request = self
            .http
            .post(self.api_url("/api/v1/statuses"))
            .bearer_auth(access_token)
            .header("Idempotency-Key", &post.idempotency_key)
            .json(&serde_json::json!({"status": post.text, "visibility": "public"}));
        let response = transport::send(NETWORK, request, CallEffect::SideEffect).await?;
        let status = response.status();
        let budget = reported_budget(response.headers());
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            return Err(classify_failure(status, &headers, &body).after_creation());
        }
        let bytes = response.bytes().await.map_err(|error| {
            NetworkError::OutcomeUnknown(format!(
                "mastodon accepted the status but its reply was lost: {}",
                transport::error_chain(&error)
            ))
        })?;
        let created: Status = serde_json::from_slice(&bytes).map_err(|error| {
            NetworkError::OutcomeUnknown(format!(
                "mastodon answered {status} with an unreadable status: {error}"
            ))
        })?;
        let already_existed = created
            .created_at()
            .is_some_and(|created_at| created_at < sent_at - CLOCK_TOLERANCE);
        tracing::info!(external_id = %created.id, already_existed, "mastodon status posted");
        Ok(PostedRef {
            budget,
            ..self.posted_ref(created, already_existed)
        })
    }

    fn posted_ref(&self, status: Status, already_existed: bool) -> PostedRef {
        let url = status
            .url
            .clone()
            .or(status.uri.clone())
            .unwrap_or_else(|| self.api_url(&format!("/statuses/{}", status.id)));
        PostedRef {
            external_id: status.id,
            url,
            already_existed,
            budget: None,
        }
    }

    /// Pages through the account's statuses (newest first) back to the horizon.
    async fn search_statuses(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        let horizon = chrono::Utc::now() - RECONCILE_HORIZON;
        let first = reqwest::Url::parse_with_params(
            &self.api_url(&format!(
                "/api/v1/accounts/{}/statuses",
                encode_path_segment(&post.author_id)
            )),
            &[
                ("limit", RECONCILE_PAGE_SIZE),
                ("exclude_replies", "true"),
                ("exclude_reblogs", "true"),
            ],
        )
        .map_err(|error| {
            NetworkError::Configuration(format!("mastodon base URL is not a URL: {error}"))
        })?;
        let mut page_url = Some(first);
        for _ in 0..RECONCILE_MAX_PAGES {
            let Some(url) = page_url.take() else {
                return Ok(None);
            };
            let request = self.http.get(url.clone()).bearer_auth(access_token);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let next = next_link(response.headers());
            let statuses: Vec<Status> = read_success(response, "account statuses").await?;
            if let Some(found) = statuses.iter().find(|status| status.is_post(post)) {
                return Ok(Some(self.posted_ref(found.clone(), true)));
            }
            let past_horizon = statuses
                .last()
                .and_then(Status::created_at)
                .is_some_and(|oldest| oldest < horizon);
            if statuses.is_empty() || past_horizon {
                return Ok(None);
            }
            match next {
                // The token goes to the instance only, never to another origin.
                Some(next) if next.origin() == url.origin() => page_url = Some(next),
                Some(next) => {
                    return Err(NetworkError::OutcomeUnknown(format!(
                        "mastodon paginated to another origin ({}); not followed",
                        next.origin().ascii_serialization()
                    )));
                }
                None => return Ok(None),
            }
        }
        Err(NetworkError::OutcomeUnknown(format!(
            "mastodon: the status is not among the account's newest {} statuses; older ones were not read",
            RECONCILE_MAX_PAGES * 40
        )))
    }
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
        return Err(classify_failure(status, &headers, &body));
    }
    transport::read_json(NETWORK, response, CallEffect::Repeatable, what).await
}

/// `{"error": …}` (API) or `{"error", "error_description"}` (OAuth).
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

impl ErrorBody {
    fn parse(body: &str) -> ErrorBody {
        serde_json::from_str(body).unwrap_or_default()
    }

    /// The instance's own words, for the error shown to the advocate.
    fn describe(&self, status: StatusCode, raw_body: &str) -> String {
        match self
            .error_description
            .as_deref()
            .or(self.error.as_deref())
            .filter(|words| !words.is_empty())
        {
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

/// `X-RateLimit-*`: the tightest of the limits that apply (ISO-8601 reset).
fn reported_budget(headers: &HeaderMap) -> Option<RateBudget> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let limit = text("x-ratelimit-limit")?.parse().ok()?;
    let remaining = text("x-ratelimit-remaining")?.parse::<i64>().ok()?.max(0);
    let resets_at = chrono::DateTime::parse_from_rfc3339(text("x-ratelimit-reset")?)
        .ok()?
        .with_timezone(&chrono::Utc);
    Some(RateBudget {
        limit,
        remaining: u32::try_from(remaining).ok()?,
        resets_at,
        reset_precision: std::time::Duration::ZERO,
    })
}

/// Retry-After when sent, else the time left to `X-RateLimit-Reset`.
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    if let Some(seconds) = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(seconds));
    }
    let reset = reported_budget(headers)?.resets_at;
    let wait = (reset - now).num_milliseconds().max(0) as u64;
    Some(Duration::from_millis(wait))
}

fn classify_failure(status: StatusCode, headers: &HeaderMap, raw_body: &str) -> NetworkError {
    let message = ErrorBody::parse(raw_body).describe(status, raw_body);
    if status.is_server_error() {
        return NetworkError::Unavailable(message);
    }
    match status {
        StatusCode::UNAUTHORIZED => NetworkError::Unauthorized(message),
        StatusCode::FORBIDDEN => NetworkError::Forbidden(message),
        StatusCode::TOO_MANY_REQUESTS => NetworkError::RateLimited {
            retry_after: retry_after(headers, chrono::Utc::now()),
            message,
        },
        // 422 validation, 404 record not found, 400 bad parameters.
        _ => NetworkError::Invalid(message),
    }
}

fn classify_token_failure(status: StatusCode, headers: &HeaderMap, raw_body: &str) -> NetworkError {
    let body = ErrorBody::parse(raw_body);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return classify_failure(status, headers, raw_body);
    }
    let message = body.describe(status, raw_body);
    match body.error.as_deref() {
        Some("invalid_grant") => NetworkError::Unauthorized(message),
        Some("invalid_client" | "unauthorized_client") => NetworkError::Configuration(message),
        _ => classify_failure(status, headers, raw_body),
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<reqwest::Url> {
    let value = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| param.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| reqwest::Url::parse(target).ok()).flatten()
    })
}

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

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The plain text of a status's `content` HTML.
fn content_text(html: &str) -> String {
    let spaced = html
        .replace("</p><p>", "\n\n")
        .replace("<br />", "\n")
        .replace("<br>", "\n");
    let mut text = String::with_capacity(spaced.len());
    let mut in_tag = false;
    for character in spaced.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    access_token: String,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: String,
    acct: Option<String>,
    display_name: Option<String>,
    followers_count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
struct Status {
    id: String,
    url: Option<String>,
    uri: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    favourites_count: i64,
    #[serde(default)]
    replies_count: i64,
    #[serde(default)]
    reblogs_count: i64,
    /// From Mastodon 4.5.
    #[serde(default)]
    quotes_count: i64,
}

impl Status {
    fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let created_at = chrono::DateTime::parse_from_rfc3339(self.created_at.as_deref()?).ok()?;
        Some(created_at.with_timezone(&chrono::Utc))
    }

    /// Whether this status is the share's post: it links to the share's tracked link
    /// (unique per share), or, for a post without one, its text is the same.
    fn is_post(&self, post: &PostRequest) -> bool {
        match post.link_url.as_deref().filter(|link| !link.is_empty()) {
            Some(link) => {
                self.content
                    .contains(&format!("href=\"{}\"", escape_html(link)))
                    || content_text(&self.content).contains(link)
            }
            None => {
                collapse_whitespace(&content_text(&self.content)) == collapse_whitespace(&post.text)
            }
        }
    }
}

#[async_trait::async_trait]
impl NetworkAdapter for Mastodon {
    fn network(&self) -> Network {
        Network::Mastodon
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
        format!("{}?{query}", self.auth_url("/oauth/authorize"))
    }

    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, NetworkError> {
        async {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret.as_str()),
                ("redirect_uri", self.credentials.redirect_url.as_str()),
                ("code_verifier", code_verifier),
            ];
            let request = self.http.post(self.auth_url("/oauth/token")).form(&form);
            // The code is spent by the first request the instance sees.
            let response = transport::send(NETWORK, request, CallEffect::SideEffect).await?;
            let status = response.status();
            if !status.is_success() {
                let headers = response.headers().clone();
                let body = response.text().await.unwrap_or_default();
                return Err(classify_token_failure(status, &headers, &body));
            }
            let reply: TokenReply =
                transport::read_json(NETWORK, response, CallEffect::SideEffect, "token reply")
                    .await?;
            // No expires_in and no refresh token: the token lives until revoked.
            Ok(TokenSet {
                access_token: reply.access_token,
                refresh_token: None,
                access_expires_at: None,
                refresh_expires_at: None,
                scope: reply.scope,
            })
        }
        .instrument(transport::call_span(NETWORK, "exchange_code"))
        .await
    }

    async fn refresh(&self, _refresh_token: &str) -> Result<TokenSet, NetworkError> {
        Err(NetworkError::Unauthorized(
            "mastodon tokens are never refreshed: they last until revoked; reconnect the account"
                .to_string(),
        ))
    }

    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError> {
        async {
            let account = self.verify_credentials(access_token).await?;
            let display_name = account
                .display_name
                .filter(|name| !name.trim().is_empty())
                .or(account.acct.map(|acct| format!("@{acct}")))
                .unwrap_or_else(|| account.id.clone());
            Ok(Profile {
                id: account.id,
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
        self.send_status(access_token, post)
            .instrument(transport::call_span(NETWORK, "publish"))
            .await
    }

    /// Reads the account's statuses (see the module's note on the idempotency key).
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        self.search_statuses(access_token, post)
            .instrument(transport::call_span(NETWORK, "find_post"))
            .await
    }

    /// The Status counters: favourites, replies, reblogs (plus quotes); no impressions.
    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError> {
        async {
            let path = format!("/api/v1/statuses/{}", encode_path_segment(external_id));
            let request = self.http.get(self.api_url(&path)).bearer_auth(access_token);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let status: Status = read_success(response, "status").await?;
            Ok(PostMetrics {
                reactions: status.favourites_count,
                comments: status.replies_count,
                reshares: status.reblogs_count + status.quotes_count,
                impressions: 0,
            })
        }
        .instrument(transport::call_span(NETWORK, "metrics"))
        .await
    }

    async fn audience_size(&self, access_token: &str) -> Result<Option<i64>, NetworkError> {
        async { Ok(self.verify_credentials(access_token).await?.followers_count) }
            .instrument(transport::call_span(NETWORK, "audience_size"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chorus_netsim::{Fault, MastodonOptions, Netsim, NetsimOptions};
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
        fn adapter(&self, request_timeout: Duration) -> Mastodon {
            Mastodon::new(AppCredentials {
                api_base_url: format!("{}/mastodon", self.base_url),
                auth_base_url: format!("{}/mastodon", self.base_url),
                client_id: "chorus-test".to_string(),
                client_secret: "test-secret".to_string(),
                redirect_url: "http://127.0.0.1:9/oauth/callback".to_string(),
                api_version: String::new(),
                request_timeout,
            })
        }

        async fn consent(&self, adapter: &Mastodon, member_id: &str) -> String {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
            let url = format!(
                "{}&member={member_id}",
                adapter.authorize_url("state-9", &challenge)
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
            assert_eq!(pairs["state"], "state-9");
            pairs["code"].clone()
        }

        async fn connect(&self, adapter: &Mastodon, member_id: &str) -> TokenSet {
            let code = self.consent(adapter, member_id).await;
            adapter
                .exchange_code(&code, VERIFIER)
                .await
                .expect("code exchange")
        }

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

    fn share(author_id: &str, text: &str, link: &str, key: &str) -> PostRequest {
        PostRequest {
            author_id: author_id.to_string(),
            text: text.to_string(),
            link_url: Some(link.to_string()),
            image_url: None,
            image_alt: None,
            idempotency_key: key.to_string(),
        }
    }

    #[tokio::test]
    async fn mastodon_oauth_code_with_pkce_then_profile() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let code = harness.consent(&adapter, "alice").await;

        let tokens = adapter
            .exchange_code(&code, VERIFIER)
            .await
            .expect("exchange");
        assert_eq!(tokens.scope.as_deref(), Some(SCOPES));
        assert_eq!(tokens.access_expires_at, None, "tokens never expire");
        assert_eq!(tokens.refresh_token, None);

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
        assert_eq!(
            adapter
                .audience_size(&tokens.access_token)
                .await
                .expect("followers"),
            Some(chorus_netsim::network_size("alice"))
        );
        let refreshed = adapter.refresh("anything").await;
        assert!(
            matches!(refreshed, Err(NetworkError::Unauthorized(_))),
            "{refreshed:?}"
        );
    }

    #[tokio::test]
    async fn mastodon_publish_creates_one_status_and_the_same_key_returns_it() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "bob").await;
        let post = share(
            "bob",
            "Our launch & more: https://chr.us/s/bob1 #rust",
            "https://chr.us/s/bob1",
            "share-bob-1",
        );

        let published = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("publish");
        assert!(!published.already_existed);
        assert!(
            published
                .url
                .ends_with(&format!("/mastodon/@bob/{}", published.external_id)),
            "{}",
            published.url
        );
        let budget = published.budget.expect("X-RateLimit headers");
        // Both the 5-minute (300) and the statuses (300 per 3 h) windows have 299 left; the
        // tightest is reported, with an epoch-aligned reset.
        assert_eq!((budget.limit, budget.remaining), (300, 299));
        assert!(budget.resets_at > chrono::Utc::now());
        assert_eq!(budget.resets_at.timestamp() % 300, 0);

        let posts = harness.netsim.posts_of("mastodon");
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].urn, published.external_id);
        assert_eq!(posts[0].commentary, post.text);

        // Past the clock tolerance, the same Idempotency-Key returns the first status.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let resent = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("resend");
        assert_eq!(resent.external_id, published.external_id);
        assert!(resent.already_existed);
        assert_eq!(harness.netsim.posts_of("mastodon").len(), 1);

        // Mastodon has no duplicate detection: another key is another status.
        let other_key = PostRequest {
            idempotency_key: "share-bob-2".to_string(),
            ..post.clone()
        };
        let second = adapter
            .publish(&tokens.access_token, &other_key)
            .await
            .expect("another status");
        assert_ne!(second.external_id, published.external_id);
        assert_eq!(harness.netsim.posts_of("mastodon").len(), 2);
    }

    #[tokio::test]
    async fn mastodon_reply_lost_after_accept_is_unknown_and_find_post_reconciles_it() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_millis(300));
        let tokens = harness.connect(&adapter, "dave").await;
        let post = share(
            "dave",
            "Held reply https://chr.us/s/held?a=1&b=2",
            "https://chr.us/s/held?a=1&b=2",
            "share-held",
        );
        assert_eq!(
            adapter
                .find_post(&tokens.access_token, &post)
                .await
                .expect("listing"),
            None,
            "the listing confirms the status is absent before it exists"
        );
        harness.netsim.inject_on(
            "mastodon",
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
        // Later statuses push it to the second page of 40.
        for number in 0..41 {
            let other = share(
                "dave",
                &format!("Other {number} https://chr.us/s/o{number}"),
                &format!("https://chr.us/s/o{number}"),
                &format!("share-o{number}"),
            );
            adapter
                .publish(&tokens.access_token, &other)
                .await
                .expect("other status");
        }

        let found = adapter
            .find_post(&tokens.access_token, &post)
            .await
            .expect("reconcile")
            .expect("status found through Link pagination");
        let posts = harness.netsim.posts_of("mastodon");
        assert_eq!(posts.len(), 42);
        assert_eq!(found.external_id, posts[0].urn);
        assert!(found.already_existed);

        // And a resend within the hour, same key, creates nothing.
        let resent = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("resend");
        assert_eq!(resent.external_id, posts[0].urn);
        assert_eq!(harness.netsim.posts_of("mastodon").len(), 42);
    }

    #[tokio::test]
    async fn mastodon_503_to_a_status_is_an_unknown_outcome() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "frank").await;
        harness.netsim.inject_on(
            "mastodon",
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
                    "Later https://chr.us/s/f",
                    "https://chr.us/s/f",
                    "f",
                ),
            )
            .await;
        assert!(
            matches!(&attempt, Err(NetworkError::OutcomeUnknown(message)) if message.contains("temporary problem")),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts_of("mastodon").is_empty());
    }

    #[tokio::test]
    async fn mastodon_429_is_rate_limited_until_the_iso_reset() {
        let options = NetsimOptions {
            mastodon: MastodonOptions {
                statuses_per_window: 1,
                ..MastodonOptions::default()
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
                &format!("g{number}"),
            )
        };

        let first = adapter
            .publish(&tokens.access_token, &post(1))
            .await
            .expect("first");
        let budget = first.budget.expect("budget");
        assert_eq!(
            (budget.limit, budget.remaining),
            (1, 0),
            "the statuses family is the tightest"
        );
        assert_eq!(budget.resets_at.timestamp() % (3 * 3_600), 0);

        let second = adapter.publish(&tokens.access_token, &post(2)).await;
        let Err(NetworkError::RateLimited {
            retry_after: Some(wait),
            message,
        }) = second
        else {
            panic!("expected a rate limit with a wait: {second:?}");
        };
        assert_eq!(message, "Too many requests");
        let expected = budget.resets_at - chrono::Utc::now();
        let expected = Duration::from_millis(expected.num_milliseconds() as u64);
        assert!(
            wait <= expected + Duration::from_secs(1) && wait + Duration::from_secs(2) >= expected,
            "{wait:?} vs {expected:?}"
        );
        assert_eq!(harness.netsim.posts_of("mastodon").len(), 1);
    }

    #[tokio::test]
    async fn mastodon_revoked_token_is_unauthorized() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "carol").await;
        harness.netsim.expire_tokens_of("carol");

        let published = adapter
            .publish(
                &tokens.access_token,
                &share(
                    "carol",
                    "Revoked https://chr.us/s/c",
                    "https://chr.us/s/c",
                    "c",
                ),
            )
            .await;
        assert!(
            matches!(&published, Err(NetworkError::Unauthorized(message)) if message == "The access token is invalid"),
            "{published:?}"
        );
        let profile = adapter.profile(&tokens.access_token).await;
        assert!(
            matches!(profile, Err(NetworkError::Unauthorized(_))),
            "{profile:?}"
        );
        assert!(harness.netsim.posts_of("mastodon").is_empty());

        // Revocation through the instance's own endpoint works the same way.
        let tokens = harness.connect(&adapter, "carl").await;
        let revoke = reqwest::Client::new()
            .post(format!("{}/mastodon/oauth/revoke", harness.base_url))
            .form(&[
                ("client_id", "chorus-test"),
                ("client_secret", "test-secret"),
                ("token", tokens.access_token.as_str()),
            ])
            .send()
            .await
            .expect("revoke answers");
        assert_eq!(revoke.status(), StatusCode::OK);
        let profile = adapter.profile(&tokens.access_token).await;
        assert!(
            matches!(profile, Err(NetworkError::Unauthorized(_))),
            "{profile:?}"
        );
    }

    #[tokio::test]
    async fn mastodon_over_length_text_is_invalid_with_the_instance_message() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "ivan").await;
        let link = format!("https://chr.us/s/{}", "l".repeat(60));

        // 476 characters, a space and a URL counted as 23: exactly 500.
        let fits = share("ivan", &format!("{} {link}", "a".repeat(476)), &link, "i1");
        adapter
            .publish(&tokens.access_token, &fits)
            .await
            .expect("500 characters fit");
        let too_long = share("ivan", &format!("{} {link}", "b".repeat(477)), &link, "i2");
        let refused = adapter.publish(&tokens.access_token, &too_long).await;
        assert!(
            matches!(&refused, Err(NetworkError::Invalid(message)) if message == "Validation failed: Text character limit of 500 exceeded"),
            "{refused:?}"
        );
        assert_eq!(harness.netsim.posts_of("mastodon").len(), 1);
    }

    #[tokio::test]
    async fn mastodon_metrics_reflect_engagement_added_in_netsim() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "judy").await;
        let published = adapter
            .publish(
                &tokens.access_token,
                &share(
                    "judy",
                    "Counting https://chr.us/s/j",
                    "https://chr.us/s/j",
                    "j",
                ),
            )
            .await
            .expect("publish");
        harness
            .add_metrics(
                &published.external_id,
                serde_json::json!({"reactions": 5, "comments": 2, "reshares": 4, "impressions": 900}),
            )
            .await;
        let metrics = adapter
            .metrics(&tokens.access_token, &published.external_id)
            .await
            .expect("metrics");
        assert_eq!(
            metrics,
            PostMetrics {
                reactions: 5,
                comments: 2,
                reshares: 4,
                impressions: 0,
            },
            "Mastodon has no impressions"
        );
        let missing = adapter.metrics(&tokens.access_token, "1").await;
        assert!(
            matches!(&missing, Err(NetworkError::Invalid(message)) if message == "Record not found"),
            "{missing:?}"
        );
    }

    #[test]
    fn the_next_link_is_read_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://mastodon.example/api/v1/accounts/1/statuses?limit=40&max_id=7>; rel=\"next\", <https://mastodon.example/api/v1/accounts/1/statuses?limit=40&min_id=9>; rel=\"prev\""
                .parse()
                .expect("value"),
        );
        assert_eq!(
            next_link(&headers).map(|url| url.to_string()).as_deref(),
            Some("https://mastodon.example/api/v1/accounts/1/statuses?limit=40&max_id=7")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn content_html_gives_back_the_text() {
        let html = "<p>A &amp; B<br />see <a href=\"https://chr.us/s/a?x=1&amp;y=2\" rel=\"nofollow noopener\"><span class=\"invisible\">https://</span><span class=\"\">chr.us/s/a?x=1&amp;y=2</span><span class=\"invisible\"></span></a></p><p>bye</p>";
        assert_eq!(
            content_text(html),
            "A & B\nsee https://chr.us/s/a?x=1&y=2\n\nbye"
        );
    }
}
