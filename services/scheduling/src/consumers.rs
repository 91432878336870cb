//! Outcomes from the publishers update the share as the advocate sees it.

use crate::entities::share;
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, inbox};
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
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
        return Ok(());
    }
    let cancelled = share::Entity::update_many()
        .col_expr(share::Column::Status, Expr::value("cancelled"))
        .col_expr(
            share::Column::FailureReason,
            Expr::value(event.reason.clone()),
        )
        .col_expr(share::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(share::Column::AccountId.eq(event.account_id.clone()))
        .filter(share::Column::TenantId.eq(delivery.tenant_id.clone()))
        .filter(share::Column::Status.eq("scheduled"))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(account_id = %event.account_id, cancelled = cancelled.rows_affected, "pending shares of a disconnected account cancelled");
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
