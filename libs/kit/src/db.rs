//! Database connection and migrations, the same for PostgreSQL and the embedded SQLite.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// Connects to `url`. SQLite files are created when missing and run in WAL mode with a
/// single connection, which serialises writers instead of failing them with SQLITE_BUSY.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite
        && let Some(path) = sqlite_path(url)
        && let Some(parent) = std::path::Path::new(&path).parent()
    {
        std::fs::create_dir_all(parent)
            .map_err(|error| DbErr::Custom(format!("creating {}: {error}", parent.display())))?;
    }
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    if is_sqlite {
        options.max_connections(1).min_connections(1);
    } else {
        options.max_connections(10).min_connections(1);
    }
    let db = Database::connect(options).await?;
    if is_sqlite {
        db.execute_unprepared(
            // FULL: a commit is on disk before it returns, so what a service promised (a
            // share accepted, an outbox row, a publication's attempt) survives the machine
            // failing, not only the process (NORMAL loses the last commits of WAL mode then).
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;",
        )
        .await?;
    }
    Ok(db)
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.to_string())
    }
}

/// Connects and applies the service's pending migrations.
pub async fn connect_and_migrate<M: MigratorTrait>(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // Replicas starting together migrate one at a time: the first applies, the others
        // wait for its commit and find nothing left to do.
        let txn = sea_orm::TransactionTrait::begin(&db).await?;
        sea_orm::ConnectionTrait::execute_unprepared(
            &txn,
            "SELECT pg_advisory_xact_lock(7263510001)",
        )
        .await?;
        M::up(&txn, None).await?;
        txn.commit().await?;
    } else {
        // Two processes starting on one file (a second publisher beside the all-in-one)
        // race on the migrations table: the loser finds them applied on its next try.
        let mut tries = 0;
        loop {
            tries += 1;
            match M::up(&db, None).await {
                Ok(()) => break,
                Err(error) if tries < 5 => {
                    tracing::warn!(%error, tries, "migration raced another process, trying again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
    Ok(db)
}

/// A readiness check that pings the database.
pub fn readiness_check(db: DatabaseConnection) -> crate::admin::Check {
    std::sync::Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await.map_err(|error| error.to_string()) })
    })
}

/// Shows the URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// A table that holds a person's data: its rows whose `tenant_id` is the tenant and whose
/// `column` names the person. Each service lists its tables once; the GDPR export reads
/// them and erasure (`user.erased`) empties them of the person.
pub struct PersonalTable {
    pub table: &'static str,
    pub column: &'static str,
    /// The columns exported; empty for all of them. Secrets (tokens, hashes) are left out
    /// by naming the others.
    pub columns: &'static [&'static str],
    pub on_erase: OnErase,
}

/// What erasure does to a person's rows.
pub enum OnErase {
    /// The rows go.
    Delete,
    /// The rows stay (they count in totals) under a random pseudonym, with these columns
    /// (words the person wrote) emptied.
    Pseudonymise { blank: &'static [&'static str] },
}

impl PersonalTable {
    /// Rows that are deleted on erasure.
    pub const fn deleted(table: &'static str, column: &'static str) -> PersonalTable {
        PersonalTable {
            table,
            column,
            columns: &[],
            on_erase: OnErase::Delete,
        }
    }

    /// Rows that stay, pseudonymised, on erasure.
    pub const fn kept(table: &'static str, column: &'static str) -> PersonalTable {
        PersonalTable {
            table,
            column,
            columns: &[],
            on_erase: OnErase::Pseudonymise { blank: &[] },
        }
    }

    /// Erasure also empties these columns of the kept rows.
    pub const fn blanking(self, blank: &'static [&'static str]) -> PersonalTable {
        PersonalTable {
            on_erase: OnErase::Pseudonymise { blank },
            ..self
        }
    }

    /// Only these columns are exported.
    pub const fn exporting(self, columns: &'static [&'static str]) -> PersonalTable {
        PersonalTable { columns, ..self }
    }
}

/// Erases a person from `tables` (see [`OnErase`]); one pseudonym for the call, so that
/// the kept rows still belong together. Running it again finds nothing left to do.
pub async fn erase_person<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    user_id: &str,
    tables: &[PersonalTable],
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let pseudonym = format!("erased-{}", uuid::Uuid::new_v4().simple());
    let backend = db.get_database_backend();
    let mut rows = 0;
    for table in tables {
        let condition = Expr::col(Alias::new("tenant_id"))
            .eq(tenant_id)
            .and(Expr::col(Alias::new(table.column)).eq(user_id));
        let statement = match &table.on_erase {
            OnErase::Delete => backend.build(
                Query::delete()
                    .from_table(Alias::new(table.table))
                    .cond_where(condition),
            ),
            OnErase::Pseudonymise { blank } => {
                let mut update = Query::update();
                update
                    .table(Alias::new(table.table))
                    .value(Alias::new(table.column), pseudonym.as_str());
                for column in *blank {
                    update.value(Alias::new(*column), "");
                }
                backend.build(update.cond_where(condition))
            }
        };
        rows += db.execute_raw(statement).await?.rows_affected();
    }
    Ok(rows)
}

/// What a service holds about `user_id` (of the caller's tenant), one list of rows per
/// table. Administrators may export anyone; others only themselves.
pub async fn personal_data(
    db: &DatabaseConnection,
    caller: &crate::Caller,
    user_id: &str,
    tables: &[PersonalTable],
) -> crate::ServiceResult<serde_json::Value> {
    use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
    use sea_orm::{FromQueryResult, JsonValue};
    if caller.user_id != user_id && !caller.has(crate::Role::Admin) {
        return Err(crate::ServiceError::forbidden(
            "only administrators export another person's data",
        ));
    }
    let mut out = serde_json::Map::new();
    for table in tables {
        let mut query = Query::select();
        if table.columns.is_empty() {
            query.column(Asterisk);
        } else {
            query.columns(table.columns.iter().map(|c| Alias::new(*c)));
        }
        query
            .from(Alias::new(table.table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(caller.tenant_id.as_str()))
            .and_where(Expr::col(Alias::new(table.column)).eq(user_id));
        let statement = db.get_database_backend().build(&query);
        let rows = JsonValue::find_by_statement(statement).all(db).await?;
        out.insert(table.table.to_string(), serde_json::Value::Array(rows));
    }
    Ok(serde_json::Value::Object(out))
}

#[cfg(test)]
mod durability_tests {
    use sea_orm::ConnectionTrait;

    #[tokio::test]
    async fn sqlite_commits_are_synced_before_they_return() {
        let folder = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            folder.path().join("db.sqlite").display()
        );
        let db = super::connect(&url).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "PRAGMA synchronous",
            ))
            .await
            .unwrap()
            .unwrap();
        let level: i32 = row.try_get_by_index(0).unwrap();
        assert_eq!(level, 2, "PRAGMA synchronous = FULL (2)");
    }
}
