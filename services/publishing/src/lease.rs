//! The lease of a publication: the one delivery allowed to call the network for a share.
//!
//! Two deliveries of one `share.due` can be handled at the same time (a message that waited
//! past `ack_wait`, a reconnect, two publisher replicas, an outbox resend after the dedup
//! window). The first takes the lease with its insert or a conditional update (a fencing
//! token and an end time); a copy that finds a live lease waits until it ends instead of
//! acting. The holder confirms the lease (a conditional update that also renews it) just
//! before every network call, renews it in the background while it waits, and writes the
//! outcome only `WHERE lease = mine`. A holder that cannot renew for half the lease stops
//! its attempt, so that no one else's takeover meets a call of its still under way.

use crate::entities::publication;
use chorus_kit::Shutdown;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

static LEASES: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_publish_leases_total",
        "Publication leases: taken, held elsewhere (a concurrent delivery waited), lost",
        &["outcome"],
    )
});

/// Counts a lease event (`taken`, `held_elsewhere`, `lost`).
pub fn count(outcome: &str) {
    LEASES.with_label_values(&[outcome]).inc();
}

/// A delivery's claim on one publication.
#[derive(Clone)]
pub struct Lease {
    db: DatabaseConnection,
    pub share_id: String,
    pub token: String,
    pub duration: Duration,
    /// When the lease was last known to be held (taken, confirmed or renewed).
    held_at: Arc<Mutex<tokio::time::Instant>>,
}

impl Lease {
    pub fn new(db: DatabaseConnection, share_id: &str, duration: Duration) -> Lease {
        Lease {
            db,
            share_id: share_id.to_string(),
            token: uuid::Uuid::now_v7().to_string(),
            duration,
            held_at: Arc::new(Mutex::new(tokio::time::Instant::now())),
        }
    }

    /// The end of a lease taken or renewed at `now`.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::TimeDelta::from_std(self.duration).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Renews the lease if this delivery still holds it and the share is still being
    /// published: true when it does.
    pub async fn confirm(&self) -> Result<bool, DbErr> {
        let now = Utc::now();
        let renewed = publication::Entity::update_many()
            .col_expr(
                publication::Column::LeaseUntil,
                Expr::value(self.until(now)),
            )
            .filter(publication::Column::ShareId.eq(&self.share_id))
            .filter(publication::Column::Status.eq("publishing"))
            .filter(publication::Column::Lease.eq(&self.token))
            .exec(&self.db)
            .await?;
        let held = renewed.rows_affected == 1;
        if held {
            *self.held_at.lock().expect("lease clock") = tokio::time::Instant::now();
        }
        Ok(held)
    }

    /// Renews the lease in the background until the returned guard is dropped; the guard's
    /// `lost()` ends when the lease is taken by another delivery, the share became final,
    /// or the lease could not be renewed for half its duration.
    pub fn keep(&self) -> Keeper {
        let lost = Shutdown::new();
        let lease = self.clone();
        let signal = lost.clone();
        let task = tokio::spawn(async move {
            let interval = lease.duration / 4;
            loop {
                tokio::time::sleep(interval).await;
                match lease.confirm().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(share_id = %lease.share_id, "publication lease lost");
                        break;
                    }
                    Err(error) => {
                        let unconfirmed = lease.held_at.lock().expect("lease clock").elapsed();
                        tracing::warn!(share_id = %lease.share_id, %error, unconfirmed_ms = unconfirmed.as_millis() as u64, "publication lease could not be renewed");
                        if unconfirmed >= lease.duration / 2 {
                            break;
                        }
                    }
                }
            }
            count("lost");
            signal.cancel();
        });
        Keeper { lost, task }
    }
}

/// Keeps a lease renewed while it lives.
pub struct Keeper {
    lost: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Ends when the lease can no longer be trusted.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
