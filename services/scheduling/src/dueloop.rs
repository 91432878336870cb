//! The due-loop: sleeps until the earliest due share (woken early when an earlier one
//! arrives), claims due rows in batches and emits them through the outbox. On PostgreSQL
//! the claim uses `FOR UPDATE SKIP LOCKED`, so replicas can run side by side.
//!
//! Shares are handed over `lead` ahead of their due time (the event carries it and the
//! publisher waits for it): a burst due at one instant is claimed, written and relayed
//! while nothing is due yet, instead of after the instant.

use crate::entities::share;
use chorus_bus::Outbox;
use chorus_events::share::v1 as events;
use chorus_kit::Shutdown;
use chorus_telemetry::metrics;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static LATENESS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_schedule_lateness_seconds",
        "Time between a share's due time and its emission (0 when handed over ahead of it)",
        &[],
    )
});
static REDRIVEN: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_shares_redriven_total",
        "Shares due for longer than the re-drive bound without an outcome, handed to the publisher again",
        &["network"],
    )
});
static EMITTED: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_shares_due_total",
        "Shares emitted as due",
        &["network"],
    )
});

pub struct DueLoop {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub batch_size: u64,
    pub max_idle: Duration,
    /// How long before its due time a share is handed over.
    pub lead: Duration,
    pub wake: Arc<tokio::sync::Notify>,
}

impl DueLoop {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            let pause = match self.emit_due().await {
                Ok(emitted) if emitted as u64 >= self.batch_size => Duration::ZERO,
                Ok(_) => self.until_next_due().await.unwrap_or(self.max_idle),
                Err(error) => {
                    tracing::warn!(%error, "due-loop failed, retrying");
                    Duration::from_millis(500)
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn until_next_due(&self) -> Result<Duration, DbErr> {
        let next = share::Entity::find()
            .filter(share::Column::Status.eq("scheduled"))
            .order_by_asc(share::Column::DueAt)
            .one(&self.db)
            .await?;
        Ok(match next {
            None => self.max_idle,
            Some(next) => (next.due_at - self.lead() - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(self.max_idle),
        })
    }

    fn lead(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.lead).unwrap_or_default()
    }

    /// Claims one batch of shares due within the lead and writes their `share.due` events;
    /// returns how many.
    pub async fn emit_due(&self) -> Result<usize, DbErr> {
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let due = share::Entity::find()
            .filter(share::Column::Status.eq("scheduled"))
            .filter(share::Column::DueAt.lte(now + self.lead()))
            .order_by_asc(share::Column::DueAt)
            .limit(self.batch_size)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(0);
        }
        let ids: Vec<String> = due.iter().map(|row| row.id.clone()).collect();
        share::Entity::update_many()
            .col_expr(share::Column::Status, Expr::value("due"))
            .col_expr(share::Column::UpdatedAt, Expr::value(now))
            .filter(share::Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
        let mut events = Vec::with_capacity(due.len());
        for row in &due {
            let span = tracing::info_span!(
                "share.due",
                service = "scheduling",
                tenant_id = %row.tenant_id,
                share_id = %row.id,
                network = %row.network,
            );
            chorus_bus::trace::set_parent_from_traceparent(
                &span,
                row.traceparent.as_deref(),
                row.tracestate.as_deref(),
            );
            let event = due_event(row);
            // The event id is derived from the share: emitting it twice is harmless.
            let event_id = format!("share-due-{}", row.id);
            events.push(span.in_scope(|| self.outbox.row(&event, event_id)));
            let lateness = (now - row.due_at).to_std().unwrap_or(Duration::ZERO);
            LATENESS
                .with_label_values(&[] as &[&str])
                .observe(lateness.as_secs_f64());
            EMITTED.with_label_values(&[&row.network]).inc();
        }
        // One multi-row INSERT per few hundred events instead of one per share.
        self.outbox.enqueue_rows(&txn, events).await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::debug!(count = due.len(), "shares due");
        Ok(due.len())
    }
}

/// The `share.due` event of a share.
fn due_event(row: &share::Model) -> events::ShareDue {
    events::ShareDue {
        tenant_id: row.tenant_id.clone(),
        share_id: row.id.clone(),
        user_id: row.user_id.clone(),
        post_id: row.post_id.clone(),
        account_id: row.account_id.clone(),
        network: row.network.clone(),
        text: row.text.clone(),
        link_code: row.link_code.clone(),
        due_at: Some(chorus_events::to_timestamp(row.due_at)),
        target_url: row.target_url.clone(),
        image_url: row.image_url.clone().unwrap_or_default(),
        image_alt: row.image_alt.clone().unwrap_or_default(),
    }
}

/// Finds shares `due` for longer than `redrive_after` without an outcome (their `share.due`
/// was lost with a NATS failure, or dead-lettered by a publisher whose database failed) and
/// hands them to the publisher again: a new message, which the publisher handles like any
/// copy (skipped when final, deferred while another delivery holds the lease, reconciled
/// first when an attempt may have reached the network). Each share at most once per bound.
pub struct Sweeper {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub redrive_after: Duration,
    pub interval: Duration,
}

/// Shares re-driven per round.
const SWEEP_BATCH: u64 = 500;

impl Sweeper {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "stuck-share sweep failed, retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Re-drives one round of stuck shares; returns how many.
    pub async fn sweep(&self) -> Result<usize, DbErr> {
        let now = chrono::Utc::now();
        let bound = now - chrono::TimeDelta::from_std(self.redrive_after).unwrap_or_default();
        let txn = self.db.begin().await?;
        // `updated_at` is when the share became due, or was last re-driven.
        let stuck = share::Entity::find()
            .filter(share::Column::Status.eq("due"))
            .filter(share::Column::DueAt.lt(bound))
            .filter(share::Column::UpdatedAt.lt(bound))
            .order_by_asc(share::Column::UpdatedAt)
            .limit(SWEEP_BATCH)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if stuck.is_empty() {
            txn.rollback().await?;
            return Ok(0);
        }
        let ids: Vec<String> = stuck.iter().map(|row| row.id.clone()).collect();
        share::Entity::update_many()
            .col_expr(share::Column::UpdatedAt, Expr::value(now))
            .filter(share::Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
        let mut rows = Vec::with_capacity(stuck.len());
        for row in &stuck {
            let waited = (now - row.updated_at).num_seconds();
            tracing::warn!(share_id = %row.id, tenant_id = %row.tenant_id, network = %row.network, waited_secs = waited, "share due without an outcome, handed to the publisher again");
            REDRIVEN.with_label_values(&[&row.network]).inc();
            // A new message: the first may be gone for good.
            let event_id = format!("share-due-{}-redriven-{}", row.id, now.timestamp_millis());
            rows.push(self.outbox.row(&due_event(row), event_id));
        }
        self.outbox.enqueue_rows(&txn, rows).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(stuck.len())
    }
}
