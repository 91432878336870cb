//! Integrator webhooks: tenants subscribe HTTPS endpoints to event types; every matching
//! event is POSTed as JSON signed per the Standard Webhooks specification, retried on a
//! jittered schedule, and an endpoint that keeps failing is disabled (admins are told).
//!
//! Flow: `fanout` reads every domain stream and writes one message (the exact body) and
//! one pending delivery per subscribed endpoint in one transaction; `delivery` claims due
//! deliveries with a lease (so several replicas never send the same attempt twice), signs,
//! sends and records the outcome.

pub mod admin;
mod delivery;
pub mod destination;
mod fanout;
pub mod signing;

use crate::entities::{webhook_endpoint, webhook_settings};
use chorus_api::notifications::{WebhookEndpoint, WebhookEndpointStatus};
use chorus_bus::{Bus, BusError, Outbox};
use chorus_kit::Shutdown;
use chorus_kit::config::NotificationsConfig;
use chorus_kit::crypto::KeyRing;
use chorus_telemetry::metrics;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub const ENABLED: &str = "enabled";
pub const DISABLED: &str = "disabled";
pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// How long a rotated secret keeps signing beside the new one.
pub const ROTATION_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

static DELIVERIES: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_webhook_attempts_total",
        "Integrator webhook attempts by outcome (succeeded, retry, failed, refused)",
        &["outcome"],
    )
});
static ATTEMPT_SECONDS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_webhook_attempt_seconds",
        "Time of one webhook request, from connect to response",
        &["outcome"],
    )
});
static FANOUT: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_webhook_fanout_total",
        "Events examined for integrator webhooks (queued: at least one endpoint subscribed)",
        &["outcome"],
    )
});
static DISABLED_TOTAL: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_webhook_endpoints_disabled_total",
        "Endpoints disabled after sustained failure or 410 Gone",
        &["reason"],
    )
});

pub struct Webhooks {
    pub db: DatabaseConnection,
    pub keys: KeyRing,
    pub outbox: Outbox,
    pub config: NotificationsConfig,
    /// Woken when deliveries become due (new messages, replays, finished attempts).
    pub wake: Arc<tokio::sync::Notify>,
    /// For tenants that allow private destinations (no address pinning needed).
    client: reqwest::Client,
}

impl Webhooks {
    pub fn new(
        db: DatabaseConnection,
        keys: KeyRing,
        outbox: Outbox,
        config: NotificationsConfig,
    ) -> anyhow::Result<Webhooks> {
        let client = client_builder(&config).build()?;
        Ok(Webhooks {
            db,
            keys,
            outbox,
            config,
            wake: Arc::new(tokio::sync::Notify::new()),
            client,
        })
    }

    /// Whether the tenant lets endpoints reach private addresses.
    pub async fn allow_private(&self, tenant_id: &str) -> Result<bool, DbErr> {
        Ok(webhook_settings::Entity::find_by_id(tenant_id.to_string())
            .one(&self.db)
            .await?
            .is_some_and(|settings| settings.allow_private_destinations))
    }

    /// The secrets that sign now: the current one, and the rotated one during its grace.
    fn secrets(
        &self,
        endpoint: &webhook_endpoint::Model,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, chorus_kit::crypto::CryptoError> {
        let mut secrets = vec![
            self.keys
                .decrypt(&endpoint.secret_key_id, &endpoint.secret_cipher)?,
        ];
        if let (Some(key_id), Some(cipher), Some(until)) = (
            &endpoint.previous_key_id,
            &endpoint.previous_cipher,
            endpoint.previous_expires_at,
        ) && until > now
        {
            secrets.push(self.keys.decrypt(key_id, cipher)?);
        }
        Ok(secrets)
    }
}

fn client_builder(config: &NotificationsConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // A redirect could lead to an address that was never checked.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(config.webhook_timeout_ms))
        .connect_timeout(Duration::from_millis(config.webhook_timeout_ms.min(5_000)))
        .user_agent(concat!("Chorus-Webhooks/", env!("CARGO_PKG_VERSION")))
}

/// Whether an endpoint receives events of `type_name`.
pub fn subscribes(endpoint: &webhook_endpoint::Model, type_name: &str) -> bool {
    endpoint.event_types.is_empty()
        || endpoint
            .event_types
            .split(',')
            .any(|name| name == type_name)
}

pub fn view(endpoint: webhook_endpoint::Model) -> WebhookEndpoint {
    WebhookEndpoint {
        id: endpoint.id,
        url: endpoint.url,
        description: endpoint.description,
        event_types: endpoint
            .event_types
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect(),
        status: if endpoint.status == ENABLED {
            WebhookEndpointStatus::Enabled
        } else {
            WebhookEndpointStatus::Disabled
        },
        disabled_reason: endpoint.disabled_reason,
        failing_since: endpoint.failing_since,
        created_at: endpoint.created_at,
    }
}

/// Starts the fan-out consumers and the delivery worker.
pub async fn spawn(
    bus: &Bus,
    webhooks: Arc<Webhooks>,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, BusError> {
    fanout::spawn(bus, webhooks.clone(), shutdown.clone()).await?;
    Ok(tokio::spawn(delivery::run(webhooks, shutdown)))
}
