use crate::PointRules;
use crate::entities::{balance, ledger};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, Outbox};
use chorus_events::engagement::v1::{EngagementRecorded, Metric};
use chorus_events::gamification::v1::PointsAwarded;
use chorus_events::share::v1::SharePublished;
use chorus_kit::Shutdown;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, EntityTrait, Set, TransactionTrait, TryInsertResult,
};
use std::sync::Arc;

pub struct Ledger {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub rules: PointRules,
}

pub async fn spawn(bus: &Bus, ledger: Arc<Ledger>, shutdown: Shutdown) -> Result<(), BusError> {
    let on_share = ledger.clone();
    consumer::spawn::<SharePublished, _, _>(
        bus,
        ledger.db.clone(),
        ConsumerSpec::new(crate::NAME, "gamification-share-published"),
        shutdown.clone(),
        move |delivery| {
            let ledger = on_share.clone();
            async move { ledger.share_published(delivery).await }
        },
    )
    .await?;
    let on_engagement = ledger.clone();
    consumer::spawn::<EngagementRecorded, _, _>(
        bus,
        ledger.db.clone(),
        ConsumerSpec::new(crate::NAME, "gamification-engagement-recorded"),
        shutdown,
        move |delivery| {
            let ledger = on_engagement.clone();
            async move { ledger.engagement_recorded(delivery).await }
        },
    )
    .await?;
    Ok(())
}

impl Ledger {
    async fn share_published(
        &self,
        delivery: Delivery<SharePublished>,
    ) -> Result<(), HandlerError> {
        let event = &delivery.event;
        let points = self.rules.share;
        self.credit(
            &delivery.tenant_id,
            &event.user_id,
            points,
            "share",
            &delivery.event_id,
            Some(&event.share_id),
        )
        .await
    }

    async fn engagement_recorded(
        &self,
        delivery: Delivery<EngagementRecorded>,
    ) -> Result<(), HandlerError> {
        let event = &delivery.event;
        let (action, per_unit) = match Metric::try_from(event.metric).unwrap_or(Metric::Unspecified)
        {
            Metric::Click => ("click", self.rules.click),
            Metric::Reaction => ("reaction", self.rules.reaction),
            Metric::Comment => ("comment", self.rules.comment),
            Metric::Reshare => ("reshare", self.rules.reshare),
            // Vanity and robots earn nothing.
            Metric::Impression | Metric::BotClick | Metric::Unspecified => return Ok(()),
        };
        let points = per_unit * event.delta;
        if points == 0 {
            return Ok(());
        }
        self.credit(
            &delivery.tenant_id,
            &event.user_id,
            points,
            action,
            &delivery.event_id,
            Some(&event.share_id),
        )
        .await
    }

    /// Appends a ledger entry, updates the balance and announces it, once per source event.
    async fn credit(
        &self,
        tenant_id: &str,
        user_id: &str,
        points: i64,
        action: &str,
        source_event_id: &str,
        share_id: Option<&str>,
    ) -> Result<(), HandlerError> {
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let entry = ledger::ActiveModel {
            tenant_id: Set(tenant_id.to_string()),
            user_id: Set(user_id.to_string()),
            points: Set(points),
            action: Set(action.to_string()),
            source_event_id: Set(source_event_id.to_string()),
            share_id: Set(share_id.map(str::to_string)),
            awarded_at: Set(now),
            ..Default::default()
        };
        let inserted = ledger::Entity::insert(entry)
            .on_conflict_do_nothing_on([
                ledger::Column::TenantId,
                ledger::Column::SourceEventId,
                ledger::Column::Action,
            ])
            .exec(&txn)
            .await?;
        if matches!(inserted, TryInsertResult::Conflicted) {
            txn.rollback().await?;
            return Ok(());
        }
        let balance = add_to_balance(&txn, tenant_id, user_id, points).await?;
        let event = PointsAwarded {
            tenant_id: tenant_id.to_string(),
            user_id: user_id.to_string(),
            points,
            action: action.to_string(),
            source_event_id: source_event_id.to_string(),
            share_id: share_id.unwrap_or_default().to_string(),
            balance,
            awarded_at: Some(chorus_events::to_timestamp(now)),
        };
        self.outbox
            .enqueue_with_id(&txn, &event, format!("points-{action}-{source_event_id}"))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(%tenant_id, %user_id, points, action, balance, "points awarded");
        Ok(())
    }
}

async fn add_to_balance(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    user_id: &str,
    points: i64,
) -> Result<i64, sea_orm::DbErr> {
    let row = balance::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        balance: Set(points),
    };
    balance::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([balance::Column::TenantId, balance::Column::UserId])
                .value(
                    balance::Column::Balance,
                    Expr::col((balance::Entity, balance::Column::Balance)).add(points),
                )
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    let current = balance::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
        .one(txn)
        .await?;
    Ok(current.map(|row| row.balance).unwrap_or(points))
}
