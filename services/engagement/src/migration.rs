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
            Box::new(RefreshOnActivity),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_engagement_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("links"))
                    .if_not_exists()
                    .col(string(Alias::new("code")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("share_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("post_id")))
                    .col(string(Alias::new("network")))
                    .col(text(Alias::new("target_url")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("tracked_shares"))
                    .if_not_exists()
                    .col(string(Alias::new("share_id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("post_id")))
                    .col(string(Alias::new("network")))
                    .col(string(Alias::new("external_id")))
                    .col(timestamp_with_time_zone(Alias::new("published_at")))
                    .col(integer(Alias::new("poll_index")))
                    .col(timestamp_with_time_zone_null(Alias::new("next_poll_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tracked_shares_next_poll")
                    .table(Alias::new("tracked_shares"))
                    .col(Alias::new("next_poll_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("metric_totals"))
                    .if_not_exists()
                    .col(string(Alias::new("share_id")))
                    .col(string(Alias::new("metric")))
                    .col(string(Alias::new("tenant_id")))
                    .col(big_integer(Alias::new("total")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("share_id"))
                            .col(Alias::new("metric")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("visitors"))
                    .if_not_exists()
                    .col(string(Alias::new("share_id")))
                    .col(string(Alias::new("day")))
                    .col(string(Alias::new("visitor_hash")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("share_id"))
                            .col(Alias::new("day"))
                            .col(Alias::new("visitor_hash")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("members"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("display_name")))
                    .col(string(Alias::new("department")))
                    .col(boolean(Alias::new("advocate")))
                    .col(boolean(Alias::new("active")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("user_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("posts"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("post_id")))
                    .col(string(Alias::new("title")))
                    .col(string(Alias::new("topics")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("post_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("observations"))
                    .if_not_exists()
                    .col(big_pk_auto(Alias::new("id")))
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("day")))
                    .col(timestamp_with_time_zone(Alias::new("at")))
                    .col(string(Alias::new("share_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("post_id")))
                    .col(string(Alias::new("network")))
                    .col(string(Alias::new("department")))
                    .col(string(Alias::new("metric")))
                    .col(big_integer(Alias::new("delta")))
                    .col(big_integer(Alias::new("audience")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("observations_period")
                    .table(Alias::new("observations"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("day"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("analytics_settings"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")).primary_key())
                    .col(string(Alias::new("time_zone")))
                    .col(string(Alias::new("currency")))
                    .col(double(Alias::new("reaction_weight")))
                    .col(text(Alias::new("rates")))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "analytics_settings",
            "observations",
            "posts",
            "members",
            "visitors",
            "metric_totals",
            "tracked_shares",
            "links",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Network webhooks ask for a read outside the schedule: `refresh_at`, and an index to find
/// a share by the network's id of its post.
struct RefreshOnActivity;

impl MigrationName for RefreshOnActivity {
    fn name(&self) -> &str {
        "m20261128_000100_engagement_refresh_on_activity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RefreshOnActivity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("tracked_shares"))
                    .add_column(timestamp_with_time_zone_null(Alias::new("refresh_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tracked_shares_external_id")
                    .table(Alias::new("tracked_shares"))
                    .col(Alias::new("network"))
                    .col(Alias::new("external_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
