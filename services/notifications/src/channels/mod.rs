//! Channels beyond the inbox: e-mail over SMTP to the person, and Slack or Microsoft Teams
//! team channels that receive chosen kinds. Each (event, recipient, channel) becomes one
//! `channel_messages` row written in the transaction that records the notification; a
//! worker claims due rows under a lease, sends, and retries on a jittered schedule. Every
//! row stands alone, so a failing channel never holds back another.
//!
//! What reaches whom follows each person's preferences (per kind and channel, with the
//! defaults of [`KINDS`]); e-mail waits out the person's quiet hours; the kinds a person
//! does not get by e-mail can come as a daily or weekly digest.

pub mod admin;
mod chat;
pub mod digest;
pub mod email;
pub mod push;
mod worker;

use crate::entities::{channel_message, preference, push_device, team_channel};
use chorus_bus::Outbox;
use chorus_kit::Shutdown;
use chorus_kit::config::NotificationsConfig;
use chorus_kit::crypto::KeyRing;
use chorus_telemetry::metrics;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use std::sync::{Arc, LazyLock};

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
pub const SKIPPED: &str = "skipped";

pub const IN_APP: &str = "in_app";
pub const EMAIL: &str = "email";
pub const PUSH: &str = "push";

/// Every notification kind with its default channels: (kind, in-app, e-mail, push).
/// Urgent and personal news goes by e-mail and push too; frequent small news stays in the
/// inbox.
pub const KINDS: &[(&str, bool, bool, bool)] = &[
    ("new_content", true, false, false),
    ("survey_waiting", true, false, true),
    ("share_published", true, false, false),
    ("share_failed", true, true, true),
    ("account_needs_reconnect", true, true, true),
    ("account_expiring", true, true, false),
    ("points_awarded", true, false, false),
    ("points_milestone", true, false, true),
    ("badge_earned", true, true, true),
    ("contest_started", true, false, false),
    ("contest_ending", true, false, true),
    ("contest_won", true, true, true),
    ("submission_approved", true, true, true),
    ("submission_rejected", true, true, false),
    ("post_waiting_review", true, true, true),
    ("submission_waiting", true, false, false),
    ("webhook_endpoint_disabled", true, true, false),
    ("publishing_failure_rate", true, true, true),
];

pub fn is_kind(kind: &str) -> bool {
    KINDS.iter().any(|(name, _, _, _)| *name == kind)
}

static SENDS: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_notification_channel_attempts_total",
        "E-mail, Slack and Teams notification attempts by channel and outcome (sent, retry, failed, skipped, deferred)",
        &["channel", "outcome"],
    )
});
static SEND_SECONDS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_notification_channel_seconds",
        "Time of one e-mail, Slack or Teams send",
        &["channel"],
    )
});
static QUEUED: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_notification_channel_queued_total",
        "Notifications queued for a channel other than the inbox",
        &["channel"],
    )
});

pub struct Channels {
    pub db: DatabaseConnection,
    pub nats: async_nats::Client,
    pub keys: KeyRing,
    pub outbox: Outbox,
    pub config: NotificationsConfig,
    pub wake: Arc<tokio::sync::Notify>,
    /// Local time when digests go out.
    pub digest_time: chrono::NaiveTime,
    mailer: Option<email::Mailer>,
    pub push: push::Push,
    http: reqwest::Client,
}

/// Where one notification goes besides the inbox.
pub struct Routing {
    pub in_app: bool,
    pub email: bool,
    pub push: bool,
}

impl Channels {
    pub fn new(
        db: DatabaseConnection,
        nats: async_nats::Client,
        keys: KeyRing,
        outbox: Outbox,
        config: NotificationsConfig,
        public_url: &str,
    ) -> anyhow::Result<Channels> {
        let mailer = email::Mailer::from_config(&config, public_url)?;
        let push = push::Push::from_config(&config)?;
        let http = chat::client_builder(&config).build()?;
        let digest_time = worker::parse_time(&config.digest_time).ok_or_else(|| {
            anyhow::anyhow!(
                "notifications.digest_time {:?} is not a time as HH:MM",
                config.digest_time
            )
        })?;
        Ok(Channels {
            digest_time,
            db,
            nats,
            keys,
            outbox,
            config,
            wake: Arc::new(tokio::sync::Notify::new()),
            mailer,
            push,
            http,
        })
    }

    pub fn email_available(&self) -> bool {
        self.mailer.is_some()
    }

    /// The person's channels for `kind`: their choice where they made one, else the default.
    pub async fn routing(
        &self,
        tenant_id: &str,
        user_id: &str,
        kind: &str,
    ) -> Result<Routing, DbErr> {
        let (_, default_in_app, default_email, default_push) = KINDS
            .iter()
            .find(|(name, _, _, _)| *name == kind)
            .copied()
            .unwrap_or((kind, true, false, false));
        let chosen = preference::Entity::find()
            .filter(preference::Column::TenantId.eq(tenant_id))
            .filter(preference::Column::UserId.eq(user_id))
            .filter(preference::Column::Kind.eq(kind))
            .all(&self.db)
            .await?;
        let choice = |channel: &str, default: bool| {
            chosen
                .iter()
                .find(|row| row.channel == channel)
                .map_or(default, |row| row.enabled)
        };
        Ok(Routing {
            in_app: choice(IN_APP, default_in_app),
            email: self.email_available() && choice(EMAIL, default_email),
            push: self.push.available() && choice(PUSH, default_push),
        })
    }

    /// Queues the notification for e-mail and push (as `routing` says; one message per
    /// device) and for every team channel of the tenant that takes `kind`, inside the
    /// caller's transaction; a repeated event queues nothing new.
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant_id: &str,
        user_id: &str,
        kind: &str,
        title: &str,
        body: &str,
        source_event_id: &str,
        routing: &Routing,
    ) -> Result<usize, DbErr> {
        let mut targets: Vec<(String, String)> = Vec::new();
        if routing.email {
            targets.push((user_id.to_string(), EMAIL.to_string()));
        }
        if routing.push {
            let platforms = self.push.platforms();
            let devices = push_device::Entity::find()
                .filter(push_device::Column::TenantId.eq(tenant_id))
                .filter(push_device::Column::UserId.eq(user_id))
                .all(txn)
                .await?;
            for device in devices
                .into_iter()
                .filter(|device| platforms.contains(&device.platform.as_str()))
            {
                targets.push((user_id.to_string(), format!("{PUSH}:{}", device.id)));
            }
        }
        let teams = team_channel::Entity::find()
            .filter(team_channel::Column::TenantId.eq(tenant_id))
            .all(txn)
            .await?;
        for team in teams {
            if team.kinds.split(',').any(|name| name == kind) {
                targets.push((format!("team:{}", team.id), team.channel_type.clone()));
            }
        }
        let now = chrono::Utc::now();
        let mut queued = 0;
        for (recipient, channel) in targets {
            let row = channel_message::ActiveModel {
                id: Set(format!("cm_{}", uuid::Uuid::now_v7().simple())),
                tenant_id: Set(tenant_id.to_string()),
                recipient: Set(recipient),
                kind: Set(kind.to_string()),
                channel: Set(channel.clone()),
                title: Set(title.to_string()),
                body: Set(body.to_string()),
                source_event_id: Set(source_event_id.to_string()),
                status: Set(PENDING.to_string()),
                attempts: Set(0),
                next_attempt_at: Set(now),
                lease_owner: Set(None),
                lease_until: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                sent_at: Set(None),
            };
            let inserted = channel_message::Entity::insert(row)
                .on_conflict_do_nothing_on([
                    channel_message::Column::TenantId,
                    channel_message::Column::Recipient,
                    channel_message::Column::SourceEventId,
                    channel_message::Column::Channel,
                ])
                .exec(txn)
                .await?;
            if !matches!(inserted, sea_orm::TryInsertResult::Conflicted) {
                QUEUED.with_label_values(&[label(&channel)]).inc();
                queued += 1;
            }
        }
        Ok(queued)
    }
}

/// The channel as metrics and APIs name it (`push:<device>` is `push`).
pub fn label(channel: &str) -> &str {
    channel.split(':').next().unwrap_or(channel)
}

/// Starts the worker that sends due channel messages.
pub fn spawn(channels: Arc<Channels>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    tokio::spawn(worker::run(channels, shutdown))
}

/// The start of a receiver's reply (its reason for refusing), for the delivery record.
pub(crate) async fn reply_excerpt(response: reqwest::Response) -> String {
    response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}
