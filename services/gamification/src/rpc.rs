use crate::entities::{balance, ledger};
use chorus_api::Empty;
use chorus_api::gamification::{LedgerEntry, PointsSummary};
use chorus_kit::{Caller, ServiceResult};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

pub struct Gamification {
    pub db: DatabaseConnection,
}

impl Gamification {
    /// The caller's balance and latest ledger entries.
    pub async fn my_points(&self, caller: Caller, _request: Empty) -> ServiceResult<PointsSummary> {
        let balance =
            balance::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
                .one(&self.db)
                .await?
                .map(|row| row.balance)
                .unwrap_or(0);
        let entries = ledger::Entity::find()
            .filter(ledger::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(ledger::Column::UserId.eq(caller.user_id.clone()))
            .order_by_desc(ledger::Column::Id)
            .limit(100)
            .all(&self.db)
            .await?;
        Ok(PointsSummary {
            user_id: caller.user_id,
            balance,
            entries: entries
                .into_iter()
                .map(|row| LedgerEntry {
                    points: row.points,
                    action: row.action,
                    source_event_id: row.source_event_id,
                    share_id: row.share_id,
                    awarded_at: row.awarded_at,
                })
                .collect(),
        })
    }
}
