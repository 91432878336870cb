//! Gamification that rewards real engagement: an append-only points ledger priced by
//! versioned, tenant-configurable rules with daily and per-post caps; badges and streaks;
//! company and department leaderboards per week, month and all time; contests; a rewards
//! catalogue with approved redemptions.
//! Engagement is worth more than volume: by default a comment (30) or a click by a person
//! (20) outweighs a share (10); impressions and bot clicks earn nothing.

pub mod bench;
mod consumers;
mod contests;
mod domain;
mod entities;
mod ledger;
mod migration;
mod rewards;
mod rpc;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use std::sync::Arc;

pub use consumers::DURABLES;
pub use migration::Migrator;

pub const NAME: &str = "gamification";

/// Runs the gamification service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let ledger = Arc::new(ledger::Ledger {
        db: db.clone(),
        outbox: outbox.clone(),
        defaults: domain::default_rules(&ctx.config.gamification),
    });
    consumers::spawn(&bus, ledger.clone(), shutdown.clone()).await?;
    let finisher = contests::spawn_finisher(db.clone(), outbox, shutdown.clone());
    let state = Arc::new(rpc::Gamification { db, ledger });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    server
        .personal_data(state.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "points_me", state, my_points)?;
    endpoint!(server, "rules_get", state, rules)?;
    endpoint!(server, "rules_set", state, set_rules)?;
    endpoint!(server, "preferences_set", state, set_preferences)?;
    endpoint!(server, "leaderboard", state, leaderboard)?;
    endpoint!(server, "rank_me", state, my_rank)?;
    endpoint!(server, "badges_me", state, my_badges)?;
    endpoint!(server, "badge_grant", state, grant_badge)?;
    endpoint!(server, "contest_create", state, create_contest)?;
    endpoint!(server, "contest_list", state, list_contests)?;
    endpoint!(server, "contest_get", state, get_contest)?;
    endpoint!(server, "reward_create", state, create_reward)?;
    endpoint!(server, "reward_list", state, list_rewards)?;
    endpoint!(server, "reward_redeem", state, redeem)?;
    endpoint!(server, "redemption_list", state, list_redemptions)?;
    endpoint!(server, "redemption_approve", state, approve_redemption)?;
    endpoint!(server, "redemption_reject", state, reject_redemption)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = finisher.await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] = &[
    chorus_kit::db::PersonalTable::kept("members", "user_id")
        .blanking(&["display_name", "department"]),
    chorus_kit::db::PersonalTable::kept("balances", "user_id"),
    chorus_kit::db::PersonalTable::kept("ledger", "user_id"),
    chorus_kit::db::PersonalTable::kept("tallies", "user_id"),
    chorus_kit::db::PersonalTable::kept("scores", "user_id"),
    chorus_kit::db::PersonalTable::kept("badges", "user_id"),
    chorus_kit::db::PersonalTable::kept("redemptions", "user_id"),
];
