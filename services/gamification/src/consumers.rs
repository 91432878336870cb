//! Events in: facts that earn points (shares, engagement by people, approved submissions,
//! survey answers), people (names, departments, deactivation) and posts (topics).
//!
//! The crediting consumers apply messages in stream order (engagement in batches, each
//! credit seeing the ones before it in the same transaction): caps, badges and contest
//! scores depend on what came before, so a replay of the same history gives the same ledger.

use crate::domain;
use crate::entities::{member, post, score};
use crate::ledger::{Credit, Ledger, Outcome};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, inbox};
use chorus_events::content::v1::{PostPublished, SubmissionApproved, SurveyAnswered};
use chorus_events::engagement::v1::{EngagementRecorded, Metric};
use chorus_events::identity::v1::{UserCreated, UserDeactivated, UserErased, UserUpdated};
use chorus_events::share::v1::SharePublished;
use chorus_kit::Shutdown;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use std::future::Future;
use std::sync::Arc;

const INBOX: &str = "gamification";

/// Engagement events credited together at most (one transaction, in stream order).
const ENGAGEMENT_BATCH: usize = 128;

/// What an engagement event earns: clicks by people, reactions, comments and reshares;
/// impressions and robots earn nothing.
fn engagement_credit(delivery: &Delivery<EngagementRecorded>) -> Option<Credit<'_>> {
    let event = &delivery.event;
    let action = match Metric::try_from(event.metric).unwrap_or(Metric::Unspecified) {
        Metric::Click => "click",
        Metric::Reaction => "reaction",
        Metric::Comment => "comment",
        Metric::Reshare => "reshare",
        Metric::Impression | Metric::BotClick | Metric::Unspecified => return None,
    };
    if event.delta == 0 {
        return None;
    }
    let occurred_at = chorus_events::from_timestamp(event.observed_at.as_ref())
        .or_else(|| domain::time_of_event_id(&delivery.event_id))
        .unwrap_or_else(chrono::Utc::now);
    Some(Credit {
        tenant_id: &delivery.tenant_id,
        user_id: &event.user_id,
        action,
        units: event.delta,
        source_event_id: &delivery.event_id,
        share_id: non_empty(&event.share_id),
        post_id: non_empty(&event.post_id),
        occurred_at,
    })
}

/// Credits the engagement events that are ready, in stream order, in one transaction.
async fn credit_engagement(
    ledger: Arc<Ledger>,
    deliveries: Vec<Delivery<EngagementRecorded>>,
) -> Result<(), HandlerError> {
    let txn = ledger.db.begin().await?;
    let mut credited = false;
    for delivery in &deliveries {
        let Some(credit) = engagement_credit(delivery) else {
            continue;
        };
        credited |= matches!(
            ledger.credit_in(&txn, credit).await?,
            Outcome::Credited { .. }
        );
    }
    txn.commit().await?;
    if credited {
        ledger.outbox.wake();
    }
    Ok(())
}

/// Every durable consumer of the service, as (stream, durable name).
pub const DURABLES: &[(&str, &str)] = &[
    ("CHORUS_SHARE", "gamification-share-published"),
    ("CHORUS_ENGAGEMENT", "gamification-engagement-recorded"),
    ("CHORUS_CONTENT", "gamification-submission-approved"),
    ("CHORUS_CONTENT", "gamification-survey-answered"),
    ("CHORUS_CONTENT", "gamification-post-published"),
    ("CHORUS_USER", "gamification-user-created"),
    ("CHORUS_USER", "gamification-user-updated"),
    ("CHORUS_USER", "gamification-user-deactivated"),
    ("CHORUS_USER", "gamification-user-erased"),
];

async fn listen<E, F, Fut>(
    bus: &Bus,
    ledger: &Arc<Ledger>,
    durable: &str,
    shutdown: &Shutdown,
    handler: F,
) -> Result<(), BusError>
where
    E: chorus_events::Event,
    F: Fn(Arc<Ledger>, Delivery<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let for_handler = ledger.clone();
    consumer::spawn::<E, _, _>(
        bus,
        ledger.db.clone(),
        ConsumerSpec::new(crate::NAME, durable).concurrency(1),
        shutdown.clone(),
        move |delivery| handler(for_handler.clone(), delivery),
    )
    .await?;
    Ok(())
}

pub async fn spawn(bus: &Bus, ledger: Arc<Ledger>, shutdown: Shutdown) -> Result<(), BusError> {
    listen::<SharePublished, _, _>(
        bus,
        &ledger,
        DURABLES[0].1,
        &shutdown,
        |ledger, delivery| async move {
            let event = &delivery.event;
            let occurred_at = chorus_events::from_timestamp(event.published_at.as_ref())
                .or_else(|| domain::time_of_event_id(&delivery.event_id))
                .unwrap_or_else(chrono::Utc::now);
            ledger
                .credit(Credit {
                    tenant_id: &delivery.tenant_id,
                    user_id: &event.user_id,
                    action: "share",
                    units: 1,
                    source_event_id: &delivery.event_id,
                    share_id: Some(&event.share_id),
                    post_id: non_empty(&event.post_id),
                    occurred_at,
                })
                .await?;
            Ok(())
        },
    )
    .await?;
    {
        let ledger = ledger.clone();
        consumer::spawn_batch::<EngagementRecorded, _, _>(
            bus,
            ledger.db.clone(),
            ConsumerSpec::new(crate::NAME, DURABLES[1].1).concurrency(1),
            ENGAGEMENT_BATCH,
            shutdown.clone(),
            move |deliveries| credit_engagement(ledger.clone(), deliveries),
        )
        .await?;
    }
    listen::<SubmissionApproved, _, _>(
        bus,
        &ledger,
        DURABLES[2].1,
        &shutdown,
        |ledger, delivery| async move {
            let event = &delivery.event;
            let occurred_at =
                domain::time_of_event_id(&delivery.event_id).unwrap_or_else(chrono::Utc::now);
            ledger
                .credit(Credit {
                    tenant_id: &delivery.tenant_id,
                    user_id: &event.author_id,
                    action: "submission_approved",
                    units: 1,
                    source_event_id: &delivery.event_id,
                    share_id: None,
                    post_id: non_empty(&event.post_id),
                    occurred_at,
                })
                .await?;
            Ok(())
        },
    )
    .await?;
    listen::<SurveyAnswered, _, _>(
        bus,
        &ledger,
        DURABLES[3].1,
        &shutdown,
        |ledger, delivery| async move {
            let event = &delivery.event;
            let occurred_at =
                domain::time_of_event_id(&delivery.event_id).unwrap_or_else(chrono::Utc::now);
            ledger
                .credit(Credit {
                    tenant_id: &delivery.tenant_id,
                    user_id: &event.user_id,
                    action: "survey_answered",
                    units: 1,
                    source_event_id: &delivery.event_id,
                    share_id: None,
                    post_id: None,
                    occurred_at,
                })
                .await?;
            Ok(())
        },
    )
    .await?;
    listen::<PostPublished, _, _>(
        bus,
        &ledger,
        DURABLES[4].1,
        &shutdown,
        |ledger, delivery| async move {
            let event = &delivery.event;
            let txn = ledger.db.begin().await?;
            let row = post::ActiveModel {
                tenant_id: Set(delivery.tenant_id.clone()),
                post_id: Set(event.post_id.clone()),
                topics: Set(serde_json::to_string(&event.topics).unwrap_or_else(|_| "[]".into())),
            };
            post::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([post::Column::TenantId, post::Column::PostId])
                        .update_column(post::Column::Topics)
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            txn.commit().await?;
            Ok(())
        },
    )
    .await?;
    listen_profile::<UserCreated>(bus, &ledger, DURABLES[5].1, &shutdown).await?;
    listen_profile::<UserUpdated>(bus, &ledger, DURABLES[6].1, &shutdown).await?;
    listen::<UserDeactivated, _, _>(
        bus,
        &ledger,
        DURABLES[7].1,
        &shutdown,
        |ledger, delivery| async move {
            hide_member(
                &ledger,
                &delivery.event_id,
                &delivery.tenant_id,
                &delivery.event.user_id,
                false,
            )
            .await
        },
    )
    .await?;
    listen::<UserErased, _, _>(
        bus,
        &ledger,
        DURABLES[8].1,
        &shutdown,
        |ledger, delivery| async move {
            hide_member(
                &ledger,
                &delivery.event_id,
                &delivery.tenant_id,
                &delivery.event.user_id,
                true,
            )
            .await
        },
    )
    .await?;
    Ok(())
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn normalise_department(department: &str) -> String {
    department.trim().to_lowercase()
}

/// Keeps names and departments; the member's board rows follow a change of department.
/// Keeps names and departments for the boards current from `user.created` and `user.updated`.
async fn listen_profile<E: chorus_events::UserProfileEvent>(
    bus: &Bus,
    ledger: &Arc<Ledger>,
    durable: &str,
    shutdown: &Shutdown,
) -> Result<(), BusError> {
    listen::<E, _, _>(
        bus,
        ledger,
        durable,
        shutdown,
        |ledger, delivery: Delivery<E>| async move {
            let event = &delivery.event;
            upsert_member(
                &ledger,
                &delivery.event_id,
                &delivery.tenant_id,
                event.user_id(),
                event.display_name(),
                event.department(),
            )
            .await
        },
    )
    .await
}

async fn upsert_member(
    ledger: &Ledger,
    event_id: &str,
    tenant_id: &str,
    user_id: &str,
    display_name: &str,
    department: &str,
) -> Result<(), HandlerError> {
    let department = normalise_department(department);
    let txn = ledger.db.begin().await?;
    if !inbox::record(&txn, INBOX, event_id).await? {
        return Ok(());
    }
    let row = member::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        display_name: Set(display_name.to_string()),
        department: Set(department.clone()),
        active: Set(true),
        hide_name: Set(false),
    };
    member::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([member::Column::TenantId, member::Column::UserId])
                .update_columns([member::Column::DisplayName, member::Column::Department])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    score::Entity::update_many()
        .col_expr(
            score::Column::Department,
            sea_orm::sea_query::Expr::value(department),
        )
        .filter(score::Column::TenantId.eq(tenant_id))
        .filter(score::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Deactivated and erased people leave the boards; their ledger stays.
async fn hide_member(
    ledger: &Ledger,
    event_id: &str,
    tenant_id: &str,
    user_id: &str,
    erase_name: bool,
) -> Result<(), HandlerError> {
    let txn = ledger.db.begin().await?;
    if !inbox::record(&txn, INBOX, event_id).await? {
        return Ok(());
    }
    let row = member::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        display_name: Set(String::new()),
        department: Set(String::new()),
        active: Set(false),
        hide_name: Set(erase_name),
    };
    let mut updated = vec![member::Column::Active];
    if erase_name {
        updated.extend([member::Column::DisplayName, member::Column::HideName]);
    }
    member::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([member::Column::TenantId, member::Column::UserId])
                .update_columns(updated)
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    score::Entity::update_many()
        .col_expr(
            score::Column::Visible,
            sea_orm::sea_query::Expr::value(false),
        )
        .filter(score::Column::TenantId.eq(tenant_id))
        .filter(score::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    if erase_name {
        // Points stay in the totals under a pseudonym; nothing names the person any more.
        chorus_kit::db::erase_person(&txn, tenant_id, user_id, crate::PERSONAL_DATA).await?;
    }
    txn.commit().await?;
    Ok(())
}
