//! Seeding for `chorus bench pipeline` and `lateness`: shares written straight into the
//! scheduling database in multi-row inserts (creating them one by one through the API
//! would take longer than what is measured). The rows have the shape `create_share`
//! writes; everything measured afterwards goes through the due-loop, the outbox, the
//! publisher and the network.

use crate::entities::share;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionTrait,
};
use tracing::Instrument;

/// Rows per INSERT statement (20 columns: far below SQLite's and PostgreSQL's limits on
/// bound parameters).
const ROWS_PER_INSERT: usize = 500;

/// A share to seed: the account must be connected in publishing.
#[derive(Debug, Clone)]
pub struct SeedShare {
    pub tenant_id: String,
    pub user_id: String,
    pub post_id: String,
    pub account_id: String,
    pub network: String,
    pub caption: String,
    pub link_url: String,
    pub due_at: DateTime<Utc>,
}

/// Connects to the scheduling database (migrating it if the service has not yet).
pub async fn connect(database_url: &str) -> Result<DatabaseConnection, DbErr> {
    chorus_kit::db::connect_and_migrate::<crate::Migrator>(database_url).await
}

/// Writes `shares` as `scheduled` in one transaction; returns their ids in order.
pub async fn seed_shares(
    db: &DatabaseConnection,
    public_url: &str,
    shares: Vec<SeedShare>,
) -> Result<Vec<String>, DbErr> {
    let span = tracing::info_span!(
        "bench.seed_shares",
        service = crate::NAME,
        count = shares.len()
    );
    async move {
        let now = Utc::now();
        let public_url = public_url.trim_end_matches('/');
        let mut ids = Vec::with_capacity(shares.len());
        let txn = db.begin().await?;
        for chunk in shares.chunks(ROWS_PER_INSERT) {
            let mut rows = Vec::with_capacity(chunk.len());
            for seed in chunk {
                let id = uuid::Uuid::now_v7().to_string();
                let link_code = crate::rpc::new_link_code();
                let target_url = crate::rpc::with_utm(&seed.link_url, &seed.network, &seed.post_id)
                    .map_err(|error| DbErr::Custom(error.message))?;
                rows.push(share::ActiveModel {
                    id: Set(id.clone()),
                    tenant_id: Set(seed.tenant_id.clone()),
                    user_id: Set(seed.user_id.clone()),
                    post_id: Set(seed.post_id.clone()),
                    account_id: Set(seed.account_id.clone()),
                    network: Set(seed.network.clone()),
                    caption: Set(seed.caption.clone()),
                    text: Set(format!("{}\n\n{public_url}/l/{link_code}", seed.caption)),
                    link_code: Set(link_code),
                    target_url: Set(target_url),
                    image_url: Set(None),
                    image_alt: Set(None),
                    status: Set("scheduled".to_string()),
                    due_at: Set(seed.due_at),
                    traceparent: Set(None),
                    tracestate: Set(None),
                    external_id: Set(None),
                    external_url: Set(None),
                    failure_reason: Set(None),
                    created_at: Set(now),
                    published_at: Set(None),
                    updated_at: Set(now),
                    slot_at: Set(None),
                    request_key: Set(None),
                    waiting_for: Set(None),
                    waiting_until: Set(None),
                });
                ids.push(id);
            }
            share::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        tracing::info!(count = ids.len(), "shares seeded");
        Ok(ids)
    }
    .instrument(span)
    .await
}

/// Moves every scheduled share due at `from` to `to` (one statement); returns how many.
pub async fn reschedule(
    db: &DatabaseConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = share::Entity::update_many()
        .col_expr(share::Column::DueAt, Expr::value(to))
        .filter(share::Column::Status.eq("scheduled"))
        .filter(share::Column::DueAt.eq(from))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// How many of the given shares have `status`.
pub async fn count_with_status(
    db: &DatabaseConnection,
    ids: &[String],
    status: &str,
) -> Result<u64, DbErr> {
    let mut total = 0;
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        total += share::Entity::find()
            .filter(share::Column::Status.eq(status))
            .filter(share::Column::Id.is_in(chunk.to_vec()))
            .count(db)
            .await?;
    }
    Ok(total)
}

/// `published_at` of the given shares that are published.
pub async fn published_at(
    db: &DatabaseConnection,
    ids: &[String],
) -> Result<Vec<DateTime<Utc>>, DbErr> {
    let mut times = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let rows = share::Entity::find()
            .filter(share::Column::Status.eq("published"))
            .filter(share::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?;
        times.extend(rows.into_iter().filter_map(|row| row.published_at));
    }
    Ok(times)
}

/// When each given share's `share.due` event reached JetStream (its outbox row marked sent).
pub async fn due_handed_over_at(
    db: &DatabaseConnection,
    ids: &[String],
) -> Result<Vec<DateTime<Utc>>, DbErr> {
    use chorus_bus::entities::outbox;
    let mut times = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let event_ids: Vec<String> = chunk.iter().map(|id| format!("share-due-{id}")).collect();
        let rows = outbox::Entity::find()
            .filter(outbox::Column::EventId.is_in(event_ids))
            .all(db)
            .await?;
        // Sent: JetStream has stored the event, the publisher can take it.
        times.extend(rows.into_iter().filter_map(|row| row.sent_at));
    }
    Ok(times)
}
