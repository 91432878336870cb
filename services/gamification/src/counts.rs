//! How many visible advocates hold each points value on each board (`score_counts`), kept
//! in the transaction of every change of a visible score. A rank is then a sum over the
//! distinct points values above the caller (a few hundred rows on a large board) instead of
//! a count over every advocate above (up to the whole board).
//!
//! A board is a period and a scope: `company`, or `department:<name>` for a department
//! board. The counts of one transaction are gathered in `CountChanges` and written at its
//! end in key order, so that concurrent transactions on PostgreSQL lock count rows in the
//! same order and cannot deadlock on them.

use crate::entities::score_count;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use std::collections::BTreeMap;

/// The scope of the company board.
pub const COMPANY_SCOPE: &str = "company";

/// The scope of a department board.
pub fn department_scope(department: &str) -> String {
    format!("department:{department}")
}

/// A visible score as the boards count it: its period, department and points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted<'a> {
    pub period: &'a str,
    pub department: &'a str,
    pub points: i64,
}

/// Changes to the counts, keyed by (tenant, period, scope, points).
#[derive(Debug, Default)]
pub struct CountChanges {
    deltas: BTreeMap<(String, String, String, i64), i64>,
}

impl CountChanges {
    fn add(&mut self, tenant_id: &str, score: &Counted<'_>, delta: i64) {
        for scope in [
            COMPANY_SCOPE.to_string(),
            department_scope(score.department),
        ] {
            *self
                .deltas
                .entry((
                    tenant_id.to_string(),
                    score.period.to_string(),
                    scope,
                    score.points,
                ))
                .or_default() += delta;
        }
    }

    /// A visible score appears on its boards.
    pub fn enter(&mut self, tenant_id: &str, score: &Counted<'_>) {
        self.add(tenant_id, score, 1);
    }

    /// A visible score leaves its boards (hidden, moved, or about to change points).
    pub fn leave(&mut self, tenant_id: &str, score: &Counted<'_>) {
        self.add(tenant_id, score, -1);
    }

    /// Writes the changes: one upsert of every changed count (in key order), then one
    /// delete of the counts that fell to zero.
    pub async fn apply<C: ConnectionTrait>(self, conn: &C) -> Result<(), DbErr> {
        let changed: Vec<_> = self
            .deltas
            .into_iter()
            .filter(|(_, delta)| *delta != 0)
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let rows = changed
            .iter()
            .map(
                |((tenant_id, period, scope, points), delta)| score_count::ActiveModel {
                    tenant_id: Set(tenant_id.clone()),
                    period: Set(period.clone()),
                    scope: Set(scope.clone()),
                    points: Set(*points),
                    advocates: Set(*delta),
                },
            );
        score_count::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    score_count::Column::TenantId,
                    score_count::Column::Period,
                    score_count::Column::Scope,
                    score_count::Column::Points,
                ])
                .value(
                    score_count::Column::Advocates,
                    Expr::cust("score_counts.advocates + excluded.advocates"),
                )
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        let emptied = changed.iter().filter(|(_, delta)| *delta < 0).fold(
            Condition::any(),
            |any, ((tenant_id, period, scope, points), _)| {
                any.add(
                    Condition::all()
                        .add(score_count::Column::TenantId.eq(tenant_id.clone()))
                        .add(score_count::Column::Period.eq(period.clone()))
                        .add(score_count::Column::Scope.eq(scope.clone()))
                        .add(score_count::Column::Points.eq(*points)),
                )
            },
        );
        if !emptied.is_empty() {
            score_count::Entity::delete_many()
                .filter(emptied)
                .filter(score_count::Column::Advocates.lte(0))
                .exec(conn)
                .await?;
        }
        Ok(())
    }
}

/// Visible advocates with more points than `points` on a board.
pub async fn advocates_above<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    period: &str,
    scope: &str,
    points: i64,
) -> Result<u64, DbErr> {
    use sea_orm::QuerySelect;
    let total: Option<i64> = score_count::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(advocates), 0) AS BIGINT)"),
            "total",
        )
        .filter(score_count::Column::TenantId.eq(tenant_id))
        .filter(score_count::Column::Period.eq(period))
        .filter(score_count::Column::Scope.eq(scope))
        .filter(score_count::Column::Points.gt(points))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(total.unwrap_or(0).max(0) as u64)
}

/// SQL that recomputes the counts from the visible scores (of one tenant, or all): for the
/// migration that introduces them and for seeding benchmarks.
pub fn rebuild_statements(tenant_id: Option<&str>) -> Vec<String> {
    let (delete_where, select_where) = match tenant_id {
        Some(tenant_id) => {
            debug_assert!(chorus_events::is_valid_tenant_token(tenant_id));
            (
                format!(" WHERE tenant_id = '{tenant_id}'"),
                format!(" AND tenant_id = '{tenant_id}'"),
            )
        }
        None => (String::new(), String::new()),
    };
    vec![
        format!("DELETE FROM score_counts{delete_where}"),
        format!(
            "INSERT INTO score_counts (tenant_id, period, scope, points, advocates) \
             SELECT tenant_id, period, '{COMPANY_SCOPE}', points, COUNT(*) FROM scores \
             WHERE visible{select_where} GROUP BY tenant_id, period, points"
        ),
        format!(
            "INSERT INTO score_counts (tenant_id, period, scope, points, advocates) \
             SELECT tenant_id, period, 'department:' || department, points, COUNT(*) FROM scores \
             WHERE visible{select_where} GROUP BY tenant_id, period, department, points"
        ),
    ]
}
