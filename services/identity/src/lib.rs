//! Identity: tenants, users and their roles. The gateway asks it who a caller is.

mod api_keys;
mod entities;
mod migration;
mod rpc;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use std::sync::Arc;

pub use migration::Migrator;

pub const NAME: &str = "identity";

/// Runs the identity service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let state = Arc::new(rpc::Identity { db, outbox });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    endpoint!(server, "tenant_create", state, create_tenant)?;
    endpoint!(server, "user_create", state, create_user)?;
    endpoint!(server, "user_get", state, get_user)?;
    endpoint!(server, "caller_resolve", state, resolve_caller)?;
    endpoint!(server, "api_key_create", state, create_api_key)?;
    endpoint!(server, "api_key_list", state, list_api_keys)?;
    endpoint!(server, "api_key_revoke", state, revoke_api_key)?;
    endpoint!(server, "api_key_resolve", state, resolve_api_key)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = relay.await;
    Ok(())
}
