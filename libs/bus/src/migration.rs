//! Migration of the bus's tables; every service's migrator lists it first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_chorus_bus"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("chorus_outbox"))
                    .if_not_exists()
                    .col(big_pk_auto(Alias::new("id")))
                    .col(string(Alias::new("event_id")))
                    .col(string(Alias::new("subject")))
                    .col(string(Alias::new("event_type")))
                    .col(string(Alias::new("source")))
                    .col(blob(Alias::new("payload")))
                    .col(string_null(Alias::new("traceparent")))
                    .col(string_null(Alias::new("tracestate")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("sent_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("chorus_outbox_unsent")
                    .table(Alias::new("chorus_outbox"))
                    .col(Alias::new("sent_at"))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("chorus_inbox"))
                    .if_not_exists()
                    .col(string(Alias::new("consumer")))
                    .col(string(Alias::new("event_id")))
                    .col(timestamp_with_time_zone(Alias::new("processed_at")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("consumer"))
                            .col(Alias::new("event_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("chorus_dead_letters"))
                    .if_not_exists()
                    .col(big_pk_auto(Alias::new("id")))
                    .col(string(Alias::new("consumer")))
                    .col(string(Alias::new("subject")))
                    .col(string(Alias::new("event_id")))
                    .col(text(Alias::new("error")))
                    .col(big_integer(Alias::new("deliveries")))
                    .col(blob(Alias::new("payload")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["chorus_dead_letters", "chorus_inbox", "chorus_outbox"] {
            manager
                .drop_table(
                    Table::drop()
                        .table(Alias::new(table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Per-row retries of the outbox relay: a row that JetStream refuses while others go through
/// waits with its own back-off, and after `POISON_AFTER` refusals is set aside as dead (kept,
/// counted, logged) instead of holding back the rows behind it.
pub struct OutboxRetries;

impl MigrationName for OutboxRetries {
    fn name(&self) -> &str {
        "m20261207_000001_chorus_bus_outbox_retries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxRetries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            integer(Alias::new("attempts")).default(0).to_owned(),
            timestamp_with_time_zone_null(Alias::new("next_attempt_at")),
            timestamp_with_time_zone_null(Alias::new("dead_at")),
            text_null(Alias::new("last_error")),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("chorus_outbox"))
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
