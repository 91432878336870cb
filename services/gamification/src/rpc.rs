//! Requests from the gateway: points, rules, boards, preferences and badges.

use crate::domain;
use crate::entities::{badge, balance, ledger, member, rule_version, score};
use crate::ledger::Ledger;
use chorus_api::Empty;
use chorus_api::gamification::{
    Badge, Badges, Board, GamificationPreferences, GrantBadge, Leaderboard, LeaderboardQuery,
    LedgerEntry, Period, PointsSummary, RulesHistory, RulesInput, RulesVersion, Standing,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Gamification {
    pub db: DatabaseConnection,
    pub ledger: Arc<Ledger>,
}

/// Name shown for advocates who hide theirs.
pub const HIDDEN_NAME: &str = "an advocate";

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
            entries: entries.into_iter().map(ledger_entry).collect(),
        })
    }

    /// Every version of the tenant's rules and the one in force.
    pub async fn rules(&self, caller: Caller, _request: Empty) -> ServiceResult<RulesHistory> {
        self.rules_history(&caller).await
    }

    async fn rules_history(&self, caller: &Caller) -> ServiceResult<RulesHistory> {
        let rows = rule_version::Entity::find()
            .filter(rule_version::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_asc(rule_version::Column::Version)
            .all(&self.db)
            .await?;
        let mut versions = vec![RulesVersion {
            version: 1,
            effective_from: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            rules: self.ledger.defaults.clone(),
            created_by: None,
        }];
        for row in rows {
            let Ok(rules) = serde_json::from_str(&row.rules) else {
                continue;
            };
            versions.push(RulesVersion {
                version: row.version,
                effective_from: row.effective_from,
                rules,
                created_by: Some(row.created_by),
            });
        }
        let stored: Vec<domain::RulesVersion> = versions
            .iter()
            .skip(1)
            .map(|version| domain::RulesVersion {
                version: version.version,
                effective_from: version.effective_from,
                rules: version.rules.clone(),
            })
            .collect();
        let in_force = domain::rules_at(&stored, &self.ledger.defaults, chrono::Utc::now());
        let current = versions
            .iter()
            .find(|version| version.version == in_force.version)
            .cloned()
            .expect("the version in force is listed");
        Ok(RulesHistory { current, versions })
    }

    /// Adds a version of the tenant's rules (admins). It applies from its effective time on;
    /// entries already in the ledger keep the version that priced them.
    pub async fn set_rules(
        &self,
        caller: Caller,
        input: RulesInput,
    ) -> ServiceResult<RulesHistory> {
        caller.require_any(&[Role::Admin])?;
        domain::validate_rules(&input.rules).map_err(ServiceError::invalid)?;
        let now = chrono::Utc::now();
        let effective_from = input.effective_from.unwrap_or(now);
        if effective_from < now - chrono::Duration::seconds(5) {
            return Err(ServiceError::invalid(
                "effective_from is in the past: a rule change never rewrites history",
            ));
        }
        let txn = self.db.begin().await?;
        let latest = rule_version::Entity::find()
            .filter(rule_version::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_desc(rule_version::Column::Version)
            .one(&txn)
            .await?;
        if let Some(latest) = &latest
            && effective_from < latest.effective_from
        {
            return Err(ServiceError::invalid(format!(
                "effective_from must not be before that of version {} ({})",
                latest.version, latest.effective_from
            )));
        }
        let version = latest.map(|row| row.version + 1).unwrap_or(2);
        let row = rule_version::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            version: Set(version),
            effective_from: Set(effective_from),
            rules: Set(serde_json::to_string(&input.rules).expect("rules serialise")),
            created_by: Set(caller.user_id.clone()),
            created_at: Set(now),
        };
        rule_version::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(|_| {
                ServiceError::conflict("another rule change was saved at the same time")
            })?;
        txn.commit().await?;
        tracing::info!(tenant_id = %caller.tenant_id, version, %effective_from, "points rules changed");
        self.rules_history(&caller).await
    }

    /// Hide or show the caller's name on boards.
    pub async fn set_preferences(
        &self,
        caller: Caller,
        preferences: GamificationPreferences,
    ) -> ServiceResult<GamificationPreferences> {
        let row = member::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            display_name: Set(caller.user_id.clone()),
            department: Set(String::new()),
            active: Set(true),
            hide_name: Set(preferences.hide_name),
        };
        member::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([member::Column::TenantId, member::Column::UserId])
                    .update_column(member::Column::HideName)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(preferences)
    }

    /// A board with its top, the caller's rank and their neighbours.
    pub async fn leaderboard(
        &self,
        caller: Caller,
        query: LeaderboardQuery,
    ) -> ServiceResult<Leaderboard> {
        self.board(&caller, &query, true).await
    }

    /// The caller's rank and neighbours only.
    pub async fn my_rank(
        &self,
        caller: Caller,
        query: LeaderboardQuery,
    ) -> ServiceResult<Leaderboard> {
        self.board(&caller, &query, false).await
    }

    async fn board(
        &self,
        caller: &Caller,
        query: &LeaderboardQuery,
        with_top: bool,
    ) -> ServiceResult<Leaderboard> {
        let limit = u64::from(query.limit.unwrap_or(50));
        if !(1..=100).contains(&limit) {
            return Err(ServiceError::invalid("limit must be between 1 and 100"));
        }
        let around = u64::from(query.around.unwrap_or(2));
        if around > 10 {
            return Err(ServiceError::invalid("around must be at most 10"));
        }
        let board = query.board.unwrap_or_default();
        let period = match &query.contest_id {
            Some(contest_id) => {
                crate::contests::find(&self.db, &caller.tenant_id, contest_id).await?;
                domain::contest_period(contest_id)
            }
            None => {
                let [all, week, month] = domain::period_keys(chrono::Utc::now());
                match query.period.unwrap_or_default() {
                    Period::Week => week,
                    Period::Month => month,
                    Period::AllTime => all,
                }
            }
        };
        let members =
            member::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
                .one(&self.db)
                .await?;
        let department = match board {
            Board::Company => None,
            Board::Department => Some(
                members
                    .as_ref()
                    .map(|row| row.department.clone())
                    .unwrap_or_default(),
            ),
        };
        let mut base = Condition::all()
            .add(score::Column::TenantId.eq(caller.tenant_id.clone()))
            .add(score::Column::Period.eq(period.clone()));
        if let Some(department) = &department {
            base = base.add(score::Column::Department.eq(department.clone()));
        }
        base = base.add(score::Column::Visible.eq(true));
        let top = if with_top {
            score::Entity::find()
                .filter(base.clone())
                .order_by_desc(score::Column::Points)
                .order_by_asc(score::Column::UserId)
                .limit(limit)
                .all(&self.db)
                .await?
                .into_iter()
                .enumerate()
                .map(|(index, row)| (index as u64 + 1, row))
                .collect()
        } else {
            Vec::new()
        };
        let mine = score::Entity::find_by_id((
            caller.tenant_id.clone(),
            period.clone(),
            caller.user_id.clone(),
        ))
        .one(&self.db)
        .await?
        .filter(|row| {
            row.visible
                && department
                    .as_ref()
                    .is_none_or(|department| &row.department == department)
        });
        let mut me_ranked = None;
        let mut neighbours = Vec::new();
        if let Some(mine) = mine {
            // Two index range counts: strictly more points, then equal points and a smaller id.
            let more_points = count_scores(
                &self.db,
                base.clone().add(score::Column::Points.gt(mine.points)),
            )
            .await?;
            let tied_before = count_scores(
                &self.db,
                base.clone()
                    .add(score::Column::Points.eq(mine.points))
                    .add(score::Column::UserId.lt(mine.user_id.clone())),
            )
            .await?;
            let my_rank = more_points + tied_before + 1;
            if around > 0 {
                // Each side is two index seeks (ties by id, then the next points), merged.
                let mut above = score::Entity::find()
                    .filter(
                        base.clone()
                            .add(score::Column::Points.eq(mine.points))
                            .add(score::Column::UserId.lt(mine.user_id.clone())),
                    )
                    .order_by_desc(score::Column::UserId)
                    .limit(around)
                    .all(&self.db)
                    .await?;
                above.extend(
                    score::Entity::find()
                        .filter(base.clone().add(score::Column::Points.gt(mine.points)))
                        .order_by_asc(score::Column::Points)
                        .order_by_desc(score::Column::UserId)
                        .limit(around)
                        .all(&self.db)
                        .await?,
                );
                above.truncate(around as usize);
                for (distance, row) in above.into_iter().enumerate().rev() {
                    neighbours.push((my_rank - distance as u64 - 1, row));
                }
            }
            neighbours.push((my_rank, mine.clone()));
            if around > 0 {
                let mut below = score::Entity::find()
                    .filter(
                        base.clone()
                            .add(score::Column::Points.eq(mine.points))
                            .add(score::Column::UserId.gt(mine.user_id.clone())),
                    )
                    .order_by_asc(score::Column::UserId)
                    .limit(around)
                    .all(&self.db)
                    .await?;
                below.extend(
                    score::Entity::find()
                        .filter(base.clone().add(score::Column::Points.lt(mine.points)))
                        .order_by_desc(score::Column::Points)
                        .order_by_asc(score::Column::UserId)
                        .limit(around)
                        .all(&self.db)
                        .await?,
                );
                below.truncate(around as usize);
                for (distance, row) in below.into_iter().enumerate() {
                    neighbours.push((my_rank + distance as u64 + 1, row));
                }
            }
            me_ranked = Some((my_rank, mine));
        }
        let mut user_ids: Vec<String> = top
            .iter()
            .chain(neighbours.iter())
            .map(|(_, row)| row.user_id.clone())
            .collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        let people: HashMap<String, member::Model> = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(member::Column::UserId.is_in(user_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.user_id.clone(), row))
            .collect();
        let standing = |(rank, row): &(u64, score::Model)| -> Standing {
            let me = row.user_id == caller.user_id;
            let person = people.get(&row.user_id);
            let hidden = person.is_some_and(|person| person.hide_name) && !me;
            if hidden {
                return Standing {
                    rank: *rank,
                    user_id: None,
                    display_name: HIDDEN_NAME.to_string(),
                    department: None,
                    points: row.points,
                    me,
                };
            }
            Standing {
                rank: *rank,
                user_id: Some(row.user_id.clone()),
                display_name: person
                    .map(|person| person.display_name.clone())
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| row.user_id.clone()),
                department: Some(row.department.clone())
                    .filter(|department| !department.is_empty()),
                points: row.points,
                me,
            }
        };
        Ok(Leaderboard {
            board,
            period,
            department,
            top: top.iter().map(standing).collect(),
            me: me_ranked.as_ref().map(standing),
            neighbours: neighbours.iter().map(standing).collect(),
        })
    }

    /// The caller's badges, oldest first.
    pub async fn my_badges(&self, caller: Caller, _request: Empty) -> ServiceResult<Badges> {
        let rows = badge::Entity::find()
            .filter(badge::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(badge::Column::UserId.eq(caller.user_id.clone()))
            .order_by_asc(badge::Column::EarnedAt)
            .order_by_asc(badge::Column::Badge)
            .all(&self.db)
            .await?;
        Ok(Badges {
            items: rows
                .into_iter()
                .map(|row| Badge {
                    badge: row.badge,
                    title: row.title,
                    earned_at: row.earned_at,
                    granted_by: row.granted_by,
                })
                .collect(),
        })
    }

    /// Grants a special badge (admins); announced like any other badge.
    pub async fn grant_badge(&self, caller: Caller, request: GrantBadge) -> ServiceResult<Badge> {
        caller.require_any(&[Role::Admin])?;
        let valid_name = !request.badge.is_empty()
            && request.badge.len() <= 40
            && request
                .badge
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            return Err(ServiceError::invalid(
                "badge must be 1 to 40 lowercase letters, digits or underscores",
            ));
        }
        let title = request.title.trim();
        if title.is_empty() || title.chars().count() > 80 {
            return Err(ServiceError::invalid("title must be 1 to 80 characters"));
        }
        if request.user_id.trim().is_empty() {
            return Err(ServiceError::invalid("user_id is required"));
        }
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let granted = crate::ledger::award_badge(
            &txn,
            &self.ledger.outbox,
            &caller.tenant_id,
            &request.user_id,
            &request.badge,
            title,
            now,
            Some(&caller.user_id),
        )
        .await?;
        if !granted {
            return Err(ServiceError::conflict(format!(
                "{} already has the badge {}",
                request.user_id, request.badge
            )));
        }
        txn.commit().await?;
        self.ledger.outbox.wake();
        Ok(Badge {
            badge: request.badge,
            title: title.to_string(),
            earned_at: now,
            granted_by: Some(caller.user_id),
        })
    }
}

/// `COUNT(*)` straight on the board index (a paginator's count would select every column
/// in a subquery and read the rows).
async fn count_scores(
    db: &DatabaseConnection,
    condition: Condition,
) -> Result<u64, sea_orm::DbErr> {
    let count: Option<i64> = score::Entity::find()
        .select_only()
        .column_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), "count")
        .filter(condition)
        .into_tuple()
        .one(db)
        .await?;
    Ok(count.unwrap_or(0).max(0) as u64)
}

fn ledger_entry(row: ledger::Model) -> LedgerEntry {
    LedgerEntry {
        points: row.points,
        requested_points: row.requested_points,
        action: row.action,
        source_event_id: row.source_event_id,
        share_id: row.share_id,
        post_id: row.post_id,
        rule_version: row.rule_version,
        awarded_at: row.awarded_at,
    }
}
