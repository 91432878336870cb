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
            Box::new(ExpiryReminders),
            Box::new(PublicationImages),
            Box::new(PublicationLeases),
            Box::new(PublicationAttemptRefs),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_publishing_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("accounts"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("network")))
                    .col(string(Alias::new("external_id")))
                    .col(string(Alias::new("display_name")))
                    .col(string(Alias::new("status")))
                    .col(string(Alias::new("key_id")))
                    .col(blob(Alias::new("access_token")))
                    .col(blob_null(Alias::new("refresh_token")))
                    .col(timestamp_with_time_zone_null(Alias::new(
                        "access_expires_at",
                    )))
                    .col(timestamp_with_time_zone_null(Alias::new(
                        "refresh_expires_at",
                    )))
                    .col(big_integer_null(Alias::new("audience_size")))
                    .col(timestamp_with_time_zone(Alias::new("connected_at")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("accounts_member")
                    .table(Alias::new("accounts"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("network"))
                    .col(Alias::new("external_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("oauth_states"))
                    .if_not_exists()
                    .col(string(Alias::new("state")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("network")))
                    .col(string(Alias::new("code_verifier")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("publications"))
                    .if_not_exists()
                    .col(string(Alias::new("share_id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("post_id")))
                    .col(string(Alias::new("account_id")))
                    .col(string(Alias::new("network")))
                    .col(text(Alias::new("text")))
                    .col(string(Alias::new("link_code")))
                    .col(text(Alias::new("target_url")))
                    .col(string(Alias::new("status")))
                    .col(integer(Alias::new("attempts")))
                    .col(boolean(Alias::new("in_flight")))
                    .col(string_null(Alias::new("external_id")))
                    .col(text_null(Alias::new("external_url")))
                    .col(text_null(Alias::new("last_error")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("published_at")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["publications", "oauth_states", "accounts"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The expiry an advocate was last reminded of, so that each expiry is announced once.
struct ExpiryReminders;

impl MigrationName for ExpiryReminders {
    fn name(&self) -> &str {
        "m20261128_000100_publishing_expiry_reminders"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ExpiryReminders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("accounts"))
                    .add_column(timestamp_with_time_zone_null(Alias::new(
                        "expiry_reminded_for",
                    )))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// The image published with a share (Instagram needs one).
struct PublicationImages;

impl MigrationName for PublicationImages {
    fn name(&self) -> &str {
        "m20261128_000200_publishing_publication_images"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PublicationImages {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["image_url", "image_alt"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("publications"))
                        .add_column(text_null(Alias::new(column)))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The lease of the delivery working on a publication: a fencing token and when it ends.
struct PublicationLeases;

impl MigrationName for PublicationLeases {
    fn name(&self) -> &str {
        "m20261207_000100_publishing_publication_leases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PublicationLeases {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("publications"))
                    .add_column(string_null(Alias::new("lease")))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("publications"))
                    .add_column(timestamp_with_time_zone_null(Alias::new("lease_until")))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// What an attempt left on the network before the post exists (Instagram's container), so
/// that the next attempt, after a crash too, continues with it instead of a second post.
struct PublicationAttemptRefs;

impl MigrationName for PublicationAttemptRefs {
    fn name(&self) -> &str {
        "m20261207_000200_publishing_publication_attempt_refs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PublicationAttemptRefs {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("publications"))
                    .add_column(string_null(Alias::new("attempt_ref")))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
