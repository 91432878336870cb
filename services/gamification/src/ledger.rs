//! Crediting one source event: price it with the rules in force when it happened, apply
//! the caps, append to the ledger (once per source and action), and in the same
//! transaction move the balance, the board scores, contest scores and badges.

use crate::domain::{self, RulesVersion};
use crate::entities::{badge, balance, contest, ledger, member, post, rule_version, score, tally};
use chorus_api::gamification::{ContestMetric, PointRules};
use chorus_bus::Outbox;
use chorus_events::gamification::v1::{BadgeEarned, PointsAwarded};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set, TransactionTrait, TryInsertResult,
};
use std::collections::HashMap;

/// One fact that may earn points.
#[derive(Debug, Clone)]
pub struct Credit<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub action: &'static str,
    /// Shares, clicks, reactions... (negative for corrections).
    pub units: i64,
    pub source_event_id: &'a str,
    pub share_id: Option<&'a str>,
    pub post_id: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
}

/// What a credit did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Credited { points: i64 },
    AlreadyCredited,
}

pub struct Ledger {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub defaults: PointRules,
}

impl Ledger {
    /// Rule versions of a tenant (version 1, the defaults, is not stored).
    pub async fn versions<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant_id: &str,
    ) -> Result<Vec<RulesVersion>, DbErr> {
        let rows = rule_version::Entity::find()
            .filter(rule_version::Column::TenantId.eq(tenant_id))
            .all(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let rules = serde_json::from_str(&row.rules).ok()?;
                Some(RulesVersion {
                    version: row.version,
                    effective_from: row.effective_from,
                    rules,
                })
            })
            .collect())
    }

    /// Appends the credit once per (source event, action) with everything it moves.
    pub async fn credit(&self, credit: Credit<'_>) -> Result<Outcome, DbErr> {
        let txn = self.db.begin().await?;
        let outcome = self.credit_in(&txn, credit).await?;
        txn.commit().await?;
        if matches!(outcome, Outcome::Credited { .. }) {
            self.outbox.wake();
        }
        Ok(outcome)
    }

    /// Applies one credit inside the caller's transaction (credits of a batch are applied
    /// in stream order in one transaction, each seeing the ones before it). The caller
    /// commits, then wakes the outbox.
    pub async fn credit_in<C: ConnectionTrait>(
        &self,
        txn: &C,
        mut credit: Credit<'_>,
    ) -> Result<Outcome, DbErr> {
        // Microseconds: what PostgreSQL keeps, so both backends store the same instant.
        credit.occurred_at = credit.occurred_at.trunc_subsecs(6);
        let versions = self.versions(txn, credit.tenant_id).await?;
        let in_force = domain::rules_at(&versions, &self.defaults, credit.occurred_at);
        let rule = domain::rule_for(&in_force.rules, credit.action)
            .expect("every action has a rule")
            .clone();
        let requested_points = rule.points.saturating_mul(credit.units);
        let day = domain::day_key(credit.occurred_at);
        let week = domain::week_key(credit.occurred_at);
        let day_scope = format!("day:{day}");
        let post_scope = credit.post_id.map(|post_id| format!("post:{post_id}"));
        let mut scopes = vec![day_scope.clone()];
        scopes.extend(post_scope.clone());
        let totals = tallies(
            txn,
            credit.tenant_id,
            credit.user_id,
            credit.action,
            &scopes,
        )
        .await?;
        let earned_today = totals.get(&day_scope).map_or(0, |tally| tally.points);
        let earned_on_post = post_scope
            .as_ref()
            .and_then(|scope| totals.get(scope))
            .map_or(0, |tally| tally.points);
        let mut rule_for_post = rule.clone();
        if credit.post_id.is_none() {
            rule_for_post.per_post_cap = None;
        }
        let points = domain::capped_points(
            requested_points,
            &rule_for_post,
            earned_today,
            earned_on_post,
        );
        let entry = ledger::ActiveModel {
            tenant_id: Set(credit.tenant_id.to_string()),
            user_id: Set(credit.user_id.to_string()),
            points: Set(points),
            requested_points: Set(requested_points),
            units: Set(credit.units),
            action: Set(credit.action.to_string()),
            source_event_id: Set(credit.source_event_id.to_string()),
            share_id: Set(credit.share_id.map(str::to_string)),
            post_id: Set(credit.post_id.map(str::to_string)),
            rule_version: Set(in_force.version),
            day: Set(day),
            week: Set(week.clone()),
            awarded_at: Set(credit.occurred_at),
            ..Default::default()
        };
        let inserted = ledger::Entity::insert(entry)
            .on_conflict_do_nothing_on([
                ledger::Column::TenantId,
                ledger::Column::SourceEventId,
                ledger::Column::Action,
            ])
            .exec(txn)
            .await?;
        if matches!(inserted, TryInsertResult::Conflicted) {
            // Nothing was written before the ledger entry: the caller's transaction stays clean.
            return Ok(Outcome::AlreadyCredited);
        }
        scopes.push("all".to_string());
        add_to_tallies(
            txn,
            credit.tenant_id,
            credit.user_id,
            credit.action,
            &scopes,
            points,
            credit.units,
        )
        .await?;
        let member =
            member::Entity::find_by_id((credit.tenant_id.to_string(), credit.user_id.to_string()))
                .one(txn)
                .await?;
        let department = member
            .as_ref()
            .map(|row| row.department.clone())
            .unwrap_or_default();
        let visible = member.as_ref().is_none_or(|row| row.active);
        if points != 0 {
            let balance = add_to_balance(txn, credit.tenant_id, credit.user_id, points).await?;
            for period in domain::period_keys(credit.occurred_at) {
                add_to_score(
                    txn,
                    credit.tenant_id,
                    &period,
                    credit.user_id,
                    &department,
                    visible,
                    points,
                )
                .await?;
            }
            let event = PointsAwarded {
                tenant_id: credit.tenant_id.to_string(),
                user_id: credit.user_id.to_string(),
                points,
                action: credit.action.to_string(),
                source_event_id: credit.source_event_id.to_string(),
                share_id: credit.share_id.unwrap_or_default().to_string(),
                balance,
                awarded_at: Some(chorus_events::to_timestamp(credit.occurred_at)),
            };
            self.outbox
                .enqueue_with_id(
                    txn,
                    &event,
                    format!("points-{}-{}", credit.action, credit.source_event_id),
                )
                .await?;
        }
        self.score_contests(txn, &credit, points, &department, visible)
            .await?;
        self.award_threshold_badges(txn, &credit, &week).await?;
        tracing::debug!(tenant_id = %credit.tenant_id, user_id = %credit.user_id, points, action = credit.action, "points credited");
        Ok(Outcome::Credited { points })
    }

    async fn score_contests<C: ConnectionTrait>(
        &self,
        conn: &C,
        credit: &Credit<'_>,
        points: i64,
        department: &str,
        visible: bool,
    ) -> Result<(), DbErr> {
        let running = contest::Entity::find()
            .filter(contest::Column::TenantId.eq(credit.tenant_id))
            .filter(contest::Column::Finished.eq(false))
            .filter(contest::Column::StartsAt.lte(credit.occurred_at))
            .filter(contest::Column::EndsAt.gt(credit.occurred_at))
            .all(conn)
            .await?;
        if running.is_empty() {
            return Ok(());
        }
        let topics: Vec<String> = match credit.post_id {
            Some(post_id) => {
                post::Entity::find_by_id((credit.tenant_id.to_string(), post_id.to_string()))
                    .one(conn)
                    .await?
                    .and_then(|row| serde_json::from_str(&row.topics).ok())
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        for row in running {
            let scope = contest_scope(&row);
            if !scope.covers(credit.occurred_at, credit.post_id, &topics) {
                continue;
            }
            let increment =
                domain::contest_increment(scope.metric, credit.action, points, credit.units);
            if increment == 0 {
                continue;
            }
            add_to_score(
                conn,
                credit.tenant_id,
                &domain::contest_period(&row.id),
                credit.user_id,
                department,
                visible,
                increment,
            )
            .await?;
        }
        Ok(())
    }

    async fn award_threshold_badges<C: ConnectionTrait>(
        &self,
        conn: &C,
        credit: &Credit<'_>,
        week: &str,
    ) -> Result<(), DbErr> {
        if credit.units <= 0 {
            return Ok(());
        }
        let units = tallies(
            conn,
            credit.tenant_id,
            credit.user_id,
            credit.action,
            &["all".to_string()],
        )
        .await?
        .get("all")
        .map_or(0, |tally| tally.units);
        let mut earned: Vec<(&str, &str)> = domain::thresholds_reached(credit.action, units)
            .map(|threshold| (threshold.badge, threshold.title))
            .collect();
        if credit.action == "share" {
            let weeks: Vec<String> = ledger::Entity::find()
                .select_only()
                .column(ledger::Column::Week)
                .distinct()
                .filter(ledger::Column::TenantId.eq(credit.tenant_id))
                .filter(ledger::Column::UserId.eq(credit.user_id))
                .filter(ledger::Column::Action.eq("share"))
                .into_tuple()
                .all(conn)
                .await?;
            if domain::streak_weeks(&weeks, week) >= domain::STREAK_WEEKS {
                earned.push((domain::STREAK_BADGE, domain::STREAK_TITLE));
            }
        }
        for (badge_name, title) in earned {
            award_badge(
                conn,
                &self.outbox,
                credit.tenant_id,
                credit.user_id,
                badge_name,
                title,
                credit.occurred_at,
                None,
            )
            .await?;
        }
        Ok(())
    }
}

pub fn contest_scope(row: &contest::Model) -> domain::ContestScope {
    domain::ContestScope {
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        metric: ContestMetric::parse(&row.metric).unwrap_or(ContestMetric::Points),
        topic: row.topic.clone(),
        post_ids: serde_json::from_str(&row.post_ids).unwrap_or_default(),
    }
}

/// Records a badge once; returns whether it is new (then `BadgeEarned` is in the outbox).
#[allow(clippy::too_many_arguments)]
pub async fn award_badge<C: ConnectionTrait>(
    conn: &C,
    outbox: &Outbox,
    tenant_id: &str,
    user_id: &str,
    badge_name: &str,
    title: &str,
    earned_at: DateTime<Utc>,
    granted_by: Option<&str>,
) -> Result<bool, DbErr> {
    let row = badge::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        badge: Set(badge_name.to_string()),
        title: Set(title.to_string()),
        earned_at: Set(earned_at),
        granted_by: Set(granted_by.map(str::to_string)),
    };
    let inserted = badge::Entity::insert(row)
        .on_conflict_do_nothing_on([
            badge::Column::TenantId,
            badge::Column::UserId,
            badge::Column::Badge,
        ])
        .exec(conn)
        .await?;
    if matches!(inserted, TryInsertResult::Conflicted) {
        return Ok(false);
    }
    let event = BadgeEarned {
        tenant_id: tenant_id.to_string(),
        user_id: user_id.to_string(),
        badge: badge_name.to_string(),
        title: title.to_string(),
        earned_at: Some(chorus_events::to_timestamp(earned_at)),
    };
    outbox
        .enqueue_with_id(
            conn,
            &event,
            format!("badge-{tenant_id}-{user_id}-{badge_name}"),
        )
        .await?;
    Ok(true)
}

/// The running totals of a user's action on `scopes`, by scope (absent: nothing yet).
async fn tallies<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    user_id: &str,
    action: &str,
    scopes: &[String],
) -> Result<HashMap<String, tally::Model>, DbErr> {
    Ok(tally::Entity::find()
        .filter(tally::Column::TenantId.eq(tenant_id))
        .filter(tally::Column::UserId.eq(user_id))
        .filter(tally::Column::Action.eq(action))
        .filter(tally::Column::Scope.is_in(scopes.iter().cloned()))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.scope.clone(), row))
        .collect())
}

/// Adds one ledger entry's points and units to the running totals of its scopes.
async fn add_to_tallies<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    user_id: &str,
    action: &str,
    scopes: &[String],
    points: i64,
    units: i64,
) -> Result<(), DbErr> {
    let rows = scopes.iter().map(|scope| tally::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        action: Set(action.to_string()),
        scope: Set(scope.clone()),
        points: Set(points),
        units: Set(units),
    });
    tally::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                tally::Column::TenantId,
                tally::Column::UserId,
                tally::Column::Action,
                tally::Column::Scope,
            ])
            .value(
                tally::Column::Points,
                Expr::cust("tallies.points + excluded.points"),
            )
            .value(
                tally::Column::Units,
                Expr::cust("tallies.units + excluded.units"),
            )
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn add_to_balance<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    user_id: &str,
    points: i64,
) -> Result<i64, DbErr> {
    let row = balance::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        balance: Set(points),
    };
    balance::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([balance::Column::TenantId, balance::Column::UserId])
                .value(
                    balance::Column::Balance,
                    Expr::col((balance::Entity, balance::Column::Balance)).add(points),
                )
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    let current = balance::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
        .one(conn)
        .await?;
    Ok(current.map(|row| row.balance).unwrap_or(points))
}

/// Adds to a materialised board score (creating the row).
pub async fn add_to_score<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    period: &str,
    user_id: &str,
    department: &str,
    visible: bool,
    points: i64,
) -> Result<(), DbErr> {
    let row = score::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        period: Set(period.to_string()),
        user_id: Set(user_id.to_string()),
        department: Set(department.to_string()),
        visible: Set(visible),
        points: Set(points),
    };
    score::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                score::Column::TenantId,
                score::Column::Period,
                score::Column::UserId,
            ])
            .value(
                score::Column::Points,
                Expr::col((score::Entity, score::Column::Points)).add(points),
            )
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
