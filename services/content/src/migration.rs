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
            Box::new(AuditRetention),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_content_initial"
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
    for column in columns {
        statement.col(name(column));
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("posts"))
                    .if_not_exists()
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("title")))
                    .col(text(name("commentary")))
                    .col(text(name("link_url")))
                    .col(string(name("topics")))
                    .col(string(name("content_type")))
                    .col(string(name("language")))
                    .col(string(name("status")))
                    .col(text(name("media")))
                    .col(text(name("captions")))
                    .col(boolean(name("has_image")))
                    .col(boolean(name("read_only")))
                    .col(timestamp_with_time_zone_null(name("available_from")))
                    .col(timestamp_with_time_zone_null(name("available_until")))
                    .col(text(name("target_departments")))
                    .col(text(name("target_locations")))
                    .col(text(name("target_roles")))
                    .col(text(name("target_languages")))
                    .col(text(name("search_text")))
                    .col(string(name("created_by")))
                    .col(string_null(name("submitted_by")))
                    .col(timestamp_with_time_zone(name("created_at")))
                    .col(timestamp_with_time_zone(name("updated_at")))
                    .col(timestamp_with_time_zone_null(name("published_at")))
                    .col(big_integer(name("version")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "posts_feed",
            "posts",
            &["tenant_id", "status", "published_at", "id"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("post_variants"))
                    .if_not_exists()
                    .col(string(name("post_id")))
                    .col(string(name("language")))
                    .col(string(name("tenant_id")))
                    .col(string(name("title")))
                    .col(text(name("commentary")))
                    .col(text(name("captions")))
                    .primary_key(Index::create().col(name("post_id")).col(name("language")))
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
                    .col(string(name("location")))
                    .col(string(name("language")))
                    .col(string(name("roles")))
                    .col(boolean(name("active")))
                    .col(boolean(name("show_my_shares")))
                    .primary_key(Index::create().col(name("tenant_id")).col(name("user_id")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("follows"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("user_id")))
                    .col(string(name("topic")))
                    .primary_key(
                        Index::create()
                            .col(name("tenant_id"))
                            .col(name("user_id"))
                            .col(name("topic")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("post_shares"))
                    .if_not_exists()
                    .col(string(name("tenant_id")))
                    .col(string(name("post_id")))
                    .col(string(name("user_id")))
                    .col(big_integer(name("shares")))
                    .primary_key(
                        Index::create()
                            .col(name("tenant_id"))
                            .col(name("post_id"))
                            .col(name("user_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("compliance_rules"))
                    .if_not_exists()
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("kind")))
                    .col(string(name("value")))
                    .col(string(name("content_types")))
                    .col(string(name("created_by")))
                    .col(timestamp_with_time_zone(name("created_at")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "compliance_rules_tenant",
            "compliance_rules",
            &["tenant_id"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("submissions"))
                    .if_not_exists()
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("author")))
                    .col(string(name("title")))
                    .col(text(name("link_url")))
                    .col(text(name("text")))
                    .col(string(name("topics")))
                    .col(string(name("status")))
                    .col(text_null(name("reason")))
                    .col(string_null(name("post_id")))
                    .col(timestamp_with_time_zone(name("created_at")))
                    .col(string_null(name("decided_by")))
                    .col(timestamp_with_time_zone_null(name("decided_at")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "submissions_tenant",
            "submissions",
            &["tenant_id", "status", "id"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("audit_log"))
                    .if_not_exists()
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("actor")))
                    .col(string(name("action")))
                    .col(string(name("target")))
                    .col(text(name("detail")))
                    .col(timestamp_with_time_zone(name("at")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "audit_log_tenant",
            "audit_log",
            &["tenant_id", "id"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("surveys"))
                    .if_not_exists()
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("title")))
                    .col(text(name("questions")))
                    .col(string(name("recurrence")))
                    .col(text(name("targeting")))
                    .col(string(name("created_by")))
                    .col(timestamp_with_time_zone(name("created_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("survey_responses"))
                    .if_not_exists()
                    .col(string(name("id")).primary_key())
                    .col(string(name("tenant_id")))
                    .col(string(name("survey_id")))
                    .col(string(name("period")))
                    .col(string(name("department")))
                    .col(text(name("answers")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "survey_responses_period",
            "survey_responses",
            &["survey_id", "period"],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(name("survey_participation"))
                    .if_not_exists()
                    .col(string(name("survey_id")))
                    .col(string(name("period")))
                    .col(string(name("user_id")))
                    .col(string(name("tenant_id")))
                    .primary_key(
                        Index::create()
                            .col(name("survey_id"))
                            .col(name("period"))
                            .col(name("user_id")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "survey_participation",
            "survey_responses",
            "surveys",
            "audit_log",
            "submissions",
            "compliance_rules",
            "post_shares",
            "follows",
            "members",
            "post_variants",
            "posts",
        ] {
            manager
                .drop_table(Table::drop().table(name(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Audit log retention per tenant, and an index for purging and exporting by time.
struct AuditRetention;

impl MigrationName for AuditRetention {
    fn name(&self) -> &str {
        "m20261129_000100_content_audit_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditRetention {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("audit_settings"))
                    .if_not_exists()
                    .col(string(name("tenant_id")).primary_key())
                    .col(integer(name("retention_days")))
                    .col(string(name("updated_by")))
                    .col(timestamp_with_time_zone(name("updated_at")))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "audit_log_at",
            "audit_log",
            &["tenant_id", "at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(name("audit_settings")).to_owned())
            .await
    }
}
