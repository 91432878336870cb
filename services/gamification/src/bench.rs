//! Seeding for `chorus bench leaderboard`: millions of ledger entries and their board
//! scores written directly by the database (a recursive CTE on SQLite, `generate_series` on
//! PostgreSQL), since crediting them one by one through events would take hours. The rows
//! have the shapes the service writes; the figures measured afterwards go through the API.

use crate::domain;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr};

/// Department of a seeded advocate (`u000042` -> index 42).
pub const DEPARTMENTS: &[&str] = &["sales", "engineering", "hr", "support"];

/// The id of seeded advocate `index`.
pub fn advocate_id(index: u64) -> String {
    format!("u{index:06}")
}

pub fn department_of(index: u64) -> &'static str {
    DEPARTMENTS[(index % DEPARTMENTS.len() as u64) as usize]
}

/// Writes `entries` ledger entries spread over `advocates` people of `tenant_id` (one in
/// ten dated `now`, the others months ago), then the all-time, week and month scores,
/// balances and members they imply. Migrates the database first.
pub async fn seed_leaderboard(
    database_url: &str,
    tenant_id: &str,
    advocates: u64,
    entries: u64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    debug_assert!(chorus_events::is_valid_tenant_token(tenant_id));
    debug_assert!(advocates > 0 && advocates <= 1_000_000);
    let db = chorus_kit::db::connect_and_migrate::<crate::Migrator>(database_url).await?;
    let backend = db.get_database_backend();
    let today = domain::day_key(now);
    let week = domain::week_key(now);
    let [_, week_period, month_period] = domain::period_keys(now);
    let current = now.to_rfc3339();
    let long_ago = (now - chrono::Duration::days(60)).to_rfc3339();
    let last = entries.saturating_sub(1);
    let (numbers, user_expr, text_of, stamp) = match backend {
        DatabaseBackend::Postgres => (
            format!("generate_series(0, {last}) AS seq(n)"),
            format!("'u' || lpad((n % {advocates})::text, 6, '0')"),
            "n::text",
            "::timestamptz",
        ),
        _ => (
            format!(
                "(WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {last}) SELECT n FROM seq) AS seq"
            ),
            format!("printf('u%06d', n % {advocates})"),
            "CAST(n AS TEXT)",
            "",
        ),
    };
    let statements = [
        format!(
            "INSERT INTO ledger (tenant_id, user_id, points, requested_points, units, action, source_event_id, share_id, post_id, \
             rule_version, day, week, awarded_at) \
             SELECT '{tenant_id}', {user_expr}, ((n * 7919) % 40) + 1, ((n * 7919) % 40) + 1, 1, 'click', 'seed-' || {text_of}, NULL, \
             'seed-post-' || {post}, 1, \
             CASE WHEN n % 10 = 0 THEN '{today}' ELSE 'seed' END, CASE WHEN n % 10 = 0 THEN '{week}' ELSE 'seed' END, \
             CASE WHEN n % 10 = 0 THEN '{current}'{stamp} ELSE '{long_ago}'{stamp} END FROM {numbers}",
            post = match backend {
                DatabaseBackend::Postgres => "(n % 5000)::text",
                _ => "CAST(n % 5000 AS TEXT)",
            },
        ),
        scores_statement(tenant_id, "all", "1 = 1"),
        scores_statement(tenant_id, &week_period, &format!("day = '{today}'")),
        scores_statement(tenant_id, &month_period, &format!("day = '{today}'")),
        format!(
            "INSERT INTO balances (tenant_id, user_id, balance) SELECT tenant_id, user_id, points FROM scores \
             WHERE tenant_id = '{tenant_id}' AND period = 'all'"
        ),
        // One advocate in fifty hides their name.
        format!(
            "INSERT INTO members (tenant_id, user_id, display_name, department, active, hide_name) \
             SELECT tenant_id, user_id, 'Advocate ' || user_id, department, TRUE, CAST(substr(user_id, 2) AS INTEGER) % 50 = 7 \
             FROM scores WHERE tenant_id = '{tenant_id}' AND period = 'all'"
        ),
        crate::migration::TALLIES_FROM_LEDGER.to_string(),
        "ANALYZE".to_string(),
    ];
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    db.close().await
}

fn scores_statement(tenant_id: &str, period: &str, condition: &str) -> String {
    let department = format!(
        "CASE CAST(substr(user_id, 2) AS INTEGER) % {} {} END",
        DEPARTMENTS.len(),
        DEPARTMENTS
            .iter()
            .enumerate()
            .map(|(index, name)| format!("WHEN {index} THEN '{name}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    format!(
        "INSERT INTO scores (tenant_id, period, user_id, department, visible, points) \
         SELECT tenant_id, '{period}', user_id, {department}, TRUE, CAST(SUM(points) AS BIGINT) FROM ledger \
         WHERE tenant_id = '{tenant_id}' AND {condition} GROUP BY tenant_id, user_id"
    )
}
