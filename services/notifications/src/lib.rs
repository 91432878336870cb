//! Notifications: tells people what happened to their shares and points (the in-app inbox;
//! each (event, person, channel) is delivered once), and sends the tenant's events to its
//! integrators' webhook endpoints, signed per the Standard Webhooks specification.

mod alerts;
pub mod channels;
mod consumers;
mod entities;
mod migration;
mod rpc;
mod texts;
pub mod webhooks;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use secrecy::ExposeSecret;
use std::sync::Arc;

pub use migration::Migrator;

pub const NAME: &str = "notifications";

/// Runs the notifications service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let secrets = chorus_kit::auth::Secrets::resolve(&ctx.config)?;
    let keys = chorus_kit::crypto::KeyRing::parse(secrets.encryption_keys.expose_secret())?;
    let channels = Arc::new(channels::Channels::new(
        db.clone(),
        ctx.nats.clone(),
        keys.clone(),
        outbox.clone(),
        ctx.config.notifications.clone(),
        &ctx.config.public_url,
    )?);
    let notifier = Arc::new(consumers::Notifier {
        db: db.clone(),
        outbox: outbox.clone(),
        channels: channels.clone(),
    });
    consumers::spawn(&bus, notifier, shutdown.clone()).await?;
    let sender = channels::spawn(channels.clone(), shutdown.clone());
    let hooks = Arc::new(webhooks::Webhooks::new(
        db.clone(),
        keys,
        outbox,
        ctx.config.notifications.clone(),
    )?);
    let worker = webhooks::spawn(&bus, hooks.clone(), shutdown.clone()).await?;
    let state = Arc::new(rpc::Inbox { db });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    server
        .personal_data(state.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "inbox_list", state, list)?;
    endpoint!(server, "inbox_mark_read", state, mark_read)?;
    endpoint!(server, "webhook_event_types", hooks, event_types)?;
    endpoint!(server, "webhook_endpoint_create", hooks, create_endpoint)?;
    endpoint!(server, "webhook_endpoint_list", hooks, list_endpoints)?;
    endpoint!(server, "webhook_endpoint_get", hooks, get_endpoint)?;
    endpoint!(server, "webhook_endpoint_delete", hooks, delete_endpoint)?;
    endpoint!(server, "webhook_endpoint_enable", hooks, enable_endpoint)?;
    endpoint!(server, "webhook_secret_rotate", hooks, rotate_secret)?;
    endpoint!(server, "webhook_deliveries", hooks, list_deliveries)?;
    endpoint!(server, "webhook_replay", hooks, replay)?;
    endpoint!(server, "webhook_replay_failed", hooks, replay_failed)?;
    endpoint!(server, "webhook_settings_get", hooks, get_settings)?;
    endpoint!(server, "webhook_settings_set", hooks, set_settings)?;
    endpoint!(server, "preferences_get", channels, get_preferences)?;
    endpoint!(server, "preferences_set", channels, set_preferences)?;
    endpoint!(server, "channel_deliveries_mine", channels, my_deliveries)?;
    endpoint!(server, "team_channel_create", channels, create_team_channel)?;
    endpoint!(server, "team_channel_list", channels, list_team_channels)?;
    endpoint!(server, "team_channel_delete", channels, delete_team_channel)?;
    endpoint!(
        server,
        "team_channel_deliveries",
        channels,
        team_channel_deliveries
    )?;
    endpoint!(server, "device_register", channels, register_device)?;
    endpoint!(server, "device_list", channels, list_devices)?;
    endpoint!(server, "device_remove", channels, remove_device)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = worker.await;
    let _ = sender.await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] = &[
    chorus_kit::db::PersonalTable::deleted("people", "user_id"),
    chorus_kit::db::PersonalTable::deleted("notifications", "user_id"),
    chorus_kit::db::PersonalTable::deleted("notification_preferences", "user_id"),
    chorus_kit::db::PersonalTable::deleted("notification_quiet_hours", "user_id"),
    chorus_kit::db::PersonalTable::deleted("channel_messages", "recipient"),
    chorus_kit::db::PersonalTable::deleted("push_devices", "user_id").exporting(&[
        "id",
        "user_id",
        "platform",
        "name",
        "created_at",
        "last_used_at",
    ]),
];
