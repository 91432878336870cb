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
            Box::new(Webhooks),
            Box::new(Channels),
            Box::new(Digests),
            Box::new(PushDevices),
            Box::new(FailureAlerts),
            Box::new(PeopleLanguage),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_notifications_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notifications"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("kind")))
                    .col(string(Alias::new("channel")))
                    .col(string(Alias::new("title")))
                    .col(text(Alias::new("body")))
                    .col(string(Alias::new("source_event_id")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("read_at")))
                    .to_owned(),
            )
            .await?;
        // The same event never notifies the same person twice on one channel.
        manager
            .create_index(
                Index::create()
                    .name("notifications_once")
                    .table(Alias::new("notifications"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("source_event_id"))
                    .col(Alias::new("channel"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("notifications")).to_owned())
            .await
    }
}

struct Webhooks;

impl MigrationName for Webhooks {
    fn name(&self) -> &str {
        "m20261129_000100_notifications_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Webhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("people"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("roles")))
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
                    .table(Alias::new("webhook_endpoints"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(text(Alias::new("url")))
                    .col(text(Alias::new("description")))
                    .col(text(Alias::new("event_types")))
                    .col(string(Alias::new("secret_key_id")))
                    .col(blob(Alias::new("secret_cipher")))
                    .col(string_null(Alias::new("previous_key_id")))
                    .col(blob_null(Alias::new("previous_cipher")))
                    .col(timestamp_with_time_zone_null(Alias::new(
                        "previous_expires_at",
                    )))
                    .col(string(Alias::new("status")))
                    .col(text_null(Alias::new("disabled_reason")))
                    .col(timestamp_with_time_zone_null(Alias::new("failing_since")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_endpoints_tenant")
                    .table(Alias::new("webhook_endpoints"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("status"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_settings"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")).primary_key())
                    .col(boolean(Alias::new("allow_private_destinations")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_messages"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("event_type")))
                    .col(text(Alias::new("body")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_deliveries"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("endpoint_id")))
                    .col(string(Alias::new("message_id")))
                    .col(string(Alias::new("event_type")))
                    .col(string(Alias::new("status")))
                    .col(integer(Alias::new("attempts")))
                    .col(timestamp_with_time_zone_null(Alias::new("next_attempt_at")))
                    .col(string_null(Alias::new("lease_owner")))
                    .col(timestamp_with_time_zone_null(Alias::new("lease_until")))
                    .col(integer_null(Alias::new("last_status_code")))
                    .col(text_null(Alias::new("last_error")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .to_owned(),
            )
            .await?;
        // One delivery of a message per endpoint, however often the event arrives.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_once")
                    .table(Alias::new("webhook_deliveries"))
                    .col(Alias::new("endpoint_id"))
                    .col(Alias::new("message_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due")
                    .table(Alias::new("webhook_deliveries"))
                    .col(Alias::new("status"))
                    .col(Alias::new("next_attempt_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "webhook_deliveries",
            "webhook_messages",
            "webhook_settings",
            "webhook_endpoints",
            "people",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

struct Channels;

impl MigrationName for Channels {
    fn name(&self) -> &str {
        "m20261129_000200_notifications_channels"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Channels {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("channel_messages"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("recipient")))
                    .col(string(Alias::new("kind")))
                    .col(string(Alias::new("channel")))
                    .col(string(Alias::new("title")))
                    .col(text(Alias::new("body")))
                    .col(string(Alias::new("source_event_id")))
                    .col(string(Alias::new("status")))
                    .col(integer(Alias::new("attempts")))
                    .col(timestamp_with_time_zone(Alias::new("next_attempt_at")))
                    .col(string_null(Alias::new("lease_owner")))
                    .col(timestamp_with_time_zone_null(Alias::new("lease_until")))
                    .col(text_null(Alias::new("last_error")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("sent_at")))
                    .to_owned(),
            )
            .await?;
        // The same event never reaches the same recipient twice on one channel.
        manager
            .create_index(
                Index::create()
                    .name("channel_messages_once")
                    .table(Alias::new("channel_messages"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("recipient"))
                    .col(Alias::new("source_event_id"))
                    .col(Alias::new("channel"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("channel_messages_due")
                    .table(Alias::new("channel_messages"))
                    .col(Alias::new("status"))
                    .col(Alias::new("next_attempt_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notification_preferences"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("kind")))
                    .col(string(Alias::new("channel")))
                    .col(boolean(Alias::new("enabled")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("user_id"))
                            .col(Alias::new("kind"))
                            .col(Alias::new("channel")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("notification_quiet_hours"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string_null(Alias::new("quiet_start")))
                    .col(string_null(Alias::new("quiet_end")))
                    .col(string_null(Alias::new("time_zone")))
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
                    .table(Alias::new("team_channels"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("channel_type")))
                    .col(string(Alias::new("name")))
                    .col(string(Alias::new("host")))
                    .col(string(Alias::new("url_key_id")))
                    .col(blob(Alias::new("url_cipher")))
                    .col(text(Alias::new("kinds")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "team_channels",
            "notification_quiet_hours",
            "notification_preferences",
            "channel_messages",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

struct Digests;

impl MigrationName for Digests {
    fn name(&self) -> &str {
        "m20261129_000300_notifications_digests"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Digests {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            string_null(Alias::new("digest")),
            timestamp_with_time_zone_null(Alias::new("digest_since")),
            timestamp_with_time_zone_null(Alias::new("digest_next_at")),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("notification_quiet_hours"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["digest_next_at", "digest_since", "digest"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("notification_quiet_hours"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

struct PushDevices;

impl MigrationName for PushDevices {
    fn name(&self) -> &str {
        "m20261129_000400_notifications_push_devices"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PushDevices {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("push_devices"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("platform")))
                    .col(text(Alias::new("token")))
                    .col(string(Alias::new("name")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("last_used_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("push_devices_of_person")
                    .table(Alias::new("push_devices"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("push_devices")).to_owned())
            .await
    }
}

struct FailureAlerts;

impl MigrationName for FailureAlerts {
    fn name(&self) -> &str {
        "m20261129_000500_notifications_failure_alerts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FailureAlerts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("publishing_tallies"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(timestamp_with_time_zone(Alias::new("hour_start")))
                    .col(big_integer(Alias::new("published")))
                    .col(big_integer(Alias::new("failed")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("hour_start")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("failure_alerts"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")).primary_key())
                    .col(timestamp_with_time_zone(Alias::new("last_alert_at")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["failure_alerts", "publishing_tallies"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The language people read their notifications in.
struct PeopleLanguage;

impl MigrationName for PeopleLanguage {
    fn name(&self) -> &str {
        "m20261129_000600_notifications_people_language"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PeopleLanguage {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("people"))
                    .add_column(string(Alias::new("language")).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("people"))
                    .drop_column(Alias::new("language"))
                    .to_owned(),
            )
            .await
    }
}
