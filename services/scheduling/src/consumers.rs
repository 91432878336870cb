//! Outcomes from the publishers update the share as the advocate sees it.

use crate::entities::share;
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, inbox};
use chorus_events::identity::v1::{UserDeactivated, UserErased};
use chorus_events::share::v1 as events;
use chorus_kit::Shutdown;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};

pub async fn spawn(bus: &Bus, db: DatabaseConnection, shutdown: Shutdown) -> Result<(), BusError> {
    let on_published = db.clone();
    consumer::spawn::<events::SharePublished, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-share-published"),
        shutdown.clone(),
        move |delivery| {
            let db = on_published.clone();
            async move { share_published(&db, delivery).await }
        },
    )
    .await?;
    let on_failed = db.clone();
    consumer::spawn::<events::ShareFailed, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-share-failed"),
        shutdown.clone(),
        move |delivery| {
            let db = on_failed.clone();
            async move { share_failed(&db, delivery).await }
        },
    )
    .await?;
    let on_unconfirmed = db.clone();
    consumer::spawn::<events::ShareUnconfirmed, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-share-unconfirmed"),
        shutdown.clone(),
        move |delivery| {
            let db = on_unconfirmed.clone();
            async move {
                let event = delivery.event;
                set_final_status(
                    &db,
                    &delivery.event_id,
                    &delivery.tenant_id,
                    &event.share_id,
                    "unconfirmed",
                    &event.reason,
                )
                .await
            }
        },
    )
    .await?;
    let on_waiting = db.clone();
    consumer::spawn::<events::ShareWaiting, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-share-waiting"),
        shutdown.clone(),
        move |delivery| {
            let db = on_waiting.clone();
            async move { share_waiting(&db, delivery).await }
        },
    )
    .await?;
    let on_disconnected = db.clone();
    consumer::spawn::<events::AccountDisconnected, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-account-disconnected"),
        shutdown.clone(),
        move |delivery| {
            let db = on_disconnected.clone();
            async move { account_disconnected(&db, delivery).await }
        },
    )
    .await?;
    let on_deactivated = db.clone();
    consumer::spawn::<UserDeactivated, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-user-deactivated"),
        shutdown.clone(),
        move |delivery| {
            let db = on_deactivated.clone();
            async move {
                let event = delivery.event;
                cancel_pending(
                    &db,
                    &delivery.event_id,
                    &delivery.tenant_id,
                    share::Column::UserId,
                    &event.user_id,
                    "the advocate's account was deactivated",
                )
                .await
            }
        },
    )
    .await?;
    let on_erased = db.clone();
    consumer::spawn::<UserErased, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "scheduling-user-erased"),
        shutdown.clone(),
        move |delivery| {
            let db = on_erased.clone();
            async move { user_erased(&db, delivery).await }
        },
    )
    .await?;
    let on_reconnect = db.clone();
    consumer::spawn::<events::ShareNeedsReconnect, _, _>(
        bus,
        db,
        ConsumerSpec::new(crate::NAME, "scheduling-share-needs-reconnect"),
        shutdown,
        move |delivery| {
            let db = on_reconnect.clone();
            async move { share_needs_reconnect(&db, delivery).await }
        },
    )
    .await?;
    Ok(())
}

const CONSUMER: &str = "scheduling";

async fn share_published(
    db: &DatabaseConnection,
    delivery: Delivery<events::SharePublished>,
) -> Result<(), HandlerError> {
    let event = delivery.event;
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
        return Ok(());
    }
    let published_at =
        chorus_events::from_timestamp(event.published_at.as_ref()).unwrap_or_else(chrono::Utc::now);
    share::Entity::update_many()
        .col_expr(share::Column::Status, Expr::value("published"))
        .col_expr(
            share::Column::ExternalId,
            Expr::value(event.external_id.clone()),
        )
        .col_expr(
            share::Column::ExternalUrl,
            Expr::value(event.external_url.clone()),
        )
        .col_expr(share::Column::PublishedAt, Expr::value(published_at))
        .col_expr(
            share::Column::FailureReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(share::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(share::Column::Id.eq(event.share_id.clone()))
        .filter(share::Column::TenantId.eq(delivery.tenant_id.clone()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

async fn share_failed(
    db: &DatabaseConnection,
    delivery: Delivery<events::ShareFailed>,
) -> Result<(), HandlerError> {
    let event = delivery.event;
    set_final_status(
        db,
        &delivery.event_id,
        &delivery.tenant_id,
        &event.share_id,
        "failed",
        &event.reason,
    )
    .await
}

/// A due share waits (a rate limit, a posting window): the advocate sees what for and until
/// when. Only a share still due takes it, so a late message never marks a finished one.
async fn share_waiting(
    db: &DatabaseConnection,
    delivery: Delivery<events::ShareWaiting>,
) -> Result<(), HandlerError> {
    let event = delivery.event;
    let until = chorus_events::from_timestamp(event.until.as_ref());
    share::Entity::update_many()
        .col_expr(
            share::Column::WaitingFor,
            Expr::value(Some(event.reason.clone())),
        )
        .col_expr(share::Column::WaitingUntil, Expr::value(until))
        .filter(share::Column::Id.eq(event.share_id.clone()))
        .filter(share::Column::TenantId.eq(delivery.tenant_id.clone()))
        .filter(share::Column::Status.eq("due"))
        .exec(db)
        .await?;
    Ok(())
}

async fn share_needs_reconnect(
    db: &DatabaseConnection,
    delivery: Delivery<events::ShareNeedsReconnect>,
) -> Result<(), HandlerError> {
    let event = delivery.event;
    set_final_status(
        db,
        &delivery.event_id,
        &delivery.tenant_id,
        &event.share_id,
        "needs_reconnect",
        &event.reason,
    )
    .await
}

/// Cancels the account's shares that are not yet due, with the reason shown to the
/// advocate. (A share already due fails in the publisher: the account has no tokens.)
async fn account_disconnected(
    db: &DatabaseConnection,
    delivery: Delivery<events::AccountDisconnected>,
) -> Result<(), HandlerError> {
    let event = delivery.event;
    cancel_pending(
        db,
        &delivery.event_id,
        &delivery.tenant_id,
        share::Column::AccountId,
        &event.account_id,
        &event.reason,
    )
    .await
}

/// Cancels the shares not yet due whose `column` is `value` (an account's, a person's).
async fn cancel_pending(
    db: &DatabaseConnection,
    event_id: &str,
    tenant_id: &str,
    column: share::Column,
    value: &str,
    reason: &str,
) -> Result<(), HandlerError> {
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, event_id).await? {
        return Ok(());
    }
    let cancelled = share::Entity::update_many()
        .col_expr(share::Column::Status, Expr::value("cancelled"))
        .col_expr(share::Column::SlotAt, crate::rpc::no_slot())
        .col_expr(share::Column::FailureReason, Expr::value(reason))
        .col_expr(share::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(column.eq(value))
        .filter(share::Column::TenantId.eq(tenant_id))
        .filter(share::Column::Status.eq("scheduled"))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(
        cancelled = cancelled.rows_affected,
        reason,
        "pending shares cancelled"
    );
    Ok(())
}

/// An erased person's shares stay counted but no longer say who made them or what they
/// wrote; the ones not yet due are cancelled.
async fn user_erased(
    db: &DatabaseConnection,
    delivery: Delivery<UserErased>,
) -> Result<(), HandlerError> {
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
        return Ok(());
    }
    share::Entity::update_many()
        .col_expr(share::Column::Status, Expr::value("cancelled"))
        .col_expr(share::Column::SlotAt, crate::rpc::no_slot())
        .col_expr(
            share::Column::FailureReason,
            Expr::value("the advocate was erased"),
        )
        .col_expr(share::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(share::Column::UserId.eq(delivery.event.user_id.clone()))
        .filter(share::Column::TenantId.eq(delivery.tenant_id.clone()))
        .filter(share::Column::Status.eq("scheduled"))
        .exec(&txn)
        .await?;
    let erased = chorus_kit::db::erase_person(
        &txn,
        &delivery.tenant_id,
        &delivery.event.user_id,
        crate::PERSONAL_DATA,
    )
    .await?;
    txn.commit().await?;
    tracing::info!(rows = erased, "shares of an erased person anonymised");
    Ok(())
}

async fn set_final_status(
    db: &DatabaseConnection,
    event_id: &str,
    tenant_id: &str,
    share_id: &str,
    status: &str,
    reason: &str,
) -> Result<(), HandlerError> {
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, event_id).await? {
        return Ok(());
    }
    share::Entity::update_many()
        .col_expr(share::Column::Status, Expr::value(status))
        .col_expr(share::Column::FailureReason, Expr::value(reason))
        .col_expr(share::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(share::Column::Id.eq(share_id))
        .filter(share::Column::TenantId.eq(tenant_id))
        .filter(share::Column::Status.ne("published"))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
