//! The admins' alert when publishing fails too often: every share outcome is tallied per
//! tenant and hour; when the failures of the current and previous hour reach the configured
//! share (and count), the tenant's admins are told, at most once per cool-down.

use crate::consumers::{Message, Notifier};
use crate::entities::{failure_alert, publishing_tally};
use chorus_bus::consumer::HandlerError;
use chorus_bus::inbox;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

const INBOX: &str = "notifications-failure-rate";

/// Whether `failed` of `total` outcomes call for an alert.
pub fn alarming(failed: i64, total: i64, ratio: f64, min_failures: i64) -> bool {
    total > 0 && failed >= min_failures && failed as f64 >= ratio * total as f64
}

impl Notifier {
    /// Tallies one publishing outcome (once per event) and alerts the admins when the
    /// failure rate is too high.
    pub async fn record_outcome(
        &self,
        tenant_id: &str,
        event_id: &str,
        failed: bool,
        at: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let hour = at
            .duration_trunc(TimeDelta::hours(1))
            .map_err(|error| HandlerError::Reject(error.to_string()))?;
        let txn = self.db.begin().await?;
        if !inbox::record(&txn, INBOX, event_id).await? {
            txn.rollback().await?;
            return Ok(());
        }
        let column = if failed { "failed" } else { "published" };
        publishing_tally::Entity::insert(publishing_tally::ActiveModel {
            tenant_id: Set(tenant_id.to_string()),
            hour_start: Set(hour),
            published: Set(i64::from(!failed)),
            failed: Set(i64::from(failed)),
        })
        .on_conflict(
            OnConflict::columns([
                publishing_tally::Column::TenantId,
                publishing_tally::Column::HourStart,
            ])
            .value(
                Alias::new(column),
                Expr::col((Alias::new("publishing_tallies"), Alias::new(column))).add(1),
            )
            .to_owned(),
        )
        .exec(&txn)
        .await?;
        txn.commit().await?;
        if failed {
            self.check_failure_rate(tenant_id, event_id).await?;
        }
        Ok(())
    }

    async fn check_failure_rate(
        &self,
        tenant_id: &str,
        event_id: &str,
    ) -> Result<(), HandlerError> {
        let config = &self.channels.config;
        let now = Utc::now();
        let since = now
            .duration_trunc(TimeDelta::hours(1))
            .map_err(|error| HandlerError::Reject(error.to_string()))?
            - TimeDelta::hours(1);
        let rows = publishing_tally::Entity::find()
            .filter(publishing_tally::Column::TenantId.eq(tenant_id))
            .filter(publishing_tally::Column::HourStart.gte(since))
            .all(&self.db)
            .await?;
        let failed: i64 = rows.iter().map(|row| row.failed).sum();
        let total: i64 = rows.iter().map(|row| row.failed + row.published).sum();
        if !alarming(
            failed,
            total,
            config.failure_alert_ratio,
            config.failure_alert_min_failures,
        ) {
            return Ok(());
        }
        // Claim the alert: only one event (and one replica) within the cool-down sends it.
        let cutoff = now - TimeDelta::seconds(config.failure_alert_cooldown_secs as i64);
        let txn = self.db.begin().await?;
        let claimed = match failure_alert::Entity::find_by_id(tenant_id.to_string())
            .one(&txn)
            .await?
        {
            None => {
                failure_alert::Entity::insert(failure_alert::ActiveModel {
                    tenant_id: Set(tenant_id.to_string()),
                    last_alert_at: Set(now),
                })
                .on_conflict_do_nothing_on([failure_alert::Column::TenantId])
                .exec(&txn)
                .await?;
                true
            }
            Some(_) => {
                failure_alert::Entity::update_many()
                    .col_expr(failure_alert::Column::LastAlertAt, Expr::value(now))
                    .filter(failure_alert::Column::TenantId.eq(tenant_id))
                    .filter(failure_alert::Column::LastAlertAt.lt(cutoff))
                    .exec(&txn)
                    .await?
                    .rows_affected
                    > 0
            }
        };
        txn.commit().await?;
        if !claimed {
            return Ok(());
        }
        tracing::warn!(%tenant_id, failed, total, "publishing failure rate above the alert threshold");
        for admin in self.admins(tenant_id).await? {
            let message = Message::new(
                &admin,
                "publishing_failure_rate",
                vec![("failed", failed.to_string()), ("total", total.to_string())],
            );
            self.deliver(tenant_id, &format!("{event_id}:failure-rate"), message)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn alerts_need_both_the_share_and_the_count() {
        assert!(super::alarming(5, 20, 0.2, 5));
        assert!(!super::alarming(4, 10, 0.2, 5));
        assert!(!super::alarming(5, 100, 0.2, 5));
        assert!(!super::alarming(0, 0, 0.2, 0));
    }
}
