//! Polls each published share's network metrics on a decaying schedule (by default 1 h,
//! 6 h, 24 h, 3 d, 7 d, 30 d after publication). Totals become deltas whose event ids are
//! derived from (share, metric, previous total, new total): overlapping polls and replays
//! cannot count twice.

use crate::consumers::{Seen, add_to_total, metric_name, observe};
use crate::entities::{metric_total, tracked_share};
use chorus_api::publishing::ShareMetrics;
use chorus_api::scheduling::ShareRef;
use chorus_bus::Outbox;
use chorus_events::engagement::v1::{EngagementRecorded, Metric};
use chorus_kit::{Caller, Shutdown};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tracing::Instrument;

static REFRESHED: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_engagement_refreshes_total",
        "Metrics read outside the schedule because the network signalled activity",
        &["network"],
    )
});

pub struct Poller {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub nats: async_nats::Client,
    pub schedule: Vec<Duration>,
    pub tick: Duration,
    /// Woken when a network signals activity, so that the refresh does not wait a tick.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Poller {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            if let Err(error) = self.poll_due().await {
                tracing::warn!(%error, "metrics poll failed");
            }
            if let Err(error) = self.refresh_requested().await {
                tracing::warn!(%error, "metrics refresh failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.tick) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn poll_due(&self) -> Result<(), sea_orm::DbErr> {
        let now = chrono::Utc::now();
        let due = tracked_share::Entity::find()
            .filter(tracked_share::Column::NextPollAt.lte(now))
            .order_by_asc(tracked_share::Column::NextPollAt)
            .limit(50)
            .all(&self.db)
            .await?;
        for share in due {
            let span = tracing::info_span!("engagement.poll", service = "engagement", share_id = %share.share_id, network = %share.network);
            self.poll_one(share).instrument(span).await?;
        }
        Ok(())
    }

    /// Shares whose network signalled activity: read now, without moving the schedule.
    /// The same loop as the scheduled polls, so two reads of one share never overlap.
    async fn refresh_requested(&self) -> Result<(), sea_orm::DbErr> {
        let requested = tracked_share::Entity::find()
            .filter(tracked_share::Column::RefreshAt.is_not_null())
            .order_by_asc(tracked_share::Column::RefreshAt)
            .limit(50)
            .all(&self.db)
            .await?;
        for share in requested {
            let span = tracing::info_span!("engagement.refresh", service = "engagement", share_id = %share.share_id, network = %share.network);
            let requested_at = share.refresh_at;
            async {
                if let Some(metrics) = self.read(&share).await {
                    self.record(&share, &metrics).await?;
                    REFRESHED.with_label_values(&[&share.network]).inc();
                }
                // Cleared only if no newer request arrived meanwhile.
                tracked_share::Entity::update_many()
                    .col_expr(
                        tracked_share::Column::RefreshAt,
                        sea_orm::sea_query::Expr::value(
                            Option::<chrono::DateTime<chrono::Utc>>::None,
                        ),
                    )
                    .filter(tracked_share::Column::ShareId.eq(share.share_id.clone()))
                    .filter(tracked_share::Column::RefreshAt.eq(requested_at))
                    .exec(&self.db)
                    .await?;
                Ok::<(), sea_orm::DbErr>(())
            }
            .instrument(span)
            .await?;
        }
        Ok(())
    }

    /// The share's current metrics from its network (through publishing, which holds the
    /// account's token), or `None` when they cannot be read now.
    async fn read(&self, share: &tracked_share::Model) -> Option<ShareMetrics> {
        let caller = Caller::system(&share.tenant_id);
        let subject = chorus_bus::rpc::subject("publishing", "share_metrics");
        let request = ShareRef {
            share_id: share.share_id.clone(),
        };
        match chorus_bus::rpc::call(
            &self.nats,
            &subject,
            &caller,
            &request,
            Duration::from_secs(15),
        )
        .await
        {
            Ok(metrics) => Some(metrics),
            Err(error) => {
                tracing::warn!(share_id = %share.share_id, %error, "metrics could not be read");
                None
            }
        }
    }

    async fn poll_one(&self, share: tracked_share::Model) -> Result<(), sea_orm::DbErr> {
        if let Some(metrics) = self.read(&share).await {
            self.record(&share, &metrics).await?;
        }
        self.advance(share).await
    }

    async fn record(
        &self,
        share: &tracked_share::Model,
        metrics: &ShareMetrics,
    ) -> Result<(), sea_orm::DbErr> {
        let observed = [
            (Metric::Reaction, metrics.reactions),
            (Metric::Comment, metrics.comments),
            (Metric::Reshare, metrics.reshares),
            (Metric::Impression, metrics.impressions),
        ];
        let txn = self.db.begin().await?;
        let mut recorded = 0;
        for (metric, total) in observed {
            let previous = metric_total::Entity::find_by_id((
                share.share_id.clone(),
                metric_name(metric).to_string(),
            ))
            .one(&txn)
            .await?
            .map(|row| row.total)
            .unwrap_or(0);
            let delta = total - previous;
            if delta == 0 {
                continue;
            }
            let new_total = add_to_total(
                &txn,
                &share.tenant_id,
                &share.share_id,
                metric_name(metric),
                delta,
            )
            .await?;
            let seen = Seen {
                share_id: &share.share_id,
                user_id: &share.user_id,
                post_id: &share.post_id,
                network: &share.network,
            };
            observe(
                &txn,
                &share.tenant_id,
                &seen,
                metric_name(metric),
                delta,
                0,
                chrono::Utc::now(),
            )
            .await?;
            let event = EngagementRecorded {
                tenant_id: share.tenant_id.clone(),
                share_id: share.share_id.clone(),
                user_id: share.user_id.clone(),
                post_id: share.post_id.clone(),
                network: share.network.clone(),
                metric: metric as i32,
                delta,
                total: new_total,
                observed_at: Some(chorus_events::to_timestamp(chrono::Utc::now())),
                unique_visitor: false,
            };
            let event_id = format!(
                "poll-{}-{}-{previous}-{new_total}",
                share.share_id,
                metric_name(metric)
            );
            self.outbox.enqueue_with_id(&txn, &event, event_id).await?;
            recorded += 1;
        }
        txn.commit().await?;
        if recorded > 0 {
            self.outbox.wake();
        }
        Ok(())
    }

    async fn advance(&self, share: tracked_share::Model) -> Result<(), sea_orm::DbErr> {
        let next_index = share.poll_index + 1;
        let next_poll_at = self.schedule.get(next_index as usize).map(|delay| {
            share.published_at + chrono::Duration::from_std(*delay).unwrap_or_default()
        });
        let mut row: tracked_share::ActiveModel = share.into();
        row.poll_index = Set(next_index);
        row.next_poll_at = Set(next_poll_at);
        row.update(&self.db).await?;
        Ok(())
    }
}
