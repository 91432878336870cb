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
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
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
        M::up(&db, None).await?;
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
