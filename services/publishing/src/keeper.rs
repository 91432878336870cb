//! Keeps connections alive: access tokens that end within the margin are refreshed ahead of
//! time (a publish never waits on a refresh it could have done earlier), and an authorisation
//! that cannot be renewed without the advocate (no refresh token, or a refresh token that
//! itself expires, as LinkedIn's after a year) is announced `expiry_reminder_secs` before it
//! ends (`share.account_expiring`, once per expiry; notifications tell the advocate).
//!
//! Each publisher replica keeps the accounts it owns (the same partitions as its shares), so
//! two replicas never refresh one account at the same time.

use crate::accounts::Accounts;
use crate::entities::account;
use chorus_events::share::v1::AccountExpiring;
use chorus_kit::Shutdown;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tracing::Instrument;

static REFRESHES: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_token_refreshes_total",
        "Access tokens refreshed ahead of their expiry, by network and outcome",
        &["network", "outcome"],
    )
});
static REMINDERS: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_token_expiry_reminders_total",
        "Advocates reminded that an account must be reconnected before it expires",
        &["network"],
    )
});

pub struct Keeper {
    pub accounts: Arc<Accounts>,
    pub refresh_margin: chrono::TimeDelta,
    pub reminder_window: chrono::TimeDelta,
    pub interval: Duration,
    pub replica_index: u32,
    pub replicas: u32,
    /// The networks this process publishes: it keeps the tokens of their accounts only.
    pub networks: Vec<String>,
}

/// When the account stops working unless the advocate reconnects it; `None`: never.
pub fn unrenewable_expiry(account: &account::Model) -> Option<DateTime<Utc>> {
    if account.refresh_token.is_some() {
        account.refresh_expires_at
    } else {
        account.access_expires_at
    }
}

impl Keeper {
    fn owns(&self, account: &account::Model) -> bool {
        self.networks.contains(&account.network)
            && chorus_events::share_due_partition(&account.id) % self.replicas.max(1)
                == self.replica_index
    }

    pub async fn run(self, shutdown: Shutdown) {
        loop {
            let round = tracing::info_span!("publishing.keep_tokens", service = crate::NAME);
            if let Err(error) = self.keep().instrument(round).await {
                tracing::warn!(%error, "token upkeep failed; trying again next round");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    async fn keep(&self) -> Result<(), sea_orm::DbErr> {
        let now = Utc::now();
        let db = &self.accounts.db;
        // Refresh: connected accounts with a refresh token whose access token ends soon.
        let ending = account::Entity::find()
            .filter(account::Column::Status.eq("connected"))
            .filter(account::Column::RefreshToken.is_not_null())
            .filter(account::Column::AccessExpiresAt.lte(now + self.refresh_margin))
            .filter(
                Condition::any()
                    .add(account::Column::RefreshExpiresAt.is_null())
                    .add(account::Column::RefreshExpiresAt.gt(now)),
            )
            .all(db)
            .await?;
        for account in ending.into_iter().filter(|a| self.owns(a)) {
            let span = tracing::info_span!("publishing.refresh_ahead", account_id = %account.id, network = %account.network);
            async {
                match self.accounts.refresh(&account).await {
                    Ok(Some(_)) => {
                        REFRESHES
                            .with_label_values(&[&account.network, "refreshed"])
                            .inc();
                        tracing::info!("access token refreshed before it expired");
                    }
                    Ok(None) => {
                        // The network refused the refresh token: publishing will ask the
                        // advocate to reconnect at the next share; the reminder below covers
                        // the expiry.
                        REFRESHES
                            .with_label_values(&[&account.network, "refused"])
                            .inc();
                        tracing::warn!("the network refused the refresh token");
                    }
                    Err(error) => {
                        REFRESHES
                            .with_label_values(&[&account.network, "failed"])
                            .inc();
                        tracing::warn!(%error, "refresh failed; trying again next round");
                    }
                }
            }
            .instrument(span)
            .await;
        }

        // Reminders: authorisations that end within the window and cannot be renewed.
        let horizon = now + self.reminder_window;
        let candidates = account::Entity::find()
            .filter(account::Column::Status.eq("connected"))
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(account::Column::RefreshToken.is_not_null())
                            .add(account::Column::RefreshExpiresAt.lte(horizon)),
                    )
                    .add(
                        Condition::all()
                            .add(account::Column::RefreshToken.is_null())
                            .add(account::Column::AccessExpiresAt.lte(horizon)),
                    ),
            )
            .all(db)
            .await?;
        for account in candidates.into_iter().filter(|a| self.owns(a)) {
            let Some(expires_at) = unrenewable_expiry(&account) else {
                continue;
            };
            if expires_at <= now || account.expiry_reminded_for == Some(expires_at) {
                continue;
            }
            let txn = db.begin().await?;
            // Conditional on the row as read, so a reconnect meanwhile is not overwritten
            // and two rounds never announce the same expiry.
            let updated = account::Entity::update_many()
                .col_expr(
                    account::Column::ExpiryRemindedFor,
                    sea_orm::sea_query::Expr::value(Some(expires_at)),
                )
                .filter(account::Column::Id.eq(account.id.clone()))
                .filter(account::Column::UpdatedAt.eq(account.updated_at))
                .filter(match account.expiry_reminded_for {
                    Some(previous) => account::Column::ExpiryRemindedFor.eq(previous),
                    None => account::Column::ExpiryRemindedFor.is_null(),
                })
                .exec(&txn)
                .await?;
            if updated.rows_affected == 0 {
                txn.rollback().await?;
                continue;
            }
            let event = AccountExpiring {
                tenant_id: account.tenant_id.clone(),
                account_id: account.id.clone(),
                user_id: account.user_id.clone(),
                network: account.network.clone(),
                expires_at: Some(chorus_events::to_timestamp(expires_at)),
            };
            self.accounts
                .outbox
                .enqueue_with_id(
                    &txn,
                    &event,
                    format!("expiring-{}-{}", account.id, expires_at.timestamp()),
                )
                .await?;
            txn.commit().await?;
            self.accounts.outbox.wake();
            REMINDERS.with_label_values(&[&account.network]).inc();
            tracing::info!(account_id = %account.id, network = %account.network, %expires_at, "advocate reminded to reconnect before expiry");
        }
        Ok(())
    }
}
