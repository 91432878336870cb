//! Content: the library of posts curators publish and advocates share.

mod entities;
mod migration;
mod rpc;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use std::sync::Arc;

pub use migration::Migrator;

pub const NAME: &str = "content";

/// Runs the content service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let state = Arc::new(rpc::ContentService { db, outbox });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    endpoint!(server, "post_create", state, create_post)?;
    endpoint!(server, "post_publish", state, publish_post)?;
    endpoint!(server, "post_get", state, get_post)?;
    endpoint!(server, "feed", state, feed)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = relay.await;
    Ok(())
}
