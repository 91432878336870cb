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
        "m20261123_000100_gamification_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ledger"))
                    .if_not_exists()
                    .col(big_pk_auto(Alias::new("id")))
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(big_integer(Alias::new("points")))
                    .col(string(Alias::new("action")))
                    .col(string(Alias::new("source_event_id")))
                    .col(string_null(Alias::new("share_id")))
                    .col(timestamp_with_time_zone(Alias::new("awarded_at")))
                    .to_owned(),
            )
            .await?;
        // The same source can never be credited twice for the same action.
        manager
            .create_index(
                Index::create()
                    .name("ledger_source_unique")
                    .table(Alias::new("ledger"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("source_event_id"))
                    .col(Alias::new("action"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ledger_by_user")
                    .table(Alias::new("ledger"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("balances"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(big_integer(Alias::new("balance")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("user_id")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("balances")).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new("ledger")).to_owned())
            .await
    }
}
