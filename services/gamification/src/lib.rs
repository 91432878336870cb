//! Gamification: an append-only points ledger fed by shares and engagement. Engagement is
//! worth more than volume: by default a comment (30) or a click by a person (20) outweighs
//! a share (10); impressions and bot clicks earn nothing.

mod consumers;
mod entities;
mod migration;
mod rpc;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use std::sync::Arc;

pub use migration::Migrator;

pub const NAME: &str = "gamification";

/// Points per action, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct PointRules {
    pub share: i64,
    pub click: i64,
    pub reaction: i64,
    pub comment: i64,
    pub reshare: i64,
}

/// Runs the gamification service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let points = &ctx.config.gamification;
    let rules = PointRules {
        share: points.points_share,
        click: points.points_click,
        reaction: points.points_reaction,
        comment: points.points_comment,
        reshare: points.points_reshare,
    };
    let ledger = Arc::new(consumers::Ledger {
        db: db.clone(),
        outbox,
        rules,
    });
    consumers::spawn(&bus, ledger, shutdown.clone()).await?;
    let state = Arc::new(rpc::Gamification { db });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    endpoint!(server, "points_me", state, my_points)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = relay.await;
    Ok(())
}
