//! Transactional outbox. A service writes its state change and the events that describe it
//! in one database transaction (`Outbox::enqueue`); the relay publishes pending rows to
//! JetStream with `Nats-Msg-Id` = event id, and marks a row sent only after JetStream acked
//! it. A crash between publish and mark re-sends the row, which JetStream de-duplicates.

use crate::entities::outbox;
use crate::{Bus, BusError, trace};
use async_nats::HeaderMap;
use chorus_events::Event;
use chorus_kit::Shutdown;
use chorus_telemetry::metrics;
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Notify;

static PUBLISHED: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_outbox_published_total",
        "Events relayed from the outbox to JetStream",
        &["service"],
    )
});
static BACKLOG: LazyLock<metrics::IntGaugeVec> = LazyLock::new(|| {
    metrics::gauge_vec(
        "chorus_outbox_backlog",
        "Outbox rows waiting to be relayed",
        &["service"],
    )
});
static DEAD_ROWS: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_outbox_dead_rows_total",
        "Outbox rows JetStream kept refusing while others went through, set aside (the target is zero)",
        &["service"],
    )
});
static RELAY_ERRORS: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_outbox_relay_errors_total",
        "Failed relay attempts",
        &["service"],
    )
});

/// The NATS headers of an event: message id, CloudEvents binding attributes, content type.
pub fn event_headers(
    event_id: &str,
    event_type: &str,
    source: &str,
    subject: &str,
    time: chrono::DateTime<chrono::Utc>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event_id);
    headers.insert("ce-specversion", "1.0");
    headers.insert("ce-id", event_id);
    headers.insert("ce-type", event_type);
    headers.insert("ce-source", format!("/chorus/{source}").as_str());
    headers.insert(
        "ce-time",
        time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .as_str(),
    );
    if let Some(ce_subject) = subject.split('.').nth(1) {
        headers.insert("ce-subject", ce_subject);
    }
    headers.insert("Content-Type", "application/protobuf");
    headers
}

/// Writes events into a service's outbox and wakes its relay.
#[derive(Clone)]
pub struct Outbox {
    source: &'static str,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(source: &'static str) -> Outbox {
        Outbox {
            source,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds `event` to the outbox inside the caller's transaction; returns the event id.
    /// The current span's trace context is stored with it.
    pub async fn enqueue<C: ConnectionTrait, E: Event>(
        &self,
        conn: &C,
        event: &E,
    ) -> Result<String, DbErr> {
        self.enqueue_with_id(conn, event, uuid::Uuid::now_v7().to_string())
            .await
    }

    /// Like `enqueue` with a chosen event id (derived from the fact, so that the same fact
    /// always has the same id).
    pub async fn enqueue_with_id<C: ConnectionTrait, E: Event>(
        &self,
        conn: &C,
        event: &E,
        event_id: String,
    ) -> Result<String, DbErr> {
        outbox::Entity::insert(self.row(event, event_id.clone()))
            .exec_without_returning(conn)
            .await?;
        Ok(event_id)
    }

    /// The outbox row of `event` with a chosen id and the current span's trace context, to
    /// be written with others by `enqueue_rows`.
    pub fn row<E: Event>(&self, event: &E, event_id: String) -> outbox::ActiveModel {
        let context = trace::current_context_map();
        outbox::ActiveModel {
            event_id: Set(event_id),
            subject: Set(event.subject()),
            event_type: Set(E::TYPE.to_string()),
            source: Set(self.source.to_string()),
            payload: Set(prost::Message::encode_to_vec(event)),
            traceparent: Set(context.get("traceparent").cloned()),
            tracestate: Set(context
                .get("tracestate")
                .cloned()
                .filter(|state| !state.is_empty())),
            created_at: Set(chrono::Utc::now()),
            sent_at: Set(None),
            attempts: Set(0),
            next_attempt_at: Set(None),
            dead_at: Set(None),
            last_error: Set(None),
            ..Default::default()
        }
    }

    /// Writes rows made by `row` inside the caller's transaction, several per INSERT.
    pub async fn enqueue_rows<C: ConnectionTrait>(
        &self,
        conn: &C,
        rows: Vec<outbox::ActiveModel>,
    ) -> Result<(), DbErr> {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            outbox::Entity::insert_many(chunk)
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }

    /// Tells the relay that rows were committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the relay of this outbox.
    pub fn spawn_relay(
        &self,
        db: DatabaseConnection,
        bus: Bus,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.relay(db, bus).run(shutdown))
    }

    /// The relay of this outbox, to drive by hand (`relay_pending`).
    pub fn relay(&self, db: DatabaseConnection, bus: Bus) -> OutboxRelay {
        OutboxRelay {
            db,
            bus,
            source: self.source,
            wake: self.wake.clone(),
        }
    }
}

/// Publishes committed outbox rows to JetStream.
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Bus,
    source: &'static str,
    wake: Arc<Notify>,
}

/// Rows relayed per round: a burst of due shares (hundreds per due-loop batch) goes in a few rounds.
const BATCH: u64 = 1_024;
/// Refusals after which a row that others pass is set aside as dead.
pub const POISON_AFTER: i32 = 8;
/// Longest wait for the acknowledgements of one round.
const ACK_DEADLINE: Duration = Duration::from_secs(10);
/// Rows per multi-row INSERT (13 columns: far below the databases' limits on parameters).
const ROWS_PER_INSERT: usize = 500;

/// What one relay round did.
#[derive(Default)]
struct Batch {
    found: usize,
    sent: usize,
    error: Option<BusError>,
}

const IDLE_POLL: Duration = Duration::from_millis(500);

impl OutboxRelay {
    async fn run(self, shutdown: Shutdown) {
        let mut failures: u32 = 0;
        loop {
            match self.relay_pending().await {
                Ok(_) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    RELAY_ERRORS.with_label_values(&[self.source]).inc();
                    tracing::warn!(service = self.source, %error, failures, "outbox relay failed, will retry");
                }
            }
            let pause = if failures == 0 {
                IDLE_POLL
            } else {
                Duration::from_millis((100u64 << failures.min(6)).min(5_000))
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        // Drain what was committed before shutdown, bounded in time.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.relay_pending()).await;
    }

    /// Relays every pending row; returns how many were sent.
    ///
    /// On PostgreSQL each batch is read with `FOR UPDATE SKIP LOCKED` inside a transaction
    /// held until its rows are marked sent, so that the relays of several replicas of a
    /// service share the backlog instead of each publishing every row (JetStream would drop
    /// the copies by message id, but only within its duplicate window, and at a cost).
    /// SQLite has one writer and no row locks: the relay reads without a transaction.
    pub async fn relay_pending(&self) -> Result<usize, BusError> {
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        let mut sent = 0;
        loop {
            let batch = if postgres {
                let txn = self.db.begin().await?;
                let batch = self.relay_batch(&txn, true).await?;
                txn.commit().await?;
                batch
            } else {
                self.relay_batch(&self.db, false).await?
            };
            sent += batch.sent;
            if let Some(error) = batch.error {
                return Err(error);
            }
            if batch.found == 0 {
                return Ok(sent);
            }
            self.purge_sent().await?;
        }
    }

    /// Publishes one batch of pending rows and marks the acknowledged ones sent.
    async fn relay_batch<C: ConnectionTrait>(
        &self,
        conn: &C,
        lock: bool,
    ) -> Result<Batch, BusError> {
        let now = chrono::Utc::now();
        let mut query = outbox::Entity::find()
            .filter(outbox::Column::SentAt.is_null())
            .filter(outbox::Column::DeadAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(outbox::Column::NextAttemptAt.is_null())
                    .add(outbox::Column::NextAttemptAt.lte(now)),
            )
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH);
        if lock {
            query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = query.all(conn).await?;
        BACKLOG
            .with_label_values(&[self.source])
            .set(rows.len() as i64);
        if rows.is_empty() {
            return Ok(Batch::default());
        }
        let mut pending_acks = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut headers = event_headers(
                &row.event_id,
                &row.event_type,
                &row.source,
                &row.subject,
                row.created_at,
            );
            if let Some(traceparent) = &row.traceparent {
                headers.insert("traceparent", traceparent.as_str());
            }
            if let Some(tracestate) = &row.tracestate {
                headers.insert("tracestate", tracestate.as_str());
            }
            let ack = self
                .bus
                .jetstream
                .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
                .await
                .map_err(BusError::nats)?;
            pending_acks.push((row.id, ack));
        }
        // Every acknowledgement is awaited (within one deadline), so that one refused row
        // does not hide the fate of the rows behind it.
        let deadline = tokio::time::Instant::now() + ACK_DEADLINE;
        let mut acked_ids = Vec::with_capacity(pending_acks.len());
        let mut refused = Vec::new();
        for (id, ack) in pending_acks {
            match tokio::time::timeout_at(deadline, ack).await {
                Ok(Ok(_)) => acked_ids.push(id),
                Ok(Err(error)) => refused.push((id, error.to_string())),
                Err(_) => refused.push((id, "publish ack timed out".to_string())),
            }
        }
        let mut first_error = None;
        if !refused.is_empty() {
            if acked_ids.is_empty() {
                // Nothing went through: the bus, not the rows. The relay backs off as a whole.
                first_error = Some(BusError::nats(refused[0].1.clone()));
            } else {
                // Others went through: these rows are refused for themselves.
                self.defer_refused(conn, &rows, &refused).await?;
            }
        }
        let sent = acked_ids.len();
        if !acked_ids.is_empty() {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::SentAt, Expr::value(chrono::Utc::now()))
                .filter(outbox::Column::Id.is_in(acked_ids))
                .exec(conn)
                .await?;
            PUBLISHED
                .with_label_values(&[self.source])
                .inc_by(sent as u64);
        }
        Ok(Batch {
            found: rows.len(),
            sent,
            error: first_error,
        })
    }

    /// Rows JetStream refused while others went through: each waits with its own back-off,
    /// and after `POISON_AFTER` refusals is set aside as dead (kept, counted, logged).
    async fn defer_refused<C: ConnectionTrait>(
        &self,
        conn: &C,
        rows: &[outbox::Model],
        refused: &[(i64, String)],
    ) -> Result<(), DbErr> {
        let now = chrono::Utc::now();
        for (id, error) in refused {
            let Some(row) = rows.iter().find(|row| row.id == *id) else {
                continue;
            };
            let attempts = row.attempts + 1;
            let dead = attempts >= POISON_AFTER;
            let back_off = chrono::Duration::seconds(1_i64 << attempts.clamp(0, 8));
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Attempts, Expr::value(attempts))
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(now + back_off))
                .col_expr(outbox::Column::DeadAt, Expr::value(dead.then_some(now)))
                .col_expr(outbox::Column::LastError, Expr::value(Some(error.clone())))
                .filter(outbox::Column::Id.eq(*id))
                .exec(conn)
                .await?;
            if dead {
                DEAD_ROWS.with_label_values(&[self.source]).inc();
                tracing::error!(service = self.source, event_id = %row.event_id, subject = %row.subject, attempts, %error, "outbox row set aside: JetStream keeps refusing it while others go through");
            } else {
                tracing::warn!(service = self.source, event_id = %row.event_id, subject = %row.subject, attempts, %error, "outbox row refused, retrying it later");
            }
        }
        Ok(())
    }

    /// Sent rows are kept a day, so that "was this event published?" has an answer, then
    /// removed; dead rows stay until an operator removes them.
    async fn purge_sent(&self) -> Result<(), DbErr> {
        let cutoff = chrono::Utc::now() - chrono::Duration::hours(24);
        outbox::Entity::delete_many()
            .filter(outbox::Column::SentAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
