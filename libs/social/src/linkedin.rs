//! LinkedIn adapter: 3-legged OAuth (code + PKCE S256), `/v2/userinfo`, the Posts API
//! (`/rest/posts`) and `/rest/socialActions`, in the wire format of NETWORKS.md, "1. LinkedIn".

use crate::transport::{self, CallEffect};
use crate::{
    AppCredentials, Network, NetworkAdapter, NetworkError, PostMetrics, PostRequest, PostedRef,
    Profile, TokenSet,
};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use tracing::Instrument;

const NETWORK: Network = Network::Linkedin;
const SCOPES: &str = "openid profile w_member_social";
const RESTLI_PROTOCOL_VERSION: &str = "2.0.0";
const DUPLICATE_POST_CODE: &str = "DUPLICATE_POST";
/// LinkedIn's 500 body when its activity store is having trouble.
const ACTIVITY_TROUBLE: &str = "Unable to obtain activity";
/// Longest piece of an unparsable error body quoted in an error message.
const QUOTED_BODY_CHARS: usize = 300;

pub struct LinkedIn {
    credentials: AppCredentials,
    http: reqwest::Client,
}

impl LinkedIn {
    pub fn new(credentials: AppCredentials) -> LinkedIn {
        let http = reqwest::Client::builder()
            .timeout(credentials.request_timeout)
            .build()
            .expect("a reqwest client with a timeout always builds");
        LinkedIn { credentials, http }
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

    /// A `/rest` request with the headers every versioned call needs.
    fn rest_request(&self, request: RequestBuilder, access_token: &str) -> RequestBuilder {
        request
            .bearer_auth(access_token)
            .header("LinkedIn-Version", &self.credentials.api_version)
            .header("X-Restli-Protocol-Version", RESTLI_PROTOCOL_VERSION)
    }

    async fn token_call(
        &self,
        form: &[(&str, &str)],
        effect: CallEffect,
    ) -> Result<TokenSet, NetworkError> {
        let request = self
            .http
            .post(self.auth_url("/oauth/v2/accessToken"))
            .form(form);
        let response = transport::send(NETWORK, request, effect).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(classify_token_failure(status, &body));
        }
        let reply: TokenReply =
            transport::read_json(NETWORK, response, effect, "token reply").await?;
        Ok(reply.into_token_set(chrono::Utc::now()))
    }

    /// Sends the post body. Used by `publish` and, unchanged, by `find_post`.
    async fn send_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        let image = match &post.image_url {
            Some(url) => Some(self.upload_image(access_token, post, url).await?),
            None => None,
        };
        let mut body = post_body(post);
        if let Some(image) = image {
            // The Posts API's single image (NETWORKS.md, step 4).
            body["content"] = serde_json::json!({"media": {
                "id": image,
                "altText": post.image_alt.clone().unwrap_or_default(),
            }});
        }
        let request = self
            .rest_request(self.http.post(self.api_url("/rest/posts")), access_token)
            .json(&body);
        let response = transport::send(NETWORK, request, CallEffect::SideEffect).await?;
        let status = response.status();
        if status.is_success() {
            return match created_urn(response.headers()) {
                Some(urn) => {
                    tracing::info!(external_id = %urn, "linkedin post created");
                    Ok(posted_ref(urn, false))
                }
                // Created, but we cannot tell which post: a resend's duplicate answer will.
                None => Err(NetworkError::OutcomeUnknown(format!(
                    "linkedin answered {status} without x-restli-id"
                ))),
            };
        }
        // The status is known, so a body that cannot be read only costs the message.
        let body = response.text().await.unwrap_or_default();
        let error_body = parse_error_body(&body);
        if status == StatusCode::UNPROCESSABLE_ENTITY && error_body.is_duplicate() {
            // Ghost URNs: after a deletion LinkedIn keeps naming the deleted post for
            // 24-48 h (NETWORKS.md); the returned URN may then answer 404.
            return match error_body.message.as_deref().and_then(urn_in_message) {
                Some(urn) => {
                    tracing::info!(external_id = %urn, "linkedin post already existed");
                    Ok(posted_ref(urn, true))
                }
                None => Err(NetworkError::OutcomeUnknown(format!(
                    "linkedin reported a duplicate without naming it: {}",
                    error_body.describe(status, &body)
                ))),
            };
        }
        Err(classify_failure(status, &error_body, &body).after_creation())
    }
}

impl LinkedIn {
    /// Uploads the post's image through the Images API: the image is fetched from its URL,
    /// an upload is initialised for the member, the bytes are PUT in one request (chunking
    /// corrupts images), and the image's URN is returned for the post.
    async fn upload_image(
        &self,
        access_token: &str,
        post: &PostRequest,
        url: &str,
    ) -> Result<String, NetworkError> {
        async {
            let bytes = fetch_image(&self.http, url).await?;
            let request = self
                .rest_request(self.http.post(self.api_url("/rest/images")), access_token)
                .query(&[("action", "initializeUpload")])
                .json(&serde_json::json!({"initializeUploadRequest": {
                    "owner": format!("urn:li:person:{}", post.author_id),
                }}));
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(classify_failure(status, &parse_error_body(&body), &body));
            }
            let reply: serde_json::Value = transport::read_json(
                NETWORK,
                response,
                CallEffect::Repeatable,
                "initializeUpload",
            )
            .await?;
            let (Some(upload_url), Some(image)) = (
                reply["value"]["uploadUrl"].as_str(),
                reply["value"]["image"].as_str(),
            ) else {
                return Err(NetworkError::Unavailable(format!(
                    "linkedin initializeUpload answered without uploadUrl and image: {reply}"
                )));
            };
            let request = self
                .http
                .put(upload_url)
                .bearer_auth(access_token)
                .body(bytes);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(classify_failure(status, &parse_error_body(&body), &body));
            }
            tracing::info!(image = %image, "linkedin image uploaded");
            Ok(image.to_string())
        }
        .instrument(transport::call_span(NETWORK, "upload_image"))
        .await
    }
}

/// The biggest image fetched for an upload.
const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// The bytes of a post's image from its URL: a missing image fails the share (the advocate
/// sees why); an unreachable host is retried.
async fn fetch_image(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, NetworkError> {
    let response = http.get(url).send().await.map_err(|error| {
        NetworkError::Unavailable(format!(
            "the post's image {url} could not be fetched: {error}"
        ))
    })?;
    let status = response.status();
    if status.is_server_error() {
        return Err(NetworkError::Unavailable(format!(
            "the post's image {url} answered {status}"
        )));
    }
    if !status.is_success() {
        return Err(NetworkError::Invalid(format!(
            "the post's image {url} answered {status}"
        )));
    }
    let kind = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !matches!(
        kind.split(';').next().unwrap_or_default().trim(),
        "image/jpeg" | "image/png" | "image/gif"
    ) {
        return Err(NetworkError::Invalid(format!(
            "the post's image {url} is {kind:?}, not a JPEG, PNG or GIF image"
        )));
    }
    let bytes = response.bytes().await.map_err(|error| {
        NetworkError::Unavailable(format!("the post's image {url} could not be read: {error}"))
    })?;
    if bytes.is_empty() || bytes.len() > MAX_IMAGE_BYTES {
        return Err(NetworkError::Invalid(format!(
            "the post's image {url} has {} bytes (1 to {MAX_IMAGE_BYTES})",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

/// The error bodies LinkedIn sends: the API's `{status, code, message, errorDetails}` and
/// OAuth's `{error, error_description}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    message: Option<String>,
    code: Option<String>,
    error_details: Option<ErrorDetails>,
    error: Option<String>,
    #[serde(rename = "error_description")]
    error_description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetails {
    #[serde(default)]
    input_errors: Vec<InputError>,
}

#[derive(Debug, Default, Deserialize)]
struct InputError {
    code: Option<String>,
}

fn parse_error_body(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_default()
}

impl ErrorBody {
    fn is_duplicate(&self) -> bool {
        let coded = self.error_details.as_ref().is_some_and(|details| {
            details
                .input_errors
                .iter()
                .any(|input| input.code.as_deref() == Some(DUPLICATE_POST_CODE))
        });
        coded
            || self
                .message
                .as_deref()
                .is_some_and(|message| message.to_ascii_lowercase().contains("duplicate of urn:"))
    }

    /// The network's own words, for the error shown to the advocate.
    fn describe(&self, status: StatusCode, raw_body: &str) -> String {
        let words = self
            .message
            .as_deref()
            .or(self.error_description.as_deref())
            .or(self.error.as_deref());
        match (words, self.code.as_deref()) {
            (Some(words), _) if !words.is_empty() => words.to_string(),
            (_, Some(code)) => code.to_string(),
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

/// Maps an API error status to the publisher's classes.
fn classify_failure(status: StatusCode, error_body: &ErrorBody, raw_body: &str) -> NetworkError {
    let message = error_body.describe(status, raw_body);
    if status.is_server_error() || raw_body.contains(ACTIVITY_TROUBLE) {
        return NetworkError::Unavailable(message);
    }
    match status {
        StatusCode::UNAUTHORIZED => NetworkError::Unauthorized(message),
        StatusCode::FORBIDDEN => NetworkError::Forbidden(message),
        StatusCode::UPGRADE_REQUIRED => NetworkError::Configuration(message),
        // LinkedIn documents no Retry-After; its daily windows reset at 00:00 UTC.
        StatusCode::TOO_MANY_REQUESTS => NetworkError::RateLimited {
            retry_after: None,
            message,
        },
        _ => NetworkError::Invalid(message),
    }
}

/// Maps a token endpoint refusal: a bad or expired grant means the member must consent
/// again; a refused client is our configuration.
fn classify_token_failure(status: StatusCode, raw_body: &str) -> NetworkError {
    let error_body = parse_error_body(raw_body);
    let message = error_body.describe(status, raw_body);
    match error_body.error.as_deref() {
        _ if status.is_server_error() => NetworkError::Unavailable(message),
        _ if status == StatusCode::TOO_MANY_REQUESTS => NetworkError::RateLimited {
            retry_after: None,
            message,
        },
        Some("invalid_grant") => NetworkError::Unauthorized(message),
        Some("invalid_client" | "unauthorized_client") => NetworkError::Configuration(message),
        _ => classify_failure(status, &error_body, raw_body),
    }
}

/// The URN in "…Content is a duplicate of urn:li:share:7141…".
fn urn_in_message(message: &str) -> Option<String> {
    let start = message.find("urn:li:")?;
    let urn: String = message[start..]
        .chars()
        .take_while(|character| {
            character.is_ascii_alphanumeric() || matches!(character, ':' | '_' | '-')
        })
        .collect();
    let has_id = urn.split(':').count() >= 4 && !urn.ends_with(':');
    has_id.then_some(urn)
}

fn created_urn(headers: &HeaderMap) -> Option<String> {
    ["x-restli-id", "x-linkedin-id"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .find(|urn| !urn.is_empty())
        .map(str::to_string)
}

fn posted_ref(urn: String, already_existed: bool) -> PostedRef {
    PostedRef {
        url: format!("https://www.linkedin.com/feed/update/{urn}"),
        external_id: urn,
        already_existed,
        budget: None,
    }
}

/// The minimal text-post body (NETWORKS.md).
fn post_body(post: &PostRequest) -> serde_json::Value {
    // Known gap: LinkedIn's "little text" wants `\ | { } @ [ ] ( ) < > # * _ ~` escaped in
    // plain text, else e.g. a `#` starts a hashtag. The text goes verbatim for now, which
    // is also what netsim compares for duplicates.
    serde_json::json!({
        "author": format!("urn:li:person:{}", post.author_id),
        "commentary": post.text,
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
    })
}

/// Percent-encodes a URN for use as one path segment (Rest.li 2.0 wants `urn%3Ali%3A…`).
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    refresh_token_expires_in: Option<i64>,
    scope: Option<String>,
}

impl TokenReply {
    fn into_token_set(self, now: chrono::DateTime<chrono::Utc>) -> TokenSet {
        let expiry =
            |seconds: Option<i64>| seconds.map(|seconds| now + chrono::TimeDelta::seconds(seconds));
        TokenSet {
            access_expires_at: expiry(self.expires_in),
            refresh_expires_at: self
                .refresh_token
                .as_ref()
                .and(expiry(self.refresh_token_expires_in)),
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            scope: self.scope,
        }
    }
}

#[derive(Debug, Deserialize)]
struct UserInfo {
    sub: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

impl UserInfo {
    fn into_profile(self) -> Profile {
        let joined = [self.given_name.as_deref(), self.family_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let display_name = match self.name.filter(|name| !name.trim().is_empty()) {
            Some(name) => name,
            None if !joined.is_empty() => joined,
            None => self.sub.clone(),
        };
        Profile {
            id: self.sub,
            display_name,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SocialActions {
    #[serde(default)]
    likes_summary: LikesSummary,
    #[serde(default)]
    comments_summary: CommentsSummary,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LikesSummary {
    #[serde(default)]
    total_likes: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentsSummary {
    #[serde(default)]
    aggregated_total_comments: i64,
}

#[async_trait::async_trait]
impl NetworkAdapter for LinkedIn {
    fn network(&self) -> Network {
        Network::Linkedin
    }

    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("redirect_uri", &self.credentials.redirect_url)
            .append_pair("state", state)
            .append_pair("scope", SCOPES)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}?{query}", self.auth_url("/oauth/v2/authorization"))
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
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.as_str()),
            ("code_verifier", code_verifier),
        ];
        // The code is spent by the first request LinkedIn sees, so a lost reply is unknown.
        self.token_call(&form, CallEffect::SideEffect)
            .instrument(transport::call_span(NETWORK, "exchange_code"))
            .await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, NetworkError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.as_str()),
        ];
        // LinkedIn refresh tokens do not rotate: refreshing again is harmless.
        self.token_call(&form, CallEffect::Repeatable)
            .instrument(transport::call_span(NETWORK, "refresh"))
            .await
    }

    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError> {
        async {
            let request = self
                .http
                .get(self.api_url("/v2/userinfo"))
                .bearer_auth(access_token);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(classify_failure(status, &parse_error_body(&body), &body));
            }
            let userinfo: UserInfo =
                transport::read_json(NETWORK, response, CallEffect::Repeatable, "userinfo").await?;
            Ok(userinfo.into_profile())
        }
        .instrument(transport::call_span(NETWORK, "profile"))
        .await
    }

    async fn publish(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        self.send_post(access_token, post)
            .instrument(transport::call_span(NETWORK, "publish"))
            .await
    }

    /// LinkedIn cannot list a member's posts (that needs the restricted `r_member_social`),
    /// so the resend is the check: the identical body is sent again. A 422 DUPLICATE_POST
    /// names the existing post (`already_existed: true`); a 201 means the first attempt
    /// never landed and the post has now been created (`already_existed: false`). Hence
    /// this never answers `None`.
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        self.send_post(access_token, post)
            .instrument(transport::call_span(NETWORK, "find_post"))
            .await
            .map(Some)
    }

    /// Reactions and comments from socialActions. Reshares and impressions need
    /// memberCreatorPostAnalytics (scope `r_member_postAnalytics`), not read yet: zero.
    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError> {
        async {
            let path = format!("/rest/socialActions/{}", encode_path_segment(external_id));
            let request = self.rest_request(self.http.get(self.api_url(&path)), access_token);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(classify_failure(status, &parse_error_body(&body), &body));
            }
            let actions: SocialActions = transport::read_json(
                NETWORK,
                response,
                CallEffect::Repeatable,
                "socialActions reply",
            )
            .await?;
            let impressions = self
                .post_statistic(access_token, external_id, "IMPRESSION")
                .await?;
            let reshares = self
                .post_statistic(access_token, external_id, "RESHARE")
                .await?;
            Ok(PostMetrics {
                reactions: actions.likes_summary.total_likes,
                comments: actions.comments_summary.aggregated_total_comments,
                reshares,
                impressions,
            })
        }
        .instrument(transport::call_span(NETWORK, "metrics"))
        .await
    }

    async fn audience_size(&self, access_token: &str) -> Result<Option<i64>, NetworkError> {
        async {
            let request = self
                .rest_request(self.http.get(self.api_url("/v2/connections")), access_token)
                .query(&[("q", "viewer"), ("start", "0"), ("count", "0")]);
            let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(classify_failure(status, &parse_error_body(&body), &body));
            }
            let page: serde_json::Value =
                transport::read_json(NETWORK, response, CallEffect::Repeatable, "connections")
                    .await?;
            Ok(page["paging"]["total"].as_i64())
        }
        .instrument(transport::call_span(NETWORK, "audience_size"))
        .await
    }
}

impl LinkedIn {
    /// One total of the member post statistics (`memberCreatorPostAnalytics`, scope
    /// `r_member_postAnalytics`; parameter syntax unconfirmed, see NETWORKS.md).
    async fn post_statistic(
        &self,
        access_token: &str,
        external_id: &str,
        query_type: &str,
    ) -> Result<i64, NetworkError> {
        let entity = if external_id.starts_with("urn:li:ugcPost:") {
            format!("(ugc:{external_id})")
        } else {
            format!("(share:{external_id})")
        };
        let request = self
            .rest_request(
                self.http
                    .get(self.api_url("/rest/memberCreatorPostAnalytics")),
                access_token,
            )
            .query(&[
                ("q", "entity"),
                ("entity", entity.as_str()),
                ("queryType", query_type),
                ("aggregation", "TOTAL"),
            ]);
        let response = transport::send(NETWORK, request, CallEffect::Repeatable).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(classify_failure(status, &parse_error_body(&body), &body));
        }
        let page: serde_json::Value = transport::read_json(
            NETWORK,
            response,
            CallEffect::Repeatable,
            "memberCreatorPostAnalytics",
        )
        .await?;
        Ok(page["elements"]
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|element| element["count"].as_i64())
                    .sum()
            })
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chorus_netsim::{Fault, Netsim, NetsimOptions};
    use sha2::{Digest, Sha256};
    use std::time::Duration;
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

    async fn start_netsim() -> Harness {
        let netsim = Netsim::new(NetsimOptions::default());
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
        fn adapter(&self, request_timeout: Duration) -> LinkedIn {
            LinkedIn::new(AppCredentials {
                api_base_url: self.base_url.clone(),
                auth_base_url: format!("{}/", self.base_url),
                client_id: "chorus-test".to_string(),
                client_secret: "test-secret".to_string(),
                redirect_url: "http://127.0.0.1:9/oauth/callback".to_string(),
                api_version: "202604".to_string(),
                request_timeout,
            })
        }

        /// Consents as `member_id` through the adapter's authorize URL; returns the code.
        async fn consent(&self, adapter: &LinkedIn, member_id: &str) -> String {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
            let url = format!(
                "{}&member={member_id}",
                adapter.authorize_url("state-42", &challenge)
            );
            let browser = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let response = browser.get(url).send().await.expect("authorize answers");
            assert_eq!(response.status(), StatusCode::FOUND);
            let location = response.headers()["location"]
                .to_str()
                .expect("ascii")
                .to_string();
            let location = url::Url::parse(&location).expect("absolute");
            let pairs: std::collections::HashMap<_, _> =
                location.query_pairs().into_owned().collect();
            assert_eq!(pairs["state"], "state-42");
            pairs["code"].clone()
        }

        async fn connect(&self, adapter: &LinkedIn, member_id: &str) -> TokenSet {
            let code = self.consent(adapter, member_id).await;
            adapter
                .exchange_code(&code, VERIFIER)
                .await
                .expect("code exchange")
        }
    }

    fn post_by(author_id: &str, text: &str) -> PostRequest {
        PostRequest {
            author_id: author_id.to_string(),
            text: text.to_string(),
            link_url: None,
            image_url: None,
            image_alt: None,
            idempotency_key: "share-1".to_string(),
        }
    }

    #[tokio::test]
    async fn oauth_code_exchange_with_pkce_then_profile_and_refresh() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let code = harness.consent(&adapter, "alice").await;

        let tokens = adapter
            .exchange_code(&code, VERIFIER)
            .await
            .expect("exchange");
        assert_eq!(tokens.scope.as_deref(), Some(SCOPES));
        let access_expires_at = tokens.access_expires_at.expect("access expiry");
        assert!(access_expires_at > chrono::Utc::now() + chrono::TimeDelta::days(59));
        let refresh_expires_at = tokens.refresh_expires_at.expect("refresh expiry");
        assert!(refresh_expires_at > chrono::Utc::now() + chrono::TimeDelta::days(364));

        let reused = adapter.exchange_code(&code, VERIFIER).await;
        assert!(
            matches!(reused, Err(NetworkError::Unauthorized(_))),
            "{reused:?}"
        );

        let profile = adapter
            .profile(&tokens.access_token)
            .await
            .expect("profile");
        assert_eq!(
            profile,
            Profile {
                id: "alice".to_string(),
                display_name: "Member alice".to_string()
            }
        );

        let refreshed = adapter
            .refresh(tokens.refresh_token.as_deref().expect("refresh token"))
            .await
            .expect("refresh");
        assert_ne!(refreshed.access_token, tokens.access_token);
        assert!(
            refreshed.refresh_expires_at.expect("refresh expiry")
                <= refresh_expires_at + chrono::TimeDelta::seconds(1)
        );
        assert_eq!(
            adapter
                .profile(&refreshed.access_token)
                .await
                .expect("profile")
                .id,
            "alice"
        );
    }

    #[tokio::test]
    async fn publish_creates_the_post_and_a_resend_finds_the_same_urn() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "bob").await;
        let post = post_by("bob", "Our launch #rust (finally) https://chr.us/s/abc");

        let published = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("publish");
        assert!(
            published.external_id.starts_with("urn:li:share:"),
            "{published:?}"
        );
        assert_eq!(
            published.url,
            format!(
                "https://www.linkedin.com/feed/update/{}",
                published.external_id
            )
        );
        assert!(!published.already_existed);

        let posts = harness.netsim.posts();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].urn, published.external_id);
        assert_eq!(posts[0].commentary, post.text);

        let resent = adapter
            .publish(&tokens.access_token, &post)
            .await
            .expect("duplicate is a success");
        assert_eq!(
            resent,
            PostedRef {
                already_existed: true,
                ..published.clone()
            }
        );
        assert_eq!(harness.netsim.posts().len(), 1);

        assert!(harness.netsim.add_reactions(&published.external_id, 7, 3));
        let metrics = adapter
            .metrics(&tokens.access_token, &published.external_id)
            .await
            .expect("metrics");
        assert_eq!((metrics.reactions, metrics.comments), (7, 3));
    }

    #[tokio::test]
    async fn an_expired_token_is_unauthorized() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "carol").await;
        harness.netsim.expire_tokens_of("carol");

        let published = adapter
            .publish(&tokens.access_token, &post_by("carol", "Expired"))
            .await;
        assert!(
            matches!(&published, Err(NetworkError::Unauthorized(message)) if message.contains("expired")),
            "{published:?}"
        );
        let profile = adapter.profile(&tokens.access_token).await;
        assert!(
            matches!(profile, Err(NetworkError::Unauthorized(_))),
            "{profile:?}"
        );
        assert!(harness.netsim.posts().is_empty());
    }

    #[tokio::test]
    async fn a_reply_lost_after_accept_is_unknown_and_find_post_reconciles_it() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_millis(300));
        let tokens = harness.connect(&adapter, "dave").await;
        harness.netsim.inject(Fault::HoldAfterAccept {
            hold_ms: 5_000,
            count: 1,
        });
        let post = post_by("dave", "Held reply https://chr.us/s/held");

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
        let posts = harness.netsim.posts();
        assert_eq!(posts.len(), 1, "exactly one post on the network");
        assert_eq!(found.external_id, posts[0].urn);
        assert!(found.already_existed);
    }

    #[tokio::test]
    async fn find_post_creates_a_post_that_never_landed() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "erin").await;

        let found = adapter
            .find_post(&tokens.access_token, &post_by("erin", "Never landed"))
            .await
            .expect("resend");
        let found = found.expect("the resend created it");
        assert!(!found.already_existed);
        assert_eq!(harness.netsim.posts().len(), 1);
    }

    #[tokio::test]
    async fn a_503_to_a_post_is_an_unknown_outcome() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "frank").await;
        harness.netsim.inject(Fault::Status {
            status: 503,
            count: 1,
        });

        let attempt = adapter
            .publish(&tokens.access_token, &post_by("frank", "Try later"))
            .await;
        // Nothing was created here, but a 5xx cannot tell: it is reconciled, not resent.
        assert!(
            matches!(attempt, Err(NetworkError::OutcomeUnknown(_))),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts().is_empty());
    }

    #[tokio::test]
    async fn statuses_map_to_the_publisher_classes() {
        let harness = start_netsim().await;
        let adapter = harness.adapter(Duration::from_secs(5));
        let tokens = harness.connect(&adapter, "grace").await;
        let post = post_by("grace", "Mapped");

        harness.netsim.inject(Fault::Status {
            status: 429,
            count: 1,
        });
        let throttled = adapter.publish(&tokens.access_token, &post).await;
        assert!(
            matches!(
                throttled,
                Err(NetworkError::RateLimited {
                    retry_after: None,
                    ..
                })
            ),
            "{throttled:?}"
        );

        let as_someone_else = adapter
            .publish(&tokens.access_token, &post_by("heidi", "Not mine"))
            .await;
        assert!(
            matches!(as_someone_else, Err(NetworkError::Forbidden(_))),
            "{as_someone_else:?}"
        );

        let too_long = adapter
            .publish(&tokens.access_token, &post_by("grace", &"x".repeat(3_001)))
            .await;
        assert!(
            matches!(too_long, Err(NetworkError::Invalid(_))),
            "{too_long:?}"
        );

        let retired = LinkedIn::new(AppCredentials {
            api_version: "202301".to_string(),
            ..adapter.credentials.clone()
        });
        let sunset = retired.publish(&tokens.access_token, &post).await;
        assert!(
            matches!(&sunset, Err(NetworkError::Configuration(message)) if message.contains("202301")),
            "{sunset:?}"
        );
        assert!(harness.netsim.posts().is_empty());
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
            .publish("token", &post_by("ivan", "Nobody home"))
            .await;
        assert!(
            matches!(attempt, Err(NetworkError::Unavailable(_))),
            "{attempt:?}"
        );
    }

    #[test]
    fn the_urn_is_parsed_out_of_the_duplicate_message() {
        assert_eq!(
            urn_in_message("Content is a duplicate of urn:li:share:7141000000000000000").as_deref(),
            Some("urn:li:share:7141000000000000000")
        );
        assert_eq!(
            urn_in_message("Content is a duplicate of urn:li:ugcPost:7141. Please retry")
                .as_deref(),
            Some("urn:li:ugcPost:7141")
        );
        assert_eq!(urn_in_message("Content is a duplicate of urn:li:"), None);
        assert_eq!(urn_in_message("Duplicate post"), None);
    }

    #[test]
    fn urns_are_percent_encoded_as_one_path_segment() {
        assert_eq!(
            encode_path_segment("urn:li:share:7141"),
            "urn%3Ali%3Ashare%3A7141"
        );
    }

    #[test]
    fn the_authorize_url_asks_for_a_code_with_pkce() {
        let adapter = LinkedIn::new(AppCredentials {
            api_base_url: "https://api.linkedin.com".to_string(),
            auth_base_url: "https://www.linkedin.com".to_string(),
            client_id: "client".to_string(),
            client_secret: "secret".to_string(),
            redirect_url: "https://chorus.example/oauth/callback".to_string(),
            api_version: "202604".to_string(),
            request_timeout: Duration::from_secs(5),
        });
        let url = url::Url::parse(&adapter.authorize_url("s1", "challenge")).expect("absolute");
        assert_eq!(url.path(), "/oauth/v2/authorization");
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(
            pairs["redirect_uri"],
            "https://chorus.example/oauth/callback"
        );
        assert_eq!(pairs["scope"], SCOPES);
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert_eq!(pairs["state"], "s1");
    }
}
