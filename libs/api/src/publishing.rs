use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"network": "linkedin"}))]
pub struct StartConnect {
    pub network: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectStarted {
    /// Open this URL in the advocate's browser; the network sends them back to the callback.
    pub authorize_url: String,
    pub state: String,
}

/// Connects an account of a network that signs in with an app password (Bluesky).
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"network": "bluesky", "identifier": "alice.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"}))]
pub struct AppPasswordConnect {
    pub network: String,
    /// The handle (or email) of the account.
    pub identifier: String,
    /// An app password created in the network's settings; used once, never stored.
    pub app_password: String,
}

/// Never shows the password.
impl std::fmt::Debug for AppPasswordConnect {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AppPasswordConnect")
            .field("network", &self.network)
            .field("identifier", &self.identifier)
            .field("app_password", &"***")
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct CompleteConnect {
    pub state: String,
    pub code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Connected,
    NeedsReconnect,
    Disconnected,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub user_id: String,
    pub network: String,
    pub external_id: String,
    pub display_name: String,
    pub status: AccountStatus,
    pub connected_at: chrono::DateTime<chrono::Utc>,
    pub access_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountRef {
    pub account_id: String,
}

/// Engagement totals of a published share, read from the network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareMetrics {
    pub reactions: i64,
    pub comments: i64,
    pub reshares: i64,
    pub impressions: i64,
}

/// How an administrator settles a share left `unconfirmed` (publishing gave up without
/// knowing whether the post exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[schema(example = json!({"outcome": "published", "external_id": "urn:li:share:7141000000000000001",
    "external_url": "https://www.linkedin.com/feed/update/urn:li:share:7141000000000000001/"}))]
pub enum ShareResolution {
    /// The post exists on the network (found by hand): the share is published with it.
    Published {
        external_id: String,
        #[serde(default)]
        external_url: Option<String>,
    },
    /// Look for the post again, and post it only if the network confirms it is absent.
    Retry,
    /// The post does not exist and must not be posted: the share fails with this reason.
    Failed { reason: String },
}

/// What the gateway sends to publishing for `POST /v1/shares/{share_id}/resolve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveShare {
    pub share_id: String,
    pub resolution: ShareResolution,
}

/// A resolution taken: the share's state follows through the usual events.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"share_id": "01a252f2-69d3-7251-adf4-89bb23c37f10", "outcome": "retry"}))]
pub struct ShareResolved {
    pub share_id: String,
    /// `published`, `retry` or `failed`.
    pub outcome: String,
}
