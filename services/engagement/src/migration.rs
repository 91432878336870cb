use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(chorus_bus::migration::Migration),
            Box::new(Initial),
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["visitors", "metric_totals", "tracked_shares", "links"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
