//! Settling a share left `unconfirmed`: publishing gave up without knowing whether the post
//! exists, and an administrator who looked decides. Each resolution takes the publication
//! from `unconfirmed` with one conditional update, so two resolutions (or a resolution and a
//! late delivery) cannot both act.

use crate::entities::{account, publication};
use crate::lease::Lease;
use crate::publisher::{Attempt, Publisher};
use chorus_api::publishing::{ResolveShare, ShareResolution, ShareResolved};
use chorus_events::share::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use chorus_social::PostedRef;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use std::sync::LazyLock;

static RESOLVED: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_publish_resolutions_total",
        "Unconfirmed shares settled by an administrator, by outcome",
        &["network", "outcome"],
    )
});

impl Publisher {
    pub async fn resolve(
        &self,
        caller: Caller,
        request: ResolveShare,
    ) -> ServiceResult<ShareResolved> {
        caller.require_any(&[Role::Admin, Role::Operator])?;
        let share_id = request.share_id;
        let outcome = match &request.resolution {
            ShareResolution::Published { .. } => "published",
            ShareResolution::Retry => "retry",
            ShareResolution::Failed { .. } => "failed",
        };
        match request.resolution {
            ShareResolution::Retry => self.retry_unconfirmed(&caller, &share_id).await?,
            ShareResolution::Published {
                external_id,
                external_url,
            } => {
                if external_id.trim().is_empty() {
                    return Err(ServiceError::invalid("external_id must name the post"));
                }
                let (record, lease) = self.take_unconfirmed(&caller, &share_id).await?;
                let audience_size = account::Entity::find_by_id(record.account_id.clone())
                    .one(&self.db)
                    .await?
                    .and_then(|account| account.audience_size)
                    .unwrap_or(0);
                let posted = PostedRef {
                    external_id,
                    url: external_url.unwrap_or_default(),
                    already_existed: true,
                    budget: None,
                };
                let attempt = Attempt::Published {
                    posted,
                    reconciled: true,
                    audience_size,
                };
                self.finish(&record, &lease, attempt)
                    .await
                    .map_err(|error| ServiceError::unavailable(error.to_string()))?;
            }
            ShareResolution::Failed { reason } => {
                if reason.trim().is_empty() {
                    return Err(ServiceError::invalid(
                        "reason must say why the share failed",
                    ));
                }
                let (record, lease) = self.take_unconfirmed(&caller, &share_id).await?;
                let attempt = Attempt::Failed {
                    code: "resolved",
                    reason,
                };
                self.finish(&record, &lease, attempt)
                    .await
                    .map_err(|error| ServiceError::unavailable(error.to_string()))?;
            }
        }
        let network = self.publication(&caller, &share_id).await?.network;
        RESOLVED.with_label_values(&[&network, outcome]).inc();
        tracing::info!(share_id = %share_id, network = %network, outcome, resolved_by = %caller.user_id, "unconfirmed share resolved");
        Ok(ShareResolved {
            share_id,
            outcome: outcome.to_string(),
        })
    }

    async fn publication(
        &self,
        caller: &Caller,
        share_id: &str,
    ) -> ServiceResult<publication::Model> {
        publication::Entity::find_by_id(share_id.to_string())
            .filter(publication::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no publication of share {share_id}")))
    }

    /// Why a share that could not be taken from `unconfirmed` was not.
    async fn not_unconfirmed(&self, caller: &Caller, share_id: &str) -> ServiceError {
        match self.publication(caller, share_id).await {
            Ok(row) => ServiceError::conflict(format!(
                "share {share_id} is {}, not unconfirmed: only an unconfirmed share is resolved",
                row.status
            )),
            Err(error) => error,
        }
    }

    /// Takes the publication out of `unconfirmed` under a lease of this request's, for an
    /// outcome written by `finish`.
    async fn take_unconfirmed(
        &self,
        caller: &Caller,
        share_id: &str,
    ) -> ServiceResult<(publication::Model, Lease)> {
        let lease = Lease::new(self.db.clone(), share_id, self.lease_duration);
        let now = chrono::Utc::now();
        let taken = publication::Entity::update_many()
            .col_expr(publication::Column::Status, Expr::value("publishing"))
            .col_expr(publication::Column::Lease, Expr::value(lease.token.clone()))
            .col_expr(
                publication::Column::LeaseUntil,
                Expr::value(lease.until(now)),
            )
            .col_expr(publication::Column::UpdatedAt, Expr::value(now))
            .filter(publication::Column::ShareId.eq(share_id))
            .filter(publication::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(publication::Column::Status.eq("unconfirmed"))
            .exec(&self.db)
            .await?;
        if taken.rows_affected != 1 {
            return Err(self.not_unconfirmed(caller, share_id).await);
        }
        let record = self.publication(caller, share_id).await?;
        Ok((record, lease))
    }

    /// Hands the share to the publisher again, marked in flight: it looks for the post
    /// first and posts only when the network confirms it is absent.
    async fn retry_unconfirmed(&self, caller: &Caller, share_id: &str) -> ServiceResult<()> {
        let record = self.publication(caller, share_id).await?;
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let reopened = publication::Entity::update_many()
            .col_expr(publication::Column::Status, Expr::value("publishing"))
            .col_expr(publication::Column::InFlight, Expr::value(true))
            .col_expr(publication::Column::Lease, Expr::value(None::<String>))
            .col_expr(
                publication::Column::LeaseUntil,
                Expr::value(None::<chrono::DateTime<chrono::Utc>>),
            )
            .col_expr(publication::Column::UpdatedAt, Expr::value(now))
            .filter(publication::Column::ShareId.eq(share_id))
            .filter(publication::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(publication::Column::Status.eq("unconfirmed"))
            .exec(&txn)
            .await?;
        if reopened.rows_affected != 1 {
            drop(txn);
            return Err(self.not_unconfirmed(caller, share_id).await);
        }
        let due = events::ShareDue {
            tenant_id: record.tenant_id.clone(),
            share_id: record.share_id.clone(),
            user_id: record.user_id.clone(),
            post_id: record.post_id.clone(),
            account_id: record.account_id.clone(),
            network: record.network.clone(),
            text: record.text.clone(),
            link_code: record.link_code.clone(),
            due_at: Some(chorus_events::to_timestamp(now)),
            target_url: record.target_url.clone(),
            image_url: record.image_url.clone().unwrap_or_default(),
            image_alt: record.image_alt.clone().unwrap_or_default(),
        };
        // A new message (its own id): the earlier `share.due` is long gone.
        let event_id = format!(
            "share-due-{}-retry-{}",
            record.share_id,
            uuid::Uuid::now_v7()
        );
        self.outbox.enqueue_with_id(&txn, &due, event_id).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}
