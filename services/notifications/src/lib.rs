//! Notifications: tells people what happened to their shares and points. The in-app inbox
//! is the first channel; each (event, person, channel) is delivered once.

mod consumers;
mod entities;
mod migration;
mod rpc;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
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
    let notifier = Arc::new(consumers::Notifier {
        db: db.clone(),
        outbox,
    });
    consumers::spawn(&bus, notifier, shutdown.clone()).await?;
    let state = Arc::new(rpc::Inbox { db });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    endpoint!(server, "inbox_list", state, list)?;
    endpoint!(server, "inbox_mark_read", state, mark_read)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = relay.await;
    Ok(())
}
