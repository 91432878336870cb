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
