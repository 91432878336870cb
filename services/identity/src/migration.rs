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
            Box::new(ApiKeys),
            Box::new(Scim),
            Box::new(ManagersAndGuidelines),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261123_000100_identity_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("tenants"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("name")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("id")))
                    .col(string(Alias::new("display_name")))
                    .col(string(Alias::new("email")))
                    .col(string(Alias::new("roles")))
                    .col(string_null(Alias::new("department")))
                    .col(string_null(Alias::new("location")))
                    .col(string(Alias::new("language")))
                    .col(string(Alias::new("time_zone")))
                    .col(boolean(Alias::new("active")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("users")).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new("tenants")).to_owned())
            .await
    }
}

struct ApiKeys;

impl MigrationName for ApiKeys {
    fn name(&self) -> &str {
        "m20261129_000100_identity_api_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ApiKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("api_keys"))
                    .if_not_exists()
                    .col(string(Alias::new("id")).primary_key())
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("user_id")))
                    .col(string(Alias::new("name")))
                    .col(string(Alias::new("roles")))
                    .col(string(Alias::new("hash")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(string(Alias::new("created_by")))
                    .col(timestamp_with_time_zone_null(Alias::new("last_used_at")))
                    .col(timestamp_with_time_zone_null(Alias::new("revoked_at")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("api_keys")).to_owned())
            .await
    }
}

/// SCIM provisioning: a user's `userName`, `externalId` and time of last change; groups
/// and their members.
struct Scim;

impl MigrationName for Scim {
    fn name(&self) -> &str {
        "m20261129_000200_identity_scim"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Scim {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            string(Alias::new("user_name")).default("").to_owned(),
            string_null(Alias::new("external_id")),
            timestamp_with_time_zone_null(Alias::new("updated_at")),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("users"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared("UPDATE users SET user_name = email WHERE user_name = ''")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_by_user_name")
                    .table(Alias::new("users"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_name"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("groups"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("id")))
                    .col(string(Alias::new("display_name")))
                    .col(string_null(Alias::new("external_id")))
                    .col(timestamp_with_time_zone(Alias::new("created_at")))
                    .col(timestamp_with_time_zone(Alias::new("updated_at")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("group_members"))
                    .if_not_exists()
                    .col(string(Alias::new("tenant_id")))
                    .col(string(Alias::new("group_id")))
                    .col(string(Alias::new("user_id")))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("group_id"))
                            .col(Alias::new("user_id")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["group_members", "groups"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// A person's manager and when they accepted the social media guidelines.
struct ManagersAndGuidelines;

impl MigrationName for ManagersAndGuidelines {
    fn name(&self) -> &str {
        "m20261129_000300_identity_managers_guidelines"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ManagersAndGuidelines {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            string_null(Alias::new("manager_id")),
            timestamp_with_time_zone_null(Alias::new("guidelines_accepted_at")),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("users"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
