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
        "m20261123_000100_content_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("posts"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("title")))
                    .col(text(Alias::new("commentary")))
                    .col(text(Alias::new("link_url")))
                    .col(string(Alias::new("topics")))
                    .col(string(Alias::new("content_type")))
                    .col(string(Alias::new("language")))
                    .col(string(Alias::new("status")))
                    .col(string(Alias::new("created_by")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("published_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("posts_feed")
                    .table(Alias::new("posts"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("status"))
                    .col(Alias::new("published_at"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("posts")).to_owned())
            .await
    }
}
