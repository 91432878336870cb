use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"post_id": "0193...", "account_id": "0193...", "caption": "Proud of our Lyon team, have a look!",
    "scheduled_at": "2026-11-24T09:00:00Z"}))]
pub struct ShareRequest {
    pub post_id: String,
    /// A connected account of the advocate (see `/v1/accounts`).
    pub account_id: String,
    /// The advocate's own words; the tracked link is appended.
    pub caption: String,
    /// When to publish; now when absent. Must not be in the past.
    #[serde(default)]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Into the advocate's next free posting slot (see `/v1/me/slots`) instead of a time.
    #[serde(default)]
    pub next_slot: bool,
}

/// A weekly posting slot, in the advocate's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostingSlot {
    /// `monday` … `sunday`.
    pub day: String,
    /// `HH:MM`, 24-hour.
    pub time: String,
}

/// The advocate's weekly posting slots: "share into my next slot" takes the first one that
/// no share of theirs holds yet.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"time_zone": "Europe/Paris", "slots": [{"day": "tuesday", "time": "08:30"}, {"day": "thursday", "time": "12:15"}]}))]
pub struct PostingSlots {
    /// IANA time zone of the slots.
    pub time_zone: String,
    /// Up to 28 slots.
    pub slots: Vec<PostingSlot>,
    /// The next free slots (answers only).
    #[serde(default)]
    pub upcoming: Vec<chrono::DateTime<chrono::Utc>>,
}

/// A change to a share that is not yet due: its caption, its time, or both.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"caption": "Proud of our Lyon team, have a look!", "scheduled_at": "2026-11-25T08:30:00Z"}))]
pub struct ShareEdit {
    /// The advocate's new words; the tracked link is appended again.
    #[serde(default)]
    pub caption: Option<String>,
    /// The new time; must not be in the past (a time now publishes it at once).
    #[serde(default)]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the gateway sends to scheduling once it checked a new caption.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditShare {
    pub share_id: String,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the gateway sends to scheduling once it checked the post and the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateShare {
    pub post_id: String,
    pub account_id: String,
    pub network: String,
    pub caption: String,
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub next_slot: bool,
    /// The post's link, before UTM parameters.
    pub link_url: String,
    /// The post's first image and its description, published with the share where the
    /// network takes an image (required on Instagram).
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub image_alt: Option<String>,
    /// The request's Idempotency-Key, hashed with its caller: a retry of the same request
    /// returns the share it created instead of a second one.
    #[serde(default)]
    pub request_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareStatus {
    Scheduled,
    Due,
    Published,
    Failed,
    NeedsReconnect,
    Cancelled,
    /// Publishing gave up without knowing whether the post exists (an attempt may have
    /// reached the network and could not be found); an administrator resolves it.
    Unconfirmed,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Share {
    pub id: String,
    pub user_id: String,
    pub post_id: String,
    pub account_id: String,
    pub network: String,
    pub caption: String,
    /// The exact text posted: caption and tracked link.
    pub text: String,
    pub tracked_url: String,
    pub status: ShareStatus,
    pub due_at: chrono::DateTime<chrono::Utc>,
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    /// Why the share failed, in the network's words.
    pub failure_reason: Option<String>,
    /// While it is due: what it waits for before it can go out (the network's rate limit,
    /// the account's posting window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// When it expects to go out, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareRef {
    pub share_id: String,
}
