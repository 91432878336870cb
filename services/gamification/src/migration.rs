use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(chorus_bus::migration::Migration),
            Box::new(chorus_bus::migration::OutboxRetries),
            Box::new(Initial),
            Box::new(Tallies),
            Box::new(ContestAnnouncements),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_gamification_initial"
    }
}

fn name(text: &str) -> Alias {
    Alias::new(text)
}

async fn index(
    manager: &SchemaManager<'_>,
    index_name: &str,
    table: &str,
    columns: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement
        .name(index_name)
        .table(name(table))
        .if_not_exists();
    // A leading `-` makes the column descending (boards read the highest points first).
    for column in columns {
        match column.strip_prefix('-') {
            Some(descending) => statement.col((name(descending), IndexOrder::Desc)),
            None => statement.col(name(column)),
        };
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Append-only: every entry names its source; corrections are new entries.
        manager
            .create_table(
                Table::create()
                    .table(name("ledger"))
                    .if_not_exists()
                    .col(big_pk_auto(name("id")))
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    .col(big_integer(name("points")))
                    .col(big_integer(name("requested_points")))
                    .col(big_integer(name("units")))
                    .col(string(name("action")))
                    .col(string(name("source_event_id")))
                    .col(string_null(name("share_id")))
                    .col(string_null(name("post_id")))
                    .col(big_integer(name("rule_version")))
                    .col(string(name("day")))
                    .col(string(name("week")))
                    .col(timestamp_with_time_zone(name("awarded_at")))
                    .to_owned(),
            )
            .await?;
        // The same source can never be credited twice for the same action.
        index(
            manager,
            "ledger_source_unique",
            "ledger",
            &["tenant_id", "source_event_id", "action"],
            true,
        )
        .await?;
        index(
            manager,
            "ledger_by_user",
            "ledger",
            &["tenant_id", "user_id", "id"],
            false,
        )
        .await?;
        index(
            manager,
            "ledger_daily_caps",
            "ledger",
            &["tenant_id", "user_id", "action", "day"],
            false,
        )
        .await?;
        index(
            manager,
            "ledger_post_caps",
            "ledger",
            &["tenant_id", "user_id", "action", "post_id"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("balances"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    .col(big_integer(name("balance")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("user_id")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("rule_versions"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(big_integer(name("version")))
                    .col(timestamp_with_time_zone(name("effective_from")))
                    .col(text(name("rules")))
                    .col(string(name("created_by")))
                    .col(timestamp_with_time_zone(name("created_at")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("version")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("members"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    .col(string(name("display_name")))
                    .col(string(name("department")))
                    .col(boolean(name("active")))
                    .col(boolean(name("hide_name")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("user_id")))
                    .to_owned(),
            )
            .await?;
        // Materialised board scores, updated with each ledger entry: one row per
        // (tenant, period, user); `department` and `visible` follow the member.
        manager
            .create_table(
                Table::create()
                    .table(name("scores"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("period")))
                    .col(string(name("user_id")))
                    .col(string(name("department")))
                    .col(boolean(name("visible")))
                    .col(big_integer(name("points")))
                    .primary_key(
                        Index::create()
                            .col(name("tenant_id"))
                            .col(name("period"))
                            .col(name("user_id")),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "scores_company_board",
            "scores",
            &["tenant_id", "period", "visible", "-points", "user_id"],
            false,
        )
        .await?;
        index(
            manager,
            "scores_department_board",
            "scores",
            &[
                "tenant_id",
                "period",
                "department",
                "visible",
                "-points",
                "user_id",
            ],
            false,
        )
        .await?;
        index(
            manager,
            "scores_by_user",
            "scores",
            &["tenant_id", "user_id"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("badges"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    .col(string(name("badge")))
                    .col(string(name("title")))
                    .col(timestamp_with_time_zone(name("earned_at")))
                    .col(string_null(name("granted_by")))
                    .primary_key(
                        Index::create()
                            .col(name("tenant_id"))
                            .col(name("user_id"))
                            .col(name("badge")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("posts"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("post_id")))
                    .col(text(name("topics")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("post_id")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("contests"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("id")))
                    .col(string(name("name")))
                    .col(timestamp_with_time_zone(name("starts_at")))
                    .col(timestamp_with_time_zone(name("ends_at")))
                    .col(string(name("metric")))
                    .col(string_null(name("topic")))
                    .col(text(name("post_ids")))
                    .col(boolean(name("teams")))
                    .col(boolean(name("finished")))
                    .col(text_null(name("results")))
                    .col(string(name("created_by")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("id")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "contests_open",
            "contests",
            &["finished", "ends_at"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("rewards"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("id")))
                    .col(string(name("name")))
                    .col(big_integer(name("cost")))
                    .col(string(name("created_by")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("id")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("redemptions"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("id")))
                    .col(string(name("user_id")))
                    .col(string(name("reward_id")))
                    .col(string(name("reward_name")))
                    .col(big_integer(name("cost")))
                    .col(string(name("status")))
                    .col(timestamp_with_time_zone(name("requested_at")))
                    .col(string_null(name("decided_by")))
                    .col(timestamp_with_time_zone_null(name("decided_at")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("id")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "redemptions_by_user",
            "redemptions",
            &["tenant_id", "user_id", "requested_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "redemptions",
            "rewards",
            "contests",
            "posts",
            "badges",
            "scores",
            "members",
            "rule_versions",
            "balances",
            "ledger",
        ] {
            manager
                .drop_table(Table::drop().table(name(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Running totals per (user, action, scope) beside the ledger, filled from the ledger's
/// existing entries.
struct Tallies;

impl MigrationName for Tallies {
    fn name(&self) -> &str {
        "m20261128_000200_gamification_tallies"
    }
}

/// Fills `tallies` from the ledger (empty tallies expected): used by the migration and by the
/// benchmark's bulk seeding.
pub const TALLIES_FROM_LEDGER: &str = "INSERT INTO tallies (tenant_id, user_id, action, scope, points, units) \
     SELECT tenant_id, user_id, action, 'all', CAST(SUM(points) AS BIGINT), CAST(SUM(units) AS BIGINT) \
     FROM ledger GROUP BY tenant_id, user_id, action \
     UNION ALL \
     SELECT tenant_id, user_id, action, 'day:' || day, CAST(SUM(points) AS BIGINT), CAST(SUM(units) AS BIGINT) \
     FROM ledger GROUP BY tenant_id, user_id, action, day \
     UNION ALL \
     SELECT tenant_id, user_id, action, 'post:' || post_id, CAST(SUM(points) AS BIGINT), CAST(SUM(units) AS BIGINT) \
     FROM ledger WHERE post_id IS NOT NULL GROUP BY tenant_id, user_id, action, post_id";

#[async_trait::async_trait]
impl MigrationTrait for Tallies {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("tallies"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    .col(string(name("action")))
                    .col(string(name("scope")))
                    .col(big_integer(name("points")))
                    .col(big_integer(name("units")))
                    .primary_key(
                        Index::create()
                            .col(name("tenant_id"))
                            .col(name("user_id"))
                            .col(name("action"))
                            .col(name("scope")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(TALLIES_FROM_LEDGER)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(name("tallies")).to_owned())
            .await
    }
}

/// Whether a contest's start and approaching end were announced.
struct ContestAnnouncements;

impl MigrationName for ContestAnnouncements {
    fn name(&self) -> &str {
        "m20261129_000100_gamification_contest_announcements"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ContestAnnouncements {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement (SQLite); existing contests count as announced.
        for column in ["started_announced", "ending_announced"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("contests"))
                        .add_column(boolean(name(column)).default(true))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["ending_announced", "started_announced"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("contests"))
                        .drop_column(name(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
