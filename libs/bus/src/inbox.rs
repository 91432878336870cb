//! Inbox: a consumer records the id of each event it applied, in the same transaction as
//! the effect, so a redelivered event is recognised and skipped.

use crate::entities::inbox;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, TryInsertResult};

/// Records `event_id` for `consumer`. Returns `false` when it was already processed: the
/// caller must then skip the effect (and still ack).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    consumer: &str,
    event_id: &str,
) -> Result<bool, DbErr> {
    let row = inbox::ActiveModel {
        consumer: Set(consumer.to_string()),
        event_id: Set(event_id.to_string()),
        processed_at: Set(chrono::Utc::now()),
    };
    let outcome = inbox::Entity::insert(row)
        .on_conflict_do_nothing_on([inbox::Column::Consumer, inbox::Column::EventId])
        .exec(conn)
        .await?;
    Ok(!matches!(outcome, TryInsertResult::Conflicted))
}
