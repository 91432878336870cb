use crate::entities::{link, metric_total, tracked_share, visitor};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, Outbox, inbox};
use chorus_events::engagement::v1::{EngagementRecorded, LinkClicked, Metric};
use chorus_events::share::v1::{SharePublished, ShareScheduled};
use chorus_kit::Shutdown;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Set, TransactionTrait, TryInsertResult,
};
use std::sync::Arc;
use std::time::Duration;

pub struct Ingest {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub schedule: Vec<Duration>,
}

const CONSUMER: &str = "engagement";

pub async fn spawn(bus: &Bus, ingest: Arc<Ingest>, shutdown: Shutdown) -> Result<(), BusError> {
    let on_scheduled = ingest.clone();
    consumer::spawn::<ShareScheduled, _, _>(
        bus,
        ingest.db.clone(),
        ConsumerSpec::new(crate::NAME, "engagement-share-scheduled"),
        shutdown.clone(),
        move |delivery| {
            let ingest = on_scheduled.clone();
            async move { ingest.share_scheduled(delivery).await }
        },
    )
    .await?;
    let on_published = ingest.clone();
    consumer::spawn::<SharePublished, _, _>(
        bus,
        ingest.db.clone(),
        ConsumerSpec::new(crate::NAME, "engagement-share-published"),
        shutdown.clone(),
        move |delivery| {
            let ingest = on_published.clone();
            async move { ingest.share_published(delivery).await }
        },
    )
    .await?;
    let on_click = ingest.clone();
    consumer::spawn::<LinkClicked, _, _>(
        bus,
        ingest.db.clone(),
        ConsumerSpec::new(crate::NAME, "engagement-link-clicked").concurrency(4),
        shutdown,
        move |delivery| {
            let ingest = on_click.clone();
            async move { ingest.link_clicked(delivery).await }
        },
    )
    .await?;
    Ok(())
}

pub fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Click => "click",
        Metric::BotClick => "bot_click",
        Metric::Reaction => "reaction",
        Metric::Comment => "comment",
        Metric::Reshare => "reshare",
        Metric::Impression => "impression",
        Metric::Unspecified => "unspecified",
    }
}

/// Adds `delta` to a share's metric; returns the new total.
pub async fn add_to_total<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    share_id: &str,
    metric: Metric,
    delta: i64,
) -> Result<i64, DbErr> {
    let current =
        metric_total::Entity::find_by_id((share_id.to_string(), metric_name(metric).to_string()))
            .one(conn)
            .await?;
    let total = current.map(|row| row.total).unwrap_or(0) + delta;
    let row = metric_total::ActiveModel {
        share_id: Set(share_id.to_string()),
        metric: Set(metric_name(metric).to_string()),
        tenant_id: Set(tenant_id.to_string()),
        total: Set(total),
    };
    metric_total::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([metric_total::Column::ShareId, metric_total::Column::Metric])
                .update_column(metric_total::Column::Total)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(total)
}

/// Registers a tracked link (idempotent: the code is the key).
async fn insert_link<C: ConnectionTrait>(conn: &C, link: link::Model) -> Result<(), DbErr> {
    let row: link::ActiveModel = link.into();
    link::Entity::insert(row)
        .on_conflict_do_nothing_on([link::Column::Code])
        .exec(conn)
        .await?;
    Ok(())
}

fn new_link(
    tenant_id: &str,
    code: &str,
    share_id: &str,
    user_id: &str,
    post_id: &str,
    network: &str,
    target_url: &str,
) -> link::Model {
    link::Model {
        code: code.to_string(),
        tenant_id: tenant_id.to_string(),
        share_id: share_id.to_string(),
        user_id: user_id.to_string(),
        post_id: post_id.to_string(),
        network: network.to_string(),
        target_url: target_url.to_string(),
        created_at: chrono::Utc::now(),
    }
}

impl Ingest {
    async fn share_scheduled(
        &self,
        delivery: Delivery<ShareScheduled>,
    ) -> Result<(), HandlerError> {
        let event = &delivery.event;
        insert_link(
            &self.db,
            new_link(
                &delivery.tenant_id,
                &event.link_code,
                &event.share_id,
                &event.user_id,
                &event.post_id,
                &event.network,
                &event.target_url,
            ),
        )
        .await?;
        Ok(())
    }

    async fn share_published(
        &self,
        delivery: Delivery<SharePublished>,
    ) -> Result<(), HandlerError> {
        let event = &delivery.event;
        let published_at = chorus_events::from_timestamp(event.published_at.as_ref())
            .unwrap_or_else(chrono::Utc::now);
        let txn = self.db.begin().await?;
        if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
            return Ok(());
        }
        insert_link(
            &txn,
            new_link(
                &delivery.tenant_id,
                &event.link_code,
                &event.share_id,
                &event.user_id,
                &event.post_id,
                &event.network,
                &event.target_url,
            ),
        )
        .await?;
        let first_poll = self
            .schedule
            .first()
            .map(|delay| published_at + chrono::Duration::from_std(*delay).unwrap_or_default());
        let row = tracked_share::ActiveModel {
            share_id: Set(event.share_id.clone()),
            tenant_id: Set(delivery.tenant_id.clone()),
            user_id: Set(event.user_id.clone()),
            post_id: Set(event.post_id.clone()),
            network: Set(event.network.clone()),
            external_id: Set(event.external_id.clone()),
            published_at: Set(published_at),
            poll_index: Set(0),
            next_poll_at: Set(first_poll),
        };
        tracked_share::Entity::insert(row)
            .on_conflict_do_nothing_on([tracked_share::Column::ShareId])
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// A raw click becomes a recorded delta: a person's click (with its unique-visitor flag)
    /// or a bot's, counted apart.
    async fn link_clicked(&self, delivery: Delivery<LinkClicked>) -> Result<(), HandlerError> {
        let event = &delivery.event;
        let txn = self.db.begin().await?;
        if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
            return Ok(());
        }
        let Some(link) = link::Entity::find_by_id(event.link_code.clone())
            .one(&txn)
            .await?
        else {
            return Err(HandlerError::Reject(format!(
                "unknown link code {}",
                event.link_code
            )));
        };
        let clicked_at = chorus_events::from_timestamp(event.clicked_at.as_ref())
            .unwrap_or_else(chrono::Utc::now);
        let metric = if event.is_bot {
            Metric::BotClick
        } else {
            Metric::Click
        };
        let mut unique_visitor = false;
        if !event.is_bot && !event.visitor_hash.is_empty() {
            let row = visitor::ActiveModel {
                share_id: Set(link.share_id.clone()),
                day: Set(clicked_at.format("%Y-%m-%d").to_string()),
                visitor_hash: Set(event.visitor_hash.clone()),
            };
            let inserted = visitor::Entity::insert(row)
                .on_conflict_do_nothing_on([
                    visitor::Column::ShareId,
                    visitor::Column::Day,
                    visitor::Column::VisitorHash,
                ])
                .exec(&txn)
                .await?;
            unique_visitor = !matches!(inserted, TryInsertResult::Conflicted);
            if unique_visitor {
                add_unique(&txn, &link.tenant_id, &link.share_id).await?;
            }
        }
        let total = add_to_total(&txn, &link.tenant_id, &link.share_id, metric, 1).await?;
        let recorded = EngagementRecorded {
            tenant_id: link.tenant_id.clone(),
            share_id: link.share_id.clone(),
            user_id: link.user_id.clone(),
            post_id: link.post_id.clone(),
            network: link.network.clone(),
            metric: metric as i32,
            delta: 1,
            total,
            observed_at: Some(chorus_events::to_timestamp(clicked_at)),
            unique_visitor,
        };
        self.outbox
            .enqueue_with_id(&txn, &recorded, format!("click-{}", delivery.event_id))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}

async fn add_unique<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    share_id: &str,
) -> Result<(), DbErr> {
    let current =
        metric_total::Entity::find_by_id((share_id.to_string(), "unique_visitor".to_string()))
            .one(conn)
            .await?;
    let total = current.map(|row| row.total).unwrap_or(0) + 1;
    let row = metric_total::ActiveModel {
        share_id: Set(share_id.to_string()),
        metric: Set("unique_visitor".to_string()),
        tenant_id: Set(tenant_id.to_string()),
        total: Set(total),
    };
    metric_total::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([metric_total::Column::ShareId, metric_total::Column::Metric])
                .update_column(metric_total::Column::Total)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
