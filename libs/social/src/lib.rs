//! One adapter per social network, speaking its real wire format; caption rules per
//! network as data; rate-limit policies.
//!
//! Every adapter is exercised against `netsim`, the local simulator of the networks.

pub mod bluesky;
pub mod captions;
pub mod limits;
pub mod linkedin;
pub mod mastodon;
pub mod meta;
mod transport;
pub mod x;

use std::time::Duration;

/// The networks Chorus publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Linkedin,
    X,
    Facebook,
    Instagram,
    Mastodon,
    Bluesky,
}

impl Network {
    pub const ALL: &'static [Network] = &[
        Network::Linkedin,
        Network::X,
        Network::Facebook,
        Network::Instagram,
        Network::Mastodon,
        Network::Bluesky,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Network::Linkedin => "linkedin",
            Network::X => "x",
            Network::Facebook => "facebook",
            Network::Instagram => "instagram",
            Network::Mastodon => "mastodon",
            Network::Bluesky => "bluesky",
        }
    }

    /// The network's name as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Network::Linkedin => "LinkedIn",
            Network::X => "X",
            Network::Facebook => "Facebook",
            Network::Instagram => "Instagram",
            Network::Mastodon => "Mastodon",
            Network::Bluesky => "Bluesky",
        }
    }

    pub fn parse(text: &str) -> Option<Network> {
        Network::ALL
            .iter()
            .copied()
            .find(|network| network.as_str() == text)
    }

    /// How an advocate connects an account of this network.
    pub fn connect_method(self) -> ConnectMethod {
        match self {
            Network::Bluesky => ConnectMethod::AppPassword,
            _ => ConnectMethod::OAuth,
        }
    }
}

/// How an account is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectMethod {
    /// OAuth 2.0 authorization code with PKCE (S256).
    OAuth,
    /// A session opened with the member's handle and an app password (Bluesky).
    AppPassword,
}

impl std::fmt::Display for Network {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Where an adapter finds the network and who the application is.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub api_base_url: String,
    pub auth_base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    /// Version header where the network versions its API (LinkedIn-Version).
    pub api_version: String,
    pub request_timeout: Duration,
}

/// Tokens obtained from a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub refresh_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scope: Option<String>,
}

/// The member behind a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The network's id of the member (LinkedIn: the `sub` of userinfo).
    pub id: String,
    pub display_name: String,
}

/// Where an adapter keeps what an attempt left on the network before the post exists
/// (Instagram's media container), by the share's idempotency key: the next attempt, in this
/// process or another after a crash, continues with it instead of starting a second post.
#[async_trait::async_trait]
pub trait AttemptRefs: Send + Sync {
    async fn get(&self, key: &str) -> Option<String>;
    /// Kept before the adapter goes on: an error stops the attempt (nothing published yet).
    async fn put(&self, key: &str, reference: &str) -> Result<(), NetworkError>;
    async fn forget(&self, key: &str);
}

/// References kept in memory (lost with the process), for tools and tests.
#[derive(Default)]
pub struct MemoryRefs {
    references: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Entries a `MemoryRefs` holds at most (it forgets them all past that).
const MEMORY_REFS: usize = 10_000;

#[async_trait::async_trait]
impl AttemptRefs for MemoryRefs {
    async fn get(&self, key: &str) -> Option<String> {
        self.references
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    async fn put(&self, key: &str, reference: &str) -> Result<(), NetworkError> {
        let mut references = self
            .references
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if references.len() >= MEMORY_REFS {
            references.clear();
        }
        references.insert(key.to_string(), reference.to_string());
        Ok(())
    }

    async fn forget(&self, key: &str) {
        self.references
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

/// What to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRequest {
    /// The member's id on the network (author; Facebook: the Page id; Instagram: the
    /// professional account id; Bluesky: the DID).
    pub author_id: String,
    /// The full text, tracked link included.
    pub text: String,
    /// The share's tracked link, as it appears in `text` (Bluesky link facets).
    pub link_url: Option<String>,
    /// Public URL of the image to attach (required by Instagram).
    pub image_url: Option<String>,
    /// Alternative text of the image.
    pub image_alt: Option<String>,
    /// Stable per share across attempts (Mastodon's `Idempotency-Key`, Bluesky's rkey).
    pub idempotency_key: String,
}

/// A post that exists on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedRef {
    /// The network's id (LinkedIn: `urn:li:share:…`).
    pub external_id: String,
    /// Public URL of the post.
    pub url: String,
    /// True when the network said the post already existed (found, not created now).
    pub already_existed: bool,
    /// What is left of the tightest publishing window, when the network told it
    /// (rate-limit headers); the publisher slows down before it would be refused.
    pub budget: Option<RateBudget>,
}

/// The remaining allowance of a network's publishing window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    pub limit: u32,
    pub remaining: u32,
    pub resets_at: chrono::DateTime<chrono::Utc>,
    /// The window may end up to this long before `resets_at` (a reset given in whole
    /// seconds, rounded down, is moved to the next second: the window ends somewhere in the
    /// second before). Zero when the network gives the instant itself.
    pub reset_precision: std::time::Duration,
}

/// Engagement totals of a post as the network reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostMetrics {
    pub reactions: i64,
    pub comments: i64,
    pub reshares: i64,
    pub impressions: i64,
}

/// How a network call failed, classified for the publisher's decisions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Token invalid or expired: refresh once, then ask the advocate to reconnect.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The network refused the content (shown to the advocate as is).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Over a limit; wait `retry_after` when the network said how long.
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Temporary trouble before the network accepted anything: retry with back-off. A
    /// server error to a call that creates a post is not this (see `after_creation`).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The outcome is unknown (timeout, dropped connection, a server error to a creation):
    /// reconcile before any retry.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Our configuration is wrong (e.g. a retired API version): alert, do not retry.
    #[error("configuration: {0}")]
    Configuration(String),
}

impl NetworkError {
    /// The error of a call that creates a post, once the request was sent. A server's
    /// failure does not say whether it failed before or after the write (LinkedIn, X and
    /// Meta all answer 5xx for posts that exist; a gateway times out on a backend that
    /// goes on), so temporary trouble is an unknown outcome: the post is looked for before
    /// it is sent again. Definite refusals stay what they are.
    pub(crate) fn after_creation(self) -> NetworkError {
        match self {
            NetworkError::Unavailable(message) => NetworkError::OutcomeUnknown(message),
            other => other,
        }
    }

    /// Stable code for events and the API.
    pub fn code(&self) -> &'static str {
        match self {
            NetworkError::Unauthorized(_) => "unauthorized",
            NetworkError::Forbidden(_) => "forbidden",
            NetworkError::Invalid(_) => "invalid",
            NetworkError::RateLimited { .. } => "rate_limited",
            NetworkError::Unavailable(_) => "unavailable",
            NetworkError::OutcomeUnknown(_) => "outcome_unknown",
            NetworkError::Configuration(_) => "configuration",
        }
    }
}

/// A network's API as Chorus uses it.
#[async_trait::async_trait]
pub trait NetworkAdapter: Send + Sync {
    fn network(&self) -> Network;

    /// URL of the network's consent page (OAuth 2.0 authorization code with PKCE S256).
    /// Networks connected with an app password have none.
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String;

    /// Opens a session with the member's identifier and an app password (Bluesky).
    async fn create_session(
        &self,
        _identifier: &str,
        _app_password: &str,
    ) -> Result<TokenSet, NetworkError> {
        Err(NetworkError::Configuration(format!(
            "{} accounts connect through OAuth, not an app password",
            self.network()
        )))
    }

    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, NetworkError>;

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, NetworkError>;

    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError>;

    /// Creates the post. When the network reports that the identical post exists, returns
    /// it with `already_existed` (each Chorus text carries a unique tracked link, so an
    /// identical text is always this share's earlier attempt).
    async fn publish(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError>;

    /// After an attempt whose outcome is unknown: finds the post on the network, or
    /// `None` when the network confirms it is absent.
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError>;

    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError>;

    /// Size of the member's audience on the network (followers or connections), when the
    /// network tells it: the base of "potential reach".
    async fn audience_size(&self, _access_token: &str) -> Result<Option<i64>, NetworkError> {
        Ok(None)
    }

    /// The publishing allowance the network reports through a quota endpoint
    /// (Instagram's `content_publishing_limit`), read before posting; `None` when the
    /// network has no such endpoint.
    async fn publish_budget(
        &self,
        _access_token: &str,
        _author_id: &str,
    ) -> Result<Option<RateBudget>, NetworkError> {
        Ok(None)
    }
}

/// Builds the adapter of `network`.
pub fn adapter(
    network: Network,
    credentials: AppCredentials,
) -> std::sync::Arc<dyn NetworkAdapter> {
    adapter_with_refs(
        network,
        credentials,
        std::sync::Arc::new(MemoryRefs::default()),
    )
}

/// Like `adapter`, keeping the references an attempt leaves on the network (Instagram's
/// container) in `refs`, so that they survive the process.
pub fn adapter_with_refs(
    network: Network,
    credentials: AppCredentials,
    refs: std::sync::Arc<dyn AttemptRefs>,
) -> std::sync::Arc<dyn NetworkAdapter> {
    match network {
        Network::Linkedin => std::sync::Arc::new(linkedin::LinkedIn::new(credentials)),
        Network::X => std::sync::Arc::new(x::X::new(credentials)),
        Network::Facebook => std::sync::Arc::new(meta::Facebook::new(credentials)),
        Network::Instagram => std::sync::Arc::new(meta::Instagram::with_refs(credentials, refs)),
        Network::Mastodon => std::sync::Arc::new(mastodon::Mastodon::new(credentials)),
        Network::Bluesky => std::sync::Arc::new(bluesky::Bluesky::new(credentials)),
    }
}
