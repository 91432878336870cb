use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    /// `share_published`, `share_failed`, `account_needs_reconnect`, `points_awarded`, …
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inbox {
    pub unread: u64,
    /// Newest first.
    pub items: Vec<Notification>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationRef {
    pub notification_id: String,
}

/// Subscribe an HTTPS endpoint to the tenant's events.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateWebhookEndpoint {
    /// Where events are POSTed: https (plain http only where the tenant allows private
    /// destinations); refused when it resolves to a private, loopback or link-local address.
    #[schema(example = "https://hooks.example.com/chorus")]
    pub url: String,
    /// Event type names (`share.published.v1`, see `GET /v1/webhooks/event-types`); empty
    /// for every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEndpointStatus {
    Enabled,
    /// Disabled after failing for too long (or answering 410 Gone); an admin re-enables it.
    Disabled,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub status: WebhookEndpointStatus,
    pub disabled_reason: Option<String>,
    /// Start of the current run of failures, if the last attempt failed.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An endpoint with its signing secret, shown only when created or rotated.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEndpointCreated {
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEndpoints {
    pub items: Vec<WebhookEndpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEndpointRef {
    pub endpoint_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookSecretRotated {
    /// The new secret; it signs from now on.
    pub secret: String,
    /// Until then every message is signed with the old secret too.
    pub previous_valid_until: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryStatus {
    Pending,
    Succeeded,
    /// Every retry failed (or the endpoint was disabled); replay it once the endpoint works.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id` header: the event id.
    pub message_id: String,
    pub event_type: String,
    pub status: WebhookDeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookDeliveries {
    /// Newest first (at most 100).
    pub items: Vec<WebhookDelivery>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookDeliveryRef {
    pub endpoint_id: String,
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookSettings {
    /// Let endpoints resolve to private, loopback or link-local addresses (and use plain
    /// http): for integrations inside the company network. Off by default.
    pub allow_private_destinations: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEventTypes {
    pub items: Vec<String>,
}
