//! Identity: tenants, users and their roles. The gateway asks it who a caller is.

mod api_keys;
mod entities;
mod migration;
mod rpc;
mod scim;

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
    server
        .personal_data(state.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "tenant_create", state, create_tenant)?;
    endpoint!(server, "user_create", state, create_user)?;
    endpoint!(server, "user_get", state, get_user)?;
    endpoint!(server, "caller_resolve", state, resolve_caller)?;
    endpoint!(server, "api_key_create", state, create_api_key)?;
    endpoint!(server, "api_key_list", state, list_api_keys)?;
    endpoint!(server, "api_key_revoke", state, revoke_api_key)?;
    endpoint!(server, "api_key_resolve", state, resolve_api_key)?;
    endpoint!(server, "user_erase", state, erase_user)?;
    endpoint!(server, "user_update", state, user_update)?;
    endpoint!(server, "guidelines_accept", state, accept_guidelines)?;
    endpoint!(server, "scim_user_create", state, scim_create_user)?;
    endpoint!(server, "scim_user_get", state, scim_get_user)?;
    endpoint!(server, "scim_user_list", state, scim_list_users)?;
    endpoint!(server, "scim_user_replace", state, scim_replace_user)?;
    endpoint!(server, "scim_user_patch", state, scim_patch_user)?;
    endpoint!(server, "scim_group_create", state, scim_create_group)?;
    endpoint!(server, "scim_group_get", state, scim_get_group)?;
    endpoint!(server, "scim_group_list", state, scim_list_groups)?;
    endpoint!(server, "scim_group_replace", state, scim_replace_group)?;
    endpoint!(server, "scim_group_patch", state, scim_patch_group)?;
    endpoint!(server, "scim_group_delete", state, scim_delete_group)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] = &[
    chorus_kit::db::PersonalTable::deleted("users", "id"),
    chorus_kit::db::PersonalTable::deleted("group_members", "user_id"),
    chorus_kit::db::PersonalTable::deleted("api_keys", "user_id").exporting(&[
        "id",
        "user_id",
        "name",
        "roles",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]),
];
