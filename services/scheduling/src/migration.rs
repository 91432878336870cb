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
            Box::new(ShareImages),
            Box::new(PostingSlots),
            Box::new(ShareRequestKeys),
            Box::new(ShareWaiting),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_scheduling_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("shares"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("post_id")))
                    .col(string(Alias::new("account_id")))
                    .col(string(Alias::new("network")))
                    .col(text(Alias::new("caption")))
                    .col(text(Alias::new("text")))
                    .col(string(Alias::new("link_code")).unique_key())
                    .col(text(Alias::new("target_url")))
                    .col(string(Alias::new("status")))
                    .col(timestamp_with_time_zone(Alias::new("due_at")))
                    .col(string_null(Alias::new("traceparent")))
                    .col(string_null(Alias::new("tracestate")))
                    .col(string_null(Alias::new("external_id")))
                    .col(text_null(Alias::new("external_url")))
                    .col(text_null(Alias::new("failure_reason")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("published_at")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("shares_due")
                    .table(Alias::new("shares"))
                    .col(Alias::new("status"))
                    .col(Alias::new("due_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("shares_by_user")
                    .table(Alias::new("shares"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("created_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("shares")).to_owned())
            .await
    }
}

/// The post's image, kept with the share so that the due event carries it.
struct ShareImages;

impl MigrationName for ShareImages {
    fn name(&self) -> &str {
        "m20261128_000200_scheduling_share_images"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ShareImages {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["image_url", "image_alt"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("shares"))
                        .add_column(text_null(Alias::new(column)))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Weekly posting slots per advocate, and the slot a share holds.
struct PostingSlots;

impl MigrationName for PostingSlots {
    fn name(&self) -> &str {
        "m20261129_000100_scheduling_posting_slots"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PostingSlots {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("shares"))
                    .add_column(timestamp_with_time_zone_null(Alias::new("slot_at")))
                    .to_owned(),
            )
            .await?;
        // One share per slot of an advocate (NULLs, shares outside slots, do not collide).
        manager
            .create_index(
                Index::create()
                    .name("shares_one_per_slot")
                    .table(Alias::new("shares"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("slot_at"))
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("posting_slots"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("time_zone")))
                    // `monday 08:30,thursday 12:15`
                    .col(text(Alias::new("slots")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("user_id")),
                    )
                    .to_owned(),
            )
            .await
    }
}

/// The client's Idempotency-Key of the request that created a share (hashed with the caller
/// by the gateway): a retry of that request returns the share instead of a second one.
struct ShareRequestKeys;

impl MigrationName for ShareRequestKeys {
    fn name(&self) -> &str {
        "m20261207_000100_scheduling_share_request_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ShareRequestKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("shares"))
                    .add_column(string_null(Alias::new("request_key")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("shares_one_per_request_key")
                    .table(Alias::new("shares"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("request_key"))
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// What a due share waits for (the network's rate limit, the account's window) and until when.
struct ShareWaiting;

impl MigrationName for ShareWaiting {
    fn name(&self) -> &str {
        "m20261207_000200_scheduling_share_waiting"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ShareWaiting {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("shares"))
                    .add_column(text_null(Alias::new("waiting_for")))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("shares"))
                    .add_column(timestamp_with_time_zone_null(Alias::new("waiting_until")))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
