//! Rewards: points redeemed for something from the tenant's catalogue, with an approval
//! step. The cost is held from the balance when the request is made, by one conditional
//! update (`balance >= cost`), so two concurrent redemptions can never spend the same
//! points and a balance never goes negative; a rejection gives the points back. Both moves
//! are ledger entries; board scores count earned points only and do not move.

use crate::entities::{ledger, redemption, reward};
use crate::ledger::add_to_balance;
use crate::rpc::Gamification;
use chorus_api::gamification::{
    Redemption, RedemptionRef, RedemptionStatus, Reward, RewardInput, RewardRef,
};
use chorus_api::{Empty, Page};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

fn status_of(text: &str) -> RedemptionStatus {
    match text {
        "approved" => RedemptionStatus::Approved,
        "rejected" => RedemptionStatus::Rejected,
        _ => RedemptionStatus::Pending,
    }
}

fn view(row: redemption::Model, balance: Option<i64>) -> Redemption {
    Redemption {
        id: row.id,
        user_id: row.user_id,
        reward_id: row.reward_id,
        reward_name: row.reward_name,
        cost: row.cost,
        status: status_of(&row.status),
        requested_at: row.requested_at,
        decided_by: row.decided_by,
        balance,
    }
}

/// A ledger entry for a move of points that no event caused.
async fn ledger_move<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    user_id: &str,
    points: i64,
    action: &str,
    source: String,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let entry = ledger::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        points: Set(points),
        requested_points: Set(points),
        units: Set(0),
        action: Set(action.to_string()),
        source_event_id: Set(source),
        share_id: Set(None),
        post_id: Set(None),
        rule_version: Set(0),
        day: Set(crate::domain::day_key(at)),
        week: Set(crate::domain::week_key(at)),
        awarded_at: Set(at),
        ..Default::default()
    };
    ledger::Entity::insert(entry)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

impl Gamification {
    /// Adds a reward to the catalogue (admins).
    pub async fn create_reward(&self, caller: Caller, input: RewardInput) -> ServiceResult<Reward> {
        caller.require_any(&[Role::Admin])?;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(ServiceError::invalid("name must be 1 to 120 characters"));
        }
        if input.cost <= 0 {
            return Err(ServiceError::invalid("cost must be more than 0 points"));
        }
        let row = reward::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            id: Set(uuid::Uuid::now_v7().to_string()),
            name: Set(name.to_string()),
            cost: Set(input.cost),
            created_by: Set(caller.user_id.clone()),
        };
        let created = reward::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await?;
        Ok(Reward {
            id: created.id,
            name: created.name,
            cost: created.cost,
        })
    }

    /// The catalogue, cheapest first.
    pub async fn list_rewards(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<Page<Reward>> {
        let rows = reward::Entity::find()
            .filter(reward::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_asc(reward::Column::Cost)
            .order_by_asc(reward::Column::Id)
            .all(&self.db)
            .await?;
        Ok(Page {
            items: rows
                .into_iter()
                .map(|row| Reward {
                    id: row.id,
                    name: row.name,
                    cost: row.cost,
                })
                .collect(),
            next_cursor: None,
        })
    }

    /// Asks for a reward: its cost is held from the caller's balance until an admin decides.
    pub async fn redeem(&self, caller: Caller, request: RewardRef) -> ServiceResult<Redemption> {
        let reward =
            reward::Entity::find_by_id((caller.tenant_id.clone(), request.reward_id.clone()))
                .one(&self.db)
                .await?
                .ok_or_else(|| {
                    ServiceError::not_found(format!("no reward {}", request.reward_id))
                })?;
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        // One statement decides: concurrent requests cannot both see the same points.
        let held = crate::entities::balance::Entity::update_many()
            .col_expr(
                crate::entities::balance::Column::Balance,
                Expr::col(crate::entities::balance::Column::Balance).sub(reward.cost),
            )
            .filter(crate::entities::balance::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(crate::entities::balance::Column::UserId.eq(caller.user_id.clone()))
            .filter(crate::entities::balance::Column::Balance.gte(reward.cost))
            .exec(&txn)
            .await?;
        if held.rows_affected != 1 {
            return Err(ServiceError::conflict(format!(
                "not enough points: {} costs {} points",
                reward.name, reward.cost
            )));
        }
        let row = redemption::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            id: Set(uuid::Uuid::now_v7().to_string()),
            user_id: Set(caller.user_id.clone()),
            reward_id: Set(reward.id.clone()),
            reward_name: Set(reward.name.clone()),
            cost: Set(reward.cost),
            status: Set("pending".to_string()),
            requested_at: Set(now),
            decided_by: Set(None),
            decided_at: Set(None),
        };
        let created = redemption::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        ledger_move(
            &txn,
            &caller.tenant_id,
            &caller.user_id,
            -reward.cost,
            "redemption",
            format!("redemption-{}", created.id),
            now,
        )
        .await?;
        let balance = current_balance(&txn, &caller.tenant_id, &caller.user_id).await?;
        txn.commit().await?;
        Ok(view(created, Some(balance)))
    }

    /// Pending and decided redemptions: all of the tenant's for admins, one's own otherwise.
    pub async fn list_redemptions(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<Page<Redemption>> {
        let mut query = redemption::Entity::find()
            .filter(redemption::Column::TenantId.eq(caller.tenant_id.clone()));
        if !caller.has(Role::Admin) {
            query = query.filter(redemption::Column::UserId.eq(caller.user_id.clone()));
        }
        let rows = query
            .order_by_desc(redemption::Column::RequestedAt)
            .limit(200)
            .all(&self.db)
            .await?;
        Ok(Page {
            items: rows.into_iter().map(|row| view(row, None)).collect(),
            next_cursor: None,
        })
    }

    pub async fn approve_redemption(
        &self,
        caller: Caller,
        request: RedemptionRef,
    ) -> ServiceResult<Redemption> {
        self.decide(caller, request, true).await
    }

    pub async fn reject_redemption(
        &self,
        caller: Caller,
        request: RedemptionRef,
    ) -> ServiceResult<Redemption> {
        self.decide(caller, request, false).await
    }

    /// Approves (the points stay spent) or rejects (they come back) a pending redemption,
    /// once: a second decision is a conflict.
    async fn decide(
        &self,
        caller: Caller,
        request: RedemptionRef,
        approve: bool,
    ) -> ServiceResult<Redemption> {
        caller.require_any(&[Role::Admin])?;
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let status = if approve { "approved" } else { "rejected" };
        let decided = redemption::Entity::update_many()
            .col_expr(redemption::Column::Status, Expr::value(status))
            .col_expr(
                redemption::Column::DecidedBy,
                Expr::value(caller.user_id.clone()),
            )
            .col_expr(redemption::Column::DecidedAt, Expr::value(now))
            .filter(redemption::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(redemption::Column::Id.eq(request.redemption_id.clone()))
            .filter(redemption::Column::Status.eq("pending"))
            .exec(&txn)
            .await?;
        let row = redemption::Entity::find_by_id((
            caller.tenant_id.clone(),
            request.redemption_id.clone(),
        ))
        .one(&txn)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found(format!("no redemption {}", request.redemption_id))
        })?;
        if decided.rows_affected != 1 {
            return Err(ServiceError::conflict(format!(
                "redemption {} is already {}",
                row.id, row.status
            )));
        }
        if !approve {
            add_to_balance(&txn, &caller.tenant_id, &row.user_id, row.cost).await?;
            ledger_move(
                &txn,
                &caller.tenant_id,
                &row.user_id,
                row.cost,
                "redemption_refund",
                format!("redemption-refund-{}", row.id),
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(view(row, None))
    }
}

async fn current_balance<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    user_id: &str,
) -> Result<i64, DbErr> {
    Ok(
        crate::entities::balance::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
            .one(conn)
            .await?
            .map(|row| row.balance)
            .unwrap_or(0),
    )
}
