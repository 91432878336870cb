//! Facebook Pages and Instagram adapters (Graph API), in the wire format of NETWORKS.md
//! sections 3 and 4.
//!
//! Both connect through Facebook Login: the code gives a short-lived user token, which
//! `fb_exchange_token` turns into a 60-day user token, from which `GET /me/accounts` gives
//! the Page token. A Page token taken from a long-lived user token does not expire, so it
//! is the access token Chorus keeps (no refresh token: a dead token means log in again).
//! Facebook posts as the Page; Instagram publishes to the professional account linked to
//! the Page (`instagram_business_account`).

mod facebook;
mod instagram;

pub use facebook::Facebook;
pub use instagram::Instagram;

use crate::{AppCredentials, Network, NetworkError, RateBudget, TokenSet};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Used when the configuration names no Graph version.
const DEFAULT_VERSION: &str = "v21.0";
/// Longest piece of an unparsable error body quoted in an error message.
const QUOTED_BODY_CHARS: usize = 300;
/// The platform limit's window (rolling hour), used as the reset of a percentage budget
/// when Graph gives no `estimated_time_to_regain_access`.
const USAGE_FALLBACK_RESET: chrono::TimeDelta = chrono::TimeDelta::hours(1);

pub(crate) use crate::transport::CallEffect;

/// The Graph API as both adapters use it.
pub(crate) struct Graph {
    network: Network,
    credentials: AppCredentials,
    version: String,
    http: reqwest::Client,
}

/// A Page of the logged-in user, from `/me/accounts`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PageAccount {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub access_token: Option<String>,
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
    pub instagram_business_account: Option<NodeId>,
}

impl PageAccount {
    /// Whether the user may post as the Page (`tasks` absent means Graph did not say).
    pub(crate) fn can_create_content(&self) -> bool {
        self.tasks
            .as_ref()
            .is_none_or(|tasks| tasks.iter().any(|task| task == "CREATE_CONTENT"))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NodeId {
    pub id: String,
}

/// A page of a Graph edge (`{"data":[...],"paging":{"cursors":{"after"},"next"}}`).
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub(crate) struct Edge<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Cursors {
    pub after: Option<String>,
}

impl<T> Edge<T> {
    /// The cursor of the next page, when there is one.
    pub(crate) fn next_cursor(&self) -> Option<String> {
        let paging = self.paging.as_ref()?;
        paging.next.as_ref()?;
        paging.cursors.as_ref()?.after.clone()
    }
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: Option<i64>,
}

/// The `{"error":{...}}` envelope.
#[derive(Debug, Default, Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: GraphErrorBody,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct GraphErrorBody {
    pub message: Option<String>,
    pub code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub is_transient: Option<bool>,
    pub error_user_msg: Option<String>,
}

/// A Graph refusal: the status, the parsed envelope, and what the usage headers said.
#[derive(Debug, Clone)]
pub(crate) struct GraphFailure {
    pub status: StatusCode,
    pub body: GraphErrorBody,
    pub raw: String,
    pub usage: Usage,
}

impl GraphFailure {
    pub(crate) fn code(&self) -> Option<i64> {
        self.body.code
    }

    pub(crate) fn subcode(&self) -> Option<i64> {
        self.body.error_subcode
    }

    /// Graph's words, the user-facing ones first (shown to the advocate).
    pub(crate) fn describe(&self) -> String {
        let technical = self.body.message.as_deref().filter(|text| !text.is_empty());
        let user = self
            .body
            .error_user_msg
            .as_deref()
            .filter(|text| !text.is_empty());
        let words = match (user, technical) {
            (Some(user), Some(technical)) => format!("{user} ({technical})"),
            (Some(words), None) | (None, Some(words)) => words.to_string(),
            (None, None) if !self.raw.trim().is_empty() => {
                self.raw.trim().chars().take(QUOTED_BODY_CHARS).collect()
            }
            (None, None) => self
                .status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string(),
        };
        match (self.body.code, self.body.error_subcode) {
            (Some(code), Some(subcode)) => format!("{words} [code {code}/{subcode}]"),
            (Some(code), None) => format!("{words} [code {code}]"),
            _ => words,
        }
    }

    /// The publisher's class of this refusal (keyed on Graph's `code`, not the status:
    /// Graph sends OAuthException/400 for nearly everything).
    pub(crate) fn classify(&self) -> NetworkError {
        let message = self.describe();
        let code = self.body.code;
        let subcode = self.body.error_subcode;
        match code {
            // 190 invalid/expired/revoked token, 102 session, 104 no token.
            Some(190 | 102 | 104) => NetworkError::Unauthorized(message),
            // Throttling: app (4), user (17), Page (32), custom (613), BUC (80001-80002),
            // feed actions (341), temporary block (368), posting too fast (1390008).
            Some(4 | 17 | 32 | 341 | 368 | 613 | 80_001 | 80_002 | 1_390_008) => {
                NetworkError::RateLimited {
                    retry_after: self.usage.retry_after(),
                    message,
                }
            }
            // The Instagram publishing quota; its wait is computed by the caller.
            Some(9) if subcode == Some(2_207_042) => NetworkError::RateLimited {
                retry_after: None,
                message,
            },
            _ if subcode == Some(2_207_051) => NetworkError::RateLimited {
                retry_after: self.usage.retry_after(),
                message,
            },
            Some(10) | Some(200..=299) => NetworkError::Forbidden(message),
            Some(1 | 2 | -1 | -2) => NetworkError::Unavailable(message),
            _ if matches!(subcode, Some(2_207_001 | 2_207_003 | 2_207_032)) => {
                NetworkError::Unavailable(message)
            }
            _ if self.body.is_transient == Some(true) => NetworkError::Unavailable(message),
            _ if self.status.is_server_error() => NetworkError::Unavailable(message),
            Some(101) => NetworkError::Configuration(message),
            _ => NetworkError::Invalid(message),
        }
    }
}

/// What `X-App-Usage` and `X-Business-Use-Case-Usage` said (percentages, and minutes
/// until access returns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// The highest of the reported percentages (call count, CPU time, total time).
    pub percent: Option<u32>,
    pub regain_minutes: Option<u64>,
}

impl Usage {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Usage {
        let mut usage = Usage::default();
        let mut note = |object: &serde_json::Value| {
            for key in ["call_count", "total_cputime", "total_time"] {
                if let Some(value) = object.get(key).and_then(serde_json::Value::as_u64) {
                    let value = value.min(100) as u32;
                    usage.percent = Some(usage.percent.map_or(value, |seen| seen.max(value)));
                }
            }
            if let Some(minutes) = object
                .get("estimated_time_to_regain_access")
                .and_then(serde_json::Value::as_u64)
            {
                usage.regain_minutes = Some(
                    usage
                        .regain_minutes
                        .map_or(minutes, |seen| seen.max(minutes)),
                );
            }
        };
        let json_header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        };
        if let Some(app) = json_header("x-app-usage") {
            note(&app);
        }
        if let Some(business) = json_header("x-business-use-case-usage")
            && let Some(per_object) = business.as_object()
        {
            for entries in per_object.values() {
                for entry in entries.as_array().into_iter().flatten() {
                    note(entry);
                }
            }
        }
        usage
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.regain_minutes
            .filter(|minutes| *minutes > 0)
            .map(|minutes| Duration::from_secs(minutes * 60))
    }

    /// The budget the headers describe: percentages, so `limit` is 100.
    pub(crate) fn budget(&self, now: chrono::DateTime<chrono::Utc>) -> Option<RateBudget> {
        let percent = self.percent?;
        let resets_in = match self.regain_minutes.filter(|minutes| *minutes > 0) {
            Some(minutes) => chrono::TimeDelta::minutes(minutes as i64),
            None => USAGE_FALLBACK_RESET,
        };
        Some(RateBudget {
            limit: 100,
            remaining: 100 - percent.min(100),
            resets_at: now + resets_in,
            reset_precision: std::time::Duration::ZERO,
        })
    }
}

pub(crate) fn call_span(network: Network, operation: &'static str) -> tracing::Span {
    tracing::info_span!(
        "network.call",
        otel.kind = "client",
        network = network.as_str(),
        operation,
        http.status_code = tracing::field::Empty,
        graph.code = tracing::field::Empty,
    )
}

impl Graph {
    pub(crate) fn new(network: Network, credentials: AppCredentials) -> Graph {
        let http = reqwest::Client::builder()
            .timeout(credentials.request_timeout)
            .build()
            .expect("a reqwest client with a timeout always builds");
        let configured = credentials.api_version.trim();
        let version = match configured {
            "" => DEFAULT_VERSION.to_string(),
            version if version.starts_with('v') => version.to_string(),
            version => format!("v{version}"),
        };
        Graph {
            network,
            credentials,
            version,
            http,
        }
    }

    /// `{api base}/{version}{path}`.
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!(
            "{}/{}{path}",
            self.credentials.api_base_url.trim_end_matches('/'),
            self.version
        )
    }

    /// The Facebook Login dialog (authorisation code, PKCE S256).
    pub(crate) fn authorize_url(&self, scopes: &str, state: &str, code_challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("redirect_uri", &self.credentials.redirect_url)
            .append_pair("state", state)
            .append_pair("scope", scopes)
            .append_pair("response_type", "code")
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!(
            "{}/{}/dialog/oauth?{query}",
            self.credentials.auth_base_url.trim_end_matches('/'),
            self.version
        )
    }

    /// Sends the request and records the status on the current `network.call` span.
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
        effect: CallEffect,
    ) -> Result<Response, NetworkError> {
        crate::transport::send(self.network, request, effect).await
    }

    /// A failure without an HTTP status (see `transport`; the URL, which carries Graph's
    /// token calls' secrets, is dropped).
    fn transport_error(&self, error: reqwest::Error, effect: CallEffect) -> NetworkError {
        crate::transport::classify_transport_error(self.network, error, effect)
    }

    /// Reads a reply: its JSON and usage on success, else the Graph refusal.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        response: Response,
        effect: CallEffect,
        what: &str,
    ) -> Result<Result<(T, Usage), GraphFailure>, NetworkError> {
        let status = response.status();
        let usage = Usage::from_headers(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(error, effect))?;
        if status.is_success() {
            return match serde_json::from_slice(&bytes) {
                Ok(value) => Ok(Ok((value, usage))),
                // The call was answered: for a side effect, it happened, unreadably.
                Err(error) => Err(crate::transport::unreadable(
                    self.network,
                    effect,
                    what,
                    &error,
                )),
            };
        }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let envelope: ErrorEnvelope = serde_json::from_str(&raw).unwrap_or_default();
        let failure = GraphFailure {
            status,
            body: envelope.error,
            raw,
            usage,
        };
        let span = tracing::Span::current();
        if let Some(code) = failure.code() {
            span.record("graph.code", code);
        }
        tracing::info!(
            http.status_code = status.as_u16(),
            graph.code = failure.code(),
            graph.subcode = failure.subcode(),
            "graph refused the call"
        );
        Ok(Err(failure))
    }

    /// `GET {path}` with the token; refusals classified.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        access_token: &str,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<(T, Usage), NetworkError> {
        let request = self
            .http
            .get(self.api_url(path))
            .bearer_auth(access_token)
            .query(query);
        let response = self.send(request, CallEffect::Repeatable).await?;
        self.read(response, CallEffect::Repeatable, what)
            .await?
            .map_err(|failure| failure.classify())
    }

    /// `POST {path}` with a form body; the refusal is returned unclassified for the caller
    /// to look at (duplicates, quota).
    pub(crate) async fn post_form<T: DeserializeOwned>(
        &self,
        access_token: &str,
        path: &str,
        query: &[(&str, &str)],
        form: &[(&str, &str)],
        effect: CallEffect,
        what: &str,
    ) -> Result<Result<(T, Usage), GraphFailure>, NetworkError> {
        let request = self
            .http
            .post(self.api_url(path))
            .bearer_auth(access_token)
            .query(query)
            .form(form);
        let response = self.send(request, effect).await?;
        self.read(response, effect, what).await
    }

    async fn token_call(
        &self,
        query: &[(&str, &str)],
        effect: CallEffect,
    ) -> Result<TokenReply, NetworkError> {
        let request = self
            .http
            .get(self.api_url("/oauth/access_token"))
            .query(query);
        let response = self.send(request, effect).await?;
        self.read::<TokenReply>(response, effect, "token reply")
            .await?
            .map(|(reply, _)| reply)
            .map_err(|failure| classify_token_failure(&failure))
    }

    /// Facebook Login: code -> short-lived user token -> 60-day user token -> the user's
    /// Pages with their (non-expiring) Page tokens.
    pub(crate) async fn login(
        &self,
        code: &str,
        code_verifier: &str,
        page_fields: &str,
    ) -> Result<Vec<PageAccount>, NetworkError> {
        let credentials = &self.credentials;
        // The code is spent by the first request Graph sees, so a lost reply is unknown.
        let short = self
            .token_call(
                &[
                    ("client_id", credentials.client_id.as_str()),
                    ("redirect_uri", credentials.redirect_url.as_str()),
                    ("client_secret", credentials.client_secret.as_str()),
                    ("code", code),
                    ("code_verifier", code_verifier),
                ],
                CallEffect::SideEffect,
            )
            .await?;
        let long = self
            .token_call(
                &[
                    ("grant_type", "fb_exchange_token"),
                    ("client_id", credentials.client_id.as_str()),
                    ("client_secret", credentials.client_secret.as_str()),
                    ("fb_exchange_token", short.access_token.as_str()),
                ],
                CallEffect::Repeatable,
            )
            .await?;
        tracing::info!(
            user_token_expires_in = long.expires_in,
            "graph long-lived user token obtained"
        );
        let (accounts, _): (Edge<PageAccount>, Usage) = self
            .get(
                &long.access_token,
                "/me/accounts",
                &[("fields", page_fields)],
                "accounts",
            )
            .await?;
        Ok(accounts.data)
    }
}

/// A Page token as the TokenSet Chorus keeps: no refresh token, no expiry (it dies on a
/// password change, role loss or app removal, which Graph reports as code 190).
pub(crate) fn page_token_set(access_token: String) -> TokenSet {
    TokenSet {
        access_token,
        refresh_token: None,
        access_expires_at: None,
        refresh_expires_at: None,
        scope: None,
    }
}

/// The token endpoint's refusals: a bad, used or expired code (code 100, subcodes
/// 36007-36009) means consent again; a refused app is our configuration.
fn classify_token_failure(failure: &GraphFailure) -> NetworkError {
    let message = failure.describe();
    match failure.code() {
        Some(100) if matches!(failure.subcode(), Some(36_007..=36_009)) => {
            NetworkError::Unauthorized(message)
        }
        Some(101) => NetworkError::Configuration(message),
        Some(1)
            if failure
                .body
                .message
                .as_deref()
                .is_some_and(|text| text.contains("client secret")) =>
        {
            NetworkError::Configuration(message)
        }
        _ => failure.classify(),
    }
}

/// Whether a listed post's text is this share's: the same text, or the share's unique
/// tracked link in it (networks may trim or re-encode the text).
/// How far back a reconciliation looks: a share's attempts lie within it.
pub(crate) const RECONCILE_HORIZON: chrono::TimeDelta = chrono::TimeDelta::hours(72);

/// Graph's times (`2026-12-07T10:00:00+0000`).
pub(crate) fn graph_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|time| time.with_timezone(&chrono::Utc))
}

/// Whether a listing page reaches back past the reconciliation horizon (its oldest item is
/// older): an item not found by then is absent.
pub(crate) fn past_horizon<'a>(times: impl Iterator<Item = Option<&'a str>>) -> bool {
    let horizon = chrono::Utc::now() - RECONCILE_HORIZON;
    times
        .flatten()
        .filter_map(graph_time)
        .min()
        .is_some_and(|oldest| oldest < horizon)
}

pub(crate) fn is_same_post(listed: &str, text: &str, link_url: Option<&str>) -> bool {
    listed.trim() == text.trim()
        || link_url.is_some_and(|link| !link.is_empty() && listed.contains(link))
}

#[cfg(test)]
pub(crate) mod testkit {
    //! netsim in-process and a Facebook Login consent, for both adapters' tests.

    use crate::AppCredentials;
    use chorus_netsim::{Netsim, NetsimOptions};
    use reqwest::StatusCode;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    pub(crate) const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefghij";

    pub(crate) struct Harness {
        pub netsim: Netsim,
        pub base_url: String,
        shutdown: CancellationToken,
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    pub(crate) async fn start_netsim(options: NetsimOptions) -> Harness {
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
        pub(crate) fn credentials(&self, request_timeout: Duration) -> AppCredentials {
            let graph = format!("{}/graph", self.base_url);
            AppCredentials {
                api_base_url: graph.clone(),
                auth_base_url: format!("{graph}/"),
                client_id: "chorus-test".to_string(),
                client_secret: "test-secret".to_string(),
                redirect_url: "http://127.0.0.1:9/oauth/callback".to_string(),
                api_version: "v21.0".to_string(),
                request_timeout,
            }
        }

        /// Follows the authorize URL as `member_id`; returns the code.
        pub(crate) async fn consent(&self, authorize_url: &str, member_id: &str) -> String {
            let browser = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let response = browser
                .get(format!("{authorize_url}&member={member_id}"))
                .send()
                .await
                .expect("the dialog answers");
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
    }

    pub(crate) fn challenge() -> String {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER))
    }
}
