//! Engagement ingestion: tracked-link clicks (people apart from bots, unique visitors
//! without storing addresses) and network metrics polled on a decaying schedule, turned
//! into idempotent `engagement.recorded` deltas.

mod analytics;
mod consumers;
mod domain;
mod entities;
pub mod migration;
mod poller;
mod rpc;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use std::sync::Arc;
use std::time::Duration;

pub use migration::Migrator;

pub const NAME: &str = "engagement";

/// Runs the engagement service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let schedule: Vec<Duration> = ctx
        .config
        .engagement
        .poll_schedule_secs
        .iter()
        .map(|s| Duration::from_secs(*s))
        .collect();
    let ingest = Arc::new(consumers::Ingest {
        db: db.clone(),
        outbox: outbox.clone(),
        schedule: schedule.clone(),
        links: bus.links().await?,
    });
    consumers::spawn(&bus, ingest, shutdown.clone()).await?;
    let poll_now = Arc::new(tokio::sync::Notify::new());
    let poller = poller::Poller {
        db: db.clone(),
        outbox,
        nats: ctx.nats.clone(),
        schedule,
        tick: Duration::from_millis(ctx.config.engagement.poll_tick_ms),
        wake: poll_now.clone(),
    };
    let poll_task = tokio::spawn(poller.run(shutdown.clone()));
    let state = Arc::new(rpc::Engagement { db, poll_now });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    server
        .personal_data(state.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "link_resolve", state, resolve_link)?;
    endpoint!(server, "share_stats", state, share_stats)?;
    endpoint!(server, "network_activity", state, network_activity)?;
    endpoint!(server, "analytics_summary", state, summary)?;
    endpoint!(server, "analytics_breakdown", state, breakdown)?;
    endpoint!(server, "analytics_me", state, personal)?;
    endpoint!(server, "analytics_settings_get", state, get_settings)?;
    endpoint!(server, "analytics_settings_put", state, put_settings)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = poll_task.await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] = &[
    chorus_kit::db::PersonalTable::deleted("members", "user_id"),
    chorus_kit::db::PersonalTable::kept("links", "user_id"),
    chorus_kit::db::PersonalTable::kept("tracked_shares", "user_id"),
    chorus_kit::db::PersonalTable::kept("observations", "user_id"),
];
