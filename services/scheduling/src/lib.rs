//! Scheduling: share requests, their time, and the due-loop that hands due shares to the
//! publishers. The share's state, as the advocate sees it, lives here.

pub mod bench;
mod consumers;
mod dueloop;
mod entities;
mod migration;
mod rpc;
mod slots;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use std::sync::Arc;

pub use migration::Migrator;

pub const NAME: &str = "scheduling";

/// Runs the scheduling service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let wake_due_loop = Arc::new(tokio::sync::Notify::new());
    let state = Arc::new(rpc::Scheduling {
        db: db.clone(),
        outbox: outbox.clone(),
        public_url: ctx.config.public_url.trim_end_matches('/').to_string(),
        wake_due_loop: wake_due_loop.clone(),
        stagger_window: chrono::Duration::seconds(ctx.config.scheduling.stagger_window_secs as i64),
    });
    consumers::spawn(&bus, db.clone(), shutdown.clone()).await?;
    let due_loop = dueloop::DueLoop {
        db,
        outbox,
        batch_size: ctx.config.scheduling.batch_size,
        max_idle: std::time::Duration::from_millis(ctx.config.scheduling.max_idle_ms),
        lead: std::time::Duration::from_millis(ctx.config.scheduling.emit_lead_ms),
        wake: wake_due_loop,
    };
    let due_task = tokio::spawn(due_loop.run(shutdown.clone()));
    let sweeper = dueloop::Sweeper {
        db: state.db.clone(),
        outbox: state.outbox.clone(),
        redrive_after: std::time::Duration::from_secs(ctx.config.scheduling.redrive_after_secs),
        interval: std::time::Duration::from_millis(ctx.config.scheduling.sweep_interval_ms),
    };
    let sweep_task = tokio::spawn(sweeper.run(shutdown.clone()));
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    server
        .personal_data(state.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "share_create", state, create_share)?;
    endpoint!(server, "slots_get", state, get_slots)?;
    endpoint!(server, "slots_set", state, set_slots)?;
    endpoint!(server, "share_get", state, get_share)?;
    endpoint!(server, "share_list", state, list_shares)?;
    endpoint!(server, "share_cancel", state, cancel_share)?;
    endpoint!(server, "share_edit", state, edit_share)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = due_task.await;
    let _ = sweep_task.await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] =
    &[chorus_kit::db::PersonalTable::kept("shares", "user_id").blanking(&["caption", "text"])];
