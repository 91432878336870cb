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

/// Where one kind of notification reaches a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KindPreference {
    /// `share_failed`, `badge_earned`, … (every kind is listed by GET).
    pub kind: String,
    /// In the inbox and on the live stream.
    pub in_app: bool,
    /// By e-mail (held during quiet hours).
    pub email: bool,
    /// On the person's registered phones and tablets (held during quiet hours); GET always
    /// says, PUT keeps the current choice when it is left out.
    #[serde(default)]
    pub push: Option<bool>,
}

/// A daily window without e-mail, in the person's time zone; `start` after `end` spans
/// midnight (22:00–07:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuietHours {
    /// `HH:MM`, 24-hour clock.
    #[schema(example = "22:00")]
    pub start: String,
    /// `HH:MM`, 24-hour clock.
    #[schema(example = "07:00")]
    pub end: String,
}

/// A person's notification preferences: GET shows every kind with its effective setting
/// (defaults where the person chose nothing); PUT changes the kinds it lists and replaces
/// quiet hours and time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationPreferences {
    pub items: Vec<KindPreference>,
    /// No e-mail in this window; e-mails due in it are sent when it ends.
    pub quiet_hours: Option<QuietHours>,
    /// IANA time zone of the quiet hours; the profile's time zone when unset.
    #[schema(example = "Europe/Paris")]
    pub time_zone: Option<String>,
    /// One e-mail per day or week (at 08:00 in the time zone, weekly on Mondays) listing the
    /// inbox notifications whose e-mail is off; none when unset.
    #[serde(default)]
    pub digest: Option<DigestFrequency>,
    /// Whether this installation sends e-mail at all (read only).
    #[serde(default)]
    pub email_available: bool,
    /// Push platforms this installation sends to (`fcm`, `apns`; read only).
    #[serde(default)]
    pub push_platforms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushPlatform {
    /// Firebase Cloud Messaging (Android, and iOS apps that use Firebase).
    Fcm,
    /// Apple Push Notification service.
    Apns,
}

/// Register a phone or tablet for push: the device token the app got from FCM or APNs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterDevice {
    pub platform: PushPlatform,
    pub token: String,
    /// A name for people (`Pixel 8`).
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub id: String,
    pub platform: PushPlatform,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Devices {
    pub items: Vec<Device>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceRef {
    pub device_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestFrequency {
    Daily,
    Weekly,
}

impl DigestFrequency {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestFrequency::Daily => "daily",
            DigestFrequency::Weekly => "weekly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamChannelType {
    /// A Slack incoming webhook (`https://hooks.slack.com/services/…`).
    Slack,
    /// A Microsoft Teams incoming webhook (Workflows or connector URL); messages are
    /// Adaptive Cards.
    Teams,
}

/// A team channel on Slack or Microsoft Teams that receives the tenant's notifications of
/// the listed kinds (for example `webhook_endpoint_disabled` for the admins' channel).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateTeamChannel {
    #[serde(rename = "type")]
    pub channel_type: TeamChannelType,
    /// A name for people (`#social-team`).
    pub name: String,
    /// The incoming webhook URL; kept encrypted and never shown again.
    pub url: String,
    /// Notification kinds posted to the channel.
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamChannel {
    pub id: String,
    #[serde(rename = "type")]
    pub channel_type: TeamChannelType,
    pub name: String,
    /// The URL's host only (the rest is a secret).
    pub host: String,
    pub kinds: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamChannels {
    pub items: Vec<TeamChannel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamChannelRef {
    pub channel_id: String,
}

/// What became of a notification on a channel other than the inbox.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelDelivery {
    pub id: String,
    /// `email`, `slack` or `teams`.
    pub channel: String,
    pub kind: String,
    /// `pending`, `sent`, `failed` (with `last_error`) or `skipped` (no address, person
    /// deactivated, channel removed).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelDeliveries {
    pub items: Vec<ChannelDelivery>,
}
