//! `chorus demo`: a company with departments and a few hundred advocates across cities,
//! time zones and languages; curators publishing a mix of content; advocates sharing with
//! their own words on LinkedIn, X, Facebook, Mastodon and Bluesky (now and scheduled);
//! faults and engagement arriving on the network simulator; a contest, points, badges and
//! notifications — on the embedded default, through the public API. The report at the end
//! is read back from the API. Also the typed API client the end-to-end tests use.

pub mod company;
pub mod report;
mod scenario;
pub mod traces;

use chorus_api::publishing::{Account, ConnectStarted};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::time::Duration;

/// A small typed client of the gateway.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub http: reqwest::Client,
    pub signing_key: Vec<u8>,
}

/// An error answer of the API (problem+json) or a transport failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: serde_json::Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "HTTP {}: {}", self.status, self.body)
    }
}

impl std::error::Error for ApiError {}

impl Api {
    pub fn new(base_url: &str, signing_key: Vec<u8>) -> Api {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Api {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            signing_key,
        }
    }

    pub fn token(&self, tenant: &str, user: &str, roles: &[Role]) -> String {
        chorus_kit::auth::mint(
            &self.signing_key,
            tenant,
            user,
            roles,
            chrono::Duration::hours(1),
        )
    }

    pub async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|error| ApiError {
            status: 0,
            body: json!(error.to_string()),
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|error| ApiError {
            status,
            body: json!(error.to_string()),
        })?;
        if !(200..300).contains(&status) {
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
            return Err(ApiError { status, body });
        }
        let bytes = if bytes.is_empty() {
            &b"{}"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|error| ApiError {
            status,
            body: json!(error.to_string()),
        })
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> Result<T, ApiError> {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// A POST that starts (or continues) the caller's trace: `traceparent` is a W3C header.
    pub async fn post_traced<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
        traceparent: &str,
    ) -> Result<T, ApiError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .header("traceparent", traceparent)
            .json(&body)
            .send()
            .await
            .map_err(|error| ApiError {
                status: 0,
                body: json!(error.to_string()),
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|error| ApiError {
            status,
            body: json!(error.to_string()),
        })?;
        if !(200..300).contains(&status) {
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
            return Err(ApiError { status, body });
        }
        serde_json::from_slice(&bytes).map_err(|error| ApiError {
            status,
            body: json!(error.to_string()),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T, ApiError> {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Shares `post_id` on the caller's `account_id` with `caption`, scheduled at `at`.
    pub async fn share_at(
        &self,
        token: &str,
        post_id: &str,
        account_id: &str,
        caption: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Share, ApiError> {
        self.post(
            "/v1/shares",
            token,
            json!({"post_id": post_id, "account_id": account_id, "caption": caption, "scheduled_at": at}),
        )
        .await
    }

    /// Connects a LinkedIn account for the caller: the OAuth round trip through netsim.
    pub async fn connect_linkedin(&self, token: &str, member: &str) -> Result<Account, ApiError> {
        self.connect(token, "linkedin", member).await
    }

    /// Connects an account of an OAuth network for the caller: the authorization code round
    /// trip (with PKCE) through netsim's consent page, as `member`.
    pub async fn connect(
        &self,
        token: &str,
        network: &str,
        member: &str,
    ) -> Result<Account, ApiError> {
        let started: ConnectStarted = self
            .post("/v1/accounts/connect", token, json!({"network": network}))
            .await?;
        let consent = self
            .http
            .get(format!("{}&member={member}", started.authorize_url))
            .send()
            .await
            .map_err(|error| ApiError {
                status: 0,
                body: json!(error.to_string()),
            })?;
        let location = consent
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| ApiError {
                status: consent.status().as_u16(),
                body: json!("no redirect from the consent page"),
            })?;
        let redirect = url::Url::parse(location).map_err(|error| ApiError {
            status: 0,
            body: json!(error.to_string()),
        })?;
        let code = redirect
            .query_pairs()
            .find(|(key, _)| key == "code")
            .map(|(_, value)| value.to_string())
            .unwrap_or_default();
        let state = redirect
            .query_pairs()
            .find(|(key, _)| key == "state")
            .map(|(_, value)| value.to_string())
            .unwrap_or_default();
        self.post(
            "/v1/accounts/callback",
            token,
            json!({"state": state, "code": code}),
        )
        .await
    }

    /// Waits until the share reaches a final state (or the timeout).
    pub async fn wait_final(
        &self,
        token: &str,
        share_id: &str,
        timeout: Duration,
    ) -> Result<Share, ApiError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let share: Share = self.get(&format!("/v1/shares/{share_id}"), token).await?;
            let done = matches!(
                share.status,
                ShareStatus::Published
                    | ShareStatus::Failed
                    | ShareStatus::NeedsReconnect
                    | ShareStatus::Cancelled
                    | ShareStatus::Unconfirmed
            );
            if done || tokio::time::Instant::now() > deadline {
                return Ok(share);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Follows a tracked link like a browser (or a bot) would; returns the redirect target.
    pub async fn click(
        &self,
        tracked_url: &str,
        user_agent: &str,
        forwarded_for: &str,
    ) -> Option<String> {
        let response = self
            .http
            .get(tracked_url)
            .header(reqwest::header::USER_AGENT, user_agent)
            .header("x-forwarded-for", forwarded_for)
            .send()
            .await
            .ok()?;
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    }
}

/// Options of `chorus demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Advocates in the demo company (the scenario scales with them).
    pub advocates: usize,
    /// Leave the API up after the report, until Ctrl-C.
    pub keep_running: bool,
    /// Scheduled shares are due within this long after they are created.
    pub schedule_over: Duration,
    /// Where the spans of the traced share's trace are recorded (`None`: an exporter set
    /// up elsewhere, such as OTLP, has them).
    pub traces: Option<traces::TraceRecorder>,
}

pub use report::Report;
pub use scenario::run;
