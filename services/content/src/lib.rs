//! Content: the library advocates share from. Posts with per-network captions, language
//! variants, targeting and a reviewed lifecycle; compliance rules; employee submissions;
//! the personal feed; pulse surveys and eNPS.

mod consumers;
mod domain;
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
    consumers::spawn(&bus, db.clone(), shutdown.clone()).await?;
    let state = Arc::new(rpc::ContentService {
        db,
        outbox,
        nats: ctx.nats.clone(),
    });
    let expiry = tokio::spawn({
        let state = state.clone();
        let shutdown = shutdown.clone();
        async move {
            let mut purged_at: Option<std::time::Instant> = None;
            loop {
                if let Err(error) = state.expire_due().await {
                    tracing::warn!(%error, "post expiry failed");
                }
                if purged_at.is_none_or(|at| at.elapsed() > std::time::Duration::from_secs(3600)) {
                    purged_at = Some(std::time::Instant::now());
                    if let Err(error) = rpc::audit_log::purge(&state.db).await {
                        tracing::warn!(%error, "audit retention purge failed");
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
        }
    });
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    server
        .personal_data(state.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "post_create", state, create_post)?;
    endpoint!(server, "post_update", state, update_post)?;
    endpoint!(server, "post_get", state, get_post)?;
    endpoint!(server, "post_list", state, list_posts)?;
    endpoint!(server, "post_submit_review", state, submit_for_review)?;
    endpoint!(server, "post_approve", state, approve)?;
    endpoint!(server, "post_request_changes", state, request_changes)?;
    endpoint!(server, "post_publish", state, publish_post)?;
    endpoint!(server, "post_archive", state, archive_post)?;
    endpoint!(server, "feed", state, feed)?;
    endpoint!(server, "topic_follow", state, follow_topic)?;
    endpoint!(server, "topic_unfollow", state, unfollow_topic)?;
    endpoint!(server, "topic_list", state, my_topics)?;
    endpoint!(server, "preferences_set", state, set_preferences)?;
    endpoint!(server, "rule_create", state, create_rule)?;
    endpoint!(server, "rule_list", state, list_rules)?;
    endpoint!(server, "rule_delete", state, delete_rule)?;
    endpoint!(server, "caption_check", state, check_caption)?;
    endpoint!(server, "audit_list", state, audit_log)?;
    endpoint!(server, "audit_export", state, audit_export)?;
    endpoint!(server, "audit_settings_get", state, audit_settings)?;
    endpoint!(server, "audit_settings_set", state, set_audit_settings)?;
    endpoint!(server, "submission_create", state, create_submission)?;
    endpoint!(server, "submission_list", state, list_submissions)?;
    endpoint!(server, "submission_approve", state, approve_submission)?;
    endpoint!(server, "submission_reject", state, reject_submission)?;
    endpoint!(server, "survey_create", state, create_survey)?;
    endpoint!(server, "survey_list", state, list_surveys)?;
    endpoint!(server, "survey_answer", state, answer_survey)?;
    endpoint!(server, "survey_results", state, survey_results)?;
    endpoint!(server, "post_audience", state, post_audience)?;
    endpoint!(server, "survey_audience", state, survey_audience)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = expiry.await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] = &[
    chorus_kit::db::PersonalTable::deleted("members", "user_id"),
    chorus_kit::db::PersonalTable::deleted("follows", "user_id"),
    chorus_kit::db::PersonalTable::deleted("survey_participation", "user_id"),
    chorus_kit::db::PersonalTable::kept("post_shares", "user_id"),
    chorus_kit::db::PersonalTable::kept("submissions", "author"),
    chorus_kit::db::PersonalTable::kept("posts", "created_by"),
    chorus_kit::db::PersonalTable::kept("audit_log", "actor"),
];
